#!/usr/bin/env node
"use strict";
/*
 * JSON-lines driver for the official socket.io-client (v4), used by the Python
 * test harness (tests/support/jsclient.py). One node process holds many
 * client sockets, named by the caller.
 *
 * stdin: one JSON command per line, each with a "cmdId" (any JSON value) and a "cmd":
 *   {cmd:"connect", client, url, options?, wait?=true, timeoutMs?=10000}
 *       options go to io(url, options); defaults: reconnection:false, forceNew:true.
 *       wait: reply once "connect" or "connect_error" happened (or timeoutMs passed).
 *   {cmd:"emit", client, event, args?:[...] | data?, ack?=false, timeoutMs?=5000}
 *       ack:true uses socket.timeout(timeoutMs).emitWithAck(...): the reply's result is
 *       {args:[...]} or the reply is {ok:false, error:{code:"ACK_TIMEOUT"}}.
 *   {cmd:"disconnect", client}                clean socket.disconnect()
 *   {cmd:"close", client, mode?="reset"}      vanish without a clean disconnect (see below)
 *   {cmd:"rawSend", client, data, level?="engine", binary?=false}
 *       level "engine": engine.io message packet carrying `data` (so `data` is a
 *       Socket.IO packet such as '2["event",{}]' or any garbage);
 *       level "transport": the exact frame on the WebSocket (websocket transport only).
 *       binary:true means data is base64 and is sent as bytes.
 *   {cmd:"status", client}   -> {connected, active, id, recovered, pid, offset, transport, dropped}
 *   {cmd:"list"}   {cmd:"forget", client}   {cmd:"ping"}
 *   {cmd:"shutdown"}          disconnect everything and exit
 *
 * stdout: one JSON record per line:
 *   {type:"ready", pid, node, socketIoClient}
 *   {type:"reply", cmdId, ok:true, result} | {type:"reply", cmdId, ok:false, error:{code, message}}
 *   {type:"event", client, event, data, args, ts, hr}   for every event from the server
 *       (socket.onAny; `args` keeps every argument, e.g. a recovery offset passed last) and
 *       for "connect" {id, transport, recovered}, "disconnect" {reason, description},
 *       "connect_error" {message, data}, plus "$open" {transport} when the engine.io
 *       connection opens, "$upgrade" {transport} when it upgrades, and
 *       "$reconnect_attempt"/"$reconnect" {attempt}.
 *   {type:"log", level, message}
 *
 * Binary values travel as {"$binary": "<base64>"} in both directions.
 *
 * close modes (none sends a Socket.IO DISCONNECT or an engine.io CLOSE packet; reconnection
 * is switched off first so the client stays gone):
 *   "reset"     websocket: the TCP connection is reset (RST), the server notices at once
 *               ("transport close"/"transport error"), like a killed browser or process.
 *               polling: the pending long-poll request is aborted and nothing is sent
 *               any more; the server can only notice through its ping timeout.
 *   "blackhole" nothing leaves the client and nothing it receives is processed, but the
 *               TCP connection stays open: a vanished network / sleeping laptop. The
 *               server notices only through its ping timeout (pingInterval + pingTimeout).
 * Limitation: a real vanished network also stops TCP ACKs, keepalives and FIN; here the
 * kernel still ACKs the bytes the server sends (until its receive buffer is full), and
 * in "blackhole" mode the TCP connection stays open until "forget" or the driver exits
 * (the client library still reports its own "ping timeout" disconnect locally).
 */

const readline = require("node:readline");
const { performance } = require("node:perf_hooks");

let io;
let clientVersion = "unknown";
try {
  io = require("socket.io-client").io;
  clientVersion = require("socket.io-client/package.json").version;
} catch (err) {
  process.stdout.write(
    JSON.stringify({
      type: "fatal",
      message:
        "cannot load socket.io-client (" + err.message + "); run `npm ci` in tests/e2e/js",
    }) + "\n",
  );
  process.exit(3);
}

/** name -> {socket, name, dropped} */
const clients = new Map();

function write(record) {
  let line;
  try {
    line = JSON.stringify(record);
  } catch (err) {
    line = JSON.stringify({ type: "log", level: "error", message: "unserialisable record: " + err.message });
  }
  process.stdout.write(line + "\n");
}

function log(level, message) {
  write({ type: "log", level, message: String(message) });
}

/* ---- value encoding: Buffers <-> {"$binary": base64} -------------------------------- */

