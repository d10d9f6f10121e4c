import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ValidationError } from "../../../lib/core/validation.js";
import { type BootstrapOptions, renderBootstrapScript } from "../../../scheduler-plugins/slurm/bootstrap.js";

const BASE: BootstrapOptions = {
  clusterId: "demo",
  identityFrom: "aws-imds",
  queue: "compute",
  instanceType: "c5.xlarge",
  zone: "us-east-1a",
  cpus: 4,
  realMemoryMiB: 7000,
  controllerAddress: "10.0.0.5",
  mungeKey: { source: "aws-secretsmanager", secretId: "nowscale/demo/munge", region: "us-east-1" },
};

/**
 * Runs the script's identity part (everything before package installation) with a fake `curl` that
 * answers like the metadata service, and prints NODE_NAME and NODE_CONF.
 */
function identityOf(script: string, answers: Record<string, string>): { status: number | null; out: string } {
  const dir = mkdtempSync(join(tmpdir(), "nowscale-identity-"));
  const cases = Object.entries(answers)
    .map(([path, value]) => `  *${path}) printf '%s' '${value.replace(/'/g, "'\\''")}' ;;`)
    .join("\n");
  writeFileSync(
    join(dir, "curl"),
    `#!/bin/bash\nurl="\${@: -1}"\ncase "$url" in\n  *api/token) printf tok ;;\n${cases}\n  *) exit 22 ;;\nesac\n`,
  );
  chmodSync(join(dir, "curl"), 0o755);
  const head = script
    .slice(0, script.indexOf('if [ -f "$PREINSTALLED_MARKER" ]'))
    .replace(/^exec > .*$/m, "");
  const file = join(dir, "identity.sh");
  writeFileSync(file, `${head}\necho "$NODE_NAME|$NODE_CONF"\n`);
  const run = spawnSync("bash", [file], { env: { PATH: `${dir}:/usr/bin:/bin` }, encoding: "utf8" });
  return { status: run.status, out: run.stdout.trim() };
}

describe("renderBootstrapScript with identityFrom", () => {
  it("names the node after its instance id and takes type and zone from the metadata service", () => {
    // Act
    const { status, out } = identityOf(renderBootstrapScript(BASE), {
      "meta-data/instance-id": "i-0abc123",
      "meta-data/instance-type": "c5a.xlarge",
      "placement/availability-zone": "us-east-1b",
    });
    // Assess
    expect(status).toBe(0);
    expect(out).toBe("i-0abc123|CPUs=4 RealMemory=7000 Feature=q_compute,type_c5a.xlarge,zone_us-east-1b");
  });

  it("refuses a metadata answer outside the allow-lists", () => {
    // Act
    const { status, out } = identityOf(renderBootstrapScript(BASE), {
      "meta-data/instance-id": "i-1; reboot",
      "meta-data/instance-type": "c5.xlarge",
      "placement/availability-zone": "us-east-1a",
    });
    // Assess
    expect(status).toBe(1);
    expect(out).not.toContain("reboot|");
  });

  it("reads Tencent's metadata paths and adds GPUs", () => {
    const { status, out } = identityOf(
      renderBootstrapScript({ ...BASE, identityFrom: "tencent-metadata", gpus: 2 }),
      {
        "meta-data/instance-id": "ins-1a2b",
        "instance/instance-type": "GN7.2XLARGE32",
        "placement/zone": "ap-guangzhou-3",
      },
    );
    expect(status).toBe(0);
    expect(out).toBe(
      "ins-1a2b|CPUs=4 RealMemory=7000 Feature=q_compute,type_GN7.2XLARGE32,zone_ap-guangzhou-3 Gres=gpu:2",
    );
  });

  it("adds the queue's own features after zone, so jobs' -C can name them (issue 12, class 3)", () => {
    const { status, out } = identityOf(
      renderBootstrapScript({
        ...BASE,
        identityFrom: "tencent-metadata",
        gpus: 1,
        features: ["ib", "avx512"],
      }),
      {
        "meta-data/instance-id": "ins-1a2b",
        "instance/instance-type": "GN7.2XLARGE32",
        "placement/zone": "ap-guangzhou-3",
      },
    );
    expect(status).toBe(0);
    expect(out).toBe(
      "ins-1a2b|CPUs=4 RealMemory=7000 Feature=q_compute,type_GN7.2XLARGE32,zone_ap-guangzhou-3,ib,avx512 Gres=gpu:1",
    );
  });

  it("wants exactly one of nodeName and identityFrom", () => {
    expect(() => renderBootstrapScript({ ...BASE, nodeName: "n1" })).toThrow(ValidationError);
    const { identityFrom: _i, ...neither } = BASE;
    expect(() => renderBootstrapScript(neither)).toThrow(/exactly one of nodeName and identityFrom/);
  });
});
