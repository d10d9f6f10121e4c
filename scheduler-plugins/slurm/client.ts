import { FEATURE, SIMPLE_NAME } from "../../lib/core/names.js";
import { DRAIN_REASON_PREFIX } from "../../lib/core/shrink.js";
import {
  type JobNote,
  type PartitionSpec,
  PLACEHOLDER_NAME,
  type PlaceholderSpec,
  parseJobNotes,
  parsePlaceholderSpecs,
} from "../../lib/ports/agent-protocol.js";
import {
  SlurmCommandError,
  SlurmNodeNotFoundError,
  SlurmParseError,
  SlurmUnavailableError,
} from "./errors.js";
import { type CommandResult, type CommandRunner, isControllerUnreachable, runCommand } from "./exec.js";
import { jobNoteArgs } from "./job-notes.js";
import type { SlurmJob, SlurmNode, SlurmPartition } from "./model.js";
import {
  parseScontrolNodes,
  parseScontrolPartitions,
  parseSinfoJson,
  SCONTROL_NODES_ARGS,
  SCONTROL_PARTITIONS_ARGS,
} from "./nodes.js";
import { applyPartitions, type PartitionApplyResult } from "./partition-apply.js";
import { PENDING_IDS_ARGS, parsePendingIds } from "./pending.js";
import { placeholderChanges, placeholderCreateArgs } from "./placeholders.js";
import { parseSqueueFormat, SQUEUE_FORMAT_ARGS } from "./squeue-format.js";
import { parseSqueueJson } from "./squeue-json.js";

export interface SlurmClientOptions {
  /** @default runCommand (execFile, no shell) */
  runner?: CommandRunner;
  /** Environment of the Slurm commands; SLURM_CONF in it selects the cluster. @default process.env */
  env?: NodeJS.ProcessEnv;
  /** @default 60000 */
  timeoutMs?: number;
  /** Directory of squeue/sinfo/scontrol; @default found on PATH */
  binDir?: string;
  /** Force the reader: "json" (22.05+) or "format" (older Slurm). @default chosen from the version */
  source?: "json" | "format";
}

/**
 * What scontrol prints after a job update that was applied, or that found the job gone: the job's
 * current pending reason (partition or node configuration not available now), an unknown or finished job.
 */
const NOTE_APPLIED_OR_GONE =
  /configuration (is )?not available|Invalid job id specified|already completing or completed|Job has already finished/i;

/** Drain reasons: printable text without control characters; the prefix marks NowScale's own drains. */
export const DRAIN_REASON = /^[\x20-\x7e]{1,200}$/;

/**
 * Reads and changes one Slurm cluster through its command-line clients, run with argument arrays.
 * Reads throw SlurmUnavailableError when slurmctld does not answer, SlurmParseError when its output
 * is malformed and SlurmCommandError for other failures. Actions are idempotent.
 */
export class SlurmClient {
  private readonly runner: CommandRunner;
  private versionCache: string | undefined;

  constructor(private readonly options: SlurmClientOptions = {}) {
    this.runner = options.runner ?? runCommand;
  }

  /** Slurm's version from `sinfo --version` ("22.05.8"); does not need slurmctld. */
  async version(): Promise<string> {
    if (this.versionCache !== undefined) return this.versionCache;
    const result = await this.run("sinfo", ["--version"]);
    const m = /(\d+)\.(\d+)\.(\d+)/.exec(result.stdout);
    if (!m)
      throw new SlurmParseError("sinfo --version", `no version in "${result.stdout.trim().slice(0, 80)}"`);
    this.versionCache = m[0];
    return m[0];
  }

  /** "json" on Slurm 22.05 and later, "format" before. */
  async source(): Promise<"json" | "format"> {
    if (this.options.source) return this.options.source;
    const [major = 0, minor = 0] = (await this.version()).split(".").map(Number);
    return major > 22 || (major === 22 && minor >= 5) ? "json" : "format";
  }

  /** Pending and running jobs of every partition. */
  async jobs(): Promise<{ source: "json" | "format"; jobs: SlurmJob[] }> {
    const source = await this.source();
    if (source === "json") {
      const result = await this.run("squeue", ["--all", "--json"]);
      return { source, jobs: parseSqueueJson(result.stdout).jobs };
    }
    const result = await this.run("squeue", SQUEUE_FORMAT_ARGS);
    return { source, jobs: parseSqueueFormat(result.stdout) };
  }

