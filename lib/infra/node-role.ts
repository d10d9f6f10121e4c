import { Stack } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import type * as kms from "aws-cdk-lib/aws-kms";
import { Construct } from "constructs";
import { MANAGED_TAG, SECRET_KIND_TAG, SECRET_VPC_TAG } from "../ports/tags.js";
import { USER_SECRET_KIND } from "../ports/user-secrets.js";

/** IAM's policy variable (not a JavaScript template): the VPC of the instance that signed the request. */
const SOURCE_VPC_VARIABLE = ["$", "{aws:ec2InstanceSourceVPC}"].join("");

export interface NodeRoleProps {
  /** "master": SSM agent, both cluster secrets, the agent bundle; "compute": the munge key only. */
  kind: "master" | "compute";
  secretsKey: kms.IKey;
}

/**
 * The role of the cluster instances of one kind. Two roles, not one: a compute never holds the agent's
 * signing key, and only the master is reachable over SSM. Both read only the secrets of the cluster in
 * their own VPC: the secret's `nowscale:vpc` tag must equal the VPC the request comes from
 * (aws:ec2InstanceSourceVPC, set by AWS on requests signed with an instance's role credentials; absent
 * anywhere else, so credentials taken off a node are refused elsewhere). On the nodes, the boot scripts
 * keep the metadata service (and so these credentials) away from every user but root and slurm.
 */
export class NodeRole extends Construct {
  readonly role: iam.Role;
  readonly instanceProfile: iam.InstanceProfile;

  constructor(scope: Construct, id: string, props: NodeRoleProps) {
    super(scope, id);
    this.role = new iam.Role(this, "Role", {
      assumedBy: new iam.ServicePrincipal("ec2.amazonaws.com"),
      description:
        props.kind === "master"
          ? "NowScale cluster masters: SSM agent, the cluster's munge and agent keys, the agent bundle"
          : "NowScale compute nodes: the cluster's munge key",
    });
    const stack = Stack.of(this);
    // The master's agent reads its cluster's users' passwords and keys (lib/control/users.ts); computes never.
    const kinds = props.kind === "master" ? ["munge-key", "agent-hmac-key", USER_SECRET_KIND] : ["munge-key"];
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: "ReadOwnClusterSecrets",
        actions: ["secretsmanager:GetSecretValue"],
        resources: [
          `arn:${stack.partition}:secretsmanager:${stack.region}:${stack.account}:secret:nowscale/*`,
        ],
        conditions: {
          StringEquals: {
            [`aws:ResourceTag/${MANAGED_TAG}`]: "true",
            [`aws:ResourceTag/${SECRET_KIND_TAG}`]: kinds,
            // A policy variable: the VPC of the instance that signed the request.
            [`aws:ResourceTag/${SECRET_VPC_TAG}`]: SOURCE_VPC_VARIABLE,
          },
        },
      }),
    );
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: "DecryptSecretsThroughSecretsManager",
        actions: ["kms:Decrypt"],
        resources: [props.secretsKey.keyArn],
        conditions: { StringEquals: { "kms:ViaService": `secretsmanager.${stack.region}.amazonaws.com` } },
      }),
    );
    if (props.kind === "master") {
      for (const s of ssmAgentStatements()) this.role.addToPolicy(s);
    }
    this.instanceProfile = new iam.InstanceProfile(this, "InstanceProfile", { role: this.role });
  }
}

/**
 * What the SSM agent needs to register and receive Run Command (AmazonSSMManagedInstanceCore without
 * inventory, patching, associations' documents and parameters): none supports resource-level
 * permissions except UpdateInstanceInformation, which is scoped to instances.
 */
export function ssmAgentStatements(): iam.PolicyStatement[] {
  return [
    new iam.PolicyStatement({
      sid: "SsmAgentRegisters",
      actions: ["ssm:UpdateInstanceInformation", "ssm:ListInstanceAssociations"],
      resources: ["*"],
    }),
    new iam.PolicyStatement({
      sid: "SsmAgentChannels",
      actions: [
        "ssmmessages:CreateControlChannel",
        "ssmmessages:CreateDataChannel",
        "ssmmessages:OpenControlChannel",
        "ssmmessages:OpenDataChannel",
        "ec2messages:AcknowledgeMessage",
        "ec2messages:DeleteMessage",
        "ec2messages:FailMessage",
        "ec2messages:GetEndpoint",
        "ec2messages:GetMessages",
        "ec2messages:SendReply",
      ],
      resources: ["*"],
    }),
  ];
}
