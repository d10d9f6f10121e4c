import { createHash } from "node:crypto";
import { CLOUD_ID, FEATURE, JOB_ID, SIMPLE_NAME } from "../core/names.js";

/**
 * The agent's action protocol: the bodies of set-job-notes and sync-placeholders as every carrier sends
 * them (the agent's HTTP API, its command line under SSM Run Command) and the agent checks them. The
 * contract lives here, below both the agent (scheduler-plugins/slurm, agent/) and the channels
 * (lib/agent-channels), so neither imports the other; what the notes and placeholders mean to Slurm is
 * scheduler-plugins/slurm/job-notes.ts and placeholders.ts.
 */

// ── job notes ─────────────────────────────────────────────────────────────────────────────────────

/** Every note starts so: it is how a note is told from a user's comment. */
export const NOTE_PREFIX = "nowscale: ";

/** A note: the prefix and 1-190 printable ASCII characters (Slurm keeps them as given, one argument). */
export const NOTE_TEXT = /^nowscale: [\x20-\x7e]{1,190}$/;

export const NOTE_FIELDS = ["comment", "adminComment"] as const;
export type NoteField = (typeof NOTE_FIELDS)[number];

/** Bounds of one request: notes per call, job ids per note. */
export const MAX_NOTES = 50;
export const MAX_NOTE_JOB_IDS = 20;

/** One change: write `text` into `field` of these jobs; `text` "" clears the field. */
export interface JobNote {
  jobIds: string[];
  text: string;
  field: NoteField;
}

/**
 * Validates a request's notes (`{"notes": [...]}` or the list itself). Throws TypeError naming the field
 * (`notes[2].text: ...`); nothing is written for a request with any bad note.
 */
export function parseJobNotes(input: unknown): JobNote[] {
  const list =
    typeof input === "object" && input !== null && !Array.isArray(input)
      ? (input as { notes?: unknown }).notes
      : input;
  if (!Array.isArray(list) || list.length < 1 || list.length > MAX_NOTES)
    throw new TypeError(`notes: must be a list of 1-${MAX_NOTES} notes`);
  return list.map((raw, i): JobNote => {
    const where = `notes[${i}]`;
    if (typeof raw !== "object" || raw === null || Array.isArray(raw))
      throw new TypeError(`${where}: must be an object {jobIds, text, field}`);
    const extra = Object.keys(raw).filter((k) => k !== "jobIds" && k !== "text" && k !== "field");
    if (extra.length > 0) throw new TypeError(`${where}.${extra[0]?.slice(0, 40)}: unknown field`);
    const { jobIds, text, field } = raw as Record<string, unknown>;
    if (!Array.isArray(jobIds) || jobIds.length < 1 || jobIds.length > MAX_NOTE_JOB_IDS)
      throw new TypeError(`${where}.jobIds: must be a list of 1-${MAX_NOTE_JOB_IDS} job ids`);
    jobIds.forEach((id, j) => {
      if (typeof id !== "string" || !JOB_ID.test(id))
        throw new TypeError(`${where}.jobIds[${j}]: not a Slurm job id`);
    });
    if (typeof text !== "string" || (text !== "" && !NOTE_TEXT.test(text)))
      throw new TypeError(
        `${where}.text: must be "" (clear) or "${NOTE_PREFIX}" and 1-190 printable ASCII characters`,
      );
    if (typeof field !== "string" || !(NOTE_FIELDS as readonly string[]).includes(field))
      throw new TypeError(`${where}.field: must be ${NOTE_FIELDS.join(" or ")}`);
    return { jobIds: [...(jobIds as string[])], text, field: field as NoteField };
  });
}

// ── placeholders ──────────────────────────────────────────────────────────────────────────────────

