import { randomBytes } from "node:crypto";
import {
  ConditionalCheckFailedException,
  type DynamoDBClient,
  type DynamoDBClientConfig,
} from "@aws-sdk/client-dynamodb";
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
  type EndedNode,
  type LaunchIntent,
  type LaunchIntentStatus,
  type LaunchOutcome,
  type Lease,
  LeaseLostError,
  type NewCluster,
  type NewEvent,
  type NewLaunchIntent,
  type NodeMarks,
  type NodeRecord,
  type NodeStatus,
  NotFoundInStoreError,
  type QueueHealth,
  type RepeatDecision,
  type RepeatNotice,
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
  /** How long a deleted node's usage is kept (DynamoDB TTL, from its end). @default 400 days */
  usageRetentionMs?: number;
}

const DAY_MS = 86_400_000;
/** Intents share the nodes table with node records; node names are allow-listed, so never contain '#'. */
const INTENT_PREFIX = "launch#";
/** Read-modify-write of queue health retries this often when another writer wins. */
const HEALTH_ATTEMPTS = 5;

const toTtl = (ms: number) => Math.floor(ms / 1000);

/**
 * Write ids: every conditional write stores a fresh random id with the item, so that when its condition
 * fails the store can read the item back and tell "my own earlier attempt landed" (the SDK re-sent a
 * request whose answer was lost) from "someone else wrote first". Each kind of write has its own
 * attribute, so a later write of another kind does not erase the evidence:
 * - WRITE_ID: the last versioned write of a cluster (update, queue health), the last status change of a
 *   node, the last acquire or renew of a lease;
 * - CREATE_WRITE_ID: the create of a cluster or of a launch intent (never changed afterwards);
 * - OUTCOME_WRITE_ID: the outcome of a launch intent.
 * They are stripped from every record the store returns.
 */
const WRITE_ID = "writeId";
const CREATE_WRITE_ID = "createWriteId";
const OUTCOME_WRITE_ID = "outcomeWriteId";

const newWriteId = () => randomBytes(12).toString("base64url");

/**
 * A usage item's sort key: the node and its launch time, so the same name launched twice (a local test
 * bed's names restart) keeps two entries, and a retried delete of one launch finds its own.
 */
const usageKey = (node: NodeRecord) =>
  `${node.nodeName}#${String(Math.max(0, Math.floor(node.launchedAt))).padStart(15, "0")}`;

/**
 * Settings of the DynamoDB client the store uses in production (the Lambda runtime and the workflow
 * tasks build their client from this). The SDK's defaults would be 4 attempts and a 300 s socket idle
 * timeout, so a lost answer on a dead connection cost five minutes before the retry. Here:
 * - 6 attempts in the standard retry mode: throttling (ProvisionedThroughputExceededException,
 *   ThrottlingException, RequestLimitExceeded) is retried with the SDK's jittered backoff (1 s base for
 *   throttling, 50 ms otherwise), as are network errors and timeouts; at 20 % throttling a call fails only
 *   when six attempts in a row are throttled (0.2^6 ≈ 6e-5).
 * - 3 s to connect and 5 s of socket inactivity before an attempt is given up and retried: DynamoDB
 *   answers in milliseconds, so a silent connection is a lost answer.
 * Retried writes are safe: see the write ids above.
 */
export function storeClientConfig(region: string): DynamoDBClientConfig {
  return {
    region,
    maxAttempts: 6,
    retryMode: "standard",
    requestHandler: { connectionTimeout: 3_000, socketTimeout: 5_000 },
  };
}

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
 *
 * Every conditional write is safe to re-send: when its condition fails, the item is read back (consistent
 * read) and if it carries this call's write id the earlier attempt landed and its answer was lost, so the
 * call succeeds as if the first answer had arrived. Only a write by someone else is a ConflictError.
 * Limit: if another writer changes the same item between our lost answer and our retry (the SDK retries
 * within a second), the evidence of our write is overwritten and the call answers ConflictError, as it
 * did before; callers already treat that as "re-read and decide again".
 */
/** The evidence marks markNode may set or clear (an allow-list: never a caller's key). */
const NODE_MARKS = ["missingSince", "absentSince", "downSince"] as const;

