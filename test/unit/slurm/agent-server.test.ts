import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createAgentServer, type NodeActions } from "../../../agent/server.js";
import { AGENT_VERSION } from "../../../agent/version.js";
import {
  type JobNote,
  type PartitionSpec,
  type PlaceholderSpec,
  placeholderName,
} from "../../../lib/ports/agent-protocol.js";
import type { Report } from "../../../lib/ports/agent-report.js";
import { signRequest } from "../../../lib/ports/agent-signing.js";
import { SlurmNodeNotFoundError, SlurmUnavailableError } from "../../../scheduler-plugins/slurm/errors.js";
import { PartitionRollbackError } from "../../../scheduler-plugins/slurm/partition-apply.js";
import { failedReport } from "../../../scheduler-plugins/slurm/report.js";

const KEY = Buffer.from("0123456789abcdef0123456789abcdef");

class FakeActions implements NodeActions {
  calls: string[] = [];
  failWith: Error | undefined;
  async drain(node: string, reason: string) {
    this.check();
    this.calls.push(`drain ${node} ${reason}`);
  }
  async resume(node: string) {
    this.check();
    this.calls.push(`resume ${node}`);
  }
  async deleteNode(node: string) {
    this.check();
    this.calls.push(`delete ${node}`);
  }
  async setJobNote(note: JobNote) {
    this.check();
    if (note.jobIds.includes("refused")) throw new Error("Access/permission denied");
    this.calls.push(`note ${note.jobIds.join(",")} ${note.field} ${note.text}`);
  }
  async syncPlaceholders(specs: readonly PlaceholderSpec[]) {
    this.check();
    this.calls.push(`placeholders ${specs.map((x) => x.name).join(",")}`);
    return { created: specs.map((x) => x.name), removed: [] };
  }
  async setPartitions(specs: readonly PartitionSpec[]) {
    this.check();
    this.calls.push(`partitions ${specs.map((x) => x.name).join(",")}`);
    return { partitions: specs.map((x) => x.name), added: [], removed: [], changed: true };
  }
  private check() {
    if (this.failWith) throw this.failWith;
  }
}

let close: (() => void) | undefined;
afterEach(() => close?.());

