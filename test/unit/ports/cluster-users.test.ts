import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseUserSecret, parseUsersRequest, userNameProblem } from "../../../lib/ports/cluster-users.js";
import { applyUsers } from "../../../scheduler-plugins/slurm/users-apply.js";

/**
 * The users protocol's allow-lists (lib/ports/cluster-users.ts) and users-apply's checks against a host
 * (a fake /etc): a refused request runs no command at all.
 */

describe("cluster user names", () => {
  it("takes Linux user names and refuses system names, prototype names and shell text", () => {
    // Act
    const verdicts = [
      "alice",
      "a_b-9",
      "root",
      "slurm",
      "__proto__",
      "constructor",
      "Alice",
      "a;b",
      "-x",
      "a".repeat(33),
    ].map((n) => [n, userNameProblem(n) === undefined] as const);

    // Assess
    expect(verdicts).toEqual([
      ["alice", true],
      ["a_b-9", true],
      ["root", false],
      ["slurm", false],
      ["__proto__", false],
      ["constructor", true],
      ["Alice", false],
      ["a;b", false],
      ["-x", false],
      ["a".repeat(33), false],
    ]);
  });
});

describe("parseUsersRequest", () => {
  it("names the field at fault: uid out of range, duplicates, a secret that is not an id, purge of a kept user", () => {
    // Act
    const attempt = (body: unknown) => {
      try {
        parseUsersRequest(body);
        return "ok";
      } catch (error) {
        return (error as Error).message;
      }
    };

    // Assess
    expect(attempt({ users: [{ name: "alice", uid: 21000, enabled: true }] })).toBe("ok");
    expect(attempt({ users: [{ name: "alice", uid: 0, enabled: true }] })).toMatch(/^users\[0\]\.uid/);
    expect(
      attempt({
        users: [
          { name: "alice", uid: 21000, enabled: true },
          { name: "bob", uid: 21000, enabled: true },
        ],
      }),
    ).toMatch(/^users\[1\]\.uid: 21000 is listed twice/);
    expect(
      attempt({ users: [{ name: "alice", uid: 21000, enabled: true, secret: "/etc/../shadow" }] }),
    ).toMatch(/^users\[0\]\.secret/);
    expect(attempt({ users: [{ name: "alice", uid: 21000, enabled: true, password: "x" }] })).toMatch(
      /^users\[0\]\.password: unknown field/,
    );
    expect(attempt({ users: [{ name: "alice", uid: 21000, enabled: true }], purge: ["alice"] })).toMatch(
      /^purge\[0\]/,
    );
  });

  it("checks a secret's value without echoing it", () => {
    // Act
    const bad = () => parseUserSecret({ password: "short\nroot::0:0" });

    // Assess
    expect(bad).toThrow(/^secret\.password: must be 8-128 printable ASCII characters$/);
    expect(parseUserSecret({ sshKey: " ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK a@b \n" })).toEqual({
      sshKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK a@b",
    });
  });
});

describe("applyUsers checks the host first", () => {
  it("refuses a name or uid another account has, and a system account in purge, running no command", async () => {
    // Prepare: a host with its own accounts and one NowScale user
    const etc = await mkdtemp(join(tmpdir(), "nowscale-etc-"));
    await writeFile(
      join(etc, "passwd"),
      [
        "root:x:0:0:root:/root:/bin/bash",
        "builder:x:21005:21005:CI:/home/builder:/bin/bash",
        "alice:x:21000:21000:nowscale user:/home/alice:/bin/bash",
        "",
      ].join("\n"),
    );
    await writeFile(join(etc, "group"), "root:x:0:\nbuilder:x:21005:\nalice:x:21000:\nops:x:21007:\n");
    await writeFile(join(etc, "shadow"), "");
    const commands: string[] = [];
    const run = async (file: string, args: readonly string[]) => {
      commands.push([file, ...args].join(" "));
      return { code: 0, stdout: "", stderr: "" };
    };
    const apply = (body: unknown) =>
      applyUsers(parseUsersRequest(body), {
        run,
        etcDir: etc,
        homeDir: etc,
        readSecret: async () => "{}",
      }).then(
        () => "ok",
        (e: Error) => e.message,
      );

    // Act
    const hostName = await apply({ users: [{ name: "builder", uid: 21001, enabled: true }] });
    const hostUid = await apply({ users: [{ name: "bob", uid: 21005, enabled: true }] });
    const hostGid = await apply({ users: [{ name: "bob", uid: 21007, enabled: true }] });
    const moved = await apply({ users: [{ name: "alice", uid: 21002, enabled: true }] });
    const purgeHost = await apply({ users: [], purge: ["builder"] });
    const emptySecret = await apply({ users: [{ name: "bob", uid: 21001, enabled: true, secret: "/x/y" }] });

    // Assess
    expect(hostName).toMatch(/^users\[0\]\.name: "builder" is an account of the host/);
    expect(hostUid).toMatch(/^users\[0\]\.uid: 21005 is builder's/);
    expect(hostGid).toMatch(/^users\[0\]\.uid: gid 21007 is group ops's/);
    expect(moved).toMatch(/^users\[0\]\.uid: alice has uid 21000/);
    expect(purgeHost).toMatch(/^purge\[0\]/);
    expect(emptySecret).toMatch(/^users\[0\]\.secret: give a password, an sshKey or both/);
    expect(commands).toEqual([]);
  });

  it("still disables and deletes a user who changed their GECOS subfields with chfn (`nowscale user,42,,`)", async () => {
    // Prepare: Debian's CHFN_RESTRICT "rwh" lets a user with a password set the room, work and home
    // phone, which chfn writes after the full name: mallory did `chfn -r 42` to escape being disabled.
    const etc = await mkdtemp(join(tmpdir(), "nowscale-etc-"));
    await writeFile(
      join(etc, "passwd"),
      "root:x:0:0:root:/root:/bin/bash\nmallory:x:21003:21003:nowscale user,42,,:/home/mallory:/bin/bash\n",
    );
    await writeFile(join(etc, "group"), "root:x:0:\nmallory:x:21003:\n");
    await writeFile(join(etc, "shadow"), "");
    const commands: string[] = [];
    const run = async (file: string, args: readonly string[]) => {
      commands.push([file, ...args].join(" "));
      return { code: 0, stdout: "", stderr: "" };
    };
    const options = { run, etcDir: etc, homeDir: etc, readSecret: async () => "{}" };

    // Act
    const disabled = await applyUsers(
      parseUsersRequest({ users: [{ name: "mallory", uid: 21003, enabled: false }] }),
      options,
    );
    const deleted = await applyUsers(parseUsersRequest({ users: [] }), options);

    // Assess
    expect(disabled.users.map((u) => u.name)).toEqual(["mallory"]);
    expect(commands).toEqual(["usermod -e 1 mallory", "userdel mallory"]);
    expect(deleted.removed).toEqual(["mallory"]);
  });
});
