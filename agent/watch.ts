import type { Clock } from "../lib/ports/clock.js";

/**
 * The agent's watcher (`nowscale-agent watch`, docs/agent.md): it reads the pending job ids every few
 * seconds and, when one appears that was not pending at the previous read, wakes the scaler so the new
 * demand is planned within seconds rather than at the next scheduled poll. At most one wake goes out per
 * debounce period however many jobs are submitted; a job submitted during the debounce is not lost: its
 * wake is owed and goes out when the period ends.
 *
 * Why a poll of squeue rather than a hook at submit time: Slurm 22.05 has no submit event a process can
 * subscribe to, and a job_submit plugin (lua) runs inside slurmctld under its job write lock, so a call
 * out to the network from there would stall every submission on the cluster while it waits and make
 * submissions fail with it. One `squeue --states=PENDING --format=%i` every two seconds is one read RPC
 * (slurmctld answers it under a read lock, beside its normal work), like a user running `watch squeue`,
 * and the watcher stretches its interval when squeue is slow so it never keeps slurmctld busy more than a
 * fifth of the time.
 */

/** When the watcher owes a wake and when it may send it. Pure: time is an argument. */
export class PendingWatch {
  /** The ids pending at the previous read; undefined before the first. */
  private seen: Set<string> | undefined;
  /** Ids that became pending since the last wake went out. */
  private owedFor = 0;
  private lastWakeAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly debounceMs: number) {
    if (!(debounceMs >= 0)) throw new TypeError("debounceMs must be 0 or more");
  }

  /**
   * One read of the pending ids. Each id not pending at the previous read owes a wake (the first read
   * finds everything new: jobs submitted while the watcher was down). Ids no longer pending are
   * forgotten, so a requeued job is new demand again. Returns how many ids were new.
   */
  observe(ids: Iterable<string>): number {
    const next = new Set(ids);
    let fresh = 0;
    for (const id of next) if (this.seen?.has(id) !== true) fresh++;
    this.seen = next;
    this.owedFor += fresh;
    return fresh;
  }

  /** True when a wake is owed and the debounce since the last one has passed. */
  due(now: number): boolean {
    return this.owedFor > 0 && now - this.lastWakeAt >= this.debounceMs;
  }

  /** When an owed wake may go out (epoch ms), undefined when none is owed. */
  dueAt(): number | undefined {
    return this.owedFor > 0 ? this.lastWakeAt + this.debounceMs : undefined;
  }

  /**
   * A wake was tried at `now`: none again before the debounce has passed, even when it failed (so a
   * failing bus is tried once per period, not in a loop). Sent: nothing is owed any more. Returns how
   * many new ids the wake was for.
   */
  tried(now: number, sent: boolean): number {
    const owedFor = this.owedFor;
    this.lastWakeAt = now;
    if (sent) this.owedFor = 0;
    return owedFor;
  }
}

export interface WatchLoopOptions {
  /** The pending job ids (SlurmClient.pendingJobIds); throws when slurmctld does not answer. */
  read: () => Promise<string[]>;
  /** Sends one wake; throws when it was not delivered. */
  wake: () => Promise<void>;
  clock: Clock;
  intervalMs: number;
  debounceMs: number;
  /** One JSON log line. */
  log: (entry: Record<string, unknown>) => void;
  /** Checked before each step: true ends the loop. */
  stopped: () => boolean;
}

/**
 * Reads every `intervalMs` (stretched to four times a read's duration when squeue is slow) and sends the
 * wakes PendingWatch calls for. A read that fails sends nothing: an outage of slurmctld is never demand.
 * Failures are logged once when they start and once when they end.
 */
export async function runWatch(o: WatchLoopOptions): Promise<void> {
  const watch = new PendingWatch(o.debounceMs);
  let readFailing = false;
  let wakeFailing = false;
  let nextRead = o.clock.now();
  while (!o.stopped()) {
    if (o.clock.now() >= nextRead) {
      const started = o.clock.now();
      try {
        watch.observe(await o.read());
        if (readFailing) o.log({ msg: "pending jobs readable again" });
        readFailing = false;
      } catch (error) {
        if (!readFailing) o.log({ msg: "cannot read the pending jobs", error: message(error) });
        readFailing = true;
      }
      const took = o.clock.now() - started;
      nextRead = started + Math.max(o.intervalMs, 5 * took);
    }
    if (o.stopped()) return;
    const now = o.clock.now();
    if (watch.due(now)) {
      try {
        await o.wake();
        const jobs = watch.tried(now, true);
        o.log({ msg: "wake sent", newPendingJobs: jobs, ms: o.clock.now() - now });
        wakeFailing = false;
      } catch (error) {
        watch.tried(now, false);
        if (!wakeFailing) o.log({ msg: "wake failed: polling goes on", error: message(error) });
        wakeFailing = true;
      }
    }
    const owed = watch.dueAt();
    const until = Math.min(nextRead, owed ?? Number.POSITIVE_INFINITY);
    await o.clock.sleep(Math.max(0, until - o.clock.now()));
  }
}

function message(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).slice(0, 300);
}
