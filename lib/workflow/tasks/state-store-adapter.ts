import { ABANDONED_INTENT_MS } from "../../control/launch.js";
import type { Clock } from "../../ports/clock.js";
import type { ClusterResourceRef } from "../../ports/cluster-resources.js";
import { resourceKey } from "../../ports/cluster-resources.js";
import {
  type AgentEndpoint,
  type ClusterChange,
  type ClusterRecord,
  ConflictError,
  type CreatedResource,
  originOf,
  type StateStore,
} from "../../ports/state-store.js";
import { ClusterDeletedError } from "./errors.js";
import type { ClusterLifecycleStatus, LifecycleStore, MasterRecord, StatusUpdate } from "./store.js";

/**
 * The lifecycle tasks' store on top of the control plane's StateStore: statuses go to the cluster
 * record, and each change of status (RUNNING, FAILED with its reason, DELETED) to a STATUS_CHANGED event
 * (DELETE_FAILED leaves the cluster DELETING and appends an event with the reason: the reconciler's
 * recovery starts the next attempt and records FAILED after the last one),
 * the ledger to its `resources` list and the master to its `agent` endpoint plus a `masterInstance`
 * resource. Every change is a versioned write, re-read and re-applied when another writer came first.
 */

const MAX_CONFLICT_RETRIES = 5;

/** A VPC claim outlives any cluster; deletion releases it. */
const VPC_CLAIM_MS = 100 * 365 * 24 * 3600 * 1000;
const vpcClaimKey = (vpcId: string) => `vpc#${vpcId}`;

/** How each ledger entry is spelled as the record's CreatedResource `type`. */
const TYPE = {
  vpc: "vpc",
  subnet: "subnet",
  securityGroup: "securityGroup",
  mungeKey: "secret:munge-key",
  agentKey: "secret:agent-hmac-key",
  master: "masterInstance",
} as const;

export class StateStoreLifecycleStore implements LifecycleStore {
  constructor(
    private readonly store: StateStore,
    private readonly clock: Clock,
  ) {}

  async setStatus(
    clusterId: string,
    status: ClusterLifecycleStatus,
    update: StatusUpdate = {},
  ): Promise<void> {
    if (status === "DELETE_FAILED") {
      // A failed deletion attempt leaves the cluster DELETING: the reconciler's recovery starts the next
      // attempt, and records FAILED only after the last one (lib/control/lifecycle-recovery.ts), so a
      // transient failure never strands a cluster FAILED with its instances still running.
      await this.store.appendEvent({
        clusterId,
        kind: "STATUS_CHANGED",
        message:
          `deletion attempt failed: ${update.reason ?? "unknown failure"}; the reconciler starts another`.slice(
            0,
            1000,
          ),
        at: this.clock.now(),
      });
      return;
    }
    let from: string | undefined;
    const written = await this.change(clusterId, (record) => {
      refuseAfterDeletion(clusterId, record.status, status);
      from = record.status;
      const change: ClusterChange = { now: this.clock.now() };
      change.status = status;
      if (update.reason !== undefined) change.reason = update.reason;
      if (update.master !== undefined) change.agent = agentEndpoint(update.master);
      const same =
        record.status === change.status &&
        record.reason === change.reason &&
        (change.agent === undefined || JSON.stringify(record.agent) === JSON.stringify(change.agent));
      return same ? undefined : change;
    });
    // The outcome goes to the events too (`nowscale events`, `history`), so a creation that failed after
    // the API answered CREATING says why where the user looks; only a change of status is told (a retried
    // step, or CREATING restated with the master, adds nothing), and CREATING has the API's own event.
    // An event lost to a crash between the two writes is not rewritten by the step's retry (the status is
    // already there): `cluster get` still shows it.
    const message = written && from !== status ? statusMessage(status, update.reason) : undefined;
    if (message !== undefined) {
      await this.store.appendEvent({
        clusterId,
        kind: "STATUS_CHANGED",
        message: message.slice(0, 1000),
        at: this.clock.now(),
      });
    }
  }

