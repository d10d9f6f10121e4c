import { Stack } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import type { Construct } from "constructs";
import { ATTACH_TAG, MANAGED_TAG, ROLE_TAG, SECRET_KIND_TAG } from "../ports/tags.js";
import { USER_SECRET_KIND } from "../ports/user-secrets.js";
import { defaultImageParameter } from "../providers/aws-ec2/default-image.js";

/**
 * Least-privilege statements for what the control plane does in EC2, SSM and Secrets Manager. Each one
 * is proven by test/infra/iam-simulation.test.ts: every AWS call the code makes, expanded to the
 * resources and condition keys AWS authorizes it against, must be allowed, and the negative cases
 * (untagged instances, masters from the scaler, other roles, other clusters' secrets) denied.
 */

const MANAGED_REQUEST = { [`aws:RequestTag/${MANAGED_TAG}`]: "true" };
const MANAGED_RESOURCE = { [`aws:ResourceTag/${MANAGED_TAG}`]: "true" };
/** NowScale's own tags (nowscale:*, nowscale-role, NowScaleRound) and Name; nothing else at creation. */
const OWN_TAG_KEYS = {
  "ForAllValues:StringLike": { "aws:TagKeys": ["nowscale:*", "nowscale-*", "NowScale*", "Name"] },
};

function arn(scope: Construct, service: string, resource: string): string {
  const stack = Stack.of(scope);
  return `arn:${stack.partition}:${service}:${stack.region}:${stack.account}:${resource}`;
}

function ec2Arn(scope: Construct, resource: string, global = false): string {
  const stack = Stack.of(scope);
  return `arn:${stack.partition}:ec2:${stack.region}:${global ? "" : stack.account}:${resource}`;
}

/** What RunInstances creates and NowScale tags at launch (ec2-api.ts runRequest tags all four). */
const LAUNCHED = ["instance/*", "volume/*", "network-interface/*", "spot-instances-request/*"];

/**
 * RunInstances, resource by resource as EC2 authorizes it: the instance with the tag and IMDSv2; the
 * volume, network interface and spot request with the tag (ec2:MetadataHttpTokens exists only for the
 * instance); only the clusters' own (tagged) security groups; any image, subnet (the user's own are
 * untagged) and key pair. CreateTags only as part of the launch; PassRole only for `passRoleArns`.
 */
export function launchStatements(scope: Construct, passRoleArns: readonly string[]): iam.PolicyStatement[] {
  return [
    new iam.PolicyStatement({
      sid: "LaunchTaggedInstancesWithImdsV2",
      actions: ["ec2:RunInstances"],
      resources: [ec2Arn(scope, "instance/*")],
      conditions: {
        StringEquals: { ...MANAGED_REQUEST, "ec2:MetadataHttpTokens": "required" },
        ...OWN_TAG_KEYS,
      },
    }),
    new iam.PolicyStatement({
      sid: "LaunchTaggedVolumesInterfacesSpotRequests",
      actions: ["ec2:RunInstances"],
      resources: LAUNCHED.slice(1).map((r) => ec2Arn(scope, r)),
      conditions: { StringEquals: MANAGED_REQUEST, ...OWN_TAG_KEYS },
    }),
    new iam.PolicyStatement({
      sid: "LaunchIntoClusterSecurityGroups",
      actions: ["ec2:RunInstances"],
      resources: [ec2Arn(scope, "security-group/*")],
      conditions: { StringEquals: MANAGED_RESOURCE },
    }),
    new iam.PolicyStatement({
      sid: "LaunchFromImagesSubnetsKeyPairs",
      actions: ["ec2:RunInstances"],
      resources: [ec2Arn(scope, "image/*", true), ec2Arn(scope, "subnet/*"), ec2Arn(scope, "key-pair/*")],
    }),
    new iam.PolicyStatement({
      sid: "TagOnlyAtLaunch",
      actions: ["ec2:CreateTags"],
      resources: LAUNCHED.map((r) => ec2Arn(scope, r)),
      conditions: { StringEquals: { "ec2:CreateAction": "RunInstances", ...MANAGED_REQUEST } },
    }),
    new iam.PolicyStatement({
      sid: "PassOnlyTheNodeRole",
      actions: ["iam:PassRole"],
      resources: [...passRoleArns],
      conditions: { StringEquals: { "iam:PassedToService": "ec2.amazonaws.com" } },
    }),
    new iam.PolicyStatement({
      sid: "ReadTheDefaultImageParameter",
      // RunInstances with resolve:ssm (computes) and the master's image at create time.
      actions: ["ssm:GetParameter", "ssm:GetParameters"],
      resources: (["amd64", "arm64"] as const).map(
        (arch) =>
          `arn:${Stack.of(scope).partition}:ssm:${Stack.of(scope).region}::parameter${defaultImageParameter(arch)}`,
      ),
    }),
    describeStatement(),
  ];
}

