import { parentPort } from "node:worker_threads";
import type { ResolvedConfig } from "../core/config.js";
import type { InstanceTypeInfo } from "../core/model.js";
import { emptyRecord } from "../core/own.js";
import { type ReplayReply, type ReplayRequest, warmUp } from "./parallel.js";
import { type PolicySpec, simulateWithBound } from "./simulate.js";
import type { Workload } from "./workload.js";

/**
 * A worker thread that replays policies for `simulateInParallel`: first an "init" message with the
 * resolved config and the workload, then one "run" message per policy; each answers with the run (its
 * waits transferred, not copied) and reports progress on the way. It loads no validation (zod): the
 * main thread has validated the config, which saves each worker that start-up.
 */
let config: ResolvedConfig | undefined;
let workload: Workload | undefined;
/** The policies to warm up for before the first replay (see warmUp); emptied once done. */
let toWarmUp: PolicySpec[] = [];

parentPort?.on("message", (message: ReplayRequest) => {
  const port = parentPort;
  if (!port) return;
  if (message.kind === "init") {
    // The structured clone keeps shared objects shared (an entry's shape is its catalog entry) but
    // gives the catalog a prototype: without one again, as resolveConfig made it.
    const catalog = Object.assign(emptyRecord<InstanceTypeInfo>(), message.config.catalog);
    config = { ...message.config, catalog };
    workload = { jobs: message.jobs, skipped: {} };
    toWarmUp = message.policies;
    return;
  }
  if (!config || !workload) throw new Error("replay worker: run before init");
  const capacity = new Map(message.options.capacity);
  if (toWarmUp.length > 0) {
    warmUp(workload, config, toWarmUp, { ...message.options, capacity }, message.bound);
    toWarmUp = [];
  }
  const [run] = simulateWithBound(
    workload,
    config,
    {
      ...message.options,
      capacity,
      policies: [message.policy],
      onProgress: (_policy, fraction) =>
        port.postMessage({ kind: "progress", index: message.index, fraction } satisfies ReplayReply),
    },
    message.bound,
  ).runs;
  if (!run) throw new Error("replay worker: no run");
  const reply: ReplayReply = {
    kind: "done",
    index: message.index,
    run: { ...run, timeline: run.timeline ? { ...run.timeline } : undefined },
  };
  port.postMessage(reply, [run.waits.buffer as ArrayBuffer]);
});