  async recordResource(clusterId: string, ref: ClusterResourceRef): Promise<void> {
    const entries = toCreated(ref, this.clock.now());
    await this.change(clusterId, (record) => {
      const missing = entries.filter(
        (e) => !record.resources.some((r) => r.type === e.type && r.id === e.id),
      );
      return missing.length === 0
        ? undefined
        : { ...sameStatus(record), resources: [...record.resources, ...missing], now: this.clock.now() };
    });
  }

  async forgetResource(clusterId: string, ref: ClusterResourceRef): Promise<void> {
    const gone = toCreated(ref, 0);
    await this.change(clusterId, (record) => {
      const kept = record.resources.filter((r) => !gone.some((g) => g.type === r.type && g.id === r.id));
      return kept.length === record.resources.length
        ? undefined
        : { ...sameStatus(record), resources: kept, now: this.clock.now() };
    });
  }

  async resources(clusterId: string): Promise<ClusterResourceRef[]> {
    const record = await this.read(clusterId);
    const refs = new Map<string, ClusterResourceRef>();
    const subnets = record.resources.filter((r) => r.type === TYPE.subnet).map((r) => r.id);
    for (const r of record.resources) {
      let ref: ClusterResourceRef | undefined;
      if (r.type === TYPE.vpc) ref = { kind: "network", vpcId: r.id, subnetIds: subnets };
      else if (r.type === TYPE.securityGroup) ref = { kind: "securityGroup", securityGroupId: r.id };
      else if (r.type === TYPE.mungeKey) ref = { kind: "secret", secretKind: "munge-key", secretId: r.id };
      else if (r.type === TYPE.agentKey)
        ref = { kind: "secret", secretKind: "agent-hmac-key", secretId: r.id };
      else if (r.type === TYPE.master) ref = { kind: "instance", instanceId: r.id };
      if (ref !== undefined) refs.set(resourceKey(ref), ref);
    }
    return [...refs.values()];
  }

  async master(clusterId: string): Promise<MasterRecord | undefined> {
    const record = await this.read(clusterId);
    const instance = record.resources.find((r) => r.type === TYPE.master);
    if (instance === undefined) return undefined;
    const master: MasterRecord = { instanceId: instance.id, agentPort: 8787 };
    if (record.agent.kind === "http") {
      const url = new URL(record.agent.url);
      master.privateIp = url.hostname;
      master.agentPort = Number(url.port || 8787);
      if (record.agent.keySecretArn !== undefined) master.agentKeySecretId = record.agent.keySecretArn;
    }
    return master;
  }

  /** The record's autoscaling configuration was validated when it was written (the API, the CLI). */
  async queues(clusterId: string): Promise<string[]> {
    return (await this.read(clusterId)).autoscaling.queueConfigs.map((q) => q.queueName);
  }

  async origin(clusterId: string): Promise<"created" | "attached"> {
    return originOf(await this.read(clusterId));
  }

  async placement(clusterId: string): Promise<{ cloud: string; region: string }> {
    const { cloud, region } = (await this.read(clusterId)).placement;
    return { cloud, region };
  }

  async computeLaunches(clusterId: string): Promise<{ inFlight: number; instanceIds: string[] }> {
    const now = this.clock.now();
    const intents = await this.store.listLaunchIntents(clusterId, "INTENDED");
    // An intent older than this was abandoned by a crashed launcher (the reconciler's stale limit): its
    // instances, if any, carry the cluster tag and are swept with the rest.
    const inFlight = intents.filter((i) => now - i.intendedAt < ABANDONED_INTENT_MS).length;
    const instanceIds = (await this.store.listNodes(clusterId)).map((n) => n.instanceId);
    return { inFlight, instanceIds };
  }

  /** A claim is a lease named `vpc#<id>` held by the cluster for ~100 years, released at deletion. */
  async claimVpc(clusterId: string, vpcId: string): Promise<boolean> {
    return (
      (await this.store.acquireLease(vpcClaimKey(vpcId), clusterId, VPC_CLAIM_MS, this.clock.now())) !==
      undefined
    );
  }

