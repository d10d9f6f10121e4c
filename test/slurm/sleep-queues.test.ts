import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { demoCluster } from "../../lib/local/demo.js";
import { localPaths } from "../../lib/local/settings.js";
import { sleep } from "../../lib/providers/local/netns.js";
import { testbedUnavailableReason } from "../../lib/providers/local/slurm-testbed.js";
import { runCommand } from "../../scheduler-plugins/slurm/exec.js";
import { CLI, runCliAsync } from "../support/cli.js";
import { until } from "../support/until.js";

/**
 * Queues and sleep end to end on the local mode's real Slurm, as a user runs them (the built CLI):
 * `queue add` on a running cluster → its partition in `sinfo` and in `queue list` → a job submitted to
 * it → the scaler launches a node for it → the job runs. Then `sleep` while a job runs: that node is
 * kept and named, nothing is launched for a job queued meanwhile, `sleep --wait` returns once the node
 * is retired after its job, and `wake` runs the queued job. Its own prefix, subnet and ports keep it
 * apart from the other real-Slurm suites; run under `flock /work/notes/slurm.lock`.
 */
const PORTS = { api: 7680, agent: 7619, slurmctld: 7617, slurmd: 7618 };

interface NodeRow {
  node: string;
  queue: string;
  slurmState: string | null;
}

