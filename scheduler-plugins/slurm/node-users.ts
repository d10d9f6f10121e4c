import {
  MAX_USERS,
  parseUsersRequest,
  USER_ID_MAX,
  USER_ID_MIN,
  type UsersRequest,
  userNameProblem,
} from "../../lib/ports/cluster-users.js";
import { USERS_LINE_PREFIX } from "./node-storage-sync.js";
import { editSlurmConf } from "./partition-apply.js";

/**
 * The cluster's users on the compute nodes that are already running (a node launched later gets them in
 * its boot script). The channel is the storage options' (node-storage.ts): the master's agent writes the
 * set as comment lines of slurm.conf and runs `scontrol reconfigure`; configless slurmd receives the file
 * with its comments and each node's sync (node-storage-sync.ts, every STORAGE_SYNC_INTERVAL_S) creates
 * the missing accounts with the same uid and gid, expires the disabled ones and removes the deleted ones.
 *
 * Names, uids, gids and enabled only: never a password, a key or even a hash. slurm.conf is readable by
 * every user of every node (jobs read it), and a compute node needs no password at all: nobody logs in
 * there, jobs start as the user by uid through slurmd, and SSH to a node (pam_slurm_adopt aside) is not
 * how NowScale users work. The password and key stay on the master, set from the secret store.
 *
 * The set is base64 of compact JSON, `{"u": [[name, uid, gid, 1|0], ...], "p": [purged names]}`, cut into
 * lines of at most LINE_CHUNK characters: Slurm's parser reads a slurm.conf line into a 4 KiB buffer,
 * and the rest of a longer line would be parsed as a line of its own. Every entry is checked against the
 * allow-lists (USER_NAME, reserved names, NowScale's uid range) here on the master, and again by the
 * node's sync before useradd or userdel sees it (argv, never a shell).
 */

/** The set the nodes get: the users, and the names of deleted users whose files go too. */
export interface NodeUsers {
  users: { name: string; uid: number; gid: number; enabled: boolean }[];
  purge: string[];
}

/** The longest users line, prefix included (Slurm's 4 KiB line buffer, with room to spare). */
export const LINE_CHUNK = 1000;

/** The nodes' set from a checked set-users request: the secret ids dropped, gid = uid. */
export function nodeUsersOf(request: UsersRequest): NodeUsers {
  return {
    users: request.users.map((u) => ({ name: u.name, uid: u.uid, gid: u.uid, enabled: u.enabled })),
    purge: [...request.purge],
  };
}

/**
 * Checks a set as it is written or read: a TypeError naming the field (`u[1]: ...`) for a name outside
 * the allow-list or reserved, a uid outside NowScale's range, a gid other than the uid, a name or uid
 * twice, a purged name that is also kept.
 */
export function parseNodeUsers(input: unknown): NodeUsers {
  if (typeof input !== "object" || input === null || Array.isArray(input))
    throw new TypeError('users line: must be an object {"u": [...], "p": [...]}');
  const { u, p } = input as Record<string, unknown>;
  if (!Array.isArray(u) || u.length > MAX_USERS)
    throw new TypeError(`u: must be a list of at most ${MAX_USERS} users`);
  const users = u.map((row: unknown, i) => {
    if (!Array.isArray(row) || row.length !== 4)
      throw new TypeError(`u[${i}]: must be [name, uid, gid, 1|0]`);
    const [name, uid, gid, enabled] = row as unknown[];
    const problem = userNameProblem(name);
    if (problem !== undefined) throw new TypeError(`u[${i}].name: ${problem}`);
    if (typeof uid !== "number" || !Number.isSafeInteger(uid) || uid < USER_ID_MIN || uid > USER_ID_MAX)
      throw new TypeError(`u[${i}].uid: must be a whole number from ${USER_ID_MIN} to ${USER_ID_MAX}`);
    if (gid !== uid)
      throw new TypeError(`u[${i}].gid: must be the uid (each user has a group of its number)`);
    if (enabled !== 0 && enabled !== 1) throw new TypeError(`u[${i}].enabled: must be 1 or 0`);
    return { name: name as string, uid, gid: uid, enabled: enabled === 1 };
  });
  // The request's parser checks duplicates and purge names: the same rules on the master and here.
  const checked = parseUsersRequest({
    users: users.map((x) => ({ name: x.name, uid: x.uid, enabled: x.enabled })),
    purge: p ?? [],
  });
  return { users, purge: checked.purge };
}

/** The users lines for `set`, in order (checked first: TypeError naming the field). */
export function renderUsersLines(set: NodeUsers): string[] {
  const checked = parseNodeUsers(encodable(set));
  const json = JSON.stringify(encodable(checked));
  const encoded = Buffer.from(json, "utf8").toString("base64");
  const size = LINE_CHUNK - USERS_LINE_PREFIX.length;
  const lines: string[] = [];
  for (let at = 0; at < encoded.length; at += size)
    lines.push(`${USERS_LINE_PREFIX}${encoded.slice(at, at + size)}`);
  return lines;
}

/** The users lines of a slurm.conf, joined and decoded; undefined when it has none. Throws on a damaged set. */
export function readUsersLines(conf: string): NodeUsers | undefined {
  const parts = conf.split("\n").filter((l) => l.startsWith(USERS_LINE_PREFIX));
  if (parts.length === 0) return undefined;
  const encoded = parts.map((l) => l.slice(USERS_LINE_PREFIX.length).trim()).join("");
  return parseNodeUsers(JSON.parse(Buffer.from(encoded, "base64").toString("utf8")));
}

/**
 * slurm.conf with its users lines saying `set`, at the end (an empty set is written too: it tells the
 * nodes to remove every NowScale user, where no lines tell them nothing); the other lines untouched.
 */
export function rewriteUsersLines(conf: string, set: NodeUsers): string {
  const rendered = renderUsersLines(set);
  const lines = conf.split("\n").filter((l) => !l.startsWith(USERS_LINE_PREFIX));
  const last = lines.at(-1) === "" ? lines.length - 1 : lines.length;
  lines.splice(last, 0, ...rendered);
  return lines.join("\n");
}

/** Reconfigure failed and the previous slurm.conf was put back. */
export class UsersLineRollbackError extends Error {
  override readonly name = "UsersLineRollbackError";
}

/**
 * Makes the users lines of the master's slurm.conf say `request`'s set and has slurmctld push the file to
 * the nodes (`scontrol reconfigure`): the previous file kept as `<conf>.nowscale-prev`, the new one written
 * atomically and put back when reconfigure fails (UsersLineRollbackError). Idempotent: the same set
 * writes nothing. `request` is a checked set-users request (parseUsersRequest).
 */
export async function applyNodeUsers(
  request: UsersRequest,
  options: { confPath: string; reconfigure: () => Promise<void> },
): Promise<{ changed: boolean }> {
  const { changed } = await editSlurmConf(
    options,
    (text) => rewriteUsersLines(text, nodeUsersOf(request)),
    (message, cause) => new UsersLineRollbackError(message, { cause }),
  );
  return { changed };
}

function encodable(set: NodeUsers): { u: unknown[]; p: unknown } {
  return {
    u: (set.users as unknown[]).map((x) => {
      const r = x as Record<string, unknown>;
      return [r.name, r.uid, r.gid, r.enabled === true ? 1 : r.enabled === false ? 0 : r.enabled];
    }),
    p: set.purge,
  };
}
