import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { Logger } from "@aws-lambda-powertools/logger";
import { createApiHandler } from "../control/api/handler.js";
import type { ApiDeps } from "../control/api/routes.js";
import { type Access, type ApiAuth, bearer, LOGIN_CODES_PATH, SESSIONS_PATH } from "./api-auth.js";
import { type ProxyHandler, sendJson, serveThroughHandler } from "./api-gateway.js";
import { LOCAL_EVENTS_PATH, type LocalEventBus } from "./event-bus.js";
import type { StatusSnapshot } from "./status.js";
import { statusPageHtml } from "./status-page.js";

/**
 * The API on 127.0.0.1, with the status page at its root (GET / and GET /status.json): every other
 * request becomes API Gateway's proxy event for the API Lambda's handler (createApiHandler, as in
 * functions/api.ts) built with the local control plane's dependencies. A failure inside is a 500 with a
 * generic message; its detail goes to the supervisor's log only.
 *
 * Every request is authenticated first (lib/local/api-auth.ts), before its body is read: the API token
 * for everything, a page session for GET /status.json only. Without a valid credential the answer is
 * 401, with a page session on any other route 403, and nothing runs. Only the page's HTML (GET /, static,
 * no data) and the trade of a one-time login code for a page session are open. The local wake bus
 * (POST /local/events, lib/local/event-bus.ts) authenticates its own callers (SigV4, the watcher's
 * credentials) and can do nothing but wake the scaler.
 */
export async function startApiServer(
  deps: ApiDeps,
  port: number,
  log: (line: string) => void,
  auth: ApiAuth,
  status?: () => Promise<StatusSnapshot>,
  events?: LocalEventBus,
): Promise<Server> {
  // The deployed API's handler (middy, Powertools logger), built with the local dependencies.
  const handler = createApiHandler(deps, new Logger({ serviceName: "nowscale-local-api", logLevel: "WARN" }));
  const server = createServer((req, res) => {
    serve(handler, auth, req, res, log, status, events).catch((error: unknown) => {
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

function refuse(res: ServerResponse, status: 401 | 403, message: string): void {
  res.setHeader("cache-control", "no-store");
  if (status === 401) res.setHeader("www-authenticate", 'Bearer realm="nowscale-local"');
  sendJson(res, status, { error: message });
}

async function serve(
  handler: ProxyHandler,
  auth: ApiAuth,
  req: IncomingMessage,
  res: ServerResponse,
  log: (line: string) => void,
  status?: () => Promise<StatusSnapshot>,
  events?: LocalEventBus,
): Promise<void> {
  const page = new URL(req.url ?? "/", "http://localhost").pathname;
  const method = req.method ?? "GET";
  // Open: the page's static HTML, and trading a one-time code (sent as the bearer) for a page session.
  if (status !== undefined && method === "GET" && page === "/") {
    res.setHeader("cache-control", "no-store");
    res.setHeader("content-type", "text/html; charset=utf-8");
    // The page is self-contained: no script or style from anywhere else.
    res.setHeader(
      "content-security-policy",
      "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'",
    );
    res.end(statusPageHtml());
    return;
  }
  if (method === "POST" && page === SESSIONS_PATH) {
    const code = bearer(req);
    const session = code === undefined ? undefined : auth.openSession(code);
    if (session === undefined) {
      refuse(res, 401, 'this login link is used up or expired: run "nowscale local link" for a new one');
      return;
    }
    res.setHeader("cache-control", "no-store");
    sendJson(res, 201, { session });
    return;
  }
  if (events !== undefined && page === LOCAL_EVENTS_PATH) {
    await events.handle(req, res);
    return;
  }
  const access: Access = auth.access(req);
  if (access === "none") {
    refuse(
      res,
      401,
      bearer(req) === undefined
        ? "authentication required: the local API takes the token in STATE_DIR/api.token (the CLI sends it as root)"
        : "invalid credential",
    );
    return;
  }
  const statusRoute = status !== undefined && method === "GET" && page === "/status.json";
  if (access === "status" && !statusRoute) {
    refuse(res, 403, "a status-page session can only read /status.json");
    return;
  }
  // The handler and its logger never see the credential.
  delete req.headers.authorization;
  if (method === "POST" && page === LOGIN_CODES_PATH) {
    const { code, expiresAt } = auth.mintLoginCode();
    res.setHeader("cache-control", "no-store");
    sendJson(res, 201, { path: `/#login=${code}`, expiresAt: new Date(expiresAt).toISOString() });
    return;
  }
  if (statusRoute && status !== undefined) {
    res.setHeader("cache-control", "no-store");
    sendJson(res, 200, await status());
    return;
  }
  await serveThroughHandler(req, res, handler, (error) =>
    log(`api handler failed on ${req.method} ${safePath(req)}: ${(error as Error).message}`.slice(0, 1000)),
  );
}

/** The request's path for a log line: without its query, printable ASCII, bounded. */
function safePath(req: IncomingMessage): string {
  return (req.url ?? "")
    .replace(/\?.*$/s, "")
    .replace(/[^\x21-\x7e]/g, "?")
    .slice(0, 200);
}
