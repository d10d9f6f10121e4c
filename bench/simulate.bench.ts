import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseSimConfig } from "../lib/sim/sim-config.js";
import { simulate } from "../lib/sim/simulate.js";
import { parseSwf } from "../lib/sim/swf.js";
import { syntheticTrace } from "../lib/sim/synthetic.js";
import { toWorkload, type Workload } from "../lib/sim/workload.js";
import { type BenchModule, type BenchRow, gc, heapUsedMiB, timeMedian, timeRuns } from "./harness.js";

/** This file runs from dist/bench: the repository root is two levels up. */
const ROOT = resolve(import.meta.dirname, "../..");
const LUBLIN = resolve(ROOT, "../shared/traces/lublin_256.swf");
const CONFIG = resolve(ROOT, "examples/sim-config.json");
const CLI = resolve(ROOT, "dist/bin/nowscale.js");

const { config, simulation } = parseSimConfig(JSON.parse(readFileSync(CONFIG, "utf8")), CONFIG);
const capacity = new Map(simulation.capacity.map((c) => [`${c.instanceType}@${c.zone}`, c.maxNodes]));

/**
 * One packed replay, as `nowscale simulate --out` runs it (timeline recorded). With `sampleHeap`, the
 * live heap (after a forced GC) is sampled as the replay goes, and its peak returned in MiB.
 */
function replay(workload: Workload, sampleHeap: boolean): { peakMiB: number; completed: number } {
  let peak = 0;
  let calls = 0;
  const sample = () => {
    peak = Math.max(peak, heapUsedMiB());
  };
  const [run] = simulate(workload, config, {
    policies: [{ kind: "packed" }],
    pollSeconds: 60,
    boot: { kind: "fixed", seconds: 180 },
    seed: 1,
    capacity,
    timeline: true,
    ...(sampleHeap ? { onProgress: () => (++calls % 8 === 0 ? sample() : undefined) } : {}),
  });
  if (sampleHeap) sample();
  return { peakMiB: peak, completed: run?.metrics.completedJobs ?? 0 };
}

/**
 * Replay time (median of `runs`, no instrumentation) and memory: the live heap's peak during a separate
 * replay, less the heap before the trace was read. Covers the parsed jobs, the simulated cluster and the
 * recorded timeline.
 */
async function measured(
  name: string,
  text: () => string,
  runs: number,
  targetMs?: number,
): Promise<BenchRow> {
  gc();
  const before = heapUsedMiB();
  const workload = toWorkload(parseSwf(text()).records, config, simulation);
  const jobs = workload.jobs.length;
  let completed = 0;
  const ms = await timeMedian(
    () => {
      completed = replay(workload, false).completed;
    },
    runs,
    runs > 1 ? 1 : 0,
  );
  const heapMiB = replay(workload, true).peakMiB - before;
  return {
    name,
    ms,
    heapMiB,
    extra: { jobs, completed, "KiB/job": ((heapMiB * 1024) / jobs).toFixed(2) },
    ...(targetMs === undefined ? {} : { targetMs }),
  };
}

/**
 * `nowscale simulate` of a 10k-job trace under four policies, as a user runs it: a new process each
 * time, start-up included (target < 2 s). The Lublin trace (10,000 jobs) when it is there, else a
 * synthetic trace of 10,000 jobs of a fixed seed: the same input every run.
 */
async function cliRow(): Promise<BenchRow> {
  let trace = LUBLIN;
  let dir: string | undefined;
  if (!existsSync(LUBLIN)) {
    dir = mkdtempSync(join(tmpdir(), "nowscale-bench-"));
    trace = join(dir, "synthetic-10k.swf");
    writeFileSync(trace, syntheticTrace({ jobs: 10_000, seed: 2026, meanInterarrivalS: 600, maxProcs: 64 }));
  }
  try {
    const args = [CLI, "simulate", "--trace", trace, "--config", CONFIG];
    const run = () =>
      execFileSync(process.execPath, [...args, "--compare", "thpc,packed,static:32,per-job", "--json"], {
        stdio: "pipe",
      });
    const { median, min } = await timeRuns(run, 5, 1);
    return {
      name: `nowscale simulate ${dir ? "synthetic 10k" : "lublin"}, 4 policies (process)`,
      ms: median,
      minMs: min,
      targetMs: 2000,
      headline: true,
    };
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Replay time and memory: the Lublin trace under packed (target < 10 s), and deterministic synthetic
 * traces of 50k and 100k jobs (target < 60 s for 100k); KiB/job at two sizes shows memory is linear.
 * Then the CLI under four policies, start-up included (cliRow).
 */
const bench: BenchModule = {
  title:
    "simulate: trace replay under packed (targets: lublin < 10 s, 100k jobs < 60 s), and the CLI under four policies (< 2 s)",
  async run() {
    const rows: BenchRow[] = [await cliRow()];
    if (existsSync(LUBLIN)) {
      rows.push(
        await measured("simulate lublin_256 (packed)", () => readFileSync(LUBLIN, "utf8"), 3, 10_000),
      );
    } else {
      console.log(
        `note: ${LUBLIN} not found; the Lublin row is skipped (place lublin_256.swf there to include it)`,
      );
    }
    for (const jobs of [50_000, 100_000]) {
      const text = () => syntheticTrace({ jobs, seed: 2026, meanInterarrivalS: 300, maxProcs: 128 });
      rows.push(
        await measured(
          `simulate synthetic ${jobs / 1000}k jobs (packed)`,
          text,
          1,
          jobs === 100_000 ? 60_000 : undefined,
        ),
      );
    }
    return rows;
  },
};
export default bench;
