import type { ShapeGroup } from "./config.js";
import { bestFit, describeSlice, type Slice, type SlicedRequest, shapeKey, slicesPerNode } from "./fit.js";
import type { Job } from "./model.js";
import { jobSkip, type SupplyNode } from "./plan-terms.js";
import { CopyStarts, listNames, type NewNode, type Policy, type PolicyResult } from "./policy.js";
import type { JobView } from "./views.js";

/**
 * THPC_AS exactly: each job gets whole nodes of its best-fit shape; nothing is shared between jobs.
 * Existing idle and launching nodes are used first, best-fitting first, so no demand is launched twice.
 */
export const planThpc: Policy = ({ queue, jobs, holds, supply, room, views, requests }) => {
  const result: PolicyResult = { newNodes: [], copyStarts: [], skipped: [], reserved: new Map() };
  let planned = 0;
  /** Fits by view id, then request id. */
  const fits = new Map<number, Map<number, ReturnType<typeof bestFit>>>();
  const pool = new SupplyPool(supply);
  let roomLeft = room;
  /** The next multi-node copy's unit: each is its own (see NewNode.unit). */
  let nextUnit = 0;

  // One acceptance test per view, not per job: most jobs share a view.
  const acceptsOf = new Map<JobView, (s: SupplyNode) => boolean>();
  for (let index = 0; index < jobs.length; index++) {
    const job = jobs[index] as Job;
    const view = views[index] as JobView;
    let accepts = view.anyNode ? undefined : acceptsOf.get(view);
    if (!view.anyNode && accepts === undefined) {
      accepts = (s: SupplyNode) => view.accepts(s.node);
      acceptsOf.set(view, accepts);
    }
    const { slice, units, distinct, id: request } = requests[index] as SlicedRequest;
    // Many jobs share a request and a view: fit each distinct pair once.
    let viewFits = fits.get(view.id);
    if (!viewFits) {
      viewFits = new Map();
      fits.set(view.id, viewFits);
    }
    let fresh = viewFits.get(request);
    if (fresh === undefined) {
      fresh = bestFit(view, slice, units, distinct);
      viewFits.set(request, fresh);
    }
    // Made only when needed: this runs once per pending job, and most need neither.
    let usedNames: string[] | undefined;
    /** New nodes each copy that existing nodes help still needs, and of which shape. */
    let helped: { nodes: number; group: ShapeGroup }[] | undefined;
    /** Copies that lie wholly on fresh nodes of the job's best fit. */
    let freshCopies = 0;
    let copiesLeft = job.count;
    let unplaceable = 0;

    // Copies that existing nodes help, one at a time; the pool is small.
    while (copiesLeft > 0 && pool.canHost(slice, distinct, accepts, request)) {
      const taken = pool.take(slice, units, distinct, accepts);
      const rest = taken.unitsLeft > 0 ? bestFit(view, slice, taken.unitsLeft, distinct) : null;
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
        usedNames ??= [];
        usedNames.push(s.node.name);
        result.reserved.set(s.node.name, job.id);
      }
      if (rest) {
        helped ??= [];
        helped.push({ nodes: rest.layout.nodes, group: rest.group });
      }
    }
    // The remaining copies all lie on fresh nodes the same way.
    if (copiesLeft > 0) {
      if (fresh) freshCopies = copiesLeft;
      else unplaceable += copiesLeft;
    }

    const helpedCopies = helped?.length ?? 0;
    const needing = helpedCopies + freshCopies;
    const covered = job.count - needing - unplaceable;
    if (covered > 0) {
      result.skipped.push(
        jobSkip(
          job,
          "COVERED_BY_EXISTING_NODES",
          `existing nodes will run it: ${listNames(usedNames ?? [])}`,
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
    if (needing === 0) continue;
    const hold = holds[index];
    if (hold) {
      result.skipped.push(jobSkip(job, hold.code, hold.reason, needing));
      continue;
    }

    const starts = new CopyStarts();
    let tooLarge = 0;
    let deniedByRoom = 0;
    // The helped copies one by one, then the fresh ones together.
    for (let k = 0; k < helpedCopies + (freshCopies > 0 ? 1 : 0); k++) {
      const help = helped?.[k];
      const need = help ? help.nodes : (fresh as NonNullable<typeof fresh>).layout.nodes;
      const group = help ? help.group : (fresh as NonNullable<typeof fresh>).group;
      const copies = help ? 1 : freshCopies;
      if (need > queue.maxSize) {
        tooLarge += copies;
        continue;
      }
      // Copies admitted whole, in order, while the queue has room.
      const admitted = Math.min(copies, Math.floor(roomLeft / need));
      deniedByRoom += copies - admitted;
      roomLeft -= admitted * need;
      const multiNode = need > 1;
      for (let i = 0; i < admitted; i++) {
        starts.add(planned);
        planned += need;
        if (multiNode) {
          // Each multi-node copy is its own all-or-nothing unit.
          result.newNodes.push({
            group,
            count: need,
            jobs: [job.id],
            unit: nextUnit++,
            multiNode,
          } satisfies NewNode);
        }
      }
      if (!multiNode && admitted > 0) {
        const last = result.newNodes[result.newNodes.length - 1];
        if (last && last.unit === group.key && last.jobs[last.jobs.length - 1] === job.id)
          last.count += admitted;
        else result.newNodes.push({ group, count: admitted, jobs: [job.id], unit: group.key, multiNode });
      }
    }
    if (starts.size > 0) result.copyStarts[index] = starts;
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
  /**
   * canHost's answers while the pool is unchanged, by acceptance test, then request id: every pending
   * job asks, most with a request and a view others have, and nodes they refuse would be tried again.
   */
  private readonly answers = new Map<((s: SupplyNode) => boolean) | undefined, Map<number, boolean>>();

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
      g.nodes.sort((a, b) => rank(a) - rank(b) || (a.node.name < b.node.name ? 1 : -1));
    }
  }

  /** Whether a node of the pool takes one slice of `request` (its id; the same slice and distinct). */
  canHost(
    slice: Slice,
    distinct: boolean,
    accepts: ((s: SupplyNode) => boolean) | undefined,
    request: number,
  ): boolean {
    let byRequest = this.answers.get(accepts);
    if (!byRequest) {
      byRequest = new Map();
      this.answers.set(accepts, byRequest);
    }
    let answer = byRequest.get(request);
    if (answer === undefined) {
      answer = this.hosts(slice, distinct, accepts);
      byRequest.set(request, answer);
    }
    return answer;
  }

  private hosts(slice: Slice, distinct: boolean, accepts: ((s: SupplyNode) => boolean) | undefined): boolean {
    for (const g of this.groups) {
      if (g.nodes.length === 0 || slicesPerNode(slice, g.shape, distinct) === 0) continue;
      if (accepts === undefined) return true;
      for (const s of g.nodes) if (accepts(s)) return true;
    }
    return false;
  }

  /** Takes the best-fitting nodes for one copy of a job; returns them and the units still unplaced. */
  take(
    slice: Slice,
    units: number,
    distinct: boolean,
    accepts?: (s: SupplyNode) => boolean,
  ): { nodes: SupplyNode[]; unitsLeft: number } {
    this.answers.clear();
    const fitting = this.groups
      .filter((g) => g.nodes.length > 0 && slicesPerNode(slice, g.shape, distinct) > 0)
      .sort((a, b) => spare(a.shape, slice, distinct) - spare(b.shape, slice, distinct));
    const nodes: SupplyNode[] = [];
    let left = units;
    for (const g of fitting) {
      const per = slicesPerNode(slice, g.shape, distinct);
      // Taken from the end (the best node); a job that refuses some nodes takes the last it accepts.
      for (let i = g.nodes.length - 1; left > 0 && i >= 0; i--) {
        const s = g.nodes[i] as SupplyNode;
        if (accepts !== undefined && !accepts(s)) continue;
        g.nodes.splice(i, 1);
        nodes.push(s);
        left -= Math.min(per, left);
      }
      if (left === 0) break;
    }
    return { nodes, unitsLeft: left };
  }

  /** Returns nodes taken by `take`, in reverse, so the pool is as it was. */
  giveBack(nodes: readonly SupplyNode[]): void {
    this.answers.clear();
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
