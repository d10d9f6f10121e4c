import { type ShapeGroup, shapeKey } from "./config.js";
import { bestFit, describeSlice, type Slice, slicesOf, slicesPerNode } from "./fit.js";
import {
  jobSkip,
  listNames,
  type NewNode,
  type Policy,
  type PolicyResult,
  type SupplyNode,
} from "./policy.js";

/**
 * THPC_AS exactly: each job gets whole nodes of its best-fit shape; nothing is shared between jobs.
 * Existing idle and launching nodes are used first, best-fitting first, so no demand is launched twice.
 */
export const planThpc: Policy = ({ queue, jobs, held, supply, room }) => {
  const result: PolicyResult = { newNodes: [], firstNewNode: new Map(), skipped: [], reserved: new Map() };
  let planned = 0;
  const fits = new Map<string, ReturnType<typeof bestFit>>();
  const pool = new SupplyPool(supply);
  let roomLeft = room;

  for (const job of jobs) {
    const { slice, units, distinct } = slicesOf(job.request, queue.scaleUpMemRatio);
    // Many jobs share a request: fit each distinct request once.
    const key = `${distinct ? "n" : "t"}${units}/${slice.cpus}/${slice.memMiB}/${slice.gpus}`;
    let fresh = fits.get(key);
    if (fresh === undefined) {
      fresh = bestFit(queue, slice, units, distinct);
      fits.set(key, fresh);
    }
    const usedNames: string[] = [];
    /** New nodes each not-yet-covered copy needs, and of which shape. */
    const needs: { nodes: number; group: ShapeGroup }[] = [];
    let copiesLeft = job.count;
    let unplaceable = 0;

    // Copies that existing nodes help, one at a time; the pool is small.
    while (copiesLeft > 0 && pool.canHost(slice, distinct)) {
      const taken = pool.take(slice, units, distinct);
      const rest = taken.unitsLeft > 0 ? bestFit(queue, slice, taken.unitsLeft, distinct) : null;
      // A copy that would hold more nodes than maxSize can never run: reserving nodes for it would
      // keep them from shrinking (and other jobs would launch around them), for ever.
      const neverRuns = rest !== null && taken.nodes.length + rest.layout.nodes > queue.maxSize;
      if (taken.unitsLeft > 0 && (!rest || neverRuns || (fresh && rest.layout.nodes >= fresh.layout.nodes))) {
        // Partial help that saves no new node, or cannot run: leave those nodes for other jobs.
        pool.giveBack(taken.nodes);
        break;
      }
      copiesLeft--;
      for (const s of taken.nodes) {
        usedNames.push(s.node.name);
        if (s.node.state === "IDLE") result.reserved.set(s.node.name, job.id);
      }
      if (rest) needs.push({ nodes: rest.layout.nodes, group: rest.group });
    }
    // The remaining copies all lie on fresh nodes the same way.
    if (copiesLeft > 0) {
      if (fresh)
        for (let i = 0; i < copiesLeft; i++) needs.push({ nodes: fresh.layout.nodes, group: fresh.group });
      else unplaceable += copiesLeft;
    }

    const covered = job.count - needs.length - unplaceable;
    if (covered > 0) {
      result.skipped.push(
        jobSkip(
          job,
          "COVERED_BY_EXISTING_NODES",
          `existing nodes will run it: ${listNames(usedNames)}`,
          covered,
        ),
      );
    }
    if (unplaceable > 0) {
      result.skipped.push(
        jobSkip(
          job,
          "NO_FITTING_SHAPE",
          `no instance type of queue ${queue.queueName} fits ${describeSlice(slice)} per ${distinct ? "node" : "task"}`,
          unplaceable,
        ),
      );
    }
    if (needs.length === 0) continue;
    const hold = held.get(job);
    if (hold) {
      result.skipped.push(jobSkip(job, hold.code, hold.reason, needs.length));
      continue;
    }

    let first = -1;
    let tooLarge = 0;
    let deniedByRoom = 0;
    needs.forEach(({ nodes: need, group }, copy) => {
      if (need > queue.maxSize) tooLarge++;
      else if (need > roomLeft) deniedByRoom++;
      else {
        roomLeft -= need;
        const multiNode = need > 1;
        const unit = multiNode ? `${group.key}|${job.id}#${copy}` : group.key;
        if (first < 0) first = planned;
        planned += need;
        const last = result.newNodes[result.newNodes.length - 1];
        if (!multiNode && last && last.unit === unit && last.jobs[last.jobs.length - 1] === job.id)
          last.count += need;
        else result.newNodes.push({ group, count: need, jobs: [job.id], unit, multiNode } satisfies NewNode);
      }
    });
    if (first >= 0) result.firstNewNode.set(job, first);
    if (tooLarge > 0) {
      result.skipped.push(
        jobSkip(
          job,
          "JOB_LARGER_THAN_MAX_SIZE",
          `needs ${fresh?.layout.nodes ?? 0} new nodes but queue ${queue.queueName} has maxSize ${queue.maxSize}`,
          tooLarge,
        ),
      );
    }
    if (deniedByRoom > 0) {
      result.skipped.push(
        jobSkip(
          job,
          "QUEUE_AT_MAX_SIZE",
          `queue ${queue.queueName} would exceed maxSize ${queue.maxSize}`,
          deniedByRoom,
        ),
      );
    }
  }
  return result;
};

