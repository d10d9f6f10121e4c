import { renderMasterBootstrapScript } from "../../../scheduler-plugins/slurm/master-bootstrap.js";
import { InvalidRequestError } from "../../ports/errors.js";
import { ROLE_TAG } from "../../ports/tags.js";
import type { LifecycleDeps } from "./deps.js";
import { type CreateClusterRequest, parseCreateCluster } from "./request.js";
import type { MasterRecord } from "./store.js";

/** The creation workflow's steps. Each one records what it made before it returns. */

export interface NetworkResult {
  vpcId: string;
  subnetIds: string[];
  masterSubnetId: string;
  /** False for the user's own network, which NowScale never deletes. */
  owned: boolean;
}

export interface SecretsResult {
  mungeKeySecretId: string;
  agentKeySecretId: string;
}

export interface MasterResult extends MasterRecord {
  /** Epoch ms after which the agent's health check gives up. */
  healthDeadline: number;
}

/**
 * Validates the request (what to make: region, network, master) with the names allow-list, and its region
 * against the stack's (`deps.region`); returns it with defaults. The autoscaling configuration is not part
 * of it: it was validated when the cluster record was written, and launchMaster reads it from there.
 */
export function validate(
  deps: Pick<LifecycleDeps, "region">,
  input: { clusterId: unknown; request: unknown },
): CreateClusterRequest {
  return parseCreateCluster(input.clusterId, input.request, deps.region);
}

export async function createNetwork(
  deps: LifecycleDeps,
  clusterId: string,
  request: CreateClusterRequest,
): Promise<NetworkResult> {
  const network = request.network;
  if ("vpcId" in network) {
    const [first] = network.subnetIds;
    if (first === undefined) throw new InvalidRequestError("network.subnetIds is empty");
    await deps.resources.validateNetwork(network);
    // Before anything is made in it (released by the secrets' removal, in compensation and deletion).
    if (!(await deps.store.claimVpc(clusterId, network.vpcId)))
      throw new InvalidRequestError(
        `network.vpcId: ${network.vpcId} already holds another NowScale cluster; a node reads the secrets ` +
          "of its own VPC's cluster, so one VPC holds one cluster: choose another VPC (or let NowScale " +
          "create one with network.cidr), or delete the other cluster first",
      );
    return { vpcId: network.vpcId, subnetIds: network.subnetIds, masterSubnetId: first, owned: false };
  }
  const created = await deps.resources.createNetwork(clusterId, {
    cidr: network.cidr,
    zones: network.zones,
    interfaceEndpoints: network.interfaceEndpoints,
  });
  await deps.store.recordResource(clusterId, { kind: "network", ...created });
  const masterSubnetId = created.subnetIds[network.zones.indexOf(request.master.zone)];
  if (masterSubnetId === undefined) throw new InvalidRequestError("no subnet in the master's zone");
  return { ...created, masterSubnetId, owned: true };
}

export async function createSecurityGroup(
  deps: LifecycleDeps,
  clusterId: string,
  vpcId: string,
): Promise<{ securityGroupId: string }> {
  const group = await deps.resources.createSecurityGroup(clusterId, vpcId);
  await deps.store.recordResource(clusterId, { kind: "securityGroup", ...group });
  return group;
}

/** The munge key and the agent's HMAC key; only their ids leave this step, never their values. */
export async function createSecrets(
  deps: LifecycleDeps,
  clusterId: string,
  vpcId?: string,
): Promise<SecretsResult> {
  const scope = vpcId === undefined ? {} : { vpcId };
  const munge = await deps.resources.createSecret(clusterId, "munge-key", scope);
  await deps.store.recordResource(clusterId, {
    kind: "secret",
    secretKind: "munge-key",
    secretId: munge.secretId,
  });
  const agent = await deps.resources.createSecret(clusterId, "agent-hmac-key", scope);
  await deps.store.recordResource(clusterId, {
    kind: "secret",
    secretKind: "agent-hmac-key",
    secretId: agent.secretId,
  });
  return { mungeKeySecretId: munge.secretId, agentKeySecretId: agent.secretId };
}

