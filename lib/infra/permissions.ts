import { Stack } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import type { Construct } from "constructs";
import { CLUSTER_TAG, MANAGED_TAG } from "../providers/shared/tags.js";

/**
 * Least-privilege statements for what the control plane does in EC2 (design.md section 3):
 * launch only with the service's tag in the request and IMDSv2 required, tag only while creating,
 * terminate and delete only what carries the tag, pass only the node role.
 */

const MANAGED_REQUEST = { [`aws:RequestTag/${MANAGED_TAG}`]: "true" };
const MANAGED_RESOURCE = { [`aws:ResourceTag/${MANAGED_TAG}`]: "true" };

function arn(scope: Construct, service: string, resource: string): string {
  const stack = Stack.of(scope);
  return `arn:${stack.partition}:${service}:${stack.region}:${stack.account}:${resource}`;
}

function ec2Arn(scope: Construct, resource: string, global = false): string {
  const stack = Stack.of(scope);
  return `arn:${stack.partition}:ec2:${stack.region}:${global ? "" : stack.account}:${resource}`;
}

/** RunInstances with the tag and IMDSv2; CreateTags only as part of the launch; PassRole for the node role. */
export function launchStatements(scope: Construct, nodeRoleArn: string): iam.PolicyStatement[] {
  return [
    new iam.PolicyStatement({
      sid: "LaunchTaggedInstancesWithImdsV2",
      actions: ["ec2:RunInstances"],
      resources: [
        ec2Arn(scope, "instance/*"),
        ec2Arn(scope, "volume/*"),
        ec2Arn(scope, "network-interface/*"),
      ],
      conditions: {
        StringEquals: { ...MANAGED_REQUEST, "ec2:MetadataHttpTokens": "required" },
        // NowScale's own tags (nowscale:*, nowscale-role, NowScaleRound) and Name; nothing else at launch.
        "ForAllValues:StringLike": { "aws:TagKeys": ["nowscale:*", "nowscale-*", "NowScale*", "Name"] },
      },
    }),
    new iam.PolicyStatement({
      sid: "LaunchFromImagesSubnetsAndGroups",
      actions: ["ec2:RunInstances"],
      resources: [
        ec2Arn(scope, "image/*", true),
        ec2Arn(scope, "subnet/*"),
        ec2Arn(scope, "security-group/*"),
        ec2Arn(scope, "key-pair/*"),
        ec2Arn(scope, "launch-template/*"),
      ],
    }),
    new iam.PolicyStatement({
      sid: "TagOnlyAtLaunch",
      actions: ["ec2:CreateTags"],
      resources: [
        ec2Arn(scope, "instance/*"),
        ec2Arn(scope, "volume/*"),
        ec2Arn(scope, "network-interface/*"),
      ],
      conditions: { StringEquals: { "ec2:CreateAction": "RunInstances", ...MANAGED_REQUEST } },
    }),
    new iam.PolicyStatement({
      sid: "TerminateOnlyTaggedInstances",
      actions: ["ec2:TerminateInstances"],
      resources: [ec2Arn(scope, "instance/*")],
      conditions: { StringEquals: MANAGED_RESOURCE },
    }),
    new iam.PolicyStatement({
      sid: "PassOnlyTheNodeRole",
      actions: ["iam:PassRole"],
      resources: [nodeRoleArn],
      conditions: { StringEquals: { "iam:PassedToService": "ec2.amazonaws.com" } },
    }),
    describeStatement(),
  ];
}

/** EC2's Describe calls support no resource-level permissions. */
export function describeStatement(): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid: "DescribeEc2",
    actions: [
      "ec2:DescribeInstances",
      "ec2:DescribeInstanceTypes",
      "ec2:DescribeVpcs",
      "ec2:DescribeSubnets",
      "ec2:DescribeSecurityGroups",
    ],
    resources: ["*"],
  });
}

/** The creation workflow's network: created only with the tag, changed and deleted only when tagged. */
export function networkStatements(scope: Construct): iam.PolicyStatement[] {
  const tagged = [ec2Arn(scope, "vpc/*"), ec2Arn(scope, "subnet/*"), ec2Arn(scope, "security-group/*")];
  return [
    new iam.PolicyStatement({
      sid: "CreateTaggedNetwork",
      actions: ["ec2:CreateVpc", "ec2:CreateSubnet", "ec2:CreateSecurityGroup"],
      resources: tagged,
      conditions: { StringEquals: MANAGED_REQUEST },
    }),
    new iam.PolicyStatement({
      sid: "CreateInTaggedVpc",
      actions: ["ec2:CreateSubnet", "ec2:CreateSecurityGroup"],
      resources: [ec2Arn(scope, "vpc/*")],
      conditions: { StringEquals: MANAGED_RESOURCE },
    }),
    new iam.PolicyStatement({
      sid: "CreateGroupInUserVpc",
      actions: ["ec2:CreateSecurityGroup"],
      resources: [ec2Arn(scope, "vpc/*")],
    }),
    new iam.PolicyStatement({
      sid: "TagNetworkOnlyAtCreation",
      actions: ["ec2:CreateTags"],
      resources: tagged,
      conditions: {
        StringEquals: {
          "ec2:CreateAction": ["CreateVpc", "CreateSubnet", "CreateSecurityGroup"],
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

/** SSM Run Command of the agent's report on the clusters' masters (tagged), and reading the answer. */
export function agentOverSsmStatements(scope: Construct): iam.PolicyStatement[] {
  const stack = Stack.of(scope);
  return [
    new iam.PolicyStatement({
      sid: "RunAgentOnTaggedInstances",
      actions: ["ssm:SendCommand"],
      resources: [ec2Arn(scope, "instance/*")],
      conditions: { StringLike: { [`ssm:resourceTag/${CLUSTER_TAG}`]: "*" } },
    }),
    new iam.PolicyStatement({
      sid: "RunShellScriptDocument",
      actions: ["ssm:SendCommand"],
      resources: [`arn:${stack.partition}:ssm:${stack.region}::document/AWS-RunShellScript`],
    }),
    new iam.PolicyStatement({
      sid: "ReadCommandResults",
      actions: ["ssm:GetCommandInvocation"],
      resources: ["*"],
    }),
  ];
}
