import type { ResolvedQueue } from "./config.js";
import type { ClusterNode, Shrink } from "./model.js";

export interface HeadroomLaunchInput {
  queue: ResolvedQueue;
  nodes: readonly ClusterNode[];
  /** Names of nodes a running job occupies. */
  busy: ReadonlySet<string>;
  /** Idle and booting nodes pending jobs will use (the policy's), by node name → job id. */
  reserved: ReadonlyMap<string, string>;
  /** What the shrink plan of this cycle drains or terminates: no longer spare. */
  shrinks: readonly Shrink[];
  /** The warm headroom in vCPUs (plan.ts headroomVcpus); 0: none. */
  headroomVcpus: number;
  vcpusOf: (node: ClusterNode) => number;
  /** Nodes this cycle may still launch in the queue: under maxSize and maxNodesPerCycle, after the round. */
  room: number;
}

/**
 * How many nodes of the queue's first shape to launch so that the spare vCPUs reach the headroom
 * (config `headroomLaunch`). Spare: idle nodes running no job and booting nodes (LAUNCHING, NOT_READY),
 * that no pending job will use and this cycle does not shrink; the same count the shrink keeps the
 * headroom with, plus booting nodes, which will be idle when up. The nodes are of the first entry's
 * shape, as a minSize top-up, rounded up to whole nodes; none with auto expansion off or no room.
 */
export function headroomLaunchCount(input: HeadroomLaunchInput): number {
  const { queue, headroomVcpus } = input;
  const first = queue.groups[0];
  if (headroomVcpus <= 0 || !first || !queue.enableAutoExpansion || input.room <= 0) return 0;
  const gone = new Set(input.shrinks.map((s) => s.node));
  let spare = 0;
  for (const node of input.nodes) {
    if (input.reserved.has(node.name) || gone.has(node.name) || input.busy.has(node.name)) continue;
    if (node.state === "IDLE" || node.state === "LAUNCHING" || node.state === "NOT_READY")
      spare += input.vcpusOf(node);
  }
  const missing = headroomVcpus - spare;
  if (missing <= 0) return 0;
  return Math.min(input.room, Math.ceil(missing / first.shape.vcpus));
}
