// The bench's reference: the seed's pseudo-code as one plain Node socket.io@4 process.
// In-memory rooms, no persistence, no auth: what a single-process Node backend does.
// Usage: node reference.js <port>; prints "listening <port>" once it accepts connections.
"use strict";

const http = require("http");
const { Server } = require("socket.io");

const port = Number(process.argv[2] || 0);
const httpServer = http.createServer();
const io = new Server(httpServer, { cors: { origin: "*" } });

// meetingId -> Map(participantId -> participant); socketId -> {meetingId, participantId}
const meetingRooms = new Map();
const bySocket = new Map();

function publicView(p) {
  return {
    participantId: p.participantId,
    userId: p.userId,
    userName: p.userName,
    audio: p.audio,
    video: p.video,
    screen: p.screen,
  };
}

function leave(socket, reason) {
  const where = bySocket.get(socket.id);
  if (!where) return;
  bySocket.delete(socket.id);
  const room = meetingRooms.get(where.meetingId);
  const p = room && room.get(where.participantId);
  if (!p) return;
  room.delete(where.participantId);
  socket.leave(where.meetingId);
  socket.to(where.meetingId).emit("participant-left", {
    participantId: p.participantId,
    userId: p.userId,
    userName: p.userName,
    reason,
  });
}

io.on("connection", (socket) => {
  socket.on("join-meeting", (data, ack) => {
    const { meetingId, userId, userName } = data || {};
    if (!meetingId || !userId) {
      socket.emit("error", { message: "Meeting not found" });
      return;
    }
    leave(socket, "left");
    const participantId = `${meetingId}_${userId}_${Date.now()}_${socket.id}`;
    if (!meetingRooms.has(meetingId)) meetingRooms.set(meetingId, new Map());
    const room = meetingRooms.get(meetingId);
    const existing = [...room.values()].map(publicView);
    const me = { participantId, userId, userName, socketId: socket.id, audio: true, video: true, screen: false };
    socket.join(meetingId);
    room.set(participantId, me);
    bySocket.set(socket.id, { meetingId, participantId });
    const meeting = { id: meetingId, meeting_name: "Bench", meeting_status: "live", creator_id: "user-1-id" };
    const reply = { success: true, meeting, participantId, participants: existing, webrtcConfig: {} };
    socket.emit("meeting-joined", reply);
    socket.to(meetingId).emit("participant-joined", {
      ...publicView(me),
      permissions: { canShare: true, canChat: true, canRecord: meeting.creator_id === userId },
    });
    if (typeof ack === "function") ack(reply);
  });

  socket.on("update-media", (data, ack) => {
    const where = bySocket.get(socket.id);
    const p = where && meetingRooms.get(where.meetingId)?.get(where.participantId);
    if (!p) {
      if (typeof ack === "function") ack({ success: false });
      return;
    }
    for (const key of ["audio", "video", "screen"]) {
      if (typeof data?.[key] === "boolean") p[key] = data[key];
    }
    const update = { ...publicView(p), changedBy: p.participantId };
    socket.to(where.meetingId).emit("participant-updated", update);
    if (typeof ack === "function") ack({ success: true, ...update });
  });

  socket.on("leave-meeting", (_data, ack) => {
    leave(socket, "left");
    if (typeof ack === "function") ack({ success: true });
  });

  socket.on("disconnect", () => leave(socket, "disconnected"));
});

httpServer.listen(port, "127.0.0.1", () => {
  console.log(`listening ${httpServer.address().port}`);
});
process.on("SIGTERM", () => process.exit(0));
