import type { ClusterResourceRef } from "../../ports/cluster-resources.js";
import { resourceKey } from "../../ports/cluster-resources.js";

/** The lifecycle statuses the workflows write. */
export type ClusterLifecycleStatus =
  | "CREATING"
  | "RUNNING"
  | "FAILED"
  | "DELETING"
  | "DELETED"
  | "DELETE_FAILED";

/** The master as the workflows record it; the scaler reaches the agent through it. */
export interface MasterRecord {
  instanceId: string;
  privateIp?: string;
  agentPort: number;
  securityGroupId?: string;
  mungeKeySecretId?: string;
  agentKeySecretId?: string;
}

export interface StatusUpdate {
  /** Why, for FAILED and DELETE_FAILED: the failing step's error. */
  reason?: string;
  master?: MasterRecord;
}

/**
 * The part of the state store the lifecycle tasks use: a cluster's status and its resource ledger.
 * Narrow on purpose so that it maps onto the control plane's StateStore (lib/ports/state-store.ts)
 * with a thin adapter and onto an in-memory map in tests.
 */
export interface LifecycleStore {
  /**
   * Sets the status (and what `update` carries). Idempotent: writing the status the cluster already has
   * succeeds, so a retried step does no harm. Throws when the cluster does not exist.
   */
  setStatus(clusterId: string, status: ClusterLifecycleStatus, update?: StatusUpdate): Promise<void>;

  /** Adds a resource to the cluster's ledger right after it was made. Recording it twice keeps one entry. */
  recordResource(clusterId: string, ref: ClusterResourceRef): Promise<void>;

  /** Removes a resource from the ledger after it was deleted. Removing an absent one succeeds. */
  forgetResource(clusterId: string, ref: ClusterResourceRef): Promise<void>;

  /** The ledger, in the order the resources were recorded. */
  resources(clusterId: string): Promise<ClusterResourceRef[]>;

  /** The recorded master, if any. */
  master(clusterId: string): Promise<MasterRecord | undefined>;

  /**
   * The queue names of the cluster's autoscaling configuration as it stands now (the master's Slurm
   * partitions). The configuration lives on the cluster record alone, validated when it was written: the
   * workflow carries no copy of its own, so a configuration replaced while the cluster is CREATING (or a
   * creation restarted by the reconciler) gives the master the current queues. Throws when the cluster
   * does not exist.
   */
  queues(clusterId: string): Promise<string[]>;

  /**
   * How the cluster came to NowScale (lib/ports/state-store.ts, ClusterOrigin): the deletion workflow
   * detaches an attached cluster instead of deleting it, and its teardown steps refuse one.
   */
  origin(clusterId: string): Promise<"created" | "attached">;

  /**
   * The cloud and region the cluster was recorded with (the API's `cloud`, `region`): the tasks pick that
   * cloud's parts (lifecycleDepsFor in deps.ts). Throws when the cluster does not exist.
   */
  placement(clusterId: string): Promise<{ cloud: string; region: string }>;

  /**
   * Compute launches as deletion must see them: how many launches were admitted but have no outcome yet
   * (they may still start instances: deletion waits for them), and the instance ids of the compute node
   * records (terminated even if a listing lags behind them).
   */
  computeLaunches(clusterId: string): Promise<{ inFlight: number; instanceIds: string[] }>;

  /**
   * Claims the user's VPC for the cluster with a strongly consistent conditional write: true when the
   * claim is the cluster's (new, or already its own: a retried step), false when another cluster holds
   * it. One VPC holds one cluster, because node roles read the secrets of their own VPC
   * (lib/infra/node-role.ts); Secrets Manager's listing lags up to five minutes, so it cannot decide this.
   */
  claimVpc(clusterId: string, vpcId: string): Promise<boolean>;

  /** Releases every VPC claim the cluster holds (none: nothing happens); never another cluster's. */
  releaseVpcClaim(clusterId: string): Promise<void>;

  /**
   * The secret ids the cluster record's users name (ClusterUser.secretId, lib/ports/state-store.ts): the
   * teardown deletes them by id beside what the store's listing finds, which may lag behind a user just
   * added. None recorded: an empty list. Throws when the cluster does not exist.
   */
  userSecretIds(clusterId: string): Promise<string[]>;
}

export interface MemoryClusterRecord {
  status: ClusterLifecycleStatus | "REQUESTED";
  /** The queue names of its autoscaling configuration. */
  queues: string[];
  reason?: string;
  master?: MasterRecord;
  ledger: Map<string, ClusterResourceRef>;
  history: string[];
  /** What computeLaunches answers (the control plane's launches are not modelled here). */
  launchesInFlight?: number;
  computeInstanceIds?: string[];
  /** @default "created" */
  origin?: "created" | "attached";
  /** @default aws in us-east-1 */
  placement?: { cloud: string; region: string };
  /** What userSecretIds answers. @default none */
  userSecretIds?: string[];
}

