/**
 * Cluster users (HPC-NOW `userman`): the allow-list of their names, the uid range NowScale gives them,
 * and the agent's set-users protocol as every carrier sends it (the agent's HTTP API, its command line
 * under SSM Run Command) and the agent checks it. What applying a set does on a host is
 * scheduler-plugins/slurm/users-apply.ts; the rules of the REST routes are lib/control/users.ts.
 *
 * Secrets never travel in this protocol: a user's password or SSH public key is in the cloud's secret
 * store, and a spec carries only the secret's id (`secret`), which the agent reads itself. So no SSM
 * command history, agent log or user data ever holds one.
 */

/**
 * Linux user names as useradd's default rule and POSIX's portable set allow them, narrowed: a lower-case
 * letter first, then lower-case letters, digits, '_' and '-', at most 32 characters (no '$', no '.').
 */
export const USER_NAME = /^[a-z][a-z0-9_-]{0,31}$/;
export const USER_NAME_HINT =
  "a lower-case letter, then lower-case letters, digits, '_' or '-', at most 32 characters";

/**
 * Names refused whatever the host has (the agent also refuses any name an account outside NowScale's
 * range already has: `daemon`, `slurm`, `munge`, a distribution's own). A Set, so a name is never looked
 * up as a plain object key.
 */
export const RESERVED_USER_NAMES: ReadonlySet<string> = new Set([
  "root",
  "daemon",
  "bin",
  "sys",
  "sync",
  "games",
  "man",
  "lp",
  "mail",
  "news",
  "uucp",
  "proxy",
  "www-data",
  "backup",
  "list",
  "irc",
  "gnats",
  "nobody",
  "nogroup",
  "systemd-network",
  "systemd-resolve",
  "systemd-timesync",
  "messagebus",
  "sshd",
  "slurm",
  "munge",
  "nowscale",
  "admin",
  "adm",
  "wheel",
  "sudo",
  "users",
  "staff",
  "operator",
  "halt",
  "shutdown",
  "ec2-user",
  "ubuntu",
  "centos",
  "rocky",
  "debian",
  "ssm-user",
]);

/** The uids (and gids: each user has a group of the same number and name) NowScale gives its users. */
export const USER_ID_MIN = 21000;
export const USER_ID_MAX = 29999;

/**
 * The uid a cluster's new user gets: the first one above every uid the cluster ever gave (deleted users
 * included: a uid is never reused within a cluster, so a kept home is never handed to another name), that
 * is not in `taken` (uids already in use where the cluster's users live: the local mode's host, other
 * local clusters, kept homes; lib/control/users.ts). Undefined when the range is exhausted.
 */
export function nextUserId(
  given: readonly number[],
  taken: ReadonlySet<number> = new Set(),
): number | undefined {
  let uid = Math.max(USER_ID_MIN - 1, ...given) + 1;
  while (taken.has(uid)) uid++;
  return uid <= USER_ID_MAX ? uid : undefined;
}

/** What the agent writes into each user's GECOS field: how it tells its own accounts from the host's. */
export const USER_GECOS = "nowscale user";

/** Users one cluster may have (and one set-users request may list). */
export const MAX_USERS = 500;

/** Why a name cannot be a cluster user's, or undefined when it can. */
export function userNameProblem(name: unknown): string | undefined {
  if (typeof name !== "string" || !USER_NAME.test(name)) return `not a user name (${USER_NAME_HINT})`;
  if (RESERVED_USER_NAMES.has(name)) return `"${name}" is a system account's name`;
  return undefined;
}

/** One cluster user as the agent should make it. */
export interface UserSpec {
  name: string;
  /** uid, and gid of the user's own group (same number, same name). USER_ID_MIN..USER_ID_MAX. */
  uid: number;
  /** Disabled: the account stays (files, uid) but has expired, so nobody logs in or submits as it. */
  enabled: boolean;
  /**
   * Set only when the password or key changed: the id of the secret holding `{"password"?, "sshKey"?}`
   * (a Secrets Manager name or ARN; in the local mode the absolute path of a root-only file). The agent
   * reads it and sets the password (chpasswd, from stdin) and ~/.ssh/authorized_keys.
   */
  secret?: string;
}

