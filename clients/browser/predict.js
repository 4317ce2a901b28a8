// predict.js: the own player is predicted, not interpolated. Why: drawn
// like the others it would answer a key press only after a round trip plus
// the interpolation delay (~100 ms even on a LAN), which feels sluggish; and
// arena's rules are fully specified (PROTOCOL.md §7) and players do not
// collide with each other, so the client can run the same move the server
// will run and be right nearly always.
//
// Client-side prediction with server reconciliation (Quake/Source, Gabriel
// Gambetta's "Fast-Paced Multiplayer"), on the server's own rule (§5.3, §7):
// an input is applied at the first tick after it arrives, and its direction
// is then the player's velocity, tick after tick, until the next input is
// applied. So an input moves the player for as many ticks as pass until the
// next one is applied: tick_rate / input rate on average (1.67 at 10 ticks/s
// and 6 inputs a second), not a fixed whole number of ticks per input.
//
// The prediction replays exactly that: from the server's position in the
// newest snapshot (tick T, after input `ack`), tick by tick, first with the
// acknowledged input's velocity, each input not yet acknowledged taking over
// at the tick it will be applied, up to the tick an input sent now would be
// applied. An input sent at local time s is applied at tick
// ceil(s / tickMs + lead). `lead` is measured: when a snapshot first
// acknowledges an input, tick − s / tickMs is at least the lead (the input
// was applied at that tick or before), and the lowest of the last LEAD_SAMPLES
// such bounds is kept (it follows a latency that changes). Until an input has
// been acknowledged, the snapshots' arrival stands in (tick − arrival / tickMs:
// no round trip counted, so the first key press may be corrected once).
//
// The screen shows the predicted position between the two ticks around that
// time. When something moves the prediction (a snapshot correcting it, an
// input taking effect within the tick being shown) the difference is blended
// out over ~100 ms instead of jumping, unless it is too large to be an error.

const SMOOTHING_MS = 100;
const SNAP_DISTANCE = 60; // world units: past this a correction is a jump, not a drift
const LEAD_SAMPLES = 32; // lead bounds kept: about a second of inputs at 30 a second
const MAX_TICKS_AHEAD = 64; // never simulate further past the newest snapshot than this
const EPSILON = 1e-6; // ticks: a bound met exactly is not pushed to the next tick by rounding

export class Predictor {
  constructor(rules, tickRate) {
    this.rules = rules;
    this.tickMs = 1000 / tickRate;
    this.base = null; // {tick, x, y}: the server's position in the newest snapshot
    this.velocity = [0, 0]; // the acknowledged input's direction: the velocity at base.tick
    this.pending = []; // [{seq, dx, dy, sentAt}] sent and not yet acknowledged, in seq order
    this.lead = null; // ticks: an input sent at s (ms) is applied at tick ceil(s / tickMs + lead)
    this.leadBounds = []; // the last LEAD_SAMPLES bounds from acknowledged inputs
    this.error = { x: 0, y: 0 }; // shown offset still being blended out
    this.errorAt = 0;
  }

  /** An input just sent (before its seq is acknowledged). */
  inputSent(seq, dx, dy, nowMs) {
    const before = this.prediction(nowMs);
    this.pending.push({ seq, dx, dy, sentAt: nowMs });
    this._blend(before, nowMs);
  }

  /** A snapshot: the own player at (x, y) on tick `tick`, after input `ack` (null: none yet). */
  reconcile(tick, ack, x, y, nowMs) {
    const before = this.prediction(nowMs);
    let acked = null;
    if (ack !== null && ack !== undefined) {
      while (this.pending.length > 0 && this.pending[0].seq <= ack) acked = this.pending.shift();
    }
    if (acked) {
      this.velocity = [acked.dx, acked.dy];
      // First acknowledged here: applied at `tick` or before (snapshots may skip ticks).
      if (acked.seq === ack) this._bound(tick - acked.sentAt / this.tickMs);
    }
    if (this.leadBounds.length === 0) {
      const arrival = tick - nowMs / this.tickMs;
      if (this.lead === null || arrival < this.lead) this.lead = arrival;
    }
    this.base = { tick, x, y };
    this._blend(before, nowMs);
  }

  /** Where to draw the own player at nowMs, or null before its first snapshot. */
  position(nowMs) {
    const raw = this.prediction(nowMs);
    if (!raw) return null;
    this._decay(nowMs);
    return { x: raw.x + this.error.x, y: raw.y + this.error.y };
  }

  /**
   * The predicted position at nowMs without the blending: the server's position, by its
   * rules, at the tick an input sent at nowMs would be applied (fractional: between the
   * two ticks around it). Null before the first snapshot.
   */
  prediction(nowMs) {
    const base = this.base;
    if (!base) return null;
    const target = nowMs / this.tickMs + this.lead;
    const ticks = Math.floor(target) - base.tick; // whole ticks past the snapshot
    if (ticks < 0) return { x: base.x, y: base.y };
    const fraction = ticks < MAX_TICKS_AHEAD ? target - Math.floor(target) : 0;
    const steps = Math.min(ticks, MAX_TICKS_AHEAD) + (fraction > 0 ? 1 : 0);
    let [dx, dy] = this.velocity;
    let x = base.x;
    let y = base.y;
    let prevX = x;
    let prevY = y;
    let next = 0; // the first pending input not yet in effect
    for (let tick = base.tick + 1; tick <= base.tick + steps; tick += 1) {
      while (next < this.pending.length && this.appliedAt(this.pending[next]) <= tick) {
        ({ dx, dy } = this.pending[next]);
        next += 1;
      }
      prevX = x;
      prevY = y;
      [x, y] = this.rules.step(x, y, dx, dy);
    }
    if (fraction === 0) return { x, y };
    return { x: prevX + (x - prevX) * fraction, y: prevY + (y - prevY) * fraction };
  }

  /** The tick at which the server will apply a pending input (after the newest snapshot). */
  appliedAt(input) {
    const tick = Math.ceil(input.sentAt / this.tickMs + this.lead - EPSILON);
    return Math.max(this.base.tick + 1, tick);
  }

  get unacknowledged() {
    return this.pending.length;
  }

  _bound(bound) {
    this.leadBounds.push(bound);
    if (this.leadBounds.length > LEAD_SAMPLES) this.leadBounds.shift();
    this.lead = Math.min(...this.leadBounds);
  }

  /** The prediction moved from `before`: show the move as an offset that fades out. */
  _blend(before, nowMs) {
    if (!before) return;
    this._decay(nowMs);
    const after = this.prediction(nowMs);
    const ex = this.error.x + before.x - after.x;
    const ey = this.error.y + before.y - after.y;
    this.error = Math.hypot(ex, ey) > SNAP_DISTANCE ? { x: 0, y: 0 } : { x: ex, y: ey };
  }

  _decay(nowMs) {
    const k = Math.exp(-Math.max(0, nowMs - this.errorAt) / SMOOTHING_MS);
    this.error = { x: this.error.x * k, y: this.error.y * k };
    this.errorAt = nowMs;
  }
}
