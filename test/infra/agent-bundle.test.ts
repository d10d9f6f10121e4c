import { execFileSync, spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { AGENT_TEST_NODE_VERSION, buildAgentBundle } from "../../agent/bundle.js";
import { main } from "../../agent/main.js";
import { LOCAL_BUS_NAME, LOCAL_EVENTS_REGION, LocalEventBus } from "../../lib/local/event-bus.js";
import { parseReport } from "../../lib/ports/agent-report.js";
import { DEFAULT_IMAGE_DISTRIBUTION } from "../../lib/providers/aws-ec2/index.js";
import { renderMasterBootstrapScript } from "../../scheduler-plugins/slurm/master-bootstrap.js";
import { synthNowScale } from "./synth.js";
import { ResolvedTemplate } from "./template-iam.js";

/**
 * The agent as the default master image runs it: the bundle the stack ships, under the Node that
 * Debian 12 packages (installed here from npm's `node` package, the same version), against Slurm
 * commands that answer with recorded Slurm 22.05.8 output; and the boot script's checksum check.
 */

const ROOT = new URL("../../", import.meta.url).pathname;
const FIXTURES = join(ROOT, "test/fixtures/slurm");
let node18: string;
let bundle: { outfile: string; sha256: string };
let work: string;
/** The bundle where the master's boot script puts it (its own lines, run under a scratch root). */
let installed: string;

/** npm's `node` package of that version, installed once into node_modules/.cache. */
function installNode(version: string): string {
  const prefix = join(ROOT, "node_modules/.cache/nowscale-node", version);
  const bin = join(prefix, "node_modules/.bin/node");
  if (!existsSync(bin)) {
    mkdirSync(prefix, { recursive: true });
    execFileSync(
      "npm",
      ["install", "--no-audit", "--no-fund", "--no-save", "--prefix", prefix, `node@${version}`],
      {
        stdio: "pipe",
        timeout: 240_000,
      },
    );
  }
  return bin;
}

/** squeue, sinfo and scontrol that print recorded Slurm 22.05.8 answers. */
function fakeSlurm(dir: string): string {
  const bin = join(dir, "slurm-bin");
  mkdirSync(bin, { recursive: true });
  const script = (body: string) => `#!/bin/sh\n${body}\n`;
  writeFileSync(join(bin, "squeue"), script(`cat '${FIXTURES}/squeue.json'`));
  writeFileSync(
    join(bin, "sinfo"),
    script(`case "$*" in *--version*) echo "slurm 22.05.8" ;; *) cat '${FIXTURES}/sinfo.json' ;; esac`),
  );
  writeFileSync(
    join(bin, "scontrol"),
    script(
      `case "$*" in *partition*) cat '${FIXTURES}/scontrol-partitions.txt' ;; *) cat '${FIXTURES}/scontrol-nodes.txt' ;; esac`,
    ),
  );
  for (const f of ["squeue", "sinfo", "scontrol"]) chmodSync(join(bin, f), 0o755);
  return bin;
}

/** The script's bundle lines, run with /opt/nowscale moved under `root` and an `aws` that copies `source`. */
function fetchBundle(root: string, source: string, sha256: string) {
  const script = renderMasterBootstrapScript({
    clusterId: "c1",
    region: "us-east-1",
    mungeKeySecretId: "nowscale/c1/munge-key",
    agentKeySecretId: "nowscale/c1/agent-hmac-key",
    queues: [{ name: "q" }],
    agentUrl: "s3://cdk-assets-bucket/abc.js",
    agentSha256: sha256,
  });
  const lines = script.split("\n");
  const start = lines.findIndex((l) => l.startsWith("aws s3 cp"));
  const end = lines.findIndex((l) => l.includes("> /opt/nowscale/package.json"));
  expect(start, "the script downloads the bundle").toBeGreaterThanOrEqual(0);
  const block = lines
    .slice(start, end + 1)
    .join("\n")
    .replaceAll("/opt/nowscale", join(root, "opt"));
  const bin = join(root, "bin");
  mkdirSync(bin, { recursive: true });
  mkdirSync(join(root, "opt"), { recursive: true });
  // aws s3 cp SRC DEST ...: DEST gets `source`.
  writeFileSync(join(bin, "aws"), `#!/bin/sh\ncp '${source}' "$4"\n`);
  chmodSync(join(bin, "aws"), 0o755);
  return spawnSync("bash", ["-c", `set -euo pipefail\nlog() { echo "$*"; }\n${block}`], {
    encoding: "utf8",
    env: { PATH: `${bin}:${process.env.PATH ?? ""}` },
  });
}

beforeAll(() => {
  node18 = installNode(AGENT_TEST_NODE_VERSION);
  work = mkdtempSync(join(tmpdir(), "nowscale-bundle-"));
  bundle = buildAgentBundle(join(work, "build", "nowscale-agent.js"));
  const root = mkdtempSync(join(work, "master-"));
  const fetched = fetchBundle(root, bundle.outfile, bundle.sha256);
  expect(fetched.status, fetched.stderr).toBe(0);
  installed = join(root, "opt/nowscale-agent.js");
}, 300_000);

afterAll(() => {
  vi.restoreAllMocks();
});

describe("the agent bundle under the default image's Node", () => {
  it("THEN the test's Node is the version Debian 12 packages", () => {
    // Assess
    expect(execFileSync(node18, ["--version"], { encoding: "utf8" }).trim()).toBe(
      `v${AGENT_TEST_NODE_VERSION}`,
    );
    expect(DEFAULT_IMAGE_DISTRIBUTION.node).toBe(AGENT_TEST_NODE_VERSION);
  });

  it("THEN it reports, under that Node, what the agent reports in-process from the same Slurm answers", async () => {
    // Prepare
    const bin = fakeSlurm(work);
    const args = ["report", "--slurm-bin", bin, "--source", "json"];

    // Act
    const run = spawnSync(node18, [installed, ...args], { encoding: "utf8", timeout: 30_000 });
    const out: string[] = [];
    const spy = vi.spyOn(process.stdout, "write").mockImplementation((chunk) => out.push(String(chunk)) > 0);
    const code = await main(args);
    spy.mockRestore();

    // Assess
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    const report = parseReport(JSON.parse(run.stdout), "bundle report");
    expect(report.status).toBe("ok");
    const inProcess = JSON.parse(out.join(""));
    expect(code).toBe(0);
    expect({ ...report, generatedAt: "" }).toEqual({ ...inProcess, generatedAt: "" });
    expect(report.status === "ok" ? report.nodes.length : 0).toBeGreaterThan(0);
  });

  it("THEN its one-shot node actions run there too (the SSM document's commands)", () => {
    // Prepare: a scontrol that records what it is asked
    const bin = join(work, "actions-bin");
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, "scontrol"), `#!/bin/sh\nprintf '%s\\n' "$*" >> '${bin}/calls'\n`);
    chmodSync(join(bin, "scontrol"), 0o755);

    // Act
    const run = spawnSync(node18, [installed, "drain", "n-1", "--reason", "idle", "--slurm-bin", bin], {
      encoding: "utf8",
    });

    // Assess
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({ ok: true, node: "n-1", action: "drain" });
    expect(readFileSync(join(bin, "calls"), "utf8")).toBe(
      "update NodeName=n-1 State=DRAIN Reason=nowscale: idle\n",
    );
  });
});

