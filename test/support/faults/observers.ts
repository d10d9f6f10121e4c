import type { Clock } from "../../../lib/ports/clock.js";
import type { CloudProvider, LaunchRequest } from "../../../lib/ports/cloud-provider.js";
import type { ClusterRecord, StateStore } from "../../../lib/ports/state-store.js";
import { CLUSTER_TAG, QUEUE_TAG } from "../../../lib/ports/tags.js";
import type { FakeClusterResources } from "../../../lib/providers/fake/fake-cluster-resources.js";
import type { FakeCloud } from "../../../lib/providers/fake/index.js";
import { currentActor } from "./context.js";
import type { SlurmSim } from "./slurm.js";

/** The limit for promise (a): no instance runs untracked longer than this. */
export const UNTRACKED_LIMIT_S = 300;

export interface BusyTermination {
  at: number;
  instance: string;
  job: string;
  actor: string;
}

/** What one run measured, per promise (docs: test/faults/README.md). */
export interface PromiseFigures {
  scenario: string;
  seed: number;
  /** (a) The longest continuous time an instance ran with no node record, in seconds. */
  untrackedMaxS: number;
  untrackedWorst?: string;
  /** (b) Most instances live at once per queue, with its maxSize. */
  maxLive: { cluster: string; queue: string; max: number; maxSize: number }[];
  /** (b) How far the worst queue went over its maxSize (0 when none did). */
  overMaxSize: number;
  /** (b) Instances the scaler launched beyond what pending jobs needed, given what was booting or idle. */
  beyondDemand: number;
  /** (b) overMaxSize + beyondDemand. */
  doubleLaunches: number;
  /** (c) Terminates, not asked for by a user, of instances whose Slurm node ran a job at that moment. */
  busyTerminated: number;
  busyTerminations: BusyTermination[];
  /** (d) Clusters left CREATING/DELETING, or DELETED/FAILED with something live in the cloud. */
  strandedClusters: number;
  stranded: string[];
  /** (e) Hostile API inputs sent and refused (4xx naming the field, no state change). */
  hostileSent: number;
  hostileRefused: number;
  hostileAccepted: string[];
  /** Scenario-specific figures (launches of a queue, jobs lost, faults injected ...). */
  notes: Record<string, number | string>;
}

/** Actors whose terminates a user asked for: deleting a cluster, deleting nodes by hand. */
export function requestedByUser(actor: string): boolean {
  return actor === "workflow" || actor.includes("/nodes/delete");
}

/**
 * Watches one world for the five promises. The world calls it: `provider(...)` wraps the fake cloud's
 * provider (every launch and terminate the control plane makes really reaches the cloud through it),
 * `sample()` at every tick and clock sleep, `finish()` at the end.
 */
export class PromiseObserver {
  private readonly untrackedSince = new Map<string, number>();
  private untrackedMaxMs = 0;
  private untrackedWorst: string | undefined;
  private lastSample: number;
  private readonly maxLive = new Map<
    string,
    { cluster: string; queue: string; max: number; maxSize: number }
  >();
  private beyondDemand = 0;
  readonly busyTerminations: BusyTermination[] = [];
  readonly launches: { at: number; cluster: string; queue: string; actor: string; started: number }[] = [];
  readonly hostile = { sent: 0, refused: 0, accepted: [] as string[] };

  constructor(
    private readonly clock: Clock,
    private readonly cloud: FakeCloud,
    private readonly rawStore: StateStore,
    private readonly sims: () => Iterable<SlurmSim>,
    private readonly maxSizeOf: (clusterId: string, queue: string) => number | undefined,
  ) {
    this.lastSample = clock.now();
  }

