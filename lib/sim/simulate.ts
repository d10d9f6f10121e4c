import type { ResolvedConfig } from "../core/config.js";
import { type BootTimeSpec, bootSampler } from "./boot-time.js";
import { type BoundParts, clairvoyantBound, shortestBootSeconds } from "./bound.js";
import { SimCluster } from "./cluster.js";
import { type ReplaySpan, replay } from "./engine.js";
import { computeMetrics, type PolicyMetrics, sortedWaits } from "./metrics.js";
import { PerJobScaler } from "./per-job.js";
import { CoreScaler, type Scaler, StaticScaler } from "./scalers.js";
import type { Timeline } from "./timeline.js";
import type { Workload } from "./workload.js";

/** A policy to replay: the core's two policies, or one of the baselines. */
export type PolicySpec =
  | { kind: "thpc" }
  | { kind: "packed" }
  | { kind: "static"; nodes: number }
  | { kind: "per-job" };

export function policyName(spec: PolicySpec): string {
  return spec.kind === "static" ? `static:${spec.nodes}` : spec.kind;
}

/** Parses `thpc,packed,static:32,per-job`; returns a message for a UsageError when a name is unknown. */
export function parsePolicies(text: string): PolicySpec[] | string {
  const specs: PolicySpec[] = [];
  for (const raw of text.split(",")) {
    const name = raw.trim();
    const stat = /^static:(\d+)$/.exec(name);
    if (name === "thpc" || name === "packed" || name === "per-job") specs.push({ kind: name });
    else if (stat && Number(stat[1]) >= 1 && Number(stat[1]) <= 100_000)
      specs.push({ kind: "static", nodes: Number(stat[1]) });
    else
      return `unknown policy "${name}" in --compare: use thpc, packed, static:N (N ≥ 1 nodes) or per-job, separated by commas`;
  }
  const names = specs.map(policyName);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) return `--compare lists ${dup} twice`;
  return specs;
}

export interface SimulateOptions {
  policies: readonly PolicySpec[];
  pollSeconds: number;
  boot: BootTimeSpec;
  /** Seeds the boot-time draws; each policy's replay starts from the same seed. */
  seed: number;
  /** Most live instances per `type@zone`. */
  capacity: ReadonlyMap<string, number>;
  /** Record cluster size over time (for the HTML report). */
  timeline: boolean;
  /** Progress of one policy's replay, 0..1 of the trace's arrival span. */
  onProgress?: (policy: string, fraction: number) => void;
  /** Levers of the `simulation` section (sim-config.ts). terminateAtDrain: @default true, as deployed. */
  terminateAtDrain?: boolean;
  wakeSeconds?: number;
  placement?: "fewest-free" | "busy-first";
}

export interface PolicyRun {
  policy: string;
  metrics: PolicyMetrics;
  /** Waits of every job (s), ascending; a job that never started counts up to the replay's end. */
  waits: Float64Array;
  span: ReplaySpan;
  timeline: Timeline | undefined;
}

/**
 * Replays the workload once per policy, each from the same seed, and measures it. Deterministic: the
 * same workload, config and options give the same runs.
 */
export function simulate(workload: Workload, config: ResolvedConfig, options: SimulateOptions): PolicyRun[] {
  return simulateWithBound(workload, config, options).runs;
}

/** The clairvoyant zero-wait bound of the workload (docs/simulator.md, "The bound"). */
export function boundOf(workload: Workload, config: ResolvedConfig, boot: BootTimeSpec): BoundParts {
  return clairvoyantBound(workload.jobs, config, shortestBootSeconds(boot));
}

/**
 * `simulate`, and the bound every run's ratios are measured against. `bound` is boundOf(workload,
 * config, options.boot), passed in when already known (replay workers get the main thread's).
 */
export function simulateWithBound(
  workload: Workload,
  config: ResolvedConfig,
  options: SimulateOptions,
  bound: BoundParts = boundOf(workload, config, options.boot),
): { bound: BoundParts; runs: PolicyRun[] } {
  const pollMs = Math.round(options.pollSeconds * 1000);
  const first = workload.jobs[0]?.submitMs ?? 0;
  const last = workload.jobs[workload.jobs.length - 1]?.submitMs ?? 0;
  const runs = options.policies.map((spec) => {
    const name = policyName(spec);
    const cluster = new SimCluster(
      workload.jobs,
      config,
      options.capacity,
      bootSampler(options.boot, options.seed),
      options.timeline,
    );
    cluster.busyFirst = options.placement === "busy-first";
    const onProgress = options.onProgress;
    const span = replay(cluster, scalerFor(spec, config, options), {
      pollMs,
      ...(options.wakeSeconds !== undefined && (spec.kind === "thpc" || spec.kind === "packed")
        ? { wakeMs: (config.expansionBusyTime + options.wakeSeconds) * 1000 }
        : {}),
      // Long enough for every idle node to shrink: its idle time, and a warm headroom's window.
      stallLimitMs:
        (config.shrinkIdleTime +
          config.expansionBusyTime +
          (config.headroomSeconds > 0 ? config.headroomWindow : 0)) *
          1000 +
        10 * pollMs,
      ...(onProgress === undefined
        ? {}
        : {
            onProgress: (now: number) =>
              onProgress(name, last > first ? Math.min(1, (now - first) / (last - first)) : 1),
          }),
    });
    onProgress?.(name, 1);
    const waits = sortedWaits(cluster, span.endMs);
    return {
      policy: name,
      metrics: computeMetrics(cluster, span, waits, bound),
      waits,
      span,
      timeline: cluster.timeline,
    };
  });
  return { bound, runs };
}

function scalerFor(spec: PolicySpec, config: ResolvedConfig, options: SimulateOptions): Scaler {
  switch (spec.kind) {
    case "thpc":
    case "packed":
      return new CoreScaler({ ...config, policy: spec.kind }, options.terminateAtDrain ?? true);
    case "static":
      return new StaticScaler(config, spec.nodes);
    case "per-job":
      return new PerJobScaler(config);
  }
}
