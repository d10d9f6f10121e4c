import type { ResolvedQueue, ShapeGroup } from "./config.js";
import { bestFit, describeSlice, layoutOn, type Slice, type SlicedRequest } from "./fit.js";
import type { InstanceTypeInfo, Job, Skip } from "./model.js";
import { type Hold, jobSkip, type SupplyNode } from "./plan-terms.js";
import {
  CopyStarts,
  listNames,
  type NewNode,
  type Policy,
  type PolicyInput,
  type PolicyResult,
} from "./policy.js";
import { planThpc } from "./policy-thpc.js";
import type { JobView } from "./views.js";

/** A node's capacity during planning: an existing node or one this cycle would launch. */
interface Bin {
  shape: InstanceTypeInfo;
  freeCpus: number;
  freeMemMiB: number;
  freeGpus: number;
  supply?: SupplyNode;
  /** For a node to launch: its position among the new nodes (counting nodes) and its shape group. */
  newIndex?: number;
  /** New nodes this bin stands for: more than one for a run of nodes a job fills to the last vCPU. */
  nodes: number;
  group?: ShapeGroup;
  /** Where the bin sits in the Bins index (cell and position), for O(1) removal. */
  cell: number;
  pos: number;
  /** Jobs placed here, each once: a job's slices are placed one after another, so only the last can repeat. */
  jobIds: string[];
  /** The job whose id is last in jobIds: compared by reference first, without reading the array. */
  lastJob: Job | undefined;
}

/** One placement on a bin, kept so the copy can be undone: what it consumed there. */
interface Use {
  bin: Bin;
  cpus: number;
  memMiB: number;
  gpus: number;
  addedJob: boolean;
  /** The bin's lastJob before this placement, put back when it is undone. */
  before: Job | undefined;
}

/**
 * Bin packing: pending jobs share nodes (best fit by free vCPUs), and a node is opened only when no
 * existing or planned node has room. A new node takes the shape of the job's own best fit (thpc's
 * shape for it), or, with weighPrice and prices, a type that is cheaper for the job in no more nodes;
 * a shape with GPUs only for GPU work, unless nothing else fits. A whole-node job (exclusive, all the
 * memory) takes empty nodes only and leaves nothing of them to others. Same caps and rounds as thpc.
 */
export const planPacked: Policy = (input) => {
  if (input.jobs.length === 0) return { newNodes: [], copyStarts: [], skipped: [], reserved: new Map() };
  const packed = pack(input);
  // Launching nothing cannot be worse than thpc.
  if (packed.newNodes.length === 0) return packed;
  const thpc = planThpc(input);
  // Sizing each new node by its job's own best fit makes packed need no more nodes than thpc per job,
  // but first-fit over existing holes has no such proof across jobs (a search of 20,000 random inputs
  // found no case): the guard makes it certain that packed never launches more, or dearer, than thpc.
  const p = newNodeTally(packed);
  const t = newNodeTally(thpc);
  return p.nodes > t.nodes || (p.cost !== undefined && t.cost !== undefined && p.cost > t.cost + 1e-9)
    ? thpc
    : packed;
};

/** New nodes a result launches, and their price per hour (undefined when a type has none). */
function newNodeTally(result: PolicyResult): { nodes: number; cost: number | undefined } {
  let nodes = 0;
  let cost: number | undefined = 0;
  for (const run of result.newNodes) {
    nodes += run.count;
    const price = run.group.shape.pricePerHour;
    cost = cost === undefined || price === undefined ? undefined : cost + run.count * price;
  }
  return { nodes, cost };
}

/**
 * Packs the queue's pending jobs, oldest first, each copy whole or not at all: a copy takes the best-fitting
 * bins (existing nodes, then nodes planned for earlier jobs) and opens new nodes only for what is left.
 */
const pack: Policy = (input) => {
  const packer = new Packer(input);
  for (const [j, job] of input.jobs.entries()) packer.planJob(job, j, input.requests[j] as SlicedRequest);
  return packer.result;
};

/** Why a copy could not be placed: no shape fits, launching is held, the job exceeds maxSize, no room left. */
type CopyFailure = "fit" | "held" | "large" | "room";

/**
 * What every job of one view and request shares, made once per call for all of them: the bins they may
 * use, what fresh nodes one copy would need, and the shape of a new node.
 */
