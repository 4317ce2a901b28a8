// render.js: draws one frame of the arena on a canvas: the floor and its
// bounds, the walls, the gems, and every player as a disc with its name (the
// own player ringed in white). It knows nothing of the network: main.js hands
// it plain positions in world units. The canvas keeps the world's aspect
// ratio, follows its CSS size and is drawn at the device's pixel ratio, so it
// is sharp on any screen. Name labels are placed after all discs, own first,
// each above its disc, or below it, or further up, wherever it overlaps no
// label placed before it (placeLabels), so two close discs keep both names
// readable.
//
// A world with a view radius (arena_wide: larger than the screen, and each
// snapshot holds only what is near the player) is shown through a camera that
// keeps the own (predicted) player in the middle of a window of 2 x 1.2 view
// radii, what lies beyond the view radius dimmed; a spectator, who has no
// player, sees the whole world.

const LABEL_HEIGHT = 15; // world units: a 13 px label and its outline
const LABEL_GAP = 5; // between a disc and its label

/**
 * Where each label goes: [{player, x, y, above}] (x the centre, y the baseline side nearest
 * the disc), never cut off at the sides, in the order given (earlier ones win).
 * `width(player)` is a label's width in world units; `world` gives width and playerRadius.
 */
export function placeLabels(players, width, world) {
  const placed = [];
  const r = world.playerRadius;
  for (const player of players) {
    const half = width(player) / 2 + 2;
    const x = Math.min(Math.max(player.x, half), world.width - half);
    const top = player.y - r - LABEL_GAP; // a label above ends here
    const bottom = player.y + r + LABEL_GAP; // a label below starts here
    const candidates = [];
    if (top - LABEL_HEIGHT > 1) candidates.push({ y: top, above: true });
    candidates.push({ y: bottom, above: false });
    for (let k = 1; k <= 3; k += 1) {
      if (top - (k + 1) * LABEL_HEIGHT > 1) candidates.push({ y: top - k * LABEL_HEIGHT, above: true });
      candidates.push({ y: bottom + k * LABEL_HEIGHT, above: false });
    }
    const box = (c) => {
      const y0 = c.above ? c.y - LABEL_HEIGHT : c.y;
      return { left: x - half, right: x + half, top: y0, bottom: y0 + LABEL_HEIGHT };
    };
    const free = (b) =>
      placed.every(
        ({ box: o }) => b.right <= o.left || o.right <= b.left || b.bottom <= o.top || o.bottom <= b.top,
      );
    const chosen = candidates.find((c) => free(box(c))) ?? candidates[0];
    placed.push({ player, x, y: chosen.y, above: chosen.above, box: box(chosen) });
  }
  return placed.map(({ player, x, y, above }) => ({ player, x, y, above }));
}

const COLORS = {
  outside: "#0b1118",
  fog: "rgba(11, 17, 24, 0.55)",
  floor: "#13212e",
  grid: "rgba(255, 255, 255, 0.04)",
  bounds: "#5b7a99",
  wall: "#34475c",
  wallEdge: "#6d8bab",
  gem: "#ffd166",
  gemEdge: "#fff3c4",
  name: "#e8eef5",
  shadow: "rgba(0, 0, 0, 0.8)",
};

/** A stable, well-spread colour per player id, never the gems' yellow (hues 30-70). */
export function playerColor(id) {
  return `hsl(${Math.round((70 + ((id * 137.508) % 320)) % 360)}, 70%, 58%)`;
}

