import { mkdtemp, readdir, readFile, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { largestComputeUserData, renderComputeUserData } from "../../../lib/control/compute-user-data.js";
import { LocalUserSecrets } from "../../../lib/local/user-secrets.js";
import { MAX_USER_DATA_BASE64_BYTES } from "../../../lib/ports/cloud-provider.js";
import type { ClusterRecord } from "../../../lib/ports/state-store.js";
import { apiBed } from "../../support/api-bed.js";
import { startDynalite, type TestDynamo } from "../../support/dynalite.js";

/**
 * Cluster users through the API handler on dynalite (HPC-NOW userman add/delete/list/enable/disable/
 * passwd): the master gets the whole set through the agent with secret ids only, the password lands in
 * the secret store (the local mode's root-only files here) and nowhere else, uids are never reused,
 * system names are refused, and compute nodes' boot scripts carry names and uids, no secret.
 */

let db: TestDynamo;
beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => {
  await db.close();
});

const PASSWORD = "s3cret-Password-42";
const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKt0Q2cXw1b1oQeSg7e2oU1v5w4eXQ8oYb2v1Y1kP5Wm alice@laptop";

async function bed() {
  const t = await apiBed(db);
  const dir = join(await mkdtemp(join(tmpdir(), "nowscale-user-secrets-")), "users");
  t.deps.userSecrets = new LocalUserSecrets(dir);
  const id = await t.runningCluster();
  return { ...t, id, dir };
}

describe("POST /clusters/{id}/users", () => {
  it("makes the user on the master with a secret id, keeps the password in the secret store only", async () => {
    // Prepare
    const t = await bed();

    // Act
    const added = await t.call("POST", `/clusters/${t.id}/users`, { name: "alice", password: PASSWORD });
    const second = await t.call("POST", `/clusters/${t.id}/users`, { name: "bob", sshKey: KEY });
    const list = await t.call("GET", `/clusters/${t.id}/users`);

    // Assess
    expect(added.status).toBe(200);
    expect(added.body).toMatchObject({
      name: "alice",
      uid: 21000,
      gid: 21000,
      enabled: true,
      hasPassword: true,
    });
    expect(second.body).toMatchObject({ name: "bob", uid: 21001, hasKey: true, hasPassword: false });
    expect(list.body.users.map((u: { name: string }) => u.name)).toEqual(["alice", "bob"]);
    const sent = t.agent.calls.filter((c) => c.action === "setUsers");
    const first = sent[0]?.action === "setUsers" ? sent[0].request : undefined;
    expect(first?.users).toEqual([
      { name: "alice", uid: 21000, enabled: true, secret: join(t.dir, `${t.id}.alice.json`) },
    ]);
    expect(JSON.stringify(t.agent.calls)).not.toContain(PASSWORD);
    expect([...t.agent.users.keys()]).toEqual(["alice", "bob"]);
    const file = join(t.dir, `${t.id}.alice.json`);
    expect(JSON.parse(await readFile(file, "utf8"))).toEqual({ password: PASSWORD });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(t.dir)).mode & 0o777).toBe(0o700);
    const cluster = await t.store.getCluster(t.id);
    expect(JSON.stringify(cluster)).not.toContain(PASSWORD);
    expect(JSON.stringify(await t.store.listEvents(t.id))).not.toContain(PASSWORD);
    expect(JSON.stringify(list.body)).not.toContain(PASSWORD);
  });

  it("refuses system names, hostile names, bad passwords and the host's own accounts, changing nothing", async () => {
    // Prepare
    const t = await bed();
    const before = await t.store.getCluster(t.id);

    // Act
    const root = await t.call("POST", `/clusters/${t.id}/users`, { name: "root" });
    const proto = await t.call("POST", `/clusters/${t.id}/users`, { name: "__proto__" });
    const hostile = await t.call("POST", `/clusters/${t.id}/users`, { name: "a;reboot" });
    const short = await t.call("POST", `/clusters/${t.id}/users`, { name: "carol", password: "short" });
    t.agent.hostAccounts.add("sysacct");
    const taken = await t.call("POST", `/clusters/${t.id}/users`, { name: "sysacct", password: PASSWORD });

    // Assess
    expect(root.status).toBe(400);
    expect(root.body.issues[0].path).toBe("name");
    expect(proto.status).toBe(400);
    expect(hostile.status).toBe(400);
    expect(hostile.body.issues[0].path).toBe("name");
    expect(short.status).toBe(400);
    expect(short.body.issues[0].path).toBe("password");
    expect(JSON.stringify(short.body)).not.toContain('short"');
    expect(taken.status).toBe(409);
    expect(taken.body.error).toContain("account of the host");
    // The refused user's secret went with the refusal.
    expect(await readdir(t.dir)).toEqual([]);
    const after = await t.store.getCluster(t.id);
    expect(after?.users).toBeUndefined();
    expect(after?.version).toBe(before?.version);
  });
});

