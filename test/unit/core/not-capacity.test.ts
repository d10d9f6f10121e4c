import { describe, expect, it } from "vitest";
import { plan } from "../../../lib/core/index.js";
import { config, iso, job, minutes, node, queue, state, T0 } from "./builders.js";

const NOW = T0 + minutes(60);

describe("nodes that are not capacity cover demand only within bootTimeout (issue 12, class 6)", () => {
  it.each(["LAUNCHING", "NOT_READY"] as const)("a %s node launched 5 min ago covers a pending job", (st) => {
    // Prepare: bootTimeout 900 s.
    const decision = plan(
      config(),
      state([job({ id: "a" })], [node("n1", { state: st, launchedAt: iso(NOW - minutes(5)) })]),
      NOW,
    );
    // Assess
    expect(decision.launches).toEqual([]);
    expect(decision.skipped).toContainEqual(
      expect.objectContaining({ job: "a", code: "COVERED_BY_EXISTING_NODES" }),
    );
  });

  it("past bootTimeout a NOT_READY node (powered down, not responding, unknown) covers nothing and is retired", () => {
    // Prepare: launched 20 min ago, still not capacity.
    const decision = plan(
      config(),
      state([job({ id: "a" })], [node("stuck", { state: "NOT_READY", launchedAt: iso(NOW - minutes(20)) })]),
      NOW,
    );
    // Assess: the job launches elsewhere; the node is terminated (the scale cycle does it only for its own).
    expect(decision.launches).toEqual([expect.objectContaining({ count: 1, jobs: ["a"] })]);
    expect(decision.shrinks).toEqual([
      expect.objectContaining({
        node: "stuck",
        action: "terminate",
        reason: expect.stringMatching(/1200 s after launch/),
      }),
    ]);
  });

  it("past bootTimeout a LAUNCHING node covers nothing and is flagged for the reconciler", () => {
    const decision = plan(
      config({ bootTimeout: 600 }),
      state([job({ id: "a" })], [node("slow", { state: "LAUNCHING", launchedAt: iso(NOW - minutes(11)) })]),
      NOW,
    );
    expect(decision.launches).toEqual([expect.objectContaining({ count: 1, jobs: ["a"] })]);
    expect(decision.skipped).toContainEqual(
      expect.objectContaining({ node: "slow", code: "BOOT_TIMEOUT_PASSED" }),
    );
    expect(decision.shrinks).toEqual([]);
  });

  it("a NOT_READY node of unknown launch time never covers demand, and is flagged but left alone", () => {
    const decision = plan(config(), state([job({ id: "a" })], [node("future", { state: "NOT_READY" })]), NOW);
    expect(decision.launches).toEqual([expect.objectContaining({ count: 1 })]);
    expect(decision.skipped).toContainEqual(
      expect.objectContaining({ node: "future", code: "BOOT_TIMEOUT_PASSED" }),
    );
    expect(decision.shrinks).toEqual([]);
  });

  it("a NOT_READY node that still holds a running job is never retired", () => {
    const decision = plan(
      config(),
      state(
        [job({ id: "r", state: "RUNNING", nodeNames: ["busy"] })],
        [node("busy", { state: "NOT_READY", launchedAt: iso(NOW - minutes(30)) })],
      ),
      NOW,
    );
    expect(decision.shrinks).toEqual([]);
    expect(decision.skipped).toContainEqual(expect.objectContaining({ node: "busy", code: "RUNS_A_JOB" }));
  });
});

describe("the safety net: an idle node Slurm does not use stops covering the job", () => {
  it("within reservationTimeout the idle node is reserved; after it the job is re-planned and the node may shrink", () => {
    // Prepare: one c4m8 node idle for 10 min; the job arrived 30 s (then 2 min) ago; shrinkIdleTime 300 s.
    const cfg = config({}, [
      queue({
        expansionNodeConfigs: [
          { zone: "z1", instanceType: "c4m8" },
          { zone: "z1", instanceType: "c8m16" },
        ],
      }),
    ]);
    const idle = node("n1", { idleSince: iso(NOW - minutes(10)) });
    // Act
    const early = plan(
      cfg,
      state([job({ id: "a", submittedAt: iso(NOW - 30_000), reason: "Resources" })], [idle]),
      NOW,
    );
    const late = plan(
      cfg,
      state([job({ id: "a", submittedAt: iso(NOW - 120_000), reason: "Resources" })], [idle]),
      NOW,
    );
    // Assess
    expect(early.launches).toEqual([]);
    expect(early.skipped).toContainEqual(
      expect.objectContaining({ node: "n1", code: "RESERVED_FOR_PENDING_JOB" }),
    );
    expect(early.mismatches).toEqual([]);
    // Slurm had 120 s with n1 idle and did not start the job there: NowScale's reading was wrong for c4m8.
    expect(late.mismatches).toEqual([
      expect.objectContaining({ node: "n1", job: "a", waitedS: 120, slurmReason: "Resources" }),
    ]);
    expect(late.launches).toEqual([expect.objectContaining({ instanceType: "c8m16", jobs: ["a"] })]);
    expect(late.shrinks).toEqual([expect.objectContaining({ node: "n1", action: "drain" })]);
  });

  it("when only the refused type fits, the job is held with Slurm's reason instead of launching more of it", () => {
    const decision = plan(
      config(),
      state(
        [job({ id: "a", submittedAt: iso(NOW - minutes(5)), reason: "Resources" })],
        [node("n1", { idleSince: iso(NOW - minutes(5)) })],
      ),
      NOW,
    );
    expect(decision.launches).toEqual([]);
    expect(decision.skipped).toContainEqual(
      expect.objectContaining({
        job: "a",
        code: "NOT_STARTED_BY_SLURM",
        reason: expect.stringMatching(/idle c4m8 node n1 for 300 s \(Slurm: Resources\)/),
      }),
    );
    expect(decision.skipped).not.toContainEqual(
      expect.objectContaining({ node: "n1", code: "RESERVED_FOR_PENDING_JOB" }),
    );
  });
});
