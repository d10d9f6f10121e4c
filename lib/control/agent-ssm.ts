import {
  GetCommandInvocationCommand,
  InvocationDoesNotExist,
  SendCommandCommand,
  type SSMClient,
} from "@aws-sdk/client-ssm";
import { AgentActionError, type AgentChannel, AgentUnreachableError } from "../ports/agent-channel.js";
import type { Clock } from "../ports/clock.js";
import { systemClock } from "../ports/clock.js";
import { reportFromText } from "./agent-report.js";

export interface SsmAgentChannelOptions {
  client: SSMClient;
  /** The master's instance id (managed by SSM). */
  instanceId: string;
  /** The agent on the master. @default /opt/nowscale/nowscale-agent.js */
  agentPath?: string;
  /** Give up waiting for the command after this long. @default 30000 */
  timeoutMs?: number;
  /** Between GetCommandInvocation calls. @default 1000 */
  pollMs?: number;
  clock?: Clock;
}

const FINAL = new Set(["Success", "Failed", "Cancelled", "TimedOut", "Cancelling"]);
const AGENT_PATH = /^\/[A-Za-z0-9._/-]{1,200}$/;

/**
 * Reads the report with SSM Run Command (`nowscale-agent report` on the master), for masters the control
 * plane cannot reach over the network. The command line is fixed: nothing from a request or a report is
 * ever put into it. SSM keeps at most 24,000 characters of stdout, which grouped reports fit.
 * Node actions need the agent's HTTP API and are refused here.
 */
export class SsmAgentChannel implements AgentChannel {
  private readonly agentPath: string;
  private readonly timeoutMs: number;
  private readonly pollMs: number;
  private readonly clock: Clock;

  constructor(private readonly options: SsmAgentChannelOptions) {
    this.agentPath = options.agentPath ?? "/opt/nowscale/nowscale-agent.js";
    if (!AGENT_PATH.test(this.agentPath)) throw new TypeError("agentPath must be an absolute plain path");
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.pollMs = options.pollMs ?? 1_000;
    this.clock = options.clock ?? systemClock;
  }

  async report() {
    const { status, stdout } = await this.run([`node ${this.agentPath} report`]);
    // Exit status 2 still prints a (failed) report on stdout; reportFromText turns it into the typed error.
    if (stdout.trim() === "") throw new AgentUnreachableError(`agent report over SSM: ${status}, no output`);
    return reportFromText(stdout, "agent report (SSM)");
  }

  async health(): Promise<{ agentVersion: string }> {
    const report = await this.report().catch((error: unknown) => {
      if (error instanceof AgentUnreachableError) throw error;
      return undefined;
    });
    return { agentVersion: report?.agentVersion ?? "unknown" };
  }

  async drain(): Promise<void> {
    throw new AgentActionError("node actions need the agent's HTTP API; the SSM channel only reads reports");
  }

  async resume(): Promise<void> {
    throw new AgentActionError("node actions need the agent's HTTP API; the SSM channel only reads reports");
  }

  async deleteNode(): Promise<void> {
    throw new AgentActionError("node actions need the agent's HTTP API; the SSM channel only reads reports");
  }

  private async run(commands: string[]): Promise<{ status: string; stdout: string }> {
    let commandId: string | undefined;
    try {
      const sent = await this.options.client.send(
        new SendCommandCommand({
          DocumentName: "AWS-RunShellScript",
          InstanceIds: [this.options.instanceId],
          Parameters: { commands },
          TimeoutSeconds: Math.max(30, Math.ceil(this.timeoutMs / 1000)),
          Comment: "nowscale report",
        }),
      );
      commandId = sent.Command?.CommandId;
    } catch (error) {
      throw new AgentUnreachableError(`SSM SendCommand failed: ${(error as Error).message}`, {
        cause: error,
      });
    }
    if (commandId === undefined) throw new AgentUnreachableError("SSM SendCommand returned no command id");

    const deadline = this.clock.now() + this.timeoutMs;
    while (this.clock.now() < deadline) {
      await this.clock.sleep(this.pollMs);
      try {
        const out = await this.options.client.send(
          new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: this.options.instanceId }),
        );
        const status = out.Status ?? "Pending";
        if (FINAL.has(status)) return { status, stdout: out.StandardOutputContent ?? "" };
      } catch (error) {
        // The invocation shows up a moment after SendCommand returns.
        if (error instanceof InvocationDoesNotExist || (error as Error).name === "InvocationDoesNotExist")
          continue;
        throw new AgentUnreachableError(`SSM GetCommandInvocation failed: ${(error as Error).message}`, {
          cause: error,
        });
      }
    }
    throw new AgentUnreachableError(`SSM command ${commandId} did not finish within ${this.timeoutMs} ms`);
  }
}
