import { describe, expect, it, vi } from "vitest";
import { main } from "../../../agent/main.js";
import { PendingWatch, runWatch } from "../../../agent/watch.js";
import { FakeClock } from "../../../lib/providers/fake/index.js";
import { SlurmClient } from "../../../scheduler-plugins/slurm/client.js";
import { PENDING_IDS_ARGS, parsePendingIds } from "../../../scheduler-plugins/slurm/pending.js";

const T0 = Date.UTC(2026, 0, 1);

/**
 * The watcher on a fake clock: `script(t)` is the pending ids a read at `t` ms (from T0) finds; it runs
 * until `untilMs` and returns the wakes' times (ms from T0) and its log lines.
 */
async function watchFor(
  script: (t: number) => string[] | Error,
  untilMs: number,
  options: { intervalMs?: number; debounceMs?: number; wake?: (t: number) => void; readMs?: number } = {},
) {
  const clock = new FakeClock(T0);
  const wakes: number[] = [];
  const reads: number[] = [];
  const log: Record<string, unknown>[] = [];
  await runWatch({
    read: async () => {
      const t = clock.now() - T0;
      reads.push(t);
      if (options.readMs !== undefined) clock.advance(options.readMs);
      const ids = script(t);
      if (ids instanceof Error) throw ids;
      return ids;
    },
    wake: async () => {
      const t = clock.now() - T0;
      options.wake?.(t);
      wakes.push(t);
    },
    clock,
    intervalMs: options.intervalMs ?? 2000,
    debounceMs: options.debounceMs ?? 5000,
    log: (entry) => log.push(entry),
    stopped: () => clock.now() - T0 > untilMs,
  });
  return { wakes, reads, log };
}

/** The ids of jobs 1..n. */
const jobs = (n: number) => Array.from({ length: n }, (_, i) => String(i + 1));

describe("the pending ids the watcher reads", () => {
  it("THEN squeue prints ids only, a pending array record is its base id, and names off the allow-list are left out", async () => {
    // Prepare
    const calls: string[][] = [];
    const client = new SlurmClient({
      runner: async (_file, args) => {
        calls.push([...args]);
        return { code: 0, stdout: "17\n9_[3-28%4]\n9_2\n5+0\n\n  21  \n$(reboot)\n", stderr: "" };
      },
    });

    // Act
    const ids = await client.pendingJobIds();

    // Assess
    expect(calls).toEqual([[...PENDING_IDS_ARGS]]);
    expect(PENDING_IDS_ARGS).toContain("--states=PENDING");
    expect(ids).toEqual(["17", "9", "9_2", "5+0", "21"]);
    expect(parsePendingIds("9_[0-28]\n")).toEqual(parsePendingIds("9_[5-28]\n"));
  });

  it("THEN a squeue that cannot reach slurmctld is an error, never an empty queue", async () => {
    // Prepare
    const client = new SlurmClient({
      runner: async () => ({
        code: 1,
        stdout: "",
        stderr: "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n",
      }),
    });

    // Act
    const result = await client.pendingJobIds().catch((e: Error) => e);

    // Assess
    expect(result).toBeInstanceOf(Error);
    expect((result as Error).name).toBe("SlurmUnavailableError");
  });
});

describe("PendingWatch", () => {
  it("THEN only ids not pending at the previous read owe a wake, and a requeued job is new again", () => {
    // Prepare
    const watch = new PendingWatch(5000);

    // Act / Assess: the first read finds everything new
    expect(watch.observe(["1", "2"])).toBe(2);
    expect(watch.due(0)).toBe(true);
    expect(watch.tried(0, true)).toBe(2);
    // the same ids again, or fewer (one started): nothing owed
    expect(watch.observe(["1", "2"])).toBe(0);
    expect(watch.observe(["2"])).toBe(0);
    expect(watch.due(60_000)).toBe(false);
    // job 1 requeued: pending again, so new demand
    expect(watch.observe(["1", "2"])).toBe(1);
    expect(watch.due(60_000)).toBe(true);
  });

  it("THEN within the debounce a wake is owed, not sent, and becomes due when the period ends", () => {
    // Prepare
    const watch = new PendingWatch(5000);
    watch.observe(["1"]);
    watch.tried(1000, true);

    // Act
    watch.observe(["1", "2"]);

    // Assess
    expect(watch.due(5999)).toBe(false);
    expect(watch.dueAt()).toBe(6000);
    expect(watch.due(6000)).toBe(true);
  });
});

