import { createHash, createHmac, randomUUID } from "node:crypto";
import * as ecsModels from "@alicloud/ecs20140526";
import * as kmsModels from "@alicloud/kms20160120";
import * as vpcModels from "@alicloud/vpc20160428";
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
  /** The VPCs, VSwitches, security groups, secrets and Cloud Assistant invocations it holds. */
  world: AlibabaWorld;
}

/** What a Cloud Assistant command did on an instance: its exit code and its output. */
export interface CommandOutcome {
  exitCode: number;
  output: string;
}

export interface EcsSimulatorOptions {
  /**
   * Runs a Cloud Assistant command (the decoded script) on an instance; the simulator answers
   * DescribeInvocationResults with what it returns. @default every command fails: no agent
   */
  runCommand?: (instanceId: string, script: string) => CommandOutcome;
  /** The region has a default VPC: RunInstances without VSwitchId lands in it. @default true */
  defaultVpc?: boolean;
}

export interface SimVpc {
  id: string;
  cidr: string;
  name: string;
  status: "Pending" | "Available";
  /** Describes it is still seen Pending after its creation (one, as a new VPC is for a few seconds). */
  pendingDescribes: number;
  tags: Map<string, string>;
}
export interface SimVSwitch {
  id: string;
  vpcId: string;
  zoneId: string;
  cidr: string;
  tags: Map<string, string>;
}
export interface SimGroup {
  id: string;
  vpcId: string;
  name: string;
  tags: Map<string, string>;
  rules: Record<string, string>[];
  /** "Drop": members do not reach each other without a rule. @default "Accept" */
  innerAccessPolicy?: "Accept" | "Drop";
}
export interface SimSecret {
  name: string;
  data: string;
  dataType: string;
  encryptionKeyId?: string;
  tags: Map<string, string>;
  /** The versions stored, the current (ACSCurrent) last. */
  versions?: string[];
}
export interface SimInvocation {
  invokeId: string;
  instanceId: string;
  script: string;
  /** DescribeInvocationResults calls so far: the first answers Running. */
  polls: number;
  outcome?: CommandOutcome;
}

/** The simulated account's network, groups, secrets and commands, next to FakeCloud's instances. */
export class AlibabaWorld {
  readonly vpcs = new Map<string, SimVpc>();
  readonly vSwitches = new Map<string, SimVSwitch>();
  readonly groups = new Map<string, SimGroup>();
  readonly secrets = new Map<string, SimSecret>();
  /** Names ListSecrets leaves out while it shows the rest (a listing behind a secret just made). */
  readonly unlistedSecrets = new Set<string>();
  readonly invocations = new Map<string, SimInvocation>();
  /** The VSwitch and groups each instance was launched into. */
  readonly placement = new Map<string, { vSwitchId: string; groupIds: string[] }>();
  /** Faults to answer the next calls of an action with, before anything is done. */
  readonly faults = new Map<string, { status: number; code: string; times: number }>();
  /** Stopped instances (StopInstances) and the StoppedMode each got: FakeCloud knows running ones only. */
  readonly stopped = new Map<string, string>();
  /** ClientToken → the id it made. */
  readonly tokens = new Map<string, string>();
  private seq = 0;

  /** Answers the next `times` calls of `action` with this error (e.g. 403 Forbidden.RAM). */
  failNext(action: string, status: number, code: string, times = 1): void {
    this.faults.set(action, { status, code, times });
  }

  nextId(prefix: string): string {
    this.seq++;
    return `${prefix}-bp${this.seq.toString(36).padStart(12, "0")}`;
  }

  /** Everything carrying `nowscale:cluster` = clusterId, by kind and id. */
  tagged(clusterId: string): string[] {
    const of = (
      kind: string,
      items: Iterable<{ tags: Map<string, string> } & ({ id: string } | { name: string })>,
    ) =>
      [...items]
        .filter((x) => x.tags.get("nowscale:cluster") === clusterId)
        .map((x) => `${kind} ${"id" in x ? x.id : x.name}`);
    return [
      ...of("vpc", this.vpcs.values()),
      ...of("vswitch", this.vSwitches.values()),
      ...of("securityGroup", this.groups.values()),
      ...of("secret", this.secrets.values()),
    ];
  }
}

