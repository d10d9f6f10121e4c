import type { AgentChannel } from "../ports/agent-channel.js";
import type { CloudProvider } from "../ports/cloud-provider.js";
import type { NodeRecord, StateStore } from "../ports/state-store.js";
import { type ControlLog, silentLog } from "./log.js";
import { ignoreConflict } from "./store-retry.js";

/**
 * Node retirement, written once for the scale cycle's shrink, the reconciler's retirements and the
 * API's node deletion: the record is marked TERMINATING first (it now says a terminate is owed, so a
 * crash leaves the reconciler to retry it), the instance is terminated, the node is removed from Slurm,
 * and only then is the record deleted.
 *
 * The caller has already established, on evidence that agrees (docs/control-plane.md), that the node
 * runs no job and is to go; this module does not decide, it only carries the decision out in the one
 * order that never loses track of an instance or a Slurm node.
 */

export interface RetirementDeps {
  store: StateStore;
  provider: CloudProvider;
  agent: AgentChannel;
  log?: ControlLog;
}

export interface RetirementOptions {
  /**
   * Whether Slurm may list the node. False when the caller knows it does not (a boot that never
   * joined): no delete is sent to Slurm. @default true
   */
  inSlurm?: boolean;
}

/**
 * Retires one node. Resolves "retired" when the instance was terminated, Slurm has let go of the node
 * and the record is deleted; "slurm-pending" when Slurm could not be told: the record stays TERMINATING
 * (the instance is terminated) and the reconciler's gone step removes the node from Slurm and then the
 * record, so no Slurm node is left behind without a record to find it by.
 * Rejects with the provider's error when the terminate fails: the record stays TERMINATING and the
 * reconciler's release step terminates again.
 */
export async function retireNode(
  deps: RetirementDeps,
  clusterId: string,
  record: NodeRecord,
  now: number,
  options: RetirementOptions = {},
): Promise<"retired" | "slurm-pending"> {
  const log = deps.log ?? silentLog;
  if (record.status !== "TERMINATING") {
    // A lost condition means another writer moved the record meanwhile; the decision to retire stands.
    await deps.store
      .updateNodeStatus(clusterId, record.nodeName, record.status, "TERMINATING", now)
      .catch(ignoreConflict);
  }
  await deps.provider.terminate([record.instanceId]);
  if (options.inSlurm ?? true) {
    try {
      await deps.agent.deleteNode(record.nodeName);
    } catch (error) {
      log.warn("instance terminated, but Slurm could not be told: the reconciler removes the node", {
        clusterId,
        node: record.nodeName,
        error: (error as Error).message.slice(0, 300),
      });
      return "slurm-pending";
    }
  }
  // Its usage ends when the terminate was decided (`now`), not when Slurm let go.
  await deps.store.deleteNode(clusterId, record.nodeName, now);
  return "retired";
}