/** A set-users request: the whole set of NowScale users, and which of the absent to delete with their files. */
export interface UsersRequest {
  users: UserSpec[];
  /** Users absent from `users` whose home directories go too (userdel -r); others keep their files. */
  purge: string[];
}

/**
 * A secret id: a Secrets Manager name or ARN, a Tencent SSM or Alibaba KMS secret as
 * `tencent-ssm|alibaba-kms:<region>:<name>` (lib/ports/user-secrets.ts CLOUD_SECRET_ID), or (local mode)
 * an absolute path of plain segments.
 */
export const SECRET_REF =
  /^(arn:[A-Za-z0-9:/_+=.@-]{1,2000}|nowscale\/[A-Za-z0-9/_+=.@-]{1,500}|(tencent-ssm|alibaba-kms):[a-z0-9-]{1,40}:nowscale[A-Za-z0-9/_-]{1,300}|(\/[A-Za-z0-9._-]+)+)$/;

/** The value a user's secret holds. */
export interface UserSecret {
  password?: string;
  sshKey?: string;
}

/** A password chpasswd takes as given: 8-128 printable ASCII characters (no newline, no control). */
export const PASSWORD = /^[\x20-\x7e]{8,128}$/;
/** One OpenSSH public key line: type, base64 body, an optional plain comment. */
export const SSH_PUBLIC_KEY =
  /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]{16,8192}={0,3}( [A-Za-z0-9@._+-]{1,100})?$/;

/** Checks a secret's value (the agent, before using it; the service, before storing it). TypeError naming the field. */
export function parseUserSecret(input: unknown, where = "secret"): UserSecret {
  if (typeof input !== "object" || input === null || Array.isArray(input))
    throw new TypeError(`${where}: must be an object {password?, sshKey?}`);
  const extra = Object.keys(input).find((k) => k !== "password" && k !== "sshKey");
  if (extra !== undefined) throw new TypeError(`${where}.${extra.slice(0, 40)}: unknown field`);
  const { password, sshKey } = input as Record<string, unknown>;
  const secret: UserSecret = {};
  if (password !== undefined) {
    if (typeof password !== "string" || !PASSWORD.test(password))
      throw new TypeError(`${where}.password: must be 8-128 printable ASCII characters`);
    secret.password = password;
  }
  if (sshKey !== undefined) {
    if (typeof sshKey !== "string" || !SSH_PUBLIC_KEY.test(sshKey.trim()))
      throw new TypeError(
        `${where}.sshKey: must be one OpenSSH public key line (ssh-ed25519 AAAA... comment)`,
      );
    secret.sshKey = sshKey.trim();
  }
  if (secret.password === undefined && secret.sshKey === undefined)
    throw new TypeError(`${where}: give a password, an sshKey or both`);
  return secret;
}

/**
 * Validates a set-users request. Throws TypeError naming the field (`users[1].name: ...`); nothing is
 * changed for a bad request.
 */
