import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QuotaExceededError } from "../../../lib/ports/errors.js";
import type { DynamoStateStore } from "../../../lib/state/dynamo-store.js";
import { createClusterDefinition } from "../../../lib/workflow/create-cluster.js";
import { deleteClusterDefinition } from "../../../lib/workflow/delete-cluster.js";
import { runWorkflowLocally } from "../../../lib/workflow/local-runner.js";
import { StateStoreLifecycleStore } from "../../../lib/workflow/tasks/state-store-adapter.js";
import { freshStore, startDynalite, type TestDynamo } from "../../support/dynalite.js";
import { AUTOSCALING, CLUSTER_ID, createRequest, WorkflowBed } from "./harness.js";

/** The workflows with the control plane's DynamoDB store (on dynalite) as the lifecycle store. */
describe("workflows on the DynamoDB state store", () => {
  let db: TestDynamo;

  beforeAll(async () => {
    db = await startDynalite();
  });
  afterAll(async () => {
    await db.close();
  });

  async function bedWithCluster(): Promise<{ bed: WorkflowBed; store: DynamoStateStore }> {
    const { store } = await freshStore(db);
    const probe = new WorkflowBed();
    const bed = new WorkflowBed(CLUSTER_ID, new StateStoreLifecycleStore(store, probe.clock));
    await store.createCluster({
      clusterId: CLUSTER_ID,
      name: "hpc one",
      placement: { cloud: "fake", region: "us-east-1", imageId: "ami-0123456789abcdef0" },
      autoscaling: AUTOSCALING,
      now: bed.clock.now(),
    });
    return { bed, store };
  }

  it("creates a cluster: RUNNING, the agent endpoint and every resource recorded", async () => {
    // Prepare
    const { bed, store } = await bedWithCluster();

    // Act
    const result = await bed.run(createClusterDefinition(), {
      clusterId: CLUSTER_ID,
      request: createRequest(),
    });

    // Assess
    expect(result.status).toBe("SUCCEEDED");
    const record = await store.getCluster(CLUSTER_ID);
    expect(record?.status).toBe("RUNNING");
    expect(record?.agent.kind).toBe("http");
    expect(record?.resources.map((r) => r.type).sort()).toEqual([
      "masterInstance",
      "secret:agent-hmac-key",
      "secret:munge-key",
      "securityGroup",
      "subnet",
      "subnet",
      "vpc",
    ]);
  });

  it("a failed creation ends FAILED with the reason and an empty ledger, nothing left in the cloud", async () => {
    // Prepare
    const { bed, store } = await bedWithCluster();
    bed.resources.failNext("createSecret", new QuotaExceededError("secrets quota"), { after: 1 });

    // Act
    const result = await bed.run(createClusterDefinition(), {
      clusterId: CLUSTER_ID,
      request: createRequest(),
    });

    // Assess
    expect(result.status).toBe("FAILED");
    const record = await store.getCluster(CLUSTER_ID);
    expect(record?.status).toBe("FAILED");
    expect(record?.reason).toBe("QuotaExceededError: secrets quota");
    expect(record?.resources).toEqual([]);
    expect(bed.resources.live(CLUSTER_ID)).toEqual([]);
    expect(bed.liveInstances()).toEqual([]);
  });

  it("a failed creation's FAILED is an event with the reason, written once (a user sees it in events and history)", async () => {
    // Prepare
    const { bed, store } = await bedWithCluster();
    bed.resources.failNext("createSecret", new QuotaExceededError("secrets quota"), { after: 1 });

    // Act: the workflow fails; its recordStatus step is then retried (the same status again)
    await bed.run(createClusterDefinition(), { clusterId: CLUSTER_ID, request: createRequest() });
    await bed.lifecycleStore.setStatus(CLUSTER_ID, "FAILED", { reason: "QuotaExceededError: secrets quota" });

    // Assess
    const events = await store.listEvents(CLUSTER_ID);
    expect(events.map((e) => [e.kind, e.message, e.by])).toEqual([
      ["STATUS_CHANGED", "cluster FAILED: creation failed: QuotaExceededError: secrets quota", undefined],
    ]);
  });

  it("a creation and a deletion write RUNNING and DELETED as events, nothing for CREATING or DELETING (the API's own)", async () => {
    // Prepare
    const { bed, store } = await bedWithCluster();

    // Act
    await bed.run(createClusterDefinition(), { clusterId: CLUSTER_ID, request: createRequest() });
    const afterCreation = (await store.listEvents(CLUSTER_ID)).map((e) => e.message);
    await bed.run(deleteClusterDefinition(), { clusterId: CLUSTER_ID });

    // Assess: newest first
    expect(afterCreation).toEqual(["cluster RUNNING: the master is up and its agent answers"]);
    expect((await store.listEvents(CLUSTER_ID)).map((e) => [e.kind, e.message])).toEqual([
      ["STATUS_CHANGED", "cluster DELETED"],
      ["STATUS_CHANGED", "cluster RUNNING: the master is up and its agent answers"],
    ]);
  });

  it("deletion waits for a compute launch in flight and terminates what it started (issue 10, class 4)", async () => {
    // Prepare: a created cluster whose scaler was admitted (intent written) just before DELETING
    const { bed, store } = await bedWithCluster();
    await bed.run(createClusterDefinition(), { clusterId: CLUSTER_ID, request: createRequest() });
    const round = "cycle-late";
    await store.recordLaunchIntent({
      clusterId: CLUSTER_ID,
      round,
      queue: "compute",
      count: 2,
      allOrNothing: false,
      candidates: [{ instanceType: "c5.xlarge", zone: "us-east-1a", chargeType: "ON_DEMAND" }],
      tokens: ["ns1-late"],
      jobs: [],
      intendedAt: bed.clock.now(),
    });
    // the launch lands while the workflow waits, and records its outcome
    let waited = 0;
    const handler = async (input: unknown) => {
      if ((input as { task?: string }).task === "awaitLaunchesSettled" && ++waited === 2) {
        const result = await bed.provider.launch({
          clusterId: CLUSTER_ID,
          queue: "compute",
          round,
          candidates: [{ instanceType: "c5.xlarge", zone: "us-east-1a", chargeType: "ON_DEMAND" }],
          count: 2,
          allOrNothing: false,
          imageId: "ami-0123456789abcdef0",
        });
        await store.recordLaunchOutcome(CLUSTER_ID, round, {
          instances: result.instances.map((i) => ({ ...i })),
          failures: [],
          at: bed.clock.now(),
        });
      }
      return bed.handler(input);
    };

    // Act
    const result = await runWorkflowLocally(deleteClusterDefinition(), { clusterId: CLUSTER_ID }, handler);

    // Assess
    expect(result.status).toBe("SUCCEEDED");
    expect(waited).toBeGreaterThanOrEqual(2);
    expect(result.retried).toContain("AwaitLaunchesSettled");
    expect((await store.getCluster(CLUSTER_ID))?.status).toBe("DELETED");
    expect(bed.liveInstances()).toEqual([]);
  });

  it("deletes a created cluster: DELETED, nothing left", async () => {
    // Prepare
    const { bed, store } = await bedWithCluster();
    await bed.run(createClusterDefinition(), { clusterId: CLUSTER_ID, request: createRequest() });

    // Act
    const result = await bed.run(deleteClusterDefinition(), { clusterId: CLUSTER_ID });

    // Assess
    expect(result.status).toBe("SUCCEEDED");
    const record = await store.getCluster(CLUSTER_ID);
    expect(record?.status).toBe("DELETED");
    expect(record?.resources).toEqual([]);
    expect(bed.resources.live(CLUSTER_ID)).toEqual([]);
    expect(bed.liveInstances()).toEqual([]);
  });

  it("claims a user's VPC for one cluster at a time, strongly, and releases it only for its holder", async () => {
    // Prepare: two clusters whose requests name the same VPC
    const { store } = await freshStore(db);
    const clock = new WorkflowBed().clock;
    const lifecycle = new StateStoreLifecycleStore(store, clock);
    for (const clusterId of ["vpc-a", "vpc-b"])
      await store.createCluster({
        clusterId,
        name: clusterId,
        placement: { cloud: "fake", region: "us-east-1", imageId: "ami-0123456789abcdef0" },
        autoscaling: AUTOSCALING,
        spec: { network: { vpcId: "vpc-0shared", subnetIds: ["subnet-01"] } },
        now: clock.now(),
      });

    // Act
    const first = await lifecycle.claimVpc("vpc-a", "vpc-0shared");
    const again = await lifecycle.claimVpc("vpc-a", "vpc-0shared");
    const second = await lifecycle.claimVpc("vpc-b", "vpc-0shared");
    await lifecycle.releaseVpcClaim("vpc-b");
    const stillHeld = await lifecycle.claimVpc("vpc-b", "vpc-0shared");
    await lifecycle.releaseVpcClaim("vpc-a");
    const afterRelease = await lifecycle.claimVpc("vpc-b", "vpc-0shared");

    // Assess
    expect([first, again, second, stillHeld, afterRelease]).toEqual([true, true, false, false, true]);
  });

  it("answers the secret ids the record's users name, for the teardown to delete beside the listing", async () => {
    // Prepare: alice with a secret, bob without (no password or key), carol deleted (her id went with her)
    const { bed, store } = await bedWithCluster();
    const lifecycle = new StateStoreLifecycleStore(store, bed.clock);
    const before = await lifecycle.userSecretIds(CLUSTER_ID);
    const record = await store.getCluster(CLUSTER_ID);
    const user = { enabled: true, createdAt: 1, hasPassword: false, hasKey: false };
    await store.updateCluster(CLUSTER_ID, record?.version ?? 0, {
      users: [
        {
          ...user,
          name: "alice",
          uid: 2001,
          secretId: "arn:aws:secretsmanager:r:1:secret:a",
          hasPassword: true,
        },
        { ...user, name: "bob", uid: 2002 },
        { ...user, name: "carol", uid: 2003, deletedAt: 2 },
      ],
      now: bed.clock.now(),
    });

    // Act
    const ids = await lifecycle.userSecretIds(CLUSTER_ID);

    // Assess
    expect(before).toEqual([]);
    expect(ids).toEqual(["arn:aws:secretsmanager:r:1:secret:a"]);
    await expect(lifecycle.userSecretIds("no-such-cluster")).rejects.toThrow("does not exist");
  });
});
