import {
  CreateSecretCommand,
  DeleteSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  ResourceExistsException,
  ResourceNotFoundException,
  type SecretsManagerClient,
} from "@aws-sdk/client-secrets-manager";
import { parseUserSecret, type UserSecret } from "../ports/cluster-users.js";
import { CLUSTER_TAG, MANAGED_TAG, SECRET_KIND_TAG, SECRET_VPC_TAG } from "../ports/tags.js";
import {
  cloudSecretId,
  SecretStoreError,
  USER_SECRET_KIND,
  type UserSecretScope,
  type UserSecretStore,
  userSecretName,
} from "../ports/user-secrets.js";

/**
 * Cluster users' passwords and keys in AWS Secrets Manager (lib/ports/user-secrets.ts): one secret per
 * user, `nowscale/<cluster>/users/<user>`, encrypted with the stack's secrets key, tagged with the cluster,
 * the kind `cluster-user` and the cluster's VPC: the master role of that VPC reads it (lib/infra/node-role.ts),
 * the compute role cannot (so no job on a compute node can). The id handed on is the secret's ARN.
 */
export class SecretsManagerUserSecrets implements UserSecretStore {
  constructor(
    private readonly client: SecretsManagerClient,
    private readonly kmsKeyId?: string,
  ) {}

  async put(
    clusterId: string,
    user: string,
    value: UserSecret,
    scope: UserSecretScope = {},
  ): Promise<string> {
    const name = userSecretName(clusterId, user);
    try {
      // Create first: reading a secret that does not exist yet would be denied (the IAM policy's tag
      // condition cannot match), not "not found". Only an existing one is read, merged and replaced.
      try {
        const out = await this.client.send(
          new CreateSecretCommand({
            Name: name,
            SecretString: JSON.stringify(value),
            ...(this.kmsKeyId === undefined ? {} : { KmsKeyId: this.kmsKeyId }),
            // The master role reads secrets of this kind in its own VPC only; the compute role never.
            Tags: [
              { Key: MANAGED_TAG, Value: "true" },
              { Key: CLUSTER_TAG, Value: clusterId },
              { Key: SECRET_KIND_TAG, Value: USER_SECRET_KIND },
              ...(scope.vpcId === undefined ? [] : [{ Key: SECRET_VPC_TAG, Value: scope.vpcId }]),
            ],
          }),
        );
        if (out.ARN === undefined) throw new SecretStoreError(`Secrets Manager gave no ARN for ${name}`);
        return out.ARN;
      } catch (error) {
        if (!(error instanceof ResourceExistsException)) throw error;
      }
      const before = await this.client.send(new GetSecretValueCommand({ SecretId: name }));
      const merged = { ...parseUserSecret(JSON.parse(before.SecretString ?? "{}")), ...value };
      const arn = before.ARN ?? name;
      await this.client.send(
        new PutSecretValueCommand({ SecretId: arn, SecretString: JSON.stringify(merged) }),
      );
      return arn;
    } catch (error) {
      if (error instanceof SecretStoreError) throw error;
      // The SDK's message names the secret, never its value.
      throw new SecretStoreError(`Secrets Manager: ${(error as Error).message.slice(0, 300)}`, {
        cause: error,
      });
    }
  }

  async remove(secretId: string): Promise<void> {
    try {
      await this.client.send(
        new DeleteSecretCommand({ SecretId: secretId, ForceDeleteWithoutRecovery: true }),
      );
    } catch (error) {
      if (error instanceof ResourceNotFoundException) return;
      throw new SecretStoreError(`Secrets Manager: ${(error as Error).message.slice(0, 300)}`, {
        cause: error,
      });
    }
  }
}

/**
 * The deployed service's users' secrets for every cloud it makes clusters on: a Tencent or Alibaba
 * cluster's go to that cloud's own secret store in the cluster's region (scope.cloud and scope.region,
 * its placement), which its master reads with its instance role; every other cluster's to AWS Secrets
 * Manager. `remove` finds the store from the id (`tencent-ssm:<region>:…`, `alibaba-kms:<region>:…`,
 * else AWS). `otherCloud` answers undefined for a cloud the stack is not set up for: such a request is
 * refused (SecretStoreError) before anything is written.
 */
export class CloudUserSecrets implements UserSecretStore {
  constructor(
    private readonly aws: UserSecretStore,
    private readonly otherCloud: (
      cloud: "tencent" | "alibaba",
      region: string,
    ) => UserSecretStore | undefined,
  ) {}

  async put(
    clusterId: string,
    user: string,
    value: UserSecret,
    scope: UserSecretScope = {},
  ): Promise<string> {
    const { cloud, region } = scope;
    if (cloud !== "tencent" && cloud !== "alibaba") return this.aws.put(clusterId, user, value, scope);
    return this.storeOf(cloud, region ?? "").put(clusterId, user, value, scope);
  }

  async remove(secretId: string): Promise<void> {
    const parts = cloudSecretId(secretId);
    if (parts === undefined) return this.aws.remove(secretId);
    return this.storeOf(parts.store === "tencent-ssm" ? "tencent" : "alibaba", parts.region).remove(secretId);
  }

  private storeOf(cloud: "tencent" | "alibaba", region: string): UserSecretStore {
    const store = region === "" ? undefined : this.otherCloud(cloud, region);
    if (store === undefined)
      throw new SecretStoreError(
        `no ${cloud} secret store for users in region ${JSON.stringify(region.slice(0, 40))}: set the stack's ${cloud} credentials`,
      );
    return store;
  }
}
