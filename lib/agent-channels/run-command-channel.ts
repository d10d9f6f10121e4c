import { gzipSync } from "node:zlib";
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
import { type Clock, systemClock } from "../ports/clock.js";
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

/*
 * The agent through a cloud's run-command service (AWS SSM Run Command, Tencent TAT, Alibaba Cloud
 * Assistant), for masters the control plane cannot reach over the network. What the agent's command line
 * means (its words, payloads, exit codes, answers) is here once, in RunCommandAgentChannel; each cloud's
 * module (ssm.ts, tat.ts, cloud-assistant.ts) is only a RunCommandTransport, made by cloudTransport
 * from its two calls: send one command to the master, poll until it ends, give back its output and exit
 * code.
 */

/** Exit status of a payload that did not decode (base64, then gzip): damaged in transit, not refused. */
export const PAYLOAD_DAMAGED_EXIT = 65;

/**
 * The shell (POSIX sh: SSM runs it with /bin/sh, dash on Debian) that decodes a payload word (already
 * quoted, or "$P") and gives the JSON to `agentCommand` on its stdin. The decode is checked on its own,
 * since a pipeline's status is its last command's: a damaged payload exits PAYLOAD_DAMAGED_EXIT instead
 * of reaching the agent as truncated JSON. Used by the channels' shell lines and SSM's agent document.
 */
export function payloadPipeline(payloadWord: string, agentCommand: string): string {
  return `J=$(printf '%s' ${payloadWord} | base64 -d | gunzip) || exit ${PAYLOAD_DAMAGED_EXIT}; printf '%s' "$J" | ${agentCommand}; exit $?`;
}

/** The agent's actions that take JSON, and the option that reads it from stdin (`-`; agent/main.ts). */
export const PAYLOAD_OPTIONS = {
  "set-job-notes": "--notes",
  "sync-placeholders": "--placeholders",
  "set-partitions": "--partitions",
  "set-node-storage": "--storage",
  "set-users": "--users",
} as const;
export type PayloadAction = keyof typeof PAYLOAD_OPTIONS;

/**
 * One agent command on the master: an action with words (`report`, `slurm-setup`, a node action with
 * its node and drain's reason, both already checked against the agent's allow-lists), or a JSON action
 * with its payload (the JSON gzipped and base64-encoded: only `[A-Za-z0-9+/=]`).
 */
export type AgentCommand =
  | {
      readonly action: "report" | "slurm-setup" | "drain" | "resume" | "delete-node";
      readonly node?: string;
      readonly reason?: string;
    }
  | { readonly action: PayloadAction; readonly payload: string };

/**
 * The shell line of an agent command: `node <agent> <action> [node] [--reason r]`, every word
 * single-quoted, or for a payload the pipeline that decodes it into `node <agent> <action> --<option> -`.
 * Nothing in it can leave its quotes.
 */
export function agentShellLine(agentPath: string, command: AgentCommand): string {
  if ("payload" in command) {
    const agent = ["node", agentPath, command.action, PAYLOAD_OPTIONS[command.action], "-"]
      .map(shellQuote)
      .join(" ");
    return payloadPipeline(shellQuote(command.payload), agent);
  }
  const { node = "", reason = "" } = command;
  return ["node", agentPath, command.action, ...(node === "" ? [] : [node])]
    .concat(reason === "" ? [] : ["--reason", reason])
    .map(shellQuote)
    .join(" ");
}

/** What a command that ended gave back. */
export interface CommandResult {
  /** The cloud's final state of the command ("Success", "FAILED", …), for messages. */
  status: string;
  /** The command's standard output (as much as the cloud keeps: 24 KB on all three). */
  stdout: string;
  /** Its exit code; -1 when the cloud gives none (a command cancelled or timed out on the master). */
  code: number;
}

