import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ValidationError } from "../../../lib/core/validation.js";
import { type BootstrapOptions, renderBootstrapScript } from "../../../scheduler-plugins/slurm/bootstrap.js";
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
