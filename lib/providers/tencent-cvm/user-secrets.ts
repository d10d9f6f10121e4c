import { parseUserSecret, type UserSecret } from "../../ports/cluster-users.js";
import {
  cloudSecretId,
  SecretStoreError,
  USER_SECRET_KIND,
  type UserSecretScope,
  type UserSecretStore,
} from "../../ports/user-secrets.js";
import {
  SECRET_VERSION,
  secretTags,
  TencentClusterResources,
  type TencentClusterResourcesOptions,
} from "./cluster-resources.js";
import { fromTencentError } from "./errors.js";

/** Tencent's name of a user's secret: SSM names take letters, digits, '-' and '_' (no '/'). */
export function tencentUserSecretName(clusterId: string, user: string): string {
  return `nowscale-${clusterId}-users-${user}`;
}

/**
 * Cluster users' passwords and keys of a Tencent cluster in Tencent's Secrets Manager (SSM 2019-09-23),
 * where its master reads them with its CVM role (the same TC3-signed GetSecretValue as its munge key:
 * TENCENT_SECRET_FETCHER, run by users-apply.ts readUserSecret). One secret per user,
 * `nowscale-<cluster>-users-<user>`, version `v1` (the fetcher reads that version), the JSON as
 * SecretString, tagged `nowscale:cluster`, `nowscale:managed`, the kind `cluster-user` and the cluster's
 * VPC. The id handed on is `tencent-ssm:<region>:<name>`: the master's fetcher signs for that region.
 * A value never reaches an error message (the SDK's messages name the secret only).
 */
export class TencentUserSecrets implements UserSecretStore {
  // The cluster's own secrets' client and deletion (disable, then delete at once; gone is fine).
  private readonly resources: TencentClusterResources;

  constructor(private readonly options: TencentClusterResourcesOptions) {
    this.resources = new TencentClusterResources(options);
  }

  private get ssm(): TencentClusterResources["ssm"] {
    return this.resources.ssm;
  }

  async put(
    clusterId: string,
    user: string,
    value: UserSecret,
    scope: UserSecretScope = {},
  ): Promise<string> {
    const name = tencentUserSecretName(clusterId, user);
    const id = `tencent-ssm:${this.options.region}:${name}`;
    try {
      try {
        await this.ssm.CreateSecret({
          SecretName: name,
          VersionId: SECRET_VERSION,
          Description: `NowScale cluster ${clusterId}: user ${user}`,
          SecretString: JSON.stringify(value),
          ...(this.options.kmsKeyId === undefined ? {} : { KmsKeyId: this.options.kmsKeyId }),
          Tags: secretTags(clusterId, USER_SECRET_KIND, scope.vpcId),
        });
        return id;
      } catch (error) {
        if ((error as { code?: string }).code !== "ResourceInUse.SecretExists") throw error;
      }
      // The user has one: the given fields merged into it, in place (the fetcher reads version v1 only).
      const before = await this.ssm.GetSecretValue({ SecretName: name, VersionId: SECRET_VERSION });
      const merged = { ...parseUserSecret(JSON.parse(before.SecretString ?? "{}")), ...value };
      await this.ssm.UpdateSecret({
        SecretName: name,
        VersionId: SECRET_VERSION,
        SecretString: JSON.stringify(merged),
      });
      return id;
    } catch (error) {
      throw storeError(error);
    }
  }

  async remove(secretId: string): Promise<void> {
    const name = cloudSecretId(secretId)?.name ?? secretId;
    await this.resources.deleteSecret(name).catch((error: unknown) => {
      throw storeError(error);
    });
  }
}

function storeError(error: unknown): SecretStoreError {
  if (error instanceof SecretStoreError) return error;
  const mapped = fromTencentError("SSM", error);
  return new SecretStoreError(`Tencent SSM: ${mapped.message.slice(0, 300)}`, { cause: error });
}
