import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type LifecycleRecoveryOptions,
  RECOVERY_GRACE_MS,
  recoverStuckClusters,
} from "../../../lib/control/lifecycle-recovery.js";
import { LocalWorkflowStarter } from "../../../lib/local/workflows.js";
import { FakeClusterResources } from "../../../lib/providers/fake/fake-cluster-resources.js";
import type { ExecutionState, WorkflowStarter } from "../../../lib/workflow/starter.js";
import { StateStoreLifecycleStore } from "../../../lib/workflow/tasks/state-store-adapter.js";
import { type ApiBed, apiBed, apiBedWith, VALID_CREATE } from "../../support/api-bed.js";
import { startDynalite, type TestDynamo } from "../../support/dynalite.js";
import { FakeAgent as FakeMasterAgent } from "../workflow/harness.js";

/**
 * Never strand a cluster: a workflow start that fails once, or an execution that ends without recording
 * its outcome, must not leave a cluster CREATING or DELETING for ever. The user's retry and the
 * reconciler's recoverStuckClusters both get it moving; the real workflows then finish the job.
 */

let db: TestDynamo;
beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => {
  await db.close();
});

const recover = (
  t: Pick<ApiBed, "store" | "clock"> & { workflows: WorkflowStarter },
  options: LifecycleRecoveryOptions = {},
) => recoverStuckClusters({ store: t.store, clock: t.clock, workflows: t.workflows }, options);

/** A created cluster whose creation workflow is running (as after a successful POST). */
async function creating(t: ApiBed): Promise<string> {
  return (await t.call("POST", "/clusters", VALID_CREATE)).body.clusterId as string;
}

describe("DELETE and POST when a workflow start fails", () => {
  it("a DELETE whose start fails answers 503 and stays DELETING; the retried DELETE starts the deletion", async () => {
    // Prepare
    const t = await apiBed(db);
    const id = await t.runningCluster();
    t.workflows.failNextStart(new Error("ThrottlingException"), "delete");
    // Act
    const failed = await t.call("DELETE", `/clusters/${id}`);
    const stuck = await t.store.getCluster(id);
    const retried = await t.call("DELETE", `/clusters/${id}`);
    const again = await t.call("DELETE", `/clusters/${id}`);
    // Assess
    expect(failed.status).toBe(503);
    expect(failed.body.error).toContain("ThrottlingException");
    expect(failed.body.error).toContain("retry the DELETE");
    expect(stuck).toMatchObject({ status: "DELETING", deletionAttempts: 1 });
    expect(retried.status).toBe(202);
    expect(retried.body.executionArn).toContain(`delete-${id}-`);
    expect(again.status).toBe(202);
    // One deletion runs: the third DELETE found it RUNNING and started nothing.
    expect(t.workflows.started.filter((s) => s.kind === "delete")).toHaveLength(1);
    expect((await t.store.getCluster(id))?.deletionAttempts).toBe(2);
  });

  it("a DELETE of a DELETING cluster whose deletion ended without recording DELETED starts a new attempt", async () => {
    // Prepare
    const t = await apiBed(db);
    const id = await t.runningCluster();
    const first = await t.call("DELETE", `/clusters/${id}`);
    const firstName = t.workflows.started.find((s) => s.kind === "delete")?.name ?? "";
    t.workflows.finish(firstName, "TIMED_OUT");
    // Act
    const retried = await t.call("DELETE", `/clusters/${id}`);
    // Assess
    expect(first.status).toBe(202);
    expect(retried.status).toBe(202);
    const names = t.workflows.started.filter((s) => s.kind === "delete").map((s) => s.name);
    expect(names).toHaveLength(2);
    expect(retried.body.executionArn).toContain(names[1]);
    expect(names[1]).not.toBe(names[0]);
  });

  it("a POST whose start fails answers 503; the retry with the same Idempotency-Key starts the creation", async () => {
    // Prepare
    const t = await apiBed(db);
    t.workflows.failNextStart(new Error("ServiceUnavailable"), "create");
    // Act
    const failed = await t.call("POST", "/clusters", VALID_CREATE, { "Idempotency-Key": "k-1" });
    const retried = await t.call("POST", "/clusters", VALID_CREATE, { "Idempotency-Key": "k-1" });
    // Assess
    expect(failed.status).toBe(503);
    expect(failed.body.error).toContain("same Idempotency-Key");
    expect(retried.status).toBe(200);
    expect(retried.body).toMatchObject({ clusterId: "c-1", status: "CREATING" });
    expect(retried.body.executionArn).toContain("create-c-1");
    expect(t.workflows.started.map((s) => s.name)).toEqual(["create-c-1"]);
    expect(await t.store.listClusters()).toHaveLength(1);
    expect((await t.store.listEvents("c-1")).map((e) => e.message)).toEqual([
      "cluster creation started",
      "cluster recorded; its creation workflow could not be started",
    ]);
  });

  it("a DELETE of a CREATING cluster is refused while its creation runs, and accepted when none runs", async () => {
    // Prepare: c-1's creation runs; c-2's start failed; c-3's execution was aborted without a record.
    const t = await apiBed(db);
    const running = await creating(t);
    t.workflows.failNextStart(new Error("boom"), "create");
    await t.call("POST", "/clusters", VALID_CREATE);
    const neverStarted = "c-2";
    const aborted = await creating(t);
    t.workflows.finish(`create-${aborted}`, "ABORTED");
    // Act
    const refused = await t.call("DELETE", `/clusters/${running}`);
    const accepted = await t.call("DELETE", `/clusters/${neverStarted}`);
    const afterAbort = await t.call("DELETE", `/clusters/${aborted}`);
    // Assess
    expect(refused.status).toBe(409);
    expect((await t.store.getCluster(running))?.status).toBe("CREATING");
    expect(accepted.status).toBe(202);
    expect(accepted.body).toMatchObject({ status: "DELETING" });
    expect(accepted.body.executionArn).toContain(`delete-${neverStarted}-`);
    expect(afterAbort.status).toBe(202);
    expect(t.workflows.started.filter((s) => s.kind === "delete").map((s) => s.clusterId)).toEqual([
      neverStarted,
      aborted,
    ]);
  });
});