describe("runWatch", () => {
  it("THEN a flood of submissions sends one wake per debounce, and the last job's wake is not lost", async () => {
    // Prepare: a new job at every read (every 2 s) from 0 to 22 s, then none
    const script = (t: number) => jobs(Math.min(t, 22_000) / 2000 + 1);

    // Act
    const { wakes } = await watchFor(script, 60_000);

    // Assess: at most one wake per 5 s; the job of 22 s is woken for as soon as the debounce allows
    expect(wakes).toEqual([0, 5000, 10_000, 15_000, 20_000, 25_000]);
    for (let i = 1; i < wakes.length; i++)
      expect((wakes[i] ?? 0) - (wakes[i - 1] ?? 0)).toBeGreaterThanOrEqual(5000);
  });

  it("THEN nothing pending, or nothing new, sends nothing", async () => {
    // Act
    const idle = await watchFor(() => [], 30_000);
    const steady = await watchFor(() => ["7"], 30_000);

    // Assess
    expect(idle.wakes).toEqual([]);
    expect(steady.wakes).toEqual([0]);
    expect(steady.reads.length).toBeGreaterThan(10);
  });

  it("THEN a read that fails sends nothing and is logged once, and reading again resumes", async () => {
    // Prepare: slurmctld down from 2 s to 10 s, a new job pending when it answers again
    const script = (t: number) =>
      t >= 2000 && t < 10_000 ? new Error("slurmctld did not answer") : t < 2000 ? [] : ["1"];

    // Act
    const { wakes, log } = await watchFor(script, 20_000);

    // Assess
    expect(wakes).toEqual([10_000]);
    expect(log.filter((l) => l.msg === "cannot read the pending jobs")).toHaveLength(1);
    expect(log.filter((l) => l.msg === "pending jobs readable again")).toHaveLength(1);
  });

  it("THEN a wake that fails is tried again once per debounce, not in a loop, until it goes through", async () => {
    // Prepare: the bus refuses the first two tries
    let tries = 0;
    const wake = () => {
      tries++;
      if (tries <= 2) throw new Error("PutEvents answered 503");
    };

    // Act
    const { wakes, log } = await watchFor(() => ["1"], 30_000, { wake });

    // Assess
    expect(tries).toBe(3);
    expect(wakes).toEqual([10_000]);
    expect(log.filter((l) => String(l.msg).startsWith("wake failed"))).toHaveLength(1);
  });

  it("THEN a slow squeue stretches the interval to five times a read, so slurmctld is never kept busy", async () => {
    // Act: each read takes 1 s of a 2 s interval
    const { reads } = await watchFor(() => [], 30_000, { readMs: 1000 });

    // Assess
    expect(reads.slice(0, 4)).toEqual([0, 5000, 10_000, 15_000]);
  });
});

describe("nowscale-agent watch", () => {
  it("THEN bad usage is exit 64 naming every bad option, and nothing runs", async () => {
    // Prepare
    const err: string[] = [];
    vi.spyOn(process.stderr, "write").mockImplementation((chunk) => err.push(String(chunk)) > 0);

    // Act
    const code = await main([
      "watch",
      "--cluster-id",
      "c;reboot",
      "--event-bus",
      "bus name",
      "--region",
      "EU",
      "--interval",
      "0.1",
      "--debounce",
      "0",
    ]);
    vi.restoreAllMocks();

    // Assess
    expect(code).toBe(64);
    const text = err.join("");
    for (const option of ["--cluster-id", "--event-bus", "--region", "--interval", "--debounce"])
      expect(text).toContain(option);
  });
});
