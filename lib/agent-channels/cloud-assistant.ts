import { gzipSync } from "node:zlib";
import * as ecs from "@alicloud/ecs20140526";
import { DRAIN_REASON } from "../../scheduler-plugins/slurm/client.js";
import { shellQuote } from "../../scheduler-plugins/slurm/shell.js";
import { isSimpleName } from "../core/names.js";
import { DRAIN_REASON_PREFIX } from "../core/shrink.js";
import {
  AgentActionError,
  type AgentChannel,
  AgentUnreachableError,
  SlurmctldUnreachableError,
} from "../ports/agent-channel.js";
import type { JobNote, PartitionSpec, PartitionsAnswer, PlaceholderSpec } from "../ports/agent-protocol.js";
import type { Clock } from "../ports/clock.js";
import { systemClock } from "../ports/clock.js";
import type { SlurmSetup } from "../ports/slurm-setup.js";
import {
  checkedNotes,
  checkedPartitions,
  checkedPlaceholders,
  partitionsAnswer,
  placeholderAnswer,
  setupFromText,
} from "./http.js";
import { reportFromText } from "./report-text.js";
import { PAYLOAD_DAMAGED_EXIT, payloadPipeline } from "./ssm.js";

/** The ECS client's methods the channel calls (the SDK's Client, or a test double of it). */
export interface CloudAssistantClient {
  runCommand(request: ecs.RunCommandRequest): Promise<{ body?: ecs.RunCommandResponseBody }>;
  describeInvocationResults(
    request: ecs.DescribeInvocationResultsRequest,
  ): Promise<{ body?: ecs.DescribeInvocationResultsResponseBody }>;
}

export interface CloudAssistantAgentChannelOptions {
  /** An ECS client (`@alicloud/ecs20140526`) with the control plane's credentials. */
  client: CloudAssistantClient;
  regionId: string;
  /** The master's ECS instance id (its Cloud Assistant agent is installed on Alibaba's public images). */
  instanceId: string;
  /** The agent on the master. @default /opt/nowscale/nowscale-agent.js */
  agentPath?: string;
  /** Give up waiting for the command after this long. @default 30000 */
  timeoutMs?: number;
  /** Between DescribeInvocationResults calls. @default 1000 */
  pollMs?: number;
  clock?: Clock;
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
const AGENT_PATH = /^\/[A-Za-z0-9._/-]{1,200}$/;

/**
 * RunCommand takes at most 18 KB of Base64-encoded command content for a one-off command: the gzipped,
 * base64-encoded JSON of a payload action is kept to 12,000 characters, which with the line around it and
 * the second encoding stays under that.
 */
export const CLOUD_ASSISTANT_PAYLOAD_MAX_CHARS = 12_000;

/**
 * The agent through Alibaba Cloud Assistant (ECS RunCommand / DescribeInvocationResults), the
 * counterpart of SsmAgentChannel for masters the control plane cannot reach over the network. Every
 * command is one shell line (RunShellScript, as root): `node <agent> <action> [node] [--reason r]`,
 * each word single-quoted after the node name and reason passed the agent's own allow-lists; a JSON
 * payload travels gzipped and base64-encoded and is decoded into the agent's stdin (payloadPipeline),
 * so nothing from a request can leave its quotes. Cloud Assistant keeps 24 KB of output, which grouped
 * reports fit.
 */
export class CloudAssistantAgentChannel implements AgentChannel {
  private readonly agentPath: string;
  private readonly timeoutMs: number;
  private readonly pollMs: number;
  private readonly clock: Clock;

  constructor(private readonly options: CloudAssistantAgentChannelOptions) {
    this.agentPath = options.agentPath ?? "/opt/nowscale/nowscale-agent.js";
    if (!AGENT_PATH.test(this.agentPath)) throw new TypeError("agentPath must be an absolute plain path");
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.pollMs = options.pollMs ?? 1_000;
    this.clock = options.clock ?? systemClock;
  }

  async report() {
    const { status, stdout } = await this.agent(["report"]);
    // Exit status 2 still prints a (failed) report on stdout; reportFromText turns it into the typed error.
    if (stdout.trim() === "")
      throw new AgentUnreachableError(`agent report over Cloud Assistant: ${status}, no output`);
    return reportFromText(stdout, "agent report (Cloud Assistant)");
  }

  async health(): Promise<{ agentVersion: string }> {
    const report = await this.report().catch((error: unknown) => {
      if (error instanceof AgentUnreachableError) throw error;
      return undefined;
    });
    return { agentVersion: report?.agentVersion ?? "unknown" };
  }

  async slurmSetup(): Promise<SlurmSetup> {
    const { status, stdout, code } = await this.agent(["slurm-setup"]);
    if (code === 2)
      throw new SlurmctldUnreachableError("agent slurm-setup over Cloud Assistant: slurmctld did not answer");
    if (code !== 0)
      throw new AgentUnreachableError(`agent slurm-setup over Cloud Assistant: ${status}, exit ${code}`);
    return setupFromText(stdout, "agent slurm-setup (Cloud Assistant)");
  }

  async drain(node: string, reason: string): Promise<void> {
    const full = reason.startsWith(DRAIN_REASON_PREFIX) ? reason : `${DRAIN_REASON_PREFIX}: ${reason}`;
    if (!DRAIN_REASON.test(full))
      throw new AgentActionError("drain reason must be 1-200 printable ASCII characters");
    await this.action("drain", node, ["--reason", full]);
  }

  async resume(node: string): Promise<void> {
    await this.action("resume", node);
  }

  async deleteNode(node: string): Promise<void> {
    await this.action("delete-node", node);
  }

