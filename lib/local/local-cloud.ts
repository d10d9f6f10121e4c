import type { CloudInstance, CloudProvider, LaunchRequest, LaunchResult } from "../ports/cloud-provider.js";
import { InvalidRequestError } from "../ports/errors.js";
import { CLUSTER_TAG, instanceTags } from "../ports/tags.js";
import { MASTER_QUEUE } from "../workflow/tasks/create-tasks.js";

/**
 * The local mode's cloud as the workflows see it. Compute launches go to the local provider (namespace
 * nodes). The master is not a new machine: it is this machine's slurmctld and agent, already running, so
 * "launching" it claims them for the cluster (after `prepareMaster` set Slurm's partitions to the
 * cluster's queues) and "terminating" it releases them. One cluster at a time holds the master.
 */
export interface LocalMasterHooks {
  /** Called before the master is claimed: e.g. write the cluster's queues into slurm.conf. */
  prepareMaster(clusterId: string): Promise<void>;
  /** The agent's address as the master's private IP. */
  agentAddress: string;
  /** Called once the master is the cluster's (as a cloud master's boot starts its services). */
  masterClaimed?(clusterId: string): Promise<void>;
  /** Called when the cluster's master is terminated (released). */
  masterReleased?(clusterId: string): Promise<void>;
  /** Called as a compute launch reaches the local provider (the moment of the cloud's RunInstances). */
  computeLaunch?(request: LaunchRequest): void;
}

export function masterInstanceId(clusterId: string): string {
  return `local-master-${clusterId}`;
}

export class LocalCloud implements CloudProvider {
  readonly cloud = "local";
  /** The cluster holding the master, and its instance. */
  private master: CloudInstance | undefined;

  constructor(
    private readonly computes: CloudProvider,
    private readonly hooks: LocalMasterHooks,
  ) {}

  instanceTypes() {
    return this.computes.instanceTypes();
  }

  unavailableOfferings() {
    return this.computes.unavailableOfferings();
  }

  /** The computes' zones; the master is this machine and takes none. */
  zones() {
    return this.computes.zones();
  }

  async launch(request: LaunchRequest): Promise<LaunchResult> {
    if (request.queue !== MASTER_QUEUE) {
      this.hooks.computeLaunch?.(request);
      return this.computes.launch(request);
    }
    const holder = this.master?.clusterId;
    if (holder !== undefined && holder !== request.clusterId) {
      throw new InvalidRequestError(
        `local mode runs one cluster at a time and ${holder} holds this machine's Slurm: delete it first`,
      );
    }
    if (this.master === undefined) {
      await this.hooks.prepareMaster(request.clusterId);
      const candidate = request.candidates[0];
      this.master = {
        id: masterInstanceId(request.clusterId),
        instanceType: candidate?.instanceType ?? "local.master",
        zone: candidate?.zone ?? "local-a",
        chargeType: "ON_DEMAND",
        state: "RUNNING",
        privateIp: this.hooks.agentAddress,
        launchedAt: Date.now(),
        clusterId: request.clusterId,
        queue: MASTER_QUEUE,
        tags: { ...request.tags, ...instanceTags(request.clusterId, MASTER_QUEUE) },
      };
      await this.hooks.masterClaimed?.(request.clusterId);
    }
    return { instances: [{ ...this.master }], failures: [], unreleased: [] };
  }

  async terminate(instanceIds: readonly string[]): Promise<void> {
    const master = this.master;
    if (master !== undefined && instanceIds.includes(master.id)) {
      this.master = undefined;
      if (master.clusterId !== undefined) await this.hooks.masterReleased?.(master.clusterId);
    }
    const computes = instanceIds.filter((id) => !id.startsWith("local-master-"));
    if (computes.length > 0) await this.computes.terminate(computes);
  }

  async list(clusterId: string): Promise<CloudInstance[]> {
    const computes = await this.computes.list(clusterId);
    const master = this.master?.tags[CLUSTER_TAG] === clusterId ? [{ ...this.master }] : [];
    return [...master, ...computes];
  }

  async consoleOutput(instanceId: string, maxLines?: number): Promise<string | undefined> {
    if (instanceId.startsWith("local-master-")) return undefined;
    return this.computes.consoleOutput?.(instanceId, maxLines);
  }

  async describe(instanceIds: readonly string[]): Promise<CloudInstance[]> {
    const computes = instanceIds.filter((id) => !id.startsWith("local-master-"));
    const found = computes.length > 0 ? await this.computes.describe(computes) : [];
    const master =
      this.master !== undefined && instanceIds.includes(this.master.id) ? [{ ...this.master }] : [];
    return [...master, ...found];
  }
}
