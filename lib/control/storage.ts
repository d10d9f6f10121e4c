import type { z } from "zod";
import { initScriptSchema, storageOptionSchema } from "../../scheduler-plugins/slurm/bootstrap.js";
import { parseWith, ValidationError } from "../core/validation.js";
import type { AgentChannel } from "../ports/agent-channel.js";
import type { Clock } from "../ports/clock.js";
import type { ClusterRecord, NodeSetup, StateStore } from "../ports/state-store.js";
import { checkComputeUserDataFits } from "./compute-user-data.js";
import { StateRefusedError, UnknownNameError } from "./errors.js";
import { appendControlEvent as event } from "./events.js";

/**
 * A cluster's node setup (THPC AddClusterStorageOption / DeleteClusterStorageOption /
 * DescribeClusterStorageOption and ModifyInitNodeScripts): storage mounts and init scripts kept on the
 * cluster record (`nodeSetup`) and rendered into every compute node's boot script from then on
 * (compute-user-data.ts → scheduler-plugins/slurm/bootstrap.ts, which checks them again).
 *
 * Validation is the renderer's own: storageOptionSchema and initScriptSchema (allow-listed paths,
 * host:/path remotes, https:// or s3:// URLs, inline text base64-encoded on its way to the node), plus
 * the mount points a node needs for itself (RESERVED_MOUNT_ROOTS). A bad input is a ValidationError
 * naming the field, and nothing is written.
 *
 * Running nodes: storage changes of a RUNNING cluster go to the master first, through the agent's
 * set-node-storage (scheduler-plugins/slurm/node-storage.ts: one comment line of slurm.conf, scontrol
 * reconfigure, rollback), which configless Slurm sends to every node, whose storage sync mounts or
 * unmounts within STORAGE_SYNC_INTERVAL_S; then the record (as queues.ts: a lost race leaves the master
 * ahead, and the next change sends the whole set again). Init scripts reach new nodes only, as THPC's
 * ModifyInitNodeScripts ("existing nodes do not run it"): re-running setup under running jobs is unsafe.
 */

export interface StorageDeps {
  store: StateStore;
  clock: Clock;
  /** The cluster's agent, which tells the running nodes (absent: only new nodes get the change). */
  runtime?: (cluster: ClusterRecord) => Promise<{ agent: AgentChannel }>;
  /** Who asked (the IAM principal), recorded on the event. */
  by?: string | undefined;
}

export type StorageOptionView = z.output<typeof storageOptionSchema>;
export type InitScriptView = z.output<typeof initScriptSchema>;

/** What a storage change answers: the options now, and whether the running nodes were told. */
export interface StorageChange {
  storage: StorageOptionView[];
  /**
   * "synced": the master's slurm.conf says so and the running nodes follow within the sync interval;
   * otherwise why they were not told (the cluster is not RUNNING, or its agent has no such call): the
   * nodes launched afterwards get it all the same.
   */
  runningNodes: string;
}

/** At most this many mounts and init scripts per cluster (the renderer's own limits). */
export const MAX_STORAGE_OPTIONS = 20;
export const MAX_INIT_SCRIPTS = 20;

/**
 * Mount points a node cannot give away: the system's own trees and where Slurm, munge and NowScale keep
 * their files. A storage option's localPath may not be one of these nor lie under one.
 */
export const RESERVED_MOUNT_ROOTS = [
  "/bin",
  "/boot",
  "/dev",
  "/etc",
  "/lib",
  "/lib32",
  "/lib64",
  "/libx32",
  "/proc",
  "/root",
  "/run",
  "/sbin",
  "/sys",
  "/tmp",
  "/usr",
  "/var",
] as const;

/** The cluster's storage options (DescribeClusterStorageOption). */
export function describeStorageOptions(cluster: ClusterRecord): StorageOptionView[] {
  return setupOf(cluster).storage as StorageOptionView[];
}

/** The cluster's init scripts, in the order nodes run them. */
export function describeInitScripts(cluster: ClusterRecord): InitScriptView[] {
  return setupOf(cluster).initScripts as InitScriptView[];
}

/**
 * Adds one storage option (AddClusterStorageOption). Refused (409) when the localPath is already a mount
 * point of the cluster or the cluster is being deleted; 400 naming the field when the option is invalid.
 * Answers the cluster's storage options after the change.
 */
export async function addStorageOption(
  deps: StorageDeps,
  cluster: ClusterRecord,
  input: unknown,
): Promise<StorageChange> {
  alive(cluster);
  const option = checkedStorageOption(input);
  const setup = setupOf(cluster);
  if (setup.storage.some((s) => s.localPath === option.localPath))
    throw new StateRefusedError(`${option.localPath} is already a storage mount point of the cluster`, [
      { path: "localPath", message: `${option.localPath} is already mounted: delete it first` },
    ]);
  if (setup.storage.length >= MAX_STORAGE_OPTIONS)
    throw new StateRefusedError(`the cluster already has ${MAX_STORAGE_OPTIONS} storage options`);
  const storage = [...setup.storage, option];
  // Before the master is told: a setup whose boot script no cloud accepts would fail every launch.
  checkComputeUserDataFits(
    { ...cluster, nodeSetup: { ...setup, storage } },
    "localPath",
    "use shorter mount paths (localPath, remotePath, mountOptions) or fewer mounts, or make the init scripts URLs",
  );
  const runningNodes = await tellRunningNodes(deps, cluster, storage);
  await save(deps, cluster, { ...setup, storage }, `storage ${option.localPath} added (${option.protocol})`);
  return { storage: storage as StorageOptionView[], runningNodes };
}

