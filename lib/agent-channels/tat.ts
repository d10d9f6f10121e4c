import { Client as TatClient } from "tencentcloud-sdk-nodejs/tencentcloud/services/tat/v20201028/tat_client.js";
import { AgentUnreachableError } from "../ports/agent-channel.js";
import {
  agentShellLine,
  cloudTransport,
  RunCommandAgentChannel,
  type RunCommandOptions,
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
 * The agent through Tencent's TAT (TencentCloud Automation Tools), for masters the control plane cannot
 * reach over the network: the same agent commands as over SSM (run-command-channel.ts), each RunCommand
 * of its shell line (base64 `Content`, as root), then DescribeInvocationTasks until the task ends. TAT has
 * no document with checked parameters like SSM's, so the caller's CAM policy needs tat:RunCommand on the
 * cluster's master (docs/clouds.md). TAT keeps 24 KB of output, which grouped reports fit.
 */
export class TatAgentChannel extends RunCommandAgentChannel {
  constructor(options: TatAgentChannelOptions) {
    const { client, instanceId } = options;
    super(
      cloudTransport(options, {
        channel: "TAT",
        payloadMaxChars: TAT_PAYLOAD_MAX_CHARS,
        names: {
          send: "TAT RunCommand",
          poll: "TAT DescribeInvocationTasks",
          command: "TAT command",
          id: "invocation id",
        },
        send: async (command, settings) => {
          const sent = await client.RunCommand({
            Content: Buffer.from(agentShellLine(settings.agentPath, command), "utf8").toString("base64"),
            InstanceIds: [instanceId],
            CommandType: "SHELL",
            CommandName: "nowscale-agent",
            Timeout: settings.commandTimeoutS,
            SaveCommand: false,
            Username: "root",
          });
          return sent.InvocationId;
        },
        poll: async (id) => {
          const out = await client.DescribeInvocationTasks({
            Filters: [{ Name: "invocation-id", Values: [id] }],
            HideOutput: false,
          });
          const task = out.InvocationTaskSet?.find((t) => t.InstanceId === instanceId);
          // The task shows up a moment after RunCommand returns.
          const status = task?.TaskStatus;
          if (status === undefined || !FINAL.has(status)) return undefined;
          if (NOT_DELIVERED.has(status))
            throw new AgentUnreachableError(`TAT command ${id} on ${instanceId}: ${status}`);
          const stdout = Buffer.from(task?.TaskResult?.Output ?? "", "base64").toString("utf8");
          return { status, stdout, code: task?.TaskResult?.ExitCode ?? -1 };
        },
      }),
    );
  }
}
