import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { PolicyMetrics } from "../lib/sim/metrics.js";
import { parseSimConfig } from "../lib/sim/sim-config.js";
import { simulateWithBound } from "../lib/sim/simulate.js";
import { parseSwf } from "../lib/sim/swf.js";
import { syntheticTrace } from "../lib/sim/synthetic.js";
import { toWorkload } from "../lib/sim/workload.js";

/**
 * Where packed's cost differs from thpc's, trace by trace: `npx tsx bench/packed-analyse.ts 1 96 [181]`
 * prints per seed packed − thpc in cost (%) and in vCPU-hours by part of the excess over the bound
 * (fragmentation, boot, idle before shrink, drain tail, never used), launches and mean wait, next to
 * thpc with the boot one second longer (or the boot time given) against thpc: the chaos of one replay.
 * Synthetic traces as bench/packed-seeds.ts; examples/sim-config.json, poll 60 s, boot 180 s.
 */
const [from = "1", to = "8", bootAlt = "181"] = process.argv.slice(2);
const path = resolve(import.meta.dirname, "../examples/sim-config.json");
const { config, simulation } = parseSimConfig(JSON.parse(readFileSync(path, "utf8")), path);
const capacity = new Map(simulation.capacity.map((c) => [`${c.instanceType}@${c.zone}`, c.maxNodes]));
const run = (workload: ReturnType<typeof toWorkload>, kinds: ("thpc" | "packed")[], boot: number) =>
  simulateWithBound(workload, config, {
    policies: kinds.map((kind) => ({ kind })),
    pollSeconds: 60,
    boot: { kind: "fixed", seconds: boot },
    seed: 1,
    capacity,
    timeline: false,
  }).runs.map((r) => r.metrics);
const f = (x: number) => x.toFixed(0).padStart(6);
for (let seed = Number(from); seed <= Number(to); seed++) {
  const trace = syntheticTrace({ jobs: 2000, seed, meanInterarrivalS: 120, maxProcs: 128 });
  const workload = toWorkload(parseSwf(trace).records, config, simulation);
  const [t, p] = run(workload, ["thpc", "packed"], 180) as [PolicyMetrics, PolicyMetrics];
  const [t2] = run(workload, ["thpc"], Number(bootAlt)) as [PolicyMetrics];
  const d = (k: keyof PolicyMetrics["breakdown"]) => f(p.breakdown[k] - t.breakdown[k]);
  console.log(
    `seed ${String(seed).padStart(3)} cost% ${(((p.cost ?? 0) / (t.cost ?? 1) - 1) * 100).toFixed(2).padStart(6)} ` +
      `noise% ${(((t2.cost ?? 0) / (t.cost ?? 1) - 1) * 100).toFixed(2).padStart(6)} vcpuh ${f(p.vcpuHours - t.vcpuHours)} ` +
      `frag ${d("fragmentation")} boot ${d("boot")} idle ${d("idleBeforeShrink")} drain ${d("drainTail")} never ${d("neverUsed")} ` +
      `launch ${p.launches - t.launches} wait ${(p.meanWaitS - t.meanWaitS).toFixed(1)} thpcV ${f(t.vcpuHours)}`,
  );
}
