import { createHash, createHmac, randomUUID, timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import type { InstanceIdentity, InstanceObject, InstanceSecret } from "./index.js";
import type { RoleCredentials } from "./metadata.js";

export interface ApiRequest {
  method: string;
  host: string;
  url: URL;
  headers: IncomingHttpHeaders;
  body: Buffer;
}
export interface ApiAnswer {
  status: number;
  headers?: Record<string, string>;
  body: Buffer | string;
}
type Api = (request: ApiRequest) => ApiAnswer;

const ACCOUNT = "000000000000";

/**
 * The cloud calls the boot scripts make, answered as the cloud answers them: AWS Secrets Manager
 * GetSecretValue and S3 GetObject/HeadObject, Tencent SSM GetSecretValue, Alibaba KMS GetSecretValue.
 * A request must be signed with the credentials this instance's metadata service handed out: a client
 * that did not go through the metadata service is refused. Tencent's and Alibaba's signatures (made by
 * the boot scripts' own code) are recomputed and checked; AWS's (made by the AWS CLI) are checked for
 * the credential id and session token only.
 */
export function awsApis(
  identity: InstanceIdentity,
  creds: RoleCredentials,
  secrets: readonly InstanceSecret[],
  objects: readonly InstanceObject[],
): Api {
  return (r) => {
    const auth = String(r.headers.authorization ?? "");
    const signed =
      auth.startsWith("AWS4-HMAC-SHA256 ") &&
      auth.includes(`Credential=${creds.accessKeyId}/`) &&
      r.headers["x-amz-security-token"] === creds.token;
    if (r.host.startsWith("secretsmanager.")) {
      const json = (status: number, body: unknown) => ({
        status,
        headers: { "content-type": "application/x-amz-json-1.1", "x-amzn-requestid": randomUUID() },
        body: JSON.stringify(body),
      });
      if (!signed)
        return json(400, {
          __type: "UnrecognizedClientException",
          message: "The security token included in the request is invalid.",
        });
      if (r.headers["x-amz-target"] !== "secretsmanager.GetSecretValue")
        return json(400, {
          __type: "InvalidAction",
          message: `not emulated: ${String(r.headers["x-amz-target"])}`,
        });
      const id = String(
        (JSON.parse(r.body.toString("utf8") || "{}") as { SecretId?: unknown }).SecretId ?? "",
      );
      const secret = secrets.find((s) => s.name === id || arnOf(identity, s) === id);
      if (secret === undefined)
        return json(400, {
          __type: "ResourceNotFoundException",
          Message: "Secrets Manager can't find the specified secret.",
        });
      return json(200, {
        ARN: arnOf(identity, secret),
        Name: secret.name,
        VersionId: versionOf(secret),
        VersionStages: ["AWSCURRENT"],
        CreatedDate: Math.floor(Date.now() / 1000),
        ...(secret.binary !== undefined
          ? { SecretBinary: secret.binary.toString("base64") }
          : { SecretString: secret.text ?? "" }),
      });
    }
    // S3: virtual-hosted (bucket.s3[.region].amazonaws.com/key) or path style (s3[.region].amazonaws.com/bucket/key).
    const xml = (status: number, code: string, message: string) => ({
      status,
      headers: { "content-type": "application/xml" },
      body: `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`,
    });
    if (!signed)
      return xml(
        403,
        "InvalidAccessKeyId",
        "The AWS Access Key Id you provided does not exist in our records.",
      );
    if (r.method !== "GET" && r.method !== "HEAD") return xml(405, "MethodNotAllowed", "not emulated");
    const path = decodeURIComponent(r.url.pathname);
    const virtual = /^(.+)\.s3(\.[a-z0-9-]+)?\.amazonaws\.com$/.exec(r.host);
    const [bucket, key] = virtual ? [virtual[1] ?? "", path.slice(1)] : splitPath(path);
    const object = objects.find((o) => o.bucket === bucket && o.key === key);
    if (object === undefined) return xml(404, "NoSuchKey", "The specified key does not exist.");
    const headers: Record<string, string> = {
      "content-type": "application/octet-stream",
      etag: `"${createHash("md5").update(object.body).digest("hex")}"`,
      "last-modified": new Date().toUTCString(),
      "accept-ranges": "bytes",
    };
    const range = /^bytes=(\d+)-(\d*)$/.exec(String(r.headers.range ?? ""));
    if (range) {
      const start = Number(range[1]);
      const end = Math.min(
        range[2] === "" ? object.body.length - 1 : Number(range[2]),
        object.body.length - 1,
      );
      const part = object.body.subarray(start, end + 1);
      return {
        status: 206,
        headers: {
          ...headers,
          "content-length": String(part.length),
          "content-range": `bytes ${start}-${end}/${object.body.length}`,
        },
        body: part,
      };
    }
    return {
      status: 200,
      headers: { ...headers, "content-length": String(object.body.length) },
      body: object.body,
    };
  };
}

/** Tencent Cloud API 3.0 (TC3-HMAC-SHA256): SSM GetSecretValue, JSON in and out. */
export function tencentApis(
  _identity: InstanceIdentity,
  creds: RoleCredentials,
  secrets: readonly InstanceSecret[],
): Api {
  return (r) => {
    const requestId = randomUUID();
    const answer = (body: Record<string, unknown>) => ({
      status: 200,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ Response: { ...body, RequestId: requestId } }),
    });
    const error = (code: string, message: string) => answer({ Error: { Code: code, Message: message } });
    const auth = String(r.headers.authorization ?? "");
    if (
      !auth.startsWith("TC3-HMAC-SHA256 ") ||
      !auth.includes(`Credential=${creds.accessKeyId}/`) ||
      r.headers["x-tc-token"] !== creds.token
    )
      return error("AuthFailure.SecretIdNotFound", "The SecretId is not found.");
    if (!tc3SignatureMatches(r, auth, creds.secret))
      return error("AuthFailure.SignatureFailure", "The provided credentials could not be validated.");
    if (r.headers["x-tc-action"] !== "GetSecretValue") return error("InvalidAction", "not emulated");
    const input = JSON.parse(r.body.toString("utf8") || "{}") as { SecretName?: unknown };
    const secret = secrets.find((s) => s.name === input.SecretName);
    if (secret === undefined) return error("ResourceNotFound", "The secret does not exist.");
    return answer({
      SecretName: secret.name,
      VersionId: versionOf(secret),
      ...(secret.binary !== undefined
        ? { SecretBinary: secret.binary.toString("base64"), SecretString: "" }
        : { SecretString: secret.text ?? "", SecretBinary: "" }),
    });
  };
}

