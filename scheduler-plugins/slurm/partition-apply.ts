import { randomBytes } from "node:crypto";
import { copyFile, open, readFile, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { type PartitionSpec, parsePartitionSpecs } from "../../lib/ports/agent-protocol.js";
import { managedPartitions, rewritePartitionSection } from "./slurm-conf.js";

/** Suffix of the copy of slurm.conf kept before each change: the rollback, and what a person restores. */
export const PREVIOUS_CONF_SUFFIX = ".nowscale-prev";

export interface PartitionApplyOptions {
  /** The master's slurm.conf: SLURM_CONF, else /etc/slurm/slurm.conf. */
  confPath: string;
  /** `scontrol reconfigure`: resolves when slurmctld took the file, throws when it did not. */
  reconfigure: () => Promise<void>;
}

export interface PartitionApplyResult {
  /** The NowScale partitions the file declares now. */
  partitions: string[];
  added: string[];
  removed: string[];
  /** False when the file already said so: nothing written, no reconfigure. */
  changed: boolean;
}

/** Reconfigure failed and the previous slurm.conf was put back (the cause is the reconfigure's error). */
export class PartitionRollbackError extends Error {
  override readonly name = "PartitionRollbackError";
}

/**
 * Makes the NowScale partitions of the master's slurm.conf exactly `specs` (`set-partitions`): checks
 * them (TypeError naming the field, file untouched), rewrites the partition section
 * (rewritePartitionSection: the same renderer as the master's bootstrap), keeps the current file as
 * `<conf>.nowscale-prev`, writes the new one atomically (temporary file, fsync, rename, fsync of the
 * directory) and runs `scontrol reconfigure`. When reconfigure fails the previous file is put back the same
 * way, reconfigure is tried once more (so slurmctld and the file agree) and PartitionRollbackError is
 * thrown with the first failure as its cause. Idempotent: the same set twice writes nothing.
 */
export async function applyPartitions(
  specs: readonly PartitionSpec[],
  options: PartitionApplyOptions,
): Promise<PartitionApplyResult> {
  const wanted = parsePartitionSpecs([...specs]);
  const { current, next, changed } = await editSlurmConf(
    options,
    (text) => rewritePartitionSection(text, wanted),
    (message, cause) => new PartitionRollbackError(message, { cause }),
  );
  const before = managedPartitions(current);
  const after = managedPartitions(next);
  return {
    partitions: after,
    added: after.filter((p) => !before.includes(p)),
    removed: before.filter((p) => !after.includes(p)),
    changed,
  };
}

/**
 * One edit of slurm.conf, under withConfLock: `rewrite` gives the next text from the current one; the same
 * text writes nothing (changed false, no reconfigure). Otherwise the current file is kept as
 * `<conf>.nowscale-prev`, the new one written atomically and `reconfigure` run; when that fails, the
 * previous file is put back, reconfigure tried once more (slurmctld may have read part of the new file
 * before refusing it: it reads the old one again) and `rollbackError(message, cause)` thrown. The
 * partitions, the storage line and the users lines all change the file this way.
 */
export async function editSlurmConf(
  options: PartitionApplyOptions,
  rewrite: (current: string) => string,
  rollbackError: (message: string, cause: unknown) => Error,
): Promise<{ current: string; next: string; changed: boolean }> {
  return withConfLock(options.confPath, async () => {
    const current = await readFile(options.confPath, "utf8");
    const next = rewrite(current);
    if (next === current) return { current, next, changed: false };
    await atomicWrite(`${options.confPath}${PREVIOUS_CONF_SUFFIX}`, current);
    await atomicWrite(options.confPath, next);
    try {
      await options.reconfigure();
    } catch (error) {
      await atomicWrite(options.confPath, current);
      await options.reconfigure().catch(() => undefined);
      const message = error instanceof Error ? error.message : String(error);
      throw rollbackError(
        `scontrol reconfigure failed, slurm.conf rolled back to the previous file: ${message.slice(0, 300)}`,
        error,
      );
    }
    return { current, next, changed: true };
  });
}

/** How long an edit of slurm.conf waits for another one to finish (each is a write and a reconfigure). */
export const CONF_LOCK_WAIT_MS = 180_000;

/**
 * Runs `body` (read slurm.conf, write it, reconfigure, maybe roll back) while holding `<conf>.nowscale-lock`,
 * created exclusively with this process's pid: the partitions, the storage line and the users lines are
 * each a read-modify-write of the same file by separate agent processes (one per run-command), and two
 * at once lost one's change, a rollback even putting back a file without the other's. A lock whose
 * process is gone (a crashed agent) is taken over. Throws when another edit holds it past `waitMs`.
 */
export async function withConfLock<T>(
  confPath: string,
  body: () => Promise<T>,
  waitMs = CONF_LOCK_WAIT_MS,
): Promise<T> {
  const lock = `${confPath}.nowscale-lock`;
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      const file = await open(lock, "wx", 0o600);
      await file.writeFile(String(process.pid)).finally(() => file.close());
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const holder = Number((await readFile(lock, "utf8").catch(() => "")).trim());
    if (Number.isSafeInteger(holder) && holder > 0 && !processAlive(holder)) {
      await rm(lock, { force: true });
      continue;
    }
    if (Date.now() >= deadline)
      throw new Error(`slurm.conf is being changed by another agent command (${lock}, pid ${holder}): retry`);
    await sleep(100);
  }
  try {
    return await body();
  } finally {
    await rm(lock, { force: true });
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

/** Temporary file beside the target (same file system), fsync, rename over it, fsync of the directory. */
export async function atomicWrite(path: string, text: string): Promise<void> {
  const temporary = `${path}.tmp-${randomBytes(6).toString("hex")}`;
  try {
    // The mode of the file it replaces (slurm.conf is world-readable: every client reads it).
    await copyFile(path, temporary).catch(() => undefined);
    const file = await open(temporary, "w", 0o644);
    try {
      await file.writeFile(text, "utf8");
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  const dir = await open(dirname(path), "r");
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
