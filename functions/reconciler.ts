import { Logger } from "@aws-lambda-powertools/logger";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import middy from "@middy/core";
import type { Context } from "aws-lambda";
import { awsControlRuntime } from "../lib/control/aws-runtime.js";
import { METRICS_NAMESPACE } from "../lib/control/env.js";
import { controlLog } from "../lib/control/log.js";
import { PowertoolsMetricsSink } from "../lib/control/metrics.js";
import { type ReconcileSummary, reconcileCluster } from "../lib/control/reconciler.js";

/** EventBridge schedule → reconcile every RUNNING or SLEEPING cluster in turn. */
const logger = new Logger();
const metrics = new Metrics({ namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? METRICS_NAMESPACE });
const { store, clock, runtime } = awsControlRuntime();

async function reconciler(_event: unknown, context: Context): Promise<{ clusters: number; errors: number }> {
  const clusters = [
    ...(await store.listClusters({ status: "RUNNING" })),
    ...(await store.listClusters({ status: "SLEEPING" })),
  ];
  const sink = new PowertoolsMetricsSink(metrics);
  let errors = 0;
  for (const cluster of clusters) {
    try {
      const { provider, agent } = await runtime(cluster);
      const summary: ReconcileSummary = await reconcileCluster(cluster.clusterId, {
        store,
        clock,
        provider,
        agent,
        metrics: sink,
        log: controlLog(logger),
        owner: context.awsRequestId,
      });
      logger.info("reconciled", { ...summary });
    } catch (error) {
      // One cluster's failure must not starve the others.
      errors += 1;
      sink.add("CycleErrors", "Count", 1);
      logger.error("reconcile failed", { clusterId: cluster.clusterId, error: error as Error });
    }
  }
  return { clusters: clusters.length, errors };
}

export const handler = middy(reconciler)
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics));