export const MASTER_QUEUE = "master";

/**
 * Launches the master with its bootstrap (which fetches both secrets by id). The launch's round is
 * fixed, so a retried step finds the instance it already started through the idempotency token.
 */
export async function launchMaster(
  deps: LifecycleDeps,
  input: {
    clusterId: string;
    request: CreateClusterRequest;
    network: NetworkResult;
    securityGroupId: string;
    secrets: SecretsResult;
  },
): Promise<MasterResult> {
  const { clusterId, request, network, securityGroupId, secrets } = input;
  const imageId = request.master.imageId ?? (await defaultImage(deps, request.master.instanceType));
  // The request's own bundle (checked when it gives a checksum), else the stack's (always checked).
  const bundle =
    request.master.agentUrl !== undefined
      ? {
          agentUrl: request.master.agentUrl,
          ...(request.master.agentSha256 === undefined ? {} : { agentSha256: request.master.agentSha256 }),
        }
      : deps.agentBundle === undefined
        ? {}
        : { agentUrl: deps.agentBundle.url, agentSha256: deps.agentBundle.sha256 };
  const options = {
    clusterId,
    region: request.region,
    mungeKeySecretId: secrets.mungeKeySecretId,
    agentKeySecretId: secrets.agentKeySecretId,
    // The configuration as it stands now (the cluster record's, the one copy): not a copy the workflow
    // was started with, which a PUT /autoscaling since would have made stale.
    queues: (await deps.store.queues(clusterId)).map((name) => ({ name })),
    agentPort: request.master.agentPort,
    ...bundle,
    ...(deps.wakeEventBus === undefined ? {} : { wakeEventBus: deps.wakeEventBus }),
  };
  const userData =
    deps.masterUserData === undefined
      ? // The control plane reaches the agent through SSM Run Command; Debian's images have no SSM agent.
        renderMasterBootstrapScript({ ...options, installSsmAgent: true })
      : deps.masterUserData(options);
  const provider = deps.provider({ securityGroupIds: [securityGroupId], vpcId: network.vpcId });
  const result = await provider.launch({
    clusterId,
    queue: MASTER_QUEUE,
    round: "master",
    candidates: [
      {
        instanceType: request.master.instanceType,
        zone: request.master.zone,
        chargeType: "ON_DEMAND",
        subnetId: network.masterSubnetId,
      },
    ],
    count: 1,
    allOrNothing: true,
    imageId,
    userData,
    tags: { [ROLE_TAG]: "master" },
  });
  const instance = result.instances[0];
  if (instance === undefined) {
    // The provider's typed error (capacity, quota, invalid image...) is the reason the user sees.
    const failure = result.failures[0]?.error;
    throw failure ?? new InvalidRequestError("the master did not start");
  }
  await deps.store.recordResource(clusterId, { kind: "instance", instanceId: instance.id });
  const master: MasterRecord = {
    instanceId: instance.id,
    agentPort: request.master.agentPort,
    securityGroupId,
    mungeKeySecretId: secrets.mungeKeySecretId,
    agentKeySecretId: secrets.agentKeySecretId,
    ...(instance.privateIp === undefined ? {} : { privateIp: instance.privateIp }),
  };
  await deps.store.setStatus(clusterId, "CREATING", { master });
  return { ...master, healthDeadline: deps.clock.now() + request.agentHealthTimeoutSeconds * 1000 };
}

/** One health poll; the workflow's Wait/Choice loop calls it until healthy or past the deadline. */
export async function checkAgentHealth(
  deps: LifecycleDeps,
  clusterId: string,
  master: MasterResult,
): Promise<{ healthy: boolean; timedOut: boolean }> {
  const healthy = await deps.agent.isHealthy(clusterId, master);
  return { healthy, timedOut: !healthy && deps.clock.now() >= master.healthDeadline };
}

async function defaultImage(deps: LifecycleDeps, instanceType: string): Promise<string> {
  if (deps.images === undefined)
    throw new InvalidRequestError("master.imageId: required where no default image is known");
  return deps.images.defaultImage(instanceType);
}
