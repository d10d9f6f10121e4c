import { describe, expect, it, vi } from "vitest";
import { main, replayStateDir } from "../../../agent/main.js";
import { AGENT_VERSION } from "../../../agent/version.js";

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(process.stdout, "write").mockImplementation((chunk) => out.push(String(chunk)) > 0);
  vi.spyOn(process.stderr, "write").mockImplementation((chunk) => err.push(String(chunk)) > 0);
  return { out, err, restore: () => vi.restoreAllMocks() };
}

describe("nowscale-agent command line", () => {
  it("prints its version", async () => {
    const io = capture();
    const code = await main(["--version"]);
    io.restore();
    expect(code).toBe(0);
    expect(io.out.join("")).toBe(`${AGENT_VERSION}\n`);
  });

  it("refuses an unknown command and a bad --source with usage exit status 64", async () => {
    const io = capture();
    const unknown = await main(["frobnicate"]);
    const badSource = await main(["report", "--source", "xml"]);
    const noCommand = await main([]);
    io.restore();
    expect([unknown, badSource, noCommand]).toEqual([64, 64, 64]);
    expect(io.err.join("")).toContain('unknown command "frobnicate"');
  });

  it("refuses to serve without a key, naming where it looked", async () => {
    const io = capture();
    const saved = { file: process.env.NOWSCALE_AGENT_KEY_FILE, key: process.env.NOWSCALE_AGENT_KEY };
    delete process.env.NOWSCALE_AGENT_KEY_FILE;
    delete process.env.NOWSCALE_AGENT_KEY;
    const result = await main(["serve", "--listen", "127.0.0.1:0"]).catch((e: Error) => e);
    if (saved.file !== undefined) process.env.NOWSCALE_AGENT_KEY_FILE = saved.file;
    if (saved.key !== undefined) process.env.NOWSCALE_AGENT_KEY = saved.key;
    io.restore();
    expect(result).toBeInstanceOf(Error);
    expect((result as Error).message).toMatch(/no signing key/);
  });

  it("keeps the replay cache in --state-dir, else NOWSCALE_AGENT_STATE_DIR, else systemd's STATE_DIRECTORY", () => {
    // Act / Assess
    const env = { NOWSCALE_AGENT_STATE_DIR: "/srv/agent", STATE_DIRECTORY: "/var/lib/nowscale-agent:/x" };
    expect(replayStateDir("/tmp/a", env)).toBe("/tmp/a");
    expect(replayStateDir(undefined, env)).toBe("/srv/agent");
    expect(replayStateDir(undefined, { STATE_DIRECTORY: "/var/lib/nowscale-agent:/x" })).toBe(
      "/var/lib/nowscale-agent",
    );
    expect(replayStateDir(undefined, {})).toBeUndefined();
  });
});
