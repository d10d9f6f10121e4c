import { readFile, stat } from "node:fs/promises";
import { HttpAgentChannel } from "../agent-channels/http.js";
import { type AttachPorts, AttachRefusedError, type AttachRequest } from "../control/attach.js";
import { attachedBootTarget, renderComputeUserData } from "../control/compute-user-data.js";
import type { Launch } from "../core/model.js";
import type { AgentChannel } from "../ports/agent-channel.js";
import type { Clock } from "../ports/clock.js";
import type { AgentEndpoint, ClusterRecord } from "../ports/state-store.js";
import { LOCAL_MUNGE_SECRET } from "../providers/local/testbed-nodes.js";

/**
 * Attached masters in the local mode (docs/attach.md, "local mode"). There is no secret store on one
 * machine: an agent's key "secret" is the absolute path of a root-only file holding it (what
 * `nowscale-agent install` wrote, e.g. /etc/nowscale/agent.key), and compute instances get the munge
 * key the local instances' secret store holds (LOCAL_MUNGE_SECRET: the test bed's key), so an attached
 * master must use that key. The channel is signed HTTP; SSM does not exist here.
 */

/** The key in a root-owned file that no one else may read or write (the local API acts as root). */
async function keyFromFile(path: string): Promise<Uint8Array> {
  if (!path.startsWith("/"))
    throw new TypeError("in the local mode the key secret is the key file's absolute path");
  const info = await stat(path);
  if (info.uid !== 0 || (info.mode & 0o077) !== 0)
    throw new TypeError(`${path} must be root's and readable by root only (chmod 0400)`);
  return Buffer.from((await readFile(path, "utf8")).trim(), "utf8");
}

async function httpChannel(endpoint: AgentEndpoint, clock: Clock): Promise<HttpAgentChannel> {
  if (endpoint.kind !== "http" || endpoint.keySecretArn === undefined)
    throw new TypeError("the local mode reaches attached masters over signed HTTP only");
  return new HttpAgentChannel({
    baseUrl: endpoint.url,
    key: await keyFromFile(endpoint.keySecretArn),
    clock,
  });
}

/** AttachPorts of the local mode: the probe reads the key file; no cloud network to check. */
export function localAttachPorts(clock: Clock): AttachPorts {
  return {
    probe: async (request: AttachRequest, endpoint: AgentEndpoint) => {
      if (request.master.channel !== "http")
        throw new AttachRefusedError(
          `master.channel: the local mode has no ${request.master.channel} (no cloud's run-command service): use http`,
          [
            {
              path: "master.channel",
              message: `the local mode has no ${request.master.channel} (no cloud's run-command service): use http`,
            },
          ],
        );
      try {
        return await httpChannel(endpoint, clock);
      } catch (error) {
        const message = `cannot read the agent's key: ${(error as Error).message}`.slice(0, 500);
        throw new AttachRefusedError(`master.agentKeySecret: ${message}`, [
          { path: "master.agentKeySecret", message },
        ]);
      }
    },
  };
}

/** The agent of an attached cluster, as the scaler, reconciler and detach reach it. */
export function localAttachedAgent(cluster: ClusterRecord, clock: Clock): Promise<AgentChannel> {
  return httpChannel(cluster.agent, clock);
}

/**
 * The compute user data of an attached cluster's launches: the AWS boot script (as every local
 * instance runs), joining the attached slurmctld configless with the local instances' munge key.
 */
export function localAttachedUserData(cluster: ClusterRecord, launch: Launch): string | undefined {
  const attached = cluster.attachment;
  if (attached === undefined) return undefined;
  return renderComputeUserData(cluster, launch, {
    ...attachedBootTarget("aws", cluster.placement.region, attached),
    mungeSecret: LOCAL_MUNGE_SECRET,
  });
}
