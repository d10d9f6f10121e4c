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
  | { kind: "init"; config: ResolvedConfig; jobs: SimJob[] }
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
  const threads = Math.min(options.policies.length, availableParallelism());
  if (threads <= 1) return simulateWithBound(workload, config, options);
  const { policies, onProgress, capacity, ...rest } = options;
  const runs = new Array<PolicyRun | undefined>(policies.length);
  const workers = Array.from(
    { length: threads },
    () => new Worker(new URL("./replay-worker.js", import.meta.url)),
  );
  let nextPolicy = 0;
  try {
    // Worked out while the workers start up (they load their modules meanwhile).
    const bound = boundOf(workload, config, options.boot);
    await Promise.all(
      workers.map(
        (worker) =>
          new Promise<void>((resolve, reject) => {
            const send = () => {
              if (nextPolicy >= policies.length) return resolve();
              const index = nextPolicy++;
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
            worker.postMessage({ kind: "init", config, jobs: workload.jobs } satisfies ReplayRequest);
            send();
          }),
      ),
    );
    return { bound, runs: runs.map((r) => r as PolicyRun) };
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