  /**
   * The store with node records' comings and goings timed: a record removed (deleteNode) starts an
   * untracked stretch at that moment, and one written (putNode, recordLaunchOutcome) ends it then, so
   * stretches are measured from the writes themselves rather than from the samples.
   */
  store(inner: StateStore): StateStore {
    const observer = this;
    return new Proxy(inner, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (typeof value !== "function") return value;
        const method = value as (...args: unknown[]) => Promise<unknown>;
        if (prop === "deleteNode") {
          return async (clusterId: string, nodeName: string) => {
            await method.call(target, clusterId, nodeName);
            observer.removedAt.set(nodeName, observer.clock.now());
          };
        }
        if (prop === "putNode") {
          return async (node: { instanceId: string }) => {
            await method.call(target, node);
            observer.trackedAt.set(node.instanceId, observer.clock.now());
          };
        }
        if (prop === "recordLaunchIntent") {
          return async (intent: { round: string }) => {
            const out = await method.call(target, intent);
            observer.intentOrder.set(intent.round, ++observer.intentCount);
            return out;
          };
        }
        if (prop === "recordLaunchOutcome") {
          return async (clusterId: string, round: string, outcome: { instances: { id: string }[] }) => {
            await method.call(target, clusterId, round, outcome);
            for (const i of outcome.instances) observer.trackedAt.set(i.id, observer.clock.now());
          };
        }
        return method.bind(target);
      },
    });
  }

  /** When each node record was last removed / written, by instance id (records are named after them). */
  private readonly removedAt = new Map<string, number>();
  /** The order in which launch intents were admitted (written), by round. */
  private readonly intentOrder = new Map<string, number>();
  private intentCount = 0;
  private readonly trackedAt = new Map<string, number>();

  /** The provider with every real launch and terminate measured. */
  provider(inner: CloudProvider, simOf: (clusterId: string) => SlurmSim | undefined): CloudProvider {
    const observer = this;
    return new Proxy(inner, {
      get(target, prop, receiver) {
        if (prop === "launch") {
          return async (request: LaunchRequest) => {
            const sim = simOf(request.clusterId);
            const before = new Set(observer.cloud.live().map((i) => i.id));
            // Instances the control plane is releasing (records TERMINATING: a launch's surplus or short
            // all-or-nothing set) are not supply: a job they cannot serve may be launched for again.
            const releasing = new Set(
              (await observer.rawStore.listNodes(request.clusterId))
                .filter((r) => r.status === "TERMINATING")
                .map((r) => r.instanceId),
            );
            // Nor are instances of launches admitted after this one (a user's add-nodes that reached the
            // cloud first): this launch was decided before they existed.
            const mine = observer.intentOrder.get(request.round);
            if (mine !== undefined) {
              for (const i of observer.cloud.live()) {
                const later = observer.intentOrder.get(i.tags.NowScaleRound ?? "");
                if (later !== undefined && later > mine) releasing.add(i.id);
              }
            }
            const supply = Math.max(
              0,
              (sim?.supply(request.queue) ?? 0) - (sim?.supplyAmong(request.queue, releasing) ?? 0),
            );
            const demand = sim?.pendingDemand(request.queue) ?? 0;
            try {
              return await target.launch(request);
            } finally {
              const started = observer.cloud
                .live()
                .filter(
                  (i) =>
                    !before.has(i.id) &&
                    i.tags[CLUSTER_TAG] === request.clusterId &&
                    i.tags[QUEUE_TAG] === request.queue,
                ).length;
              observer.onLaunch(request, started, supply, demand);
            }
          };
        }
        if (prop === "terminate") {
          return async (ids: readonly string[]) => {
            const at = observer.clock.now();
            const actor = currentActor()?.name ?? "scenario";
            const busy = new Map<string, string>();
            for (const sim of observer.sims()) {
              for (const id of ids) {
                const job = sim.busy(id) ? sim.jobOn(id) : undefined;
                if (job !== undefined) busy.set(id, job);
              }
            }
            const liveBefore = new Set(observer.cloud.live().map((i) => i.id));
            try {
              await target.terminate(ids);
            } finally {
              const liveAfter = new Set(observer.cloud.live().map((i) => i.id));
              const stopped = ids.filter((id) => liveBefore.has(id) && !liveAfter.has(id));
              for (const [id, job] of busy) {
                if (stopped.includes(id)) observer.busyTerminations.push({ at, instance: id, job, actor });
              }
              for (const sim of observer.sims()) sim.noteStopped(stopped, at);
            }
          };
        }
        const value = Reflect.get(target, prop, receiver);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  }

  private onLaunch(request: LaunchRequest, started: number, supply: number, demand: number): void {
    const actor = currentActor()?.name ?? "scenario";
    this.launches.push({
      at: this.clock.now(),
      cluster: request.clusterId,
      queue: request.queue,
      actor,
      started,
    });
    // Only the scaler launches for demand; a user's "add nodes" asks for nodes, not for jobs.
    if (actor === "scaler" && started > 0) {
      this.beyondDemand += Math.max(0, Math.min(started, supply + started - demand));
    }
    this.countLive();
  }

  private countLive(): void {
    for (const sim of this.sims()) {
      const perQueue = new Map<string, number>();
      for (const i of sim.liveComputes()) {
        const queue = i.tags[QUEUE_TAG] ?? "";
        perQueue.set(queue, (perQueue.get(queue) ?? 0) + 1);
      }
      for (const [queue, count] of perQueue) {
        const maxSize = this.maxSizeOf(sim.clusterId, queue);
        if (maxSize === undefined) continue;
        const key = `${sim.clusterId}/${queue}`;
        const seen = this.maxLive.get(key);
        if (seen === undefined || count > seen.max)
          this.maxLive.set(key, { cluster: sim.clusterId, queue, max: count, maxSize });
      }
    }
  }

  /**
   * Untracked instances: each live compute instance without a node record starts (or continues) an
   * untracked stretch; a stretch ends when a record appears or the instance stops. Start and end are the
   * times of the writes that removed and made the record (store()), of the launch, and of the stop; only
   * an instance whose record vanished some other way is taken untracked from the previous sample on
   * (figures then err long by at most one sample gap).
   */
  async sample(): Promise<void> {
    const now = this.clock.now();
    for (const sim of this.sims()) {
      sim.sync();
      const tracked = new Set((await this.rawStore.listNodes(sim.clusterId)).map((r) => r.instanceId));
      const live = sim.liveComputes();
      const liveIds = new Set(live.map((i) => i.id));
      for (const instance of live) {
        if (tracked.has(instance.id)) {
          const since = this.untrackedSince.get(instance.id) ?? now;
          const at = this.trackedAt.get(instance.id);
          this.endStretch(instance.id, at !== undefined && at >= since ? at : now);
        } else if (!this.untrackedSince.has(instance.id)) {
          const removed = this.removedAt.get(instance.id);
          const start =
            removed !== undefined && removed >= instance.launchedAt
              ? removed
              : Math.max(instance.launchedAt, this.lastSample);
          this.untrackedSince.set(instance.id, start);
        }
      }
      for (const id of [...this.untrackedSince.keys()]) {
        const instance = this.cloud.get(id);
        if (instance?.tags[CLUSTER_TAG] !== sim.clusterId || liveIds.has(id)) continue;
        this.endStretch(id, sim.stoppedAt.get(id) ?? now);
      }
    }
    this.countLive();
    this.lastSample = now;
  }

  private endStretch(id: string, at: number): void {
    const since = this.untrackedSince.get(id);
    if (since === undefined) return;
    this.untrackedSince.delete(id);
    this.noteStretch(id, at - since);
  }

  private noteStretch(id: string, ms: number): void {
    if (ms > this.untrackedMaxMs) {
      this.untrackedMaxMs = ms;
      this.untrackedWorst = id;
    }
  }

  /**
   * The promises that can be judged in the middle of a run, as they stand now (ongoing untracked
   * stretches included): what the fast-check model checks after every step.
   */
  interim(): { untrackedMaxS: number; overMaxSize: number; beyondDemand: number; busyTerminated: number } {
    const now = this.clock.now();
    let untrackedMs = this.untrackedMaxMs;
    for (const since of this.untrackedSince.values()) untrackedMs = Math.max(untrackedMs, now - since);
    this.countLive();
    return {
      untrackedMaxS: Math.round(untrackedMs / 1000),
      overMaxSize: Math.max(0, ...[...this.maxLive.values()].map((m) => m.max - m.maxSize)),
      beyondDemand: this.beyondDemand,
      busyTerminated: this.busyTerminations.filter((b) => !requestedByUser(b.actor)).length,
    };
  }

  /** The figures at the end of the run; `resources` tells what else a deleted cluster left behind. */
  async finish(
    scenario: string,
    seed: number,
    resources: FakeClusterResources,
    notes: Record<string, number | string>,
  ): Promise<PromiseFigures> {
    await this.sample();
    const now = this.clock.now();
    for (const [id, since] of this.untrackedSince) this.noteStretch(id, now - since);
    const stranded: string[] = [];
    const clusters: ClusterRecord[] = await this.rawStore.listClusters();
    for (const cluster of clusters) {
      const live = this.cloud.live().filter((i) => i.tags[CLUSTER_TAG] === cluster.clusterId).length;
      const left = resources.live(cluster.clusterId).length;
      if (cluster.status === "CREATING" || cluster.status === "DELETING") {
        stranded.push(`${cluster.clusterId} stays ${cluster.status}`);
      } else if ((cluster.status === "DELETED" || cluster.status === "FAILED") && live + left > 0) {
        stranded.push(
          `${cluster.clusterId} is ${cluster.status} with ${live} instance(s) and ${left} resource(s) left`,
        );
      }
    }
    const maxLive = [...this.maxLive.values()];
    const overMaxSize = Math.max(0, ...maxLive.map((m) => m.max - m.maxSize));
    const busyTerminations = this.busyTerminations.filter((b) => !requestedByUser(b.actor));
    return {
      scenario,
      seed,
      untrackedMaxS: Math.round(this.untrackedMaxMs / 1000),
      ...(this.untrackedWorst === undefined ? {} : { untrackedWorst: this.untrackedWorst }),
      maxLive,
      overMaxSize,
      beyondDemand: this.beyondDemand,
      doubleLaunches: overMaxSize + this.beyondDemand,
      busyTerminated: busyTerminations.length,
      busyTerminations,
      strandedClusters: stranded.length,
      stranded,
      hostileSent: this.hostile.sent,
      hostileRefused: this.hostile.refused,
      hostileAccepted: [...this.hostile.accepted],
      notes,
    };
  }
}
