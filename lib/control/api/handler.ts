import type { Logger } from "@aws-lambda-powertools/logger";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import type { Metrics } from "@aws-lambda-powertools/metrics";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import middy from "@middy/core";
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from "aws-lambda";
import { type ApiDeps, handleApiRequest } from "./routes.js";

/**
 * The API Lambda's handler (API Gateway proxy integration → routes.ts) for any dependencies:
 * functions/api.ts builds it with the AWS ones, the local mode (lib/local/api-server.ts) with its own,
 * so both serve requests through the same code. A failure inside is a 500 with a generic body; the
 * error goes to the logger only. Metrics are flushed per request when `metrics` is given.
 */
export function createApiHandler(
  deps: ApiDeps,
  logger: Logger,
  metrics?: Metrics,
): (event: APIGatewayProxyEvent, context: Context) => Promise<APIGatewayProxyResult> {
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
        ...principalField(event),
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
  const handler = middy(api).use(injectLambdaContext(logger, { resetKeys: true }));
  return metrics === undefined ? handler : handler.use(logMetrics(metrics));
}

/**
 * Who called: the IAM principal API Gateway authenticated the SigV4 signature as (AWS_IAM authorization
 * sets `requestContext.identity.userArn`, e.g. arn:aws:sts::123456789012:assumed-role/Admin/alice; `caller`
 * when there is no ARN). The local mode sets its token's principal there (lib/local/api-gateway.ts).
 * Kept printable and bounded: it goes into events and tables.
 */
export function principalField(event: APIGatewayProxyEvent): { principal?: string } {
  const identity = event.requestContext?.identity;
  const value = identity?.userArn ?? identity?.caller ?? undefined;
  if (typeof value !== "string" || value === "") return {};
  return { principal: value.replace(/[^\x20-\x7e]/g, "?").slice(0, 256) };
}
