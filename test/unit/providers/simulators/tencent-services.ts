import type { FakeCloud } from "../../../../lib/providers/fake/index.js";

/**
 * Tencent's VPC (2017-03-12), Secrets Manager (SSM, 2019-09-23) and TAT (2020-10-28) as the loopback
 * simulator answers them (tencent-cvm.ts routes their actions here): the state a cluster's network,
 * security group, secrets and agent commands leave in the account, the rules the real APIs enforce that
 * NowScale depends on, and errors with the real codes. A rule's comment names where it comes from.
 */

export interface SimVpc {
  VpcId: string;
  VpcName: string;
  CidrBlock: string;
  tags: Record<string, string>;
}
export interface SimSubnet {
  SubnetId: string;
  VpcId: string;
  CidrBlock: string;
  Zone: string;
  SubnetName: string;
  tags: Record<string, string>;
}
export interface SimSecurityGroup {
  SecurityGroupId: string;
  SecurityGroupName: string;
  tags: Record<string, string>;
  policies: { Ingress: unknown[]; Egress: unknown[] };
}
export interface SimSecret {
  SecretName: string;
  VersionId: string;
  SecretString?: string;
  SecretBinary?: string;
  Status: "Enabled" | "Disabled";
  tags: Record<string, string>;
}
export interface SimInvocationTask {
  InvocationTaskId: string;
  InvocationId: string;
  CommandId: string;
  InstanceId: string;
  command: string;
  TaskStatus: string;
  ExitCode: number;
  Output: string;
  /** Describe calls left before the task ends (TAT answers RUNNING a while). */
  pendingPolls: number;
}

/** What an agent on the instance does with a command: its exit code and stdout; undefined: no TAT agent. */
export type TatAgent = (
  instanceId: string,
  command: string,
) => { exitCode: number; output: string } | undefined;

/** A thrown API error with the real code; the simulator answers it as `{"Response":{"Error":...}}`. */
export class TencentApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export class TencentServices {
  readonly vpcs = new Map<string, SimVpc>();
  readonly subnets = new Map<string, SimSubnet>();
  readonly securityGroups = new Map<string, SimSecurityGroup>();
  readonly secrets = new Map<string, SimSecret>();
  /** Names ListSecrets leaves out while it shows the rest (a listing behind a secret just made). */
  readonly unlistedSecrets = new Set<string>();
  readonly tasks = new Map<string, SimInvocationTask>();
  /** The security groups each CVM instance is in (RunInstances' SecurityGroupIds; a test's seeded master). */
  readonly instanceGroups = new Map<string, string[]>();
  /** The agent answering TAT commands. @default none (every command's delivery fails) */
  tatAgent: TatAgent | undefined;
  /** Describe polls a TAT task stays RUNNING. */
  tatPolls = 1;
  private readonly faults: { action: string; code: string; after: number }[] = [];
  private next = 1;

  constructor(private readonly cloud: FakeCloud) {}

  /** The next call of `action` (after `after` successful ones) fails with `code`. */
  failNext(action: string, code: string, after = 0): void {
    this.faults.push({ action, code, after });
  }

  /** Everything that exists in the account, for "left nothing behind" assertions. */
  inventory() {
    return {
      vpcs: [...this.vpcs.keys()],
      subnets: [...this.subnets.keys()],
      securityGroups: [...this.securityGroups.keys()],
      secrets: [...this.secrets.keys()],
    };
  }

  handles(action: string, version: string): boolean {
    if (version === "2019-09-23") return SSM_ACTIONS.has(action);
    if (version === "2020-10-28") return TAT_ACTIONS.has(action);
    return version === "2017-03-12" && VPC_ACTIONS.has(action);
  }