/** Alibaba Cloud RPC style (query or form parameters, HMAC-SHA1 signature): KMS GetSecretValue. */
export function alibabaApis(
  _identity: InstanceIdentity,
  creds: RoleCredentials,
  secrets: readonly InstanceSecret[],
): Api {
  return (r) => {
    const params = new URLSearchParams(r.url.search);
    if (r.method === "POST")
      for (const [k, v] of new URLSearchParams(r.body.toString("utf8"))) params.set(k, v);
    const requestId = randomUUID();
    const json = (status: number, body: Record<string, unknown>) => ({
      status,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...body, RequestId: requestId }),
    });
    if (
      params.get("AccessKeyId") !== creds.accessKeyId ||
      params.get("SecurityToken") !== creds.token ||
      !params.get("Signature")
    )
      return json(404, {
        Code: "InvalidAccessKeyId.NotFound",
        Message: "Specified access key is not found.",
      });
    if (!rpcSignatureMatches(r.method, params, creds.secret))
      return json(400, {
        Code: "IncompleteSignature",
        Message: "The request signature does not conform to Aliyun standards.",
      });
    if (params.get("Action") !== "GetSecretValue")
      return json(400, { Code: "InvalidAction.NotFound", Message: "not emulated" });
    const secret = secrets.find((s) => s.name === params.get("SecretName"));
    if (secret === undefined)
      return json(404, { Code: "Forbidden.ResourceNotFound", Message: "The resource not exists." });
    return json(200, {
      SecretName: secret.name,
      VersionId: versionOf(secret),
      SecretDataType: secret.binary !== undefined ? "binary" : "text",
      SecretData: secret.binary !== undefined ? secret.binary.toString("base64") : (secret.text ?? ""),
    });
  };
}

/** Tencent Cloud API 3.0 signature (TC3-HMAC-SHA256) recomputed from the request. */
function tc3SignatureMatches(r: ApiRequest, auth: string, secretKey: string): boolean {
  const m =
    /Credential=[^/]+\/(\d{4}-\d{2}-\d{2})\/([a-z]+)\/tc3_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$/.exec(
      auth,
    );
  if (m === null) return false;
  const [, day = "", service = "", signed = "", signature = ""] = m;
  const names = signed.split(";");
  const headers = names
    .map(
      (n) =>
        `${n}:${String(r.headers[n] ?? "")
          .trim()
          .toLowerCase()}\n`,
    )
    .join("");
  const sha = (text: Buffer | string) => createHash("sha256").update(text).digest("hex");
  const canonical = `${r.method}\n${r.url.pathname}\n${r.url.search.slice(1)}\n${headers}\n${signed}\n${sha(r.body)}`;
  const scope = `${day}/${service}/tc3_request`;
  const toSign = `TC3-HMAC-SHA256\n${String(r.headers["x-tc-timestamp"] ?? "")}\n${scope}\n${sha(canonical)}`;
  const h = (key: Buffer | string, text: string) => createHmac("sha256", key).update(text).digest();
  const key = h(h(h(`TC3${secretKey}`, day), service), "tc3_request");
  return same(createHmac("sha256", key).update(toSign).digest("hex"), signature);
}

/** Alibaba Cloud RPC signature (HMAC-SHA1 over the sorted, RFC 3986-encoded parameters) recomputed. */
function rpcSignatureMatches(method: string, params: URLSearchParams, secret: string): boolean {
  const q = (s: string) =>
    encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  const pairs = [...params]
    .filter(([k]) => k !== "Signature")
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const toSign = `${method}&${q("/")}&${q(pairs.map(([k, v]) => `${q(k)}=${q(v)}`).join("&"))}`;
  return same(
    createHmac("sha1", `${secret}&`).update(toSign).digest("base64"),
    params.get("Signature") ?? "",
  );
}

function same(a: string, b: string): boolean {
  return a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

function arnOf(identity: InstanceIdentity, secret: InstanceSecret): string {
  return `arn:aws:secretsmanager:${identity.region}:${ACCOUNT}:secret:${secret.name}`;
}

function versionOf(secret: InstanceSecret): string {
  const hash = createHash("sha256")
    .update(secret.binary ?? secret.text ?? "")
    .digest("hex");
  return `${hash.slice(0, 8)}-${hash.slice(8, 12)}-${hash.slice(12, 16)}-${hash.slice(16, 20)}-${hash.slice(20, 32)}`;
}

function splitPath(path: string): [string, string] {
  const at = path.indexOf("/", 1);
  return at < 0 ? [path.slice(1), ""] : [path.slice(1, at), path.slice(at + 1)];
}