/**
 * Deletes the storage option mounted at `localPath` (DeleteClusterStorageOption): nodes launched from
 * now on do not mount it, and running nodes unmount it. Slurm cannot say which job reads which path, so
 * the deletion is refused (409) while any job runs on the cluster unless `force`; forced, or not, a node
 * never unmounts under a process using the mount (umount fails busy, and its sync retries until the
 * job is done). 404 naming `localPath` when the cluster has no such mount point.
 */
export async function deleteStorageOption(
  deps: StorageDeps,
  cluster: ClusterRecord,
  localPath: string,
  options: { force?: boolean } = {},
): Promise<StorageChange> {
  alive(cluster);
  const path = normalPath(localPath);
  const setup = setupOf(cluster);
  if (!setup.storage.some((s) => s.localPath === path))
    throw new UnknownNameError(`no storage option mounted at ${path.slice(0, 200)}`, [
      { path: "localPath", message: "not a storage mount point of the cluster" },
    ]);
  const storage = setup.storage.filter((s) => s.localPath !== path);
  if (options.force !== true && cluster.status === "RUNNING" && deps.runtime !== undefined) {
    const report = await (await deps.runtime(cluster)).agent.report();
    const running = report.jobs.filter((g) => g.state === "RUNNING").reduce((n, g) => n + g.count, 0);
    if (running > 0)
      throw new StateRefusedError(
        `${running} job(s) run on the cluster and may use ${path}: wait, or delete with force (each node unmounts it once nothing there uses it)`,
      );
  }
  const runningNodes = await tellRunningNodes(deps, cluster, storage);
  await save(deps, cluster, { ...setup, storage }, `storage ${path} deleted`);
  return { storage: storage as StorageOptionView[], runningNodes };
}

/**
 * Replaces the init scripts as a whole (ModifyInitNodeScripts; `[]` removes them all). Each is checked
 * as the renderer checks it; 400 naming `initScripts[i]...` and nothing written when one is invalid.
 */
export async function setInitScripts(
  deps: StorageDeps,
  cluster: ClusterRecord,
  input: unknown,
): Promise<InitScriptView[]> {
  alive(cluster);
  if (!Array.isArray(input))
    throw new ValidationError("init scripts", [{ path: "initScripts", message: "expected an array" }]);
  if (input.length > MAX_INIT_SCRIPTS)
    throw new ValidationError("init scripts", [
      { path: "initScripts", message: `at most ${MAX_INIT_SCRIPTS} scripts` },
    ]);
  const scripts = input.map((s, i) => {
    try {
      return parseWith(initScriptSchema, s, "init script");
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      throw new ValidationError(
        "init scripts",
        error.issues.map((issue) => ({
          ...issue,
          path: `initScripts[${i}]${issue.path === "" ? "" : `.${issue.path}`}`,
        })),
      );
    }
  });
  const nodeSetup = { ...setupOf(cluster), initScripts: scripts };
  // The field named is the longest inline script's: moving it to a URL shrinks the boot script most.
  const longest = scripts.reduce<number | undefined>((best, s, i) => {
    if (!("inline" in s)) return best;
    const current = best === undefined ? undefined : scripts[best];
    return current !== undefined && "inline" in current && current.inline.length >= s.inline.length
      ? best
      : i;
  }, undefined);
  checkComputeUserDataFits(
    { ...cluster, nodeSetup },
    longest === undefined ? "initScripts" : `initScripts[${longest}].inline`,
    "put the script at an https:// or s3:// URL instead of inline (inline text is base64-encoded twice), or shorten it",
  );
  await save(deps, cluster, nodeSetup, `${scripts.length} init script(s) set`);
  return scripts;
}

/** One storage option, checked by the renderer's schema and against the reserved mount points. */
export function checkedStorageOption(input: unknown): StorageOptionView {
  const option = parseWith(storageOptionSchema, input, "storage option");
  const localPath = normalPath(option.localPath);
  const reserved = RESERVED_MOUNT_ROOTS.find((r) => localPath === r || localPath.startsWith(`${r}/`));
  if (reserved !== undefined)
    throw new ValidationError("storage option", [
      {
        path: "localPath",
        message: `${reserved} belongs to the node's system: mount under /mnt, /data, /opt, /home or another path of your own`,
      },
    ]);
  return { ...option, localPath };
}

/** Sends the whole set to the master (set-node-storage) when the cluster runs; answers what happened. */
async function tellRunningNodes(
  deps: StorageDeps,
  cluster: ClusterRecord,
  storage: NodeSetup["storage"],
): Promise<string> {
  if (cluster.status !== "RUNNING") return `not told: the cluster is ${cluster.status}`;
  if (deps.runtime === undefined) return "not told: no agent";
  const { agent } = await deps.runtime(cluster);
  if (agent.setNodeStorage === undefined) return "not told: the agent channel cannot set node storage";
  await agent.setNodeStorage(storage);
  return "synced";
}

function normalPath(path: string): string {
  return path.length > 1 ? path.replace(/\/+$/, "") : path;
}

function setupOf(cluster: ClusterRecord): NodeSetup {
  return { storage: cluster.nodeSetup?.storage ?? [], initScripts: cluster.nodeSetup?.initScripts ?? [] };
}

function alive(cluster: ClusterRecord): void {
  if (cluster.status === "DELETING" || cluster.status === "DELETED")
    throw new StateRefusedError(`the cluster is ${cluster.status}`);
}

async function save(deps: StorageDeps, cluster: ClusterRecord, nodeSetup: NodeSetup, what: string) {
  await deps.store.updateCluster(cluster.clusterId, cluster.version, { nodeSetup, now: deps.clock.now() });
  await event(
    deps.store,
    cluster.clusterId,
    deps.clock,
    "CONFIG_UPDATED",
    `node setup: ${what}`,
    undefined,
    undefined,
    undefined,
    deps.by,
  );
}
