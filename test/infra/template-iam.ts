import { ACCOUNT, REGION } from "../support/aws-world.js";

/**
 * The synthesized template's IAM as concrete JSON: every role's policies (inline, overflow and
 * customer-managed) and every function's environment, with CloudFormation's intrinsics resolved the way
 * a deployment in ACCOUNT/REGION would resolve them. Physical names are made from the logical ids, so a
 * table's name in a function's environment and in a policy's ARN agree, as they do once deployed.
 */

type Json = unknown;
interface CfnResource {
  Type: string;
  Properties?: Record<string, Json>;
}
export interface Template {
  Resources: Record<string, CfnResource>;
}

export interface PolicyDocument {
  Version?: string;
  Statement: Record<string, Json>[];
}

const PSEUDO: Record<string, string> = {
  "AWS::Partition": "aws",
  "AWS::Region": REGION,
  "AWS::AccountId": ACCOUNT,
  "AWS::URLSuffix": "amazonaws.com",
  "AWS::StackName": "NowScale",
};

export class ResolvedTemplate {
  constructor(readonly template: Template) {}

  /** What `Ref` returns for the resource. */
  ref(id: string): string {
    const pseudo = PSEUDO[id];
    if (pseudo !== undefined) return pseudo;
    const r = this.resource(id);
    switch (r.Type) {
      case "AWS::SecretsManager::Secret":
        return `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${id}-AbCdEf`;
      case "AWS::StepFunctions::StateMachine":
        return `arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:${id}`;
      case "AWS::KMS::Key":
        return `key-${id}`;
      case "AWS::SNS::Topic":
        return `arn:aws:sns:${REGION}:${ACCOUNT}:${id}`;
      default:
        return id;
    }
  }

  getAtt(id: string, attribute: string): string {
    const r = this.resource(id);
    if (attribute !== "Arn") return `${id}.${attribute}`;
    switch (r.Type) {
      case "AWS::IAM::Role":
        return `arn:aws:iam::${ACCOUNT}:role/${id}`;
      case "AWS::IAM::InstanceProfile":
        return `arn:aws:iam::${ACCOUNT}:instance-profile/${id}`;
      case "AWS::KMS::Key":
        return `arn:aws:kms:${REGION}:${ACCOUNT}:key/key-${id}`;
      case "AWS::DynamoDB::Table":
        return `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${id}`;
      case "AWS::Lambda::Function":
        return `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${id}`;
      case "AWS::Logs::LogGroup":
        return `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:${id}:*`;
      case "AWS::S3::Bucket":
        return `arn:aws:s3:::${id}`;
      case "AWS::Events::EventBus":
        return `arn:aws:events:${REGION}:${ACCOUNT}:event-bus/${id}`;
      default:
        return this.ref(id);
    }
  }

  resolve(value: Json): Json {
    if (Array.isArray(value)) return value.map((v) => this.resolve(v));
    if (value === null || typeof value !== "object") return value;
    const o = value as Record<string, Json>;
    if ("Ref" in o) return this.ref(String(o.Ref));
    if ("Fn::GetAtt" in o) {
      const [id, attr] = o["Fn::GetAtt"] as [string, string];
      return this.getAtt(id, attr);
    }
    if ("Fn::Join" in o) {
      const [sep, parts] = o["Fn::Join"] as [string, Json[]];
      return (this.resolve(parts) as Json[]).join(sep);
    }
    if ("Fn::Sub" in o) {
      const arg = o["Fn::Sub"];
      const [text, vars] = Array.isArray(arg) ? (arg as [string, Record<string, Json>]) : [String(arg), {}];
      return text.replace(/\$\{([^}]+)\}/g, (_m, name: string) => {
        if (name in vars) return String(this.resolve(vars[name]));
        const [id, attr] = name.split(".");
        return attr === undefined ? this.ref(name) : this.getAtt(id ?? "", attr);
      });
    }
    if ("Fn::Select" in o) {
      const [index, list] = o["Fn::Select"] as [number, Json];
      return (this.resolve(list) as Json[])[Number(index)];
    }
    if ("Fn::Split" in o) {
      const [sep, text] = o["Fn::Split"] as [string, Json];
      return String(this.resolve(text)).split(sep);
    }
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, this.resolve(v)]));
  }

  resource(id: string): CfnResource {
    const r = this.template.Resources[id];
    if (r === undefined) throw new Error(`no resource ${id} in the template`);
    return r;
  }

  ofType(type: string): [string, CfnResource][] {
    return Object.entries(this.template.Resources).filter(([, r]) => r.Type === type);
  }

  /** The identity policies of a role: inline (AWS::IAM::Policy) and customer-managed ones attached to it. */
  rolePolicies(roleId: string): { name: string; policy: PolicyDocument }[] {
    const out: { name: string; policy: PolicyDocument }[] = [];
    for (const [id, r] of [...this.ofType("AWS::IAM::Policy"), ...this.ofType("AWS::IAM::ManagedPolicy")]) {
      const roles = (r.Properties?.Roles ?? []) as { Ref?: string }[];
      if (!roles.some((x) => x.Ref === roleId)) continue;
      out.push({ name: id, policy: this.resolve(r.Properties?.PolicyDocument) as PolicyDocument });
    }
    return out;
  }

  /** The key policy of the KMS key with this ARN. */
  keyPolicy(keyArn: string): PolicyDocument {
    const id = keyArn.split(":key/key-")[1] ?? "";
    return this.resolve(this.resource(id).Properties?.KeyPolicy) as PolicyDocument;
  }

  /** The logical id of the role a function runs with. */
  functionRole(functionId: string): string {
    const role = this.resource(functionId).Properties?.Role as { "Fn::GetAtt": [string, string] };
    return role["Fn::GetAtt"][0];
  }

  /** A function's environment variables, resolved. */
  functionEnv(functionId: string): Record<string, string> {
    const env = (this.resource(functionId).Properties?.Environment as { Variables?: Record<string, Json> })
      ?.Variables;
    return Object.fromEntries(Object.entries(env ?? {}).map(([k, v]) => [k, String(this.resolve(v))]));
  }

  /** The function whose logical id starts with `prefix` (e.g. "Scaler" but not "ScalerFanout"). */
  functionId(prefix: string): string {
    const found = this.ofType("AWS::Lambda::Function").filter(([id]) =>
      new RegExp(`^${prefix}[0-9A-F]{8}$`).test(id),
    );
    if (found.length !== 1) throw new Error(`expected one function ${prefix}, found ${found.length}`);
    return (found[0] as [string, CfnResource])[0];
  }

  /** Instance profile ARN → role ARN, for iam:PassRole. */
  profileRoles(): Map<string, string> {
    const map = new Map<string, string>();
    for (const [id, r] of this.ofType("AWS::IAM::InstanceProfile")) {
      const [role] = (r.Properties?.Roles ?? []) as { Ref: string }[];
      if (role !== undefined) map.set(this.getAtt(id, "Arn"), this.getAtt(role.Ref, "Arn"));
    }
    return map;
  }

  /** The logical id of the role an instance profile holds. */
  profileRole(profileId: string): string {
    const [role] = (this.resource(profileId).Properties?.Roles ?? []) as { Ref: string }[];
    if (role === undefined) throw new Error(`${profileId} holds no role`);
    return role.Ref;
  }
}
