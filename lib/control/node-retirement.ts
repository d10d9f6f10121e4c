import type { NodeState } from "../core/model.js";
import { DRAIN_REASON_PREFIX } from "../core/shrink.js";
import type { AgentChannel } from "../ports/agent-channel.js";
import type { OkReport } from "../ports/agent-report.js";
import type { CloudProvider } from "../ports/cloud-provider.js";
import { ConflictError, type NodeRecord, type StateStore } from "../ports/state-store.js";
import { type ControlLog, silentLog } from "./log.js";
import { nodesRunningJobs } from "./slurm-evidence.js";

/**
 * Node retirement, written once for the scale cycle's shrink, the reconciler's retirements and the
 * API's node deletion: the record is marked TERMINATING first (it now says a terminate is owed, so a
 * crash leaves the reconciler to retry it), the instance is terminated, the node is removed from Slurm,
 * and only then is the record deleted.
 *
 * The caller of `retireNode` has already established, on evidence that agrees (docs/control-plane.md),
 * that the node runs no job and is to go; `retireNode` does not decide, it only carries the decision out
 * in the one order that never loses track of an instance or a Slurm node. `retireDrainedNodes` is the
 * one place that decides: the scale cycle's same-poll terminate, on a report read after its drain.
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
  /**
   * True when a person asked for this node to go (the API's node deletion, a queue's deletion): the
   * request stands whatever another writer did to the record meanwhile. Otherwise the retirement rests
   * on an observation the record reflects, and a record another writer moved meanwhile stops it
   * (`RetirementOvertakenError`). @default false
   */
  requested?: boolean;
}

/**
 * The record of a node about to be retired was moved by another writer (a join, a resume by hand, a
 * drain) after the observation the retirement rested on: nothing was terminated, and the next poll or
 * run decides again on what it then sees. A ConflictError: the API answers 409.
 */
export class RetirementOvertakenError extends ConflictError {}

/**
 * Retires one node. Resolves "retired" when the instance was terminated, Slurm has let go of the node
 * and the record is deleted; "slurm-pending" when Slurm could not be told: the record stays TERMINATING
 * (the instance is terminated) and the reconciler's gone step removes the node from Slurm and then the
 * record, so no Slurm node is left behind without a record to find it by.
 * Rejects with the provider's error when the terminate fails: the record stays TERMINATING and the
 * reconciler's release step terminates again. Rejects with `RetirementOvertakenError`, having changed
 * nothing, when another writer moved the record from `record.status` since the caller read it (unless
 * `requested`).
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
    try {
      await deps.store.updateNodeStatus(clusterId, record.nodeName, record.status, "TERMINATING", now);
    } catch (error) {
      if (!(error instanceof ConflictError)) throw error;
      // Another writer moved the record since the caller observed it: a slow boot joined Slurm (and may
      // have a job), an operator resumed the node. The observation no longer holds, so the decision
      // does not either; only another retirement (already TERMINATING) or a person's request goes on.
      const moved = (await deps.store.listNodes(clusterId)).find((r) => r.nodeName === record.nodeName);
      if (moved?.status !== "TERMINATING" && options.requested !== true)
        throw new RetirementOvertakenError(
          `node ${record.nodeName}: its record went from ${record.status} to ${moved?.status ?? "deleted"} since the decision: not terminated`,
          { cause: error },
        );
    }
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

/** Why a node the scale cycle has just drained was not terminated in the same poll. */
export interface KeptDrained {
  node: string;
  reason: string;
}

/**
 * What the report read right after a drain says about one of the drained nodes: undefined when Slurm
 * shows it DRAINED by NowScale with no job (no CPU allocated, not DRAINING — which is also how the agent
 * reports ALLOCATED, MIXED or COMPLETING under a drain —, named by no running job), else why not. A
 * drained node takes no new job, so this answer, read after the drain, stays true until the terminate.
 */
export function drainedWithoutJob(
  report: OkReport,
  node: string,
  busy: ReadonlySet<string> = nodesRunningJobs(report),
): string | undefined {
  const seen = report.nodes.find((n) => n.name === node);
  if (seen === undefined) return "not in the report read after the drain";
  if (busy.has(node)) return `Slurm shows it ${seen.state} with a job`;
  if (seen.state !== "DRAINED") return `Slurm shows it ${seen.state}, not DRAINED`;
  if (seen.reason !== undefined && !seen.reason.startsWith(DRAIN_REASON_PREFIX))
    return `drained by someone else ("${seen.reason.slice(0, 80)}")`;
  return undefined;
}

/**
 * What a report read right before a planned terminate says: undefined when Slurm still shows the node as
 * the plan saw it when it called for the terminate (DRAINED by NowScale and empty; still not in Slurm for
 * a boot; still not ready), with no job; else why not. The plan's report may be seconds old by then (the
 * poll's launches came first): a boot may have joined and a resumed node taken a job meanwhile.
 */
export function stillAsPlanned(
  report: OkReport,
  node: string,
  planned: NodeState | undefined,
  busy: ReadonlySet<string> = nodesRunningJobs(report),
): string | undefined {
  if (busy.has(node)) return "Slurm now shows it running a job";
  const seen = report.nodes.find((n) => n.name === node);
  if (planned === "DRAINED") return drainedWithoutJob(report, node, busy);
  if (planned === "LAUNCHING")
    return seen === undefined ? undefined : `joined Slurm since the plan (${seen.state})`;
  if (planned === "NOT_READY")
    return seen?.state === "NOT_READY" ? undefined : `Slurm now shows it ${seen?.state ?? "nowhere"}`;
  return `planned for a node ${planned ?? "the plan did not see"}: not terminated`;
}

/**
 * Same-poll terminate (issue 15): the scale cycle has just drained `drained` (each on two reports in a
 * row that saw it idle with no job); this reads the cluster again (a second report, after the drain)
 * and retires, in this poll, each node Slurm now shows DRAINED with no job (`drainedWithoutJob`).
 * A node that got a job between the report the plan read and the drain shows DRAINING: it is kept, and
 * terminated by the usual path once its job has ended (two reports that agree it is drained and empty).
 * An agent that cannot be read now retires nothing: the usual path again. One node's failed retirement
 * does not stop the others (its record stays TERMINATING for the reconciler).
 */
export async function retireDrainedNodes(
  deps: RetirementDeps,
  clusterId: string,
  drained: readonly NodeRecord[],
  now: () => number,
): Promise<{ retired: NodeRecord[]; kept: KeptDrained[] }> {
  const log = deps.log ?? silentLog;
  const retired: NodeRecord[] = [];
  const kept: KeptDrained[] = [];
  if (drained.length === 0) return { retired, kept };
  let report: OkReport;
  try {
    report = await deps.agent.report();
  } catch (error) {
    const reason = `Slurm could not be read after the drain: ${(error as Error).message.slice(0, 200)}`;
    return { retired, kept: drained.map((r) => ({ node: r.nodeName, reason })) };
  }
  const busy = nodesRunningJobs(report);
  for (const record of drained) {
    const why = drainedWithoutJob(report, record.nodeName, busy);
    if (why !== undefined) {
      kept.push({ node: record.nodeName, reason: why });
      continue;
    }
    try {
      await retireNode(deps, clusterId, record, now());
      retired.push(record);
    } catch (error) {
      log.warn("same-poll terminate failed: the reconciler retries it", {
        clusterId,
        node: record.nodeName,
        error: (error as Error).message.slice(0, 300),
      });
      kept.push({
        node: record.nodeName,
        reason: `terminate failed: ${(error as Error).message.slice(0, 200)}`,
      });
    }
  }
  return { retired, kept };
}
