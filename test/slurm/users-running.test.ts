import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Launch } from "../../lib/core/model.js";
import { localComputeUserData } from "../../lib/local/user-data.js";
import { AgentActionError, type AgentChannel } from "../../lib/ports/agent-channel.js";
import type { CloudProvider } from "../../lib/ports/cloud-provider.js";
import { USER_GECOS, type UsersAnswer, type UsersRequest } from "../../lib/ports/cluster-users.js";
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
 * Cluster users on a compute node that was already running when they were added (issue 17): the node
 * boots with no users; `POST /clusters/{id}/users` (lib/control/users.ts on dynalite) has the master's
 * agent (the bundle's set-users, as SSM runs it) make the account on the master, this machine, and write
 * slurm.conf's users lines; `scontrol reconfigure` sends the file to the configless node, whose sync
 * (node-storage-sync.ts, every 15 s) creates the account with the same uid and gid. A job submitted as
 * the user runs there under that uid. Disabling expires the account on the node; deleting removes it
 * and keeps the home.
 *
 * The local instance's /etc is a copy-on-write overlay of this machine's, so a file the instance never
 * wrote still shows the host's edits: the test first has the node rewrite its own passwd, group, shadow
 * and gshadow (as every cloud node has its own), and checks the sync's own log, so the account on the
 * node is the sync's work. The user is made on this host and removed afterwards (home too: the test made
 * it). Own prefix, subnet and ports; run under `flock /work/notes/slurm.lock`.
 */
const PREFIX = "nsur-";
const SUBNET = "192.168.229";
const REGION = "eu-west-3";
const TYPE = "local.c1m1";
const USER = "runa";

