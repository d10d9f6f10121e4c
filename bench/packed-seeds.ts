import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { PolicyMetrics } from "../lib/sim/metrics.js";
import { parseSimConfig } from "../lib/sim/sim-config.js";
import { simulateWithBound } from "../lib/sim/simulate.js";
import { parseSwf } from "../lib/sim/swf.js";
import { syntheticTrace } from "../lib/sim/synthetic.js";
import { toWorkload } from "../lib/sim/workload.js";

/**
 * packed against thpc over many mixed-shape synthetic traces (the kind `npm run bench -- bound` replays
 * eight of): one replay changes by a few percent with any small change of plan, so a difference of a
 * fraction of a percent needs tens of traces. `npx tsx bench/packed-seeds.ts 1 32 [config.json]`
 * prints each seed and the sums (examples/sim-config.json by default; poll 60 s, boot 180 s, seed 1).
 */
const [from = "1", to = "8", file = "sim-config.json"] = process.argv.slice(2);
const path = resolve(import.meta.dirname, "../examples", file);
const { config, simulation } = parseSimConfig(JSON.parse(readFileSync(path, "utf8")), path);
const capacity = new Map(simulation.capacity.map((c) => [`${c.instanceType}@${c.zone}`, c.maxNodes]));
const sum = { thpc: { launches: 0, cost: 0 }, packed: { launches: 0, cost: 0 } };
let ahead = 0;
let traces = 0;
for (let seed = Number(from); seed <= Number(to); seed++) {
  const trace = syntheticTrace({ jobs: 2000, seed, meanInterarrivalS: 120, maxProcs: 128 });
  const workload = toWorkload(parseSwf(trace).records, config, simulation);
  const { runs } = simulateWithBound(workload, config, {
    policies: [{ kind: "thpc" }, { kind: "packed" }],
    pollSeconds: 60,
    boot: { kind: "fixed", seconds: 180 },
    seed: 1,
    capacity,
    timeline: false,
  });
  const [t, p] = runs.map((r) => r.metrics) as [PolicyMetrics, PolicyMetrics];
  for (const [name, m] of [["thpc", t] as const, ["packed", p] as const]) {
    sum[name].launches += m.launches;
    sum[name].cost += m.cost ?? 0;
  }
  if (p.launches <= t.launches && (p.cost ?? 0) <= (t.cost ?? 0)) ahead++;
  traces++;
  console.log(
    `seed ${seed}: launches packed/thpc ${p.launches}/${t.launches}, cost ${p.cost?.toFixed(0)}/${t.cost?.toFixed(0)}`,
  );
}
const pct = (a: number, b: number) => `${((a / b - 1) * 100).toFixed(2)}%`;
console.log(
  `sum of ${traces}: launches ${sum.packed.launches}/${sum.thpc.launches} (${pct(sum.packed.launches, sum.thpc.launches)}), ` +
    `cost ${sum.packed.cost.toFixed(0)}/${sum.thpc.cost.toFixed(0)} (${pct(sum.packed.cost, sum.thpc.cost)}), ` +
    `packed ≤ thpc in both on ${ahead} of ${traces}`,
);