interface RequestPlan {
  view: JobView;
  /** Exclusive, all the memory: takes empty bins only and leaves nothing of them. */
  whole: boolean;
  slice: Slice;
  units: number;
  distinct: boolean;
  /** Fewest fresh nodes one copy could need (Infinity: no shape fits). */
  freshNodes: number;
  /** Which bins the job may use (undefined: all). */
  accepts: ((bin: Bin) => boolean) | undefined;
  /** A copy of a multi-node job must not put two of its nodes on one bin: the bins this copy has taken. */
  exclude: Set<Bin> | undefined;
  /** The shape of a new node for a whole copy (null: none fits), chosen on first need. */
  group: ShapeGroup | null | undefined;
  /** The shapes for the part of a copy existing bins do not take, by its units (null: none fits). */
  groupByUnits: Map<number, ShapeGroup | null> | undefined;
  /**
   * The Packer's generation when no bin took this request's first unit: bins only lose room between
   * copies, so until a new bin is opened none will, and the many jobs of a queue that wait for room
   * skip the search.
   */
  noBinAt: number;
}

/** How the copies of one job fared, each copy counted once. */
interface CopyTally {
  covered: number;
  unplaceable: number;
  waiting: number;
  tooLarge: number;
  denied: number;
  /** Existing nodes the covered copies use. */
  used: Set<string> | undefined;
  /** Made on the first copy that needs a new node: most jobs of a long queue need none or fail whole. */
  starts: CopyStarts | undefined;
}

/** One call's packing state: the bins, the result so far, and the copy being placed (undone if it fails). */
class Packer {
  readonly result: PolicyResult = { newNodes: [], copyStarts: [], skipped: [], reserved: new Map() };
  private readonly buckets: Bins;
  private roomLeft: number;
  /** The placements of the copy being placed, and the bins it opened. */
  private readonly uses: Use[] = [];
  private readonly opened: Bin[] = [];
  /**
   * By view, then by request id × 2 (+ 1 for a whole-node job). By the view itself, not its id: views of
   * one id share groups but not always the nodes they accept (a constraint every entry meets, a job's
   * excluded nodes).
   */
  private readonly plans = new Map<JobView, Map<number, RequestPlan>>();
  /** New nodes of the committed copies (runs may hold several): the next new bin's position. */
  private plannedNodes = 0;
  /** New nodes the copy being placed has opened (a bin may stand for several). */
  private openedNodes = 0;
  /** The last run of the result when it holds only full new nodes of one job: more such nodes join it. */
  private fullRun: NewNode | undefined;
  /**
   * Grows with every new bin: see RequestPlan.noBinAt. An undone copy needs no step: a request's first
   * unit is sought only when no copy is under way, and undoing goes back to exactly that state.
   */
  private generation = 0;

  constructor(private readonly input: PolicyInput) {
    const { queue, supply } = input;
    const maxCpus = Math.max(
      1,
      ...queue.groups.map((g) => g.shape.vcpus),
      ...supply.map((s) => s.shape.vcpus),
    );
    this.buckets = new Bins(maxCpus);
    for (const s of supply) this.buckets.add(newBin(s.shape, s));
    this.roomLeft = input.room;
  }

  /** Places the job's copies one by one until one fails; the rest of its copies fail alike. */
  /** `index`: the job's index in the input's jobs (its view, hold and copy starts are there). */
  planJob(job: Job, index: number, sliced: SlicedRequest): void {
    const req = this.requestPlan(job, index, sliced);
    const hold = this.input.holds[index];
    const tally: CopyTally = {
      covered: 0,
      unplaceable: 0,
      waiting: 0,
      tooLarge: 0,
      denied: 0,
      used: undefined,
      starts: undefined,
    };
    for (let copy = 0; copy < job.count; copy++) {
      let failure = this.placeCopy(req, job, hold, false);
      // Help from other bins that saves no new node (thpc's rule): the copy goes on fresh nodes alone,
      // leaving those holes to later jobs.
      if (
        !failure &&
        this.openedNodes >= req.freshNodes &&
        this.uses.some((u) => !this.opened.includes(u.bin))
      ) {
        this.undoCopy();
        failure = this.placeCopy(req, job, hold, true);
      }
      if (failure) {
        this.undoCopy();
        const rest = job.count - copy;
        if (failure === "fit") tally.unplaceable += rest;
        else if (failure === "held") tally.waiting += rest;
        else if (failure === "large") tally.tooLarge += rest;
        else tally.denied += rest;
        break;
      }
      this.commitCopy(job, tally);
    }
    const { covered, unplaceable, waiting, tooLarge, denied } = tally;
    if (covered < job.count - unplaceable - waiting - tooLarge - denied)
      this.result.copyStarts[index] = tally.starts;
    pushJobSkips(this.result.skipped, req, job, hold, tally, this.input.queue);
  }

