import { execFile } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeClock, FakeCloud } from "../../../lib/providers/fake/index.js";
import { metadataHandler } from "../../../lib/providers/local/instance-endpoints/metadata.js";
import { TencentClusterResources } from "../../../lib/providers/tencent-cvm/cluster-resources.js";
import { renderMasterBootstrapScript } from "../../../scheduler-plugins/slurm/master-bootstrap.js";
import {
  type CvmSimulator,
  startCvmSimulator,
  TEST_SECRET_ID,
  TEST_SECRET_KEY,
} from "../providers/simulators/tencent-cvm.js";

const run = promisify(execFile);

/** The script's secret fetches, each without the pipe and redirection around it (never run here). */
function fetchCommands(script: string): string[] {
  return [
    ...script.matchAll(
      /NOWSCALE_SECRET_NAME=\S+ NOWSCALE_SECRET_FIELD=\w+ NOWSCALE_REGION=\S+ node --input-type=module -e '[^']*'/g,
    ),
  ].map((m) => m[0]);
}

/**
 * The Tencent master's secret fetch as its boot script runs it: the line of the rendered script, in
 * bash, with node, against the Tencent metadata emulator (the CVM role's temporary key) and the
 * loopback SSM, which checks the TC3 signature made with that key.
 */
describe("the Tencent master bootstrap's secret fetch", () => {
  let sim: CvmSimulator;
  let metadata: Server;
  let metadataUrl: string;
  const requests: string[] = [];

  beforeEach(async () => {
    sim = await startCvmSimulator(new FakeCloud({ idPrefix: "ins-", clock: new FakeClock() }));
    const identity = {
      cloud: "tencent" as const,
      instanceId: "ins-master",
      instanceType: "S5.LARGE8",
      zone: "ap-guangzhou-3",
      region: "ap-guangzhou",
      privateIp: "10.42.0.5",
    };
    metadata = createServer(
      metadataHandler(
        identity,
        { accessKeyId: TEST_SECRET_ID, secret: TEST_SECRET_KEY, token: "role-token" },
        requests,
      ),
    );
    await new Promise<void>((resolve) => metadata.listen(0, "127.0.0.1", resolve));
    metadataUrl = `http://127.0.0.1:${(metadata.address() as AddressInfo).port}`;
  });

  afterEach(async () => {
    metadata.close();
    await sim.close();
  });

  it("reads the munge key (binary) and the agent key (text) with the role's key, signed", async () => {
    // Prepare
    const resources = new TencentClusterResources({
      region: "ap-guangzhou",
      credential: { secretId: TEST_SECRET_ID, secretKey: TEST_SECRET_KEY },
      endpoint: sim.endpoint,
      protocol: "http://",
    });
    const munge = await resources.createSecret("tc-1", "munge-key");
    const agent = await resources.createSecret("tc-1", "agent-hmac-key");
    const script = renderMasterBootstrapScript({
      clusterId: "tc-1",
      region: "ap-guangzhou",
      mungeKeySecretId: munge.secretId,
      agentKeySecretId: agent.secretId,
      queues: [{ name: "compute" }],
      secretStore: "tencent-ssm",
    });
    const lines = fetchCommands(script);
    const env = {
      ...process.env,
      NOWSCALE_TENCENT_METADATA: metadataUrl,
      NOWSCALE_TENCENT_SSM_ENDPOINT: `http://${sim.endpoint}`,
    };

    // Act
    const mungeOut = await run("bash", ["-c", `${lines[0]} | base64 -d | base64 -w0`], { env });
    const agentOut = await run("bash", ["-c", lines[1] ?? ""], { env });

    // Assess
    expect(lines).toHaveLength(2);
    expect(mungeOut.stdout).toBe(sim.services.secrets.get(munge.secretId)?.SecretBinary);
    expect(Buffer.from(mungeOut.stdout, "base64")).toHaveLength(1024);
    expect(agentOut.stdout).toBe(sim.services.secrets.get(agent.secretId)?.SecretString);
    const [get] = sim.callsOf("GetSecretValue");
    expect(get?.request.headers["x-tc-token"]).toBe("role-token");
    expect(requests.some((r) => r.endsWith("/latest/meta-data/cam/security-credentials/"))).toBe(true);
    // No AWS CLI, and the metadata service kept from jobs at Tencent's address.
    expect(script).not.toContain("awscli");
    expect(script).toContain("-d 169.254.0.23/32");
  });

  it("fails the boot (non-zero, the code on stderr) for a secret SSM does not have", async () => {
    // Prepare
    const script = renderMasterBootstrapScript({
      clusterId: "tc-1",
      region: "ap-guangzhou",
      mungeKeySecretId: "nowscale-tc-1-munge-key",
      agentKeySecretId: "nowscale-tc-1-agent-hmac-key",
      queues: [{ name: "compute" }],
      secretStore: "tencent-ssm",
    });
    const [line = ""] = fetchCommands(script);

    // Act
    const failure = await run("bash", ["-c", line], {
      env: {
        ...process.env,
        NOWSCALE_TENCENT_METADATA: metadataUrl,
        NOWSCALE_TENCENT_SSM_ENDPOINT: `http://${sim.endpoint}`,
      },
    }).catch((error: { code: number; stderr: string }) => error);

    // Assess
    expect(failure).toMatchObject({
      code: 1,
      stderr: expect.stringContaining("ResourceUnavailable.SecretNotExist"),
    });
  });
});
