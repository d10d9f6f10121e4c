import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { answerSetUsers } from "../../../agent/users.js";
import { USER_GECOS } from "../../../lib/ports/cluster-users.js";
import { renderBootstrapScript } from "../../../scheduler-plugins/slurm/bootstrap.js";
import { applyNodeStorage } from "../../../scheduler-plugins/slurm/node-storage.js";
import {
  STORAGE_LINE_PREFIX,
  storageSyncProgram,
} from "../../../scheduler-plugins/slurm/node-storage-sync.js";
import {
  applyNodeUsers,
  LINE_CHUNK,
  type NodeUsers,
  parseNodeUsers,
  readUsersLines,
  rewriteUsersLines,
} from "../../../scheduler-plugins/slurm/node-users.js";
import { withConfLock } from "../../../scheduler-plugins/slurm/partition-apply.js";

/**
 * The users lines of slurm.conf (scheduler-plugins/slurm/node-users.ts): the cluster's users for the
 * running compute nodes, written by the agent's set-users after the master's accounts and read by each
 * node's sync (node-storage-sync.ts). Rendered and read back, cut to Slurm's line buffer, hostile entries
 * refused on the master; and the node's python sync run on fixtures (its /etc and the user commands
 * stand-ins that record their argv), refusing hostile entries a tampered line carries.
 */

const CONF = "ClusterName=x\nSlurmctldHost=m\n# a person's comment\nPartitionName=compute Nodes=ALL\n";
const SET: NodeUsers = {
  users: [
    { name: "alice", uid: 21000, gid: 21000, enabled: true },
    { name: "bob", uid: 21001, gid: 21001, enabled: false },
  ],
  purge: ["carol"],
};

