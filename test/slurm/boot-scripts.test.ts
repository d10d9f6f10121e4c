import { mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Launch } from "../../lib/core/model.js";
import { localComputeUserData } from "../../lib/local/user-data.js";
import type { CloudProvider } from "../../lib/ports/cloud-provider.js";
import type { ClusterRecord } from "../../lib/ports/state-store.js";
import { createLocalProvider, testbedNamespaceNodes } from "../../lib/providers/local/index.js";
import type { InstanceCloud, InstanceObject } from "../../lib/providers/local/instance-endpoints/index.js";
import { sleep } from "../../lib/providers/local/netns.js";
import {
  startTestbed,
  stopTestbed,
  type Testbed,
  testbedPaths,
  testbedUnavailableReason,
  waitForNode,
} from "../../lib/providers/local/slurm-testbed.js";
import { LOCAL_MUNGE_SECRET } from "../../lib/providers/local/testbed-nodes.js";
import { type BootstrapOptions, renderBootstrapScript } from "../../scheduler-plugins/slurm/bootstrap.js";
import { runCommand } from "../../scheduler-plugins/slurm/exec.js";

/**
 * The compute boot scripts of each cloud, rendered as the scaler renders them and RUN in local
 * instances (lib/providers/local/instance-boot.ts) against each cloud's metadata service and secret store
 * (lib/providers/local/instance-endpoints): the node joins the test bed's slurmctld and runs a job. Storage and
 * init scripts run for real: the NFS mount goes through mount(8) to the instances' stand-in mount.nfs
 * (this kernel has no NFS), the init script comes from S3 and fails the boot when it fails.
 * Run under `flock /work/notes/slurm.lock`.
 */
const PREFIX = "nsbs-";
const SUBNET = "192.168.246";
const INIT_OK = `#!/bin/sh
set -eu
echo "init: role=$NOWSCALE_NODE_ROLE cluster=$NOWSCALE_CLUSTER_ID scheduler=$NOWSCALE_SCHEDULER_TYPE"
echo "$NOWSCALE_NODE_ROLE $NOWSCALE_CLUSTER_ID $NOWSCALE_SCHEDULER_TYPE" > "/mnt/shared/init-$(hostname)"
`;
const INIT_FAIL = `#!/bin/sh
echo "init: the site's setup is broken" >&2
exit 3
`;
const OBJECTS: InstanceObject[] = [
  { bucket: "nowscale-init", key: "ok.sh", body: Buffer.from(INIT_OK) },
  { bucket: "nowscale-init", key: "fail.sh", body: Buffer.from(INIT_FAIL) },
];

