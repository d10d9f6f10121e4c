import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CloudProvider } from "../../lib/ports/cloud-provider.js";
import { InsufficientCapacityError } from "../../lib/ports/errors.js";
import { createLocalProvider, testbedNamespaceNodes } from "../../lib/providers/local/index.js";
import { listNamespaceNodes, vethName } from "../../lib/providers/local/netns.js";
import {
  startTestbed,
  stopTestbed,
  type Testbed,
  testbedUnavailableReason,
  waitForNode,
} from "../../lib/providers/local/slurm-testbed.js";
import { LOCAL_MUNGE_SECRET } from "../../lib/providers/local/testbed-nodes.js";
import { renderBootstrapScript } from "../../scheduler-plugins/slurm/bootstrap.js";
import { runCommand } from "../../scheduler-plugins/slurm/exec.js";

/**
 * The local provider against a real Slurm: it launches a namespace node that joins slurmctld, a job runs
 * on it, and terminate leaves no namespace, veth or Slurm node behind. Its own bridge, subnet, ports and
 * namespace prefix keep it apart from the other real-Slurm tests; run by hand under
 * `flock /tmp/slurm-test.lock`.
 */
describe("local provider on a real Slurm", () => {
  const prefix = "nslp-";
  let tb: Testbed;
  let provider: CloudProvider;

  beforeAll(async () => {
    const unavailable = testbedUnavailableReason();
    if (unavailable !== undefined) throw new Error(`the real-Slurm suite cannot run here: ${unavailable}`);
    const stateDir = await mkdtemp(join(tmpdir(), "nowscale-local-provider-"));
    tb = await startTestbed({
      stateDir,
      clusterName: "localprov",
      queues: [{ name: "compute" }],
      network: { bridge: "nslp-br", hostAddress: "192.168.251.1" },
      netnsPrefix: prefix,
      slurmctldPort: 6917,
      slurmdPort: 6918,
    });
    provider = createLocalProvider({
      nodes: testbedNamespaceNodes(tb),
      stateDir: join(stateDir, "instances"),
      subnetPrefix: "192.168.251",
      // The first candidate has no room: the launch must fall through to the second.
      capacity: [{ instanceType: "local.c2m2", zone: "local-a", maxNodes: 0 }],
      bootDelayMs: 100,
    });
  }, 120_000);

  afterAll(async () => {
    if (tb !== undefined) await stopTestbed(tb);
  }, 120_000);

  it("launches a node that runs a job, and terminate leaves nothing behind", async () => {
    // Prepare
    const slurm = (file: string, args: string[]) =>
      runCommand(file, args, { env: tb.env, timeoutMs: 120_000 });

    // Act: launch
    const result = await provider.launch({
      clusterId: "lp1",
      queue: "compute",
      round: "cycle-1.0",
      candidates: [
        { instanceType: "local.c2m2", zone: "local-a", chargeType: "ON_DEMAND" },
        { instanceType: "local.c2m2", zone: "local-b", chargeType: "ON_DEMAND" },
      ],
      count: 1,
      allOrNothing: true,
      imageId: "local",
      // The AWS compute boot script as the scaler renders it: identity from IMDSv2, the munge key from
      // Secrets Manager, slurmd -Z configless from the test bed's slurmctld.
      userData: renderBootstrapScript({
        clusterId: "lp1",
        identityFrom: "aws-imds",
        queue: "compute",
        instanceType: "local.c2m2",
        zone: "local-a",
        cpus: 2,
        realMemoryMiB: 2048,
        controllerAddress: tb.controlAddress,
        controllerPort: tb.slurmctldPort,
        mungeKey: { source: "aws-secretsmanager", secretId: LOCAL_MUNGE_SECRET, region: "local" },
      }),
    });

    // Assess: launched on the second candidate, joined Slurm, found by list
    expect(result.failures[0]?.error).toBeInstanceOf(InsufficientCapacityError);
    expect(result.instances).toHaveLength(1);
    const node = result.instances[0]?.id ?? "";
    expect(result.instances[0]?.zone).toBe("local-b");
    await waitForNode(tb, node, ["IDLE"], 60_000);
    const console = (await provider.consoleOutput?.(node, 200)) ?? "";
    expect(console).toContain("pre-installed image: skipping package installation");
    expect(console).toContain(`starting slurmd -Z as ${node}`);
    expect(console).toContain("user data exited with 0");
    expect((await provider.list("lp1")).map((i) => i.id)).toEqual([node]);
    const features = await slurm("scontrol", ["show", "node", node]);
    expect(features.stdout).toMatch(/AvailableFeatures=.*q_compute.*type_local\.c2m2.*zone_local-b/);

    // Act: a job
    const out = join(tb.stateDir, "job.out");
    const job = await slurm("sbatch", [
      "--wait",
      "--partition=compute",
      `--output=${out}`,
      "--wrap",
      "echo ran-on-$SLURMD_NODENAME",
    ]);

    // Assess: it ran on the launched node
    expect(job.code).toBe(0);
    expect((await readFile(out, "utf8")).trim()).toBe(`ran-on-${node}`);

    // Act: terminate (twice: idempotent)
    await provider.terminate([node]);
    await provider.terminate([node]);

    // Assess: nothing left behind
    expect(await listNamespaceNodes(prefix)).toEqual([]);
    const veth = await runCommand("ip", ["link", "show", "dev", vethName(`${prefix}${node}`)]);
    expect(veth.code).not.toBe(0);
    const shown = await slurm("scontrol", ["show", "node", node]);
    expect(shown.stdout).not.toContain(`NodeName=${node}`);
    expect(await provider.list("lp1")).toEqual([]);
    // The console log is kept after the instance is gone.
    expect(await provider.consoleOutput?.(node, 5)).toContain("user data exited with 0");
  }, 180_000);
});
