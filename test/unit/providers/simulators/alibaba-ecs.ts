import { createHash, createHmac, randomUUID } from "node:crypto";
import {
  type FakeCloud,
  FakeCloudFault,
  type FakeInstance,
  type FaultKind,
} from "../../../../lib/providers/fake/index.js";
import { type HttpReply, type LocalServer, type RecordedRequest, startLocalServer } from "./http.js";

/** Obviously fake credentials, accepted by this simulator only. */
export const TEST_ACCESS_KEY_ID = "test-access-key-id";
export const TEST_ACCESS_KEY_SECRET = "test-access-key-secret";

/** Real ECS codes and HTTP statuses for each simulated fault. */
export const ECS_FAULTS: Record<FaultKind, { status: number; code: string }> = {
  capacity: { status: 403, code: "OperationDenied.NoStock" },
  quota: { status: 403, code: "QuotaExceed.ElasticQuota" },
  throttle: { status: 400, code: "Throttling.User" },
  server: { status: 500, code: "InternalError" },
  invalid: { status: 400, code: "InvalidParameter" },
  unauthorized: { status: 403, code: "Forbidden.RAM" },
  notFound: { status: 404, code: "InvalidInstanceId.NotFound" },
  tokenMismatch: { status: 400, code: "IdempotentParameterMismatch" },
};

export interface EcsCall {
  action: string;
  /** The RPC parameters as sent on the wire (flattened: Tag.1.Key, InstanceId.1, ...). */
  params: Record<string, string>;
  request: RecordedRequest;
}

export interface EcsSimulator extends LocalServer {
  calls: EcsCall[];
  callsOf(action: string): EcsCall[];
}

/**
 * ECS RPC API (version 2014-05-26) on loopback: parameters in the query string, x-acs-* headers,
 * ACS3-HMAC-SHA256 signature checked against the test key, JSON answers and ECS's error bodies
 * ({RequestId, HostId, Code, Message, Recommend}) with ECS's HTTP statuses.
 */
export async function startEcsSimulator(cloud: FakeCloud): Promise<EcsSimulator> {
  const calls: EcsCall[] = [];
  const server = await startLocalServer((request) => {
    const action = request.headers["x-acs-action"] ?? "";
    const params = { ...request.query };
    calls.push({ action, params, request });
    const authProblem = checkAcs3Signature(request);
    if (authProblem !== undefined) return error(400, "SignatureDoesNotMatch", authProblem);
    if (request.headers["x-acs-version"] !== "2014-05-26")
      return error(400, "InvalidVersion", "unsupported version");
    try {
      return { status: 200, body: { ...handle(cloud, action, params), RequestId: randomUUID() } };
    } catch (caught) {
      if (caught instanceof FakeCloudFault) {
        const fault = ECS_FAULTS[caught.kind];
        return error(fault.status, fault.code, caught.message);
      }
      throw caught;
    }
  });
  return { ...server, calls, callsOf: (action) => calls.filter((c) => c.action === action) };
}

function error(status: number, code: string, message: string): HttpReply {
  return {
    status,
    body: {
      RequestId: randomUUID(),
      HostId: "ecs.cn-hangzhou.aliyuncs.com",
      Code: code,
      Message: message,
      Recommend: `https://api.aliyun.com/troubleshoot?q=${code}`,
    },
  };
}

/** `Prefix.1.Field`, `Prefix.2.Field`, ... back into a list. */
function repeated(params: Record<string, string>, prefix: string): Record<string, string>[] {
  const out: Record<string, string>[] = [];
  for (const [key, value] of Object.entries(params)) {
    const m = new RegExp(`^${prefix}\\.(\\d+)(?:\\.(\\w+))?$`).exec(key);
    if (m === null) continue;
    const index = Number(m[1]) - 1;
    out[index] ??= {};
    (out[index] as Record<string, string>)[m[2] ?? ""] = value;
  }
  return out;
}