describe("recoverStuckClusters", () => {
  it("starts a creation whose start failed, once the grace has passed", async () => {
    // Prepare
    const t = await apiBed(db);
    t.workflows.failNextStart(new Error("boom"), "create");
    await t.call("POST", "/clusters", VALID_CREATE);
    // Act
    const early = await recover(t);
    t.clock.advance(RECOVERY_GRACE_MS);
    const late = await recover(t);
    const after = await recover(t);
    // Assess
    expect(early.creationsStarted).toEqual([]);
    expect(late.creationsStarted).toEqual(["c-1"]);
    expect(after.creationsStarted).toEqual([]);
    expect((await t.store.getCluster("c-1"))?.executionArn).toContain("create-c-1");
    expect(t.workflows.started.map((s) => s.name)).toEqual(["create-c-1"]);
    expect(t.workflows.started[0]?.request).toMatchObject({ region: "local" });
  });

  it.each(["TIMED_OUT", "ABORTED", "FAILED"] as const)(
    "records FAILED with the reason when the creation ended %s without recording it",
    async (status) => {
      // Prepare
      const t = await apiBed(db);
      const id = await creating(t);
      t.workflows.finish(`create-${id}`, status, 0, "States.Timeout: execution timed out");
      t.clock.advance(RECOVERY_GRACE_MS);
      // Act
      const summary = await recover(t);
      // Assess
      expect(summary.failed).toEqual([id]);
      const record = await t.store.getCluster(id);
      expect(record?.status).toBe("FAILED");
      expect(record?.reason).toContain(`create-${id}`);
      expect(record?.reason).toContain(`ended ${status}`);
      expect(record?.reason).toContain("States.Timeout");
      expect(t.workflows.started).toHaveLength(1);
    },
  );

  it("leaves a cluster whose workflow runs, and one changed within the grace", async () => {
    // Prepare
    const t = await apiBed(db);
    const id = await creating(t);
    const deleting = await t.runningCluster();
    await t.call("DELETE", `/clusters/${deleting}`);
    const before = await t.store.listClusters();
    // Act
    const within = await recover(t);
    t.clock.advance(RECOVERY_GRACE_MS);
    const after = await recover(t);
    // Assess
    for (const summary of [within, after]) {
      expect(summary).toEqual({ creationsStarted: [], deletionsStarted: [], failed: [], errors: [] });
    }
    expect(await t.store.listClusters()).toEqual(before);
    expect(id).toBe("c-1");
  });

  it("starts a new deletion attempt when the start failed or the execution ended, and FAILED after the last", async () => {
    // Prepare: the API's DELETE could not start the workflow.
    const t = await apiBed(db);
    const id = await t.runningCluster();
    t.workflows.failNextStart(new Error("boom"), "delete");
    await t.call("DELETE", `/clusters/${id}`);
    // Act: attempt 2 by the reconciler; it times out; attempt 3 is aborted; then the reconciler gives up.
    t.clock.advance(RECOVERY_GRACE_MS);
    const second = await recover(t, { maxDeletionAttempts: 3 });
    const name2 = t.workflows.started.at(-1)?.name ?? "";
    t.workflows.finish(name2, "TIMED_OUT");
    t.clock.advance(RECOVERY_GRACE_MS);
    const third = await recover(t, { maxDeletionAttempts: 3 });
    const name3 = t.workflows.started.at(-1)?.name ?? "";
    t.workflows.finish(name3, "ABORTED", 0, "stopped by an operator");
    t.clock.advance(RECOVERY_GRACE_MS);
    const last = await recover(t, { maxDeletionAttempts: 3 });
    // Assess
    expect(second.deletionsStarted).toEqual([id]);
    expect(third.deletionsStarted).toEqual([id]);
    expect(name3).not.toBe(name2);
    expect(last.failed).toEqual([id]);
    const record = await t.store.getCluster(id);
    expect(record?.status).toBe("FAILED");
    expect(record?.reason).toBe(
      `deletion failed after 3 attempts: the deletion workflow (${name3}) ended ABORTED (stopped by an operator) ` +
        "without recording DELETED; DELETE the cluster to try again",
    );
    expect((await t.store.listEvents(id)).map((e) => e.message)).toContain(
      "cluster deletion attempt 3 started by the reconciler",
    );
  });

  it("names StartExecution in the reason when no deletion ever started", async () => {
    // Prepare: every start fails.
    const t = await apiBed(db);
    const id = await t.runningCluster();
    for (let i = 0; i < 3; i++) t.workflows.failNextStart(new Error("AccessDenied"), "delete");
    await t.call("DELETE", `/clusters/${id}`);
    // Act
    const runs = [];
    for (let i = 0; i < 3; i++) {
      t.clock.advance(RECOVERY_GRACE_MS);
      runs.push(await recover(t, { maxDeletionAttempts: 3 }));
    }
    // Assess
    expect(runs.map((r) => r.errors.length)).toEqual([1, 1, 0]);
    expect(runs[0]?.errors[0]?.message).toContain("AccessDenied");
    expect(runs[2]?.failed).toEqual([id]);
    const record = await t.store.getCluster(id);
    expect(record?.reason).toContain("starting the deletion workflow (StartExecution) failed");
    expect(t.workflows.started).toHaveLength(1); // the creation only
  });

  it("one cluster whose start fails again does not stop the others", async () => {
    // Prepare: two clusters whose deletion could not start.
    const t = await apiBed(db);
    const a = await t.runningCluster();
    const b = await t.runningCluster();
    t.workflows.failNextStart(new Error("boom"), "delete");
    t.workflows.failNextStart(new Error("boom"), "delete");
    await t.call("DELETE", `/clusters/${a}`);
    await t.call("DELETE", `/clusters/${b}`);
    t.workflows.failNextStart(new Error("still throttled"), "delete");
    t.clock.advance(RECOVERY_GRACE_MS);
    // Act
    const summary = await recover(t);
    // Assess
    expect(summary.errors).toEqual([{ clusterId: a, message: expect.stringContaining("still throttled") }]);
    expect(summary.deletionsStarted).toEqual([b]);
  });
});

