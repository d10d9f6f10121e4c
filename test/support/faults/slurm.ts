import { checkedNotes, checkedPartitions, checkedPlaceholders } from "../../../lib/agent-channels/http.js";
import { BUILTIN_CATALOGS } from "../../../lib/core/catalogs/index.js";
import type { ChargeType } from "../../../lib/core/model.js";
import { DRAIN_REASON_PREFIX } from "../../../lib/core/shrink.js";
import {
  AgentActionError,
  type AgentChannel,
  type JobNote,
  type PartitionSpec,
  type PartitionsAnswer,
  type PlaceholderSpec,
} from "../../../lib/ports/agent-channel.js";
import type { JobGroup, OkReport, ReportNode } from "../../../lib/ports/agent-report.js";
import type { Clock } from "../../../lib/ports/clock.js";
import { CLUSTER_TAG, QUEUE_TAG } from "../../../lib/ports/tags.js";
import type { FakeCloud, FakeInstance } from "../../../lib/providers/fake/index.js";
import type { Rng } from "./rng.js";

/** How instances of a queue come up: they join Slurm `bootMs` after launch, or never when `broken`. */
export interface QueueBoot {
  bootMs: number;
  broken: boolean;
}

export interface JobSpec {
  queue: string;
  /** Whole nodes the job needs. @default 1 */
  nodes?: number;
  runtimeMs: number;
  /** @default a sequence number */
  id?: string;
}

export interface SimJob {
  id: string;
  queue: string;
  nodes: number;
  /** Every job takes whole nodes: it asks for all the CPUs of the queue's node type. */
  cpusPerNode: number;
  runtimeMs: number;
  submittedAt: number;
  state: "PENDING" | "RUNNING" | "DONE";
  nodeNames: string[];
  startedAt?: number;
  endsAt?: number;
  /** Times the job lost a node while running and went back to PENDING. */
  requeues: number;
}

export interface SimNode {
  name: string;
  queue: string;
  instanceType: string;
  zone: string;
  chargeType: ChargeType;
  cpus: number;
  memoryMiB: number;
  joinedAt: number;
  /** Since when the node has held no job (Slurm's idle clock). */
  idleSince: number;
  jobId?: string;
  drainReason?: string;
  /** The instance is gone: slurmd stopped answering. */
  down: boolean;
}

/** Something that happened to a job, for the observers: a job killed by a terminate or a spot reclaim. */
export interface JobLoss {
  at: number;
  jobId: string;
  node: string;
  cause: "terminated" | "reclaimed";
}

/** Tag the creation workflow puts on the master (lib/control/lifecycle/create-tasks.ts). */
const ROLE_TAG = "nowscale-role";

/**
 * One cluster's Slurm, simulated over the fake cloud and a clock. Ground truth for the observers, and
 * the master behind the AgentChannel the control plane talks to:
 *
 * - an instance of the cluster (not the master) joins as an IDLE node `bootMs` after launch, unless its
 *   queue's bootstrap is broken; a node removed with deleteNode never joins again (its slurmd registered
 *   once, as dynamic nodes do);
 * - pending jobs start, oldest first with backfill, on idle undrained joined nodes of their queue, one job
 *   per node (jobs ask for all of a node's CPUs), run `runtimeMs` and complete;
 * - an instance that stops (terminated, or a spot reclaim) leaves its node DOWN ("Not responding") and
 *   the job on it goes back to PENDING (requeued), which is recorded as a JobLoss;
 * - drain: IDLE → DRAINED, busy → DRAINING (→ DRAINED when the job ends); deleteNode refuses a node that
 *   runs a job (409), as scontrol does.
 *
 * Time is lazy: every access first replays what happened up to the clock's now (`sync`), so the control
 * plane's own clock sleeps move the world along.
 */
