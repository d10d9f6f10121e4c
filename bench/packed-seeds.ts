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
 * eight of). One replay is chaotic: thpc against itself with the boot one second longer moves a trace's
 * cost by ±0.8% (one standard deviation), as much as packed against thpc does, so "packed ≤ thpc" can
 * only be judged on an aggregate: the mean of the per-trace cost differences with its 95% interval
 * (Student's t over the traces). Each trace's difference is the mean over the boot times given, which
 * averages the chaos of one replay out.
 *
 *   npx tsx bench/packed-seeds.ts 1 96 [config.json] [--boots 180,185,190] [--noise] [--quiet]
 *
 * `--noise`: also replays thpc with each boot one second longer, and prints the same interval for
 * thpc against that thpc: the difference a change with no effect shows. examples/sim-config.json by
 * default; poll 60 s, boot 180 s, seed 1.
 */
const args = process.argv.slice(2);
const flag = (name: string) => args.includes(name);
const option = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const positional = args.filter((a, i) => !a.startsWith("--") && !args[i - 1]?.startsWith("--boots"));
const [from = "1", to = "8", file = "sim-config.json"] = positional;
const boots = (option("--boots") ?? "180").split(",").map(Number);
if (boots.some((b) => !Number.isFinite(b) || b < 0)) throw new Error(`--boots: seconds, comma-separated`);
const noise = flag("--noise");
const quiet = flag("--quiet");
const path = resolve(import.meta.dirname, "../examples", file);
const { config, simulation } = parseSimConfig(JSON.parse(readFileSync(path, "utf8")), path);
const capacity = new Map(simulation.capacity.map((c) => [`${c.instanceType}@${c.zone}`, c.maxNodes]));

function replay(workload: ReturnType<typeof toWorkload>, kinds: ("thpc" | "packed")[], boot: number) {
  const { runs } = simulateWithBound(workload, config, {
    policies: kinds.map((kind) => ({ kind })),
    pollSeconds: 60,
    boot: { kind: "fixed", seconds: boot },
    seed: 1,
    capacity,
    timeline: false,
  });
  return runs.map((r) => r.metrics) as PolicyMetrics[];
}

const sum = { thpc: { launches: 0, cost: 0 }, packed: { launches: 0, cost: 0 } };
/** Per trace: packed's cost ÷ thpc's − 1 in percent (mean over boots), and the noise arm's. */
const diffs: number[] = [];
const noiseDiffs: number[] = [];
let ahead = 0;
for (let seed = Number(from); seed <= Number(to); seed++) {
  const trace = syntheticTrace({ jobs: 2000, seed, meanInterarrivalS: 120, maxProcs: 128 });
  const workload = toWorkload(parseSwf(trace).records, config, simulation);
  let d = 0;
  let n = 0;
  const line = { launches: [0, 0] as [number, number], cost: [0, 0] as [number, number] };
  for (const boot of boots) {
    const [t, p] = replay(workload, ["thpc", "packed"], boot) as [PolicyMetrics, PolicyMetrics];
    sum.thpc.launches += t.launches;
    sum.thpc.cost += t.cost ?? 0;
    sum.packed.launches += p.launches;
    sum.packed.cost += p.cost ?? 0;
    line.launches = [line.launches[0] + p.launches, line.launches[1] + t.launches];
    line.cost = [line.cost[0] + (p.cost ?? 0), line.cost[1] + (t.cost ?? 0)];
    d += ((p.cost ?? 0) / (t.cost ?? 1) - 1) * 100;
    if (noise) {
      const [t1] = replay(workload, ["thpc"], boot + 1) as [PolicyMetrics];
      n += ((t1.cost ?? 0) / (t.cost ?? 1) - 1) * 100;
    }
  }
  diffs.push(d / boots.length);
  if (noise) noiseDiffs.push(n / boots.length);
  const [pl, tl] = line.launches;
  const [pc, tc] = line.cost;
  if (pl <= tl && pc <= tc) ahead++;
  if (!quiet)
    console.log(
      `seed ${seed}: launches packed/thpc ${pl}/${tl}, cost ${pc.toFixed(0)}/${tc.toFixed(0)} ` +
        `(${(diffs.at(-1) as number).toFixed(2)}%)` +
        (noise ? `, thpc boot +1 s ${(noiseDiffs.at(-1) as number).toFixed(2)}%` : ""),
    );
}

/** Student's t 97.5% quantile for df degrees of freedom (Cornish–Fisher; within 0.01 for df ≥ 5). */
function t975(df: number): number {
  const z = 1.959964;
  return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df * df);
}

/** Mean, standard deviation and the 95% interval of the mean. */
function interval(xs: readonly number[]): string {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const sd = n > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1)) : 0;
  const half = n > 1 ? (t975(n - 1) * sd) / Math.sqrt(n) : Number.NaN;
  const f = (x: number) => `${x >= 0 ? "+" : ""}${x.toFixed(3)}%`;
  return `mean ${f(mean)}, 95% interval [${f(mean - half)}, ${f(mean + half)}], sd per trace ${sd.toFixed(3)}%`;
}

const pct = (a: number, b: number) => `${((a / b - 1) * 100).toFixed(2)}%`;
const traces = diffs.length;
console.log(
  `sum of ${traces} traces × ${boots.length} boot(s): launches ${sum.packed.launches}/${sum.thpc.launches} ` +
    `(${pct(sum.packed.launches, sum.thpc.launches)}), cost ${sum.packed.cost.toFixed(0)}/${sum.thpc.cost.toFixed(0)} ` +
    `(${pct(sum.packed.cost, sum.thpc.cost)}), packed ≤ thpc in both on ${ahead} of ${traces}`,
);
console.log(`packed − thpc cost per trace: ${interval(diffs)}`);
if (noise) console.log(`thpc (boot +1 s) − thpc:      ${interval(noiseDiffs)}`);
