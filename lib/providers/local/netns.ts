import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { runCommand } from "../../../scheduler-plugins/slurm/exec.js";
import { SIMPLE_NAME } from "../../core/names.js";

/**
 * Compute nodes as network namespaces on one machine: each "instance" is a namespace with a veth on a
 * host bridge and its own `slurmd -Z` (only one slurmd can listen per namespace). Needs root and iproute2.
 * Nothing here touches an interface or namespace it did not create: all are named by the caller's prefix.
 */

/** The host side: a bridge holding the controller's address, which every node's veth joins. */
export interface BridgeSpec {
  /** Interface name, at most 15 characters. */
  bridge: string;
  /** The controller's address on the bridge, e.g. 192.168.250.1. */
  hostAddress: string;
  /** @default 24 */
  prefixLength?: number;
  /**
   * Namespaces reach the internet through the host (a default route via the bridge, IPv4 forwarding
   * and a MASQUERADE rule for the subnet): for boots that install packages from Debian's repositories.
   */
  internet?: boolean;
}

const IP_FORWARD = "/proc/sys/net/ipv4/ip_forward";

function natRule(spec: BridgeSpec): string[] {
  const [a, b, c] = spec.hostAddress.split(".");
  const length = spec.prefixLength ?? 24;
  if (length !== 24) throw new TypeError("internet access is set up for /24 bridges only");
  return ["POSTROUTING", "-s", `${a}.${b}.${c}.0/24`, "!", "-o", spec.bridge, "-j", "MASQUERADE"];
}

/**
 * Lets the bridge's namespaces reach the internet: IPv4 forwarding on (its value before is kept in
 * `savedForwardFile`, so disableInternet puts it back) and one MASQUERADE rule (checked first: once).
 */
export async function enableInternet(spec: BridgeSpec, savedForwardFile: string): Promise<void> {
  checkIfName(spec.bridge);
  checkIpv4(spec.hostAddress);
  const before = (await readFile(IP_FORWARD, "utf8")).trim();
  if (!existsSync(savedForwardFile)) await writeFile(savedForwardFile, `${before}\n`);
  await writeFile(IP_FORWARD, "1\n");
  const rule = natRule(spec);
  const present = await runCommand("iptables", ["-t", "nat", "-C", ...rule]);
  if (present.code !== 0) await runOk("iptables", ["-t", "nat", "-A", ...rule]);
}

/** Removes the rule and restores IPv4 forwarding as it was; idempotent. */
export async function disableInternet(spec: BridgeSpec, savedForwardFile: string): Promise<void> {
  const rule = natRule(spec);
  while ((await runCommand("iptables", ["-t", "nat", "-C", ...rule])).code === 0)
    await runOk("iptables", ["-t", "nat", "-D", ...rule]);
  const before = await readFile(savedForwardFile, "utf8").catch(() => undefined);
  if (before !== undefined && /^[01]$/.test(before.trim())) {
    await writeFile(IP_FORWARD, `${before.trim()}\n`);
    await rm(savedForwardFile, { force: true });
  }
}

export interface NamespaceNodeSpec extends NamespaceSpec {
  cpus: number;
  realMemoryMiB: number;
  /** Slurm features, e.g. from placementFeatures(): q_<queue>, type_<instance type>, zone_<zone>. */
  features: readonly string[];
  /** GPUs the node declares to Slurm (`Gres=gpu:N`, counted, no device files). @default 0 */
  gpus?: number;
  /** slurm.conf of the cluster to join. */
  slurmConf: string;
  /** The node's own SlurmdSpoolDir (matching slurm.conf's pattern); created when missing. */
  spoolDir: string;
}

const IFNAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const FEATURE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,191}$/;

async function ip(args: string[], okWhen?: RegExp): Promise<string> {
  const result = await runCommand("ip", args, { timeoutMs: 15_000 });
  if (result.code !== 0 && !(okWhen?.test(result.stderr) ?? false)) {
    throw new Error(`ip ${args.join(" ")} failed: ${(result.stderr || result.error || "").trim()}`);
  }
  return result.stdout;
}

