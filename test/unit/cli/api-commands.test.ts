import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeApiToken } from "../../../lib/local/api-auth.js";
import { CLI, tempFiles } from "../../support/cli.js";

/**
 * The API commands of the built CLI against a fake API on 127.0.0.1: tables and --json, errors that
 * name the API's fields, the local API's token sent from the state directory, SigV4 signing (without
 * the token), and a clear message when no API answers or the token cannot be read.
 */
interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: string;
}

const CLUSTER = {
  clusterId: "c-0123456789ab",
  name: "demo",
  status: "RUNNING",
  version: 3,
  placement: { cloud: "local", region: "local", imageId: "local" },
  autoscaling: { queueConfigs: [{ queueName: "compute", minSize: 0, maxSize: 6 }] },
  updatedAt: "2026-01-01T00:00:00.000Z",
};

function run(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...env },
      timeout: 30_000,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString("utf8");
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString("utf8");
    });
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

describe("nowscale cluster / nodes / events against an API", () => {
  const seen: Seen[] = [];
  let server: Server;
  let endpoint = "";
  let stateDir = "";
  let token = "";

  beforeAll(async () => {
    // A state directory with a token, as a running local mode leaves it; NOWSCALE_LOCAL_DIR names it.
    stateDir = mkdtempSync(join(tmpdir(), "nowscale-cli-state-"));
    token = await writeApiToken(stateDir);
    process.env.NOWSCALE_LOCAL_DIR = stateDir;
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does)`);
    server = createServer((req, res) => {
      let body = "";
      req.on("data", (d: Buffer) => {
        body += d.toString("utf8");
      });
      req.on("end", () => {
        seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
        res.setHeader("content-type", "application/json");
        if (req.url === "/v1/clusters" && req.method === "GET") {
          res.end(JSON.stringify({ clusters: [CLUSTER] }));
        } else if (req.url === "/v1/clusters" && req.method === "POST") {
          res.statusCode = 400;
          res.end(
            JSON.stringify({
              // as the API answers a ValidationError: one line with every field, and the fields
              error: "request body is invalid: autoscaling.queueConfigs[0].maxSize: must be at most 1000",
              issues: [{ path: "autoscaling.queueConfigs[0].maxSize", message: "must be at most 1000" }],
            }),
          );
        } else if (req.url === "/v1/clusters/attach" && req.method === "POST") {
          const name = (JSON.parse(body) as { name?: string }).name;
          res.statusCode = name === "unreachable" ? 422 : 201;
          res.end(
            JSON.stringify(
              name === "unreachable"
                ? {
                    error: "master.url: the agent did not answer a signed request",
                    issues: [{ path: "master.url", message: "the agent did not answer a signed request" }],
                  }
                : {
                    ...CLUSTER,
                    origin: "attached",
                    attachment: {
                      controllerAddress: "10.0.0.5",
                      controllerPort: 6817,
                      slurmVersion: "22.05.8",
                    },
                    checks: [
                      {
                        check: "partition",
                        ok: true,
                        message: "partition burst takes nodes through NodeSet nowscale_burst",
                      },
                    ],
                    userMust: ["network ACLs let slurmctld's port through"],
                  },
            ),
          );
        } else if (req.url === "/v1/clusters/c-0123456789ab/detach" && req.method === "POST") {
          res.statusCode = 202;
          res.end(JSON.stringify({ ...CLUSTER, status: "DELETING", origin: "attached" }));
        } else if (req.url?.startsWith("/v1/clusters/c-0123456789ab/events")) {
          res.end(
            JSON.stringify({
              events: [
                {
                  at: "2026-01-01T00:00:01.000Z",
                  kind: "LAUNCHED",
                  queue: "compute",
                  count: 2,
                  message: "2 × local.c1m1",
                },
              ],
            }),
          );
        } else if (req.url?.startsWith("/v1/clusters/c-0123456789ab/nodes/ln-1/console")) {
          res.end(
            JSON.stringify({
              node: "ln-1",
              instanceId: "ln-1",
              output: "nowscale-bootstrap: fetching the munge key\nnowscale-local: user data exited with 1",
            }),
          );
        } else {
          res.statusCode = 404;
          res.end(JSON.stringify({ error: "no such route" }));
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(stateDir, { recursive: true, force: true });
  });

  it("prints clusters as a table, and the API's JSON with --json", async () => {
    // Act
    const table = await run(["cluster", "list", "--endpoint", endpoint]);
    const json = await run(["cluster", "list", "--endpoint", endpoint, "--json"]);

    // Assess
    expect(table.status, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/^CLUSTER\s+NAME\s+STATUS\s+CLOUD\s+QUEUES\s+UPDATED\n/);
    expect(table.stdout).toMatch(/c-0123456789ab\s+demo\s+RUNNING\s+local\/local\s+compute/);
    // times in tables: UTC to the second, as docs/cli.md says (the JSON keeps the API's)
    expect(table.stdout).toMatch(/compute\s+2026-01-01 00:00:00Z$/m);
    expect(JSON.parse(json.stdout)).toEqual({ clusters: [CLUSTER] });
    expect(seen.at(-1)?.headers.authorization).toBe(`Bearer ${token}`);
  });

  it("says the local API is root's when its token cannot be read, and sends nothing", async () => {
    // Prepare
    const requests = seen.length;
    const empty = mkdtempSync(join(tmpdir(), "nowscale-cli-empty-"));

    // Act
    const listed = await run(["cluster", "list", "--endpoint", endpoint, "--state-dir", empty]);
    rmSync(empty, { recursive: true, force: true });

    // Assess
    expect(listed.status).toBe(1);
    expect(listed.stderr).toContain(`no local API token in ${empty}: is the local mode up there?`);
    expect(seen.length).toBe(requests);
  });

  it("prints events as a table", async () => {
    // Act
    const events = await run(["events", "c-0123456789ab", "--endpoint", endpoint, "--limit", "5"]);

    // Assess
    expect(events.status, events.stderr).toBe(0);
    expect(seen.at(-1)?.url).toBe("/v1/clusters/c-0123456789ab/events?limit=5");
    expect(events.stdout).toMatch(/^2026-01-01 00:00:01Z\s+LAUNCHED\s+compute\s+2\s+2 × local\.c1m1/m);
  });

  it("prints a node's console log", async () => {
    // Act
    const log = await run([
      "nodes",
      "log",
      "c-0123456789ab",
      "ln-1",
      "--endpoint",
      endpoint,
      "--lines",
      "20",
    ]);

    // Assess
    expect(log.status, log.stderr).toBe(0);
    expect(seen.at(-1)?.url).toBe("/v1/clusters/c-0123456789ab/nodes/ln-1/console?lines=20");
    expect(log.stdout).toBe(
      "nowscale-bootstrap: fetching the munge key\nnowscale-local: user data exited with 1\n",
    );
  });

  it("fails with the API's message and every field it names", async () => {
    // Prepare
    const dir = tempFiles({ "cluster.json": { name: "x" } });

    // Act
    const created = await run(["cluster", "create", "--file", `${dir}/cluster.json`, "--endpoint", endpoint]);

    // Assess
    expect(created.status).toBe(1);
    // each field once, on its own line
    expect(created.stderr).toBe(
      "nowscale: POST /v1/clusters failed with HTTP 400: request body is invalid:\n" +
        "  autoscaling.queueConfigs[0].maxSize: must be at most 1000\n",
    );
    expect(JSON.parse(seen.at(-1)?.body ?? "")).toEqual({ name: "x" });
  });

  it("refuses an --if-version that is no version, naming the option, and sends nothing", async () => {
    // Prepare
    const requests = seen.length;
    const dir = tempFiles({ "as.json": { queueConfigs: [] } });

    // Act
    const refused = await run([
      "autoscaling",
      "set",
      "c-0123456789ab",
      "--file",
      `${dir}/as.json`,
      "--if-version",
      "abc",
      "--endpoint",
      endpoint,
    ]);

    // Assess
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain("--if-version must be the cluster's version, a whole number ≥ 1");
    expect(refused.stderr).toContain('got "abc"');
    expect(seen.length).toBe(requests);
  });

  it("attaches a master from a file, printing what was checked and what is the user's; a refusal names the field", async () => {
    // Prepare
    const dir = tempFiles({ "attach.json": { name: "theirs" }, "bad.json": { name: "unreachable" } });

    // Act
    const attached = await run(["cluster", "attach", "--file", `${dir}/attach.json`, "--endpoint", endpoint]);
    const refused = await run(["cluster", "attach", "--file", `${dir}/bad.json`, "--endpoint", endpoint]);
    const detached = await run(["cluster", "detach", "c-0123456789ab", "--endpoint", endpoint]);

    // Assess
    expect(attached.status, attached.stderr).toBe(0);
    expect(attached.stdout).toBe(
      [
        "c-0123456789ab RUNNING: attached",
        "  checked: partition burst takes nodes through NodeSet nowscale_burst",
        "  yours to ensure: network ACLs let slurmctld's port through",
        "",
      ].join("\n"),
    );
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain("POST /v1/clusters/attach failed with HTTP 422");
    expect(refused.stderr).toContain("master.url: the agent did not answer a signed request");
    expect(detached.status, detached.stderr).toBe(0);
    expect(detached.stdout).toBe("c-0123456789ab DELETING\n");
    expect(seen.at(-1)).toMatchObject({
      method: "POST",
      url: "/v1/clusters/c-0123456789ab/detach",
      body: "",
    });
  });

  it("signs requests with SigV4 for execute-api with the default credential chain", async () => {
    // Act
    const listed = await run(["cluster", "list", "--endpoint", endpoint, "--sign", "--region", "eu-west-1"], {
      AWS_ACCESS_KEY_ID: "AKIDNOWSCALETEST",
      AWS_SECRET_ACCESS_KEY: "secret-for-the-test",
      AWS_SESSION_TOKEN: "",
      AWS_PROFILE: "",
    });

    // Assess
    expect(listed.status, listed.stderr).toBe(0);
    const headers = seen.at(-1)?.headers ?? {};
    expect(headers.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDNOWSCALETEST\/\d{8}\/eu-west-1\/execute-api\/aws4_request, SignedHeaders=[a-z0-9;-]*host[a-z0-9;-]*, Signature=[0-9a-f]{64}$/,
    );
    expect(headers["x-amz-date"]).toMatch(/^\d{8}T\d{6}Z$/);
    expect(JSON.stringify(headers)).not.toContain(token);
    expect(listed.stderr).not.toContain("secret-for-the-test");
  });

  it("says how to start the local mode when no API answers", async () => {
    // Prepare: a port nothing listens on
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));

    // Act
    const listed = await run(["cluster", "list", "--endpoint", `http://127.0.0.1:${port}`]);

    // Assess
    expect(listed.status).toBe(1);
    expect(listed.stderr).toContain(
      `no NowScale API on http://127.0.0.1:${port}: start it with "nowscale local up"`,
    );
  });
});
