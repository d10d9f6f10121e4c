import { mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Launch } from "../../lib/core/model.js";
import { localComputeUserData } from "../../lib/local/user-data.js";
import type { AgentChannel, NodeStorageSpec } from "../../lib/ports/agent-channel.js";
import type { CloudProvider } from "../../lib/ports/cloud-provider.js";
import type { ClusterRecord } from "../../lib/ports/state-store.js";
import { createLocalProvider, testbedNamespaceNodes } from "../../lib/providers/local/index.js";
import { sleep } from "../../lib/providers/local/netns.js";
import {
  startTestbed,
  stopTestbed,
  type Testbed,
  testbedUnavailableReason,
  waitForNode,
} from "../../lib/providers/local/slurm-testbed.js";
import { runCommand } from "../../scheduler-plugins/slurm/exec.js";
import { type ApiBed, apiBed, VALID_CREATE } from "../support/api-bed.js";
import { startDynalite, type TestDynamo } from "../support/dynalite.js";

/**
 * The node setup of a running cluster on the real Slurm: a storage option and an inline init script
 * added through the API handler (lib/control/storage.ts on dynalite), then a node launched in a local
 * instance with the boot script the scaler renders from the cluster record (localComputeUserData, the
 * deployed renderer). The node mounts the storage before it joins (mount(8) → the instances' stand-in
 * mount.nfs, since this kernel has no NFS: lib/providers/local/testbed-nodes.ts), runs the init script,
 * and a job on it sees both. A mount deleted afterwards is not made by the next node. And on a node
 * already running: the agent's set-node-storage (the bundle's command, as SSM runs it on a master)
 * writes slurm.conf's storage line, reconfigure sends it to the node, whose storage sync mounts it, and
 * unmounts it after the deletion.
 * Own bridge, subnet, ports and prefix; run under `flock /work/notes/slurm.lock`.
 */
const PREFIX = "nsst-";
const SUBNET = "192.168.227";
const REGION = "eu-west-3";
const TYPE = "local.c1m1";
const MARKER_SCRIPT = `#!/bin/sh
set -eu
echo "$NOWSCALE_NODE_ROLE $NOWSCALE_CLUSTER_ID" > /var/lib/nowscale/init-marker
echo "init: marker written"
`;

