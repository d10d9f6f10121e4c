import { gzipSync } from "node:zlib";
import {
  GetCommandInvocationCommand,
  InvocationDoesNotExist,
  SendCommandCommand,
  type SSMClient,
} from "@aws-sdk/client-ssm";
import { DRAIN_REASON } from "../../scheduler-plugins/slurm/client.js";
import { shellQuote } from "../../scheduler-plugins/slurm/shell.js";
import { isSimpleName } from "../core/names.js";
import { DRAIN_REASON_PREFIX } from "../core/shrink.js";
import {
  AgentActionError,
  type AgentChannel,
  AgentUnreachableError,
  type NodeStorageSpec,
  SlurmctldUnreachableError,
} from "../ports/agent-channel.js";
import type { JobNote, PartitionSpec, PartitionsAnswer, PlaceholderSpec } from "../ports/agent-protocol.js";
import type { Clock } from "../ports/clock.js";
import { systemClock } from "../ports/clock.js";
import type { UsersAnswer, UsersRequest } from "../ports/cluster-users.js";
import type { SlurmSetup } from "../ports/slurm-setup.js";
import {
  checkedNotes,
  checkedPartitions,
  checkedPlaceholders,
  checkedStorage,
  checkedUsers,
  partitionsAnswer,
  placeholderAnswer,
  setupFromText,
  storageAnswer,
  usersAnswer,
} from "./http.js";
import { reportFromText } from "./report-text.js";

export interface SsmAgentChannelOptions {
  client: SSMClient;
  /** The master's instance id (managed by SSM). */
  instanceId: string;
  /** The agent on the master. @default /opt/nowscale/nowscale-agent.js */
  agentPath?: string;
  /**
   * The stack's agent document (lib/infra/agent-document.ts): its parameters are the action, node and
   * reason, checked by SSM against the document's patterns, so the caller needs no right to run an
   * arbitrary shell. @default none: AWS-RunShellScript with the agent's command line
   */
  documentName?: string;
  /** Give up waiting for the command after this long. @default 30000 */
  timeoutMs?: number;
  /** Between GetCommandInvocation calls. @default 1000 */
  pollMs?: number;
  clock?: Clock;
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
const AGENT_PATH = /^\/[A-Za-z0-9._/-]{1,200}$/;

/** Exit status of a payload that did not decode (base64, then gzip): damaged in transit, not refused. */
export const PAYLOAD_DAMAGED_EXIT = 65;

/**
 * The shell (POSIX sh: SSM runs it with /bin/sh, dash on Debian) that decodes a payload word (already
 * quoted, or "$P") and gives the JSON to `agentCommand` on its stdin. The decode is checked on its own,
 * since a pipeline's status is its last command's: a damaged payload exits PAYLOAD_DAMAGED_EXIT instead
 * of reaching the agent as truncated JSON. Used by the channel's shell line and the agent document.
 */
export function payloadPipeline(payloadWord: string, agentCommand: string): string {
  return `J=$(printf '%s' ${payloadWord} | base64 -d | gunzip) || exit ${PAYLOAD_DAMAGED_EXIT}; printf '%s' "$J" | ${agentCommand}; exit $?`;
}

/**
 * The agent through SSM Run Command, for masters the control plane cannot reach over the network:
 * `nowscale-agent report` and the one-shot actions (`drain`, `resume`, `delete-node`, `set-job-notes`,
 * `sync-placeholders`). Nothing from a
 * report ever reaches a command line; the node name and reason of an action are checked against the
 * agent's own allow-lists first and single-quoted. SSM keeps at most 24,000 characters of stdout, which
 * grouped reports fit.
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
    const { status, stdout } = await this.run("report", "", "");
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

  /** `nowscale-agent slurm-setup`: exit 2 is slurmctld not answering; its stdout is the setup's JSON. */
  async slurmSetup(): Promise<SlurmSetup> {
    const { status, stdout, code } = await this.run("slurm-setup", "", "");
    if (code === 2)
      throw new SlurmctldUnreachableError("agent slurm-setup over SSM: slurmctld did not answer");
    if (code !== 0)
      throw new AgentUnreachableError(
        `agent slurm-setup over SSM: ${status}, exit ${code} (an agent older than the attach path: install this version)`,
      );
    return setupFromText(stdout, "agent slurm-setup (SSM)");
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
      throw new SlurmctldUnreachableError("agent set-job-notes over SSM: slurmctld did not answer");
    if (code === 64) throw new AgentActionError("agent set-job-notes over SSM: refused", 400);
    if (code === PAYLOAD_DAMAGED_EXIT)
      throw new AgentActionError(
        "agent set-job-notes over SSM: the payload did not decode on the master",
        502,
      );
    throw new AgentActionError(`agent set-job-notes over SSM: ${status}, exit ${code}`, 502);
  }

