import { spawn } from "node:child_process";
import { constants } from "node:fs";
import { chown, lstat, mkdir, open, readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import {
  type HostUser,
  parseUserSecret,
  USER_GECOS,
  USER_ID_MAX,
  USER_ID_MIN,
  type UserSecret,
  type UsersAnswer,
  type UsersRequest,
} from "../../lib/ports/cluster-users.js";
import { cloudSecretId } from "../../lib/ports/user-secrets.js";
import { ALIBABA_SECRET_FETCHER } from "./alibaba-secret-fetcher.js";
import { type CommandRunner, runCommand } from "./exec.js";
import { TENCENT_SECRET_FETCHER } from "./master-bootstrap.js";

/**
 * Makes a host's NowScale users exactly a set-users request (lib/ports/cluster-users.ts): on the master
 * through the agent, the same code on every machine that runs it. An account is NowScale's when its
 * GECOS's first subfield is USER_GECOS and its uid is in NowScale's range; nothing else on the host is ever changed.
 *
 * - every name and uid is checked against the host first: a name or uid an account outside NowScale has
 *   is refused (TypeError naming the field) and nothing is changed;
 * - a new user gets a group of the same name and number (gid = uid), a 0700 home, bash;
 * - an absent user is removed with `userdel`, its files kept unless the request's `purge` names it;
 * - disabled is an expired account (`usermod -e 1`): it cannot log in (password or key) so cannot submit;
 *   enabling clears the expiry; the files, the uid and running jobs are untouched;
 * - a spec's `secret` is read from the secret store here (never carried): the password goes to chpasswd
 *   on stdin (not in argv, which /proc shows), the key to ~/.ssh/authorized_keys, written without
 *   following links the user may have put there.
 */
export interface UsersApplyOptions {
  run?: CommandRunner;
  /** Reads a secret by id (the store's value, JSON). @default readUserSecret */
  readSecret?: (id: string) => Promise<string>;
  /** @default "/etc" */
  etcDir?: string;
  /** Where homes are, for the kept-home check. @default "/home" */
  homeDir?: string;
  /** Days since the epoch (shadow's unit), for telling expired accounts. */
  today?: number;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  gecos: string;
  home: string;
}

/** /etc/passwd's entries, by name (a Map: names never become object keys). */
export async function readPasswd(etcDir = "/etc"): Promise<Map<string, PasswdEntry>> {
  const text = await readFile(join(etcDir, "passwd"), "utf8");
  const entries = new Map<string, PasswdEntry>();
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f.length < 7 || f[0] === "") continue;
    entries.set(f[0] as string, {
      name: f[0] as string,
      uid: Number(f[2]),
      gid: Number(f[3]),
      gecos: f[4] as string,
      home: f[5] as string,
    });
  }
  return entries;
}

/**
 * True when the account is NowScale's (its marker and range), so the agent may change it. The marker is
 * the GECOS's first subfield: the user may append the others (room, phones) with chfn (Debian's
 * CHFN_RESTRICT "rwh"), and must not make their account the host's by it, out of reach of disable/delete.
 */
export function isNowScaleUser(entry: PasswdEntry): boolean {
  return entry.gecos.split(",")[0] === USER_GECOS && entry.uid >= USER_ID_MIN && entry.uid <= USER_ID_MAX;
}

/** The names of expired accounts in /etc/shadow (expiry day set and not after today). */
async function expiredNames(etcDir: string, today: number): Promise<Set<string>> {
  const text = await readFile(join(etcDir, "shadow"), "utf8").catch(() => "");
  const expired = new Set<string>();
  for (const line of text.split("\n")) {
    const f = line.split(":");
    const day = f[7];
    if (f.length >= 8 && day !== undefined && day !== "" && Number(day) <= today) expired.add(f[0] as string);
  }
  return expired;
}

/** The owners of the home directory's entries (uid → entry names); empty when it cannot be read. */
async function homeOwners(homeDir: string): Promise<Map<number, string[]>> {
  const owners = new Map<number, string[]>();
  const entries = await readdir(homeDir).catch(() => [] as string[]);
  for (const entry of entries.sort()) {
    const info = await lstat(join(homeDir, entry)).catch(() => undefined);
    if (info !== undefined) owners.set(info.uid, [...(owners.get(info.uid) ?? []), entry]);
  }
  return owners;
}

/** The NowScale users the host has now. */
export async function listHostUsers(etcDir = "/etc", today = Math.floor(Date.now() / 86_400_000)) {
  const passwd = await readPasswd(etcDir);
  const expired = await expiredNames(etcDir, today);
  return [...passwd.values()]
    .filter(isNowScaleUser)
    .map((e): HostUser => ({ name: e.name, uid: e.uid, enabled: !expired.has(e.name) }))
    .sort((a, b) => a.uid - b.uid);
}