/** The local runner of the real workflows, whose next start of a kind fails (nothing starts). */
class StartFailsOnce implements WorkflowStarter {
  private readonly failing = new Set<"create" | "delete">();
  constructor(readonly inner: LocalWorkflowStarter) {}
  failNextStart(kind: "create" | "delete"): void {
    this.failing.add(kind);
  }
  startCreate(clusterId: string, request: unknown): Promise<string> {
    if (this.failing.delete("create")) return Promise.reject(new Error("StartExecution failed"));
    return this.inner.startCreate(clusterId, request);
  }
  startDelete(clusterId: string, attempt: number): Promise<string> {
    if (this.failing.delete("delete")) return Promise.reject(new Error("StartExecution failed"));
    return this.inner.startDelete(clusterId, attempt);
  }
  describeExecution(executionArn: string): Promise<ExecutionState> {
    return this.inner.describeExecution(executionArn);
  }
}

async function realWorkflows() {
  const resources = new FakeClusterResources();
  const t = await apiBedWith(db, ({ store, clock, provider }) => {
    const agent = new FakeMasterAgent(clock);
    agent.healthyAfterPolls = 1;
    return new StartFailsOnce(
      new LocalWorkflowStarter(
        {
          store: new StateStoreLifecycleStore(store, clock),
          resources,
          provider: () => provider,
          agent,
          clock,
        },
        8787,
        () => undefined,
        0,
      ),
    );
  });
  const leftovers = (id: string) => ({
    instances: t.provider.fakeCloud.live().filter((i) => i.tags["nowscale:cluster"] === id),
    resources: resources.live(id),
  });
  return { t, leftovers };
}

