import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ConflictError,
  LeaseLostError,
  type NewCluster,
  NotFoundInStoreError,
} from "../../../lib/ports/state-store.js";
import type { DynamoStateStore } from "../../../lib/state/dynamo-store.js";
import { freshStore, startDynalite, type TestDynamo } from "../../support/dynalite.js";

const T0 = Date.UTC(2026, 0, 1);

function newCluster(clusterId: string): NewCluster {
  return {
    clusterId,
    name: "demo",
    placement: { cloud: "fake", region: "local", imageId: "img-1" },
    autoscaling: {
      catalogs: ["aws"],
      queueConfigs: [
        { queueName: "compute", expansionNodeConfigs: [{ zone: "zone-a", instanceType: "c5.xlarge" }] },
      ],
    },
    now: T0,
  };
}

describe("DynamoStateStore on dynalite", () => {
  let db: TestDynamo;
  let store: DynamoStateStore;

  beforeAll(async () => {
    db = await startDynalite();
    ({ store } = await freshStore(db));
  });
  afterAll(async () => {
    await db.close();
  });

  it("creates a cluster once per idempotency key and refuses a second create of the same id", async () => {
    // Prepare / Act
    const first = await store.createCluster(newCluster("c-idem-1"), "key-1");
    const retried = await store.createCluster(newCluster("c-idem-2"), "key-1");
    // Assess
    expect(first.created).toBe(true);
    expect(retried).toEqual({ cluster: first.cluster, created: false });
    expect(await store.getCluster("c-idem-2")).toBeUndefined();
    await expect(store.createCluster(newCluster("c-idem-1"))).rejects.toBeInstanceOf(ConflictError);
  });

  it("updates a cluster only at the expected version and requires a reason for FAILED", async () => {
    // Prepare
    const { cluster } = await store.createCluster(newCluster("c-ver"));
    // Act
    const running = await store.updateCluster("c-ver", cluster.version, { status: "RUNNING", now: T0 + 1 });
    // Assess
    expect(running.version).toBe(cluster.version + 1);
    await expect(
      store.updateCluster("c-ver", cluster.version, { status: "SLEEPING", now: T0 + 2 }),
    ).rejects.toBeInstanceOf(ConflictError);
    await expect(store.updateCluster("c-none", 1, { status: "RUNNING", now: T0 })).rejects.toBeInstanceOf(
      NotFoundInStoreError,
    );
    await expect(
      store.updateCluster("c-ver", running.version, { status: "FAILED", now: T0 }),
    ).rejects.toThrow(/reason/);
    const failed = await store.updateCluster("c-ver", running.version, {
      status: "FAILED",
      reason: "master did not boot",
      now: T0 + 3,
    });
    expect(failed.reason).toBe("master did not boot");
    expect((await store.getCluster("c-ver"))?.status).toBe("FAILED");
    const withResources = await store.updateCluster("c-ver", failed.version, {
      resources: [{ type: "vpc", id: "vpc-1", createdAt: T0 }],
      now: T0 + 4,
    });
    expect(withResources).toMatchObject({ status: "FAILED", reason: "master did not boot" });
    expect(withResources.resources).toEqual([{ type: "vpc", id: "vpc-1", createdAt: T0 }]);
  });

  it("records a launch intent once, then its outcome as node records", async () => {
    // Prepare
    const intent = {
      clusterId: "c-nodes",
      round: "1-0-0",
      queue: "compute",
      count: 2,
      allOrNothing: false,
      candidates: [{ instanceType: "c5.xlarge", zone: "zone-a", chargeType: "ON_DEMAND" as const }],
      tokens: ["ns1-abc"],
      jobs: ["7"],
      intendedAt: T0,
    };
    // Act
    await store.recordLaunchIntent(intent);
    await store.recordLaunchOutcome("c-nodes", "1-0-0", {
      instances: [
        { id: "i-1", instanceType: "c5.xlarge", zone: "zone-a", chargeType: "ON_DEMAND", token: "ns1-abc" },
        { id: "i-2", instanceType: "c5.xlarge", zone: "zone-a", chargeType: "ON_DEMAND", token: "ns1-abc" },
      ],
      failures: [],
      at: T0 + 5,
    });
    // Assess
    await expect(store.recordLaunchIntent(intent)).rejects.toBeInstanceOf(ConflictError);
    const nodes = await store.listNodes("c-nodes");
    expect(nodes.map((n) => [n.nodeName, n.status, n.round, n.token])).toEqual([
      ["i-1", "LAUNCHING", "1-0-0", "ns1-abc"],
      ["i-2", "LAUNCHING", "1-0-0", "ns1-abc"],
    ]);
    const [recorded] = await store.listLaunchIntents("c-nodes");
    expect(recorded?.status).toBe("LAUNCHED");
    expect(recorded?.instanceIds).toEqual(["i-1", "i-2"]);
    await expect(
      store.recordLaunchOutcome("c-nodes", "1-0-0", { instances: [], failures: [], at: T0 + 6 }),
    ).rejects.toBeInstanceOf(ConflictError);
    await store.updateNodeStatus("c-nodes", "i-1", "LAUNCHING", "JOINED", T0 + 7);
    await expect(
      store.updateNodeStatus("c-nodes", "i-1", "LAUNCHING", "JOINED", T0 + 8),
    ).rejects.toBeInstanceOf(ConflictError);
    await store.deleteNode("c-nodes", "i-2");
    await store.deleteNode("c-nodes", "i-2");
    expect((await store.listNodes("c-nodes")).map((n) => [n.nodeName, n.status])).toEqual([
      ["i-1", "JOINED"],
    ]);
  });

  it("enters protected mode at the threshold and leaves it on a success", async () => {
    // Prepare
    await store.createCluster(newCluster("c-health"));
    // Act
    const one = await store.recordBootstrapFailure("c-health", "compute", 2, T0);
    const two = await store.recordBootstrapFailure("c-health", "compute", 2, T0 + 1);
    const stored = (await store.getCluster("c-health"))?.queueHealth.compute;
    const cleared = await store.recordBootstrapSuccess("c-health", "compute", T0 + 2);
    // Assess
    expect(one.protected).toBe(false);
    expect(two).toMatchObject({ consecutiveBootstrapFailures: 2, protected: true });
    expect(stored?.protected).toBe(true);
    expect(cleared).toMatchObject({ consecutiveBootstrapFailures: 0, protected: false });
  });

  it("keeps queue-health churn off the record's version, so an operator's versioned update still lands", async () => {
    // Prepare: the operator read the record (its version is their If-Match)
    const { cluster } = await store.createCluster(newCluster("c-churn"));
    // Act: nodes fail and join meanwhile, and two writers race on the health
    await store.recordBootstrapFailure("c-churn", "compute", 3, T0);
    await Promise.all([
      store.recordBootstrapFailure("c-churn", "compute", 3, T0 + 1),
      store.recordBootstrapFailure("c-churn", "gpu", 3, T0 + 1),
    ]);
    const updated = await store.updateCluster("c-churn", cluster.version, { status: "RUNNING", now: T0 + 2 });
    // Assess: the versioned write landed, and no health change was lost to the race
    expect(updated.version).toBe(cluster.version + 1);
    expect(updated.queueHealth.compute?.consecutiveBootstrapFailures).toBe(2);
    expect(updated.queueHealth.gpu?.consecutiveBootstrapFailures).toBe(1);
    expect(Object.keys(updated)).not.toContain("healthVersion");
  });

  it("counts a repeated notice, holds it back within the interval, and forgets only the cleared prefix's counts", async () => {
    // Prepare: two reasons of offering A, one of offering AB (whose key begins like A's), each held back once
    const { cluster } = await store.createCluster(newCluster("c-rep"));
    const keys = [
      "LAUNCH_FAILED q a | Throttled",
      "LAUNCH_FAILED q a | Capacity",
      "LAUNCH_FAILED q a b | Throttled",
    ];
    for (const key of keys) await store.noteRepeat("c-rep", key, T0, 600_000);
    const held = await store.noteRepeat("c-rep", keys[0] as string, T0 + 1_000, 600_000);
    for (const key of keys.slice(1)) await store.noteRepeat("c-rep", key, T0 + 1_000, 600_000);
    // Act: offering A launched
    await store.clearRepeat("c-rep", "LAUNCH_FAILED q a | ");
    const afterA = await Promise.all(keys.map((key) => store.noteRepeat("c-rep", key, T0 + 2_000, 600_000)));
    // Assess: A's reasons are firsts again; AB's is still held back, its count kept; the record's version stays
    expect(held).toEqual({ write: false, suppressed: 1, lastWrittenAt: T0 });
    expect(afterA).toEqual([
      { write: true, suppressed: 0 },
      { write: true, suppressed: 0 },
      { write: false, suppressed: 2, lastWrittenAt: T0 },
    ]);
    expect((await store.getCluster("c-rep"))?.version).toBe(cluster.version);
  });

  it("clears a prefix with nothing counted as a no-op, and refuses an unknown cluster", async () => {
    // Prepare
    await store.createCluster(newCluster("c-rep-none"));
    await store.noteRepeat("c-rep-none", "LAUNCH_FAILED q b | Throttled", T0, 600_000);
    // Act
    await store.clearRepeat("c-rep-none", "LAUNCH_FAILED q a | ");
    const b = await store.noteRepeat("c-rep-none", "LAUNCH_FAILED q b | Throttled", T0 + 1, 600_000);
    // Assess
    expect(b).toEqual({ write: false, suppressed: 1, lastWrittenAt: T0 });
    await expect(store.clearRepeat("c-rep-missing", "LAUNCH_FAILED ")).rejects.toBeInstanceOf(
      NotFoundInStoreError,
    );
  });

  it("lists events newest first", async () => {
    // Prepare
    for (let i = 0; i < 3; i++) {
      await store.appendEvent({ clusterId: "c-ev", kind: "LAUNCHED", message: `n${i}`, at: T0 + i * 1000 });
    }
    // Act
    const events = await store.listEvents("c-ev", 2);
    // Assess
    expect(events.map((e) => e.message)).toEqual(["n2", "n1"]);
  });

  it("gives a lease to one owner at a time; a stale holder loses renew and release", async () => {
    // Prepare
    const a = await store.acquireLease("scaler#c1", "a", 10_000, T0);
    // Act
    const bWhileHeld = await store.acquireLease("scaler#c1", "b", 10_000, T0 + 5_000);
    const bAfterExpiry = await store.acquireLease("scaler#c1", "b", 10_000, T0 + 10_000);
    // Assess
    expect(a?.fence).toBe(1);
    expect(bWhileHeld).toBeUndefined();
    expect(bAfterExpiry?.fence).toBe(2);
    if (a === undefined || bAfterExpiry === undefined) throw new Error("lease not acquired");
    await expect(store.renewLease(a, 10_000, T0 + 11_000)).rejects.toBeInstanceOf(LeaseLostError);
    await store.releaseLease(a);
    expect(await store.acquireLease("scaler#c1", "c", 10_000, T0 + 12_000)).toBeUndefined();
    const renewed = await store.renewLease(bAfterExpiry, 10_000, T0 + 12_000);
    expect(renewed.expiresAtMs).toBe(T0 + 22_000);
    await store.releaseLease(renewed);
    const c = await store.acquireLease("scaler#c1", "c", 10_000, T0 + 12_001);
    expect(c).toMatchObject({ owner: "c", fence: 3 });
  });
});
