import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { handleApiRequest } from "../../lib/control/api/routes.js";
import { type LocalControlPlane, startLocalControlPlane } from "../../lib/local/control-plane.js";
import { startScalerLoop } from "../../lib/local/scaler-loop.js";
import { DEFAULT_SETTINGS, type LocalSettings, localPaths } from "../../lib/local/settings.js";
import { createNamespaceNode, listNamespaceNodes, sleep } from "../../lib/providers/local/netns.js";
import {
  startSlurmctld,
  startTestbed,
  stopSlurmctld,
  stopTestbed,
  type Testbed,
  testbedUnavailableReason,
  waitForNode,
} from "../../lib/providers/local/slurm-testbed.js";
import { LOCAL_MUNGE_SECRET } from "../../lib/providers/local/testbed-nodes.js";
import { runCommand } from "../../scheduler-plugins/slurm/exec.js";

/**
 * Attach mode end to end on a real Slurm 22.05 (docs/attach.md): a plain master NowScale did not set up
 * (the user's own partitions, the user's own node running the user's own job), readied by the
 * documented install command (`nowscale-agent install`: the slurm.conf lines it prints applied as a user
 * would, the agent run from the systemd unit it writes), attached through the API of the local mode's
 * control plane, a job on the attached partition served by a local instance that joins the user's
 * slurmctld configless and runs it, idle → shrink, then detach while a job runs on a NowScale node:
 * only NowScale's node and Slurm entries go, the master runs on with its own configuration.
 * Its own bridge, subnet, ports and prefix; run under `flock /work/notes/slurm.lock`.
 */

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const BUNDLE = join(ROOT, "dist/agent/nowscale-agent.js");
const PREFIX = "nsat-";
const SUBNET = "192.168.243";
const HOST = `${SUBNET}.1`;
const AGENT_PORT = 7787;

/** The user's own part of slurm.conf: their node set and partitions; no configless, no NowScale NodeSet. */
const USER_CONF = [
  "SelectType=select/cons_tres",
  "SelectTypeParameters=CR_Core_Memory",
  "MaxNodeCount=64",
  "ReturnToService=2",
  "SchedulerParameters=sched_interval=2,bf_interval=2",
  "NodeSet=mine Feature=mine",
  "PartitionName=debug Nodes=mine Default=YES State=UP MaxTime=INFINITE",
  "PartitionName=burst Nodes=mine State=UP MaxTime=INFINITE",
  "",
].join("\n");

const CONFIG = {
  expansionBusyTime: 0,
  shrinkIdleTime: 10,
  instanceTypes: { "local.c1m1": { vcpus: 1, memoryMiB: 1024 } },
  queueConfigs: [
    {
      queueName: "burst",
      maxSize: 2,
      scaleUpMemRatio: 1,
      expansionNodeConfigs: [{ zone: "local-a", instanceType: "local.c1m1" }],
    },
  ],
};

/** The lines the install command printed, applied as a user would: "replaces" lines replace, the rest append. */
function applyConfLines(conf: string, printed: string): string {
  const block = /--- slurm\.conf ---\n([\s\S]*?)\n--- end ---/.exec(printed)?.[1];
  if (block === undefined) throw new Error(`no slurm.conf lines in:\n${printed}`);
  let lines = conf.split("\n");
  let replaces = false;
  for (const line of block.split("\n")) {
    if (line.startsWith("# replaces")) {
      replaces = true;
      continue;
    }
    if (line.startsWith("#")) continue;
    // The line it replaces: the same partition, or the same setting.
    const first = line.split(/\s+/)[0] as string;
    const key = first.startsWith("PartitionName=") ? first : `${first.split("=")[0]}=`;
    const at = lines.findIndex((l) => (key.endsWith("=") ? l.startsWith(key) : l.split(/\s+/)[0] === key));
    if (replaces && at >= 0) lines[at] = line;
    else lines = [...lines.filter((l) => l !== ""), line, ""];
    replaces = false;
  }
  return lines.join("\n");
}