/** Creates the bridge with the host address and brings it up; an existing bridge is left as it is. */
export async function ensureBridge(spec: BridgeSpec): Promise<void> {
  checkIfName(spec.bridge);
  checkIpv4(spec.hostAddress);
  const exists = (await runCommand("ip", ["link", "show", "dev", spec.bridge])).code === 0;
  if (!exists) await ip(["link", "add", spec.bridge, "type", "bridge"]);
  await ip(
    ["addr", "add", `${spec.hostAddress}/${spec.prefixLength ?? 24}`, "dev", spec.bridge],
    /File exists|already assigned/,
  );
  await ip(["link", "set", spec.bridge, "up"]);
}

/** Deletes the bridge; a missing bridge is fine. */
export async function removeBridge(bridge: string): Promise<void> {
  checkIfName(bridge);
  await ip(["link", "del", bridge], /Cannot find device|does not exist/);
}

/** The netns file nsenter joins. */
export function netnsPath(netns: string): string {
  return `/run/netns/${netns}`;
}

/** A short host-side veth name derived from the namespace name (interface names stop at 15 characters). */
export function vethName(netns: string): string {
  return `nsv${createHash("sha256").update(netns).digest("hex").slice(0, 10)}`;
}

/** A namespace on the bridge: what a local instance's network is. */
export interface NamespaceSpec {
  /** SIMPLE_NAME; the namespace is `${netnsPrefix}${name}`. */
  name: string;
  netnsPrefix: string;
  bridge: string;
  /** The address inside the namespace, in the bridge's subnet. */
  address: string;
  /** @default 24 */
  prefixLength?: number;
}

/**
 * Creates the namespace and links it to the bridge: eth0 with the address, lo up, and a default route
 * through the bridge's host address (`gateway`, when given). On failure removes what it created.
 */
