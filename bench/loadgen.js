// The bench's load generator, on the official socket.io-client. One scenario per run:
//   node loadgen.js <url> <scenario> <clients> [meetingId]
// scenario: fanout | storm | join | idle. Prints one JSON line with the figures; `idle`
// prints {"phase":"joined"} once every roster is complete and holds the sockets open
// until its stdin closes.
"use strict";

const { io } = require("socket.io-client");

const [url, scenario, countText, meetingArg] = process.argv.slice(2);
const count = Number(countText);
const meetingId = meetingArg || "test-meeting-123";
const DEADLINE_MS = 120000;

function now() {
  return Number(process.hrtime.bigint()) / 1e6;
}

function percentile(values, q) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function fail(message) {
  console.log(JSON.stringify({ error: message }));
  process.exit(1);
}

let progress = () => "";
// What each client saw go wrong (error events, failed acks, connect errors), reported on
// a deadline so that a run that does not converge says why.
const problems = new Map();
function noteProblem(index, what) {
  const count = problems.get(what) || { count: 0, clients: [] };
  count.count += 1;
  if (count.clients.length < 10) count.clients.push(index);
  problems.set(what, count);
}
function problemSummary() {
  if (problems.size === 0) return "";
  const parts = [...problems].map(([what, { count, clients }]) => `${count}x ${what} (clients ${clients.join(",")})`);
  return `; problems: ${parts.join("; ")}`;
}
setTimeout(() => fail(`deadline of ${DEADLINE_MS} ms passed${progress()}${problemSummary()}`), DEADLINE_MS).unref();

// One client: its socket and its roster (participant ids it believes are in the meeting).
function makeClient(index) {
  const socket = io(url, { transports: ["websocket"], forceNew: true, reconnection: false });
  const client = { index, socket, roster: new Set(), me: null, joinedAt: 0, updates: 0 };
  socket.on("meeting-joined", (data) => {
    client.me = data.participantId;
    for (const p of data.participants) client.roster.add(p.participantId);
    client.joinedAt = now();
    client.onJoined?.();
    client.onChange?.();
  });
  socket.on("participant-joined", (p) => {
    client.roster.add(p.participantId);
    client.onChange?.();
  });
  socket.on("participant-left", (p) => {
    client.roster.delete(p.participantId);
    client.onChange?.();
  });
  socket.on("participant-updated", () => {
    client.updates += 1;
    client.onUpdate?.();
  });
  socket.on("error", (err) => noteProblem(index, `error event ${JSON.stringify(err)}`));
  socket.on("disconnect", (reason) => {
    if (!client.closing) fail(`client ${index} disconnected: ${reason}${problemSummary()}`);
  });
  return client;
}

async function connectAll(n) {
  const clients = [];
  const batch = 50;
  for (let start = 0; start < n; start += batch) {
    const group = [];
    for (let i = start; i < Math.min(n, start + batch); i += 1) {
      const client = makeClient(i);
      clients.push(client);
      group.push(
        new Promise((resolve, reject) => {
          client.socket.once("connect", resolve);
          client.socket.once("connect_error", (err) => reject(new Error(`connect: ${err.message}`)));
        }),
      );
    }
    await Promise.all(group);
  }
  return clients;
}

function join(client) {
  return new Promise((resolve) => {
    client.onJoined = () => {
      client.onJoined = null;
      resolve();
    };
    client.socket.emit("join-meeting", {
      meetingId,
      userId: `bench-user-${client.index}`,
      userName: `Bench User ${client.index}`,
    });
  });
}

// Resolves when every client's roster holds every other client (counted as each
// completes: the check must not cost the generator O(clients) per event).
function converged(clients) {
  let complete = 0;
  progress = () => {
    const sizes = clients.map((c) => c.roster.size);
    const joined = clients.filter((c) => c.me !== null).length;
    return ` (${complete} complete, ${joined} joined, smallest roster ${Math.min(...sizes)})`;
  };
  return new Promise((resolve) => {
    const onChange = (c) => {
      if (!c.complete && c.me !== null && c.roster.size >= clients.length - 1) {
        c.complete = true;
        complete += 1;
        if (complete === clients.length) {
          for (const other of clients) other.onChange = null;
          resolve();
        }
      }
    };
    for (const c of clients) {
      c.complete = false;
      c.onChange = () => onChange(c);
    }
    for (const c of clients) c.onChange?.();
  });
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function paced(clients, perSecond, onJoin) {
  const started = now();
  const pending = [];
  for (let i = 0; i < clients.length; i += 1) {
    const due = started + (i * 1000) / perSecond;
    const wait = due - now();
    if (wait > 0) await sleep(wait);
    const sent = now();
    pending.push(join(clients[i]).then(() => onJoin(now() - sent)));
  }
  await Promise.all(pending);
}

async function fanout(clients) {
  for (const c of clients) await join(c);
  await converged(clients);
  const rounds = 10;
  const expected = clients.length * (clients.length - 1) * rounds;
  let delivered = 0;
  const done = new Promise((resolve) => {
    for (const c of clients) {
      c.onUpdate = () => {
        delivered += 1;
        if (delivered === expected) resolve();
      };
    }
  });
  const started = now();
  for (let r = 0; r < rounds; r += 1) {
    for (const c of clients) c.socket.emit("update-media", { audio: r % 2 === 1 }); // every round a change
  }
  await done;
  const seconds = (now() - started) / 1000;
  return { deliveries: expected, seconds, deliveries_per_s: expected / seconds };
}

async function storm(clients) {
  const started = now();
  const all = converged(clients);
  for (const c of clients) join(c);
  await all;
  return { converged_ms: now() - started };
}

async function joinLatency(clients) {
  const latencies = [];
  await paced(clients, 50, (ms) => latencies.push(ms));
  return { p50_ms: percentile(latencies, 0.5), p99_ms: percentile(latencies, 0.99) };
}

async function idle(clients) {
  const all = converged(clients);
  await paced(clients, 200, () => {});
  await all;
  console.log(JSON.stringify({ phase: "joined" }));
  await new Promise((resolve) => {
    process.stdin.on("end", resolve);
    process.stdin.on("close", resolve);
    process.stdin.resume();
  });
  return { clients: clients.length };
}

const scenarios = { fanout, storm, join: joinLatency, idle };

async function main() {
  const run = scenarios[scenario];
  if (!run) fail(`unknown scenario ${scenario}`);
  const clients = await connectAll(count);
  const result = await run(clients);
  for (const c of clients) {
    c.closing = true;
    c.socket.close();
  }
  console.log(JSON.stringify({ scenario, clients: count, ...result }));
  process.exit(0);
}

main().catch((err) => fail(String(err && err.stack ? err.stack : err)));
