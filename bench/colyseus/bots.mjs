// The lean bot driver of bench/versus.py: the same bots for our server and for Colyseus.
//
//   node bots.mjs --kind ours|colyseus --url URL --clients N [--workers 2]
//                 [--in-flight 20] [--warmup 5] [--window 15] [--ack]
//
// N clients over --workers processes, --in-flight joins at a time (shared out
// over the workers). Each joins an arena (ours: hello with game "arena", which
// seats it; Colyseus: joinOrCreate("arena")), steers like clients/inputs.py (a
// random direction, changed every 0.5-2 s) with an input at 10 Hz from a random
// phase, and answers our server's pings. Neither decodes snapshots or patches:
// frames and bytes are counted, and for ours the snapshot's tick is read from
// its first bytes. Other messages (welcome, ping, events) are decoded.
//
// Lines on stdout, which bench/versus.py reads and times its samples by:
//   JOINED <ok> <failed>    every client has tried to join
//   WINDOW_START            the measured window opens (after --warmup s)
//   WINDOW_END              it closes (with --ack, the bots then wait for a line on stdin)
//   RESULT <json>           the bots' figures over the window
//
// On time: per bot, each snapshot's lateness is its arrival minus its slot on
// a grid fitted to that bot's snapshots in the window (slot = index x period,
// index = the snapshot's tick for ours, its arrival count for Colyseus, whose
// patches carry no tick; period = the bot's mean over the window), less the
// smallest such offset of that bot; on time = lateness <= one interval (1/30 s).
// Jitter: |gap between two consecutive snapshots - 1/30 s|, mean and p99 over all bots.
import { fork } from "node:child_process";
import { createRequire } from "node:module";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { parseArgs } from "node:util";

// ws and @msgpack/msgpack from bench/colyseus, or else from clients/node (./dev setup
// installs that one): our server can be driven without Colyseus installed.
const here = createRequire(import.meta.url);
const clientsNode = createRequire(new URL("../../clients/node/package.json", import.meta.url));
function load(name) {
  try {
    return here(name);
  } catch {
    return clientsNode(name);
  }
}
const { decode, encode } = load("@msgpack/msgpack");
const WebSocket = load("ws");

const RATE = 30;
const INPUT_HZ = 10;
const JITTER_BINS = 2000; // 0.5 ms each, the last one: 1 s and more
const PATCH = 15; // Colyseus Protocol.ROOM_STATE_PATCH, the frame's first byte & 31
// Our snapshots start with fixmap(8) "t" "snapshot" "id" <int> "tick" <int> (protocol/codec.py).
const SNAP = Buffer.from([0x88, 0xa1, 0x74, 0xa8, ...Buffer.from("snapshot"), 0xa2, 0x69, 0x64]);

const { values: opts } = parseArgs({
  options: {
    kind: { type: "string", default: "ours" },
    url: { type: "string" },
    clients: { type: "string", default: "100" },
    workers: { type: "string", default: "2" },
    "in-flight": { type: "string", default: "20" },
    warmup: { type: "string", default: "5" },
    window: { type: "string", default: "15" },
    worker: { type: "boolean", default: false },
    ack: { type: "boolean", default: false },
  },
});

const now = () => performance.now() / 1000;

// msgpack uint at buf[i]: [value, next offset] (positive fixint, uint8/16/32/64).
function readUint(buf, i) {
  const b = buf[i];
  if (b < 0x80) return [b, i + 1];
  if (b === 0xcc) return [buf[i + 1], i + 2];
  if (b === 0xcd) return [buf.readUInt16BE(i + 1), i + 3];
  if (b === 0xce) return [buf.readUInt32BE(i + 1), i + 5];
  if (b === 0xcf) return [Number(buf.readBigUInt64BE(i + 1)), i + 9];
  return [-1, i];
}

function snapshotTick(buf) {
  if (buf.length < 20 || buf.compare(SNAP, 0, SNAP.length, 0, SNAP.length) !== 0) return -1;
  const [, next] = readUint(buf, SNAP.length); // id
  if (buf[next] !== 0xa4) return -1; // "tick"
  return readUint(buf, next + 5)[0];
}

class Bot {
  constructor(index) {
    this.name = `b${index}`;
    this.seq = 0;
    this.changeAt = 0;
    this.dx = 0;
    this.dy = 0;
    this.resetWindow(false);
  }

  resetWindow(measuring) {
    this.measuring = measuring;
    this.frames = 0;
    this.bytes = 0;
    this.arrivals = []; // [time s, index]
  }

  frame(length, index) {
    this.count = (this.count || 0) + 1;
    if (!this.measuring) return;
    this.frames++;
    this.bytes += length;
    this.arrivals.push(now(), index < 0 ? this.count : index);
  }

