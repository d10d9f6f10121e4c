import { SIMPLE_NAME, SIMPLE_NAME_HINT } from "../../lib/core/names.js";
import { queueFeature } from "./features.js";

export interface QueueConf {
  /** Partition name = NowScale queue name (allow-list: SIMPLE_NAME). */
  name: string;
  /** @default true for the first queue only */
  default?: boolean;
  /** Memory a job gets per CPU when it asks for none, MiB. @default none: such a job gets a whole node's memory */
  defMemPerCpuMiB?: number;
}

export interface SlurmConfPartsOptions {
  queues: readonly QueueConf[];
  /** Upper bound on nodes slurmctld accepts, dynamic ones included. @default 1024 */
  maxNodeCount?: number;
}

/**
 * The cloud-specific part of a cluster's slurm.conf: the settings dynamic (`slurmd -Z`) nodes need and
 * one partition per queue built on a NodeSet that selects the queue's feature (`q_<queue>`), so a node
 * started with that feature joins its partition without any edit to slurm.conf. Everything else
 * (ClusterName, SlurmctldHost, auth, paths) belongs to the caller. Throws TypeError on a bad name or number.
 */
export function renderSlurmConfParts(options: SlurmConfPartsOptions): string {
  const maxNodeCount = options.maxNodeCount ?? 1024;
  checkInt("maxNodeCount", maxNodeCount, 1, 1_000_000);
  if (options.queues.length === 0) throw new TypeError("at least one queue is needed");
  const lines = [
    "# --- NowScale: dynamic cloud nodes (slurmd -Z) ---",
    // Dynamic nodes need room in the node table; slurmctld refuses registrations beyond it.
    `MaxNodeCount=${maxNodeCount}`,
    // Nodes come and go, so slurmd fan-out cannot follow a static tree, and addresses must not be cached.
    "TreeWidth=65533",
    "CommunicationParameters=NoAddrCache",
    // The node definition comes from `slurmd -Z --conf`, whatever the instance reports.
    "SlurmdParameters=config_overrides",
    // Compute nodes fetch slurm.conf from slurmctld (`slurmd --conf-server`): no copy to keep in step.
    "SlurmctldParameters=enable_configless",
    // A node that was DOWN returns to service as soon as its slurmd registers again.
    "ReturnToService=2",
    "SelectType=select/cons_tres",
    "SelectTypeParameters=CR_Core_Memory",
    "GresTypes=gpu",
  ];
  lines.push(...renderPartitionLines(options.queues));
  return `${lines.join("\n")}\n`;
}

/**
 * The partition section alone: for each queue a NodeSet selecting its feature (`q_<queue>`) and a
 * partition on it. The same lines the master's and the test bed's slurm.conf start with, and what the
 * agent's set-partitions writes in their place (rewritePartitionSection). Throws TypeError on a bad name,
 * a name listed twice, an empty list or a bad number.
 */
export function renderPartitionLines(queues: readonly QueueConf[]): string[] {
  if (queues.length === 0) throw new TypeError("at least one queue is needed");
  const lines: string[] = [];
  const seen = new Set<string>();
  queues.forEach((q, i) => {
    if (!SIMPLE_NAME.test(q.name))
      throw new TypeError(`invalid queue name "${q.name.slice(0, 80)}": ${SIMPLE_NAME_HINT}`);
    if (seen.has(q.name)) throw new TypeError(`queue "${q.name}" is listed twice`);
    seen.add(q.name);
    const isDefault = q.default ?? i === 0;
    const nodeSet = `ns_${q.name}`;
    let partition = `PartitionName=${q.name} Nodes=${nodeSet} Default=${isDefault ? "YES" : "NO"} State=UP MaxTime=INFINITE`;
    if (q.defMemPerCpuMiB !== undefined) {
      checkInt(`queues[${i}].defMemPerCpuMiB`, q.defMemPerCpuMiB, 1, 1 << 30);
      partition += ` DefMemPerCPU=${q.defMemPerCpuMiB}`;
    }
    lines.push(`NodeSet=${nodeSet} Feature=${queueFeature(q.name)}`, partition);
  });
  return lines;
}

/** A line renderPartitionLines writes: a queue's NodeSet, or a partition built on one. */
const NODESET_LINE = /^NodeSet=ns_([A-Za-z0-9][A-Za-z0-9-]{0,62}) Feature=q_\1\s*$/;
const PARTITION_LINE = /^PartitionName=([A-Za-z0-9][A-Za-z0-9-]{0,62}) Nodes=ns_\1(\s|$)/;
const ANY_PARTITION = /^\s*PartitionName\s*=\s*(\S+)/i;

/** The NowScale partitions a slurm.conf declares (the lines renderPartitionLines wrote), in order. */
export function managedPartitions(conf: string): string[] {
  return conf
    .split("\n")
    .map((line) => PARTITION_LINE.exec(line)?.[1])
    .filter((name): name is string => name !== undefined);
}

/**
 * slurm.conf with its NowScale partition section replaced by `queues`' (renderPartitionLines), written
 * where the first NowScale line was; every other line (people's own partitions and nodes included) is
 * kept as it is. Pure: the agent writes the result (partition-apply.ts). Throws TypeError, and so
 * nothing is written, when a name is not on the allow-list, when the file has no NowScale partition
 * (not a file NowScale rendered) or when a queue would clash with a partition NowScale did not write.
 */
export function rewritePartitionSection(conf: string, queues: readonly QueueConf[]): string {
  const fresh = renderPartitionLines(queues);
  const lines = conf.split("\n");
  const managed = (line: string) => NODESET_LINE.test(line) || PARTITION_LINE.test(line);
  const first = lines.findIndex(managed);
  if (first < 0)
    throw new TypeError("slurm.conf has no NowScale partition (NodeSet=ns_<queue> lines): not rewritten");
  const wanted = new Set(queues.map((q) => q.name));
  for (const line of lines) {
    const other = ANY_PARTITION.exec(line)?.[1];
    if (other !== undefined && !managed(line) && wanted.has(other))
      throw new TypeError(`partition "${other}" is declared in slurm.conf by someone else: not rewritten`);
  }
  const out: string[] = [];
  lines.forEach((line, i) => {
    if (i === first) out.push(...fresh);
    if (!managed(line)) out.push(line);
  });
  return out.join("\n");
}

function checkInt(name: string, value: number, min: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new TypeError(`${name} must be a whole number from ${min} to ${max}`);
  }
}
