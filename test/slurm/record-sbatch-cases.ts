/**
 * Records the issue-12 sbatch cases from a real Slurm into test/fixtures/slurm/squeue-sbatch-cases.json:
 * `flock /tmp/slurm-test.lock npx tsx test/slurm/record-sbatch-cases.ts`. Needs root, slurm-wlm and munge.
 * Every job is submitted into partitions without nodes (a dynamic cluster at rest), so it pends with
 * PartitionConfig; the unit tests replay the output through the agent's parsers into the planner.
 */
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startTestbed, stopTestbed } from "../../lib/providers/local/slurm-testbed.js";
import { runCommand } from "../../scheduler-plugins/slurm/exec.js";
import { SCONTROL_PARTITIONS_ARGS } from "../../scheduler-plugins/slurm/nodes.js";

const out = join(import.meta.dirname, "..", "fixtures", "slurm");
const tb = await startTestbed({
  stateDir: await mkdtemp(join(tmpdir(), "nowscale-record-cases-")),
  clusterName: "cases",
  queues: [
    { name: "compute" },
    { name: "gpu", defMemPerCpuMiB: 1000 },
    { name: "mixed", defMemPerCpuMiB: 1000 },
  ],
  network: { bridge: "nsrc-br", hostAddress: "192.168.248.1" },
  netnsPrefix: "nsrc-",
  slurmctldPort: 7217,
  slurmdPort: 7218,
});
const sh = async (file: string, args: readonly string[]) => {
  const r = await runCommand(file, args, { env: tb.env });
  if (r.code !== 0) throw new Error(`${file} ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
};
/** The job's comment names its case, so the tests find it by meaning rather than by id. */
const sbatch = (name: string, args: string[]) =>
  sh("sbatch", ["--parsable", "--output=/dev/null", `--comment=${name}`, ...args, "--wrap", "true"]);
try {
  await sbatch("gpus-per-job", ["-p", "gpu", "--gpus=12"]);
  await sbatch("gpus-per-task", ["-p", "gpu", "-n", "6", "--gpus-per-task=2"]);
  await sbatch("cpus-per-gpu", ["-p", "gpu", "--gpus=2", "--cpus-per-gpu=4"]);
  await sbatch("mem-per-gpu", ["-p", "gpu", "--gpus-per-node=1", "--mem-per-gpu=48G"]);
  for (let i = 0; i < 6; i++) await sbatch("exclusive", ["-p", "compute", "--exclusive", "-c", "1"]);
  await sbatch("mem-zero", ["-p", "gpu", "--mem=0", "-c", "1"]);
  await sbatch("no-memory-no-default", ["-p", "compute", "-c", "1"]);
  await sbatch("no-memory-default", ["-p", "gpu", "-c", "1"]);
  await sbatch("cpu-only", ["-p", "mixed", "-c", "2", "--mem=2G"]);
  await sbatch("one-cpu-array", ["-p", "mixed", "--array=0-119", "-c", "1", "--mem=100"]);
  await new Promise((r) => setTimeout(r, 2000));
  await writeFile(join(out, "squeue-sbatch-cases.json"), await sh("squeue", ["--all", "--json"]));
  await writeFile(
    join(out, "scontrol-partitions-sbatch-cases.txt"),
    await sh("scontrol", SCONTROL_PARTITIONS_ARGS),
  );
} finally {
  await stopTestbed(tb);
}
console.log(`fixtures written to ${out}`);
