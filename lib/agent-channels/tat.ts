import { gzipSync } from "node:zlib";
import { Client as TatClient } from "tencentcloud-sdk-nodejs/tencentcloud/services/tat/v20201028/tat_client.js";
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

/** The TAT calls the channel makes (the SDK's client has them; tests may pass it pointed at a simulator). */
export type TatApi = Pick<TatClient, "RunCommand" | "DescribeInvocationTasks">;

export interface TatAgentChannelOptions {
  client: TatApi;
  /** The master's CVM instance id (its TAT agent is on Tencent's images by default). */
  instanceId: string;
  /** The agent on the master. @default /opt/nowscale/nowscale-agent.js */
  agentPath?: string;
  /** Give up waiting for the command after this long. @default 30000 */
  timeoutMs?: number;
  /** Between DescribeInvocationTasks calls. @default 1000 */
  pollMs?: number;
  clock?: Clock;
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

const AGENT_PATH = /^\/[A-Za-z0-9._/-]{1,200}$/;

/**
 * The agent through Tencent's TAT (TencentCloud Automation Tools) RunCommand, for masters the control
 * plane cannot reach over the network: the counterpart of SsmAgentChannel (ssm.ts), with the same shell
 * lines (the agent's one-shot actions; nothing from a report ever reaches a command line; node names and
 * reasons checked against the agent's allow-lists, then single-quoted). TAT has no document with
 * checked parameters like SSM's, so the caller's CAM policy needs tat:RunCommand on the cluster's master
 * (docs/clouds.md). TAT keeps 24 KB of output, which grouped reports fit.
 */
export class TatAgentChannel implements AgentChannel {
  private readonly agentPath: string;
  private readonly timeoutMs: number;
  private readonly pollMs: number;
  private readonly clock: Clock;

  constructor(private readonly options: TatAgentChannelOptions) {
    this.agentPath = options.agentPath ?? "/opt/nowscale/nowscale-agent.js";
    if (!AGENT_PATH.test(this.agentPath)) throw new TypeError("agentPath must be an absolute plain path");
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.pollMs = options.pollMs ?? 1_000;
    this.clock = options.clock ?? systemClock;
  }

  async report() {
    const { status, stdout } = await this.run("report", "", "");
    // Exit status 2 still prints a (failed) report on stdout; reportFromText turns it into the typed error.
    if (stdout.trim() === "") throw new AgentUnreachableError(`agent report over TAT: ${status}, no output`);
    return reportFromText(stdout, "agent report (TAT)");
  }

  async health(): Promise<{ agentVersion: string }> {
    const report = await this.report().catch((error: unknown) => {
      if (error instanceof AgentUnreachableError) throw error;
      return undefined;
    });
    return { agentVersion: report?.agentVersion ?? "unknown" };
  }

