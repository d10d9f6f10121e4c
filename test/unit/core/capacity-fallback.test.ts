import { describe, expect, it } from "vitest";
import { plan } from "../../../lib/core/index.js";
import { config, iso, job, minutes, parseStateWith, queue, T0 } from "./builders.js";

const NOW = T0 + minutes(10);

/** A queue whose best fit for a 4 CPU / 8 GiB job is c4m8 (two zones), then c8m16. */
const twoShapes = (overrides = {}) =>
  config(overrides, [
    queue({
      expansionNodeConfigs: [
        { zone: "z1", instanceType: "c4m8" },
        { zone: "z2", instanceType: "c4m8" },
        { zone: "z1", instanceType: "c8m16" },
      ],
    }),
  ]);

describe("capacity errors on every offering of the best-fit shape (issue 12, class 7)", () => {
  it("launches the next-best shape that fits, and says why", () => {
    // Prepare: both c4m8 offerings answered "no capacity" and are held.
    const state = parseStateWith({
      jobs: [job({ id: "a", memPerNodeMiB: 8000 })],
      unavailableOfferings: [
        { instanceType: "c4m8", zone: "z1" },
        { instanceType: "c4m8", zone: "z2", until: iso(NOW + minutes(5)) },
      ],
    });
    // Act
    const decision = plan(twoShapes(), state, NOW);
    // Assess
    expect(decision.launches).toEqual([
      expect.objectContaining({ instanceType: "c8m16", count: 1, jobs: ["a"] }),
    ]);
    expect(decision.launches[0]?.reason).toMatch(
      /next-best shape: the best fit 4 vCPU \/ 8192 MiB .*held unavailable/,
    );
  });

  it("drops only the held offerings when the best-fit shape still has one", () => {
    const state = parseStateWith({
      jobs: [job({ id: "a" })],
      unavailableOfferings: [{ instanceType: "c4m8", zone: "z1" }],
    });
    const decision = plan(twoShapes(), state, NOW);
    expect(decision.launches.map((l) => l.candidates.map((c) => `${c.instanceType}@${c.zone}`))).toEqual([
      ["c4m8@z2"],
    ]);
  });

  it("forgets a hold once its time has passed", () => {
    const state = parseStateWith({
      jobs: [job({ id: "a" })],
      unavailableOfferings: [
        { instanceType: "c4m8", zone: "z1", until: iso(NOW - 1000) },
        { instanceType: "c4m8", zone: "z2", until: iso(NOW - 1000) },
      ],
    });
    expect(plan(twoShapes(), state, NOW).launches[0]?.instanceType).toBe("c4m8");
  });

  it('keeps THPC\'s strict rule as capacityFallback "strict": waits, and says why', () => {
    const state = parseStateWith({
      jobs: [job({ id: "a" })],
      unavailableOfferings: [
        { instanceType: "c4m8", zone: "z1" },
        { instanceType: "c4m8", zone: "z2" },
      ],
    });
    const decision = plan(twoShapes({ capacityFallback: "strict" }), state, NOW);
    expect(decision.launches).toEqual([]);
    expect(decision.skipped).toEqual([
      expect.objectContaining({ job: "a", code: "BEST_FIT_UNAVAILABLE", copies: 1 }),
    ]);
  });

  it("skips with NO_CAPACITY when every fitting offering is held", () => {
    const state = parseStateWith({
      jobs: [job({ id: "a" })],
      unavailableOfferings: [
        { instanceType: "c4m8", zone: "z1" },
        { instanceType: "c4m8", zone: "z2" },
        { instanceType: "c8m16", zone: "z1" },
      ],
    });
    const decision = plan(twoShapes(), state, NOW);
    expect(decision.launches).toEqual([]);
    expect(decision.skipped).toEqual([expect.objectContaining({ job: "a", code: "NO_CAPACITY" })]);
  });

  it("holds a charge type only when one is named", () => {
    const cfg = config({}, [
      queue({
        expansionNodeConfigs: [
          { zone: "z1", instanceType: "c4m8", chargeType: "SPOT" },
          { zone: "z1", instanceType: "c4m8", chargeType: "ON_DEMAND" },
        ],
      }),
    ]);
    const state = parseStateWith({
      jobs: [job({ id: "a" })],
      unavailableOfferings: [{ instanceType: "c4m8", zone: "z1", chargeType: "SPOT" }],
    });
    expect(plan(cfg, state, NOW).launches[0]?.candidates).toEqual([
      { instanceType: "c4m8", zone: "z1", chargeType: "ON_DEMAND" },
    ]);
  });
});
