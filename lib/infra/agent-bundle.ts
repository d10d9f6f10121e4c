import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as iam from "aws-cdk-lib/aws-iam";
import * as s3assets from "aws-cdk-lib/aws-s3-assets";
import { Construct } from "constructs";
import { buildAgentBundle } from "../../agent/bundle.js";

/**
 * The NowScale agent as a CDK asset: built while the stack is synthesized (agent/bundle.ts, for the
 * default image's Node), uploaded by `cdk deploy` to the CDK bootstrap bucket, and fetched by each
 * master's boot script with the master role, which may read this one object and nothing else of the
 * bucket. Its SHA-256 goes to the boot script too, which refuses a bundle that does not match.
 */
export class AgentBundle extends Construct {
  readonly asset: s3assets.Asset;
  readonly sha256: string;
  /** s3://bucket/key of the uploaded bundle. */
  readonly url: string;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    const dir = mkdtempSync(join(tmpdir(), "nowscale-agent-bundle-"));
    const { outfile, sha256 } = buildAgentBundle(join(dir, "nowscale-agent.js"));
    this.sha256 = sha256;
    this.asset = new s3assets.Asset(this, "Asset", { path: outfile });
    // The asset was copied into the cloud assembly while constructed, unless staging is turned off.
    if (this.node.tryGetContext("aws:cdk:disable-asset-staging") !== true)
      rmSync(dir, { recursive: true, force: true });
    this.url = `s3://${this.asset.s3BucketName}/${this.asset.s3ObjectKey}`;
  }

  /** Lets `role` read the bundle's object (s3:GetObject on it alone). */
  grantRead(role: iam.IRole): void {
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: "ReadTheAgentBundle",
        actions: ["s3:GetObject"],
        resources: [this.asset.bucket.arnForObjects(this.asset.s3ObjectKey)],
      }),
    );
  }
}
