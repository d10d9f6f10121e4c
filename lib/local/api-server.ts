import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { Logger } from "@aws-lambda-powertools/logger";
import { createApiHandler } from "../control/api/handler.js";
import type { ApiDeps } from "../control/api/routes.js";
import { type ProxyHandler, sendJson, serveThroughHandler } from "./api-gateway.js";
import type { StatusSnapshot } from "./status.js";
import { statusPageHtml } from "./status-page.js";

/**
 * The API on 127.0.0.1, with the status page at its root (GET / and GET /status.json): every other
 * request becomes API Gateway's proxy event for the API Lambda's handler (createApiHandler, as in
 * functions/api.ts) built with the local control plane's dependencies. A failure inside is a 500 with a
 * generic message; its detail goes to the supervisor's log only.
 */
export async function startApiServer(
  deps: ApiDeps,
  port: number,
  log: (line: string) => void,
  status?: () => Promise<StatusSnapshot>,
): Promise<Server> {
  // The deployed API's handler (middy, Powertools logger), built with the local dependencies.
  const handler = createApiHandler(deps, new Logger({ serviceName: "nowscale-local-api", logLevel: "WARN" }));
  const server = createServer((req, res) => {
    serve(handler, req, res, log, status).catch((error: unknown) => {
      log(`api error on ${req.method} ${safePath(req)}: ${(error as Error).message}`.slice(0, 1000));
      if (!res.headersSent) sendJson(res, 500, { error: "internal error (see the local mode's log)" });
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (error: NodeJS.ErrnoException) =>
      reject(
        error.code === "EADDRINUSE"
          ? new Error(`port ${port} is in use on 127.0.0.1: stop what uses it or pass --port`)
          : error,
      ),
    );
    server.listen(port, "127.0.0.1", resolve);
  });
  return server;
}

async function serve(
  handler: ProxyHandler,
  req: IncomingMessage,
  res: ServerResponse,
  log: (line: string) => void,
  status?: () => Promise<StatusSnapshot>,
): Promise<void> {
  const page = new URL(req.url ?? "/", "http://localhost").pathname;
  if (status !== undefined && req.method === "GET" && (page === "/" || page === "/status.json")) {
    res.setHeader("cache-control", "no-store");
    if (page === "/status.json") {
      sendJson(res, 200, await status());
    } else {
      res.setHeader("content-type", "text/html; charset=utf-8");
      // The page is self-contained: no script or style from anywhere else.
      res.setHeader(
        "content-security-policy",
        "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'",
      );
      res.end(statusPageHtml());
    }
    return;
  }
  await serveThroughHandler(req, res, handler, (error) =>
    log(`api handler failed on ${req.method} ${safePath(req)}: ${(error as Error).message}`.slice(0, 1000)),
  );
}

/** The request's path for a log line: printable ASCII, bounded. */
function safePath(req: IncomingMessage): string {
  return (req.url ?? "").replace(/[^\x21-\x7e]/g, "?").slice(0, 200);
}
