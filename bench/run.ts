import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type BenchModule, type BenchRow, baselineWork, timeMedian } from "./harness.js";

/**
 * `npm run bench`: runs every bench/*.bench.ts module (compiled to dist/bench) and prints a table
 * with each figure as a ratio to a fixed baseline loop measured in the same run; at the end, the
 * issue's speed targets (rows marked `headline`) again, together.
 * `npm run bench -- plan` runs only modules whose file name contains "plan".
 */
const here = dirname(fileURLToPath(import.meta.url));
const filter = process.argv[2];
const files = readdirSync(here)
  .filter((f) => f.endsWith(".bench.js") && (!filter || f.includes(filter)))
  .sort();

const baselineMs = await timeMedian(baselineWork, 5, 1);
console.log(`baseline loop: ${baselineMs.toFixed(1)} ms (figures below also given as multiples of it)\n`);
let misses = 0;
const headlines: BenchRow[] = [];
/** `name  median ms  xR baseline`, the fastest run, then (unless `brief`) the extras; the verdicts. */
const line = (row: BenchRow, brief = false): string => {
  const ratio = row.ms / baselineMs;
  const min = row.minMs === undefined ? "" : `  min ${row.minMs.toFixed(1)} ms`;
  const heap = brief || row.heapMiB === undefined ? "" : `  heap +${row.heapMiB.toFixed(1)} MiB`;
  const extra =
    !brief && row.extra
      ? `  ${Object.entries(row.extra)
          .map(([k, v]) => `${k}=${v}`)
          .join(" ")}`
      : "";
  const target =
    row.targetMs === undefined
      ? ""
      : row.ms <= row.targetMs
        ? `  [ok: target ${row.targetMs} ms]`
        : `  [MISSED target ${row.targetMs} ms]`;
  const goal = row.goal ? `  [${row.goal.met ? "ok" : "MISSED"}: ${row.goal.text}]` : "";
  return `${row.name.padEnd(52)} ${row.ms.toFixed(1).padStart(9)} ms  x${ratio.toFixed(2)} baseline${min}${heap}${extra}${target}${goal}`;
};
for (const file of files) {
  const mod = (await import(join(here, file))) as { default: BenchModule };
  console.log(`## ${mod.default.title}`);
  const rows: BenchRow[] = await mod.default.run();
  for (const row of rows) {
    if (row.targetMs !== undefined && row.ms > row.targetMs) misses++;
    if (row.goal && !row.goal.met) misses++;
    if (row.headline) headlines.push(row);
    console.log(line(row));
  }
  console.log("");
}
if (headlines.length > 0) {
  // The speed targets together (issue 15): median of the runs, its multiple of the baseline loop
  // measured in this run, and the fastest run.
  console.log(`## speed targets (baseline loop ${baselineMs.toFixed(1)} ms in this run)`);
  for (const row of headlines) console.log(line(row, true));
  console.log("");
}
console.log(misses === 0 ? "all targets met" : `${misses} target(s) missed`);
