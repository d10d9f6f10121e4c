import type { MasterBootstrapOptions } from "../../../scheduler-plugins/slurm/master-bootstrap.js";
import type { AgentChannel } from "../../ports/agent-channel.js";
import type { Clock } from "../../ports/clock.js";
import type { CloudProvider } from "../../ports/cloud-provider.js";
import type { ClusterResources } from "../../ports/cluster-resources.js";
import { InvalidRequestError } from "../../ports/errors.js";
import type { ClusterRecord, StateStore } from "../../ports/state-store.js";
import type { MasterAgent } from "./agent.js";
import type { LifecycleStore } from "./store.js";

/**
 * What differs per cloud in the lifecycle tasks: where the network, security group and secrets are made,
 * how instances start, how the master's agent is reached and what the master boots with. The stack's own
 * cloud's parts are LifecycleDeps' own fields; another cloud's come from `LifecycleDeps.clouds`, picked by
 * the cluster's recorded placement (lifecycleDepsFor).
 */
export interface CloudLifecycleParts {
  resources: ClusterResources;
  /**
   * The provider for the cluster's instances. The master is launched with the cluster's security
   * group and in its VPC (CVM wants the VPC with the subnet; EC2 ignores it); terminate and list need
   * neither.
   */
  provider(options?: { securityGroupIds?: string[]; vpcId?: string }): CloudProvider;
  agent: MasterAgent;
  /** Where the master's image comes from when the request names none. @default the request must name one */
  images?: MasterImages;
  /**
   * The master's user data from the workflow's options (secret ids, queues, agent bundle, wake bus).
   * @default AWS's bootstrap (scheduler-plugins/slurm/master-bootstrap.ts) with the SSM agent installed
   */
  masterUserData?(options: MasterBootstrapOptions): string;
}

/** The clouds whose clusters the lifecycle tasks create besides the stack's own (AWS). */
export const OTHER_LIFECYCLE_CLOUDS = ["tencent", "alibaba"] as const;
export type OtherLifecycleCloud = (typeof OTHER_LIFECYCLE_CLOUDS)[number];

/**
 * Builds a cloud's parts for a cluster's region. Called once per task (credentials are read then, so a
 * rotated key is picked up); may throw CloudProviderError (unreadable credentials: not retried).
 */
export type CloudPartsFactory = (placement: { region: string }) => Promise<OtherCloudParts>;

/** Another cloud's parts name the master's user data: AWS's bootstrap is never a fallback for them. */
export type OtherCloudParts = CloudLifecycleParts & Required<Pick<CloudLifecycleParts, "masterUserData">>;

/** Everything the lifecycle tasks touch, as ports: the stack's own cloud's parts and the shared ones. */
export interface LifecycleDeps extends CloudLifecycleParts {
  store: LifecycleStore;
  clock: Clock;
  /** The agent bundle the master downloads when the request names none (the stack's S3 asset). */
  agentBundle?: { url: string; sha256: string };
  /** The stack's wake bus: the master's watcher wakes the scaler there (docs/agent.md). @default no watcher */
  wakeEventBus?: string;
  /** The region the tasks make resources in (the stack's); a request for another is refused. @default no check */
  region?: string;
  /**
   * The control plane's store and a cluster's own cloud and agent (as the scaler reaches them): what the
   * detach of an attached cluster works with (lib/control/detach.ts). @default detach refused
   */
  controlPlane?: {
    store: StateStore;
    runtime(cluster: ClusterRecord): Promise<{ provider: CloudProvider; agent: AgentChannel }>;
  } /**
   * The other clouds this stack creates clusters on (one line each: `tencent: tencentLifecycleParts(...)`).
   * A task for a cluster whose recorded cloud is one of them runs with that cloud's parts in the cluster's
   * region (lifecycleDepsFor); without the entry, such a cluster is refused. @default AWS only
   */;
  clouds?: Partial<Record<OtherLifecycleCloud, CloudPartsFactory>>;
}

export interface MasterImages {
  /**
   * The default master image for the instance type: the latest Debian 12 image of its architecture,
   * read from the public SSM parameter at call time. Throws CloudProviderError (InvalidRequestError for
   * an instance type the region does not know).
   */
  defaultImage(instanceType: string): Promise<string>;
}

/**
 * The deps a task of a cluster with this placement runs with: `deps` itself for the stack's own cloud (AWS,
 * or the local mode's), else `deps` with the other cloud's parts (and the cluster's region as the one its
 * resources are made in). Throws InvalidRequestError naming `cloud` for another cloud this stack is not set
 * up for.
 */
export async function lifecycleDepsFor(
  deps: LifecycleDeps,
  placement: { cloud: string; region: string },
): Promise<LifecycleDeps> {
  const other = OTHER_LIFECYCLE_CLOUDS.find((c) => c === placement.cloud);
  if (other === undefined) return deps;
  const factory = deps.clouds?.[other];
  if (factory === undefined)
    throw new InvalidRequestError(`cloud: this stack is not set up to create clusters on ${other}`);
  const parts = await factory({ region: placement.region });
  // The stack's optional parts are dropped: a part the other cloud lacks must never fall back to AWS's.
  const { images: _images, masterUserData: _userData, ...shared } = deps;
  return {
    ...shared,
    resources: parts.resources,
    provider: parts.provider,
    agent: parts.agent,
    ...(parts.images === undefined ? {} : { images: parts.images }),
    masterUserData: parts.masterUserData,
    region: placement.region,
  };
}
