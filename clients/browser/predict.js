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
// at the tick it will be applied. An input sent at local time s is foreseen to
// be applied at tick ceil(s / tickMs + lead).
//
// `lead` is measured: when a snapshot first acknowledges an input sent at s,
// tick − s / tickMs is at least the lead (the input was applied at that tick
// or before). Standing still with nothing pending (when nothing drawn depends
// on it) the lead is set to the lowest of the last LEAD_SAMPLES such bounds,
// or before any input was acknowledged, to the snapshots' arrival (tick −
// arrival / tickMs, lowest seen: the way down) plus the server's RTT
// (snapshot.rtt_us: the way up); it was arrival alone, the round trip left
// out, which made the first move after every join crawl, then surge.
//
// The screen shows the server's position at the continuous tick
// now / tickMs + shown − 1, between the two ticks around it, where `shown` is
// the lead less a margin: twice the round trip's jitter (snapshot.jitter_us;
// FIRST_MARGIN ticks before the first RTT; at most MAX_MARGIN). Every tick
// drawn is then one the inputs already sent decide, even an input up to the
// margin faster than foreseen: a release never shows a step the server will
// not take. (Drawing partway into the next tick at the held speed, and pulling
// back when a stop cancelled it, was the slide-back on every release.) A press
// shows within 1 + margin ticks of being sent.
//
// A move from standing still is foreseen at the lead. If a snapshot shows it
// applied at another tick (one past its foreseen tick does not acknowledge
// it, or one acknowledges it earlier), the lead and `shown` move by the same
// whole ticks: the foreseen path and the drawing clock shift alike, so the
// disc goes on at full speed with no jump (no crawl, no surge). While moving,
// nothing else changes them (a change would show as a jump along the path).
// Any other change of direction (a stop, a turn) is foreseen at `shown`, the
// earliest it may take effect, so the disc is never drawn past a stop; one
// applied later shows as a short creep forwards, blended out over ~100 ms,
// like any other correction.

const SMOOTHING_MS = 100;
const SNAP_DISTANCE = 60; // world units: past this a correction is a jump, not a drift
const LEAD_SAMPLES = 32; // lead bounds kept: about a second of inputs at 30 a second
const MAX_TICKS_AHEAD = 64; // never simulate further past the newest snapshot than this
const EPSILON = 1e-6; // ticks: a bound met exactly is not pushed to the next tick by rounding
const MAX_MARGIN = 2; // ticks: the most `shown` stays behind the lead for jitter
const FIRST_MARGIN = 1; // ticks: the margin before the server's first RTT and jitter

export class Predictor {
  constructor(rules, tickRate) {
    this.rules = rules;
    this.tickMs = 1000 / tickRate;
    this.base = null; // {tick, x, y}: the server's position in the newest snapshot
    this.previous = null; // the same in the snapshot before it
    this.velocity = [0, 0]; // the acknowledged input's direction: the velocity at base.tick
    this.pending = []; // [{seq, dx, dy, sentAt, starts}] sent, not yet acknowledged, in seq order
    this.lead = null; // ticks: an input sent at s (ms) is applied at tick ceil(s / tickMs + lead)
    this.shown = null; // ticks: drawn at the continuous tick now / tickMs + shown − 1
    this.leadBounds = []; // the last LEAD_SAMPLES bounds from acknowledged inputs
    this.arrival = null; // ticks: the lowest tick − arrival / tickMs seen (the way down)
    this.rttTicks = 0; // the server's RTT estimate, in ticks (0: none yet)
    this.jitterTicks = 0; // the server's jitter estimate, in ticks
    this.error = { x: 0, y: 0 }; // shown offset still being blended out
    this.errorAt = 0;
  }

  /** An input just sent (before its seq is acknowledged). */
  inputSent(seq, dx, dy, nowMs) {
    const before = this.prediction(nowMs);
    const last = this.pending.at(-1) ?? { dx: this.velocity[0], dy: this.velocity[1] };
    const starts = last.dx === 0 && last.dy === 0 && (dx !== 0 || dy !== 0);
    this.pending.push({ seq, dx, dy, sentAt: nowMs, starts });
    this._blend(before, nowMs);
  }

