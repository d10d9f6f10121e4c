import { Logger } from "@aws-lambda-powertools/logger";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import { SFNClient } from "@aws-sdk/client-sfn";
import middy from "@middy/core";
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from "aws-lambda";
import { handleApiRequest } from "../lib/control/api/routes.js";
import { SfnWorkflowStarter } from "../lib/control/api/workflows.js";
import { awsControlRuntime } from "../lib/control/aws-runtime.js";
import { computeUserData } from "../lib/control/compute-user-data.js";
import { CONTROL_ENV, METRICS_NAMESPACE, requireEnv } from "../lib/control/env.js";
import { PowertoolsMetricsSink } from "../lib/control/metrics.js";

/** Every REST route (API Gateway proxy integration); lib/control/api/routes.ts does the work. */
const logger = new Logger();
const metrics = new Metrics({ namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? METRICS_NAMESPACE });
const { store, clock, runtime } = awsControlRuntime();
const workflows = new SfnWorkflowStarter(
  new SFNClient({}),
  requireEnv(CONTROL_ENV.createStateMachineArn),
  requireEnv(CONTROL_ENV.deleteStateMachineArn),
);
const deps = {
  store,
  clock,
  runtime,
  workflows,
  userData: computeUserData,
  metrics: new PowertoolsMetricsSink(metrics),
};

async function api(event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> {
  try {
    const body =
      event.body === null || !event.isBase64Encoded
        ? event.body
        : Buffer.from(event.body, "base64").toString("utf8");
    return await handleApiRequest(deps, {
      method: event.httpMethod,
      path: event.path,
      headers: event.headers ?? {},
      query: event.queryStringParameters ?? {},
      body,
    });
  } catch (error) {
    logger.error("request failed", { error: error as Error });
    return {
      statusCode: 500,
      headers: { "content-type": "application/json" },
      body: '{"error":"internal error"}',
    };
  }
}

export const handler = middy(api)
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics));
