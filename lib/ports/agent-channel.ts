import type { JobNote, PartitionSpec, PartitionsAnswer, PlaceholderSpec } from "./agent-protocol.js";
import type { OkReport } from "./agent-report.js";
import type { UsersAnswer, UsersRequest } from "./cluster-users.js";
import type { SlurmSetup } from "./slurm-setup.js";
import type { NodeSetup } from "./state-store.js";

/** One storage mount as the agent's set-node-storage takes it. */
export type NodeStorageSpec = NodeSetup["storage"][number];

export type { JobNote, PartitionSpec, PartitionsAnswer, PlaceholderSpec };

/**
 * How the control plane reads and acts on one cluster's master (docs/agent.md). Adapters:
 * lib/agent-channels/http.ts (HMAC-signed HTTP), lib/agent-channels/run-command-channel.ts (the agent's
 * command line over a cloud's run-command service: ssm.ts, tat.ts, cloud-assistant.ts),
 * lib/agent-channels/fake.ts (tests).
 *
 * Everything the agent returns is untrusted: adapters validate it with the agent's zod schema and never
 * put it into a shell command. Failures are typed: AgentUnreachableError (no answer, bad signature, an
 * answer that is not a valid report) and SlurmctldUnreachableError (the agent answered: Slurm did not).
 */
export interface AgentChannel {
  /**
   * The cluster's current report, schema-validated. Throws SlurmctldUnreachableError when the agent says
   * slurmctld did not answer or its output could not be read (never an empty report instead), and
   * AgentUnreachableError when the agent itself cannot be reached or answers with something invalid.
   */
  report(): Promise<OkReport>;

  /** Drains the node with the reason (prefixed `nowscale` by the agent). Idempotent. */
  drain(node: string, reason: string): Promise<void>;

  /** Returns a drained node to service. Idempotent. */
  resume(node: string): Promise<void>;

  /** Removes a (dynamic) node from slurmctld; one already gone succeeds. Terminate the instance first. */
  deleteNode(node: string): Promise<void>;

  /**
   * Writes job notes: each note's text (`nowscale: ...`, or "" to clear) into the Comment or AdminComment
   * of its jobs (scheduler-plugins/slurm/job-notes.ts), all in one call. Notes are checked against the
   * agent's allow-lists before anything is sent: a bad one is an AgentActionError naming the field, and
   * nothing is written. Jobs that are gone are skipped. Slurm refusing some notes: AgentActionError
   * after the others were written; slurmctld down: SlurmctldUnreachableError. Idempotent.
   */
  setJobNotes(notes: readonly JobNote[]): Promise<void>;

  /**
   * Makes the cluster's placeholder nodes (State=FUTURE, `ph-…`) exactly `specs`
   * (scheduler-plugins/slurm/placeholders.ts): the missing are created, the other `ph-` FUTURE nodes
   * deleted; nothing else is touched. Specs are checked first (each name must be its spec's digest): a
   * bad one is an AgentActionError naming the field and nothing is done. Answers what changed. Slurm
   * refusing: AgentActionError; slurmctld down: SlurmctldUnreachableError. Idempotent.
   */
  syncPlaceholders(specs: readonly PlaceholderSpec[]): Promise<{ created: string[]; removed: string[] }>;

  /**
   * Makes the NowScale partitions of the master's slurm.conf exactly `specs` (one per queue, the whole
   * set) and has slurmctld reread it (scheduler-plugins/slurm/partition-apply.ts): the previous file is
   * kept as slurm.conf.nowscale-prev, the new one written atomically, and put back when
   * `scontrol reconfigure` fails. Specs are checked first: a bad one is an AgentActionError (400) naming
   * the field and nothing is written. Slurm refusing the file: AgentActionError (502, rolled back);
   * slurmctld down: SlurmctldUnreachableError (rolled back). Idempotent: the same set changes nothing.
   */
  setPartitions(specs: readonly PartitionSpec[]): Promise<PartitionsAnswer>;

  /**
   * Makes the storage line of the master's slurm.conf say `storage` (the whole set) and has slurmctld send
   * the file to the configless nodes, whose storage sync mounts what is new and unmounts what was removed
   * (scheduler-plugins/slurm/node-storage.ts). Entries are checked first: a bad one is an
   * AgentActionError (400) and nothing is written. Slurm refusing the file: AgentActionError (502, rolled
   * back); slurmctld down: SlurmctldUnreachableError (rolled back). Idempotent. Optional: an agent
   * channel without it leaves running nodes as they are (new nodes still get the storage at boot).
   */
  setNodeStorage?(storage: readonly NodeStorageSpec[]): Promise<{ changed: boolean }>;

  /**
   * Makes the master's NowScale users exactly `request.users` (lib/ports/cluster-users.ts,
   * scheduler-plugins/slurm/users-apply.ts): missing ones made with their uid and a group of the same
   * number, absent ones removed (their files kept unless in `purge`), enabled state set, and each spec's
   * `secret` (an id, never a value) read from the secret store by the agent itself. Checked first: a bad
   * request, or a name or uid the host's own accounts have, is an AgentActionError (400) naming the field
   * and nothing changes; a failed command (useradd, chpasswd, the secret store) is an AgentActionError
   * (502). Idempotent: the same set changes nothing. Optional: the HTTP, SSM and fake channels have it;
   * the fault suite's simulated Slurm (test/support/faults) has no accounts.
   */
  setUsers?(request: UsersRequest): Promise<UsersAnswer>;

  /** The agent's version when it answers; throws AgentUnreachableError otherwise. */
  health(): Promise<{ agentVersion: string }>;

  /**
   * How the master's Slurm is set up (lib/ports/slurm-setup.ts), schema-validated: what attaching an
   * existing master checks. Read-only on the master. SlurmctldUnreachableError when slurmctld does not
   * answer; AgentUnreachableError when the agent cannot be reached or answers something invalid (an
   * agent older than the attach path has no such call: 404, also AgentUnreachableError). Optional: only
   * the channels that can reach a master being attached implement it.
   */
  slurmSetup?(): Promise<SlurmSetup>;
}

/** The agent could not be reached, refused us, or answered with something that is not a valid answer. */
export class AgentUnreachableError extends Error {
  override readonly name = "AgentUnreachableError";
}

/** The agent answered but slurmctld did not (or its output could not be read). */
export class SlurmctldUnreachableError extends Error {
  override readonly name = "SlurmctldUnreachableError";
}

/** The agent refused an action (bad node name, unknown node, Slurm refused). */
export class AgentActionError extends Error {
  override readonly name = "AgentActionError";
  constructor(
    message: string,
    readonly status?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
