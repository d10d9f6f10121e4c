import { existsSync } from "node:fs";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sleep } from "../../lib/providers/local/netns.js";
import {
  startSlurmctld,
  startTestbed,
  stopSlurmctld,
  stopTestbed,
  type Testbed,
  testbedUnavailableReason,
} from "../../lib/providers/local/slurm-testbed.js";
import { addTestbedNode, removeTestbedNode } from "../../lib/providers/local/testbed-nodes.js";
import { runCommand } from "../../scheduler-plugins/slurm/exec.js";
import { placementFeatures } from "../../scheduler-plugins/slurm/features.js";
import { PREVIOUS_CONF_SUFFIX } from "../../scheduler-plugins/slurm/partition-apply.js";

/**
 * A queue added to and removed from a live Slurm through the agent's set-partitions (the command SSM runs
 * on a master): slurm.conf rewritten, `scontrol reconfigure`, the partition seen by sinfo, a node with
 * the queue's feature joining it and running a job, and a reconfigure that fails (slurmctld stopped)
 * rolled back to the previous file. Own bridge, subnet, ports and prefix; run under the shared lock.
 */
describe("queues on a live Slurm (agent set-partitions)", () => {
  const prefix = "nsqu-";
  let tb: Testbed;
  let bundle: string;

  const slurm = async (file: string, args: string[]) => {
    const r = await runCommand(file, args, { env: tb.env, timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`${file} ${args.join(" ")}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const partitions = async () => (await slurm("sinfo", ["-h", "-o", "%R"])).split("\n").sort();
  const setPartitions = async (names: string[]) => {
    const json = JSON.stringify({ partitions: names.map((name) => ({ name })) });
    const r = await runCommand(process.execPath, [bundle, "set-partitions", "--partitions", json], {
      env: tb.env,
      timeoutMs: 60_000,
    });
    return { code: r.code, answer: JSON.parse(r.stdout) as Record<string, unknown> };
  };
  const until = async <T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000) => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const value = await probe();
      if (value !== undefined) return value;
      await sleep(500);
    }
    throw new Error(`timed out waiting for ${what}`);
  };

  beforeAll(async () => {
    const unavailable = testbedUnavailableReason();
    if (unavailable !== undefined) throw new Error(`the real-Slurm suite cannot run here: ${unavailable}`);
    const stateDir = await mkdtemp(join(tmpdir(), "nowscale-queues-test-"));
    bundle = join(stateDir, "nowscale-agent.js");
    await build({
      entryPoints: [join(import.meta.dirname, "..", "..", "agent", "cli.ts")],
      bundle: true,
      platform: "node",
      target: "node20",
      format: "esm",
      minify: true,
      keepNames: true,
      outfile: bundle,
      logLevel: "error",
    });
    tb = await startTestbed({
      stateDir,
      clusterName: "queuetest",
      queues: [{ name: "compute" }],
      network: { bridge: `${prefix}br`, hostAddress: "192.168.236.1" },
      netnsPrefix: prefix,
      slurmctldPort: 7717,
      slurmdPort: 7718,
    });
  }, 180_000);

  afterAll(async () => {
    if (tb !== undefined) {
      await removeTestbedNode(tb, "gpu-a").catch(() => undefined);
      await stopTestbed(tb);
    }
  }, 180_000);

  it("adds a queue: its partition is in sinfo and a node with its feature runs a job there", async () => {
    // Act
    const added = await setPartitions(["compute", "gpu"]);
    await addTestbedNode(tb, {
      name: "gpu-a",
      address: "192.168.236.11",
      cpus: 2,
      realMemoryMiB: 2000,
      features: placementFeatures({ queue: "gpu", instanceType: "local.c2m2", zone: "local-a" }),
    });
    const job = await slurm("sbatch", ["--parsable", "--output=/dev/null", "-p", "gpu", "--wrap", "sleep 5"]);
    const ranOn = await until("the job to run on the gpu node", async () => {
      // No accounting in the test bed: the node is read while the job runs (5 s, polled every 0.5 s).
      const node = (await slurm("squeue", ["-h", "-j", job, "-o", "%N"]).catch(() => "")).trim();
      return node === "" ? undefined : node;
    });

    // Assess
    expect(added.code, JSON.stringify(added.answer)).toBe(0);
    expect(added.answer).toMatchObject({ ok: true, added: ["gpu"], removed: [], changed: true });
    expect(await partitions()).toEqual(["compute", "gpu"]);
    expect(ranOn).toBe("gpu-a");
    expect(await readFile(`${tb.confPath}${PREVIOUS_CONF_SUFFIX}`, "utf8")).not.toContain("ns_gpu");
  });

  it("rolls back to the previous slurm.conf when reconfigure fails (slurmctld stopped)", async () => {
    // Prepare
    const before = await readFile(tb.confPath, "utf8");
    await stopSlurmctld(tb);

    // Act
    const failed = await setPartitions(["compute"]).finally(() => startSlurmctld(tb));

    // Assess
    expect(failed.code).toBe(2);
    expect(String(failed.answer.error)).toMatch(/rolled back/);
    expect(await readFile(tb.confPath, "utf8")).toBe(before);
    expect(await partitions()).toEqual(["compute", "gpu"]);
  });

  it("refuses a hostile name without touching slurm.conf", async () => {
    // Prepare
    const before = await readFile(tb.confPath, "utf8");

    // Act
    const hostile = await setPartitions(["compute", "x\nSlurmUser=nobody"]);

    // Assess
    expect(hostile.code).toBe(64);
    expect(String(hostile.answer.error)).toContain("partitions[1].name");
    expect(await readFile(tb.confPath, "utf8")).toBe(before);
  });

  it("removes the queue once its node is gone: the partition leaves sinfo", async () => {
    // Prepare
    await removeTestbedNode(tb, "gpu-a");

    // Act
    const removed = await setPartitions(["compute"]);

    // Assess
    expect(removed.code, JSON.stringify(removed.answer)).toBe(0);
    expect(removed.answer).toMatchObject({ removed: ["gpu"], partitions: ["compute"] });
    expect(await partitions()).toEqual(["compute"]);
    expect(existsSync(`${tb.confPath}${PREVIOUS_CONF_SUFFIX}`)).toBe(true);
  });
});
