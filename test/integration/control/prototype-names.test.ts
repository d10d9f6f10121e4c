import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { reconcileCluster } from "../../../lib/control/reconciler.js";
import { runScaleCycle } from "../../../lib/control/scale-cycle.js";
import type { ConfigInput } from "../../../lib/core/config.js";
import { apiBed, snapshot } from "../../support/api-bed.js";
import { controlBed } from "../../support/control-bed.js";
import { startDynalite, type TestDynamo } from "../../support/dynalite.js";

/**
 * Names that are members of every JavaScript object (`constructor`, `toString`, `valueOf`...) are
 * ordinary Slurm partition names. They are accepted as queue names and must work everywhere: the
 * queue's health (protected mode) is found by its own key, never by inheritance.
 */

let db: TestDynamo;
beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => {
  await db.close();
});

const ONE_POLL = { windowMs: 0 };

function configWith(...queues: string[]): ConfigInput {
  return {
    catalogs: ["aws"],
    expansionBusyTime: 0,
    queueConfigs: queues.map((queueName) => ({
      queueName,
      maxSize: 10,
      expansionNodeConfigs: [{ zone: "zone-a", instanceType: "c5.xlarge" }],
    })),
  };
}

describe("queues named like object members", () => {
  it.each(["constructor", "toString", "hasOwnProperty", "valueOf"])(
    "counts bootstrap failures of queue %s and protects it at the threshold",
    async (queue) => {
      // Prepare
      const bed = await controlBed(db, "demo", configWith(queue));
      // Act
      const first = await bed.store.recordBootstrapFailure("demo", queue, 2, bed.clock.now());
      const second = await bed.store.recordBootstrapFailure("demo", queue, 2, bed.clock.now());
      const reset = await bed.store.resetProtectedMode("demo", queue, bed.clock.now());
      // Assess
      expect(first).toMatchObject({ queue, consecutiveBootstrapFailures: 1, protected: false });
      expect(second).toMatchObject({ queue, consecutiveBootstrapFailures: 2, protected: true });
      expect(reset).toMatchObject({ queue, consecutiveBootstrapFailures: 0, protected: false });
    },
  );

  it("scales queue constructor out, times its boots out, protects it, and an operator resets it", async () => {
    // Prepare: jobs wait in queue constructor; its nodes never join Slurm.
    const bed = await controlBed(db, "demo", configWith("constructor", "toString"));
    bed.agent.addPending("constructor", "1", { nodes: 3, cpus: 4 });
    // Act
    const cycle = await runScaleCycle("demo", bed.deps("inv-1"), ONE_POLL);
    bed.clock.advance(900_000);
    await reconcileCluster("demo", bed.deps("rec-0"), { protectAfterFailures: 3 }); // notes them absent
    bed.clock.advance(120_000);
    const reconciled = await reconcileCluster("demo", bed.deps("rec-1"), { protectAfterFailures: 3 });
    const protectedCycle = await runScaleCycle("demo", bed.deps("inv-2"), ONE_POLL);
    const reset = await bed.store.resetProtectedMode("demo", "constructor", bed.clock.now());
    const afterReset = await runScaleCycle("demo", bed.deps("inv-3"), ONE_POLL);
    // Assess
    expect(cycle.launchedNodes).toBe(3);
    expect(reconciled.bootTimeouts).toHaveLength(3);
    expect(reconciled.protectedQueues).toEqual(["constructor"]);
    expect(protectedCycle.launchedNodes).toBe(0);
    expect(reset.protected).toBe(false);
    expect(afterReset.launchedNodes).toBe(3);
    const health = (await bed.store.getCluster("demo"))?.queueHealth;
    expect(Object.keys(health ?? {})).toEqual(["constructor"]);
  });

  it("adds nodes by hand to queue toString, refuses while it is protected, and resets it through the API", async () => {
    // Prepare
    const t = await apiBed(db);
    const id = await t.runningCluster();
    await t.call("PUT", `/clusters/${id}/autoscaling`, configWith("toString", "compute"));
    // Act
    const added = await t.call("POST", `/clusters/${id}/nodes`, { queue: "toString", count: 1 });
    await t.store.recordBootstrapFailure(id, "toString", 1, t.clock.now());
    const refused = await t.call("POST", `/clusters/${id}/nodes`, { queue: "toString", count: 1 });
    const otherQueue = await t.call("POST", `/clusters/${id}/nodes`, { queue: "compute", count: 1 });
    const reset = await t.call("POST", `/clusters/${id}/queues/toString/reset-protection`);
    const again = await t.call("POST", `/clusters/${id}/nodes`, { queue: "toString", count: 1 });
    // Assess
    expect(added.status).toBe(200);
    expect(added.body.nodes).toHaveLength(1);
    expect(refused.status).toBe(409);
    expect(refused.body.error).toContain("toString is in protected mode");
    expect(otherQueue.status).toBe(200);
    expect(reset.status).toBe(200);
    expect(reset.body).toMatchObject({ queue: "toString", protected: false });
    expect(again.status).toBe(200);
  });

  it("refuses a protection reset for a queue that is not configured with 404 naming it, writing nothing", async () => {
    // Prepare
    const t = await apiBed(db);
    const id = await t.runningCluster();
    const before = await snapshot(db, t.tables);
    // Act
    const answers = await Promise.all(
      ["constructor", "gpu", "hasOwnProperty", "__proto__"].map((q) =>
        t.call("POST", `/clusters/${id}/queues/${q}/reset-protection`),
      ),
    );
    // Assess
    for (const [i, q] of ["constructor", "gpu", "hasOwnProperty", "__proto__"].entries()) {
      expect(answers[i]?.status).toBe(404);
      expect(answers[i]?.body.error).toContain(`"${q}"`);
      expect(answers[i]?.body.issues[0].path).toBe("queue");
    }
    expect(await snapshot(db, t.tables)).toBe(before);
  });
});