export class SlurmSim implements AgentChannel {
  readonly jobs = new Map<string, SimJob>();
  readonly nodes = new Map<string, SimNode>();
  readonly losses: JobLoss[] = [];
  /** Instances that joined once (they never join again after a deleteNode). */
  readonly joined = new Set<string>();
  /** When each instance stopped, as the world learnt it (terminate calls, reclaims). */
  readonly stoppedAt = new Map<string, number>();
  private time: number;
  private nextJob = 1;
  private readonly reclaims: number[] = [];

  constructor(
    readonly clusterId: string,
    private readonly cloud: FakeCloud,
    private readonly clock: Clock,
    /** How an instance of the queue launched at `launchedAt` boots. */
    private readonly boot: (queue: string, launchedAt: number) => QueueBoot,
    private readonly rng: Rng,
  ) {
    this.time = clock.now();
  }

  // ── the world ──────────────────────────────────────────────────────────────────────────────────

  /** Submits a job now; returns its id. */
  submit(spec: JobSpec): string {
    this.sync();
    const id = spec.id ?? String(this.nextJob++);
    const shape = BUILTIN_CATALOGS.aws["c5.xlarge"];
    this.jobs.set(id, {
      id,
      queue: spec.queue,
      nodes: spec.nodes ?? 1,
      cpusPerNode: shape?.vcpus ?? 4,
      runtimeMs: spec.runtimeMs,
      submittedAt: this.clock.now(),
      state: "PENDING",
      nodeNames: [],
      requeues: 0,
    });
    this.schedule(this.time);
    return id;
  }

  /**
   * Starts a one-node job of `runtimeMs` on `node` now, if the node is joined, up, idle and not drained
   * (Slurm placing a new job there); its id, else undefined.
   */
  landJobOn(node: string, runtimeMs: number): string | undefined {
    this.sync();
    const n = this.nodes.get(node);
    if (n === undefined || n.down || n.jobId !== undefined || n.drainReason !== undefined) return undefined;
    const id = String(this.nextJob++);
    const now = this.clock.now();
    this.jobs.set(id, {
      id,
      queue: n.queue,
      nodes: 1,
      cpusPerNode: n.cpus,
      runtimeMs,
      submittedAt: now,
      state: "RUNNING",
      nodeNames: [node],
      startedAt: now,
      endsAt: now + runtimeMs,
      requeues: 0,
    });
    n.jobId = id;
    return id;
  }

  /** At `at` (or as soon after as one runs a job), a spot instance of the cluster running a job is reclaimed. */
  reclaimSpotAt(at: number): void {
    this.reclaims.push(at);
    this.reclaims.sort((a, b) => a - b);
  }

  /** The instances stopped now (a terminate the world saw). */
  noteStopped(ids: readonly string[], at: number): void {
    for (const id of ids) if (!this.stoppedAt.has(id)) this.stoppedAt.set(id, at);
    this.sync();
  }

  /** The cluster's compute instances the cloud still runs (not the master). */
  liveComputes(): FakeInstance[] {
    return this.cloud
      .live()
      .filter((i) => i.tags[CLUSTER_TAG] === this.clusterId && i.tags[ROLE_TAG] !== "master");
  }

  /** True when the instance's node runs a job right now. */
  busy(instanceId: string): boolean {
    this.sync();
    const node = this.nodes.get(instanceId);
    return node !== undefined && !node.down && node.jobId !== undefined;
  }

  /** The job on the instance's node, if any. */
  jobOn(instanceId: string): string | undefined {
    const node = this.nodes.get(instanceId);
    return node === undefined || node.down ? undefined : node.jobId;
  }

  /** Whole nodes the queue's pending jobs need. */
  pendingDemand(queue: string): number {
    this.sync();
    let sum = 0;
    for (const job of this.jobs.values())
      if (job.queue === queue && job.state === "PENDING") sum += job.nodes;
    return sum;
  }

