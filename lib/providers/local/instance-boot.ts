import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, writeSync } from "node:fs";
import { chmod, chown, mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runCommand } from "../../../scheduler-plugins/slurm/exec.js";
import { netnsPath } from "./netns.js";

/**
 * Runs an instance's user data as cloud-init runs it: once, as root, with its output in the
 * instance's console log. The script runs in the instance's network namespace and in a private mount
 * and UTS namespace of its own, where:
 * - /etc/hosts is the instance's (the cloud API names on its loopback: instance-endpoints/);
 * - /etc, /usr, /var/lib and /var/cache are copy-on-write overlays over the host's: the instance sees
 *   this machine's image, and what it writes there (apt-get installing packages, units, configuration)
 *   stays in the instance;
 * - the directories a node writes (munge's key, socket and state, Slurm's spool and gres.conf, logs,
 *   NowScale's files, its mounts) are the instance's own, empty but for the image's skeleton, so every
 *   instance has its own munged and slurmd;
 * - systemctl and hostnamectl are absent (an instance without systemd as PID 1: the scripts take their
 *   non-systemd branch), and `hostname` changes only the instance's UTS namespace.
 * The daemons the script starts stay in these namespaces; `ip netns pids` finds them for teardown.
 */

/** The host's trees the instance sees copy-on-write (overlayfs; its writes go to its own upper dir). */
const OVERLAYS = ["/etc", "/usr", "/var/lib", "/var/cache"] as const;

/**
 * Directories every instance has for itself. A mount point missing on the host is made in the overlay
 * when it lies in one, else on the host (an empty directory).
 */
export const INSTANCE_PRIVATE_DIRS = [
  "/etc/munge",
  "/run/munge",
  "/var/lib/munge",
  "/var/log",
  "/var/spool/slurmd",
  "/etc/slurm",
  "/etc/nowscale",
  "/var/lib/nowscale",
  "/opt/nowscale",
  // Where boot scripts mount storage: each instance mounts its own.
  "/mnt",
] as const;

/**
 * Commands the instance does not have: it runs no systemd (no PID 1 of its own), so systemctl and
 * hostnamectl are whited out of its /usr/bin (an overlay, writes go to the instance) and the boot
 * scripts take their non-systemd branch instead of acting on the host's systemd.
 */
const HIDDEN = ["bin/systemctl", "bin/hostnamectl"];

/**
 * Directories Debian's munge and slurmd packages ship (dpkg -L) inside the private ones: the image has
 * them even where the host's were cleaned out (a container's empty /var/log).
 */
const PACKAGE_DIRS: readonly (readonly [string, number, string])[] = [
  ["/var/log/munge", 0o700, "munge"],
  ["/var/lib/munge", 0o700, "munge"],
  ["/run/munge", 0o755, "munge"],
  ["/var/log/slurm", 0o755, "root"],
];

/** cloud-init's environment for user data, plus what the instance endpoints add. */
const BASE_ENV = {
  PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  HOME: "/root",
  LANG: "C.UTF-8",
  USER: "root",
};

// The overlay of /etc shows the image's own resolv.conf, not the one mounted over it: keep the host's.
const WRAPPER = `set -eu
dir=$1; hosts=$2; name=$3; shift 3
hostname "$name"
cat /etc/resolv.conf > "$dir/resolv.conf" 2>/dev/null || :
for d in ${OVERLAYS.join(" ")}; do
  o="$dir/overlay/$(printf %s "\${d#/}" | tr / -)"
  mount -t overlay "nowscale-overlay" -o "lowerdir=$d,upperdir=$o/upper,workdir=$o/work" "$d"
done
mount --bind "$dir/resolv.conf" /etc/resolv.conf
mount --bind "$hosts" /etc/hosts
while [ "$#" -gt 1 ]; do mount --bind "$1" "$2"; shift 2; done
exec /bin/bash "$dir/user-data"`;

export interface BootSpec {
  /** The instance's network namespace (exists, with its interfaces up). */
  netns: string;
  /** The instance's own directory (private dirs, user data, result). */
  dir: string;
  /** The console log file (appended; kept after the instance is gone). */
  consoleLog: string;
  userData: string;
  /** The instance's /etc/hosts. */
  hostsFile: string;
  /** Its host name at boot (cloud-init sets the one the metadata names before user data runs). */
  hostname: string;
  /** Added to cloud-init's environment (the endpoints' CA bundle). */
  env: Record<string, string>;
  /** More host paths bound to instance dirs: [instanceDir, hostPath] (e.g. the test bed's munge socket dir). */
  extraBinds?: readonly (readonly [string, string])[];
  /**
   * Programs the instance's /usr/sbin has beyond the host's: [name, text] (e.g. the local stand-in
   * for mount.nfs, testbed-nodes.ts).
   */
  sbinFiles?: readonly (readonly [string, string])[];
  /** Files created in the instance's private dirs before boot, e.g. the image's pre-installed marker. */
  imageFiles?: readonly string[];
}

export interface BootResult {
  code: number | null;
  signal: string | null;
  finishedAt: number;
}

/**
 * Starts the user data in the background and returns at once (a cloud's RunInstances does not wait for
 * the boot). `done` resolves when the script exits; the result is also written to DIR/boot-result.json.
 */
