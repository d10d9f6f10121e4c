import { readFileSync } from "node:fs";
import { join } from "node:path";

/** Output recorded from a real Slurm 22.05 by test/slurm/record-fixtures.ts. */
export function fixture(name: string): string {
  return readFileSync(join(import.meta.dirname, "..", "..", "fixtures", "slurm", name), "utf8");
}
