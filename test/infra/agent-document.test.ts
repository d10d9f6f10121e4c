import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { App, Stack } from "aws-cdk-lib";
import { describe, expect, it } from "vitest";
import { AGENT_DOCUMENT } from "../../lib/agent-channels/ssm.js";
import { AgentDocument } from "../../lib/infra/agent-document.js";

interface DocumentContent {
  parameters: Record<string, { allowedPattern?: string; allowedValues?: string[] }>;
  mainSteps: { inputs: { runCommand: string[] } }[];
}

/**
 * The document as SSM would run it: parameters checked against their patterns, then substituted, then
 * run by /bin/sh (dash on Debian, as SSM's aws:runShellScript does). A `node` first on PATH stands in
 * for the agent: it prints the words it was given, then what it read on stdin, and exits NODE_EXIT.
 */
function runDocumentFully(
  content: DocumentContent,
  values: Record<string, string>,
  nodeExit = 0,
): { stdout: string; status: number | null } {
  for (const [name, value] of Object.entries(values)) {
    const p = content.parameters[name];
    if (p?.allowedValues !== undefined && !p.allowedValues.includes(value))
      throw new Error(`${name} refused`);
    if (p?.allowedPattern !== undefined && !new RegExp(p.allowedPattern).test(value))
      throw new Error(`${name} refused`);
  }
  const script = (content.mainSteps[0]?.inputs.runCommand ?? [])
    .join("\n")
    .replace(/\{\{ (\w+) \}\}/g, (_m, name: string) => values[name] ?? "");
  const bin = mkdtempSync(join(tmpdir(), "nowscale-doc-"));
  writeFileSync(join(bin, "node"), `#!/bin/sh\nprintf '%s\\n' "$@"\ncat\nexit ${nodeExit}\n`, {
    mode: 0o755,
  });
  try {
    const run = spawnSync("sh", ["-c", script], {
      encoding: "utf8",
      input: "",
      env: { PATH: `${bin}:${process.env.PATH ?? ""}` },
    });
    return { stdout: run.stdout, status: run.status };
  } finally {
    rmSync(bin, { recursive: true, force: true });
  }
}

function runDocument(content: DocumentContent, values: Record<string, string>): string {
  return runDocumentFully(content, values).stdout;
}

describe("the agent's SSM document", () => {
  const stack = new Stack(new App(), "T");
  const content = new AgentDocument(stack, "Agent").document.content as DocumentContent;

  it("THEN it runs the agent's report and node actions with the words it was given", () => {
    // Act
    const report = runDocument(content, { action: "report", node: "", reason: "" });
    const drain = runDocument(content, { action: "drain", node: "i-0abc", reason: "nowscale: idle (300 s)" });

    // Assess
    expect(report.split("\n")).toEqual(["/opt/nowscale/nowscale-agent.js", "report", ""]);
    expect(drain.split("\n")).toEqual([
      "/opt/nowscale/nowscale-agent.js",
      "drain",
      "i-0abc",
      "--reason",
      "nowscale: idle (300 s)",
      "",
    ]);
  });

  it("THEN it gives set-job-notes and sync-placeholders their JSON on stdin, decoded from the payload", () => {
    // Prepare: the payload as the channel makes it (lib/control/agent-ssm.ts)
    const notes = JSON.stringify({
      notes: [{ jobIds: ["17"], text: "nowscale: it's $(id)", field: "comment" }],
    });
    const placeholders = JSON.stringify({ placeholders: [] });
    const payload = (json: string) => gzipSync(Buffer.from(json)).toString("base64");

    // Act
    const setNotes = runDocument(content, { action: "set-job-notes", payload: payload(notes) });
    const sync = runDocument(content, { action: "sync-placeholders", payload: payload(placeholders) });

    // Assess
    expect(setNotes).toBe(`/opt/nowscale/nowscale-agent.js\nset-job-notes\n--notes\n-\n${notes}`);
    expect(sync).toBe(
      `/opt/nowscale/nowscale-agent.js\nsync-placeholders\n--placeholders\n-\n${placeholders}`,
    );
    expect(() => runDocument(content, { action: "set-job-notes", payload: "x'; reboot; '" })).toThrow(
      "payload refused",
    );
    expect(() =>
      runDocument(content, {
        action: "set-job-notes",
        payload: "A".repeat(AGENT_DOCUMENT.payloadMaxChars + 1),
      }),
    ).toThrow("payload refused");
  });

  it("THEN the agent's exit status comes back, and a payload that does not decode exits 65 before the agent runs", () => {
    // Prepare
    const payload = gzipSync(Buffer.from('{"notes":[]}')).toString("base64");

    // Act
    const down = runDocumentFully(content, { action: "set-job-notes", payload }, 2);
    const truncated = runDocumentFully(content, {
      action: "sync-placeholders",
      payload: payload.slice(0, 12),
    });

    // Assess
    expect(down.status).toBe(2);
    expect(truncated.status).toBe(65);
    expect(truncated.stdout).toBe("");
  });

  it("THEN a value that could leave its quotes or run a command is refused before anything runs", () => {
    for (const [name, value] of [
      ["node", "a'; reboot; '"],
      ["reason", "x' $(reboot) '"],
      ["reason", "`reboot`"],
      ["action", "sh"],
    ] as const) {
      expect(
        () => runDocument(content, { action: "drain", node: "n1", reason: "", [name]: value }),
        value,
      ).toThrow(`${name} refused`);
    }
    expect(content.parameters.node?.allowedPattern).toBe(AGENT_DOCUMENT.nodePattern);
  });
});
