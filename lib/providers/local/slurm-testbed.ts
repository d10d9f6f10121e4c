import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { chmod, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { runCommand } from "../../../scheduler-plugins/slurm/exec.js";
import { type QueueConf, renderSlurmConfParts } from "../../../scheduler-plugins/slurm/slurm-conf.js";
import { SIMPLE_NAME } from "../../core/names.js";
import {
  type BridgeSpec,
  destroyNamespaceNode,
  disableInternet,
  enableInternet,
  ensureBridge,
  listNamespaceNodes,
  removeBridge,
  signal,
  sleep,
} from "./netns.js";

/**
 * A real Slurm on one machine: munged and slurmctld with their own key, socket, state and logs under
 * one directory, and compute nodes as `slurmd -Z` in network namespaces (netns.ts). Used by the
 * real-Slurm tests, the local cloud provider and the local mode. Needs root, slurm-wlm and munge.
 */
export interface TestbedOptions {
  /** Directory for slurm.conf, cgroup.conf, the munge key, state, spool dirs and logs. Created if missing. */
  stateDir: string;
  /** @default "nowscale" */
  clusterName?: string;
  /** Partitions, one per queue. @default [{ name: "compute" }] */
  queues?: QueueConf[];
  /** Host bridge for namespace nodes; slurmctld is addressed on it. Without it, slurmctld uses 127.0.0.1 and no node can join. */
  network?: BridgeSpec;
  /** Namespaces of this test bed's nodes start with it. @default "nowscale-" */
  netnsPrefix?: string;
  /** @default 6817 */
  slurmctldPort?: number;
  /** @default 6818 */
  slurmdPort?: number;
  /** @default 64 */
  maxNodeCount?: number;
  /** Lines appended to slurm.conf (e.g. "MaxJobCount=200000"). */
  extraConf?: string[];
  /**
   * The cluster's own part of slurm.conf, in place of NowScale's (renderSlurmConfParts of `queues`): a
   * master NowScale did not set up, as an attach test needs. @default NowScale's part
   */
  ownParts?: string;
}

export interface Testbed {
  stateDir: string;
  confPath: string;
  /** Environment for Slurm's clients (SLURM_CONF set). */
  env: NodeJS.ProcessEnv;
  controlAddress: string;
  /** slurmctld's port (what a node's `--conf-server` names beside controlAddress). */
  slurmctldPort: number;
  netnsPrefix: string;
  network?: BridgeSpec;
}

/** Where a test bed keeps things; pure, so other modules can find a running test bed from its directory. */
export function testbedPaths(stateDir: string) {
  return {
    conf: join(stateDir, "slurm.conf"),
    cgroupConf: join(stateDir, "cgroup.conf"),
    mungeDir: join(stateDir, "munge"),
    mungeKey: join(stateDir, "munge", "munge.key"),
    runDir: join(stateDir, "run"),
    /**
     * The master's munged socket has a directory of its own, named like munged's default socket
     * (/run/munge/munge.socket.2): a local instance binds its own /run/munge over this directory, so
     * the slurmd its boot script starts (reading AuthInfo from the master's slurm.conf) talks to the
     * instance's munged, as on a cloud node.
     */
    mungeSocketDir: join(stateDir, "munge-run"),
    mungeSocket: join(stateDir, "munge-run", "munge.socket.2"),
    mungedPid: join(stateDir, "run", "munged.pid"),
    slurmctldPid: join(stateDir, "run", "slurmctld.pid"),
    /** IPv4 forwarding as it was before the test bed gave its namespaces the internet. */
    savedIpForward: join(stateDir, "run", "ip_forward.before"),
    stateSave: join(stateDir, "ctld"),
    spoolRoot: join(stateDir, "spool"),
    logDir: join(stateDir, "log"),
  };
}

/** Why the test bed cannot run here (not root, slurm-wlm or munge missing), or undefined when it can. */
export function testbedUnavailableReason(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root (network namespaces, munged, slurmd)";
  for (const bin of ["slurmctld", "slurmd", "munged", "squeue", "scontrol", "sbatch", "ip", "nsenter"]) {
    const dirs = (process.env.PATH ?? "/usr/sbin:/usr/bin").split(":").concat(["/usr/sbin", "/sbin"]);
    if (!dirs.some((d) => existsSync(join(d, bin))))
      return `${bin} is not installed (apt-get install -y slurm-wlm munge iproute2)`;
  }
  return undefined;
}

/**
 * Writes slurm.conf and cgroup.conf (partitions from renderSlurmConfParts), creates a fresh munge key,
 * starts munged and slurmctld (on the bridge address when `network` is given) and resolves once
 * `scontrol ping` says UP. On failure it stops what it started and rethrows.
 */
export async function startTestbed(options: TestbedOptions): Promise<Testbed> {
  const paths = testbedPaths(options.stateDir);
  const clusterName = options.clusterName ?? "nowscale";
  if (!SIMPLE_NAME.test(clusterName)) throw new TypeError(`invalid cluster name "${clusterName}"`);
  const controlAddress = options.network?.hostAddress ?? "127.0.0.1";
  const testbed: Testbed = {
    stateDir: options.stateDir,
    confPath: paths.conf,
    env: { ...process.env, SLURM_CONF: paths.conf },
    controlAddress,
    slurmctldPort: options.slurmctldPort ?? 6817,
    netnsPrefix: options.netnsPrefix ?? "nowscale-",
  };
  if (options.network) testbed.network = options.network;
  try {
    for (const dir of [
      options.stateDir,
      paths.runDir,
      paths.mungeSocketDir,
      paths.stateSave,
      paths.spoolRoot,
      paths.logDir,
    ]) {
      await mkdir(dir, { recursive: true, mode: 0o755 });
    }
    // munged insists on a private key directory and a socket directory others can enter.
    await mkdir(paths.mungeDir, { recursive: true, mode: 0o700 });
    await chmod(paths.mungeDir, 0o700);
    // mkdtemp makes 0700 directories; munged needs every directory above its socket to be enterable.
    await chmod(options.stateDir, 0o755);
    await chmod(paths.runDir, 0o755);
    await chmod(paths.mungeSocketDir, 0o755);
    await rm(paths.mungeKey, { force: true });
    await writeFile(paths.mungeKey, randomBytes(128), { mode: 0o400 });
    await writeFile(paths.cgroupConf, "CgroupPlugin=autodetect\nIgnoreSystemd=yes\n");
    await writeFile(paths.conf, renderTestbedConf(options, clusterName, controlAddress));
    if (options.network) await ensureBridge(options.network);
    if (options.network?.internet === true) await enableInternet(options.network, paths.savedIpForward);
    await startMunged(testbed);
    await startSlurmctld(testbed);
    return testbed;
  } catch (error) {
    await stopTestbed(testbed).catch(() => undefined);
    throw error;
  }
}

function renderTestbedConf(options: TestbedOptions, clusterName: string, controlAddress: string): string {
  const p = testbedPaths(options.stateDir);
  return [
    `ClusterName=${clusterName}`,
    // slurmctld only runs where SlurmctldHost names this machine; the address is where clients reach it.
    `SlurmctldHost=${hostname().split(".")[0]}(${controlAddress})`,
    `SlurmctldPort=${options.slurmctldPort ?? 6817}`,
    `SlurmdPort=${options.slurmdPort ?? 6818}`,
    "SlurmUser=root",
    "SlurmdUser=root",
    "AuthType=auth/munge",
    "CredType=cred/munge",
    `AuthInfo=socket=${p.mungeSocket}`,
    `StateSaveLocation=${p.stateSave}`,
    // %n: every node gets its own spool dir, pid file and log although they share this file.
    `SlurmdSpoolDir=${p.spoolRoot}/%n`,
    `SlurmctldPidFile=${p.slurmctldPid}`,
    `SlurmdPidFile=${p.runDir}/slurmd-%n.pid`,
    `SlurmctldLogFile=${p.logDir}/slurmctld.log`,
    `SlurmdLogFile=${p.logDir}/slurmd-%n.log`,
    "ProctrackType=proctrack/linuxproc",
    "TaskPlugin=task/none",
    "JobAcctGatherType=jobacct_gather/none",
    "MpiDefault=none",
    "MailProg=/bin/true",
    "SchedulerType=sched/backfill",
    "SlurmctldTimeout=30",
    "SlurmdTimeout=60",
    "InactiveLimit=0",
    "KillWait=5",
    options.ownParts ??
      renderSlurmConfParts({
        queues: options.queues ?? [{ name: "compute" }],
        maxNodeCount: options.maxNodeCount ?? 64,
      }),
    ...(options.extraConf ?? []),
  ].join("\n");
}

async function startMunged(tb: Testbed): Promise<void> {
  const p = testbedPaths(tb.stateDir);
  await run("munged", [
    `--socket=${p.mungeSocket}`,
    `--key-file=${p.mungeKey}`,
    `--pid-file=${p.mungedPid}`,
    `--log-file=${join(p.logDir, "munged.log")}`,
    `--seed-file=${join(p.mungeDir, "seed")}`,
  ]);
}

/** Starts slurmctld (it daemonises) and waits until it answers. Also brings a stopped controller back. */
export async function startSlurmctld(tb: Testbed, timeoutMs = 30_000): Promise<void> {
  await run("slurmctld", [], tb.env);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const r = await runCommand("scontrol", ["ping"], { env: tb.env, timeoutMs: 10_000 });
    if (/is UP/.test(r.stdout)) return;
    await sleep(250);
  }
  throw new Error(
    `slurmctld did not come up within ${timeoutMs} ms; see ${testbedPaths(tb.stateDir).logDir}/slurmctld.log`,
  );
}