  /** The ids of the pending jobs (pending.ts): one short squeue line each, for the agent's watcher. */
  async pendingJobIds(): Promise<string[]> {
    return parsePendingIds((await this.run("squeue", PENDING_IDS_ARGS)).stdout);
  }

  /** Every node slurmctld knows, once each. */
  async nodes(): Promise<SlurmNode[]> {
    if ((await this.source()) === "json") {
      const result = await this.run("sinfo", ["--json"]);
      return parseSinfoJson(result.stdout).nodes;
    }
    return parseScontrolNodes((await this.run("scontrol", SCONTROL_NODES_ARGS)).stdout);
  }

  /** Partitions with the memory defaults their jobs inherit. */
  async partitions(): Promise<SlurmPartition[]> {
    return parseScontrolPartitions((await this.run("scontrol", SCONTROL_PARTITIONS_ARGS)).stdout);
  }

  /**
   * The text of a read-only scontrol query, for readers that parse it themselves (setup.ts):
   * `scontrol show config` or `scontrol --oneliner show partition`. SlurmUnavailableError when
   * slurmctld does not answer.
   */
  async scontrolText(what: "config" | "partitions"): Promise<string> {
    const args = what === "config" ? ["show", "config"] : [...SCONTROL_PARTITIONS_ARGS];
    return (await this.run("scontrol", args)).stdout;
  }

  /**
   * Drains a node so it takes no new job; running jobs finish. `reason` is prefixed with "nowscale: "
   * unless it starts with "nowscale" already, so the core tells NowScale's drains from people's.
   * Draining a drained node again succeeds. Throws SlurmNodeNotFoundError for an unknown node.
   */
  async drain(node: string, reason: string): Promise<void> {
    checkNodeName(node);
    const full = reason.startsWith(DRAIN_REASON_PREFIX) ? reason : `${DRAIN_REASON_PREFIX}: ${reason}`;
    if (!DRAIN_REASON.test(full))
      throw new TypeError("drain reason must be 1-200 printable ASCII characters");
    await this.update(node, ["State=DRAIN", `Reason=${full}`]);
  }

  /** Returns a drained node to service. Resuming a node that is not drained succeeds. */
  async resume(node: string): Promise<void> {
    checkNodeName(node);
    try {
      await this.update(node, ["State=RESUME"]);
    } catch (error) {
      // Slurm refuses RESUME for a node that is not drained or down: already the wanted state.
      if (error instanceof SlurmCommandError && /Invalid node state specified/i.test(error.stderr)) return;
      throw error;
    }
  }

  /**
   * Removes a dynamic node from slurmctld (its slurmd should be stopped first). Deleting a node that is
   * already gone succeeds. Slurm refuses while the node runs a job: SlurmCommandError.
   */
  async deleteNode(node: string): Promise<void> {
    checkNodeName(node);
    const result = await this.runUnchecked("scontrol", ["delete", `NodeName=${node}`]);
    if (result.code === 0 || /Invalid node name specified/i.test(result.stderr)) return;
    throw this.failure("scontrol delete", result);
  }

  /** `scontrol reconfigure`: slurmctld rereads slurm.conf (and tells configless nodes). */
  async reconfigure(): Promise<void> {
    await this.run("scontrol", ["reconfigure"]);
  }

  /**
   * Makes the NowScale partitions of slurm.conf exactly `specs` and has slurmctld reread it, rolling the
   * file back when it refuses (partition-apply.ts). The file is SLURM_CONF of the client's environment,
   * else /etc/slurm/slurm.conf. TypeError (nothing written) for a bad spec or a file NowScale did not
   * render; PartitionRollbackError after a rollback.
   */
  async setPartitions(specs: readonly PartitionSpec[]): Promise<PartitionApplyResult> {
    const env = this.options.env ?? process.env;
    return applyPartitions(specs, {
      confPath: env.SLURM_CONF ?? "/etc/slurm/slurm.conf",
      reconfigure: () => this.reconfigure(),
    });
  }

  /**
   * Creates a placeholder node (State=FUTURE) so Slurm accepts jobs for a shape no node has yet (see
   * placeholders.ts). Creating one that exists succeeds. Throws TypeError on a bad name or feature.
   */
  async createPlaceholder(spec: PlaceholderSpec): Promise<void> {
    checkNodeName(spec.name);
    for (const f of spec.features)
      if (!FEATURE.test(f)) throw new TypeError(`invalid feature "${f.slice(0, 80)}"`);
    for (const [field, value] of [
      ["cpus", spec.cpus],
      ["realMemoryMiB", spec.realMemoryMiB],
      ["gpus", spec.gpus],
    ] as const) {
      if (!Number.isSafeInteger(value) || value < (field === "gpus" ? 0 : 1))
        throw new TypeError(`placeholder ${field} must be a whole number`);
    }
    const result = await this.runUnchecked("scontrol", placeholderCreateArgs(spec));
    if (result.code === 0 || /already exists|Duplicate/i.test(result.stderr)) return;
    throw this.failure("scontrol create", result);
  }

