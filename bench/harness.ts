/**
 * A tiny benchmark harness. Figures are reported next to a baseline measured in the same run,
 * because this machine is noisy: a ratio means more than a millisecond count.
 */

export interface BenchRow {
  /** What was measured, e.g. "plan 100k pending jobs (thpc)". */
  name: string;
  /** Median wall time of the measured runs, ms. */
  ms: number;
  /** Fastest of the measured runs, ms: what the machine does when nothing else runs. */
  minMs?: number;
  /** One of the speed targets: printed again, together, at the end of `npm run bench`. */
  headline?: boolean;
  /** Heap growth attributed to the work, MiB (measured after a forced GC), when meaningful. */
  heapMiB?: number;
  /** Extra figures (sizes, counts, ratios). */
  extra?: Record<string, number | string>;
  /** Target, for the summary line: ok when ms <= targetMs. */
  targetMs?: number;
  /** A target that is not a time (a ratio, a wait): what it is, and whether this run met it. */
  goal?: { text: string; met: boolean };
}

export interface BenchModule {
  title: string;
  run(): Promise<BenchRow[]>;
}

export function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

export function heapUsedMiB(): number {
  gc();
  return process.memoryUsage().heapUsed / (1024 * 1024);
}

/** Runs `fn` `warmup` times unmeasured, then `runs` times, and returns the median ms. */
export async function timeMedian(
  fn: () => unknown | Promise<unknown>,
  runs = 5,
  warmup = 1,
): Promise<number> {
  return (await timeRuns(fn, runs, warmup)).median;
}

/** Like timeMedian, with the fastest run too. */
export async function timeRuns(
  fn: () => unknown | Promise<unknown>,
  runs = 5,
  warmup = 1,
): Promise<{ median: number; min: number }> {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await fn();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return { median: times[Math.floor(times.length / 2)] ?? Number.NaN, min: times[0] ?? Number.NaN };
}

/** A fixed CPU-bound loop: the same-run baseline the other figures are divided by. */
export function baselineWork(): number {
  let x = 0;
  for (let i = 0; i < 20_000_000; i++) x = (x + i * 2654435761) % 1_000_003;
  return x;
}
