import { lstat, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { ClusterRecord, StateStore } from "../ports/state-store.js";

/**
 * The uids a local cluster's new user must not get (UsersDeps.takenUserIds; the rule is nextUserId in
 * lib/ports/cluster-users.ts). In the local mode every cluster's master is this machine and /home is
 * this machine's, kept after a user or a cluster is deleted; uids restart at 21000 per cluster record,
 * so without this a new cluster's first user would get the uid, and the files, of a previous cluster's
 * user whose home was kept. Taken: every uid of this host's /etc/passwd, the owner of every entry of
 * /home (kept homes whose account is gone), and every uid any other local cluster's record ever gave
 * (deleted users and deleted clusters included: their homes may come back with them).
 */
export function localTakenUserIds(
  store: Pick<StateStore, "listClusters">,
  paths: { etcDir?: string; homeDir?: string } = {},
): (cluster: ClusterRecord) => Promise<ReadonlySet<number>> {
  const etcDir = paths.etcDir ?? "/etc";
  const homeDir = paths.homeDir ?? "/home";
  return async (cluster) => {
    const taken = new Set<number>();
    const passwd = await readFile(join(etcDir, "passwd"), "utf8").catch(() => "");
    for (const line of passwd.split("\n")) {
      const uid = Number(line.split(":")[2]);
      if (line !== "" && Number.isSafeInteger(uid)) taken.add(uid);
    }
    for (const entry of await readdir(homeDir).catch(() => [] as string[])) {
      const info = await lstat(join(homeDir, entry)).catch(() => undefined);
      if (info !== undefined) taken.add(info.uid);
    }
    for (const other of await store.listClusters()) {
      if (other.clusterId === cluster.clusterId) continue;
      for (const user of other.users ?? []) taken.add(user.uid);
    }
    return taken;
  };
}
