import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { APIGatewayProxyEvent } from "aws-lambda";
import { afterEach, describe, expect, it } from "vitest";
import { type ProxyHandler, serveThroughHandler } from "../../../lib/local/api-gateway.js";

/** API Gateway's REST proxy integration on node:http: the event a handler gets, and its answer back. */
describe("serveThroughHandler", () => {
  let server: Server | undefined;

  afterEach(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  });

  async function serve(handler: ProxyHandler, onError?: (e: unknown) => void): Promise<string> {
    server = createServer((req, res) => {
      void serveThroughHandler(req, res, handler, onError);
    });
    await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  it("builds the proxy event and writes the handler's result", async () => {
    // Prepare
    let seen: APIGatewayProxyEvent | undefined;
    const base = await serve(async (event, context) => {
      seen = event;
      expect(context.getRemainingTimeInMillis()).toBeGreaterThan(0);
      return {
        statusCode: 201,
        headers: { "content-type": "application/json", "x-one": "1" },
        body: Buffer.from('{"ok":true}').toString("base64"),
        isBase64Encoded: true,
      };
    });

    // Act
    const res = await fetch(`${base}/clusters/c-1/events?limit=5&limit=6`, {
      method: "POST",
      headers: { "idempotency-key": "k1", "content-type": "application/json" },
      body: '{"a":1}',
    });

    // Assess
    expect(res.status).toBe(201);
    expect(res.headers.get("x-one")).toBe("1");
    expect(await res.json()).toEqual({ ok: true });
    expect(seen).toMatchObject({
      httpMethod: "POST",
      path: "/clusters/c-1/events",
      resource: "/{proxy+}",
      pathParameters: { proxy: "clusters/c-1/events" },
      queryStringParameters: { limit: "6" },
      multiValueQueryStringParameters: { limit: ["5", "6"] },
      body: '{"a":1}',
      isBase64Encoded: false,
      requestContext: { httpMethod: "POST", stage: "local", resourcePath: "/{proxy+}" },
    });
    expect(seen?.headers["idempotency-key"]).toBe("k1");
  });

  it("answers 502 with a generic message when the handler throws, and reports the error", async () => {
    // Prepare
    const errors: unknown[] = [];
    const base = await serve(
      async () => {
        throw new Error("secret detail");
      },
      (e) => errors.push(e),
    );

    // Act
    const res = await fetch(`${base}/`);

    // Assess
    expect(res.status).toBe(502);
    expect(await res.text()).not.toContain("secret detail");
    expect((errors[0] as Error).message).toBe("secret detail");
  });
});