  /**
   * The placeholder nodes (`ph-…`, State=FUTURE) slurmctld holds: `scontrol --future --oneliner show node`,
   * since sinfo never lists FUTURE nodes.
   */
  async placeholderNames(): Promise<string[]> {
    return (await this.placeholderNodes()).map((n) => n.name);
  }

  /** The placeholder nodes themselves (their CPUs and features tell the queues' shapes: arrivals.ts). */
  async placeholderNodes(): Promise<SlurmNode[]> {
    const result = await this.run("scontrol", ["--future", "--oneliner", "show", "node"]);
    return parseScontrolNodes(result.stdout).filter(
      (n) => n.state === "FUTURE" && PLACEHOLDER_NAME.test(n.name),
    );
  }

  /**
   * Makes slurmctld's placeholders exactly `specs` (placeholders.ts): creates the missing ones, deletes
   * the `ph-` FUTURE nodes not in it. Specs are checked first (TypeError names the field; nothing is
   * done). Idempotent.
   */
  async syncPlaceholders(
    specs: readonly PlaceholderSpec[],
  ): Promise<{ created: string[]; removed: string[] }> {
    const wanted = parsePlaceholderSpecs([...specs]);
    const { create, remove } = placeholderChanges(wanted, await this.placeholderNames());
    for (const spec of create) await this.createPlaceholder(spec);
    for (const name of remove) await this.deleteNode(name);
    return { created: create.map((s) => s.name), removed: remove };
  }

  /**
   * Writes one job note (job-notes.ts) with `scontrol update JobId=<ids> Comment=<text>` (or
   * AdminComment). Checked against the allow-lists first (TypeError names the field). Jobs that are
   * gone are skipped, not errors. Slurm 22.05 applies the update to a pending job it cannot run now and
   * still exits 1 saying "Requested partition configuration not available now" (measured): that is done.
   */
  async setJobNote(note: JobNote): Promise<void> {
    const [checked] = parseJobNotes([note]);
    const result = await this.runUnchecked("scontrol", jobNoteArgs(checked as JobNote));
    if (result.code === 0) return;
    const lines = result.stderr
      .split("\n")
      .map((l) => l.trim())
      .filter(Boolean);
    const harmless = (line: string) => NOTE_APPLIED_OR_GONE.test(line);
    if (!isControllerUnreachable(result) && lines.length > 0 && lines.every(harmless)) return;
    throw this.failure("scontrol update JobId", result);
  }

  private async update(node: string, settings: string[]): Promise<void> {
    const result = await this.runUnchecked("scontrol", ["update", `NodeName=${node}`, ...settings]);
    if (result.code === 0) return;
    if (/Invalid node name specified/i.test(result.stderr)) throw new SlurmNodeNotFoundError(node);
    throw this.failure("scontrol update", result);
  }

  private async run(command: string, args: readonly string[]): Promise<CommandResult> {
    const result = await this.runUnchecked(command, args);
    if (result.code !== 0) throw this.failure(`${command} ${args.join(" ")}`.slice(0, 80), result);
    return result;
  }

  private runUnchecked(command: string, args: readonly string[]): Promise<CommandResult> {
    const file = this.options.binDir ? `${this.options.binDir}/${command}` : command;
    const options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {};
    if (this.options.env) options.env = this.options.env;
    if (this.options.timeoutMs) options.timeoutMs = this.options.timeoutMs;
    return this.runner(file, args, options);
  }

  private failure(command: string, result: CommandResult): Error {
    if (isControllerUnreachable(result) || (result.code === null && result.error?.startsWith("killed"))) {
      return new SlurmUnavailableError(`slurmctld did not answer ${command}: ${firstLine(result)}`);
    }
    return new SlurmCommandError(command, result.code, result.stderr || result.error || "");
  }
}

function checkNodeName(node: string): void {
  if (!SIMPLE_NAME.test(node)) throw new TypeError(`invalid node name "${node.slice(0, 80)}"`);
}

function firstLine(result: CommandResult): string {
  return (result.stderr || result.error || "").trim().split("\n")[0]?.slice(0, 300) ?? "";
}
