import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { buildReport } from "../scheduler-plugins/slurm/report.js";
import { parseSqueueJson } from "../scheduler-plugins/slurm/squeue-json.js";
import { type BenchModule, type BenchRow, timeMedian } from "./harness.js";

const NOW = Date.parse("2026-11-24T05:00:00Z");

/**
 * `squeue --json` for `count` pending jobs, built from the records recorded from a real Slurm 22.05
 * (test/fixtures/slurm/squeue.json): the recorded jobs repeated with new ids and submit times, so the
 * parser sees Slurm's real record size (~3 KB a job) and the report's eight shapes.
 */
function syntheticSqueueJson(count: number): string {
  // From dist/bench when built, from bench/ under tsx.
  const path = ["../../test/fixtures/slurm/squeue.json", "../test/fixtures/slurm/squeue.json"]
    .map((p) => fileURLToPath(new URL(p, import.meta.url)))
    .find((p) => existsSync(p));
  if (path === undefined) throw new Error("test/fixtures/slurm/squeue.json not found");
  const doc = JSON.parse(readFileSync(path, "utf8")) as { jobs: Record<string, unknown>[] };
  const templates = doc.jobs.filter((j) => j.job_state === "PENDING" && j.array_job_id === 0);
  const jobs = Array.from({ length: count }, (_, i) => ({
    ...templates[i % templates.length],
    job_id: 1000 + i,
    submit_time: Math.floor(NOW / 1000) - 3600 + (i % 3600),
  }));
  return JSON.stringify({ ...doc, jobs }, null, 2);
}

/** The agent's report for 10k and 100k pending jobs: parse squeue --json, group, serialise. */
const bench: BenchModule = {
  title: "agent report (squeue --json parse + grouping + JSON out)",
  async run(): Promise<BenchRow[]> {
    const rows: BenchRow[] = [];
    for (const count of [10_000, 100_000]) {
      const input = syntheticSqueueJson(count);
      let reportBytes = 0;
      let groups = 0;
      const ms = await timeMedian(
        () => {
          const { jobs } = parseSqueueJson(input);
          const report = buildReport({
            jobs,
            nodes: [],
            partitions: [],
            slurmVersion: "22.05.8",
            source: "json",
            agentVersion: "bench",
            now: NOW,
          });
          reportBytes = JSON.stringify(report).length;
          groups = report.jobs.length;
        },
        count > 10_000 ? 3 : 5,
      );
      rows.push({
        name: `report for ${count / 1000}k pending jobs`,
        ms,
        extra: { squeueJsonMiB: (input.length / 1048576).toFixed(1), groups, reportBytes },
        ...(count === 10_000 ? { targetMs: 1000 } : {}),
      });
    }
    return rows;
  },
};
export default bench;
