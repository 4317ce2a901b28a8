// predict.js: the own player is predicted, not interpolated. Why: drawn
// like the others it would answer a key press only after a round trip plus
// the interpolation delay (~100 ms even on a LAN), which feels sluggish; and
// arena's rules are fully specified (PROTOCOL.md §7) and players do not
// collide with each other, so the client can run the same move the server
// will run and be right nearly always.
//
// Client-side prediction with server reconciliation (Quake/Source, Gabriel
// Gambetta's "Fast-Paced Multiplayer"): every input sent is kept with its
// seq; each snapshot gives the server's position after the input it acks
// (snapshot.ack, §5.3); the prediction is that position with the inputs not
// yet acked replayed on top, one tick each (one input per tick is what the
// page sends). The screen shows the last predicted step eased over the input
// interval; when a snapshot corrects the prediction (an input that reached
// the server a tick late, a rounding at a wall) the difference is blended out
// over ~100 ms instead of snapping, unless it is too large to be an error.

const SMOOTHING_MS = 100;
const SNAP_DISTANCE = 60; // world units: past this a correction is a jump, not a drift

export class Predictor {
  constructor(rules, inputIntervalMs, stepsPerInput = 1) {
    this.rules = rules;
    this.inputIntervalMs = inputIntervalMs;
    this.stepsPerInput = stepsPerInput;
    this.base = null; // {x, y}: the server's position in the newest snapshot
    this.pending = []; // [{seq, dx, dy}] sent and not yet acknowledged
    this.lastInputAt = 0;
    this.error = { x: 0, y: 0 }; // shown offset still being blended out
    this.errorAt = 0;
    this.corrections = 0; // snapshots that moved the prediction (for the curious)
  }

  /** An input just sent (before its seq is acknowledged). */
  inputSent(seq, dx, dy, nowMs) {
    this.pending.push({ seq, dx, dy });
    this.lastInputAt = nowMs;
  }

  /** The own player in a snapshot: the server's position after input `ack` (nil: none yet). */
  reconcile(ack, x, y, nowMs) {
    const before = this.base ? this._raw(nowMs) : null;
    this.base = { x, y };
    if (ack !== null && ack !== undefined) {
      this.pending = this.pending.filter((input) => input.seq > ack);
    }
    if (before) {
      this._decay(nowMs);
      const after = this._raw(nowMs);
      const ex = this.error.x + before.x - after.x;
      const ey = this.error.y + before.y - after.y;
      const moved = Math.hypot(before.x - after.x, before.y - after.y);
      if (moved > 0.01) this.corrections += 1;
      this.error = Math.hypot(ex, ey) > SNAP_DISTANCE ? { x: 0, y: 0 } : { x: ex, y: ey };
    }
  }

  /** Where to draw the own player at nowMs, or null before its first snapshot. */
  position(nowMs) {
    if (!this.base) return null;
    this._decay(nowMs);
    const raw = this._raw(nowMs);
    return { x: raw.x + this.error.x, y: raw.y + this.error.y };
  }

  get unacknowledged() {
    return this.pending.length;
  }

  reset() {
    this.base = null;
    this.pending = [];
    this.error = { x: 0, y: 0 };
  }

  /** The replayed path's last step, eased over the input interval. */
  _raw(nowMs) {
    let x = this.base.x;
    let y = this.base.y;
    let prevX = x;
    let prevY = y;
    for (const { dx, dy } of this.pending) {
      prevX = x;
      prevY = y;
      for (let i = 0; i < this.stepsPerInput; i += 1) [x, y] = this.rules.step(x, y, dx, dy);
    }
    const t = Math.min(1, Math.max(0, (nowMs - this.lastInputAt) / this.inputIntervalMs));
    return { x: prevX + (x - prevX) * t, y: prevY + (y - prevY) * t };
  }

  _decay(nowMs) {
    const k = Math.exp(-Math.max(0, nowMs - this.errorAt) / SMOOTHING_MS);
    this.error = { x: this.error.x * k, y: this.error.y * k };
    this.errorAt = nowMs;
  }
}
