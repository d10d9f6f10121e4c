import { Client as TatClient } from "tencentcloud-sdk-nodejs/tencentcloud/services/tat/v20201028/tat_client.js";
import { AgentUnreachableError } from "../ports/agent-channel.js";
import {
  agentShellLine,
  type CommandResult,
  callFailed,
  pollCommand,
  RunCommandAgentChannel,
  type RunCommandOptions,
  type RunCommandTransport,
  runCommandSettings,
} from "./run-command-channel.js";

/** The TAT calls the channel makes (the SDK's client has them; tests may pass it pointed at a simulator). */
export type TatApi = Pick<TatClient, "RunCommand" | "DescribeInvocationTasks">;

/** `instanceId` is the master's CVM instance id (its TAT agent is on Tencent's images by default). */
export interface TatAgentChannelOptions extends RunCommandOptions {
  client: TatApi;
}

/** The TAT client for a region, with the stack's Tencent key (the same secret the CVM provider uses). */
export function tatClient(options: {
  region: string;
  credential: { secretId: string; secretKey: string; token?: string };
  endpoint?: string;
  protocol?: "https://" | "http://";
}): TatClient {
  return new TatClient({
    credential: options.credential,
    region: options.region,
    profile: {
      httpProfile: {
        reqTimeout: 30,
        protocol: options.protocol ?? "https://",
        ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
      },
    },
  });
}

/** TAT's task states after which nothing changes. */
const FINAL = new Set([
  "SUCCESS",
  "FAILED",
  "TIMEOUT",
  "TASK_TIMEOUT",
  "DELIVER_FAILED",
  "START_FAILED",
  "CANCELLED",
  "TERMINATED",
]);
/** The command never ran: the TAT agent is not up (yet), the instance is not running. */
const NOT_DELIVERED = new Set(["DELIVER_FAILED", "START_FAILED", "TASK_TIMEOUT", "CANCELLED"]);

/**
 * TAT takes at most 64 KB of base64 command content: the payload (itself base64 of gzipped JSON) plus the
 * shell line around it, base64-encoded again (4/3), stays under it with this many characters.
 */
export const TAT_PAYLOAD_MAX_CHARS = 45_000;

/**
 * The agent through Tencent's TAT (TencentCloud Automation Tools) RunCommand, for masters the control
 * plane cannot reach over the network: the same agent commands as over SSM (run-command-channel.ts), each
 * sent as its shell line. TAT has no document with checked parameters like SSM's, so the caller's CAM
 * policy needs tat:RunCommand on the cluster's master (docs/clouds.md). TAT keeps 24 KB of output, which
 * grouped reports fit.
 */
export class TatAgentChannel extends RunCommandAgentChannel {
  constructor(options: TatAgentChannelOptions) {
    super(tatTransport(options));
  }
}

/** RunCommand of the shell line (base64, as root), then DescribeInvocationTasks until the task ends. */
function tatTransport(options: TatAgentChannelOptions): RunCommandTransport {
  const settings = runCommandSettings(options);
  const { client, instanceId } = options;
  return {
    channel: "TAT",
    payloadMaxChars: TAT_PAYLOAD_MAX_CHARS,
    run: async (command) => {
      let invocationId: string | undefined;
      try {
        const sent = await client.RunCommand({
          Content: Buffer.from(agentShellLine(settings.agentPath, command), "utf8").toString("base64"),
          InstanceIds: [instanceId],
          CommandType: "SHELL",
          CommandName: "nowscale-agent",
          Timeout: settings.commandTimeoutS,
          SaveCommand: false,
          Username: "root",
        });
        invocationId = sent.InvocationId;
      } catch (error) {
        throw callFailed("TAT RunCommand", error);
      }
      if (invocationId === undefined)
        throw new AgentUnreachableError("TAT RunCommand returned no invocation id");
      const id = invocationId;
      return pollCommand(settings, `TAT command ${id}`, async (): Promise<CommandResult | undefined> => {
        let task:
          | { TaskStatus?: string; TaskResult?: { ExitCode?: number; Output?: string } | null }
          | undefined;
        try {
          const out = await client.DescribeInvocationTasks({
            Filters: [{ Name: "invocation-id", Values: [id] }],
            HideOutput: false,
          });
          task = out.InvocationTaskSet?.find((t) => t.InstanceId === instanceId);
        } catch (error) {
          throw callFailed("TAT DescribeInvocationTasks", error);
        }
        // The task shows up a moment after RunCommand returns.
        const status = task?.TaskStatus;
        if (status === undefined || !FINAL.has(status)) return undefined;
        if (NOT_DELIVERED.has(status))
          throw new AgentUnreachableError(`TAT command ${id} on ${instanceId}: ${status}`);
        const stdout = Buffer.from(task?.TaskResult?.Output ?? "", "base64").toString("utf8");
        return { status, stdout, code: task?.TaskResult?.ExitCode ?? -1 };
      });
    },
  };
}
