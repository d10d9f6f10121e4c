import { ValidationError, type ValidationIssue } from "../core/validation.js";

/**
 * The Standard Workload Format of the Parallel Workloads Archive
 * (https://www.cs.huji.ac.il/labs/parallel/workload/swf.html): one job per line, 18 whitespace-separated
 * numeric fields, -1 meaning "unknown"; header lines start with ';'.
 */

/** The 18 SWF fields in file order. Units: seconds, KB (memory), counts. */
export const SWF_FIELDS = [
  "jobNumber",
  "submitTime",
  "waitTime",
  "runTime",
  "allocatedProcessors",
  "averageCpuTimeUsed",
  "usedMemoryKB",
  "requestedProcessors",
  "requestedTime",
  "requestedMemoryKB",
  "status",
  "userId",
  "groupId",
  "executableNumber",
  "queueNumber",
  "partitionNumber",
  "precedingJobNumber",
  "thinkTimeFromPrecedingJob",
] as const;

export type SwfField = (typeof SWF_FIELDS)[number];

/** One job line; a field is undefined when the trace says -1 (unknown). */
export type SwfRecord = { readonly [F in SwfField]: number | undefined } & {
  /** 1-based line number in the file, for messages. */
  readonly line: number;
};

export interface SwfTrace {
  /** Header comment lines in file order, without the leading ';' (comments between jobs too). */
  header: string[];
  /** `Key: value` header lines (Version, MaxNodes, UnixStartTime, ...), keys as written. */
  headerFields: Record<string, string>;
  records: SwfRecord[];
}

/** Stop collecting problems after this many: the first ones are what the user needs. */
const MAX_ISSUES = 10;

/**
 * Parses SWF text. Every job line must have exactly 18 numbers, each -1 (unknown) or ≥ 0; blank
 * lines are ignored. Throws ValidationError naming `line N` for every malformed line (at most 10).
 */
export function parseSwf(text: string, source = "trace"): SwfTrace {
  const header: string[] = [];
  const headerFields: Record<string, string> = {};
  const records: SwfRecord[] = [];
  const issues: ValidationIssue[] = [];
  let malformed = 0;
  const lines = text.split("\n");

  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i] ?? "";
    const trimmed = raw.trim();
    if (trimmed === "") continue;
    const lineNo = i + 1;
    if (trimmed.startsWith(";")) {
      const comment = trimmed.slice(1).trim();
      header.push(comment);
      const kv = /^([A-Za-z][A-Za-z0-9 _-]*):\s*(.*)$/.exec(comment);
      if (kv?.[1] !== undefined && kv[2] !== undefined && !(kv[1] in headerFields))
        headerFields[kv[1]] = kv[2];
      continue;
    }
    const problem = parseLine(trimmed, lineNo, records);
    if (problem !== undefined) {
      malformed++;
      if (issues.length < MAX_ISSUES) issues.push({ path: `line ${lineNo}`, message: problem });
    }
  }
  if (malformed > 0) {
    if (malformed > issues.length) {
      issues.push({ path: "", message: `${malformed - issues.length} more malformed line(s) not shown` });
    }
    throw new ValidationError(`SWF ${source}`, issues);
  }
  return { header, headerFields, records };
}

/** Parses one job line into `out`; returns a message when the line is malformed. */
function parseLine(line: string, lineNo: number, out: SwfRecord[]): string | undefined {
  const parts = line.split(/\s+/);
  if (parts.length !== SWF_FIELDS.length) {
    return `expected ${SWF_FIELDS.length} fields, found ${parts.length}: an SWF job line has 18 numbers (use -1 for unknown), a header line starts with ';'`;
  }
  const record: Record<string, number | undefined> = { line: lineNo };
  for (let f = 0; f < SWF_FIELDS.length; f++) {
    const name = SWF_FIELDS[f] as SwfField;
    const token = parts[f] as string;
    const value = Number(token);
    if (!/^-?\d+(\.\d+)?$/.test(token) || !Number.isFinite(value)) {
      return `field ${f + 1} (${name}) is "${token}", not a number`;
    }
    if (value < 0 && value !== -1)
      return `field ${f + 1} (${name}) is ${token}: use -1 for unknown, otherwise a value ≥ 0`;
    record[name] = value === -1 ? undefined : value;
  }
  out.push(record as SwfRecord);
  return undefined;
}

/** Writes records back as SWF text (header lines first): what the bench and tests generate traces with. */
export function formatSwf(header: readonly string[], records: readonly Omit<SwfRecord, "line">[]): string {
  const lines = header.map((h) => `; ${h}`);
  for (const r of records) lines.push(SWF_FIELDS.map((f) => String(r[f] ?? -1)).join(" "));
  return `${lines.join("\n")}\n`;
}