  handle(action: string, p: Record<string, unknown>): Record<string, unknown> {
    const at = this.faults.findIndex((f) => f.action === action);
    const pending = this.faults[at];
    if (pending !== undefined && pending.after > 0) pending.after--;
    else if (at >= 0) {
      const [fault] = this.faults.splice(at, 1);
      throw new TencentApiError(fault?.code ?? "InternalError", `injected ${fault?.code}`);
    }
    switch (action) {
      // ── VPC ──
      case "CreateVpc": {
        const vpc: SimVpc = {
          VpcId: this.id("vpc"),
          VpcName: String(p.VpcName),
          CidrBlock: String(p.CidrBlock),
          tags: tagsOf(p.Tags),
        };
        this.vpcs.set(vpc.VpcId, vpc);
        return { Vpc: vpcOut(vpc) };
      }
      case "CreateSubnets": {
        const vpcId = String(p.VpcId);
        if (!this.vpcs.has(vpcId)) throw new TencentApiError("ResourceNotFound", `no VPC ${vpcId}`);
        const made = (p.Subnets as { CidrBlock: string; SubnetName: string; Zone: string }[]).map((s) => {
          const subnet: SimSubnet = {
            SubnetId: this.id("subnet"),
            VpcId: vpcId,
            CidrBlock: s.CidrBlock,
            Zone: s.Zone,
            SubnetName: s.SubnetName,
            tags: tagsOf(p.Tags),
          };
          this.subnets.set(subnet.SubnetId, subnet);
          return subnet;
        });
        return { SubnetSet: made.map(subnetOut) };
      }
      case "DescribeVpcs": {
        const found = [...this.vpcs.values()].filter((v) =>
          matches(v.tags, p.Filters, { "vpc-id": v.VpcId }),
        );
        return { TotalCount: found.length, VpcSet: found.map(vpcOut) };
      }
      case "DescribeSubnets": {
        let found: SimSubnet[];
        if (Array.isArray(p.SubnetIds)) {
          // The real API refuses the whole call for an id it does not know.
          const missing = (p.SubnetIds as string[]).find((id) => !this.subnets.has(id));
          if (missing !== undefined) throw new TencentApiError("ResourceNotFound", `no subnet ${missing}`);
          found = (p.SubnetIds as string[]).flatMap((id) => this.subnets.get(id) ?? []);
        } else {
          found = [...this.subnets.values()].filter((s) =>
            matches(s.tags, p.Filters, { "vpc-id": s.VpcId, "subnet-id": s.SubnetId }),
          );
        }
        return { TotalCount: found.length, SubnetSet: found.map(subnetOut) };
      }
      case "DeleteSubnet": {
        const id = String(p.SubnetId);
        if (!this.subnets.has(id)) throw new TencentApiError("ResourceNotFound", `no subnet ${id}`);
        // A subnet with instances in it cannot go.
        if (this.cloud.live().some((i) => i.subnetId === id))
          throw new TencentApiError("ResourceInUse", `subnet ${id} still has instances`);
        this.subnets.delete(id);
        return {};
      }
      case "DeleteVpc": {
        const id = String(p.VpcId);
        if (!this.vpcs.has(id)) throw new TencentApiError("ResourceNotFound", `no VPC ${id}`);
        // "Before deleting a VPC, clear every resource in it" (DeleteVpc's documentation).
        if ([...this.subnets.values()].some((s) => s.VpcId === id))
          throw new TencentApiError("ResourceInUse", `VPC ${id} still has subnets`);
        this.vpcs.delete(id);
        return {};
      }
      case "CreateSecurityGroup": {
        const group: SimSecurityGroup = {
          SecurityGroupId: this.id("sg"),
          SecurityGroupName: String(p.GroupName),
          tags: tagsOf(p.Tags),
          policies: { Ingress: [], Egress: [] },
        };
        this.securityGroups.set(group.SecurityGroupId, group);
        return { SecurityGroup: sgOut(group) };
      }
      case "ModifySecurityGroupPolicies": {
        const group = this.mustGroup(String(p.SecurityGroupId));
        const set = p.SecurityGroupPolicySet as { Ingress?: unknown[]; Egress?: unknown[] };
        for (const rule of [...(set.Ingress ?? []), ...(set.Egress ?? [])] as Record<string, unknown>[]) {
          // "If Protocol is ALL, Port must be all too" (SecurityGroupPolicy's model).
          if (rule.Protocol === "ALL" && rule.Port !== "all")
            throw new TencentApiError("InvalidParameterValue", "Protocol ALL wants Port all");
          if (rule.SecurityGroupId !== undefined && rule.CidrBlock !== undefined)
            throw new TencentApiError("InvalidParameter.Coexist", "SecurityGroupId and CidrBlock");
        }
        group.policies = { Ingress: set.Ingress ?? [], Egress: set.Egress ?? [] };
        return {};
      }
      case "DescribeSecurityGroups": {
        const found = [...this.securityGroups.values()].filter((g) =>
          matches(g.tags, p.Filters, { "security-group-id": g.SecurityGroupId }),
        );
        return { TotalCount: found.length, SecurityGroupSet: found.map(sgOut) };
      }
      case "DescribeSecurityGroupPolicies": {
        // The group's rules in their order (PolicyIndex), as CVM evaluates them.
        const group = this.mustGroup(String(p.SecurityGroupId));
        const indexed = (rules: unknown[]) =>
          (rules as Record<string, unknown>[]).map((r, PolicyIndex) => ({ ...r, PolicyIndex }));
        return {
          SecurityGroupPolicySet: {
            Version: "1",
            Ingress: indexed(group.policies.Ingress),
            Egress: indexed(group.policies.Egress),
          },
        };
      }
      case "DeleteSecurityGroup": {
        this.mustGroup(String(p.SecurityGroupId));
        this.securityGroups.delete(String(p.SecurityGroupId));
        return {};
      }
      // ── SSM ──
      case "CreateSecret": {
        const name = String(p.SecretName);
        // "Letters, digits, '-' and '_', up to 128 bytes, starting with a letter or a digit" (the model).
        if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/.test(name))
          throw new TencentApiError("InvalidParameterValue", `SecretName ${name}`);
        if (this.secrets.has(name)) throw new TencentApiError("ResourceInUse.SecretExists", `${name} exists`);
        if ((p.SecretString === undefined) === (p.SecretBinary === undefined))
          throw new TencentApiError("InvalidParameter", "one of SecretString and SecretBinary");
        const tags: Record<string, string> = {};
        for (const t of (p.Tags ?? []) as { TagKey: string; TagValue: string }[]) tags[t.TagKey] = t.TagValue;
        this.secrets.set(name, {
          SecretName: name,
          VersionId: String(p.VersionId ?? "SSM_Current"),
          Status: "Enabled",
          tags,
          ...(typeof p.SecretString === "string" ? { SecretString: p.SecretString } : {}),
          ...(typeof p.SecretBinary === "string" ? { SecretBinary: p.SecretBinary } : {}),
        });
        return { SecretName: name, VersionId: p.VersionId, TagCode: 0, TagMsg: "" };
      }
      case "GetSecretValue": {
        const s = this.mustSecret(String(p.SecretName));
        if (p.VersionId !== s.VersionId && p.VersionId !== "SSM_Current")
          throw new TencentApiError("ResourceNotFound", `no version ${String(p.VersionId)}`);
        return {
          SecretName: s.SecretName,
          VersionId: s.VersionId,
          ...(s.SecretString === undefined ? {} : { SecretString: s.SecretString }),
          ...(s.SecretBinary === undefined ? {} : { SecretBinary: s.SecretBinary }),
        };
      }
      case "UpdateSecret": {
        // "Updates the content of the specified version" (the model): the version must exist, enabled.
        const s = this.mustSecret(String(p.SecretName));
        if (p.VersionId !== s.VersionId)
          throw new TencentApiError("ResourceNotFound", `no version ${String(p.VersionId)}`);
        if (s.Status !== "Enabled")
          throw new TencentApiError("OperationDenied", `${s.SecretName} is disabled`);
        if ((p.SecretString === undefined) === (p.SecretBinary === undefined))
          throw new TencentApiError("InvalidParameter", "one of SecretString and SecretBinary");
        const { SecretString: _s, SecretBinary: _b, ...kept } = s;
        this.secrets.set(s.SecretName, {
          ...kept,
          ...(typeof p.SecretString === "string" ? { SecretString: p.SecretString } : {}),
          ...(typeof p.SecretBinary === "string" ? { SecretBinary: p.SecretBinary } : {}),
        });
        return { SecretName: s.SecretName, VersionId: s.VersionId };
      }
      case "DisableSecret":
        this.mustSecret(String(p.SecretName)).Status = "Disabled";
        return { SecretName: p.SecretName };
      case "DeleteSecret": {
        const s = this.mustSecret(String(p.SecretName));
        // "You must first disable the secret with DisableSecret" (DeleteSecret's documentation).
        if (s.Status !== "Disabled")
          throw new TencentApiError("OperationDenied", `${s.SecretName} is not disabled`);
        this.secrets.delete(s.SecretName);
        return { SecretName: s.SecretName, DeleteTime: 0 };
      }
      case "ListSecrets": {
        const filters = (p.TagFilters ?? []) as { TagKey: string; TagValue?: string[] }[];
        const found = [...this.secrets.values()].filter(
          (s) =>
            !this.unlistedSecrets.has(s.SecretName) &&
            filters.every((f) => {
              const v = s.tags[f.TagKey];
              return v !== undefined && (f.TagValue === undefined || f.TagValue.includes(v));
            }),
        );
        const offset = Number(p.Offset ?? 0);
        const limit = Number(p.Limit ?? 20);
        return {
          TotalCount: found.length,
          SecretMetadatas: found
            .slice(offset, offset + limit)
            .map((s) => ({ SecretName: s.SecretName, Status: s.Status, SecretType: 0 })),
        };
      }
      // ── TAT ──
      case "RunCommand": {
        const ids = p.InstanceIds as string[];
        const command = Buffer.from(String(p.Content), "base64").toString("utf8");
        const invocationId = this.id("inv");
        const commandId = this.id("cmd");
        for (const instanceId of ids) {
          if (this.cloud.get(instanceId) === undefined)
            throw new TencentApiError("InvalidInstanceId.NotFound", `no instance ${instanceId}`);
        }
        for (const instanceId of ids) {
          const answer = this.tatAgent?.(instanceId, command);
          const task: SimInvocationTask = {
            InvocationTaskId: this.id("invt"),
            InvocationId: invocationId,
            CommandId: commandId,
            InstanceId: instanceId,
            command,
            TaskStatus:
              answer === undefined ? "DELIVER_FAILED" : answer.exitCode === 0 ? "SUCCESS" : "FAILED",
            ExitCode: answer?.exitCode ?? 0,
            Output: Buffer.from(answer?.output ?? "", "utf8").toString("base64"),
            pendingPolls: answer === undefined ? 0 : this.tatPolls,
          };
          this.tasks.set(task.InvocationTaskId, task);
        }
        return { CommandId: commandId, InvocationId: invocationId };
      }
      case "DescribeInvocationTasks": {
        if (p.InvocationTaskIds !== undefined && p.Filters !== undefined)
          throw new TencentApiError("InvalidParameter", "InvocationTaskIds and Filters together");
        const filters = (p.Filters ?? []) as { Name: string; Values: string[] }[];
        const found = [...this.tasks.values()].filter((t) => {
          if (Array.isArray(p.InvocationTaskIds))
            return (p.InvocationTaskIds as string[]).includes(t.InvocationTaskId);
          return filters.every((f) => {
            const field: Record<string, string> = {
              "invocation-id": t.InvocationId,
              "instance-id": t.InstanceId,
              "command-id": t.CommandId,
              "invocation-task-id": t.InvocationTaskId,
            };
            return field[f.Name] !== undefined && f.Values.includes(field[f.Name] ?? "");
          });
        });
        return {
          TotalCount: found.length,
          InvocationTaskSet: found.map((t) => {
            const running = t.pendingPolls > 0;
            if (running) t.pendingPolls--;
            return {
              InvocationId: t.InvocationId,
              InvocationTaskId: t.InvocationTaskId,
              CommandId: t.CommandId,
              InstanceId: t.InstanceId,
              TaskStatus: running ? "RUNNING" : t.TaskStatus,
              // Output is hidden unless HideOutput is false (its default is true).
              TaskResult:
                running || t.TaskStatus === "DELIVER_FAILED"
                  ? null
                  : { ExitCode: t.ExitCode, Output: p.HideOutput === false ? t.Output : "" },
            };
          }),
        };
      }
      default:
        throw new TencentApiError("InvalidAction", `simulator does not know ${action}`);
    }
  }

  private mustGroup(id: string): SimSecurityGroup {
    const group = this.securityGroups.get(id);
    if (group === undefined) throw new TencentApiError("ResourceNotFound", `no security group ${id}`);
    return group;
  }

  private mustSecret(name: string): SimSecret {
    const secret = this.secrets.get(name);
    if (secret === undefined)
      throw new TencentApiError("ResourceUnavailable.SecretNotExist", `no secret ${name}`);
    return secret;
  }

  private id(prefix: string): string {
    return `${prefix}-${(this.next++).toString(36).padStart(8, "0")}`;
  }
}