  /** The VPC is the one the creation request named (the record's spec): only a user's VPC is claimed. */
  async releaseVpcClaim(clusterId: string): Promise<void> {
    const network = (await this.store.getCluster(clusterId))?.spec?.network;
    const vpcId =
      typeof network === "object" && network !== null ? (network as { vpcId?: unknown }).vpcId : undefined;
    if (typeof vpcId !== "string") return;
    // Taking it first proves it is ours (or free); another cluster's claim answers undefined and stays.
    const lease = await this.store.acquireLease(
      vpcClaimKey(vpcId),
      clusterId,
      VPC_CLAIM_MS,
      this.clock.now(),
    );
    if (lease !== undefined) await this.store.releaseLease(lease);
  }

  /** Every user that names one; a deleted user's id is dropped once its secret is gone (lib/control/users.ts). */
  async userSecretIds(clusterId: string): Promise<string[]> {
    return ((await this.read(clusterId)).users ?? []).flatMap((u) => u.secretId ?? []);
  }

  private async read(clusterId: string): Promise<ClusterRecord> {
    const record = await this.store.getCluster(clusterId);
    if (record === undefined) throw new Error(`cluster ${clusterId} does not exist`);
    return record;
  }

  /**
   * Applies `build`'s change with the record's version; re-reads on a conflict. Undefined: nothing to do.
   * True when a change was written.
   */
  private async change(
    clusterId: string,
    build: (record: ClusterRecord) => ClusterChange | undefined,
  ): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      const record = await this.read(clusterId);
      const change = build(record);
      if (change === undefined) return false;
      try {
        await this.store.updateCluster(clusterId, record.version, change);
        return true;
      } catch (error) {
        if (!(error instanceof ConflictError) || attempt >= MAX_CONFLICT_RETRIES) throw error;
      }
    }
  }
}

/**
 * Deletion wins over creation: once the API has marked the cluster DELETING (possibly while a creation
 * it could not see was starting), the creation workflow may not write CREATING, RUNNING or FAILED over
 * it (it fails and its compensation removes what it made), and DELETED is final.
 */
function refuseAfterDeletion(clusterId: string, current: string, next: ClusterLifecycleStatus): void {
  const creation = next === "CREATING" || next === "RUNNING" || next === "FAILED";
  if ((current === "DELETING" && creation) || (current === "DELETED" && next !== "DELETED")) {
    throw new ClusterDeletedError(`cluster ${clusterId} is ${current}: ${next} is not recorded`);
  }
}

/**
 * The STATUS_CHANGED text of a status the workflows reached; undefined for CREATING and DELETING, which
 * the API records (with their own events) before it starts the workflow.
 */
function statusMessage(status: ClusterLifecycleStatus, reason: string | undefined): string | undefined {
  switch (status) {
    case "RUNNING":
      return "cluster RUNNING: the master is up and its agent answers";
    case "FAILED":
      return `cluster FAILED: creation failed: ${reason ?? "unknown failure"}`;
    case "DELETED":
      return "cluster DELETED";
    default:
      return undefined;
  }
}

function toCreated(ref: ClusterResourceRef, createdAt: number): CreatedResource[] {
  switch (ref.kind) {
    case "network":
      return [
        { type: TYPE.vpc, id: ref.vpcId, createdAt },
        ...ref.subnetIds.map((id) => ({ type: TYPE.subnet, id, createdAt })),
      ];
    case "securityGroup":
      return [{ type: TYPE.securityGroup, id: ref.securityGroupId, createdAt }];
    case "secret":
      return [
        { type: ref.secretKind === "munge-key" ? TYPE.mungeKey : TYPE.agentKey, id: ref.secretId, createdAt },
      ];
    case "instance":
      return [{ type: TYPE.master, id: ref.instanceId, createdAt }];
  }
}

/**
 * The record's status unchanged, restated: DynamoStateStore.updateCluster (at bc9b49e) sends an unused
 * `#reason` attribute name, which DynamoDB refuses, when a change carries no status.
 */
function sameStatus(record: ClusterRecord): Pick<ClusterChange, "status" | "reason"> {
  return record.reason === undefined
    ? { status: record.status }
    : { status: record.status, reason: record.reason };
}

function agentEndpoint(master: MasterRecord): AgentEndpoint {
  if (master.privateIp === undefined) return { kind: "ssm", instanceId: master.instanceId };
  return {
    kind: "http",
    url: `http://${master.privateIp}:${master.agentPort}`,
    ...(master.agentKeySecretId === undefined ? {} : { keySecretArn: master.agentKeySecretId }),
  };
}
