import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { SignatureV4 } from "@smithy/signature-v4";
import { WAKE_DETAIL_TYPE, WAKE_SOURCE, wakeDetailText } from "../lib/ports/wake.js";

/**
 * The watcher's wake on AWS: one EventBridge PutEvents call to the stack's own bus, signed with SigV4
 * (@smithy/signature-v4, the AWS SDK's signer) using the master's instance role credentials. The master
 * role may put events on that bus only, with the wake's source and detail-type only (lib/infra/node-role.ts);
 * the stack's rule hands the detail's cluster id to the scaler. The local mode's bus takes the same request
 * (lib/local/event-bus.ts).
 *
 * Node's http/https rather than fetch: the bundle runs on Debian 12's Node 18, where fetch prints an
 * experimental warning.
 */

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  /** When they stop working; undefined for long-term keys. */
  expiration?: Date;
}

import { NodeSha256 } from "../lib/ports/node-sha256.js";

export { NodeSha256 };

export type CredentialSource = () => Promise<AwsCredentials>;

export const PUT_EVENTS_TARGET = "AWSEvents.PutEvents";
export const PUT_EVENTS_CONTENT_TYPE = "application/x-amz-json-1.1";

/** EventBridge's endpoint in `region` (the China regions have their own domain). */
export function eventsEndpoint(region: string): string {
  return `https://events.${region}.amazonaws.com${region.startsWith("cn-") ? ".cn" : ""}/`;
}

export interface EventBridgeWakerOptions {
  clusterId: string;
  /** The bus's name or ARN. */
  busName: string;
  region: string;
  credentials: CredentialSource;
  /** @default eventsEndpoint(region) */
  endpoint?: string;
  /** Per call. @default 5000 */
  timeoutMs?: number;
}

/** Sends wakes for one cluster: `wake()` resolves when EventBridge accepted the event, else throws. */
export class EventBridgeWaker {
  private readonly url: URL;
  private readonly signer: SignatureV4;

  constructor(private readonly o: EventBridgeWakerOptions) {
    wakeDetailText(o.clusterId);
    this.url = new URL(o.endpoint ?? eventsEndpoint(o.region));
    if (this.url.protocol !== "https:" && this.url.protocol !== "http:")
      throw new TypeError("the events endpoint must be an http(s) URL");
    this.signer = new SignatureV4({
      service: "events",
      region: o.region,
      credentials: o.credentials,
      sha256: NodeSha256,
    });
  }

  async wake(): Promise<void> {
    const body = JSON.stringify({
      Entries: [
        {
          Source: WAKE_SOURCE,
          DetailType: WAKE_DETAIL_TYPE,
          Detail: wakeDetailText(this.o.clusterId),
          EventBusName: this.o.busName,
        },
      ],
    });
    const signed = await this.signer.sign({
      method: "POST",
      protocol: this.url.protocol,
      hostname: this.url.hostname,
      ...(this.url.port === "" ? {} : { port: Number(this.url.port) }),
      path: this.url.pathname,
      query: {},
      headers: {
        host: this.url.host,
        "content-type": PUT_EVENTS_CONTENT_TYPE,
        "x-amz-target": PUT_EVENTS_TARGET,
      },
      body,
    });
    const answer = await post(this.url, signed.headers as Record<string, string>, body, this.o.timeoutMs);
    let parsed: { FailedEntryCount?: number; Entries?: { ErrorCode?: string; ErrorMessage?: string }[] };
    try {
      parsed = JSON.parse(answer.body) as typeof parsed;
    } catch {
      parsed = {};
    }
    if (answer.status !== 200) {
      const type = (parsed as { __type?: string }).__type ?? "";
      const text = (parsed as { message?: string; Message?: string }).message ?? answer.body;
      throw new Error(`PutEvents answered ${answer.status} ${type}: ${String(text).slice(0, 200)}`);
    }
    if (parsed.FailedEntryCount !== 0) {
      const entry = parsed.Entries?.[0];
      throw new Error(`PutEvents refused the wake: ${entry?.ErrorCode ?? "?"} ${entry?.ErrorMessage ?? ""}`);
    }
  }
}

/** One POST; the answer's status and body (at most 64 KiB kept). */
function post(
  url: URL,
  headers: Record<string, string>,
  body: string,
  timeoutMs = 5000,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const send = url.protocol === "https:" ? httpsRequest : httpRequest;
    const req = send(url, { method: "POST", headers, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size <= 65_536) chunks.push(chunk);
      });
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
      );
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`no answer from ${url.host} within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end(body);
  });
}

/**
 * The credentials the AWS CLI and SDKs would find on a master: AWS_ACCESS_KEY_ID and
 * AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) in the environment (the local mode passes its own so), else
 * the instance role's from the metadata service (IMDSv2: a session token first, then the role's name, then
 * its credentials), kept until five minutes before they expire. The boot script keeps the metadata service
 * for root, which the watcher runs as.
 */
export function defaultCredentials(
  env: NodeJS.ProcessEnv = process.env,
  metadataBase = "http://169.254.169.254",
): CredentialSource {
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (accessKeyId && secretAccessKey) {
    const fixed: AwsCredentials = {
      accessKeyId,
      secretAccessKey,
      ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
    };
    return async () => fixed;
  }
  let cached: AwsCredentials | undefined;
  return async () => {
    const expires = cached?.expiration?.getTime() ?? 0;
    if (cached === undefined || expires - Date.now() < 5 * 60_000)
      cached = await roleCredentials(metadataBase);
    return cached;
  };
}

/** The instance role's credentials from IMDSv2. */
export async function roleCredentials(base: string, timeoutMs = 2000): Promise<AwsCredentials> {
  const call = (method: "PUT" | "GET", path: string, headers: Record<string, string>) =>
    new Promise<string>((resolve, reject) => {
      const req = httpRequest(new URL(path, base), { method, headers, timeout: timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          if (res.statusCode === 200) resolve(text);
          else reject(new Error(`metadata service: ${method} ${path} answered ${res.statusCode}`));
        });
      });
      req.on("timeout", () => req.destroy(new Error("metadata service: no answer")));
      req.on("error", reject);
      req.end();
    });
  const token = await call("PUT", "/latest/api/token", { "x-aws-ec2-metadata-token-ttl-seconds": "21600" });
  const auth = { "x-aws-ec2-metadata-token": token };
  const role = (await call("GET", "/latest/meta-data/iam/security-credentials/", auth))
    .split("\n")[0]
    ?.trim();
  if (!role || !/^[\w+=,.@-]{1,128}$/.test(role))
    throw new Error("metadata service: the instance has no role");
  const c = JSON.parse(
    await call("GET", `/latest/meta-data/iam/security-credentials/${role}`, auth),
  ) as Record<string, string>;
  if (!c.AccessKeyId || !c.SecretAccessKey) throw new Error("metadata service: no credentials for the role");
  return {
    accessKeyId: c.AccessKeyId,
    secretAccessKey: c.SecretAccessKey,
    ...(c.Token ? { sessionToken: c.Token } : {}),
    ...(c.Expiration ? { expiration: new Date(c.Expiration) } : {}),
  };
}
