import { ScanCommand } from "@aws-sdk/client-dynamodb";
import { FakeAgent } from "../../lib/agent-channels/fake.js";
import { type ApiDeps, type ApiRequest, handleApiRequest } from "../../lib/control/api/routes.js";
import { RecordingMetrics } from "../../lib/control/metrics.js";
import { FakeClock, FakeProvider } from "../../lib/providers/fake/index.js";
import type { DynamoStateStore } from "../../lib/state/dynamo-store.js";
import type { TableNames } from "../../lib/state/tables.js";
import { RecordingWorkflowStarter, type WorkflowStarter } from "../../lib/workflow/starter.js";
import { CONFIG, T0 } from "./control-bed.js";
import { freshStore, type TestDynamo } from "./dynalite.js";

/** A valid create request for the fake cloud. */
export const VALID_CREATE = {
  name: "demo",
  cloud: "fake",
  region: "local",
  network: { vpcId: "vpc-1", subnetIds: ["subnet-1"] },
  master: { instanceType: "c5.xlarge", zone: "zone-a", imageId: "img-1" },
  autoscaling: CONFIG,
};

/** A valid attach request for the fake cloud (the fake agent's default setup is ready for queue compute). */
export const VALID_ATTACH = {
  name: "theirs",
  cloud: "fake",
  region: "local",
  master: {
    channel: "http",
    url: "http://10.0.0.5:8787",
    agentKeySecret: "nowscale/attached/theirs/agent-key",
    mungeKeySecret: "nowscale/attached/theirs/munge-key",
  },
  autoscaling: CONFIG,
};

export interface ApiCall {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: answers are read field by field in the tests
  body: any;
}

/**
 * The API's routes over fresh tables on dynalite, the fake cloud and agent, and a recording workflow
 * starter. `call` sends a request as a client would: a body is JSON with `content-type:
 * application/json` unless the test passes its own headers or a raw string.
 */
export function apiBed(db: TestDynamo) {
  return apiBedWith(db, () => new RecordingWorkflowStarter());
}

/** apiBed with another workflow starter (e.g. one running the real workflows) over its store and cloud. */
export async function apiBedWith<W extends WorkflowStarter>(
  db: TestDynamo,
  makeWorkflows: (parts: { store: DynamoStateStore; clock: FakeClock; provider: FakeProvider }) => W,
) {
  const { store, tables } = await freshStore(db);
  const clock = new FakeClock(T0);
  const provider = new FakeProvider({ clock });
  const agent = new FakeAgent(clock);
  const workflows = makeWorkflows({ store, clock, provider });
  const metrics = new RecordingMetrics();
  let n = 0;
  const deps: ApiDeps = {
    store,
    clock,
    workflows,
    metrics,
    runtime: async () => ({ provider, agent }),
    newClusterId: () => `c-${++n}`,
  };
  const request = async (req: ApiRequest): Promise<ApiCall> => {
    const res = await handleApiRequest(deps, req);
    return { status: res.statusCode, body: JSON.parse(res.body) };
  };
  const call = (
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
    query: Record<string, string> = {},
  ): Promise<ApiCall> =>
    request({
      method,
      path,
      headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
      query,
      body: body === undefined ? null : typeof body === "string" ? body : JSON.stringify(body),
    });
  /** A cluster created through the API and marked RUNNING (as its workflow would). */
  const runningCluster = async (): Promise<string> => {
    const created = await call("POST", "/clusters", VALID_CREATE);
    const id = created.body.clusterId as string;
    const c = await store.getCluster(id);
    if (c === undefined) throw new Error("not created");
    await store.updateCluster(id, c.version, { status: "RUNNING", now: clock.now() });
    return id;
  };
  return { store, tables, clock, provider, agent, workflows, metrics, deps, call, request, runningCluster };
}

export type ApiBed = Awaited<ReturnType<typeof apiBed>>;

/** Every item of every table: what "nothing changed" is compared on. */
export async function snapshot(db: TestDynamo, tables: TableNames): Promise<string> {
  const all: unknown[] = [];
  for (const name of Object.values(tables)) {
    const out = await db.client.send(new ScanCommand({ TableName: name, ConsistentRead: true }));
    all.push(name, out.Items ?? []);
  }
  return JSON.stringify(all);
}
