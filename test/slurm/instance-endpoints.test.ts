import { mkdir, mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootInstance } from "../../lib/providers/local/instance-boot.js";
import {
  type InstanceEndpoints,
  type InstanceIdentity,
  serveInstanceEndpoints,
} from "../../lib/providers/local/instance-endpoints/index.js";
import { killNamespaceProcesses } from "../../lib/providers/local/netns.js";
import { runCommand } from "../../scheduler-plugins/slurm/exec.js";

/**
 * The instance endpoints (lib/providers/local/instance-endpoints) as a boot script meets them: run inside a
 * namespace instance (lib/providers/local/instance-boot.ts) with the real curl and Debian's AWS CLI, the
 * metadata service's session rules hold and the secret and object come back through the calls the
 * scripts make. Needs root; run under `flock /work/notes/slurm.lock`.
 */
const PREFIX = "nsie-";
const KEY = Buffer.from("a munge key stand-in \u0000\u00ff with binary bytes");

async function withInstance(
  name: string,
  identity: Omit<InstanceIdentity, "instanceId" | "privateIp">,
  script: string,
): Promise<{ console: string; code: number | null; endpoints: InstanceEndpoints; netns: string }> {
  const netns = `${PREFIX}${name}`;
  const dir = await mkdtemp(join(tmpdir(), "nowscale-endpoints-"));
  await mkdir(join(dir, "endpoints"));
  await runCommand("ip", ["netns", "add", netns]);
  const endpoints = await serveInstanceEndpoints(
    netns,
    { ...identity, instanceId: name, privateIp: "10.9.8.7" },
    [
      { name: "nowscale/munge", binary: KEY },
      { name: "plain", text: "s3cr3t-text" },
    ],
    [{ bucket: "nowscale-artifacts", key: "agent/nowscale-agent.js", body: Buffer.from("console.log(1)\n") }],
    { dir: join(dir, "endpoints") },
  );
  const consoleLog = join(dir, "console.log");
  try {
    const boot = await bootInstance({
      netns,
      dir,
      consoleLog,
      userData: `#!/bin/bash\nset -euo pipefail\n${script}`,
      hostsFile: endpoints.hostsFile,
      hostname: name,
      env: endpoints.env,
    });
    const result = await boot.done;
    return { console: await readFile(consoleLog, "utf8"), code: result.code, endpoints, netns };
  } finally {
    await killNamespaceProcesses(netns, 1000);
    await endpoints.close();
    await runCommand("ip", ["netns", "del", netns]);
  }
}