export async function createNamespace(spec: NamespaceSpec, gateway?: string): Promise<string> {
  if (!SIMPLE_NAME.test(spec.name)) throw new TypeError(`invalid node name "${spec.name.slice(0, 80)}"`);
  checkIpv4(spec.address);
  checkIfName(spec.bridge);
  if (gateway !== undefined) checkIpv4(gateway);
  const netns = `${spec.netnsPrefix}${spec.name}`;
  const veth = vethName(netns);
  const inNs = (args: string[]) => runOk("nsenter", [`--net=${netnsPath(netns)}`, ...args]);
  try {
    await ip(["netns", "add", netns]);
    await ip(["link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns]);
    await ip(["link", "set", veth, "master", spec.bridge]);
    await ip(["link", "set", veth, "up"]);
    await inNs(["ip", "addr", "add", `${spec.address}/${spec.prefixLength ?? 24}`, "dev", "eth0"]);
    await inNs(["ip", "link", "set", "eth0", "up"]);
    await inNs(["ip", "link", "set", "lo", "up"]);
    if (gateway !== undefined) await inNs(["ip", "route", "add", "default", "via", gateway]);
    return netns;
  } catch (error) {
    await removeNamespace(netns).catch(() => undefined);
    throw error;
  }
}

/**
 * Creates the namespace (createNamespace) and starts `slurmd -Z` in it with the given CPUs, memory and
 * features: a node of a test bed without a boot script. Resolves once slurmd has daemonised (not yet
 * registered: see waitForNode in slurm-testbed.ts). On failure it removes what it created and rethrows.
 */
export async function createNamespaceNode(spec: NamespaceNodeSpec): Promise<void> {
  if (!SIMPLE_NAME.test(spec.name)) throw new TypeError(`invalid node name "${spec.name.slice(0, 80)}"`);
  for (const f of spec.features)
    if (!FEATURE.test(f)) throw new TypeError(`invalid feature "${f.slice(0, 80)}"`);
  if (!Number.isSafeInteger(spec.cpus) || spec.cpus < 1)
    throw new TypeError("cpus must be a whole number ≥ 1");
  if (!Number.isSafeInteger(spec.realMemoryMiB) || spec.realMemoryMiB < 1)
    throw new TypeError("realMemoryMiB must be ≥ 1");
  const gpus = spec.gpus ?? 0;
  if (!Number.isSafeInteger(gpus) || gpus < 0 || gpus > 64) throw new TypeError("gpus must be 0..64");
  const netns = await createNamespace(spec);
  try {
    await mkdir(spec.spoolDir, { recursive: true, mode: 0o755 });
    const conf =
      `CPUs=${spec.cpus} RealMemory=${spec.realMemoryMiB} Feature=${spec.features.join(",")}` +
      (gpus > 0 ? ` Gres=gpu:${gpus}` : "");
    // nsenter --net (not `ip netns exec`, which remounts /sys and hides the cgroups slurmd needs).
    const result = await runCommand(
      "nsenter",
      [`--net=${netnsPath(netns)}`, "slurmd", "-Z", "-N", spec.name, "--conf", conf],
      {
        env: { ...process.env, SLURM_CONF: spec.slurmConf },
        timeoutMs: 30_000,
      },
    );
    if (result.code !== 0)
      throw new Error(`slurmd -Z for ${spec.name} failed: ${(result.stderr || result.error || "").trim()}`);
  } catch (error) {
    await removeNamespace(netns).catch(() => undefined);
    throw error;
  }
}

/**
 * Stops every process in the node's namespace (slurmd, slurmstepd, the job's tasks), removes the node
 * from slurmctld and deletes the namespace with its veth. Idempotent: missing pieces are skipped.
 */
export async function destroyNamespaceNode(args: {
  name: string;
  netnsPrefix: string;
  slurmConf: string;
}): Promise<void> {
  if (!SIMPLE_NAME.test(args.name)) throw new TypeError(`invalid node name "${args.name.slice(0, 80)}"`);
  const netns = `${args.netnsPrefix}${args.name}`;
  await killNamespaceProcesses(netns);
  await deleteSlurmNode(args.name, args.slurmConf);
  await removeNamespace(netns);
}

/** Names of the nodes whose namespaces carry the prefix (the prefix removed). */
export async function listNamespaceNodes(netnsPrefix: string): Promise<string[]> {
  const out = await ip(["netns", "list"]);
  return out
    .split("\n")
    .map((line) => line.trim().split(" ")[0] ?? "")
    .filter((ns) => ns.startsWith(netnsPrefix) && ns.length > netnsPrefix.length)
    .map((ns) => ns.slice(netnsPrefix.length))
    .sort();
}

/** SIGTERM to every process in the namespace, SIGKILL to those still there after `graceMs`. */
export async function killNamespaceProcesses(netns: string, graceMs = 5_000): Promise<void> {
  const pids = async () => {
    const r = await runCommand("ip", ["netns", "pids", netns]);
    return r.code === 0
      ? r.stdout
          .split(/\s+/)
          .filter((p) => /^\d+$/.test(p))
          .map(Number)
      : [];
  };
  for (const pid of await pids()) signal(pid, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && (await pids()).length > 0) await sleep(100);
  for (const pid of await pids()) signal(pid, "SIGKILL");
}

async function deleteSlurmNode(name: string, slurmConf: string): Promise<void> {
  const env = { ...process.env, SLURM_CONF: slurmConf };
  for (let attempt = 0; attempt < 20; attempt++) {
    const r = await runCommand("scontrol", ["delete", `NodeName=${name}`], { env, timeoutMs: 15_000 });
    if (r.code === 0 || /Invalid node name specified/i.test(r.stderr)) return;
    // No controller, nothing to delete from (its state goes with it in a test bed).
    if (/Unable to contact slurm controller/i.test(r.stderr)) return;
    // A node that still holds a job cannot be deleted: take it DOWN (its jobs are requeued or end) and retry.
    await runCommand(
      "scontrol",
      ["update", `NodeName=${name}`, "State=DOWN", "Reason=nowscale: node destroyed"],
      { env },
    );
    await sleep(500);
  }
}

export async function removeNamespace(netns: string): Promise<void> {
  await ip(["link", "del", vethName(netns)], /Cannot find device|does not exist/);
  await ip(["netns", "del", netns], /No such file|Cannot remove/);
}

async function runOk(file: string, args: string[]): Promise<void> {
  const r = await runCommand(file, args, { timeoutMs: 15_000 });
  if (r.code !== 0)
    throw new Error(`${file} ${args.join(" ")} failed: ${(r.stderr || r.error || "").trim()}`);
}

/** Sends a signal; false when the process does not exist (already gone is not an error here). */
export function signal(pid: number, sig: NodeJS.Signals | 0): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

function checkIfName(name: string): void {
  if (!IFNAME.test(name)) throw new TypeError(`invalid interface name "${name.slice(0, 40)}"`);
}

function checkIpv4(address: string): void {
  const m = IPV4.exec(address);
  if (!m || m.slice(1).some((o) => Number(o) > 255))
    throw new TypeError(`invalid IPv4 address "${address.slice(0, 40)}"`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
