import { type BootTimeSpec, describeBootTime } from "./boot-time.js";
import type { BoundParts } from "./bound.js";
import type { PolicyMetrics } from "./metrics.js";
import type { PolicyRun } from "./simulate.js";
import type { SwfTrace } from "./swf.js";
import type { Workload } from "./workload.js";

/** What `nowscale simulate --json` prints: the inputs that shaped the replay and each policy's metrics. */
export interface SimulationSummary {
  trace: {
    file: string;
    /** The trace's `Key: value` header lines. */
    header: Record<string, string>;
    records: number;
    jobs: number;
    /** Records that could not be replayed, by reason. */
    skipped: Record<string, number>;
  };
  settings: {
    config: string;
    pollSeconds: number;
    bootSeconds: string;
    seed: number;
    memPerCpuMiB: number;
    capacity: Record<string, number>;
    /** The simulation-only levers (the config's `simulation` section). */
    levers: SimLevers;
  };
  /** The clairvoyant zero-wait bound the ratios are measured against (docs/simulator.md, "The bound"). */
  bound: BoundParts;
  /** Policy name → metrics, in --compare order. */
  policies: Record<string, PolicyMetrics>;
}

export interface SimLevers {
  terminateAtDrain: boolean;
  wakeSeconds: number | null;
  placement: "fewest-free" | "busy-first";
}

export interface SummaryInput {
  traceFile: string;
  trace: SwfTrace;
  workload: Workload;
  configFile: string;
  pollSeconds: number;
  boot: BootTimeSpec;
  seed: number;
  memPerCpuMiB: number;
  capacity: ReadonlyMap<string, number>;
  runs: readonly PolicyRun[];
  bound: BoundParts;
  levers?: SimLevers;
}

export function summarize(input: SummaryInput): SimulationSummary {
  return {
    trace: {
      file: input.traceFile,
      header: input.trace.headerFields,
      records: input.trace.records.length,
      jobs: input.workload.jobs.length,
      skipped: input.workload.skipped,
    },
    settings: {
      config: input.configFile,
      pollSeconds: input.pollSeconds,
      bootSeconds: describeBootTime(input.boot),
      seed: input.seed,
      memPerCpuMiB: input.memPerCpuMiB,
      capacity: Object.fromEntries(input.capacity),
      levers: input.levers ?? { terminateAtDrain: true, wakeSeconds: null, placement: "fewest-free" },
    },
    bound: roundBound(input.bound),
    policies: Object.fromEntries(input.runs.map((r) => [r.policy, r.metrics])),
  };
}

/** The columns of the human table: header, how to print the metric. */
const COLUMNS: [string, (m: PolicyMetrics) => string][] = [
  ["done", (m) => `${m.completedJobs}/${m.jobs}`],
  ["never ran", (m) => String(m.neverStartedJobs)],
  ["mean wait", (m) => wait(m, m.meanWaitS)],
  ["p50 wait", (m) => wait(m, m.p50WaitS)],
  ["p95 wait", (m) => wait(m, m.p95WaitS)],
  ["max wait", (m) => wait(m, m.maxWaitS)],
  ["bsld", (m) => m.meanBoundedSlowdown.toFixed(2)],
  ["node-h", (m) => m.nodeHours.toFixed(0)],
  ["vCPU-h", (m) => m.vcpuHours.toFixed(0)],
  ["×bound", (m) => m.vcpuHoursToBound.toFixed(3)],
  ["cost $", (m) => (m.cost === null ? "n/a" : m.cost.toFixed(0))],
  ["cost×bound", (m) => (m.costToBound === null ? "n/a" : m.costToBound.toFixed(3))],
  ["cpu util", (m) => `${(m.cpuUtilization * 100).toFixed(1)}%`],
  ["launches", (m) => String(m.launches)],
  ["peak", (m) => String(m.peakNodes)],
  ["rounds", (m) => String(m.scaleOutRounds)],
];