  /** What the job's copies share: made once per view and request (and whole-node or not). */
  private requestPlan(job: Job, index: number, sliced: SlicedRequest): RequestPlan {
    const view = this.input.views[index] as JobView;
    const whole = job.wholeNode === true;
    let byRequest = this.plans.get(view);
    if (byRequest === undefined) {
      byRequest = new Map();
      this.plans.set(view, byRequest);
    }
    const id = sliced.id * 2 + (whole ? 1 : 0);
    let shared = byRequest.get(id);
    if (shared === undefined) {
      const { slice, units, distinct } = sliced;
      let freshNodes = Number.POSITIVE_INFINITY;
      for (const g of view.groups)
        freshNodes = Math.min(freshNodes, layoutOn(slice, units, distinct, g.shape)?.nodes ?? freshNodes);
      shared = {
        view,
        whole,
        slice,
        units,
        distinct,
        freshNodes,
        accepts: binsAccepted(view, whole),
        exclude: distinct && units > 1 ? new Set<Bin>() : undefined,
        group: undefined,
        groupByUnits: undefined,
        noBinAt: -1,
      };
      byRequest.set(id, shared);
    }
    return shared;
  }

  /**
   * Places one copy: each unit (a node, or as many tasks as fit) on the best-fitting bin it may use, or on
   * a new node when none has room, of the best fit for the units still to place. `freshOnly`: on new nodes
   * of the job's own best fit alone (thpc's layout). Returns why it failed, leaving its placements in
   * `uses` and `opened` for undoCopy; undefined when the whole copy is placed.
   */
  private placeCopy(
    req: RequestPlan,
    job: Job,
    hold: Hold | undefined,
    freshOnly: boolean,
  ): CopyFailure | undefined {
    const { slice, distinct, whole, exclude, accepts, freshNodes } = req;
    let group: ShapeGroup | undefined;
    const { queue } = this.input;
    this.uses.length = 0;
    this.opened.length = 0;
    this.openedNodes = 0;
    exclude?.clear();
    let left = req.units;
    let failure: CopyFailure | undefined;
    while (left > 0) {
      // Fresh only: the copy fills the node it opened last, then opens another; no other bin.
      let bin: Bin | undefined;
      if (freshOnly) bin = this.lastOpenedWithRoom(slice, exclude);
      else if (left < req.units) bin = this.buckets.find(slice, exclude, accepts);
      else if (req.noBinAt !== this.generation) {
        bin = this.buckets.find(slice, exclude, accepts);
        if (!bin) req.noBinAt = this.generation;
      }
      if (!bin) {
        if (!Number.isFinite(freshNodes)) failure = "fit";
        else if (hold) failure = "held";
        else if (freshNodes > queue.maxSize) failure = "large";
        else if (this.roomLeft - this.openedNodes <= 0) failure = "room";
        // The part existing bins do not take gets its own best fit, as thpc's remainder does.
        if (!failure && !group) group = this.groupForUnits(req, left);
        if (failure || !group) return failure ?? "fit";
        bin = newBin(group.shape, undefined, this.plannedNodes + this.openedNodes, group);
        this.opened.push(bin);
        this.generation++;
        const per = distinct || whole ? 0 : tasksPerNode(slice, group.shape);
        if (per > 0 && per * slice.cpus === group.shape.vcpus && left >= 2 * per) {
          // Nodes the copy fills to the last vCPU take no other job: one bin, outside the index, stands
          // for them all (a 64-task job on 2-vCPU nodes is one bin, not 32).
          const nodes = Math.min(Math.floor(left / per), this.roomLeft - this.openedNodes);
          bin.nodes = nodes;
          bin.freeCpus = 0;
          bin.freeMemMiB -= per * slice.memMiB;
          bin.freeGpus -= per * slice.gpus;
          bin.jobIds.push(job.id);
          bin.lastJob = job;
          this.uses.push({ bin, cpus: 0, memMiB: 0, gpus: 0, addedJob: true, before: undefined });
          this.openedNodes += nodes;
          left -= nodes * per;
          continue;
        }
        this.openedNodes++;
        this.buckets.add(bin);
      }
      const take = distinct ? 1 : Math.min(left, fitCount(slice, bin));
      const before = bin.lastJob;
      const addedJob = before !== job && before?.id !== job.id;
      // A whole-node job leaves nothing of its nodes to others.
      const cpus = whole ? bin.freeCpus : take * slice.cpus;
      const memMiB = whole ? bin.freeMemMiB : take * slice.memMiB;
      const gpus = whole ? bin.freeGpus : take * slice.gpus;
      this.buckets.consume(bin, cpus, memMiB, gpus);
      if (addedJob) {
        bin.jobIds.push(job.id);
        bin.lastJob = job;
      }
      this.uses.push({ bin, cpus, memMiB, gpus, addedJob, before });
      exclude?.add(bin);
      left -= take;
    }
    return undefined;
  }

