import { chown, mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { localTakenUserIds } from "../../../lib/local/user-ids.js";
import { AgentActionError } from "../../../lib/ports/agent-channel.js";
import { nextUserId, parseUsersRequest, USER_ID_MAX } from "../../../lib/ports/cluster-users.js";
import { applyUsers } from "../../../scheduler-plugins/slurm/users-apply.js";
import { apiBed } from "../../support/api-bed.js";
import { startDynalite, type TestDynamo } from "../../support/dynalite.js";

/**
 * uids unique where the users' files live (issue 17): a cluster's uids restart at 21000, so in the local
 * mode (several clusters, one host, one /home) or with a /home that outlives a master, a new cluster's
 * first user could get the uid, so the kept files, of an earlier cluster's user. The rule (nextUserId):
 * above every uid the cluster ever gave, skipping the taken ones; the local mode takes the host's
 * accounts, /home's owners and every other local cluster's uids (lib/local/user-ids.ts); the master's
 * agent refuses a uid that owns a kept home (users-apply.ts), and addUser then takes the next one.
 */

let db: TestDynamo;
beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => {
  await db.close();
});

describe("nextUserId", () => {
  it("goes above every uid the cluster gave, deleted users' too, and skips the taken ones", () => {
    expect(nextUserId([])).toBe(21000);
    expect(nextUserId([21000, 21004, 21001])).toBe(21005);
    expect(nextUserId([], new Set([21000, 21001, 21003]))).toBe(21002);
    expect(nextUserId([21000], new Set([21001, 21002]))).toBe(21003);
    expect(nextUserId([USER_ID_MAX])).toBeUndefined();
    expect(nextUserId([USER_ID_MAX - 1], new Set([USER_ID_MAX]))).toBeUndefined();
  });
});

describe("the local mode's taken uids", () => {
  it("are the host's accounts, /home's owners and every other local cluster's users, deleted ones included", async () => {
    // Prepare: a host with one account in range, a kept home owned by a gone uid, and two clusters
    const root = await mkdtemp(join(tmpdir(), "nowscale-uids-"));
    const [etc, home] = [join(root, "etc"), join(root, "home")];
    await mkdir(join(home, "olduser"), { recursive: true });
    await mkdir(etc);
    await writeFile(
      join(etc, "passwd"),
      "root:x:0:0::/root:/bin/bash\nkept:x:21000:21000::/home/kept:/bin/bash\n",
    );
    if (process.getuid?.() !== 0) console.log("not root: the kept home's owner cannot be set (root in CI)");
    else await chown(join(home, "olduser"), 21001, 21001);
    const t = await apiBed(db);
    const first = await t.runningCluster();
    const second = await t.runningCluster();
    t.deps.takenUserIds = localTakenUserIds(t.store, { etcDir: etc, homeDir: home });

    // Act: a user of the first cluster, deleted (home kept, uid in its record), then the second's first user
    const a = await t.call("POST", `/clusters/${first}/users`, { name: "ann" });
    const gone = await t.call("DELETE", `/clusters/${first}/users/ann`);
    const b = await t.call("POST", `/clusters/${second}/users`, { name: "ben" });
    const c = await t.call("POST", `/clusters/${first}/users`, { name: "cat" });

    // Assess
    expect(gone.status).toBe(200);
    const expected = process.getuid?.() === 0 ? [21002, 21003, 21004] : [21001, 21002, 21003];
    expect([a.body.uid, b.body.uid, c.body.uid]).toEqual(expected);
    const taken = await localTakenUserIds(t.store, { etcDir: etc, homeDir: home })(
      (await t.store.getCluster(second)) as never,
    );
    expect(taken.has(21000)).toBe(true);
    expect(taken.has(expected[0] as number)).toBe(true);
  });
});

describe("a uid that owns a kept home", () => {
  it("is refused by the master's agent for another name, and addUser takes the next uid", async () => {
    // Prepare: the agent's check on fixtures; a master that refuses 21000 as the agent would
    const root = await mkdtemp(join(tmpdir(), "nowscale-kept-"));
    await writeFile(join(root, "passwd"), "root:x:0:0::/root:/bin/bash\n");
    await writeFile(join(root, "group"), "root:x:0:\n");
    await writeFile(join(root, "shadow"), "");
    await mkdir(join(root, "alice"));
    const owned = process.getuid?.() === 0;
    if (!owned) console.log("not root: the kept home's owner cannot be set (root in CI)");
    else await chown(join(root, "alice"), 21000, 21000);
    const commands: string[] = [];
    const run = async (file: string, args: readonly string[]) => {
      commands.push([file, ...args].join(" "));
      return { code: 0, stdout: "", stderr: "" };
    };
    const t = await apiBed(db);
    const id = await t.runningCluster();
    const real = t.agent.setUsers.bind(t.agent);
    t.agent.setUsers = async (request) => {
      if (request.users.some((u) => u.uid === 21000 && u.name !== "alice"))
        throw new AgentActionError(
          "users[0].uid: 21000 owns /home/alice, a home kept from another user",
          400,
        );
      return real(request);
    };

    // Act
    const refused = await applyUsers(
      parseUsersRequest({ users: [{ name: "bob", uid: 21000, enabled: true }] }),
      {
        run,
        etcDir: root,
        homeDir: root,
      },
    ).then(
      () => "applied",
      (e: Error) => e.message,
    );
    const same = await applyUsers(
      parseUsersRequest({ users: [{ name: "alice", uid: 21000, enabled: true }] }),
      {
        run,
        etcDir: root,
        homeDir: root,
      },
    ).then(
      () => "applied",
      (e: Error) => e.message,
    );
    const added = await t.call("POST", `/clusters/${id}/users`, { name: "bob" });

    // Assess
    if (owned) {
      expect(refused).toBe(
        "users[0].uid: 21000 owns /home/alice, a home kept from another user: not given to bob",
      );
      expect(commands.filter((c) => c.includes("bob"))).toEqual([]);
    }
    expect(same).toBe("applied");
    expect(added.status, JSON.stringify(added.body)).toBe(200);
    expect(added.body.uid).toBe(21001);
    expect((await t.store.getCluster(id))?.users?.map((u) => [u.name, u.uid])).toEqual([["bob", 21001]]);
  });

  it("takes the next uid when an attached master has a site account or group of that number", async () => {
    // Prepare: an attached master whose own users have uids in NowScale's range (carol 21000, a group
    // ops 21001): the agent refuses those numbers for a new name, as users-apply.ts does
    const t = await apiBed(db);
    const id = await t.runningCluster();
    const real = t.agent.setUsers.bind(t.agent);
    t.agent.setUsers = async (request) => {
      const [u] = request.users.filter((x) => x.name === "bob");
      if (u?.uid === 21000) throw new AgentActionError("users[0].uid: 21000 is carol's on this host", 400);
      if (u?.uid === 21001)
        throw new AgentActionError("users[0].uid: gid 21001 is group ops's on this host", 400);
      return real(request);
    };

    // Act
    const added = await t.call("POST", `/clusters/${id}/users`, { name: "bob" });

    // Assess
    expect(added.status, JSON.stringify(added.body)).toBe(200);
    expect(added.body.uid).toBe(21002);
  });
});
