import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLocalProvider, testbedNamespaceNodes } from "../../lib/providers/local/index.js";
import { sleep } from "../../lib/providers/local/netns.js";
import {
  startTestbed,
  stopTestbed,
  type Testbed,
  testbedUnavailableReason,
  waitForNode,
} from "../../lib/providers/local/slurm-testbed.js";
import { BARE_IMAGE, LOCAL_MUNGE_SECRET } from "../../lib/providers/local/testbed-nodes.js";
import { renderBootstrapScript } from "../../scheduler-plugins/slurm/bootstrap.js";
import { runCommand } from "../../scheduler-plugins/slurm/exec.js";

/**
 * The compute boot without the pre-installed marker: the script installs its packages with apt-get from
 * Debian's repositories (the instance reaches them through the host's NAT; what it installs lands in its
 * own copy-on-write /usr, /etc and /var/lib), then joins. The local demo's image has the marker and
 * skips this. Run under `flock /work/notes/slurm.lock`.
 */
describe("a compute node booted from an image without NowScale's packages", () => {
  let tb: Testbed;

  beforeAll(async () => {
    const unavailable = testbedUnavailableReason();
    if (unavailable !== undefined) throw new Error(`the real-Slurm suite cannot run here: ${unavailable}`);
    tb = await startTestbed({
      stateDir: await mkdtemp(join(tmpdir(), "nowscale-bare-image-")),
      clusterName: "bare",
      queues: [{ name: "compute" }],
      network: { bridge: "nsbi-br", hostAddress: "192.168.245.1", internet: true },
      netnsPrefix: "nsbi-",
      slurmctldPort: 7457,
      slurmdPort: 7458,
    });
  }, 120_000);

  afterAll(async () => {
    if (tb !== undefined) await stopTestbed(tb);
  }, 120_000);

  it("installs slurmd, munge and the rest with apt-get, then joins and runs a job", async () => {
    // Prepare
    const provider = createLocalProvider({
      nodes: testbedNamespaceNodes(tb, { cloud: "aws", region: "eu-west-3" }),
      stateDir: join(tb.stateDir, "records"),
      subnetPrefix: "192.168.245",
      zones: ["eu-west-3a"],
    });
    const userData = renderBootstrapScript({
      clusterId: "bare1",
      identityFrom: "aws-imds",
      queue: "compute",
      instanceType: "local.c1m1",
      zone: "eu-west-3a",
      cpus: 1,
      realMemoryMiB: 1024,
      controllerAddress: tb.controlAddress,
      controllerPort: tb.slurmctldPort,
      mungeKey: { source: "aws-secretsmanager", secretId: LOCAL_MUNGE_SECRET, region: "eu-west-3" },
    });

    // Act
    const result = await provider.launch({
      clusterId: "bare1",
      queue: "compute",
      round: "bare-1",
      candidates: [{ instanceType: "local.c1m1", zone: "eu-west-3a", chargeType: "ON_DEMAND" }],
      count: 1,
      allOrNothing: true,
      imageId: BARE_IMAGE,
      userData,
    });
    const node = result.instances[0]?.id ?? "";
    let console = "";
    for (let i = 0; i < 600 && !console.includes("user data exited with"); i++) {
      await sleep(500);
      console = (await provider.consoleOutput?.(node, 400)) ?? "";
    }

    // Assess
    expect(console).toContain("installing slurmd and munge");
    expect(console).not.toContain("pre-installed image");
    expect(console).toMatch(/Reading package lists/);
    expect(console, console.slice(-3000)).toContain("user data exited with 0");
    await waitForNode(tb, node, ["IDLE"], 60_000);
    const out = join(tb.stateDir, "job.out");
    const job = await runCommand(
      "sbatch",
      ["--wait", "-p", "compute", `--output=${out}`, "--wrap", "echo ran-on-$SLURMD_NODENAME"],
      { env: tb.env, timeoutMs: 120_000 },
    );
    expect(job.code, job.stderr).toBe(0);
    await provider.terminate([node]);
  }, 420_000);
});
