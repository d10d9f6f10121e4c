import { randomUUID } from "node:crypto";
import { runScaleCycle } from "../control/scale-cycle.js";
import type { LocalControlPlane } from "./control-plane.js";

/**
 * The scheduler of the deployed stack (EventBridge → scaler per RUNNING cluster), on one machine: every
 * `intervalMs`, one scale cycle (the same runScaleCycle, one poll) for each RUNNING cluster, one after
 * another. Returns a stop function that resolves once the cycle under way has ended.
 */
export function startScalerLoop(
  cp: LocalControlPlane,
  intervalMs: number,
  log: (line: string) => void,
): () => Promise<void> {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<void> = Promise.resolve();

  const tick = async () => {
    const clusters = await cp.store.listClusters({ status: "RUNNING" });
    for (const cluster of clusters) {
      if (stopped) return;
      const summary = await runScaleCycle(
        cluster.clusterId,
        {
          store: cp.store,
          agent: cp.agent,
          provider: cp.cloud,
          clock: { now: () => Date.now(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)) },
          metrics: cp.metrics,
          owner: `local-${randomUUID()}`,
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
    }
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      current = tick()
        .catch((error: unknown) => log(`scaler error: ${(error as Error).message}`.slice(0, 1000)))
        .finally(schedule);
    }, intervalMs);
  };
  schedule();
  return async () => {
    stopped = true;
    if (timer !== undefined) clearTimeout(timer);
    await current;
  };
}
