import type { ShapeGroup } from "./config.js";
import { bestFit, describeSlice, layoutOn, type Slice, slicesOf } from "./fit.js";
import type { InstanceTypeInfo } from "./model.js";
import { CopyStarts, jobSkip, listNames, type Policy, type PolicyResult, type SupplyNode } from "./policy.js";
import { planThpc } from "./policy-thpc.js";

/** A node's capacity during planning: an existing node or one this cycle would launch. */
interface Bin {
  shape: InstanceTypeInfo;
  freeCpus: number;
  freeMemMiB: number;
  freeGpus: number;
  supply?: SupplyNode;
  /** For a node to launch: its index into newNodes and its shape group. */
  newIndex?: number;
  group?: ShapeGroup;
  /** Where the bin sits in the Bins index (cell and position), for O(1) removal. */
  cell: number;
  pos: number;
  /** Jobs placed here, each once: a job's slices are placed one after another, so only the last can repeat. */
  jobIds: string[];
}

/** One placement on a bin, kept so the copy can be undone: what it consumed there. */
interface Use {
  bin: Bin;
  cpus: number;
  memMiB: number;
  gpus: number;
  addedJob: boolean;
}

/**
 * Bin packing: pending jobs share nodes (best fit by free vCPUs), and a node is opened only when no
 * existing or planned node has room. A new node takes the shape of the job's own best fit (thpc's
 * shape for it), or, with weighPrice and prices, a type that is cheaper for the job in no more nodes;
 * a shape with GPUs only for GPU work, unless nothing else fits. A whole-node job (exclusive, all the
 * memory) takes empty nodes only and leaves nothing of them to others. Same caps and rounds as thpc.
 */
