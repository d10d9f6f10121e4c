import type { ShapeGroup } from "./config.js";
import type { JobRequest, Shape } from "./model.js";

/** One unit of a request that must sit on a single node: a node slice or a task. */
export interface Slice {
  cpus: number;
  /** Already multiplied by the queue's scaleUpMemRatio. */
  memMiB: number;
  gpus: number;
}

/** How one copy of a job would lie on nodes of one shape. */
export interface Layout {
  nodes: number;
  /** Spare vCPUs summed over all of the job's nodes. */
  spareCpus: number;
  spareMemMiB: number;
}

/** The unit of a request and how many of them; `distinct` units must each have a node of their own. */
export function slicesOf(
  request: JobRequest,
  memRatio: number,
): { slice: Slice; units: number; distinct: boolean } {
  if (request.kind === "nodes") {
    return {
      slice: {
        cpus: request.cpusPerNode,
        memMiB: Math.ceil(request.memPerNodeMiB * memRatio),
        gpus: request.gpusPerNode,
      },
      units: request.nodes,
      distinct: true,
    };
  }
  return {
    slice: {
      cpus: request.cpusPerTask,
      memMiB: Math.ceil(request.memPerTaskMiB * memRatio),
      gpus: request.gpusPerTask,
    },
    units: request.tasks,
    distinct: false,
  };
}

/** How many slices fit on one empty node of this shape (0 when none does). */
export function slicesPerNode(slice: Slice, shape: Shape, distinct: boolean): number {
  if (slice.cpus > shape.vcpus || slice.memMiB > shape.memoryMiB || slice.gpus > shape.gpus) return 0;
  if (distinct) return 1;
  let n = Math.floor(shape.vcpus / slice.cpus);
  if (slice.memMiB > 0) n = Math.min(n, Math.floor(shape.memoryMiB / slice.memMiB));
  if (slice.gpus > 0) n = Math.min(n, Math.floor(shape.gpus / slice.gpus));
  return n;
}

/** The layout of `units` slices on fresh nodes of `shape`, or null when one slice does not fit a node. */
export function layoutOn(slice: Slice, units: number, distinct: boolean, shape: Shape): Layout | null {
  const perNode = slicesPerNode(slice, shape, distinct);
  if (perNode === 0) return null;
  const nodes = Math.ceil(units / perNode);
  return {
    nodes,
    spareCpus: nodes * shape.vcpus - units * slice.cpus,
    spareMemMiB: nodes * shape.memoryMiB - units * slice.memMiB,
  };
}

/** Orders layouts THPC's way: fewest spare vCPUs, then least spare memory; then fewer nodes. */
export function compareLayouts(a: Layout, b: Layout): number {
  return a.spareCpus - b.spareCpus || a.spareMemMiB - b.spareMemMiB || a.nodes - b.nodes;
}

/**
 * THPC best fit: among the shapes that fit, the one leaving the fewest spare vCPUs over all the job's
 * nodes, then the least spare memory, then (for task jobs) fewer nodes; on a full tie, the shape listed
 * first. A shape with GPUs is chosen for a slice without GPUs only when no shape without GPUs fits
 * (a departure from THPC's text: fewest spare vCPUs alone would put CPU jobs on GPU types). Null: none fits.
 */
export function bestFit(
  queue: { readonly groups: readonly ShapeGroup[] },
  slice: Slice,
  units: number,
  distinct: boolean,
): { group: ShapeGroup; layout: Layout } | null {
  let best: { group: ShapeGroup; layout: Layout } | null = null;
  let bestGpu: { group: ShapeGroup; layout: Layout } | null = null;
  for (const group of queue.groups) {
    const layout = layoutOn(slice, units, distinct, group.shape);
    if (!layout) continue;
    if (slice.gpus === 0 && group.shape.gpus > 0) {
      if (!bestGpu || compareLayouts(layout, bestGpu.layout) < 0) bestGpu = { group, layout };
    } else if (!best || compareLayouts(layout, best.layout) < 0) best = { group, layout };
  }
  return best ?? bestGpu;
}

