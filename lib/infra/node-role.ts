import * as iam from "aws-cdk-lib/aws-iam";
import type * as kms from "aws-cdk-lib/aws-kms";
import { Construct } from "constructs";
import { MANAGED_TAG } from "../providers/shared/tags.js";

export interface NodeRoleProps {
  secretsKey: kms.IKey;
}

/**
 * The role of every instance NowScale starts (masters and computes), the only role the control plane may
 * pass: SSM for the agent's Run Command channel, and reading the clusters' secrets (munge key, agent key)
 * by name at boot.
 */
export class NodeRole extends Construct {
  readonly role: iam.Role;
  readonly instanceProfile: iam.InstanceProfile;

  constructor(scope: Construct, id: string, props: NodeRoleProps) {
    super(scope, id);
    this.role = new iam.Role(this, "Role", {
      assumedBy: new iam.ServicePrincipal("ec2.amazonaws.com"),
      description: "NowScale cluster instances: SSM and the cluster secrets",
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName("AmazonSSMManagedInstanceCore")],
    });
    const stack = this.role.stack;
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: "ReadClusterSecrets",
        actions: ["secretsmanager:GetSecretValue"],
        resources: [
          `arn:${stack.partition}:secretsmanager:${stack.region}:${stack.account}:secret:nowscale/*`,
        ],
        conditions: { StringEquals: { [`secretsmanager:ResourceTag/${MANAGED_TAG}`]: "true" } },
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
    this.instanceProfile = new iam.InstanceProfile(this, "InstanceProfile", { role: this.role });
  }
}
