// predict.js: the own player is predicted, not interpolated. Why: drawn
// like the others it would answer a key press only after a round trip plus
// the interpolation delay (~100 ms even on a LAN), which feels sluggish; and
// arena's rules are fully specified (PROTOCOL.md §7) and players do not
// collide with each other, so the client can run the same move the server
// will run and be right nearly always.
//
// Client-side prediction with server reconciliation (Quake/Source, Gabriel
// Gambetta's "Fast-Paced Multiplayer"), on the server's own rule (§5.3, §7):
// an input without `tick` is applied at the first tick after it arrives (one
// with `tick` at that tick, see below), and its direction is then the
// player's velocity, tick after tick, until the next input is applied. So
// an input moves the player for as many ticks as pass until the next one is
// applied: tick_rate / input rate on average (1.67 at 10 ticks/s and 6
// inputs a second), not a fixed whole number of ticks per input.
//
// The prediction replays exactly that: from the server's position in the
// newest snapshot (tick T, after input `ack`), tick by tick, first with the
// acknowledged input's velocity, each input not yet acknowledged taking over
// at the tick it will be applied. An input sent at local time s is foreseen to
// be applied at tick ceil(s / tickMs + lead) without a target, at its
// target with one.
//
// `lead` is measured: when a snapshot first acknowledges an input sent at s
// without a target (or one that came after its target), tick − s / tickMs is
// at least the lead (the input was applied at that tick or before). Standing
// still with nothing pending (when nothing drawn depends on it) the lead is
// set to the lowest of the last LEAD_SAMPLES such bounds,
// or before any input was acknowledged, to the snapshots' arrival (tick −
// arrival / tickMs, lowest seen: the way down) plus the server's RTT
// (snapshot.rtt_us: the way up); it was arrival alone, the round trip left
// out, which made the first move after every join crawl, then surge.
//
// Tick-targeted inputs (PROTOCOL.md §5.3, `input.tick`; "command frames" in
// other engines): the tick at which an input without a target is applied
// depends on when it arrives, and with the network's jitter that is uncertain
// by about a tick. So every change of direction (a start, a stop, a turn) asks
// for the tick the page foresees for it, ceil(s / tickMs + lead + margin),
// where the margin covers the jitter (twice the server's jitter estimate,
// snapshot.jitter_us, plus TARGET_SLACK; FIRST_MARGIN ticks before the first
// RTT; plus what late inputs taught, `extra`; at most MAX_TARGET_MARGIN).
// The server applies it exactly then, never earlier: the prediction has no
// uncertainty left. Repeats of the direction in effect go without a target
// (their tick changes nothing drawn): they measure the lead as above.
//
// The screen shows the server's position at the continuous tick
// now / tickMs + shown − 1, between the two ticks around it, where
// `shown` = lead + margin (targets are ceil(s / tickMs + ahead), `ahead` =
// `shown` at rest): every tick drawn is one the inputs already sent
// decide (an input sent now targets a later tick), so a release never shows a
// step the server will not take (no slide-back) nor misses one it takes (no
// creep), and a press shows within a tick of being sent. (Before targets,
// `shown` was the lead less the jitter, stops were foreseen at the earliest
// tick they could take effect, and one applied a tick later crept forwards.)
//
// An input that arrives after its tick (beyond the margin) is applied at the
// next tick (§5.3); a snapshot of its tick without it says so, and it is then
// foreseen at the tick after that snapshot, as before targets. A late move
// from standing still shifts the lead and `shown` by the same whole ticks: the
// foreseen path and the drawing clock shift alike, so the disc goes on at full
// speed with no jump (no crawl, no surge). A late stop or turn shows as a short
// creep, blended out over ~100 ms like any other correction, and raises the
// margin for the next move. Either way the inputs sent after it target
// further ahead at once (`ahead`, at least the late one's arrival plus the
// margin), as they do when an untargeted repeat is acknowledged later than
// `ahead` foresees: targets may lie past `shown`, never short of it, so every
// tick drawn stays decided; the cost is that a stop then shows a little later.
// While moving, nothing else changes lead, margin or `shown` (a change would
// show as a jump along the path); at rest `ahead` comes back to `shown`.
// Inputs sent before the first snapshot (no lead yet) go without a target and
// are foreseen as repeats are: a move from standing still at the lead, others
// at the lead less the jitter (the earliest they may take effect).

const SMOOTHING_MS = 100;
const SNAP_DISTANCE = 60; // world units: past this a correction is a jump, not a drift
const LEAD_SAMPLES = 32; // lead bounds kept: about a second of inputs at 30 a second
const MAX_TICKS_AHEAD = 64; // never simulate further past the newest snapshot than this
const EPSILON = 1e-6; // ticks: a bound met exactly is not pushed to the next tick by rounding
const MAX_MARGIN = 2; // ticks: the most an untargeted input is foreseen early for jitter
const FIRST_MARGIN = 1; // ticks: the jitter margin before the server's first RTT and jitter
const TARGET_SLACK = 0.5; // ticks: added to twice the jitter (a mean) to cover its extremes
const MAX_TARGET_MARGIN = 4; // ticks: the most a target lies past the lead
const LATE_STEP = 0.5; // ticks: added to the margin for each targeted input that came late
const EXTRA_DECAY = 0.02; // ticks: taken off it for each that came in time

