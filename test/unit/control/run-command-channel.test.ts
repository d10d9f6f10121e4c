import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  type AgentCommand,
  agentShellLine,
  type CommandResult,
  RunCommandAgentChannel,
  type RunCommandTransport,
} from "../../../lib/agent-channels/run-command-channel.js";
import {
  AgentActionError,
  AgentUnreachableError,
  type NodeStorageSpec,
  SlurmctldUnreachableError,
} from "../../../lib/ports/agent-channel.js";
import type { UsersRequest } from "../../../lib/ports/cluster-users.js";

const AGENT = "/opt/nowscale/nowscale-agent.js";

/**
 * The master as every run-command service runs a command: the agent's shell line in `sh`, with a `node`
 * first on PATH standing in for the agent. It records its words and stdin, prints the scripted answer
 * and exits with the scripted code: the channel's quoting and payload pipeline really run, only the
 * agent's answer is scripted. `damage` cuts the payload in half on its way, as a broken transport would.
 */
class ShellMaster implements RunCommandTransport {
  readonly channel = "Test";
  readonly dir = mkdtempSync(join(tmpdir(), "nowscale-rc-"));
  readonly ran: { words: string[]; stdin: string }[] = [];
  answer = { code: 0, stdout: "" };
  damage = false;

  constructor(readonly payloadMaxChars = 48_000) {
    writeFileSync(
      join(this.dir, "node"),
      `#!/bin/sh\nprintf '%s\\n' "$@" > "${this.dir}/words"\ncat > "${this.dir}/stdin"\n` +
        `printf '%s' "$ANSWER"\nexit "$CODE"\n`,
      { mode: 0o755 },
    );
  }

  async run(command: AgentCommand): Promise<CommandResult> {
    const sent =
      "payload" in command && this.damage
        ? { ...command, payload: command.payload.slice(0, command.payload.length / 2) }
        : command;
    rmSync(join(this.dir, "words"), { force: true });
    let code = 0;
    let stdout = "";
    try {
      stdout = execFileSync("sh", ["-c", agentShellLine(AGENT, sent)], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "ignore"],
        env: {
          PATH: `${this.dir}:${process.env.PATH ?? ""}`,
          ANSWER: this.answer.stdout,
          CODE: String(this.answer.code),
        },
      });
    } catch (error) {
      const e = error as { status?: number; stdout?: string };
      code = e.status ?? -1;
      stdout = e.stdout ?? "";
    }
    try {
      const words = readFileSync(join(this.dir, "words"), "utf8").trimEnd().split("\n");
      this.ran.push({ words, stdin: readFileSync(join(this.dir, "stdin"), "utf8") });
    } catch {
      // The agent never ran (a payload that did not decode).
    }
    return { status: code === 0 ? "Success" : "Failed", stdout, code };
  }
}

const failure = (p: Promise<unknown>) => p.then(() => undefined).catch((e: unknown) => e);
const NOTE = { jobIds: ["17"], text: "nowscale: it's $(id) `x`", field: "comment" as const };
const STORAGE = [
  { protocol: "NFS 4.0", remotePath: "fs-1:/export", localPath: "/data" },
] as NodeStorageSpec[];
const USERS: UsersRequest = { users: [{ name: "alice", uid: 21000, enabled: true }], purge: [] };

