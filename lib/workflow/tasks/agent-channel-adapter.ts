import {
  AgentActionError,
  type AgentChannel,
  AgentUnreachableError,
  SlurmctldUnreachableError,
} from "../../ports/agent-channel.js";
import type { MasterAgent } from "./agent.js";
import type { MasterRecord } from "./store.js";

/**
 * MasterAgent over the control plane's AgentChannel: `channelFor` builds the channel for a master
 * (HTTP with the cluster's HMAC key, or SSM Run Command).
 */
export class AgentChannelMasterAgent implements MasterAgent {
  constructor(
    private readonly channelFor: (clusterId: string, master: MasterRecord) => Promise<AgentChannel>,
  ) {}

  async isHealthy(clusterId: string, master: MasterRecord): Promise<boolean> {
    try {
      await (await this.channelFor(clusterId, master)).health();
      return true;
    } catch (error) {
      if (error instanceof AgentUnreachableError || error instanceof SlurmctldUnreachableError) return false;
      throw error;
    }
  }

  async drainAll(clusterId: string, master: MasterRecord, reason: string): Promise<boolean> {
    try {
      const channel = await this.channelFor(clusterId, master);
      const report = await channel.report();
      for (const node of report.nodes) await channel.drain(node.name, reason);
      return true;
    } catch (error) {
      // AgentActionError: Slurm or the agent refused the drain; the instances go anyway.
      if (
        error instanceof AgentUnreachableError ||
        error instanceof SlurmctldUnreachableError ||
        error instanceof AgentActionError
      )
        return false;
      throw error;
    }
  }
}
