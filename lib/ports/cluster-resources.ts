/**
 * The per-cluster resources around the instances: the network (a VPC with one subnet per zone), the
 * security group the cluster's instances share, and the cluster's secrets (the munge key and the agent's
 * HMAC key). The creation workflow makes them, its compensation and the deletion workflow remove them.
 *
 * Every method may throw a CloudProviderError subclass (lib/ports/errors.ts): ThrottledError and
 * ServiceUnavailableError are worth retrying, the others are not. Every created resource carries the
 * `nowscale:cluster` tag, so `list` finds what a crashed step made before anything recorded it.
 */
export interface ClusterResources {
  /**
   * Creates a VPC (`cidr`) with one subnet per zone, tagged with the cluster. Idempotent per cluster:
   * when a network tagged with the cluster exists it is returned instead of a second one.
   */
  createNetwork(clusterId: string, spec: NetworkSpec): Promise<CreatedNetwork>;

  /**
   * Creates the cluster's security group in `vpcId`: members may reach each other on every port, nothing
   * else may reach them (no public SSH). Idempotent per (cluster, VPC).
   */
  createSecurityGroup(clusterId: string, vpcId: string): Promise<{ securityGroupId: string }>;

  /**
   * Creates the secret with a fresh random value generated inside the adapter; the value is never
   * returned, so it never passes through workflow state or logs. Idempotent: an existing secret of the
   * same cluster and kind is returned as it is. `vpcId`, the cluster's VPC, is recorded on the secret
   * (a tag on AWS) so that only instances in that VPC may read it; so one VPC holds one cluster (the
   * creation workflow claims it first: LifecycleStore.claimVpc). When the cloud already lists another
   * cluster's secrets scoped to `vpcId` (a cluster of another stack, say) it throws InvalidRequestError
   * naming network.vpcId.
   */
  createSecret(
    clusterId: string,
    kind: SecretKind,
    options?: { vpcId?: string },
  ): Promise<{ secretId: string; secretName: string }>;

  /**
   * Checks the user's own network before anything is made in it: the subnets exist in the VPC and have
   * a way out for the nodes' packages, the SSM agent and the secrets. Throws InvalidRequestError naming
   * the field (network.subnetIds[i]); changes nothing.
   */
  validateNetwork(network: { vpcId: string; subnetIds: readonly string[] }): Promise<void>;

  /** Deletes the secret at once (no recovery window: the cluster is gone). A secret already gone succeeds. */
  deleteSecret(secretId: string): Promise<void>;

  /**
   * Deletes the cluster's users' secrets (lib/ports/user-secrets.ts: kind `cluster-user`, in this cloud's
   * store) at once; answers their names. Those of users never deleted would otherwise outlive the cluster.
   * Found by the cluster's tag and also by `recorded`, the ids the cluster record's users name (what the
   * UserSecretStore answered): a store's listing may lag (ListSecrets up to five minutes on AWS), and a
   * user added just before the deletion must not leave a password behind. A recorded id that is not a
   * user's secret of this cluster in this store is passed over (never another cluster's secret); one
   * already gone succeeds. Absent: this cloud's users' secrets are elsewhere.
   */
  deleteUserSecrets?(clusterId: string, recorded: readonly string[]): Promise<string[]>;

  /** Deletes the security group. One already gone succeeds. */
  deleteSecurityGroup(securityGroupId: string): Promise<void>;

  /** Deletes the network and everything createNetwork made in it, the VPC last. One already gone succeeds. */
  deleteNetwork(network: { vpcId: string; subnetIds: readonly string[] }): Promise<void>;

  /** What exists for the cluster, found by its tag (never by NowScale's records). */
  list(clusterId: string): Promise<ClusterResourceRef[]>;
}

export type SecretKind = "munge-key" | "agent-hmac-key";

export interface NetworkSpec {
  /** The VPC's block, e.g. 10.42.0.0/16; each zone gets a /20 from it in order. */
  cidr: string;
  /** One subnet per zone, in this order. */
  zones: readonly string[];
  /**
   * Interface endpoints for the SSM agent and Secrets Manager in the first zone (about $29 a month per
   * cluster on AWS); without them those calls go out through the internet gateway. @default true
   */
  interfaceEndpoints?: boolean;
}

export interface CreatedNetwork {
  vpcId: string;
  subnetIds: string[];
}

/** A resource made for a cluster, as the ledger and `list` name it. */
export type ClusterResourceRef =
  | { kind: "network"; vpcId: string; subnetIds: string[] }
  | { kind: "securityGroup"; securityGroupId: string }
  | { kind: "secret"; secretKind: SecretKind; secretId: string }
  | { kind: "instance"; instanceId: string };

/** A stable key for a resource, for ledgers and sets. */
export function resourceKey(ref: ClusterResourceRef): string {
  switch (ref.kind) {
    case "network":
      return `network:${ref.vpcId}`;
    case "securityGroup":
      return `securityGroup:${ref.securityGroupId}`;
    case "secret":
      return `secret:${ref.secretId}`;
    case "instance":
      return `instance:${ref.instanceId}`;
  }
}

/** The name a cluster's secret has in the secret store; the bootstrap fetches it by this name. */
export function secretName(clusterId: string, kind: SecretKind): string {
  return `nowscale/${clusterId}/${kind}`;
}