export function parseUsersRequest(input: unknown): UsersRequest {
  if (typeof input !== "object" || input === null || Array.isArray(input))
    throw new TypeError("body: must be an object {users, purge?}");
  const extra = Object.keys(input).find((k) => k !== "users" && k !== "purge");
  if (extra !== undefined) throw new TypeError(`${extra.slice(0, 40)}: unknown field`);
  const { users, purge } = input as Record<string, unknown>;
  if (!Array.isArray(users) || users.length > MAX_USERS)
    throw new TypeError(`users: must be a list of at most ${MAX_USERS} users`);
  const names = new Set<string>();
  const uids = new Set<number>();
  const specs = users.map((raw, i): UserSpec => {
    const where = `users[${i}]`;
    if (typeof raw !== "object" || raw === null || Array.isArray(raw))
      throw new TypeError(`${where}: must be an object {name, uid, enabled, secret?}`);
    const bad = Object.keys(raw).find((k) => !["name", "uid", "enabled", "secret"].includes(k));
    if (bad !== undefined) throw new TypeError(`${where}.${bad.slice(0, 40)}: unknown field`);
    const r = raw as Record<string, unknown>;
    const problem = userNameProblem(r.name);
    if (problem !== undefined) throw new TypeError(`${where}.name: ${problem}`);
    const name = r.name as string;
    if (names.has(name)) throw new TypeError(`${where}.name: "${name}" is listed twice`);
    names.add(name);
    if (
      typeof r.uid !== "number" ||
      !Number.isSafeInteger(r.uid) ||
      r.uid < USER_ID_MIN ||
      r.uid > USER_ID_MAX
    )
      throw new TypeError(`${where}.uid: must be a whole number from ${USER_ID_MIN} to ${USER_ID_MAX}`);
    if (uids.has(r.uid)) throw new TypeError(`${where}.uid: ${r.uid} is listed twice`);
    uids.add(r.uid);
    if (typeof r.enabled !== "boolean") throw new TypeError(`${where}.enabled: must be true or false`);
    const spec: UserSpec = { name, uid: r.uid, enabled: r.enabled };
    if (r.secret !== undefined) {
      if (typeof r.secret !== "string" || !SECRET_REF.test(r.secret) || r.secret.split("/").includes(".."))
        throw new TypeError(
          `${where}.secret: not a secret id (a Secrets Manager name or ARN, a tencent-ssm: or alibaba-kms: id, or a local path)`,
        );
      spec.secret = r.secret;
    }
    return spec;
  });
  const purgeList = purge ?? [];
  if (!Array.isArray(purgeList) || purgeList.length > MAX_USERS)
    throw new TypeError(`purge: must be a list of at most ${MAX_USERS} user names`);
  purgeList.forEach((n, i) => {
    const problem = userNameProblem(n);
    if (problem !== undefined) throw new TypeError(`purge[${i}]: ${problem}`);
    if (names.has(n as string)) throw new TypeError(`purge[${i}]: "${n}" is in users: it is kept`);
  });
  return { users: specs, purge: [...(purgeList as string[])] };
}

/** One NowScale user as the host has it (the agent's answer). */
export interface HostUser {
  name: string;
  uid: number;
  enabled: boolean;
}

/** The agent's answer to set-users. */
export interface UsersAnswer {
  /** NowScale's users on the master now. */
  users: HostUser[];
  added: string[];
  removed: string[];
  /** Users whose enabled state, password or key changed. */
  updated: string[];
}

/** The agent's set-users answer, checked (untrusted like everything it says); undefined if malformed. */
export function parseUsersAnswer(input: unknown): UsersAnswer | undefined {
  if (typeof input !== "object" || input === null) return undefined;
  const r = input as Record<string, unknown>;
  const names = (v: unknown) =>
    Array.isArray(v) && v.length <= MAX_USERS && v.every((n) => typeof n === "string" && USER_NAME.test(n))
      ? [...(v as string[])]
      : undefined;
  const added = names(r.added);
  const removed = names(r.removed);
  const updated = names(r.updated);
  if (!Array.isArray(r.users) || r.users.length > MAX_USERS) return undefined;
  const users: HostUser[] = [];
  for (const u of r.users as unknown[]) {
    if (typeof u !== "object" || u === null) return undefined;
    const { name, uid, enabled } = u as Record<string, unknown>;
    if (typeof name !== "string" || !USER_NAME.test(name)) return undefined;
    if (typeof uid !== "number" || !Number.isSafeInteger(uid)) return undefined;
    if (typeof enabled !== "boolean") return undefined;
    users.push({ name, uid, enabled });
  }
  if (added === undefined || removed === undefined || updated === undefined) return undefined;
  return { users, added, removed, updated };
}
