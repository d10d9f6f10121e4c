import type { ResolvedConfig } from "../core/config.js";
import type { Candidate, ClusterNode, Job } from "../core/model.js";
import { DRAIN_REASON_PREFIX } from "../core/shrink.js";
import { DEFAULT_UNAVAILABLE_TTL_MS } from "../ports/cloud-provider.js";
import { EventQueue } from "./event-queue.js";
import { Timeline } from "./timeline.js";
import type { SimJob } from "./workload.js";

/** A simulated instance, from launch to termination. Times are simulated ms. */
export interface SimNode {
  readonly name: string;
  readonly queue: string;
  readonly instanceType: string;
  readonly zone: string;
  readonly vcpus: number;
  /** Usable memory: the spec divided by the queue's scaleUpMemRatio (usable memory is below the spec). */
  readonly memMiB: number;
  readonly pricePerHour: number | undefined;
  readonly launchedAt: number;
  readonly readyAt: number;
  ready: boolean;
  draining: boolean;
  gone: boolean;
  freeCpus: number;
  freeMemMiB: number;
  runningJobs: number;
  idleSince: number | undefined;
  /** Per-job baseline: index of the job this node was launched for; -1 when any job may use it. */
  boundJob: number;
  /** The node as the core sees it, refreshed in place before each plan call. */
  readonly view: ClusterNode;
  /** Scratch index the scheduler uses within one pass. */
  slot: number;
  /** Where the node's time has been sorted into the parts below (simulated ms). */
  settledMs: number;
  /** Whether any job ever ran here: a node that never ran one is "launched, never used" as a whole. */
  everRan: boolean;
  /** vCPU-ms by what the node was doing: booting, free vCPUs beside a job, idle, drained and empty. */
  bootVms: number;
  fragVms: number;
  idleVms: number;
  drainVms: number;
}

/** Key of a (type, zone) pair in capacity maps. */
export function capacityKey(instanceType: string, zone: string): string {
  return `${instanceType}@${zone}`;
}

/** Tasks of one job on one node (one CPU each). */
export interface Placement {
  node: SimNode;
  tasks: number;
}

export interface QueueState {
  readonly name: string;
  /** Pending job indices in priority order (FIFO by submit time). */
  pending: number[];
  readonly running: Set<number>;
  /** Live nodes (launching, up, draining) in launch order. */
  nodes: SimNode[];
}

export type SimEvent =
  | { kind: "end"; timeMs: number; order: 0; job: number }
  | { kind: "ready"; timeMs: number; order: 1; node: SimNode };

/** Counters the metrics are computed from. */
export interface ClusterCounters {
  launches: number;
  /** Times a launch (or part of it) moved on to the next candidate because a (type, zone) was full. */
  fallbacks: number;
  /** Nodes a launch asked for that no candidate had capacity for. */
  unlaunchedNodes: number;
  scaleOutRounds: number;
  peakNodes: number;
  /** Node-seconds × vCPUs, for utilization; node-seconds for node-hours; priced node-seconds for cost. */
  nodeSeconds: number;
  vcpuSeconds: number;
  costUSD: number;
  unpricedNodes: number;
  /**
   * Where the vCPU-seconds that ran no task went (nodes of which a job ran somewhere): booting, free
   * vCPUs on nodes running a job, idle before shrink, drained and empty before termination; and the
   * whole lifetime of nodes no job ever ran on.
   */
  bootVcpuSeconds: number;
  fragVcpuSeconds: number;
  idleVcpuSeconds: number;
  drainVcpuSeconds: number;
  neverUsedVcpuSeconds: number;
}

/**
 * The simulated Slurm cluster and cloud provider: nodes, their jobs, capacity limits and the pending
 * event queue. It applies what it is told (start, end, launch, drain, terminate) and keeps the
 * accounting; the scheduler and the scalers decide.
 */
