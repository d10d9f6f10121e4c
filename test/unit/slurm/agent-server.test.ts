import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { Report } from "../../../agent/report-schema.js";
import { createAgentServer, type NodeActions } from "../../../agent/server.js";
import { signRequest } from "../../../agent/signing.js";
import { AGENT_VERSION } from "../../../agent/version.js";
import { SlurmNodeNotFoundError, SlurmUnavailableError } from "../../../scheduler-plugins/slurm/errors.js";
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
