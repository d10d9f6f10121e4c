import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { computeUserData } from "../../../lib/control/compute-user-data.js";
import type { Launch } from "../../../lib/core/model.js";
import type { ClusterRecord } from "../../../lib/ports/state-store.js";

/** The script with its gzipped programs (secret fetchers, node sync) appended unpacked, to read them. */
function unpacked(script: string | undefined): string {
  const packed = [...(script ?? "").matchAll(/printf '%s' '([A-Za-z0-9+/=]+)' \| base64 -d \| gunzip/g)];
  return `${script}\n${packed.map((m) => gunzipSync(Buffer.from(m[1] as string, "base64")).toString("utf8")).join("\n")}`;
}

const LAUNCH: Launch = {
  queue: "compute",
  instanceType: "c5.xlarge",
  zone: "us-east-1a",
  count: 3,
  candidates: [{ instanceType: "c5.xlarge", zone: "us-east-1a", chargeType: "ON_DEMAND" }],
  allOrNothing: true,
  jobs: ["7"],
  reason: "test",
};

function cluster(overrides: Partial<ClusterRecord> = {}): ClusterRecord {
  return {
    clusterId: "demo",
    name: "demo",
    placement: { cloud: "aws", region: "us-east-1", imageId: "ami-1" },
    autoscaling: {
      catalogs: ["aws"],
      queueConfigs: [
        {
          queueName: "compute",
          scaleUpMemRatio: 1.1,
          expansionNodeConfigs: [{ zone: "us-east-1a", instanceType: "c5.xlarge" }],
        },
      ],
    },
    status: "RUNNING",
    version: 3,
    createdAt: 0,
    updatedAt: 0,
    agent: { kind: "http", url: "http://10.0.1.5:8787", keySecretArn: "arn:key" },
    resources: [
      { type: "secret:munge-key", id: "arn:aws:secretsmanager:us-east-1:1:secret:munge", createdAt: 0 },
    ],
    queueHealth: {},
    ...overrides,
  };
}

describe("computeUserData", () => {
  it("renders a bootstrap that names nodes by instance id, with the shape's CPUs and usable memory", () => {
    // Act
    const script = computeUserData(cluster(), LAUNCH) ?? "";
    // Assess
    expect(script).toContain("169.254.169.254/latest/meta-data");
    expect(script).toContain("readonly CONF_SERVER='10.0.1.5:6817'");
    expect(script).toContain("'CPUs=4 RealMemory=7447 Feature=q_compute,type_'");
    expect(script).toContain("'arn:aws:secretsmanager:us-east-1:1:secret:munge'");
    expect(Buffer.from(script).toString("base64").length).toBeLessThan(16_384);
  });

  it("gives none until the master's address and the munge key are known", () => {
    expect(computeUserData(cluster({ agent: { kind: "none" } }), LAUNCH)).toBeUndefined();
    expect(computeUserData(cluster({ resources: [] }), LAUNCH)).toBeUndefined();
    expect(
      computeUserData(cluster({ agent: { kind: "http", url: "http://master.internal:8787" } }), LAUNCH),
    ).toBeUndefined();
    expect(
      computeUserData(cluster({ placement: { cloud: "local", region: "local", imageId: "local" } }), LAUNCH),
    ).toBeUndefined();
  });

  it("reads the munge key from Tencent SSM and Alibaba KMS on those clouds", () => {
    // Prepare
    const resources = [{ type: "secret:munge-key", id: "nowscale-demo-munge", createdAt: 0 }];

    // Act
    const tencent = computeUserData(
      cluster({ placement: { cloud: "tencent", region: "ap-guangzhou", imageId: "img-1" }, resources }),
      LAUNCH,
    );
    const alibaba = computeUserData(
      cluster({ placement: { cloud: "alibaba", region: "cn-hangzhou", imageId: "m-1" }, resources }),
      LAUNCH,
    );

    // Assess
    expect(tencent).toContain("http://metadata.tencentyun.com/latest/meta-data/");
    // The secret fetchers travel gzipped (the 16 KiB user-data limit): read unpacked.
    expect(unpacked(tencent)).toContain("X-TC-Action");
    expect(tencent).toContain("'nowscale-demo-munge' 'ap-guangzhou'");
    expect(tencent).toContain("-d 169.254.0.23/32");
    expect(alibaba).toContain("http://100.100.100.200/latest/api/token");
    expect(unpacked(alibaba)).toContain("kms-vpc.");
    expect(alibaba).toContain("'nowscale-demo-munge' 'cn-hangzhou'");
    expect(alibaba).toContain("-d 100.100.100.200/32");
  });
});
