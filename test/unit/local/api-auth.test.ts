import { execFile } from "node:child_process";
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  statSync,
  symlinkSync,
} from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ApiAuth,
  checkStateDirOwnership,
  LOGIN_CODE_TTL_MS,
  readApiToken,
  statusPageLink,
  writeApiToken,
} from "../../../lib/local/api-auth.js";
import { startApiServer } from "../../../lib/local/api-server.js";
import type { StatusSnapshot } from "../../../lib/local/status.js";
import type { RecordingWorkflowStarter } from "../../../lib/workflow/starter.js";
import { type ApiBed, apiBed, snapshot, VALID_CREATE } from "../../support/api-bed.js";
import { CLI, tempFiles } from "../../support/cli.js";
import { startDynalite, type TestDynamo } from "../../support/dynalite.js";
import { asNobodyCommand, inRepo, NOBODY } from "../../support/nobody.js";

/**
 * The local API's authentication (lib/local/api-auth.ts) on the real server (startApiServer) over the
 * API's real routes and dynalite: no token, a wrong one, a page session on a route that changes state,
 * and a client running as the unprivileged user `nobody` are all refused and change nothing; the
 * token opens everything; a one-time link opens one read-only page session.
 */
const isRoot = process.getuid?.() === 0;

describe("the local API's authentication", () => {
  let db: TestDynamo;
  let bed: ApiBed;
  let server: Server;
  let base = "";
  let stateDir = "";
  let token = "";
  const logged: string[] = [];
  const status = async (): Promise<StatusSnapshot> => ({ generatedAt: "now", clusters: [], history: [] });

  beforeAll(async () => {
    db = await startDynalite();
    bed = await apiBed(db);
    stateDir = mkdtempSync(join(tmpdir(), "nowscale-auth-"));
    chmodSync(stateDir, 0o755); // as the supervisor leaves it (munged needs to enter)
    token = await writeApiToken(stateDir);
    server = await startApiServer(bed.deps, 0, (l) => logged.push(l), new ApiAuth(token), status);
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await db.close();
    rmSync(stateDir, { recursive: true, force: true });
  });

  const post = (path: string, authorization?: string) =>
    fetch(`${base}${path}`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(authorization === undefined ? {} : { authorization }),
      },
      body: JSON.stringify(VALID_CREATE),
    });

  it("writes the token for root alone", () => {
    // Assess
    const st = statSync(join(stateDir, "api.token"));
    expect(st.mode & 0o777).toBe(0o600);
    expect(st.uid).toBe(process.getuid?.());
    expect(readApiToken(stateDir)).toBe(token);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it("refuses requests without the token, with a wrong one or another scheme, and nothing changes", async () => {
    // Prepare
    const before = await snapshot(db, bed.tables);
    const wrong = `Bearer ${"A".repeat(43)}`;

    // Act
    const none = await post("/clusters");
    const bad = await post("/clusters", wrong);
    const basic = await post("/clusters", `Basic ${Buffer.from(`root:${token}`).toString("base64")}`);
    const listed = await fetch(`${base}/clusters`, { headers: { authorization: wrong } });
    const statusJson = await fetch(`${base}/status.json`);
    const minted = await fetch(`${base}/local/login-codes`, { method: "POST" });

    // Assess
    for (const res of [none, bad, basic, listed, statusJson, minted]) {
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toBe('Bearer realm="nowscale-local"');
    }
    expect(((await none.json()) as { error: string }).error).toContain("authentication required");
    expect(((await bad.json()) as { error: string }).error).toBe("invalid credential");
    expect(await snapshot(db, bed.tables)).toBe(before);
    expect((bed.workflows as RecordingWorkflowStarter).startCalls).toEqual([]);
    expect(logged.join("\n")).not.toContain(token);

    // Act: the same request with the token goes through (the refusals were the credential's doing)
    const ok = await post("/clusters", `Bearer ${token}`);

    // Assess
    expect(ok.status).toBe(202);
    expect(await snapshot(db, bed.tables)).not.toBe(before);
    expect((bed.workflows as RecordingWorkflowStarter).startCalls).toHaveLength(1);
  });

  it("opens one read-only page session per one-time link", async () => {
    // Prepare: a link, as `nowscale local link` gets it
    const link = await statusPageLink({ stateDir, apiPort: Number(new URL(base).port) });
    const code = /^http:\/\/127\.0\.0\.1:\d+\/#login=([A-Za-z0-9_-]{43})$/.exec(link)?.[1] ?? "";
    expect(code).not.toBe("");
    const before = await snapshot(db, bed.tables);

    // Act
    const opened = await fetch(`${base}/local/sessions`, {
      method: "POST",
      headers: { authorization: `Bearer ${code}` },
    });
    const again = await fetch(`${base}/local/sessions`, {
      method: "POST",
      headers: { authorization: `Bearer ${code}` },
    });
    const { session } = (await opened.json()) as { session: string };
    const read = await fetch(`${base}/status.json`, { headers: { authorization: `Bearer ${session}` } });
    const write = await post("/clusters", `Bearer ${session}`);
    const list = await fetch(`${base}/clusters`, { headers: { authorization: `Bearer ${session}` } });
    const mint = await fetch(`${base}/local/login-codes`, {
      method: "POST",
      headers: { authorization: `Bearer ${session}` },
    });
    const page = await fetch(`${base}/`);

    // Assess
    expect(opened.status).toBe(201);
    expect(again.status).toBe(401);
    expect(read.status).toBe(200);
    expect(await read.json()).toEqual(await status());
    expect([write.status, list.status, mint.status]).toEqual([403, 403, 403]);
    expect(await snapshot(db, bed.tables)).toBe(before);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).not.toContain(token);
    // The page's script parses (a syntax error would leave the browser with no login at all)
    const script = html.split("<script>")[1]?.split("</script>")[0] ?? "";
    expect(script).toContain('fetch("local/sessions"');
    expect(() => new Function(script)).not.toThrow();
  });

  it("expires login codes and bounds how many wait", () => {
    // Prepare
    let now = 1_000_000;
    const auth = new ApiAuth("x".repeat(43), () => now);
    const late = auth.mintLoginCode().code;
    const codes = Array.from({ length: 16 }, () => auth.mintLoginCode().code);

    // Act
    now += LOGIN_CODE_TTL_MS - 1;
    const inTime = auth.openSession(codes[15] ?? "");
    const dropped = auth.openSession(late); // the 17th mint dropped the oldest
    now += 2;
    const expired = auth.openSession(codes[14] ?? "");

    // Assess
    expect(inTime).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(dropped).toBeUndefined();
    expect(expired).toBeUndefined();
    expect(() => new ApiAuth("short")).toThrow(/API token/);
  });

  it("refuses a state directory someone else could change", () => {
    // Prepare
    const open = mkdtempSync(join(tmpdir(), "nowscale-auth-open-"));
    chmodSync(open, 0o777);
    const link = `${open}-link`;
    symlinkSync(stateDir, link);

    // Act + Assess
    expect(() => checkStateDirOwnership(stateDir)).not.toThrow();
    expect(() => checkStateDirOwnership(open)).toThrow(/writable by others/);
    expect(() => checkStateDirOwnership(link)).toThrow(/not a link/);
    if (isRoot) {
      const theirs = mkdtempSync(join(tmpdir(), "nowscale-auth-theirs-"));
      chownSync(theirs, NOBODY, NOBODY);
      expect(() => checkStateDirOwnership(theirs)).toThrow(/belongs to uid 65534/);
      rmSync(theirs, { recursive: true });
    }
    rmSync(link);
    rmSync(open, { recursive: true });
  });

  it("refuses a client running as an unprivileged user, and nothing changes", async (ctx) => {
    if (!isRoot) {
      // Only root can switch to another user; CI runs as root.
      console.warn("skipped: running a client as nobody needs root (CI runs this as root)");
      ctx.skip();
    }
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first`);
    // Prepare: a request file nobody can read, a snapshot
    const dir = tempFiles({ "cluster.json": VALID_CREATE });
    chmodSync(dir, 0o755);
    chmodSync(join(dir, "cluster.json"), 0o644);
    const home = join(dir, "home");
    mkdirSync(home);
    chownSync(home, NOBODY, NOBODY);
    const before = await snapshot(db, bed.tables);
    const calls = (bed.workflows as RecordingWorkflowStarter).startCalls.length;
    // Asynchronous: the server answers from this very process.
    const asNobody = (args: string[]) =>
      new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
        const command = asNobodyCommand(args);
        execFile(
          command.file,
          command.args,
          {
            encoding: "utf8",
            timeout: 30_000,
            env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home },
          },
          (error, stdout, stderr) =>
            resolve({ status: error === null ? 0 : Number(error.code ?? 1), stdout, stderr }),
        );
      });

    // Act: the CLI as nobody, reading the token itself; the token file directly; a bare request
    const cli = await asNobody([
      process.execPath,
      inRepo("dist/bin/nowscale.js"),
      "cluster",
      "create",
      "--file",
      join(dir, "cluster.json"),
      "--endpoint",
      base,
      "--state-dir",
      stateDir,
    ]);
    const cat = await asNobody(["cat", join(stateDir, "api.token")]);
    const curl = await asNobody([
      "curl",
      "-s",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      "-X",
      "POST",
      "-H",
      "content-type: application/json",
      "-H",
      "authorization: Bearer guessed-token-guessed-token-guessed",
      "--data",
      JSON.stringify(VALID_CREATE),
      `${base}/clusters`,
    ]);
    const whoami = await asNobody(["id", "-u"]);

    // Assess
    expect(whoami.stdout.trim()).toBe(String(NOBODY));
    expect(cli.status, cli.stderr).toBe(1);
    expect(cli.stderr).toContain("the local API accepts root only (use sudo)");
    expect(cat.status).not.toBe(0);
    expect(cat.stderr).toMatch(/Permission denied/);
    expect(curl.stdout).toBe("401");
    expect(await snapshot(db, bed.tables)).toBe(before);
    expect((bed.workflows as RecordingWorkflowStarter).startCalls).toHaveLength(calls);
    rmSync(dir, { recursive: true, force: true });
  });
});