describe("the agent's watcher in the bundle", () => {
  it("THEN under that Node a new pending job becomes one signed wake that the SDK's signer verifies", async () => {
    // Prepare: an squeue with one pending job, and the local mode's bus (which re-signs with @smithy)
    const bin = join(work, "watch-bin");
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, "squeue"), "#!/bin/sh\necho 17\n");
    chmodSync(join(bin, "squeue"), 0o755);
    const credentials = { accessKeyId: "AKIABUNDLETEST", secretAccessKey: "bundle-secret-0123456789" };
    const woken: unknown[] = [];
    const bus = new LocalEventBus({ credentials, onWake: (detail) => woken.push(detail) });
    const server = createServer((req, res) => void bus.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/local/events`;

    // Act
    const child = spawn(
      node18,
      [
        installed,
        "watch",
        "--cluster-id",
        "c1",
        "--event-bus",
        LOCAL_BUS_NAME,
        "--region",
        LOCAL_EVENTS_REGION,
      ].concat(["--endpoint-url", url, "--slurm-bin", bin]),
      {
        env: {
          PATH: process.env.PATH ?? "",
          AWS_ACCESS_KEY_ID: credentials.accessKeyId,
          AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
        },
      },
    );
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString("utf8");
    });
    const deadline = Date.now() + 15_000;
    while (woken.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    // Three more reads of the same job: still one wake.
    await new Promise((r) => setTimeout(r, 6500));
    child.kill("SIGTERM");
    server.close();

    // Assess
    expect(woken, stderr).toEqual([{ clusterId: "c1" }]);
    expect(stderr).toContain('"msg":"wake sent","newPendingJobs":1');
    expect(stderr).not.toMatch(/Warning/);
  }, 30_000);
});

describe("the master's boot script and the bundle's checksum", () => {
  it("THEN the right bundle is installed and a tampered one refused, leaving nothing", () => {
    // Prepare
    const good = mkdtempSync(join(work, "good-"));
    const bad = mkdtempSync(join(work, "bad-"));
    const tampered = join(work, "tampered.js");
    writeFileSync(tampered, `${readFileSync(bundle.outfile, "utf8")}\n// one more line`);

    // Act
    const accepted = fetchBundle(good, bundle.outfile, bundle.sha256);
    const refused = fetchBundle(bad, tampered, bundle.sha256);

    // Assess
    expect(accepted.status, accepted.stderr).toBe(0);
    expect(readFileSync(join(good, "opt/nowscale-agent.js"))).toEqual(readFileSync(bundle.outfile));
    expect(refused.status).toBe(1);
    expect(refused.stdout).toMatch(/does not match its checksum/);
    expect(existsSync(join(bad, "opt/nowscale-agent.js"))).toBe(false);
    expect(existsSync(join(bad, "opt/nowscale-agent.js.new"))).toBe(false);
  });
});