export class SimCluster {
  readonly queues = new Map<string, QueueState>();
  /** Live nodes by name: how plan's shrinks find their node. */
  readonly nodesByName = new Map<string, SimNode>();
  readonly events = new EventQueue<SimEvent>();
  readonly startMs: Float64Array;
  readonly endMs: Float64Array;
  readonly placements = new Map<number, Placement[]>();
  /** Core views of pending and running jobs, made once per job state. */
  readonly pendingViews = new Map<number, Job>();
  readonly runningViews = new Map<number, Job>();
  readonly counters: ClusterCounters = {
    launches: 0,
    fallbacks: 0,
    unlaunchedNodes: 0,
    scaleOutRounds: 0,
    peakNodes: 0,
    nodeSeconds: 0,
    vcpuSeconds: 0,
    costUSD: 0,
    unpricedNodes: 0,
    bootVcpuSeconds: 0,
    fragVcpuSeconds: 0,
    idleVcpuSeconds: 0,
    drainVcpuSeconds: 0,
    neverUsedVcpuSeconds: 0,
  };
  readonly timeline: Timeline | undefined;
  /** Placement: nodes already running a job before idle ones (the "busy-first" lever). */
  busyFirst = false;
  private readonly capacityLeft = new Map<string, number>();
  /**
   * Offerings a launch found full, held unavailable until the time given (as the providers' cache does
   * after a capacity error), by `type@zone`. The core scaler hands them to the planner.
   */
  readonly unavailableUntil = new Map<string, { instanceType: string; zone: string; until: number }>();
  private liveNodes = 0;
  private liveVcpus = 0;
  private pendingCpus = 0;
  private runningCpus = 0;
  private nodeSeq = 0;

  constructor(
    readonly jobs: readonly SimJob[],
    readonly config: ResolvedConfig,
    capacity: ReadonlyMap<string, number>,
    private readonly bootMs: () => number,
    recordTimeline: boolean,
  ) {
    this.startMs = new Float64Array(jobs.length).fill(Number.NaN);
    this.endMs = new Float64Array(jobs.length).fill(Number.NaN);
    for (const q of config.queues) {
      this.queues.set(q.queueName, { name: q.queueName, pending: [], running: new Set(), nodes: [] });
    }
    for (const [key, max] of capacity) this.capacityLeft.set(key, max);
    this.timeline = recordTimeline ? new Timeline() : undefined;
  }

  queue(name: string): QueueState {
    const q = this.queues.get(name);
    if (!q) throw new Error(`job or node of unknown queue ${name}`);
    return q;
  }

  get liveNodeCount(): number {
    return this.liveNodes;
  }

  arrive(job: number): void {
    const j = this.jobs[job] as SimJob;
    this.queue(j.queue).pending.push(job);
    this.pendingCpus += j.procs;
    this.pendingViews.set(job, {
      id: j.id,
      queue: j.queue,
      state: "PENDING",
      submittedAt: j.submitMs,
      request: {
        kind: "tasks",
        tasks: j.procs,
        cpusPerTask: 1,
        memPerTaskMiB: j.memPerTaskMiB,
        gpusPerTask: 0,
      },
      count: 1,
    });
  }

  /** Starts a pending job (the caller has removed it from the queue's pending list). */
  start(job: number, placements: Placement[], now: number): void {
    const j = this.jobs[job] as SimJob;
    for (const p of placements) {
      settle(p.node, now);
      p.node.everRan = true;
      p.node.freeCpus -= p.tasks;
      p.node.freeMemMiB -= p.tasks * j.memPerTaskMiB;
      p.node.runningJobs++;
      p.node.idleSince = undefined;
    }
    this.startMs[job] = now;
    this.placements.set(job, placements);
    this.queue(j.queue).running.add(job);
    this.pendingCpus -= j.procs;
    this.runningCpus += j.procs;
    const pending = this.pendingViews.get(job);
    this.pendingViews.delete(job);
    if (pending) {
      this.runningViews.set(job, {
        ...pending,
        state: "RUNNING",
        nodeNames: placements.map((p) => p.node.name),
      });
    }
    this.events.push({ kind: "end", timeMs: now + j.runMs, order: 0, job });
  }

