import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from "aws-lambda";

/**
 * API Gateway's REST proxy integration on a node:http server: a request becomes the event the deployed
 * API Lambda receives (functions/api.ts), and the handler's result becomes the response. The local mode
 * serves the same handler this way, so what a user tries locally is what runs in the cloud.
 */
export type ProxyHandler = (event: APIGatewayProxyEvent, context: Context) => Promise<APIGatewayProxyResult>;

/** API Gateway's own limit on a request body. */
export const MAX_BODY_BYTES = 10 * 1024 * 1024;

/** Reads the body (at most MAX_BODY_BYTES; more is refused with 413 by the caller). */
export async function readBody(req: IncomingMessage): Promise<Buffer | "too-large"> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) return "too-large";
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** The principal the local mode's requests carry: whoever holds STATE_DIR/api.token, which only root reads. */
export const LOCAL_PRINCIPAL = "local:root";

/**
 * The proxy event for a request, as API Gateway builds it for a `/{proxy+}` resource. `principal` is what
 * IAM authentication would put in `requestContext.identity.userArn` (the API records it on operator events).
 */
export function toProxyEvent(
  req: IncomingMessage,
  body: Buffer,
  stage = "local",
  principal = LOCAL_PRINCIPAL,
): APIGatewayProxyEvent {
  const url = new URL(req.url ?? "/", "http://localhost");
  const headers: Record<string, string> = {};
  const multiValueHeaders: Record<string, string[]> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    const values = Array.isArray(value) ? value : [value];
    headers[name] = values.join(",");
    multiValueHeaders[name] = values;
  }
  const query: Record<string, string> = {};
  const multiQuery: Record<string, string[]> = {};
  for (const [k, v] of url.searchParams) {
    query[k] = v;
    multiQuery[k] = [...(multiQuery[k] ?? []), v];
  }
  const hasQuery = Object.keys(query).length > 0;
  const method = (req.method ?? "GET").toUpperCase();
  const text = body.length > 0 ? body.toString("utf8") : null;
  return {
    resource: "/{proxy+}",
    path: url.pathname,
    httpMethod: method,
    headers,
    multiValueHeaders,
    queryStringParameters: hasQuery ? query : null,
    multiValueQueryStringParameters: hasQuery ? multiQuery : null,
    pathParameters: { proxy: url.pathname.replace(/^\/+/, "") },
    stageVariables: null,
    body: text,
    isBase64Encoded: false,
    requestContext: {
      accountId: "000000000000",
      apiId: "local",
      authorizer: null,
      protocol: `HTTP/${req.httpVersion}`,
      httpMethod: method,
      identity: {
        accessKey: null,
        accountId: null,
        apiKey: null,
        apiKeyId: null,
        caller: null,
        clientCert: null,
        cognitoAuthenticationProvider: null,
        cognitoAuthenticationType: null,
        cognitoIdentityId: null,
        cognitoIdentityPoolId: null,
        principalOrgId: null,
        sourceIp: req.socket.remoteAddress ?? "127.0.0.1",
        user: null,
        userAgent: headers["user-agent"] ?? null,
        userArn: principal,
      },
      path: `/${stage}${url.pathname}`,
      stage,
      requestId: randomUUID(),
      requestTimeEpoch: Date.now(),
      resourceId: "local",
      resourcePath: "/{proxy+}",
    },
  };
}

/** A Lambda context good enough for middy and Powertools (deadline 29 s, API Gateway's limit). */
export function localContext(functionName = "nowscale-api"): Context {
  const deadline = Date.now() + 29_000;
  const requestId = randomUUID();
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: "$LATEST",
    invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:${functionName}`,
    memoryLimitInMB: "512",
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: "local",
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** Writes the handler's result as the HTTP response (base64 bodies decoded, multi-value headers kept). */
export function writeProxyResult(res: ServerResponse, result: APIGatewayProxyResult): void {
  for (const [name, value] of Object.entries(result.headers ?? {})) res.setHeader(name, String(value));
  for (const [name, values] of Object.entries(result.multiValueHeaders ?? {}))
    res.setHeader(name, values.map(String));
  res.statusCode = result.statusCode;
  res.end(result.isBase64Encoded === true ? Buffer.from(result.body, "base64") : result.body);
}

/**
 * Serves one request through `handler`. A handler that throws is a 502 with a generic message, as API
 * Gateway answers for a failed Lambda (the error goes to `onError`, never to the client).
 */
export async function serveThroughHandler(
  req: IncomingMessage,
  res: ServerResponse,
  handler: ProxyHandler,
  onError: (error: unknown) => void = () => undefined,
): Promise<void> {
  const body = await readBody(req);
  if (body === "too-large") {
    sendJson(res, 413, { message: "Request Too Long" });
    return;
  }
  let result: APIGatewayProxyResult;
  try {
    result = await handler(toProxyEvent(req, body), localContext());
  } catch (error) {
    onError(error);
    sendJson(res, 502, { message: "Internal server error" });
    return;
  }
  writeProxyResult(res, result);
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  res.statusCode = status;
  res.setHeader("content-type", "application/json");
  res.end(`${JSON.stringify(value)}\n`);
}
