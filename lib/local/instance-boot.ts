import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, writeSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { netnsPath } from "./netns.js";

/**
 * Runs an instance's user data as cloud-init runs it: once, as root, with its output in the
 * instance's console log. The script runs in the instance's network namespace and in a private mount
 * and UTS namespace of its own, where:
 * - /etc/hosts is the instance's (the cloud API names on its loopback: instance-endpoints/);
 * - the directories a node writes (munge's key, socket and state, Slurm's spool and gres.conf, logs,
 *   NowScale's files) are the instance's own, bound over the host's, so every instance has its own
 *   munged and slurmd and nothing it writes there reaches the host or another instance;
 * - systemctl and hostnamectl are absent (an instance without systemd as PID 1: the scripts take their
 *   non-systemd branch), and `hostname` changes only the instance's UTS namespace.
 * The daemons the script starts stay in these namespaces; `ip netns pids` finds them for teardown.
 */

/** Directories every instance has for itself (created on the host, empty, when missing: mount points). */
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
] as const;

/** Binaries hidden in the instance (a bind of /dev/null: not executable, so `command -v` finds nothing). */
const HIDDEN = ["/usr/bin/systemctl", "/bin/systemctl", "/usr/bin/hostnamectl", "/bin/hostnamectl"];

/** cloud-init's environment for user data, plus what the instance endpoints add. */
const BASE_ENV = {
  PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  HOME: "/root",
  LANG: "C.UTF-8",
  USER: "root",
};

const WRAPPER = `set -eu
dir=$1; hosts=$2; shift 2
mount --bind "$hosts" /etc/hosts
while [ "$#" -gt 1 ] && [ "$1" != -- ]; do mount --bind "$1" "$2"; shift 2; done
shift
for f in "$@"; do if [ -e "$f" ] && [ ! -L "$f" ]; then mount --bind /dev/null "$f"; fi; done
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
  /** Added to cloud-init's environment (the endpoints' CA bundle). */
  env: Record<string, string>;
  /** More host paths bound to instance dirs: [instanceDir, hostPath] (e.g. the test bed's munge socket dir). */
  extraBinds?: readonly (readonly [string, string])[];
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
  const root = join(spec.dir, "root");
  const binds: string[] = [];
  for (const path of INSTANCE_PRIVATE_DIRS) {
    const own = join(root, path);
    await mkdir(own, { recursive: true, mode: 0o755 });
    if (!existsSync(path)) await mkdir(path, { recursive: true, mode: 0o755 });
    binds.push(own, path);
  }
  for (const [own, path] of spec.extraBinds ?? []) binds.push(own, path);
  for (const file of spec.imageFiles ?? []) {
    const target = join(root, file);
    if (!INSTANCE_PRIVATE_DIRS.some((d) => file.startsWith(`${d}/`)))
      throw new TypeError(`imageFiles: ${file} is not in a private directory of the instance`);
    await writeFile(target, "", { mode: 0o644 });
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
      ...binds,
      "--",
      ...HIDDEN,
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

/** The last `lines` lines of a console log (undefined when there is none). */
export async function consoleTail(file: string, lines = 20): Promise<string | undefined> {
  const text = await readFile(file, "utf8").catch(() => undefined);
  if (text === undefined) return undefined;
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}
