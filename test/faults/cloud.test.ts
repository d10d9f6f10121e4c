import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDynalite, type TestDynamo } from "../support/dynalite.js";
import { faultSeed } from "../support/faults/rng.js";
import { World } from "../support/faults/world.js";
import { settle } from "./promises.js";
import { HOUR, MINUTE, submitJobs, unfinished } from "./workload.js";

/**
 * Faults at the CloudProvider port (test/support/faults/provider.ts), one class per scenario. Each runs
 * the real scaler (every minute), reconciler (every 2 minutes) and API on dynalite against the fake
 * cloud and a simulated Slurm, and asserts the five promises (test/faults/promises.ts).
 */

let db: TestDynamo;
beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => {
  await db.close();
});

const seed = faultSeed();

describe("cloud faults", () => {
  it("no faults (baseline): scales out to the jobs, runs them and shrinks back to zero", async (ctx) => {
    // Prepare
    const world = await World.create(db, { name: "no faults (baseline)", seed });
    submitJobs(world, 6, { minutes: 10 });
    // Act
    await world.run(45 * MINUTE);
    await settle(ctx, world);
    // Assess
    expect(unfinished(world)).toBe(0);
    expect(world.sim().liveComputes()).toEqual([]);
  });

  it("throttling for a while: every cloud call throttled for 10 minutes", async (ctx) => {
    // Prepare: the adapter spends 30 s backing off before each throttled answer
    const world = await World.create(db, {
      name: "cloud throttled for 10 minutes",
      seed,
      provider: [{ kind: "throttle", fromMs: 3 * MINUTE, untilMs: 13 * MINUTE, costMs: 30_000 }],
    });
    submitJobs(world, 3, { minutes: 20 });
    await world.run(3 * MINUTE);
    submitJobs(world, 3, { minutes: 20 });
    // Act
    await world.run(60 * MINUTE);
    await settle(ctx, world);
    // Assess
    expect(unfinished(world)).toBe(0);
  });

  it("capacity errors on every candidate but the last", async (ctx) => {
    // Prepare
    const world = await World.create(db, {
      name: "capacity on the last candidate only",
      seed,
      queues: [
        {
          name: "compute",
          maxSize: 4,
          candidates: [
            { instanceType: "c5.xlarge", zone: "zone-a" },
            { instanceType: "c5.xlarge", zone: "zone-b" },
            { instanceType: "m5.xlarge", zone: "zone-c" },
          ],
        },
      ],
      provider: [{ kind: "capacityButLast" }],
    });
    submitJobs(world, 4, { minutes: 15 });
    // Act
    await world.run(40 * MINUTE);
    await settle(ctx, world);
    // Assess
    expect(unfinished(world)).toBe(0);
    const computeRuns = world.cloud
      .callsOf("run")
      .map((c) => c.input as { zone: string; tags: Record<string, string> })
      .filter((input) => input.tags["nowscale:queue"] === "compute");
    expect(computeRuns.length).toBeGreaterThan(0);
    // THPC's fallback list holds the best-fit shape's offerings only (c5.xlarge in zone-a, zone-b): every
    // launch lands on the last of them. Falling back to the next-best shape (m5.xlarge in zone-c) once
    // all of these are held unavailable is issue 12, item 7.
    expect(computeRuns.every((input) => input.zone === "zone-b")).toBe(true);
  });

  it("partial capacity: best-effort launches get half, all-or-nothing sets fall short and are not released", async (ctx) => {
    // Prepare: single-node jobs (best-effort) and one 3-node job (all-or-nothing), the first 3 launches short
    const world = await World.create(db, {
      name: "partial capacity",
      seed,
      queues: [{ name: "compute", maxSize: 6 }],
      provider: [{ kind: "partial", fraction: 0.5, times: 3 }],
    });
    submitJobs(world, 1, { minutes: 30, nodes: 3 });
    submitJobs(world, 2, { minutes: 30 });
    // Act
    await world.run(50 * MINUTE);
    await settle(ctx, world);
    // Assess
    expect(world.observer.launches.length).toBeGreaterThan(3);
  });

  it("a crash between launch and record", async (ctx) => {
    // Prepare: the first launch starts its instances, then the scaler dies before recording them
    const world = await World.create(db, {
      name: "crash between launch and record",
      seed,
      provider: [{ kind: "crashAfterLaunch", times: 1, fromMs: MINUTE }],
    });
    await world.run(MINUTE);
    submitJobs(world, 3, { minutes: 20 });
    // Act
    await world.run(40 * MINUTE);
    await settle(ctx, world);
    // Assess
    expect(world.crashes.map((c) => c.actor)).toEqual(["scaler"]);
    expect(unfinished(world)).toBe(0);
  });

  for (const [label, fault] of [
    ["listing short by one", { kind: "listShort" }],
    ["listing empty once", { kind: "listEmpty" }],
    ["listing paged short", { kind: "listPaged", pageSize: 2 }],
  ] as const) {
    it(`${label}: one reconciler listing misses running instances while their nodes run jobs`, async (ctx) => {
      // Prepare: three nodes busy with 40-minute jobs; the reconciler's listing at minute 10 is wrong once
      const world = await World.create(db, {
        name: label,
        seed,
        provider: [{ ...fault, actor: "reconciler", fromMs: 9 * MINUTE, times: 1 }],
      });
      submitJobs(world, 3, { minutes: 40 });
      // Act
      await world.run(30 * MINUTE);
      await settle(ctx, world);
      // Assess
      expect(world.providerFaults.injected.get(fault.kind)).toBe(1);
    });
  }

  it("clock skew: the scaler 1 min behind, the reconciler 2 min ahead, the cloud 10 min behind", async (ctx) => {
    // Prepare: the scaler and the reconciler run at the same time when both are due
    const world = await World.create(db, {
      name: "clock skew",
      seed,
      skew: { scaler: -MINUTE, reconciler: 2 * MINUTE, api: 30_000 },
      provider: [{ kind: "skew", skewMs: -10 * MINUTE }],
    });
    world.cadence.overlap = true;
    for (let minute = 0; minute < 30; minute += 5) {
      submitJobs(world, 2, { minutes: 12 });
      await world.run(5 * MINUTE);
    }
    // Act
    await world.run(30 * MINUTE);
    await settle(ctx, world);
    // Assess
    expect(unfinished(world)).toBe(0);
  });

  it("a spot instance vanishes while running a job: the job is requeued and runs elsewhere", async (ctx) => {
    // Prepare
    const world = await World.create(db, {
      name: "spot instance reclaimed",
      seed,
      queues: [
        {
          name: "compute",
          maxSize: 4,
          candidates: [{ instanceType: "c5.xlarge", zone: "zone-a", chargeType: "SPOT" }],
        },
      ],
    });
    submitJobs(world, 3, { minutes: 25 });
    world.sim().reclaimSpotAt(world.clock.now() + 8 * MINUTE);
    // Act
    await world.run(60 * MINUTE);
    await settle(ctx, world);
    // Assess
    expect(world.sim().losses.map((l) => l.cause)).toEqual(["reclaimed"]);
    expect(unfinished(world)).toBe(0);
  });

  it("bootstrap fails on every new node of one busy queue while another queue runs jobs (3 hours)", async (ctx) => {
    // Prepare: "bio" has two long jobs on nodes that joined before its bootstrap broke at minute 10;
    // "compute" keeps running jobs; two more bio jobs arrive and can never get a node.
    const world = await World.create(db, {
      name: "broken bootstrap in a busy queue",
      seed,
      queues: [
        { name: "compute", maxSize: 4 },
        { name: "bio", maxSize: 4, brokenFromMs: 10 * MINUTE },
      ],
    });
    submitJobs(world, 2, { queue: "bio", minutes: 4 * 60 });
    await world.run(15 * MINUTE);
    const before = world.launchedIn("bio");
    submitJobs(world, 2, { queue: "bio", minutes: 30 });
    // Act: three hours, with compute jobs arriving every 20 minutes
    for (let t = 0; t < 3 * HOUR; t += 20 * MINUTE) {
      submitJobs(world, 2, { minutes: 15 });
      await world.run(20 * MINUTE);
    }
    world.notes.brokenQueueLaunches = world.launchedIn("bio") - before;
    const figures = await settle(ctx, world);
    // Assess: the broken queue's launches after the break (protected mode after 3 failures in a row
    // allows at most 3 failing nodes plus the ones already booting, at most maxSize)
    expect(figures.notes.brokenQueueLaunches).toBeLessThanOrEqual(3 + 4);
  });
});
