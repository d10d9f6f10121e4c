import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it, vi } from "vitest";
import { AlibabaUserSecrets } from "../../../lib/providers/alibaba-ecs/user-secrets.js";
import { FakeClock, FakeCloud } from "../../../lib/providers/fake/index.js";
import { metadataHandler } from "../../../lib/providers/local/instance-endpoints/metadata.js";
import { TencentUserSecrets } from "../../../lib/providers/tencent-cvm/user-secrets.js";
import { type CommandRunner, runCommand } from "../../../scheduler-plugins/slurm/exec.js";
import { readUserSecret } from "../../../scheduler-plugins/slurm/users-apply.js";
import {
  startEcsSimulator,
  TEST_ACCESS_KEY_ID,
  TEST_ACCESS_KEY_SECRET,
} from "../providers/simulators/alibaba-ecs.js";
import { startCvmSimulator, TEST_SECRET_ID, TEST_SECRET_KEY } from "../providers/simulators/tencent-cvm.js";

/**
 * The master's agent reading a user's secret on Tencent and Alibaba (users-apply.ts readUserSecret): the
 * secret written by the control plane's store (TencentUserSecrets, AlibabaUserSecrets) into the loopback
 * SSM / KMS, read back by the boot script's own fetcher with the instance role's key from the metadata
 * emulator, the signature checked by the simulator against that key. The value is never in a command's
 * arguments.
 */

const PASSWORD = "s3cret-Password-42";
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  vi.unstubAllEnvs();
  for (const close of closers.splice(0)) await close();
});

async function metadataFor(identity: Parameters<typeof metadataHandler>[0], key: string, secret: string) {
  const requests: string[] = [];
  const server: Server = createServer(
    metadataHandler(identity, { accessKeyId: key, secret, token: "role-token" }, requests),
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  closers.push(async () => {
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

/** runCommand, recording each command's arguments. */
function recordingRunner(): { run: CommandRunner; argv: string[][] } {
  const argv: string[][] = [];
  return {
    argv,
    run: (file, args, options) => {
      argv.push([file, ...args]);
      return runCommand(file, args, options);
    },
  };
}

describe("readUserSecret on the master", () => {
  it("Tencent: reads tencent-ssm:<region>:<name> from SSM with the CVM role's key", async () => {
    // Prepare
    const sim = await startCvmSimulator(new FakeCloud({ idPrefix: "ins-", clock: new FakeClock() }));
    closers.push(() => sim.close());
    const meta = await metadataFor(
      {
        cloud: "tencent",
        instanceId: "ins-master",
        instanceType: "S5.LARGE8",
        zone: "ap-guangzhou-3",
        region: "ap-guangzhou",
        privateIp: "10.42.0.5",
      },
      TEST_SECRET_ID,
      TEST_SECRET_KEY,
    );
    const store = new TencentUserSecrets({
      region: "ap-guangzhou",
      credential: { secretId: TEST_SECRET_ID, secretKey: TEST_SECRET_KEY },
      endpoint: sim.endpoint,
      protocol: "http://",
    });
    const id = await store.put("hpc1", "alice", { password: PASSWORD }, { vpcId: "vpc-1" });
    vi.stubEnv("NOWSCALE_TENCENT_METADATA", meta.url);
    vi.stubEnv("NOWSCALE_TENCENT_SSM_ENDPOINT", `http://${sim.endpoint}`);
    const runner = recordingRunner();

    // Act
    const value = await readUserSecret(id, runner.run);
    const missing = await readUserSecret(
      "tencent-ssm:ap-guangzhou:nowscale-hpc1-users-bob",
      runner.run,
    ).catch((e: unknown) => e as Error);

    // Assess
    expect(id).toBe("tencent-ssm:ap-guangzhou:nowscale-hpc1-users-alice");
    expect(JSON.parse(value)).toEqual({ password: PASSWORD });
    const [get] = sim.callsOf("GetSecretValue");
    expect(get?.params).toMatchObject({ SecretName: "nowscale-hpc1-users-alice", VersionId: "v1" });
    expect(get?.request.headers["x-tc-token"]).toBe("role-token");
    expect(get?.request.headers["x-tc-region"]).toBe("ap-guangzhou");
    expect(meta.requests.some((r) => r.includes("/cam/security-credentials/"))).toBe(true);
    expect((missing as Error).message).toMatch(/^tencent-ssm GetSecretValue failed: .*SecretNotExist/);
    expect(JSON.stringify(runner.argv)).not.toContain(PASSWORD);
    expect(JSON.stringify(runner.argv)).not.toContain("nowscale-hpc1-users-alice");
  });

  it("Alibaba: reads alibaba-kms:<region>:<name> from KMS with the RAM role's STS key (hardened metadata)", async () => {
    // Prepare
    const sim = await startEcsSimulator(new FakeCloud({ idPrefix: "i-bp", clock: new FakeClock() }));
    closers.push(() => sim.close());
    const meta = await metadataFor(
      {
        cloud: "alibaba",
        instanceId: "i-bpmaster",
        instanceType: "ecs.c7.xlarge",
        zone: "cn-hangzhou-h",
        region: "cn-hangzhou",
        privateIp: "10.42.0.5",
      },
      TEST_ACCESS_KEY_ID,
      TEST_ACCESS_KEY_SECRET,
    );
    const store = new AlibabaUserSecrets({
      regionId: "cn-hangzhou",
      credential: { accessKeyId: TEST_ACCESS_KEY_ID, accessKeySecret: TEST_ACCESS_KEY_SECRET },
      endpoints: { kms: sim.endpoint },
      protocol: "http",
    });
    const id = await store.put("hpc1", "alice", { password: PASSWORD });
    // A second put merges into a new current version: the agent reads that one.
    await store.put("hpc1", "alice", {
      sshKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKt0Q2cXw1b1oQeSg7e2oU1v5w4eXQ8oYb2v1Y1kP5Wm a@b",
    });
    vi.stubEnv("NOWSCALE_ALIBABA_METADATA", meta.url);
    vi.stubEnv("NOWSCALE_ALIBABA_KMS_ENDPOINT", `http://${sim.endpoint}`);
    const runner = recordingRunner();

    // Act
    const value = await readUserSecret(id, runner.run);
    const missing = await readUserSecret("alibaba-kms:cn-hangzhou:nowscale/hpc1/users/bob", runner.run).catch(
      (e: unknown) => e as Error,
    );

    // Assess
    expect(id).toBe("alibaba-kms:cn-hangzhou:nowscale/hpc1/users/alice");
    expect(JSON.parse(value)).toMatchObject({
      password: PASSWORD,
      sshKey: expect.stringMatching(/^ssh-ed25519 /),
    });
    const gets = sim.callsOf("GetSecretValue");
    expect(gets.at(-1)?.request.headers["x-acs-security-token"]).toBe("role-token");
    expect(sim.callsOf("PutSecretValue")).toHaveLength(1);
    expect(meta.requests[0]).toMatch(/^PUT \S* ?\/latest\/api\/token/);
    expect((missing as Error).message).toMatch(/^alibaba-kms GetSecretValue failed: .*ResourceNotFound/);
    expect(JSON.stringify(runner.argv)).not.toContain(PASSWORD);
  });
});
