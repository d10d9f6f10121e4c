import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { ZonesOf } from "../../../lib/control/zones.js";
import type { ConfigInput } from "../../../lib/core/config.js";
import { Ec2Api } from "../../../lib/providers/aws-ec2/index.js";
import { FakeCloud } from "../../../lib/providers/fake/index.js";
import { createLocalProvider } from "../../../lib/providers/local/index.js";
import { ManagedProvider } from "../../../lib/providers/shared/managed-provider.js";
import { apiBed, snapshot, VALID_CREATE } from "../../support/api-bed.js";
import { startDynalite, type TestDynamo } from "../../support/dynalite.js";
import { MemoryNamespaceNodes } from "../../unit/providers/local-harness.js";
import { startEc2Simulator } from "../../unit/providers/simulators/aws-ec2.js";

let db: TestDynamo;
beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => {
  await db.close();
});

/** EC2's real adapter behind aws-sdk-client-mock: us-east-1a..c available, us-east-1d impaired. */
function awsZones(): { zones: ZonesOf; asked: unknown[]; restore: () => void } {
  const sim = startEc2Simulator(new FakeCloud(), { impairedZones: ["us-east-1d"] });
  const provider = new ManagedProvider(new Ec2Api({ client: sim.client }));
  const asked: unknown[] = [];
  return {
    zones: async (placement) => {
      asked.push(placement);
      return provider.zones();
    },
    asked,
    restore: () => sim.restore(),
  };
}

const config = (...zones: string[]): ConfigInput => ({
  catalogs: ["aws"],
  queueConfigs: [
    {
      queueName: "compute",
      maxSize: 20,
      expansionNodeConfigs: zones.map((zone) => ({ zone, instanceType: "c5.xlarge" })),
    },
  ],
});

const AWS_CREATE = {
  ...VALID_CREATE,
  cloud: "aws",
  region: "us-east-1",
  master: { instanceType: "c5.xlarge", zone: "us-east-1a", imageId: "ami-1" },
};

