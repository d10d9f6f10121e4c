/**
 * The agent's report time on a real Slurm with 10k pending jobs (needs root, slurm-wlm, munge):
 *   npm run build:agent && flock /tmp/slurm-test.lock npx tsx bench/agent-report-real.ts [jobs]
 * Starts a test bed, submits held jobs of four shapes with sbatch, then times `node nowscale-agent.js report`
 * (squeue/sinfo/scontrol included) and prints one JSON line. Not part of `npm run bench`, which needs no root.
 */
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startTestbed, stopTestbed } from "../lib/providers/local/slurm-testbed.js";
import { runCommand } from "../scheduler-plugins/slurm/exec.js";

const jobs = Number(process.argv[2] ?? "10000");
const bundle = join(import.meta.dirname, "..", "dist", "agent", "nowscale-agent.js");
const tb = await startTestbed({
  stateDir: await mkdtemp(join(tmpdir(), "nowscale-bench-")),
  clusterName: "bench",
  netnsPrefix: "nsbench-",
  slurmctldPort: 7117,
  slurmdPort: 7118,
  extraConf: [`MaxJobCount=${jobs * 2}`, "MaxArraySize=100001"],
});
try {
  const shapes = [
    ["-c", "1"],
    ["-c", "4", "--mem=2000"],
    ["-N", "2"],
    ["-n", "8", "--mem-per-cpu=500"],
  ];
  const started = Date.now();
  const workers = 4;
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (let i = w; i < jobs; i += workers) {
        const shape = shapes[i % shapes.length] as string[];
        const r = await runCommand(
          "sbatch",
          ["--parsable", "--output=/dev/null", ...shape, "--wrap", "true"],
          { env: tb.env },
        );
        if (r.code !== 0) throw new Error(`sbatch: ${r.stderr}`);
      }
    }),
  );
  const submitS = (Date.now() - started) / 1000;
  const times: number[] = [];
  let bytes = 0;
  let groups = 0;
  let pending = 0;
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    const r = await runCommand(process.execPath, [bundle, "report"], { env: tb.env, timeoutMs: 300_000 });
    times.push(performance.now() - t);
    const report = JSON.parse(r.stdout) as { jobs: { count: number; state: string }[] };
    bytes = r.stdout.length;
    groups = report.jobs.length;
    pending = report.jobs.reduce((n, g) => n + g.count, 0);
  }
  times.sort((a, b) => a - b);
  // How much of it is Slurm's own: squeue --json alone.
  const squeueTimes: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    await runCommand("squeue", ["--all", "--json"], { env: tb.env, timeoutMs: 300_000 });
    squeueTimes.push(performance.now() - t);
  }
  squeueTimes.sort((a, b) => a - b);
  console.log(
    JSON.stringify({
      jobs,
      submitS,
      reportMsMedian: Math.round(times[2] ?? 0),
      reportMs: times.map(Math.round),
      squeueJsonMsMedian: Math.round(squeueTimes[1] ?? 0),
      reportBytes: bytes,
      groups,
      pending,
    }),
  );
} finally {
  await stopTestbed(tb);
}
