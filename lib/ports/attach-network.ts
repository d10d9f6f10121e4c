/**
 * What a cloud can tell, before a master is attached, about its compute nodes reaching that master's
 * slurmctld (and slurmctld reaching them back): docs/attach.md, "what attach checks". Adapters:
 * lib/providers/aws-ec2/attach-network.ts (VPC, subnets, route tables, security groups),
 * lib/providers/tencent-cvm/attach-network.ts and lib/providers/alibaba-ecs/attach-network.ts (the
 * master's VPC and security groups against the compute subnets); clouds without one check nothing here
 * and say so.
 */
export interface AttachNetworkCheck {
  /**
   * Looks at the compute subnets and security groups and, when the master is an instance of this cloud
   * (by `masterInstanceId`, or found by its private address in the subnets' VPC), at the master's. Reads
   * only. Resolves with what it found; throws CloudProviderError only when the cloud could not be asked
   * (credentials, throttling), never for what it found wrong.
   */
  check(input: AttachNetworkInput): Promise<AttachNetworkFindings>;
}

export interface AttachNetworkInput {
  region: string;
  /** slurmctld's address as the compute nodes will use it (`slurmd --conf-server`). */
  controllerAddress: string;
  controllerPort: number;
  /** The port slurmctld reaches each node's slurmd on. */
  slurmdPort: number;
  /** The master's instance id, when the request names one (`i-…`; `mi-…` is outside the cloud). */
  masterInstanceId?: string;
  subnetIds: readonly string[];
  /** The request field of each of `subnetIds`, when not `network.subnetIds[i]` (a queue's own subnet). */
  subnetPaths?: readonly string[];
  securityGroupIds: readonly string[];
}

export interface NetworkFinding {
  /** The request field it is about (`network.subnetIds[1]`, `network.securityGroupIds`, `master.slurmctldAddress`). */
  path: string;
  message: string;
}

export interface AttachNetworkFindings {
  /** Definite problems: attach refuses. */
  errors: NetworkFinding[];
  /** What was verified, one sentence each. */
  verified: string[];
  /** What could not be verified from the cloud's API and is the user's to ensure. */
  unverified: string[];
  /**
   * The compute subnets' VPC, when they are all in one: recorded with the attachment, since launches on
   * Tencent (VirtualPrivateCloud) and Alibaba (the VSwitches of a VPC) name it. Undefined: not found.
   */
  vpcId?: string;
}
