import { existsSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { replayLanes, warmUp } from "../../../lib/sim/parallel.js";
import { parseSimConfig } from "../../../lib/sim/sim-config.js";
import { type PolicySpec, simulateWithBound } from "../../../lib/sim/simulate.js";
import { parseSwf } from "../../../lib/sim/swf.js";
import { syntheticTrace } from "../../../lib/sim/synthetic.js";
import { toWorkload } from "../../../lib/sim/workload.js";

const FOUR: PolicySpec[] = [
  { kind: "thpc" },
  { kind: "packed" },
  { kind: "static", nodes: 8 },
  { kind: "per-job" },
];

describe("replayLanes", () => {
  it("puts thpc and packed on one worker when baselines keep the other busy", () => {
    // Act
    const lanes = replayLanes(FOUR, 2);

    // Assess
    expect(lanes).toEqual([
      { policies: [0, 1], workers: 1 },
      { policies: [2, 3], workers: 1 },
    ]);
  });

  it("spreads the baselines over the remaining cores, at most one worker each", () => {
    // Prepare
    const policies: PolicySpec[] = [
      { kind: "static", nodes: 4 },
      { kind: "packed" },
      { kind: "static", nodes: 8 },
      { kind: "thpc" },
    ];

    // Act / Assess
    expect(replayLanes(policies, 8)).toEqual([
      { policies: [1, 3], workers: 1 },
      { policies: [0, 2], workers: 2 },
    ]);
  });

  it("gives every worker the next policy when there is nothing to pair or only one core", () => {
    // Act / Assess: thpc and packed alone replay side by side; one of them with a baseline too.
    expect(replayLanes([{ kind: "thpc" }, { kind: "packed" }], 2)).toEqual([
      { policies: [0, 1], workers: 2 },
    ]);
    expect(replayLanes([{ kind: "thpc" }, { kind: "per-job" }, { kind: "static", nodes: 2 }], 2)).toEqual([
      { policies: [0, 1, 2], workers: 2 },
    ]);
    expect(replayLanes(FOUR, 1)).toEqual([{ policies: [0, 1, 2, 3], workers: 1 }]);
    expect(replayLanes([{ kind: "packed" }], 4)).toEqual([{ policies: [0], workers: 1 }]);
  });
});

describe("warmUp", () => {
  it("changes neither the workload nor the replays that follow it", () => {
    // Prepare
    const { config, simulation } = parseSimConfig({
      catalogs: ["aws"],
      queueConfigs: [
        {
          queueName: "compute",
          maxSize: 40,
          expansionNodeConfigs: [
            { zone: "a", instanceType: "c5.xlarge" },
            { zone: "a", instanceType: "c5.4xlarge" },
          ],
        },
      ],
    });
    const trace = parseSwf(syntheticTrace({ jobs: 150, seed: 8, meanInterarrivalS: 60, maxProcs: 16 }));
    const workload = toWorkload(trace.records, config, simulation);
    const before = JSON.stringify(workload);
    const options = {
      policies: FOUR,
      pollSeconds: 30,
      boot: { kind: "fixed" as const, seconds: 120 },
      seed: 4,
      capacity: new Map<string, number>(),
      timeline: false,
    };
    const fresh = JSON.stringify(simulateWithBound(workload, config, options));

    // Act
    warmUp(workload, config, FOUR, options, simulateWithBound(workload, config, options).bound);

    // Assess
    expect(JSON.stringify(workload)).toBe(before);
    expect(JSON.stringify(simulateWithBound(workload, config, options))).toBe(fresh);
  });
});

/** The built modules (worker threads run dist/lib/sim/replay-worker.js; build first: npm run build). */
const DIST = resolve(import.meta.dirname, "../../../dist/lib/sim");

describe("simulateInParallel (built)", () => {
  it("gives the same runs and bound as replaying every policy in this thread", async () => {
    // Prepare: an own instance type (the workers get the catalog from the main thread) and a capacity
    // limit that makes launches fall back.
    if (!existsSync(resolve(DIST, "parallel.js")))
      throw new Error(`${DIST} is missing: run "npm run build" first`);
    const parallel = (await import(
      pathToFileURL(resolve(DIST, "parallel.js")).href
    )) as typeof import("../../../lib/sim/parallel.js");
    const sim = (await import(
      pathToFileURL(resolve(DIST, "simulate.js")).href
    )) as typeof import("../../../lib/sim/simulate.js");
    const { config, simulation } = parseSimConfig({
      instanceTypes: { "own.big": { vcpus: 24, memoryMiB: 49152, pricePerHour: 0.9 } },
      catalogs: ["aws"],
      queueConfigs: [
        {
          queueName: "compute",
          maxSize: 60,
          expansionNodeConfigs: [
            { zone: "a", instanceType: "c5.xlarge" },
            { zone: "a", instanceType: "own.big" },
            { zone: "b", instanceType: "c5.2xlarge" },
          ],
        },
      ],
      simulation: { capacity: [{ instanceType: "own.big", zone: "a", maxNodes: 2 }] },
    });
    const trace = parseSwf(syntheticTrace({ jobs: 250, seed: 3, meanInterarrivalS: 90, maxProcs: 40 }));
    const workload = toWorkload(trace.records, config, simulation);
    const options = {
      policies: FOUR,
      pollSeconds: 60,
      boot: { kind: "uniform" as const, minSeconds: 120, maxSeconds: 240 },
      seed: 11,
      capacity: new Map([["own.big@a", 2]]),
      timeline: true,
    };

    // Act
    const inThread = sim.simulateWithBound(workload, config, options);
    const onWorkers = await parallel.simulateInParallel(workload, config, options);

    // Assess: the same figures, waits and timelines, in the order the policies were given.
    const view = (r: typeof inThread) =>
      JSON.stringify({ bound: r.bound, runs: r.runs.map((run) => ({ ...run, waits: [...run.waits] })) });
    expect(view(onWorkers)).toBe(view(inThread));
    expect(onWorkers.runs.map((r) => r.policy)).toEqual(["thpc", "packed", "static:8", "per-job"]);
    expect(onWorkers.runs[0]?.metrics.launches).toBeGreaterThan(0);
    // On one core everything replays in this thread; the comparison above then holds trivially.
    if (availableParallelism() < 2) console.log("one core: simulateInParallel replayed in this thread");
  });
});

describe("startReplays (built)", () => {
  it("on two cores replays the baselines' lane in this thread and starts one worker for thpc and packed", async () => {
    // Prepare: the built module (its workers run dist/lib/sim/replay-worker.js).
    if (!existsSync(resolve(DIST, "parallel.js")))
      throw new Error(`${DIST} is missing: run "npm run build" first`);
    const parallel = (await import(
      pathToFileURL(resolve(DIST, "parallel.js")).href
    )) as typeof import("../../../lib/sim/parallel.js");

    // Act
    const four = parallel.startReplays(FOUR, 2);
    const pair = parallel.startReplays([{ kind: "thpc" }, { kind: "packed" }], 2);
    const oneCore = parallel.startReplays(FOUR, 1);
    const onePolicy = parallel.startReplays([{ kind: "packed" }], 2);
    const shape = (s: typeof four) => ({
      local: s.local?.policies,
      workers: s.workers.map((w) => w.lane.policies),
    });
    const shapes = [four, pair, oneCore, onePolicy].map(shape);
    await Promise.all([four, pair, oneCore, onePolicy].map((s) => s.stop()));

    // Assess: a lane of one worker beside another lane runs here; a lane of two stays on workers.
    expect(shapes).toEqual([
      { local: [2, 3], workers: [[0, 1]] },
      {
        local: undefined,
        workers: [
          [0, 1],
          [0, 1],
        ],
      },
      { local: undefined, workers: [] },
      { local: undefined, workers: [] },
    ]);
    // stop twice is harmless (the CLI stops them again after simulateInParallel has).
    await expect(four.stop()).resolves.toBeUndefined();
  });

  it("loads no validation in a replay worker: its modules import no zod", () => {
    // Prepare: the static imports of the built worker, followed through the project's own modules.
    const worker = resolve(DIST, "replay-worker.js");
    if (!existsSync(worker)) throw new Error(`${DIST} is missing: run "npm run build" first`);
    const seen = new Set<string>();
    const packages = new Set<string>();
    const walk = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const source = readFileSync(file, "utf8");
      for (const m of source.matchAll(/^(?:import|export)\b[^;]*?\bfrom\s*"([^"]+)"|^import\s*"([^"]+)"/gm)) {
        const spec = (m[1] ?? m[2]) as string;
        if (spec.startsWith(".")) walk(resolve(dirname(file), spec));
        else packages.add(spec);
      }
    };

    // Act
    walk(worker);

    // Assess: the planner is there, the config schemas (and zod, about 50 ms of start-up) are not.
    expect([...seen].some((f) => f.endsWith("core/plan.js"))).toBe(true);
    expect([...seen].filter((f) => f.endsWith("core/config.js"))).toEqual([]);
    expect([...packages].filter((p) => p === "zod" || p.startsWith("zod/"))).toEqual([]);
  });

  it("refuses replays started for other policies, and stops their workers", async () => {
    // Prepare
    const parallel = (await import(
      pathToFileURL(resolve(DIST, "parallel.js")).href
    )) as typeof import("../../../lib/sim/parallel.js");
    const started = parallel.startReplays(FOUR, 2);
    const options = {
      policies: [{ kind: "thpc" }, { kind: "per-job" }] as PolicySpec[],
      pollSeconds: 60,
      boot: { kind: "fixed" as const, seconds: 180 },
      seed: 1,
      capacity: new Map<string, number>(),
      timeline: false,
    };
    const { config } = parseSimConfig({
      catalogs: ["aws"],
      queueConfigs: [
        { queueName: "compute", expansionNodeConfigs: [{ zone: "a", instanceType: "c5.xlarge" }] },
      ],
    });

    // Act
    const run = parallel.simulateInParallel({ jobs: [], skipped: {} }, config, options, started);

    // Assess
    await expect(run).rejects.toThrow("simulateInParallel: the replays were started for other policies");
    expect(started.workers.every(({ worker }) => worker.threadId === -1)).toBe(true);
  });
});