describe("users on a running cluster", () => {
  it("disables, enables, changes the password (keeping the key), deletes keeping files, and never reuses a uid", async () => {
    // Prepare
    const t = await bed();
    await t.call("POST", `/clusters/${t.id}/users`, { name: "alice", sshKey: KEY });
    await t.call("POST", `/clusters/${t.id}/users`, { name: "bob" });

    // Act
    const disabled = await t.call("POST", `/clusters/${t.id}/users/alice/disable`);
    const enabled = await t.call("POST", `/clusters/${t.id}/users/alice/enable`);
    const passwd = await t.call("PUT", `/clusters/${t.id}/users/alice/credentials`, { password: PASSWORD });
    const empty = await t.call("PUT", `/clusters/${t.id}/users/alice/credentials`, {});
    const deleted = await t.call("DELETE", `/clusters/${t.id}/users/alice`);
    const purged = await t.call("DELETE", `/clusters/${t.id}/users/bob`, undefined, {}, { purge: "true" });
    const unknown = await t.call("DELETE", `/clusters/${t.id}/users/nobody1`);
    const again = await t.call("POST", `/clusters/${t.id}/users`, { name: "alice" });
    const carol = await t.call("POST", `/clusters/${t.id}/users`, { name: "carol" });

    // Assess
    expect(disabled.body).toMatchObject({ name: "alice", enabled: false });
    expect(enabled.body).toMatchObject({ name: "alice", enabled: true });
    expect(passwd.body).toMatchObject({ hasPassword: true, hasKey: true });
    expect(empty.status).toBe(400);
    expect(deleted.body).toEqual({ clusterId: t.id, name: "alice", purged: false });
    expect(purged.body).toEqual({ clusterId: t.id, name: "bob", purged: true });
    expect(t.agent.purged).toEqual(["bob"]);
    expect(unknown.status).toBe(404);
    // alice comes back with her uid (her kept files are hers); carol gets a new one, never bob's.
    expect(again.body.uid).toBe(21000);
    expect(carol.body.uid).toBe(21002);
    // The secret went with the user.
    expect(await readdir(t.dir)).toEqual([]);
  });

  it("refuses a cluster that is not RUNNING and a deployment without a secret store", async () => {
    // Prepare
    const t = await bed();
    await t.call("POST", `/clusters/${t.id}/sleep`);
    const sleeping = await t.call("POST", `/clusters/${t.id}/users`, { name: "alice" });
    await t.call("POST", `/clusters/${t.id}/wake`);
    t.deps.userSecrets = undefined;

    // Act
    const noStore = await t.call("POST", `/clusters/${t.id}/users`, { name: "alice", password: PASSWORD });
    const noSecret = await t.call("POST", `/clusters/${t.id}/users`, { name: "alice" });

    // Assess
    expect(sleeping.status).toBe(409);
    expect(noStore.status).toBe(501);
    expect(noSecret.status).toBe(200);
  });

  it("gives compute nodes the users' names and uids in their boot script, never a secret", async () => {
    // Prepare
    const t = await bed();
    await t.call("POST", `/clusters/${t.id}/users`, { name: "alice", password: PASSWORD });
    await t.call("POST", `/clusters/${t.id}/users`, { name: "bob" });
    await t.call("POST", `/clusters/${t.id}/users/bob/disable`);
    const cluster = await t.store.getCluster(t.id);
    if (cluster === undefined) throw new Error("no cluster");

    // Act
    const script = renderComputeUserData(
      cluster,
      { queue: "compute", instanceType: "c5.xlarge", zone: "zone-a", count: 1 } as never,
      { cloud: "aws", controllerAddress: "10.0.0.5", mungeSecret: "nowscale/c-1/munge-key", region: "local" },
    );

    // Assess
    expect(script).toContain("\nalice 21000 1\nbob 21001 0\nUSERS\n");
    expect(script).not.toContain(PASSWORD);
    expect(script).not.toContain(".alice.json");
  });
});

describe("users and the boot script's user-data limit", () => {
  it("refuses a user whose line would push the boot script over 16 KiB in base64, naming users; nothing changes", async () => {
    // Prepare: an inline init script that leaves the boot script just under the limit
    const t = await bed();
    const cluster = (await t.store.getCluster(t.id)) as ClusterRecord;
    const inline = (chars: number) => `#!/bin/sh\n${"#".repeat(chars - 11)}\n`;
    const bytesWith = (chars: number) =>
      largestComputeUserData({
        ...cluster,
        nodeSetup: { storage: [], initScripts: [{ inline: inline(chars), timeoutS: 600 }] },
      })?.bytes ?? Number.POSITIVE_INFINITY;
    let fits = 20;
    let over = 4096;
    while (over - fits > 1) {
      const mid = Math.floor((fits + over) / 2);
      if (bytesWith(mid) <= MAX_USER_DATA_BASE64_BYTES) fits = mid;
      else over = mid;
    }
    const set = await t.call("PUT", `/clusters/${t.id}/init-scripts`, {
      initScripts: [{ inline: inline(fits) }],
    });
    // (the users lease's own row changes on every call: the cluster record is what must not)
    const before = await t.store.getCluster(t.id);

    // Act
    const res = await t.call("POST", `/clusters/${t.id}/users`, { name: "alice", password: PASSWORD });

    // Assess
    expect(set.status).toBe(200);
    expect(res.status).toBe(400);
    expect(res.body.issues[0].path).toBe("users");
    expect(res.body.issues[0].message).toMatch(/would be \d+ bytes in base64, over the cloud's 16384-byte/);
    expect(t.agent.users.has("alice")).toBe(false);
    expect(await readdir(t.dir).catch(() => [])).toEqual([]);
    expect(await t.store.getCluster(t.id)).toEqual(before);
  });
});
