import { readFileSync } from "node:fs";
import { mkdir, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { type LocalSettings, localPaths } from "./settings.js";

/**
 * The running local mode as `local status` and `local down` see it. Written by the supervisor at each
 * step (atomically: write then rename), so after a SIGKILL it still names every process it started.
 */
export interface LocalState {
  settings: LocalSettings;
  phase: "starting" | "ready" | "stopping" | "failed";
  /** The background process that runs the API, the scaler loop and the workflows. */
  supervisorPid: number;
  agentPid?: number;
  /** The agent's watcher, while a cluster holds the master (settings.wake). */
  watcherPid?: number;
  /** dynalite's endpoint (in the supervisor's process; a Unix socket only root may reach). */
  dynamoEndpoint?: string;
  /** Why the start failed (phase failed). */
  error?: string;
  /** Epoch ms. */
  startedAt: number;
  readyAt?: number;
}

export async function writeLocalState(state: LocalState): Promise<void> {
  const file = localPaths(state.settings.stateDir).stateFile;
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, file);
}

/** The state file of `stateDir`, or undefined when local mode is not (or no longer) there. */
export function readLocalState(stateDir: string): LocalState | undefined {
  try {
    return JSON.parse(readFileSync(localPaths(stateDir).stateFile, "utf8")) as LocalState;
  } catch {
    return undefined;
  }
}

/** True while `pid` runs and its command line contains `marker` (a reused pid is not ours). */
export function isOurProcess(pid: number | undefined, marker: string): boolean {
  if (pid === undefined || !Number.isSafeInteger(pid) || pid <= 1) return false;
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return cmdline.includes(marker) && !/^\d+ \(.*\) Z/s.test(stat);
  } catch {
    return false;
  }
}
