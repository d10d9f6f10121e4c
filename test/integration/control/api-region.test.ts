import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeAgent } from "../../../lib/agent-channels/fake.js";
import { type ApiDeps, handleApiRequest } from "../../../lib/control/api/routes.js";
import { RecordingMetrics } from "../../../lib/control/metrics.js";
import { DEFAULT_IMAGE } from "../../../lib/ports/cloud-provider.js";
import { FakeClock, FakeProvider } from "../../../lib/providers/fake/index.js";
import { RecordingWorkflowStarter } from "../../../lib/workflow/starter.js";
import { CONFIG, T0 } from "../../support/control-bed.js";
import { freshStore, startDynalite, type TestDynamo } from "../../support/dynalite.js";

let db: TestDynamo;
beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => {
  await db.close();
});

describe("POST /clusters and the stack's region", () => {
  it("accepts docs/deploy.md's example as it is: no image (the default one), the stack's region", async () => {
    // Prepare
    const { store } = await freshStore(db);
    const clock = new FakeClock(T0);
    const workflows = new RecordingWorkflowStarter();
    const deps: ApiDeps = {
      store,
      clock,
      workflows,
      metrics: new RecordingMetrics(),
      runtime: async () => ({ provider: new FakeProvider({ clock }), agent: new FakeAgent(clock) }),
      region: "us-east-1",
    };
    const body = readFileSync(new URL("../../../examples/aws-cluster.json", import.meta.url), "utf8");

    // Act
    const res = await handleApiRequest(deps, {
      method: "POST",
      path: "/clusters",
      headers: { "content-type": "application/json" },
      query: {},
      body,
    });

    // Assess
    expect(res.statusCode, res.body).toBe(202);
    const [cluster] = await store.listClusters();
    expect(cluster?.placement).toEqual({ cloud: "aws", region: "us-east-1", imageId: DEFAULT_IMAGE });
    expect(workflows.started).toHaveLength(1);
  });

  it("refuses a cluster in another region than the stack's with a 400 naming region, and records nothing", async () => {
    // Prepare
    const { store } = await freshStore(db);
    const clock = new FakeClock(T0);
    const workflows = new RecordingWorkflowStarter();
    const deps: ApiDeps = {
      store,
      clock,
      workflows,
      metrics: new RecordingMetrics(),
      runtime: async () => ({ provider: new FakeProvider({ clock }), agent: new FakeAgent(clock) }),
      region: "us-east-1",
    };
    const body = (region: string) =>
      JSON.stringify({
        name: "demo",
        region,
        network: { vpcId: "vpc-1", subnetIds: ["subnet-1"] },
        master: { instanceType: "c5.xlarge", zone: `${region}a`, imageId: "ami-1" },
        autoscaling: CONFIG,
      });
    const post = (region: string) =>
      handleApiRequest(deps, {
        method: "POST",
        path: "/clusters",
        headers: { "content-type": "application/json" },
        query: {},
        body: body(region),
      });

    // Act
    const refused = await post("eu-west-1");
    const accepted = await post("us-east-1");

    // Assess
    expect(refused.statusCode).toBe(400);
    expect(JSON.parse(refused.body).issues).toEqual([
      { path: "region", message: "must be the stack's region us-east-1, not eu-west-1" },
    ]);
    expect(accepted.statusCode).toBe(202);
    expect(workflows.started).toHaveLength(1);
    expect((await store.listClusters()).map((c) => c.placement.region)).toEqual(["us-east-1"]);
  });
});