/** A fault the simulator answers with ECS's error body. */
class SimFault extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * ECS RPC API (version 2014-05-26) on loopback: parameters in the query string, x-acs-* headers,
 * ACS3-HMAC-SHA256 signature checked against the test key, JSON answers and ECS's error bodies
 * ({RequestId, HostId, Code, Message, Recommend}) with ECS's HTTP statuses.
 */
export async function startEcsSimulator(
  cloud: FakeCloud,
  options: EcsSimulatorOptions = {},
): Promise<EcsSimulator> {
  const calls: EcsCall[] = [];
  const world = new AlibabaWorld();
  const server = await startLocalServer((request) => {
    const action = request.headers["x-acs-action"] ?? "";
    const version = request.headers["x-acs-version"] ?? "";
    // RPC parameters come in the query, or in a form body (reqBodyType formData).
    const params = { ...request.query, ...Object.fromEntries(new URLSearchParams(request.body)) };
    calls.push({ action, params, request });
    const authProblem = checkAcs3Signature(request);
    if (authProblem !== undefined) return error(400, "SignatureDoesNotMatch", authProblem);
    const models = MODELS_BY_VERSION.get(version);
    if (models === undefined) return error(400, "InvalidVersion", `unsupported version ${version}`);
    const misnamed = checkAgainstModel(models, action, params);
    if (misnamed !== undefined) return error(400, "InvalidParameter", misnamed);
    const fault = world.faults.get(action);
    if (fault !== undefined && fault.times > 0) {
      fault.times--;
      return error(fault.status, fault.code, `injected ${fault.code}`);
    }
    try {
      const body =
        version === "2014-05-26"
          ? handleEcs(cloud, world, options, action, params)
          : version === "2016-04-28"
            ? handleVpc(cloud, world, action, params)
            : handleKms(world, action, params);
      return { status: 200, body: { ...body, RequestId: randomUUID() } };
    } catch (caught) {
      if (caught instanceof FakeCloudFault) {
        const fault = ECS_FAULTS[caught.kind];
        return error(fault.status, fault.code, caught.message);
      }
      if (caught instanceof SimFault) return error(caught.status, caught.code, caught.message);
      throw caught;
    }
  });
  return { ...server, calls, world, callsOf: (action) => calls.filter((c) => c.action === action) };
}

type ModelClass = {
  names(): Record<string, string>;
  types(): Record<string, unknown>;
};
const MODELS_BY_VERSION = new Map<string, Record<string, unknown>>([
  ["2014-05-26", ecsModels as unknown as Record<string, unknown>],
  ["2016-04-28", vpcModels as unknown as Record<string, unknown>],
  ["2016-01-20", kmsModels as unknown as Record<string, unknown>],
]);

/**
 * Every parameter must be a field of the SDK's `<Action>Request` model, by its wire name, and each
 * member of a repeated structure (`Tag.1.Key`, `Permissions.1.IpProtocol`) a field of the member's
 * model: a misnamed field fails here as the real API would ignore or refuse it.
 */
