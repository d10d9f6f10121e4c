import type { ResolvedQueue, ShapeGroup } from "./config.js";
import type { ClusterNode, InstanceTypeInfo, Job, Skip } from "./model.js";

/** An existing node that can take pending work: IDLE (soonest) or LAUNCHING. */
export interface SupplyNode {
  node: ClusterNode;
  shape: InstanceTypeInfo;
}

/** A run of identical nodes to launch, in priority order; the scale-out round takes a prefix of them. */
export interface NewNode {
  group: ShapeGroup;
  count: number;
  /** Jobs these nodes are for (ids, each once). */
  jobs: string[];
  /**
   * Nodes sharing a unit go into one launch. A unit of one multi-node job copy is launched
   * all-or-nothing when the whole unit fits in the round.
   */
  unit: string;
  multiNode: boolean;
}

export interface PolicyInput {
  queue: ResolvedQueue;
  /** Pending jobs of the queue, oldest first (ties by id). */
  jobs: readonly Job[];
  /**
   * Jobs that may use existing nodes but launch nothing (not waited expansionBusyTime, expansion
   * disabled), with the skip they get if existing nodes do not cover them.
   */
  held: ReadonlyMap<Job, Hold>;
  supply: readonly SupplyNode[];
  /** New nodes the queue may still take under maxSize. */
  room: number;
  weighPrice: boolean;
}

export interface PolicyResult {
  /** At most `room` nodes in all. */
  newNodes: NewNode[];
  /**
   * For each job that needs new nodes: the position (counting nodes, not runs) of the first new node
   * it needs. A round of R nodes helps the job when that position is below R.
   */
  firstNewNode: Map<Job, number>;
  skipped: Skip[];
  /** Idle nodes that pending jobs will use, by node name: not to be shrunk. */
  reserved: Map<string, string>;
}

export interface Hold {
  code: Skip["code"];
  reason: string;
}

export type Policy = (input: PolicyInput) => PolicyResult;

export function countSuffix(count: number): string {
  return count > 1 ? ` (${count} identical jobs)` : "";
}

export function jobSkip(job: Job, code: Skip["code"], reason: string, count = job.count): Skip {
  return { job: job.id, queue: job.queue, code, reason: reason + countSuffix(count) };
}

export function listNames(names: readonly string[], max = 5): string {
  return names.length <= max
    ? names.join(", ")
    : `${names.slice(0, max).join(", ")} and ${names.length - max} more`;
}
