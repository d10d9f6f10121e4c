import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ValidationError } from "../../../lib/core/validation.js";
import { type BootstrapOptions, renderBootstrapScript } from "../../../scheduler-plugins/slurm/bootstrap.js";
import { renderMasterBootstrapScript } from "../../../scheduler-plugins/slurm/master-bootstrap.js";
import { shellQuote } from "../../../scheduler-plugins/slurm/shell.js";
import { renderSlurmConfParts } from "../../../scheduler-plugins/slurm/slurm-conf.js";

const BASE: BootstrapOptions = {
  clusterId: "hpc-8hje8h12",
  nodeName: "compute-c5-xlarge-0001",
  queue: "compute",
  instanceType: "c5.xlarge",
  zone: "ap-guangzhou-3",
  cpus: 4,
  realMemoryMiB: 7500,
  controllerAddress: "10.0.0.5",
  mungeKey: { source: "aws-secretsmanager", secretId: "nowscale/hpc-8hje8h12/munge", region: "us-east-1" },
  storage: [
    { protocol: "NFS 3.0", remotePath: "172.30.2.143:/qxt67552/subfolder", localPath: "/data" },
    { protocol: "NFS 4.0", remotePath: "172.30.2.143:/subfolder", localPath: "/home/shared" },
    { protocol: "TURBO", remotePath: "172.30.2.180@tcp0:/4fe1839b/cfs", localPath: "/turbo" },
  ],
  initScripts: [{ url: "https://bucket.example.com/init.sh" }, { url: "s3://bucket/init2.sh", timeoutS: 60 }],
};

/** Shell metacharacters and whitespace: never valid in a path, URL or address. */
const SHELL_HOSTILE = ["a;rm -rf /", "$(id)", "`id`", "a\nb", "a'b", 'a"b', "a b", "a|b", "a&&b", "a>b"];
/** Names also refuse a leading '-', '..', the empty string and excessive length. */
const HOSTILE = [...SHELL_HOSTILE, "-rf", "../etc", "", "x".repeat(200)];

function bashSyntaxOk(script: string): boolean {
  const file = join(mkdtempSync(join(tmpdir(), "nowscale-bootstrap-")), "user-data.sh");
  writeFileSync(file, script);
  return spawnSync("bash", ["-n", file]).status === 0;
}