describe("attach an existing Slurm master (real Slurm, local mode)", () => {
  let stateDir: string;
  let tb: Testbed;
  let cp: LocalControlPlane | undefined;
  let stopLoop: (() => Promise<void>) | undefined;
  let agent: ChildProcess | undefined;
  /** Slurm's partitions once the user's slurm.conf is ready, before anything is attached. */
  let partitionsBefore = "";
  const log: string[] = [];
  const slurm = async (file: string, args: string[]) => {
    const r = await runCommand(file, args, { env: tb.env, timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`${file} ${args.join(" ")}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const install = () =>
    spawnSync(
      process.execPath,
      [
        BUNDLE,
        "install",
        "--partitions",
        "burst",
        "--listen",
        `${HOST}:${AGENT_PORT}`,
        "--root",
        join(stateDir, "root"),
        "--slurm-conf",
        tb.confPath,
      ],
      { encoding: "utf8", env: tb.env, timeout: 60_000 },
    );
  const api = async (method: string, path: string, body?: unknown) => {
    if (cp === undefined) throw new Error("no control plane");
    const res = await handleApiRequest(cp.api, {
      method,
      path,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      query: {},
      body: body === undefined ? null : JSON.stringify(body),
    });
    return { status: res.statusCode, body: JSON.parse(res.body) };
  };
  const jobField = async (id: string, field: string) =>
    new RegExp(`(?:^|\\s)${field}=(\\S+)`).exec(await slurm("scontrol", ["show", "job", id]))?.[1] ?? "";
  const waitFor = async (what: string, ok: () => Promise<boolean>, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await ok())) {
      if (Date.now() > deadline)
        throw new Error(`${what}: not within ${timeoutMs} ms\n${log.slice(-30).join("\n")}`);
      await sleep(500);
    }
  };

  beforeAll(async () => {
    const unavailable = testbedUnavailableReason();
    if (unavailable !== undefined) throw new Error(`the real-Slurm suite cannot run here: ${unavailable}`);
    if (!existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: run npm run build first`);
    stateDir = await mkdtemp(join(tmpdir(), "nowscale-attach-"));
    tb = await startTestbed({
      stateDir,
      clusterName: "theirs",
      network: { bridge: `${PREFIX}br`, hostAddress: HOST },
      netnsPrefix: PREFIX,
      slurmctldPort: 7717,
      slurmdPort: 7718,
      ownParts: USER_CONF,
    });
    // The user's own node (feature "mine": not NowScale's) and the user's own long job on it.
    await createNamespaceNode({
      name: "own1",
      netnsPrefix: PREFIX,
      bridge: `${PREFIX}br`,
      address: `${SUBNET}.20`,
      cpus: 1,
      realMemoryMiB: 500,
      features: ["mine"],
      slurmConf: tb.confPath,
      spoolDir: join(stateDir, "spool", "own1"),
    });
    await waitForNode(tb, "own1", ["IDLE"], 60_000);
  }, 180_000);

  afterAll(async () => {
    await stopLoop?.().catch(() => undefined);
    if (cp !== undefined) {
      const ids = (await cp.cloud.list("").catch(() => [])).map((i) => i.id);
      for (const c of await cp.store.listClusters().catch(() => []))
        ids.push(...(await cp.cloud.list(c.clusterId)).map((i) => i.id));
      if (ids.length > 0) await cp.cloud.terminate([...new Set(ids)]).catch(() => undefined);
      await cp.close().catch(() => undefined);
    }
    if (agent?.pid !== undefined && agent.exitCode === null) agent.kill("SIGTERM");
    if (tb !== undefined) await stopTestbed(tb);
    expect(await listNamespaceNodes(PREFIX)).toEqual([]);
  }, 180_000);

  it("the install command prints the missing slurm.conf lines, then says ready once they are in; the key stays on the master", async () => {
    // Act: install on the plain master, apply its lines, restart slurmctld, install again
    const first = install();
    const conf = await readFile(tb.confPath, "utf8");
    await writeFile(tb.confPath, applyConfLines(conf, first.stdout));
    await stopSlurmctld(tb);
    await startSlurmctld(tb);
    const second = install();
    partitionsBefore = await slurm("scontrol", ["--oneliner", "show", "partition"]);
    const keyFile = join(stateDir, "root/etc/nowscale/agent.key");
    const key = (await readFile(keyFile, "utf8")).trim();
    const keyMode = (await stat(keyFile)).mode & 0o777;
    const unit = await readFile(join(stateDir, "root/etc/systemd/system/nowscale-agent.service"), "utf8");

    // Assess
    expect(first.status, first.stderr).toBe(3);
    expect(first.stdout).toContain("missing: SlurmctldParameters lacks enable_configless");
    expect(first.stdout).toContain("NodeSet=nowscale_burst Feature=q_burst");
    expect(first.stdout).toContain("PartitionName=burst Nodes=mine,nowscale_burst State=UP MaxTime=INFINITE");
    expect(first.stdout).toContain("signing key generated");
    expect(second.status, second.stdout + second.stderr).toBe(0);
    expect(second.stdout).toContain("signing key kept");
    expect(second.stdout).toContain("partition burst: takes NowScale's nodes through NodeSet nowscale_burst");
    expect(second.stdout).toContain("ready: attach partitions burst");
    expect(second.stdout).toContain(`slurmctld at ${HOST}:7717`);
    expect(first.stdout + second.stdout).not.toContain(key);
    expect(Buffer.byteLength(key)).toBeGreaterThanOrEqual(32);
    expect(keyMode).toBe(0o400);
    expect(unit).toContain(`Environment=NOWSCALE_AGENT_LISTEN=${HOST}:${AGENT_PORT}`);
    expect(unit).toContain(
      `ExecStart=${process.execPath} ${join(stateDir, "root/opt/nowscale/nowscale-agent.js")} serve`,
    );

    // Act: run the agent as the unit says (no systemd here): its Environment= lines and ExecStart.
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH };
    for (const m of unit.matchAll(/^Environment=([A-Z_]+)=(.*)$/gm)) env[m[1] as string] = m[2];
    const [file, ...args] = (/^ExecStart=(.*)$/m.exec(unit)?.[1] ?? "").split(" ");
    agent = spawn(file as string, args, { env, stdio: ["ignore", "ignore", "pipe"] });
    const listening = await new Promise<string>((resolve, reject) => {
      let text = "";
      agent?.stderr?.on("data", (d: Buffer) => {
        text += d.toString();
        if (text.includes('"listening"')) resolve(text);
      });
      agent?.once("exit", (code) => reject(new Error(`agent exited ${code}: ${text}`)));
    });
    expect(listening).toContain(`"port":${AGENT_PORT}`);
  });

  it("attach → a job on the attached partition runs on a launched node that joined configless → idle → shrink", async () => {
    // Prepare: the local mode's control plane (dynalite, API, scaler loop, workflows) on the user's
    // master's network; its default agent key is unused here.
    const settings: LocalSettings = {
      ...DEFAULT_SETTINGS,
      stateDir: join(stateDir, "local"),
      agentPort: 7799,
      slurmctldPort: 7717,
      slurmdPort: 7718,
      prefix: "nsat-",
      subnet: SUBNET,
      scalerIntervalSeconds: 1,
      bootDelayMs: 200,
    };
    await mkdir(localPaths(settings.stateDir).runDir, { recursive: true });
    await writeFile(localPaths(settings.stateDir).agentKey, randomBytes(48).toString("base64"), {
      mode: 0o600,
    });
    cp = await startLocalControlPlane(settings, tb, (line) => log.push(line));
    const wrongKey = join(stateDir, "wrong.key");
    await writeFile(wrongKey, randomBytes(48).toString("base64"), { mode: 0o400 });
    const request = {
      name: "theirs",
      cloud: "local",
      region: "local",
      master: {
        channel: "http",
        url: `http://${HOST}:${AGENT_PORT}`,
        agentKeySecret: join(stateDir, "root/etc/nowscale/agent.key"),
        mungeKeySecret: LOCAL_MUNGE_SECRET,
      },
      autoscaling: CONFIG,
    };
    const confBefore = await readFile(tb.confPath, "utf8");
    const userJob = await slurm("sbatch", [
      "--parsable",
      "-p",
      "debug",
      "--output=/dev/null",
      "--wrap",
      "sleep 600",
    ]);
    await waitFor(
      "the user's job runs",
      async () => (await jobField(userJob, "JobState")) === "RUNNING",
      30_000,
    );

    // Act: a wrong key, then the right one
    const refused = await api("POST", "/clusters/attach", {
      ...request,
      master: { ...request.master, agentKeySecret: wrongKey },
    });
    const clustersAfterRefusal = await cp.store.listClusters();
    const attached = await api("POST", "/clusters/attach", request);
    const id = attached.body.clusterId as string;
    const loop = startScalerLoop(cp, 1000, (line) => log.push(line));
    stopLoop = () => loop.stop();
    const job = await slurm("sbatch", [
      "--parsable",
      "-p",
      "burst",
      "--output=/dev/null",
      "--wrap",
      "sleep 3",
    ]);
    await waitFor(
      "the burst job completes",
      async () => (await jobField(job, "JobState")) === "COMPLETED",
      120_000,
    );
    const ranOn = await jobField(job, "NodeList");
    const records = await cp.store.listNodes(id);
    const console = (await cp.cloud.consoleOutput?.(ranOn, 400)) ?? "";
    const cluster = await cp.store.getCluster(id);
    const record = records.find((r) => r.nodeName === ranOn);
    // The boot script the instance ran (its console shows it ran to its end): configless from the user's slurmctld.
    const userData =
      cluster === undefined || record === undefined
        ? ""
        : (cp.userData(cluster, {
            queue: record.queue,
            instanceType: record.instanceType,
            zone: record.zone,
            count: 1,
            candidates: [],
            allOrNothing: false,
            jobs: [],
            reason: "",
          }) ?? "");
    await waitFor(
      "the idle node is retired",
      async () => (await cp?.store.listNodes(id))?.length === 0,
      90_000,
    );
    const nodesAfterShrink = await slurm("sinfo", ["-h", "-N", "-o", "%N"]);

    // Assess
    expect(refused.status).toBe(422);
    expect(refused.body.issues[0].path).toBe("master.url");
    expect(refused.body.error).toContain("HTTP 401");
    expect(clustersAfterRefusal).toEqual([]);
    expect(attached.status, JSON.stringify(attached.body)).toBe(201);
    expect(attached.body.attachment).toMatchObject({
      controllerAddress: HOST,
      controllerPort: 7717,
      slurmVersion: "22.05.8",
    });
    expect(attached.body.checks.map((c: { message: string }) => c.message)).toContain(
      "partition burst takes nodes through NodeSet nowscale_burst",
    );
    expect(records.map((r) => r.nodeName)).toContain(ranOn);
    expect(console).toContain(`starting slurmd -Z as ${ranOn}`);
    expect(console).toContain("user data exited with 0");
    expect(userData).toContain(`CONF_SERVER='${HOST}:7717'`);
    expect(userData).toContain("--conf-server");
    expect([...new Set(nodesAfterShrink.split("\n"))]).toEqual(["own1"]);
    expect(await jobField(userJob, "JobState")).toBe("RUNNING");
    expect(await readFile(tb.confPath, "utf8")).toBe(confBefore);
  });

  it("detach while a job runs on NowScale's node: the node is drained and kept until the job ends, then only it goes; the master runs on", async () => {
    // Prepare: a job that keeps a launched node busy
    if (cp === undefined) throw new Error("the attach test did not run");
    const plane = cp;
    const id = (await plane.store.listClusters())[0]?.clusterId as string;
    const confBefore = createHash("sha256")
      .update(await readFile(tb.confPath))
      .digest("hex");
    const job = await slurm("sbatch", [
      "--parsable",
      "-p",
      "burst",
      "--output=/dev/null",
      "--wrap",
      "sleep 600",
    ]);
    await waitFor(
      "the job runs on a launched node",
      async () => (await jobField(job, "JobState")) === "RUNNING",
      120_000,
    );
    const node = await jobField(job, "NodeList");
    const placeholders = await slurm("scontrol", ["--future", "--oneliner", "show", "node"]);

    // Act: detach; the node must be drained and left running its job
    const detach = await api("POST", `/clusters/${id}/detach`);
    await waitFor(
      "the node is drained",
      async () => /State=\S*DRAIN/.test(await slurm("scontrol", ["show", "node", node])),
      60_000,
    );
    await sleep(5000);
    const duringJob = {
      state: await jobField(job, "JobState"),
      instances: (await plane.cloud.list(id)).map((i) => i.id),
    };
    await slurm("scancel", [job]);
    await waitFor("detached", async () => (await plane.store.getCluster(id))?.status === "DELETED", 120_000);

    // Assess
    expect(detach.status).toBe(202);
    expect(placeholders).toMatch(/NodeName=ph-\S+ .*State=FUTURE/);
    expect(duringJob).toEqual({ state: "RUNNING", instances: [node] });
    expect(await plane.cloud.list(id)).toEqual([]);
    expect([...new Set((await slurm("sinfo", ["-h", "-N", "-o", "%N"])).split("\n"))]).toEqual(["own1"]);
    expect(await slurm("scontrol", ["--future", "--oneliner", "show", "node"])).not.toContain("NodeName=ph-");
    expect(await slurm("scontrol", ["ping"])).toMatch(/is UP/);
    expect(
      createHash("sha256")
        .update(await readFile(tb.confPath))
        .digest("hex"),
    ).toBe(confBefore);
    expect(await slurm("scontrol", ["--oneliner", "show", "partition"])).toBe(partitionsBefore);
    expect(await listNamespaceNodes(PREFIX)).toEqual(["own1"]);
    const userJobs = await slurm("squeue", ["-h", "-p", "debug", "-o", "%T"]);
    expect(userJobs).toBe("RUNNING");
  });
});