async function start(
  report: () => Promise<Report> = async () => failedReport("slurmctld-unreachable", "down", "x", 0),
) {
  const actions = new FakeActions();
  let reports = 0;
  const server = createAgentServer({
    key: KEY,
    actions,
    report: () => {
      reports++;
      return report();
    },
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  close = () => server.close();
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const call = async (method: string, path: string, body?: string, key = KEY) => {
    const headers = {
      ...signRequest(key, { method, path, ...(body === undefined ? {} : { body }) }),
      "content-type": "application/json",
    };
    const res = await fetch(base + path, { method, headers, ...(body === undefined ? {} : { body }) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  return { actions, call, base, reports: () => reports };
}

describe("agent HTTP API", () => {
  it("answers health to a signed request", async () => {
    const { call } = await start();
    const res = await call("GET", "/v1/health");
    expect(res).toEqual({ status: 200, body: { status: "ok", agentVersion: AGENT_VERSION } });
  });

  it("drains with the reason given", async () => {
    const { call, actions } = await start();
    const res = await call("POST", "/v1/nodes/c4-a/drain", '{"reason":"nowscale: idle 300 s"}');
    expect(res.status).toBe(200);
    expect(actions.calls).toEqual(["drain c4-a nowscale: idle 300 s"]);
  });

  it("answers 401 and changes nothing when the signature is bad, the key wrong or the body tampered", async () => {
    // Prepare
    const { call, actions, base } = await start();
    const path = "/v1/nodes/c4-a/drain";
    const headers = signRequest(KEY, { method: "POST", path, body: '{"reason":"a"}' });
    // Act
    const tampered = await fetch(base + path, { method: "POST", headers, body: '{"reason":"b"}' });
    const wrongKey = await call("DELETE", "/v1/nodes/c4-a", undefined, Buffer.from("z".repeat(32)));
    const unsigned = await fetch(`${base}/v1/nodes/c4-a`, { method: "DELETE" });
    // Assess
    expect(tampered.status).toBe(401);
    expect(wrongKey.status).toBe(401);
    expect(unsigned.status).toBe(401);
    expect(actions.calls).toEqual([]);
  });

  it("answers 401 to a replayed request and acts only once", async () => {
    const { actions, base } = await start();
    const path = "/v1/nodes/c4-a/resume";
    const headers = signRequest(KEY, { method: "POST", path });
    const first = await fetch(base + path, { method: "POST", headers });
    const replay = await fetch(base + path, { method: "POST", headers });
    expect([first.status, replay.status]).toEqual([200, 401]);
    expect(actions.calls).toEqual(["resume c4-a"]);
  });

  it("answers 401 to a request signed outside the replay window", async () => {
    const { actions, base } = await start();
    const path = "/v1/nodes/c4-a";
    const headers = signRequest(KEY, { method: "DELETE", path }, Date.now() - 10 * 60_000);
    const res = await fetch(base + path, { method: "DELETE", headers });
    expect(res.status).toBe(401);
    expect(actions.calls).toEqual([]);
  });

  it("maps Slurm's errors: unknown node 404, controller down 503", async () => {
    const { call, actions } = await start();
    actions.failWith = new SlurmNodeNotFoundError("c4-x");
    expect((await call("POST", "/v1/nodes/c4-x/drain", '{"reason":"x"}')).status).toBe(404);
    actions.failWith = new SlurmUnavailableError("down");
    expect((await call("DELETE", "/v1/nodes/c4-x")).status).toBe(503);
  });

  it("rejects hostile node names, bad reasons and wrong methods before acting", async () => {
    const { call, actions } = await start();
    expect((await call("DELETE", `/v1/nodes/${encodeURIComponent("a;rm -rf /")}`)).status).toBe(400);
    expect((await call("POST", "/v1/nodes/c4-a/drain", '{"reason":"line\\nbreak"}')).status).toBe(400);
    expect((await call("GET", "/v1/nodes/c4-a/drain")).status).toBe(405);
    expect((await call("GET", "/v1/unknown")).status).toBe(404);
    expect(actions.calls).toEqual([]);
  });

  it("writes job notes, and refuses a bad note with 400 writing none of the request", async () => {
    // Prepare
    const { call, actions } = await start();
    const good = { jobIds: ["17", "9_0-28"], text: "nowscale: no instance type fits", field: "comment" };
    const clear = { jobIds: ["18"], text: "", field: "adminComment" };
    // Act
    const written = await call("POST", "/v1/jobs/notes", JSON.stringify({ notes: [good, clear] }));
    const hostile = [
      { ...good, text: "nowscale: line\nbreak" },
      { ...good, text: "not ours" },
      { ...good, jobIds: ["17;scancel -u root"] },
      { ...good, field: "Comment" },
      { ...good, extra: 1 },
    ];
    const refused = [];
    for (const bad of hostile)
      refused.push(await call("POST", "/v1/jobs/notes", JSON.stringify({ notes: [good, bad] })));
    const wrongMethod = await call("GET", "/v1/jobs/notes");
    // Assess
    expect(written).toEqual({ status: 200, body: { ok: true, applied: 2 } });
    expect(refused.map((r) => r.status)).toEqual([400, 400, 400, 400, 400]);
    expect(refused.map((r) => String(r.body.error))).toEqual([
      expect.stringContaining("notes[1].text"),
      expect.stringContaining("notes[1].text"),
      expect.stringContaining("notes[1].jobIds[0]"),
      expect.stringContaining("notes[1].field"),
      expect.stringContaining("notes[1].extra"),
    ]);
    expect(wrongMethod.status).toBe(405);
    expect(actions.calls).toEqual([
      "note 17,9_0-28 comment nowscale: no instance type fits",
      "note 18 adminComment ",
    ]);
  });

  it("syncs placeholders; a spec whose name is not its digest is 400 and nothing is done", async () => {
    // Prepare
    const { call, actions } = await start();
    const shape = {
      queue: "gpu",
      instanceType: "g4",
      cpus: 4,
      realMemoryMiB: 1000,
      gpus: 1,
      features: ["q_gpu"],
    };
    const spec = { name: placeholderName(shape), ...shape };
    // Act
    const synced = await call("POST", "/v1/placeholders", JSON.stringify({ placeholders: [spec] }));
    const forged = await call(
      "POST",
      "/v1/placeholders",
      JSON.stringify({ placeholders: [spec, { ...spec, name: "c4-a" }] }),
    );
    actions.failWith = new SlurmUnavailableError("down");
    const down = await call("POST", "/v1/placeholders", JSON.stringify({ placeholders: [] }));
    // Assess
    expect(synced).toEqual({ status: 200, body: { ok: true, created: [spec.name], removed: [] } });
    expect(forged.status).toBe(400);
    expect(String(forged.body.error)).toContain("placeholders[1].name");
    expect(down.status).toBe(503);
    expect(actions.calls).toEqual([`placeholders ${spec.name}`]);
  });

  it("sets partitions; a hostile name is 400 and nothing is done; a rollback is 502, slurmctld down 503", async () => {
    // Prepare
    const { call, actions } = await start();

    // Act
    const set = await call("POST", "/v1/partitions", JSON.stringify({ partitions: [{ name: "gpu" }] }));
    const hostile = await call(
      "POST",
      "/v1/partitions",
      JSON.stringify({ partitions: [{ name: "a\nX=1" }] }),
    );
    const wrongMethod = await call("GET", "/v1/partitions");
    actions.failWith = new PartitionRollbackError("scontrol reconfigure failed, slurm.conf rolled back");
    const refused = await call("POST", "/v1/partitions", JSON.stringify({ partitions: [{ name: "gpu" }] }));
    actions.failWith = new PartitionRollbackError("rolled back", {
      cause: new SlurmUnavailableError("down"),
    });
    const down = await call("POST", "/v1/partitions", JSON.stringify({ partitions: [{ name: "gpu" }] }));

    // Assess
    expect(set).toEqual({
      status: 200,
      body: { ok: true, partitions: ["gpu"], added: [], removed: [], changed: true },
    });
    expect(hostile.status).toBe(400);
    expect(String(hostile.body.error)).toContain("partitions[0].name");
    expect(wrongMethod.status).toBe(405);
    expect(refused).toMatchObject({ status: 502, body: { rolledBack: true } });
    expect(down).toMatchObject({ status: 503, body: { rolledBack: true } });
    expect(actions.calls).toEqual(["partitions gpu"]);
  });

  it("job notes: Slurm refusing one is 502 after the others are written; slurmctld down is 503", async () => {
    // Prepare
    const { call, actions } = await start();
    const note = (id: string) => ({ jobIds: [id], text: "nowscale: x", field: "comment" });
    // Act
    const partly = await call(
      "POST",
      "/v1/jobs/notes",
      JSON.stringify({ notes: [note("refused"), note("2")] }),
    );
    actions.failWith = new SlurmUnavailableError("down");
    const down = await call("POST", "/v1/jobs/notes", JSON.stringify({ notes: [note("3")] }));
    // Assess
    expect(partly).toMatchObject({ status: 502, body: { applied: 1, failed: 1 } });
    expect(down.status).toBe(503);
    expect(actions.calls).toEqual(["note 2 comment nowscale: x"]);
  });

  it("serves the report, saying explicitly when slurmctld is down, and shares one run between concurrent requests", async () => {
    const { call, reports } = await start(async () => {
      await new Promise((r) => setTimeout(r, 50));
      return failedReport("slurmctld-unreachable", "connect failure", "x", 0);
    });
    const [a, b] = await Promise.all([call("GET", "/v1/report"), call("GET", "/v1/report")]);
    expect(a.body.status).toBe("slurmctld-unreachable");
    expect(a.body).not.toHaveProperty("jobs");
    expect(b.body.status).toBe("slurmctld-unreachable");
    expect(reports()).toBe(1);
  });
});

describe("agent HTTP API across a restart", () => {
  /** A real agent server on `replayFile`, with the agent's clock at `clock.ms`; stopped by `stop()`. */
  async function startWith(replayFile: string, actions: FakeActions, clock: { ms: number }) {
    const logs: Record<string, unknown>[] = [];
    const server: Server = createAgentServer({
      key: KEY,
      actions,
      report: async () => failedReport("slurmctld-unreachable", "down", "x", 0),
      replayFile,
      now: () => clock.ms,
      log: (entry) => logs.push(entry),
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const stop = () => new Promise<void>((resolve) => server.close(() => resolve()));
    return { base, stop, logs };
  }

  it("refuses with 401 a request captured before a restart and replayed after it, within the window", async () => {
    // Prepare: one signed resume, captured, acted on by the first agent
    const dir = mkdtempSync(join(tmpdir(), "nowscale-agent-"));
    const replayFile = join(dir, "replay-cache.json");
    const clock = { ms: Date.now() };
    const actions = new FakeActions();
    const path = "/v1/nodes/c4-a/resume";
    const captured = signRequest(KEY, { method: "POST", path }, clock.ms);
    const first = await startWith(replayFile, actions, clock);
    const original = await fetch(first.base + path, { method: "POST", headers: captured });
    await first.stop();
    // Act: the agent restarts 30 s later (well inside the 300 s window) and the request is replayed
    clock.ms += 30_000;
    const second = await startWith(replayFile, actions, clock);
    const replay = await fetch(second.base + path, { method: "POST", headers: captured });
    const fresh = await fetch(second.base + path, {
      method: "POST",
      headers: signRequest(KEY, { method: "POST", path }, clock.ms),
    });
    await second.stop();
    // Assess
    expect([original.status, replay.status, fresh.status]).toEqual([200, 401, 200]);
    expect(await replay.json()).toEqual({ error: "nonce already used" });
    expect(actions.calls).toEqual(["resume c4-a", "resume c4-a"]);
    expect(readdirSync(dir)).toEqual(["replay-cache.json"]);
  });

  it("keeps the replay file pruned to the window", async () => {
    // Prepare
    const dir = mkdtempSync(join(tmpdir(), "nowscale-agent-"));
    const replayFile = join(dir, "replay-cache.json");
    const clock = { ms: Date.now() };
    const agent = await startWith(replayFile, new FakeActions(), clock);
    const call = () =>
      fetch(`${agent.base}/v1/health`, {
        headers: signRequest(KEY, { method: "GET", path: "/v1/health" }, clock.ms),
      });
    // Act: two requests, then one more after the first two have left the 300 s window
    await call();
    await call();
    const twoKept = JSON.parse(readFileSync(replayFile, "utf8")).nonces.length;
    clock.ms += 301_000;
    await call();
    await agent.stop();
    // Assess
    expect(twoKept).toBe(2);
    expect(JSON.parse(readFileSync(replayFile, "utf8")).nonces).toHaveLength(1);
  });

  it("refuses what was signed before the start when the replay file is unreadable, and says so", async () => {
    // Prepare: a corrupt file and a request signed 10 s before the restart
    const dir = mkdtempSync(join(tmpdir(), "nowscale-agent-"));
    const replayFile = join(dir, "replay-cache.json");
    writeFileSync(replayFile, "{not json");
    const clock = { ms: Date.now() };
    const path = "/v1/nodes/c4-a";
    const before = signRequest(KEY, { method: "DELETE", path }, clock.ms - 10_000);
    const actions = new FakeActions();
    const agent = await startWith(replayFile, actions, clock);
    // Act
    const old = await fetch(agent.base + path, { method: "DELETE", headers: before });
    clock.ms += 2_000;
    const after = await fetch(agent.base + path, {
      method: "DELETE",
      headers: signRequest(KEY, { method: "DELETE", path }, clock.ms),
    });
    await agent.stop();
    // Assess
    expect([old.status, after.status]).toEqual([401, 200]);
    expect(actions.calls).toEqual(["delete c4-a"]);
    expect(agent.logs[0]?.msg).toMatch(/not a valid replay file.*signed before this start are refused/);
    expect(JSON.parse(readFileSync(replayFile, "utf8")).notAfter).toBe(Math.floor((clock.ms - 2_000) / 1000));
  });

  it("answers 500 and does not act when the replay file cannot be saved", async () => {
    // Prepare: the replay file's directory does not exist, so no write can succeed
    const replayFile = join(tmpdir(), `nowscale-missing-${process.pid}`, "x", "replay-cache.json");
    const clock = { ms: Date.now() };
    const actions = new FakeActions();
    const agent = await startWith(replayFile, actions, clock);
    const path = "/v1/nodes/c4-a/resume";
    // Act
    const res = await fetch(agent.base + path, {
      method: "POST",
      headers: signRequest(KEY, { method: "POST", path }, clock.ms),
    });
    await agent.stop();
    // Assess
    expect(res.status).toBe(500);
    expect(((await res.json()) as { error: string }).error).toMatch(/replay file could not be saved/);
    expect(actions.calls).toEqual([]);
    expect(existsSync(replayFile)).toBe(false);
  });
});
