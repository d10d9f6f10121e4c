import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, request as httpRequest, type Server } from "node:http";
import { join } from "node:path";
import { type CommandResult, runCommand } from "../../../scheduler-plugins/slurm/exec.js";
import { signal, sleep } from "./netns.js";

/**
 * A throw-away machine on this one, for running a cloud instance's real boot script as root without
 * touching the host: the host's own root file system seen through an overlay whose writes go to a tmpfs
 * (so the "image" is this machine's Debian, and everything the script installs, writes or deletes
 * vanishes with it), in private mount, UTS, IPC and PID namespaces, inside its own network namespace
 * joined to the host by one veth pair.
 *
 * Contract:
 * - `startIsolatedRoot` creates the network namespace `name` with the veth `${name}h` (host side,
 *   `hostAddress/30`, or a port of `bridge`) and `${name}r` (inside, `rootAddress/30` or `/24` on a
 *   bridge, default route via hostAddress), then
 *   one process that mounts the overlay, /proc, /sys, /dev (the host's, with its own /dev/shm and
 *   /dev/pts), /run and /tmp (tmpfs), sets the host name, chroots into the overlay and waits: it is
 *   PID 1 of the root's PID namespace. Everything the root runs is its descendant.
 * - Nothing leaves the root but through the veth; the host neither forwards nor NATs. A root that needs
 *   packages gets `proxy`: an HTTP proxy on hostAddress that forwards only to the listed host names
 *   (Debian's mirrors), which the caller names in the image's apt configuration.
 * - `exec` runs a command inside (all its namespaces and its root directory) with only the given
 *   environment; it never rejects (like runCommand). `writeFile`/`readFile` reach the root's files
 *   through /proc/PID/root.
 * - `close` kills PID 1 (the kernel then kills every process of the root, so no daemon survives),
 *   which unmounts everything of the mount namespace and frees the tmpfs, stops the proxy, deletes the
 *   network namespace (and with it both ends of the veth) and the work directory. It is idempotent and
 *   also sweeps what a crashed earlier run with the same name left (processes in the namespace, the
 *   namespace, the veth).
 * Needs root, util-linux (unshare, nsenter) and iproute2. The host's daemons (its slurmctld, munged)
 * are not affected: the root has its own network stack, /run (so its own munge socket) and processes.
 */
export interface IsolatedRootOptions {
  /** Network namespace name; the veths are `${name}h` and `${name}r` (so at most 14 characters). */
  name: string;
  /**
   * The host's address the root routes through, e.g. 10.251.7.1: the host's end of the veth (a /30
   * with rootAddress), or, with `bridge`, that bridge's own address.
   */
  hostAddress: string;
  /** The root's address, e.g. 10.251.7.2 (in the bridge's /24 with `bridge`). */
  rootAddress: string;
  /**
   * An existing bridge (with hostAddress on it, /24) to put the host's end of the veth in, so the
   * root shares a segment with namespaces on it (say compute nodes joining a master). Its owner
   * creates and removes it.
   */
  bridge?: string;
  /** The root's host name (what `hostname -s` answers inside). */
  hostname: string;
  /** A host directory for the mount point and the proxy's log; removed by close(). */
  workDir: string;
  /** Size of the tmpfs holding the overlay's writes. @default 4096 */
  tmpfsMiB?: number;
  /** Host names the HTTP proxy forwards to (port 80 only); no proxy when absent. */
  proxyHosts?: readonly string[];
  /**
   * What PID 1 becomes. "sleep": a process that only waits (no init system: the image behaves as a
   * container image). "systemd": the image's systemd, started by boot() once the caller has prepared
   * the image, with its own cgroup (a cgroup2 hierarchy under the host's, in a cgroup namespace), a
   * read-only /sys and /proc/sys (as systemd-nspawn does, so it changes nothing of the host's kernel
   * settings and runs no udev). @default "sleep"
   */
  init?: "sleep" | "systemd";
}