  async setJobNotes(notes: readonly JobNote[]): Promise<void> {
    await this.payloadAction("set-job-notes", { notes: checkedNotes(notes) });
  }

  async syncPlaceholders(
    specs: readonly PlaceholderSpec[],
  ): Promise<{ created: string[]; removed: string[] }> {
    const { stdout } = await this.payloadAction("sync-placeholders", {
      placeholders: checkedPlaceholders(specs),
    });
    return placeholderAnswer(stdout, "agent sync-placeholders over Cloud Assistant");
  }

  async setPartitions(specs: readonly PartitionSpec[]): Promise<PartitionsAnswer> {
    const { stdout } = await this.payloadAction("set-partitions", { partitions: checkedPartitions(specs) });
    return partitionsAnswer(stdout, "agent set-partitions over Cloud Assistant");
  }

  /** Exit codes of the agent's one-shot actions: 0 done, 2 slurmctld down, 3 no such node, 64 refused. */
  private async action(action: string, node: string, extra: string[] = []): Promise<void> {
    if (!isSimpleName(node))
      throw new AgentActionError(`invalid node name ${JSON.stringify(node.slice(0, 80))}`);
    const { status, code } = await this.agent([action, node, ...extra]);
    const what = `agent ${action} ${node} over Cloud Assistant`;
    if (code === 0) return;
    if (code === 2) throw new SlurmctldUnreachableError(`${what}: slurmctld did not answer`);
    if (code === 3) throw new AgentActionError(`${what}: no such node`, 404);
    if (code === 64) throw new AgentActionError(`${what}: refused`, 400);
    throw new AgentActionError(`${what}: ${status}, exit ${code}`, 502);
  }

  /** A JSON-carrying action: gzipped, base64-encoded, decoded on the master into the agent's stdin. */
  private async payloadAction(
    action: "set-job-notes" | "sync-placeholders" | "set-partitions",
    body: unknown,
  ): Promise<{ stdout: string }> {
    const payload = gzipSync(Buffer.from(JSON.stringify(body), "utf8")).toString("base64");
    const what = `agent ${action} over Cloud Assistant`;
    if (payload.length > CLOUD_ASSISTANT_PAYLOAD_MAX_CHARS)
      throw new AgentActionError(
        `${what}: ${payload.length} characters of payload, over Cloud Assistant's limit of ${CLOUD_ASSISTANT_PAYLOAD_MAX_CHARS}`,
        413,
      );
    const option =
      action === "set-job-notes"
        ? "--notes"
        : action === "sync-placeholders"
          ? "--placeholders"
          : "--partitions";
    const agent = ["node", this.agentPath, action, option, "-"].map(shellQuote).join(" ");
    const { status, code, stdout } = await this.run(payloadPipeline(shellQuote(payload), agent));
    if (code === 0) return { stdout };
    if (code === 2) throw new SlurmctldUnreachableError(`${what}: slurmctld did not answer`);
    if (code === 64) throw new AgentActionError(`${what}: refused`, 400);
    if (code === PAYLOAD_DAMAGED_EXIT)
      throw new AgentActionError(`${what}: the payload did not decode on the master`, 502);
    throw new AgentActionError(`${what}: ${status}, exit ${code}`, 502);
  }

  /** `node <agent> <words…>`, every word single-quoted. */
  private agent(words: string[]) {
    return this.run(["node", this.agentPath, ...words].map(shellQuote).join(" "));
  }

  /** RunCommand, then DescribeInvocationResults on the clock until the invocation ends or the timeout. */
  private async run(line: string): Promise<{ status: string; stdout: string; code: number }> {
    const { client, regionId, instanceId } = this.options;
    let invokeId: string | undefined;
    try {
      const sent = await client.runCommand(
        new ecs.RunCommandRequest({
          regionId,
          type: "RunShellScript",
          commandContent: Buffer.from(line, "utf8").toString("base64"),
          contentEncoding: "Base64",
          instanceId: [instanceId],
          timeout: Math.max(30, Math.ceil(this.timeoutMs / 1000)),
          description: "nowscale agent",
        }),
      );
      invokeId = sent.body?.invokeId;
    } catch (error) {
      throw new AgentUnreachableError(`Cloud Assistant RunCommand failed: ${(error as Error).message}`, {
        cause: error,
      });
    }
    if (invokeId === undefined)
      throw new AgentUnreachableError("Cloud Assistant RunCommand returned no InvokeId");

    const deadline = this.clock.now() + this.timeoutMs;
    while (this.clock.now() < deadline) {
      await this.clock.sleep(this.pollMs);
      let result:
        | ecs.DescribeInvocationResultsResponseBodyInvocationInvocationResultsInvocationResult
        | undefined;
      try {
        const out = await client.describeInvocationResults(
          new ecs.DescribeInvocationResultsRequest({
            regionId,
            invokeId,
            instanceId,
            contentEncoding: "PlainText",
          }),
        );
        result = out.body?.invocation?.invocationResults?.invocationResult?.[0];
      } catch (error) {
        throw new AgentUnreachableError(
          `Cloud Assistant DescribeInvocationResults failed: ${(error as Error).message}`,
          { cause: error },
        );
      }
      // The result shows up a moment after RunCommand returns.
      const status = result?.invocationStatus ?? "Pending";
      if (FINAL.has(status)) {
        const code = status === "Success" || status === "Failed" ? (result?.exitCode ?? -1) : -1;
        return { status, stdout: result?.output ?? "", code };
      }
    }
    throw new AgentUnreachableError(
      `Cloud Assistant invocation ${invokeId} did not finish within ${this.timeoutMs} ms`,
    );
  }
}
