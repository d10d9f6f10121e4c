import { describe, expect, it } from "vitest";
import { plan } from "../../../lib/core/index.js";
import { config, iso, job, minutes, node, queue, state, T0 } from "./builders.js";

const NOW = T0 + minutes(10);

describe("plan: scale-out", () => {
  it("seed's multi-type, multi-AZ example: all 8 vCPU / 16 GiB entries are candidates in index order", () => {
    // Prepare: the seed's list for queue compute (plus a smaller type first), a 6 CPU / 12 GB job.
    const cfg = config(
      {
        instanceTypes: {
          c4m8: { vcpus: 4, memoryMiB: 8192 },
          SA2: { vcpus: 8, memoryMiB: 16384 },
          SA3: { vcpus: 8, memoryMiB: 16384 },
        },
      },
      [
        queue({
          expansionNodeConfigs: [
            { instanceType: "c4m8", zone: "gz-3" },
            { instanceType: "SA2", zone: "gz-4" },
            { instanceType: "SA2", zone: "gz-5" },
            { instanceType: "SA2", zone: "gz-6" },
            { instanceType: "SA3", zone: "gz-5" },
            { instanceType: "SA3", zone: "gz-6" },
          ],
        }),
      ],
    );
    // Act
    const decision = plan(cfg, state([job({ id: "6c", cpusPerNode: 6, memPerNodeMiB: 12 * 1024 })]), NOW);
    // Assess
    expect(decision.launches).toHaveLength(1);
    const launch = decision.launches[0];
    expect(launch).toMatchObject({
      queue: "compute",
      instanceType: "SA2",
      zone: "gz-4",
      count: 1,
      jobs: ["6c"],
    });
    expect(launch?.candidates.map((c) => `${c.instanceType}@${c.zone}`)).toEqual([
      "SA2@gz-4",
      "SA2@gz-5",
      "SA2@gz-6",
      "SA3@gz-5",
      "SA3@gz-6",
    ]);
  });

  it("counts launching nodes against the demand, so no cycle launches twice", () => {
    const cfg = config();
    const jobs = [job({ id: "a" }), job({ id: "b" }), job({ id: "c" })];
    const first = plan(cfg, state(jobs), NOW);
    expect(first.launches[0]?.count).toBe(3);
    const second = plan(
      cfg,
      state(jobs, [node("n1", { state: "LAUNCHING" }), node("n2", { state: "LAUNCHING" })]),
      NOW,
    );
    expect(second.launches.map((l) => [l.count, l.jobs])).toEqual([[1, ["c"]]]);
    expect(
      second.skipped.filter((s) => "job" in s).map((s) => [("job" in s && s.job) || "", s.code]),
    ).toEqual([
      ["a", "COVERED_BY_EXISTING_NODES"],
      ["b", "COVERED_BY_EXISTING_NODES"],
    ]);
  });

  it("caps at maxSize including existing nodes and says why", () => {
    const cfg = config({}, [queue({ maxSize: 3 })]);
    const jobs = [job({ id: "a" }), job({ id: "b", nodes: 2 }), job({ id: "c" })];
    const decision = plan(cfg, state(jobs, [node("busy", { state: "ALLOCATED" })]), NOW);
    // Room for 2: job a (1 node) fits, job b (2 nodes) does not, job c (1 node) still does.
    expect(decision.launches.flatMap((l) => l.jobs)).toEqual(["a", "c"]);
    expect(decision.skipped).toContainEqual(expect.objectContaining({ job: "b", code: "QUEUE_AT_MAX_SIZE" }));
  });

  it("caps at maxNodesPerCycle including launching nodes", () => {
    const cfg = config({}, [queue({ maxNodesPerCycle: 4 })]);
    const jobs = Array.from({ length: 6 }, (_, i) => job({ id: `j${i}` }));
    const decision = plan(cfg, state(jobs, [node("l1", { state: "LAUNCHING" })]), NOW);
    expect(decision.launches.reduce((n, l) => n + l.count, 0)).toBe(3);
    expect(
      decision.skipped.filter((s) => s.code === "CYCLE_CAP_REACHED").map((s) => ("job" in s ? s.job : "")),
    ).toEqual(["j4", "j5"]);
  });

  it("skips a job no entry fits, and one that has not waited expansionBusyTime, with reasons", () => {
    const cfg = config({ expansionBusyTime: 120 });
    const decision = plan(
      cfg,
      state([job({ id: "huge", cpusPerNode: 64 }), job({ id: "new", submittedAt: iso(NOW - 30_000) })]),
      NOW,
    );
    expect(decision.launches).toEqual([]);
    expect(decision.skipped).toEqual([
      expect.objectContaining({
        job: "huge",
        code: "NO_FITTING_SHAPE",
        reason: expect.stringContaining("64 CPU"),
      }),
      expect.objectContaining({
        job: "new",
        code: "BUSY_TIME_NOT_REACHED",
        reason: "waited 30 s of expansionBusyTime 120 s",
      }),
    ]);
  });

  it("launches a multi-node job's set all-or-nothing when the whole set fits the round", () => {
    const decision = plan(config(), state([job({ id: "mpi", nodes: 4 }), job({ id: "one" })]), NOW);
    expect(decision.launches.map((l) => [l.jobs, l.count, l.allOrNothing])).toEqual([
      [["mpi"], 4, true],
      [["one"], 1, false],
    ]);
  });

  it("leaves blocked jobs, unknown queues and disabled expansion out of the demand, with reasons", () => {
    const cfg = config({}, [queue(), queue({ queueName: "off", enableAutoExpansion: false })]);
    const decision = plan(
      cfg,
      state([
        job({ id: "held", state: "BLOCKED", reason: "JobHeldUser" }),
        job({ id: "lost", queue: "nowhere" }),
        job({ id: "off1", queue: "off" }),
      ]),
      NOW,
    );
    expect(decision.launches).toEqual([]);
    expect(decision.skipped.map((s) => s.code)).toEqual([
      "BLOCKED",
      "QUEUE_NOT_CONFIGURED",
      "AUTO_EXPANSION_DISABLED",
    ]);
  });

  it("tops a queue up to minSize with its first entry", () => {
    const decision = plan(config({}, [queue({ minSize: 2 })]), state(), NOW);
    expect(decision.launches).toEqual([
      expect.objectContaining({ count: 2, jobs: [], instanceType: "c4m8" }),
    ]);
  });

  it("uses an idle node before launching and keeps it from being shrunk", () => {
    // The job arrived 30 s ago, within the safety net's reservationTimeout: Slurm has not had its pass yet.
    const decision = plan(
      config(),
      state(
        [job({ id: "a", submittedAt: iso(NOW - 30_000) })],
        [node("idle1", { idleSince: iso(T0 - minutes(60)) })],
      ),
      NOW,
    );
    expect(decision.launches).toEqual([]);
    expect(decision.shrinks).toEqual([]);
    expect(decision.skipped).toContainEqual(
      expect.objectContaining({ node: "idle1", code: "RESERVED_FOR_PENDING_JOB" }),
    );
  });

  it("handles aggregated identical jobs (count) as that many jobs", () => {
    const decision = plan(config(), state([job({ id: "agg", count: 5 })]), NOW);
    expect(decision.launches.map((l) => l.count)).toEqual([5]);
  });
});
