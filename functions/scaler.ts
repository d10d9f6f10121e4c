import { Logger } from "@aws-lambda-powertools/logger";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import middy from "@middy/core";
import type { Context } from "aws-lambda";
import { lambdaEnv } from "../lib/aws/env.js";
import { awsControlRuntime } from "../lib/aws/runtime.js";
import { computeUserData } from "../lib/control/compute-user-data.js";
import { controlLog } from "../lib/control/log.js";
import { PowertoolsMetricsSink } from "../lib/control/metrics.js";
import { type CycleSummary, runScaleCycle } from "../lib/control/scale-cycle.js";
import { acceptWake, WakeWatch } from "../lib/control/wake.js";
import { SIMPLE_NAME } from "../lib/core/names.js";

/**
 * One cluster's scale cycle: `{"clusterId": "..."}` from the fan-out every minute, or
 * `{"clusterId": "...", "wake": true}` from the wake rule (the master's agent saw new pending jobs;
 * lib/control/wake.ts). A wake is a hint: dropped unless it names a RUNNING cluster outside the debounce,
 * and then it is one ordinary cycle, or, when a cycle already runs for the cluster, that cycle's next poll
 * comes at once (it watches the wake lease between polls).
 */
const env = lambdaEnv("scaler");
const logger = new Logger();
const metrics = new Metrics({ namespace: env.metricsNamespace });
const { store, clock, runtime } = awsControlRuntime(env);
/** How many times (one second apart) a woken invocation tries to take over a cycle that is ending. */
const WAKE_TAKEOVER_TRIES = 3;

async function scaler(
  event: { clusterId?: unknown; wake?: unknown },
  context: Context,
): Promise<CycleSummary | { skipped: string }> {
  const clusterId = event.clusterId;
  const wake = event.wake === true;
  if (wake) {
    const verdict = await acceptWake(store, clock, { clusterId }, context.awsRequestId);
    logger.info("wake", { ...verdict });
    if (!verdict.honoured) return { skipped: `wake ${verdict.reason}` };
  }
  if (typeof clusterId !== "string" || !SIMPLE_NAME.test(clusterId)) return { skipped: "bad event" };
  logger.appendKeys({ clusterId });
  metrics.addDimension("ClusterId", clusterId);
  const cluster = await store.getCluster(clusterId);
  if (cluster === undefined || cluster.status !== "RUNNING") return { skipped: "not running" };
  let ports: Awaited<ReturnType<typeof runtime>>;
  try {
    ports = await runtime(cluster);
  } catch (error) {
    // No reachable agent yet, or a cloud not wired: retrying the invocation would not help.
    logger.warn("cluster cannot be scaled", { error: error as Error });
    metrics.addMetric("CycleErrors", MetricUnit.Count, 1);
    return { skipped: (error as Error).message };
  }
  const { provider, agent } = ports;
  // Every cycle, scheduled or woken, polls early when a wake comes between its polls.
  const watch = await WakeWatch.start(store, clock, clusterId);
  const cycle = () =>
    runScaleCycle(
      clusterId,
      {
        store,
        clock,
        provider,
        agent,
        metrics: new PowertoolsMetricsSink(metrics, { ClusterId: clusterId }),
        log: controlLog(logger),
        owner: context.awsRequestId,
        cluster,
        userData: computeUserData,
        betweenPolls: watch.betweenPolls,
      },
      {
        // The last poll must end before the Lambda does: leave 40 s for a launch walk and the records.
        windowMs: Math.min(env.scalerWindowMs, Math.max(0, context.getRemainingTimeInMillis() - 40_000)),
        pollMs: env.scalerPollMs,
      },
    );
  let summary = await cycle();
  // A woken invocation finding a cycle under way leaves the poll to it (it sees the wake within a
  // second), unless that cycle was just ending: then the lease comes free within moments and this takes over.
  for (
    let retry = 0;
    wake && summary.outcome === "lease-held-elsewhere" && retry < WAKE_TAKEOVER_TRIES;
    retry++
  ) {
    await clock.sleep(1000);
    summary = await cycle();
  }
  logger.info("cycle done", { ...summary });
  return summary;
}

export const handler = middy(scaler)
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics));
