import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** One request as the simulator received it, kept for field-by-field assertions. */
export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  body: string;
}

export interface HttpReply {
  status: number;
  body: unknown;
  contentType?: string;
}

export interface LocalServer {
  /** host:port, as the SDKs' endpoint settings want it. */
  endpoint: string;
  close(): Promise<void>;
}

/** A loopback HTTP server on a random port that hands each request to `handle`. */
export async function startLocalServer(
  handle: (request: RecordedRequest) => HttpReply,
): Promise<LocalServer> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://localhost");
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers))
        headers[k] = Array.isArray(v) ? v.join(",") : (v ?? "");
      let reply: HttpReply;
      try {
        reply = handle({
          method: req.method ?? "GET",
          path: url.pathname,
          query: Object.fromEntries(url.searchParams.entries()),
          headers,
          body: Buffer.concat(chunks).toString("utf8"),
        });
      } catch (error) {
        reply = { status: 500, body: { simulatorError: String(error) } };
      }
      res.writeHead(reply.status, { "content-type": reply.contentType ?? "application/json;charset=utf-8" });
      res.end(JSON.stringify(reply.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