describe("RunCommandAgentChannel (the agent's command lines run in sh)", () => {
  let master: ShellMaster;
  let channel: RunCommandAgentChannel;

  beforeEach(() => {
    master = new ShellMaster();
    channel = new RunCommandAgentChannel(master);
  });
  afterEach(() => rmSync(master.dir, { recursive: true, force: true }));

  it("maps every action's exit code to the port's typed error, naming the action, channel and agent's error", async () => {
    // Prepare: each case is the agent's exit code and answer, then the call
    const error = (text: string) => `${JSON.stringify({ error: text })}\n`;
    const cases: [number, string, () => Promise<unknown>][] = [
      [2, error("sinfo timed out"), () => channel.resume("n-1")],
      [3, error("no node n-1"), () => channel.deleteNode("n-1")],
      [64, error("bad reason"), () => channel.drain("n-1", "idle")],
      [1, error("scontrol failed"), () => channel.resume("n-1")],
      [64, error("notes[0].text: bad"), () => channel.setJobNotes([NOTE])],
      [2, error("slurmctld down"), () => channel.setPartitions([{ name: "q1", default: true }])],
      [1, error("reconfigure refused"), () => channel.setNodeStorage(STORAGE)],
      [2, error("useradd: no"), () => channel.setUsers(USERS)],
      [2, error("down"), () => channel.slurmSetup()],
      [64, "usage: nowscale-agent ...\n", () => channel.slurmSetup()],
    ];

    // Act
    const got: unknown[] = [];
    for (const [code, stdout, call] of cases) {
      master.answer = { code, stdout };
      got.push(await failure(call()));
    }

    // Assess
    const shown = got.map((e) =>
      e instanceof Error ? `${e.name} ${(e as AgentActionError).status ?? "-"} ${e.message}` : e,
    );
    expect(shown).toEqual([
      "SlurmctldUnreachableError - agent resume n-1 over Test: slurmctld did not answer: sinfo timed out",
      "AgentActionError 404 agent delete-node n-1 over Test: no such node: no node n-1",
      "AgentActionError 400 agent drain n-1 over Test: refused: bad reason",
      "AgentActionError 502 agent resume n-1 over Test: Failed, exit 1: scontrol failed",
      "AgentActionError 400 agent set-job-notes over Test: refused: notes[0].text: bad",
      "SlurmctldUnreachableError - agent set-partitions over Test: slurmctld did not answer: slurmctld down",
      "AgentActionError 502 agent set-node-storage over Test: Failed, exit 1: reconfigure refused",
      // set-users never asks slurmctld: its exit 2 is a failed command, not slurmctld down.
      "AgentActionError 502 agent set-users over Test: Failed, exit 2: useradd: no",
      "SlurmctldUnreachableError - agent slurm-setup over Test: slurmctld did not answer: down",
      "AgentUnreachableError - agent slurm-setup over Test: Failed, exit 64 (an agent older than the attach path: install this version)",
    ]);
    expect(got[0]).toBeInstanceOf(SlurmctldUnreachableError);
    expect(got[9]).toBeInstanceOf(AgentUnreachableError);
    expect(master.ran[2]?.words).toEqual([AGENT, "drain", "n-1", "--reason", "nowscale: idle"]);
  });

  it("gives each JSON action's payload to its own option on stdin, and tells a damaged payload from a refusal", async () => {
    // Prepare
    master.answer = { code: 0, stdout: '{"ok":true,"changed":true}\n' };

    // Act
    const storage = await channel.setNodeStorage(STORAGE);
    master.answer = {
      code: 0,
      stdout:
        '{"ok":true,"users":[{"name":"alice","uid":21000,"enabled":true}],"added":["alice"],"removed":[],"updated":[]}\n',
    };
    const users = await channel.setUsers(USERS);
    master.damage = true;
    const damaged = await failure(channel.setJobNotes([NOTE]));

    // Assess
    expect(storage).toEqual({ changed: true });
    expect(master.ran[0]?.words).toEqual([AGENT, "set-node-storage", "--storage", "-"]);
    expect(JSON.parse(master.ran[0]?.stdin ?? "")).toEqual({ storage: STORAGE });
    expect(users.added).toEqual(["alice"]);
    expect(master.ran[1]?.words).toEqual([AGENT, "set-users", "--users", "-"]);
    expect(JSON.parse(master.ran[1]?.stdin ?? "")).toEqual(USERS);
    expect(damaged).toMatchObject({
      name: "AgentActionError",
      status: 502,
      message: "agent set-job-notes over Test: the payload did not decode on the master",
    });
    expect(master.ran).toHaveLength(2);
  });

  it("refuses a payload over the transport's limit, and a bad node name, before sending anything", async () => {
    // Prepare
    const small = new ShellMaster(10);
    const narrow = new RunCommandAgentChannel(small);

    // Act
    const tooBig = await failure(narrow.setJobNotes([NOTE]));
    const badName = await failure(narrow.drain("n-1;reboot", "x"));
    rmSync(small.dir, { recursive: true, force: true });

    // Assess
    expect(tooBig).toBeInstanceOf(AgentActionError);
    expect((tooBig as AgentActionError).status).toBe(413);
    expect((tooBig as Error).message).toMatch(
      /^agent set-job-notes over Test: \d+ characters of payload, over Test's limit of 10$/,
    );
    expect(badName).toBeInstanceOf(AgentActionError);
    expect(small.ran).toEqual([]);
  });
});
