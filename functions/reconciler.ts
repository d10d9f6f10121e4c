import { Logger } from "@aws-lambda-powertools/logger";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import { SFNClient } from "@aws-sdk/client-sfn";
import middy from "@middy/core";
import type { Context } from "aws-lambda";
import { lambdaEnv } from "../lib/aws/env.js";
import { awsControlRuntime } from "../lib/aws/runtime.js";
import { recoverStuckClusters } from "../lib/control/lifecycle-recovery.js";
import { controlLog } from "../lib/control/log.js";
import { PowertoolsMetricsSink } from "../lib/control/metrics.js";
import { reconcileAll } from "../lib/control/reconcile-all.js";
import { reconcileCluster } from "../lib/control/reconciler.js";
import { SfnWorkflowStarter } from "../lib/workflow/starter.js";

/**
 * EventBridge schedule → recover clusters stuck CREATING or DELETING (lib/control/lifecycle-recovery.ts),
 * then reconcile every RUNNING or SLEEPING cluster, a few at a time, each within a budget.
 */
const env = lambdaEnv("reconciler");
const logger = new Logger();
const metrics = new Metrics({ namespace: env.metricsNamespace });
const { store, clock, runtime } = awsControlRuntime(env);
const workflows = new SfnWorkflowStarter(
  new SFNClient({}),
  env.createStateMachineArn,
  env.deleteStateMachineArn,
);

/** Each cluster's run stops between steps after this long; the whole run ends this long before the timeout. */
const PER_CLUSTER_MS = 60_000;
const END_MARGIN_MS = 10_000;

async function reconciler(
  _event: unknown,
  context: Context,
): Promise<{ clusters: number; errors: number; deferred: number }> {
  let errors = 0;
  const log = controlLog(logger);
  // First the clusters no workflow works on any more (a failed start, an execution that died unrecorded).
  try {
    const recovered = await recoverStuckClusters({ store, clock, workflows, log });
    errors += recovered.errors.length;
    logger.info("lifecycle recovery", { ...recovered });
  } catch (error) {
    errors += 1;
    logger.error("lifecycle recovery failed", { error: error as Error });
  }
  const clusters = [
    ...(await store.listClusters({ status: "RUNNING" })),
    ...(await store.listClusters({ status: "SLEEPING" })),
  ].sort((a, b) => (a.clusterId < b.clusterId ? -1 : a.clusterId > b.clusterId ? 1 : 0));
  const sink = new PowertoolsMetricsSink(metrics);
  const started = clock.now();
  const result = await reconcileAll(
    clusters,
    async (cluster, deadline) => {
      const { provider, agent } = await runtime(cluster);
      return reconcileCluster(
        cluster.clusterId,
        { store, clock, provider, agent, metrics: sink, log, owner: context.awsRequestId },
        { deadline },
      );
    },
    {
      clock,
      perClusterMs: PER_CLUSTER_MS,
      deadline: started + context.getRemainingTimeInMillis() - END_MARGIN_MS,
      // A different starting cluster each run: those the budget leaves out go first next time.
      rotation: Math.floor(started / 60_000),
    },
  );
  for (const summary of result.done) logger.info("reconciled", { ...summary });
  for (const f of result.failed) {
    // One cluster's failure must not starve the others.
    sink.add("CycleErrors", "Count", 1);
    logger.error("reconcile failed", { ...f });
  }
  if (result.deferred.length > 0)
    logger.warn("clusters left for the next run", { clusters: result.deferred });
  return {
    clusters: clusters.length,
    errors: errors + result.failed.length,
    deferred: result.deferred.length,
  };
}

export const handler = middy(reconciler)
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics));
