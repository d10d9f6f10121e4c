import { execFile } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AlibabaClusterResources } from "../../../lib/providers/alibaba-ecs/cluster-resources.js";
import { FakeClock, FakeCloud } from "../../../lib/providers/fake/index.js";
import { metadataHandler } from "../../../lib/providers/local/instance-endpoints/metadata.js";
import { ALIBABA_SECRET_FETCHER } from "../../../scheduler-plugins/slurm/alibaba-secret-fetcher.js";
import { renderMasterBootstrapScript } from "../../../scheduler-plugins/slurm/master-bootstrap.js";
import {
  type EcsSimulator,
  startEcsSimulator,
  TEST_ACCESS_KEY_ID,
  TEST_ACCESS_KEY_SECRET,
} from "../providers/simulators/alibaba-ecs.js";

const run = promisify(execFile);

/**
 * The master's secret fetch on Alibaba, run by node as the boot script runs it: the RAM role's STS key
 * from the metadata emulator in hardened mode, an ACS3-signed GetSecretValue to the loopback KMS (which
 * checks the signature against that key).
 */
describe("the Alibaba secret fetcher of the master's boot script", () => {
  let sim: EcsSimulator;
  let metadata: Server;
  let metadataUrl: string;
  const metadataRequests: string[] = [];

  beforeEach(async () => {
    sim = await startEcsSimulator(new FakeCloud({ idPrefix: "i-bp", clock: new FakeClock() }));
    const identity = {
      cloud: "alibaba" as const,
      instanceId: "i-bpmaster",
      instanceType: "ecs.c7.xlarge",
      zone: "cn-hangzhou-h",
      region: "cn-hangzhou",
      privateIp: "10.42.0.5",
    };
    const role = { accessKeyId: TEST_ACCESS_KEY_ID, secret: TEST_ACCESS_KEY_SECRET, token: "sts-token-1" };
    metadata = createServer(metadataHandler(identity, role, metadataRequests));
    await new Promise<void>((resolve) => metadata.listen(0, "127.0.0.1", resolve));
    metadataUrl = `http://127.0.0.1:${(metadata.address() as AddressInfo).port}`;
  });

  afterEach(async () => {
    metadata.close();
    await sim.close();
  });

  const fetchSecret = (name: string) =>
    run(process.execPath, ["--input-type=module", "-e", ALIBABA_SECRET_FETCHER], {
      env: {
        NOWSCALE_SECRET_NAME: name,
        NOWSCALE_REGION: "cn-hangzhou",
        NOWSCALE_ALIBABA_METADATA: metadataUrl,
        NOWSCALE_ALIBABA_KMS_ENDPOINT: `http://${sim.endpoint}`,
      },
    });

  it("prints the munge key as base64 and the agent's key as text, signed with the role's STS key", async () => {
    // Prepare
    const resources = new AlibabaClusterResources({
      regionId: "cn-hangzhou",
      credential: { accessKeyId: TEST_ACCESS_KEY_ID, accessKeySecret: TEST_ACCESS_KEY_SECRET },
      endpoints: { ecs: sim.endpoint, vpc: sim.endpoint, kms: sim.endpoint },
      protocol: "http",
    });
    const munge = await resources.createSecret("hpc1", "munge-key");
    const agent = await resources.createSecret("hpc1", "agent-hmac-key");

    // Act
    const mungeOut = await fetchSecret(munge.secretName);
    const agentOut = await fetchSecret(agent.secretName);

    // Assess
    expect(mungeOut.stdout).toBe(sim.world.secrets.get(munge.secretName)?.data);
    expect(Buffer.from(mungeOut.stdout, "base64")).toHaveLength(1024);
    expect(agentOut.stdout).toBe(sim.world.secrets.get(agent.secretName)?.data);
    const [get] = sim.callsOf("GetSecretValue");
    expect(get?.params).toEqual({ SecretName: "nowscale/hpc1/munge-key" });
    expect(get?.request.headers["x-acs-security-token"]).toBe("sts-token-1");
    // Hardened mode: a session token first, then the role.
    expect(metadataRequests.map((r) => r.replace(/ \S+ /, " "))).toEqual([
      "PUT /latest/api/token",
      "GET /latest/meta-data/ram/security-credentials/",
      "GET /latest/meta-data/ram/security-credentials/nowscale-local-node",
      "PUT /latest/api/token",
      "GET /latest/meta-data/ram/security-credentials/",
      "GET /latest/meta-data/ram/security-credentials/nowscale-local-node",
    ]);
  });

  it("fails with KMS's code and prints nothing for a secret that does not exist", async () => {
    // Act
    const failure = await fetchSecret("nowscale/hpc1/munge-key").catch((e: unknown) => e);

    // Assess
    expect(failure).toMatchObject({ code: 1, stdout: "" });
    expect((failure as { stderr: string }).stderr).toContain("Forbidden.ResourceNotFound");
  });

  it("runs as the master's boot script has it (secretStore alibaba-kms): the munge key through base64 -d, the agent's key as text", async () => {
    // Prepare
    const resources = new AlibabaClusterResources({
      regionId: "cn-hangzhou",
      credential: { accessKeyId: TEST_ACCESS_KEY_ID, accessKeySecret: TEST_ACCESS_KEY_SECRET },
      endpoints: { ecs: sim.endpoint, vpc: sim.endpoint, kms: sim.endpoint },
      protocol: "http",
    });
    const munge = await resources.createSecret("hpc1", "munge-key");
    const agent = await resources.createSecret("hpc1", "agent-hmac-key");
    const script = renderMasterBootstrapScript({
      clusterId: "hpc1",
      region: "cn-hangzhou",
      mungeKeySecretId: munge.secretId,
      agentKeySecretId: agent.secretId,
      queues: [{ name: "compute" }],
      secretStore: "alibaba-kms",
    });
    // The script's fetch function and its two calls, each without the pipe and redirection around it.
    const fetcher = script.split("\n").find((l) => l.startsWith("alibaba_secret() {")) ?? "";
    const lines = [...script.matchAll(/alibaba_secret '[^']+'/g)].map((m) => `${fetcher}\n${m[0]}`);
    const env = {
      ...process.env,
      NOWSCALE_ALIBABA_METADATA: metadataUrl,
      NOWSCALE_ALIBABA_KMS_ENDPOINT: `http://${sim.endpoint}`,
    };

    // Act
    const mungeOut = await run("bash", ["-c", `${lines[0]} | base64 -d | base64 -w0`], { env });
    const agentOut = await run("bash", ["-c", lines[1] ?? ""], { env });

    // Assess
    expect(lines).toHaveLength(2);
    expect(mungeOut.stdout).toBe(sim.world.secrets.get(munge.secretName)?.data);
    expect(agentOut.stdout).toBe(sim.world.secrets.get(agent.secretName)?.data);
    expect(sim.callsOf("GetSecretValue").map((c) => c.params.SecretName)).toEqual([
      "nowscale/hpc1/munge-key",
      "nowscale/hpc1/agent-hmac-key",
    ]);
    // No AWS CLI, and the metadata service kept from jobs at Alibaba's address.
    expect(script).not.toContain("awscli");
    expect(script).not.toContain("aws secretsmanager");
    expect(script).toContain("-d 100.100.100.200/32");
    expect(script.split("ALIBABA_METADATA")).toHaveLength(2);
  });
});