/** One cloud's way of running a command on the master. */
export interface RunCommandTransport {
  /** The channel's name in messages: "SSM", "TAT", "Cloud Assistant". */
  readonly channel: string;
  /**
   * The most characters of payload (AgentCommand.payload) the cloud's command takes with the line or
   * document around it: a longer one is refused (413) before anything is sent.
   */
  readonly payloadMaxChars: number;
  /**
   * Runs one agent command on the master (as agentShellLine's line, or a document of its own with the
   * command's words as checked parameters) and waits for it to end. Resolves with the result whatever the
   * exit code (the channel maps it). Throws AgentUnreachableError when the command could not be sent,
   * never reached the master (no run-command agent answering there), or did not end within the timeout.
   * Sends once: retrying is the caller's decision.
   */
  run(command: AgentCommand): Promise<CommandResult>;
}

/** The options all three channels take, besides their cloud's client. */
export interface RunCommandOptions {
  /** The master's instance id (managed by the cloud's run-command agent). */
  instanceId: string;
  /** The agent on the master. @default /opt/nowscale/nowscale-agent.js */
  agentPath?: string;
  /** Give up waiting for the command after this long. @default 30000 */
  timeoutMs?: number;
  /** Between two polls of the command's state. @default 1000 */
  pollMs?: number;
  clock?: Clock;
}

export interface RunCommandSettings {
  readonly agentPath: string;
  readonly timeoutMs: number;
  readonly pollMs: number;
  readonly clock: Clock;
  /** The timeout given to the cloud for the command itself: the channel's, at least 30 s. */
  readonly commandTimeoutS: number;
}

const AGENT_PATH = /^\/[A-Za-z0-9._/-]{1,200}$/;

/** The options with their defaults; TypeError when agentPath is not an absolute plain path. */
function runCommandSettings(options: RunCommandOptions): RunCommandSettings {
  const agentPath = options.agentPath ?? "/opt/nowscale/nowscale-agent.js";
  if (!AGENT_PATH.test(agentPath)) throw new TypeError("agentPath must be an absolute plain path");
  const timeoutMs = options.timeoutMs ?? 30_000;
  return {
    agentPath,
    timeoutMs,
    pollMs: options.pollMs ?? 1_000,
    clock: options.clock ?? systemClock,
    commandTimeoutS: Math.max(30, Math.ceil(timeoutMs / 1000)),
  };
}

/** A cloud's two calls behind a transport (cloudTransport), with its words for messages. */
export interface CloudCommandCalls {
  /** The channel's name in messages: "SSM", "TAT", "Cloud Assistant". */
  readonly channel: string;
  /** RunCommandTransport.payloadMaxChars. */
  readonly payloadMaxChars: number;
  /** The calls and the command's id as messages name them, e.g. "TAT RunCommand", "invocation id". */
  readonly names: { send: string; poll: string; command: string; id: string };
  /**
   * Starts the command on the master; answers its id, or undefined when the cloud answered none. A
   * thrown error is AgentUnreachableError `<names.send> failed: …`.
   */
  send(command: AgentCommand, settings: RunCommandSettings): Promise<string | undefined>;
  /**
   * Reads the command's state by its id: its result once it ended, undefined while it runs or before it
   * shows up (a command appears a moment after it is sent). An AgentUnreachableError passes as it is (a
   * command the cloud could not deliver); any other error is `<names.poll> failed: …`.
   */
  poll(id: string, settings: RunCommandSettings): Promise<CommandResult | undefined>;
}

/**
 * The transport of a cloud's send and poll calls: sends once, then polls on the clock every pollMs until
 * the command ended, for timeoutMs at most (then AgentUnreachableError `<names.command> <id> did not
 * finish within <timeoutMs> ms`). TypeError when the options' agentPath is not an absolute plain path.
 */
