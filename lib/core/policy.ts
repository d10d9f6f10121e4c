import type { ResolvedQueue, ShapeGroup } from "./config.js";
import type { SlicedRequest } from "./fit.js";
import type { Job, Skip } from "./model.js";
import type { Hold, SupplyNode } from "./plan-terms.js";
import type { JobView } from "./views.js";

/** A run of identical nodes to launch, in priority order; the scale-out round takes a prefix of them. */
export interface NewNode {
  group: ShapeGroup;
  count: number;
  /** Jobs these nodes are for (ids, each once). */
  jobs: string[];
  /**
   * Nodes sharing a unit go into one launch. A unit of one multi-node job copy is launched
   * all-or-nothing when the whole unit fits in the round. Only compared, never shown: a shape group's
   * key, or a number for a unit of its own (one per multi-node copy: a string per copy, built and
   * hashed, cost about a tenth of a 100k-job plan). A multi-node unit holds multi-node runs only.
   */
  unit: string | number;
  multiNode: boolean;
}

export interface PolicyInput {
  queue: ResolvedQueue;
  /** Pending jobs of the queue, oldest first (ties by id). */
  jobs: readonly Job[];
  /**
   * By index into `jobs`: the hold of a job that may use existing nodes but launch nothing (not waited
   * expansionBusyTime, expansion disabled), as the skip it gets if existing nodes do not cover it;
   * undefined for the others. Arrays beside `jobs`, not maps by job: the planner reads them once per
   * pending job, and 100k map entries cost more than the rest of the lookup.
   */
  holds: readonly (Hold | undefined)[];
  /**
   * By index into `jobs`: each job's request as slices (RequestIds.of over this call's jobs: equal
   * requests share the object and its id), read once by prepareJobs rather than again by each policy.
   */
  requests: readonly SlicedRequest[];
  supply: readonly SupplyNode[];
  /** New nodes the queue may still take under maxSize. */
  room: number;
  weighPrice: boolean;
  /**
   * By index into `jobs`: the shapes each job may launch and the existing nodes it may take (constraints,
   * capacity, safety net); fullView(queue) for a job nothing narrows.
   */
  views: readonly JobView[];
}

export interface PolicyResult {
  /** At most `room` nodes in all. */
  newNodes: NewNode[];
  /**
   * By index into the input's `jobs`, for each job that needs new nodes (undefined for the others): per
   * copy, the position (counting nodes, not runs) of the first new node it needs. A round of R nodes
   * helps a copy when that position is below R; the other copies are deferred, and each is accounted
   * for in `skipped`. May be shorter than `jobs` (the jobs after its end need none).
   */
  copyStarts: (CopyStarts | undefined)[];
  skipped: Skip[];
  /** Idle and booting nodes that pending jobs will use, by node name → job id: not to be shrunk or cancelled. */
  reserved: Map<string, string>;
}

export type Policy = (input: PolicyInput) => PolicyResult;

/**
 * Where each copy of an aggregated job starts among the new nodes, run-length encoded: copies on fresh
 * nodes lie one after another with a fixed stride, so a million copies take a few numbers. The first
 * run is kept in fields (most jobs have one copy): one small object per job.
 */
export class CopyStarts {
  private start = -1;
  private copies = 0;
  private step = 0;
  /** Further runs as triples: first position, copies, stride. */
  private more: number[] | undefined;

  add(position: number): void {
    if (this.copies === 0) {
      this.start = position;
      this.copies = 1;
      return;
    }
    const runs = this.more;
    if (runs === undefined) {
      if (this.step > 0 && position === this.start + this.copies * this.step) this.copies++;
      else if (this.copies === 1 && position > this.start) {
        // A second copy fixes the run's stride.
        this.step = position - this.start;
        this.copies = 2;
      } else this.more = [position, 1, 0];
      return;
    }
    const n = runs.length;
    const start = runs[n - 3] as number;
    const copies = runs[n - 2] as number;
    const step = runs[n - 1] as number;
    if (step > 0 && position === start + copies * step) runs[n - 2] = copies + 1;
    else if (copies === 1 && position > start) {
      runs[n - 2] = 2;
      runs[n - 1] = position - start;
    } else runs.push(position, 1, 0);
  }

  /** How many copies were added. */
  get size(): number {
    let n = this.copies;
    for (let i = 1; this.more !== undefined && i < this.more.length; i += 3) n += this.more[i] as number;
    return n;
  }

  // The methods below run once per pending job: static helpers, not closures, so they allocate nothing.

  /** Calls `fn` with each position below `limit` and the copies that start there (at most `limit` calls per run). */
  forEachBelow(limit: number, fn: (position: number, copies: number) => void): void {
    CopyStarts.visit(limit, fn, this.start, this.copies, this.step);
    const runs = this.more;
    if (runs !== undefined) {
      for (let i = 0; i < runs.length; i += 3)
        CopyStarts.visit(limit, fn, runs[i] as number, runs[i + 1] as number, runs[i + 2] as number);
    }
  }

  private static visit(
    limit: number,
    fn: (position: number, copies: number) => void,
    start: number,
    copies: number,
    step: number,
  ): void {
    if (copies === 0 || start >= limit) return;
    if (step === 0) fn(start, copies);
    else for (let k = 0; k < copies && start + k * step < limit; k++) fn(start + k * step, 1);
  }

  /** How many copies start at or beyond `limit`. */
  atOrAbove(limit: number): number {
    let n = CopyStarts.countAtOrAbove(limit, this.start, this.copies, this.step);
    const runs = this.more;
    if (runs !== undefined) {
      for (let i = 0; i < runs.length; i += 3)
        n += CopyStarts.countAtOrAbove(
          limit,
          runs[i] as number,
          runs[i + 1] as number,
          runs[i + 2] as number,
        );
    }
    return n;
  }

  private static countAtOrAbove(limit: number, start: number, copies: number, step: number): number {
    return start >= limit ? copies : step > 0 ? Math.max(0, copies - Math.ceil((limit - start) / step)) : 0;
  }

  /** The first copy's position (Infinity when none). */
  get first(): number {
    let min = this.copies > 0 ? this.start : Number.POSITIVE_INFINITY;
    for (let i = 0; this.more !== undefined && i < this.more.length; i += 3)
      min = Math.min(min, this.more[i] as number);
    return min;
  }
}

export function listNames(names: readonly string[], max = 5): string {
  return names.length <= max
    ? names.join(", ")
    : `${names.slice(0, max).join(", ")} and ${names.length - max} more`;
}