describe("compute boot scripts run in local instances", () => {
  let tb: Testbed;
  let exportRoot: string;
  let nextHost = 10;

  beforeAll(async () => {
    const unavailable = testbedUnavailableReason();
    if (unavailable !== undefined) throw new Error(`the real-Slurm suite cannot run here: ${unavailable}`);
    const stateDir = await mkdtemp(join(tmpdir(), "nowscale-boot-scripts-"));
    tb = await startTestbed({
      stateDir,
      clusterName: "bootscripts",
      queues: [{ name: "compute" }],
      network: { bridge: `${PREFIX}br`, hostAddress: `${SUBNET}.1` },
      netnsPrefix: PREFIX,
      slurmctldPort: 7417,
      slurmdPort: 7418,
    });
    exportRoot = join(stateDir, "exports");
    await mkdir(join(exportRoot, "home"), { recursive: true });
    await writeFile(join(exportRoot, "home", "hello"), "from the export\n");
  }, 120_000);

  afterAll(async () => {
    if (tb !== undefined) await stopTestbed(tb);
  }, 120_000);

  /** A provider whose instances are `cloud`'s; each gets its own addresses. */
  function provider(cloud: InstanceCloud, region: string): CloudProvider {
    const firstHost = nextHost;
    nextHost += 10;
    return createLocalProvider({
      nodes: testbedNamespaceNodes(tb, { cloud, region, objects: OBJECTS, nfsExportRoot: exportRoot }),
      stateDir: join(tb.stateDir, `records-${cloud}-${firstHost}`),
      // Zones named as the clouds name them: the AWS CLI takes the region from the zone (IMDS).
      zones: [`${region}a`],
      subnetPrefix: SUBNET,
      firstHost,
      lastHost: firstHost + 9,
    });
  }

  function script(
    identityFrom: BootstrapOptions["identityFrom"],
    mungeKey: BootstrapOptions["mungeKey"],
    extra: Partial<BootstrapOptions> = {},
  ): string {
    return renderBootstrapScript({
      clusterId: "bs1",
      identityFrom,
      queue: "compute",
      instanceType: "local.c1m1",
      zone: "ignored-a",
      cpus: 1,
      realMemoryMiB: 1024,
      controllerAddress: tb.controlAddress,
      controllerPort: tb.slurmctldPort,
      mungeKey,
      ...extra,
    });
  }

  async function launch(p: CloudProvider, region: string, userData: string): Promise<string> {
    const result = await p.launch({
      clusterId: "bs1",
      queue: "compute",
      round: `r-${Date.now()}`,
      candidates: [{ instanceType: "local.c1m1", zone: `${region}a`, chargeType: "ON_DEMAND" }],
      count: 1,
      allOrNothing: true,
      imageId: "local",
      userData,
    });
    const id = result.instances[0]?.id;
    if (id === undefined) throw new Error(`launch failed: ${result.failures[0]?.error.message}`);
    return id;
  }

  async function runJob(node: string, command: string): Promise<string> {
    const out = join(tb.stateDir, `job-${node}.out`);
    const r = await runCommand(
      "sbatch",
      ["--wait", "-p", "compute", "-w", node, `--output=${out}`, "--wrap", command],
      {
        env: tb.env,
        timeoutMs: 120_000,
      },
    );
    expect(r.code, r.stderr).toBe(0);
    return (await readFile(out, "utf8")).trim();
  }

  /** Waits until the node is IDLE in Slurm; a boot that ended in failure fails at once with its console. */
  async function joined(p: CloudProvider, node: string): Promise<void> {
    for (let i = 0; i < 120; i++) {
      const text = (await p.consoleOutput?.(node, 30)) ?? "";
      if (/user data exited with [1-9]/.test(text)) throw new Error(`the boot of ${node} failed:\n${text}`);
      try {
        await waitForNode(tb, node, ["IDLE"], 500);
        return;
      } catch {
        // not yet
      }
    }
    throw new Error(`${node} did not join within 60 s:\n${(await p.consoleOutput?.(node, 30)) ?? ""}`);
  }

  async function bootEnded(p: CloudProvider, node: string): Promise<string> {
    for (let i = 0; i < 120; i++) {
      const text = (await p.consoleOutput?.(node, 200)) ?? "";
      if (text.includes("nowscale-local: user data exited with")) return text;
      await sleep(500);
    }
    throw new Error(`the boot of ${node} did not end`);
  }

  it("AWS: the NFS storage is mounted and the S3 init script runs with the NowScale variables before the node joins", async () => {
    // Prepare
    const p = provider("aws", "eu-west-3");
    const userData = script(
      "aws-imds",
      { source: "aws-secretsmanager", secretId: LOCAL_MUNGE_SECRET, region: "eu-west-3" },
      {
        storage: [
          { protocol: "NFS 4.0", remotePath: `${tb.controlAddress}:/home`, localPath: "/mnt/shared" },
        ],
        initScripts: [{ url: "s3://nowscale-init/ok.sh", timeoutS: 60 }],
      },
    );

    // Act
    const node = await launch(p, "eu-west-3", userData);
    await joined(p, node);
    const seen = await runJob(node, "cat /mnt/shared/hello; cat /mnt/shared/init-$(hostname)");

    // Assess
    const console = await bootEnded(p, node);
    expect(console).toContain("user data exited with 0");
    expect(console).toContain(
      `mount.nfs (local stand-in): ${tb.controlAddress}:/home on /mnt/shared -o rw,vers=4.0,noresvport`,
    );
    expect(console).toContain("init: role=COMPUTE cluster=bs1 scheduler=SLURM");
    expect(console.indexOf("running init script 0")).toBeLessThan(console.indexOf("starting slurmd -Z"));
    expect(seen).toBe(`from the export\nCOMPUTE bs1 SLURM`);
    expect(await readFile(join(exportRoot, "home", `init-${node}`), "utf8")).toBe("COMPUTE bs1 SLURM\n");
    await p.terminate([node]);
  }, 180_000);

  /**
   * The user data the scaler renders for a launch of a `cloud` cluster (renderComputeUserData, as the
   * local mode calls it), pointed at the test bed's slurmctld: no storage, no init scripts.
   */
  function scalerUserData(cloud: "tencent" | "alibaba", region: string): string {
    const cluster = {
      clusterId: "bs1",
      name: "bs1",
      placement: { cloud, region, imageId: "img-1" },
      autoscaling: {
        catalogs: [],
        instanceTypes: { "local.c1m1": { vcpus: 1, memoryMiB: 1024 } },
        queueConfigs: [
          {
            queueName: "compute",
            scaleUpMemRatio: 1,
            expansionNodeConfigs: [{ zone: `${region}a`, instanceType: "local.c1m1" }],
          },
        ],
      },
      status: "RUNNING",
      version: 1,
      createdAt: 0,
      updatedAt: 0,
      agent: { kind: "none" },
      resources: [],
      queueHealth: {},
    } as ClusterRecord;
    const launch: Launch = {
      queue: "compute",
      instanceType: "local.c1m1",
      zone: `${region}a`,
      count: 1,
      candidates: [{ instanceType: "local.c1m1", zone: `${region}a`, chargeType: "ON_DEMAND" }],
      allOrNothing: true,
      jobs: [],
      reason: "test",
    };
    const userData = localComputeUserData(tb, cloud)(cluster, launch);
    if (userData === undefined) throw new Error(`no ${cloud} user data for the launch`);
    return userData;
  }

  /** What each cloud's compute script must show: its own metadata and secret store, and no munge key. */
  async function assessCloudScript(userData: string, metadataAddress: string, fetchedFrom: string) {
    const mungeKey = (await readFile(testbedPaths(tb.stateDir).mungeKey)).toString("base64");
    expect(userData).not.toContain(mungeKey.slice(0, 40));
    expect(userData).toContain(`-d ${metadataAddress}/32`);
    // The secret fetcher travels gzipped in the script (the 16 KiB user-data limit): read it unpacked.
    const packed = [...userData.matchAll(/printf '%s' '([A-Za-z0-9+/=]+)' \| base64 -d \| gunzip/g)];
    const unpacked = packed.map((m) => gunzipSync(Buffer.from(m[1] as string, "base64")).toString("utf8"));
    expect(unpacked.join("\n")).toContain(fetchedFrom);
    expect(userData).not.toContain("aws secretsmanager");
    expect(userData).toContain(`readonly CONF_SERVER='${tb.controlAddress}:${tb.slurmctldPort}'`);
  }

  it("Tencent: the scaler's script takes its identity from the metadata service and the munge key from SSM with the CVM role's key, and joins configless", async () => {
    // Prepare
    const p = provider("tencent", "ap-guangzhou");
    const userData = scalerUserData("tencent", "ap-guangzhou");

    // Act
    const node = await launch(p, "ap-guangzhou", userData);
    await joined(p, node);
    const seen = await runJob(node, "echo ran-on-$SLURMD_NODENAME");

    // Assess
    expect(seen).toBe(`ran-on-${node}`);
    const console = await bootEnded(p, node);
    expect(console).toContain("user data exited with 0");
    const shown = await runCommand("scontrol", ["show", "node", node], { env: tb.env });
    expect(shown.stdout).toMatch(/AvailableFeatures=q_compute,type_local\.c1m1,zone_ap-guangzhoua/);
    await assessCloudScript(userData, "169.254.0.23", "ssm.tencentcloudapi.com");
    // CVM's user data: 16 KiB once base64-encoded.
    expect(Buffer.from(userData).toString("base64").length).toBeLessThanOrEqual(16_384);
    await p.terminate([node]);
  }, 180_000);

  it("Alibaba: the scaler's script takes its identity from the metadata service in token mode and the munge key from KMS with the RAM role's key, and joins configless", async () => {
    // Prepare
    const p = provider("alibaba", "cn-hangzhou");
    const userData = scalerUserData("alibaba", "cn-hangzhou");

    // Act
    const node = await launch(p, "cn-hangzhou", userData);
    await joined(p, node);
    const seen = await runJob(node, "echo ran-on-$SLURMD_NODENAME");

    // Assess
    expect(seen).toBe(`ran-on-${node}`);
    expect(await bootEnded(p, node)).toContain("user data exited with 0");
    const shown = await runCommand("scontrol", ["show", "node", node], { env: tb.env });
    expect(shown.stdout).toMatch(/AvailableFeatures=q_compute,type_local\.c1m1,zone_cn-hangzhoua/);
    await assessCloudScript(userData, "100.100.100.200", "kms-vpc.");
    // ECS's user data: 32 KiB once base64-encoded.
    expect(Buffer.from(userData).toString("base64").length).toBeLessThanOrEqual(32_768);
    await p.terminate([node]);
  }, 180_000);

  it("a failing init script fails the boot: the node never joins and its console says why", async () => {
    // Prepare
    const p = provider("aws", "eu-west-3");
    const userData = script(
      "aws-imds",
      { source: "aws-secretsmanager", secretId: LOCAL_MUNGE_SECRET, region: "eu-west-3" },
      { initScripts: [{ url: "s3://nowscale-init/fail.sh", timeoutS: 60 }] },
    );

    // Act
    const node = await launch(p, "eu-west-3", userData);
    const console = await bootEnded(p, node);

    // Assess
    expect(console).toContain("init: the site's setup is broken");
    expect(console).toMatch(/user data exited with [1-9]/);
    expect(console).not.toContain("starting slurmd -Z");
    const shown = await runCommand("scontrol", ["show", "node", node], { env: tb.env });
    expect(shown.stdout).not.toContain(`NodeName=${node}`);
    // The instance still runs (as a cloud's would): the reconciler's boot timeout takes it.
    expect((await p.describe([node]))[0]?.state).toBe("RUNNING");
    await p.terminate([node]);
  }, 180_000);
});
