import type { Clock } from "../ports/clock.js";
import type { StateStore } from "../ports/state-store.js";
import { WAKE_MIN_INTERVAL_MS, wakeClusterId } from "../ports/wake.js";

/**
 * The scaler's side of a wake (lib/ports/wake.ts): the master's agent saw new pending jobs and asks for a
 * poll now instead of at the next schedule. A wake is a hint: it names a cluster and nothing else, and
 * what it causes is one ordinary poll, which reads the queue from the agent itself. So a forged wake, or
 * a thousand, cost at most one poll per WAKE_MIN_INTERVAL_MS and never a launch the queue does not call
 * for; polling on the schedule goes on as the safety net whether wakes come or not.
 *
 * The debounce is a lease in the state store (`wake#<clusterId>`, held WAKE_MIN_INTERVAL_MS): a wake is
 * honoured when it takes the lease, and each honoured wake grows the lease's fence. The cycle running for
 * the cluster (which holds `scaler#<clusterId>`, so no second cycle starts) watches that fence between
 * its polls (WakeWatch) and polls at once when it grows.
 */

export const wakeLeaseKey = (clusterId: string) => `wake#${clusterId}`;

export type WakeVerdict =
  | { honoured: true; clusterId: string }
  | {
      honoured: false;
      /** Why it is dropped: no valid cluster id, no such cluster, not RUNNING, or within the debounce. */
      reason: "bad-cluster-id" | "unknown-cluster" | "not-running" | "debounced";
      clusterId?: string;
    };

/**
 * Decides whether a wake is honoured. `detail` is the event's untrusted detail (`{"clusterId": "..."}`);
 * `owner` must be unique per wake (a request id). Writes nothing for a wake that names no RUNNING
 * cluster (so junk ids leave nothing behind); otherwise one conditional write (the debounce lease).
 */
export async function acceptWake(
  store: StateStore,
  clock: Clock,
  detail: unknown,
  owner: string,
  minIntervalMs = WAKE_MIN_INTERVAL_MS,
): Promise<WakeVerdict> {
  const clusterId = wakeClusterId(detail);
  if (clusterId === undefined) return { honoured: false, reason: "bad-cluster-id" };
  const cluster = await store.getCluster(clusterId);
  if (cluster === undefined) return { honoured: false, reason: "unknown-cluster", clusterId };
  if (cluster.status !== "RUNNING") return { honoured: false, reason: "not-running", clusterId };
  const lease = await store.acquireLease(wakeLeaseKey(clusterId), owner, minIntervalMs, clock.now());
  return lease === undefined
    ? { honoured: false, reason: "debounced", clusterId }
    : { honoured: true, clusterId };
}

/**
 * The wait between two polls of one scale cycle (ScaleCycleDeps.betweenPolls) that ends early when a
 * wake was honoured for the cluster since the previous wait ended (that is, since the last poll began):
 * it reads the wake lease's fence every `checkMs`. A read that fails counts as "no wake" (the poll then
 * comes on schedule). Costs one small read per `checkMs` while the cycle waits.
 */
export class WakeWatch {
  private constructor(
    private readonly store: StateStore,
    private readonly clock: Clock,
    private readonly clusterId: string,
    private readonly checkMs: number,
    private seen: number,
  ) {}

  /** Starts watching from the fence as it is now: wakes honoured before this do not count. */
  static async start(store: StateStore, clock: Clock, clusterId: string, checkMs = 1000): Promise<WakeWatch> {
    const watch = new WakeWatch(store, clock, clusterId, checkMs, 0);
    watch.seen = (await watch.fence()) ?? 0;
    return watch;
  }

  /** Waits `pollMs`, or less when a wake comes: "woken" then, else "elapsed". */
  async wait(pollMs: number): Promise<"woken" | "elapsed"> {
    const until = this.clock.now() + pollMs;
    for (;;) {
      const left = until - this.clock.now();
      if (left <= 0) return "elapsed";
      await this.clock.sleep(Math.min(this.checkMs, left));
      const fence = await this.fence();
      if (fence !== undefined && fence > this.seen) {
        this.seen = fence;
        return "woken";
      }
    }
  }

  /** The hook runScaleCycle takes. */
  readonly betweenPolls = async (pollMs: number): Promise<void> => {
    await this.wait(pollMs);
  };

  private async fence(): Promise<number | undefined> {
    try {
      return (await this.store.readLease(wakeLeaseKey(this.clusterId)))?.fence;
    } catch {
      return undefined;
    }
  }
}
