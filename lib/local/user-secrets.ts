import { chmod, lstat, mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { isSimpleName } from "../core/names.js";
import { parseUserSecret, USER_NAME, type UserSecret } from "../ports/cluster-users.js";
import { SecretStoreError, type UserSecretStore } from "../ports/user-secrets.js";

/**
 * The local mode's secret store for cluster users (lib/ports/user-secrets.ts): one file per user,
 * `DIR/<cluster>.<user>.json`, 0600 in a 0700 directory, both root's; the id is the file's absolute path,
 * which the agent (root, on this machine) reads after checking it is root's and 0600
 * (users-apply.ts readUserSecret). No job and no other local user can read it.
 */
export class LocalUserSecrets implements UserSecretStore {
  constructor(private readonly dir: string) {}

  async put(clusterId: string, user: string, value: UserSecret): Promise<string> {
    // Names are allow-listed before they make a path: no '/', no '..'.
    if (!isSimpleName(clusterId) || !USER_NAME.test(user))
      throw new SecretStoreError("invalid cluster or user name for a secret file");
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await chmod(this.dir, 0o700);
    const file = join(this.dir, `${clusterId}.${user}.json`);
    const before = await readFile(file, "utf8")
      .then((text) => parseUserSecret(JSON.parse(text)))
      .catch(() => ({}) as UserSecret);
    const merged: UserSecret = { ...before, ...value };
    const temporary = `${file}.new`;
    await rm(temporary, { force: true });
    await writeFile(temporary, JSON.stringify(merged), { mode: 0o600, flag: "wx" });
    await rename(temporary, file);
    return file;
  }

  async remove(secretId: string): Promise<void> {
    if (!secretId.startsWith(`${this.dir}/`) || secretId.includes("/..")) return;
    const info = await lstat(secretId).catch(() => undefined);
    if (info?.isFile() === true) await rm(secretId, { force: true });
  }

  /**
   * Removes every user's file of `clusterId` (the cluster is deleted: as the clouds' stores lose its
   * secrets with it). Answers the users whose files went; none when the directory does not exist. Only
   * `<cluster>.<user>.json` files whose user part is a valid name are touched (cluster ids hold no '.').
   */
  async removeCluster(clusterId: string): Promise<string[]> {
    if (!isSimpleName(clusterId)) throw new SecretStoreError("invalid cluster name for secret files");
    const prefix = `${clusterId}.`;
    const removed: string[] = [];
    for (const entry of await readdir(this.dir).catch(() => [] as string[])) {
      if (!entry.startsWith(prefix) || !entry.endsWith(".json")) continue;
      const user = entry.slice(prefix.length, -".json".length);
      if (!USER_NAME.test(user)) continue;
      await this.remove(join(this.dir, entry));
      removed.push(user);
    }
    return removed.sort();
  }
}