/** One FUTURE placeholder node (scheduler-plugins/slurm/placeholders.ts says why they exist). */
export interface PlaceholderSpec {
  /** `ph-` and 16 hex digits of the whole spec (placeholderName): a valid Slurm node name. */
  name: string;
  queue: string;
  instanceType: string;
  cpus: number;
  /** What the bootstrap declares for such a node: the spec ÷ the queue's scaleUpMemRatio. */
  realMemoryMiB: number;
  gpus: number;
  /** q_<queue>, type_<type>, the zone_ of every zone the queue lists the type in, the queue's own. */
  features: string[];
}

/** Every placeholder's name starts so; nothing else NowScale makes does. */
export const PLACEHOLDER_PREFIX = "ph-";
export const PLACEHOLDER_NAME = /^ph-[0-9a-f]{16}$/;

/** Placeholders one sync may hold (each is a node in slurmctld's table: MaxNodeCount counts them). */
export const MAX_PLACEHOLDERS = 1000;

/** `ph-` and 16 hex digits of the whole spec: a changed shape or feature is a new name. */
export function placeholderName(spec: Omit<PlaceholderSpec, "name">): string {
  const text = [
    spec.queue,
    spec.instanceType,
    spec.cpus,
    spec.realMemoryMiB,
    spec.gpus,
    spec.features.join(","),
  ].join("\n");
  return `${PLACEHOLDER_PREFIX}${createHash("sha256").update(text).digest("hex").slice(0, 16)}`;
}

/**
 * Validates a sync request's placeholders (`{"placeholders": [...]}` or the list). Each must be whole and
 * carry the name its spec gives (so a sync can only ever create or delete NowScale's `ph-` nodes).
 * Throws TypeError naming the field (`placeholders[1].cpus: ...`).
 */
export function parsePlaceholderSpecs(input: unknown): PlaceholderSpec[] {
  const list =
    typeof input === "object" && input !== null && !Array.isArray(input)
      ? (input as { placeholders?: unknown }).placeholders
      : input;
  if (!Array.isArray(list) || list.length > MAX_PLACEHOLDERS)
    throw new TypeError(`placeholders: must be a list of at most ${MAX_PLACEHOLDERS} placeholders`);
  const keys = ["name", "queue", "instanceType", "cpus", "realMemoryMiB", "gpus", "features"];
  return list.map((raw, i): PlaceholderSpec => {
    const where = `placeholders[${i}]`;
    if (typeof raw !== "object" || raw === null || Array.isArray(raw))
      throw new TypeError(`${where}: must be an object`);
    const extra = Object.keys(raw).find((k) => !keys.includes(k));
    if (extra !== undefined) throw new TypeError(`${where}.${extra.slice(0, 40)}: unknown field`);
    const r = raw as Record<string, unknown>;
    if (typeof r.queue !== "string" || !SIMPLE_NAME.test(r.queue))
      throw new TypeError(`${where}.queue: not a queue name`);
    if (typeof r.instanceType !== "string" || !CLOUD_ID.test(r.instanceType))
      throw new TypeError(`${where}.instanceType: not an instance type`);
    for (const [field, min, max] of [
      ["cpus", 1, 100_000],
      ["realMemoryMiB", 1, 1 << 30],
      ["gpus", 0, 1024],
    ] as const) {
      const v = r[field];
      if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max)
        throw new TypeError(`${where}.${field}: must be a whole number from ${min} to ${max}`);
    }
    if (
      !Array.isArray(r.features) ||
      r.features.length > 64 ||
      !r.features.every((f) => typeof f === "string" && FEATURE.test(f))
    )
      throw new TypeError(`${where}.features: must be at most 64 Slurm feature names`);
    const spec: PlaceholderSpec = {
      name: String(r.name),
      queue: r.queue,
      instanceType: r.instanceType,
      cpus: r.cpus as number,
      realMemoryMiB: r.realMemoryMiB as number,
      gpus: r.gpus as number,
      features: [...(r.features as string[])],
    };
    if (spec.name !== placeholderName(spec))
      throw new TypeError(`${where}.name: must be placeholderName of the spec`);
    return spec;
  });
}

// ── partitions ────────────────────────────────────────────────────────────────────────────────────