export interface IsolatedRoot {
  readonly name: string;
  readonly hostAddress: string;
  readonly rootAddress: string;
  /** PID 1 of the root, as the host sees it. */
  readonly pid: number;
  /** http://hostAddress:PORT when proxyHosts was given. */
  readonly proxyUrl: string | undefined;
  /** "GET host/path" for every request the proxy took (forwarded or refused), oldest first. */
  readonly proxyLog: readonly string[];
  exec(
    argv: readonly string[],
    options?: { env?: Record<string, string>; timeoutMs?: number },
  ): Promise<CommandResult>;
  /** Writes a file inside the root (parent directories made), with `mode`. */
  writeFile(path: string, content: string | Buffer, mode?: number): Promise<void>;
  readFile(path: string): Promise<string>;
  /**
   * With init "systemd": starts systemd as PID 1 and waits until it has finished booting (`systemctl
   * is-system-running --wait`); resolves with its state ("running", or "degraded" with the failed
   * units). Mask what the image must not start before calling it.
   */
  boot(timeoutMs?: number): Promise<string>;
  close(): Promise<void>;
}

const NAME = /^[a-z][a-z0-9-]{0,13}$/;
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const HOSTNAME = /^[a-z][a-z0-9-]{0,62}$/;
/** The environment every command inside starts from (nothing of the host's). */
const BASE_ENV = {
  PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  HOME: "/root",
  LANG: "C.UTF-8",
};

/** Why an isolated root cannot run here, or undefined when it can (root, unshare, nsenter, overlay). */
export async function isolatedRootUnavailableReason(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return "it needs root (namespaces, mounts)";
  for (const tool of ["unshare", "nsenter", "ip", "chroot"]) {
    const r = await runCommand("sh", ["-c", `command -v ${tool}`]);
    if (r.code !== 0) return `${tool} is missing`;
  }
  const fs = await readFile("/proc/filesystems", "utf8").catch(() => "");
  if (!/\boverlay\b/.test(fs)) return "the kernel has no overlay file system";
  return undefined;
}

