import { placeholderChanges } from "../../scheduler-plugins/slurm/placeholders.js";
import { DRAIN_REASON_PREFIX } from "../core/shrink.js";
import {
  AgentActionError,
  type AgentChannel,
  AgentUnreachableError,
  type NodeStorageSpec,
  SlurmctldUnreachableError,
} from "../ports/agent-channel.js";
import type { JobNote, PartitionSpec, PartitionsAnswer, PlaceholderSpec } from "../ports/agent-protocol.js";
import type { JobGroup, OkReport, ReportArrival, ReportNode } from "../ports/agent-report.js";
import type { Clock } from "../ports/clock.js";
import type { HostUser, UsersAnswer, UsersRequest } from "../ports/cluster-users.js";
import type { SlurmSetup } from "../ports/slurm-setup.js";
import {
  checkedNotes,
  checkedPartitions,
  checkedPlaceholders,
  checkedStorage,
  checkedUsers,
} from "./http.js";

export type FakeAgentCall =
  | { action: "report" }
  | { action: "drain"; node: string; reason: string }
  | { action: "resume"; node: string }
  | { action: "deleteNode"; node: string }
  | { action: "setJobNotes"; notes: JobNote[] }
  | { action: "syncPlaceholders"; names: string[] }
  | { action: "setPartitions"; names: string[] }
  | { action: "setNodeStorage"; localPaths: string[] }
  | { action: "setUsers"; request: UsersRequest }
  | { action: "health" }
  | { action: "slurmSetup" };

/**
 * An in-memory Slurm master for control-plane tests: jobs (as the agent's groups) and nodes are set by
 * the test; drain/resume/delete change them as the real agent would; `outage` makes it unreachable.
 */
export class FakeAgent implements AgentChannel {
  readonly calls: FakeAgentCall[] = [];
  jobs: JobGroup[] = [];
  nodes: ReportNode[] = [];
  outage: "none" | "agent" | "slurmctld" = "none";
  /**
   * The placeholder nodes Slurm holds, as the report lists them; undefined: the report leaves them out
   * (an agent that cannot read them), and the scale cycle then syncs nothing.
   */
  placeholders: string[] | undefined;
  /** The NowScale partitions the master's slurm.conf declares (setPartitions makes them so). */
  partitions: string[] = ["compute"];
  /** Makes the next setPartitions fail as a refused reconfigure does (rolled back: nothing changes). */
  refuseReconfigure = false;
  /** The storage line of the master's slurm.conf (setNodeStorage makes it so; the nodes follow it). */
  storage: NodeStorageSpec[] = [];

  /**
   * How its Slurm is set up, for attach (lib/ports/slurm-setup.ts): by default a Slurm 22.05 master ready
   * for attaching partition `compute` (configless, MaxNodeCount, NodeSet nowscale_compute), which a test
   * changes field by field.
   */
  setup: SlurmSetup = readySetup(["compute"]);

  /** NowScale's users on the master (setUsers makes them so), by name. */
  users = new Map<string, HostUser>();
  /** Names the master's own accounts have (setUsers refuses them, as users-apply.ts does). */
  hostAccounts = new Set<string>(["daemon", "slurm"]);
  /** Users whose files were removed (purged), in order. */
  purged: string[] = [];

  /** Recent arrivals as the agent counts them; undefined: the report leaves them out. */
  arrivals: ReportArrival[] | undefined;

  constructor(private readonly clock: Clock) {}

  /** A pending group of `count` jobs of `nodes` whole nodes with `cpus` CPUs each. */
  addPending(
    queue: string,
    id: string,
    opts: { nodes?: number; cpus?: number; count?: number; at?: number },
  ) {
    this.jobs.push({
      queue,
      state: "PENDING",
      nodes: opts.nodes ?? 1,
      cpusPerNode: opts.cpus ?? 1,
      memPerNodeMiB: 0,
      gpusPerNode: 0,
      count: opts.count ?? 1,
      oldestSubmittedAt: new Date(opts.at ?? this.clock.now()).toISOString(),
      jobIds: [id],
    });
  }

