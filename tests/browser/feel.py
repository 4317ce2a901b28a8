"""What a player notices at a given latency, measured in Chromium (test_feel.py, bench/feel.py).

The page is loaded through :class:`~tests.browser.proxy.CuttableProxy` with a delay and
jitter each way; a Python witness in the room reads the server's positions directly.
The page records, on every animation frame, where it drew its own player (the same
timestamp the frame was drawn for) and when keys went down and up; a move is then
judged from those frames:

- time to the first visible move: key down to the first frame the disc has moved;
- lurch: from the first visible move to the release, the drawn distance against
  steady motion at ``speed`` from where and when the motion started (deficit: behind
  it, surge: ahead of it);
- slide-back: after the release, how far the disc went back from the farthest point
  it had been drawn at; overshoot: that farthest point past where it ends;
- end error: where it is drawn at last against the server's position.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

from gameserver.games.arena import PLAYER_RADIUS, SCALE, SPEED, blocked

from .conftest import join
from .players import ThreadPlayer

STEP = round(SPEED / 30 * SCALE) / SCALE
"""How far one tick moves a player at the default tick rate (on the 1/SCALE grid: 6.7)."""
MOVED = 0.01
"""World units: a drawn move smaller than this is not a move (float noise)."""

RECORD = """() => {
    const rec = { frames: [], keys: [], latency: [], joins: [] };
    window.feel = rec;
    let last = null;
    const loop = (now) => {
        const me = window.arenaClient.view().players.find((p) => p.own);
        if (me) rec.frames.push([now, me.x, me.y]);
        const session = window.arenaClient.session();
        const latest = session?.latest;
        if (latest && latest.rtt_us !== last) {
            last = latest.rtt_us;
            rec.latency.push([now, latest.rtt_us, latest.jitter_us]);
        }
        requestAnimationFrame(loop);
    };
    requestAnimationFrame(loop);
    for (const type of ["keydown", "keyup"]) {
        window.addEventListener(type, (e) => rec.keys.push([type, performance.now()]), true);
    }
}"""


@dataclass
class Move:
    """One press-hold-release, judged from the frames the page drew."""

    first_visible_ms: float
    lurch_deficit: float
    lurch_surge: float
    slide_back: float
    overshoot: float
    creep: float
    end_error: float
    frames: int

    def as_dict(self) -> dict[str, float]:
        return {k: round(float(v), 4) for k, v in self.__dict__.items()}


def free_direction(x: float, y: float, need: int = 15) -> tuple[str, int, int]:
    """The arrow key and direction with the longest free run from (x, y), ``need`` steps or more."""
    keys = [("ArrowRight", 1, 0), ("ArrowLeft", -1, 0), ("ArrowDown", 0, 1), ("ArrowUp", 0, -1)]

    def run(dx: int, dy: int) -> int:
        for i in range(1, 41):
            if blocked(x + dx * STEP * i, y + dy * STEP * i, PLAYER_RADIUS):
                return i - 1
        return 40

    best = max(keys, key=lambda k: run(k[1], k[2]))
    assert run(best[1], best[2]) >= need, f"boxed in at {(x, y)}"
    return best


def judge(
    frames: list[list[float]],
    down: float,
    up: float,
    direction: tuple[int, int],
    server_end: tuple[float, float],
) -> Move:
    """A move from the frames drawn (``[t, x, y]``), key down at ``down``, up at ``up`` (ms)."""
    dx, dy = direction
    before = [f for f in frames if f[0] <= down]
    assert before, "no frame drawn before the key went down"
    x0, y0 = before[-1][1], before[-1][2]
    after = [f for f in frames if f[0] > down]
    along = [(t, (x - x0) * dx + (y - y0) * dy) for t, x, y in after]
    moving = [(t, d) for t, d in along if d > MOVED]
    assert moving, "the disc was never drawn moving"
    first_t, first_d = moving[0]
    speed = STEP * 30 / 1000  # units per ms
    start = first_t - first_d / speed  # when steady motion through the first moved frame began
    held = [(t, d) for t, d in along if first_t <= t <= up]
    deficit = max((speed * (t - start) - d for t, d in held), default=0.0)
    surge = max((d - speed * (t - start) for t, d in held), default=0.0)
    released = [d for t, d in along if t >= up]
    peak = -math.inf
    slide = 0.0
    for d in released:
        peak = max(peak, d)
        slide = max(slide, peak - d)
    # Creep: drawn still (under 1/10 of the speed for a frame), then moving on again.
    creep = 0.0
    rest = None
    for (t0, d0), (t1, d1) in itertools.pairwise(along):
        if t0 < up:
            continue
        if rest is None and d1 - d0 < 0.1 * speed * (t1 - t0):
            rest = d1
        if rest is not None:
            creep = max(creep, d1 - rest)
    _, last_x, last_y = frames[-1]
    end = (last_x - x0) * dx + (last_y - y0) * dy
    return Move(
        first_visible_ms=first_t - down,
        lurch_deficit=max(0.0, deficit),
        lurch_surge=max(0.0, surge),
        slide_back=slide,
        overshoot=max(0.0, peak - end),
        creep=creep,
        end_error=math.hypot(last_x - server_end[0], last_y - server_end[1]),
        frames=len(held),
    )


def play_move(page: Any, witness: ThreadPlayer, player: int, hold: float = 60.0) -> Move:
    """Press the freest arrow key until the server has moved the player ``hold`` units,
    release it, wait until the drawn player rests where the server stopped it; judge it."""
    x0, y0 = witness.wait_for_position(player, lambda x, y: True, since=witness.mark())
    key, dx, dy = free_direction(x0, y0)
    _drawn_at(page, (x0, y0))  # the page's snapshots come later (the proxy): draws it there
    pressed = witness.mark()
    page.keyboard.down(key)
    try:
        witness.wait_for_position(
            player, lambda x, y: (x - x0) * dx + (y - y0) * dy >= hold, since=pressed
        )
    finally:
        page.keyboard.up(key)
    end = witness.wait_until_still(player, since=witness.mark())
    _drawn_at(page, end)  # the drawn player comes to rest on the server's position
    page.wait_for_timeout(150)  # a few frames at rest: the recording must show the end
    recorded = page.evaluate("window.feel")
    downs = [t for kind, t in recorded["keys"] if kind == "keydown"]
    ups = [t for kind, t in recorded["keys"] if kind == "keyup"]
    down, up = downs[-1], ups[-1]
    frames = [f for f in recorded["frames"] if f[0] >= down - 200]
    return judge(frames, down, up, (dx, dy), end)


def _drawn_at(page: Any, position: tuple[float, float]) -> None:
    """Wait until the page draws its own player within 0.002 units of ``position``."""
    page.wait_for_function(
        """([x, y]) => {
            const me = window.arenaClient.view().players.find((p) => p.own);
            return me && Math.hypot(me.x - x, me.y - y) < 0.002;
        }""",
        arg=list(position),
    )


def rejoin(page: Any) -> int:
    """Close the session (1000) and press Reconnect: a new player in the same room."""
    from playwright.sync_api import expect

    page.evaluate("window.arenaClient.session().connection.close()")
    expect(page.locator("#closed")).to_have_attribute("data-code", "1000")
    page.click("#reconnect")
    expect(page.locator("#hud-state")).to_have_text("in room")
    return int(page.locator("#hud-player").inner_text())


def start(page: Any, name: str) -> tuple[int, float]:
    """Start recording, join; the player id and when the join was seen (page ms)."""
    page.evaluate(RECORD)
    player = join(page, name)
    return player, float(page.evaluate("performance.now()"))


def converged_after(
    samples: list[list[float]], since: float, rtt_ms: float, within: float
) -> float:
    """Ms after ``since`` from which the reported RTT stays within ``within`` of ``rtt_ms``
    (``math.inf`` if the last report is not)."""
    good_from: float = math.inf
    for t, rtt_us, _jitter in samples:
        if t < since:
            continue
        if abs(rtt_us / 1000 - rtt_ms) > within:
            good_from = math.inf
        elif good_from == math.inf:
            good_from = t
    return max(0.0, good_from - since)


def session_reports(samples: list[list[float]], since: float) -> list[list[float]]:
    """The latency reports ``[t, rtt_us, jitter_us]`` of the session joined at ``since``: up to
    the next session's first report of 0 (a Reconnect starts a new estimate)."""
    reports: list[list[float]] = []
    for sample in samples:
        if sample[0] < since:
            continue
        if sample[1] == 0 and reports:
            break
        reports.append(sample)
    return reports