export async function bootInstance(spec: BootSpec): Promise<{ pid: number; done: Promise<BootResult> }> {
  if (!/^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$/.test(spec.hostname))
    throw new TypeError(`hostname: invalid "${spec.hostname.slice(0, 80)}"`);
  const root = join(spec.dir, "root");
  const upper = (tree: (typeof OVERLAYS)[number]) =>
    join(spec.dir, "overlay", tree.slice(1).replaceAll("/", "-"), "upper");
  for (const tree of OVERLAYS) {
    await mkdir(join(upper(tree), ".."), { recursive: true, mode: 0o700 });
    await mkdir(upper(tree), { recursive: true, mode: 0o755 });
    await mkdir(join(upper(tree), "..", "work"), { recursive: true, mode: 0o700 });
  }
  const binds: string[] = [];
  for (const path of INSTANCE_PRIVATE_DIRS) {
    const own = join(root, path);
    await mkdir(own, { recursive: true, mode: 0o755 });
    if (existsSync(path)) await copySkeleton(path, own);
    else {
      const tree = OVERLAYS.find((t) => path.startsWith(`${t}/`));
      await mkdir(tree === undefined ? path : join(upper(tree), path.slice(tree.length)), {
        recursive: true,
        mode: 0o755,
      });
    }
    binds.push(own, path);
  }
  for (const [path, mode, owner] of PACKAGE_DIRS) {
    const own = join(root, path);
    await mkdir(own, { recursive: true });
    await chmod(own, mode);
    const ids = await userIds(owner);
    await chown(own, ids.uid, ids.gid);
  }
  for (const [own, path] of spec.extraBinds ?? []) binds.push(own, path);
  for (const file of spec.imageFiles ?? []) {
    const target = join(root, file);
    if (!INSTANCE_PRIVATE_DIRS.some((d) => file.startsWith(`${d}/`)))
      throw new TypeError(`imageFiles: ${file} is not in a private directory of the instance`);
    await writeFile(target, "", { mode: 0o644 });
  }
  await mkdir(join(upper("/usr"), "bin"), { recursive: true, mode: 0o755 });
  await mkdir(join(upper("/usr"), "sbin"), { recursive: true, mode: 0o755 });
  for (const name of HIDDEN) {
    // An overlay whiteout (a 0/0 character device) hides the lower file.
    const whiteout = join(upper("/usr"), name);
    if (!existsSync(whiteout)) await runOk("mknod", [whiteout, "c", "0", "0"]);
  }
  for (const [name, text] of spec.sbinFiles ?? []) {
    if (!/^[a-z][a-z0-9._-]{0,63}$/.test(name))
      throw new TypeError(`sbinFiles: invalid name "${name.slice(0, 80)}"`);
    await writeFile(join(upper("/usr"), "sbin", name), text, { mode: 0o755 });
  }
  await writeFile(join(spec.dir, "user-data"), spec.userData, { mode: 0o700 });
  const log = openSync(spec.consoleLog, "a", 0o600);
  writeSync(
    log,
    `${new Date().toISOString()} nowscale-local: running user data (${Buffer.byteLength(spec.userData)} bytes)\n`,
  );
  const child = spawn(
    "nsenter",
    [
      `--net=${netnsPath(spec.netns)}`,
      "unshare",
      "--mount",
      "--uts",
      "--propagation",
      "private",
      "/bin/bash",
      "-c",
      WRAPPER,
      "nowscale-boot",
      spec.dir,
      spec.hostsFile,
      spec.hostname,
      ...binds,
    ],
    { env: { ...BASE_ENV, ...spec.env }, stdio: ["ignore", log, log], detached: true },
  );
  child.unref();
  let ended = false;
  const done = new Promise<BootResult>((resolve) => {
    const end = (result: BootResult, line: string) => {
      if (ended) return;
      ended = true;
      try {
        writeSync(log, `${new Date().toISOString()} nowscale-local: ${line}\n`);
      } finally {
        closeSync(log);
      }
      void writeFile(join(spec.dir, "boot-result.json"), JSON.stringify(result)).catch(() => undefined);
      resolve(result);
    };
    child.on("exit", (code, signal) =>
      end({ code, signal, finishedAt: Date.now() }, `user data exited with ${code ?? signal}`),
    );
    child.on("error", (error) =>
      end(
        { code: null, signal: null, finishedAt: Date.now() },
        `could not run the user data: ${error.message}`,
      ),
    );
  });
  if (child.pid === undefined) throw new Error("the user data did not start");
  return { pid: child.pid, done };
}

/**
 * The image's directories without their files: the instance's private directory starts with the host's
 * subdirectories (one level, same owner and mode), as a fresh instance of this machine's image would
 * have them (e.g. /var/log/munge and /var/lib/munge owned by munge, which munged insists on).
 */
async function copySkeleton(hostDir: string, own: string): Promise<void> {
  const top = await stat(hostDir);
  await chmod(own, top.mode & 0o7777);
  await chown(own, top.uid, top.gid);
  for (const entry of await readdir(hostDir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const info = await stat(join(hostDir, entry.name));
    const target = join(own, entry.name);
    await mkdir(target, { recursive: true });
    await chmod(target, info.mode & 0o7777);
    await chown(target, info.uid, info.gid);
  }
}

/** A user's uid and gid from /etc/passwd (root when the user does not exist). */
async function userIds(name: string): Promise<{ uid: number; gid: number }> {
  const passwd = await readFile("/etc/passwd", "utf8").catch(() => "");
  for (const line of passwd.split("\n")) {
    const [user, , uid, gid] = line.split(":");
    if (user === name && uid !== undefined && gid !== undefined)
      return { uid: Number(uid), gid: Number(gid) };
  }
  return { uid: 0, gid: 0 };
}

/** The last `lines` lines of a console log (undefined when there is none). */
export async function consoleTail(file: string, lines = 20): Promise<string | undefined> {
  const text = await readFile(file, "utf8").catch(() => undefined);
  if (text === undefined) return undefined;
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

async function runOk(file: string, args: string[]): Promise<void> {
  const r = await runCommand(file, args, { timeoutMs: 15_000 });
  if (r.code !== 0) throw new Error(`${file} failed: ${(r.stderr || r.error || "").trim().slice(0, 300)}`);
}
