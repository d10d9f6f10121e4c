import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeAgent } from "../../../lib/agent-channels/fake.js";
import { RecordingMetrics } from "../../../lib/control/metrics.js";
import { runScaleCycle } from "../../../lib/control/scale-cycle.js";
import {
  ConflictError,
  LeaseLostError,
  type NewCluster,
  type NewLaunchIntent,
} from "../../../lib/ports/state-store.js";
import { FakeClock, FakeProvider } from "../../../lib/providers/fake/index.js";
import { DynamoStateStore, storeClientConfig } from "../../../lib/state/dynamo-store.js";
import type { TableNames } from "../../../lib/state/tables.js";
import { CONFIG } from "../../support/control-bed.js";
import { freshStore, startDynalite, type TestDynamo } from "../../support/dynalite.js";
import { type FaultyDynamo, faultyDynamo, injectDynamoFaults } from "../../support/faulty-dynamo.js";

// A lost answer: the write reached the table, the answer did not reach us, and the SDK re-sent the same
// request, which now meets its own condition. None of these may be read as someone else's write.

const T0 = Date.UTC(2026, 0, 1);

function newCluster(clusterId: string): NewCluster {
  return {
    clusterId,
    name: "demo",
    placement: { cloud: "fake", region: "local", imageId: "img-1" },
    autoscaling: CONFIG,
    now: T0,
  };
}

function newIntent(clusterId: string, round: string): NewLaunchIntent {
  return {
    clusterId,
    round,
    queue: "compute",
    count: 2,
    allOrNothing: false,
    candidates: [{ instanceType: "c5.xlarge", zone: "zone-a", chargeType: "ON_DEMAND" }],
    tokens: [`tok-${round}`],
    jobs: ["7"],
    intendedAt: T0,
  };
}

let db: TestDynamo;
let tables: TableNames;
let faulty: FaultyDynamo;
/** The store under test: its client loses the answers we schedule. */
let store: DynamoStateStore;
/** A second store on the same tables with a clean client: another writer, and a way to look. */
let clean: DynamoStateStore;

beforeAll(async () => {
  db = await startDynalite();
  ({ store: clean, tables } = await freshStore(db));
  faulty = faultyDynamo(db, { retryDelayMs: 1 });
  store = new DynamoStateStore({ client: faulty.client, tables });
});
afterAll(async () => {
  faulty.close();
  await db.close();
});