export class Predictor {
  constructor(rules, tickRate) {
    this.rules = rules;
    this.tickMs = 1000 / tickRate;
    this.base = null; // {tick, x, y}: the server's position in the newest snapshot
    this.previous = null; // the same in the snapshot before it
    this.velocity = [0, 0]; // the acknowledged input's direction: the velocity at base.tick
    // [{seq, dx, dy, sentAt, starts, tick, at, late}] sent, not yet acknowledged, in seq order;
    // tick: the target sent (null: none), at: the tick it is foreseen at.
    this.pending = [];
    this.lead = null; // ticks: an input sent at s (ms) would be applied at ceil(s / tickMs + lead)
    this.margin = null; // ticks: targets lie this far past the lead (at least)
    this.ahead = null; // ticks: an input sent at s (ms) targets tick ceil(s / tickMs + ahead)
    this.shown = null; // ticks: drawn at the continuous tick now / tickMs + shown − 1 (≤ ahead)
    this.earliest = null; // ticks: an untargeted stop or turn is foreseen at this lead
    this.extra = 0; // ticks: added to the margin by late targeted inputs
    this.leadBounds = []; // the last LEAD_SAMPLES bounds from acknowledged inputs
    this.arrival = null; // ticks: the lowest tick − arrival / tickMs seen (the way down)
    this.rttTicks = 0; // the server's RTT estimate, in ticks (0: none yet)
    this.jitterTicks = 0; // the server's jitter estimate, in ticks
    this.error = { x: 0, y: 0 }; // shown offset still being blended out
    this.errorAt = 0;
  }

  /**
   * The server tick an input of direction (dx, dy), clamped, about to be sent at nowMs asks
   * for (input.tick), at most `maxLead` ticks past the newest snapshot's (welcome.limits
   * .max_input_lead); null to send it without one: a repeat of the direction in effect, or
   * before the first snapshot.
   */
  target(dx, dy, nowMs, maxLead) {
    if (!this.base) return null;
    const last = this.pending.at(-1) ?? { dx: this.velocity[0], dy: this.velocity[1] };
    if (last.dx === dx && last.dy === dy) return null;
    const tick = Math.ceil(nowMs / this.tickMs + this.ahead - EPSILON);
    return Math.max(this.base.tick + 1, Math.min(tick, this.base.tick + maxLead));
  }

  /** An input just sent (before its seq is acknowledged), with its target (null: none). */
  inputSent(seq, dx, dy, nowMs, tick = null) {
    const before = this.prediction(nowMs);
    const last = this.pending.at(-1) ?? { dx: this.velocity[0], dy: this.velocity[1] };
    const starts = last.dx === 0 && last.dy === 0 && (dx !== 0 || dy !== 0);
    this.pending.push({ seq, dx, dy, sentAt: nowMs, starts, tick, at: tick, late: false });
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
      if (acked.tick === null || acked.late) {
        // Applied on arrival (a target met on time says nothing of the lead). Targeting
        // this far ahead would have been in time for it: from now on, at least that.
        const bound = tick - acked.sentAt / this.tickMs;
        this.leadBounds.push(bound);
        if (this.leadBounds.length > LEAD_SAMPLES) this.leadBounds.shift();
        this.ahead = Math.max(this.ahead, bound);
      } else {
        this.extra = Math.max(0, this.extra - EXTRA_DECAY);
      }
      if (acked.starts && acked.tick === null) {
        // The move began at `tick`, not where foreseen: shift the drawing clock alike.
        this._shift(tick - Math.ceil(acked.sentAt / this.tickMs + this.lead - EPSILON));
      }
    }
    const first = this.pending[0];
    if (first?.tick !== null && first?.tick !== undefined) {
      if (tick >= first.at) {
        // Not applied at its tick: it came late, and is applied at tick + 1 or later. The
        // next inputs target further ahead at once (drawn no further: `shown` ≤ `ahead`
        // keeps every tick drawn decided), and the margin grows for the next move.
        const late = tick + 1 - first.at;
        first.at = tick + 1;
        if (first.starts) this._shift(late);
        const arrived = tick + 1 - first.sentAt / this.tickMs; // at least this far ahead
        this.ahead = Math.max(this.ahead, this.shown, arrived + this.margin);
        if (!first.late) this.extra = Math.min(MAX_TARGET_MARGIN, this.extra + LATE_STEP);
        first.late = true;
      }
    } else if (first?.starts) {
      // Not applied by `tick`: it will be at tick + 1 or later.
      const late = tick - first.sentAt / this.tickMs - this.lead;
      if (late >= -EPSILON) this._shift(Math.floor(late + EPSILON) + 1);
    }
    if (this.pending.length === 0 && this.velocity[0] === 0 && this.velocity[1] === 0) {
      this._settle(); // standing still: nothing drawn depends on the leads
    }
    this._blend(before, nowMs);
  }

  /** The leads by whole ticks: the foreseen path and the drawing clock shift alike. */
  _shift(ticks) {
    this.lead += ticks;
    this.shown += ticks;
    this.earliest += ticks;
    this.ahead = Math.max(this.ahead + ticks, this.shown);
  }

  /** The best estimates (see the top of this file), for when nothing drawn depends on them. */
  _settle() {
    this.lead =
      this.leadBounds.length > 0 ? Math.min(...this.leadBounds) : this.arrival + this.rttTicks;
    const jitter = this.rttTicks > 0 ? 2 * this.jitterTicks : FIRST_MARGIN;
    this.earliest = this.lead - Math.min(MAX_MARGIN, jitter);
    this.margin = Math.min(MAX_TARGET_MARGIN, jitter + TARGET_SLACK + this.extra);
    this.shown = this.lead + this.margin;
    this.ahead = this.shown;
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
    // Targeted: at its target (or, having come late, the tick after the snapshot that
    // said so). Untargeted (a repeat, or sent before the first snapshot): a move from
    // standing still at the lead (if it is late or early, the drawing clock shifts with
    // it); any other change at the earliest it may take effect.
    if (input.tick !== null) return Math.max(this.base.tick + 1, input.at);
    const lead = input.starts ? this.lead : this.earliest;
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
