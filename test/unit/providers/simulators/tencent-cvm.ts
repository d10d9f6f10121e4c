import { createHash, createHmac, randomUUID } from "node:crypto";
import type { ChargeType } from "../../../../lib/core/model.js";
import {
  type FakeCloud,
  FakeCloudFault,
  type FakeInstance,
  type FaultKind,
} from "../../../../lib/providers/fake/index.js";
import { type HttpReply, type LocalServer, type RecordedRequest, startLocalServer } from "./http.js";
import { checkRequest } from "./tencent-models.js";
import { TencentApiError, TencentServices } from "./tencent-services.js";

/** Obviously fake credentials, accepted by this simulator only. */
export const TEST_SECRET_ID = "test-secret-id";
export const TEST_SECRET_KEY = "test-secret-key";

/** Real CVM codes for each simulated fault. */
export const CVM_FAULT_CODES: Record<FaultKind, string> = {
  capacity: "ResourceInsufficient.SpecifiedInstanceType",
  quota: "LimitExceeded.InstanceQuota",
  throttle: "RequestLimitExceeded",
  server: "InternalError",
  invalid: "InvalidParameterValue",
  unauthorized: "AuthFailure.UnauthorizedOperation",
  notFound: "InvalidInstanceId.NotFound",
  tokenMismatch: "InvalidParameter",
};

export interface CvmCall {
  action: string;
  /** The parsed JSON body: the API's request parameters. */
  params: Record<string, unknown>;
  request: RecordedRequest;
}

export interface CvmSimulator extends LocalServer {
  calls: CvmCall[];
  callsOf(action: string): CvmCall[];
  /** The account's VPC, SSM and TAT state (tencent-services.ts). */
  services: TencentServices;
  /**
   * The next RunInstances answers its ids, then this many of them end LAUNCH_FAILED (as CVM does when the
   * stock runs out after the call), seen so by DescribeInstances.
   */
  failLaunchOfNext(count: number): void;
  /** Stopped instances (StopInstances) and the StoppedMode each got: FakeCloud knows running ones only. */
  stopped: Map<string, string>;
  /**
   * The account switch "no partial delivery": from now on every RunInstances carrying MinCount (of
   * `chargeType` only, when given: "SPOTPAID" or "POSTPAID_BY_HOUR") is refused with `code`, as CVM does
   * where partial delivery is not supported; a call without MinCount is served as before (all or none).
   */
  refuseMinCount(code?: string, chargeType?: string): void;
}

/** RunInstances' answer where the region does not support MinCount (Go SDK cvm/v20170312/errors.go). */
export const MIN_COUNT_UNSUPPORTED_REGION = "UnsupportedOperation.MinCountUnsupportedRegion";

/**
 * Tencent Cloud API 3.0 on loopback: CVM (2017-03-12), and VPC (2017-03-12), SSM (2019-09-23) and TAT
 * (2020-10-28) through `services`. POST JSON with X-TC-* headers, TC3-HMAC-SHA256 signature (checked
 * against the test secret), every request checked against the SDK's own model of `<Action>Request`
 * (tencent-models.ts: an unknown field is UnknownParameter, a missing one MissingParameter, as the real
 * API answers), answers `{"Response": {...}}` with HTTP 200 for errors too, as Tencent does.
 */
export async function startCvmSimulator(cloud: FakeCloud): Promise<CvmSimulator> {
  const calls: CvmCall[] = [];
  const launch: LaunchState = { failNext: 0, failed: new Set<string>() };
  const stopped = new Map<string, string>();
  const services = new TencentServices(cloud);
  const server = await startLocalServer((request) => {
    const action = request.headers["x-tc-action"] ?? "";
    const version = request.headers["x-tc-version"] ?? "";
    const params = JSON.parse(request.body || "{}") as Record<string, unknown>;
    calls.push({ action, params, request });
    const authProblem = checkTc3Signature(request);
    if (authProblem !== undefined)
      return reply({ Error: { Code: "AuthFailure.SignatureFailure", Message: authProblem } });
    const service = services.handles(action, version) ? serviceOf(version, action) : "cvm";
    if (service === "cvm" && version !== "2017-03-12") {
      return reply({ Error: { Code: "InvalidParameter", Message: "unsupported version" } });
    }
    const problems = checkRequest(`${service}:${version}`, action, params);
    if (problems.length > 0) {
      const [first = ""] = problems;
      const code = first.startsWith("MissingParameter") ? "MissingParameter" : "UnknownParameter";
      return reply({ Error: { Code: code, Message: problems.join("; ") } });
    }
    try {
      return reply(
        service === "cvm"
          ? handle(cloud, action, params, launch, stopped, services)
          : services.handle(action, params),
      );
    } catch (error) {
      if (error instanceof TencentApiError)
        return reply({ Error: { Code: error.code, Message: error.message } });
      if (error instanceof FakeCloudFault) {
        return reply({ Error: { Code: CVM_FAULT_CODES[error.kind], Message: error.message } });
      }
      throw error;
    }
  });
  return {
    ...server,
    calls,
    services,
    stopped,
    callsOf: (action) => calls.filter((c) => c.action === action),
    failLaunchOfNext: (count) => {
      launch.failNext = count;
    },
    refuseMinCount: (code = MIN_COUNT_UNSUPPORTED_REGION, chargeType) => {
      launch.refuseMinCount = { code, ...(chargeType === undefined ? {} : { chargeType }) };
    },
  };
}