describe("DynamoStateStore with lost answers (faulty-dynamo on dynalite)", () => {
  it("answers a lost createCluster as created, with and without an idempotency key", async () => {
    // Prepare
    faulty.loseNext(1, ["PutItem"]);
    // Act
    const plain = await store.createCluster(newCluster("c-lost-create"));
    faulty.loseNext(1, (a) => a.table === tables.idempotency);
    faulty.loseNext(1, (a) => a.table === tables.clusters);
    const keyed = await store.createCluster(newCluster("c-lost-keyed"), "key-lost");
    // Assess
    expect(plain.created).toBe(true);
    expect(keyed.created).toBe(true);
    expect(await clean.getCluster("c-lost-create")).toEqual(plain.cluster);
    expect(await clean.getCluster("c-lost-keyed")).toEqual(keyed.cluster);
    await expect(clean.createCluster(newCluster("c-lost-create"))).rejects.toBeInstanceOf(ConflictError);
  });

  it("answers a lost updateCluster with the new record, not a version conflict", async () => {
    // Prepare
    const { cluster } = await clean.createCluster(newCluster("c-lost-update"));
    faulty.loseNext(1, ["UpdateItem"]);
    // Act
    const running = await store.updateCluster("c-lost-update", cluster.version, {
      status: "RUNNING",
      now: T0 + 1,
    });
    // Assess
    expect(running).toMatchObject({ status: "RUNNING", version: cluster.version + 1, updatedAt: T0 + 1 });
    expect(running).not.toHaveProperty("writeId");
    expect(await clean.getCluster("c-lost-update")).toEqual(running);
    await expect(
      store.updateCluster("c-lost-update", cluster.version, { status: "SLEEPING", now: T0 + 2 }),
    ).rejects.toBeInstanceOf(ConflictError);
  });

  it("records a launch intent whose answer was lost instead of calling it another cycle's round", async () => {
    // Prepare
    faulty.loseNext(1, ["PutItem"]);
    // Act
    const recorded = await store.recordLaunchIntent(newIntent("c-lost-intent", "r1"));
    // Assess
    expect(recorded.status).toBe("INTENDED");
    expect(faulty.log.filter((e) => e.fault === "lost").at(-1)?.operation).toBe("PutItem");
    const intents = await clean.listLaunchIntents("c-lost-intent");
    expect(intents.map((i) => [i.round, i.status])).toEqual([["r1", "INTENDED"]]);
    expect(intents[0]).not.toHaveProperty("createWriteId");
    await expect(clean.recordLaunchIntent(newIntent("c-lost-intent", "r1"))).rejects.toBeInstanceOf(
      ConflictError,
    );
  });

  it("keeps another writer's round a ConflictError even when the loser's answer is lost too", async () => {
    // Prepare
    await clean.recordLaunchIntent(newIntent("c-real-conflict", "r1"));
    faulty.loseNext(1, ["PutItem"]);
    // Act
    const lost = store.recordLaunchIntent(newIntent("c-real-conflict", "r1"));
    // Assess
    await expect(lost).rejects.toBeInstanceOf(ConflictError);
    const node = (await clean.listLaunchIntents("c-real-conflict"))[0];
    expect(node?.tokens).toEqual(["tok-r1"]);
  });

  it("records a launch outcome whose answer was lost, once", async () => {
    // Prepare
    await store.recordLaunchIntent(newIntent("c-lost-outcome", "r1"));
    const outcome = {
      instances: [{ id: "i-1", instanceType: "c5.xlarge", zone: "zone-a", chargeType: "ON_DEMAND" as const }],
      failures: [],
      at: T0 + 5,
    };
    faulty.loseNext(1, ["UpdateItem"]);
    // Act
    await store.recordLaunchOutcome("c-lost-outcome", "r1", outcome);
    // Assess
    const [intent] = await clean.listLaunchIntents("c-lost-outcome");
    expect(intent).toMatchObject({ status: "LAUNCHED", instanceIds: ["i-1"], completedAt: T0 + 5 });
    expect(intent).not.toHaveProperty("outcomeWriteId");
    await expect(
      store.recordLaunchOutcome("c-lost-outcome", "r1", { ...outcome, at: T0 + 6 }),
    ).rejects.toBeInstanceOf(ConflictError);
  });

  it("changes a node's status whose answer was lost", async () => {
    // Prepare
    await clean.recordLaunchIntent(newIntent("c-lost-node", "r1"));
    await clean.recordLaunchOutcome("c-lost-node", "r1", {
      instances: [{ id: "i-9", instanceType: "c5.xlarge", zone: "zone-a", chargeType: "ON_DEMAND" }],
      failures: [],
      at: T0,
    });
    faulty.loseNext(1, ["UpdateItem"]);
    // Act
    await store.updateNodeStatus("c-lost-node", "i-9", "LAUNCHING", "JOINED", T0 + 7);
    // Assess
    const [node] = await clean.listNodes("c-lost-node");
    expect(node).toMatchObject({ status: "JOINED", joinedAt: T0 + 7 });
    expect(node).not.toHaveProperty("writeId");
    await expect(
      store.updateNodeStatus("c-lost-node", "i-9", "LAUNCHING", "JOINED", T0 + 8),
    ).rejects.toBeInstanceOf(ConflictError);
  });

  it("counts a bootstrap failure once when its answer was lost", async () => {
    // Prepare
    await clean.createCluster(newCluster("c-lost-health"));
    faulty.loseNext(1, ["UpdateItem"]);
    // Act
    const health = await store.recordBootstrapFailure("c-lost-health", "compute", 3, T0);
    // Assess
    expect(health.consecutiveBootstrapFailures).toBe(1);
    const stored = await clean.getCluster("c-lost-health");
    expect(stored?.queueHealth.compute?.consecutiveBootstrapFailures).toBe(1);
    // Queue health has its own version: the record's stays where the create left it.
    expect(stored?.version).toBe(1);
  });

  it("acquires and renews a lease whose answers were lost, holding the fence that is stored", async () => {
    // Prepare
    faulty.loseNext(1, ["UpdateItem"]);
    // Act
    const lease = await store.acquireLease("scaler#lost", "a", 10_000, T0);
    if (lease === undefined) throw new Error("lease not acquired");
    faulty.loseNext(1, ["UpdateItem"]);
    const renewed = await store.renewLease(lease, 10_000, T0 + 5_000);
    // Assess
    expect(renewed.expiresAtMs).toBe(T0 + 15_000);
    expect(await clean.acquireLease("scaler#lost", "b", 10_000, T0 + 12_000)).toBeUndefined();
    const again = await clean.renewLease(renewed, 10_000, T0 + 14_000);
    expect(again.fence).toBe(lease.fence);
    await expect(clean.renewLease(lease, 10_000, T0 + 30_000)).rejects.toBeInstanceOf(LeaseLostError);
  });

  it("appends an event and prunes finished intents whose answers were lost", async () => {
    // Prepare
    await clean.recordLaunchIntent(newIntent("c-lost-misc", "r1"));
    await clean.recordLaunchOutcome("c-lost-misc", "r1", { instances: [], failures: [], at: T0 });
    faulty.loseNext(1, ["PutItem"]);
    // Act
    const event = await store.appendEvent({ clusterId: "c-lost-misc", kind: "MANUAL", message: "m", at: T0 });
    faulty.loseNext(1, ["DeleteItem"]);
    const pruned = await store.pruneLaunchIntents("c-lost-misc", T0 + 1);
    // Assess
    expect((await clean.listEvents("c-lost-misc")).map((e) => e.eventId)).toEqual([event.eventId]);
    expect(pruned).toBe(1);
    expect(await clean.listLaunchIntents("c-lost-misc")).toEqual([]);
  });

  it("launches in the first poll when the answer to the intent write is lost", async () => {
    // Prepare: a RUNNING cluster whose scale cycle talks to DynamoDB through the faulty client
    await clean.createCluster(newCluster("c-lost-cycle"));
    await clean.updateCluster("c-lost-cycle", 1, { status: "RUNNING", now: T0 });
    const clock = new FakeClock(T0);
    const provider = new FakeProvider({ clock });
    const agent = new FakeAgent(clock);
    agent.addPending("compute", "17", { nodes: 2, cpus: 4 });
    const deps = { store, clock, provider, agent, metrics: new RecordingMetrics(), owner: "inv-1" };
    faulty.loseNext(1, ["PutItem"]);
    // Act
    const summary = await runScaleCycle("c-lost-cycle", deps, { windowMs: 0, pollMs: 15_000 });
    // Assess
    expect(summary).toMatchObject({ outcome: "done", launchedNodes: 2 });
    expect(provider.fakeCloud.live()).toHaveLength(2);
    expect((await clean.listLaunchIntents("c-lost-cycle")).map((i) => i.status)).toEqual(["LAUNCHED"]);
  });
});

