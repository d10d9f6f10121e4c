import type { AgentChannel } from "../../ports/agent-channel.js";
import type { Clock } from "../../ports/clock.js";
import type { CloudProvider } from "../../ports/cloud-provider.js";
import type { ClusterResources } from "../../ports/cluster-resources.js";
import type { ClusterRecord, StateStore } from "../../ports/state-store.js";
import type { MasterAgent } from "./agent.js";
import type { LifecycleStore } from "./store.js";

/** Everything the lifecycle tasks touch, as ports. */
export interface LifecycleDeps {
  store: LifecycleStore;
  resources: ClusterResources;
  /**
   * The provider for the cluster's instances. The master is launched with the cluster's security
   * group; terminate and list do not need one.
   */
  provider(options?: { securityGroupIds?: string[] }): CloudProvider;
  agent: MasterAgent;
  clock: Clock;
  /** The agent bundle the master downloads when the request names none (the stack's S3 asset). */
  agentBundle?: { url: string; sha256: string };
  /** The stack's wake bus: the master's watcher wakes the scaler there (docs/agent.md). @default no watcher */
  wakeEventBus?: string;
  /** Where the master's image comes from when the request names none. */
  images?: MasterImages;
  /** The region the tasks make resources in (the stack's); a request for another is refused. @default no check */
  region?: string;
  /**
   * The control plane's store and a cluster's own cloud and agent (as the scaler reaches them): what the
   * detach of an attached cluster works with (lib/control/detach.ts). @default detach refused
   */
  controlPlane?: {
    store: StateStore;
    runtime(cluster: ClusterRecord): Promise<{ provider: CloudProvider; agent: AgentChannel }>;
  };
}

export interface MasterImages {
  /**
   * The default master image for the instance type: the latest Debian 12 image of its architecture,
   * read from the public SSM parameter at call time. Throws CloudProviderError (InvalidRequestError for
   * an instance type the region does not know).
   */
  defaultImage(instanceType: string): Promise<string>;
}