function check(o: IsolatedRootOptions): void {
  if (!NAME.test(o.name)) throw new TypeError(`name must match ${NAME}, got "${o.name.slice(0, 40)}"`);
  for (const field of ["hostAddress", "rootAddress"] as const) {
    const m = IPV4.exec(o[field]);
    if (m === null || m.slice(1).some((x) => Number(x) > 255))
      throw new TypeError(`${field} must be an IPv4 address, got "${o[field].slice(0, 40)}"`);
  }
  if (!HOSTNAME.test(o.hostname)) throw new TypeError(`hostname must match ${HOSTNAME}`);
  if (o.bridge !== undefined && !/^[A-Za-z0-9_.-]{1,15}$/.test(o.bridge))
    throw new TypeError(`bridge must be an interface name, got "${o.bridge.slice(0, 40)}"`);
  if (!o.workDir.startsWith("/") || /[\s'"\\$`]/.test(o.workDir))
    throw new TypeError("workDir must be an absolute path without spaces or quotes");
  const size = o.tmpfsMiB ?? 4096;
  if (!Number.isInteger(size) || size < 64 || size > 65_536)
    throw new TypeError("tmpfsMiB must be 64 to 65536");
  for (const h of o.proxyHosts ?? [])
    if (!/^[a-z0-9.-]{1,253}$/.test(h)) throw new TypeError(`proxyHosts: invalid host "${h.slice(0, 60)}"`);
}

async function must(file: string, args: string[], okWhen?: RegExp): Promise<void> {
  const r = await runCommand(file, args, { timeoutMs: 30_000 });
  if (r.code !== 0 && !(okWhen?.test(r.stderr) ?? false))
    throw new Error(`${file} ${args.join(" ")} failed: ${(r.stderr || r.error || "").trim()}`);
}

/** Removes what a root named `name` may have left: its processes, its namespace, the host's veth end. */
export async function sweepIsolatedRoot(name: string): Promise<void> {
  if (!NAME.test(name)) throw new TypeError(`invalid name "${name.slice(0, 40)}"`);
  const pids = await runCommand("ip", ["netns", "pids", name]);
  for (const pid of pids.stdout.split(/\s+/).filter((p) => /^\d+$/.test(p))) signal(Number(pid), "SIGKILL");
  await runCommand("ip", ["link", "del", `${name}h`]);
  await runCommand("ip", ["netns", "del", name]);
}

/** The host's cgroup2 hierarchy (the unified one of a hybrid setup, or the only one). */
async function hostCgroup2(): Promise<string> {
  const mounts = await readFile("/proc/self/mounts", "utf8");
  const line = mounts.split("\n").find((l) => l.split(" ")[2] === "cgroup2");
  const at = line?.split(" ")[1];
  if (at === undefined)
    throw new Error("no cgroup2 hierarchy is mounted: systemd cannot run in an isolated root");
  return at;
}

/** Removes a cgroup directory tree (children first); only empty cgroups can go. */
async function removeCgroup(dir: string): Promise<void> {
  await runCommand("sh", ["-c", `[ -d '${dir}' ] && find '${dir}' -depth -type d -exec rmdir {} + ; true`]);
}

export async function startIsolatedRoot(options: IsolatedRootOptions): Promise<IsolatedRoot> {
  check(options);
  const { name, hostAddress, rootAddress, workDir } = options;
  const systemd = options.init === "systemd";
  await sweepIsolatedRoot(name);
  const cgroup = systemd ? join(await hostCgroup2(), `nowscale-${name}`) : undefined;
  if (cgroup !== undefined) {
    await removeCgroup(cgroup);
    await mkdir(cgroup, { recursive: true });
  }
  const mnt = join(workDir, "root");
  const layers = join(workDir, "layers");
  await mkdir(mnt, { recursive: true });
  await mkdir(layers, { recursive: true });

  let pid = 0;
  let proxy: Server | undefined;
  const proxyLog: string[] = [];
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    if (pid > 0) {
      signal(pid, "SIGKILL");
      for (let i = 0; i < 100 && signal(pid, 0); i++) await sleep(50);
    }
    if (proxy !== undefined) {
      proxy.closeAllConnections();
      await new Promise((resolve) => proxy?.close(resolve));
    }
    await sweepIsolatedRoot(name);
    if (cgroup !== undefined) {
      for (let i = 0; i < 50; i++) {
        await removeCgroup(cgroup);
        if (!existsSync(cgroup)) break;
        await sleep(100);
      }
    }
    await rm(workDir, { recursive: true, force: true });
  };

  try {
    await must("ip", ["netns", "add", name]);
    await must("ip", ["link", "add", `${name}h`, "type", "veth", "peer", "name", `${name}r`]);
    await must("ip", ["link", "set", `${name}r`, "netns", name]);
    if (options.bridge === undefined)
      await must("ip", ["addr", "add", `${hostAddress}/30`, "dev", `${name}h`]);
    else await must("ip", ["link", "set", `${name}h`, "master", options.bridge]);
    await must("ip", ["link", "set", `${name}h`, "up"]);
    const inNs = (args: string[]) => must("ip", ["netns", "exec", name, ...args]);
    const prefixLength = options.bridge === undefined ? 30 : 24;
    await inNs(["ip", "addr", "add", `${rootAddress}/${prefixLength}`, "dev", `${name}r`]);
    await inNs(["ip", "link", "set", `${name}r`, "up"]);
    await inNs(["ip", "link", "set", "lo", "up"]);
    await inNs(["ip", "route", "add", "default", "via", hostAddress]);

    // The mounts happen in the new mount namespace only (propagation private), before the chroot.
    const setup = [
      "set -eu",
      `mount -t tmpfs -o size=${options.tmpfsMiB ?? 4096}m,mode=0755 nowscale-layers '${layers}'`,
      `mkdir -p '${layers}/upper' '${layers}/work'`,
      `mount -t overlay nowscale-root -o lowerdir=/,upperdir='${layers}/upper',workdir='${layers}/work' '${mnt}'`,
      `mount -t proc proc '${mnt}/proc'`,
      ...(systemd
        ? [
            // As systemd-nspawn: kernel settings and devices stay the host's business.
            `mount --bind '${mnt}/proc/sys' '${mnt}/proc/sys'`,
            `mount -o remount,bind,ro '${mnt}/proc/sys'`,
            `mount -t sysfs -o ro sysfs '${mnt}/sys'`,
            // The cgroup namespace's root is the cgroup made for this root: systemd's own hierarchy.
            `mount -t cgroup2 cgroup2 '${mnt}/sys/fs/cgroup'`,
          ]
        : [`mount -t sysfs sysfs '${mnt}/sys'`]),
      `mount --rbind /dev '${mnt}/dev'`,
      `mount -t tmpfs -o mode=1777 shm '${mnt}/dev/shm'`,
      `mount -t devpts -o newinstance,ptmxmode=0666 devpts '${mnt}/dev/pts'`,
      `mount -t tmpfs -o mode=0755 run '${mnt}/run'`,
      `mkdir -p '${mnt}/run/lock'`,
      `mount -t tmpfs -o mode=1777 tmp '${mnt}/tmp'`,
      `hostname '${options.hostname}'`,
      "echo ready",
      systemd
        ? // PID 1 waits for boot(), then becomes systemd (still PID 1).
          `exec chroot '${mnt}' /bin/sh -c 'while [ ! -e /run/nowscale-boot ]; do sleep 0.2; done; exec env -i container=nowscale-isolated-root /lib/systemd/systemd'`
        : `exec chroot '${mnt}' /bin/sleep infinity`,
    ].join("\n");
    const child = spawn(
      cgroup === undefined ? "ip" : "sh",
      [
        // Into its own cgroup first (before `ip netns exec` hides the host's cgroup mounts): the
        // cgroup namespace unshare makes is rooted there. Every step execs: one pid throughout.
        ...(cgroup === undefined
          ? []
          : ["-c", `echo $$ > '${cgroup}/cgroup.procs' && exec "$@"`, "sh", "ip"]),
        "netns",
        "exec",
        name,
        "unshare",
        ...(cgroup === undefined ? [] : ["--cgroup"]),
        "--mount",
        "--uts",
        "--ipc",
        "--pid",
        "--fork",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        setup,
      ],
      { stdio: ["ignore", "pipe", "pipe"], detached: true },
    );
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString("utf8");
    });
    child.stderr.on("data", (d: Buffer) => {
      out += d.toString("utf8");
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const ready = await Promise.race([
      (async () => {
        for (let i = 0; i < 300 && !out.includes("ready"); i++) await sleep(50);
        return out.includes("ready");
      })(),
      exited.then(() => false),
    ]);
    if (!ready || child.pid === undefined) throw new Error(`the isolated root did not start: ${out.trim()}`);
    child.unref();
    // sh and `ip netns exec` exec in place down to unshare, whose only child is the root's PID 1.
    for (let i = 0; i < 100 && pid === 0; i++) {
      const children = await readFile(`/proc/${child.pid}/task/${child.pid}/children`, "utf8").catch(
        () => "",
      );
      pid = Number(children.trim().split(/\s+/)[0] ?? 0) || 0;
      if (pid === 0) await sleep(50);
    }
    if (pid === 0) throw new Error("the isolated root's first process was not found");
    // Wait until the chroot is done (PID 1 runs `sleep`, or the shell that waits for boot()).
    for (let i = 0; i < 100; i++) {
      const root = await runCommand("readlink", [`/proc/${pid}/root`]);
      if (root.stdout.trim() === mnt) break;
      await sleep(50);
    }

    if (options.proxyHosts !== undefined) proxy = await startProxy(hostAddress, options.proxyHosts, proxyLog);
  } catch (error) {
    await close();
    throw error;
  }

  const address = proxy?.address();
  const proxyUrl =
    address !== undefined && address !== null && typeof address === "object"
      ? `http://${hostAddress}:${address.port}`
      : undefined;
  const inside = (path: string) => {
    if (!path.startsWith("/") || path.split("/").includes(".."))
      throw new TypeError(`not an absolute path: ${path}`);
    return `/proc/${pid}/root${path}`;
  };
  return {
    name,
    hostAddress,
    rootAddress,
    pid,
    proxyUrl,
    proxyLog,
    exec: (argv, o = {}) =>
      runCommand(
        "nsenter",
        [
          `--target=${pid}`,
          "--mount",
          "--uts",
          "--ipc",
          "--net",
          "--pid",
          "--root",
          "--wd",
          "--",
          "env",
          "-i",
          ...Object.entries({ ...BASE_ENV, ...(o.env ?? {}) }).map(([k, v]) => `${k}=${v}`),
          ...argv,
        ],
        { timeoutMs: o.timeoutMs ?? 60_000 },
      ),
    writeFile: async (path, content, mode = 0o644) => {
      await mkdir(join(inside(path), ".."), { recursive: true });
      await writeFile(inside(path), content, { mode });
      await runCommand("chmod", [mode.toString(8), inside(path)]);
    },
    readFile: (path) => readFile(inside(path), "utf8"),
    boot: async (timeoutMs = 120_000) => {
      if (!systemd) throw new Error("boot() needs init: systemd");
      await writeFile(inside("/run/nowscale-boot"), "");
      const deadline = Date.now() + timeoutMs;
      // systemctl needs systemd's private socket, which appears a moment after exec.
      let state = "";
      while (Date.now() < deadline) {
        const r = await runCommand(
          "nsenter",
          [`--target=${pid}`, "--mount", "--uts", "--ipc", "--net", "--pid", "--root", "--wd", "--"].concat([
            "systemctl",
            "is-system-running",
            "--wait",
          ]),
          { timeoutMs: Math.max(1000, deadline - Date.now()) },
        );
        state = r.stdout.trim();
        if (state === "running") return state;
        if (state === "degraded") {
          const failed = await runCommand("nsenter", [
            `--target=${pid}`,
            "--mount",
            "--pid",
            "--root",
            "--",
            "systemctl",
            "--failed",
            "--no-legend",
            "--plain",
          ]);
          return `degraded: ${failed.stdout.trim().replace(/\s+/g, " ")}`;
        }
        await sleep(250);
      }
      throw new Error(`systemd did not finish booting within ${timeoutMs / 1000} s (state "${state}")`);
    },
    close,
  };
}

/** A forward proxy for plain HTTP to `hosts` (port 80) only, on `address` and a free port. */
async function startProxy(address: string, hosts: readonly string[], log: string[]): Promise<Server> {
  const allowed = new Set(hosts);
  const server = createServer((req, res) => {
    let target: URL;
    try {
      target = new URL(req.url ?? "");
    } catch {
      res.writeHead(400).end();
      return;
    }
    const ok = target.protocol === "http:" && target.port === "" && allowed.has(target.hostname);
    log.push(`${req.method} ${target.hostname}${target.pathname}${ok ? "" : " (refused)"}`);
    if (!ok) {
      res.writeHead(403, { "content-type": "text/plain" }).end("not an allowed host\n");
      return;
    }
    const headers = { ...req.headers };
    delete headers["proxy-connection"];
    delete headers["proxy-authorization"];
    const upstream = httpRequest(
      {
        host: target.hostname,
        port: 80,
        method: req.method,
        path: `${target.pathname}${target.search}`,
        headers,
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on("error", (error) => {
      if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" });
      res.end(`${error.message}\n`);
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, address, resolve);
  });
  return server;
}
