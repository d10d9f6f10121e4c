import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { replaceFileAtomically } from "../lib/ports/atomic-file.js";
import { type ArrivalRecord, parseArrivalRecord } from "../scheduler-plugins/slurm/arrivals.js";
import type { ArrivalStore } from "../scheduler-plugins/slurm/collect.js";

/** The arrivals record's file in the agent's state directory. */
export const ARRIVALS_FILE = "arrivals.json";

/**
 * The arrivals record (scheduler-plugins/slurm/arrivals.ts) kept as `<state dir>/arrivals.json`
 * (mode 0600, replaced atomically), so it outlives a restart of `serve` and carries from one `report`
 * run to the next (SSM runs `report` afresh every poll). A missing or damaged file reads as none: the
 * record starts afresh and refills within its windows.
 */
export function arrivalsFile(stateDir: string): ArrivalStore {
  const file = join(stateDir, ARRIVALS_FILE);
  return {
    load: async (): Promise<ArrivalRecord | undefined> => {
      const text = await readFile(file, "utf8").catch(() => undefined);
      return text === undefined ? undefined : parseArrivalRecord(text);
    },
    save: async (record: ArrivalRecord): Promise<void> => {
      replaceFileAtomically(file, JSON.stringify(record));
    },
  };
}