function checkAgainstModel(
  models: Record<string, unknown>,
  action: string,
  params: Record<string, string>,
): string | undefined {
  const model = Object.hasOwn(models, `${action}Request`)
    ? (models[`${action}Request`] as ModelClass)
    : undefined;
  if (model === undefined) return `simulator: no SDK model ${action}Request`;
  const names = model.names();
  const byWire = new Map(Object.entries(names).map(([field, wire]) => [wire, field]));
  for (const key of Object.keys(params)) {
    const [top = "", index, sub] = key.split(".");
    const field = byWire.get(top);
    if (field === undefined) return `${key} is not a parameter of ${action}`;
    if (sub === undefined) continue;
    if (index === undefined || !/^\d+$/.test(index)) return `${key}: not a repeated member`;
    const type = model.types()[field] as { itemType?: ModelClass } | undefined;
    const item = type?.itemType as ModelClass | string | undefined;
    if (typeof item !== "function" || !Object.values((item as ModelClass).names()).includes(sub))
      return `${key}: ${sub} is not a field of ${action}'s ${top}`;
  }
  return undefined;
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

const tagsOf = (p: Record<string, string>, prefix = "Tag") =>
  new Map(repeated(p, prefix).map((t) => [t.Key ?? "", t.Value ?? ""]));

/** Alibaba's tag key rules: 1-128 characters, not `aliyun…` nor `acs:…`, no `http://` or `https://`. */
function checkTagKeys(tags: Map<string, string>): void {
  for (const key of tags.keys()) {
    if (key.length === 0 || key.length > 128 || /^(aliyun|acs:)/i.test(key) || /https?:\/\//.test(key))
      throw new SimFault(400, "InvalidTagKey.Malformed", `tag key ${key} is not allowed`);
  }
}

/** Every `Tag.n` filter matches. */
function matchesTags(filter: Map<string, string>, tags: Map<string, string>): boolean {
  return [...filter].every(([k, v]) => tags.get(k) === v);
}

/** A ClientToken already seen returns the id it made. */
function once(world: AlibabaWorld, token: string | undefined, make: () => string): string {
  const known = token === undefined ? undefined : world.tokens.get(token);
  if (known !== undefined) return known;
  const id = make();
  if (token !== undefined) world.tokens.set(token, id);
  return id;
}

function isLive(cloud: FakeCloud, instanceId: string): boolean {
  return cloud.describe([instanceId]).some((i) => i.state !== "TERMINATED");
}

function handleEcs(
  cloud: FakeCloud,
  world: AlibabaWorld,
  options: EcsSimulatorOptions,
  action: string,
  p: Record<string, string>,
): Record<string, unknown> {
  switch (action) {
    case "CreateSecurityGroup": {
      const vpcId = p.VpcId ?? "";
      if (!world.vpcs.has(vpcId)) throw new SimFault(404, "InvalidVpcId.NotFound", `no VPC ${vpcId}`);
      const tags = tagsOf(p);
      checkTagKeys(tags);
      const id = once(world, p.ClientToken, () => {
        const made = world.nextId("sg");
        world.groups.set(made, { id: made, vpcId, name: p.SecurityGroupName ?? "", tags, rules: [] });
        return made;
      });
      return { SecurityGroupId: id };
    }
    case "AuthorizeSecurityGroup": {
      const group = world.groups.get(p.SecurityGroupId ?? "");
      if (group === undefined) throw new SimFault(404, "InvalidSecurityGroupId.NotFound", "no such group");
      for (const rule of repeated(p, "Permissions")) {
        if (rule.SourceGroupId !== undefined && !world.groups.has(rule.SourceGroupId))
          throw new SimFault(404, "InvalidSecurityGroupId.NotFound", "no such source group");
        if (!group.rules.some((r) => JSON.stringify(r) === JSON.stringify(rule))) group.rules.push(rule);
      }
      return {};
    }
    case "DescribeSecurityGroups": {
      const filter = tagsOf(p);
      const found = [...world.groups.values()].filter(
        (g) => matchesTags(filter, g.tags) && (p.VpcId === undefined || g.vpcId === p.VpcId),
      );
      return {
        SecurityGroups: {
          SecurityGroup: found.map((g) => ({
            SecurityGroupId: g.id,
            SecurityGroupName: g.name,
            VpcId: g.vpcId,
            SecurityGroupType: "normal",
            Tags: { Tag: [...g.tags].map(([TagKey, TagValue]) => ({ TagKey, TagValue })) },
          })),
        },
        NextToken: "",
        TotalCount: found.length,
      };
    }
    case "DescribeSecurityGroupAttribute": {
      // A group's rules as AuthorizeSecurityGroup stored them, ingress only when asked; members of one
      // group reach each other by default (InnerAccessPolicy Accept, the API's default for normal groups).
      const group = world.groups.get(p.SecurityGroupId ?? "");
      if (group === undefined)
        throw new SimFault(404, "InvalidSecurityGroupId.NotFound", `no group ${p.SecurityGroupId}`);
      const rules = p.Direction === "egress" ? [] : group.rules;
      return {
        SecurityGroupId: group.id,
        SecurityGroupName: group.name,
        VpcId: group.vpcId,
        RegionId: p.RegionId,
        InnerAccessPolicy: group.innerAccessPolicy ?? "Accept",
        Permissions: {
          Permission: rules.map((r) => ({
            Direction: "ingress",
            IpProtocol: r.IpProtocol,
            PortRange: r.PortRange,
            Policy: r.Policy ?? "Accept",
            Priority: r.Priority ?? "1",
            ...(r.SourceCidrIp === undefined ? {} : { SourceCidrIp: r.SourceCidrIp }),
            ...(r.SourceGroupId === undefined ? {} : { SourceGroupId: r.SourceGroupId }),
          })),
        },
      };
    }
    case "DeleteSecurityGroup": {
      const id = p.SecurityGroupId ?? "";
      if (!world.groups.has(id)) throw new SimFault(404, "InvalidSecurityGroupId.NotFound", `no group ${id}`);
      for (const [instanceId, placed] of world.placement)
        if (placed.groupIds.includes(id) && isLive(cloud, instanceId))
          throw new SimFault(403, "DependencyViolation", `instance ${instanceId} is still in ${id}`);
      world.groups.delete(id);
      return {};
    }
    case "RunCommand": {
      if (p.Type !== "RunShellScript")
        throw new SimFault(400, "InvalidParameter.Type", "RunShellScript only");
      const script =
        p.ContentEncoding === "Base64"
          ? Buffer.from(p.CommandContent ?? "", "base64").toString("utf8")
          : (p.CommandContent ?? "");
      const ids = repeated(p, "InstanceId").map((x) => x[""] ?? "");
      const invokeId = `t-${randomUUID().replace(/-/g, "").slice(0, 20)}`;
      for (const instanceId of ids) {
        if (!isLive(cloud, instanceId))
          throw new SimFault(404, "InvalidInstance.NotFound", `instance ${instanceId} is not running`);
        const outcome =
          options.runCommand === undefined
            ? { exitCode: 127, output: "nowscale-agent: not found\n" }
            : options.runCommand(instanceId, script);
        world.invocations.set(`${invokeId}/${instanceId}`, {
          invokeId,
          instanceId,
          script,
          polls: 0,
          outcome,
        });
      }
      return { CommandId: `c-${invokeId.slice(2)}`, InvokeId: invokeId };
    }
    case "DescribeInvocationResults": {
      const invocation = world.invocations.get(`${p.InvokeId ?? ""}/${p.InstanceId ?? ""}`);
      const results = [];
      if (invocation !== undefined) {
        invocation.polls++;
        const done = invocation.polls > 1 && invocation.outcome !== undefined;
        const output = done ? (invocation.outcome?.output ?? "") : "";
        results.push({
          InvokeId: invocation.invokeId,
          InstanceId: invocation.instanceId,
          InvocationStatus: done ? (invocation.outcome?.exitCode === 0 ? "Success" : "Failed") : "Running",
          InvokeRecordStatus: done ? "Finished" : "Running",
          ...(done ? { ExitCode: invocation.outcome?.exitCode ?? 0 } : {}),
          Output: p.ContentEncoding === "PlainText" ? output : Buffer.from(output).toString("base64"),
        });
      }
      return {
        Invocation: {
          InvocationResults: { InvocationResult: results },
          TotalCount: results.length,
          PageNumber: 1,
          PageSize: 10,
        },
      };
    }
    case "RunInstances": {
      const name = p.InstanceName;
      if (name !== undefined && (name.length < 2 || name.length > 128))
        throw new SimFault(400, "InvalidInstanceName.Malformed", "InstanceName takes 2 to 128 characters");
      if (p.VSwitchId === undefined && options.defaultVpc === false)
        throw new SimFault(
          403,
          "InvalidVSwitchId.NotFound",
          "the region has no default VPC: VSwitchId is required",
        );
      if (p.VSwitchId !== undefined && world.vSwitches.size > 0 && !world.vSwitches.has(p.VSwitchId))
        throw new SimFault(404, "InvalidVSwitchId.NotFound", `no VSwitch ${p.VSwitchId}`);
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
      const groupIds = repeated(p, "SecurityGroupIds").map((x) => x[""] ?? "");
      for (const i of started) world.placement.set(i.id, { vSwitchId: p.VSwitchId ?? "", groupIds });
      return { InstanceIdSets: { InstanceIdSet: started.map((i) => i.id) }, TradePrice: 0 };
    }
    case "DeleteInstances":
      cloud.terminate(repeated(p, "InstanceId").map((x) => x[""] ?? ""));
      return {};
    case "StopInstances":
    case "StartInstances": {
      // Only Running instances stop and only Stopped ones start (IncorrectInstanceStatus, 403); an unknown
      // id fails the call. Done at once here (ECS passes through Stopping / Starting).
      const ids = repeated(p, "InstanceId").map((x) => x[""] ?? "");
      const found = cloud.describe(ids).filter((i) => i.state !== "TERMINATED");
      const unknown = ids.filter((id) => !found.some((i) => i.id === id));
      if (unknown.length > 0)
        throw new SimFault(404, "InvalidInstanceId.NotFound", `no instance ${unknown.join(", ")}`);
      const want = action === "StopInstances" ? "Running" : "Stopped";
      for (const i of found)
        if (ecsStatus(i, world) !== want)
          throw new SimFault(403, "IncorrectInstanceStatus", `${i.id} is ${ecsStatus(i, world)}`);
      for (const i of found) {
        // Economical mode: pay-as-you-go only (the SDK model's StoppedMode); others stop billed.
        if (action === "StopInstances")
          world.stopped.set(
            i.id,
            p.StoppedMode === "StopCharging" && i.chargeType === "ON_DEMAND"
              ? "StopCharging"
              : "KeepCharging",
          );
        else world.stopped.delete(i.id);
      }
      return {
        InstanceResponses: { InstanceResponse: found.map((i) => ({ InstanceId: i.id, Code: "200" })) },
      };
    }
    case "DescribeZones": {
      if (p.RegionId === undefined) throw new SimFault(400, "MissingRegionId", "RegionId is mandatory");
      return { Zones: { Zone: cloud.zones().map((ZoneId) => ({ ZoneId, LocalName: ZoneId })) } };
    }
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
      return {
        TotalCount: found.length,
        NextToken: next,
        Instances: { Instance: page.map((i) => toEcsInstance(i, world)) },
      };
    }
    default:
      throw new Error(`simulator does not know ${action}`);
  }
}

function handleVpc(
  cloud: FakeCloud,
  world: AlibabaWorld,
  action: string,
  p: Record<string, string>,
): Record<string, unknown> {
  const tagList = (tags: Map<string, string>) => ({
    Tag: [...tags].map(([Key, Value]) => ({ Key, Value })),
  });
  const page = <T>(items: T[]) => {
    const size = Number(p.PageSize ?? 10);
    const number = Number(p.PageNumber ?? 1);
    return { items: items.slice((number - 1) * size, number * size), size, number, total: items.length };
  };
  switch (action) {
    case "CreateVpc": {
      const tags = tagsOf(p);
      checkTagKeys(tags);
      const id = once(world, p.ClientToken, () => {
        const made = world.nextId("vpc");
        world.vpcs.set(made, {
          id: made,
          cidr: p.CidrBlock ?? "",
          name: p.VpcName ?? "",
          status: "Pending",
          pendingDescribes: 1,
          tags,
        });
        return made;
      });
      return { VpcId: id, VRouterId: `vrt-${id.slice(4)}`, RouteTableId: `vtb-${id.slice(4)}` };
    }
    case "DescribeVpcs": {
      const filter = tagsOf(p);
      const found = [...world.vpcs.values()].filter(
        (v) => matchesTags(filter, v.tags) && (p.VpcId === undefined || v.id === p.VpcId),
      );
      const { items, size, number, total } = page(found);
      const body = {
        Vpcs: {
          Vpc: items.map((v) => ({
            VpcId: v.id,
            VpcName: v.name,
            CidrBlock: v.cidr,
            Status: v.status,
            RegionId: "cn-hangzhou",
            VSwitchIds: {
              VSwitchId: [...world.vSwitches.values()].filter((s) => s.vpcId === v.id).map((s) => s.id),
            },
            Tags: tagList(v.tags),
          })),
        },
        TotalCount: total,
        PageNumber: number,
        PageSize: size,
      };
      // A new VPC turns Available a moment after it is first seen Pending.
      for (const v of items) if (--v.pendingDescribes <= 0) v.status = "Available";
      return body;
    }
    case "CreateVSwitch": {
      const vpc = world.vpcs.get(p.VpcId ?? "");
      if (vpc === undefined) throw new SimFault(404, "InvalidVpcId.NotFound", `no VPC ${p.VpcId}`);
      if (vpc.status !== "Available") throw new SimFault(400, "IncorrectVpcStatus", "the VPC is Pending");
      const tags = tagsOf(p);
      checkTagKeys(tags);
      const id = once(world, p.ClientToken, () => {
        const made = world.nextId("vsw");
        world.vSwitches.set(made, {
          id: made,
          vpcId: vpc.id,
          zoneId: p.ZoneId ?? "",
          cidr: p.CidrBlock ?? "",
          tags,
        });
        return made;
      });
      return { VSwitchId: id };
    }
    case "DescribeVSwitches": {
      const found = [...world.vSwitches.values()].filter(
        (s) =>
          (p.VpcId === undefined || s.vpcId === p.VpcId) &&
          (p.ZoneId === undefined || s.zoneId === p.ZoneId) &&
          (p.VSwitchId === undefined || s.id === p.VSwitchId),
      );
      const { items, size, number, total } = page(found);
      return {
        VSwitches: {
          VSwitch: items.map((s) => ({
            VSwitchId: s.id,
            VpcId: s.vpcId,
            ZoneId: s.zoneId,
            CidrBlock: s.cidr,
            Status: "Available",
            Tags: tagList(s.tags),
          })),
        },
        TotalCount: total,
        PageNumber: number,
        PageSize: size,
      };
    }
    case "DeleteVSwitch": {
      const id = p.VSwitchId ?? "";
      if (!world.vSwitches.has(id)) throw new SimFault(404, "InvalidVSwitchId.NotFound", `no VSwitch ${id}`);
      for (const [instanceId, placed] of world.placement)
        if (placed.vSwitchId === id && isLive(cloud, instanceId))
          throw new SimFault(400, "DependencyViolation", `instance ${instanceId} is still in ${id}`);
      world.vSwitches.delete(id);
      return {};
    }
    case "DeleteVpc": {
      const id = p.VpcId ?? "";
      if (!world.vpcs.has(id)) throw new SimFault(404, "Forbidden.VpcNotFound", `no VPC ${id}`);
      if ([...world.vSwitches.values()].some((s) => s.vpcId === id))
        throw new SimFault(400, "DependencyViolation.VSwitch", "the VPC still holds VSwitches");
      if ([...world.groups.values()].some((g) => g.vpcId === id))
        throw new SimFault(400, "DependencyViolation.SecurityGroup", "the VPC still holds security groups");
      world.vpcs.delete(id);
      return {};
    }
    default:
      throw new Error(`simulator does not know VPC ${action}`);
  }
}

function handleKms(world: AlibabaWorld, action: string, p: Record<string, string>): Record<string, unknown> {
  const wireTags = (s: SimSecret) => ({
    Tag: [...s.tags].map(([TagKey, TagValue]) => ({ TagKey, TagValue })),
  });
  switch (action) {
    case "CreateSecret": {
      const name = p.SecretName ?? "";
      if (!/^[A-Za-z0-9_/+=.@-]{1,192}$/.test(name))
        throw new SimFault(400, "InvalidParameter", `SecretName ${name} is not allowed`);
      if (world.secrets.has(name)) throw new SimFault(400, "Rejected.ResourceExist", `${name} exists`);
      if (p.VersionId === undefined || p.SecretData === undefined)
        throw new SimFault(400, "MissingParameter", "VersionId and SecretData are required");
      const dataType = p.SecretDataType ?? "text";
      if (dataType === "binary" && Buffer.from(p.SecretData, "base64").toString("base64") !== p.SecretData)
        throw new SimFault(400, "InvalidParameter", "binary SecretData must be base64");
      const parsed = JSON.parse(p.Tags ?? "[]") as { TagKey?: string; TagValue?: string }[];
      const tags = new Map(parsed.map((t) => [t.TagKey ?? "", t.TagValue ?? ""]));
      checkTagKeys(tags);
      world.secrets.set(name, {
        name,
        data: p.SecretData,
        dataType,
        tags,
        versions: [p.VersionId],
        ...(p.EncryptionKeyId === undefined ? {} : { encryptionKeyId: p.EncryptionKeyId }),
      });
      return { Arn: `acs:kms:cn-hangzhou:1234:secret/${name}`, VersionId: p.VersionId, SecretName: name };
    }
    case "DescribeSecret": {
      const s = world.secrets.get(p.SecretName ?? "");
      if (s === undefined) throw new SimFault(404, "Forbidden.ResourceNotFound", "no such secret");
      return {
        Arn: `acs:kms:cn-hangzhou:1234:secret/${s.name}`,
        SecretName: s.name,
        ...(p.FetchTags === "true" ? { Tags: wireTags(s) } : {}),
      };
    }
    case "ListSecrets": {
      const size = Number(p.PageSize ?? 10);
      const number = Number(p.PageNumber ?? 1);
      const all = [...world.secrets.values()].filter((s) => !world.unlistedSecrets.has(s.name));
      return {
        SecretList: {
          Secret: all.slice((number - 1) * size, number * size).map((s) => ({
            SecretName: s.name,
            ...(p.FetchTags === "true" ? { Tags: wireTags(s) } : {}),
          })),
        },
        TotalCount: all.length,
        PageNumber: number,
        PageSize: size,
      };
    }
    case "GetSecretValue": {
      const s = world.secrets.get(p.SecretName ?? "");
      if (s === undefined) throw new SimFault(404, "Forbidden.ResourceNotFound", "no such secret");
      return {
        SecretName: s.name,
        VersionId: s.versions?.at(-1) ?? "v1",
        SecretData: s.data,
        SecretDataType: s.dataType,
        VersionStages: { VersionStage: ["ACSCurrent"] },
      };
    }
    case "PutSecretValue": {
      // A new version, made ACSCurrent (the default stage); a version id already there is refused.
      const s = world.secrets.get(p.SecretName ?? "");
      if (s === undefined) throw new SimFault(404, "Forbidden.ResourceNotFound", "no such secret");
      if (p.VersionId === undefined || p.SecretData === undefined)
        throw new SimFault(400, "MissingParameter", "VersionId and SecretData are required");
      if ((s.versions ?? ["v1"]).includes(p.VersionId))
        throw new SimFault(400, "Rejected.ResourceExist", `version ${p.VersionId} exists`);
      world.secrets.set(s.name, {
        ...s,
        data: p.SecretData,
        dataType: p.SecretDataType ?? "text",
        versions: [...(s.versions ?? ["v1"]), p.VersionId],
      });
      return { SecretName: s.name, VersionId: p.VersionId, VersionStages: { VersionStage: ["ACSCurrent"] } };
    }
    case "DeleteSecret": {
      const name = p.SecretName ?? "";
      if (!world.secrets.has(name)) throw new SimFault(404, "Forbidden.ResourceNotFound", "no such secret");
      world.secrets.delete(name);
      return { SecretName: name };
    }
    default:
      throw new Error(`simulator does not know KMS ${action}`);
  }
}

function ecsStatus(i: FakeInstance, world: AlibabaWorld): string {
  if (world.stopped.has(i.id)) return "Stopped";
  return i.state === "PENDING" ? "Pending" : "Running";
}

function toEcsInstance(i: FakeInstance, world: AlibabaWorld): Record<string, unknown> {
  const stoppedMode = world.stopped.get(i.id);
  const vSwitchId = i.subnetId ?? world.placement.get(i.id)?.vSwitchId ?? "";
  return {
    InstanceId: i.id,
    InstanceType: i.instanceType,
    RegionId: "cn-hangzhou",
    ZoneId: i.zone,
    Status: ecsStatus(i, world),
    ...(stoppedMode === undefined ? {} : { StoppedMode: stoppedMode }),
    InstanceChargeType: "PostPaid",
    SpotStrategy: i.chargeType === "SPOT" ? "SpotAsPriceGo" : "NoSpot",
    CreationTime: new Date(i.launchedAt).toISOString().slice(0, 16).concat("Z"),
    ImageId: i.imageId,
    // The VSwitch's VPC when the simulated account has that VSwitch (an instance is in its VSwitch's VPC).
    VpcAttributes: {
      VpcId: world.vSwitches.get(vSwitchId)?.vpcId ?? "vpc-test0001",
      VSwitchId: vSwitchId,
      PrivateIpAddress: { IpAddress: [i.privateIp] },
    },
    SecurityGroupIds: { SecurityGroupId: world.placement.get(i.id)?.groupIds ?? [] },
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
