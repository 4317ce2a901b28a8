// input.js: the keyboard as a movement direction. Arrow keys and WASD (by
// key position, event.code, so ZQSD on an AZERTY keyboard works the same);
// keys typed into a text field (chat, name) never move the player; and every
// key counts as released when the window loses focus or is hidden, since the
// browser sends no keyup then and the player would run on forever. Each
// change of the direction held is reported at once (`changed`), so the page
// can send it without waiting for its input pacer.

const DIRECTIONS = {
  ArrowUp: [0, -1],
  KeyW: [0, -1],
  ArrowDown: [0, 1],
  KeyS: [0, 1],
  ArrowLeft: [-1, 0],
  KeyA: [-1, 0],
  ArrowRight: [1, 0],
  KeyD: [1, 0],
};

function typing(target) {
  return target instanceof HTMLElement && (target.isContentEditable || target.closest("input, textarea, select"));
}

export class Keyboard {
  /**
   * @param {() => boolean} active  whether keys should steer now (in a room)
   * @param {() => void} changed  called when the direction held changes
   */
  constructor(active, changed = () => {}) {
    this.active = active;
    this.changed = changed;
    this.held = new Set();
    window.addEventListener("keydown", (event) => this._down(event));
    window.addEventListener("keyup", (event) => this._update(() => this.held.delete(event.code)));
    window.addEventListener("blur", () => this.releaseAll());
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) this.releaseAll();
    });
  }

  _down(event) {
    if (!(event.code in DIRECTIONS) || typing(event.target) || !this.active()) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    event.preventDefault(); // arrows would scroll the page
    this._update(() => this.held.add(event.code));
  }

  releaseAll() {
    this._update(() => this.held.clear());
  }

  /** Change the keys held; report a change of direction. */
  _update(change) {
    const [dx, dy] = this.direction();
    change();
    const [nx, ny] = this.direction();
    if (nx !== dx || ny !== dy) this.changed();
  }

  /** The direction held now: dx, dy each -1, 0 or 1 (opposite keys cancel). */
  direction() {
    let dx = 0;
    let dy = 0;
    for (const code of this.held) {
      dx += DIRECTIONS[code][0];
      dy += DIRECTIONS[code][1];
    }
    return [Math.sign(dx), Math.sign(dy)];
  }
}
