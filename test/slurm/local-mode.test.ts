import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { readApiToken } from "../../lib/local/api-auth.js";
import { demoCluster } from "../../lib/local/demo.js";
import { localPaths } from "../../lib/local/settings.js";
import { readLocalState } from "../../lib/local/state-file.js";
import { listNamespaceNodes, sleep, vethName } from "../../lib/providers/local/netns.js";
import { testbedUnavailableReason } from "../../lib/providers/local/slurm-testbed.js";
import { runCommand } from "../../scheduler-plugins/slurm/exec.js";
import { CLI } from "../support/cli.js";
import { asNobodyCommand, inRepo } from "../support/nobody.js";

/**
 * `nowscale local up/down` as a user runs them (the built CLI, a background supervisor, real Slurm):
 * a cluster created through the API grows to its jobs and shrinks to zero, and `local down` leaves
 * nothing behind, also after the supervisor was killed with SIGKILL mid-run; its API refuses callers
 * without the token (also the unprivileged user nobody) and the CLI as root finds it alone. Its own prefix, subnet and
 * ports keep it apart from the other real-Slurm suites; run by hand under `flock /tmp/slurm-test.lock`.
 */
const PREFIX = "nslm-";
const SUBNET = "192.168.254";
const PORTS = { api: 7380, agent: 7319, slurmctld: 7317, slurmd: 7318 };
const API = `http://127.0.0.1:${PORTS.api}`;

/** The demo's cluster (examples/local-cluster.json), named for this test, shrinking after 5 s idle. */
const CLUSTER = { ...demoCluster(5), name: "e2e" };

function cli(args: string[], timeoutMs = 240_000) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: timeoutMs });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** Like cli() without blocking the event loop, so the test can watch the machine meanwhile. */
function cliAsync(args: string[], timeoutMs: number): Promise<{ status: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { timeout: timeoutMs });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString("utf8");
    });
    child.stderr.on("data", (d: Buffer) => {
      out += d.toString("utf8");
    });
    child.on("close", (status) => resolve({ status, out }));
  });
}

function upOptions(stateDir: string): string[] {
  return [
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
    PREFIX,
    "--subnet",
    SUBNET,
    "--interval",
    "2",
    "--boot-delay",
    "200",
  ];
}

function up(stateDir: string) {
  return cli(["local", "up", ...upOptions(stateDir)]);
}

/** The running local mode's API token (read after `up`, as root). */
let apiToken = "";

async function api(path: string, init: RequestInit = {}): Promise<{ status: number; body: unknown }> {
  // The API takes bodies sent as application/json only (fetch would label a string text/plain).
  const auth = { authorization: `Bearer ${apiToken}` };
  const headers =
    init.body === undefined
      ? { ...auth, ...init.headers }
      : { "content-type": "application/json", ...auth, ...init.headers };
  const res = await fetch(`${API}${path}`, { ...init, ...(headers === undefined ? {} : { headers }) });
  return { status: res.status, body: await res.json() };
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await sleep(500);
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
}

async function createRunningCluster(): Promise<string> {
  const created = await api("/clusters", { method: "POST", body: JSON.stringify(CLUSTER) });
  expect(created.status).toBe(202);
  const id = (created.body as { clusterId: string }).clusterId;
  await waitFor(
    "the cluster to be RUNNING",
    async () => ((await api(`/clusters/${id}`)).body as { status: string }).status === "RUNNING" || undefined,
    60_000,
  );
  return id;
}

function slurm(stateDir: string) {
  const env = { ...process.env, SLURM_CONF: join(localPaths(stateDir).slurmDir, "slurm.conf") };
  return (file: string, args: string[]) => runCommand(file, args, { env, timeoutMs: 30_000 });
}

