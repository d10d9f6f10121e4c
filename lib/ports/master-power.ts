/**
 * Stops and starts a cluster's master instance, keeping its disk and private IP, for sleep and wake
 * (lib/control/sleep.ts). Adapters: AWS (lib/providers/aws-ec2/master-power.ts), Tencent CVM and Alibaba
 * ECS (their providers' master-power.ts), chosen by cloud in lib/aws/master-power.ts.
 *
 * Contract, for every adapter: only instances tagged as NowScale masters (nowscale:managed=true and
 * nowscale-role=master) are ever stopped or started (by an IAM condition on AWS, by the adapter's own
 * check where the key is the user's); each call is idempotent (stopping a stopped instance, or starting
 * a running one, succeeds); errors are the port's typed CloudProviderErrors (lib/ports/errors.ts) where
 * the adapter maps its cloud's codes.
 */
export interface MasterPower {
  /** Asks the cloud to stop the instances; resolves once the request is accepted (not once STOPPED). */
  stop(instanceIds: readonly string[]): Promise<void>;
  /** Asks the cloud to start the instances; resolves once the request is accepted (not once RUNNING). */
  start(instanceIds: readonly string[]): Promise<void>;
}