/** Stops slurmctld (SIGTERM, then SIGKILL after 10 s); a stopped controller is fine. */
export async function stopSlurmctld(tb: Testbed): Promise<void> {
  await stopByPidFile(testbedPaths(tb.stateDir).slurmctldPid);
}

/**
 * Waits until slurmctld lists the node in one of `states` (upper case, e.g. IDLE). Throws after the timeout
 * with the node's last state.
 */
export async function waitForNode(
  tb: Testbed,
  name: string,
  states: string[] = ["IDLE"],
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "not listed";
  while (Date.now() < deadline) {
    const r = await runCommand("scontrol", ["--oneliner", "show", "node", name], {
      env: tb.env,
      timeoutMs: 10_000,
    });
    const state = /State=(\S+)/.exec(r.stdout)?.[1];
    if (state !== undefined) {
      last = state;
      if (states.includes(state.split("+")[0]?.replace(/\*$/, "") ?? "")) return;
    }
    await sleep(250);
  }
  throw new Error(`node ${name} did not reach ${states.join("/")} within ${timeoutMs} ms (last: ${last})`);
}

export interface TestbedNodeSpec {
  name: string;
  address: string;
  cpus: number;
  realMemoryMiB: number;
  features: readonly string[];
  /**
   * GPUs the node declares (`Gres=gpu:N`). Slurm 22.05 drops a GPU without a File from the node's GRES
   * ("Removing file-less GPU"), so each one gets a stand-in character device (a copy of /dev/null's
   * numbers) in gres.conf: Slurm schedules them by count, nothing is bound to hardware. @default 0
   */
  gpus?: number;
  /**
   * The node's GPUs are named by its own boot script's gres.conf (read through the test bed's
   * `Include`, as on a cluster's master), not by a line the test bed writes. @default false
   */
  gresFromBootScript?: boolean;
  /** Cluster users the boot script makes on the node (bootstrap.ts `users`). @default none */
  users?: readonly { name: string; uid: number; enabled?: boolean }[];
}