interface LaunchState {
  failNext: number;
  failed: Set<string>;
  /** Set by refuseMinCount. */
  refuseMinCount?: { code: string; chargeType?: string };
}

function serviceOf(version: string, action: string): string {
  if (version === "2019-09-23") return "ssm";
  if (version === "2020-10-28") return "tat";
  return action === "" ? "cvm" : "vpc";
}

function reply(response: Record<string, unknown>): HttpReply {
  return {
    status: 200,
    body: { Response: { ...response, RequestId: randomUUID() } },
    contentType: "application/json",
  };
}

function handle(
  cloud: FakeCloud,
  action: string,
  p: Record<string, unknown>,
  launch: LaunchState,
  stopped: Map<string, string>,
  services: TencentServices,
): Record<string, unknown> {
  switch (action) {
    case "RunInstances": {
      const refusal = launch.refuseMinCount;
      if (
        refusal !== undefined &&
        p.MinCount !== undefined &&
        (refusal.chargeType === undefined || refusal.chargeType === p.InstanceChargeType)
      )
        throw new TencentApiError(refusal.code, "MinCount (partial delivery) is not supported here");
      const placement = p.Placement as { Zone: string };
      const vpc = p.VirtualPrivateCloud as { SubnetId?: string } | undefined;
      const tagSpecs = (p.TagSpecification ?? []) as {
        ResourceType: string;
        Tags: { Key: string; Value: string }[];
      }[];
      const tags = Object.fromEntries((tagSpecs[0]?.Tags ?? []).map((t) => [t.Key, t.Value]));
      const count = Number(p.InstanceCount ?? 1);
      const started = cloud.run({
        instanceType: String(p.InstanceType),
        zone: placement.Zone,
        chargeType: p.InstanceChargeType === "SPOTPAID" ? "SPOT" : "ON_DEMAND",
        imageId: String(p.ImageId),
        minCount: Number(p.MinCount ?? count),
        maxCount: count,
        tags,
        ...(typeof p.ClientToken === "string" ? { clientToken: p.ClientToken } : {}),
        ...(vpc?.SubnetId === undefined ? {} : { subnetId: vpc.SubnetId }),
        ...(typeof p.UserData === "string"
          ? { userData: Buffer.from(p.UserData, "base64").toString("utf8") }
          : {}),
        ...(typeof p.InstanceName === "string" ? { name: p.InstanceName } : {}),
      });
      const groups = Array.isArray(p.SecurityGroupIds) ? (p.SecurityGroupIds as string[]) : [];
      for (const i of started) services.instanceGroups.set(i.id, groups);
      for (const i of started.slice(0, launch.failNext)) launch.failed.add(i.id);
      launch.failNext = 0;
      return { InstanceIdSet: started.map((i) => i.id) };
    }
    case "TerminateInstances": {
      // One charge type per call (TerminateInstances' documentation): a mixed batch is refused whole.
      const ids = p.InstanceIds as string[];
      const types = new Set(cloud.describe(ids).map((i) => i.chargeType));
      if (types.size > 1)
        throw new TencentApiError("InvalidParameter", "instances of different charge types in one call");
      cloud.terminate(ids);
      return {};
    }
    case "StopInstances":
    case "StartInstances": {
      // StopInstances' and StartInstances' documentation: only RUNNING instances stop, only STOPPED ones
      // start; an unknown id fails the call. Done at once here (CVM passes through STOPPING / STARTING).
      const ids = p.InstanceIds as string[];
      const found = cloud.describe(ids).filter((i) => i.state !== "TERMINATED");
      const unknown = ids.filter((id) => !found.some((i) => i.id === id));
      if (unknown.length > 0)
        throw new TencentApiError("InvalidInstanceId.NotFound", `no instance ${unknown.join(", ")}`);
      for (const i of found) {
        const state = stopped.has(i.id) ? "STOPPED" : i.state;
        if (action === "StopInstances" && state !== "RUNNING")
          throw new TencentApiError(
            `UnsupportedOperation.InstanceState${titleCase(state)}`,
            `${i.id} is ${state}`,
          );
        if (action === "StartInstances" && state !== "STOPPED")
          throw new TencentApiError(
            `UnsupportedOperation.InstanceState${titleCase(state)}`,
            `${i.id} is ${state}`,
          );
      }
      for (const i of found) {
        // STOP_CHARGING takes effect on pay-as-you-go instances only (the SDK model's StoppedMode).
        if (action === "StopInstances")
          stopped.set(
            i.id,
            p.StoppedMode === "STOP_CHARGING" && i.chargeType === "ON_DEMAND"
              ? "STOP_CHARGING"
              : "KEEP_CHARGING",
          );
        else stopped.delete(i.id);
      }
      return {};
    }
    case "DescribeZones": {
      const zones = cloud.zones();
      return {
        TotalCount: zones.length,
        ZoneSet: zones.map((Zone, i) => ({
          Zone,
          ZoneName: Zone,
          ZoneId: String(100001 + i),
          ZoneState: "AVAILABLE",
        })),
      };
    }
    case "DescribeInstances": {
      let found: FakeInstance[];
      if (Array.isArray(p.InstanceIds)) {
        // Terminated postpaid instances leave the CVM listing.
        found = cloud.describe(p.InstanceIds as string[]).filter((i) => i.state !== "TERMINATED");
      } else {
        const filter = (p.Filters as { Name: string; Values: string[] }[] | undefined)?.[0];
        if (filter === undefined || !filter.Name.startsWith("tag:"))
          throw new Error("simulator: tag filter expected");
        found = cloud.list(filter.Name.slice("tag:".length), filter.Values[0] ?? "");
      }
      const offset = Number(p.Offset ?? 0);
      const limit = Number(p.Limit ?? 20);
      return {
        TotalCount: found.length,
        InstanceSet: found
          .slice(offset, offset + limit)
          .map((i) =>
            toCvmInstance(
              launch.failed.has(i.id) && i.state !== "TERMINATED"
                ? { ...i, state: "LAUNCH_FAILED" as never }
                : stopped.has(i.id)
                  ? { ...i, state: "STOPPED" as never }
                  : i,
              stopped.get(i.id),
              services,
            ),
          ),
      };
    }
    default:
      return { Error: { Code: "InvalidAction", Message: `simulator does not know ${action}` } };
  }
}

