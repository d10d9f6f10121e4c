import type { ClusterNode, InstanceTypeInfo, Job, Skip } from "./model.js";

/**
 * Terms the job preparation (views.ts), the policies (policy*.ts) and plan.ts share: an existing node that
 * can take pending work, a hold on a job's launches, and a job's skip. Their own module, so that views.ts
 * and policy.ts need not import each other.
 */

/** An existing node that can take pending work: IDLE (soonest) or LAUNCHING. */
export interface SupplyNode {
  node: ClusterNode;
  shape: InstanceTypeInfo;
}

/** Why a job may use existing nodes but launches nothing, as the skip it gets if they do not cover it. */
export interface Hold {
  code: Skip["code"];
  reason: string;
}

/** " (N identical jobs)" for an aggregated job entry of N > 1 copies; empty for one. */
export function countSuffix(count: number): string {
  return count > 1 ? ` (${count} identical jobs)` : "";
}

/** The skip of `count` copies of a job (all by default), the reason followed by the copy count. */
export function jobSkip(job: Job, code: Skip["code"], reason: string, count = job.count): Skip {
  return { job: job.id, queue: job.queue, code, reason: reason + countSuffix(count), copies: count };
}
