import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDynalite, type TestDynamo } from "../support/dynalite.js";
import { faultSeed } from "../support/faults/rng.js";
import { createBody, World } from "../support/faults/world.js";
import { settle } from "./promises.js";
import { MINUTE, submitJobs } from "./workload.js";

/**
 * StartExecution failing once: the API recorded CREATING or DELETING but no workflow runs. The user
 * retries as a user would (DELETE again, every 5 minutes) and the reconciler keeps running; at the end no
 * cluster may stay CREATING or DELETING, and a DELETED or FAILED one must have nothing left in the cloud.
 */

let db: TestDynamo;
beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => {
  await db.close();
});

const seed = faultSeed();

describe("workflow faults", () => {
  it("StartExecution fails once on create; the user deletes the half-made cluster", async (ctx) => {
    // Prepare
    const world = await World.create(db, { name: "StartExecution fails on create", seed });
    world.workflows.failNext("create");
    // Act
    const created = await world.call("POST", "/clusters", createBody("second", world.queues), {
      "Idempotency-Key": "create-second",
    });
    const id = (await world.rawStore.listClusters())
      .map((c) => c.clusterId)
      .find((c) => c !== world.clusterId);
    const deletes: number[] = [];
    for (let i = 0; i < 3; i++) {
      deletes.push((await world.call("DELETE", `/clusters/${id}`)).status);
      await world.run(5 * MINUTE);
    }
    await world.run(15 * MINUTE);
    world.notes.createAnswer = created.status;
    world.notes.deleteAnswers = deletes.join(" ");
    await settle(ctx, world);
    // Assess: the fault hit the create, and the half-made cluster was the one the user deleted
    expect(world.workflows.startFailures).toBe(1);
    expect(id).toBeDefined();
  });

  it("StartExecution fails once on delete; the user retries the delete", async (ctx) => {
    // Prepare: the cluster has nodes running jobs when it is deleted
    const world = await World.create(db, { name: "StartExecution fails on delete", seed });
    submitJobs(world, 2, { minutes: 60 });
    await world.run(5 * MINUTE);
    world.workflows.failNext("delete");
    // Act
    const first = await world.call("DELETE", `/clusters/${world.clusterId}`);
    const deletes: number[] = [];
    for (let i = 0; i < 3; i++) {
      await world.run(5 * MINUTE);
      deletes.push((await world.call("DELETE", `/clusters/${world.clusterId}`)).status);
    }
    await world.run(15 * MINUTE);
    world.notes.firstDeleteAnswer = first.status;
    world.notes.retriedDeleteAnswers = deletes.join(" ");
    await settle(ctx, world);
    // Assess: the fault hit the first delete
    expect(world.workflows.startFailures).toBe(1);
  });

  it("a launch lands while the cluster is being deleted", async (ctx) => {
    // Prepare: jobs wait; the scaler's launch call is held until the user's DELETE and the whole deletion
    // workflow have run (the worst moment of that race)
    const world = await World.create(db, { name: "launch during deletion", seed });
    await world.run(2 * MINUTE);
    world.providerFaults.add({
      kind: "interpose",
      actor: "scaler",
      times: 1,
      run: async () => {
        await world.call("DELETE", `/clusters/${world.clusterId}`);
        await world.runWorkflows();
      },
    });
    submitJobs(world, 2, { minutes: 30 });
    // Act
    await world.run(20 * MINUTE);
    await settle(ctx, world);
    // Assess
    expect(world.providerFaults.injected.get("interpose")).toBe(1);
    expect((await world.rawStore.getCluster(world.clusterId))?.status).not.toBe("RUNNING");
  });
});
