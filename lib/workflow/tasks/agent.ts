import type { MasterRecord } from "./store.js";

/**
 * How the lifecycle tasks reach a cluster's agent. The control plane's AgentChannel (HMAC-signed HTTP
 * or SSM Run Command) implements it; tests use a fake.
 */
export interface MasterAgent {
  /**
   * True when the agent answered its signed health check. Never throws for an agent that is not up
   * yet (connection refused, timeout, 401 during key rollout): that is `false`, and the workflow waits.
   */
  isHealthy(clusterId: string, master: MasterRecord): Promise<boolean>;

  /**
   * Drains every node of the cluster with `reason` so Slurm starts nothing new on them. Best effort:
   * resolves `false` when the agent cannot be reached (the cluster is being deleted anyway).
   */
  drainAll(clusterId: string, master: MasterRecord, reason: string): Promise<boolean>;
}
