import { randomUUID } from "node:crypto";
import { recoverStuckClusters } from "../control/lifecycle-recovery.js";
import { reconcileCluster } from "../control/reconciler.js";
import { runScaleCycle, ShrinkMemory } from "../control/scale-cycle.js";
import { acceptWake, type WakeVerdict } from "../control/wake.js";
import type { ClusterRecord } from "../ports/state-store.js";
import type { LocalControlPlane } from "./control-plane.js";

/** How often the reconciler runs (the stack's schedule is every few minutes; nodes boot faster here). */
export const RECONCILE_EVERY_MS = 30_000;

/**
 * A local node that has not joined this long after launch is a failed boot (the deployed default is
 * 15 minutes for a cloud's boot; a local instance of a pre-installed image joins within seconds).
 */
export const LOCAL_BOOT_TIMEOUT_MS = 120_000;

/** The running loop: wakes from the local bus, and its stop. */
export interface ScalerLoop {
  /**
   * A wake (the local bus's rule target; lib/control/wake.ts): when honoured, the named cluster's scale
   * cycle runs at once (or right after the one under way), not at the next tick. Resolves with the verdict.
   */
  wake(detail: unknown): Promise<WakeVerdict>;
  /** Stops the loop; resolves once the work under way has ended. */
  stop(): Promise<void>;
}

/**
 * The schedules of the deployed stack on one machine: every `intervalMs`, one scale cycle (the same
 * runScaleCycle, one poll) for each RUNNING cluster, and every RECONCILE_EVERY_MS the reconciler
 * (recoverStuckClusters, then reconcileCluster for each RUNNING or SLEEPING cluster, one after another).
 * A wake the bus hands over runs the woken cluster's cycle at once; the interval stays the safety net.
 */
export function startScalerLoop(
  cp: LocalControlPlane,
  intervalMs: number,
  log: (line: string) => void,
): ScalerLoop {
  let lastReconcile = Date.now();
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let current: Promise<void> = Promise.resolve();
  /** When the next scheduled tick is due: woken cycles never push it back (the schedule is the safety net). */
  let nextTickAt = Date.now() + intervalMs;
  /** Clusters whose wake was honoured and whose cycle has not run since. */
  const woken = new Set<string>();
  // One poll per cycle here, so the two reports a shrink needs span two cycles: keep the memory between them.
  const memories = new Map<string, ShrinkMemory>();
  const memoryOf = (clusterId: string) => {
    const memory = memories.get(clusterId) ?? new ShrinkMemory();
    memories.set(clusterId, memory);
    return memory;
  };

  const clock = { now: () => Date.now(), sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)) };
  const reconcile = async () => {
    lastReconcile = Date.now();
    // Clusters stuck CREATING or DELETING (a workflow start failed, or its run died with a restart).
    const recovered = await recoverStuckClusters({ store: cp.store, clock, workflows: cp.workflows });
    for (const id of [...recovered.creationsStarted, ...recovered.deletionsStarted, ...recovered.failed]) {
      log(
        `reconciler ${id}: stuck ${recovered.failed.includes(id) ? "cluster recorded FAILED" : "workflow started again"}`,
      );
    }
    for (const cluster of await cp.store.listClusters()) {
      if (stopped || (cluster.status !== "RUNNING" && cluster.status !== "SLEEPING")) continue;
      const r = await reconcileCluster(cluster.clusterId, await ports(cluster), {
        bootTimeoutMs: LOCAL_BOOT_TIMEOUT_MS,
      });
      const fixed = [...r.adopted, ...r.orphansTerminated, ...r.bootTimeouts, ...r.gone, ...r.retired];
      if (fixed.length > 0 || r.intentsClosed.length > 0) {
        log(
          `reconciler ${cluster.clusterId}: adopted ${r.adopted.length}, orphans ${r.orphansTerminated.length}, ` +
            `boot timeouts ${r.bootTimeouts.length}, gone ${r.gone.length}, retired ${r.retired.length}, ` +
            `intents closed ${r.intentsClosed.length}`,
        );
      }
    }
  };
  /** What the scale cycle and the reconciler share: the cluster's ports, a fresh owner per run. */
  const ports = async (cluster: ClusterRecord) => ({
    store: cp.store,
    ...(await cp.runtime(cluster)),
    clock,
    metrics: cp.metrics,
    owner: `local-${randomUUID()}`,
  });
  const cycle = async (cluster: ClusterRecord) => {
    woken.delete(cluster.clusterId);
    const summary = await runScaleCycle(
      cluster.clusterId,
      {
        ...(await ports(cluster)),
        cluster,
        shrinkMemory: memoryOf(cluster.clusterId),
        userData: cp.userData,
      },
      // One poll per tick: the loop itself is the schedule.
      { windowMs: 0, pollMs: intervalMs },
    );
    const acted = summary.launchedNodes + summary.drained.length + summary.terminated.length;
    if (acted > 0 || summary.launchFailures > 0) {
      log(
        `scaler ${cluster.clusterId}: launched ${summary.launchedNodes}, failed ${summary.launchFailures}, ` +
          `drained ${summary.drained.length}, terminated ${summary.terminated.length}`,
      );
    }
  };
  const tick = async () => {
    if (Date.now() - lastReconcile >= RECONCILE_EVERY_MS) {
      await reconcile().catch((error: unknown) =>
        log(`reconciler error: ${(error as Error).message}`.slice(0, 1000)),
      );
    }
    const clusters = await cp.store.listClusters({ status: "RUNNING" });
    for (const cluster of clusters) {
      if (stopped) return;
      await cycle(cluster);
    }
  };
  /** The woken clusters' cycles only (the reconciler and the other clusters keep their schedule). */
  const wokenTick = async () => {
    for (const clusterId of [...woken]) {
      if (stopped) return;
      woken.delete(clusterId);
      const cluster = await cp.store.getCluster(clusterId);
      if (cluster?.status === "RUNNING") await cycle(cluster);
    }
  };
  const run = (work: () => Promise<void>) => {
    running = true;
    timer = undefined;
    current = work()
      .catch((error: unknown) => log(`scaler error: ${(error as Error).message}`.slice(0, 1000)))
      .finally(() => {
        // The interval runs from the end of a scheduled tick, as before wakes existed.
        if (work === tick) nextTickAt = Date.now() + intervalMs;
        running = false;
        schedule();
      });
  };
  const schedule = () => {
    if (stopped) return;
    // A wake that came during the work runs now; otherwise the scheduled tick when it is due.
    if (woken.size > 0) run(wokenTick);
    else timer = setTimeout(() => run(tick), Math.max(0, nextTickAt - Date.now()));
  };
  schedule();
  return {
    wake: async (detail: unknown) => {
      const verdict = await acceptWake(cp.store, clock, detail, `local-wake-${randomUUID()}`);
      if (verdict.honoured && !stopped) {
        log(`wake ${verdict.clusterId}: scale cycle now`);
        woken.add(verdict.clusterId);
        if (!running) {
          if (timer !== undefined) clearTimeout(timer);
          run(wokenTick);
        }
      }
      return verdict;
    },
    stop: async () => {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      await current;
    },
  };
}
