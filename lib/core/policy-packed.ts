import type { ShapeGroup } from "./config.js";
import { describeSlice, layoutOn, type Slice, slicesOf, slicesPerNode } from "./fit.js";
import type { InstanceTypeInfo } from "./model.js";
import { jobSkip, listNames, type Policy, type PolicyResult, type SupplyNode } from "./policy.js";

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
  jobIds: Set<string>;
}

interface Use {
  bin: Bin;
  cpus: number;
  memMiB: number;
  gpus: number;
  addedJob: boolean;
}

/**
 * Bin packing: pending jobs share nodes (best fit by free vCPUs), and a node is opened only when no
 * existing or planned node has room. A new node takes the shape on which the remaining demand would
 * cost least (weighPrice, when every fitting type has a price) or leave the fewest spare vCPUs.
 * Same caps and rounds as thpc.
 */
export const planPacked: Policy = ({ queue, jobs, held, supply, room, weighPrice }) => {
  const result: PolicyResult = { newNodes: [], jobNodes: new Map(), skipped: [], reserved: new Map() };
  const maxCpus = Math.max(1, ...queue.groups.map((g) => g.shape.vcpus), ...supply.map((s) => s.shape.vcpus));
  const buckets = new Bins(maxCpus);
  for (const s of supply) buckets.add(newBin(s.shape, { supply: s }));

  const memRatio = queue.scaleUpMemRatio;
  let remCpus = 0;
  let remMem = 0;
  for (const job of jobs) {
    if (held.has(job)) continue;
    const { slice, units } = slicesOf(job.request, memRatio);
    remCpus += slice.cpus * units * job.count;
    remMem += slice.memMiB * units * job.count;
  }

  // Picks a new node's shape by what hosting all the remaining demand on that shape would take:
  // nodes = max(vCPUs / node, memory / node, this job's units / node), then the cost of those nodes
  // (price, or spare vCPUs and memory). Ties go to the larger shape (fewer boots), then the first listed.
  const chooseGroup = (slice: Slice, unitsLeft: number, distinct: boolean): ShapeGroup | undefined => {
    const fitting = queue.groups.filter((g) => slicesPerNode(slice, g.shape, distinct) > 0);
    const byPrice = weighPrice && fitting.every((g) => g.shape.pricePerHour !== undefined);
    let best: { group: ShapeGroup; cost: number; spareMem: number } | undefined;
    for (const group of fitting) {
      const { vcpus, memoryMiB, pricePerHour } = group.shape;
      const nodes = Math.max(
        1,
        Math.ceil(remCpus / vcpus),
        Math.ceil(remMem / memoryMiB),
        Math.ceil(unitsLeft / slicesPerNode(slice, group.shape, distinct)),
      );
      const cost = byPrice ? nodes * (pricePerHour ?? 0) : nodes * vcpus - remCpus;
      const spareMem = nodes * memoryMiB - remMem;
      const better =
        !best ||
        cost < best.cost - 1e-9 ||
        (Math.abs(cost - best.cost) <= 1e-9 &&
          (spareMem < best.spareMem || (spareMem === best.spareMem && vcpus > best.group.shape.vcpus)));
      if (better) best = { group, cost, spareMem };
    }
    return best?.group;
  };

  let roomLeft = room;
  for (const job of jobs) {
    const hold = held.get(job);
    const { slice, units, distinct } = slicesOf(job.request, memRatio);
    const freshNodes = Math.min(
      ...queue.groups.map(
        (g) => layoutOn(slice, units, distinct, g.shape)?.nodes ?? Number.POSITIVE_INFINITY,
      ),
    );
    const used = new Set<string>();
    const newIndices = new Set<number>();
    let covered = 0;
    let unplaceable = 0;
    let waiting = 0;
    let denied = 0;
    let tooLarge = 0;

    for (let copy = 0; copy < job.count; copy++) {
      const uses: Use[] = [];
      const opened: Bin[] = [];
      const onThisCopy = new Set<Bin>();
      let left = units;
      let failure: "fit" | "held" | "room" | "large" | undefined;
      while (left > 0) {
        let bin = buckets.find(slice, distinct ? onThisCopy : undefined);
        if (!bin) {
          if (!Number.isFinite(freshNodes)) failure = "fit";
          else if (hold) failure = "held";
          else if (freshNodes > queue.maxSize) failure = "large";
          else if (roomLeft - opened.length <= 0) failure = "room";
          const group = failure ? undefined : chooseGroup(slice, left, distinct);
          if (!group) {
            failure ??= "fit";
            break;
          }
          bin = newBin(group.shape, { newIndex: result.newNodes.length + opened.length, group });
          opened.push(bin);
          buckets.add(bin);
        }
        const take = distinct ? 1 : Math.min(left, fitCount(slice, bin));
        const use: Use = {
          bin,
          cpus: take * slice.cpus,
          memMiB: take * slice.memMiB,
          gpus: take * slice.gpus,
          addedJob: !bin.jobIds.has(job.id),
        };
        buckets.consume(bin, use.cpus, use.memMiB, use.gpus);
        if (use.addedJob) bin.jobIds.add(job.id);
        uses.push(use);
        onThisCopy.add(bin);
        left -= take;
      }

      if (failure) {
        // Undo this copy: a job is planned whole or not at all.
        for (const use of uses.reverse()) {
          buckets.consume(use.bin, -use.cpus, -use.memMiB, -use.gpus);
          if (use.addedJob) use.bin.jobIds.delete(job.id);
        }
        for (const bin of opened) buckets.remove(bin);
        const rest = job.count - copy;
        if (failure === "fit") unplaceable += rest;
        else if (failure === "held") waiting += rest;
        else if (failure === "large") tooLarge += rest;
        else denied += rest;
        break;
      }

      for (const { group } of opened) {
        if (group) result.newNodes.push({ group, jobs: [], unit: group.key, multiNode: false });
      }
      roomLeft -= opened.length;
      let usedNew = false;
      for (const use of uses) {
        const b = use.bin;
        if (b.newIndex !== undefined) {
          newIndices.add(b.newIndex);
          usedNew = true;
        } else if (b.supply) {
          used.add(b.supply.node.name);
          if (b.supply.node.state === "IDLE") result.reserved.set(b.supply.node.name, job.id);
        }
      }
      if (!usedNew) covered++;
      if (!hold) {
        remCpus -= slice.cpus * units;
        remMem -= slice.memMiB * units;
      }
    }

    if (newIndices.size > 0) {
      const indices = [...newIndices].sort((a, b) => a - b);
      for (const i of indices) result.newNodes[i]?.jobs.push(job.id);
      result.jobNodes.set(job, indices);
    }
    if (covered > 0) {
      result.skipped.push(
        jobSkip(
          job,
          "COVERED_BY_EXISTING_NODES",
          `existing nodes will run it: ${listNames([...used])}`,
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

function newBin(
  shape: InstanceTypeInfo,
  extra: { supply?: SupplyNode; newIndex?: number; group?: ShapeGroup },
): Bin {
  return {
    shape,
    freeCpus: shape.vcpus,
    freeMemMiB: shape.memoryMiB,
    freeGpus: shape.gpus,
    jobIds: new Set(),
    ...extra,
  };
}

function fitCount(slice: Slice, bin: Bin): number {
  let n = Math.floor(bin.freeCpus / slice.cpus);
  if (slice.memMiB > 0) n = Math.min(n, Math.floor(bin.freeMemMiB / slice.memMiB));
  if (slice.gpus > 0) n = Math.min(n, Math.floor(bin.freeGpus / slice.gpus));
  return n;
}

/** Bins indexed by free vCPUs, so best fit is a short scan upward from the slice's size. */
class Bins {
  private readonly byFree: Set<Bin>[];

  constructor(maxCpus: number) {
    this.byFree = Array.from({ length: maxCpus + 1 }, () => new Set<Bin>());
  }

  add(bin: Bin): void {
    this.byFree[bin.freeCpus]?.add(bin);
  }

  remove(bin: Bin): void {
    this.byFree[bin.freeCpus]?.delete(bin);
  }

  consume(bin: Bin, cpus: number, memMiB: number, gpus: number): void {
    this.remove(bin);
    bin.freeCpus -= cpus;
    bin.freeMemMiB -= memMiB;
    bin.freeGpus -= gpus;
    this.add(bin);
  }

  /** The fitting bin with the fewest free vCPUs (earliest added on a tie), skipping `exclude`. */
  find(slice: Slice, exclude?: ReadonlySet<Bin>): Bin | undefined {
    for (let free = slice.cpus; free < this.byFree.length; free++) {
      const set = this.byFree[free];
      if (!set || set.size === 0) continue;
      for (const bin of set) {
        if (bin.freeMemMiB >= slice.memMiB && bin.freeGpus >= slice.gpus && !exclude?.has(bin)) return bin;
      }
    }
    return undefined;
  }
}