  /** `nowscale-agent sync-placeholders --placeholders -`; its stdout is the `{created, removed}` answer. */
  async syncPlaceholders(
    specs: readonly PlaceholderSpec[],
  ): Promise<{ created: string[]; removed: string[] }> {
    const json = JSON.stringify({ placeholders: checkedPlaceholders(specs) });
    const { status, code, stdout } = await this.runLine("sync-placeholders", json);
    if (code === 0) return placeholderAnswer(stdout, "agent sync-placeholders over SSM");
    if (code === 2)
      throw new SlurmctldUnreachableError("agent sync-placeholders over SSM: slurmctld did not answer");
    if (code === 64) throw new AgentActionError("agent sync-placeholders over SSM: refused", 400);
    if (code === PAYLOAD_DAMAGED_EXIT)
      throw new AgentActionError(
        "agent sync-placeholders over SSM: the payload did not decode on the master",
        502,
      );
    throw new AgentActionError(`agent sync-placeholders over SSM: ${status}, exit ${code}`, 502);
  }

  /** `nowscale-agent set-partitions --partitions -`; its stdout is the answer. */
  async setPartitions(specs: readonly PartitionSpec[]): Promise<PartitionsAnswer> {
    const json = JSON.stringify({ partitions: checkedPartitions(specs) });
    const { status, code, stdout } = await this.runLine("set-partitions", json);
    if (code === 0) return partitionsAnswer(stdout, "agent set-partitions over SSM");
    const detail = agentError(stdout);
    if (code === 2)
      throw new SlurmctldUnreachableError(`agent set-partitions over SSM: slurmctld did not answer${detail}`);
    if (code === 64) throw new AgentActionError(`agent set-partitions over SSM: refused${detail}`, 400);
    if (code === PAYLOAD_DAMAGED_EXIT)
      throw new AgentActionError(
        "agent set-partitions over SSM: the payload did not decode on the master",
        502,
      );
    throw new AgentActionError(`agent set-partitions over SSM: ${status}, exit ${code}${detail}`, 502);
  }

  /** `nowscale-agent set-node-storage --storage -`; its stdout is the answer. */
  async setNodeStorage(storage: readonly NodeStorageSpec[]): Promise<{ changed: boolean }> {
    const json = JSON.stringify({ storage: checkedStorage(storage) });
    const { status, code, stdout } = await this.runLine("set-node-storage", json);
    if (code === 0) return storageAnswer(stdout, "agent set-node-storage over SSM");
    const detail = agentError(stdout);
    if (code === 2)
      throw new SlurmctldUnreachableError(
        `agent set-node-storage over SSM: slurmctld did not answer${detail}`,
      );
    if (code === 64) throw new AgentActionError(`agent set-node-storage over SSM: refused${detail}`, 400);
    throw new AgentActionError(`agent set-node-storage over SSM: ${status}, exit ${code}${detail}`, 502);
  }

  async setUsers(request: UsersRequest): Promise<UsersAnswer> {
    // Only secret ids travel (SSM keeps a command's parameters in its history): never a password.
    const json = JSON.stringify(checkedUsers(request));
    const { status, code, stdout } = await this.runLine("set-users", json);
    if (code === 0) return usersAnswer(stdout, "agent set-users over SSM");
    const detail = agentError(stdout);
    if (code === 64) throw new AgentActionError(`agent set-users over SSM: refused${detail}`, 400);
    if (code === PAYLOAD_DAMAGED_EXIT)
      throw new AgentActionError("agent set-users over SSM: the payload did not decode on the master", 502);
    throw new AgentActionError(`agent set-users over SSM: ${status}, exit ${code}${detail}`, 502);
  }

