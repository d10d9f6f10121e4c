import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { computeUserData, largestComputeUserData } from "../../../lib/control/compute-user-data.js";
import type { Launch } from "../../../lib/core/model.js";
import { MAX_USER_DATA_BASE64_BYTES } from "../../../lib/ports/cloud-provider.js";
import type { ClusterRecord } from "../../../lib/ports/state-store.js";
import { apiBed, snapshot } from "../../support/api-bed.js";
import { startDynalite, type TestDynamo } from "../../support/dynalite.js";

/**
 * The node setup through the API handler on dynalite (THPC Add/Delete/DescribeClusterStorageOption,
 * ModifyInitNodeScripts): stored on the cluster record, refused with the field named and nothing
 * written when invalid, and rendered into the boot script of the nodes launched afterwards.
 */

let db: TestDynamo;
beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => {
  await db.close();
});

const DATA = { protocol: "NFS 4.0", remotePath: "172.30.3.90:/", localPath: "/data" };
const SCRATCH = { protocol: "NFS 3.0", remotePath: "172.30.3.91:/scratch", localPath: "/scratch/" };
const MARKER = "#!/bin/bash\ntouch /var/lib/nowscale/marker-$NOWSCALE_CLUSTER_ID\n";

const LAUNCH: Launch = {
  queue: "compute",
  instanceType: "c5.xlarge",
  zone: "zone-a",
  count: 1,
  candidates: [{ instanceType: "c5.xlarge", zone: "zone-a", chargeType: "ON_DEMAND" }],
  allOrNothing: false,
  jobs: [],
  reason: "test",
};

/** The stored record as a cloud cluster whose boot script can be rendered (master address, munge secret). */
function bootable(c: ClusterRecord): ClusterRecord {
  return {
    ...c,
    placement: { ...c.placement, cloud: "aws", region: "us-east-1" },
    agent: { kind: "http", url: "http://10.0.1.5:8787" },
    resources: [{ type: "secret:munge-key", id: "arn:munge", createdAt: 0 }],
  };
}

