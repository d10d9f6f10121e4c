import { Logger } from "@aws-lambda-powertools/logger";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import { SFNClient } from "@aws-sdk/client-sfn";
import middy from "@middy/core";
import type { Context } from "aws-lambda";
import { SfnWorkflowStarter } from "../lib/control/api/workflows.js";
import { awsControlRuntime } from "../lib/control/aws-runtime.js";
import { CONTROL_ENV, METRICS_NAMESPACE, requireEnv } from "../lib/control/env.js";
import { recoverStuckClusters } from "../lib/control/lifecycle-recovery.js";
import { controlLog } from "../lib/control/log.js";
import { PowertoolsMetricsSink } from "../lib/control/metrics.js";
import { type ReconcileSummary, reconcileCluster } from "../lib/control/reconciler.js";

/**
 * EventBridge schedule → recover clusters stuck CREATING or DELETING (lib/control/lifecycle-recovery.ts),
 * then reconcile every RUNNING or SLEEPING cluster in turn.
 */
const logger = new Logger();
const metrics = new Metrics({ namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? METRICS_NAMESPACE });
const { store, clock, runtime } = awsControlRuntime();
const workflows = new SfnWorkflowStarter(
  new SFNClient({}),
  requireEnv(CONTROL_ENV.createStateMachineArn),
  requireEnv(CONTROL_ENV.deleteStateMachineArn),
);

async function reconciler(_event: unknown, context: Context): Promise<{ clusters: number; errors: number }> {
  let errors = 0;
  // First the clusters no workflow works on any more (a failed start, an execution that died unrecorded).
  try {
    const recovered = await recoverStuckClusters({ store, clock, workflows, log: controlLog(logger) });
    errors += recovered.errors.length;
    logger.info("lifecycle recovery", { ...recovered });
  } catch (error) {
    errors += 1;
    logger.error("lifecycle recovery failed", { error: error as Error });
  }
  const clusters = [
    ...(await store.listClusters({ status: "RUNNING" })),
    ...(await store.listClusters({ status: "SLEEPING" })),
  ];
  const sink = new PowertoolsMetricsSink(metrics);
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