  /** Exit codes of the agent's one-shot actions: 0 done, 2 slurmctld down, 3 no such node, 64 refused. */
  private async action(action: string, node: string, extra: string[] = []): Promise<void> {
    if (!isSimpleName(node))
      throw new AgentActionError(`invalid node name ${JSON.stringify(node.slice(0, 80))}`);
    const { status, code } = await this.run(action, node, extra[1] ?? "");
    if (code === 0) return;
    if (code === 2)
      throw new SlurmctldUnreachableError(`agent ${action} ${node} over SSM: slurmctld did not answer`);
    if (code === 3) throw new AgentActionError(`agent ${action} ${node} over SSM: no such node`, 404);
    if (code === 64) throw new AgentActionError(`agent ${action} ${node} over SSM: refused`, 400);
    throw new AgentActionError(`agent ${action} ${node} over SSM: ${status}, exit ${code}`, 502);
  }

  /** One agent command on the master: through the agent document when there is one, else a shell line. */
  private async run(
    action: string,
    node: string,
    reason: string,
  ): Promise<{ status: string; stdout: string; code: number }> {
    const documentName = this.options.documentName;
    const parameters: Record<string, string[]> =
      documentName === undefined
        ? {
            commands: [
              ["node", this.agentPath, action, ...(node === "" ? [] : [node])]
                .concat(reason === "" ? [] : ["--reason", reason])
                .map(shellQuote)
                .join(" "),
            ],
          }
        : {
            action: [action],
            node: [node],
            // The document's pattern is narrower than Slurm's: anything else becomes '_'.
            reason: [reason.replace(/[^A-Za-z0-9 _.,:;=+@/()-]/g, "_")],
          };
    return this.send(documentName ?? "AWS-RunShellScript", parameters);
  }

  /**
   * A JSON-carrying action (set-job-notes, sync-placeholders): the JSON is gzipped and base64-encoded
   * (the payload), which the document (or the shell line) decodes into the agent's stdin (`--notes -`),
   * so its size is bounded by SSM's document limit, not by one argument's 128 KiB. Refused (413) before
   * anything is sent when the payload is over AGENT_DOCUMENT.payloadMaxChars.
   */
  private async runLine(
    action: "set-job-notes" | "sync-placeholders" | "set-partitions" | "set-node-storage" | "set-users",
    json: string,
  ): Promise<{ status: string; stdout: string; code: number }> {
    const payload = gzipSync(Buffer.from(json, "utf8")).toString("base64");
    if (payload.length > AGENT_DOCUMENT.payloadMaxChars)
      throw new AgentActionError(
        `agent ${action} over SSM: ${payload.length} characters of payload, over SSM's limit of ${AGENT_DOCUMENT.payloadMaxChars}`,
        413,
      );
    const option =
      action === "set-job-notes"
        ? "--notes"
        : action === "sync-placeholders"
          ? "--placeholders"
          : action === "set-users"
            ? "--users"
            : "--partitions";
    const documentName = this.options.documentName;
    if (documentName !== undefined)
      return this.send(documentName, { action: [action], node: [""], reason: [""], payload: [payload] });
    const agent = ["node", this.agentPath, action, option, "-"].map(shellQuote).join(" ");
    return this.send("AWS-RunShellScript", { commands: [payloadPipeline(shellQuote(payload), agent)] });
  }

  /** SendCommand, then GetCommandInvocation on the clock until the command ends or the timeout. */
  private async send(
    documentName: string,
    parameters: Record<string, string[]>,
  ): Promise<{ status: string; stdout: string; code: number }> {
    let commandId: string | undefined;
    try {
      const sent = await this.options.client.send(
        new SendCommandCommand({
          DocumentName: documentName,
          InstanceIds: [this.options.instanceId],
          Parameters: parameters,
          TimeoutSeconds: Math.max(30, Math.ceil(this.timeoutMs / 1000)),
          Comment: "nowscale agent",
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
        if (FINAL.has(status))
          return { status, stdout: out.StandardOutputContent ?? "", code: out.ResponseCode ?? -1 };
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

/** `: <the agent's error>` from its JSON answer on stdout (printable, bounded), or "". */
function agentError(stdout: string): string {
  try {
    const error = (JSON.parse(stdout.trim().split("\n").pop() ?? "") as { error?: unknown }).error;
    return typeof error === "string" ? `: ${error.replace(/[^\x20-\x7e]/g, "?").slice(0, 300)}` : "";
  } catch {
    return "";
  }
}
