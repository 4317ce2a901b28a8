// Runs server.js's ArenaRules on a script from bench/versus_rules.py (stdin, JSON) and
// prints the snapshot after every tick (stdout, JSON): the check that the port moves
// exactly as gameserver/games/arena.py.
//   script = {randoms: [the Python generator's random() values, in order],
//             players: [ids], ticks: [[[id, input data], ...], ...]}
import { createRequire } from "node:module";

const { ArenaRules } = createRequire(import.meta.url)("./server.js");
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const script = JSON.parse(Buffer.concat(chunks).toString());
let next = 0;
const rules = new ArenaRules(() => {
  if (next >= script.randoms.length) throw new Error("more random() calls than arena.py made");
  return script.randoms[next++];
});
for (const id of script.players) rules.join(id);
const snapshots = [];
for (const inputs of script.ticks) {
  for (const [id, data] of inputs) rules.input(id, data);
  rules.tick();
  snapshots.push(rules.snapshot());
}
process.stdout.write(JSON.stringify({ snapshots, randoms_used: next }));