  /** Ends a running job and frees its CPUs and memory; returns the nodes it ran on. */
  end(job: number, now: number): Placement[] {
    const j = this.jobs[job] as SimJob;
    const placements = this.placements.get(job) ?? [];
    for (const p of placements) {
      settle(p.node, now);
      p.node.freeCpus += p.tasks;
      p.node.freeMemMiB += p.tasks * j.memPerTaskMiB;
      p.node.runningJobs--;
      if (p.node.runningJobs === 0) p.node.idleSince = now;
    }
    this.endMs[job] = now;
    this.placements.delete(job);
    this.runningViews.delete(job);
    this.queue(j.queue).running.delete(job);
    this.runningCpus -= j.procs;
    return placements;
  }

  /**
   * Launches `count` nodes the way a cloud provider with limited capacity would: candidates are tried
   * in order; a (type, zone) at its limit passes the rest on to the next candidate (counted as a
   * fallback). All-or-nothing launches only go where every node fits. Returns the nodes launched.
   */
  launch(
    queue: string,
    candidates: readonly Candidate[],
    count: number,
    allOrNothing: boolean,
    now: number,
    boundJob = -1,
  ): SimNode[] {
    const launched: SimNode[] = [];
    let left = count;
    for (let i = 0; i < candidates.length && left > 0; i++) {
      const c = candidates[i] as Candidate;
      const key = capacityKey(c.instanceType, c.zone);
      const room = this.capacityLeft.get(key) ?? Number.POSITIVE_INFINITY;
      const n = allOrNothing ? (room >= left ? left : 0) : Math.min(room, left);
      if (n < left) {
        this.unavailableUntil.set(key, {
          instanceType: c.instanceType,
          zone: c.zone,
          until: now + DEFAULT_UNAVAILABLE_TTL_MS,
        });
      }
      for (let k = 0; k < n; k++) launched.push(this.addNode(queue, c.instanceType, c.zone, now, boundJob));
      if (Number.isFinite(room)) this.capacityLeft.set(key, room - n);
      left -= n;
      if (left > 0 && i + 1 < candidates.length) this.counters.fallbacks++;
    }
    this.counters.unlaunchedNodes += left;
    return launched;
  }

  /** A node that exists from `now`, already up (static clusters). */
  addReadyNode(queue: string, instanceType: string, zone: string, now: number): SimNode {
    const node = this.addNode(queue, instanceType, zone, now, -1, true);
    this.markReady(node, now);
    return node;
  }

  markReady(node: SimNode, now: number): void {
    settle(node, now);
    node.ready = true;
    node.idleSince = now;
  }

  /** Slurm drain: the node takes no new job; DRAINED once its jobs end. */
  drain(node: SimNode, now: number): void {
    settle(node, now);
    node.draining = true;
  }

  /** The instance is gone: its node-hours and cost stop here. */
  terminate(node: SimNode, now: number): void {
    if (node.gone) return;
    node.gone = true;
    const q = this.queue(node.queue);
    q.nodes = q.nodes.filter((n) => n !== node);
    this.nodesByName.delete(node.name);
    const key = capacityKey(node.instanceType, node.zone);
    const left = this.capacityLeft.get(key);
    if (left !== undefined) this.capacityLeft.set(key, left + 1);
    this.account(node, now);
    this.liveNodes--;
    this.liveVcpus -= node.vcpus;
  }

  /** Closes the books at the end of the replay: live nodes are billed up to `now`. */
  finish(now: number): void {
    for (const q of this.queues.values()) for (const node of q.nodes) this.account(node, now);
    this.sample(now);
  }

  /** Records one timeline point (when recording): live nodes and vCPUs against demand. */
  sample(now: number): void {
    this.timeline?.add(now, this.liveNodes, this.liveVcpus, this.runningCpus, this.pendingCpus);
  }