export function cloudTransport(options: RunCommandOptions, calls: CloudCommandCalls): RunCommandTransport {
  const settings = runCommandSettings(options);
  const { names } = calls;
  return {
    channel: calls.channel,
    payloadMaxChars: calls.payloadMaxChars,
    run: async (command) => {
      let id: string | undefined;
      try {
        id = await calls.send(command, settings);
      } catch (error) {
        throw callFailed(names.send, error);
      }
      if (id === undefined) throw new AgentUnreachableError(`${names.send} returned no ${names.id}`);
      const deadline = settings.clock.now() + settings.timeoutMs;
      while (settings.clock.now() < deadline) {
        await settings.clock.sleep(settings.pollMs);
        let result: CommandResult | undefined;
        try {
          result = await calls.poll(id, settings);
        } catch (error) {
          throw error instanceof AgentUnreachableError ? error : callFailed(names.poll, error);
        }
        if (result !== undefined) return result;
      }
      throw new AgentUnreachableError(
        `${names.command} ${id} did not finish within ${settings.timeoutMs} ms`,
      );
    },
  };
}

/** A failed call of the cloud's API: the agent is unreachable through it. */
function callFailed(call: string, error: unknown): AgentUnreachableError {
  return new AgentUnreachableError(`${call} failed: ${(error as Error).message}`, { cause: error });
}

/**
 * The AgentChannel of a run-command transport: `nowscale-agent report` and the one-shot actions (agent
 * CLI, docs/agent.md). Nothing from a report ever reaches a command line; node names and reasons are
 * checked against the agent's own allow-lists first and single-quoted; JSON travels as a gzipped base64
 * payload decoded into the agent's stdin. The agent's exit codes map to the port's typed errors, each
 * message naming the action, the channel and the agent's own `error` when it printed one:
 * 0 done; 2 slurmctld did not answer (SlurmctldUnreachableError; not set-users, which never asks
 * slurmctld); 3 no such node (404, node actions); 64 refused (400); PAYLOAD_DAMAGED_EXIT the payload did
 * not decode (502, JSON actions); anything else, the cloud's status and the code (502).
 */
export class RunCommandAgentChannel implements AgentChannel {
  constructor(private readonly transport: RunCommandTransport) {}

  async report() {
    const { status, stdout } = await this.transport.run({ action: "report" });
    // Exit status 2 still prints a (failed) report on stdout; reportFromText turns it into the typed error.
    if (stdout.trim() === "") throw new AgentUnreachableError(`${this.what("report")}: ${status}, no output`);
    return reportFromText(stdout, `agent report (${this.transport.channel})`);
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
    const { status, stdout, code } = await this.transport.run({ action: "slurm-setup" });
    const what = this.what("slurm-setup");
    const detail = agentError(stdout);
    if (code === 2) throw new SlurmctldUnreachableError(`${what}: slurmctld did not answer${detail}`);
    // An agent without slurm-setup prints its usage (no JSON error) and exits 64.
    if (code !== 0)
      throw new AgentUnreachableError(
        `${what}: ${status}, exit ${code}${detail || " (an agent older than the attach path: install this version)"}`,
      );
    return setupFromText(stdout, `agent slurm-setup (${this.transport.channel})`);
  }

  async drain(node: string, reason: string): Promise<void> {
    const full = reason.startsWith(DRAIN_REASON_PREFIX) ? reason : `${DRAIN_REASON_PREFIX}: ${reason}`;
    if (!DRAIN_REASON.test(full))
      throw new AgentActionError("drain reason must be 1-200 printable ASCII characters");
    await this.nodeAction("drain", node, full);
  }

  async resume(node: string): Promise<void> {
    await this.nodeAction("resume", node);
  }

  async deleteNode(node: string): Promise<void> {
    await this.nodeAction("delete-node", node);
  }

  /** `nowscale-agent set-job-notes --notes -`, the JSON on its stdin. */
  async setJobNotes(notes: readonly JobNote[]): Promise<void> {
    await this.payloadAction("set-job-notes", { notes: checkedNotes(notes) });
  }

  /** `nowscale-agent sync-placeholders --placeholders -`; its stdout is the `{created, removed}` answer. */
  async syncPlaceholders(
    specs: readonly PlaceholderSpec[],
  ): Promise<{ created: string[]; removed: string[] }> {
    const stdout = await this.payloadAction("sync-placeholders", {
      placeholders: checkedPlaceholders(specs),
    });
    return placeholderAnswer(stdout, this.what("sync-placeholders"));
  }

