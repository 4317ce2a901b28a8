// delta_runner.mjs: clients/browser/delta.js driven from tests/browser/test_delta_module.py.
//
//   node delta_runner.mjs < cases.msgpack > results.msgpack
//
// stdin is one msgpack map: {patches: [[old, patch], ...], sequences: [[snapshot, ...], ...]}.
// stdout is one msgpack map:
//   patches:   per case [new, oldUnchanged] or ["error", message]
//   sequences: per sequence, per snapshot: the state DeltaState.receive returned,
//              or ["error", message] (and the sequence goes on), plus `held` at the end.

import { readFileSync } from "node:fs";
import { decode, encode } from "../../clients/browser/node_modules/@msgpack/msgpack/dist.esm/index.mjs";
import { DeltaState, applyPatch } from "../../clients/browser/delta.js";

const same = (a, b) => a.length === b.length && a.every((byte, i) => byte === b[i]);

const input = decode(readFileSync(0));
const patches = input.patches.map(([old, patch]) => {
  const before = encode(old);
  try {
    const result = applyPatch(old, patch);
    return [result, same(before, encode(old))];
  } catch (error) {
    return ["error", `${error.name}: ${error.message}`];
  }
});
const sequences = input.sequences.map((snapshots) => {
  const keeper = new DeltaState();
  const states = snapshots.map((snapshot) => {
    try {
      return keeper.receive(snapshot);
    } catch (error) {
      return ["error", `${error.name}: ${error.message}`];
    }
  });
  return { states, held: [...keeper.states.keys()], full: keeper.full, deltas: keeper.deltas };
});
process.stdout.write(encode({ patches, sequences }));
