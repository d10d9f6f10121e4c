import { z } from "zod";
import { parseWith } from "../../lib/core/validation.js";
import { storageOptionSchema } from "./bootstrap.js";
import { STORAGE_LINE_PREFIX } from "./node-storage-sync.js";
import { editSlurmConf } from "./partition-apply.js";

/**
 * The cluster's storage mounts on the nodes that are already running (THPC AddClusterStorageOption:
 * "mounted on every node of the cluster"). The channel is Slurm's own: the master's agent writes the
 * wanted mounts as one comment line of slurm.conf and runs `scontrol reconfigure`; configless slurmd
 * receives the whole file with its comments (measured on 22.05: /run/slurm/conf/slurm.conf, a link to
 * the node's conf-cache) and each node's `nowscale-storage-sync` (installed by its boot script, run every
 * STORAGE_SYNC_INTERVAL_S) mounts what is new and unmounts what was removed. No new port, no new key, no
 * path from the master into the nodes: the nodes already trust slurmctld (munge) for their slurm.conf.
 * The line is data, not shell: base64 of JSON, and every entry is checked against the boot-script
 * renderer's allow-lists on the master AND again on the node before mount(8) sees it.
 */

export const nodeStorageSchema = z.array(storageOptionSchema).max(20);
export type NodeStorage = z.output<typeof nodeStorageSchema>;

/** Checks a set-node-storage request (`{"storage": [...]}` or the list); ValidationError naming the field. */
export function parseNodeStorage(input: unknown): NodeStorage {
  const list =
    typeof input === "object" && input !== null && !Array.isArray(input) && "storage" in input
      ? (input as { storage: unknown }).storage
      : input;
  return parseWith(nodeStorageSchema, list, "storage");
}

/** The storage line of a slurm.conf, decoded; [] when there is none. Throws on a damaged line. */
export function readStorageLine(conf: string): NodeStorage {
  const line = conf.split("\n").find((l) => l.startsWith(STORAGE_LINE_PREFIX));
  if (line === undefined) return [];
  const json = Buffer.from(line.slice(STORAGE_LINE_PREFIX.length).trim(), "base64").toString("utf8");
  return parseNodeStorage(JSON.parse(json));
}

/** slurm.conf with its storage line saying `storage` (removed when empty); the rest untouched. */
export function rewriteStorageLine(conf: string, storage: NodeStorage): string {
  const lines = conf.split("\n").filter((l) => !l.startsWith(STORAGE_LINE_PREFIX));
  if (storage.length === 0) return lines.join("\n");
  const encoded = Buffer.from(JSON.stringify(storage), "utf8").toString("base64");
  const last = lines.at(-1) === "" ? lines.length - 1 : lines.length;
  lines.splice(last, 0, `${STORAGE_LINE_PREFIX}${encoded}`);
  return lines.join("\n");
}

export interface NodeStorageResult {
  storage: NodeStorage;
  /** False when the file already said so: nothing written, no reconfigure. */
  changed: boolean;
}

/** Reconfigure failed and the previous slurm.conf was put back. */
export class StorageRollbackError extends Error {
  override readonly name = "StorageRollbackError";
}

/**
 * Makes the storage line of the master's slurm.conf say `input` and has slurmctld push the file to the
 * nodes (`scontrol reconfigure`): checked first (ValidationError, file untouched), the previous file
 * kept as `<conf>.nowscale-prev`, written atomically, put back when reconfigure fails
 * (StorageRollbackError). Idempotent.
 */
export async function applyNodeStorage(
  input: unknown,
  options: { confPath: string; reconfigure: () => Promise<void> },
): Promise<NodeStorageResult> {
  const storage = parseNodeStorage(input);
  const { changed } = await editSlurmConf(
    options,
    (text) => rewriteStorageLine(text, storage),
    (message, cause) => new StorageRollbackError(message, { cause }),
  );
  return { storage, changed };
}

export { STORAGE_LINE_PREFIX, STORAGE_SYNC_INTERVAL_S } from "./node-storage-sync.js";
