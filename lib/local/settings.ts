import { join } from "node:path";

/**
 * How one local-mode installation is laid out: its state directory, ports, and the names of everything
 * it creates on the machine (network namespaces, veths, bridge). Every name it creates starts with
 * `prefix`, so `local down` can find all of it again after a crash from the state file alone.
 */
export interface LocalSettings {
  /** Everything the local mode writes lives here (absolute path). */
  stateDir: string;
  /** The API (and status page) on 127.0.0.1. */
  apiPort: number;
  /** The master's agent on 127.0.0.1. */
  agentPort: number;
  slurmctldPort: number;
  slurmdPort: number;
  /** Namespace prefix; the bridge is `${prefix}br`. Letters, digits and '-', ending with '-'. */
  prefix: string;
  /** First three octets of the node subnet; slurmctld listens on `${subnet}.1`. */
  subnet: string;
  /** Seconds between two scale cycles of each RUNNING cluster. */
  scalerIntervalSeconds: number;
  /** Simulated boot time of a local instance (ms). */
  bootDelayMs: number;
  /**
   * The agent's watcher wakes the scaler through the local bus when jobs are submitted (event-driven
   * scale-out). False: polling every `scalerIntervalSeconds` only. Absent (an older state file): true.
   */
  wake?: boolean;
}

export const DEFAULT_STATE_DIR = "/var/tmp/nowscale-local";

export const DEFAULT_SETTINGS: Omit<LocalSettings, "stateDir"> = {
  apiPort: 8080,
  agentPort: 8787,
  slurmctldPort: 6817,
  slurmdPort: 6818,
  prefix: "nsl-",
  subnet: "192.168.250",
  scalerIntervalSeconds: 2,
  bootDelayMs: 1000,
  wake: true,
};

const PREFIX = /^[a-z][a-z0-9]{0,5}-$/;
const SUBNET = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Checks every field; throws TypeError naming the bad one (they reach ip(8), slurm.conf and file names). */
export function checkSettings(s: LocalSettings): LocalSettings {
  // It is written into slurm.conf (StateSaveLocation, the pid and log files), which splits on spaces.
  if (!/^\/[A-Za-z0-9._/-]*$/.test(s.stateDir))
    throw new TypeError(
      `the state directory must be an absolute path of letters, digits, '.', '_', '-' and '/', got "${s.stateDir.slice(0, 200)}"`,
    );
  for (const [name, port] of [
    ["apiPort", s.apiPort],
    ["agentPort", s.agentPort],
    ["slurmctldPort", s.slurmctldPort],
    ["slurmdPort", s.slurmdPort],
  ] as const) {
    if (!Number.isInteger(port) || port < 1024 || port > 65_535)
      throw new TypeError(`${name} must be a port number from 1024 to 65535, got ${port}`);
  }
  // Short: `${prefix}br` and the namespaces must stay valid interface and file names.
  if (!PREFIX.test(s.prefix))
    throw new TypeError(`prefix must be 1-6 lower-case letters or digits then '-', got "${s.prefix}"`);
  const m = SUBNET.exec(s.subnet);
  if (m === null || m.slice(1).some((o) => Number(o) > 255))
    throw new TypeError(`subnet must be three octets such as 192.168.250, got "${s.subnet}"`);
  if (!(s.scalerIntervalSeconds >= 1 && s.scalerIntervalSeconds <= 300))
    throw new TypeError("scalerIntervalSeconds must be 1 to 300");
  if (!(Number.isInteger(s.bootDelayMs) && s.bootDelayMs >= 0 && s.bootDelayMs <= 600_000))
    throw new TypeError("bootDelayMs must be 0 to 600000");
  if (s.wake !== undefined && typeof s.wake !== "boolean") throw new TypeError("wake must be true or false");
  return s;
}

/** Where each piece lives under the state directory. Pure. */
export function localPaths(stateDir: string) {
  return {
    stateFile: join(stateDir, "local.json"),
    lockFile: join(stateDir, "local.lock"),
    logDir: join(stateDir, "logs"),
    supervisorLog: join(stateDir, "logs", "supervisor.log"),
    agentLog: join(stateDir, "logs", "agent.log"),
    /** The agent's watcher (`nowscale-agent watch`), while a cluster holds the master. */
    watcherLog: join(stateDir, "logs", "agent-watch.log"),
    agentKey: join(stateDir, "agent.key"),
    /** The local API's bearer token (0600, root only; lib/local/api-auth.ts). */
    apiToken: join(stateDir, "api.token"),
    /** A 0700 directory for sockets only root may connect to (dynalite's). */
    runDir: join(stateDir, "run"),
    slurmDir: join(stateDir, "slurm"),
    instancesDir: join(stateDir, "instances"),
    /**
     * The host directory standing for an NFS server at the bridge's host address: `storage add --remote
     * HOST:/path` mounts nfs-exports/path (lib/providers/local/testbed-nodes.ts, localMountNfs).
     */
    nfsExportRoot: join(stateDir, "nfs-exports"),
  };
}

export function bridgeName(s: Pick<LocalSettings, "prefix">): string {
  return `${s.prefix}br`;
}

export function apiUrl(s: Pick<LocalSettings, "apiPort">): string {
  return `http://127.0.0.1:${s.apiPort}`;
}
