import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  startTestbed,
  stopTestbed,
  type Testbed,
  testbedUnavailableReason,
} from "../../lib/providers/local/slurm-testbed.js";
import {
  addTestbedNode,
  consoleLogPath,
  removeTestbedNode,
} from "../../lib/providers/local/testbed-nodes.js";
import { NODE_GRES_CONF } from "../../scheduler-plugins/slurm/bootstrap.js";
import { runCommand } from "../../scheduler-plugins/slurm/exec.js";
import { placementFeatures } from "../../scheduler-plugins/slurm/features.js";

/**
 * Issue 12, "GPU nodes bind jobs to their GPUs", on a real Slurm 22.05, and issue 13's one boot path: an
 * instance runs the AWS compute user data, whose write_node_gres writes the node's own gres.conf lines
 * (device files: stand-in character devices here, no hardware) in its private /etc/slurm; the cluster's
 * gres.conf holds only `Include <that file>` as the master's does, and the `slurmd -Z --conf "...
 * Gres=gpu:4"` the script starts registers its 4 GPUs from it; a job given 2 GPUs sees exactly those
 * (CUDA_VISIBLE_DEVICES). Own bridge, subnet and ports; run under
 * `flock /tmp/slurm-test.lock npm run test:slurm`.
 */
describe("a GPU node's gres.conf on a real Slurm", () => {
  let tb: Testbed;
  let madeHostGres = false;

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
    if (madeHostGres) await rm(NODE_GRES_CONF, { force: true });
  }, 180_000);

  it("a GPU node booted from its user data names its 4 GPUs in its own gres.conf, read through the master's Include, and a job gets 2", async () => {
    // Prepare: the cluster's gres.conf is the master's (an Include of each node's own file, which each
    // instance's private /etc/slurm holds); the node's four stand-in devices, found via GPU_DEV_DIR.
    // slurmctld reads the Include on its own disk too: the master's bootstrap leaves an empty file there.
    if (!existsSync(NODE_GRES_CONF)) {
      await mkdir(dirname(NODE_GRES_CONF), { recursive: true });
      await writeFile(NODE_GRES_CONF, "");
      madeHostGres = true;
    }
    await writeFile(join(tb.stateDir, "gres.conf"), `Include ${NODE_GRES_CONF}\n`);
    await runCommand("scontrol", ["reconfigure"], { env: tb.env, timeoutMs: 30_000 });

    // Act: the instance runs the AWS compute user data (write_node_gres, then slurmd -Z --conf-server
    // with Gres=gpu:4), then a job asks for 2 GPUs.
    await addTestbedNode(tb, {
      name: "g4-1",
      address: "192.168.248.10",
      cpus: 4,
      realMemoryMiB: 2000,
      gpus: 4,
      gresFromBootScript: true,
      features: placementFeatures({ queue: "gpu", instanceType: "g4", zone: "eu-west-3a" }),
    });
    const node = await runCommand("scontrol", ["--oneliner", "show", "node", "g4-1"], { env: tb.env });
    const job = await runCommand(
      "srun",
      ["-p", "gpu", "--gpus=2", "bash", "-c", "echo $CUDA_VISIBLE_DEVICES"],
      { env: tb.env, timeoutMs: 60_000 },
    );
    const bootLog = await readFile(consoleLogPath(tb, "g4-1"), "utf8");

    // Assess
    expect(node.stdout).toMatch(/ Gres=gpu:4 /);
    expect(node.stdout).toMatch(/ State=IDLE/);
    expect(node.stdout).not.toMatch(/DRAIN|INVALID/);
    expect(job.stdout.trim()).toBe("0,1");
    expect(bootLog).toMatch(/starting slurmd -Z as g4-1/);
    await removeTestbedNode(tb, "g4-1");
  });
});
