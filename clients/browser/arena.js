// arena.js: the reference game's rules on the client, as PROTOCOL.md §7
// states them: the world read from room.info (size, scale, speed, radii,
// walls, and view_radius in a world larger than the screen: arena_wide, where
// a snapshot holds only what is near the player), the snapshot state decoded
// into world units, and one tick of a player's move (one axis at a time, a
// move into a wall or out of the world refused, touching allowed), on the
// 1/scale grid as the server keeps it. The page uses the move to predict its
// own player between snapshots; the server stays authoritative.

/** Math.round with ties to even, as Python's round(): the server's rounding, bit for bit. */
export function roundHalfEven(v) {
  const r = Math.round(v); // ties up; r − v is exact for |v| < 2^52
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** The static world of room.info, checked; null when it is not an arena world. */
export function parseInfo(info) {
  if (!info || typeof info !== "object") return null;
  const numbers = ["width", "height", "scale", "speed", "player_radius", "gem_radius"];
  if (!numbers.every((key) => Number.isFinite(info[key]) && info[key] > 0)) return null;
  if (!Array.isArray(info.walls)) return null;
  const walls = info.walls.filter(
    (wall) => Array.isArray(wall) && wall.length === 4 && wall.every(Number.isFinite),
  );
  return {
    width: info.width,
    height: info.height,
    scale: info.scale,
    speed: info.speed,
    playerRadius: info.player_radius,
    gemRadius: info.gem_radius,
    walls,
    // Only in a larger world: how far the player sees; the page then follows them.
    viewRadius: Number.isFinite(info.view_radius) && info.view_radius > 0 ? info.view_radius : null,
  };
}

/** snapshot.state → {players: Map id → {x, y, score}, gems: [{id, x, y}]} in world units. */
export function parseState(state, scale) {
  const players = new Map();
  const gems = [];
  for (const entry of Array.isArray(state?.players) ? state.players : []) {
    if (Array.isArray(entry) && entry.length >= 4) {
      const [id, x, y, score] = entry;
      players.set(id, { x: x / scale, y: y / scale, score });
    }
  }
  for (const entry of Array.isArray(state?.gems) ? state.gems : []) {
    if (Array.isArray(entry) && entry.length >= 3) {
      gems.push({ id: entry[0], x: entry[1] / scale, y: entry[2] / scale });
    }
  }
  return { players, gems };
}

/** An input direction clamped to length 1, exactly as the server clamps it. */
export function clampInput(dx, dy) {
  const length = Math.hypot(dx, dy);
  return length > 1 ? [dx / length, dy / length] : [dx, dy];
}

export class ArenaRules {
  constructor(world, tickRate) {
    this.world = world;
    this.stride = world.speed * (1 / tickRate); // units per tick; as the server computes it
    // Walls as [left, top, right, bottom], the form the collision test wants.
    this.edges = world.walls.map(([x, y, w, h]) => [x, y, x + w, y + h]);
  }

  /** True if a disc of radius r at (x, y) leaves the world or overlaps a wall. */
  blocked(x, y, r = this.world.playerRadius) {
    const { width, height } = this.world;
    if (x < r || y < r || x > width - r || y > height - r) return true;
    for (const [left, top, right, bottom] of this.edges) {
      const nx = Math.min(Math.max(x, left), right);
      const ny = Math.min(Math.max(y, top), bottom);
      if ((x - nx) * (x - nx) + (y - ny) * (y - ny) < r * r) return true;
    }
    return false;
  }

  /** A coordinate on the 1/scale grid, as the server rounds it. */
  grid(v) {
    return roundHalfEven(v * this.world.scale) / this.world.scale;
  }

  /** One tick at velocity (dx, dy): on the grid (unless that touches a wall), x first, then
   * y from the new x, each rounded to the grid; a blocked axis stays. */
  step(x, y, dx, dy) {
    if (dx || dy) {
      const gx = this.grid(x);
      const gy = this.grid(y);
      if (!this.blocked(gx, gy)) [x, y] = [gx, gy];
      const nx = this.grid(x + dx * this.stride);
      if (!this.blocked(nx, y)) x = nx;
      const ny = this.grid(y + dy * this.stride);
      if (!this.blocked(x, ny)) y = ny;
    }
    return [x, y];
  }
}