describe("instance endpoints inside a namespace instance", () => {
  beforeAll(async () => {
    if (process.getuid?.() !== 0) throw new Error("needs root (network namespaces)");
    for (const ns of (await runCommand("ip", ["netns", "list"])).stdout.split("\n"))
      if (ns.startsWith(PREFIX)) await runCommand("ip", ["netns", "del", ns.split(" ")[0] ?? ""]);
  });
  afterAll(async () => undefined);

  it("AWS: IMDSv2 only with a token, Secrets Manager and S3 through the AWS CLI", async () => {
    // Prepare
    const script = `
M=http://169.254.169.254/latest
echo "no-token: $(curl -s -o /dev/null -w '%{http_code}' $M/meta-data/instance-id)"
echo "forwarded: $(curl -s -o /dev/null -w '%{http_code}' -X PUT $M/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' -H 'X-Forwarded-For: 10.0.0.9')"
T=$(curl -sf -X PUT $M/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 60')
for p in instance-id instance-type placement/availability-zone placement/region local-ipv4; do
  echo "md $p=$(curl -sf -H "X-aws-ec2-metadata-token: $T" $M/meta-data/$p)"
done
echo "binary=$(aws secretsmanager get-secret-value --secret-id nowscale/munge --region eu-west-3 --query SecretBinary --output text)"
echo "text=$(aws secretsmanager get-secret-value --secret-id plain --region eu-west-3 --query SecretString --output text)"
aws s3 cp s3://nowscale-artifacts/agent/nowscale-agent.js /tmp/agent.js --region eu-west-3 --only-show-errors
echo "object=$(cat /tmp/agent.js)"
aws secretsmanager get-secret-value --secret-id missing --region eu-west-3 >/dev/null 2>&1 || echo "missing refused"
echo "ttl-rule: $(iptables -t mangle -S OUTPUT | grep -c -- '--ttl-set 1')"
# The hop limit: the token answers left with TTL 1 (the rule's counter counts them).
echo "ttl-hits: $(iptables -t mangle -L OUTPUT -v -n -x | awk '/TTL set to 1/ {print $1}')"
`;

    // Act
    const r = await withInstance(
      "aws1",
      { cloud: "aws", instanceType: "m6i.large", zone: "eu-west-3a", region: "eu-west-3" },
      script,
    );

    // Assess
    expect(r.code, r.console).toBe(0);
    expect(r.console).toContain("no-token: 401");
    expect(r.console).toContain("forwarded: 403");
    expect(r.console).toContain("md instance-id=aws1");
    expect(r.console).toContain("md instance-type=m6i.large");
    expect(r.console).toContain("md placement/availability-zone=eu-west-3a");
    expect(r.console).toContain("md placement/region=eu-west-3");
    expect(r.console).toContain("md local-ipv4=10.9.8.7");
    expect(r.console).toContain(`binary=${KEY.toString("base64")}`);
    expect(r.console).toContain("text=s3cr3t-text");
    expect(r.console).toContain("object=console.log(1)");
    expect(r.console).toContain("missing refused");
    expect(r.console).toContain("ttl-rule: 1");
    expect(r.console).toMatch(/ttl-hits: [1-9]\d*/);
    // The CLI took the role's credentials from the metadata service (token first), then called the APIs.
    expect(r.endpoints.requests).toContain("PUT 169.254.169.254 /latest/api/token");
    expect(r.endpoints.requests.some((q) => q.includes("/latest/meta-data/iam/security-credentials/"))).toBe(
      true,
    );
    expect(r.endpoints.requests).toContain("POST secretsmanager.eu-west-3.amazonaws.com /");
    // Nothing of it on the host: the address lives on the namespace's loopback only.
    const hostAddrs = await runCommand("ip", ["-o", "addr"]);
    expect(hostAddrs.stdout).not.toContain("169.254.169.254");
  }, 120_000);

  it("Tencent and Alibaba: their metadata services as their scripts read them", async () => {
    // Prepare
    const tencent = `
for p in instance-id instance/instance-type placement/zone placement/region; do
  echo "md $p=$(curl -sf http://metadata.tencentyun.com/latest/meta-data/$p)"
done`;
    const alibaba = `
M=http://100.100.100.200/latest
echo "no-token: $(curl -s -o /dev/null -w '%{http_code}' $M/meta-data/instance-id)"
T=$(curl -sf -X PUT $M/api/token -H 'X-aliyun-ecs-metadata-token-ttl-seconds: 60')
for p in instance-id instance/instance-type zone-id region-id; do
  echo "md $p=$(curl -sf -H "X-aliyun-ecs-metadata-token: $T" $M/meta-data/$p)"
done`;

    // Act
    const t = await withInstance(
      "tc1",
      { cloud: "tencent", instanceType: "S5.MEDIUM4", zone: "ap-guangzhou-3", region: "ap-guangzhou" },
      tencent,
    );
    const a = await withInstance(
      "ali1",
      { cloud: "alibaba", instanceType: "ecs.g7.large", zone: "cn-hangzhou-h", region: "cn-hangzhou" },
      alibaba,
    );

    // Assess
    expect(t.code, t.console).toBe(0);
    expect(t.console).toContain("md instance-id=tc1");
    expect(t.console).toContain("md instance/instance-type=S5.MEDIUM4");
    expect(t.console).toContain("md placement/zone=ap-guangzhou-3");
    expect(t.console).toContain("md placement/region=ap-guangzhou");
    expect(a.code, a.console).toBe(0);
    expect(a.console).toContain("no-token: 403");
    expect(a.console).toContain("md instance-id=ali1");
    expect(a.console).toContain("md instance/instance-type=ecs.g7.large");
    expect(a.console).toContain("md zone-id=cn-hangzhou-h");
    expect(a.console).toContain("md region-id=cn-hangzhou");
  }, 120_000);
});
