// Colyseus 0.18 running arena's rules (protocol/PROTOCOL.md §7), for bench/versus.py.
//
// A port of gameserver/games/arena.py, line for line: same constants, same
// spawn rule, same axis-separated moves and disc/wall test, same gem rule and
// order of operations, positions kept in floats and published as integers in
// 1/SCALE units (round half to even, as Python's round()). Inputs are queued
// and applied at the next tick in arrival order, as our server does (§5.3).
// Rooms of 50, 30 Hz simulation and patches. The one difference: spawn spots
// come from Math.random, not a seeded Mersenne Twister (same distribution).
//
// Usage: node server.js PORT. Prints "listening ws://127.0.0.1:PORT/" when ready.
// GET /healthz: pid, players, rooms, tick counters and durations in the form of
// our server's /healthz ("ticks": total, p50_ms, p99_ms, max_ms of the worst
// room). A tick's duration here = the simulation step + the patch broadcast that
// follows it (encoding + a send to each client), which is what our tick covers.
"use strict";

const { Server, Room } = require("@colyseus/core");
const { WebSocketTransport } = require("@colyseus/ws-transport");
const { schema, t } = require("@colyseus/schema");

const WIDTH = 1000;
const HEIGHT = 600;
const SCALE = 10;
const SPEED = 200.0;
const PLAYER_RADIUS = 12.0;
const GEM_RADIUS = 8.0;
const GEM_COUNT = 12;
const WALLS = [
  [180, 120, 140, 40],
  [680, 120, 140, 40],
  [180, 440, 140, 40],
  [680, 440, 140, 40],
  [470, 220, 60, 160],
];
const WALL_EDGES = WALLS.map(([x, y, w, h]) => [x, y, x + w, y + h]);
const TICK_RATE = 30;
const ROOM_SIZE = 50;
const WINDOW = 1024; // recent tick durations kept per room, as gameserver/tick.py

function blocked(x, y, r = PLAYER_RADIUS) {
  if (x < r || y < r || x > WIDTH - r || y > HEIGHT - r) return true;
  const r2 = r * r;
  for (const [left, top, right, bottom] of WALL_EDGES) {
    if (left - r < x && x < right + r && top - r < y && y < bottom + r) {
      const nx = x < left ? left : x > right ? right : x;
      const ny = y < top ? top : y > bottom ? bottom : y;
      if ((x - nx) * (x - nx) + (y - ny) * (y - ny) < r2) return true;
    }
  }
  return false;
}

