import { asParseError, SlurmParseError, SlurmUnavailableError } from "./errors.js";
import { parseKeyValueLines } from "./keyvalue.js";
import type { SlurmNode, SlurmPartition } from "./model.js";
import { isObject, readJsonEnvelope, text } from "./squeue-json.js";
import { gpusIn, jsonCount, parseCount, parseMemMiB, parseSlurmLocalTime } from "./units.js";

/**
 * Parses `sinfo --json` (22.05+; one record per node). Throws SlurmUnavailableError when the document
 * carries errors (slurmctld down), SlurmParseError when malformed; never anything else.
 */
export function parseSinfoJson(input: string): { version?: string; nodes: SlurmNode[] } {
  const source = "sinfo --json";
  try {
    const { version, records } = readJsonEnvelope(input, "nodes", source);
    const seen = new Set<string>();
    const nodes: SlurmNode[] = [];
    records.forEach((record, i) => {
      const node = nodeFromJson(record, `${source} nodes[${i}]`);
      // sinfo repeats a node once per partition it belongs to.
      if (!seen.has(node.name)) nodes.push(node);
      seen.add(node.name);
    });
    return version === undefined ? { nodes } : { version, nodes };
  } catch (error) {
    if (error instanceof SlurmUnavailableError) throw error;
    throw asParseError(source, error);
  }
}

function nodeFromJson(record: unknown, where: string): SlurmNode {
  if (!isObject(record)) throw new SlurmParseError(where, "expected an object");
  const name = text(record.name);
  if (!name) throw new SlurmParseError(where, "name is missing");
  // 22.05: "state": "idle", "state_flags": ["DRAIN"]; 23.02+: "state": ["IDLE", "DRAIN"].
  const stateParts = Array.isArray(record.state) ? record.state.map(text) : [text(record.state)];
  const flagList = Array.isArray(record.state_flags) ? record.state_flags.map(text) : [];
  const [state, ...flags] = [...stateParts, ...flagList].filter(Boolean).map((s) => s.toUpperCase());
  if (!state) throw new SlurmParseError(where, "state is missing");
  const node: SlurmNode = {
    name,
    state,
    flags,
    cpus: jsonCount(record.cpus) ?? 0,
    cpusAllocated: jsonCount(record.alloc_cpus) ?? 0,
    memoryMiB: jsonCount(record.real_memory) ?? 0,
    memoryAllocatedMiB: jsonCount(record.alloc_memory) ?? 0,
    gpus: gpusIn(text(record.gres)),
    features: splitList(text(record.active_features) || text(record.features)),
    partitions: Array.isArray(record.partitions) ? record.partitions.map(text).filter(Boolean) : [],
    reason: text(record.reason),
  };
  const lastBusy = epochMs(record.last_busy);
  if (lastBusy !== undefined) node.lastBusyAt = lastBusy;
  const started = epochMs(record.slurmd_start_time);
  if (started !== undefined) node.slurmdStartedAt = started;
  return node;
}

/** Arguments for the fallback node listing. */
export const SCONTROL_NODES_ARGS: readonly string[] = ["--oneliner", "show", "node"];

/** Parses `scontrol --oneliner show node`. Throws SlurmParseError only. */
export function parseScontrolNodes(output: string): SlurmNode[] {
  const source = "scontrol show node";
  try {
    if (/^No nodes in the system/m.test(output)) return [];
    return parseKeyValueLines(output).map((r, i) => {
      const name = r.get("NodeName");
      const stateText = r.get("State");
      if (!name || !stateText)
        throw new SlurmParseError(`${source} record ${i + 1}`, "NodeName or State is missing");
      const [state = "UNKNOWN", ...flags] = stateText
        .split("+")
        .map((s) => s.replace(/[*~#!%$@^-]$/, "").toUpperCase());
      // A trailing "*" on the state means the node is not responding.
      if (/\*$/.test(stateText.split("+")[0] ?? "")) flags.push("NOT_RESPONDING");
      const node: SlurmNode = {
        name,
        state,
        flags,
        cpus: parseCount(r.get("CPUTot")) ?? 0,
        cpusAllocated: parseCount(r.get("CPUAlloc")) ?? 0,
        memoryMiB: parseMemMiB(r.get("RealMemory")) ?? 0,
        memoryAllocatedMiB: parseMemMiB(r.get("AllocMem")) ?? 0,
        gpus: gpusIn(nullable(r.get("Gres"))),
        features: splitList(nullable(r.get("ActiveFeatures") ?? r.get("AvailableFeatures"))),
        partitions: splitList(nullable(r.get("Partitions"))),
        reason: (r.get("Reason") ?? "").replace(/ \[[^\]]*\]$/, ""),
      };
      const lastBusy = parseSlurmLocalTime(r.get("LastBusyTime"));
      if (lastBusy !== undefined) node.lastBusyAt = lastBusy;
      const started = parseSlurmLocalTime(r.get("SlurmdStartTime"));
      if (started !== undefined) node.slurmdStartedAt = started;
      return node;
    });
  } catch (error) {
    throw asParseError(source, error);
  }
}

/** Arguments for the partition listing (there is no partition JSON in 22.05). */
export const SCONTROL_PARTITIONS_ARGS: readonly string[] = ["--oneliner", "show", "partition"];

/** Parses `scontrol --oneliner show partition` for the memory defaults jobs inherit. Throws SlurmParseError only. */
export function parseScontrolPartitions(output: string): SlurmPartition[] {
  const source = "scontrol show partition";
  try {
    if (/^No partitions in the system/m.test(output)) return [];
    return parseKeyValueLines(output).map((r, i) => {
      const name = r.get("PartitionName");
      if (!name) throw new SlurmParseError(`${source} record ${i + 1}`, "PartitionName is missing");
      const partition: SlurmPartition = { name };
      const perCpu = parseMemMiB(r.get("DefMemPerCPU"));
      const perNode = parseMemMiB(r.get("DefMemPerNode"));
      if (perCpu !== undefined) partition.defMemPerCpuMiB = perCpu;
      if (perNode !== undefined) partition.defMemPerNodeMiB = perNode;
      const state = r.get("State");
      if (state) partition.state = state;
      partition.isDefault = r.get("Default") === "YES";
      return partition;
    });
  } catch (error) {
    throw asParseError(source, error);
  }
}

function epochMs(value: unknown): number | undefined {
  const seconds = jsonCount(value);
  return seconds === undefined || seconds === 0 ? undefined : seconds * 1000;
}

function nullable(value: string | undefined): string {
  return value === undefined || value === "(null)" || value === "N/A" ? "" : value;
}

function splitList(value: string): string[] {
  return value.split(",").filter((s) => s !== "");
}