describe("storage options (THPC AddClusterStorageOption / DeleteClusterStorageOption / Describe)", () => {
  it("adds, lists and deletes mounts, and new nodes' boot scripts mount exactly what is configured", async () => {
    // Prepare
    const t = await apiBed(db);
    const id = await t.runningCluster();

    // Act
    const first = await t.call("POST", `/clusters/${id}/storage`, DATA);
    const second = await t.call("POST", `/clusters/${id}/storage`, SCRATCH);
    const listed = await t.call("GET", `/clusters/${id}/storage`);
    const toldAfterAdd = t.agent.storage.map((s) => s.localPath);
    const withBoth = computeUserData(bootable((await t.store.getCluster(id)) as ClusterRecord), LAUNCH);
    const deleted = await t.call("DELETE", `/clusters/${id}/storage`, undefined, {}, { localPath: "/data" });
    const withOne = computeUserData(bootable((await t.store.getCluster(id)) as ClusterRecord), LAUNCH);
    const events = await t.call("GET", `/clusters/${id}/events`);

    // Assess
    expect(first.status).toBe(200);
    expect(first.body.runningNodes).toBe("synced");
    expect(toldAfterAdd).toEqual(["/data", "/scratch"]);
    expect(t.agent.storage.map((s) => s.localPath)).toEqual(["/scratch"]);
    expect(second.status).toBe(200);
    expect(listed.body.storage).toEqual([DATA, { ...SCRATCH, localPath: "/scratch" }]);
    expect(withBoth).toContain("mount '-t' 'nfs' '-o' 'vers=4.0,noresvport' '172.30.3.90:/' '/data'");
    expect(withBoth).toContain("'172.30.3.91:/scratch' '/scratch'");
    expect(deleted.status).toBe(200);
    expect(deleted.body.storage).toEqual([{ ...SCRATCH, localPath: "/scratch" }]);
    expect(withOne).not.toContain("'/data'");
    expect(withOne).toContain("'/scratch'");
    expect(events.body.events.map((e: { message: string }) => e.message)).toContain(
      "node setup: storage /data deleted",
    );
  });

  it("refuses hostile or reserved paths, a duplicate mount point and unknown deletions, changing nothing", async () => {
    // Prepare
    const t = await apiBed(db);
    const id = await t.runningCluster();
    expect((await t.call("POST", `/clusters/${id}/storage`, DATA)).status).toBe(200);
    const before = await snapshot(db, t.tables);

    // Act
    const hostileRemote = await t.call("POST", `/clusters/${id}/storage`, {
      ...DATA,
      remotePath: "1.2.3.4:/x;reboot",
      localPath: "/other",
    });
    const dotdot = await t.call("POST", `/clusters/${id}/storage`, { ...DATA, localPath: "/mnt/../etc" });
    const reserved = await t.call("POST", `/clusters/${id}/storage`, { ...DATA, localPath: "/etc/slurm" });
    const protocol = await t.call("POST", `/clusters/${id}/storage`, { ...DATA, protocol: "SMB" });
    const extra = await t.call("POST", `/clusters/${id}/storage`, {
      ...DATA,
      localPath: "/x",
      options: "rw",
    });
    const twice = await t.call("POST", `/clusters/${id}/storage`, { ...DATA, localPath: "/data/" });
    const unknown = await t.call("DELETE", `/clusters/${id}/storage`, undefined, {}, { localPath: "/nope" });
    const badQuery = await t.call(
      "DELETE",
      `/clusters/${id}/storage`,
      undefined,
      {},
      { localPath: "data;x" },
    );
    const missing = await t.call("DELETE", `/clusters/${id}/storage`);

    // Assess
    expect(hostileRemote.status).toBe(400);
    expect(hostileRemote.body.issues[0].path).toBe("remotePath");
    expect(dotdot.status).toBe(400);
    expect(dotdot.body.issues[0].path).toBe("localPath");
    expect(reserved.status).toBe(400);
    expect(reserved.body.issues[0]).toMatchObject({ path: "localPath" });
    expect(reserved.body.issues[0].message).toMatch(/\/etc belongs to the node's system/);
    expect(protocol.status).toBe(400);
    expect(protocol.body.issues[0].path).toBe("protocol");
    expect(extra.status).toBe(400);
    expect(JSON.stringify(extra.body.issues)).toContain("options");
    expect(twice.status).toBe(409);
    expect(twice.body.issues[0].path).toBe("localPath");
    expect(unknown.status).toBe(404);
    expect(unknown.body.issues[0].path).toBe("localPath");
    expect(badQuery.status).toBe(400);
    expect(badQuery.body.issues[0].path).toBe("localPath");
    expect(missing.status).toBe(400);
    expect(missing.body.issues[0].path).toBe("localPath");
    expect(await snapshot(db, t.tables)).toBe(before);
  });
});

describe("storage options on the running nodes (the agent's set-node-storage)", () => {
  it("refuses a deletion while jobs run unless forced, and a refused reconfigure changes nothing", async () => {
    // Prepare
    const t = await apiBed(db);
    const id = await t.runningCluster();
    expect((await t.call("POST", `/clusters/${id}/storage`, DATA)).status).toBe(200);
    t.agent.jobs.push({
      queue: "compute",
      state: "RUNNING",
      nodes: 1,
      cpusPerNode: 1,
      memPerNodeMiB: 0,
      gpusPerNode: 0,
      count: 2,
      oldestSubmittedAt: new Date(t.clock.now()).toISOString(),
      jobIds: ["7", "8"],
    });
    const before = await snapshot(db, t.tables);

    // Act
    const busy = await t.call("DELETE", `/clusters/${id}/storage`, undefined, {}, { localPath: "/data" });
    const afterBusy = await snapshot(db, t.tables);
    t.agent.refuseReconfigure = true;
    const refused = await t.call("POST", `/clusters/${id}/storage`, SCRATCH);
    const afterRefused = await snapshot(db, t.tables);
    t.agent.refuseReconfigure = false;
    const forced = await t.call(
      "DELETE",
      `/clusters/${id}/storage`,
      undefined,
      {},
      {
        localPath: "/data",
        force: "true",
      },
    );

    // Assess
    expect(busy.status).toBe(409);
    expect(busy.body.error).toMatch(/2 job\(s\) run on the cluster and may use \/data/);
    expect(afterBusy).toBe(before);
    expect(refused.status).toBe(502);
    expect(afterRefused).toBe(before);
    expect(forced.status).toBe(200);
    expect(forced.body).toMatchObject({ storage: [], runningNodes: "synced" });
    expect(t.agent.storage).toEqual([]);
  });

  it("tells only a RUNNING cluster's master; a sleeping cluster's new nodes still get the change", async () => {
    // Prepare
    const t = await apiBed(db);
    const id = await t.runningCluster();
    const c = (await t.store.getCluster(id)) as ClusterRecord;
    await t.store.updateCluster(id, c.version, { status: "SLEEPING", now: t.clock.now() });

    // Act
    const added = await t.call("POST", `/clusters/${id}/storage`, DATA);

    // Assess
    expect(added.status).toBe(200);
    expect(added.body.runningNodes).toBe("not told: the cluster is SLEEPING");
    expect(t.agent.storage).toEqual([]);
    expect((await t.store.getCluster(id))?.nodeSetup?.storage).toEqual([DATA]);
  });
});

describe("init scripts (THPC ModifyInitNodeScripts)", () => {
  it("replaces the list; new nodes run each one, inline text arriving base64-encoded", async () => {
    // Prepare
    const t = await apiBed(db);
    const id = await t.runningCluster();
    const scripts = [{ url: "s3://bucket/init.sh", timeoutS: 60 }, { inline: MARKER }];

    // Act
    const set = await t.call("PUT", `/clusters/${id}/init-scripts`, { initScripts: scripts });
    const shown = await t.call("GET", `/clusters/${id}/init-scripts`);
    const script = computeUserData(bootable((await t.store.getCluster(id)) as ClusterRecord), LAUNCH) ?? "";
    const cleared = await t.call("PUT", `/clusters/${id}/init-scripts`, { initScripts: [] });
    const none = computeUserData(bootable((await t.store.getCluster(id)) as ClusterRecord), LAUNCH) ?? "";

    // Assess
    expect(set.status).toBe(200);
    expect(shown.body.initScripts).toEqual([scripts[0], { inline: MARKER, timeoutS: 600 }]);
    expect(script).toContain("aws s3 cp 's3://bucket/init.sh' /var/lib/nowscale/init-0");
    expect(script).toContain(
      `'${Buffer.from(MARKER).toString("base64")}' | base64 -d > /var/lib/nowscale/init-1`,
    );
    expect(script).not.toContain("marker-$NOWSCALE_CLUSTER_ID");
    expect(script).toContain("timeout 600 /var/lib/nowscale/init-1");
    expect(cleared.body.initScripts).toEqual([]);
    expect(none).not.toContain("/var/lib/nowscale/init-");
  });

  it("refuses a bad URL, inline text without #!/ or with control characters, naming the field; nothing changes", async () => {
    // Prepare
    const t = await apiBed(db);
    const id = await t.runningCluster();
    const before = await snapshot(db, t.tables);

    // Act
    const http = await t.call("PUT", `/clusters/${id}/init-scripts`, {
      initScripts: [{ url: "s3://ok/a.sh" }, { url: "http://plain/a.sh" }],
    });
    const noShebang = await t.call("PUT", `/clusters/${id}/init-scripts`, {
      initScripts: [{ inline: "touch /x\n" }],
    });
    const control = await t.call("PUT", `/clusters/${id}/init-scripts`, {
      initScripts: [{ inline: "#!/bin/sh\necho \u001b[2Jhidden\n" }],
    });
    const both = await t.call("PUT", `/clusters/${id}/init-scripts`, {
      initScripts: [{ url: "s3://ok/a.sh", inline: "#!/bin/sh\n" }],
    });
    const long = await t.call("PUT", `/clusters/${id}/init-scripts`, {
      initScripts: [{ inline: `#!/bin/sh\n${"#".repeat(5000)}\n` }],
    });

    // Assess
    for (const res of [http, noShebang, control, both, long]) expect(res.status).toBe(400);
    expect(http.body.issues[0].path).toMatch(/^initScripts\[1\]/);
    expect(noShebang.body.issues[0].path).toMatch(/^initScripts\[0\]/);
    expect(JSON.stringify(noShebang.body.issues)).toContain("#!/");
    expect(JSON.stringify(control.body.issues)).toContain("printable ASCII");
    expect(JSON.stringify(long.body.issues)).toContain("4096");
    expect(await snapshot(db, t.tables)).toBe(before);
  });
});

/** An inline script of exactly `chars` characters (a #!/ line, then comment text). */
function inlineOf(chars: number): string {
  const head = "#!/bin/sh\n";
  return `${head}${"#".repeat(chars - head.length - 1)}\n`;
}

describe("the boot script must fit the clouds' user-data limit (16 KiB in base64)", () => {
  it("refuses an inline init script that would overflow it, naming the script and the sizes; nothing changes", async () => {
    // Prepare: the user's case, a 3,123-character script (under the 4,096 per-script limit)
    const t = await apiBed(db);
    const id = await t.runningCluster();
    const before = await snapshot(db, t.tables);

    // Act
    const res = await t.call("PUT", `/clusters/${id}/init-scripts`, {
      initScripts: [{ url: "s3://bucket/a.sh" }, { inline: MARKER }, { inline: inlineOf(3123) }],
    });

    // Assess
    expect(res.status).toBe(400);
    expect(res.body.issues[0].path).toBe("initScripts[2].inline");
    expect(res.body.issues[0].message).toMatch(/would be \d+ bytes in base64, over the cloud's 16384-byte/);
    expect(res.body.issues[0].message).toContain("https:// or s3:// URL");
    expect(await snapshot(db, t.tables)).toBe(before);
  });

  it("accepts the largest inline script that still fits, and refuses one character more", async () => {
    // Prepare: find the size where the rendered boot script reaches the limit
    const t = await apiBed(db);
    const id = await t.runningCluster();
    const cluster = (await t.store.getCluster(id)) as ClusterRecord;
    const bytesWith = (chars: number) =>
      largestComputeUserData({
        ...cluster,
        nodeSetup: { storage: [], initScripts: [{ inline: inlineOf(chars), timeoutS: 600 }] },
      })?.bytes ?? Number.POSITIVE_INFINITY;
    let fits = 20;
    let over = 4096;
    while (over - fits > 1) {
      const mid = Math.floor((fits + over) / 2);
      if (bytesWith(mid) <= MAX_USER_DATA_BASE64_BYTES) fits = mid;
      else over = mid;
    }

    // Act
    const tooBig = await t.call("PUT", `/clusters/${id}/init-scripts`, {
      initScripts: [{ inline: inlineOf(over) }],
    });
    const justFits = await t.call("PUT", `/clusters/${id}/init-scripts`, {
      initScripts: [{ inline: inlineOf(fits) }],
    });
    const shown = await t.call("GET", `/clusters/${id}/init-scripts`);

    // Assess
    console.log(`largest inline script that fits: ${fits} characters`);
    expect(fits).toBeGreaterThan(1000);
    expect(fits).toBeLessThan(3123);
    expect(tooBig.status).toBe(400);
    expect(tooBig.body.issues[0].path).toBe("initScripts[0].inline");
    expect(justFits.status).toBe(200);
    expect(shown.body.initScripts).toEqual([{ inline: inlineOf(fits), timeoutS: 600 }]);
  });

  it("refuses the storage mount that would overflow it, naming localPath; earlier mounts stay, nothing else changes", async () => {
    // Prepare: mounts with long paths, added until one no longer fits
    const t = await apiBed(db);
    const id = await t.runningCluster();
    const long = (i: number) => ({
      protocol: "NFS 4.0",
      remotePath: `172.30.3.${90 + i}:/${"r".repeat(200)}/${i}`,
      localPath: `/mnt/${"l".repeat(200)}/${i}`,
    });

    // Act
    const answers: { status: number; body: { issues?: { path: string; message: string }[] } }[] = [];
    let before = "";
    for (let i = 0; i < 20; i++) {
      before = await snapshot(db, t.tables);
      const res = await t.call("POST", `/clusters/${id}/storage`, long(i));
      answers.push(res);
      if (res.status !== 200) break;
    }
    const refused = answers[answers.length - 1];
    const kept = (await t.call("GET", `/clusters/${id}/storage`)).body.storage;

    // Assess
    expect(answers.length).toBeGreaterThan(1);
    expect(answers.length).toBeLessThan(20);
    expect(refused?.status).toBe(400);
    expect(refused?.body.issues?.[0]?.path).toBe("localPath");
    expect(refused?.body.issues?.[0]?.message).toMatch(/would be \d+ bytes in base64.*shorter mount paths/);
    expect(kept).toHaveLength(answers.length - 1);
    expect(t.agent.storage).toHaveLength(answers.length - 1);
    expect(await snapshot(db, t.tables)).toBe(before);
  });
});