describe("renderBootstrapScript", () => {
  it("renders a script bash accepts, with every step in order", () => {
    // Act
    const script = renderBootstrapScript(BASE);
    // Assess
    expect(bashSyntaxOk(script)).toBe(true);
    const steps = [
      'PREINSTALLED_MARKER" ]',
      "secretsmanager",
      "mount '-t' 'nfs'",
      "init script 0",
      "slurmd -Z",
    ].map((s) => script.indexOf(s));
    expect(steps.every((i) => i > 0)).toBe(true);
    expect([...steps].sort((a, b) => a - b)).toEqual(steps);
  });

  it("starts slurmd -Z with the queue, type and zone features and fetches slurm.conf from the controller", () => {
    const script = renderBootstrapScript(BASE);
    expect(script).toContain(
      "readonly NODE_CONF='CPUs=4 RealMemory=7500 Feature=q_compute,type_c5.xlarge,zone_ap-guangzhou-3'",
    );
    expect(script).toContain("readonly CONF_SERVER='10.0.0.5:6817'");
    expect(script).toContain('-Z -N "$NODE_NAME" --conf-server "$CONF_SERVER" --conf "$NODE_CONF"');
  });

  it("gives systemd a slurmd drop-in that clears Debian's slurm.conf condition, as systemd itself reads it", () => {
    // Prepare: Debian's own unit (slurm-wlm) and systemd's own parser; the drop-in as the script writes it
    const unit = "/lib/systemd/system/slurmd.service";
    const analyze = spawnSync("systemd-analyze", ["--version"]);
    if (analyze.status !== 0 || !existsSync(unit)) {
      console.log(`skipped: needs systemd-analyze and ${unit} (slurm-wlm); CI installs both`);
      return;
    }
    const dropIn = /nowscale\.conf <<UNIT\n([\s\S]*?)\nUNIT/.exec(renderBootstrapScript(BASE))?.[1] ?? "";
    const dir = mkdtempSync(join(tmpdir(), "nowscale-unit-"));
    copyFileSync(unit, join(dir, "slurmd.service"));
    mkdirSync(join(dir, "slurmd.service.d"));
    writeFileSync(join(dir, "slurmd.service.d", "nowscale.conf"), `${dropIn.replaceAll("$", "")}\n`);
    // Act
    const verify = spawnSync("systemd-analyze", ["verify", join(dir, "slurmd.service")], {
      encoding: "utf8",
      env: { ...process.env, SYSTEMD_UNIT_PATH: `${dir}:` },
    });
    // Assess: no key systemd ignores, and the condition is emptied in the section that holds it
    expect(`${verify.stdout}${verify.stderr}`).not.toMatch(/Unknown key|Unknown section/);
    expect(readFileSync(unit, "utf8")).toMatch(/\[Unit\][^[]*ConditionPathExists=\/etc\/slurm\/slurm\.conf/);
    expect(dropIn).toMatch(/\[Unit\]\nConditionPathExists=\n\[Service\]/);
  });

  it("adds the queue's own features, and refuses one that is not a plain feature name", () => {
    const script = renderBootstrapScript({ ...BASE, features: ["ib"] });
    expect(script).toContain("Feature=q_compute,type_c5.xlarge,zone_ap-guangzhou-3,ib'");
    expect(() => renderBootstrapScript({ ...BASE, features: ["ib,q_other"] })).toThrow(ValidationError);
  });

  it("sets the init scripts' environment and skips installation on a pre-installed image", () => {
    const script = renderBootstrapScript(BASE);
    expect(script).toContain("export NOWSCALE_NODE_ROLE NOWSCALE_CLUSTER_ID NOWSCALE_SCHEDULER_TYPE");
    expect(script).toContain("readonly NOWSCALE_CLUSTER_ID='hpc-8hje8h12'");
    expect(script).toContain("readonly NOWSCALE_SCHEDULER_TYPE=SLURM");
    expect(script).toMatch(
      /if \[ -f "\$PREINSTALLED_MARKER" \]; then\n\s+log "pre-installed image: skipping package installation"/,
    );
  });

  it("mounts NFS 3, NFS 4 and Lustre with their options, creating LocalPath", () => {
    const script = renderBootstrapScript(BASE);
    expect(script).toContain("mkdir -p '/data'");
    expect(script).toContain(
      "mount '-t' 'nfs' '-o' 'vers=3,nolock,proto=tcp,noresvport' '172.30.2.143:/qxt67552/subfolder' '/data'",
    );
    expect(script).toContain(
      "mount '-t' 'nfs' '-o' 'vers=4.0,noresvport' '172.30.2.143:/subfolder' '/home/shared'",
    );
    expect(script).toContain("mount '-t' 'lustre' '172.30.2.180@tcp0:/4fe1839b/cfs' '/turbo'");
  });

  it("installs for Debian/Ubuntu and the RHEL family including openEuler", () => {
    const script = renderBootstrapScript(BASE);
    expect(script).toContain("apt-get install -y -q slurmd munge");
    expect(script).toContain('"$pm" install -y slurm-slurmd munge');
    expect(script).toContain('*" openEuler "*');
  });

  it("never carries the munge key: it is fetched by a command", () => {
    const script = renderBootstrapScript({
      ...BASE,
      mungeKey: { source: "command", argv: ["fetch-key", "--id", "$(id)"] },
    });
    expect(script).toContain("'fetch-key' '--id' '$(id)' | base64 -d > /etc/munge/munge.key.new");
    expect(bashSyntaxOk(script)).toBe(true);
  });

  it.each(["clusterId", "nodeName", "queue", "instanceType", "zone"] as const)(
    "rejects hostile values of %s",
    (field) => {
      for (const value of HOSTILE) {
        expect(() => renderBootstrapScript({ ...BASE, [field]: value }), JSON.stringify(value)).toThrow(
          ValidationError,
        );
      }
    },
  );

  it("rejects shell characters in storage paths, URLs and addresses, and '..' in a local path", () => {
    const render = (patch: Partial<BootstrapOptions>) => () => renderBootstrapScript({ ...BASE, ...patch });
    for (const value of SHELL_HOSTILE) {
      const remote = [{ protocol: "NFS 3.0" as const, remotePath: `1.2.3.4:/${value}`, localPath: "/data" }];
      expect(render({ storage: remote }), value).toThrow(ValidationError);
      expect(render({ controllerAddress: value }), value).toThrow(ValidationError);
      // '&' belongs in URL queries; the URL is single-quoted where the script uses it (next test).
      if (value !== "a&&b")
        expect(render({ initScripts: [{ url: `https://x/${value}` }] }), value).toThrow(ValidationError);
    }
    for (const value of [...SHELL_HOSTILE, "..", "a/../../etc"]) {
      const local = [{ protocol: "NFS 4.0" as const, remotePath: "1.2.3.4:/x", localPath: `/${value}` }];
      expect(render({ storage: local }), value).toThrow(ValidationError);
    }
  });

  it("single-quotes an init script URL with a query string", () => {
    const script = renderBootstrapScript({ ...BASE, initScripts: [{ url: "https://x/init.sh?a=1&&b=2" }] });
    expect(script).toContain("-o /var/lib/nowscale/init-0 'https://x/init.sh?a=1&&b=2'");
    expect(bashSyntaxOk(script)).toBe(true);
  });

  it("rejects a munge key command with a newline", () => {
    expect(() =>
      renderBootstrapScript({ ...BASE, mungeKey: { source: "command", argv: ["a\nrm -rf /"] } }),
    ).toThrow(ValidationError);
  });
});

describe("shellQuote", () => {
  it("gives bash exactly the value back, whatever it holds", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom(..."a'\"`$()\\;|&\n *?{}[]!#~<>-".split("")) }),
        (value) => {
          const out = execFileSync("bash", ["-c", `printf %s ${shellQuote(value)}`], { encoding: "utf8" });
          return out === value;
        },
      ),
      { numRuns: 60 },
    );
  });

  it("refuses NUL", () => {
    expect(() => shellQuote("a\0b")).toThrow(TypeError);
  });
});