  /** The core's ClusterNode view of a node, refreshed from the simulation. */
  refreshView(node: SimNode): ClusterNode {
    const v = node.view;
    v.state = !node.ready
      ? "LAUNCHING"
      : node.draining
        ? node.runningJobs > 0
          ? "DRAINING"
          : "DRAINED"
        : node.runningJobs === 0
          ? "IDLE"
          : node.freeCpus === 0
            ? "ALLOCATED"
            : "MIXED";
    v.idleSince = node.runningJobs === 0 && node.ready ? node.idleSince : undefined;
    v.reason = node.draining ? `${DRAIN_REASON_PREFIX}: idle` : undefined;
    return v;
  }

  private addNode(
    queue: string,
    instanceType: string,
    zone: string,
    now: number,
    boundJob: number,
    upAlready = false,
  ): SimNode {
    const shape = this.config.catalog[instanceType];
    const q = this.config.queueByName.get(queue);
    if (!shape || !q) throw new Error(`launch of unknown type ${instanceType} or queue ${queue}`);
    const name = `${queue}-${String(++this.nodeSeq).padStart(6, "0")}`;
    const memMiB = Math.floor(shape.memoryMiB / q.scaleUpMemRatio);
    const readyAt = upAlready ? now : now + this.bootMs();
    const node: SimNode = {
      name,
      queue,
      instanceType,
      zone,
      vcpus: shape.vcpus,
      memMiB,
      pricePerHour: shape.pricePerHour,
      launchedAt: now,
      readyAt,
      ready: false,
      draining: false,
      gone: false,
      freeCpus: shape.vcpus,
      freeMemMiB: memMiB,
      runningJobs: 0,
      idleSince: undefined,
      boundJob,
      view: { name, queue, instanceType, zone, state: "LAUNCHING", launchedAt: now },
      slot: -1,
      settledMs: now,
      everRan: false,
      bootVms: 0,
      fragVms: 0,
      idleVms: 0,
      drainVms: 0,
    };
    this.queue(queue).nodes.push(node);
    this.nodesByName.set(name, node);
    this.counters.launches++;
    this.liveNodes++;
    this.liveVcpus += node.vcpus;
    if (this.liveNodes > this.counters.peakNodes) this.counters.peakNodes = this.liveNodes;
    if (!upAlready) this.events.push({ kind: "ready", timeMs: readyAt, order: 1, node });
    return node;
  }

  private account(node: SimNode, now: number): void {
    settle(node, now);
    const c = this.counters;
    if (node.everRan) {
      c.bootVcpuSeconds += node.bootVms / 1000;
      c.fragVcpuSeconds += node.fragVms / 1000;
      c.idleVcpuSeconds += node.idleVms / 1000;
      c.drainVcpuSeconds += node.drainVms / 1000;
    } else {
      c.neverUsedVcpuSeconds += (node.bootVms + node.fragVms + node.idleVms + node.drainVms) / 1000;
    }
    const seconds = Math.max(0, now - node.launchedAt) / 1000;
    this.counters.nodeSeconds += seconds;
    this.counters.vcpuSeconds += seconds * node.vcpus;
    if (node.pricePerHour === undefined) this.counters.unpricedNodes++;
    else this.counters.costUSD += (seconds / 3600) * node.pricePerHour;
  }
}

/** Sorts the node's time since it was last settled into boot, fragmentation, idle or drained-and-empty. */
function settle(node: SimNode, now: number): void {
  const dt = now - node.settledMs;
  if (dt <= 0) return;
  node.settledMs = now;
  if (!node.ready) node.bootVms += node.vcpus * dt;
  else if (node.runningJobs > 0) node.fragVms += node.freeCpus * dt;
  else if (node.draining) node.drainVms += node.vcpus * dt;
  else node.idleVms += node.vcpus * dt;
}