describe("with the real workflows (local runner) on dynalite", () => {
  it("a creation and a deletion whose starts failed once end RUNNING and DELETED, nothing left", async () => {
    // Prepare
    const { t, leftovers } = await realWorkflows();
    t.workflows.failNextStart("create");
    // Act: the POST fails, its retry starts the creation; the DELETE fails, the reconciler starts it.
    const failedPost = await t.call("POST", "/clusters", VALID_CREATE, { "Idempotency-Key": "k-9" });
    await t.call("POST", "/clusters", VALID_CREATE, { "Idempotency-Key": "k-9" });
    await t.workflows.inner.idle();
    const created = await t.store.getCluster("c-1");
    const masters = leftovers("c-1").instances;
    t.workflows.failNextStart("delete");
    const failedDelete = await t.call("DELETE", "/clusters/c-1");
    t.clock.advance(RECOVERY_GRACE_MS);
    const summary = await recover(t);
    await t.workflows.inner.idle();
    // Assess
    expect(failedPost.status).toBe(503);
    expect(created?.status).toBe("RUNNING");
    expect(masters).toHaveLength(1);
    expect(failedDelete.status).toBe(503);
    expect(summary.deletionsStarted).toEqual(["c-1"]);
    expect((await t.store.getCluster("c-1"))?.status).toBe("DELETED");
    expect(leftovers("c-1")).toEqual({ instances: [], resources: [] });
  });

  it("a configuration replaced before the reconciler starts a creation reaches the master: no stale copy", async () => {
    // Prepare: the POST's start failed; the operator then replaces the configuration (other queues).
    const { t, leftovers } = await realWorkflows();
    t.workflows.failNextStart("create");
    const failedPost = await t.call("POST", "/clusters", VALID_CREATE);
    const next = {
      ...VALID_CREATE.autoscaling,
      queueConfigs: [
        { queueName: "gpu", expansionNodeConfigs: [{ zone: "zone-a", instanceType: "c5.xlarge" }] },
        { queueName: "big", expansionNodeConfigs: [{ zone: "zone-a", instanceType: "c5.2xlarge" }] },
      ],
    };
    const put = await t.call("PUT", "/clusters/c-1/autoscaling", next);
    // Act: the reconciler starts the creation from the record, and the workflow runs to its end.
    t.clock.advance(RECOVERY_GRACE_MS);
    const summary = await recover(t);
    await t.workflows.inner.idle();
    // Assess: one copy of the configuration (the record's); the workflow's request carries none, and the
    // master's slurm.conf has the partitions of the configuration replaced before the start.
    const record = await t.store.getCluster("c-1");
    const masterRuns = t.provider.fakeCloud.calls
      .filter((c) => c.operation === "run")
      .map((c) => c.input as { tags: Record<string, string>; userData?: string })
      .filter((input) => input.tags["nowscale-role"] === "master");
    const userData = masterRuns[0]?.userData ?? "";
    expect(failedPost.status).toBe(503);
    expect(put.status).toBe(200);
    expect(summary.creationsStarted).toEqual(["c-1"]);
    expect(record?.status).toBe("RUNNING");
    expect(record?.spec).not.toHaveProperty("autoscaling");
    expect(record?.autoscaling.queueConfigs.map((q) => q.queueName)).toEqual(["gpu", "big"]);
    expect(masterRuns).toHaveLength(1);
    expect(userData).toContain("PartitionName=gpu ");
    expect(userData).toContain("PartitionName=big ");
    expect(userData).not.toContain("PartitionName=compute");
    expect(leftovers("c-1").instances).toHaveLength(1);
  });

  it("a creation started late, after a DELETE of its never-started cluster, does not take the cluster back", async () => {
    // Prepare: the POST's start failed; the user deletes the CREATING cluster.
    const { t, leftovers } = await realWorkflows();
    t.workflows.failNextStart("create");
    await t.call("POST", "/clusters", VALID_CREATE);
    const deleted = await t.call("DELETE", "/clusters/c-1");
    await t.workflows.inner.idle();
    const spec = (await t.store.getCluster("c-1"))?.spec;
    // Act: a creation start that raced the DELETE (a retried request) lands now.
    await t.workflows.startCreate("c-1", spec);
    await t.workflows.inner.idle();
    // Assess
    expect(deleted.status).toBe(202);
    const record = await t.store.getCluster("c-1");
    expect(record?.status).toBe("DELETED");
    expect(leftovers("c-1")).toEqual({ instances: [], resources: [] });
    const state = await t.workflows.describeExecution(
      "arn:aws:states:local:000000000000:execution:nowscale-local:create-c-1",
    );
    expect(state.status).toBe("FAILED");
    expect(state.error).toContain("ClusterCreationFailed");
    expect(record?.reason).toBeUndefined();
  });
});