export const planPacked: Policy = (input) => {
  if (input.jobs.length === 0)
    return { newNodes: [], copyStarts: new Map(), skipped: [], reserved: new Map() };
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

const pack: Policy = ({ queue, jobs, held, supply, room, weighPrice, viewOf }) => {
  const result: PolicyResult = { newNodes: [], copyStarts: new Map(), skipped: [], reserved: new Map() };
  const maxCpus = Math.max(1, ...queue.groups.map((g) => g.shape.vcpus), ...supply.map((s) => s.shape.vcpus));
  const buckets = new Bins(maxCpus);
  for (const s of supply) buckets.add(newBin(s.shape, s));

  const memRatio = queue.scaleUpMemRatio;
  const slices = jobs.map((job) => slicesOf(job.request, memRatio));

  // A new node takes the shape of the job's own best fit for its whole request (thpc's shape), so
  // packed never needs more instances than thpc for the same job: the part of the job that existing
  // holes do not take needs at most as many nodes of that shape. With weighPrice (and a price for
  // every fitting type), a type that is cheaper for the job without needing more nodes wins.
  const chooseGroup = (groups: readonly ShapeGroup[], slice: Slice, units: number, distinct: boolean) => {
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
  };

  let roomLeft = room;
  const uses: Use[] = [];
  const opened: Bin[] = [];
  const freshByRequest = new Map<string, number>();
  const groupByRequest = new Map<string, ShapeGroup | undefined>();
  for (const [j, job] of jobs.entries()) {
    const hold = held.get(job);
    const view = viewOf(job);
    const whole = job.wholeNode === true;
    const { slice, units, distinct } = slices[j] as ReturnType<typeof slicesOf>;
    // Fewest fresh nodes one copy could need (Infinity: no shape fits); many jobs share a request.
    const key = `${view.id}:${distinct ? "n" : "t"}${units}/${slice.cpus}/${slice.memMiB}/${slice.gpus}`;
    let freshNodes = freshByRequest.get(key);
    if (freshNodes === undefined) {
      freshNodes = Number.POSITIVE_INFINITY;
      for (const g of view.groups)
        freshNodes = Math.min(freshNodes, layoutOn(slice, units, distinct, g.shape)?.nodes ?? freshNodes);
      freshByRequest.set(key, freshNodes);
    }
    // Which bins this job may use: its view's nodes, and planned nodes whose every candidate it accepts.
    const accepts =
      view.anyNode && view.allEntries && !whole
        ? undefined
        : (bin: Bin) =>
            (!whole || bin.jobIds.length === 0) &&
            (bin.supply !== undefined
              ? view.anyNode || view.accepts(bin.supply.node)
              : view.allEntries || (bin.group?.entries.every((e) => view.entries.has(e.index)) ?? false));
    // A copy of a multi-node job must not put two of its nodes on one bin.
    const exclude = distinct && units > 1 ? new Set<Bin>() : undefined;
    let used: Set<string> | undefined;
    const starts = new CopyStarts();
    let covered = 0;
    let unplaceable = 0;
    let waiting = 0;
    let denied = 0;
    let tooLarge = 0;

    for (let copy = 0; copy < job.count; copy++) {
      uses.length = 0;
      opened.length = 0;
      exclude?.clear();
      let left = units;
      let failure: "fit" | "held" | "room" | "large" | undefined;
      while (left > 0) {
        let bin = buckets.find(slice, exclude, accepts);
        if (!bin) {
          if (!Number.isFinite(freshNodes)) failure = "fit";
          else if (hold) failure = "held";
          else if (freshNodes > queue.maxSize) failure = "large";
          else if (roomLeft - opened.length <= 0) failure = "room";
          let group: ShapeGroup | undefined;
          if (!failure) {
            // The shape depends on the view and the request only: chosen once per pair.
            group = groupByRequest.get(key);
            if (group === undefined && !groupByRequest.has(key)) {
              group = chooseGroup(view.groups, slice, units, distinct);
              groupByRequest.set(key, group);
            }
          }
          if (!group) {
            failure ??= "fit";
            break;
          }
          bin = newBin(group.shape, undefined, result.newNodes.length + opened.length, group);
          opened.push(bin);
          buckets.add(bin);
        }
        const take = distinct ? 1 : Math.min(left, fitCount(slice, bin));
        const addedJob = bin.jobIds[bin.jobIds.length - 1] !== job.id;
        // A whole-node job leaves nothing of its nodes to others.
        const cpus = whole ? bin.freeCpus : take * slice.cpus;
        const memMiB = whole ? bin.freeMemMiB : take * slice.memMiB;
        const gpus = whole ? bin.freeGpus : take * slice.gpus;
        buckets.consume(bin, cpus, memMiB, gpus);
        if (addedJob) bin.jobIds.push(job.id);
        uses.push({ bin, cpus, memMiB, gpus, addedJob });
        exclude?.add(bin);
        left -= take;
      }

      if (failure) {
        // Undo this copy: a job is planned whole or not at all.
        for (let i = uses.length - 1; i >= 0; i--) {
          const { bin, cpus, memMiB, gpus, addedJob } = uses[i] as Use;
          buckets.consume(bin, -cpus, -memMiB, -gpus);
          if (addedJob) bin.jobIds.pop();
        }
        for (const bin of opened) buckets.remove(bin);
        const rest = job.count - copy;
        if (failure === "fit") unplaceable += rest;
        else if (failure === "held") waiting += rest;
        else if (failure === "large") tooLarge += rest;
        else denied += rest;
        break;
      }

      for (const { group, jobIds } of opened) {
        if (group) result.newNodes.push({ group, count: 1, jobs: jobIds, unit: group.key, multiNode: false });
      }
      roomLeft -= opened.length;
      let firstNew = -1;
      for (const use of uses) {
        const b = use.bin;
        if (b.newIndex !== undefined) {
          if (firstNew < 0 || b.newIndex < firstNew) firstNew = b.newIndex;
        } else if (b.supply) {
          used ??= new Set();
          used.add(b.supply.node.name);
          result.reserved.set(b.supply.node.name, job.id);
        }
      }
      if (firstNew < 0) covered++;
      else starts.add(firstNew);
    }

    if (covered < job.count - unplaceable - waiting - tooLarge - denied) result.copyStarts.set(job, starts);
    if (covered > 0) {
      result.skipped.push(
        jobSkip(
          job,
          "COVERED_BY_EXISTING_NODES",
          `existing nodes will run it: ${listNames([...(used ?? [])])}`,
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
    if (hold && waiting > 0) result.skipped.push(jobSkip(job, hold.code, hold.reason, waiting));
    if (tooLarge > 0) {
      result.skipped.push(
        jobSkip(
          job,
          "JOB_LARGER_THAN_MAX_SIZE",
          `needs ${freshNodes} new nodes but queue ${queue.queueName} has maxSize ${queue.maxSize}`,
          tooLarge,
        ),
      );
    }
    if (denied > 0) {
      result.skipped.push(
        jobSkip(
          job,
          "QUEUE_AT_MAX_SIZE",
          `queue ${queue.queueName} would exceed maxSize ${queue.maxSize}`,
          denied,
        ),
      );
    }
  }
  return result;
};

function newBin(shape: InstanceTypeInfo, supply?: SupplyNode, newIndex?: number, group?: ShapeGroup): Bin {
  const bin: Bin = {
    shape,
    freeCpus: shape.vcpus,
    freeMemMiB: shape.memoryMiB,
    freeGpus: shape.gpus,
    cell: -1,
    pos: -1,
    jobIds: [],
  };
  if (supply) bin.supply = supply;
  if (newIndex !== undefined) bin.newIndex = newIndex;
  if (group) bin.group = group;
  return bin;
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

  add(bin: Bin): void {
    const cpus = bin.freeCpus;
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