describe("users added, disabled and deleted while a compute node runs (real Slurm)", () => {
  let tb: Testbed;
  let db: TestDynamo;
  let api: ApiBed;
  let clusterId = "";
  let provider: CloudProvider;
  let bundle = "";
  let node = "";
  let uid = 0;

  beforeAll(async () => {
    const unavailable = testbedUnavailableReason();
    if (unavailable !== undefined) throw new Error(`the real-Slurm suite cannot run here: ${unavailable}`);
    const existing = (await runCommand("getent", ["passwd", USER])).stdout.trim();
    if (existing !== "" && existing.split(":")[4] !== USER_GECOS)
      throw new Error(`this host has an account ${USER} of its own: the test would not touch it`);
    const stateDir = await mkdtemp(join(tmpdir(), "nowscale-users-running-"));
    tb = await startTestbed({
      stateDir,
      clusterName: "usersrunning",
      queues: [{ name: "compute" }],
      network: { bridge: `${PREFIX}br`, hostAddress: `${SUBNET}.1` },
      netnsPrefix: PREFIX,
      slurmctldPort: 8317,
      slurmdPort: 8318,
    });
    provider = createLocalProvider({
      nodes: testbedNamespaceNodes(tb, { cloud: "aws", region: REGION }),
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
      region: REGION,
      autoscaling: {
        catalogs: [],
        instanceTypes: { [TYPE]: { vcpus: 1, memoryMiB: 1024 } },
        queueConfigs: [
          {
            queueName: "compute",
            maxSize: 2,
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
    // The master's agent as SSM runs it: the bundle's set-users, on this machine and the testbed's slurm.conf.
    const master: Pick<AgentChannel, "setUsers"> = {
      setUsers: async (request: UsersRequest): Promise<UsersAnswer> => {
        const r = await runCommand(
          process.execPath,
          [bundle, "set-users", "--users", JSON.stringify(request)],
          {
            env: tb.env,
            timeoutMs: 120_000,
          },
        );
        if (r.code === 64) throw new AgentActionError(`set-users refused: ${r.stdout}`, 400);
        if (r.code !== 0) throw new Error(`set-users: exit ${r.code}: ${r.stdout} ${r.stderr}`);
        return JSON.parse(r.stdout) as UsersAnswer;
      },
    };
    api.deps.runtime = async () => ({ provider, agent: master as AgentChannel });
  }, 240_000);

  afterAll(async () => {
    // The user was made on this host by the test: account and home go (never another account).
    const entry = (await runCommand("getent", ["passwd", USER])).stdout.trim();
    if (entry.split(":")[4] === USER_GECOS) await runCommand("userdel", [USER]);
    if (existsSync(`/home/${USER}`)) await rm(`/home/${USER}`, { recursive: true, force: true });
    await db?.close();
    if (tb !== undefined) await stopTestbed(tb);
  }, 180_000);

  /** Runs a shell command as a root job on the node; answers its output. */
  async function onNode(command: string): Promise<string> {
    const out = join(tb.stateDir, `job-${Date.now()}.out`);
    const r = await runCommand(
      "sbatch",
      ["--wait", "-p", "compute", "-w", node, `--output=${out}`, "--wrap", command],
      { env: tb.env, timeoutMs: 120_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    return (await readFile(out, "utf8")).trim();
  }

  /** Polls `command` on the node until it prints `want` (the sync runs every 15 s); answers the seconds it took. */
  async function until(command: string, want: string, timeoutS = 60): Promise<number> {
    const started = Date.now();
    let seen = "";
    while (Date.now() - started < timeoutS * 1000) {
      seen = await onNode(command);
      if (seen === want) return (Date.now() - started) / 1000;
      await sleep(2000);
    }
    throw new Error(
      `the node said ${JSON.stringify(seen)}, not ${JSON.stringify(want)}, after ${timeoutS} s`,
    );
  }

  it("a node running before `users add` gets the account within ~30 s, and a job as the user runs there with the same uid", async () => {
    // Prepare: a node with no cluster users, its account files its own (as a cloud node's are)
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
    const launched = await provider.launch({
      clusterId,
      queue: "compute",
      round: `r-${Date.now()}`,
      candidates: launch.candidates,
      count: 1,
      allOrNothing: true,
      imageId: "local",
      userData,
    });
    node = launched.instances[0]?.id ?? "";
    expect(node, launched.failures[0]?.error.message).not.toBe("");
    await waitForNode(tb, node, ["IDLE"], 90_000);
    await onNode(
      "for f in passwd group shadow gshadow; do cp -p /etc/$f /etc/$f.own && mv -f /etc/$f.own /etc/$f; done",
    );
    const before = await onNode(`getent passwd ${USER} || echo none`);

    // Act
    const added = await api.call("POST", `/clusters/${clusterId}/users`, { name: USER });
    uid = added.body.uid;
    const tookS = await until(
      `id -u ${USER} 2>/dev/null; id -g ${USER} 2>/dev/null || true`,
      `${uid}\n${uid}`,
    );
    const out = `/home/${USER}/running-${Date.now()}.out`;
    const asUser = await runCommand(
      "su",
      [
        "-s",
        "/bin/sh",
        USER,
        "-c",
        `sbatch --wait --parsable -p compute -w ${node} --chdir=/home/${USER} --output=${out} --wrap 'id -u; id -g; hostname'`,
      ],
      { env: tb.env, timeoutMs: 120_000 },
    );
    const log = await onNode("cat /var/log/nowscale-storage-sync.log");

    // Assess
    expect(before).toBe("none");
    expect(added.status, JSON.stringify(added.body)).toBe(200);
    expect(asUser.code, asUser.stderr).toBe(0);
    expect((await readFile(out, "utf8")).trim().split("\n")).toEqual([String(uid), String(uid), node]);
    expect(log).toContain(`created user ${USER} (uid ${uid})`);
    expect(tookS).toBeLessThan(45);
    console.log(`users sync: ${USER} on the running node ${tookS.toFixed(1)} s after the API answered`);
  }, 300_000);

  it("disabling expires the account on the running node", async () => {
    // Act
    const disabled = await api.call("POST", `/clusters/${clusterId}/users/${USER}/disable`);
    const tookS = await until(`getent shadow ${USER} | cut -d: -f8`, "1");
    const enabled = await api.call("POST", `/clusters/${clusterId}/users/${USER}/enable`);
    const backS = await until(`getent shadow ${USER} | cut -d: -f8`, "");

    // Assess
    expect(disabled.status, JSON.stringify(disabled.body)).toBe(200);
    expect(enabled.status, JSON.stringify(enabled.body)).toBe(200);
    expect(await onNode("cat /var/log/nowscale-storage-sync.log")).toContain(`disabled ${USER}`);
    console.log(
      `users sync: disabled after ${tookS.toFixed(1)} s, enabled again after ${backS.toFixed(1)} s`,
    );
  }, 300_000);

  it("deleting removes the account from the running node and keeps the home", async () => {
    // Act
    const deleted = await api.call("DELETE", `/clusters/${clusterId}/users/${USER}`);
    const tookS = await until(`getent passwd ${USER} || echo gone`, "gone");
    const home = await onNode(`test -d /home/${USER} && echo kept || echo removed`);

    // Assess
    expect(deleted.status, JSON.stringify(deleted.body)).toBe(200);
    expect(home).toBe("kept");
    expect(await onNode("cat /var/log/nowscale-storage-sync.log")).toContain(
      `removed user ${USER}, files kept`,
    );
    console.log(`users sync: removed after ${tookS.toFixed(1)} s`);
    await provider.terminate([node]);
  }, 300_000);
});
