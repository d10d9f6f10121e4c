import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { demoCluster } from "../../lib/local/demo.js";
import { localPaths } from "../../lib/local/settings.js";
import { USER_GECOS } from "../../lib/ports/cluster-users.js";
import { testbedUnavailableReason } from "../../lib/providers/local/slurm-testbed.js";
import { runCommand } from "../../scheduler-plugins/slurm/exec.js";
import { CLI, runCliAsync } from "../support/cli.js";
import { until } from "../support/until.js";

/**
 * Cluster users end to end in the local mode, as a user runs them (the built CLI against `local up`):
 * `users add alice --password-stdin` → `users list` shows her, and her password is nowhere but the
 * secret store (not in the CLI's output, the state directory's logs, state file, node user data or
 * console logs) → a job she submits (`su alice -c 'sbatch ...'`) makes the scaler launch a node, where it
 * runs with her uid and gid, the master's → `disable` (su refused, so no submission) → `enable` →
 * `delete` (home kept) → `delete --purge` of bob (home removed). The local master is this machine, so
 * alice and bob are made on this host; the test refuses to start if an account outside NowScale has
 * either name, and removes both afterwards. Own prefix, subnet and ports; run under
 * `flock /work/notes/slurm.lock`.
 */
const PORTS = { api: 8280, agent: 8219, slurmctld: 8217, slurmd: 8218 };
const ALICE = "alice";
const BOB = "bob";
const CAROL = "carol";
const PASSWORD = "Tr0ub4dor-local-e2e";

interface UserRow {
  name: string;
  uid: number;
  gid: number;
  enabled: boolean;
  hasPassword: boolean;
}