  /**
   * What the queue has to offer pending jobs now: joined nodes idle and not drained, plus instances that
   * are still booting (never joined, not removed). A broken queue's instances count until they are
   * terminated, as the control plane cannot know yet that they will never join.
   */
  supply(queue: string): number {
    this.sync();
    let idle = 0;
    for (const node of this.nodes.values()) {
      if (node.queue === queue && !node.down && node.jobId === undefined && node.drainReason === undefined)
        idle++;
    }
    const booting = this.liveComputes().filter((i) => i.tags[QUEUE_TAG] === queue && !this.joined.has(i.id));
    return idle + booting.length;
  }

  /** How much of `supply(queue)` the given instances make up (booting, or joined idle and undrained). */
  supplyAmong(queue: string, ids: ReadonlySet<string>): number {
    this.sync();
    let count = 0;
    for (const node of this.nodes.values()) {
      if (!ids.has(node.name)) continue;
      if (node.queue === queue && !node.down && node.jobId === undefined && node.drainReason === undefined)
        count++;
    }
    count += this.liveComputes().filter(
      (i) => ids.has(i.id) && i.tags[QUEUE_TAG] === queue && !this.joined.has(i.id),
    ).length;
    return count;
  }

  /** Replays the world up to the clock's now. */
  sync(): void {
    const now = this.clock.now();
    for (;;) {
      const next = this.nextEvent();
      if (next === undefined || next > now) break;
      this.time = Math.max(this.time, next);
      this.process(this.time);
      this.schedule(this.time);
    }
    this.time = Math.max(this.time, now);
    this.markStopped(this.time);
    this.schedule(this.time);
  }

  private nextEvent(): number | undefined {
    let next: number | undefined;
    const consider = (t: number) => {
      if (next === undefined || t < next) next = t;
    };
    for (const instance of this.liveComputes()) {
      if (this.joined.has(instance.id)) continue;
      const boot = this.boot(instance.tags[QUEUE_TAG] ?? "", instance.launchedAt);
      if (!boot.broken) consider(Math.max(this.time, instance.launchedAt + boot.bootMs));
    }
    for (const job of this.jobs.values()) if (job.endsAt !== undefined) consider(job.endsAt);
    for (const at of this.stoppedAt.values()) if (at > this.time) consider(at);
    const reclaim = this.reclaims[0];
    if (reclaim !== undefined && reclaim > this.time) consider(reclaim);
    return next;
  }

  private process(at: number): void {
    this.markStopped(at);
    for (const job of this.jobs.values()) {
      if (job.endsAt !== undefined && job.endsAt <= at) this.complete(job, job.endsAt);
    }
    for (const instance of this.liveComputes()) {
      if (this.joined.has(instance.id)) continue;
      const boot = this.boot(instance.tags[QUEUE_TAG] ?? "", instance.launchedAt);
      if (!boot.broken && instance.launchedAt + boot.bootMs <= at) this.join(instance, at);
    }
  }

  /** Due reclaims fire on a spot node that runs a job; with none yet, they wait for the first one. */
  private fireReclaims(at: number): void {
    for (;;) {
      const due = this.reclaims[0];
      if (due === undefined || due > at) return;
      const busySpot = this.liveComputes().filter(
        (i) => i.chargeType === "SPOT" && this.jobOn(i.id) !== undefined,
      );
      const victim = this.rng.pick(busySpot);
      if (victim === undefined) return;
      this.reclaims.shift();
      this.cloud.terminate([victim.id]);
      this.stoppedAt.set(victim.id, at);
      this.markStopped(at, "reclaimed");
      this.schedule(at);
    }
  }

  private join(instance: FakeInstance, at: number): void {
    this.joined.add(instance.id);
    const shape = BUILTIN_CATALOGS.aws[instance.instanceType];
    this.nodes.set(instance.id, {
      name: instance.id,
      queue: instance.tags[QUEUE_TAG] ?? "",
      instanceType: instance.instanceType,
      zone: instance.zone,
      chargeType: instance.chargeType,
      cpus: shape?.vcpus ?? 4,
      memoryMiB: shape?.memoryMiB ?? 8192,
      joinedAt: at,
      idleSince: at,
      down: false,
    });
  }

