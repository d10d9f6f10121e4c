import { type EC2Client, StartInstancesCommand, StopInstancesCommand } from "@aws-sdk/client-ec2";
import type { MasterPower } from "../../ports/master-power.js";

/**
 * A cluster's master stopped and started on AWS (sleep and wake, lib/control/sleep.ts): StopInstances
 * keeps the instance, its EBS disk and its private IP (the agent's endpoint stays valid); compute is
 * billed no more, only the disk. Both calls are idempotent on EC2. The API's role may call them on
 * instances tagged nowscale:managed and nowscale-role=master only (lib/infra/permissions.ts).
 */
export class AwsMasterPower implements MasterPower {
  constructor(private readonly ec2: EC2Client) {}

  async stop(instanceIds: readonly string[]): Promise<void> {
    if (instanceIds.length > 0)
      await this.ec2.send(new StopInstancesCommand({ InstanceIds: [...instanceIds] }));
  }

  async start(instanceIds: readonly string[]): Promise<void> {
    if (instanceIds.length > 0)
      await this.ec2.send(new StartInstancesCommand({ InstanceIds: [...instanceIds] }));
  }
}
