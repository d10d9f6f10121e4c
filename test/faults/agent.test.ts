import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDynalite, type TestDynamo } from "../support/dynalite.js";
import type { AgentFault } from "../support/faults/agent.js";
import { faultSeed } from "../support/faults/rng.js";
import { World } from "../support/faults/world.js";
import { settle } from "./promises.js";
import { MINUTE, submitJobs, unfinished } from "./workload.js";

/**
 * Faults at the AgentChannel port (test/support/faults/agent.ts): reports that lie for one poll, and an
 * agent that cannot answer. Decisions that destroy must not follow one wrong report.
 */

let db: TestDynamo;
beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => {
  await db.close();
});

const seed = faultSeed();

describe("agent faults", () => {
  for (const to of ["IDLE", "DRAINED"] as const) {
    it(`a report flaps a busy node to ${to} for one poll`, async (ctx) => {
      // Prepare: three nodes busy with 40-minute jobs; one scaler poll at minute 10 sees one of them free
      const world = await World.create(db, {
        name: `report flaps a busy node to ${to}`,
        seed,
        agent: [{ kind: "flapBusy", to, actor: "scaler", fromMs: 10 * MINUTE, times: 1 }],
      });
      submitJobs(world, 3, { minutes: 40 });
      // Act
      await world.run(60 * MINUTE);
      await settle(ctx, world);
      // Assess
      expect(world.agentFaults.injected.get("flapBusy")).toBe(1);
      expect(unfinished(world)).toBe(0);
    });
  }

  it("a job lands on a node between the report and its drain: the node is drained, not terminated while the job runs", async (ctx) => {
    // Prepare: two 5-minute jobs; once their nodes have idled past shrinkIdleTime the scaler drains them,
    // and Slurm starts a new job on the first just before that drain lands (the same-poll terminate
    // then reads the node back DRAINING)
    const world = await World.create(db, {
      name: "a job lands between the report and the drain",
      seed,
      agent: [{ kind: "jobBeforeDrain", actor: "scaler", times: 1 }],
    });
    const submitted = submitJobs(world, 2, { minutes: 5 });
    // Act
    await world.run(60 * MINUTE);
    await settle(ctx, world);
    // Assess: the landed job ran to its end on its node; every node went once idle
    const landed = [...world.sim().jobs.values()].filter((j) => !submitted.includes(j.id));
    expect(world.agentFaults.injected.get("jobBeforeDrain")).toBe(1);
    expect(landed.map((j) => [j.state, j.requeues])).toEqual([["DONE", 0]]);
    expect(world.sim().losses).toEqual([]);
    expect(unfinished(world)).toBe(0);
    expect(world.sim().liveComputes()).toEqual([]);
  });

  it("nodes missing from one report while jobs wait for room", async (ctx) => {
    // Prepare: the queue is full (4 of 4 busy) and 4 more jobs wait; one report leaves out all 4 nodes
    const world = await World.create(db, {
      name: "nodes missing from one report",
      seed,
      agent: [{ kind: "dropNodes", count: 4, actor: "scaler", fromMs: 10 * MINUTE, times: 1 }],
    });
    submitJobs(world, 8, { minutes: 20 });
    // Act
    await world.run(60 * MINUTE);
    await settle(ctx, world);
    // Assess
    expect(world.agentFaults.injected.get("dropNodes")).toBe(1);
  });

  const outages: [string, AgentFault][] = [
    ["agent unreachable for 10 minutes", { kind: "unreachable", fromMs: 5 * MINUTE, untilMs: 15 * MINUTE }],
    [
      "agent slow (20 s answers) for 10 minutes",
      { kind: "slow", ms: 20_000, fromMs: 5 * MINUTE, untilMs: 15 * MINUTE },
    ],
    ["agent answers 256 MiB for 10 minutes", { kind: "tooLarge", fromMs: 5 * MINUTE, untilMs: 15 * MINUTE }],
  ];
  for (const [name, fault] of outages) {
    it(name, async (ctx) => {
      // Prepare: nodes busy, more jobs arriving during the outage
      const world = await World.create(db, { name, seed, agent: [fault] });
      submitJobs(world, 3, { minutes: 20 });
      await world.run(7 * MINUTE);
      submitJobs(world, 2, { minutes: 10 });
      // Act
      await world.run(50 * MINUTE);
      await settle(ctx, world);
      // Assess
      expect(unfinished(world)).toBe(0);
    });
  }
});