/**
 * The scaler, reconciler and API terminate computes only: tagged, and never a master (the creation and
 * deletion workflows own masters).
 */
export function terminateComputesStatement(scope: Construct): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid: "TerminateOnlyTaggedComputes",
    actions: ["ec2:TerminateInstances"],
    resources: [ec2Arn(scope, "instance/*")],
    conditions: {
      StringEquals: MANAGED_RESOURCE,
      // A negated operator matches when the tag is absent: computes carry no role tag.
      StringNotEquals: { [`aws:ResourceTag/${ROLE_TAG}`]: "master" },
    },
  });
}

/** The workflows terminate every instance of a cluster they delete, the master included. */
export function terminateTaggedStatement(scope: Construct): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid: "TerminateOnlyTaggedInstances",
    actions: ["ec2:TerminateInstances"],
    resources: [ec2Arn(scope, "instance/*")],
    conditions: { StringEquals: MANAGED_RESOURCE },
  });
}

/** EC2's Describe calls support no resource-level permissions. */
export function describeStatement(): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid: "DescribeEc2",
    actions: [
      "ec2:DescribeInstances",
      "ec2:DescribeInstanceTypes",
      "ec2:DescribeInstanceTypeOfferings",
      // The API's check of a configuration's zones (lib/control/zones.ts).
      "ec2:DescribeAvailabilityZones",
      "ec2:DescribeVpcs",
      "ec2:DescribeSubnets",
      "ec2:DescribeSecurityGroups",
      "ec2:DescribeRouteTables",
      "ec2:DescribeInternetGateways",
      "ec2:DescribeVpcEndpoints",
    ],
    resources: ["*"],
  });
}

/** The creation workflow's network: created only with the tag, changed and deleted only when tagged. */
export function networkStatements(scope: Construct): iam.PolicyStatement[] {
  const made = [
    "vpc/*",
    "subnet/*",
    "security-group/*",
    "internet-gateway/*",
    "route-table/*",
    "vpc-endpoint/*",
  ];
  const tagged = made.map((r) => ec2Arn(scope, r));
  return [
    new iam.PolicyStatement({
      sid: "CreateTaggedNetwork",
      actions: [
        "ec2:CreateVpc",
        "ec2:CreateSubnet",
        "ec2:CreateSecurityGroup",
        "ec2:CreateInternetGateway",
        "ec2:CreateRouteTable",
        "ec2:CreateVpcEndpoint",
      ],
      resources: tagged,
      conditions: { StringEquals: MANAGED_REQUEST },
    }),
    new iam.PolicyStatement({
      sid: "CreateInTaggedVpc",
      actions: [
        "ec2:CreateSubnet",
        "ec2:CreateSecurityGroup",
        "ec2:CreateRouteTable",
        "ec2:CreateVpcEndpoint",
      ],
      resources: [ec2Arn(scope, "vpc/*")],
      conditions: { StringEquals: MANAGED_RESOURCE },
    }),
    new iam.PolicyStatement({
      sid: "CreateGroupInUserVpc",
      actions: ["ec2:CreateSecurityGroup"],
      resources: [ec2Arn(scope, "vpc/*")],
    }),
    new iam.PolicyStatement({
      sid: "EndpointsInTaggedSubnetsGroupsRoutes",
      actions: ["ec2:CreateVpcEndpoint"],
      resources: [
        ec2Arn(scope, "subnet/*"),
        ec2Arn(scope, "security-group/*"),
        ec2Arn(scope, "route-table/*"),
      ],
      conditions: { StringEquals: MANAGED_RESOURCE },
    }),
    new iam.PolicyStatement({
      sid: "TagNetworkOnlyAtCreation",
      actions: ["ec2:CreateTags"],
      resources: tagged,
      conditions: {
        StringEquals: {
          "ec2:CreateAction": [
            "CreateVpc",
            "CreateSubnet",
            "CreateSecurityGroup",
            "CreateInternetGateway",
            "CreateRouteTable",
            "CreateVpcEndpoint",
          ],
          ...MANAGED_REQUEST,
        },
      },
    }),
    new iam.PolicyStatement({
      sid: "ChangeAndDeleteOnlyTaggedNetwork",
      actions: [
        "ec2:AuthorizeSecurityGroupIngress",
        "ec2:DeleteSecurityGroup",
        "ec2:DeleteSubnet",
        "ec2:DeleteVpc",
        "ec2:ModifyVpcAttribute",
        "ec2:ModifySubnetAttribute",
        "ec2:AttachInternetGateway",
        "ec2:DetachInternetGateway",
        "ec2:DeleteInternetGateway",
        "ec2:CreateRoute",
        "ec2:AssociateRouteTable",
        "ec2:DisassociateRouteTable",
        "ec2:DeleteRouteTable",
        "ec2:DeleteVpcEndpoints",
      ],
      resources: tagged,
      conditions: { StringEquals: MANAGED_RESOURCE },
    }),
  ];
}