describe("queues and sleep on the local mode's real Slurm", () => {
  let stateDir = "";
  let configDir = "";
  let slurmEnv: NodeJS.ProcessEnv = {};

  const cli = (args: string[]) =>
    runCliAsync(args, { NOWSCALE_LOCAL_DIR: stateDir, NOWSCALE_CONFIG_DIR: configDir });
  const slurm = async (file: string, args: string[]) => {
    const r = await runCommand(file, args, { env: slurmEnv, timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`${file} ${args.join(" ")}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const submit = async (args: string[]) => slurm("sbatch", ["--parsable", "--output=/dev/null", ...args]);
  /** JobState and NodeList of a job, from `scontrol show job` (kept a while after it ends). */
  const job = async (id: string) => {
    const line = await slurm("scontrol", ["-o", "show", "job", id]);
    return {
      state: /JobState=(\S+)/.exec(line)?.[1] ?? "",
      nodes: /\sNodeList=(\S+)/.exec(line)?.[1] ?? "",
    };
  };
  const nodes = async (): Promise<NodeRow[]> => {
    const list = await cli(["nodes", "list", "--json"]);
    if (list.status !== 0) throw new Error(`nodes list: ${list.stderr}`);
    return JSON.parse(list.stdout).nodes as NodeRow[];
  };

  beforeAll(async () => {
    const unavailable = testbedUnavailableReason();
    if (unavailable !== undefined) throw new Error(`the real-Slurm suite cannot run here: ${unavailable}`);
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first`);
    stateDir = await mkdtemp(join(tmpdir(), "nowscale-sleepq-"));
    configDir = await mkdtemp(join(tmpdir(), "nowscale-sleepq-config-"));
    slurmEnv = { ...process.env, SLURM_CONF: join(localPaths(stateDir).slurmDir, "slurm.conf") };
    const up = await cli([
      "local",
      "up",
      "--state-dir",
      stateDir,
      "--port",
      String(PORTS.api),
      "--agent-port",
      String(PORTS.agent),
      "--slurmctld-port",
      String(PORTS.slurmctld),
      "--slurmd-port",
      String(PORTS.slurmd),
      "--prefix",
      "nssq-",
      "--subnet",
      "192.168.237",
      "--interval",
      "2",
      "--boot-delay",
      "200",
    ]);
    if (up.status !== 0) throw new Error(`local up failed: ${up.stdout}${up.stderr}`);
    const file = join(configDir, "cluster.json");
    await writeFile(file, JSON.stringify({ ...demoCluster(5), name: "sleepq" }));
    const created = await cli(["cluster", "create", "--file", file, "--wait", "--json"]);
    if (created.status !== 0) throw new Error(`cluster create failed: ${created.stderr}`);
    const use = await cli(["use", JSON.parse(created.stdout).clusterId]);
    if (use.status !== 0) throw new Error(`use failed: ${use.stderr}`);
  }, 300_000);

  afterAll(async () => {
    if (stateDir !== "") {
      const down = await cli(["local", "down", "--state-dir", stateDir]);
      expect(down.status, down.stderr).toBe(0);
      await rm(stateDir, { recursive: true, force: true });
    }
    if (configDir !== "") await rm(configDir, { recursive: true, force: true });
  }, 240_000);

  it("a queue added through the CLI is a partition in sinfo; a job there gets a node from the scaler and runs", async () => {
    // Act: the queue, through the API (the CLI)
    const added = await cli([
      "queue",
      "add",
      "--name",
      "extra",
      "--instance-type",
      "local.c1m1",
      "--zone",
      "local-a",
      "--max-size",
      "2",
    ]);
    const partitions = (await slurm("sinfo", ["-h", "-o", "%R"])).split("\n");
    const listed = await cli(["queue", "list", "--json"]);
    // Assess: Slurm has the partition, and queue list shows it next to the configuration
    expect(added.status, added.stderr).toBe(0);
    expect(partitions).toContain("extra");
    const queues = JSON.parse(listed.stdout).queues as {
      queueName: string;
      slurm: { partition?: { state: string } | null } | null;
    }[];
    expect(queues.find((q) => q.queueName === "extra")?.slurm?.partition).toEqual({
      state: "UP",
      default: false,
    });

    // Act: a job in the new queue
    const id = await submit(["-p", "extra", "-n1", "--wrap", "sleep 2"]);
    const seen = new Set<string>();
    const done = await until(`job ${id} to complete`, async () => {
      for (const n of await nodes()) if (n.queue === "extra") seen.add(n.node);
      const j = await job(id);
      return j.state === "COMPLETED" ? j : undefined;
    });
    // Assess: it ran on a node the scaler launched for the queue
    expect(seen.size).toBeGreaterThanOrEqual(1);
    expect(seen.has(done.nodes)).toBe(true);
    console.log(`queue extra: job ${id} ran on ${done.nodes}`);
  }, 300_000);

  it("sleep keeps the node running a job, launches nothing while asleep, --wait ends once it is retired (the local master left running, said why); wake runs the queued job", async () => {
    // Prepare: a job running on a node of queue compute
    const long = await submit(["-p", "compute", "-n1", "--wrap", "sleep 45"]);
    const busy = await until(`job ${long} to run`, async () => {
      const j = await job(long);
      return j.state === "RUNNING" ? j.nodes : undefined;
    });

    // Act: sleep, then a job queued while asleep
    const slept = await cli(["sleep", "--json"]);
    const queued = await submit(["-p", "compute", "-n1", "--wrap", "sleep 1"]);
    await sleep(8000);
    const whileAsleep = await nodes();
    const queuedState = (await job(queued)).state;

    // Assess: asleep, the busy node named and kept, nothing new launched, the job waits
    expect(slept.status, slept.stderr).toBe(0);
    const answer = JSON.parse(slept.stdout) as {
      status: string;
      waiting: { node: string; reason: string }[];
    };
    expect(answer.status).toBe("SLEEPING");
    expect(answer.waiting.map((w) => w.node)).toContain(busy);
    expect(whileAsleep.map((n) => n.node)).toEqual(answer.waiting.map((w) => w.node));
    expect(queuedState).toBe("PENDING");
    expect((await job(long)).state).toBe("RUNNING");

    // Act: wait for the running job's node to be retired, then wake
    const waited = await cli(["sleep", "--wait", "--timeout", "120", "--stop-master", "--json"]);
    const afterWait = await nodes();
    const longState = (await job(long)).state;
    const woken = await cli(["wake", "--json"]);
    const ran = await until(`job ${queued} to complete after wake`, async () => {
      const j = await job(queued);
      return j.state === "COMPLETED" ? j : undefined;
    });

    // Assess: the node was retired only after its job completed; awake, the queued job got a new node
    expect(waited.status, waited.stderr).toBe(0);
    expect(JSON.parse(waited.stdout).retired).toContain(busy);
    // The local mode's master is this machine's slurmctld: left running, and the answer says why
    expect(JSON.parse(waited.stdout).master).toMatchObject({
      state: "running",
      reason: expect.stringContaining("local down"),
    });
    expect(longState).toBe("COMPLETED");
    expect(afterWait).toEqual([]);
    expect(woken.status, woken.stderr).toBe(0);
    expect(JSON.parse(woken.stdout).status).toBe("RUNNING");
    expect(ran.nodes).not.toBe(busy);
    console.log(
      `sleep: ${busy} kept while job ${long} ran, retired after; job ${queued} ran on ${ran.nodes} after wake`,
    );
  }, 400_000);

  it("storage added in the local mode mounts the bridge's export on the node a job runs on", async () => {
    // Prepare: the export STATE_DIR/nfs-exports/shared (docs/local-mode.md, "storage") with a marker
    const exportDir = join(localPaths(stateDir).nfsExportRoot, "shared");
    await mkdir(exportDir, { recursive: true });
    await writeFile(join(exportDir, "marker"), "exported by the host\n");
    const out = join(stateDir, "storage-job.out");

    // Act: add the mount, then run a job that reads it on a node the scaler launches or has
    const added = await cli(["storage", "add", "--remote", "192.168.237.1:/shared", "--local", "/data"]);
    // A node already up mounts it through its storage sync (every 15 s), a new one at boot: wait for it.
    const read = "for i in $(seq 60); do [ -f /data/marker ] && break; sleep 1; done; cat /data/marker";
    const id = await slurm("sbatch", ["--parsable", `--output=${out}`, "--wrap", read]);
    const ran = await until(`job ${id} to complete`, async () => {
      const j = await job(id);
      return j.state === "COMPLETED" || j.state === "FAILED" ? j : undefined;
    });
    const deleted = await cli(["storage", "delete", "/data", "--force"]);

    // Assess: the job read the host's file through the node's mount
    expect(added.status, added.stderr).toBe(0);
    const output = await readFile(out, "utf8").catch(() => "");
    expect(ran.state, output).toBe("COMPLETED");
    expect(output).toBe("exported by the host\n");
    expect(deleted.status, deleted.stderr).toBe(0);
  }, 300_000);
});