describe("slurm.conf's users lines", () => {
  it("writes, replaces and reads back the set, leaving every other line as it was", () => {
    // Act
    const one = rewriteUsersLines(CONF, SET);
    const two = rewriteUsersLines(one, { users: [SET.users[0] as NodeUsers["users"][0]], purge: [] });
    const none = rewriteUsersLines(two, { users: [], purge: [] });

    // Assess
    expect(readUsersLines(one)).toEqual(SET);
    expect(one.replace(/^#nowscale-users .*\n/gm, "")).toBe(CONF);
    expect(readUsersLines(two)?.users.map((u) => u.name)).toEqual(["alice"]);
    // An empty set is still said (remove every user); no line at all says nothing.
    expect(readUsersLines(none)).toEqual({ users: [], purge: [] });
    expect(readUsersLines(CONF)).toBeUndefined();
    expect(one).not.toMatch(/secret|password/i);
  });

  it("cuts a large set into lines Slurm's 4 KiB line buffer takes whole", () => {
    // Prepare: the most users a cluster may have, with the longest names
    const users = Array.from({ length: 500 }, (_, i) => ({
      name: `u${String(i).padStart(3, "0")}${"x".repeat(28)}`,
      uid: 21000 + i,
      gid: 21000 + i,
      enabled: i % 2 === 0,
    }));

    // Act
    const conf = rewriteUsersLines(CONF, { users, purge: [] });

    // Assess
    const lines = conf.split("\n").filter((l) => l.startsWith("#nowscale-users "));
    expect(lines.length).toBeGreaterThan(10);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(LINE_CHUNK);
    expect(readUsersLines(conf)?.users).toEqual(users);
  });

  it("refuses hostile or inconsistent entries, naming the field, before anything is written", () => {
    const row = (name: unknown, uid: unknown = 21000, gid: unknown = uid, on: unknown = 1) => ({
      u: [[name, uid, gid, on]],
      p: [],
    });
    const cases: [unknown, RegExp][] = [
      [row("root"), /u\[0\]\.name: .*system account/],
      [row("a;reboot"), /u\[0\]\.name/],
      [row("$(reboot)"), /u\[0\]\.name/],
      [row("Alice"), /u\[0\]\.name/],
      [row("alice", 0), /u\[0\]\.uid/],
      [row("alice", 30000), /u\[0\]\.uid/],
      [row("alice", 21000, 0), /u\[0\]\.gid/],
      [row("alice", 21000, 21000, "yes"), /u\[0\]\.enabled/],
      [{ u: [["alice", 21000, 21000, 1]], p: ["alice"] }, /purge\[0\]/],
      [{ u: [["alice", 21000, 21000, 1]], p: ["../x"] }, /purge\[0\]/],
      [
        {
          u: [
            ["alice", 21000, 21000, 1],
            ["bob", 21000, 21000, 1],
          ],
          p: [],
        },
        /listed twice/,
      ],
    ];
    for (const [input, message] of cases)
      expect(() => parseNodeUsers(input), JSON.stringify(input)).toThrow(message);
    expect(() =>
      rewriteUsersLines(CONF, {
        users: [{ name: "x;reboot", uid: 21000, gid: 21000, enabled: true }],
        purge: [],
      }),
    ).toThrow(TypeError);
    const tampered = `${CONF}#nowscale-users ${Buffer.from(JSON.stringify(row("root"))).toString("base64")}\n`;
    expect(() => readUsersLines(tampered)).toThrow(/system account/);
  });
});

describe("set-users tells the running nodes through slurm.conf", () => {
  const request = {
    users: [{ name: "alice", uid: 21000, enabled: true, secret: "nowscale/c-1/users/alice" }],
    purge: [],
  };
  const answer = async () => ({
    users: [{ name: "alice", uid: 21000, enabled: true }],
    added: ["alice"],
    removed: [],
    updated: [],
  });

  it("writes the users lines (no secret id) and reconfigures once the master's accounts are set", async () => {
    // Prepare
    const dir = mkdtempSync(join(tmpdir(), "nowscale-node-users-"));
    const confPath = join(dir, "slurm.conf");
    writeFileSync(confPath, CONF);
    let reconfigured = 0;

    // Act
    const first = await answerSetUsers(request, answer, {
      confPath,
      reconfigure: async () => void reconfigured++,
    });
    const again = await answerSetUsers(request, answer, {
      confPath,
      reconfigure: async () => void reconfigured++,
    });

    // Assess
    expect(first.status).toBe(200);
    expect(first.body.nodesChanged).toBe(true);
    expect(again.body.nodesChanged).toBe(false);
    expect(reconfigured).toBe(1);
    const conf = readFileSync(confPath, "utf8");
    expect(readUsersLines(conf)).toEqual({
      users: [{ name: "alice", uid: 21000, gid: 21000, enabled: true }],
      purge: [],
    });
    expect(conf).not.toContain("nowscale/c-1/users");
    expect(readFileSync(`${confPath}.nowscale-prev`, "utf8")).toBe(CONF);
  });

  it("puts the previous slurm.conf back when reconfigure fails, and says the nodes were not told", async () => {
    // Prepare
    const dir = mkdtempSync(join(tmpdir(), "nowscale-node-users-"));
    const confPath = join(dir, "slurm.conf");
    writeFileSync(confPath, CONF);
    let calls = 0;

    // Act
    const result = await answerSetUsers(request, answer, {
      confPath,
      reconfigure: async () => {
        calls++;
        if (calls === 1) throw new Error("slurmctld refused");
      },
    });

    // Assess
    expect(result.status).toBe(502);
    expect(result.body.nodesTold).toBe(false);
    expect(String(result.body.error)).toMatch(/master's users are set.*rolled back.*slurmctld refused/);
    expect(readFileSync(confPath, "utf8")).toBe(CONF);
  });
});

describe("slurm.conf edited by several agent commands at once (withConfLock)", () => {
  const slowReconfigure = () => new Promise<void>((resolve) => setTimeout(resolve, 50));

  it("keeps both the users lines and the storage line when set-users and set-node-storage run together", async () => {
    // Prepare: each is a read, a write and a reconfigure; without a lock the later write drops the other's line
    const confPath = join(mkdtempSync(join(tmpdir(), "nowscale-conf-lock-")), "slurm.conf");
    writeFileSync(confPath, CONF);
    const options = { confPath, reconfigure: slowReconfigure };

    // Act
    await Promise.all([
      applyNodeUsers({ users: [{ name: "alice", uid: 21000, enabled: true }], purge: [] }, options),
      applyNodeStorage([{ localPath: "/data", remotePath: "10.0.0.1:/data", protocol: "NFS 4.0" }], options),
    ]);

    // Assess
    const text = readFileSync(confPath, "utf8");
    expect(readUsersLines(text)?.users.map((u) => u.name)).toEqual(["alice"]);
    expect(text).toContain(STORAGE_LINE_PREFIX);
    expect(existsSync(`${confPath}.nowscale-lock`)).toBe(false);
  });

  it("takes over the lock of a process that is gone, and refuses naming the lock while a live one holds it", async () => {
    // Prepare: a crashed agent's lock (a pid that has exited), then a live holder (this process)
    const confPath = join(mkdtempSync(join(tmpdir(), "nowscale-conf-lock-")), "slurm.conf");
    writeFileSync(confPath, CONF);
    const gone = spawnSync("sh", ["-c", "echo $$"], { encoding: "utf8" }).stdout.trim();
    writeFileSync(`${confPath}.nowscale-lock`, gone);

    // Act
    const afterCrash = await withConfLock(confPath, async () => "ran");
    writeFileSync(`${confPath}.nowscale-lock`, String(process.pid));
    const busy = await withConfLock(confPath, async () => "ran", 300).catch((e: Error) => e.message);

    // Assess
    expect(afterCrash).toBe("ran");
    expect(busy).toMatch(/slurm\.conf is being changed by another agent command .*nowscale-lock/);
  });
});

describe("the node's sync program with the users lines (python, on fixtures)", () => {
  /**
   * Runs the sync on a fixture /etc and slurm.conf, with stand-ins for getent, groupadd, useradd, usermod,
   * userdel that record their argv (useradd and userdel also edit the fixture passwd, as the real ones do).
   */
  function sync(conf: string, passwd: string, shadow = "", args: string[] = [], input = "") {
    const dir = mkdtempSync(join(tmpdir(), "nowscale-sync-users-"));
    const etc = join(dir, "etc");
    const bin = join(dir, "bin");
    const calls = join(dir, "calls");
    spawnSync("mkdir", ["-p", etc, bin, join(dir, "home")]);
    writeFileSync(join(etc, "passwd"), passwd);
    writeFileSync(join(etc, "shadow"), shadow);
    writeFileSync(join(dir, "slurm.conf"), conf);
    writeFileSync(calls, "");
    const stub = (body: string) => `#!/bin/sh\necho "$(basename "$0") $*" >> ${calls}\n${body}\n`;
    writeFileSync(join(bin, "getent"), stub("exit 2"), { mode: 0o755 });
    for (const c of ["groupadd", "usermod"]) writeFileSync(join(bin, c), stub("exit 0"), { mode: 0o755 });
    // useradd -u UID -g GID -c GECOS -m -s SHELL NAME
    writeFileSync(
      join(bin, "useradd"),
      stub(
        `for a; do n=$a; done; mkdir -p ${dir}/home/$n; echo "$n:x:$2:$4:$6:${dir}/home/$n:/bin/bash" >> ${etc}/passwd`,
      ),
      { mode: 0o755 },
    );
    writeFileSync(
      join(bin, "userdel"),
      stub(
        `for a; do n=$a; done; grep -v "^$n:" ${etc}/passwd > ${etc}/p.new; mv ${etc}/p.new ${etc}/passwd`,
      ),
      { mode: 0o755 },
    );
    const program = join(dir, "sync.py");
    writeFileSync(program, storageSyncProgram());
    const r = spawnSync("python3", [program, ...args], {
      input,
      encoding: "utf8",
      env: {
        PATH: `${bin}:${process.env.PATH}`,
        NOWSCALE_SYNC_ETC: etc,
        NOWSCALE_SYNC_CONF: join(dir, "slurm.conf"),
      },
    });
    return {
      status: r.status,
      out: r.stdout + r.stderr,
      calls: readFileSync(calls, "utf8").trim().split("\n").filter(Boolean),
      passwd: readFileSync(join(etc, "passwd"), "utf8"),
    };
  }
  const HOST = "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n";
  const line = (set: unknown) => `#nowscale-users ${Buffer.from(JSON.stringify(set)).toString("base64")}\n`;

  it("creates the missing users with their uid and gid, expires the disabled, removes the absent NowScale ones only", () => {
    // Prepare: dave was NowScale's and is gone from the set; daemon is the node's own
    const passwd = `${HOST}dave:x:21005:21005:${USER_GECOS}:/home/dave:/bin/bash\n`;
    const conf = rewriteUsersLines(CONF, { ...SET, purge: ["dave"] });

    // Act
    const r = sync(conf, passwd);

    // Assess
    expect(r.status, r.out).toBe(0);
    expect(r.calls).toContain(`useradd -u 21000 -g 21000 -c ${USER_GECOS} -m -s /bin/bash alice`);
    expect(r.calls).toContain("groupadd -g 21001 bob");
    expect(r.calls).toContain("usermod -e 1 bob");
    expect(r.calls).not.toContain("usermod -e 1 alice");
    expect(r.calls).toContain("userdel -r dave");
    expect(r.calls.join("\n")).not.toMatch(/daemon|root/);
    expect(r.out).toContain("created user alice (uid 21000)");
    expect(r.out).toContain("removed user dave and its files");
  });

  it("keeps a deleted user's files unless purged, and re-enables an expired user", () => {
    // Prepare: alice expired (day 1), erin NowScale's and absent without purge
    const passwd = `${HOST}alice:x:21000:21000:${USER_GECOS}:/home/alice:/bin/bash\nerin:x:21007:21007:${USER_GECOS}:/home/erin:/bin/bash\n`;
    const shadow = "alice:!:19000:0:99999:7::1:\n";
    const conf = rewriteUsersLines(CONF, { users: [SET.users[0] as NodeUsers["users"][0]], purge: [] });

    // Act
    const r = sync(conf, passwd, shadow);

    // Assess
    expect(r.calls).toEqual(["usermod -e  alice", "userdel erin"]);
    expect(r.out).toContain("removed user erin, files kept");
  });

  it("refuses the hostile entries of a tampered line before any command sees them", () => {
    // Prepare: a line written behind the agent's back (its checks bypassed)
    const conf = `${CONF}${line({
      u: [
        ["x;touch /tmp/pwned", 21000, 21000, 1],
        ["$(reboot)", 21001, 21001, 1],
        ["root", 0, 0, 1],
        ["mallory", 21002, 0, 1],
        ["eve", "21003", "21003", 1],
        ["ok", 21004, 21004, 1],
      ],
      p: [],
    })}`;

    // Act
    const r = sync(conf, HOST);

    // Assess
    expect(r.calls.filter((c) => c.startsWith("useradd"))).toEqual([
      `useradd -u 21004 -g 21004 -c ${USER_GECOS} -m -s /bin/bash ok`,
    ]);
    expect(r.out.match(/refused a user entry/g)).toHaveLength(5);
    expect(r.passwd).toContain("root:x:0:0:root:/root:/bin/bash");
  });

  it("removes a NowScale user whose GECOS got chfn subfields (`nowscale user,42,,`)", () => {
    // Prepare: mallory ran `chfn -r 42` on the master; the node's account says the same
    const passwd = `${HOST}mallory:x:21003:21003:${USER_GECOS},42,,:/home/mallory:/bin/bash\n`;
    const conf = rewriteUsersLines(CONF, { users: [], purge: [] });

    // Act
    const r = sync(conf, passwd);

    // Assess
    expect(r.calls).toEqual(["userdel mallory"]);
  });

  it("refuses a name with a trailing newline (Python's `$` matches before it)", () => {
    // Prepare: a tampered line; useradd would get "eve\\n"
    const conf = `${CONF}${line({ u: [["eve\n", 21004, 21004, 1]], p: [] })}`;

    // Act
    const r = sync(conf, HOST);

    // Assess
    expect(r.calls).toEqual([]);
    expect(r.out).toContain("refused a user entry");
  });

  it("leaves the node's users alone when the master never wrote the lines, and on a damaged line", () => {
    // Prepare
    const passwd = `${HOST}dave:x:21005:21005:${USER_GECOS}:/home/dave:/bin/bash\n`;

    // Act
    const absent = sync(CONF, passwd);
    const damaged = sync(`${CONF}#nowscale-users %%%notbase64\n`, passwd);

    // Assess
    expect(absent.calls).toEqual([]);
    expect(damaged.calls).toEqual([]);
    expect(damaged.out).toContain("users not synced");
  });

  it("at boot (`users` on stdin) creates and expires, never removes", () => {
    // Prepare
    const passwd = `${HOST}dave:x:21005:21005:${USER_GECOS}:/home/dave:/bin/bash\n`;

    // Act
    const r = sync(CONF, passwd, "", ["users"], "alice 21000 1\nbob 21001 0\nx;reboot 21002 1\n");

    // Assess
    expect(r.calls).toContain(`useradd -u 21000 -g 21000 -c ${USER_GECOS} -m -s /bin/bash alice`);
    expect(r.calls).toContain("usermod -e 1 bob");
    expect(r.calls.join("\n")).not.toMatch(/userdel|reboot/);
  });
});

describe("the compute boot script with users", () => {
  it("passes names and uids to the sync program in a quoted here-document, never a secret", () => {
    // Act
    const script = renderBootstrapScript({
      clusterId: "c-1",
      identityFrom: "aws-imds",
      queue: "compute",
      instanceType: "t.x",
      zone: "z-a",
      cpus: 1,
      realMemoryMiB: 1024,
      controllerAddress: "10.0.0.1",
      mungeKey: { source: "aws-secretsmanager", secretId: "munge", region: "r-1" },
      users: [
        { name: "alice", uid: 21000, enabled: true },
        { name: "bob", uid: 21001, enabled: false },
      ],
    });

    // Assess
    expect(script).toContain(
      "python3 /opt/nowscale/nowscale-storage-sync users <<'USERS'\nalice 21000 1\nbob 21001 0\nUSERS\n",
    );
    expect(script.indexOf("nowscale-storage-sync users")).toBeGreaterThan(
      script.indexOf("> /opt/nowscale/nowscale-storage-sync"),
    );
    expect(script.indexOf("nowscale-storage-sync users")).toBeLessThan(script.indexOf("starting slurmd -Z"));
    expect(STORAGE_LINE_PREFIX).toBe("#nowscale-storage ");
  });
});