  /** The shape of a new node for the request: chosen once per view and request. */
  private groupFor(req: RequestPlan): ShapeGroup | undefined {
    if (req.group === undefined)
      req.group =
        chooseGroup(req.view.groups, req.slice, req.units, req.distinct, this.input.weighPrice) ?? null;
    return req.group ?? undefined;
  }

  /** The node this copy opened last, when the slice still fits there. */
  private lastOpenedWithRoom(slice: Slice, exclude: ReadonlySet<Bin> | undefined): Bin | undefined {
    const bin = this.opened[this.opened.length - 1];
    return bin && !exclude?.has(bin) && fitCount(slice, bin) > 0 ? bin : undefined;
  }

  /** The shape of new nodes for the part of a copy existing bins do not take: its own best fit. */
  private groupForUnits(req: RequestPlan, units: number): ShapeGroup | undefined {
    if (units === req.units) return this.groupFor(req);
    req.groupByUnits ??= new Map();
    let group = req.groupByUnits.get(units);
    if (group === undefined) {
      group = chooseGroup(req.view.groups, req.slice, units, req.distinct, this.input.weighPrice) ?? null;
      req.groupByUnits.set(units, group);
    }
    return group ?? undefined;
  }

  /** Undoes the failed copy: a job is planned whole or not at all. */
  private undoCopy(): void {
    for (let i = this.uses.length - 1; i >= 0; i--) {
      const { bin, cpus, memMiB, gpus, addedJob, before } = this.uses[i] as Use;
      this.buckets.consume(bin, -cpus, -memMiB, -gpus);
      if (addedJob) {
        bin.jobIds.pop();
        bin.lastJob = before;
      }
    }
    for (const bin of this.opened) this.buckets.remove(bin);
  }

  /**
   * Keeps the placed copy: its new nodes join the result, the existing nodes it uses are reserved for the
   * job, and the copy counts as covered (existing nodes only) or as starting at its first new node.
   */
  private commitCopy(job: Job, tally: CopyTally): void {
    for (const { group, jobIds, freeCpus, nodes } of this.opened) {
      if (!group) continue;
      // A node with no vCPU left is the job's alone for good: a large job's many such nodes are one run
      // (positions count nodes, so copy starts are unchanged), not an object each.
      const full = freeCpus === 0;
      const run = this.fullRun;
      if (full && run !== undefined && run.group === group && run.jobs[0] === job.id) {
        run.count += nodes;
        continue;
      }
      const added: NewNode = { group, count: nodes, jobs: jobIds, unit: group.key, multiNode: false };
      this.result.newNodes.push(added);
      this.fullRun = full ? added : undefined;
    }
    this.roomLeft -= this.openedNodes;
    this.plannedNodes += this.openedNodes;
    let firstNew = -1;
    for (const use of this.uses) {
      const b = use.bin;
      if (b.newIndex !== undefined) {
        if (firstNew < 0 || b.newIndex < firstNew) firstNew = b.newIndex;
      } else if (b.supply) {
        tally.used ??= new Set();
        tally.used.add(b.supply.node.name);
        this.result.reserved.set(b.supply.node.name, job.id);
      }
    }
    if (firstNew < 0) tally.covered++;
    else {
      tally.starts ??= new CopyStarts();
      tally.starts.add(firstNew);
    }
  }
}

/**
 * Which bins a job may use: its view's existing nodes, and planned nodes whose every candidate it accepts;
 * a whole-node job only empty ones. Undefined when every bin will do.
 */
function binsAccepted(view: JobView, whole: boolean): ((bin: Bin) => boolean) | undefined {
  if (view.anyNode && view.allEntries && !whole) return undefined;
  return (bin: Bin) =>
    (!whole || bin.jobIds.length === 0) &&
    (bin.supply !== undefined
      ? view.anyNode || view.accepts(bin.supply.node)
      : view.allEntries || (bin.group?.entries.every((e) => view.entries.has(e.index)) ?? false));
}