describe("renderSlurmConfParts", () => {
  it("builds one partition per queue on a NodeSet of the queue's feature, with the dynamic-node settings", () => {
    // Act
    const conf = renderSlurmConfParts({
      queues: [{ name: "compute" }, { name: "gpu", defMemPerCpuMiB: 1000 }],
      maxNodeCount: 500,
    });
    // Assess
    expect(conf).toContain("MaxNodeCount=500\n");
    expect(conf).toContain("SlurmctldParameters=enable_configless\n");
    expect(conf).toContain(
      "NodeSet=ns_compute Feature=q_compute\nPartitionName=compute Nodes=ns_compute Default=YES",
    );
    expect(conf).toContain(
      "NodeSet=ns_gpu Feature=q_gpu\nPartitionName=gpu Nodes=ns_gpu Default=NO State=UP MaxTime=INFINITE DefMemPerCPU=1000",
    );
  });

  it("rejects hostile queue names, duplicates and bad numbers", () => {
    for (const name of HOSTILE)
      expect(() => renderSlurmConfParts({ queues: [{ name }] }), name).toThrow(TypeError);
    expect(() => renderSlurmConfParts({ queues: [{ name: "a" }, { name: "a" }] })).toThrow(/twice/);
    expect(() => renderSlurmConfParts({ queues: [{ name: "a" }], maxNodeCount: 0 })).toThrow(TypeError);
    expect(() => renderSlurmConfParts({ queues: [] })).toThrow(TypeError);
  });
});