/**
 * Writes the node's gres.conf line (`NodeName=<node> Name=gpu File=<dir>/nvidia[0-N]`) with its stand-in
 * devices, named as the driver names them (a boot script waits for `$GPU_DEV_DIR/nvidiaN`); slurmd
 * reads the gres.conf beside slurm.conf (directly, or served by slurmctld when configless). Other nodes'
 * lines are kept. With `line: false` only the devices are made: a test bed whose gres.conf is the
 * master's `Include` leaves the line to the node's boot script. Returns the stand-in directory
 * (undefined without GPUs).
 */
export async function writeTestbedGres(
  tb: Testbed,
  name: string,
  gpus: number,
  options: { line?: boolean } = {},
): Promise<string | undefined> {
  const gresConf = join(tb.stateDir, "gres.conf");
  const existing = existsSync(gresConf) ? (await readFile(gresConf, "utf8")).split("\n") : [];
  const kept = existing.filter((line) => line.trim() !== "" && !line.startsWith(`NodeName=${name} `));
  if (gpus > 0) {
    const dir = join(tb.stateDir, "gpus", name);
    await mkdir(dir, { recursive: true, mode: 0o755 });
    for (let i = 0; i < gpus; i++) {
      const device = join(dir, `nvidia${i}`);
      if (!existsSync(device)) await run("mknod", [device, "c", "1", "3"]);
    }
    // Without the line, the node's own gres.conf (its boot script's) must name them: an Include.
    if (options.line ?? true) kept.push(`NodeName=${name} Name=gpu File=${dir}/nvidia[0-${gpus - 1}]`);
  }
  await writeFile(gresConf, kept.length > 0 ? `${kept.join("\n")}\n` : "");
  return gpus > 0 ? join(tb.stateDir, "gpus", name) : undefined;
}

