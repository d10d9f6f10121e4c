import * as ecs from "@alicloud/ecs20140526";
import {
  agentShellLine,
  cloudTransport,
  RunCommandAgentChannel,
  type RunCommandOptions,
} from "./run-command-channel.js";

/** The ECS client's methods the channel calls (the SDK's Client, or a test double of it). */
export interface CloudAssistantClient {
  runCommand(request: ecs.RunCommandRequest): Promise<{ body?: ecs.RunCommandResponseBody }>;
  describeInvocationResults(
    request: ecs.DescribeInvocationResultsRequest,
  ): Promise<{ body?: ecs.DescribeInvocationResultsResponseBody }>;
}

/** `instanceId` is the master's ECS instance id (its Cloud Assistant agent is on Alibaba's public images). */
export interface CloudAssistantAgentChannelOptions extends RunCommandOptions {
  /** An ECS client (`@alicloud/ecs20140526`) with the control plane's credentials. */
  client: CloudAssistantClient;
  regionId: string;
}

/**
 * Invocation states after which nothing changes (DescribeInvocationResults' InvocationStatus): Success
 * and Failed carry the exit code; the others mean the command did not run to its end.
 */
const FINAL = new Set([
  "Success",
  "Failed",
  "Error",
  "Timeout",
  "Cancelled",
  "Stopped",
  "Terminated",
  "Invalid",
  "Aborted",
]);

/**
 * RunCommand takes at most 18 KB of Base64-encoded command content for a one-off command: the gzipped,
 * base64-encoded JSON of a payload action is kept to 12,000 characters, which with the line around it and
 * the second encoding stays under that.
 */
export const CLOUD_ASSISTANT_PAYLOAD_MAX_CHARS = 12_000;

/**
 * The agent through Alibaba Cloud Assistant, for masters the control plane cannot reach over the network:
 * the same agent commands as over SSM (run-command-channel.ts), each ECS RunCommand of its shell line
 * (RunShellScript, Base64 content, as root), then DescribeInvocationResults until the invocation ends.
 * Cloud Assistant keeps 24 KB of output, which grouped reports fit.
 */
export class CloudAssistantAgentChannel extends RunCommandAgentChannel {
  constructor(options: CloudAssistantAgentChannelOptions) {
    const { client, regionId, instanceId } = options;
    super(
      cloudTransport(options, {
        channel: "Cloud Assistant",
        payloadMaxChars: CLOUD_ASSISTANT_PAYLOAD_MAX_CHARS,
        names: {
          send: "Cloud Assistant RunCommand",
          poll: "Cloud Assistant DescribeInvocationResults",
          command: "Cloud Assistant invocation",
          id: "InvokeId",
        },
        send: async (command, settings) => {
          const line = agentShellLine(settings.agentPath, command);
          const sent = await client.runCommand(
            new ecs.RunCommandRequest({
              regionId,
              type: "RunShellScript",
              commandContent: Buffer.from(line, "utf8").toString("base64"),
              contentEncoding: "Base64",
              instanceId: [instanceId],
              timeout: settings.commandTimeoutS,
              description: "nowscale agent",
            }),
          );
          return sent.body?.invokeId;
        },
        poll: async (invokeId) => {
          const out = await client.describeInvocationResults(
            new ecs.DescribeInvocationResultsRequest({
              regionId,
              invokeId,
              instanceId,
              contentEncoding: "PlainText",
            }),
          );
          const result = out.body?.invocation?.invocationResults?.invocationResult?.[0];
          // The result shows up a moment after RunCommand returns.
          const status = result?.invocationStatus ?? "Pending";
          if (!FINAL.has(status)) return undefined;
          const code = status === "Success" || status === "Failed" ? (result?.exitCode ?? -1) : -1;
          return { status, stdout: result?.output ?? "", code };
        },
      }),
    );
  }
}