export async function applyUsers(
  request: UsersRequest,
  options: UsersApplyOptions = {},
): Promise<UsersAnswer> {
  const run = options.run ?? runCommand;
  const etcDir = options.etcDir ?? "/etc";
  const today = options.today ?? Math.floor(Date.now() / 86_400_000);
  const readSecret = options.readSecret ?? readUserSecret;
  const passwd = await readPasswd(etcDir);
  const groups = await readGroups(etcDir);
  const byUid = new Map([...passwd.values()].map((e) => [e.uid, e]));
  const gidNames = new Map([...groups.entries()].map(([name, gid]) => [gid, name]));

  // Everything is checked before anything changes.
  request.users.forEach((u, i) => {
    const existing = passwd.get(u.name);
    if (existing !== undefined && !isNowScaleUser(existing))
      throw new TypeError(`users[${i}].name: "${u.name}" is an account of the host, not a NowScale user`);
    if (existing !== undefined && existing.uid !== u.uid)
      throw new TypeError(`users[${i}].uid: ${u.name} has uid ${existing.uid} on this host, not ${u.uid}`);
    const owner = byUid.get(u.uid);
    if (owner !== undefined && owner.name !== u.name)
      throw new TypeError(`users[${i}].uid: ${u.uid} is ${owner.name}'s on this host`);
    const group = gidNames.get(u.uid);
    if (existing === undefined && group !== undefined && group !== u.name)
      throw new TypeError(`users[${i}].uid: gid ${u.uid} is group ${group}'s on this host`);
    if (existing === undefined && groups.has(u.name) && groups.get(u.name) !== u.uid)
      throw new TypeError(`users[${i}].name: group ${u.name} exists on this host with another gid`);
  });
  // A new account never gets a uid that owns a home kept from another user (a /home that outlived a
  // master, or another local cluster's deleted user): that user's files would become the new one's.
  const keptOwners = await homeOwners(options.homeDir ?? "/home");
  request.users.forEach((u, i) => {
    const kept = keptOwners.get(u.uid);
    if (passwd.get(u.name) === undefined && kept !== undefined && !kept.includes(u.name))
      throw new TypeError(
        `users[${i}].uid: ${u.uid} owns /home/${kept[0]}, a home kept from another user: not given to ${u.name}`,
      );
  });
  request.purge.forEach((n, i) => {
    const existing = passwd.get(n);
    if (existing !== undefined && !isNowScaleUser(existing))
      throw new TypeError(`purge[${i}]: "${n}" is an account of the host, not a NowScale user`);
  });
  // Secrets are read and checked before anything changes too (a bad secret changes nothing).
  const secrets = new Map<string, UserSecret>();
  for (const [i, u] of request.users.entries()) {
    if (u.secret === undefined) continue;
    let value: unknown;
    try {
      value = JSON.parse(await readSecret(u.secret));
    } catch (error) {
      throw new Error(`users[${i}].secret: could not be read (${(error as Error).message.slice(0, 200)})`);
    }
    secrets.set(u.name, parseUserSecret(value, `users[${i}].secret`));
  }

  const must = async (file: string, args: string[]) => {
    const r = await run(file, args, { timeoutMs: 120_000 });
    if (r.code !== 0)
      throw new Error(
        `${file} ${args[0] ?? ""}… failed: ${(r.stderr || r.error || "").trim().slice(0, 300)}`,
      );
  };
  const expired = await expiredNames(etcDir, today);
  const wanted = new Set(request.users.map((u) => u.name));
  const purge = new Set(request.purge);
  const added: string[] = [];
  const removed: string[] = [];
  const updated: string[] = [];

  for (const entry of passwd.values()) {
    if (!isNowScaleUser(entry) || wanted.has(entry.name)) continue;
    await must("userdel", purge.has(entry.name) ? ["-r", entry.name] : [entry.name]);
    removed.push(entry.name);
  }
  for (const u of request.users) {
    let entry = passwd.get(u.name);
    if (entry === undefined) {
      if (!groups.has(u.name)) await must("groupadd", ["-g", String(u.uid), u.name]);
      await must("useradd", [
        "-u",
        String(u.uid),
        "-g",
        String(u.uid),
        "-c",
        USER_GECOS,
        "-m",
        "-s",
        "/bin/bash",
        u.name,
      ]);
      const home = join("/home", u.name);
      entry = { name: u.name, uid: u.uid, gid: u.uid, gecos: USER_GECOS, home };
      const created = (await readPasswd(etcDir)).get(u.name);
      if (created !== undefined) entry = created;
      await must("chmod", ["0700", entry.home]);
      added.push(u.name);
    }
    let changed = false;
    // A new user is not expired: a disabled one is expired right after useradd.
    const isExpired = expired.has(u.name);
    if (u.enabled === isExpired) {
      await must("usermod", ["-e", u.enabled ? "" : "1", u.name]);
      changed = true;
    }
    const secret = secrets.get(u.name);
    if (secret?.password !== undefined) {
      await chpasswd(u.name, secret.password);
      changed = true;
    }
    if (secret?.sshKey !== undefined) {
      await writeAuthorizedKey(entry, secret.sshKey);
      changed = true;
    }
    if (changed && !added.includes(u.name)) updated.push(u.name);
  }
  return { users: await listHostUsers(etcDir, today), added, removed, updated };
}