/** Stops the node's slurmd and jobs, deletes it from slurmctld and removes its namespace. Idempotent. */
export async function removeTestbedNode(tb: Testbed, name: string): Promise<void> {
  await destroyNamespaceNode({ name, netnsPrefix: tb.netnsPrefix, slurmConf: tb.confPath });
}

/**
 * Removes every namespace node with the test bed's prefix, stops slurmctld and munged and deletes the
 * bridge. Idempotent, and safe after a partial start. Leaves the state directory (logs) in place.
 */
export async function stopTestbed(tb: Testbed): Promise<void> {
  const errors: unknown[] = [];
  const attempt = async (step: () => Promise<void>) => {
    try {
      await step();
    } catch (error) {
      errors.push(error);
    }
  };
  for (const name of await listNamespaceNodes(tb.netnsPrefix).catch(() => [])) {
    await attempt(() => removeTestbedNode(tb, name));
  }
  await attempt(() => stopSlurmctld(tb));
  await attempt(() => stopByPidFile(testbedPaths(tb.stateDir).mungedPid));
  if (tb.network) {
    const network = tb.network;
    if (network.internet === true)
      await attempt(() => disableInternet(network, testbedPaths(tb.stateDir).savedIpForward));
    await attempt(() => removeBridge(network.bridge));
  }
  if (errors.length > 0) throw new AggregateError(errors, "test bed cleanup was incomplete");
}

async function stopByPidFile(pidFile: string): Promise<void> {
  let pid: number;
  try {
    pid = Number((await readFile(pidFile, "utf8")).trim());
  } catch {
    return;
  }
  if (!Number.isSafeInteger(pid) || pid <= 1) return;
  if (!signal(pid, "SIGTERM")) return;
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && isRunning(pid)) await sleep(100);
  signal(pid, "SIGKILL");
  await rm(pidFile, { force: true });
}

/** True while the process exists and is not a zombie (a daemon's zombie lingers until its reaper waits). */
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/^\d+ \(.*\) Z/s.test(stat);
  } catch {
    return false;
  }
}

async function run(file: string, args: string[], env?: NodeJS.ProcessEnv): Promise<void> {
  const r = await runCommand(file, args, { env: env ?? process.env, timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`${file} failed: ${(r.stderr || r.error || "").trim().slice(0, 500)}`);
}