  /** `nowscale-agent set-partitions --partitions -`; its stdout is the answer. */
  async setPartitions(specs: readonly PartitionSpec[]): Promise<PartitionsAnswer> {
    const stdout = await this.payloadAction("set-partitions", { partitions: checkedPartitions(specs) });
    return partitionsAnswer(stdout, this.what("set-partitions"));
  }

  /**
   * `nowscale-agent set-node-storage --storage -`; its stdout is the answer. The same on every cloud's
   * channel: the agent's command line does not depend on the transport.
   */
  async setNodeStorage(storage: readonly NodeStorageSpec[]): Promise<{ changed: boolean }> {
    const stdout = await this.payloadAction("set-node-storage", { storage: checkedStorage(storage) });
    return storageAnswer(stdout, this.what("set-node-storage"));
  }

  /**
   * `nowscale-agent set-users --users -`; its stdout is the answer. Only secret ids travel (the clouds
   * keep a command's content in their history): never a password. The agent on the master reads each id
   * from its own cloud's secret store with the master's instance role (users-apply.ts readUserSecret:
   * Secrets Manager on AWS, SSM on Tencent, KMS Secrets Manager on Alibaba).
   */
  async setUsers(request: UsersRequest): Promise<UsersAnswer> {
    const stdout = await this.payloadAction("set-users", checkedUsers(request));
    return usersAnswer(stdout, this.what("set-users"));
  }

  /** `agent <action> over <channel>`, how every message starts. */
  private what(action: string): string {
    return `agent ${action} over ${this.transport.channel}`;
  }

  private async nodeAction(
    action: "drain" | "resume" | "delete-node",
    node: string,
    reason = "",
  ): Promise<void> {
    if (!isSimpleName(node))
      throw new AgentActionError(`invalid node name ${JSON.stringify(node.slice(0, 80))}`);
    const result = await this.transport.run({ action, node, reason });
    if (result.code !== 0) throw exitError(`agent ${action} ${node} over ${this.transport.channel}`, result);
  }

  /**
   * A JSON-carrying action: the JSON gzipped and base64-encoded, decoded on the master into the agent's
   * stdin, so its size is bounded by the cloud's command limit, not by one argument's 128 KiB. Refused
   * (413) before anything is sent when the payload is over the transport's limit. Its stdout on exit 0.
   */
  private async payloadAction(action: PayloadAction, body: unknown): Promise<string> {
    const { channel, payloadMaxChars } = this.transport;
    const what = this.what(action);
    const payload = gzipSync(Buffer.from(JSON.stringify(body), "utf8")).toString("base64");
    if (payload.length > payloadMaxChars)
      throw new AgentActionError(
        `${what}: ${payload.length} characters of payload, over ${channel}'s limit of ${payloadMaxChars}`,
        413,
      );
    const result = await this.transport.run({ action, payload });
    if (result.code === 0) return result.stdout;
    // set-users never asks slurmctld: its exit 2 is no more than an other failure.
    throw exitError(what, result, { node: false, payload: true, slurmctld: action !== "set-users" });
  }
}

/** The typed error of an agent command that did not exit 0 (the class's comment lists the codes). */
function exitError(
  what: string,
  { status, stdout, code }: CommandResult,
  kind = { node: true, payload: false, slurmctld: true },
): Error {
  const detail = agentError(stdout);
  if (code === 2 && kind.slurmctld)
    return new SlurmctldUnreachableError(`${what}: slurmctld did not answer${detail}`);
  if (code === 3 && kind.node) return new AgentActionError(`${what}: no such node${detail}`, 404);
  if (code === 64) return new AgentActionError(`${what}: refused${detail}`, 400);
  if (code === PAYLOAD_DAMAGED_EXIT && kind.payload)
    return new AgentActionError(`${what}: the payload did not decode on the master`, 502);
  return new AgentActionError(`${what}: ${status}, exit ${code}${detail}`, 502);
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
