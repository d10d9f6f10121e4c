import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDynalite, type TestDynamo } from "../support/dynalite.js";
import { faultSeed } from "../support/faults/rng.js";
import { World } from "../support/faults/world.js";
import { settle } from "./promises.js";
import { MINUTE, submitJobs, unfinished } from "./workload.js";

/**
 * Actors at the same time: the Turnstile (test/support/faults/turnstile.ts) interleaves them at every
 * port call in an order the seed decides, so a race found once replays with the same seed.
 */

let db: TestDynamo;
beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => {
  await db.close();
});

const seed = faultSeed();

describe("concurrency", () => {
  it("concurrent scale cycles: every invocation delivered twice, interleaved with the reconciler", async (ctx) => {
    // Prepare
    const world = await World.create(db, { name: "concurrent scale cycles", seed });
    world.cadence.scalersPerTick = 2;
    world.cadence.overlap = true;
    // Act: jobs arrive every 5 minutes, as the reconciler runs
    for (let i = 0; i < 6; i++) {
      submitJobs(world, 2, { minutes: 8 });
      await world.run(5 * MINUTE);
    }
    await world.run(20 * MINUTE);
    await settle(ctx, world);
    // Assess
    expect(unfinished(world)).toBe(0);
  });

  it("concurrent manual add-nodes: 12 requests of one node for a queue of maxSize 4", async (ctx) => {
    // Prepare
    const world = await World.create(db, { name: "concurrent manual add-nodes", seed });
    // Act
    const answers = await world.concurrently(
      Array.from({ length: 12 }, () => ({
        name: "api POST /clusters/demo/nodes",
        run: () => world.call("POST", `/clusters/${world.clusterId}/nodes`, { queue: "compute", count: 1 }),
      })),
    );
    await world.run(15 * MINUTE);
    world.notes.addNodesAccepted = answers.filter((a) => a.status === 200).length;
    await settle(ctx, world);
    // Assess: each request is served, refused as a conflict (queue full), or asked to retry (503: the
    // admission lease stayed busy; here the waiters' sleeps all add up on the one simulated clock), never
    // a server error
    expect(answers.every((a) => a.status === 200 || a.status === 409 || a.status === 503)).toBe(true);
    expect(answers.filter((a) => a.status === 200).length).toBeGreaterThan(0);
  });
});
