// delta.js: delta snapshots (PROTOCOL.md §5.6), the client's half. A snapshot
// whose `base` is an id the client acknowledged carries, in `state`, a patch to
// apply to that snapshot's state; `base` nil means `state` is the whole state.
//
// applyPatch() reads the generic patch format (joined.room.delta "generic"):
//   [0, value]                          replace
//   [1, changes, removed]               map patch: key → patch, keys removed
//   [2, removed, changed, added]        table patch: rows [id, ...] by id
//   [3, removed, changed, added]        the same, then the rows sorted by (int) id
// and never mutates what it is given: unchanged parts of the new state are
// shared with the old one, changed parts are new objects. DeltaState keeps the
// states of the snapshots the client applied (and so acknowledges) by id, as
// many as the server may still use as a base.
//
// A plain ES module with no DOM use: the page, the Node client
// (clients/node/spec_client.mjs) and the tests under Node all import it.

const REPLACE = 0;
const MAP_PATCH = 1;
const TABLE_PATCH = 2;
const SORTED_TABLE_PATCH = 3;
const MAX_MASK_BITS = 30; // a group's mask covers row elements 1..30

/** How many states DeltaState keeps by default. §5.6: the states of the last 64 ids
 * received are always enough (a base is never more than 60 ids back); a client keeps
 * max(KEEP_STATES, welcome.snapshot_rate). */
export const KEEP_STATES = 64;

/** A patch that does not fit the state it is applied to, or a base not held. */
export class DeltaError extends Error {
  constructor(message) {
    super(message);
    this.name = "DeltaError";
  }
}

function fail(path, message) {
  throw new DeltaError(`${path || "state"}: ${message}`);
}

const isMap = (v) => v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Uint8Array);
const isId = (v) => typeof v === "string" || (typeof v === "number" && Number.isInteger(v));

function checkArray(value, path, what) {
  if (!Array.isArray(value)) fail(path, `${what}: expected an array, got ${describe(value)}`);
}

function describe(value) {
  if (value === null) return "nil";
  if (Array.isArray(value)) return `an array of ${value.length}`;
  return typeof value;
}

/** The value `patch` makes of `old` (which is left as it was). Throws DeltaError. */
export function applyPatch(old, patch, path = "") {
  checkArray(patch, path, "patch");
  switch (patch[0]) {
    case REPLACE:
      if (patch.length !== 2) fail(path, `replace patch of length ${patch.length}`);
      return patch[1];
    case MAP_PATCH:
      return applyMapPatch(old, patch, path);
    case TABLE_PATCH:
      return applyTablePatch(old, patch, path);
    case SORTED_TABLE_PATCH:
      return sortById(applyTablePatch(old, patch, path), path);
    default:
      return fail(path, `unknown patch opcode ${JSON.stringify(patch[0])}`);
  }
}

function applyMapPatch(old, patch, path) {
  if (patch.length !== 3) fail(path, `map patch of length ${patch.length}`);
  const [, changes, removed] = patch;
  if (!isMap(old)) fail(path, `map patch on ${describe(old)}`);
  if (!isMap(changes)) fail(path, "map patch: changes is not a map");
  checkArray(removed, path, "map patch removed");
  const out = { ...old };
  for (const key of removed) {
    if (!Object.hasOwn(out, key)) fail(path, `map patch removes ${JSON.stringify(key)}, not in the map`);
    delete out[key];
  }
  for (const [key, change] of Object.entries(changes)) {
    if (key === "__proto__") fail(path, 'map key "__proto__" refused');
    const here = `${path}.${key}`;
    if (Object.hasOwn(old, key)) {
      out[key] = applyPatch(old[key], change, here);
    } else {
      checkArray(change, here, "patch");
      if (change[0] !== REPLACE) fail(here, "a new key's patch is not a replace");
      out[key] = applyPatch(undefined, change, here);
    }
  }
  return out;
}

