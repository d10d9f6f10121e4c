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
  const seen = new Set<string>();
  options.queues.forEach((q, i) => {
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
  return `${lines.join("\n")}\n`;
}

function checkInt(name: string, value: number, min: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new TypeError(`${name} must be a whole number from ${min} to ${max}`);
  }
}
