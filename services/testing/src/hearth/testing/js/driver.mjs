// A line-driven socket.io-client 4 for the realtime tests (run with node 20).
//
// Reads JSON commands on stdin, one per line:
//   {"op": "connect", "token": "..."}            open the socket (websocket, no auto-reconnect)
//   {"op": "emit", "id": 1, "event": "subscribe", "data": {...}}   emit with an ack
//   {"op": "close"}                              disconnect and exit
// Writes JSON lines on stdout: {"event": name, "data": ...} for connect, connect_error
// ({message, data}: what the browser sees), disconnect ({reason}), message, messages (a
// burst: the array as received) and revoked;
// {"ack": id, "data": ...} for each ack ({"timeout": true} when none came in 10 s);
// {"event": "ready"} once, when it reads commands (node and socket.io-client are loaded).
import readline from "node:readline";
import { io } from "socket.io-client";

const url = process.argv[2];
let socket = null;
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

function connect(token) {
  socket = io(url, {
    auth: token === null ? {} : { token },
    transports: ["websocket"],
    reconnection: false,
  });
  socket.on("connect", () => out({ event: "connect", data: { id: socket.id } }));
  socket.on("connect_error", (err) =>
    out({ event: "connect_error", data: { message: err.message, data: err.data ?? null } }),
  );
  socket.on("disconnect", (reason) => out({ event: "disconnect", data: { reason } }));
  for (const name of ["message", "messages", "revoked"]) {
    socket.on(name, (data) => out({ event: name, data }));
  }
}

const lines = readline.createInterface({ input: process.stdin });
lines.on("line", (line) => {
  const command = JSON.parse(line);
  if (command.op === "connect") {
    connect(command.token);
  } else if (command.op === "emit") {
    socket.timeout(10000).emit(command.event, command.data, (err, ack) => {
      out({ ack: command.id, data: err ? { timeout: true } : ack });
    });
  } else if (command.op === "close") {
    lines.close();
  }
});
out({ event: "ready", data: null });
lines.on("close", () => {
  if (socket) socket.disconnect();
  process.exit(0);
});
