import { defaultProvider } from "@aws-sdk/credential-provider-node";
import { SignatureV4 } from "@smithy/signature-v4";
import { NodeSha256 } from "../ports/node-sha256.js";
import { UsageError } from "./io.js";

/**
 * The CLI's way to the NowScale API: the local mode's API on 127.0.0.1 by default, or a deployed API
 * (`--endpoint https://....execute-api.REGION.amazonaws.com/v1`) whose requests are signed with SigV4
 * (service execute-api) using the default AWS credential chain. Errors come back as UsageError with the
 * API's message and every field it names.
 */
export interface ApiClientOptions {
  /** @default http://127.0.0.1:8080 (the local mode) */
  endpoint?: string;
  /** Sign with SigV4. @default true for any endpoint that is not on this machine */
  sign?: boolean;
  /** @default parsed from an execute-api host name, else AWS_REGION */
  region?: string;
  /**
   * The local API's bearer token, read when the first request goes out (lib/local/api-auth.ts). Sent
   * only to an unsigned endpoint on this machine; throws when it cannot be read (not root).
   */
  localToken?: () => string;
}

export const LOCAL_ENDPOINT = "http://127.0.0.1:8080";

export class ApiClient {
  readonly base: URL;
  private readonly signer: SignatureV4 | undefined;
  private readonly localToken: (() => string) | undefined;

  constructor(options: ApiClientOptions = {}) {
    const endpoint = options.endpoint ?? LOCAL_ENDPOINT;
    let base: URL;
    try {
      base = new URL(endpoint.endsWith("/") ? endpoint : `${endpoint}/`);
    } catch {
      throw new UsageError(
        `--endpoint must be a URL such as https://abc.execute-api.eu-west-1.amazonaws.com/v1`,
      );
    }
    if (base.protocol !== "https:" && base.protocol !== "http:")
      throw new UsageError("--endpoint must be an http(s) URL");
    this.base = base;
    const local = ["127.0.0.1", "localhost", "[::1]"].includes(base.hostname);
    // The local API's token never goes to another machine, nor along with a SigV4 signature.
    if (local && !(options.sign ?? false)) this.localToken = options.localToken;
    if (options.sign ?? !local) {
      const region =
        options.region ??
        /\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$/.exec(base.hostname)?.[1] ??
        process.env.AWS_REGION;
      if (region === undefined)
        throw new UsageError("cannot tell the API's region: pass --region or set AWS_REGION");
      this.signer = new SignatureV4({
        service: "execute-api",
        region,
        credentials: defaultProvider(),
        sha256: NodeSha256,
      });
    }
  }

  /** The parsed JSON answer of a 2xx response; UsageError (exit 1) otherwise. */
  async request(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<unknown> {
    const url = new URL(path.replace(/^\//, ""), this.base);
    const text = body === undefined ? undefined : JSON.stringify(body);
    let sendHeaders: Record<string, string> = {
      host: url.host,
      ...(text === undefined ? {} : { "content-type": "application/json" }),
      ...headers,
    };
    if (this.localToken !== undefined) {
      let token: string;
      try {
        token = this.localToken();
      } catch (error) {
        throw new UsageError((error as Error).message, 1);
      }
      sendHeaders.authorization = `Bearer ${token}`;
    }
    if (this.signer !== undefined) {
      const query: Record<string, string> = {};
      for (const [k, v] of url.searchParams) query[k] = v;
      const signed = await this.signer
        .sign({
          method,
          protocol: url.protocol,
          hostname: url.hostname,
          ...(url.port === "" ? {} : { port: Number(url.port) }),
          path: url.pathname,
          query,
          headers: sendHeaders,
          ...(text === undefined ? {} : { body: text }),
        })
        .catch((error: unknown) => {
          throw new UsageError(`no AWS credentials to sign the request: ${(error as Error).message}`, 1);
        });
      sendHeaders = signed.headers as Record<string, string>;
    }
    const { host: _host, ...fetchHeaders } = sendHeaders;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: fetchHeaders,
        ...(text === undefined ? {} : { body: text }),
      });
    } catch (error) {
      const local = this.signer === undefined && this.base.hostname === "127.0.0.1";
      throw new UsageError(
        local
          ? `no NowScale API on ${this.base.origin}: start it with "nowscale local up" or pass --endpoint`
          : `cannot reach ${this.base.origin}: ${(error as Error).cause ?? (error as Error).message}`,
        1,
      );
    }
    const answer = await res.text();
    let parsed: unknown;
    try {
      parsed = answer === "" ? {} : JSON.parse(answer);
    } catch {
      parsed = { error: answer.slice(0, 300) };
    }
    if (!res.ok) throw new UsageError(errorMessage(method, url.pathname, res.status, parsed), 1);
    return parsed;
  }
}

function errorMessage(method: string, path: string, status: number, body: unknown): string {
  const b = body as { error?: unknown; message?: unknown; issues?: { path?: unknown; message?: unknown }[] };
  let what = typeof b.error === "string" ? b.error : typeof b.message === "string" ? b.message : "";
  const list = Array.isArray(b.issues) ? b.issues : [];
  const lines = list.map((i) => `${String(i.path ?? "") || "(body)"}: ${String(i.message ?? "")}`);
  // A ValidationError's one line repeats its fields ("request body is invalid: a: …; b: …", for logs
  // and clients that read one line): keep its head only, as the fields follow one a line.
  const first =
    list[0] === undefined ? -1 : what.indexOf(`: ${String(list[0].path ?? "") || "(top level)"}: `);
  if (first > 0) what = `${what.slice(0, first)}:`;
  const issues = lines.map((l) => `\n  ${l}`).join("");
  return `${method} ${path} failed with HTTP ${status}${what === "" ? "" : `: ${what}`}${issues}`;
}
