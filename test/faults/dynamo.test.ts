import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDynalite, type TestDynamo } from "../support/dynalite.js";
import { faultSeed } from "../support/faults/rng.js";
import type { StoreFault } from "../support/faults/store.js";
import { World } from "../support/faults/world.js";
import { settle } from "./promises.js";
import { MINUTE, submitJobs } from "./workload.js";

/**
 * DynamoDB faults at the StateStore port (test/support/faults/store.ts): throttling that outlasted the
 * SDK's retries, on a share of all calls, and answers lost after the write happened. Jobs arrive all run
 * long, so launches, joins, shrinks and reconciler runs all meet the faults.
 */

let db: TestDynamo;
beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => {
  await db.close();
});

const seed = faultSeed();

const CASES: [string, StoreFault][] = [
  ["DynamoDB throttling 5%", { kind: "throttle", p: 0.05 }],
  ["DynamoDB throttling 20%", { kind: "throttle", p: 0.2 }],
  ["DynamoDB lost responses 5%", { kind: "lost", p: 0.05 }],
];

describe("DynamoDB faults", () => {
  for (const [name, fault] of CASES) {
    it(`${name} of all calls for an hour`, async (ctx) => {
      // Prepare
      const world = await World.create(db, {
        name,
        seed,
        queues: [{ name: "compute", maxSize: 6 }],
        store: [fault],
      });
      // Act: two jobs every 4 minutes for 40 minutes, then 40 minutes to finish and shrink
      for (let i = 0; i < 10; i++) {
        submitJobs(world, 2, { minutes: 10 });
        await world.run(4 * MINUTE);
      }
      await world.run(40 * MINUTE);
      await settle(ctx, world);
      // Assess
      expect(world.storeFaults.injected.get(fault.kind) ?? 0).toBeGreaterThan(0);
    });
  }
});
