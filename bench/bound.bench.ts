import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { PolicyMetrics } from "../lib/sim/metrics.js";
import { parseSimConfig } from "../lib/sim/sim-config.js";
import { type PolicySpec, type SimulateOptions, simulateWithBound } from "../lib/sim/simulate.js";
import { parseSwf } from "../lib/sim/swf.js";
import { syntheticTrace } from "../lib/sim/synthetic.js";
import { toWorkload } from "../lib/sim/workload.js";
import type { BenchModule, BenchRow } from "./harness.js";

/** This file runs from dist/bench: the repository root is two levels up. */
const ROOT = resolve(import.meta.dirname, "../..");
const LUBLIN = resolve(ROOT, "../shared/traces/lublin_256.swf");
const example = (name: string) => resolve(ROOT, "examples", name);

/** One in-process replay of `trace` under `config` (an examples/ file), with overrides and levers. */
function replay(
  trace: string,
  configFile: string,
  policies: PolicySpec[],
  overrides: Record<string, unknown> = {},
  levers: Partial<SimulateOptions> = {},
): { ms: number; runs: Record<string, PolicyMetrics> } {
  const raw = { ...JSON.parse(readFileSync(configFile, "utf8")), ...overrides };
  const { config, simulation } = parseSimConfig(raw, configFile);
  const capacity = new Map(simulation.capacity.map((c) => [`${c.instanceType}@${c.zone}`, c.maxNodes]));
  const workload = toWorkload(parseSwf(trace).records, config, simulation);
  const start = performance.now();
  const { runs } = simulateWithBound(workload, config, {
    policies,
    pollSeconds: 60,
    boot: { kind: "fixed", seconds: 180 },
    seed: 1,
    capacity,
    timeline: false,
    ...levers,
  });
  return { ms: performance.now() - start, runs: Object.fromEntries(runs.map((r) => [r.policy, r.metrics])) };
}

const figures = (m: PolicyMetrics) => ({
  "×bound": m.vcpuHoursToBound.toFixed(3),
  "cost×bound": m.costToBound?.toFixed(3) ?? "n/a",
  "mean wait s": m.meanWaitS.toFixed(0),
  "p95 s": m.p95WaitS.toFixed(0),
  "max s": m.maxWaitS.toFixed(0),
  never: m.neverStartedJobs,
  launches: m.launches,
});

/**
 * The targets, measured in one run: the Lublin trace against the clairvoyant bound (ratios and
 * waits of the recommended and cost-first configs, with levers that exist in the control plane: small
 * shapes, busy time 0, the warm headroom from the agent's arrivals, same-poll terminate (the
 * simulator's default), and the event-driven wake modelled as `wakeSeconds`), packed against thpc
 * (Lublin and mixed-shape synthetic traces). `nowscale simulate` of the 10k-job trace under four
 * policies, start-up included, is simulate.bench.ts.
 */
