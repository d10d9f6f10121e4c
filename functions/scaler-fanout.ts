import { Logger } from "@aws-lambda-powertools/logger";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { LambdaClient } from "@aws-sdk/client-lambda";
import middy from "@middy/core";
import { CONTROL_ENV, requireEnv } from "../lib/aws/control-env.js";
import { fanOutScaler } from "../lib/aws/fanout.js";
import { awsControlRuntime } from "../lib/aws/runtime.js";

/** EventBridge schedule → one async scaler invocation per RUNNING cluster. */
const logger = new Logger();
const { store } = awsControlRuntime();
const lambda = new LambdaClient({});
const scaler = requireEnv(CONTROL_ENV.scalerFunctionName);

async function scalerFanout(): Promise<{ invoked: number; failed: number }> {
  const { invoked, failed } = await fanOutScaler(store, lambda, scaler);
  logger.info("scaler invoked", { clusters: invoked });
  for (const f of failed) logger.error("scaler invoke failed", { ...f });
  return { invoked: invoked.length, failed: failed.length };
}

export const handler = middy(scalerFanout).use(injectLambdaContext(logger, { resetKeys: true }));