/** One NowScale partition (= queue) as the master's slurm.conf declares it (slurm-conf.ts renders it). */
export interface PartitionSpec {
  /** Queue and partition name (allow-list SIMPLE_NAME). */
  name: string;
  /** Slurm's default partition; at most one may say so. @default the first one */
  default?: boolean;
  /** DefMemPerCPU of the partition, MiB. @default none */
  defMemPerCpuMiB?: number;
}

/** Partitions one request may set (a cluster's queues: config.ts allows far fewer). */
export const MAX_PARTITIONS = 64;

/**
 * Validates a set-partitions request (`{"partitions": [...]}` or the list): the whole set of NowScale
 * partitions the master should have, 1 to MAX_PARTITIONS, names unique and on the allow-list. Throws
 * TypeError naming the field (`partitions[1].name: ...`); nothing is written for a bad request.
 */
export function parsePartitionSpecs(input: unknown): PartitionSpec[] {
  const list =
    typeof input === "object" && input !== null && !Array.isArray(input)
      ? (input as { partitions?: unknown }).partitions
      : input;
  if (!Array.isArray(list) || list.length < 1 || list.length > MAX_PARTITIONS)
    throw new TypeError(`partitions: must be a list of 1-${MAX_PARTITIONS} partitions`);
  const seen = new Set<string>();
  let defaults = 0;
  const specs = list.map((raw, i): PartitionSpec => {
    const where = `partitions[${i}]`;
    if (typeof raw !== "object" || raw === null || Array.isArray(raw))
      throw new TypeError(`${where}: must be an object {name, default?, defMemPerCpuMiB?}`);
    const extra = Object.keys(raw).find((k) => k !== "name" && k !== "default" && k !== "defMemPerCpuMiB");
    if (extra !== undefined) throw new TypeError(`${where}.${extra.slice(0, 40)}: unknown field`);
    const r = raw as Record<string, unknown>;
    if (typeof r.name !== "string" || !SIMPLE_NAME.test(r.name))
      throw new TypeError(
        `${where}.name: not a queue name (letters, digits and '-', at most 63 characters, not starting with '-')`,
      );
    if (seen.has(r.name)) throw new TypeError(`${where}.name: "${r.name}" is listed twice`);
    seen.add(r.name);
    const spec: PartitionSpec = { name: r.name };
    if (r.default !== undefined) {
      if (typeof r.default !== "boolean") throw new TypeError(`${where}.default: must be true or false`);
      spec.default = r.default;
      if (r.default) defaults++;
    }
    if (r.defMemPerCpuMiB !== undefined) {
      const v = r.defMemPerCpuMiB;
      if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1 || v > 1 << 30)
        throw new TypeError(`${where}.defMemPerCpuMiB: must be a whole number from 1 to ${1 << 30}`);
      spec.defMemPerCpuMiB = v;
    }
    return spec;
  });
  if (defaults > 1) throw new TypeError("partitions: at most one may be the default");
  return specs;
}

/** The agent's answer to set-partitions. */
export interface PartitionsAnswer {
  /** The NowScale partitions slurm.conf declares now. */
  partitions: string[];
  added: string[];
  removed: string[];
  /** False when the file already said so (nothing written, no reconfigure). */
  changed: boolean;
}

/** The agent's set-partitions answer, checked (untrusted like everything it says); undefined if malformed. */
export function parsePartitionsAnswer(input: unknown): PartitionsAnswer | undefined {
  if (typeof input !== "object" || input === null) return undefined;
  const r = input as Record<string, unknown>;
  const names = (v: unknown) =>
    Array.isArray(v) &&
    v.length <= MAX_PARTITIONS &&
    v.every((n) => typeof n === "string" && SIMPLE_NAME.test(n))
      ? [...(v as string[])]
      : undefined;
  const partitions = names(r.partitions);
  const added = names(r.added);
  const removed = names(r.removed);
  if (partitions === undefined || added === undefined || removed === undefined) return undefined;
  if (typeof r.changed !== "boolean") return undefined;
  return { partitions, added, removed, changed: r.changed };
}
