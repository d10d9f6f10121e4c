import type { SimCluster } from "./cluster.js";
import type { Scaler } from "./scalers.js";
import { schedule } from "./scheduler.js";
import type { SimJob } from "./workload.js";

export interface ReplayOptions {
  pollMs: number;
  /**
   * Once every job has ended and nothing boots, stop polling after this long even if the scaler
   * is not settled (a job no node can ever run would otherwise keep it polling forever).
   */
  stallLimitMs: number;
  /** Called now and then with the simulated time reached (ms). */
  onProgress?: (nowMs: number) => void;
  /**
   * Event-driven scale-out: a poll this long after an arrival that could not start at once, besides
   * the regular polls (which stay on their grid).
   */
  wakeMs?: number;
}

export interface ReplaySpan {
  /** First arrival: where static clusters start and node-hours windows begin. */
  startMs: number;
  /** When the replay stopped: last job end, or the last shrink of an autoscaled cluster. */
  endMs: number;
}

/**
 * The discrete-event loop. Simulated time jumps from event to event: job ends, node boots, arrivals,
 * then (at the same instant) one scheduler pass, then the scaler's poll when one is due. Polls fall on
 * multiples of pollMs; polls the scaler proves idle are skipped. The wall clock is never read.
 */
export function replay(cluster: SimCluster, scaler: Scaler, options: ReplayOptions): ReplaySpan {
  const jobs: readonly SimJob[] = cluster.jobs;
  const { pollMs } = options;
  const startMs = jobs[0]?.submitMs ?? 0;
  const firstPoll = (ms: number) => (Number.isFinite(ms) ? Math.ceil(ms / pollMs) * pollMs : ms);
  scaler.begin(cluster, startMs);
  cluster.sample(startMs);

  let next = 0;
  let nextPoll = scaler.polls ? firstPoll(startMs) : Number.POSITIVE_INFINITY;
  /** Wake-up polls asked for by arrivals (event-driven scale-out), in time order. */
  const wakes: number[] = [];
  let wakeHead = 0;
  let now = startMs;
  let drainedSince = Number.NaN;
  let steps = 0;
  for (;;) {
    const work = Math.min(
      next < jobs.length ? (jobs[next] as SimJob).submitMs : Number.POSITIVE_INFINITY,
      cluster.events.peekTime(),
    );
    const wake = wakeHead < wakes.length ? (wakes[wakeHead] as number) : Number.POSITIVE_INFINITY;
    const t = Math.min(work, nextPoll, wake);
    if (t === Number.POSITIVE_INFINITY) break;
    now = t;

    let changed = false;
    while (cluster.events.peekTime() === t) {
      const event = cluster.events.pop();
      if (!event) break;
      changed = true;
      if (event.kind === "end") {
        const placements = cluster.end(event.job, t);
        scaler.onEnd?.(cluster, event.job, placements, t);
      } else if (!event.node.gone) {
        cluster.markReady(event.node, t);
        scaler.onReady?.(cluster, event.node, t);
      }
    }
    const firstArrival = next;
    while (next < jobs.length && (jobs[next] as SimJob).submitMs === t) {
      cluster.arrive(next++);
      changed = true;
    }
    if (changed) schedule(cluster, t);
    if (options.wakeMs !== undefined && scaler.polls) {
      for (let i = firstArrival; i < next; i++) {
        if (Number.isNaN(cluster.startMs[i] as number)) {
          wakes.push(t + options.wakeMs);
          break;
        }
      }
    }

    const woken = wake === t;
    while (wakeHead < wakes.length && (wakes[wakeHead] as number) <= t) wakeHead++;
    const polled = nextPoll === t || woken;
    if (polled) {
      scaler.poll(cluster, t);
      if (nextPoll === t) nextPoll = t + pollMs;
    }
    if (changed || polled) cluster.sample(t);

    // Nothing left to arrive, run or boot. Pending jobs still wait for a poll to serve them (or the
    // stall limit, when none ever can); otherwise stop once the scaler has nothing left to shrink.
    const allDone = next >= jobs.length && cluster.events.size === 0;
    if (allDone && (!scaler.polls || (polled && cluster.pendingViews.size === 0 && scaler.settled()))) break;
    if (allDone) {
      if (Number.isNaN(drainedSince)) drainedSince = t;
      else if (t - drainedSince > options.stallLimitMs) break;
    } else drainedSince = Number.NaN;

    if (scaler.polls) {
      const until = scaler.quietUntil(cluster);
      if (until > nextPoll) {
        const nextWork = Math.min(
          next < jobs.length ? (jobs[next] as SimJob).submitMs : Number.POSITIVE_INFINITY,
          cluster.events.peekTime(),
          until,
        );
        if (nextWork > nextPoll) nextPoll = firstPoll(nextWork);
      }
    }
    if (options.onProgress && ++steps % 4096 === 0) options.onProgress(t);
  }
  cluster.finish(now);
  return { startMs, endMs: now };
}
