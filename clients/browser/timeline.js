// timeline.js: other players are drawn slightly in the past, between the two
// snapshots around "now minus an interpolation delay": the Source engine's
// entity interpolation (cl_interp) and Gaffer On Games' snapshot
// interpolation. Movement then looks smooth at any frame rate, and a
// snapshot that arrives a little late changes nothing, at the price of
// showing others ~2 snapshot intervals old.
//
// Each snapshot is placed at its server time, tick / tick_rate (tick numbers
// are server-wide and may jump after an overrun, §5.7: time follows them). The
// offset from the local clock to server time is the lower envelope of
// (arrival − server time): the fastest deliveries. How late snapshots arrive
// above that envelope (peak-held, decaying) sets the delay: one snapshot
// interval plus that lateness, at least two intervals, at most 500 ms, eased
// so the render time never jumps.

const MAX_DELAY_MS = 500;
const KEEP = 64; // snapshots kept: two seconds at 30 per second

export class Timeline {
  constructor(tickRate, snapshotRate) {
    this.tickMs = 1000 / tickRate;
    this.intervalMs = 1000 / snapshotRate;
    this.snapshots = [];
    this.offset = null;
    this.lateness = 0;
    this.delay = 2 * this.intervalMs;
    this.lastSampleAt = null;
  }

  /** A snapshot's parsed state, received at arrivalMs (performance.now()). */
  push(tick, state, arrivalMs) {
    const newest = this.snapshots.at(-1);
    if (newest && tick <= newest.tick) return; // TCP keeps order; guard anyway
    const time = tick * this.tickMs;
    const sample = arrivalMs - time;
    if (this.offset === null || sample < this.offset) {
      this.offset = sample;
    } else {
      this.offset += (sample - this.offset) * 0.01; // follows a slowly growing latency
    }
    const late = sample - this.offset;
    this.lateness = late > this.lateness ? late : this.lateness + (late - this.lateness) * 0.02;
    this.snapshots.push({ tick, time, ...state });
    if (this.snapshots.length > KEEP) this.snapshots.shift();
  }

  get targetDelay() {
    const wanted = this.intervalMs + this.lateness + 5;
    return Math.min(MAX_DELAY_MS, Math.max(2 * this.intervalMs, wanted));
  }

  /** The interpolated view at local time nowMs: {players: Map id → {x, y}, gems} or null. */
  sample(nowMs) {
    const list = this.snapshots;
    if (list.length === 0) return null;
    const elapsed = this.lastSampleAt === null ? 0 : nowMs - this.lastSampleAt;
    this.lastSampleAt = nowMs;
    this.delay += (this.targetDelay - this.delay) * Math.min(1, elapsed / 1000);
    const renderTime = nowMs - this.offset - this.delay;
    const newest = list.at(-1);
    if (renderTime >= newest.time) {
      return { players: newest.players, gems: newest.gems, tick: newest.tick };
    }
    let i = Math.max(0, list.length - 2);
    while (i > 0 && list[i].time > renderTime) i -= 1;
    const a = list[i];
    const b = list[i + 1] ?? a;
    if (renderTime <= a.time) return { players: a.players, gems: a.gems, tick: a.tick };
    const alpha = (renderTime - a.time) / (b.time - a.time);
    const players = new Map();
    for (const [id, to] of b.players) {
      const from = a.players.get(id);
      players.set(
        id,
        from
          ? { x: from.x + (to.x - from.x) * alpha, y: from.y + (to.y - from.y) * alpha }
          : { x: to.x, y: to.y }, // joined between a and b
      );
    }
    return { players, gems: a.gems, tick: a.tick + (b.tick - a.tick) * alpha };
  }
}