describe("the stack's agent asset", () => {
  it("THEN the workflow is given the asset's S3 URL and the bundle's SHA-256, and only the master role reads it", () => {
    // Prepare
    const t = new ResolvedTemplate(synthNowScale().template.toJSON() as never);
    const env = t.functionEnv(t.functionId("WorkflowTask"));
    const reading = [...t.ofType("AWS::IAM::Policy"), ...t.ofType("AWS::IAM::ManagedPolicy")].filter(
      ([, p]) => JSON.stringify(p.Properties?.PolicyDocument).includes("s3:GetObject"),
    );

    // Assess
    expect(env.NOWSCALE_AGENT_BUNDLE_SHA256).toBe(bundle.sha256);
    expect(env.NOWSCALE_AGENT_BUNDLE_URL).toMatch(
      /^s3:\/\/cdk-[a-z0-9]+-assets-123456789012-us-east-1\/[0-9a-f]{64}\.js$/,
    );
    const [bucketAndKey = ""] = (env.NOWSCALE_AGENT_BUNDLE_URL ?? "").replace("s3://", "").split("\n");
    expect(reading.map(([id]) => id.replace(/[0-9A-F]{8}$/, ""))).toEqual(["MasterRoleDefaultPolicy"]);
    expect(JSON.stringify(t.resolve(reading[0]?.[1].Properties?.PolicyDocument))).toContain(
      `"arn:aws:s3:::${bucketAndKey}"`,
    );
  }, 120_000);
});