const VPC_ACTIONS = new Set([
  "CreateVpc",
  "CreateSubnets",
  "DescribeVpcs",
  "DescribeSubnets",
  "DeleteSubnet",
  "DeleteVpc",
  "CreateSecurityGroup",
  "ModifySecurityGroupPolicies",
  "DescribeSecurityGroups",
  "DescribeSecurityGroupPolicies",
  "DeleteSecurityGroup",
]);
const SSM_ACTIONS = new Set([
  "CreateSecret",
  "GetSecretValue",
  "UpdateSecret",
  "DisableSecret",
  "DeleteSecret",
  "ListSecrets",
]);
const TAT_ACTIONS = new Set(["RunCommand", "DescribeInvocationTasks"]);

function tagsOf(list: unknown): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const t of (list ?? []) as { Key: string; Value?: string }[]) tags[t.Key] = t.Value ?? "";
  return tags;
}

/**
 * The VPC API's filters: `tag:<key>` (everything after the first colon is the key, so `tag:nowscale:cluster`
 * names the key `nowscale:cluster`), `tag-key`, and the resource's own fields.
 */
function matches(tags: Record<string, string>, filters: unknown, fields: Record<string, string>): boolean {
  return ((filters ?? []) as { Name: string; Values: string[] }[]).every((f) => {
    if (f.Name.startsWith("tag:")) {
      const value = tags[f.Name.slice("tag:".length)];
      return value !== undefined && f.Values.includes(value);
    }
    if (f.Name === "tag-key") return f.Values.some((k) => tags[k] !== undefined);
    const own = fields[f.Name];
    if (own === undefined) throw new TencentApiError("InvalidParameter.FilterInvalidKey", f.Name);
    return f.Values.includes(own);
  });
}

const tagList = (tags: Record<string, string>) =>
  Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));

function vpcOut(v: SimVpc) {
  return {
    VpcId: v.VpcId,
    VpcName: v.VpcName,
    CidrBlock: v.CidrBlock,
    IsDefault: false,
    TagSet: tagList(v.tags),
  };
}

function subnetOut(s: SimSubnet) {
  return {
    SubnetId: s.SubnetId,
    VpcId: s.VpcId,
    CidrBlock: s.CidrBlock,
    Zone: s.Zone,
    SubnetName: s.SubnetName,
    IsDefault: false,
    TagSet: tagList(s.tags),
  };
}

function sgOut(g: SimSecurityGroup) {
  return {
    SecurityGroupId: g.SecurityGroupId,
    SecurityGroupName: g.SecurityGroupName,
    SecurityGroupDesc: "",
    IsDefault: false,
    TagSet: tagList(g.tags),
  };
}