export class DynamoStateStore implements StateStore {
  private readonly doc: DynamoDBDocumentClient;
  private readonly t: TableNames;
  private readonly eventRetentionMs: number;
  private readonly idempotencyTtlMs: number;
  private readonly usageRetentionMs: number;

  constructor(options: DynamoStoreOptions) {
    this.doc = DynamoDBDocumentClient.from(options.client, {
      marshallOptions: { removeUndefinedValues: true },
    });
    this.t = options.tables;
    this.eventRetentionMs = options.eventRetentionMs ?? 30 * DAY_MS;
    this.idempotencyTtlMs = options.idempotencyTtlMs ?? DAY_MS;
    this.usageRetentionMs = options.usageRetentionMs ?? 400 * DAY_MS;
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
    const { now, status, agent, ...rest } = input;
    const writeId = newWriteId();
    const cluster: ClusterRecord = {
      ...rest,
      clusterId,
      status: status ?? "CREATING",
      version: 1,
      createdAt: now,
      updatedAt: now,
      agent: agent ?? { kind: "none" },
      resources: [],
      queueHealth: {},
    };
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.t.clusters,
          Item: { ...cluster, [CREATE_WRITE_ID]: writeId },
          ConditionExpression: "attribute_not_exists(clusterId)",
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const landed = await this.getItem(this.t.clusters, { clusterId });
      // Our own create, re-sent by the SDK after its answer was lost: created by this call.
      if (landed?.[CREATE_WRITE_ID] === writeId) return { cluster, created: true };
      if (idempotencyKey !== undefined) {
        const existing = await this.getCluster(clusterId);
        if (existing !== undefined) return { cluster: existing, created: false };
      }
      throw new ConflictError(`cluster ${clusterId} already exists`, { cause: error });
    }
    return { cluster, created: true };
  }

  async getCluster(clusterId: string): Promise<ClusterRecord | undefined> {
    const item = await this.getItem(this.t.clusters, { clusterId });
    return item === undefined ? undefined : toCluster(item);
  }

  async listClusters(filter: { status?: ClusterStatus } = {}): Promise<ClusterRecord[]> {
    const items: ClusterRecord[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.doc.send(
        new ScanCommand({ TableName: this.t.clusters, ExclusiveStartKey: start, ConsistentRead: true }),
      );
      items.push(...(out.Items ?? []).map(toCluster));
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
    const writeId = newWriteId();
    const sets = ["#version = :next", "updatedAt = :now", "#writeId = :writeId"];
    const removes: string[] = [];
    const names: Record<string, string> = { "#version": "version", "#writeId": WRITE_ID };
    const values: Record<string, unknown> = { ":expected": expectedVersion, ":next": expectedVersion + 1 };
    values[":now"] = change.now;
    values[":writeId"] = writeId;
    const fields = [
      "status",
      "autoscaling",
      "agent",
      "resources",
      "executionArn",
      "deletionAttempts",
      "nodeSetup",
      "users",
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
      return toCluster(out.Attributes ?? {});
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const item = await this.getItem(this.t.clusters, { clusterId });
      if (item === undefined) throw new NotFoundInStoreError(`cluster ${clusterId} does not exist`);
      // Our own update landed and its answer was lost: the record as it stands is what ALL_NEW said.
      if (item[WRITE_ID] === writeId) return toCluster(item);
      const current = toCluster(item);
      throw new ConflictError(
        `cluster ${clusterId} is at version ${current.version}, not ${expectedVersion}`,
        { cause: error },
      );
    }
  }

  // ── nodes and launch intents ──────────────────────────────────────────────────────────────────────

  async recordLaunchIntent(intent: NewLaunchIntent): Promise<LaunchIntent> {
    const record: LaunchIntent = { ...intent, status: "INTENDED", instanceIds: [], failures: [] };
    const writeId = newWriteId();
    const key = { clusterId: intent.clusterId, nodeName: INTENT_PREFIX + intent.round };
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.t.nodes,
          Item: { ...record, ...key, itemType: "intent", [CREATE_WRITE_ID]: writeId },
          ConditionExpression: "attribute_not_exists(nodeName)",
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      // The round exists: ours if it carries this call's write id (the first answer was lost).
      const landed = await this.getItem(this.t.nodes, key);
      if (landed?.[CREATE_WRITE_ID] === writeId) return record;
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
    const writeId = newWriteId();
    const key = { clusterId, nodeName: INTENT_PREFIX + round };
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.t.nodes,
          Key: key,
          UpdateExpression:
            "SET #status = :status, instanceIds = :ids, failures = :failures, completedAt = :at, #writeId = :writeId",
          ConditionExpression: "#status = :intended",
          ExpressionAttributeNames: { "#status": "status", "#writeId": OUTCOME_WRITE_ID },
          ExpressionAttributeValues: {
            ":status": status,
            ":ids": outcome.instances.map((i) => i.id),
            ":failures": outcome.failures,
            ":at": outcome.at,
            ":intended": "INTENDED",
            ":writeId": writeId,
          },
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const landed = await this.getItem(this.t.nodes, key);
      if (landed?.[OUTCOME_WRITE_ID] === writeId) return;
      throw new ConflictError(`launch round ${round} already has an outcome`, { cause: error });
    }
  }

  async listLaunchIntents(clusterId: string, status?: LaunchIntentStatus): Promise<LaunchIntent[]> {
    // Only the intents' key range: a poll reads intents, then the node records (listNodes).
    const items = await this.queryNodesTable(clusterId, INTENT_PREFIX);
    return items
      .filter((i) => i.itemType === "intent")
      .map((i) => stripIntent(i))
      .filter((i) => status === undefined || i.status === status);
  }

  async pruneLaunchIntents(clusterId: string, completedBefore: number): Promise<number> {
    const done = (await this.listLaunchIntents(clusterId)).filter(
      (i) => i.status !== "INTENDED" && i.completedAt !== undefined && i.completedAt < completedBefore,
    );
    let removed = 0;
    for (const intent of done) {
      const key = { clusterId, nodeName: INTENT_PREFIX + intent.round };
      try {
        await this.doc.send(
          new DeleteCommand({
            TableName: this.t.nodes,
            Key: key,
            ConditionExpression: "#status <> :intended",
            ExpressionAttributeNames: { "#status": "status" },
            ExpressionAttributeValues: { ":intended": "INTENDED" },
          }),
        );
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
        // A re-sent delete meets a missing item (the condition reads a missing status): it went, by this
        // call's lost first attempt or by another pruner. An item still there is left alone.
        if ((await this.getItem(this.t.nodes, key)) !== undefined) continue;
      }
      removed += 1;
    }
    return removed;
  }

  async putNode(node: NodeRecord): Promise<void> {
    await this.putNodeIfAbsent(node);
  }

  async listNodes(clusterId: string): Promise<NodeRecord[]> {
    const items = await this.queryNodesTable(clusterId);
    return items
      .filter((i) => i.itemType === "node")
      .map(({ itemType: _t, [WRITE_ID]: _w, ...node }) => node as unknown as NodeRecord);
  }

  async updateNodeStatus(
    clusterId: string,
    nodeName: string,
    expectedStatus: NodeStatus,
    status: NodeStatus,
    at: number,
  ): Promise<void> {
    // The first join stays: a node resumed after a drain (DRAINING → JOINED) joined Slurm long before.
    const joined = status === "JOINED" ? ", joinedAt = if_not_exists(joinedAt, :at)" : "";
    const writeId = newWriteId();
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.t.nodes,
          Key: { clusterId, nodeName },
          UpdateExpression: `SET #status = :status, updatedAt = :at, #writeId = :writeId${joined}`,
          ConditionExpression: "itemType = :node AND #status = :expected",
          ExpressionAttributeNames: { "#status": "status", "#writeId": WRITE_ID },
          ExpressionAttributeValues: {
            ":status": status,
            ":at": at,
            ":expected": expectedStatus,
            ":node": "node",
            ":writeId": writeId,
          },
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const landed = await this.getItem(this.t.nodes, { clusterId, nodeName });
      if (landed?.[WRITE_ID] === writeId) return;
      throw new ConflictError(`node ${nodeName} is not ${expectedStatus}`, { cause: error });
    }
  }

  async deleteNode(clusterId: string, nodeName: string, endedAt?: number): Promise<void> {
    // The usage copy first: a crash between the two writes leaves the record, and the retried delete
    // finds the copy already there (its first end stays). No transaction: dynalite has none.
    const item = await this.getItem(this.t.nodes, { clusterId, nodeName });
    if (item?.itemType === "node") {
      const { itemType: _t, [WRITE_ID]: _w, ...node } = item;
      const record = node as unknown as NodeRecord;
      const end = Math.max(record.launchedAt, endedAt ?? record.updatedAt);
      try {
        await this.doc.send(
          new PutCommand({
            TableName: this.t.usage,
            Item: {
              ...record,
              usageKey: usageKey(record),
              endedAt: end,
              expiresAt: toTtl(end + this.usageRetentionMs),
            },
            ConditionExpression: "attribute_not_exists(usageKey)",
          }),
        );
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
      }
    }
    await this.doc.send(new DeleteCommand({ TableName: this.t.nodes, Key: { clusterId, nodeName } }));
  }

  async listEndedNodes(clusterId: string, endedSince?: number): Promise<EndedNode[]> {
    const items: Record<string, unknown>[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.doc.send(
        new QueryCommand({
          TableName: this.t.usage,
          KeyConditionExpression: "clusterId = :c",
          ...(endedSince === undefined
            ? { ExpressionAttributeValues: { ":c": clusterId } }
            : {
                FilterExpression: "endedAt >= :since",
                ExpressionAttributeValues: { ":c": clusterId, ":since": endedSince },
              }),
          ExclusiveStartKey: start,
        }),
      );
      items.push(...(out.Items ?? []));
      start = out.LastEvaluatedKey;
    } while (start !== undefined);
    return items
      .map(({ usageKey: _k, expiresAt: _e, ...node }) => node as unknown as EndedNode)
      .sort((a, b) => a.endedAt - b.endedAt || (a.nodeName < b.nodeName ? -1 : 1));
  }

  async markNode(clusterId: string, nodeName: string, marks: NodeMarks): Promise<void> {
    const set: string[] = [];
    const remove: string[] = [];
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = { ":node": "node" };
    for (const key of NODE_MARKS) {
      if (!Object.hasOwn(marks, key)) continue;
      const value = marks[key];
      if (value === undefined) continue;
      names[`#${key}`] = key;
      if (value === null) remove.push(`#${key}`);
      else {
        set.push(`#${key} = :${key}`);
        values[`:${key}`] = value;
      }
    }
    if (set.length + remove.length === 0) return;
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.t.nodes,
          Key: { clusterId, nodeName },
          UpdateExpression: [
            set.length > 0 ? `SET ${set.join(", ")}` : "",
            remove.length > 0 ? `REMOVE ${remove.join(", ")}` : "",
          ]
            .join(" ")
            .trim(),
          ConditionExpression: "itemType = :node",
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        }),
      );
    } catch (error) {
      // The record went meanwhile (terminated, gone): there is nothing left to mark.
      if (!isConditionFailure(error)) throw error;
    }
  }

  // ── queue health ──────────────────────────────────────────────────────────────────────────────────

  recordBootstrapFailure(
    clusterId: string,
    queue: string,
    threshold: number,
    at: number,
    offering?: string,
  ): Promise<QueueHealth> {
    return this.changeHealth(clusterId, queue, at, (h) => {
      const failures = h.consecutiveBootstrapFailures + 1;
      const offerings = new Set(h.failedOfferings ?? []);
      if (offering !== undefined) offerings.add(offering);
      return {
        consecutiveBootstrapFailures: failures,
        protected: h.protected || failures >= threshold,
        failedOfferings: [...offerings].slice(-64),
      };
    });
  }

  recordBootstrapSuccess(clusterId: string, queue: string, at: number): Promise<QueueHealth> {
    return this.changeHealth(clusterId, queue, at, () => ({
      consecutiveBootstrapFailures: 0,
      protected: false,
      failedOfferings: [],
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
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.t.events,
          Item: { ...stored, expiresAt: toTtl(event.at + this.eventRetentionMs) },
          ConditionExpression: "attribute_not_exists(eventId)",
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      // The id is this call's own (time, sequence, 32 random bits): an event already under it is this
      // call's first attempt whose answer was lost. Compared field by field to be sure.
      const landed = await this.getItem(this.t.events, { clusterId: event.clusterId, eventId });
      if (landed?.kind === event.kind && landed.message === event.message && landed.at === event.at) {
        return stored;
      }
      throw new ConflictError(`event ${eventId} already exists`, { cause: error });
    }
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

  async noteRepeat(clusterId: string, key: string, at: number, intervalMs: number): Promise<RepeatDecision> {
    // Its own version, as queue health: repeats must not bump the record's version.
    return this.sideUpdate(clusterId, { version: REPEAT_VERSION, writeId: REPEAT_WRITE_ID }, (item) => {
      const { decision, next } = countRepeat(repeatNotices(item), key, at, intervalMs);
      return {
        set: "#r = :r",
        names: { "#r": REPEATS },
        values: { ":r": next },
        answer: decision,
        conflict: `repeat counts of ${clusterId} kept changing`,
      };
    });
  }

  async clearRepeat(clusterId: string, keyPrefix: string): Promise<void> {
    // Read first: a launch that succeeds with nothing counted (the usual case) writes nothing.
    const item = await this.getItem(this.t.clusters, { clusterId });
    if (item === undefined) throw new NotFoundInStoreError(`cluster ${clusterId} does not exist`);
    if (!repeatNotices(item).some((n) => n.key.startsWith(keyPrefix))) return;
    await this.sideUpdate(clusterId, { version: REPEAT_VERSION, writeId: REPEAT_WRITE_ID }, (fresh) => ({
      set: "#r = :r",
      names: { "#r": REPEATS },
      values: { ":r": repeatNotices(fresh).filter((n) => !n.key.startsWith(keyPrefix)) },
      answer: undefined,
      conflict: `repeat counts of ${clusterId} kept changing`,
    }));
  }

  // ── leases ────────────────────────────────────────────────────────────────────────────────────────

  async acquireLease(key: string, owner: string, ttlMs: number, now: number): Promise<Lease | undefined> {
    // A re-sent acquire after a lost answer passes its own condition (`#owner = :owner`) and bumps the
    // fence once more; the answer then carries the stored fence, which is all a holder needs. The write id
    // covers the remaining case: the condition fails on the retry although the first attempt took it.
    const writeId = newWriteId();
    try {
      const out = await this.doc.send(
        new UpdateCommand({
          TableName: this.t.leases,
          Key: { leaseKey: key },
          UpdateExpression:
            "SET #owner = :owner, expiresAtMs = :exp, expiresAt = :ttl, fence = if_not_exists(fence, :zero) + :one, #writeId = :writeId",
          ConditionExpression: "attribute_not_exists(leaseKey) OR expiresAtMs <= :now OR #owner = :owner",
          ExpressionAttributeNames: { "#owner": "owner", "#writeId": WRITE_ID },
          ExpressionAttributeValues: {
            ":owner": owner,
            ":exp": now + ttlMs,
            ":ttl": toTtl(now + ttlMs) + 3600,
            ":now": now,
            ":zero": 0,
            ":one": 1,
            ":writeId": writeId,
          },
          ReturnValues: "ALL_NEW",
        }),
      );
      const a = out.Attributes ?? {};
      return { key, owner, expiresAtMs: Number(a.expiresAtMs), fence: Number(a.fence) };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const a = await this.getItem(this.t.leases, { leaseKey: key });
      if (a?.[WRITE_ID] === writeId) {
        return { key, owner, expiresAtMs: Number(a.expiresAtMs), fence: Number(a.fence) };
      }
      return undefined;
    }
  }

  async renewLease(lease: Lease, ttlMs: number, now: number): Promise<Lease> {
    const writeId = newWriteId();
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.t.leases,
          Key: { leaseKey: lease.key },
          UpdateExpression: "SET expiresAtMs = :exp, expiresAt = :ttl, #writeId = :writeId",
          ConditionExpression: "#owner = :owner AND fence = :fence AND expiresAtMs > :now",
          ExpressionAttributeNames: { "#owner": "owner", "#writeId": WRITE_ID },
          ExpressionAttributeValues: {
            ":owner": lease.owner,
            ":fence": lease.fence,
            ":exp": now + ttlMs,
            ":ttl": toTtl(now + ttlMs) + 3600,
            ":now": now,
            ":writeId": writeId,
          },
        }),
      );
      return { ...lease, expiresAtMs: now + ttlMs };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const landed = await this.getItem(this.t.leases, { leaseKey: lease.key });
      if (landed?.[WRITE_ID] === writeId) return { ...lease, expiresAtMs: now + ttlMs };
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

  async readLease(key: string): Promise<Lease | undefined> {
    // Eventually consistent (half the read cost): a wake seen a moment late is still seen.
    const out = await this.doc.send(new GetCommand({ TableName: this.t.leases, Key: { leaseKey: key } }));
    const a = out.Item;
    if (a === undefined) return undefined;
    return { key, owner: String(a.owner), expiresAtMs: Number(a.expiresAtMs), fence: Number(a.fence) };
  }

  // ── helpers ───────────────────────────────────────────────────────────────────────────────────────

  private async getIntent(clusterId: string, round: string): Promise<LaunchIntent | undefined> {
    const item = await this.getItem(this.t.nodes, { clusterId, nodeName: INTENT_PREFIX + round });
    return item === undefined ? undefined : stripIntent(item);
  }

  /** One item as stored (write ids included), by consistent read: the read-back after a failed condition. */
  private async getItem(
    table: string,
    key: Record<string, string>,
  ): Promise<Record<string, unknown> | undefined> {
    const out = await this.doc.send(new GetCommand({ TableName: table, Key: key, ConsistentRead: true }));
    return out.Item;
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

  /** The cluster's partition of the nodes table, every page; only sort keys starting with `prefix` when given. */
  private async queryNodesTable(clusterId: string, prefix?: string): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.doc.send(
        new QueryCommand({
          TableName: this.t.nodes,
          KeyConditionExpression:
            prefix === undefined ? "clusterId = :c" : "clusterId = :c AND begins_with(nodeName, :p)",
          ExpressionAttributeValues:
            prefix === undefined ? { ":c": clusterId } : { ":c": clusterId, ":p": prefix },
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
    next: (
      current: QueueHealth,
    ) => Pick<QueueHealth, "consecutiveBootstrapFailures" | "protected" | "failedOfferings">,
  ): Promise<QueueHealth> {
    // Queue health has a version of its own: node churn (every join ends a failure streak) must not
    // bump the record's version, or an operator's PUT /autoscaling with If-Match fails for no reason.
    return this.sideUpdate(clusterId, { version: HEALTH_VERSION, writeId: HEALTH_WRITE_ID }, (item) => {
      const current = ownValue(toCluster(item).queueHealth, queue) ?? {
        queue,
        consecutiveBootstrapFailures: 0,
        protected: false,
        updatedAt: at,
      };
      const health: QueueHealth = { ...current, ...next(current), queue, updatedAt: at };
      return {
        set: "queueHealth.#q = :h",
        names: { "#q": queue },
        values: { ":h": health },
        answer: health,
        conflict: `queue health of ${clusterId}/${queue} kept changing`,
      };
    });
  }

  /**
   * A read-modify-write of part of the cluster item under a version of its own (`attributes.version`),
   * apart from the record's: `change` gives the SET clause (names and values, without the version's) and
   * the answer from the item as read. A lost answer is told apart by the write id (`attributes.writeId`):
   * when the condition fails because our own write landed, the answer stands (counting again would count
   * one twice). Retries a concurrent change up to HEALTH_ATTEMPTS times, then ConflictError with
   * `conflict`; NotFoundInStoreError when the cluster does not exist.
   */
  private async sideUpdate<T>(
    clusterId: string,
    attributes: { version: string; writeId: string },
    change: (item: Record<string, unknown>) => {
      set: string;
      names: Record<string, string>;
      values: Record<string, unknown>;
      answer: T;
      conflict: string;
    },
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const item = await this.getItem(this.t.clusters, { clusterId });
      if (item === undefined) throw new NotFoundInStoreError(`cluster ${clusterId} does not exist`);
      const version = typeof item[attributes.version] === "number" ? (item[attributes.version] as number) : 0;
      const { set, names, values, answer, conflict } = change(item);
      const writeId = newWriteId();
      try {
        await this.doc.send(
          new UpdateCommand({
            TableName: this.t.clusters,
            Key: { clusterId },
            UpdateExpression: `SET ${set}, #sideVersion = :sideNext, #sideWriteId = :sideWriteId`,
            ConditionExpression:
              version === 0
                ? "attribute_not_exists(#sideVersion) OR #sideVersion = :sideExpected"
                : "#sideVersion = :sideExpected",
            ExpressionAttributeNames: {
              ...names,
              "#sideVersion": attributes.version,
              "#sideWriteId": attributes.writeId,
            },
            ExpressionAttributeValues: {
              ...values,
              ":sideExpected": version,
              ":sideNext": version + 1,
              ":sideWriteId": writeId,
            },
          }),
        );
        return answer;
      } catch (error) {
        if (isConditionFailure(error)) {
          const landed = await this.getItem(this.t.clusters, { clusterId });
          if (landed?.[attributes.writeId] === writeId) return answer;
        }
        if (!isConditionFailure(error) || attempt >= HEALTH_ATTEMPTS) {
          if (isConditionFailure(error)) throw new ConflictError(conflict, { cause: error });
          throw error;
        }
      }
    }
  }
}

function stripIntent(item: Record<string, unknown>): LaunchIntent {
  const { itemType: _t, nodeName: _n, [CREATE_WRITE_ID]: _c, [OUTCOME_WRITE_ID]: _o, ...intent } = item;
  return intent as unknown as LaunchIntent;
}

/** The cluster item's counter for queue-health writes, apart from the record's version. */
const HEALTH_VERSION = "healthVersion";
const HEALTH_WRITE_ID = "healthWriteId";

/** The cluster item's repeat counts (noteRepeat), their own version and write id. */
const REPEATS = "repeatNotices";
const REPEAT_VERSION = "repeatVersion";
const REPEAT_WRITE_ID = "repeatWriteId";
/** Keys kept at most (the most recently counted): a bound on the item's size. */
const REPEAT_KEYS = 64;

/** The cluster item's repeat counts as stored (none yet: an empty list). */
function repeatNotices(item: Record<string, unknown>): RepeatNotice[] {
  return Array.isArray(item[REPEATS]) ? (item[REPEATS] as RepeatNotice[]) : [];
}

/** noteRepeat's decision and the counts to store after it. */
export function countRepeat(
  notices: readonly RepeatNotice[],
  key: string,
  at: number,
  intervalMs: number,
): { decision: RepeatDecision; next: RepeatNotice[] } {
  const others = notices.filter((n) => n.key !== key);
  const last = notices.find((n) => n.key === key);
  if (last === undefined || at - last.writtenAt >= intervalMs) {
    return {
      decision: {
        write: true,
        suppressed: last?.suppressed ?? 0,
        ...(last === undefined ? {} : { lastWrittenAt: last.writtenAt }),
      },
      next: [...others, { key, writtenAt: at, suppressed: 0 }].slice(-REPEAT_KEYS),
    };
  }
  const counted = { ...last, suppressed: last.suppressed + 1 };
  return {
    decision: { write: false, suppressed: counted.suppressed, lastWrittenAt: last.writtenAt },
    next: [...others, counted].slice(-REPEAT_KEYS),
  };
}

/** A cluster item without the store's write ids. */
function toCluster(item: Record<string, unknown>): ClusterRecord {
  const {
    [WRITE_ID]: _w,
    [CREATE_WRITE_ID]: _c,
    [HEALTH_VERSION]: _h,
    [HEALTH_WRITE_ID]: _hw,
    [REPEATS]: _r,
    [REPEAT_VERSION]: _rv,
    [REPEAT_WRITE_ID]: _rw,
    ...cluster
  } = item;
  return cluster as unknown as ClusterRecord;
}
