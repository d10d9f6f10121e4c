import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNamespaceNode } from "../../lib/providers/local/netns.js";
import {
  startTestbed,
  stopTestbed,
  type Testbed,
  testbedPaths,
  testbedUnavailableReason,
  waitForNode,
} from "../../lib/providers/local/slurm-testbed.js";
import { nodeGresCommands } from "../../scheduler-plugins/slurm/bootstrap.js";
import { runCommand } from "../../scheduler-plugins/slurm/exec.js";
import { placementFeatures } from "../../scheduler-plugins/slurm/features.js";

/**
 * Issue 12, "GPU nodes bind jobs to their GPUs", on a real Slurm 22.05: the compute bootstrap's own
 * write_node_gres writes a node's gres.conf lines (device files: stand-in character devices here, no
 * hardware), the cluster's gres.conf holds only `Include <that file>` as the master's does, and a
 * `slurmd -Z --conf "... Gres=gpu:4"` node registers its 4 GPUs from it; a job given 2 GPUs sees exactly
 * those (CUDA_VISIBLE_DEVICES). Own bridge, subnet and ports; run under
 * `flock /tmp/slurm-test.lock npm run test:slurm`.
 */
describe("a GPU node's gres.conf on a real Slurm", () => {
  let tb: Testbed;

  beforeAll(async () => {
    const unavailable = testbedUnavailableReason();
    if (unavailable !== undefined) throw new Error(`the real-Slurm suite cannot run here: ${unavailable}`);
    tb = await startTestbed({
      stateDir: await mkdtemp(join(tmpdir(), "nowscale-gres-")),
      clusterName: "grestest",
      queues: [{ name: "gpu", defMemPerCpuMiB: 100 }],
      network: { bridge: "nsgr-br", hostAddress: "192.168.248.1" },
      netnsPrefix: "nsgr-",
      slurmctldPort: 7617,
      slurmdPort: 7618,
    });
  }, 180_000);

  afterAll(async () => {
    if (tb !== undefined) await stopTestbed(tb);
  }, 180_000);

  it("the bootstrap's gres lines, read through the master's Include, give the node its 4 GPUs and bind a job to 2", async () => {
    // Prepare: four stand-in GPU devices; the bootstrap's function writes the node's file.
    const dev = join(tb.stateDir, "dev");
    await mkdir(dev, { recursive: true });
    for (let i = 0; i < 4; i++) await runCommand("mknod", [join(dev, `nvidia${i}`), "c", "1", "3"]);
    const nodeGres = join(tb.stateDir, "node", "nowscale-node-gres.conf");
    const fn = /write_node_gres\(\) \{[\s\S]*?\n\}\n/.exec(nodeGresCommands(4, "files", 0))?.[0];
    const written = spawnSync(
      "bash",
      [
        "-c",
        `set -euo pipefail\nlog() { echo "$*" >&2; }\nNODE_NAME=g4-1\n${fn}\nwrite_node_gres 4 "$1" files 0`,
        "x",
        nodeGres,
      ],
      { env: { ...process.env, GPU_DEV_DIR: dev }, encoding: "utf8" },
    );
    await writeFile(join(tb.stateDir, "gres.conf"), `Include ${nodeGres}\n`);

    // Act: the node starts as the bootstrap starts it (Gres=gpu:4 on --conf), then a job asks for 2 GPUs.
    await createNamespaceNode({
      name: "g4-1",
      netnsPrefix: "nsgr-",
      bridge: "nsgr-br",
      address: "192.168.248.10",
      cpus: 4,
      realMemoryMiB: 2000,
      gpus: 4,
      features: placementFeatures({ queue: "gpu", instanceType: "g4", zone: "zone-a" }),
      slurmConf: tb.confPath,
      spoolDir: join(testbedPaths(tb.stateDir).spoolRoot, "g4-1"),
    });
    await waitForNode(tb, "g4-1");
    const node = await runCommand("scontrol", ["--oneliner", "show", "node", "g4-1"], { env: tb.env });
    const job = await runCommand(
      "srun",
      ["-p", "gpu", "--gpus=2", "bash", "-c", "echo $CUDA_VISIBLE_DEVICES"],
      { env: tb.env, timeoutMs: 60_000 },
    );

    // Assess
    expect(written.status).toBe(0);
    expect(await readFile(nodeGres, "utf8")).toBe(`NodeName=g4-1 Name=gpu File=${dev}/nvidia[0-3]\n`);
    expect(node.stdout).toMatch(/ Gres=gpu:4 /);
    expect(node.stdout).toMatch(/ State=IDLE/);
    expect(node.stdout).not.toMatch(/DRAIN|INVALID/);
    expect(job.stdout.trim()).toBe("0,1");
  });
});
