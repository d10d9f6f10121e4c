/**
 * Stops and starts a cluster's master instance, keeping its disk (AWS StopInstances / StartInstances),
 * for sleep and wake (lib/control/sleep.ts). Each call is idempotent: stopping a stopped instance, or
 * starting a running one, succeeds.
 */
export interface MasterPower {
  /** Asks the cloud to stop the instances; resolves once the request is accepted. */
  stop(instanceIds: readonly string[]): Promise<void>;
  /** Asks the cloud to start the instances; resolves once the request is accepted. */
  start(instanceIds: readonly string[]): Promise<void>;
}
