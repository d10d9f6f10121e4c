import { Duration, RemovalPolicy } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import * as kms from "aws-cdk-lib/aws-kms";
import { Construct } from "constructs";

/**
 * The stack's two customer-managed keys, rotated yearly:
 * - `dataKey` encrypts the tables, the log groups and the alarm topic;
 * - `secretsKey` encrypts the cloud credentials and the clusters' secrets. It is separate so that the
 *   node role can be allowed to decrypt cluster secrets without reading the control plane's data.
 */
export class NowScaleKeys extends Construct {
  readonly dataKey: kms.Key;
  readonly secretsKey: kms.Key;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.dataKey = new kms.Key(this, "DataKey", {
      description: "NowScale: DynamoDB tables, logs and alarm topic",
      enableKeyRotation: true,
      pendingWindow: Duration.days(7),
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.secretsKey = new kms.Key(this, "SecretsKey", {
      description: "NowScale: cloud credentials and cluster secrets (munge and agent keys)",
      enableKeyRotation: true,
      pendingWindow: Duration.days(7),
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // CloudWatch Logs encrypts the log groups with the data key.
    const region = this.dataKey.stack.region;
    this.dataKey.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [new iam.ServicePrincipal(`logs.${region}.amazonaws.com`)],
        actions: ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
        resources: ["*"],
        conditions: {
          ArnLike: {
            "kms:EncryptionContext:aws:logs:arn": `arn:${this.dataKey.stack.partition}:logs:${region}:${this.dataKey.stack.account}:log-group:*`,
          },
        },
      }),
    );
  }
}