function roundHalfEven(v) {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function axis(data, key) {
  const value = data[key] === undefined ? 0 : data[key];
  if (typeof value !== "number" || !Number.isFinite(value)) return null;
  if (!(value >= -1 && value <= 1)) return null;
  return value;
}

/** Arena's rules (gameserver/games/arena.py's Arena), apart from Colyseus: check_rules.mjs
 *  runs them against the Python original. ``random`` is the generator (Math.random). */
class ArenaRules {
  constructor(random = Math.random, onGem = () => {}) {
    this.random = random;
    this.onGem = onGem; // (id, [x, y] or null): a gem appeared or was taken
    this.avatars = new Map(); // key -> {x, y, dx, dy, score, inputs}
    this.gems = new Map(); // id -> [x, y]
    this.nextGem = 1;
    for (let i = 0; i < GEM_COUNT; i++) this.spawnGem();
  }

  uniform(a, b) {
    return a + (b - a) * this.random(); // Python's random.uniform
  }

  freeSpot(radius) {
    for (let i = 0; i < 1000; i++) {
      const x = this.uniform(radius, WIDTH - radius);
      const y = this.uniform(radius, HEIGHT - radius);
      if (!blocked(x, y, radius)) return [x, y];
    }
    return [WIDTH / 2, radius];
  }

  spawnGem() {
    const id = this.nextGem++;
    this.gems.set(id, this.freeSpot(GEM_RADIUS));
    this.onGem(id, this.gems.get(id));
  }

  join(key) {
    const [x, y] = this.freeSpot(PLAYER_RADIUS);
    const avatar = { x, y, dx: 0, dy: 0, score: 0, inputs: [] };
    this.avatars.set(key, avatar);
    return avatar;
  }

  leave(key) {
    this.avatars.delete(key);
  }

  /** validate_input, when the input arrives: false (dropped) when arena.py refuses it. */
  input(key, data) {
    const avatar = this.avatars.get(key);
    if (!avatar || data === null || typeof data !== "object" || Array.isArray(data)) return false;
    let dx = axis(data, "dx");
    let dy = axis(data, "dy");
    if (dx === null || dy === null) return false;
    const length = Math.hypot(dx, dy);
    if (length > 1.0) {
      dx /= length;
      dy /= length;
    }
    if (avatar.inputs.length < 16) avatar.inputs.push([dx, dy]); // input_queue_depth
    return true;
  }

  /** One tick: the queued inputs (on_input, in order), then step(). */
  tick() {
    for (const avatar of this.avatars.values()) {
      for (const [dx, dy] of avatar.inputs) {
        avatar.dx = dx;
        avatar.dy = dy;
      }
      avatar.inputs.length = 0;
    }
    this.step(1.0 / TICK_RATE);
  }

  step(dt) {
    const reach = (PLAYER_RADIUS + GEM_RADIUS) ** 2;
    const stride = SPEED * dt;
    const gems = this.gems;
    for (const avatar of this.avatars.values()) {
      let x = avatar.x;
      let y = avatar.y;
      if (avatar.dx || avatar.dy) {
        // On the 1/SCALE grid, as arena.py keeps positions (unless that touches a wall).
        const gx = roundHalfEven(x * SCALE) / SCALE;
        const gy = roundHalfEven(y * SCALE) / SCALE;
        if (!blocked(gx, gy)) [x, y] = [gx, gy];
        // Move per axis so a player slides along a wall instead of sticking.
        const nx = roundHalfEven((x + avatar.dx * stride) * SCALE) / SCALE;
        if (!blocked(nx, y)) x = nx;
        const ny = roundHalfEven((y + avatar.dy * stride) * SCALE) / SCALE;
        if (!blocked(x, ny)) y = ny;
        avatar.x = x;
        avatar.y = y;
      }
      let taken = null;
      for (const [gemId, [gx, gy]] of gems) {
        if ((x - gx) * (x - gx) + (y - gy) * (y - gy) <= reach) {
          taken = gemId;
          break;
        }
      }
      if (taken !== null) {
        // at most one gem per player per tick
        avatar.score += 1;
        gems.delete(taken);
        this.onGem(taken, null);
        this.spawnGem();
      }
    }
  }

  /** snapshot(): what our server sends, integers in 1/SCALE units. */
  snapshot() {
    return {
      players: [...this.avatars].map(([k, a]) => [k, scaled(a.x), scaled(a.y), a.score]),
      gems: [...this.gems].map(([id, [x, y]]) => [id, scaled(x), scaled(y)]),
    };
  }
}

function scaled(v) {
  return roundHalfEven(v * SCALE);
}

const Player = schema({ x: t.uint16(), y: t.uint16(), score: t.uint32() }, "Player");
const Gem = schema({ x: t.uint16(), y: t.uint16() }, "Gem");
const ArenaState = schema({ players: t.map(Player), gems: t.map(Gem) }, "ArenaState");

const rooms = new Set();

class ArenaRoom extends Room {
  onCreate() {
    this.maxClients = ROOM_SIZE;
    this.state = new ArenaState();
    this.views = new Map(); // sessionId -> [avatar, Player]
    // The state holds what our snapshot holds: positions as integers in 1/SCALE units.
    this.rules = new ArenaRules(Math.random, (id, spot) => {
      if (spot === null) this.state.gems.delete(String(id));
      else this.state.gems.set(String(id), new Gem({ x: scaled(spot[0]), y: scaled(spot[1]) }));
    });
    this.ticks = 0;
    this.patches = 0;
    this.lastStep = 0;
    this.durations = new Float64Array(WINDOW);
    this.maxDuration = 0;
    this.onMessage("input", (client, message) => this.rules.input(client.sessionId, message?.data));
    this.setSimulationInterval(() => this.tick(), 1000 / TICK_RATE);
    this.patchRate = 1000 / TICK_RATE;
    rooms.add(this);
  }

  onDispose() {
    rooms.delete(this);
  }

  onJoin(client) {
    const avatar = this.rules.join(client.sessionId);
    const view = new Player({ x: scaled(avatar.x), y: scaled(avatar.y), score: 0 });
    this.views.set(client.sessionId, [avatar, view]);
    this.state.players.set(client.sessionId, view);
  }

  onLeave(client) {
    this.rules.leave(client.sessionId);
    this.views.delete(client.sessionId);
    this.state.players.delete(client.sessionId);
  }

  tick() {
    const started = performance.now();
    this.rules.tick();
    for (const [avatar, view] of this.views.values()) {
      view.x = scaled(avatar.x);
      view.y = scaled(avatar.y);
      view.score = avatar.score;
    }
    this.ticks++;
    this.lastStep = performance.now() - started;
  }

  broadcastPatch() {
    const started = performance.now();
    const changed = super.broadcastPatch();
    const duration = this.lastStep + (performance.now() - started);
    this.lastStep = 0;
    this.durations[this.patches % WINDOW] = duration;
    this.patches++;
    if (duration > this.maxDuration) this.maxDuration = duration;
    return changed;
  }
}

function percentile(values, p) {
  if (values.length === 0) return 0;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function health() {
  let total = 0;
  let patches = 0;
  let players = 0;
  let p50 = 0;
  let p99 = 0;
  let max = 0;
  for (const room of rooms) {
    total += room.ticks;
    patches += room.patches;
    players += room.views.size;
    const recent = room.durations.subarray(0, Math.min(room.patches, WINDOW));
    p50 = Math.max(p50, percentile(recent, 50));
    p99 = Math.max(p99, percentile(recent, 99));
    max = Math.max(max, room.maxDuration);
  }
  const cpu = process.cpuUsage();
  const r3 = (v) => Math.round(v * 1000) / 1000;
  return {
    status: "ok",
    pid: process.pid,
    players,
    rooms: rooms.size,
    tick_rate: TICK_RATE,
    snapshot_rate: TICK_RATE,
    ticks: { total, patches, p50_ms: r3(p50), p99_ms: r3(p99), max_ms: r3(max) },
    cpu_s: { user: cpu.user / 1e6, system: cpu.system / 1e6 },
  };
}

module.exports = { ArenaRules };
if (require.main !== module) return;

const port = Number(process.argv[2] || 2567);
const server = new Server({
  transport: new WebSocketTransport(),
  greet: false,
  express: (app) => app.get("/healthz", (req, res) => res.json(health())),
});
server.define("arena", ArenaRoom);
server.listen(port, "127.0.0.1").then(() => {
  console.log(`listening ws://127.0.0.1:${port}/`);
});