describe("the API checks a queue's zones against the cluster's cloud and region", () => {
  let restore: (() => void) | undefined;
  afterEach(() => {
    restore?.();
    restore = undefined;
  });

  it("POST /clusters: a zone the region lacks (or an impaired one) is a 400 naming each entry's zone, nothing recorded", async () => {
    // Prepare
    const bed = await apiBed(db);
    const aws = awsZones();
    restore = aws.restore;
    bed.deps.zones = aws.zones;
    const before = await snapshot(db, bed.tables);

    // Act
    const res = await bed.call("POST", "/clusters", {
      ...AWS_CREATE,
      autoscaling: config("us-east-1a", "nozone", "us-east-1d"),
    });

    // Assess
    expect(res.status).toBe(400);
    expect(res.body.issues).toEqual([
      {
        path: "autoscaling.queueConfigs[0].expansionNodeConfigs[1].zone",
        message: '"nozone" is not a zone of aws region us-east-1: one of us-east-1a, us-east-1b, us-east-1c',
      },
      {
        path: "autoscaling.queueConfigs[0].expansionNodeConfigs[2].zone",
        message:
          '"us-east-1d" is not a zone of aws region us-east-1: one of us-east-1a, us-east-1b, us-east-1c',
      },
    ]);
    expect(aws.asked).toEqual([{ cloud: "aws", region: "us-east-1" }]);
    expect(await snapshot(db, bed.tables)).toBe(before);
    expect(bed.workflows.started).toEqual([]);
  });

  it("POST /clusters: the region's zones are accepted", async () => {
    // Prepare
    const bed = await apiBed(db);
    const aws = awsZones();
    restore = aws.restore;
    bed.deps.zones = aws.zones;

    // Act
    const res = await bed.call("POST", "/clusters", {
      ...AWS_CREATE,
      autoscaling: config("us-east-1a", "us-east-1c"),
    });

    // Assess
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(bed.workflows.started).toHaveLength(1);
  });

  it("PUT autoscaling: a bad zone is a 400 naming it and the configuration stays as it was", async () => {
    // Prepare: a running cluster of the fake cloud (its zones: FAKE_ZONES, us-east-1a..c)
    const bed = await apiBed(db);
    const id = await bed.runningCluster();
    const asked: unknown[] = [];
    bed.deps.zones = async (placement) => {
      asked.push(placement);
      return bed.provider.zones();
    };
    const before = await snapshot(db, bed.tables);

    // Act
    const bad = await bed.call("PUT", `/clusters/${id}/autoscaling`, config("us-east-1b", "us-east-2a"));

    // Assess
    expect(bad.status).toBe(400);
    expect(bad.body.issues).toEqual([
      {
        path: "queueConfigs[0].expansionNodeConfigs[1].zone",
        message: '"us-east-2a" is not a zone of fake region local: one of us-east-1a, us-east-1b, us-east-1c',
      },
    ]);
    expect(asked).toEqual([{ cloud: "fake", region: "local" }]);
    expect(await snapshot(db, bed.tables)).toBe(before);
    const good = await bed.call("PUT", `/clusters/${id}/autoscaling`, config("us-east-1b"));
    expect(good.status, JSON.stringify(good.body)).toBe(200);
  });

  it("POST queues: a new queue's bad zone is a 400 naming it; no partition set, nothing written", async () => {
    // Prepare
    const bed = await apiBed(db);
    const id = await bed.runningCluster();
    bed.deps.zones = () => bed.provider.zones();
    const before = await snapshot(db, bed.tables);
    const calls = bed.agent.calls.length;

    // Act
    const res = await bed.call("POST", `/clusters/${id}/queues`, {
      queueName: "gpu",
      expansionNodeConfigs: [{ zone: "nozone", instanceType: "c5.xlarge" }],
    });

    // Assess
    expect(res.status).toBe(400);
    expect(res.body.issues).toEqual([
      {
        path: "queueConfigs[1].expansionNodeConfigs[0].zone",
        message: '"nozone" is not a zone of fake region local: one of us-east-1a, us-east-1b, us-east-1c',
      },
    ]);
    expect(bed.agent.partitions).toEqual(["compute"]);
    expect(bed.agent.calls.length).toBe(calls);
    expect(await snapshot(db, bed.tables)).toBe(before);
  });

  it("a cloud that does not list its zones is a 503 (retry), and nothing is written", async () => {
    // Prepare
    const bed = await apiBed(db);
    const id = await bed.runningCluster();
    bed.provider.fakeCloud.failNext("zones", "unauthorized", 5);
    bed.deps.zones = () => bed.provider.zones();
    const before = await snapshot(db, bed.tables);

    // Act
    const res = await bed.call("PUT", `/clusters/${id}/autoscaling`, config("us-east-1b"));

    // Assess
    expect(res.status).toBe(503);
    expect(res.body.error).toContain("the zones of fake region local could not be read");
    expect(await snapshot(db, bed.tables)).toBe(before);
  });

  it("the local provider's own zones: local-a and local-b pass, local-c is refused", async () => {
    // Prepare
    const stateDir = await mkdtemp(join(tmpdir(), "nowscale-zones-"));
    restore = () => void rm(stateDir, { recursive: true, force: true });
    const local = createLocalProvider({ nodes: new MemoryNamespaceNodes(), stateDir });
    const bed = await apiBed(db);
    bed.deps.zones = () => local.zones();

    // Act
    const good = await bed.call("POST", "/clusters", { ...VALID_CREATE, autoscaling: config("local-b") });
    const bad = await bed.call("POST", "/clusters", { ...VALID_CREATE, autoscaling: config("local-c") });

    // Assess
    expect(good.status, JSON.stringify(good.body)).toBe(202);
    expect(bad.status).toBe(400);
    expect(bad.body.error).toContain(
      'autoscaling.queueConfigs[0].expansionNodeConfigs[0].zone: "local-c" is not a zone of fake region local: one of local-a, local-b',
    );
  });
});
