import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { type ApiDeps, type ApiRequest, handleApiRequest } from "../control/api/routes.js";
import { readBody, sendJson } from "./api-gateway.js";
import type { StatusSnapshot } from "./status.js";
import { statusPageHtml } from "./status-page.js";

/**
 * The API on 127.0.0.1, with the status page at its root (GET / and GET /status.json): every other
 * request goes to the API's routes (lib/control/api/routes.ts, the code
 * behind functions/api.ts) with the local control plane's dependencies. A failure inside is a 500 with a
 * generic message; its detail goes to the supervisor's log only.
 */
export async function startApiServer(
  deps: ApiDeps,
  port: number,
  log: (line: string) => void,
  status?: () => Promise<StatusSnapshot>,
): Promise<Server> {
  const server = createServer((req, res) => {
    serve(deps, req, res, status).catch((error: unknown) => {
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
  deps: ApiDeps,
  req: IncomingMessage,
  res: ServerResponse,
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
  const body = await readBody(req);
  if (body === "too-large") {
    sendJson(res, 413, { error: "request body too large" });
    return;
  }
  const url = new URL(req.url ?? "/", "http://localhost");
  const headers: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v.join(",") : v;
  const request: ApiRequest = {
    method: req.method ?? "GET",
    path: url.pathname,
    headers,
    query: Object.fromEntries(url.searchParams),
    body: body.length > 0 ? body.toString("utf8") : null,
  };
  const answer = await handleApiRequest(deps, request);
  res.statusCode = answer.statusCode;
  for (const [k, v] of Object.entries(answer.headers)) res.setHeader(k, v);
  res.end(answer.body);
}

/** The request's path for a log line: printable ASCII, bounded. */
function safePath(req: IncomingMessage): string {
  return (req.url ?? "").replace(/[^\x21-\x7e]/g, "?").slice(0, 200);
}
