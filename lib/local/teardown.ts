import { readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { applyUsers } from "../../scheduler-plugins/slurm/users-apply.js";
import { signal, sleep } from "../providers/local/netns.js";
import { stopTestbed, type Testbed } from "../providers/local/slurm-testbed.js";
import { bridgeName, type LocalSettings, localPaths } from "./settings.js";
import { isOurProcess, type LocalState } from "./state-file.js";

/** The marker in the agent's command line, so a reused pid is never signalled. */
export const AGENT_MARKER = "nowscale-agent";

/** The test bed of a local mode, rebuilt from its settings alone (no running process needed). */
export function localTestbed(settings: LocalSettings): Testbed {
  const slurmDir = localPaths(settings.stateDir).slurmDir;
  const confPath = join(slurmDir, "slurm.conf");
  return {
    stateDir: slurmDir,
    confPath,
    env: { ...process.env, SLURM_CONF: confPath },
    controlAddress: `${settings.subnet}.1`,
    slurmctldPort: settings.slurmctldPort,
    netnsPrefix: settings.prefix,
    network: { bridge: bridgeName(settings), hostAddress: `${settings.subnet}.1` },
  };
}

/** SIGTERM, then SIGKILL after `graceMs`, to `pid` if it is still the process carrying `marker`. */
export async function stopProcess(pid: number | undefined, marker: string, graceMs = 10_000): Promise<void> {
  if (!isOurProcess(pid, marker)) return;
  signal(pid as number, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && isOurProcess(pid, marker)) await sleep(100);
  if (isOurProcess(pid, marker)) signal(pid as number, "SIGKILL");
}

/**
 * Removes everything a local mode made, whatever state it was left in (also after a SIGKILL): the
 * agent and its watcher, every namespace node with the prefix (their slurmd and jobs, veths, Slurm node entries),
 * slurmctld, munged, the bridge, the clusters' users on this machine (homes kept), then slurmctld's saved state, instance records, keys and token, sockets, lock and
 * state file. Logs stay under `logs/` (and `slurm/log/`). Idempotent.
 */
export async function tearDownLocal(settings: LocalSettings, state?: LocalState): Promise<void> {
  const paths = localPaths(settings.stateDir);
  const agentPid = state?.agentPid ?? (await pidFrom(join(settings.stateDir, "agent.pid")));
  await stopProcess(state?.watcherPid, AGENT_MARKER);
  await stopProcess(agentPid, AGENT_MARKER);
  await stopTestbed(localTestbed(settings));
  // The clusters (in dynalite) go, so their users go from this machine, the local master (homes kept,
  // as `users delete`); a cloud master's accounts go with its instance. Only NowScale's accounts (their
  // GECOS and uid range, users-apply.ts) are touched. Best effort: the rest of the teardown goes on.
  await applyUsers({ users: [], purge: [] }).catch(() => undefined);
  // Saved controller state would bring the dynamic nodes back on the next start.
  for (const entry of await readdir(paths.slurmDir).catch(() => [] as string[])) {
    if (entry !== "log") await rm(join(paths.slurmDir, entry), { recursive: true, force: true });
  }
  for (const path of [
    paths.instancesDir,
    paths.agentKey,
    paths.apiToken,
    // Cluster users' passwords and keys (lib/local/user-secrets.ts): their clusters go with dynalite.
    join(settings.stateDir, "secrets"),
    paths.runDir,
    join(settings.stateDir, "agent.pid"),
    paths.lockFile,
    paths.stateFile,
  ]) {
    await rm(path, { recursive: true, force: true });
  }
}

async function pidFrom(file: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(file, "utf8")).trim());
    return Number.isSafeInteger(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}
