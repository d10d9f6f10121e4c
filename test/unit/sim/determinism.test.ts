import { describe, expect, it } from "vitest";
import { bootSampler, parseBootTime } from "../../../lib/sim/boot-time.js";
import { parseSimConfig } from "../../../lib/sim/sim-config.js";
import { type PolicySpec, simulate } from "../../../lib/sim/simulate.js";
import { parseSwf } from "../../../lib/sim/swf.js";
import { syntheticTrace } from "../../../lib/sim/synthetic.js";
import { toWorkload } from "../../../lib/sim/workload.js";

const POLICIES: PolicySpec[] = [
  { kind: "thpc" },
  { kind: "packed" },
  { kind: "static", nodes: 8 },
  { kind: "per-job" },
];

/** Replays a 300-job synthetic trace under every policy with normally distributed boot times. */
function replayJson(seed: number): string {
  const { config, simulation } = parseSimConfig({
    catalogs: ["aws"],
    queueConfigs: [
      {
        queueName: "compute",
        maxSize: 60,
        expansionNodeConfigs: [
          { zone: "a", instanceType: "c5.2xlarge" },
          { zone: "a", instanceType: "c5.xlarge" },
          { zone: "b", instanceType: "c5.xlarge" },
        ],
      },
    ],
    simulation: { capacity: [{ instanceType: "c5.xlarge", zone: "a", maxNodes: 3 }] },
  });
  const trace = parseSwf(syntheticTrace({ jobs: 300, seed: 5, meanInterarrivalS: 120, maxProcs: 32 }));
  const workload = toWorkload(trace.records, config, simulation);
  const runs = simulate(workload, config, {
    policies: POLICIES,
    pollSeconds: 60,
    boot: { kind: "normal", meanSeconds: 180, sdSeconds: 40 },
    seed,
    capacity: new Map([["c5.xlarge@a", 3]]),
    timeline: true,
  });
  return JSON.stringify(
    runs.map((r) => ({
      policy: r.policy,
      metrics: r.metrics,
      waits: [...r.waits],
      points: r.timeline?.length,
    })),
  );
}

describe("determinism", () => {
  it("gives identical results for the same inputs and seed", () => {
    // Act
    const first = replayJson(42);
    const second = replayJson(42);

    // Assess
    expect(second).toBe(first);
    expect(JSON.parse(first)[0].metrics.completedJobs).toBe(300);
  });

  it("draws different boot times for a different seed", () => {
    // Act
    const a = replayJson(42);
    const b = replayJson(43);

    // Assess
    expect(b).not.toBe(a);
  });

  it("the synthetic trace generator is deterministic too", () => {
    // Act
    const a = syntheticTrace({ jobs: 50, seed: 9, meanInterarrivalS: 60, maxProcs: 64 });
    const b = syntheticTrace({ jobs: 50, seed: 9, meanInterarrivalS: 60, maxProcs: 64 });

    // Assess
    expect(b).toBe(a);
    expect(parseSwf(a).records).toHaveLength(50);
  });
});

describe("boot time", () => {
  it("parses the three forms and rejects others with a hint", () => {
    // Act / Assess
    expect(parseBootTime("180")).toEqual({ kind: "fixed", seconds: 180 });
    expect(parseBootTime("uniform:120:300")).toEqual({ kind: "uniform", minSeconds: 120, maxSeconds: 300 });
    expect(parseBootTime("normal:180:30")).toEqual({ kind: "normal", meanSeconds: 180, sdSeconds: 30 });
    expect(parseBootTime("uniform:300:120")).toMatch(/MIN must not exceed MAX/);
    expect(parseBootTime("fast")).toMatch(/uniform:MIN:MAX/);
    expect(parseBootTime("")).toMatch(/invalid boot time/);
  });

  it("draws uniform boot times within bounds, the same sequence for the same seed", () => {
    // Prepare
    const spec = { kind: "uniform" as const, minSeconds: 120, maxSeconds: 300 };
    const a = bootSampler(spec, 7);
    const b = bootSampler(spec, 7);

    // Act
    const drawsA = Array.from({ length: 200 }, a);
    const drawsB = Array.from({ length: 200 }, b);

    // Assess
    expect(drawsB).toEqual(drawsA);
    expect(Math.min(...drawsA)).toBeGreaterThanOrEqual(120_000);
    expect(Math.max(...drawsA)).toBeLessThanOrEqual(300_000);
    expect(new Set(drawsA).size).toBeGreaterThan(100);
  });

  it("never draws a negative normal boot time", () => {
    // Prepare: sd as large as the mean puts many raw draws below zero.
    const draw = bootSampler({ kind: "normal", meanSeconds: 10, sdSeconds: 10 }, 3);

    // Act
    const draws = Array.from({ length: 500 }, draw);

    // Assess
    expect(Math.min(...draws)).toBe(0);
    expect(draws.reduce((s, x) => s + x, 0) / draws.length).toBeGreaterThan(8_000);
  });
});
