import { USER_NAME, type UserSecret } from "./cluster-users.js";

/**
 * Where cluster users' passwords and SSH public keys are kept: the cloud's secret store (AWS Secrets
 * Manager: lib/aws/user-secrets.ts; Tencent's SSM and Alibaba's KMS Secrets Manager for clusters there:
 * lib/providers/tencent-cvm/user-secrets.ts, lib/providers/alibaba-ecs/user-secrets.ts), in the local mode root-only files (lib/local/user-secrets.ts, the
 * local mode's secret store: docs/local-mode.md). The control plane writes a value and passes on only the
 * id; the master's agent reads it (scheduler-plugins/slurm/users-apply.ts readUserSecret). Values are
 * never returned, logged or put in user data.
 */
export interface UserSecretStore {
  /**
   * Stores the user's secret (creating it, or merging the given fields into the one there: a new password
   * keeps the stored key and the other way round), and answers its id
   * (what the agent reads: an ARN on AWS, `tencent-ssm:<region>:<name>` or `alibaba-kms:<region>:<name>`
   * on those clouds, an absolute path in the local mode). SecretStoreError when the
   * store fails (nothing to undo: a failed write leaves the previous value).
   */
  put(clusterId: string, user: string, value: UserSecret, scope?: UserSecretScope): Promise<string>;

  /** Deletes the secret at once; one already gone succeeds. SecretStoreError when the store fails. */
  remove(secretId: string): Promise<void>;
}

/** Who may read the secret: on AWS the cluster's VPC, whose master role reads it (lib/infra/node-role.ts). */
export interface UserSecretScope {
  vpcId?: string | undefined;
  /**
   * The cluster's cloud and region (its placement): a store serving several clouds (lib/aws/user-secrets.ts
   * CloudUserSecrets) writes to that cloud's secret store in that region, where the master reads it.
   * @default the store's own
   */
  cloud?: string | undefined;
  region?: string | undefined;
}

/** The kind tag of users' secrets: the master role reads this kind, the compute role never does. */
export const USER_SECRET_KIND = "cluster-user";

/** The secret store failed or could not be reached: retry. */
export class SecretStoreError extends Error {
  override readonly name = "SecretStoreError";
}

/** The name of a user's secret in the store (`nowscale/*`: what the stack's IAM policies scope). */
export function userSecretName(clusterId: string, user: string): string {
  return `nowscale/${clusterId}/users/${user}`;
}

/**
 * A Tencent or Alibaba user secret's id: the store, the region (where the master's fetcher signs its
 * request) and the secret's name. What SECRET_REF admits (lib/ports/cluster-users.ts).
 */
export const CLOUD_SECRET_ID =
  /^(tencent-ssm|alibaba-kms):([a-z0-9-]{1,40}):(nowscale[A-Za-z0-9/_-]{1,300})$/;

/** The parts of a cloud secret id, or undefined for another kind (an ARN, a path). */
export function cloudSecretId(
  id: string,
): { store: "tencent-ssm" | "alibaba-kms"; region: string; name: string } | undefined {
  const m = CLOUD_SECRET_ID.exec(id);
  if (m === null) return undefined;
  return { store: m[1] as "tencent-ssm" | "alibaba-kms", region: m[2] ?? "", name: m[3] ?? "" };
}

/**
 * The secret's name when `id` (a cluster record's users[].secretId) is a user's secret of `clusterId` in
 * `store` and `region`, named `nameOf(clusterId, <user>)` with a valid user name; undefined for any other
 * id. What a cloud's teardown deletes by the record, beside what its listing finds, and nothing else.
 */
export function recordedUserSecretName(
  id: string,
  clusterId: string,
  store: "tencent-ssm" | "alibaba-kms",
  region: string,
  nameOf: (clusterId: string, user: string) => string,
): string | undefined {
  const parts = cloudSecretId(id);
  if (parts === undefined || parts.store !== store || parts.region !== region) return undefined;
  const prefix = nameOf(clusterId, "");
  if (!parts.name.startsWith(prefix)) return undefined;
  return USER_NAME.test(parts.name.slice(prefix.length)) ? parts.name : undefined;
}