describe("storage options and init scripts reach new nodes of a running cluster (real Slurm)", () => {
  let tb: Testbed;
  let db: TestDynamo;
  let api: ApiBed;
  let clusterId = "";
  let provider: CloudProvider;
  let exportRoot: string;
  let bundle: string;

  beforeAll(async () => {
    const unavailable = testbedUnavailableReason();
    if (unavailable !== undefined) throw new Error(`the real-Slurm suite cannot run here: ${unavailable}`);
    const stateDir = await mkdtemp(join(tmpdir(), "nowscale-storage-"));
    tb = await startTestbed({
      stateDir,
      clusterName: "storagetest",
      queues: [{ name: "compute" }],
      network: { bridge: `${PREFIX}br`, hostAddress: `${SUBNET}.1` },
      netnsPrefix: PREFIX,
      slurmctldPort: 8117,
      slurmdPort: 8118,
    });
    exportRoot = join(stateDir, "exports");
    await mkdir(join(exportRoot, "projects"), { recursive: true });
    await writeFile(join(exportRoot, "projects", "hello"), "from the export\n");
    provider = createLocalProvider({
      nodes: testbedNamespaceNodes(tb, { cloud: "aws", region: REGION, nfsExportRoot: exportRoot }),
      stateDir: join(stateDir, "records"),
      zones: [`${REGION}a`],
      subnetPrefix: SUBNET,
      firstHost: 10,
      lastHost: 19,
    });
    bundle = join(stateDir, "nowscale-agent.js");
    await build({
      entryPoints: [join(import.meta.dirname, "..", "..", "agent", "cli.ts")],
      bundle: true,
      platform: "node",
      target: "node20",
      format: "esm",
      keepNames: true,
      outfile: bundle,
      logLevel: "error",
    });
    db = await startDynalite();
    api = await apiBed(db);
    const created = await api.call("POST", "/clusters", {
      ...VALID_CREATE,
      // The region the local instance endpoints serve: the boot script asks its secret store there.
      region: REGION,
      autoscaling: {
        catalogs: [],
        instanceTypes: { [TYPE]: { vcpus: 1, memoryMiB: 1024 } },
        queueConfigs: [
          {
            queueName: "compute",
            maxSize: 4,
            scaleUpMemRatio: 1,
            expansionNodeConfigs: [{ zone: `${REGION}a`, instanceType: TYPE }],
          },
        ],
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(202);
    clusterId = created.body.clusterId;
    const c = (await api.store.getCluster(clusterId)) as ClusterRecord;
    await api.store.updateCluster(clusterId, c.version, { status: "RUNNING", now: api.clock.now() });
  }, 180_000);

  afterAll(async () => {
    await db?.close();
    if (tb !== undefined) await stopTestbed(tb);
  }, 180_000);

  /** Launches one node with the boot script rendered from the cluster record as it is now. */
  async function launchNode(): Promise<string> {
    const cluster = (await api.store.getCluster(clusterId)) as ClusterRecord;
    const launch: Launch = {
      queue: "compute",
      instanceType: TYPE,
      zone: `${REGION}a`,
      count: 1,
      candidates: [{ instanceType: TYPE, zone: `${REGION}a`, chargeType: "ON_DEMAND" }],
      allOrNothing: true,
      jobs: [],
      reason: "test",
    };
    const userData = localComputeUserData(tb, "aws")(cluster, launch);
    if (userData === undefined) throw new Error("no user data rendered");
    const result = await provider.launch({
      clusterId,
      queue: "compute",
      round: `r-${Date.now()}`,
      candidates: launch.candidates,
      count: 1,
      allOrNothing: true,
      imageId: "local",
      userData,
    });
    const id = result.instances[0]?.id;
    if (id === undefined) throw new Error(`launch failed: ${result.failures[0]?.error.message}`);
    for (let i = 0; i < 120; i++) {
      const text = (await provider.consoleOutput?.(id, 30)) ?? "";
      if (/user data exited with [1-9]/.test(text)) throw new Error(`the boot of ${id} failed:\n${text}`);
      try {
        await waitForNode(tb, id, ["IDLE"], 500);
        return id;
      } catch {
        await sleep(100);
      }
    }
    throw new Error(`${id} did not join within 60 s:\n${(await provider.consoleOutput?.(id, 30)) ?? ""}`);
  }

  /** Runs a shell command as a job on the node; answers its output. */
  async function onNode(node: string, command: string): Promise<string> {
    const out = join(tb.stateDir, `job-${node}-${Date.now()}.out`);
    const r = await runCommand(
      "sbatch",
      ["--wait", "-p", "compute", "-w", node, `--output=${out}`, "--wrap", command],
      { env: tb.env, timeoutMs: 120_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    return (await readFile(out, "utf8")).trim();
  }

  it("a mount and an init script added to the running cluster are made by the next node before it joins", async () => {
    // Prepare
    const storage = {
      protocol: "NFS 4.0",
      remotePath: `${tb.controlAddress}:/projects`,
      localPath: "/mnt/projects",
    };
    const added = await api.call("POST", `/clusters/${clusterId}/storage`, storage);
    const scripts = await api.call("PUT", `/clusters/${clusterId}/init-scripts`, {
      initScripts: [{ inline: MARKER_SCRIPT, timeoutS: 60 }],
    });

    // Act
    const node = await launchNode();
    const seen = await onNode(
      node,
      "mountpoint -q /mnt/projects && cat /mnt/projects/hello; cat /var/lib/nowscale/init-marker",
    );

    // Assess
    expect(added.status, JSON.stringify(added.body)).toBe(200);
    expect(scripts.status, JSON.stringify(scripts.body)).toBe(200);
    expect(seen).toBe(`from the export\nCOMPUTE ${clusterId}`);
    const console = (await provider.consoleOutput?.(node, 400)) ?? "";
    expect(console).toContain(`mount.nfs (local stand-in): ${tb.controlAddress}:/projects on /mnt/projects`);
    expect(console).toContain("init: marker written");
    expect(console.indexOf("init: marker written")).toBeLessThan(console.indexOf("starting slurmd -Z"));
    await provider.terminate([node]);
  }, 240_000);

  it("a deleted mount and cleared init scripts are not made by the next node", async () => {
    // Prepare
    const deleted = await api.call(
      "DELETE",
      `/clusters/${clusterId}/storage`,
      undefined,
      {},
      {
        localPath: "/mnt/projects",
      },
    );
    const cleared = await api.call("PUT", `/clusters/${clusterId}/init-scripts`, { initScripts: [] });

    // Act
    const node = await launchNode();
    const seen = await onNode(
      node,
      "mountpoint -q /mnt/projects && echo mounted || echo unmounted; test -e /var/lib/nowscale/init-marker && echo marker || echo no-marker",
    );

    // Assess
    expect(deleted.status).toBe(200);
    expect(cleared.status).toBe(200);
    expect(seen).toBe("unmounted\nno-marker");
    await provider.terminate([node]);
  }, 240_000);

  it("a mount added while a node runs is mounted there by its storage sync, and unmounted once deleted", async () => {
    // Prepare: a node without the mount; the master's agent as SSM runs it (the bundle's command)
    const node = await launchNode();
    const master: Pick<AgentChannel, "setNodeStorage"> = {
      setNodeStorage: async (storage: readonly NodeStorageSpec[]) => {
        const r = await runCommand(
          process.execPath,
          [bundle, "set-node-storage", "--storage", JSON.stringify({ storage })],
          { env: tb.env, timeoutMs: 60_000 },
        );
        if (r.code !== 0) throw new Error(`set-node-storage: exit ${r.code}: ${r.stdout} ${r.stderr}`);
        return { changed: (JSON.parse(r.stdout) as { changed: boolean }).changed };
      },
    };
    api.deps.runtime = async () => ({ provider, agent: master as AgentChannel });
    const probe = "mountpoint -q /mnt/live && cat /mnt/live/hello || echo unmounted";
    const until = async (want: string) => {
      let seen = "";
      for (let i = 0; i < 20 && seen !== want; i++) {
        seen = await onNode(node, probe);
        if (seen !== want) await sleep(3000);
      }
      return seen;
    };
    const storage = {
      protocol: "NFS 3.0",
      remotePath: `${tb.controlAddress}:/projects`,
      localPath: "/mnt/live",
    };

    // Act
    const before = await onNode(node, probe);
    const added = await api.call("POST", `/clusters/${clusterId}/storage`, storage);
    const started = Date.now();
    const mounted = await until("from the export");
    const mountedAfterS = (Date.now() - started) / 1000;
    const line = (await readFile(tb.confPath, "utf8"))
      .split("\n")
      .filter((l) => l.startsWith("#nowscale-storage "));
    const deleted = await api.call(
      "DELETE",
      `/clusters/${clusterId}/storage`,
      undefined,
      {},
      {
        localPath: "/mnt/live",
        force: "true",
      },
    );
    const unmounted = await until("unmounted");

    // Assess
    expect(before).toBe("unmounted");
    expect(added.status, JSON.stringify(added.body)).toBe(200);
    expect(added.body.runningNodes).toBe("synced");
    expect(line).toHaveLength(1);
    expect(mounted).toBe("from the export");
    console.log(
      `storage sync: mounted on the running node ${mountedAfterS.toFixed(1)} s after the API answered`,
    );
    expect(deleted.status, JSON.stringify(deleted.body)).toBe(200);
    expect(unmounted).toBe("unmounted");
    expect(await readFile(tb.confPath, "utf8")).not.toContain("#nowscale-storage ");
    await provider.terminate([node]);
  }, 240_000);
});