describe("the compute node's gres.conf (issue 12: GPU nodes bind jobs to their GPUs)", () => {
  /**
   * Runs the rendered script's own write_node_gres on a sandbox: device files in a directory, Slurm's
   * plugin directory, and an ldconfig that lists libnvidia-ml or not.
   */
  function runGres(
    script: string,
    setup: { devices: number; nvmlLib: boolean; nvmlPlugin: boolean; detect?: string },
  ): { status: number | null; gres: string | undefined; stderr: string } {
    const fn = /write_node_gres\(\) \{[\s\S]*?\n\}\n/.exec(script)?.[0];
    const call = /\nwrite_node_gres (\d+) '([^']+)' (\w+) (\d+)\n/.exec(script);
    if (fn === undefined || call === null) throw new Error("no write_node_gres in the script");
    const dir = mkdtempSync(join(tmpdir(), "nowscale-gres-"));
    const [dev, plugins, bin] = ["dev", "plugins", "bin"].map((d) => join(dir, d)) as [
      string,
      string,
      string,
    ];
    for (const d of [dev, plugins, bin]) execFileSync("mkdir", ["-p", d]);
    for (let i = 0; i < setup.devices; i++) writeFileSync(join(dev, `nvidia${i}`), "");
    if (setup.nvmlPlugin) writeFileSync(join(plugins, "gpu_nvml.so"), "");
    const listing = setup.nvmlLib ? "\tlibnvidia-ml.so.1 (libc6,x86-64) => /usr/lib/libnvidia-ml.so.1" : "";
    writeFileSync(join(bin, "ldconfig"), `#!/bin/sh\necho '${listing}'\n`, { mode: 0o755 });
    const out = join(dir, "etc", "nowscale-node-gres.conf");
    const program = `set -euo pipefail
log() { echo "$*" >&2; }
NODE_NAME=i-0abc
${fn}
write_node_gres ${call[1]} ${shellQuote(out)} ${setup.detect ?? call[3]} 0`;
    const result = spawnSync("bash", ["-c", program], {
      env: { PATH: `${bin}:${process.env.PATH}`, GPU_DEV_DIR: dev, SLURM_PLUGIN_DIRS: plugins },
      encoding: "utf8",
    });
    let gres: string | undefined;
    try {
      gres = execFileSync("cat", [out], { encoding: "utf8" }).replaceAll(dev, "/dev");
    } catch {
      gres = undefined;
    }
    return { status: result.status, gres, stderr: result.stderr };
  }

  const TYPES = [
    { type: "c5.xlarge", gpus: 0 },
    { type: "g4dn.xlarge", gpus: 1 },
    { type: "g4dn.12xlarge", gpus: 4 },
    { type: "p3.16xlarge", gpus: 8 },
  ];

  it("per GPU type, without NVML: the device files beside Gres=gpu:N; a CPU type gets an empty file", () => {
    for (const { type, gpus } of TYPES) {
      // Prepare
      const script = renderBootstrapScript({ ...BASE, instanceType: type, gpus });
      if (gpus === 0) {
        // A CPU node's script writes the empty file itself, without the GPU function (user data size).
        expect(script).toContain(
          "\ninstall -d -m 0755 '/etc/slurm' && : > '/etc/slurm/nowscale-node-gres.conf'\n",
        );
        expect(script).not.toContain("write_node_gres");
        continue;
      }
      // Act
      const run = runGres(script, { devices: gpus, nvmlLib: false, nvmlPlugin: true });
      // Assess
      expect(bashSyntaxOk(script)).toBe(true);
      expect(run.status).toBe(0);
      expect(run.gres).toBe(
        gpus === 0
          ? ""
          : gpus === 1
            ? "NodeName=i-0abc Name=gpu File=/dev/nvidia0\n"
            : `NodeName=i-0abc Name=gpu File=/dev/nvidia[0-${gpus - 1}]\n`,
      );
      if (gpus > 0) expect(script).toContain(`Gres=gpu:${gpus}`);
    }
  });

  it("with NVML (libnvidia-ml and Slurm's gpu/nvml plugin): AutoDetect=nvml; the library alone is not enough", () => {
    const script = renderBootstrapScript({ ...BASE, instanceType: "p3.16xlarge", gpus: 8 });
    expect(runGres(script, { devices: 8, nvmlLib: true, nvmlPlugin: true }).gres).toBe(
      "NodeName=i-0abc AutoDetect=nvml\n",
    );
    expect(runGres(script, { devices: 8, nvmlLib: true, nvmlPlugin: false }).gres).toBe(
      "NodeName=i-0abc Name=gpu File=/dev/nvidia[0-7]\n",
    );
    expect(runGres(script, { devices: 0, nvmlLib: false, nvmlPlugin: false, detect: "nvml" }).gres).toBe(
      "NodeName=i-0abc AutoDetect=nvml\n",
    );
  });

  it("a GPU device that never appears fails the boot and writes no gres.conf", () => {
    const script = renderBootstrapScript({ ...BASE, instanceType: "g4dn.12xlarge", gpus: 4 });
    const run = runGres(script, { devices: 3, nvmlLib: false, nvmlPlugin: false });
    expect(run.status).toBe(1);
    expect(run.gres).toBeUndefined();
    expect(run.stderr).toContain("nvidia3 is missing");
  });

  it("is written before slurmd starts, for the node named from the metadata service too", () => {
    const script = renderBootstrapScript({ ...BASE, nodeName: undefined, identityFrom: "aws-imds", gpus: 4 });
    expect(bashSyntaxOk(script)).toBe(true);
    const write = script.indexOf("\nwrite_node_gres 4 '/etc/slurm/nowscale-node-gres.conf' auto 300\n");
    expect(write).toBeGreaterThan(script.indexOf("NODE_NAME=$(md "));
    expect(write).toBeLessThan(script.indexOf('log "starting slurmd -Z'));
  });

  it("the master's gres.conf includes each node's own file, and the master keeps an empty one", () => {
    const script = renderMasterBootstrapScript({
      clusterId: "hpc-1",
      region: "us-east-1",
      mungeKeySecretId: "nowscale/hpc-1/munge",
      agentKeySecretId: "nowscale/hpc-1/agent",
      queues: [{ name: "gpu" }],
      agentUrl: "s3://b/nowscale-agent.js",
    });
    expect(script).toContain(
      "cat > /etc/slurm/gres.conf <<'CONF'\nInclude /etc/slurm/nowscale-node-gres.conf\nCONF\n",
    );
    expect(script).toContain(
      "[ -e /etc/slurm/nowscale-node-gres.conf ] || : > /etc/slurm/nowscale-node-gres.conf",
    );
  });
});