  nextInput() {
    const t = now();
    if (t >= this.changeAt) {
      const angle = Math.random() * 2 * Math.PI;
      this.dx = Math.round(Math.cos(angle) * 1000) / 1000;
      this.dy = Math.round(Math.sin(angle) * 1000) / 1000;
      this.changeAt = t + 0.5 + 1.5 * Math.random();
    }
    this.seq++;
    return { dx: this.dx, dy: this.dy };
  }

  startInputs(send) {
    this.timer = setTimeout(() => {
      this.timer = setInterval(() => send(this.nextInput()), 1000 / INPUT_HZ);
    }, Math.random() * (1000 / INPUT_HZ));
  }

  /** Adds |gap - 1/RATE| between consecutive frames of the window to ``histogram`` (0.5 ms bins). */
  jitter(histogram) {
    const a = this.arrivals;
    for (let i = 2; i < a.length; i += 2) {
      const off = Math.abs(a[i] - a[i - 2] - 1 / RATE) * 2000;
      histogram[Math.min(histogram.length - 1, Math.floor(off))]++;
    }
  }

  onTime() {
    const a = this.arrivals;
    const n = a.length / 2;
    if (n < 2) return n;
    const period = (a[a.length - 2] - a[0]) / (a[a.length - 1] - a[1]) || 1 / RATE;
    let least = Infinity;
    for (let i = 0; i < a.length; i += 2) least = Math.min(least, a[i] - a[i + 1] * period);
    let onTime = 0;
    for (let i = 0; i < a.length; i += 2) if (a[i] - a[i + 1] * period - least <= 1 / RATE) onTime++;
    return onTime;
  }
}

function joinOurs(bot, url) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    bot.close = () => ws.close(1000);
    ws.on("open", () => ws.send(encode({ t: "hello", version: 1, name: bot.name, game: "arena" })));
    ws.on("error", () => resolve(false));
    ws.on("close", () => {
      bot.closed = true;
      resolve(false);
    });
    ws.on("message", (buf) => {
      const tick = snapshotTick(buf);
      if (tick >= 0) return bot.frame(buf.length, tick);
      const m = decode(buf);
      if (m.t === "ping") ws.send(encode({ t: "pong", nonce: m.nonce }));
      else if (m.t === "welcome" && m.room) {
        bot.startInputs((data) => ws.send(encode({ t: "input", seq: bot.seq, data })));
        resolve(true);
      } else if (m.t === "error") bot.errors = (bot.errors || 0) + 1;
    });
  });
}

async function joinColyseus(bot, url) {
  try {
    const { Client } = here("@colyseus/sdk");
    const room = await new Client(url).joinOrCreate("arena", { name: bot.name });
    const events = room.connection.events;
    const dispatch = events.onmessage;
    events.onmessage = (event) => {
      const data = event.data;
      const first = new Uint8Array(data, 0, 1)[0];
      if ((first & 31) === PATCH) return bot.frame(data.byteLength, -1);
      dispatch(event);
    };
    room.onLeave(() => (bot.closed = true));
    bot.close = () => room.leave();
    bot.startInputs((data) => room.send("input", { seq: bot.seq, data }));
    return true;
  } catch {
    return false;
  }
}

async function worker() {
  const join = opts.kind === "colyseus" ? joinColyseus : joinOurs;
  const lag = monitorEventLoopDelay({ resolution: 10 });
  let bots = [];
  let cpuAt = null;
  let startedAt = 0;
  process.on("disconnect", () => process.exit(0)); // the driver is gone
  process.on("message", async (msg) => {
    if (msg.type === "join") {
      let ok = 0;
      let next = 0;
      bots = Array.from({ length: msg.count }, (_, i) => new Bot(msg.first + i));
      const lane = async () => {
        while (next < bots.length) if (await join(bots[next++], opts.url)) ok++;
      };
      await Promise.all(Array.from({ length: msg.inFlight }, lane));
      process.send({ type: "joined", ok, failed: bots.length - ok });
    } else if (msg.type === "start") {
      for (const bot of bots) bot.resetWindow(true);
      lag.reset();
      lag.enable();
      cpuAt = process.cpuUsage();
      startedAt = now();
      process.send({ type: "started" });
    } else if (msg.type === "stop") {
      const cpu = process.cpuUsage(cpuAt);
      const window = now() - startedAt;
      lag.disable();
      for (const bot of bots) bot.measuring = false;
      const seated = bots.filter((b) => b.seq > 0 && !b.closed).length;
      const jitter = new Array(JITTER_BINS).fill(0);
      for (const bot of bots) bot.jitter(jitter);
      process.send({
        type: "result",
        window_s: window,
        seated,
        frames: bots.reduce((s, b) => s + b.frames, 0),
        bytes: bots.reduce((s, b) => s + b.bytes, 0),
        on_time: bots.reduce((s, b) => s + b.onTime(), 0),
        errors: bots.reduce((s, b) => s + (b.errors || 0), 0),
        cpu_s: (cpu.user + cpu.system) / 1e6,
        lag_p99_ms: lag.percentile(99) / 1e6,
        jitter,
      });
    } else if (msg.type === "exit") {
      for (const bot of bots) {
        clearInterval(bot.timer);
        clearTimeout(bot.timer);
        bot.close?.();
      }
      setTimeout(() => process.exit(0), 500);
    }
  });
}