/**
 * The shape of a new node for a request: the job's own best fit for its whole request (thpc's shape), so
 * packed never needs more instances than thpc for the same job: the part of the job that existing holes
 * do not take needs at most as many nodes of that shape. With weighPrice (and a price for every fitting
 * type), a type that is cheaper for the job without needing more nodes wins; a shape with GPUs only for
 * GPU work, unless the best fit has GPUs.
 */
function chooseGroup(
  groups: readonly ShapeGroup[],
  slice: Slice,
  units: number,
  distinct: boolean,
  weighPrice: boolean,
): ShapeGroup | undefined {
  const fit = bestFit({ groups }, slice, units, distinct);
  if (!fit || !weighPrice) return fit?.group;
  const gpuOk = slice.gpus > 0 || fit.group.shape.gpus > 0;
  let best = fit.group;
  let bestCost = Number.POSITIVE_INFINITY;
  for (const group of groups) {
    if (!gpuOk && group.shape.gpus > 0) continue;
    const layout = layoutOn(slice, units, distinct, group.shape);
    if (!layout) continue;
    const price = group.shape.pricePerHour;
    if (price === undefined) return fit.group;
    if (layout.nodes > fit.layout.nodes) continue;
    const cost = layout.nodes * price;
    if (cost < bestCost - 1e-9 || (Math.abs(cost - bestCost) <= 1e-9 && group === fit.group)) {
      best = group;
      bestCost = cost;
    }
  }
  return best;
}

/** Adds to `skips` those of a job's copies that launch nothing, each with its reason, in a fixed order. */
function pushJobSkips(
  skips: Skip[],
  req: RequestPlan,
  job: Job,
  hold: Hold | undefined,
  tally: CopyTally,
  queue: ResolvedQueue,
): void {
  const { slice, distinct, freshNodes } = req;
  if (tally.covered > 0) {
    skips.push(
      jobSkip(
        job,
        "COVERED_BY_EXISTING_NODES",
        `existing nodes will run it: ${listNames([...(tally.used ?? [])])}`,
        tally.covered,
      ),
    );
  }
  if (tally.unplaceable > 0) {
    skips.push(
      jobSkip(
        job,
        "NO_FITTING_SHAPE",
        `no instance type of queue ${queue.queueName} fits ${describeSlice(slice)} per ${distinct ? "node" : "task"}`,
        tally.unplaceable,
      ),
    );
  }
  if (hold && tally.waiting > 0) skips.push(jobSkip(job, hold.code, hold.reason, tally.waiting));
  if (tally.tooLarge > 0) {
    skips.push(
      jobSkip(
        job,
        "JOB_LARGER_THAN_MAX_SIZE",
        `needs ${freshNodes} new nodes but queue ${queue.queueName} has maxSize ${queue.maxSize}`,
        tally.tooLarge,
      ),
    );
  }
  if (tally.denied > 0) {
    skips.push(
      jobSkip(
        job,
        "QUEUE_AT_MAX_SIZE",
        `queue ${queue.queueName} would exceed maxSize ${queue.maxSize}`,
        tally.denied,
      ),
    );
  }
}

function newBin(shape: InstanceTypeInfo, supply?: SupplyNode, newIndex?: number, group?: ShapeGroup): Bin {
  const bin: Bin = {
    shape,
    freeCpus: shape.vcpus,
    freeMemMiB: shape.memoryMiB,
    freeGpus: shape.gpus,
    cell: -1,
    pos: -1,
    nodes: 1,
    jobIds: [],
    lastJob: undefined,
  };
  if (supply) bin.supply = supply;
  if (newIndex !== undefined) bin.newIndex = newIndex;
  if (group) bin.group = group;
  return bin;
}

/** Slices a fresh node of the shape holds. */
function tasksPerNode(slice: Slice, shape: InstanceTypeInfo): number {
  let n = Math.floor(shape.vcpus / slice.cpus);
  if (slice.memMiB > 0) n = Math.min(n, Math.floor(shape.memoryMiB / slice.memMiB));
  if (slice.gpus > 0) n = Math.min(n, Math.floor(shape.gpus / slice.gpus));
  return n;
}

function fitCount(slice: Slice, bin: Bin): number {
  let n = Math.floor(bin.freeCpus / slice.cpus);
  if (slice.memMiB > 0) n = Math.min(n, Math.floor(bin.freeMemMiB / slice.memMiB));
  if (slice.gpus > 0) n = Math.min(n, Math.floor(bin.freeGpus / slice.gpus));
  return n;
}

