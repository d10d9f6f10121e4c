import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import type { ResolvedConfig } from "../core/config.js";
import type { BoundParts } from "./bound.js";
import {
  boundOf,
  type PolicyRun,
  type PolicySpec,
  policyName,
  type SimulateOptions,
  simulateWithBound,
} from "./simulate.js";
import { Timeline } from "./timeline.js";
import type { SimJob, Workload } from "./workload.js";

/** What the CLI sends a replay worker (replay-worker.ts). */
export type ReplayRequest =
  | {
      kind: "init";
      config: ResolvedConfig;
      jobs: SimJob[];
      /** The policies this worker may be asked to replay: it warms up for them first (see warmUp). */
      policies: PolicySpec[];
    }
  | {
      kind: "run";
      index: number;
      policy: PolicySpec;
      /** The workload's bound, worked out once in the main thread. */
      bound: BoundParts;
      options: Omit<SimulateOptions, "policies" | "onProgress" | "capacity"> & {
        capacity: [string, number][];
      };
    };

/** What a replay worker answers. */
export type ReplayReply =
  | { kind: "progress"; index: number; fraction: number }
  | { kind: "done"; index: number; run: Omit<PolicyRun, "timeline"> & { timeline: object | undefined } };

/**
 * `simulateWithBound`, with the policies replayed on worker threads (one per core, at most one per
 * policy): each replay is independent and seeded alike, so the runs are the same as one after
 * another, only sooner. The workers get `config` as it is (it holds no functions). One policy, or one
 * core: in this thread.
 */
export async function simulateInParallel(
  workload: Workload,
  config: ResolvedConfig,
  options: SimulateOptions,
): Promise<{ bound: BoundParts; runs: PolicyRun[] }> {
  const lanes = replayLanes(options.policies, availableParallelism());
  const threads = lanes.reduce((n, lane) => n + lane.workers, 0);
  if (threads <= 1) return simulateWithBound(workload, config, options);
  const { policies, onProgress, capacity, ...rest } = options;
  const runs = new Array<PolicyRun | undefined>(policies.length);
  const workers = lanes.flatMap((lane) =>
    Array.from({ length: lane.workers }, () => ({
      lane,
      worker: new Worker(new URL("./replay-worker.js", import.meta.url)),
    })),
  );
  try {
    // Worked out while the workers start up (they load their modules meanwhile).
    const bound = boundOf(workload, config, options.boot);
    await Promise.all(
      workers.map(
        ({ lane, worker }) =>
          new Promise<void>((resolve, reject) => {
            const send = () => {
              const index = lane.policies.shift();
              if (index === undefined) return resolve();
              worker.postMessage({
                kind: "run",
                index,
                policy: policies[index] as PolicySpec,
                bound,
                options: { ...rest, capacity: [...capacity] },
              } satisfies ReplayRequest);
            };
            worker.on("message", (reply: ReplayReply) => {
              const policy = policies[reply.index] as PolicySpec;
              if (reply.kind === "progress") onProgress?.(policyName(policy), reply.fraction);
              else {
                const timeline = reply.run.timeline
                  ? Object.assign(new Timeline(), reply.run.timeline)
                  : undefined;
                runs[reply.index] = { ...reply.run, timeline };
                send();
              }
            });
            worker.on("error", reject);
            worker.on("exit", (code) => {
              if (code !== 0) reject(new Error(`replay worker stopped with code ${code}`));
            });
            worker.postMessage({
              kind: "init",
              config,
              jobs: workload.jobs,
              policies: lane.policies.map((i) => policies[i] as PolicySpec),
            } satisfies ReplayRequest);
            send();
          }),
      ),
    );
    return { bound, runs: runs.map((r) => r as PolicyRun) };
  } finally {
    await Promise.all(workers.map(({ worker }) => worker.terminate()));
  }
}

/** How many of the trace's first jobs the warm-up replays, and how far it moves them. */
const WARM_UP_JOBS = 64;
const WARM_UP_SHIFT_MS = 2 ** 32;

/**
 * Short replays whose results are thrown away, one per kind of `policies`, before a worker's first
 * replay. V8 keeps a number field, and the arithmetic on it, as a small integer until a value outgrows
 * 2^31; simulated ms do 24.8 days into a trace, and then the node, job and event objects change shape
 * and most of the optimized code is thrown away, mid-replay. Replaying the trace's first jobs moved
 * past that point makes times doubles from the start, and every policy's calls are seen before any
 * code is optimized (together, about 15% less CPU for the Lublin thpc and packed replays). It changes
 * no result: replays share no state.
 */
export function warmUp(
  workload: Workload,
  config: ResolvedConfig,
  policies: readonly PolicySpec[],
  options: Omit<SimulateOptions, "policies" | "onProgress">,
  bound: BoundParts,
): void {
  // Structured clones, like the jobs a worker gets, so the warm-up sees objects of their shape.
  const jobs = structuredClone(workload.jobs.slice(0, WARM_UP_JOBS));
  for (const job of jobs) job.submitMs += WARM_UP_SHIFT_MS;
  const kinds = new Map(policies.map((p) => [p.kind, p]));
  for (const policy of kinds.values()) {
    simulateWithBound(
      { jobs, skipped: {} },
      config,
      { ...options, policies: [policy], timeline: false },
      bound,
    );
  }
}

/** Policies (indices, in order) that a set of workers take one at a time, each the next when free. */
export interface ReplayLane {
  policies: number[];
  workers: number;
}

/**
 * How the policies are spread over at most `cores` workers. thpc and packed run the same scaling core,
 * whose JIT warm-up costs each worker more than a warm replay: when other policies (the baselines)
 * can keep the other workers busy meanwhile, thpc and packed go one after the other on one worker, so
 * the warm-up is paid once. Otherwise every worker takes the next policy when free.
 */
export function replayLanes(policies: readonly PolicySpec[], cores: number): ReplayLane[] {
  const isCore = (p: PolicySpec) => p.kind === "thpc" || p.kind === "packed";
  const core = policies.flatMap((p, i) => (isCore(p) ? [i] : []));
  const others = policies.flatMap((p, i) => (isCore(p) ? [] : [i]));
  if (cores < 2 || core.length < 2 || others.length === 0) {
    return [{ policies: policies.map((_, i) => i), workers: Math.max(1, Math.min(policies.length, cores)) }];
  }
  return [
    { policies: core, workers: 1 },
    { policies: others, workers: Math.min(others.length, cores - 1) },
  ];
}
