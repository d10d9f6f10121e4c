import { Logger } from "@aws-lambda-powertools/logger";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { LambdaClient } from "@aws-sdk/client-lambda";
import middy from "@middy/core";
import { lambdaEnv } from "../lib/aws/env.js";
import { fanOutScaler } from "../lib/aws/fanout.js";
import { DynamoStateStore, storeClientConfig } from "../lib/state/dynamo-store.js";

/** EventBridge schedule → one async scaler invocation per RUNNING cluster. */
const env = lambdaEnv("scalerFanout");
const logger = new Logger();
// Only the store: the fan-out never reaches a cluster's cloud or agent.
const store = new DynamoStateStore({
  client: new DynamoDBClient(storeClientConfig(env.region)),
  tables: env.tables,
});
const lambda = new LambdaClient({});
const scaler = env.scalerFunctionName;

async function scalerFanout(): Promise<{ invoked: number; failed: number }> {
  const { invoked, failed } = await fanOutScaler(store, lambda, scaler);
  logger.info("scaler invoked", { clusters: invoked });
  for (const f of failed) logger.error("scaler invoke failed", { ...f });
  return { invoked: invoked.length, failed: failed.length };
}

export const handler = middy(scalerFanout).use(injectLambdaContext(logger, { resetKeys: true }));
