import {
  GetCommandInvocationCommand,
  InvocationDoesNotExist,
  SendCommandCommand,
  type SSMClient,
} from "@aws-sdk/client-ssm";
import {
  type AgentCommand,
  agentShellLine,
  cloudTransport,
  RunCommandAgentChannel,
  type RunCommandOptions,
} from "./run-command-channel.js";

// Still exported here, where they were first: the agent document (lib/infra/agent-document.ts) uses them.
export { PAYLOAD_DAMAGED_EXIT, payloadPipeline } from "./run-command-channel.js";

export interface SsmAgentChannelOptions extends RunCommandOptions {
  client: SSMClient;
  /**
   * The stack's agent document (lib/infra/agent-document.ts): its parameters are the action, node and
   * reason, checked by SSM against the document's patterns, so the caller needs no right to run an
   * arbitrary shell. @default none: AWS-RunShellScript with the agent's command line
   */
  documentName?: string;
}

const FINAL = new Set(["Success", "Failed", "Cancelled", "TimedOut", "Cancelling"]);

/** The agent document's parameters: the actions, and what a node name and a drain reason may contain. */
export const AGENT_DOCUMENT = {
  actions: [
    "report",
    "drain",
    "resume",
    "delete-node",
    "set-job-notes",
    "sync-placeholders",
    "slurm-setup",
    "set-partitions",
    "set-node-storage",
    "set-users",
  ],
  nodePattern: "^([A-Za-z0-9][A-Za-z0-9-]{0,62})?$",
  reasonPattern: "^[A-Za-z0-9 _.,:;=+@/()-]{0,200}$",
  /**
   * The JSON of set-job-notes and sync-placeholders, gzipped and base64-encoded: no character of it can
   * leave its quotes. 48,000 characters keep the document with its parameters under SSM's 64 KB
   * (a document's content "includes the content specified for input parameters at runtime").
   */
  payloadPattern: "^[A-Za-z0-9+/=]{0,48000}$",
  payloadMaxChars: 48_000,
} as const;

/**
 * The agent through SSM Run Command (run-command-channel.ts has what the agent's commands mean), for
 * masters the control plane cannot reach over the network, EC2 or hybrid-activated: SendCommand through
 * the agent document when there is one (the command's words as its checked parameters), else
 * AWS-RunShellScript with the shell line; then GetCommandInvocation until it ends. SSM keeps at most
 * 24,000 characters of stdout, which grouped reports fit.
 */
export class SsmAgentChannel extends RunCommandAgentChannel {
  constructor(options: SsmAgentChannelOptions) {
    const { client, instanceId, documentName } = options;
    super(
      cloudTransport(options, {
        channel: "SSM",
        payloadMaxChars: AGENT_DOCUMENT.payloadMaxChars,
        names: {
          send: "SSM SendCommand",
          poll: "SSM GetCommandInvocation",
          command: "SSM command",
          id: "command id",
        },
        send: async (command, settings) => {
          const sent = await client.send(
            new SendCommandCommand({
              DocumentName: documentName ?? "AWS-RunShellScript",
              InstanceIds: [instanceId],
              Parameters:
                documentName === undefined
                  ? { commands: [agentShellLine(settings.agentPath, command)] }
                  : documentParameters(command),
              TimeoutSeconds: settings.commandTimeoutS,
              Comment: "nowscale agent",
            }),
          );
          return sent.Command?.CommandId;
        },
        poll: async (CommandId) => {
          try {
            const out = await client.send(
              new GetCommandInvocationCommand({ CommandId, InstanceId: instanceId }),
            );
            const status = out.Status ?? "Pending";
            if (!FINAL.has(status)) return undefined;
            return { status, stdout: out.StandardOutputContent ?? "", code: out.ResponseCode ?? -1 };
          } catch (error) {
            // The invocation shows up a moment after SendCommand returns.
            if (error instanceof InvocationDoesNotExist || (error as Error).name === "InvocationDoesNotExist")
              return undefined;
            throw error;
          }
        },
      }),
    );
  }
}

/** The agent document's parameters for a command: its action, node and reason, or its payload. */
function documentParameters(command: AgentCommand): Record<string, string[]> {
  if ("payload" in command)
    return { action: [command.action], node: [""], reason: [""], payload: [command.payload] };
  return {
    action: [command.action],
    node: [command.node ?? ""],
    // The document's pattern is narrower than Slurm's: anything else becomes '_'.
    reason: [(command.reason ?? "").replace(/[^A-Za-z0-9 _.,:;=+@/()-]/g, "_")],
  };
}