describe("cluster users in the local mode (CLI, real Slurm)", () => {
  let stateDir = "";
  let configDir = "";
  let slurmEnv: NodeJS.ProcessEnv = {};
  let clusterId = "";
  const outputs: string[] = [];

  const cli = async (args: string[], input?: string) => {
    const run = await runCliAsync(
      args,
      { NOWSCALE_LOCAL_DIR: stateDir, NOWSCALE_CONFIG_DIR: configDir },
      input === undefined ? {} : { input },
    );
    // Every CLI answer is searched for the password at the end.
    outputs.push(run.stdout, run.stderr);
    return run;
  };
  const slurm = async (file: string, args: string[]) => {
    const r = await runCommand(file, args, { env: slurmEnv, timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`${file} ${args.join(" ")}: ${r.stderr}`);
    return r.stdout.trim();
  };
  /** sbatch run as `user` through su (PAM's account check applies: an expired account is refused). */
  const submitAs = (user: string, out: string, command: string) =>
    runCommand(
      "su",
      [
        "-s",
        "/bin/sh",
        user,
        "-c",
        `sbatch --parsable -p compute -n1 --chdir=/home/${user} --output=${out} --wrap '${command}'`,
      ],
      { env: slurmEnv, timeoutMs: 60_000 },
    );
  const job = async (id: string) => {
    const line = await slurm("scontrol", ["-o", "show", "job", id]);
    return {
      state: /JobState=(\S+)/.exec(line)?.[1] ?? "",
      nodes: /\sNodeList=(\S+)/.exec(line)?.[1] ?? "",
    };
  };
  const users = async (): Promise<UserRow[]> => {
    const list = await cli(["users", "list", "--json"]);
    if (list.status !== 0) throw new Error(`users list: ${list.stderr}`);
    return JSON.parse(list.stdout).users as UserRow[];
  };
  /** The cluster's nodes, as `nodes list` shows them (the ones the scaler launched). */
  const nodes = async (): Promise<{ node: string }[]> => {
    const list = await cli(["nodes", "list", "--json"]);
    if (list.status !== 0) throw new Error(`nodes list: ${list.stderr}`);
    return JSON.parse(list.stdout).nodes as { node: string }[];
  };
  const passwd = async (name: string) => (await runCommand("getent", ["passwd", name])).stdout.trim();
  /** True when `password` hashes to the user's /etc/shadow hash (perl's crypt is libcrypt's: yescrypt). */
  const passwordMatches = async (name: string, password: string) => {
    const hash = (await readFile("/etc/shadow", "utf8"))
      .split("\n")
      .find((l) => l.startsWith(`${name}:`))
      ?.split(":")[1];
    if (hash === undefined || !hash.startsWith("$")) return false;
    const r = await runCommand("perl", ["-e", "print crypt($ENV{P}, $ENV{H}) eq $ENV{H} ? 1 : 0"], {
      env: { ...process.env, P: password, H: hash },
    });
    return r.stdout === "1";
  };
  /** Every regular file under `dir` (sockets, fifos and links skipped). */
  const files = async (dir: string): Promise<string[]> => {
    const found: string[] = [];
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) found.push(...(await files(path)));
      else if (entry.isFile()) found.push(path);
    }
    return found;
  };
  const removeUsers = async () => {
    for (const name of [ALICE, BOB, CAROL]) {
      const line = await passwd(name);
      if (line === "") {
        await rm(`/home/${name}`, { recursive: true, force: true });
        continue;
      }
      // Only an account this test (NowScale) made is ever removed.
      if (line.split(":")[4] !== USER_GECOS)
        throw new Error(`this host has its own account ${name}: ${line}`);
      await runCommand("userdel", ["-r", name]);
      await runCommand("groupdel", [name]).catch(() => undefined);
      await rm(`/home/${name}`, { recursive: true, force: true });
    }
  };

  beforeAll(async () => {
    const unavailable = testbedUnavailableReason();
    if (unavailable !== undefined) throw new Error(`the real-Slurm suite cannot run here: ${unavailable}`);
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first`);
    await removeUsers();
    stateDir = await mkdtemp(join(tmpdir(), "nowscale-usersl-"));
    configDir = await mkdtemp(join(tmpdir(), "nowscale-usersl-config-"));
    slurmEnv = { ...process.env, SLURM_CONF: join(localPaths(stateDir).slurmDir, "slurm.conf") };
    const up = await cli([
      "local",
      "up",
      "--state-dir",
      stateDir,
      "--port",
      String(PORTS.api),
      "--agent-port",
      String(PORTS.agent),
      "--slurmctld-port",
      String(PORTS.slurmctld),
      "--slurmd-port",
      String(PORTS.slurmd),
      "--prefix",
      "nsul-",
      "--subnet",
      "192.168.229",
      "--interval",
      "2",
      "--boot-delay",
      "200",
    ]);
    if (up.status !== 0) throw new Error(`local up failed: ${up.stdout}${up.stderr}`);
    const file = join(configDir, "cluster.json");
    await writeFile(file, JSON.stringify({ ...demoCluster(5), name: "usersl" }));
    const created = await cli(["cluster", "create", "--file", file, "--wait", "--json"]);
    if (created.status !== 0) throw new Error(`cluster create failed: ${created.stderr}`);
    clusterId = JSON.parse(created.stdout).clusterId;
    const use = await cli(["use", clusterId]);
    if (use.status !== 0) throw new Error(`use failed: ${use.stderr}`);
  }, 300_000);

  afterAll(async () => {
    if (stateDir !== "") {
      const down = await cli(["local", "down", "--state-dir", stateDir]);
      expect(down.status, down.stderr).toBe(0);
      await rm(stateDir, { recursive: true, force: true });
    }
    if (configDir !== "") await rm(configDir, { recursive: true, force: true });
    await removeUsers();
  }, 240_000);

  it("users add (password on stdin) → users list → alice's job gets a node from the scaler and runs there as her uid/gid; the password is nowhere but the secret store", async () => {
    // Act: add alice, list
    const added = await cli(["users", "add", ALICE, "--password-stdin", "--json"], `${PASSWORD}\n`);
    const listed = await users();
    const table = await cli(["users", "list"]);
    const master = await passwd(ALICE);

    // Assess: on the master, listed, a password set
    expect(added.status, added.stderr).toBe(0);
    const alice = JSON.parse(added.stdout) as UserRow;
    expect(alice).toMatchObject({ name: ALICE, enabled: true, hasPassword: true });
    expect(alice.gid).toBe(alice.uid);
    expect(listed).toEqual([expect.objectContaining({ name: ALICE, uid: alice.uid, enabled: true })]);
    expect(table.stdout).toMatch(new RegExp(`^${ALICE}\\s+${alice.uid}\\s+yes\\s+set`, "m"));
    expect(master).toBe(`${ALICE}:x:${alice.uid}:${alice.uid}:${USER_GECOS}:/home/${ALICE}:/bin/bash`);
    // The master's shadow hash is of the password given on stdin (crypt of it with the hash's own salt).
    expect(await passwordMatches(ALICE, PASSWORD)).toBe(true);
    expect(await passwordMatches(ALICE, `${PASSWORD}x`)).toBe(false);

    // Act: a job submitted as alice; nothing runs in compute yet, so the scaler must launch a node
    const out = `/home/${ALICE}/id.out`;
    const before = await nodes();
    const started = Date.now();
    const submitted = await submitAs(ALICE, out, "id; hostname");
    expect(submitted.code, submitted.stderr).toBe(0);
    const id = submitted.stdout.trim();
    const seen = new Set<string>();
    const done = await until(`alice's job ${id} to complete`, async () => {
      for (const n of await nodes()) seen.add(n.node);
      const j = await job(id);
      return j.state === "COMPLETED" ? j : undefined;
    });
    const output = await readFile(out, "utf8");
    const [uid, gid] = [
      (await runCommand("id", ["-u", ALICE])).stdout.trim(),
      (await runCommand("id", ["-g", ALICE])).stdout.trim(),
    ];
    // The instance's files (its user data among them) are under the test bed's directory.
    const everyFile = await files(stateDir);
    const userDataFile = everyFile.find((f) => f.endsWith(`/instances/${done.nodes}/user-data`));
    const nodeUserData = await readFile(userDataFile ?? "/nonexistent", "utf8");
    const consoleLog = everyFile.find((f) => f.endsWith(`/console/${done.nodes}.log`));
    const record = await cli(["cluster", "get", "--json"]);

    // Assess: it ran on the launched node, as alice, with the master's uid and gid
    expect(before).toEqual([]);
    expect(seen.has(done.nodes)).toBe(true);
    expect(output).toContain(`uid=${uid}(${ALICE}) gid=${gid}(${ALICE})`);
    expect(uid).toBe(String(alice.uid));
    expect(output.trim().split("\n").at(-1)).toBe(done.nodes);
    // The node made her from its boot script (name and uid, never a secret).
    expect(nodeUserData).toContain(ALICE);
    expect(record.status, record.stderr).toBe(0);
    expect(consoleLog).toBeDefined();
    // The password: only in the secret store's 0600 file, nowhere else under the state directory.
    const secrets = join(stateDir, "secrets", "users");
    const stored = (await readdir(secrets)).map((f) => join(secrets, f));
    expect(stored).toHaveLength(1);
    expect(((await stat(stored[0] as string)).mode & 0o777).toString(8)).toBe("600");
    expect(((await stat(secrets)).mode & 0o777).toString(8)).toBe("700");
    // The search finds it where it is (the store), and reads the supervisor's and agent's logs.
    expect((await readFile(stored[0] as string)).includes(PASSWORD)).toBe(true);
    expect(everyFile).toContain(localPaths(stateDir).supervisorLog);
    expect(everyFile).toContain(localPaths(stateDir).agentLog);
    const leaks: string[] = [];
    for (const f of everyFile) {
      if (f.startsWith(`${secrets}/`)) continue;
      if ((await readFile(f)).includes(PASSWORD)) leaks.push(relative(stateDir, f));
    }
    expect(leaks).toEqual([]);
    expect(outputs.filter((o) => o.includes(PASSWORD))).toEqual([]);
    expect(output).not.toContain(PASSWORD);
    console.log(
      `users: alice (uid ${uid}) job ${id} ran on ${done.nodes} ${Math.round((Date.now() - started) / 1000)} s after submission`,
    );
  }, 300_000);

  it("disable refuses alice's login (so her submissions), enable lets her submit again", async () => {
    // Act
    const disabled = await cli(["users", "disable", ALICE]);
    const whileDisabled = await users();
    const refused = await submitAs(ALICE, `/home/${ALICE}/refused.out`, "true");
    const queuedAfterRefusal = await slurm("squeue", ["-h", "-u", ALICE]);
    // Slurm itself does not look at the expiry: root can still submit for her without PAM's account
    // check (runuser), as docs/cli.md says. The job is cancelled at once.
    const asRoot = await runCommand(
      "runuser",
      ["-u", ALICE, "--", "sbatch", "--parsable", "--hold", "-p", "compute", "--wrap", "true"],
      { env: slurmEnv, timeoutMs: 60_000 },
    );
    if (asRoot.code === 0) await slurm("scancel", [asRoot.stdout.trim()]);
    const enabled = await cli(["users", "enable", ALICE]);
    const accepted = await submitAs(ALICE, `/home/${ALICE}/again.out`, "true");
    if (accepted.code === 0) await slurm("scancel", [accepted.stdout.trim()]);

    // Assess
    expect(disabled.status, disabled.stderr).toBe(0);
    expect(disabled.stdout).toContain(`user ${ALICE} disabled`);
    expect(whileDisabled).toEqual([expect.objectContaining({ name: ALICE, enabled: false })]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("Your account has expired");
    expect(asRoot.code, asRoot.stderr).toBe(0);
    expect(queuedAfterRefusal).toBe("");
    expect(enabled.status, enabled.stderr).toBe(0);
    expect((await users())[0]?.enabled).toBe(true);
    expect(accepted.code, accepted.stderr).toBe(0);
  }, 120_000);

  it("delete keeps alice's home; delete --purge removes bob's", async () => {
    // Prepare: bob, with a file in his home
    const addedBob = await cli(["users", "add", BOB]);
    expect(addedBob.status, addedBob.stderr).toBe(0);
    await runCommand("su", ["-s", "/bin/sh", BOB, "-c", `echo mine > /home/${BOB}/file`]);
    const bobHadFile = existsSync(`/home/${BOB}/file`);

    // Act
    const deleted = await cli(["users", "delete", ALICE]);
    const purged = await cli(["users", "delete", BOB, "--purge"]);
    const left = await users();

    // Assess
    expect(deleted.status, deleted.stderr).toBe(0);
    expect(deleted.stdout).toContain("their files are kept");
    expect(await passwd(ALICE)).toBe("");
    expect(existsSync(`/home/${ALICE}/id.out`)).toBe(true);
    // Her secret went with her.
    expect(await readdir(join(stateDir, "secrets", "users"))).toEqual([]);
    expect(bobHadFile).toBe(true);
    expect(purged.status, purged.stderr).toBe(0);
    expect(purged.stdout).toContain("with their files");
    expect(await passwd(BOB)).toBe("");
    expect(existsSync(`/home/${BOB}`)).toBe(false);
    expect(left).toEqual([]);
  }, 120_000);

  it("deleting the cluster removes its users from this machine, the local master (homes kept), and their secrets", async () => {
    // Prepare
    const added = await cli(["users", "add", CAROL, "--password-stdin"], `${PASSWORD}\n`);
    expect(added.status, added.stderr).toBe(0);
    const before = await passwd(CAROL);
    const secretsBefore = await readdir(join(stateDir, "secrets", "users"));

    // Act
    const deleted = await cli(["cluster", "delete", clusterId, "--wait"]);

    // Assess: as a cloud master's accounts go with its instance
    expect(before).toMatch(new RegExp(`^${CAROL}:x:`));
    expect(deleted.status, deleted.stderr).toBe(0);
    expect(await passwd(CAROL)).toBe("");
    expect(existsSync(`/home/${CAROL}`)).toBe(true);
    // Her password's file went with the cluster, as a cloud's secret store loses it.
    expect(secretsBefore).toEqual([`${clusterId}.${CAROL}.json`]);
    expect(await readdir(join(stateDir, "secrets", "users"))).toEqual([]);
  }, 240_000);
});