  /** Nodes whose instance stopped go DOWN; their jobs are requeued. */
  private markStopped(at: number, cause: JobLoss["cause"] = "terminated"): void {
    const live = new Set(this.liveComputes().map((i) => i.id));
    for (const node of this.nodes.values()) {
      if (node.down || live.has(node.name)) continue;
      const stopped = this.stoppedAt.get(node.name) ?? at;
      if (stopped > at) continue;
      node.down = true;
      const jobId = node.jobId;
      delete node.jobId;
      const job = jobId === undefined ? undefined : this.jobs.get(jobId);
      if (job === undefined || job.state !== "RUNNING") continue;
      this.losses.push({ at: stopped, jobId: job.id, node: node.name, cause });
      for (const name of job.nodeNames) {
        const other = this.nodes.get(name);
        if (other !== undefined && other.jobId === job.id) {
          delete other.jobId;
          other.idleSince = at;
        }
      }
      job.state = "PENDING";
      job.nodeNames = [];
      job.requeues++;
      delete job.startedAt;
      delete job.endsAt;
    }
  }

  private complete(job: SimJob, at: number): void {
    job.state = "DONE";
    delete job.endsAt;
    for (const name of job.nodeNames) {
      const node = this.nodes.get(name);
      if (node !== undefined && node.jobId === job.id) {
        delete node.jobId;
        node.idleSince = at;
      }
    }
  }

  /** Starts what fits: oldest pending job first, any later one that fits too (backfill). */
  private schedule(at: number): void {
    const pending = [...this.jobs.values()]
      .filter((j) => j.state === "PENDING")
      .sort((a, b) => a.submittedAt - b.submittedAt || (a.id < b.id ? -1 : 1));
    for (const job of pending) {
      const free = [...this.nodes.values()]
        .filter(
          (n) =>
            n.queue === job.queue &&
            !n.down &&
            n.jobId === undefined &&
            n.drainReason === undefined &&
            n.cpus >= job.cpusPerNode,
        )
        .sort((a, b) => (a.name < b.name ? -1 : 1))
        .slice(0, job.nodes);
      if (free.length < job.nodes) continue;
      job.state = "RUNNING";
      job.startedAt = at;
      job.endsAt = at + job.runtimeMs;
      job.nodeNames = free.map((n) => n.name);
      for (const node of free) node.jobId = job.id;
    }
    this.fireReclaims(at);
  }

  // ── the AgentChannel ───────────────────────────────────────────────────────────────────────────

  async report(): Promise<OkReport> {
    this.sync();
    const iso = (ms: number) => new Date(ms).toISOString();
    const jobs: JobGroup[] = [...this.jobs.values()]
      .filter((j) => j.state !== "DONE")
      .sort((a, b) => a.submittedAt - b.submittedAt || (a.id < b.id ? -1 : 1))
      .map((j) => ({
        queue: j.queue,
        state: j.state === "RUNNING" ? "RUNNING" : "PENDING",
        nodes: j.nodes,
        cpusPerNode: j.cpusPerNode,
        memPerNodeMiB: 0,
        gpusPerNode: 0,
        count: 1,
        oldestSubmittedAt: iso(j.submittedAt),
        jobIds: [j.id],
        ...(this.notes.get(j.id) ?? {}),
        ...(j.state === "RUNNING" ? { nodeNames: [...j.nodeNames] } : {}),
      }));
    const nodes: ReportNode[] = [...this.nodes.values()]
      .sort((a, b) => (a.name < b.name ? -1 : 1))
      .map((n) => {
        const state = nodeState(n);
        const idle = n.jobId === undefined && !n.down;
        return {
          name: n.name,
          queue: n.queue,
          instanceType: n.instanceType,
          zone: n.zone,
          state,
          ...(idle ? { idleSince: iso(n.idleSince) } : {}),
          ...(n.down
            ? { reason: "Not responding" }
            : n.drainReason === undefined
              ? {}
              : { reason: n.drainReason }),
          cpus: n.cpus,
          cpusAllocated: n.jobId === undefined ? 0 : n.cpus,
          memoryMiB: n.memoryMiB,
          memoryAllocatedMiB: 0,
          gpus: 0,
          features: [`q_${n.queue}`, `type_${n.instanceType}`, `zone_${n.zone}`],
          slurmState: `${state}+DYNAMIC_NORM`,
        };
      });
    return {
      schemaVersion: 1,
      agentVersion: "0.1.0",
      scheduler: "slurm",
      generatedAt: iso(this.clock.now()),
      status: "ok",
      slurmVersion: "23.11.4",
      source: "json",
      jobs,
      nodes,
      unmanagedNodes: [],
      ignored: { jobs: 0, nodes: 0, examples: [] },
    };
  }