/** Processes whose command line or environment mentions the state directory (slurmd gets SLURM_CONF). */
function processesOf(stateDir: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const text = `${readFileSync(`/proc/${entry}/cmdline`, "utf8")}\0${readFileSync(`/proc/${entry}/environ`, "utf8")}`;
      if (text.includes(stateDir)) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

async function expectClean(stateDir: string, nodes: readonly string[]): Promise<void> {
  expect(await listNamespaceNodes(PREFIX)).toEqual([]);
  for (const node of nodes) {
    expect((await runCommand("ip", ["link", "show", "dev", vethName(`${PREFIX}${node}`)])).code).not.toBe(0);
  }
  expect((await runCommand("ip", ["link", "show", "dev", `${PREFIX}br`])).code).not.toBe(0);
  expect(processesOf(stateDir)).toEqual([]);
  const paths = localPaths(stateDir);
  for (const gone of [
    paths.stateFile,
    paths.lockFile,
    paths.agentKey,
    paths.apiToken,
    paths.runDir,
    paths.instancesDir,
  ]) {
    expect(existsSync(gone), gone).toBe(false);
  }
  // slurmctld's saved state holds the dynamic nodes: without it no node can come back.
  expect(existsSync(join(paths.slurmDir, "ctld"))).toBe(false);
}

describe("nowscale local up/down on a real Slurm", () => {
  /** Each test's state directory: a test that fails half way still leaves no daemon behind. */
  const stateDirs: string[] = [];
  afterEach(() => {
    for (const dir of stateDirs.splice(0)) {
      if (processesOf(dir).length > 0) cli(["local", "down", "--state-dir", dir]);
    }
  }, 240_000);

  beforeAll(() => {
    const unavailable = testbedUnavailableReason();
    if (unavailable !== undefined) throw new Error(`the real-Slurm suite cannot run here: ${unavailable}`);
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first`);
  });

  it("runs the shortened demo: the cluster grows to its jobs, shrinks to zero, and down leaves nothing", async () => {
    // Prepare
    const stateDir = await mkdtemp(join(tmpdir(), "nowscale-local-demo-"));
    stateDirs.push(stateDir);
    const launched = new Set<string>();
    const watching = setInterval(() => {
      listNamespaceNodes(PREFIX).then(
        (nodes) => {
          for (const n of nodes) launched.add(n);
        },
        () => undefined,
      );
    }, 500);

    // Act
    let demo: { status: number | null; out: string };
    try {
      demo = await cliAsync(
        ["local", "demo", "--short", "--shrink-idle", "5", ...upOptions(stateDir)],
        540_000,
      );
    } finally {
      clearInterval(watching);
    }

    // Assess: every job ran, nodes were launched (several rounds) and all went away
    expect(demo.status, demo.out).toBe(0);
    expect(demo.out).toMatch(/jobs: 6, all finished/);
    expect(demo.out).toMatch(
      /launches: \d+ \(\d+ nodes\), and the cluster shrank back to zero compute nodes/,
    );
    expect(demo.out).toMatch(/demo passed in \d+ s/);
    expect(demo.out).toMatch(/multi-node/);
    await expectClean(stateDir, [...launched]);
    // Every node booted from the AWS compute user data (run in its instance; the console logs stay).
    expect(launched.size).toBeGreaterThan(0);
    for (const node of launched) {
      const log = readFileSync(join(localPaths(stateDir).slurmDir, "log", "console", `${node}.log`), "utf8");
      expect(log).toContain("pre-installed image: skipping package installation");
      expect(log).toContain("fetching the munge key");
      expect(log).toContain(`starting slurmd -Z as ${node}`);
      expect(log).toContain("user data exited with 0");
    }
  }, 600_000);

  it("refuses callers without the token; after the supervisor is killed with SIGKILL mid-run, down leaves nothing behind", async () => {
    // Prepare: a running cluster with a node that runs a long job
    const stateDir = await mkdtemp(join(tmpdir(), "nowscale-local-kill-"));
    stateDirs.push(stateDir);
    const started = up(stateDir);
    expect(started.status, started.out).toBe(0);
    apiToken = readApiToken(stateDir);
    const run = slurm(stateDir);
    const clusterId = await createRunningCluster();
    expect((await run("sbatch", ["-p", "compute", "--output=/dev/null", "--wrap", "sleep 600"])).code).toBe(
      0,
    );
    const nodes = await waitFor(
      "a node running the job",
      async () => {
        const q = await run("squeue", ["-h", "-t", "R", "-o", "%N"]);
        return q.stdout.trim() !== "" ? await listNamespaceNodes(PREFIX) : undefined;
      },
      120_000,
    );
    const state = readLocalState(stateDir);
    expect(state?.phase).toBe("ready");
    expect(processesOf(stateDir).length).toBeGreaterThan(2);

    // Assess: the CLI (root) finds the API and its token from the state directory alone; a request
    // without the token, or from the unprivileged user nobody, is refused and changes nothing
    expect(started.out).toMatch(
      /status page \(one-time link.*\): http:\/\/127\.0\.0\.1:\d+\/#login=[\w-]{43}\n/,
    );
    expect(readFileSync(join(stateDir, "logs", "supervisor.log"), "utf8")).not.toContain(apiToken);
    const listed = cli(["cluster", "list", "--state-dir", stateDir, "--json"]);
    expect(listed.status, listed.out).toBe(0);
    const before = (await api("/clusters")).body;
    expect(JSON.stringify(before)).toContain(clusterId);
    const bare = await fetch(`${API}/clusters/${clusterId}`, { method: "DELETE" });
    expect(bare.status).toBe(401);
    const asNobody = asNobodyCommand([
      process.execPath,
      inRepo("dist/bin/nowscale.js"),
      "cluster",
      "delete",
      clusterId,
      "--state-dir",
      stateDir,
    ]);
    const nobody = spawnSync(asNobody.file, asNobody.args, {
      encoding: "utf8",
      timeout: 60_000,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: "/" },
    });
    expect(nobody.status, nobody.stderr).toBe(1);
    expect(nobody.stderr).toMatch(/local API accepts root only|is the local mode up there/);
    expect((await api("/clusters")).body).toEqual(before);

    // Act: kill the supervisor as a crash would, then down
    process.kill(state?.supervisorPid as number, "SIGKILL");
    await sleep(500);
    const down = cli(["local", "down", "--state-dir", stateDir]);

    // Assess
    expect(down.status, down.out).toBe(0);
    await expectClean(stateDir, nodes);
  }, 420_000);
});
