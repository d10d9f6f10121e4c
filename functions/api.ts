import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { SFNClient } from "@aws-sdk/client-sfn";
import { CONTROL_ENV, METRICS_NAMESPACE, requireEnv } from "../lib/aws/control-env.js";
import { awsControlRuntime } from "../lib/aws/runtime.js";
import { createApiHandler } from "../lib/control/api/handler.js";
import { computeUserData } from "../lib/control/compute-user-data.js";
import { PowertoolsMetricsSink } from "../lib/control/metrics.js";
import { SfnWorkflowStarter } from "../lib/workflow/starter.js";

/** Every REST route (API Gateway proxy integration); lib/control/api/routes.ts does the work. */
const logger = new Logger();
const metrics = new Metrics({ namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? METRICS_NAMESPACE });
const { store, clock, runtime, attach } = awsControlRuntime();
const workflows = new SfnWorkflowStarter(
  new SFNClient({}),
  requireEnv(CONTROL_ENV.createStateMachineArn),
  requireEnv(CONTROL_ENV.deleteStateMachineArn),
);
const deps = {
  store,
  clock,
  runtime,
  attach,
  workflows,
  userData: computeUserData,
  metrics: new PowertoolsMetricsSink(metrics),
  // Clusters are made in the stack's own region (the workflow checks it again).
  region: requireEnv("AWS_REGION"),
};

export const handler = createApiHandler(deps, logger, metrics);