  async drain(node: string, reason: string): Promise<void> {
    this.sync();
    const n = this.nodes.get(node);
    if (n === undefined) throw new AgentActionError(`agent drain ${node}: HTTP 404 no such node`, 404);
    n.drainReason = reason.startsWith(DRAIN_REASON_PREFIX) ? reason : `${DRAIN_REASON_PREFIX}: ${reason}`;
  }

  async resume(node: string): Promise<void> {
    this.sync();
    const n = this.nodes.get(node);
    if (n === undefined) throw new AgentActionError(`agent resume ${node}: HTTP 404 no such node`, 404);
    delete n.drainReason;
    this.schedule(this.time);
  }

  async deleteNode(node: string): Promise<void> {
    this.sync();
    const n = this.nodes.get(node);
    if (n === undefined) return;
    if (!n.down && n.jobId !== undefined) {
      throw new AgentActionError(`agent delete ${node}: HTTP 409 the node runs job ${n.jobId}`, 409);
    }
    this.nodes.delete(node);
  }

  async health(): Promise<{ agentVersion: string }> {
    return { agentVersion: "0.1.0" };
  }

  /** Placeholders are not simulated: the report leaves them out, so the scale cycle syncs none. */
  async syncPlaceholders(
    specs: readonly PlaceholderSpec[],
  ): Promise<{ created: string[]; removed: string[] }> {
    checkedPlaceholders(specs);
    return { created: [], removed: [] };
  }

  /** The partitions as the agent would write them (no fault scenario changes queues yet). */
  async setPartitions(specs: readonly PartitionSpec[]): Promise<PartitionsAnswer> {
    const names = checkedPartitions(specs).map((s) => s.name);
    return { partitions: names, added: [], removed: [], changed: false };
  }

  /** Job notes as the agent writes them: kept per job and shown in the report. */
  readonly notes = new Map<string, { note: string; noteIn: JobNote["field"] }>();

  async setJobNotes(notes: readonly JobNote[]): Promise<void> {
    this.sync();
    for (const note of checkedNotes(notes)) {
      for (const id of note.jobIds) {
        if (note.text === "") this.notes.delete(id);
        else this.notes.set(id, { note: note.text, noteIn: note.field });
      }
    }
  }

  /** The deletion workflow's drainAll: every node drained (best effort, as the real agent). */
  drainAll(reason: string): void {
    this.sync();
    for (const n of this.nodes.values()) n.drainReason ??= reason;
  }
}

function nodeState(n: SimNode): ReportNode["state"] {
  if (n.down) return "DOWN";
  if (n.drainReason !== undefined) return n.jobId === undefined ? "DRAINED" : "DRAINING";
  return n.jobId === undefined ? "IDLE" : "ALLOCATED";
}