  /** The instance has booted and slurmd registered: the node shows up IDLE. */
  join(name: string, queue: string, instanceType: string, zone: string): void {
    if (this.nodes.some((n) => n.name === name)) return;
    const now = new Date(this.clock.now()).toISOString();
    this.nodes.push({
      name,
      queue,
      instanceType,
      zone,
      state: "IDLE",
      idleSince: now,
      cpus: 4,
      cpusAllocated: 0,
      memoryMiB: 8000,
      memoryAllocatedMiB: 0,
      gpus: 0,
      features: [`q_${queue}`, `type_${instanceType}`, `zone_${zone}`],
      slurmState: "IDLE+DYNAMIC_NORM",
    });
  }

  async report(): Promise<OkReport> {
    this.calls.push({ action: "report" });
    this.check();
    return {
      schemaVersion: 1,
      agentVersion: "0.1.0",
      scheduler: "slurm",
      generatedAt: new Date(this.clock.now()).toISOString(),
      status: "ok",
      slurmVersion: "22.05.8",
      source: "json",
      jobs: structuredClone(this.jobs),
      nodes: structuredClone(this.nodes),
      unmanagedNodes: [],
      ignored: { jobs: 0, nodes: 0, examples: [] },
      ...(this.placeholders === undefined ? {} : { placeholders: [...this.placeholders] }),
      ...(this.arrivals === undefined ? {} : { arrivals: structuredClone(this.arrivals) }),
      // The partitions set-partitions left; the first is Slurm's default (as partition-apply writes it).
      partitions: this.partitions.map((name, i) => ({ name, state: "UP", default: i === 0 })),
    };
  }

  async drain(node: string, reason: string): Promise<void> {
    this.calls.push({ action: "drain", node, reason });
    this.check();
    const n = this.nodes.find((x) => x.name === node);
    if (n === undefined) return;
    n.reason = reason.startsWith(DRAIN_REASON_PREFIX) ? reason : `${DRAIN_REASON_PREFIX}: ${reason}`;
    n.state = n.cpusAllocated > 0 ? "DRAINING" : "DRAINED";
  }

  async resume(node: string): Promise<void> {
    this.calls.push({ action: "resume", node });
    this.check();
    const n = this.nodes.find((x) => x.name === node);
    if (n === undefined) return;
    // As Slurm shows a resumed node: still running the jobs it had.
    n.state = n.cpusAllocated === 0 ? "IDLE" : n.cpusAllocated < n.cpus ? "MIXED" : "ALLOCATED";
    delete n.reason;
  }

  async deleteNode(node: string): Promise<void> {
    this.calls.push({ action: "deleteNode", node });
    this.check();
    this.nodes = this.nodes.filter((n) => n.name !== node);
  }

  /** Checks the notes as the agent does, then puts them on the groups holding those jobs. */
  async setJobNotes(notes: readonly JobNote[]): Promise<void> {
    const checked = checkedNotes(notes);
    this.calls.push({ action: "setJobNotes", notes: checked });
    this.check();
    for (const note of checked) {
      for (const group of this.jobs) {
        if (!group.jobIds.some((id) => note.jobIds.includes(id))) continue;
        if (note.text === "") {
          if (group.noteIn === note.field) {
            delete group.note;
            delete group.noteIn;
          }
        } else {
          group.note = note.text;
          group.noteIn = note.field;
        }
      }
    }
  }

  /** Checks the specs as the agent does, then makes `placeholders` exactly their names. */
  async syncPlaceholders(
    specs: readonly PlaceholderSpec[],
  ): Promise<{ created: string[]; removed: string[] }> {
    const checked = checkedPlaceholders(specs);
    this.calls.push({ action: "syncPlaceholders", names: checked.map((s) => s.name) });
    this.check();
    const { create, remove } = placeholderChanges(checked, this.placeholders ?? []);
    this.placeholders = checked.map((s) => s.name);
    return { created: create.map((s) => s.name), removed: remove };
  }

  /** Checks the entries as the agent does; a refused reconfigure leaves `storage` as it was. */
  async setNodeStorage(storage: readonly NodeStorageSpec[]): Promise<{ changed: boolean }> {
    const checked = checkedStorage(storage);
    this.calls.push({ action: "setNodeStorage", localPaths: checked.map((s) => s.localPath) });
    this.check();
    if (this.refuseReconfigure)
      throw new AgentActionError(
        "agent POST /v1/node-storage: HTTP 502: scontrol reconfigure failed, slurm.conf rolled back to the previous file",
        502,
      );
    const changed = JSON.stringify(checked) !== JSON.stringify(this.storage);
    this.storage = checked;
    return { changed };
  }