  /** A snapshot: the own player at (x, y) on tick `tick`, after input `ack` (null: none yet),
   * received at nowMs, with the server's RTT and jitter estimates (snapshot.rtt_us and
   * jitter_us, in ms; 0: none yet). */
  reconcile(tick, ack, x, y, nowMs, rttMs = 0, jitterMs = 0) {
    const before = this.prediction(nowMs);
    const arrival = tick - nowMs / this.tickMs;
    if (this.arrival === null || arrival < this.arrival) this.arrival = arrival;
    if (rttMs > 0) {
      this.rttTicks = rttMs / this.tickMs;
      this.jitterTicks = jitterMs / this.tickMs;
    }
    let acked = null;
    if (ack !== null && ack !== undefined) {
      while (this.pending.length > 0 && this.pending[0].seq <= ack) acked = this.pending.shift();
    }
    if (acked) this.velocity = [acked.dx, acked.dy];
    if (this.base && this.base.tick < tick) this.previous = this.base;
    this.base = { tick, x, y };
    if (this.lead === null) this._settle();
    if (acked && acked.seq === ack) {
      // First acknowledged here: applied at `tick` or before (snapshots may skip ticks).
      const bound = tick - acked.sentAt / this.tickMs;
      this.leadBounds.push(bound);
      if (this.leadBounds.length > LEAD_SAMPLES) this.leadBounds.shift();
      if (acked.starts) {
        // The move began at `tick`, not where foreseen: shift the drawing clock alike.
        this._shift(tick - Math.ceil(acked.sentAt / this.tickMs + this.lead - EPSILON));
      }
    }
    const first = this.pending[0];
    if (first?.starts) {
      // Not applied by `tick`: it will be at tick + 1 or later.
      const late = tick - first.sentAt / this.tickMs - this.lead;
      if (late >= -EPSILON) this._shift(Math.floor(late + EPSILON) + 1);
    }
    if (this.pending.length === 0 && this.velocity[0] === 0 && this.velocity[1] === 0) {
      this._settle(); // standing still: nothing drawn depends on the leads
    }
    this._blend(before, nowMs);
  }

  /** Both leads by whole ticks: the foreseen path and the drawing clock shift alike. */
  _shift(ticks) {
    this.lead += ticks;
    this.shown += ticks;
  }

  /** The best estimates (see the top of this file), for when nothing drawn depends on them. */
  _settle() {
    this.lead =
      this.leadBounds.length > 0 ? Math.min(...this.leadBounds) : this.arrival + this.rttTicks;
    const margin = this.rttTicks > 0 ? 2 * this.jitterTicks : FIRST_MARGIN;
    this.shown = this.lead - Math.min(MAX_MARGIN, margin);
  }

  /** Where to draw the own player at nowMs, or null before its first snapshot. */
  position(nowMs) {
    const raw = this.prediction(nowMs);
    if (!raw) return null;
    this._decay(nowMs);
    return { x: raw.x + this.error.x, y: raw.y + this.error.y };
  }

  /**
   * The predicted position drawn at nowMs, without the blending: the server's position, by
   * its rules, at the continuous tick nowMs / tickMs + shown − 1 (between the two ticks
   * around it). Null before the first snapshot.
   */
  prediction(nowMs) {
    const base = this.base;
    if (!base) return null;
    const target = nowMs / this.tickMs + this.shown - 1;
    const ticks = Math.floor(target) - base.tick; // whole ticks past the snapshot
    if (target < base.tick) {
      // Drawn before the newest snapshot (a round trip shorter than a tick): between it and
      // the one before, as the server moved.
      const from = this.previous;
      if (!from || target <= from.tick) return { x: (from ?? base).x, y: (from ?? base).y };
      const alpha = (target - from.tick) / (base.tick - from.tick);
      return { x: from.x + (base.x - from.x) * alpha, y: from.y + (base.y - from.y) * alpha };
    }
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
    // A move from standing still is foreseen at the lead (if it is late or early, the
    // drawing clock shifts with it); any other change (a stop, a turn) at the earliest it
    // may take effect, `shown`, so the disc is never drawn past a stop: one applied later
    // shows as a short creep forwards instead of a slide back.
    const lead = input.starts ? this.lead : this.shown;
    const tick = Math.ceil(input.sentAt / this.tickMs + lead - EPSILON);
    return Math.max(this.base.tick + 1, tick);
  }

  get unacknowledged() {
    return this.pending.length;
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
