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
import { SIMPLE_NAME } from "../lib/core/names.js";

/** One cluster's scale cycle: `{"clusterId": "..."}` from the fan-out. */
const env = lambdaEnv("scaler");
const logger = new Logger();
const metrics = new Metrics({ namespace: env.metricsNamespace });
const { store, clock, runtime } = awsControlRuntime(env);

async function scaler(
  event: { clusterId?: unknown },
  context: Context,
): Promise<CycleSummary | { skipped: string }> {
  const clusterId = event.clusterId;
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
  const summary = await runScaleCycle(
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
    },
    {
      // The last poll must end before the Lambda does: leave 40 s for a launch walk and the records.
      windowMs: Math.min(env.scalerWindowMs, Math.max(0, context.getRemainingTimeInMillis() - 40_000)),
      pollMs: env.scalerPollMs,
    },
  );
  logger.info("cycle done", { ...summary });
  return summary;
}

export const handler = middy(scaler)
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics));