/** A request as slicesOf gives it, with its RequestIds id. */
export interface SlicedRequest {
  readonly id: number;
  readonly slice: Slice;
  readonly units: number;
  readonly distinct: boolean;
}

/**
 * The same small integer for equal requests (units, node or task slices, the slice's numbers): map keys
 * the planner looks up once per pending job, without building and hashing a string each time. One per
 * plan call, so it holds only that call's requests.
 */
export class RequestIds {
  /** By units and CPUs, then memory and GPUs, each pair packed into one exact integer. */
  private readonly packed = new Map<number, Map<number, number>>();
  /** Requests whose numbers do not pack (fractions, thousands of GPUs): by a string, as a fallback. */
  private readonly other = new Map<string, number>();
  private next = 0;
  /** By id: the request as slicesOf gives it, for `of`. */
  private readonly requests: SlicedRequest[] = [];

  id(slice: Slice, units: number, distinct: boolean): number {
    return this.idOf(distinct, units, slice.cpus, slice.memMiB, slice.gpus);
  }

  /**
   * slicesOf(request, memRatio) with its id, one object for all equal requests (the caller keeps one
   * memRatio per instance): the planner reads every pending job's request, and two objects per job
   * were a good part of its garbage. The result is shared: not to be changed.
   */
  of(request: JobRequest, memRatio: number): SlicedRequest {
    const id =
      request.kind === "nodes"
        ? this.idOf(
            true,
            request.nodes,
            request.cpusPerNode,
            Math.ceil(request.memPerNodeMiB * memRatio),
            request.gpusPerNode,
          )
        : this.idOf(
            false,
            request.tasks,
            request.cpusPerTask,
            Math.ceil(request.memPerTaskMiB * memRatio),
            request.gpusPerTask,
          );
    let sliced = this.requests[id];
    if (sliced === undefined) {
      sliced = { id, ...slicesOf(request, memRatio) };
      this.requests[id] = sliced;
    }
    return sliced;
  }

  private idOf(distinct: boolean, units: number, cpus: number, memMiB: number, gpus: number): number {
    // Node slices (distinct) and task slices of the same numbers are different requests.
    const u = distinct ? -1 - units : units;
    const outer = u * 4096 + cpus;
    const inner = memMiB * 1024 + gpus;
    if (
      below(cpus, 4096) &&
      below(gpus, 1024) &&
      Number.isInteger(memMiB) &&
      memMiB >= 0 &&
      Number.isSafeInteger(outer) &&
      Number.isSafeInteger(inner)
    ) {
      let byMemory = this.packed.get(outer);
      if (!byMemory) {
        byMemory = new Map();
        this.packed.set(outer, byMemory);
      }
      let id = byMemory.get(inner);
      if (id === undefined) {
        id = this.next++;
        byMemory.set(inner, id);
      }
      return id;
    }
    const key = `${u}/${cpus}/${memMiB}/${gpus}`;
    let id = this.other.get(key);
    if (id === undefined) {
      id = this.next++;
      this.other.set(key, id);
    }
    return id;
  }
}

/** A whole number from 0 to limit − 1. */
function below(n: number, limit: number): boolean {
  return Number.isInteger(n) && n >= 0 && n < limit;
}

/** Key of a shape (vCPUs/MiB/GPUs): instance types with equal keys form one ShapeGroup. */
export function shapeKey(shape: Shape): string {
  return `${shape.vcpus}/${shape.memoryMiB}/${shape.gpus}`;
}

export function describeSlice(slice: Slice): string {
  const gpus = slice.gpus > 0 ? `, ${slice.gpus} GPU` : "";
  return `${slice.cpus} CPU, ${slice.memMiB} MiB${gpus}`;
}
