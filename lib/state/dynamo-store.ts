import { randomBytes } from "node:crypto";
import { ConditionalCheckFailedException, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { ownValue } from "../core/own.js";
import {
  type ClusterChange,
  type ClusterRecord,
  type ClusterStatus,
  ConflictError,
  type LaunchIntent,
  type LaunchIntentStatus,
  type LaunchOutcome,
  type Lease,
  LeaseLostError,
  type NewCluster,
  type NewEvent,
  type NewLaunchIntent,
  type NodeRecord,
  type NodeStatus,
  NotFoundInStoreError,
  type QueueHealth,
  type ScalingEvent,
  type StateStore,
} from "../ports/state-store.js";
import type { TableNames } from "./tables.js";

export interface DynamoStoreOptions {
  client: DynamoDBClient;
  tables: TableNames;
  /** How long scaling events are kept (DynamoDB TTL). @default 30 days */
  eventRetentionMs?: number;
  /** How long an API Idempotency-Key is remembered. @default 24 hours */
  idempotencyTtlMs?: number;
}

const DAY_MS = 86_400_000;
/** Intents share the nodes table with node records; node names are allow-listed, so never contain '#'. */
const INTENT_PREFIX = "launch#";
/** Read-modify-write of queue health retries this often when another writer wins. */
const HEALTH_ATTEMPTS = 5;

const toTtl = (ms: number) => Math.floor(ms / 1000);

let sequence = 0;

function isConditionFailure(error: unknown): boolean {
  return (
    error instanceof ConditionalCheckFailedException ||
    (error instanceof Error && error.name === "ConditionalCheckFailedException")
  );
}

/**
 * StateStore on DynamoDB (lib-dynamodb's document client). Every write carries a condition: absence for
 * creates, the record's version for clusters, the expected status for nodes and intents, owner + fence +
 * expiry for leases. DynamoDB Local and dynalite behave the same for all of these.
 */
export class DynamoStateStore implements StateStore {
  private readonly doc: DynamoDBDocumentClient;
  private readonly t: TableNames;
  private readonly eventRetentionMs: number;
  private readonly idempotencyTtlMs: number;

  constructor(options: DynamoStoreOptions) {
    this.doc = DynamoDBDocumentClient.from(options.client, {
      marshallOptions: { removeUndefinedValues: true },
    });
    this.t = options.tables;
    this.eventRetentionMs = options.eventRetentionMs ?? 30 * DAY_MS;
    this.idempotencyTtlMs = options.idempotencyTtlMs ?? DAY_MS;
  }

  // ── clusters ──────────────────────────────────────────────────────────────────────────────────────

  async createCluster(
    input: NewCluster,
    idempotencyKey?: string,
  ): Promise<{ cluster: ClusterRecord; created: boolean }> {
    let clusterId = input.clusterId;
    if (idempotencyKey !== undefined) {
      try {
        await this.doc.send(
          new PutCommand({
            TableName: this.t.idempotency,
            Item: {
              idempotencyKey,
              clusterId,
              createdAt: input.now,
              expiresAt: toTtl(input.now + this.idempotencyTtlMs),
            },
            ConditionExpression: "attribute_not_exists(idempotencyKey)",
          }),
        );
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
        const seen = await this.doc.send(
          new GetCommand({ TableName: this.t.idempotency, Key: { idempotencyKey }, ConsistentRead: true }),
        );
        clusterId = String(seen.Item?.clusterId);
        const existing = await this.getCluster(clusterId);
        if (existing !== undefined) return { cluster: existing, created: false };
        // The first request recorded its key and then failed before writing the cluster: finish its work.
      }
    }
    const { now, ...rest } = input;
    const cluster: ClusterRecord = {
      ...rest,
      clusterId,
      status: "CREATING",
      version: 1,
      createdAt: now,
      updatedAt: now,
      agent: { kind: "none" },
      resources: [],
      queueHealth: {},
    };
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.t.clusters,
          Item: cluster,
          ConditionExpression: "attribute_not_exists(clusterId)",
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      if (idempotencyKey !== undefined) {
        const existing = await this.getCluster(clusterId);
        if (existing !== undefined) return { cluster: existing, created: false };
      }
      throw new ConflictError(`cluster ${clusterId} already exists`, { cause: error });
    }
    return { cluster, created: true };
  }

  async getCluster(clusterId: string): Promise<ClusterRecord | undefined> {
    const out = await this.doc.send(
      new GetCommand({ TableName: this.t.clusters, Key: { clusterId }, ConsistentRead: true }),
    );
    return out.Item as ClusterRecord | undefined;
  }

  async listClusters(filter: { status?: ClusterStatus } = {}): Promise<ClusterRecord[]> {
    const items: ClusterRecord[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.doc.send(
        new ScanCommand({ TableName: this.t.clusters, ExclusiveStartKey: start, ConsistentRead: true }),
      );
      items.push(...((out.Items ?? []) as ClusterRecord[]));
      start = out.LastEvaluatedKey;
    } while (start !== undefined);
    return items
      .filter((c) => filter.status === undefined || c.status === filter.status)
      .sort((a, b) => a.clusterId.localeCompare(b.clusterId));
  }

  async updateCluster(
    clusterId: string,
    expectedVersion: number,
    change: ClusterChange,
  ): Promise<ClusterRecord> {
    if (change.status === "FAILED" && (change.reason === undefined || change.reason === "")) {
      throw new TypeError("a FAILED cluster needs a reason");
    }
    const sets = ["#version = :next", "updatedAt = :now"];
    const removes: string[] = [];
    const names: Record<string, string> = { "#version": "version" };
    const values: Record<string, unknown> = { ":expected": expectedVersion, ":next": expectedVersion + 1 };
    values[":now"] = change.now;
    const fields = [
      "status",
      "autoscaling",
      "agent",
      "resources",
      "executionArn",
      "deletionAttempts",
    ] as const;
    for (const field of fields) {
      if (change[field] === undefined) continue;
      names[`#${field}`] = field;
      values[`:${field}`] = change[field];
      sets.push(`#${field} = :${field}`);
    }
    if (change.status === "FAILED") {
      names["#reason"] = "reason";
      values[":reason"] = change.reason;
      sets.push("#reason = :reason");
    } else if (change.status !== undefined) {
      names["#reason"] = "reason";
      removes.push("#reason");
    }
    try {
      const out = await this.doc.send(
        new UpdateCommand({
          TableName: this.t.clusters,
          Key: { clusterId },
          UpdateExpression: `SET ${sets.join(", ")}${removes.length > 0 ? ` REMOVE ${removes.join(", ")}` : ""}`,
          ConditionExpression: "attribute_exists(clusterId) AND #version = :expected",
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ReturnValues: "ALL_NEW",
        }),
      );
      return out.Attributes as ClusterRecord;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const current = await this.getCluster(clusterId);
      if (current === undefined) throw new NotFoundInStoreError(`cluster ${clusterId} does not exist`);
      throw new ConflictError(
        `cluster ${clusterId} is at version ${current.version}, not ${expectedVersion}`,
        { cause: error },
      );
    }
  }

  // ── nodes and launch intents ──────────────────────────────────────────────────────────────────────

  async recordLaunchIntent(intent: NewLaunchIntent): Promise<LaunchIntent> {
    const record: LaunchIntent = { ...intent, status: "INTENDED", instanceIds: [], failures: [] };
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.t.nodes,
          Item: { ...record, nodeName: INTENT_PREFIX + intent.round, itemType: "intent" },
          ConditionExpression: "attribute_not_exists(nodeName)",
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      throw new ConflictError(`launch round ${intent.round} is already recorded`, { cause: error });
    }
    return record;
  }

  async recordLaunchOutcome(clusterId: string, round: string, outcome: LaunchOutcome): Promise<void> {
    const intent = await this.getIntent(clusterId, round);
    if (intent === undefined) throw new NotFoundInStoreError(`launch round ${round} is not recorded`);
    // Nodes first: a crash after this leaves the instances tracked, and a retry finds them recorded.
    for (const instance of outcome.instances) {
      const node: NodeRecord = {
        clusterId,
        nodeName: instance.id,
        instanceId: instance.id,
        queue: intent.queue,
        instanceType: instance.instanceType,
        zone: instance.zone,
        chargeType: instance.chargeType,
        status: "LAUNCHING",
        round,
        ...(instance.token === undefined ? {} : { token: instance.token }),
        launchedAt: outcome.at,
        updatedAt: outcome.at,
      };
      await this.putNodeIfAbsent(node);
    }
    const status: LaunchIntentStatus = outcome.instances.length > 0 ? "LAUNCHED" : "FAILED";
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.t.nodes,
          Key: { clusterId, nodeName: INTENT_PREFIX + round },
          UpdateExpression:
            "SET #status = :status, instanceIds = :ids, failures = :failures, completedAt = :at",
          ConditionExpression: "#status = :intended",
          ExpressionAttributeNames: { "#status": "status" },
          ExpressionAttributeValues: {
            ":status": status,
            ":ids": outcome.instances.map((i) => i.id),
            ":failures": outcome.failures,
            ":at": outcome.at,
            ":intended": "INTENDED",
          },
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      throw new ConflictError(`launch round ${round} already has an outcome`, { cause: error });
    }
  }

  async listLaunchIntents(clusterId: string, status?: LaunchIntentStatus): Promise<LaunchIntent[]> {
    const items = await this.queryNodesTable(clusterId);
    return items
      .filter((i) => i.itemType === "intent")
      .map((i) => stripIntent(i))
      .filter((i) => status === undefined || i.status === status);
  }

  async pruneLaunchIntents(clusterId: string, completedBefore: number): Promise<number> {
    const done = (await this.listLaunchIntents(clusterId)).filter(
      (i) => i.status !== "INTENDED" && i.completedAt !== undefined && i.completedAt < completedBefore,
    );
    for (const intent of done) {
      await this.doc.send(
        new DeleteCommand({
          TableName: this.t.nodes,
          Key: { clusterId, nodeName: INTENT_PREFIX + intent.round },
          ConditionExpression: "#status <> :intended",
          ExpressionAttributeNames: { "#status": "status" },
          ExpressionAttributeValues: { ":intended": "INTENDED" },
        }),
      );
    }
    return done.length;
  }

  async putNode(node: NodeRecord): Promise<void> {
    await this.putNodeIfAbsent(node);
  }

  async listNodes(clusterId: string): Promise<NodeRecord[]> {
    const items = await this.queryNodesTable(clusterId);
    return items
      .filter((i) => i.itemType === "node")
      .map(({ itemType: _t, ...node }) => node as unknown as NodeRecord);
  }

  async updateNodeStatus(
    clusterId: string,
    nodeName: string,
    expectedStatus: NodeStatus,
    status: NodeStatus,
    at: number,
  ): Promise<void> {
    const joined = status === "JOINED" ? ", joinedAt = :at" : "";
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.t.nodes,
          Key: { clusterId, nodeName },
          UpdateExpression: `SET #status = :status, updatedAt = :at${joined}`,
          ConditionExpression: "itemType = :node AND #status = :expected",
          ExpressionAttributeNames: { "#status": "status" },
          ExpressionAttributeValues: {
            ":status": status,
            ":at": at,
            ":expected": expectedStatus,
            ":node": "node",
          },
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      throw new ConflictError(`node ${nodeName} is not ${expectedStatus}`, { cause: error });
    }
  }

  async deleteNode(clusterId: string, nodeName: string): Promise<void> {
    await this.doc.send(new DeleteCommand({ TableName: this.t.nodes, Key: { clusterId, nodeName } }));
  }

  // ── queue health ──────────────────────────────────────────────────────────────────────────────────

  recordBootstrapFailure(
    clusterId: string,
    queue: string,
    threshold: number,
    at: number,
  ): Promise<QueueHealth> {
    return this.changeHealth(clusterId, queue, at, (h) => {
      const failures = h.consecutiveBootstrapFailures + 1;
      return { consecutiveBootstrapFailures: failures, protected: h.protected || failures >= threshold };
    });
  }

  recordBootstrapSuccess(clusterId: string, queue: string, at: number): Promise<QueueHealth> {
    return this.changeHealth(clusterId, queue, at, () => ({
      consecutiveBootstrapFailures: 0,
      protected: false,
    }));
  }

  resetProtectedMode(clusterId: string, queue: string, at: number): Promise<QueueHealth> {
    return this.recordBootstrapSuccess(clusterId, queue, at);
  }

  // ── events ────────────────────────────────────────────────────────────────────────────────────────

  async appendEvent(event: NewEvent): Promise<ScalingEvent> {
    // Time first (newest-first queries), then a per-process sequence so events of one millisecond keep
    // their order, then randomness so two writers never collide.
    sequence = (sequence + 1) % 1_000_000;
    const time = String(Math.max(0, Math.floor(event.at))).padStart(15, "0");
    const eventId = `${time}-${String(sequence).padStart(6, "0")}-${randomBytes(4).toString("hex")}`;
    const stored: ScalingEvent = { ...event, eventId };
    await this.doc.send(
      new PutCommand({
        TableName: this.t.events,
        Item: { ...stored, expiresAt: toTtl(event.at + this.eventRetentionMs) },
        ConditionExpression: "attribute_not_exists(eventId)",
      }),
    );
    return stored;
  }

  async listEvents(clusterId: string, limit = 100): Promise<ScalingEvent[]> {
    const out = await this.doc.send(
      new QueryCommand({
        TableName: this.t.events,
        KeyConditionExpression: "clusterId = :c",
        ExpressionAttributeValues: { ":c": clusterId },
        ScanIndexForward: false,
        Limit: Math.min(Math.max(1, Math.floor(limit)), 1000),
      }),
    );
    return (out.Items ?? []).map(({ expiresAt: _e, ...e }) => e as ScalingEvent);
  }

  // ── leases ────────────────────────────────────────────────────────────────────────────────────────

  async acquireLease(key: string, owner: string, ttlMs: number, now: number): Promise<Lease | undefined> {
    try {
      const out = await this.doc.send(
        new UpdateCommand({
          TableName: this.t.leases,
          Key: { leaseKey: key },
          UpdateExpression:
            "SET #owner = :owner, expiresAtMs = :exp, expiresAt = :ttl, fence = if_not_exists(fence, :zero) + :one",
          ConditionExpression: "attribute_not_exists(leaseKey) OR expiresAtMs <= :now OR #owner = :owner",
          ExpressionAttributeNames: { "#owner": "owner" },
          ExpressionAttributeValues: {
            ":owner": owner,
            ":exp": now + ttlMs,
            ":ttl": toTtl(now + ttlMs) + 3600,
            ":now": now,
            ":zero": 0,
            ":one": 1,
          },
          ReturnValues: "ALL_NEW",
        }),
      );
      const a = out.Attributes ?? {};
      return { key, owner, expiresAtMs: Number(a.expiresAtMs), fence: Number(a.fence) };
    } catch (error) {
      if (isConditionFailure(error)) return undefined;
      throw error;
    }
  }

  async renewLease(lease: Lease, ttlMs: number, now: number): Promise<Lease> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.t.leases,
          Key: { leaseKey: lease.key },
          UpdateExpression: "SET expiresAtMs = :exp, expiresAt = :ttl",
          ConditionExpression: "#owner = :owner AND fence = :fence AND expiresAtMs > :now",
          ExpressionAttributeNames: { "#owner": "owner" },
          ExpressionAttributeValues: {
            ":owner": lease.owner,
            ":fence": lease.fence,
            ":exp": now + ttlMs,
            ":ttl": toTtl(now + ttlMs) + 3600,
            ":now": now,
          },
        }),
      );
      return { ...lease, expiresAtMs: now + ttlMs };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      throw new LeaseLostError(`lease ${lease.key} is no longer held by ${lease.owner}`, { cause: error });
    }
  }

  async releaseLease(lease: Lease): Promise<void> {
    // Expire rather than delete: the item keeps its fence, so the next holder's fence is still larger.
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.t.leases,
          Key: { leaseKey: lease.key },
          UpdateExpression: "SET expiresAtMs = :zero",
          ConditionExpression: "#owner = :owner AND fence = :fence",
          ExpressionAttributeNames: { "#owner": "owner" },
          ExpressionAttributeValues: { ":owner": lease.owner, ":fence": lease.fence, ":zero": 0 },
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
  }

  // ── helpers ───────────────────────────────────────────────────────────────────────────────────────

  private async getIntent(clusterId: string, round: string): Promise<LaunchIntent | undefined> {
    const out = await this.doc.send(
      new GetCommand({
        TableName: this.t.nodes,
        Key: { clusterId, nodeName: INTENT_PREFIX + round },
        ConsistentRead: true,
      }),
    );
    return out.Item === undefined ? undefined : stripIntent(out.Item);
  }

  private async putNodeIfAbsent(node: NodeRecord): Promise<void> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.t.nodes,
          Item: { ...node, itemType: "node" },
          ConditionExpression: "attribute_not_exists(nodeName)",
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
  }

  private async queryNodesTable(clusterId: string): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.doc.send(
        new QueryCommand({
          TableName: this.t.nodes,
          KeyConditionExpression: "clusterId = :c",
          ExpressionAttributeValues: { ":c": clusterId },
          ExclusiveStartKey: start,
          ConsistentRead: true,
        }),
      );
      items.push(...(out.Items ?? []));
      start = out.LastEvaluatedKey;
    } while (start !== undefined);
    return items;
  }

  private async changeHealth(
    clusterId: string,
    queue: string,
    at: number,
    next: (current: QueueHealth) => Pick<QueueHealth, "consecutiveBootstrapFailures" | "protected">,
  ): Promise<QueueHealth> {
    for (let attempt = 1; ; attempt++) {
      const cluster = await this.getCluster(clusterId);
      if (cluster === undefined) throw new NotFoundInStoreError(`cluster ${clusterId} does not exist`);
      const current = ownValue(cluster.queueHealth, queue) ?? {
        queue,
        consecutiveBootstrapFailures: 0,
        protected: false,
        updatedAt: at,
      };
      const health: QueueHealth = { ...current, ...next(current), queue, updatedAt: at };
      try {
        await this.doc.send(
          new UpdateCommand({
            TableName: this.t.clusters,
            Key: { clusterId },
            UpdateExpression: "SET queueHealth.#q = :h, #version = :next",
            ConditionExpression: "#version = :expected",
            ExpressionAttributeNames: { "#q": queue, "#version": "version" },
            ExpressionAttributeValues: {
              ":h": health,
              ":expected": cluster.version,
              ":next": cluster.version + 1,
            },
          }),
        );
        return health;
      } catch (error) {
        if (!isConditionFailure(error) || attempt >= HEALTH_ATTEMPTS) {
          if (isConditionFailure(error)) {
            throw new ConflictError(`queue health of ${clusterId}/${queue} kept changing`, { cause: error });
          }
          throw error;
        }
      }
    }
  }
}

function stripIntent(item: Record<string, unknown>): LaunchIntent {
  const { itemType: _t, nodeName: _n, ...intent } = item;
  return intent as unknown as LaunchIntent;
}
