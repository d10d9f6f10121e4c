import { randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { InstanceIdentity } from "./index.js";

export interface RoleCredentials {
  accessKeyId: string;
  secret: string;
  token: string;
}

/** The role name the instance's metadata lists (its credentials are this instance's, made up per start). */
export const LOCAL_ROLE = "nowscale-local-node";

/**
 * The metadata service of the instance's cloud, with the session rules each enforces:
 * - AWS IMDSv2: `PUT /latest/api/token` with X-aws-ec2-metadata-token-ttl-seconds (1-21600) gives a token;
 *   every GET needs it in X-aws-ec2-metadata-token (401 without, as with HttpTokens=required); a PUT
 *   carrying X-Forwarded-For is refused (403), as AWS does.
 * - Alibaba hardened mode: the same with X-aliyun-ecs-metadata-token(-ttl-seconds); 403 without a token.
 * - Tencent: plain GETs.
 * Paths answer the fields the boot scripts read (id, type, zone, region, address) and the role's
 * credentials the CLIs look for.
 */
export function metadataHandler(identity: InstanceIdentity, creds: RoleCredentials, requests: string[]) {
  const tokens = new Map<string, number>();
  const expiration = new Date(Date.now() + 6 * 3600_000).toISOString().replace(/\.\d+Z$/, "Z");
  const fields = metadataFields(identity, creds, expiration);
  const tokenHeader = identity.cloud === "aws" ? "x-aws-ec2-metadata-token" : "x-aliyun-ecs-metadata-token";
  const needsToken = identity.cloud !== "tencent";

  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    for await (const _ of req) {
      // Bodies are ignored; drained so the connection can be reused.
    }
    const path = new URL(req.url ?? "/", "http://metadata").pathname;
    requests.push(`${req.method} ${req.headers.host ?? ""} ${path}`);
    const send = (status: number, body: string, type = "text/plain"): void => {
      res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(body) }).end(body);
    };

    if (needsToken && req.method === "PUT" && path === "/latest/api/token") {
      if (req.headers["x-forwarded-for"] !== undefined) return send(403, "Forbidden");
      const ttl = Number(req.headers[`${tokenHeader}-ttl-seconds`]);
      if (!Number.isInteger(ttl) || ttl < 1 || ttl > 21_600) return send(400, "Bad Request");
      const token = randomBytes(32).toString("base64url");
      tokens.set(token, Date.now() + ttl * 1000);
      return send(200, token);
    }
    if (req.method !== "GET") return send(405, "Method Not Allowed");
    if (needsToken) {
      const token = String(req.headers[tokenHeader] ?? "");
      const until = tokens.get(token);
      if (until === undefined || until < Date.now())
        return send(identity.cloud === "aws" ? 401 : 403, "Unauthorized");
    }
    const key = path.replace(/^\/latest\/meta-data\/?/, "");
    if (key === path) return send(404, "Not Found");
    const value = fields.get(key.replace(/\/$/, ""));
    if (value === undefined) return send(404, "Not Found");
    return send(200, value, value.startsWith("{") ? "application/json" : "text/plain");
  };
}

function metadataFields(i: InstanceIdentity, c: RoleCredentials, expiration: string): Map<string, string> {
  const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  if (i.cloud === "aws") {
    const role = JSON.stringify({
      Code: "Success",
      LastUpdated: now,
      Type: "AWS-HMAC",
      AccessKeyId: c.accessKeyId,
      SecretAccessKey: c.secret,
      Token: c.token,
      Expiration: expiration,
    });
    return new Map([
      ["", "instance-id\ninstance-type\nlocal-ipv4\nhostname\nplacement/\niam/"],
      ["instance-id", i.instanceId],
      ["instance-type", i.instanceType],
      ["local-ipv4", i.privateIp],
      ["hostname", i.instanceId],
      ["local-hostname", i.instanceId],
      ["placement", "availability-zone\nregion"],
      ["placement/availability-zone", i.zone],
      ["placement/region", i.region],
      ["iam/security-credentials", LOCAL_ROLE],
      [`iam/security-credentials/${LOCAL_ROLE}`, role],
    ]);
  }
  if (i.cloud === "tencent") {
    const role = JSON.stringify({
      Code: "Success",
      TmpSecretId: c.accessKeyId,
      TmpSecretKey: c.secret,
      Token: c.token,
      ExpiredTime: Math.floor(Date.parse(expiration) / 1000),
      Expiration: expiration,
    });
    return new Map([
      ["instance-id", i.instanceId],
      ["instance/instance-type", i.instanceType],
      ["local-ipv4", i.privateIp],
      ["placement/zone", i.zone],
      ["placement/region", i.region],
      ["cam/security-credentials", LOCAL_ROLE],
      [`cam/security-credentials/${LOCAL_ROLE}`, role],
    ]);
  }
  const role = JSON.stringify({
    Code: "Success",
    AccessKeyId: c.accessKeyId,
    AccessKeySecret: c.secret,
    SecurityToken: c.token,
    Expiration: expiration,
    LastUpdated: now,
  });
  return new Map([
    ["instance-id", i.instanceId],
    ["instance/instance-type", i.instanceType],
    ["private-ipv4", i.privateIp],
    ["zone-id", i.zone],
    ["region-id", i.region],
    ["ram/security-credentials", LOCAL_ROLE],
    [`ram/security-credentials/${LOCAL_ROLE}`, role],
  ]);
}
