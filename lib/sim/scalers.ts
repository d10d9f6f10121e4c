import type { ResolvedConfig } from "../core/config.js";
import type {
  ClusterNode,
  ClusterState,
  Decision,
  Job,
  QueueArrivals,
  UnavailableOffering,
} from "../core/model.js";
import { plan } from "../core/plan.js";
import type { Placement, SimCluster, SimNode } from "./cluster.js";
import type { SimJob } from "./workload.js";

/**
 * What grows and shrinks the simulated cluster. The engine calls `poll` every poll interval (when
 * `polls`), and the hooks when a node becomes ready or a job ends.
 */
export interface Scaler {
  readonly polls: boolean;
  /** Nodes that exist before the first job (a static cluster's). */
  begin(cluster: SimCluster, now: number): void;
  poll(cluster: SimCluster, now: number): void;
  /**
   * Until when (simulated ms) polls would certainly do nothing if no job event or arrival came first:
   * the engine skips polls up to the earlier of that time and the next event (an exact shortcut, not a
   * guess). Infinity: nothing until the next event; `now` or earlier: poll as usual.
   */
  quietUntil(cluster: SimCluster): number;
  /** After the last poll, with no jobs or boots left: true when nothing more will shrink. */
  settled(): boolean;
  onReady?(cluster: SimCluster, node: SimNode, now: number): void;
  onEnd?(cluster: SimCluster, job: number, placements: readonly Placement[], now: number): void;
}

/**
 * The real scaling core: each poll hands `plan` the cluster as the agent would report it (pending
 * jobs, running jobs with their nodes, nodes with Slurm states and idle times) and applies its
 * decision: launches through the provider (with fallback), drains and terminates.
 */
export class CoreScaler implements Scaler {
  readonly polls = true;
  private last: Decision | undefined;
  /** Sliding window of arrivals for the headroom: jobs [windowLo, windowHi) of the trace, CPUs per queue. */
  private windowLo = 0;
  private windowHi = 0;
  private readonly windowCpus = new Map<string, number>();

  constructor(
    private readonly config: ResolvedConfig,
    private readonly terminateAtDrain = false,
  ) {}

  begin(): void {}

  poll(cluster: SimCluster, now: number): void {
    const jobs: Job[] = [];
    for (const j of cluster.pendingViews.values()) jobs.push(j);
    for (const j of cluster.runningViews.values()) jobs.push(j);
    const nodes: ClusterNode[] = [];
    for (const q of cluster.queues.values()) for (const n of q.nodes) nodes.push(cluster.refreshView(n));
    const unavailableOfferings: UnavailableOffering[] = [];
    for (const [key, held] of cluster.unavailableUntil) {
      if (held.until > now) unavailableOfferings.push(held);
      else cluster.unavailableUntil.delete(key);
    }
    const state: ClusterState = { jobs, nodes, unavailableOfferings };
    if (this.config.headroomSeconds > 0) state.arrivals = this.arrivals(cluster, now);
    const decision = plan(this.config, state, now);
    this.last = decision;

    let launched = 0;
    for (const l of decision.launches) {
      launched += cluster.launch(l.queue, l.candidates, l.count, l.allOrNothing, now).length;
    }
    if (launched > 0) cluster.counters.scaleOutRounds++;
    for (const s of decision.shrinks) {
      const node = cluster.nodesByName.get(s.node);
      if (!node) throw new Error(`plan shrinks unknown node ${s.node}`);
      if (s.action === "drain") {
        cluster.drain(node, now);
        if (this.terminateAtDrain && node.runningJobs === 0) cluster.terminate(node, now);
      } else if (node.runningJobs === 0) cluster.terminate(node, now);
      else throw new Error(`plan terminates ${s.node}, which runs a job`);
    }
  }