const bench: BenchModule = {
  title: "bound: Lublin against the clairvoyant bound, packed against thpc",
  async run() {
    const rows: BenchRow[] = [];
    if (!existsSync(LUBLIN)) {
      console.log(`note: ${LUBLIN} not found; the Lublin rows are skipped`);
      return rows;
    }
    const lublin = readFileSync(LUBLIN, "utf8");
    const thpc: PolicySpec = { kind: "thpc" };
    const packed: PolicySpec = { kind: "packed" };
    // The agent's wake (submit → scaler within seconds) modelled as wakeSeconds; 10 s stands for the
    // local mode's measured submit → launch call until the coordinator fills in the figure.
    const wake = { wakeSeconds: 10 };

    const today = replay(lublin, example("sim-config.json"), [thpc, packed]);
    const todayThpc = today.runs.thpc as PolicyMetrics;
    rows.push({ name: "lublin today (sim-config.json, thpc)", ms: today.ms / 2, extra: figures(todayThpc) });

    const goal1 = (m: PolicyMetrics) => ({
      text: "≤ 1.07 × bound at mean ≤ 60 s, p95 ≤ 190 s",
      met: m.vcpuHoursToBound <= 1.07 && m.meanWaitS <= 60 && m.p95WaitS <= 190,
    });
    const goal2 = (m: PolicyMetrics) => ({
      text: `≤ 1.03 × bound at mean ≤ ${todayThpc.meanWaitS.toFixed(0)} s (today's thpc)`,
      met: m.vcpuHoursToBound <= 1.03 && m.meanWaitS <= todayThpc.meanWaitS,
    });
    for (const [name, file, levers, goal] of [
      ["lublin recommended (thpc)", "sim-recommended.json", {}, goal1],
      ["lublin recommended + wake 10 s (thpc)", "sim-recommended.json", wake, goal1],
      ["lublin cost-first (thpc)", "sim-cost-first.json", {}, goal2],
      ["lublin cost-first + wake 10 s (thpc)", "sim-cost-first.json", wake, goal2],
    ] as const) {
      const r = replay(lublin, example(file), [thpc], {}, levers);
      const m = r.runs.thpc as PolicyMetrics;
      rows.push({ name, ms: r.ms, extra: figures(m), goal: goal(m) });
    }

    // packed against thpc: instances launched and cost, on Lublin and on mixed-shape synthetic traces.
    const versus = (name: string, runs: Record<string, PolicyMetrics>, ms: number) => {
      const t = runs.thpc as PolicyMetrics;
      const p = runs.packed as PolicyMetrics;
      rows.push({
        name,
        ms,
        extra: {
          "launches packed/thpc": `${p.launches}/${t.launches}`,
          "cost packed/thpc": `${p.cost?.toFixed(0)}/${t.cost?.toFixed(0)}`,
        },
        goal: {
          text: "packed ≤ thpc in instances and cost",
          met: p.launches <= t.launches && (p.cost ?? 0) <= (t.cost ?? 0),
        },
      });
    };
    versus("packed vs thpc: lublin (sim-config.json)", today.runs, today.ms);
    const recommended = replay(lublin, example("sim-recommended.json"), [thpc, packed]);
    versus("packed vs thpc: lublin (sim-recommended.json)", recommended.runs, recommended.ms);
    // Eight mixed-shape traces: each replay on its own, then all together (how far apart the two are
    // over many traces, beside how often packed comes out ahead on one).
    const total = { thpc: { launches: 0, cost: 0 }, packed: { launches: 0, cost: 0 } };
    let ahead = 0;
    let totalMs = 0;
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
      const trace = syntheticTrace({ jobs: 2000, seed, meanInterarrivalS: 120, maxProcs: 128 });
      const r = replay(trace, example("sim-config.json"), [thpc, packed]);
      const t = r.runs.thpc as PolicyMetrics;
      const p = r.runs.packed as PolicyMetrics;
      total.thpc.launches += t.launches;
      total.thpc.cost += t.cost ?? 0;
      total.packed.launches += p.launches;
      total.packed.cost += p.cost ?? 0;
      if (p.launches <= t.launches && (p.cost ?? 0) <= (t.cost ?? 0)) ahead++;
      totalMs += r.ms;
      if (seed <= 3) versus(`packed vs thpc: synthetic 2k mixed shapes, seed ${seed}`, r.runs, r.ms);
    }
    rows.push({
      name: "packed vs thpc: synthetic, 8 seeds together",
      ms: totalMs,
      extra: {
        "launches packed/thpc": `${total.packed.launches}/${total.thpc.launches}`,
        "cost packed/thpc": `${total.packed.cost.toFixed(0)}/${total.thpc.cost.toFixed(0)}`,
        "traces where packed ≤ thpc in both": `${ahead}/8`,
      },
      goal: {
        text: "packed ≤ thpc in instances and cost, summed",
        met: total.packed.launches <= total.thpc.launches && total.packed.cost <= total.thpc.cost,
      },
    });

    // `nowscale simulate` under four policies, start-up included: simulate.bench.ts.
    return rows;
  },
};
export default bench;