/** The clusters' own secrets, named nowscale/<cluster>/..., created only with the tag. */
export function clusterSecretStatements(scope: Construct): iam.PolicyStatement[] {
  const secrets = arn(scope, "secretsmanager", "secret:nowscale/*");
  return [
    new iam.PolicyStatement({
      sid: "CreateTaggedClusterSecrets",
      actions: ["secretsmanager:CreateSecret", "secretsmanager:TagResource"],
      resources: [secrets],
      conditions: { StringEquals: MANAGED_REQUEST },
    }),
    // No tag condition: for a secret that does not exist yet IAM would deny instead of "not found",
    // and the adapter looks a secret up before creating it. Describe shows metadata, never the value.
    new iam.PolicyStatement({
      sid: "DescribeClusterSecrets",
      actions: ["secretsmanager:DescribeSecret"],
      resources: [secrets],
    }),
    new iam.PolicyStatement({
      sid: "DeleteTaggedClusterSecrets",
      actions: ["secretsmanager:DeleteSecret"],
      resources: [secrets],
      conditions: { StringEquals: MANAGED_RESOURCE },
    }),
    new iam.PolicyStatement({
      sid: "FindClusterSecrets",
      actions: ["secretsmanager:ListSecrets"],
      resources: ["*"],
    }),
  ];
}

/**
 * Cluster users' passwords and keys (lib/aws/user-secrets.ts), for the API: created only with the tag,
 * read back (to merge a new password with the stored key), replaced and deleted only when of that kind.
 */
export function userSecretStatements(scope: Construct): iam.PolicyStatement[] {
  const secrets = arn(scope, "secretsmanager", "secret:nowscale/*/users/*");
  return [
    new iam.PolicyStatement({
      sid: "CreateTaggedUserSecrets",
      actions: ["secretsmanager:CreateSecret", "secretsmanager:TagResource"],
      resources: [secrets],
      conditions: { StringEquals: MANAGED_REQUEST },
    }),
    new iam.PolicyStatement({
      sid: "ManageUserSecrets",
      actions: [
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
        "secretsmanager:DeleteSecret",
      ],
      resources: [secrets],
      conditions: {
        StringEquals: { ...MANAGED_RESOURCE, [`aws:ResourceTag/${SECRET_KIND_TAG}`]: USER_SECRET_KIND },
      },
    }),
  ];
}