/** Existing nodes that can still take a job, grouped by shape; each is used by at most one job. */
class SupplyPool {
  private readonly groups: { shape: SupplyNode["shape"]; nodes: SupplyNode[] }[] = [];

  constructor(supply: readonly SupplyNode[]) {
    const byKey = new Map<string, { shape: SupplyNode["shape"]; nodes: SupplyNode[] }>();
    for (const s of supply) {
      const key = shapeKey(s.shape);
      let g = byKey.get(key);
      if (!g) {
        g = { shape: s.shape, nodes: [] };
        byKey.set(key, g);
        this.groups.push(g);
      }
      g.nodes.push(s);
    }
    // Idle nodes before launching ones: they run the job soonest. Taken from the end: reverse.
    for (const g of this.groups) {
      g.nodes.sort((a, b) => rank(b) - rank(a) || (a.node.name < b.node.name ? 1 : -1));
    }
  }

  canHost(slice: Slice, distinct: boolean): boolean {
    return this.groups.some((g) => g.nodes.length > 0 && slicesPerNode(slice, g.shape, distinct) > 0);
  }

  /** Takes the best-fitting nodes for one copy of a job; returns them and the units still unplaced. */
  take(slice: Slice, units: number, distinct: boolean): { nodes: SupplyNode[]; unitsLeft: number } {
    const fitting = this.groups
      .filter((g) => g.nodes.length > 0 && slicesPerNode(slice, g.shape, distinct) > 0)
      .sort((a, b) => spare(a.shape, slice, distinct) - spare(b.shape, slice, distinct));
    const nodes: SupplyNode[] = [];
    let left = units;
    for (const g of fitting) {
      const per = slicesPerNode(slice, g.shape, distinct);
      while (left > 0 && g.nodes.length > 0) {
        const s = g.nodes.pop();
        if (!s) break;
        nodes.push(s);
        left -= Math.min(per, left);
      }
      if (left === 0) break;
    }
    return { nodes, unitsLeft: left };
  }

  /** Returns nodes taken by `take`, in reverse, so the pool is as it was. */
  giveBack(nodes: readonly SupplyNode[]): void {
    for (const s of [...nodes].reverse()) {
      this.groups.find((g) => g.shape === s.shape || shapeKey(g.shape) === shapeKey(s.shape))?.nodes.push(s);
    }
  }
}

function rank(s: SupplyNode): number {
  return s.node.state === "IDLE" ? 1 : 0;
}

function spare(shape: SupplyNode["shape"], slice: Slice, distinct: boolean): number {
  const per = slicesPerNode(slice, shape, distinct);
  return (shape.vcpus - per * slice.cpus) * 1e7 + (shape.memoryMiB - per * slice.memMiB);
}
