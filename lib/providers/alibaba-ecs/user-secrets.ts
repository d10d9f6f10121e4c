import { randomUUID } from "node:crypto";
import * as kms from "@alicloud/kms20160120";
import { parseUserSecret, type UserSecret } from "../../ports/cluster-users.js";
import { CLUSTER_TAG, MANAGED_TAG, SECRET_KIND_TAG, SECRET_VPC_TAG } from "../../ports/tags.js";
import {
  cloudSecretId,
  SecretStoreError,
  USER_SECRET_KIND,
  type UserSecretScope,
  type UserSecretStore,
  userSecretName,
} from "../../ports/user-secrets.js";
import { AlibabaClusterResources, type AlibabaClusterResourcesOptions } from "./cluster-resources.js";

/**
 * Cluster users' passwords and keys of an Alibaba cluster in Alibaba's KMS Secrets Manager (KMS
 * 2016-01-20), where its master reads them with its RAM role's STS key (the same ACS3-signed
 * GetSecretValue as its munge key: ALIBABA_SECRET_FETCHER, run by users-apply.ts readUserSecret). One
 * secret per user, `nowscale/<cluster>/users/<user>`, the JSON as text, tagged `nowscale:cluster`,
 * `nowscale:managed`, the kind `cluster-user` and the cluster's VPC. A changed value is a new version
 * (PutSecretValue makes it ACSCurrent, which GetSecretValue answers). The id handed on is
 * `alibaba-kms:<region>:<name>`. A value never reaches an error message.
 */
export class AlibabaUserSecrets implements UserSecretStore {
  // The cluster's own KMS caller and secret deletion (at once, gone is fine).
  private readonly resources: AlibabaClusterResources;

  constructor(private readonly options: AlibabaClusterResourcesOptions) {
    this.resources = new AlibabaClusterResources(options);
  }

  async put(
    clusterId: string,
    user: string,
    value: UserSecret,
    scope: UserSecretScope = {},
  ): Promise<string> {
    const name = userSecretName(clusterId, user);
    const id = `alibaba-kms:${this.options.regionId}:${name}`;
    const kmsCall = this.resources.kmsCall.bind(this.resources);
    try {
      const found = await kmsCall("DescribeSecret", new kms.DescribeSecretRequest({ secretName: name }), {
        notFound: true,
      });
      if (found === undefined) {
        const tags = {
          [CLUSTER_TAG]: clusterId,
          [MANAGED_TAG]: "true",
          [SECRET_KIND_TAG]: USER_SECRET_KIND,
          ...(scope.vpcId === undefined ? {} : { [SECRET_VPC_TAG]: scope.vpcId }),
        };
        await kmsCall(
          "CreateSecret",
          new kms.CreateSecretRequest({
            secretName: name,
            versionId: "v1",
            description: `NowScale user ${user} of cluster ${clusterId}`,
            secretData: JSON.stringify(value),
            secretDataType: "text",
            ...(this.options.encryptionKeyId === undefined
              ? {}
              : { encryptionKeyId: this.options.encryptionKeyId }),
            tags: JSON.stringify(Object.entries(tags).map(([TagKey, TagValue]) => ({ TagKey, TagValue }))),
          }),
        );
        return id;
      }
      // The user has one: the given fields merged into it, as a new current version.
      const before = (await kmsCall(
        "GetSecretValue",
        new kms.GetSecretValueRequest({ secretName: name }),
      )) as { SecretData?: string };
      const merged = { ...parseUserSecret(JSON.parse(before.SecretData ?? "{}")), ...value };
      await kmsCall(
        "PutSecretValue",
        new kms.PutSecretValueRequest({
          secretName: name,
          versionId: `v-${randomUUID()}`,
          secretData: JSON.stringify(merged),
          secretDataType: "text",
        }),
      );
      return id;
    } catch (error) {
      // The value travels in the request's query: only the error's kind and code are kept, never the
      // SDK's message or the error itself (either could quote the request).
      throw kmsFailed(error);
    }
  }

  async remove(secretId: string): Promise<void> {
    const name = cloudSecretId(secretId)?.name ?? secretId;
    await this.resources.deleteSecret(name).catch((error: unknown) => {
      throw kmsFailed(error);
    });
  }
}

/** A KMS failure by its kind and code only (lib/providers/alibaba-ecs/errors.ts maps them). */
function kmsFailed(error: unknown): SecretStoreError {
  const e = error as { name?: string; code?: string; cause?: { code?: unknown } };
  const code = e.cause?.code ?? e.code;
  return new SecretStoreError(
    `Alibaba KMS failed: ${String(e.name ?? "Error")}${code === undefined ? "" : ` (${String(code).slice(0, 80)})`}`,
  );
}
