import { describe, expect, it } from "vitest";
import { ValidationError } from "../../../lib/core/validation.js";
import { renderBootstrapScript } from "../../../scheduler-plugins/slurm/bootstrap.js";
import {
  parseNodeStorage,
  readStorageLine,
  rewriteStorageLine,
  STORAGE_LINE_PREFIX,
} from "../../../scheduler-plugins/slurm/node-storage.js";

/**
 * slurm.conf's storage line (scheduler-plugins/slurm/node-storage.ts): written and read back, removed
 * when empty, everything else untouched; hostile entries refused before anything is written; and the
 * boot scripts that install the nodes' storage sync still fit the clouds' 16 KiB of user data.
 */

const CONF = "ClusterName=x\nSlurmctldHost=m\n# a person's comment\nPartitionName=compute Nodes=ALL\n";
const DATA = { protocol: "NFS 4.0" as const, remotePath: "10.0.0.9:/export", localPath: "/data" };

describe("slurm.conf's storage line", () => {
  it("writes, replaces and removes one line, leaving every other line as it was", () => {
    // Act
    const one = rewriteStorageLine(CONF, [DATA]);
    const two = rewriteStorageLine(one, [DATA, { ...DATA, localPath: "/scratch" }]);
    const none = rewriteStorageLine(two, []);

    // Assess
    expect(one.split("\n").filter((l) => l.startsWith(STORAGE_LINE_PREFIX))).toHaveLength(1);
    expect(one.replace(/^#nowscale-storage .*\n/m, "")).toBe(CONF);
    expect(readStorageLine(one)).toEqual([DATA]);
    expect(readStorageLine(two).map((s) => s.localPath)).toEqual(["/data", "/scratch"]);
    expect(none).toBe(CONF);
    expect(readStorageLine(CONF)).toEqual([]);
  });

  it("refuses entries the renderer's allow-lists refuse, naming the field", () => {
    for (const bad of [
      [{ ...DATA, localPath: "/data;reboot" }],
      [{ ...DATA, remotePath: "$(reboot):/x" }],
      [{ ...DATA, protocol: "SMB" }],
      [{ ...DATA, options: "rw" }],
    ]) {
      expect(() => parseNodeStorage({ storage: bad }), JSON.stringify(bad)).toThrow(ValidationError);
    }
  });

  it("keeps each cloud's compute boot script, storage sync included, under 16 KiB of base64 user data", () => {
    const base = {
      clusterId: "c-1",
      queue: "compute",
      instanceType: "t.x",
      zone: "z-a",
      cpus: 1,
      realMemoryMiB: 1024,
      controllerAddress: "10.0.0.1",
      storage: [DATA],
      initScripts: [{ url: "s3://bucket/init.sh" }],
    };
    const scripts = [
      renderBootstrapScript({
        ...base,
        identityFrom: "tencent-metadata",
        mungeKey: { source: "tencent-ssm", secretName: "munge", region: "ap-guangzhou" },
      }),
      renderBootstrapScript({
        ...base,
        identityFrom: "alibaba-metadata",
        mungeKey: { source: "alibaba-kms", secretName: "munge", region: "cn-hangzhou" },
      }),
    ];
    for (const script of scripts) {
      expect(script).toContain("/opt/nowscale/nowscale-storage-sync");
      expect(Buffer.from(script).toString("base64").length).toBeLessThan(16_384);
    }
  });
});