function applyTablePatch(old, patch, path) {
  if (patch.length !== 4) fail(path, `table patch of length ${patch.length}`);
  const [, removed, changed, added] = patch;
  checkArray(old, path, "table patch on");
  checkArray(removed, path, "table patch removed");
  checkArray(changed, path, "table patch changed");
  checkArray(added, path, "table patch added");
  const gone = new Set(removed);
  const rows = [];
  const index = new Map(); // id → position in rows
  const seen = new Set();
  for (const row of old) {
    if (!Array.isArray(row) || row.length === 0 || !isId(row[0])) fail(path, "table patch on a non-table");
    seen.add(row[0]);
    if (gone.has(row[0])) continue;
    index.set(row[0], rows.length);
    rows.push(row);
  }
  for (const id of removed) {
    if (!seen.has(id)) fail(path, `table patch removes row ${JSON.stringify(id)}, not in the table`);
  }
  const copied = new Set(); // positions already copied: each changed row is copied once
  const rowAt = (id) => {
    const at = index.get(id);
    if (at === undefined) fail(path, `table patch changes row ${JSON.stringify(id)}, not in the table`);
    return at;
  };
  for (const group of changed) {
    checkArray(group, path, "table patch group");
    const [mask, diffmask] = group;
    if (!Number.isInteger(mask) || mask < 0 || mask >= 2 ** MAX_MASK_BITS) fail(path, `bad mask ${mask}`);
    if (!Number.isInteger(diffmask) || (diffmask & ~mask) !== 0) fail(path, `bad diffmask ${diffmask}`);
    if (mask === 0) {
      for (let i = 2; i < group.length; i += 1) {
        const row = group[i];
        if (!Array.isArray(row) || row.length === 0) fail(path, "table patch: a whole row is not a row");
        rows[rowAt(row[0])] = row;
        copied.add(index.get(row[0])); // a new array already: later groups may change it in place
      }
      continue;
    }
    const bits = [];
    for (let bit = 0; bit < MAX_MASK_BITS; bit += 1) if (mask & (1 << bit)) bits.push(bit);
    const stride = 1 + bits.length;
    if ((group.length - 2) % stride !== 0) fail(path, `table patch group of length ${group.length} for mask ${mask}`);
    for (let i = 2; i < group.length; i += stride) {
      const at = rowAt(group[i]);
      if (!copied.has(at)) {
        rows[at] = rows[at].slice();
        copied.add(at);
      }
      const row = rows[at];
      bits.forEach((bit, k) => {
        const element = bit + 1;
        if (element >= row.length) fail(path, `row ${JSON.stringify(group[i])} has no element ${element}`);
        const value = group[i + 1 + k];
        if (diffmask & (1 << bit)) {
          if (!Number.isInteger(row[element]) || !Number.isInteger(value)) {
            fail(path, `row ${JSON.stringify(group[i])} element ${element}: a difference on a non-integer`);
          }
          row[element] += value;
        } else {
          row[element] = value;
        }
      });
    }
  }
  for (const row of added) {
    if (!Array.isArray(row) || row.length === 0 || !isId(row[0])) fail(path, "table patch adds a non-row");
    if (index.has(row[0])) fail(path, `table patch adds row ${JSON.stringify(row[0])}, already in the table`);
    index.set(row[0], rows.length);
    rows.push(row);
  }
  return rows;
}

/** `rows` (a new array) in ascending order of their ids, which must all be integers. */
function sortById(rows, path) {
  for (const row of rows) {
    if (!Number.isInteger(row[0])) fail(path, `sorted table patch on a row with id ${JSON.stringify(row[0])}`);
  }
  return rows.sort((a, b) => a[0] - b[0]);
}

/**
 * The states of the snapshots applied on one connection, by snapshot id.
 *
 * receive(snapshot) returns the snapshot's whole state: `snapshot.state` when
 * `base` is nil, else that patch applied to the state of snapshot `base`. It
 * keeps the result (the caller acknowledges it) and drops the states older than
 * the newest base seen (bases never go back on a connection), KEEP_STATES at most
 * (the newest base among them, however old).
 */
export class DeltaState {
  constructor(keep = KEEP_STATES) {
    this.keep = keep;
    this.states = new Map(); // id → state, in id order
    this.newestBase = 0;
    this.full = 0; // snapshots received whole
    this.deltas = 0; // snapshots applied on a base
  }

  /** The whole state of `snapshot` ({id, base, state}). Throws DeltaError when its base is
   * not held or its patch does not fit; nothing is kept then. */
  receive(snapshot) {
    const { id, base } = snapshot;
    let state;
    if (base === null || base === undefined) {
      state = snapshot.state;
    } else {
      const old = this.states.get(base);
      if (old === undefined) {
        const held = [...this.states.keys()];
        const range = held.length ? `${held[0]}..${held[held.length - 1]}` : "none";
        throw new DeltaError(`snapshot ${id}: its base ${base} is not held (held: ${range})`);
      }
      state = applyPatch(old, snapshot.state);
    }
    if (base !== null && base !== undefined) {
      this.deltas += 1;
      if (base > this.newestBase) {
        this.newestBase = base;
        for (const held of this.states.keys()) if (held < base) this.states.delete(held);
      }
    } else {
      this.full += 1;
    }
    this.states.delete(id); // (re)inserted last: the map stays in arrival order
    this.states.set(id, state);
    // Over the cap: the oldest go, except the newest base (the server's latest choice).
    for (const held of this.states.keys()) {
      if (this.states.size <= this.keep) break;
      if (held !== this.newestBase) this.states.delete(held);
    }
    return state;
  }

  /** How many states are held (for tests and the page's debug hook). */
  get held() {
    return this.states.size;
  }
}