/** Group names to gids (/etc/group). */
async function readGroups(etcDir: string): Promise<Map<string, number>> {
  const text = await readFile(join(etcDir, "group"), "utf8");
  const groups = new Map<string, number>();
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f.length >= 3 && f[0] !== "") groups.set(f[0] as string, Number(f[2]));
  }
  return groups;
}

/** Sets a password through chpasswd's stdin: it never appears in a command line, a log or a file of ours. */
function chpasswd(name: string, password: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("chpasswd", [], { stdio: ["pipe", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString("utf8");
    });
    child.on("error", reject);
    child.on("close", (code) =>
      // chpasswd's messages name the user, never the password.
      code === 0
        ? resolve()
        : reject(new Error(`chpasswd failed for ${name}: ${stderr.trim().slice(0, 200)}`)),
    );
    child.stdin.end(`${name}:${password}\n`);
  });
}

/**
 * Writes the key as the only line of ~/.ssh/authorized_keys (0600, the user's), refusing links: the home
 * is the user's, who could have pointed .ssh or the file at /etc/shadow for root to overwrite.
 */
async function writeAuthorizedKey(entry: PasswdEntry, key: string): Promise<void> {
  const dir = join(entry.home, ".ssh");
  const info = await lstat(dir).catch(() => undefined);
  if (info === undefined) {
    await mkdir(dir, { mode: 0o700 });
    await chown(dir, entry.uid, entry.gid);
  } else if (!info.isDirectory() || info.uid !== entry.uid)
    throw new Error(`${entry.name}'s ~/.ssh is not a directory the user owns: key not written`);
  const file = await open(
    join(dir, "authorized_keys"),
    constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW,
    0o600,
  );
  try {
    await file.chown(entry.uid, entry.gid);
    await file.chmod(0o600);
    await file.writeFile(`${key}\n`);
  } finally {
    await file.close();
  }
}

/**
 * Reads a user secret by id: in the local mode an absolute path to a file only root may read (refused
 * otherwise: a world-readable secret is a leak already); a `tencent-ssm:<region>:<name>` or
 * `alibaba-kms:<region>:<name>` id from that cloud's secret store with the master's instance role, by
 * the very fetcher its boot script reads the munge key with (TENCENT_SECRET_FETCHER,
 * ALIBABA_SECRET_FETCHER: the role's key from the metadata service, a signed GetSecretValue), run by this
 * node with the name and region in its environment, the value on its stdout (never an argument or a
 * log); else AWS Secrets Manager through the AWS CLI (the region from the ARN, else the environment's).
 */
export async function readUserSecret(id: string, run: CommandRunner = runCommand): Promise<string> {
  if (id.startsWith("/")) {
    const info = await stat(id);
    if (info.uid !== 0 || (info.mode & 0o077) !== 0)
      throw new Error("the secret file must be root's and readable by root only (0600)");
    return readFile(id, "utf8");
  }
  const cloud = cloudSecretId(id);
  if (cloud !== undefined) {
    const fetcher = cloud.store === "tencent-ssm" ? TENCENT_SECRET_FETCHER : ALIBABA_SECRET_FETCHER;
    const r = await run(process.execPath, ["--input-type=module", "-e", fetcher], {
      env: {
        ...process.env,
        NOWSCALE_SECRET_NAME: cloud.name,
        NOWSCALE_SECRET_FIELD: "SecretString",
        NOWSCALE_REGION: cloud.region,
      },
      timeoutMs: 60_000,
    });
    // The fetchers print the store's error code only (never a value) on stderr.
    if (r.code !== 0)
      throw new Error(
        `${cloud.store} GetSecretValue failed: ${(r.stderr || r.error || "").trim().slice(0, 200)}`,
      );
    return r.stdout;
  }
  const region = /^arn:[^:]+:secretsmanager:([a-z0-9-]+):/.exec(id)?.[1];
  const r = await run(
    "aws",
    [
      "secretsmanager",
      "get-secret-value",
      "--secret-id",
      id,
      "--query",
      "SecretString",
      "--output",
      "text",
      ...(region === undefined ? [] : ["--region", region]),
    ],
    { timeoutMs: 60_000 },
  );
  if (r.code !== 0)
    throw new Error(
      `aws secretsmanager get-secret-value failed: ${(r.stderr || r.error || "").trim().slice(0, 200)}`,
    );
  return r.stdout;
}