function toJson(value, depth = 0) {
  if (depth > 64) return null;
  if (value === undefined) return null;
  if (value === null || typeof value !== "object") {
    if (typeof value === "bigint") return value.toString();
    if (typeof value === "function") return { $function: true };
    return value;
  }
  if (Buffer.isBuffer(value)) return { $binary: value.toString("base64") };
  if (value instanceof ArrayBuffer) return { $binary: Buffer.from(value).toString("base64") };
  if (ArrayBuffer.isView(value)) {
    return { $binary: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64") };
  }
  if (value instanceof Error) return { name: value.name, message: value.message };
  if (Array.isArray(value)) return value.map((v) => toJson(v, depth + 1));
  const out = {};
  for (const [k, v] of Object.entries(value)) out[k] = toJson(v, depth + 1);
  return out;
}

function fromJson(value) {
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map(fromJson);
  const keys = Object.keys(value);
  if (keys.length === 1 && keys[0] === "$binary" && typeof value.$binary === "string") {
    return Buffer.from(value.$binary, "base64");
  }
  const out = {};
  for (const k of keys) out[k] = fromJson(value[k]);
  return out;
}

/* ---- events ------------------------------------------------------------------------ */

function emitRecord(name, event, args) {
  const jsonArgs = args.map((a) => toJson(a));
  write({
    type: "event",
    client: name,
    event,
    data: jsonArgs.length > 0 ? jsonArgs[0] : null,
    args: jsonArgs,
    ts: Date.now(),
    hr: performance.now(),
  });
}

function transportName(socket) {
  const engine = socket.io && socket.io.engine;
  return engine && engine.transport ? engine.transport.name : null;
}

function attach(entry) {
  const { socket, name } = entry;
  socket.on("connect", () => {
    // recovered: the client kept its session (connection-state recovery, v4.6+).
    emitRecord(name, "connect", [
      { id: socket.id, transport: transportName(socket), recovered: Boolean(socket.recovered) },
    ]);
  });
  // The engine.io connection opens (and may upgrade) before the Socket.IO "connect".
  socket.io.on("open", () => {
    const engine = socket.io.engine;
    emitRecord(name, "$open", [{ transport: transportName(socket) }]);
    if (engine && !engine.__harnessUpgradeHook) {
      engine.__harnessUpgradeHook = true;
      engine.on("upgrade", (transport) => {
        emitRecord(name, "$upgrade", [{ transport: transport && transport.name }]);
      });
    }
  });
  socket.on("disconnect", (reason, description) => {
    let desc = null;
    if (description !== undefined && description !== null) {
      desc = description instanceof Error ? { message: description.message } : toJson(description);
      if (desc && typeof desc === "object" && desc.description instanceof Error) {
        desc.description = desc.description.message;
      }
    }
    emitRecord(name, "disconnect", [{ reason: String(reason), description: desc }]);
  });
  socket.on("connect_error", (err) => {
    emitRecord(name, "connect_error", [
      {
        message: err && err.message ? err.message : String(err),
        data: err && err.data !== undefined ? toJson(err.data) : null,
        type: err && err.type ? String(err.type) : null,
      },
    ]);
  });
  socket.onAny((event, ...args) => {
    // A server-side emit that wants an ack passes a callback last; we don't answer it.
    const values = args.filter((a) => typeof a !== "function");
    const wantsAck = values.length !== args.length;
    emitRecord(name, event, wantsAck ? values.concat([{ $wantsAck: true }]) : values);
  });
  socket.io.on("reconnect_attempt", (attempt) => emitRecord(name, "$reconnect_attempt", [{ attempt }]));
  socket.io.on("reconnect", (attempt) => emitRecord(name, "$reconnect", [{ attempt }]));
}

/* ---- commands ---------------------------------------------------------------------- */

class CommandError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

function needString(cmd, field) {
  const v = cmd[field];
  if (typeof v !== "string" || v.length === 0) {
    throw new CommandError("BAD_COMMAND", `"${field}" must be a non-empty string`);
  }
  return v;
}

function getClient(cmd) {
  const name = needString(cmd, "client");
  const entry = clients.get(name);
  if (!entry) throw new CommandError("NO_SUCH_CLIENT", `no client named ${JSON.stringify(name)}`);
  return entry;
}

function timeoutMs(cmd, dflt) {
  const t = cmd.timeoutMs;
  if (t === undefined || t === null) return dflt;
  if (typeof t !== "number" || !(t >= 0)) throw new CommandError("BAD_COMMAND", '"timeoutMs" must be a number >= 0');
  return t;
}

function emitArgs(cmd) {
  if (Array.isArray(cmd.args)) return cmd.args.map(fromJson);
  if ("data" in cmd) return [fromJson(cmd.data)];
  return [];
}

function status(entry) {
  const s = entry.socket;
  return {
    client: entry.name,
    connected: s.connected,
    active: s.active,
    id: s.id || null,
    recovered: Boolean(s.recovered),
    // The recovery id from the CONNECT answer and the last offset received (private
    // members of socket.io-client 4.6+, read here only so tests can replay a claim).
    pid: s._pid || null,
    offset: s._lastOffset || null,
    transport: transportName(s),
    dropped: entry.dropped,
  };
}

async function cmdConnect(cmd) {
  const name = needString(cmd, "client");
  const url = needString(cmd, "url");
  const old = clients.get(name);
  if (old) {
    if (old.socket.connected || old.socket.active) {
      throw new CommandError("CLIENT_EXISTS", `client ${JSON.stringify(name)} is still connected`);
    }
    clients.delete(name);
  }
  const options = Object.assign(
    { reconnection: false, forceNew: true },
    cmd.options && typeof cmd.options === "object" ? fromJson(cmd.options) : {},
  );
  const socket = io(url, options);
  const entry = { name, socket, dropped: null, raw: null };
  clients.set(name, entry);
  attach(entry);
  if (cmd.wait === false) return status(entry);

  const limit = timeoutMs(cmd, 10000);
  await new Promise((resolve, reject) => {
    let timer = null;
    const cleanup = () => {
      clearTimeout(timer);
      socket.off("connect", onConnect);
      socket.off("connect_error", onError);
    };
    const onConnect = () => {
      cleanup();
      resolve();
    };
    const onError = (err) => {
      // With reconnection on, the library retries by itself (unless the server refused).
      if (socket.io.reconnection() && socket.active) return;
      cleanup();
      reject(new CommandError("CONNECT_ERROR", err && err.message ? err.message : String(err)));
    };
    timer = setTimeout(() => {
      cleanup();
      reject(new CommandError("CONNECT_TIMEOUT", `not connected after ${limit} ms`));
    }, limit);
    if (socket.connected) onConnect();
    else {
      socket.on("connect", onConnect);
      socket.on("connect_error", onError);
    }
  });
  return status(entry);
}

async function cmdEmit(cmd) {
  const entry = getClient(cmd);
  const event = needString(cmd, "event");
  const args = emitArgs(cmd);
  if (!cmd.ack) {
    entry.socket.emit(event, ...args);
    return { sent: true, connected: entry.socket.connected };
  }
  const limit = timeoutMs(cmd, 5000);
  try {
    const reply = await new Promise((resolve, reject) => {
      entry.socket.timeout(limit).emit(event, ...args, (err, ...ackArgs) => {
        if (err) reject(err);
        else resolve(ackArgs);
      });
    });
    return { args: reply.map((a) => toJson(a)) };
  } catch (err) {
    throw new CommandError("ACK_TIMEOUT", `no ack for ${JSON.stringify(event)} within ${limit} ms`);
  }
}

function cmdDisconnect(cmd) {
  const entry = getClient(cmd);
  entry.socket.disconnect();
  return status(entry);
}

function makeInert(engine, transport) {
  // Nothing may be written any more: no pong, no CLOSE packet, no DISCONNECT.
  const noop = () => {};
  transport.doClose = noop;
  transport.write = noop;
  transport.doWrite = noop;
  transport._poll = noop;
  transport.doPoll = noop;
  engine.flush = noop;
  engine._sendPacket = noop;
}

function sever(entry, mode) {
  const socket = entry.socket;
  const manager = socket.io;
  manager.reconnection(false);
  const engine = manager.engine;
  const transport = engine && engine.transport;
  if (!transport || !socket.connected) {
    throw new CommandError("NOT_CONNECTED", "client is not connected");
  }
  const tname = transport.name;
  if (mode === "reset") {
    if (tname === "websocket") {
      const raw = transport.ws && transport.ws._socket;
      makeInert(engine, transport);
      if (raw && typeof raw.resetAndDestroy === "function") raw.resetAndDestroy();
      else if (raw) raw.destroy();
      // ws emits "close" (code 1006) -> transport close -> Socket.IO "disconnect".
      return { mode, transport: tname };
    }
    // polling: abort the in-flight long-poll; the engine is closed locally.
    const req = transport.pollXhr;
    makeInert(engine, transport);
    if (req && req._xhr) {
      const xhr = req._xhr;
      xhr.onreadystatechange = () => {};
      try {
        xhr.abort();
      } catch (err) {
        log("warn", "abort failed: " + err.message);
      }
    }
    engine._onClose("transport close", { description: "connection dropped by test harness" });
    return { mode, transport: tname };
  }
  if (mode === "blackhole") {
    if (tname === "websocket") {
      const raw = transport.ws && transport.ws._socket;
      if (raw) {
        entry.raw = raw;
        raw.pause();
        raw.removeAllListeners("data");
        raw.write = (_chunk, encoding, cb) => {
          const done = typeof encoding === "function" ? encoding : cb;
          if (typeof done === "function") process.nextTick(done);
          return true;
        };
      }
    } else {
      const req = transport.pollXhr;
      if (req) req.abort(); // stop listening to it, keep the HTTP request open
    }
    makeInert(engine, transport);
    transport.onData = () => {};
    transport.onPacket = () => {};
    return { mode, transport: tname };
  }
  throw new CommandError("BAD_COMMAND", `unknown close mode ${JSON.stringify(mode)}`);
}

function cmdClose(cmd) {
  const entry = getClient(cmd);
  const mode = cmd.mode === undefined ? "reset" : cmd.mode;
  const result = sever(entry, mode);
  entry.dropped = mode;
  return result;
}

function cmdRawSend(cmd) {
  const entry = getClient(cmd);
  const level = cmd.level === undefined ? "engine" : cmd.level;
  if (typeof cmd.data !== "string") throw new CommandError("BAD_COMMAND", '"data" must be a string');
  const payload = cmd.binary ? Buffer.from(cmd.data, "base64") : cmd.data;
  const engine = entry.socket.io.engine;
  if (!engine || !entry.socket.connected) throw new CommandError("NOT_CONNECTED", "client is not connected");
  if (level === "engine") {
    engine.write(payload);
    return { sent: true, transport: engine.transport.name };
  }
  if (level === "transport") {
    const transport = engine.transport;
    if (transport.name !== "websocket" || !transport.ws) {
      throw new CommandError("UNSUPPORTED", "level 'transport' needs the websocket transport");
    }
    transport.ws.send(payload);
    return { sent: true, transport: transport.name };
  }
  throw new CommandError("BAD_COMMAND", `unknown level ${JSON.stringify(level)}`);
}

function cmdForget(cmd) {
  const entry = getClient(cmd);
  if (entry.socket.connected || entry.socket.active) entry.socket.disconnect();
  entry.socket.removeAllListeners();
  entry.socket.offAny();
  if (entry.raw) entry.raw.destroy();
  clients.delete(entry.name);
  return { forgotten: entry.name };
}

let shuttingDown = false;
function shutdown(code) {
  if (shuttingDown) return;
  shuttingDown = true;
  for (const entry of clients.values()) {
    try {
      if (!entry.dropped) entry.socket.disconnect();
    } catch (err) {
      // ignore: exiting anyway
    }
  }
  // Give the disconnect packets a moment to leave, then exit.
  setTimeout(() => process.exit(code), 100);
}

const handlers = {
  connect: cmdConnect,
  emit: cmdEmit,
  disconnect: cmdDisconnect,
  close: cmdClose,
  drop: cmdClose,
  rawSend: cmdRawSend,
  status: (cmd) => status(getClient(cmd)),
  list: () => Array.from(clients.values()).map(status),
  forget: cmdForget,
  ping: () => ({ pong: true, clients: clients.size }),
  shutdown: () => {
    setImmediate(() => shutdown(0));
    return { shuttingDown: true };
  },
};

async function handleLine(line) {
  if (!line.trim()) return;
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (err) {
    write({ type: "reply", cmdId: null, ok: false, error: { code: "BAD_JSON", message: err.message } });
    return;
  }
  const cmdId = cmd && typeof cmd === "object" && "cmdId" in cmd ? cmd.cmdId : null;
  try {
    if (!cmd || typeof cmd !== "object" || Array.isArray(cmd)) {
      throw new CommandError("BAD_COMMAND", "a command must be a JSON object");
    }
    const handler = Object.prototype.hasOwnProperty.call(handlers, cmd.cmd) ? handlers[cmd.cmd] : null;
    if (!handler) throw new CommandError("UNKNOWN_COMMAND", `unknown cmd ${JSON.stringify(cmd.cmd)}`);
    const result = await handler(cmd);
    write({ type: "reply", cmdId, ok: true, result: toJson(result) });
  } catch (err) {
    write({
      type: "reply",
      cmdId,
      ok: false,
      error: { code: err && err.code ? String(err.code) : "INTERNAL", message: err && err.message ? err.message : String(err) },
    });
  }
}

process.on("uncaughtException", (err) => log("error", "uncaught: " + (err && err.stack ? err.stack : err)));
process.on("unhandledRejection", (err) => log("error", "unhandled rejection: " + (err && err.stack ? err.stack : err)));
process.on("SIGTERM", () => shutdown(0));
process.on("SIGINT", () => shutdown(0));
process.stdout.on("error", () => process.exit(0)); // reader gone

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on("line", (line) => {
  handleLine(line);
});
rl.on("close", () => shutdown(0));

write({ type: "ready", pid: process.pid, node: process.version, socketIoClient: clientVersion });