export class Renderer {
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.world = null;
    this.shown = null; // {width, height}: the part of the world the canvas fits
    this.camera = null; // {x, y, scale}: the world point at the canvas centre, while following
  }

  setWorld(world) {
    if (!world || world === this.world) return;
    this.world = world;
    const r = world.viewRadius;
    this.shown = r ? { width: 2 * r, height: 1.2 * r } : { width: world.width, height: world.height };
    this.canvas.style.aspectRatio = `${this.shown.width} / ${this.shown.height}`;
  }

  /** Match the backing store to the displayed size; returns the world→pixel scale. */
  _fit() {
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(1, Math.round(this.canvas.clientWidth * ratio));
    const height = Math.max(1, Math.round(this.canvas.clientHeight * ratio));
    if (this.canvas.width !== width || this.canvas.height !== height) {
      this.canvas.width = width;
      this.canvas.height = height;
    }
    return this.world ? Math.min(width / this.shown.width, height / this.shown.height) : ratio;
  }

  /** frame: {players: [{id, name, x, y, own}], gems: [{x, y}], message?: string} */
  draw(frame) {
    const ctx = this.ctx;
    let scale = this._fit();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = COLORS.outside;
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    this.camera = null;
    if (this.world) {
      const own = this.world.viewRadius ? frame.players.find((p) => p.own) : undefined;
      if (own) {
        // Follow the own player: it stays at the canvas centre.
        const { width, height } = this.canvas;
        ctx.setTransform(scale, 0, 0, scale, width / 2 - own.x * scale, height / 2 - own.y * scale);
        this.camera = { x: own.x, y: own.y, scale };
      } else if (this.world.viewRadius) {
        // No own player (a spectator): the whole world, fitted and centred.
        const { width, height } = this.canvas;
        scale = Math.min(width / this.world.width, height / this.world.height);
        const [left, top] = [(width - this.world.width * scale) / 2, (height - this.world.height * scale) / 2];
        ctx.setTransform(scale, 0, 0, scale, left, top);
      } else {
        ctx.setTransform(scale, 0, 0, scale, 0, 0);
      }
      this._floor(ctx, scale);
      for (const gem of frame.gems) this._gem(ctx, gem);
      const players = [...frame.players].sort((a, b) => Number(a.own) - Number(b.own));
      for (const player of players) this._player(ctx, player);
      // Labels over every disc; the own one placed first, so it stays where it always is.
      const labelled = [...players].reverse();
      const width = (player) => {
        ctx.font = this._font(player);
        return ctx.measureText(this._label(player)).width;
      };
      for (const label of placeLabels(labelled, width, this.world)) this._name(ctx, label);
      if (own) this._fog(ctx, own);
    }
    if (frame.message) this._message(ctx, frame.message);
  }

  _floor(ctx, scale) {
    const { width, height, walls } = this.world;
    ctx.fillStyle = COLORS.floor;
    ctx.fillRect(0, 0, width, height);
    ctx.strokeStyle = COLORS.grid;
    ctx.lineWidth = 1 / scale;
    ctx.beginPath();
    for (let x = 50; x < width; x += 50) {
      ctx.moveTo(x, 0);
      ctx.lineTo(x, height);
    }
    for (let y = 50; y < height; y += 50) {
      ctx.moveTo(0, y);
      ctx.lineTo(width, y);
    }
    ctx.stroke();
    ctx.strokeStyle = COLORS.bounds;
    ctx.lineWidth = 3 / scale;
    ctx.strokeRect(0, 0, width, height);
    ctx.fillStyle = COLORS.wall;
    ctx.strokeStyle = COLORS.wallEdge;
    ctx.lineWidth = 1.5 / scale;
    for (const [x, y, w, h] of walls) {
      ctx.fillRect(x, y, w, h);
      ctx.strokeRect(x, y, w, h);
    }
  }

  /** Dim what lies beyond the view radius: the server sends nothing from there. */
  _fog(ctx, { x, y }) {
    const r = this.world.viewRadius;
    const far = 4 * r; // past every edge of the window
    ctx.beginPath();
    ctx.rect(x - far, y - far, 2 * far, 2 * far);
    ctx.arc(x, y, r, 0, 2 * Math.PI);
    ctx.fillStyle = COLORS.fog;
    ctx.fill("evenodd");
  }

  _gem(ctx, { x, y }) {
    const r = this.world.gemRadius;
    ctx.beginPath();
    ctx.moveTo(x, y - r);
    ctx.lineTo(x + r, y);
    ctx.lineTo(x, y + r);
    ctx.lineTo(x - r, y);
    ctx.closePath();
    ctx.fillStyle = COLORS.gem;
    ctx.fill();
    ctx.strokeStyle = COLORS.gemEdge;
    ctx.lineWidth = 1.5;
    ctx.stroke();
  }

  _player(ctx, { id, name, x, y, own }) {
    const r = this.world.playerRadius;
    ctx.beginPath();
    ctx.arc(x, y, r, 0, 2 * Math.PI);
    ctx.fillStyle = playerColor(id);
    ctx.fill();
    if (own) {
      ctx.lineWidth = 3;
      ctx.strokeStyle = "#ffffff";
      ctx.stroke();
      ctx.beginPath();
      ctx.arc(x, y, r + 6, 0, 2 * Math.PI);
      ctx.lineWidth = 1.5;
      ctx.strokeStyle = "rgba(255, 255, 255, 0.45)";
      ctx.stroke();
    }
  }

  _font({ own }) {
    return `${own ? "bold " : ""}13px system-ui, sans-serif`;
  }

  _label({ name, own }) {
    return own ? `${name} (you)` : name;
  }

  _name(ctx, { player, x, y, above }) {
    ctx.font = this._font(player);
    ctx.textAlign = "center";
    ctx.textBaseline = above ? "bottom" : "top";
    const label = this._label(player);
    ctx.lineWidth = 3;
    ctx.strokeStyle = COLORS.shadow;
    ctx.strokeText(label, x, y);
    ctx.fillStyle = COLORS.name;
    ctx.fillText(label, x, y);
  }

  _message(ctx, text) {
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    const ratio = window.devicePixelRatio || 1;
    ctx.font = `${16 * ratio}px system-ui, sans-serif`;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillStyle = "rgba(232, 238, 245, 0.85)";
    ctx.fillText(text, this.canvas.width / 2, this.canvas.height / 2);
  }
}