/** Memory class of a free amount: bins in a class above a request's class always have the memory. */
function memClass(memMiB: number): number {
  return memMiB <= 0 ? 0 : Math.min(31, 32 - Math.clz32(memMiB >>> 8));
}

/**
 * Bins indexed by free vCPUs and by a power-of-two class of free memory, with bitmaps of the
 * non-empty cells, so best fit jumps to the next cell that can hold the slice instead of scanning
 * every bin whose memory is already spent.
 */
class Bins {
  /** Created on first use: most cells of a large catalog never hold a bin. Arrays with swap-remove. */
  private readonly cells: (Bin[] | undefined)[];
  /** Per free-vCPU count: which memory classes have bins. */
  private readonly memMask: Uint32Array;
  /** Which free-vCPU counts have bins. */
  private readonly cpuMask: Uint32Array;

  constructor(maxCpus: number) {
    this.cells = new Array((maxCpus + 1) * 32);
    this.memMask = new Uint32Array(maxCpus + 1);
    this.cpuMask = new Uint32Array(Math.ceil((maxCpus + 1) / 32));
  }

  /** Adds a bin; one with no free vCPU stays out (every slice needs one) until it gains some. */
  add(bin: Bin): void {
    const cpus = bin.freeCpus;
    if (cpus <= 0) {
      bin.cell = -1;
      return;
    }
    const cls = memClass(bin.freeMemMiB);
    const index = cpus * 32 + cls;
    let cell = this.cells[index];
    if (!cell) {
      cell = [];
      this.cells[index] = cell;
    }
    bin.cell = index;
    bin.pos = cell.length;
    cell.push(bin);
    if (cell.length === 1) {
      this.memMask[cpus] = (this.memMask[cpus] ?? 0) | (1 << cls);
      this.cpuMask[cpus >>> 5] = (this.cpuMask[cpus >>> 5] ?? 0) | (1 << (cpus & 31));
    }
  }

  remove(bin: Bin): void {
    const cell = this.cells[bin.cell];
    if (!cell || cell[bin.pos] !== bin) return;
    const last = cell.pop() as Bin;
    if (last !== bin) {
      cell[bin.pos] = last;
      last.pos = bin.pos;
    }
    bin.cell = -1;
    if (cell.length > 0) return;
    const cpus = bin.freeCpus;
    const mask = (this.memMask[cpus] ?? 0) & ~(1 << memClass(bin.freeMemMiB));
    this.memMask[cpus] = mask;
    if (mask === 0) this.cpuMask[cpus >>> 5] = (this.cpuMask[cpus >>> 5] ?? 0) & ~(1 << (cpus & 31));
  }

  consume(bin: Bin, cpus: number, memMiB: number, gpus: number): void {
    this.remove(bin);
    bin.freeCpus -= cpus;
    bin.freeMemMiB -= memMiB;
    bin.freeGpus -= gpus;
    this.add(bin);
  }

  /**
   * The fitting bin with the fewest free vCPUs, then the least free memory (by class; the first in
   * the cell's order within a class), skipping `exclude`.
   */
  find(slice: Slice, exclude?: ReadonlySet<Bin>, accepts?: (bin: Bin) => boolean): Bin | undefined {
    const need = memClass(slice.memMiB);
    for (let cpus = this.nextCpus(slice.cpus); cpus >= 0; cpus = this.nextCpus(cpus + 1)) {
      let classes = (this.memMask[cpus] ?? 0) & (~0 << need);
      while (classes !== 0) {
        const cls = 31 - Math.clz32(classes & -classes);
        classes &= classes - 1;
        for (const bin of this.cells[cpus * 32 + cls] ?? []) {
          if (
            bin.freeMemMiB >= slice.memMiB &&
            bin.freeGpus >= slice.gpus &&
            !exclude?.has(bin) &&
            (accepts === undefined || accepts(bin))
          )
            return bin;
        }
      }
    }
    return undefined;
  }

  /** The smallest free-vCPU count >= from that has bins, or -1. */
  private nextCpus(from: number): number {
    let word = from >>> 5;
    if (word >= this.cpuMask.length) return -1;
    let bits = (this.cpuMask[word] ?? 0) & (~0 << (from & 31));
    while (bits === 0) {
      word++;
      if (word >= this.cpuMask.length) return -1;
      bits = this.cpuMask[word] ?? 0;
    }
    return (word << 5) + (31 - Math.clz32(bits & -bits));
  }
}