/** An in-memory LifecycleStore for tests and the local mode. */
export class MemoryLifecycleStore implements LifecycleStore {
  readonly clusters = new Map<string, MemoryClusterRecord>();
  private readonly faults: { method: keyof LifecycleStore; error: Error; status?: string }[] = [];

  /** Creates the record the API would have made before starting the workflow, with its queues. */
  add(clusterId: string, queues: readonly string[] = ["compute"]): void {
    this.clusters.set(clusterId, {
      status: "REQUESTED",
      queues: [...queues],
      ledger: new Map(),
      history: ["REQUESTED"],
    });
  }

  /** The next call of `method` (for setStatus: to `status`, when given) throws `error`. */
  failNext(method: keyof LifecycleStore, error: Error, status?: ClusterLifecycleStatus): void {
    this.faults.push(status === undefined ? { method, error } : { method, error, status });
  }

  async setStatus(
    clusterId: string,
    status: ClusterLifecycleStatus,
    update: StatusUpdate = {},
  ): Promise<void> {
    this.throwInjected("setStatus", status);
    const record = this.get(clusterId);
    record.status = status;
    if (update.reason !== undefined) record.reason = update.reason;
    if (update.master !== undefined) record.master = update.master;
    if (record.history.at(-1) !== status) record.history.push(status);
  }

  async recordResource(clusterId: string, ref: ClusterResourceRef): Promise<void> {
    this.throwInjected("recordResource");
    this.get(clusterId).ledger.set(resourceKey(ref), structuredClone(ref));
  }

  async forgetResource(clusterId: string, ref: ClusterResourceRef): Promise<void> {
    this.throwInjected("forgetResource");
    this.get(clusterId).ledger.delete(resourceKey(ref));
  }

  async resources(clusterId: string): Promise<ClusterResourceRef[]> {
    this.throwInjected("resources");
    return [...this.get(clusterId).ledger.values()].map((r) => structuredClone(r));
  }

  async master(clusterId: string): Promise<MasterRecord | undefined> {
    this.throwInjected("master");
    return this.get(clusterId).master;
  }

  async queues(clusterId: string): Promise<string[]> {
    this.throwInjected("queues");
    return [...this.get(clusterId).queues];
  }

  async origin(clusterId: string): Promise<"created" | "attached"> {
    this.throwInjected("origin");
    return this.get(clusterId).origin ?? "created";
  }

  async placement(clusterId: string): Promise<{ cloud: string; region: string }> {
    this.throwInjected("placement");
    return { ...(this.get(clusterId).placement ?? { cloud: "aws", region: "us-east-1" }) };
  }

  async computeLaunches(clusterId: string): Promise<{ inFlight: number; instanceIds: string[] }> {
    this.throwInjected("computeLaunches");
    const record = this.get(clusterId);
    return { inFlight: record.launchesInFlight ?? 0, instanceIds: [...(record.computeInstanceIds ?? [])] };
  }

  /** VPC id → the cluster that claimed it. */
  readonly vpcClaims = new Map<string, string>();

  async claimVpc(clusterId: string, vpcId: string): Promise<boolean> {
    this.throwInjected("claimVpc");
    const holder = this.vpcClaims.get(vpcId);
    if (holder !== undefined && holder !== clusterId) return false;
    this.vpcClaims.set(vpcId, clusterId);
    return true;
  }

  async releaseVpcClaim(clusterId: string): Promise<void> {
    this.throwInjected("releaseVpcClaim");
    for (const [vpcId, holder] of this.vpcClaims) if (holder === clusterId) this.vpcClaims.delete(vpcId);
  }

  async userSecretIds(clusterId: string): Promise<string[]> {
    this.throwInjected("userSecretIds");
    return [...(this.get(clusterId).userSecretIds ?? [])];
  }

  private get(clusterId: string): MemoryClusterRecord {
    const record = this.clusters.get(clusterId);
    if (record === undefined) throw new Error(`cluster ${clusterId} does not exist`);
    return record;
  }

  private throwInjected(method: keyof LifecycleStore, status?: string): void {
    const i = this.faults.findIndex(
      (f) => f.method === method && (f.status === undefined || f.status === status),
    );
    if (i < 0) return;
    const [fault] = this.faults.splice(i, 1);
    if (fault !== undefined) throw fault.error;
  }
}