  /** Checks the specs as the agent does; a refused reconfigure leaves `partitions` as they were. */
  async setPartitions(specs: readonly PartitionSpec[]): Promise<PartitionsAnswer> {
    const names = checkedPartitions(specs).map((s) => s.name);
    this.calls.push({ action: "setPartitions", names });
    this.check();
    if (this.refuseReconfigure)
      throw new AgentActionError(
        "agent POST /v1/partitions: HTTP 502: scontrol reconfigure failed, slurm.conf rolled back to the previous file",
        502,
      );
    const before = this.partitions;
    this.partitions = names;
    return {
      partitions: names,
      added: names.filter((n) => !before.includes(n)),
      removed: before.filter((n) => !names.includes(n)),
      changed: names.join() !== before.join(),
    };
  }

  /** Checks the request as the agent does; records it (secret ids only, as the agent receives them). */
  async setUsers(request: UsersRequest): Promise<UsersAnswer> {
    const checked = checkedUsers(request);
    this.calls.push({ action: "setUsers", request: structuredClone(checked) });
    if (this.outage === "agent") throw new AgentUnreachableError("fake agent is down");
    checked.users.forEach((u, i) => {
      if (this.hostAccounts.has(u.name))
        throw new AgentActionError(
          `agent POST /v1/users: HTTP 400: users[${i}].name: "${u.name}" is an account of the host, not a NowScale user`,
          400,
        );
    });
    const wanted = new Set(checked.users.map((u) => u.name));
    const removed = [...this.users.keys()].filter((n) => !wanted.has(n));
    for (const name of removed) {
      this.users.delete(name);
      if (checked.purge.includes(name)) this.purged.push(name);
    }
    const added: string[] = [];
    const updated: string[] = [];
    for (const u of checked.users) {
      const had = this.users.get(u.name);
      if (had === undefined) added.push(u.name);
      else if (had.enabled !== u.enabled || u.secret !== undefined) updated.push(u.name);
      this.users.set(u.name, { name: u.name, uid: u.uid, enabled: u.enabled });
    }
    return { users: [...this.users.values()].sort((a, b) => a.uid - b.uid), added, removed, updated };
  }

  async health(): Promise<{ agentVersion: string }> {
    this.calls.push({ action: "health" });
    if (this.outage === "agent") throw new AgentUnreachableError("fake agent is down");
    return { agentVersion: "0.1.0" };
  }

  async slurmSetup(): Promise<SlurmSetup> {
    this.calls.push({ action: "slurmSetup" });
    this.check();
    return structuredClone(this.setup);
  }

  private check(): void {
    if (this.outage === "agent") throw new AgentUnreachableError("fake agent is down");
    if (this.outage === "slurmctld") throw new SlurmctldUnreachableError("fake slurmctld is down");
  }
}

/** A Slurm 22.05 master ready to attach these partitions (each with a NodeSet selecting q_<partition>). */
export function readySetup(partitions: readonly string[]): SlurmSetup {
  return {
    agentVersion: "0.1.0",
    slurmVersion: "22.05.8",
    clusterName: "theirs",
    controllers: [{ host: "head", address: "10.0.0.5" }],
    slurmctldPort: 6817,
    slurmdPort: 6818,
    slurmctldParameters: ["enable_configless"],
    maxNodeCount: 1024,
    treeWidth: 65533,
    partitions: partitions.map((name) => ({ name, nodeSets: [`nowscale_${name}`], state: "UP" })),
    conf: {
      path: "/etc/slurm/slurm.conf",
      nodeSets: partitions.map((name) => ({ name: `nowscale_${name}`, feature: `q_${name}` })),
      partitions: partitions.map((name) => ({
        name,
        nodes: `own[1-2],nowscale_${name}`,
        line: `PartitionName=${name} Nodes=own[1-2],nowscale_${name} State=UP`,
      })),
    },
    featureNodes: { count: 0, examples: [] },
  };
}