/** The agents' HMAC keys (signed HTTP channel): never the munge keys. */
export function agentKeyStatement(scope: Construct): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid: "ReadAgentKeys",
    actions: ["secretsmanager:GetSecretValue"],
    resources: [arn(scope, "secretsmanager", "secret:nowscale/*")],
    conditions: {
      StringEquals: { ...MANAGED_RESOURCE, [`aws:ResourceTag/${SECRET_KIND_TAG}`]: "agent-hmac-key" },
    },
  });
}

/**
 * SSM Run Command of the agent's document (and nothing else) on the clusters' masters (tagged
 * nowscale:managed and nowscale-role=master), and reading the answer.
 */
export function agentOverSsmStatements(scope: Construct, documentArn: string): iam.PolicyStatement[] {
  return [
    new iam.PolicyStatement({
      sid: "RunAgentOnMasters",
      actions: ["ssm:SendCommand"],
      resources: [ec2Arn(scope, "instance/*")],
      conditions: {
        StringEquals: {
          [`ssm:resourceTag/${MANAGED_TAG}`]: "true",
          [`ssm:resourceTag/${ROLE_TAG}`]: "master",
        },
      },
    }),
    new iam.PolicyStatement({
      sid: "RunOnlyTheAgentDocument",
      actions: ["ssm:SendCommand"],
      resources: [documentArn],
    }),
    new iam.PolicyStatement({
      sid: "ReadCommandResults",
      actions: ["ssm:GetCommandInvocation"],
      resources: ["*"],
    }),
  ];
}

/**
 * Attached masters (docs/attach.md): Run Command of the agent's document on a master the user tagged
 * `nowscale:attach=true`, an EC2 instance or an SSM hybrid-activated server (`managed-instance/mi-…`),
 * so NowScale reaches no server of theirs they did not opt in. The document statement
 * (agentOverSsmStatements) still limits what runs to the agent's actions.
 */
export function attachedMasterSsmStatement(scope: Construct): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid: "RunAgentOnAttachedMasters",
    actions: ["ssm:SendCommand"],
    resources: [ec2Arn(scope, "instance/*"), arn(scope, "ssm", "managed-instance/*")],
    conditions: { StringEquals: { [`ssm:resourceTag/${ATTACH_TAG}`]: "true" } },
  });
}

/**
 * Attached clusters' computes launch into the user's own security groups, those they tagged
 * `nowscale:attach=true` (the launch statements allow NowScale's own groups only).
 */
export function launchIntoAttachedGroupsStatement(scope: Construct): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid: "LaunchIntoAttachedSecurityGroups",
    actions: ["ec2:RunInstances"],
    resources: [ec2Arn(scope, "security-group/*")],
    conditions: { StringEquals: { [`aws:ResourceTag/${ATTACH_TAG}`]: "true" } },
  });
}

/**
 * The master's wake (lib/ports/wake.ts): PutEvents on the stack's wake bus only, and only events with the
 * wake's source and detail-type, so a master's credentials cannot put anything else anywhere. Both keys
 * hold the values of every entry of the call (IAM's ArrayOfString): ForAllValues makes every entry a
 * wake, and Null false refuses a call where they are absent (ForAllValues alone holds for an empty set).
 * What a wake names stays untrusted: the scaler treats it as a hint (lib/control/wake.ts).
 */
export function wakeStatement(busArn: string, source: string, detailType: string): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid: "WakeOwnScalerOnly",
    actions: ["events:PutEvents"],
    resources: [busArn],
    conditions: {
      "ForAllValues:StringEquals": { "events:source": [source], "events:detail-type": [detailType] },
      Null: { "events:source": "false", "events:detail-type": "false" },
    },
  });
}

/**
 * Sleep and wake (lib/control/sleep.ts) stop and start a cluster's master: only instances tagged
 * nowscale:managed with the master role (never a compute, never anyone else's instance).
 */
export function stopStartMastersStatement(scope: Construct): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid: "StopStartOnlyTaggedMasters",
    actions: ["ec2:StopInstances", "ec2:StartInstances"],
    resources: [ec2Arn(scope, "instance/*")],
    conditions: { StringEquals: { ...MANAGED_RESOURCE, [`aws:ResourceTag/${ROLE_TAG}`]: "master" } },
  });
}
