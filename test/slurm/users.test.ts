import { existsSync } from "node:fs";
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sleep } from "../../lib/providers/local/netns.js";
import {
  startTestbed,
  stopTestbed,
  type Testbed,
  testbedUnavailableReason,
} from "../../lib/providers/local/slurm-testbed.js";
import {
  addTestbedNode,
  consoleLogPath,
  removeTestbedNode,
} from "../../lib/providers/local/testbed-nodes.js";
import { runCommand } from "../../scheduler-plugins/slurm/exec.js";
import { placementFeatures } from "../../scheduler-plugins/slurm/features.js";

/**
 * Cluster users on a live Slurm: the agent's set-users (what SSM or the agent's HTTP API runs on a
 * master) makes the user on the master with its password read from a root-only secret file (the local
 * mode's secret store); a compute node booted with the cluster's user list makes the same uid and gid;
 * a job submitted by the user runs as that uid on the node and cannot read the secret; disable, delete
 * (files kept) and purge. The test bed's master is this machine: its users are made on this host, with
 * names and uids (29901-29903) nothing else uses, and removed afterwards. Run under the shared lock.
 */
describe("cluster users on a live Slurm (agent set-users)", () => {
  const prefix = "nsus-";
  const alice = "nsutalice";
  const bob = "nsutbob";
  const password = "correct-horse-battery-9";
  let tb: Testbed;
  let bundle: string;
  let secretFile: string;

  const slurm = async (file: string, args: string[]) => {
    const r = await runCommand(file, args, { env: tb.env, timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`${file} ${args.join(" ")}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const setUsers = async (body: unknown) => {
    const r = await runCommand(process.execPath, [bundle, "set-users", "--users", JSON.stringify(body)], {
      // The master's slurm.conf (SLURM_CONF): set-users writes its users lines there for the running nodes.
      env: tb.env,
      timeoutMs: 120_000,
    });
    return { code: r.code, out: r.stdout, answer: JSON.parse(r.stdout) as Record<string, unknown> };
  };
  const passwdLine = async (etc: string, name: string) =>
    (await readFile(join(etc, "passwd"), "utf8").catch(() => ""))
      .split("\n")
      .find((l) => l.startsWith(`${name}:`));
  const shadowField = async (name: string, field: number) =>
    (await readFile("/etc/shadow", "utf8"))
      .split("\n")
      .find((l) => l.startsWith(`${name}:`))
      ?.split(":")[field];
  const until = async <T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000) => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const value = await probe();
      if (value !== undefined) return value;
      await sleep(500);
    }
    throw new Error(`timed out waiting for ${what}`);
  };
  const cleanUsers = async () => {
    for (const name of [alice, bob, "nsutcarol"]) {
      await runCommand("userdel", ["-r", name]).catch(() => undefined);
      await runCommand("groupdel", [name]).catch(() => undefined);
      // A node's useradd -m makes the home in /home, which local instances share with the host.
      await rm(`/home/${name}`, { recursive: true, force: true });
    }
  };

  beforeAll(async () => {
    const unavailable = testbedUnavailableReason();
    if (unavailable !== undefined) throw new Error(`the real-Slurm suite cannot run here: ${unavailable}`);
    await cleanUsers();
    const stateDir = await mkdtemp(join(tmpdir(), "nowscale-users-test-"));
    // The users' sbatch reads slurm.conf and reaches munged's socket in here (the key stays 0700).
    await chmod(stateDir, 0o755);
    bundle = join(stateDir, "nowscale-agent.js");
    secretFile = join(stateDir, "secrets", "alice.json");
    await build({
      entryPoints: [join(import.meta.dirname, "..", "..", "agent", "cli.ts")],
      bundle: true,
      platform: "node",
      target: "node20",
      format: "esm",
      minify: true,
      keepNames: true,
      outfile: bundle,
      logLevel: "error",
    });
    tb = await startTestbed({
      stateDir,
      clusterName: "usertest",
      queues: [{ name: "compute" }],
      network: { bridge: `${prefix}br`, hostAddress: "192.168.233.1" },
      netnsPrefix: prefix,
      slurmctldPort: 7917,
      slurmdPort: 7918,
    });
    // The local mode's secret store: a file only root reads (what lib/local's user secrets write).
    await runCommand("install", ["-d", "-m", "0700", join(stateDir, "secrets")]);
    await writeFile(secretFile, JSON.stringify({ password }), { mode: 0o600 });
  }, 180_000);

  afterAll(async () => {
    if (tb !== undefined) {
      await removeTestbedNode(tb, "users-a").catch(() => undefined);
      await stopTestbed(tb);
    }
    await cleanUsers();
  }, 180_000);

  it("makes the user on the master, the same uid on a node, and runs the user's job there", async () => {
    // Act
    const made = await setUsers({
      users: [
        { name: alice, uid: 29901, enabled: true, secret: secretFile },
        { name: bob, uid: 29902, enabled: true },
      ],
    });
    await addTestbedNode(tb, {
      name: "users-a",
      address: "192.168.233.11",
      cpus: 1,
      realMemoryMiB: 1000,
      features: placementFeatures({ queue: "compute", instanceType: "local.c1m1", zone: "local-a" }),
      // The boot script's list, the same as the master's set (the node's sync follows the master's users
      // lines from then on: a name only in the list would be removed there).
      users: [
        { name: alice, uid: 29901 },
        { name: bob, uid: 29902 },
      ],
    });
    const out = `/home/${alice}/job.out`;
    const job = await runCommand(
      "runuser",
      [
        "-u",
        alice,
        "--",
        "sbatch",
        "--parsable",
        `--chdir=/home/${alice}`,
        `--output=${out}`,
        "--wrap",
        `echo "uid=$(id -u) gid=$(id -g) user=$(id -un) host=$(hostname)"; cat ${secretFile} /etc/shadow 2>&1 | sed 's/^/read: /'`,
      ],
      { env: tb.env, timeoutMs: 60_000 },
    );
    const output = await until("the job's output", async () => {
      const text = await readFile(out, "utf8").catch(() => "");
      return text.includes("read:") && (await slurm("squeue", ["-h", "-j", job.stdout.trim()])) === ""
        ? text
        : undefined;
    });

    // Assess
    expect(made.code, made.out).toBe(0);
    expect(made.answer).toMatchObject({
      ok: true,
      added: [alice, bob],
      users: [
        { name: alice, uid: 29901, enabled: true },
        { name: bob, uid: 29902, enabled: true },
      ],
    });
    expect(made.out).not.toContain(password);
    expect(await passwdLine("/etc", alice)).toBe(
      `${alice}:x:29901:29901:nowscale user:/home/${alice}:/bin/bash`,
    );
    // chpasswd set a hash of the password (never the password itself).
    expect(await shadowField(alice, 1)).toMatch(/^\$/);
    expect(await readFile("/etc/shadow", "utf8")).not.toContain(password);
    expect((await stat(`/home/${alice}`)).mode & 0o777).toBe(0o700);
    expect(job.code, job.stderr).toBe(0);
    expect(output).toContain("uid=29901 gid=29901 user=nsutalice host=users-a");
    // The job could read neither the secret nor the hashes.
    expect(output).not.toContain(password);
    expect(output).toMatch(/read: cat: .*alice\.json: Permission denied/);
    expect(output).toMatch(/read: cat: \/etc\/shadow: Permission denied/);
    // The boot script made the list's accounts (here they also exist on the host: the local instances'
    // /etc lies over the host's, so the node's own passwd file shows nothing new; users-running.test.ts
    // checks accounts a node makes itself).
    expect(await readFile(consoleLogPath(tb, "users-a"), "utf8")).toContain("creating 2 cluster users");
    expect(await readFile(consoleLogPath(tb, "users-a"), "utf8")).not.toContain(password);
  });

  it("runs a job of a user added after the node booted with the master's uid (Slurm carries it)", async () => {
    // Prepare: the node booted in the first test; the master's set names alice and bob.
    const carol = "nsutcarol";
    const out = `/home/${carol}/job.out`;

    // Act
    const made = await setUsers({
      users: [
        { name: alice, uid: 29901, enabled: true },
        { name: carol, uid: 29903, enabled: true },
      ],
    });
    const job = await runCommand(
      "runuser",
      [
        "-u",
        carol,
        "--",
        "sbatch",
        "--parsable",
        `--chdir=/home/${carol}`,
        `--output=${out}`,
        "--wrap",
        "echo uid=$(id -u) gid=$(id -g) host=$(hostname)",
      ],
      { env: tb.env, timeoutMs: 60_000 },
    );
    const output = await until("carol's job output", async () => {
      const text = await readFile(out, "utf8").catch(() => "");
      return text.includes("host=") ? text : undefined;
    });
    const nodeLine = await passwdLine(
      join(tb.stateDir, "instances", "users-a", "overlay", "etc", "upper"),
      carol,
    );
    await setUsers({ users: [{ name: alice, uid: 29901, enabled: true }], purge: [carol] });

    // Assess: same uid and gid on the node; the node has no name for it until it is replaced.
    expect(made.answer).toMatchObject({ ok: true, added: [carol] });
    expect(job.code, job.stderr).toBe(0);
    expect(output).toContain("uid=29903 gid=29903 host=users-a");
    expect(nodeLine).toBeUndefined();
  });

  it("disables the user (expired: no login) and enables them again", async () => {
    // Act
    const disabled = await setUsers({ users: [{ name: alice, uid: 29901, enabled: false }] });
    const expiredDay = await shadowField(alice, 7);
    const login = await runCommand("su", ["-s", "/bin/sh", alice, "-c", "true"], { env: tb.env });
    const enabled = await setUsers({ users: [{ name: alice, uid: 29901, enabled: true }] });

    // Assess
    expect(disabled.answer).toMatchObject({
      ok: true,
      updated: [alice],
      users: [{ name: alice, enabled: false }],
    });
    expect(expiredDay).toBe("1");
    expect(login.code).not.toBe(0);
    expect(enabled.answer).toMatchObject({
      ok: true,
      updated: [alice],
      users: [{ name: alice, enabled: true }],
    });
    expect(await shadowField(alice, 7)).toBe("");
  });

  it("refuses system names and host accounts, changing nothing", async () => {
    // Prepare
    const before = await readFile("/etc/passwd", "utf8");

    // Act
    const reserved = await setUsers({ users: [{ name: "root", uid: 29903, enabled: true }] });
    const hostAccount = await setUsers({ users: [{ name: "_apt", uid: 29903, enabled: true }] });
    const hostile = await setUsers({ users: [{ name: "x;rm -rf /", uid: 29903, enabled: true }] });

    // Assess
    expect(reserved.code).toBe(64);
    expect(String(reserved.answer.error)).toContain("users[0].name");
    expect(hostAccount.code).toBe(64);
    expect(hostile.code).toBe(64);
    expect(await readFile("/etc/passwd", "utf8")).toBe(before);
  });

  it("deletes the user keeping their files, and purges them when asked", async () => {
    // Act
    const deleted = await setUsers({ users: [] });
    const keptHome = existsSync(`/home/${alice}/job.out`);
    await setUsers({ users: [{ name: alice, uid: 29901, enabled: true }] });
    const purged = await setUsers({ users: [], purge: [alice] });

    // Assess
    expect(deleted.answer).toMatchObject({ ok: true, removed: [alice], users: [] });
    expect(keptHome).toBe(true);
    expect(purged.answer).toMatchObject({ ok: true, removed: [alice] });
    expect(await passwdLine("/etc", alice)).toBeUndefined();
    expect(existsSync(`/home/${alice}`)).toBe(false);
  });

  it("refuses a secret file others may read (a leak already), changing nothing", async () => {
    // Prepare
    const loose = join(tb.stateDir, "loose.json");
    await writeFile(loose, JSON.stringify({ password }), { mode: 0o644 });

    // Act
    const refused = await setUsers({ users: [{ name: alice, uid: 29901, enabled: true, secret: loose }] });
    await rm(loose);

    // Assess
    expect(refused.code).toBe(1);
    expect(String(refused.answer.error)).toContain("users[0].secret");
    expect(refused.out).not.toContain(password);
    expect(await passwdLine("/etc", alice)).toBeUndefined();
  });
});