describe("the store's production client settings", () => {
  it("retry throttling, where a single-attempt client gives up", async () => {
    // Prepare: the production settings (storeClientConfig) with the SDK's own backoff, on dynalite
    const client = new DynamoDBClient({
      ...storeClientConfig("us-east-1"),
      endpoint: db.endpoint,
      credentials: { accessKeyId: "test", secretAccessKey: "test" },
    });
    const faults = injectDynamoFaults(client);
    const production = new DynamoStateStore({ client, tables });
    const once = faultyDynamo(db, { maxAttempts: 1 });
    const single = new DynamoStateStore({ client: once.client, tables });
    faults.throttleNext(2);
    once.throttleNext(1);
    // Act
    const created = await production.createCluster(newCluster("c-throttled"));
    const refused = await single.getCluster("c-throttled").catch((e: unknown) => e);
    // Assess
    expect(created.created).toBe(true);
    expect(faults.log.map((e) => e.fault)).toEqual(["throttled", "throttled", "none"]);
    expect(refused).toMatchObject({
      name: expect.stringMatching(/^(ProvisionedThroughputExceededException|ThrottlingException)$/),
    });
    client.destroy();
    once.close();
  });
});

describe("faultyDynamo", () => {
  it("throttles and loses answers at the seeded rates, the same way for the same seed", async () => {
    // Prepare
    const run = async (seed: number) => {
      const f = faultyDynamo(db, {
        seed,
        throttleRate: 0.2,
        lostResponseRate: 0.1,
        operations: ["GetItem"],
        retryDelayMs: 0,
        maxAttempts: 20,
      });
      const s = new DynamoStateStore({ client: f.client, tables });
      for (let i = 0; i < 150; i++) await s.getCluster("c-throttled");
      f.close();
      return f.log.map((e) => e.fault).join(",");
    };
    // Act
    const a = await run(42);
    const b = await run(42);
    const c = await run(43);
    // Assess
    const faults = a.split(",");
    const throttled = faults.filter((x) => x === "throttled").length / faults.length;
    const lost = faults.filter((x) => x === "lost").length / faults.length;
    expect(a).toBe(b);
    expect(c).not.toBe(a);
    expect(throttled).toBeGreaterThan(0.1);
    expect(throttled).toBeLessThan(0.3);
    expect(lost).toBeGreaterThan(0.03);
    expect(lost).toBeLessThan(0.15);
  });
});
