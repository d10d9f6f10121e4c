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
 * Replay workers, started before the workload exists (startReplays): a worker's start-up (loading its
 * modules) then overlaps the main thread's reading of the config and the trace.
 */
export interface ReplayStart {
  /** The policies, as given to startReplays. */
  readonly policies: readonly PolicySpec[];
  readonly workers: readonly { lane: ReplayLane; worker: Worker }[];
  /** The lane this thread replays itself, between sending the workers their runs and awaiting them. */
  readonly local: ReplayLane | undefined;
  /** Terminates the workers (idempotent): simulateInParallel does it; a caller that fails before, too. */
  stop(): Promise<void>;
}

/**
 * Starts the workers for `policies` (replayLanes over `cores`). With one thread's worth of work, none:
 * everything replays in this thread. Otherwise a lane of one worker that is not the first (the
 * baselines' lane beside thpc and packed, on two cores) replays in this thread instead: this thread
 * would only wait meanwhile, and a worker's start-up and its copy of the workload are saved.
 */
export function startReplays(policies: readonly PolicySpec[], cores = availableParallelism()): ReplayStart {
  const lanes = replayLanes(policies, cores);
  const threads = lanes.reduce((n, lane) => n + lane.workers, 0);
  const last = lanes[lanes.length - 1];
  const local = threads > 1 && lanes.length > 1 && last?.workers === 1 ? last : undefined;
  const workers =
    threads <= 1
      ? []
      : lanes
          .filter((lane) => lane !== local)
          .flatMap((lane) =>
            Array.from({ length: lane.workers }, () => ({
              lane,
              worker: new Worker(new URL("./replay-worker.js", import.meta.url)),
            })),
          );
  let stopped: Promise<void> | undefined;
  return {
    policies,
    workers,
    local,
    stop: () => {
      stopped ??= Promise.all(workers.map(({ worker }) => worker.terminate())).then(() => undefined);
      return stopped;
    },
  };
}

/**
 * `simulateWithBound`, with the policies replayed on worker threads (one per core, at most one per
 * policy; see startReplays, whose workers it takes when given, for the policies of `options`): each
 * replay is independent and seeded alike, so the runs are the same as one after another, only sooner.
 * The workers get `config` as it is (it holds no functions). One policy, or one core: in this thread.
 */
export async function simulateInParallel(
  workload: Workload,
  config: ResolvedConfig,
  options: SimulateOptions,
  started: ReplayStart = startReplays(options.policies),
): Promise<{ bound: BoundParts; runs: PolicyRun[] }> {
  if (started.policies !== options.policies && !samePolicies(started.policies, options.policies)) {
    await started.stop();
    throw new Error("simulateInParallel: the replays were started for other policies");
  }
  if (started.workers.length === 0) return simulateWithBound(workload, config, options);
  const { policies, onProgress, capacity, ...rest } = options;
  const runs = new Array<PolicyRun | undefined>(policies.length);
  try {
    // Worked out while the workers start up (they load their modules meanwhile).
    const bound = boundOf(workload, config, options.boot);
    const runOptions = { ...rest, capacity: [...capacity] };
    // Each lane's policies, taken one at a time by its workers: a lane of one worker is sent them all
    // at once (it replays them in order), so it never waits for this thread to hand it the next.
    const queues = new Map<ReplayLane, number[]>();
    const finished = Promise.all(
      started.workers.map(
        ({ lane, worker }) =>
          new Promise<void>((resolve, reject) => {
            let queue = queues.get(lane);
            if (!queue) {
              queue = [...lane.policies];
              queues.set(lane, queue);
            }
            const todo = queue;
            let running = 0;
            const send = () => {
              const index = todo.shift();
              if (index === undefined) return;
              running++;
              worker.postMessage({
                kind: "run",
                index,
                policy: policies[index] as PolicySpec,
                bound,
                options: runOptions,
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
                running--;
                send();
                if (running === 0) resolve();
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
            if (lane.workers === 1) while (todo.length > 0) send();
            else send();
            if (running === 0) resolve();
          }),
      ),
    );
    // Kept from being reported as unhandled while this thread replays its own lane.
    finished.catch(() => undefined);
    if (started.local) {
      const local = started.local.policies.map((i) => policies[i] as PolicySpec);
      warmUp(workload, config, local, { ...rest, capacity }, bound);
      for (const index of started.local.policies) {
        const [run] = simulateWithBound(
          workload,
          config,
          { ...options, policies: [policies[index] as PolicySpec] },
          bound,
        ).runs;
        runs[index] = run;
      }
    }
    await finished;
    return { bound, runs: runs.map((r) => r as PolicyRun) };
  } finally {
    await started.stop();
  }
}

function samePolicies(a: readonly PolicySpec[], b: readonly PolicySpec[]): boolean {
  return a.length === b.length && a.every((p, i) => policyName(p) === policyName(b[i] as PolicySpec));
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
