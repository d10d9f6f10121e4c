import type { UserSecret } from "./cluster-users.js";

/**
 * Where cluster users' passwords and SSH public keys are kept: the cloud's secret store (AWS Secrets
 * Manager: lib/aws/user-secrets.ts), in the local mode root-only files (lib/local/user-secrets.ts, the
 * local mode's secret store: docs/local-mode.md). The control plane writes a value and passes on only the
 * id; the master's agent reads it (scheduler-plugins/slurm/users-apply.ts readUserSecret). Values are
 * never returned, logged or put in user data.
 */
export interface UserSecretStore {
  /**
   * Stores the user's secret (creating it, or merging the given fields into the one there: a new password
   * keeps the stored key and the other way round), and answers its id
   * (what the agent reads: an ARN on AWS, an absolute path in the local mode). SecretStoreError when the
   * store fails (nothing to undo: a failed write leaves the previous value).
   */
  put(clusterId: string, user: string, value: UserSecret, scope?: UserSecretScope): Promise<string>;

  /** Deletes the secret at once; one already gone succeeds. SecretStoreError when the store fails. */
  remove(secretId: string): Promise<void>;
}

/** Who may read the secret: on AWS the cluster's VPC, whose master role reads it (lib/infra/node-role.ts). */
export interface UserSecretScope {
  vpcId?: string | undefined;
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