/** Snapshot jitter (|inter-arrival - 1/RATE|, ms) over every bot: mean and p99. */
function jitterFigures(histograms) {
  const total = new Array(JITTER_BINS).fill(0);
  for (const h of histograms) h.forEach((n, i) => (total[i] += n));
  const count = total.reduce((s, n) => s + n, 0);
  if (!count) return { jitter_mean_ms: null, jitter_p99_ms: null };
  let sum = 0;
  let seen = 0;
  let p99 = null;
  total.forEach((n, i) => {
    sum += n * (i + 0.5) * 0.5;
    seen += n;
    if (p99 === null && seen >= 0.99 * count) p99 = (i + 1) * 0.5;
  });
  return { jitter_mean_ms: Math.round((sum / count) * 100) / 100, jitter_p99_ms: p99 };
}

function gather(children, type) {
  return Promise.all(children.map((c) => new Promise((r) => c.once("message", (m) => m.type === type && r(m)))));
}

const sleep = (s) => new Promise((r) => setTimeout(r, s * 1000));

async function main() {
  const clients = Number(opts.clients);
  const workers = Math.max(1, Math.min(Number(opts.workers), clients));
  const inFlight = Math.max(1, Math.ceil(Number(opts["in-flight"]) / workers));
  const args = ["--worker", "--kind", opts.kind, "--url", opts.url];
  const children = Array.from({ length: workers }, () => fork(new URL(import.meta.url).pathname, args));
  let first = 0;
  const joined = gather(children, "joined");
  children.forEach((child, i) => {
    const count = Math.floor(clients / workers) + (i < clients % workers ? 1 : 0);
    child.send({ type: "join", first, count, inFlight });
    first += count;
  });
  const joins = await joined;
  const ok = joins.reduce((s, m) => s + m.ok, 0);
  console.log(`JOINED ${ok} ${clients - ok}`);
  await sleep(Number(opts.warmup));
  const started = gather(children, "started");
  children.forEach((c) => c.send({ type: "start" }));
  await started;
  console.log("WINDOW_START");
  await sleep(Number(opts.window));
  const results = gather(children, "result");
  children.forEach((c) => c.send({ type: "stop" }));
  const parts = await results;
  console.log("WINDOW_END");
  // The bots stay connected until the caller has sampled the server: one line on stdin.
  if (opts.ack) {
    await new Promise((r) => {
      process.stdin.once("data", r);
      process.stdin.once("end", r); // the caller is gone
    });
  }
  const window = Math.max(...parts.map((p) => p.window_s));
  const sum = (key) => parts.reduce((s, p) => s + p[key], 0);
  const seatedAll = sum("seated");
  const expected = Math.round(RATE * window * seatedAll);
  const result = {
    kind: opts.kind,
    clients,
    joined: ok,
    seated_at_end: seatedAll,
    window_s: Math.round(window * 1000) / 1000,
    frames: sum("frames"),
    expected,
    delivered_pct: expected ? Math.round((1000 * sum("frames")) / expected) / 10 : null,
    on_time: sum("on_time"),
    on_time_pct: expected ? Math.round((1000 * sum("on_time")) / expected) / 10 : null,
    bytes_per_frame: sum("frames") ? Math.round(sum("bytes") / sum("frames")) : null,
    errors: sum("errors"),
    bots_cpu_pct_of_core: Math.round((1000 * sum("cpu_s")) / window) / 10,
    bots_lag_p99_ms: Math.max(...parts.map((p) => p.lag_p99_ms)),
    ...jitterFigures(parts.map((p) => p.jitter)),
  };
  console.log(`RESULT ${JSON.stringify(result)}`);
  children.forEach((c) => c.send({ type: "exit" }));
  await Promise.all(children.map((c) => new Promise((r) => c.once("exit", r))));
  process.exit(0);
}

if (opts.worker) worker();
else main();
