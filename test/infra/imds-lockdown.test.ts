import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { renderBootstrapScript } from "../../scheduler-plugins/slurm/bootstrap.js";
import { IMDS_RULE, imdsLockdownLines } from "../../scheduler-plugins/slurm/imds.js";
import { renderMasterBootstrapScript } from "../../scheduler-plugins/slurm/master-bootstrap.js";

/**
 * The metadata service, and so the node role's credentials, for root only: the boot scripts' own lines
 * run in a fresh network namespace (real netfilter, iptables) with a stand-in metadata service on
 * 169.254.169.254; root reads it, any other user (a Slurm job's) is refused. Needs root, iptables and
 * unshare, as CI has (.ci/run installs iptables).
 */

const master = renderMasterBootstrapScript({
  clusterId: "c1",
  region: "us-east-1",
  mungeKeySecretId: "nowscale/c1/munge-key",
  agentKeySecretId: "nowscale/c1/agent-hmac-key",
  queues: [{ name: "q" }],
});
const compute = renderBootstrapScript({
  clusterId: "c1",
  identityFrom: "aws-imds",
  queue: "q",
  instanceType: "c5.xlarge",
  zone: "us-east-1a",
  cpus: 4,
  realMemoryMiB: 7000,
  controllerAddress: "10.42.0.5",
  mungeKey: { source: "aws-secretsmanager", secretId: "nowscale/c1/munge-key", region: "us-east-1" },
});

describe("the metadata service on cluster nodes", () => {
  it.each([
    ["master", master, "slurmctld"],
    ["compute", compute, "slurmd -Z"],
  ])(
    "THEN the %s boot script locks it down before it fetches secrets or starts Slurm",
    (_kind, script, slurm) => {
      // Assess
      const at = script.indexOf(imdsLockdownLines());
      expect(at).toBeGreaterThan(0);
      expect(at).toBeLessThan(script.indexOf("fetching the munge key"));
      expect(at).toBeLessThan(script.lastIndexOf(slurm));
    },
  );

  it("THEN, in a network namespace, root reads it and any other user is refused, and the rule is added once and kept for reboots", () => {
    // Prepare: the lines with /etc/systemd/system moved to a scratch directory and systemctl recorded
    const dir = mkdtempSync(join(tmpdir(), "nowscale-imds-"));
    const bin = join(dir, "bin");
    spawnSync("mkdir", ["-p", bin, join(dir, "units")]);
    writeFileSync(join(bin, "systemctl"), `#!/bin/sh\necho "$*" >> '${dir}/systemctl'\n`);
    chmodSync(join(bin, "systemctl"), 0o755);
    const lines = imdsLockdownLines().replaceAll("/etc/systemd/system", join(dir, "units"));
    const read = (user: string) =>
      `${user}node -e "fetch('http://169.254.169.254/latest/meta-data/iam/security-credentials/', { signal: AbortSignal.timeout(2000) }).then(r => r.text()).then(t => console.log('read:' + t), () => console.log('refused'))"`;
    const script = `set -euo pipefail
log() { echo "log: $*"; }
ip link set lo up
ip addr add 169.254.169.254/32 dev lo
node -e "require('http').createServer((q, s) => s.end('node-role')).listen(80, '169.254.169.254')" &
sleep 0.5
${lines}
${lines}
echo "rules: $(iptables -S OUTPUT | grep -c 169.254.169.254)"
${read("")}
${read("setpriv --reuid 65534 --regid 65534 --clear-groups ")}
kill %1`;

    // Act
    const run = spawnSync("unshare", ["--net", "bash", "-c", script], {
      encoding: "utf8",
      timeout: 60_000,
      env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}` },
    });

    // Assess
    expect(run.status, run.stderr).toBe(0);
    const out = run.stdout.split("\n");
    expect(out).toContain("rules: 1");
    expect(out).toContain("read:node-role");
    expect(out).toContain("refused");
    const unit = readFileSync(join(dir, "units/nowscale-imds-lockdown.service"), "utf8");
    expect(unit).toContain(IMDS_RULE);
    expect(readFileSync(join(dir, "systemctl"), "utf8")).toContain("enable nowscale-imds-lockdown.service");
  }, 90_000);
});
