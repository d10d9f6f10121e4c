/**
 * Re-records test/fixtures/slurm from a real Slurm: `flock /tmp/slurm-test.lock npx tsx test/slurm/record-fixtures.ts`.
 * Needs root, slurm-wlm and munge. Starts a test bed, submits jobs of varied shapes, adds one namespace
 * node, and saves squeue/sinfo/scontrol output in both the JSON and the format-string forms.
 */
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startTestbed, stopSlurmctld, stopTestbed } from "../../lib/providers/local/slurm-testbed.js";
import { addTestbedNode } from "../../lib/providers/local/testbed-nodes.js";
import { runCommand } from "../../scheduler-plugins/slurm/exec.js";
import { placementFeatures } from "../../scheduler-plugins/slurm/features.js";
import { SCONTROL_NODES_ARGS, SCONTROL_PARTITIONS_ARGS } from "../../scheduler-plugins/slurm/nodes.js";
import { SQUEUE_FORMAT_ARGS } from "../../scheduler-plugins/slurm/squeue-format.js";

const out = join(import.meta.dirname, "..", "fixtures", "slurm");
const tb = await startTestbed({
  stateDir: await mkdtemp(join(tmpdir(), "nowscale-record-")),
  clusterName: "record",
  queues: [{ name: "compute" }, { name: "gpu", defMemPerCpuMiB: 1000 }],
  network: { bridge: "nsrec-br", hostAddress: "192.168.250.1" },
  netnsPrefix: "nsrec-",
});
const sh = async (file: string, args: readonly string[]) => {
  const r = await runCommand(file, args, { env: tb.env });
  if (r.code !== 0) throw new Error(`${file} ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
};
const save = (name: string, text: string) => writeFile(join(out, name), text);
try {
  await addTestbedNode(tb, {
    name: "c4-a",
    address: "192.168.250.11",
    cpus: 4,
    realMemoryMiB: 8000,
    features: placementFeatures({ queue: "compute", instanceType: "c5.xlarge", zone: "zone-a" }),
  });
  const sbatch = (args: string[]) => sh("sbatch", ["--parsable", "--output=/dev/null", ...args]);
  const running = (await sbatch(["-c", "2", "--mem=1000", "--wrap", "sleep 300"])).trim();
  await sbatch(["-N", "2", "--wrap", "true"]);
  await sbatch(["-n", "3", "--mem=2000", "--wrap", "true"]);
  await sbatch(["-n", "4", "-c", "2", "--mem-per-cpu=100", "--wrap", "true"]);
  await sbatch(["--exclusive", "-c", "8", "--wrap", "true"]);
  await sbatch(["-H", "--wrap", "true"]);
  await sbatch([`--dependency=afterok:${running}`, "--wrap", "true"]);
  await sbatch(["-p", "gpu", "-c", "2", "--wrap", "true"]);
  await sbatch(["--array=0-9,20-28:2%3", "-c", "8", "--wrap", "true"]);
  await sbatch(["--begin=now+1hour", "--wrap", "true"]);
  await new Promise((r) => setTimeout(r, 3000));
  await save("squeue.json", await sh("squeue", ["--all", "--json"]));
  await save("squeue-format.txt", await sh("squeue", SQUEUE_FORMAT_ARGS));
  await save("sinfo.json", await sh("sinfo", ["--json"]));
  await save("scontrol-nodes.txt", await sh("scontrol", SCONTROL_NODES_ARGS));
  await save("scontrol-partitions.txt", await sh("scontrol", SCONTROL_PARTITIONS_ARGS));
  await sh("scontrol", ["update", "NodeName=c4-a", "State=DRAIN", "Reason=nowscale: idle 300 s"]);
  await save("sinfo-draining.json", await sh("sinfo", ["--json"]));
  await save("scontrol-nodes-draining.txt", await sh("scontrol", SCONTROL_NODES_ARGS));
  await stopSlurmctld(tb);
  const down = await runCommand("squeue", ["--all", "--json"], { env: tb.env });
  await save("squeue-unreachable.json", down.stdout);
  const downFormat = await runCommand("squeue", SQUEUE_FORMAT_ARGS, { env: tb.env });
  await save("squeue-format-unreachable.txt", `exit ${downFormat.code}\n${downFormat.stderr}`);
} finally {
  await stopTestbed(tb);
}
console.log(`fixtures written to ${out}`);