  /** `nowscale-agent slurm-setup`: exit 2 is slurmctld not answering; its stdout is the setup's JSON. */
  async slurmSetup(): Promise<SlurmSetup> {
    const { status, stdout, code } = await this.run("slurm-setup", "", "");
    if (code === 2)
      throw new SlurmctldUnreachableError("agent slurm-setup over TAT: slurmctld did not answer");
    if (code !== 0)
      throw new AgentUnreachableError(
        `agent slurm-setup over TAT: ${status}, exit ${code} (an agent older than the attach path: install this version)`,
      );
    return setupFromText(stdout, "agent slurm-setup (TAT)");
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

  /** `nowscale-agent set-job-notes --notes -`, the JSON on its stdin (runLine). */
  async setJobNotes(notes: readonly JobNote[]): Promise<void> {
    const json = JSON.stringify({ notes: checkedNotes(notes) });
    const { status, code } = await this.runLine("set-job-notes", json);
    if (code === 0) return;
    if (code === 2)
      throw new SlurmctldUnreachableError("agent set-job-notes over TAT: slurmctld did not answer");
    if (code === 64) throw new AgentActionError("agent set-job-notes over TAT: refused", 400);
    if (code === PAYLOAD_DAMAGED_EXIT)
      throw new AgentActionError(
        "agent set-job-notes over TAT: the payload did not decode on the master",
        502,
      );
    throw new AgentActionError(`agent set-job-notes over TAT: ${status}, exit ${code}`, 502);
  }

  /** `nowscale-agent sync-placeholders --placeholders -`; its stdout is the `{created, removed}` answer. */
  async syncPlaceholders(
    specs: readonly PlaceholderSpec[],
  ): Promise<{ created: string[]; removed: string[] }> {
    const json = JSON.stringify({ placeholders: checkedPlaceholders(specs) });
    const { status, code, stdout } = await this.runLine("sync-placeholders", json);
    if (code === 0) return placeholderAnswer(stdout, "agent sync-placeholders over TAT");
    if (code === 2)
      throw new SlurmctldUnreachableError("agent sync-placeholders over TAT: slurmctld did not answer");
    if (code === 64) throw new AgentActionError("agent sync-placeholders over TAT: refused", 400);
    if (code === PAYLOAD_DAMAGED_EXIT)
      throw new AgentActionError(
        "agent sync-placeholders over TAT: the payload did not decode on the master",
        502,
      );
    throw new AgentActionError(`agent sync-placeholders over TAT: ${status}, exit ${code}`, 502);
  }

  /** `nowscale-agent set-partitions --partitions -`; its stdout is the answer. */
  async setPartitions(specs: readonly PartitionSpec[]): Promise<PartitionsAnswer> {
    const json = JSON.stringify({ partitions: checkedPartitions(specs) });
    const { status, code, stdout } = await this.runLine("set-partitions", json);
    if (code === 0) return partitionsAnswer(stdout, "agent set-partitions over TAT");
    const detail = agentError(stdout);
    if (code === 2)
      throw new SlurmctldUnreachableError(`agent set-partitions over TAT: slurmctld did not answer${detail}`);
    if (code === 64) throw new AgentActionError(`agent set-partitions over TAT: refused${detail}`, 400);
    if (code === PAYLOAD_DAMAGED_EXIT)
      throw new AgentActionError(
        "agent set-partitions over TAT: the payload did not decode on the master",
        502,
      );
    throw new AgentActionError(`agent set-partitions over TAT: ${status}, exit ${code}${detail}`, 502);
  }

  /** Exit codes of the agent's one-shot actions: 0 done, 2 slurmctld down, 3 no such node, 64 refused. */
  private async action(action: string, node: string, extra: string[] = []): Promise<void> {
    if (!isSimpleName(node))
      throw new AgentActionError(`invalid node name ${JSON.stringify(node.slice(0, 80))}`);
    const { status, code } = await this.run(action, node, extra[1] ?? "");
    if (code === 0) return;
    if (code === 2)
      throw new SlurmctldUnreachableError(`agent ${action} ${node} over TAT: slurmctld did not answer`);
    if (code === 3) throw new AgentActionError(`agent ${action} ${node} over TAT: no such node`, 404);
    if (code === 64) throw new AgentActionError(`agent ${action} ${node} over TAT: refused`, 400);
    throw new AgentActionError(`agent ${action} ${node} over TAT: ${status}, exit ${code}`, 502);
  }

  /** One agent command line on the master. */
  private run(
    action: string,
    node: string,
    reason: string,
  ): Promise<{ status: string; stdout: string; code: number }> {
    const line = ["node", this.agentPath, action, ...(node === "" ? [] : [node])]
      .concat(reason === "" ? [] : ["--reason", reason])
      .map(shellQuote)
      .join(" ");
    return this.send(line);
  }

  /** A JSON-carrying action: gzipped and base64-encoded into the agent's stdin, as over SSM (ssm.ts). */
  private async runLine(
    action: "set-job-notes" | "sync-placeholders" | "set-partitions",
    json: string,
  ): Promise<{ status: string; stdout: string; code: number }> {
    const payload = gzipSync(Buffer.from(json, "utf8")).toString("base64");
    if (payload.length > TAT_PAYLOAD_MAX_CHARS)
      throw new AgentActionError(
        `agent ${action} over TAT: ${payload.length} characters of payload, over TAT's limit of ${TAT_PAYLOAD_MAX_CHARS}`,
        413,
      );
    const option =
      action === "set-job-notes"
        ? "--notes"
        : action === "sync-placeholders"
          ? "--placeholders"
          : "--partitions";
    const agent = ["node", this.agentPath, action, option, "-"].map(shellQuote).join(" ");
    return this.send(payloadPipeline(shellQuote(payload), agent));
  }

  /** RunCommand, then DescribeInvocationTasks on the clock until the task ends or the timeout. */
  private async send(line: string): Promise<{ status: string; stdout: string; code: number }> {
    let invocationId: string | undefined;
    try {
      const sent = await this.options.client.RunCommand({
        Content: Buffer.from(line, "utf8").toString("base64"),
        InstanceIds: [this.options.instanceId],
        CommandType: "SHELL",
        CommandName: "nowscale-agent",
        Timeout: Math.max(30, Math.ceil(this.timeoutMs / 1000)),
        SaveCommand: false,
        Username: "root",
      });
      invocationId = sent.InvocationId;
    } catch (error) {
      throw new AgentUnreachableError(`TAT RunCommand failed: ${(error as Error).message}`, { cause: error });
    }
    if (invocationId === undefined)
      throw new AgentUnreachableError("TAT RunCommand returned no invocation id");
    const id = invocationId;

    const deadline = this.clock.now() + this.timeoutMs;
    while (this.clock.now() < deadline) {
      await this.clock.sleep(this.pollMs);
      let task:
        | { TaskStatus?: string; TaskResult?: { ExitCode?: number; Output?: string } | null }
        | undefined;
      try {
        const out = await this.options.client.DescribeInvocationTasks({
          Filters: [{ Name: "invocation-id", Values: [id] }],
          HideOutput: false,
        });
        task = out.InvocationTaskSet?.find((t) => t.InstanceId === this.options.instanceId);
      } catch (error) {
        throw new AgentUnreachableError(`TAT DescribeInvocationTasks failed: ${(error as Error).message}`, {
          cause: error,
        });
      }
      // The task shows up a moment after RunCommand returns.
      const status = task?.TaskStatus;
      if (status === undefined || !FINAL.has(status)) continue;
      if (NOT_DELIVERED.has(status))
        throw new AgentUnreachableError(`TAT command ${id} on ${this.options.instanceId}: ${status}`);
      const stdout = Buffer.from(task?.TaskResult?.Output ?? "", "base64").toString("utf8");
      return { status, stdout, code: task?.TaskResult?.ExitCode ?? -1 };
    }
    throw new AgentUnreachableError(`TAT command ${id} did not finish within ${this.timeoutMs} ms`);
  }
}

/** `: <the agent's error>` from its JSON answer on stdout (printable, bounded), or "". */
function agentError(stdout: string): string {
  try {
    const error = (JSON.parse(stdout.trim().split("\n").pop() ?? "") as { error?: unknown }).error;
    return typeof error === "string" ? `: ${error.replace(/[^\x20-\x7e]/g, "?").slice(0, 300)}` : "";
  } catch {
    return "";
  }
}
