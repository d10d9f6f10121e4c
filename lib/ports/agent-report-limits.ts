/**
 * Bounds of the agent's report, shared by the zod schema (report-schema.ts) and the report builder,
 * which checks them without zod so the agent bundle stays small.
 */
export const REPORT_SCHEMA_VERSION = 1;

export const LIMITS = {
  nodes: 100_000,
  cpus: 100_000,
  memMiB: 1 << 30,
  gpus: 1024,
  tasks: 10_000_000,
  count: 10_000_000,
  jobIds: 5,
  text: 500,
  /** Entries of the report's `arrivals` (queues × windows): the core's state takes as many. */
  arrivals: 1000,
  arrivalCpus: 1_000_000_000,
} as const;