  /**
   * What the agent would count for the headroom: CPUs of the single-node jobs (at most the queue's
   * largest vCPUs) submitted in the last headroomWindow seconds, ended ones included.
   */
  private arrivals(cluster: SimCluster, now: number): QueueArrivals[] {
    const jobs = cluster.jobs;
    const since = now - this.config.headroomWindow * 1000;
    const add = (i: number, sign: number) => {
      const job = jobs[i] as SimJob;
      const queue = this.config.queueByName.get(job.queue);
      const largest = queue ? Math.max(...queue.groups.map((g) => g.shape.vcpus)) : 0;
      if (job.procs <= largest)
        this.windowCpus.set(job.queue, (this.windowCpus.get(job.queue) ?? 0) + sign * job.procs);
    };
    for (; this.windowHi < jobs.length && (jobs[this.windowHi] as SimJob).submitMs <= now; this.windowHi++)
      add(this.windowHi, 1);
    for (; this.windowLo < this.windowHi && (jobs[this.windowLo] as SimJob).submitMs < since; this.windowLo++)
      add(this.windowLo, -1);
    return this.config.queues.map((q) => ({
      queue: q.queueName,
      windowS: this.config.headroomWindow,
      cpus: this.windowCpus.get(q.queueName) ?? 0,
    }));
  }

  quietUntil(cluster: SimCluster): number {
    const idleMs = this.config.shrinkIdleTime * 1000;
    const headroom = this.config.headroomSeconds > 0;
    // A launched headroom follows every start on an idle node and every arrival: no poll is provably empty.
    if (headroom && this.config.headroomLaunch) return Number.NEGATIVE_INFINITY;
    let until = Number.POSITIVE_INFINITY;
    // A pending job launches nothing before its busy time is up (and the scheduler has already put it
    // on any idle node it fits): until then only shrink, by time, can happen.
    const busyMs = this.config.expansionBusyTime * 1000;
    for (const job of cluster.pendingViews.values()) {
      const cfg = this.config.queueByName.get(job.queue);
      if (!cfg?.enableAutoExpansion) return Number.NEGATIVE_INFINITY;
      until = Math.min(until, job.submittedAt + busyMs);
    }
    for (const q of cluster.queues.values()) {
      const cfg = this.config.queueByName.get(q.name);
      if (cfg?.enableAutoExpansion && q.nodes.length < cfg.minSize) return Number.NEGATIVE_INFINITY;
      // Idle nodes shrink by time: nothing happens to one before its idle time is up, unless the
      // headroom (which moves with the arrival window) keeps it. A drained one is terminated at the
      // next poll; a booting one no job needs may be cancelled.
      for (const n of q.nodes) {
        if (!n.ready) {
          if (this.config.cancelUnneededBoots) return Number.NEGATIVE_INFINITY;
          continue;
        }
        if (n.runningJobs > 0) continue;
        if (n.draining || n.idleSince === undefined || headroom) return Number.NEGATIVE_INFINITY;
        until = Math.min(until, n.idleSince + idleMs);
      }
    }
    return until;
  }

  settled(): boolean {
    const d = this.last;
    if (!d) return true;
    return (
      d.launches.length === 0 &&
      d.shrinks.length === 0 &&
      // A node still counting its idle time, or kept warm by a headroom that shrinks as arrivals
      // leave its window, will shrink later: its tail is billed until then.
      !d.skipped.some(
        (s) => "node" in s && (s.code === "IDLE_TIME_NOT_REACHED" || s.code === "KEPT_FOR_HEADROOM"),
      )
    );
  }
}

/** static:N — N nodes of each queue's first entry, up from the first arrival, never scaled. */
export class StaticScaler implements Scaler {
  readonly polls = false;

  constructor(
    private readonly config: ResolvedConfig,
    private readonly size: number,
  ) {}

  begin(cluster: SimCluster, now: number): void {
    for (const q of this.config.queues) {
      const first = q.entries[0];
      if (!first) continue;
      for (let i = 0; i < this.size; i++)
        cluster.addReadyNode(q.queueName, first.instanceType, first.zone, now);
    }
  }

  poll(): void {}

  quietUntil(): number {
    return Number.POSITIVE_INFINITY;
  }

  settled(): boolean {
    return true;
  }
}