/** A fixed-width table, one row per policy, for a terminal. */
export function formatTable(summary: SimulationSummary): string {
  const rows = Object.entries(summary.policies).map(([name, m]) => [name, ...COLUMNS.map(([, f]) => f(m))]);
  const header = ["policy", ...COLUMNS.map(([h]) => h)];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join("  ");
  const first = Object.values(summary.policies)[0];
  const notes = [
    `trace ${summary.trace.file}: ${summary.trace.jobs} jobs` +
      (Object.keys(summary.trace.skipped).length > 0
        ? ` (${Object.entries(summary.trace.skipped)
            .map(([r, n]) => `${n} skipped: ${r}`)
            .join(", ")})`
        : ""),
    `poll ${summary.settings.pollSeconds} s, boot ${summary.settings.bootSeconds} s, seed ${summary.settings.seed}`,
    `bound (clairvoyant, zero wait, boot ${summary.bound.bootSeconds} s): ${summary.bound.vcpuHours.toFixed(0)} vCPU-hours` +
      (summary.bound.cost === null ? "" : `, ${summary.bound.cost.toFixed(0)} USD`) +
      ` (work ${summary.bound.workHours.toFixed(0)}, rounding ${summary.bound.roundingHours.toFixed(0)}, boot ${summary.bound.bootHours.toFixed(0)}, idle ${summary.bound.idleHours.toFixed(0)})`,
    first ? `lower bound: ${first.lowerBoundNodeHours.toFixed(0)} node-hours of the largest type` : "",
  ].filter((s) => s !== "");
  const parts = Object.entries(summary.policies).map(([name, m]) => [
    name,
    ...BREAKDOWN.map(([, part, boundPart]) => {
      const b = boundPart ? (summary.bound[boundPart] as number) : 0;
      return (m.breakdown[part] - b).toFixed(0);
    }),
  ]);
  const partHeader = ["excess vCPU-h", ...BREAKDOWN.map(([h]) => h)];
  const partWidths = partHeader.map((h, i) => Math.max(h.length, ...parts.map((r) => (r[i] ?? "").length)));
  const partLine = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(partWidths[i] ?? 0) : c.padStart(partWidths[i] ?? 0))).join("  ");
  return [
    ...notes,
    "",
    line(header),
    ...rows.map(line),
    "",
    partLine(partHeader),
    ...parts.map(partLine),
  ].join("\n");
}

/** The excess over the bound, part by part: the policy's part less the bound's own. */
export const BREAKDOWN: [string, keyof PolicyMetrics["breakdown"], keyof BoundParts | undefined][] = [
  ["fragmentation", "fragmentation", "roundingHours"],
  ["boot", "boot", "bootHours"],
  ["idle before shrink", "idleBeforeShrink", "idleHours"],
  ["drain tail", "drainTail", undefined],
  ["never used", "neverUsed", undefined],
];

function roundBound(b: BoundParts): BoundParts {
  const r = (x: number) => Math.round(x * 100) / 100;
  return {
    vcpuHours: r(b.vcpuHours),
    workHours: r(b.workHours),
    roundingHours: r(b.roundingHours),
    bootHours: r(b.bootHours),
    idleHours: r(b.idleHours),
    cost: b.cost === null ? null : r(b.cost),
    bootSeconds: b.bootSeconds,
  };
}

/** A wait figure; "≥" when jobs that never started make it a lower bound. */
function wait(m: PolicyMetrics, seconds: number): string {
  return m.neverStartedJobs > 0 ? `≥${duration(seconds)}` : duration(seconds);
}

/** 95 → "95s", 4000 → "66.7m", 90000 → "25.0h". */
export function duration(seconds: number): string {
  if (seconds < 120) return `${seconds.toFixed(0)}s`;
  if (seconds < 7200) return `${(seconds / 60).toFixed(1)}m`;
  return `${(seconds / 3600).toFixed(1)}h`;
}