function handle(cloud: FakeCloud, action: string, p: Record<string, string>): Record<string, unknown> {
  switch (action) {
    case "RunInstances": {
      const tags = Object.fromEntries(repeated(p, "Tag").map((t) => [t.Key ?? "", t.Value ?? ""]));
      const amount = Number(p.Amount ?? 1);
      const started = cloud.run({
        instanceType: p.InstanceType ?? "",
        zone: p.ZoneId ?? "",
        chargeType: p.SpotStrategy !== undefined && p.SpotStrategy !== "NoSpot" ? "SPOT" : "ON_DEMAND",
        imageId: p.ImageId ?? "",
        minCount: Number(p.MinAmount ?? amount),
        maxCount: amount,
        tags,
        ...(p.ClientToken === undefined ? {} : { clientToken: p.ClientToken }),
        ...(p.VSwitchId === undefined ? {} : { subnetId: p.VSwitchId }),
        ...(p.UserData === undefined ? {} : { userData: Buffer.from(p.UserData, "base64").toString("utf8") }),
        ...(p.InstanceName === undefined ? {} : { name: p.InstanceName }),
      });
      return { InstanceIdSets: { InstanceIdSet: started.map((i) => i.id) }, TradePrice: 0 };
    }
    case "DeleteInstances":
      cloud.terminate(repeated(p, "InstanceId").map((x) => x[""] ?? ""));
      return {};
    case "DescribeInstances": {
      let found: FakeInstance[];
      if (p.InstanceIds !== undefined) {
        // Released instances leave the ECS listing; unknown ids are simply absent.
        found = cloud.describe(JSON.parse(p.InstanceIds) as string[]).filter((i) => i.state !== "TERMINATED");
      } else {
        const [tag] = repeated(p, "Tag");
        if (tag === undefined) throw new Error("simulator: tag filter expected");
        found = cloud.list(tag.Key ?? "", tag.Value ?? "");
      }
      const max = Number(p.MaxResults ?? 10);
      const start = Number(p.NextToken ?? 0);
      const page = found.slice(start, start + max);
      const next = start + max < found.length ? String(start + max) : "";
      return { TotalCount: found.length, NextToken: next, Instances: { Instance: page.map(toEcsInstance) } };
    }
    default:
      throw new Error(`simulator does not know ${action}`);
  }
}

function toEcsInstance(i: FakeInstance): Record<string, unknown> {
  return {
    InstanceId: i.id,
    InstanceType: i.instanceType,
    RegionId: "cn-hangzhou",
    ZoneId: i.zone,
    Status: i.state === "PENDING" ? "Pending" : "Running",
    InstanceChargeType: "PostPaid",
    SpotStrategy: i.chargeType === "SPOT" ? "SpotAsPriceGo" : "NoSpot",
    CreationTime: new Date(i.launchedAt).toISOString().slice(0, 16).concat("Z"),
    ImageId: i.imageId,
    VpcAttributes: {
      VpcId: "vpc-test0001",
      VSwitchId: i.subnetId ?? "",
      PrivateIpAddress: { IpAddress: [i.privateIp] },
    },
    Tags: { Tag: Object.entries(i.tags).map(([TagKey, TagValue]) => ({ TagKey, TagValue })) },
  };
}

/** Recomputes ACS3-HMAC-SHA256 as the ECS gateway does; returns a problem, or undefined when it holds. */
function checkAcs3Signature(request: RecordedRequest): string | undefined {
  const auth = request.headers.authorization ?? "";
  const match = /^ACS3-HMAC-SHA256 Credential=([^,]+),SignedHeaders=([^,]+),Signature=([0-9a-f]{64})$/.exec(
    auth,
  );
  if (match === null) return `malformed Authorization: ${auth}`;
  const [, keyId, signedHeaders, signature] = match as unknown as string[];
  if (keyId !== TEST_ACCESS_KEY_ID) return `unknown AccessKeyId ${keyId}`;
  const payloadHash = createHash("sha256").update(request.body).digest("hex");
  if (request.headers["x-acs-content-sha256"] !== payloadHash)
    return "x-acs-content-sha256 does not match the body";
  const query = Object.keys(request.query)
    .sort()
    .map((k) => `${k}=${acsEncode(request.query[k] ?? "")}`)
    .join("&");
  const headerNames = (signedHeaders ?? "").split(";");
  const headers = headerNames.map((h) => `${h}:${(request.headers[h] ?? "").trim()}\n`).join("");
  const canonical = [request.method, request.path, query, headers, signedHeaders, payloadHash].join("\n");
  const stringToSign = `ACS3-HMAC-SHA256\n${createHash("sha256").update(canonical).digest("hex")}`;
  const expected = createHmac("sha256", TEST_ACCESS_KEY_SECRET).update(stringToSign).digest("hex");
  return expected === signature ? undefined : "signature does not match";
}

function acsEncode(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}
