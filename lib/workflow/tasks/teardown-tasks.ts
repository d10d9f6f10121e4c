import type { ClusterResourceRef } from "../../ports/cluster-resources.js";
import { resourceKey } from "../../ports/cluster-resources.js";
import { isCloudProviderError } from "../../ports/errors.js";
import type { LifecycleDeps } from "./deps.js";
import { AttachedClusterError, ResourcesInUseError } from "./errors.js";

/**
 * Removal steps shared by the creation workflow's compensation and the deletion workflow. Each one
 * deletes what the ledger recorded and what the cloud finds by the cluster's tag (a step that crashed
 * between making a resource and recording it left only the tag), then forgets it. All are idempotent.
 * None runs on an attached cluster (refuseAttached): there the master, network and secrets are the user's.
 */

/** Throws AttachedClusterError for an attached cluster: its teardown is the detach path's (lib/control/detach.ts). */
export async function refuseAttached(deps: LifecycleDeps, clusterId: string, step: string): Promise<void> {
  if ((await deps.store.origin(clusterId)) === "attached") {
    throw new AttachedClusterError(
      `cluster ${clusterId} is attached: ${step} never runs on it (its master, network and secrets are the user's; detach retires NowScale's nodes only)`,
    );
  }
}

export type InstanceSelection = "computes" | "master" | "all";

/** Drains every node first so Slurm starts nothing new; an unreachable agent does not stop deletion. */
export async function drainCluster(deps: LifecycleDeps, clusterId: string): Promise<{ drained: boolean }> {
  await refuseAttached(deps, clusterId, "drain");
  const master = await deps.store.master(clusterId);
  if (master === undefined) return { drained: false };
  return { drained: await deps.agent.drainAll(clusterId, master, "nowscale: cluster deletion") };
}

export async function terminateInstances(
  deps: LifecycleDeps,
  clusterId: string,
  which: InstanceSelection,
): Promise<{ terminated: string[] }> {
  await refuseAttached(deps, clusterId, "terminateInstances");
  const ids = await selectInstances(deps, clusterId, which);
  if (ids.length > 0) await deps.provider().terminate(ids);
  return { terminated: ids };
}

/** Throws ResourcesInUseError (the workflow waits and retries) while a selected instance is not gone. */
export async function awaitInstancesGone(
  deps: LifecycleDeps,
  clusterId: string,
  which: InstanceSelection,
): Promise<{ gone: string[] }> {
  await refuseAttached(deps, clusterId, "awaitInstancesGone");
  const ids = await selectInstances(deps, clusterId, which);
  const live = (await deps.provider().describe(ids)).filter((i) => i.state !== "TERMINATED");
  if (live.length > 0) {
    throw new ResourcesInUseError(
      `${live.length} instance(s) still terminating: ${live.map((i) => i.id).join(", ")}`,
    );
  }
  for (const id of ids) await deps.store.forgetResource(clusterId, { kind: "instance", instanceId: id });
  return { gone: ids };
}

export async function deleteSecrets(deps: LifecycleDeps, clusterId: string): Promise<{ deleted: string[] }> {
  await refuseAttached(deps, clusterId, "deleteSecrets");
  const secrets = await known(deps, clusterId, "secret");
  for (const s of secrets) {
    await deps.resources.deleteSecret(s.secretId);
    await deps.store.forgetResource(clusterId, s);
  }
  // The users' secrets go with the cluster (those of users deleted before went with them): those the
  // store lists and those the record names (a listing may lag behind a user added just before).
  const recorded =
    deps.resources.deleteUserSecrets === undefined ? [] : await deps.store.userSecretIds(clusterId);
  const users = (await deps.resources.deleteUserSecrets?.(clusterId, recorded)) ?? [];
  // With its secrets gone, the cluster no longer needs its VPC to itself.
  await deps.store.releaseVpcClaim(clusterId);
  return { deleted: [...secrets.map((s) => s.secretId), ...users] };
}

/** The security group, then the network NowScale made (never the user's: it is neither recorded nor tagged). */
export async function deleteNetwork(deps: LifecycleDeps, clusterId: string): Promise<{ deleted: string[] }> {
  await refuseAttached(deps, clusterId, "deleteNetwork");
  const deleted: string[] = [];
  for (const group of await known(deps, clusterId, "securityGroup")) {
    await inUseIsRetryable(() => deps.resources.deleteSecurityGroup(group.securityGroupId));
    await deps.store.forgetResource(clusterId, group);
    deleted.push(group.securityGroupId);
  }
  for (const network of await known(deps, clusterId, "network")) {
    await inUseIsRetryable(() => deps.resources.deleteNetwork(network));
    await deps.store.forgetResource(clusterId, network);
    deleted.push(network.vpcId);
  }
  return { deleted };
}

/**
 * The fence's second half. Deletion set DELETING under the admission lease, so no launch is admitted
 * after it, and a launch admitted before it checks the status again right before its cloud call; what
 * is left are launches already calling the cloud. Throws ResourcesInUseError (the workflow waits and
 * retries) while any has no outcome, so the sweep that follows sees every instance they started.
 */
export async function awaitLaunchesSettled(
  deps: LifecycleDeps,
  clusterId: string,
): Promise<{ inFlight: number }> {
  const { inFlight } = await deps.store.computeLaunches(clusterId);
  if (inFlight > 0) throw new ResourcesInUseError(`${inFlight} compute launch(es) still in flight`);
  return { inFlight };
}

async function selectInstances(deps: LifecycleDeps, clusterId: string, which: InstanceSelection) {
  const master = await deps.store.master(clusterId);
  const recorded = (await known(deps, clusterId, "instance")).map((r) => r.instanceId);
  const tagged = (await deps.provider().list(clusterId)).map((i) => i.id);
  // Node records too: a listing that lags (or comes back short) must not let a compute survive deletion.
  const nodes = (await deps.store.computeLaunches(clusterId)).instanceIds;
  const all = [
    ...new Set([...(master === undefined ? [] : [master.instanceId]), ...recorded, ...tagged, ...nodes]),
  ];
  if (which === "all") return all;
  const isMaster = (id: string) => id === master?.instanceId;
  return all.filter((id) => (which === "master" ? isMaster(id) : !isMaster(id)));
}

type RefOf<K extends ClusterResourceRef["kind"]> = Extract<ClusterResourceRef, { kind: K }>;

/** The ledger's resources of one kind joined with the tagged ones, without duplicates. */
async function known<K extends ClusterResourceRef["kind"]>(
  deps: LifecycleDeps,
  clusterId: string,
  kind: K,
): Promise<RefOf<K>[]> {
  const all = [...(await deps.store.resources(clusterId)), ...(await deps.resources.list(clusterId))];
  const byKey = new Map<string, RefOf<K>>();
  for (const ref of all) {
    if (ref.kind === kind && !byKey.has(resourceKey(ref))) byKey.set(resourceKey(ref), ref as RefOf<K>);
  }
  return [...byKey.values()];
}

/** A dependency violation (an ENI still attached) clears by itself: the workflow waits and retries. */
async function inUseIsRetryable(action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (error) {
    if (error instanceof ResourcesInUseError) throw error;
    if (isCloudProviderError(error) && error.cause?.code === "DependencyViolation") {
      throw new ResourcesInUseError(error.message);
    }
    throw error;
  }
}
