// One client process of bench/realtime: many socket.io-client 4 sockets (run with node 20).
//
//   BENCH_TOKEN=... node bench/realtime_client.mjs URL ROOMS SOCKETS
// ROOMS is a comma-separated list; socket i joins ROOMS[i % len]. No BENCH_TOKEN: no auth
// (the token is passed in the environment, never on the command line).
// Reads commands on stdin, one per line; answers each with one JSON line on stdout:
//   connect     open every socket (websocket only, no reconnection)   {connected, failed, ms}
//   subscribe   every socket emits subscribe {topic} at once            {ok, refused, ms}
//               (refused: {code: count}; ms: until the last ack)
//   reset       forget what was received                               {}
//   report      {received, unique (socket, room, seq) triples, latencies: {p50, p99, max} (ms), conflated, disconnects,
//               last_at (ms since the epoch of the last receipt)}
//   close       disconnect everything and exit
// Payloads are JSON {seq, t}: t is the publish time in ms since the epoch (the same clock).
import readline from "node:readline";
import { createRequire } from "node:module";

// socket.io-client from the test harness's node_modules ($HEARTH_JS_DIR, set by bench/realtime)
const require = createRequire(`${process.env.HEARTH_JS_DIR}/package.json`);
const { io } = require("socket.io-client");

const [url, roomList, countText] = process.argv.slice(2);
const token = process.env.BENCH_TOKEN ?? "";
const rooms = roomList.split(",");
const count = Number(countText);
const sockets = [];
let latencies = [];
let received = 0;
let conflated = 0;
let disconnects = 0;
let seen = new Set();
let lastAt = null;
const now = () => performance.timeOrigin + performance.now();
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

function take(index, item) {
  const t = now();
  const payload = item.payload;
  received += 1;
  lastAt = t;
  if (item.conflated) conflated += item.conflated;
  if (payload && typeof payload.t === "number") {
    latencies.push(t - payload.t);
    seen.add(`${index}|${item.room}|${payload.seq}`);
  }
}

function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function connectAll() {
  const started = now();
  let connected = 0;
  let failed = 0;
  return new Promise((resolve) => {
    const done = () => {
      if (connected + failed === count) resolve({ connected, failed, ms: now() - started });
    };
    for (let i = 0; i < count; i++) {
      const socket = io(url, {
        auth: token ? { token } : {},
        transports: ["websocket"],
        reconnection: false,
        timeout: 60000,
      });
      socket.on("connect", () => { connected += 1; done(); });
      socket.on("connect_error", () => { failed += 1; done(); });
      socket.on("disconnect", (reason) => { if (reason !== "io client disconnect") disconnects += 1; });
      socket.on("message", (item) => take(i, item));
      socket.on("messages", (items) => items.forEach((item) => take(i, item)));
      sockets.push([socket, rooms[i % rooms.length]]);
    }
  });
}

function subscribeAll() {
  const started = now();
  let ok = 0;
  const refused = {};
  let answered = 0;
  return new Promise((resolve) => {
    for (const [socket, room] of sockets) {
      socket.timeout(60000).emit("subscribe", { topic: room }, (err, ack) => {
        answered += 1;
        if (!err && ack && ack.ok) ok += 1;
        else {
          const code = err ? "timeout" : (ack?.error?.code ?? "unknown");
          refused[code] = (refused[code] ?? 0) + 1;
        }
        if (answered === sockets.length) resolve({ ok, refused, ms: now() - started });
      });
    }
  });
}

const lines = readline.createInterface({ input: process.stdin });
lines.on("line", async (line) => {
  const command = line.trim();
  if (command === "connect") out(await connectAll());
  else if (command === "subscribe") out(await subscribeAll());
  else if (command === "reset") {
    latencies = []; received = 0; conflated = 0; seen = new Set(); lastAt = null;
    out({});
  } else if (command === "report") {
    const sorted = Float64Array.from(latencies).sort();
    out({
      received,
      unique: seen.size,
      latencies: { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: percentile(sorted, 100) },
      conflated,
      disconnects,
      last_at: lastAt,
    });
  } else if (command === "close") {
    for (const [socket] of sockets) socket.disconnect();
    lines.close();
    setTimeout(() => process.exit(0), 100);
  }
});
out({ ready: true });