function titleCase(state: string): string {
  return state.charAt(0) + state.slice(1).toLowerCase();
}

/** `stopChargingMode`: the StoppedMode a stopped instance got; NOT_APPLICABLE when it is not stopped. */
function toCvmInstance(
  i: FakeInstance,
  stopChargingMode = "NOT_APPLICABLE",
  services?: TencentServices,
): Record<string, unknown> {
  const chargeType: Record<ChargeType, string> = { ON_DEMAND: "POSTPAID_BY_HOUR", SPOT: "SPOTPAID" };
  return {
    InstanceId: i.id,
    InstanceType: i.instanceType,
    Placement: { Zone: i.zone, ProjectId: 0 },
    InstanceChargeType: chargeType[i.chargeType],
    InstanceState: i.state,
    PrivateIpAddresses: [i.privateIp],
    CreatedTime: new Date(i.launchedAt).toISOString().replace(/\.\d+Z$/, "Z"),
    // The subnet's VPC when the simulated account has that subnet (an instance is in its subnet's VPC).
    VirtualPrivateCloud: {
      VpcId: services?.subnets.get(i.subnetId ?? "")?.VpcId ?? "vpc-test0001",
      SubnetId: i.subnetId ?? "",
    },
    SecurityGroupIds: services?.instanceGroups.get(i.id) ?? [],
    ImageId: i.imageId,
    Tags: Object.entries(i.tags).map(([Key, Value]) => ({ Key, Value })),
    StopChargingMode: stopChargingMode,
  };
}

/** Recomputes TC3-HMAC-SHA256 as CVM does; returns a problem, or undefined when the signature holds. */
function checkTc3Signature(request: RecordedRequest): string | undefined {
  const auth = request.headers.authorization ?? "";
  const match =
    /^TC3-HMAC-SHA256 Credential=([^/]+)\/(\d{4}-\d{2}-\d{2})\/([^/]+)\/tc3_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(
      auth,
    );
  if (match === null) return `malformed Authorization: ${auth}`;
  const [, secretId, date, service, signedHeaders, signature] = match as unknown as string[];
  if (secretId !== TEST_SECRET_ID) return `unknown SecretId ${secretId}`;
  const timestamp = request.headers["x-tc-timestamp"] ?? "";
  const host = (request.headers.host ?? "").replace(/:\d+$/, "");
  const canonicalHeaders = `content-type:${request.headers["content-type"]}\nhost:${host}\n`;
  const canonicalRequest = [
    request.method,
    request.path,
    "",
    canonicalHeaders,
    signedHeaders,
    sha256Hex(request.body),
  ].join("\n");
  const stringToSign = [
    "TC3-HMAC-SHA256",
    timestamp,
    `${date}/${service}/tc3_request`,
    sha256Hex(canonicalRequest),
  ].join("\n");
  const kDate = hmac(`TC3${TEST_SECRET_KEY}`, date ?? "");
  const kSigning = hmac(hmac(kDate, service ?? ""), "tc3_request");
  const expected = createHmac("sha256", kSigning).update(stringToSign).digest("hex");
  return expected === signature ? undefined : "signature does not match";
}

function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

function hmac(key: string | Buffer, message: string): Buffer {
  return createHmac("sha256", key).update(message).digest();
}
