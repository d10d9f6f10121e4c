import { EC2ServiceException } from "@aws-sdk/client-ec2";
import type { Context } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { FakeAgent } from "../../lib/agent-channels/fake.js";
import { CONTROL_ENV, METRICS_NAMESPACE } from "../../lib/aws/env.js";
import { FakeClock } from "../../lib/providers/fake/index.js";
import type { DynamoStateStore } from "../../lib/state/dynamo-store.js";
import { TABLE_ENV, type TableNames } from "../../lib/state/tables.js";
import { AwsWorld, REGION } from "../support/aws-world.js";
import { freshStore, startDynalite, type TestDynamo } from "../support/dynalite.js";
import { synthNowScale } from "./synth.js";
import { ResolvedTemplate } from "./template-iam.js";

/**
 * The dashboard and alarms read the metrics the handlers really emit. The scaler and reconciler Lambda
 * handlers (functions/*.ts) run against dynalite and the in-memory AWS through a launch that fails,
 * one that succeeds, an unreachable agent, a cluster with no agent and an orphan; their EMF output
 * (Powertools prints it on stdout) gives each metric's namespace and dimension sets. Every query in the
 * synthesized dashboard and alarms must then match those exactly.
 */

/** metric name → the dimension-key sets it was emitted with (each sorted, joined by ","). */
const emitted = new Map<string, Set<string>>();
const namespaces = new Set<string>();
let t: ResolvedTemplate;
let db: TestDynamo;
let store: DynamoStateStore;
let tables: TableNames;
const world = new AwsWorld();

function readEmf(lines: unknown[][]): void {
  for (const [first] of lines) {
    if (typeof first !== "string" || !first.includes('"_aws"')) continue;
    const blob = JSON.parse(first) as {
      _aws: {
        CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] }[];
      };
    };
    for (const directive of blob._aws.CloudWatchMetrics) {
      namespaces.add(directive.Namespace);
      for (const m of directive.Metrics) {
        const sets = emitted.get(m.Name) ?? new Set<string>();
        for (const dims of directive.Dimensions) sets.add([...dims].sort().join(","));
        emitted.set(m.Name, sets);
      }
    }
  }
}

const context = (id: string) =>
  ({ awsRequestId: id, functionName: "f", getRemainingTimeInMillis: () => 120_000 }) as unknown as Context;

beforeAll(async () => {
  t = new ResolvedTemplate(synthNowScale().template.toJSON() as never);
  db = await startDynalite();
  ({ store, tables } = await freshStore(db));
  for (const [id, name] of Object.entries(tables)) vi.stubEnv(TABLE_ENV[id as keyof TableNames], name);
  // The environment the stack gives the functions, where it concerns metrics.
  const scalerEnv = t.functionEnv(t.functionId("Scaler"));
  for (const name of ["POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"])
    vi.stubEnv(name, scalerEnv[name] ?? "");
  vi.stubEnv("AWS_REGION", REGION);
  vi.stubEnv("AWS_ACCESS_KEY_ID", "test");
  vi.stubEnv("AWS_SECRET_ACCESS_KEY", "test");
  vi.stubEnv("AWS_ENDPOINT_URL_DYNAMODB", db.endpoint);
  vi.stubEnv("NOWSCALE_SCALER_WINDOW_SECONDS", "0");
  vi.stubEnv("NOWSCALE_AGENT_TRANSPORT", "ssm");
  // The reconciler starts the workflows of stuck clusters (none here): it only needs their names.
  vi.stubEnv(CONTROL_ENV.createStateMachineArn, `arn:aws:states:${REGION}:123456789012:stateMachine:create`);
  vi.stubEnv(CONTROL_ENV.deleteStateMachineArn, `arn:aws:states:${REGION}:123456789012:stateMachine:delete`);
  // Dev mode: Powertools prints the EMF with the global console, where the test reads it.
  vi.stubEnv("POWERTOOLS_DEV", "true");
  vi.stubEnv("POWERTOOLS_METRICS_DISABLED", "false");
  world.install();
  world.put({ id: "sg-0000000000000001", type: "security-group", tags: {}, attrs: { vpcId: "vpc-default" } });

  const now = Date.now();
  for (const clusterId of ["m-1", "m-2"]) {
    const { cluster } = await store.createCluster({
      clusterId,
      name: clusterId,
      placement: { cloud: "aws", region: REGION, imageId: "ami-0123456789abcdef0" },
      autoscaling: {
        expansionBusyTime: 0,
        catalogs: ["aws"],
        queueConfigs: [
          { queueName: "compute", expansionNodeConfigs: [{ zone: `${REGION}a`, instanceType: "c5.xlarge" }] },
        ],
      },
      now,
    });
    // m-2 has no master yet: its cycles fail ("no reachable agent"), which is a cycle error.
    await store.updateCluster(clusterId, cluster.version, {
      status: "RUNNING",
      resources:
        clusterId === "m-1"
          ? [
              { type: "masterInstance", id: "i-0000000000000master", createdAt: now },
              { type: "securityGroup", id: "sg-0000000000000001", createdAt: now },
            ]
          : [],
      now,
    });
  }
  world.put({
    id: "i-0000000000000master",
    type: "instance",
    tags: { "nowscale:cluster": "m-1", "nowscale:managed": "true", "nowscale-role": "master" },
    attrs: { state: "running", vpcId: "vpc-default", securityGroupIds: [] },
  });
  const agent = new FakeAgent(new FakeClock(now - 60_000));
  agent.addPending("compute", "42", { nodes: 2, cpus: 4 });
  const report = JSON.stringify(await agent.report());
  world.runCommand = () => ({ stdout: report, code: 0 });

  // Quiet: the calls are kept for reading, nothing is printed.
  const log = vi.spyOn(console, "log").mockImplementation(() => undefined);
  const { handler: scaler } = await import("../../functions/scaler.js");
  // A launch that starts the nodes, then (a second job) one refused for capacity.
  await scaler({ clusterId: "m-1" }, context("s-1"));
  agent.addPending("compute", "43", { nodes: 3, cpus: 4 });
  const second = JSON.stringify(await agent.report());
  world.runCommand = () => ({ stdout: second, code: 0 });
  world.failNext(
    "RunInstances",
    new EC2ServiceException({
      name: "InsufficientInstanceCapacity",
      $fault: "server",
      message: "no capacity",
      $metadata: { httpStatusCode: 500 },
    }),
  );
  await scaler({ clusterId: "m-1" }, context("s-2"));
  // The agent does not answer.
  world.failNext("SendCommand", new Error("connect timeout"));
  await scaler({ clusterId: "m-1" }, context("s-3"));
  world.clearFaults();
  await scaler({ clusterId: "m-2" }, context("s-4"));
  // An instance of m-1 that no record knows: the reconciler's orphan.
  world.put({
    id: "i-0000000000000orph",
    type: "instance",
    tags: { "nowscale:cluster": "m-1", "nowscale:managed": "true", "nowscale:queue": "compute" },
    attrs: {
      state: "running",
      vpcId: "vpc-default",
      securityGroupIds: [],
      zone: `${REGION}a`,
      instanceType: "c5.xlarge",
    },
  });
  const { handler: reconciler } = await import("../../functions/reconciler.js");
  // Two runs that agree: the first adopts and marks it absent, the second terminates it.
  await reconciler({}, context("r-1"));
  await reconciler({}, context("r-2"));
  readEmf(log.mock.calls);
  log.mockRestore();
}, 180_000);

afterAll(async () => {
  world.restore();
  vi.unstubAllEnvs();
  await db?.close();
});

interface Query {
  where: string;
  namespace: string;
  metric: string;
  /** Sorted dimension keys, or undefined for "any" (a Metrics Insights query over the namespace). */
  dimensions: string | undefined;
}

/** Every metric query of the dashboard and the alarms, parsed. */
function queries(): { dashboard: Query[]; alarms: Map<string, Query[]> } {
  const parse = (where: string, expression: string): Query => {
    const search = /^SEARCH\('\{([^}]+)\} MetricName="(\w+)"'/.exec(expression);
    if (search !== null) {
      const [namespace = "", ...dims] = (search[1] ?? "").split(",");
      return { where, namespace, metric: search[2] ?? "", dimensions: dims.sort().join(",") };
    }
    const insights = /^SELECT \w+\((\w+)\) FROM (?:"([^"]+)"|SCHEMA\("([^"]+)",?([^)]*)\))$/.exec(expression);
    if (insights !== null) {
      const dims = insights[4]
        ?.split(",")
        .map((d) => d.trim())
        .filter((d) => d !== "");
      return {
        where,
        namespace: insights[2] ?? insights[3] ?? "",
        metric: insights[1] ?? "",
        dimensions: dims === undefined ? undefined : dims.sort().join(","),
      };
    }
    throw new Error(`${where}: a query the test cannot read: ${expression}`);
  };
  const dashboard: Query[] = [];
  for (const [, r] of t.ofType("AWS::CloudWatch::Dashboard")) {
    const body = JSON.parse(String(t.resolve(r.Properties?.DashboardBody))) as {
      widgets: { properties: { title?: string; metrics?: unknown[][] } }[];
    };
    for (const w of body.widgets)
      for (const line of w.properties.metrics ?? []) {
        const spec = line.at(-1) as { expression?: string };
        if (typeof line[0] === "string")
          throw new Error(`${w.properties.title}: a plain metric, not a query`);
        if (spec.expression !== undefined) dashboard.push(parse(String(w.properties.title), spec.expression));
      }
  }
  const alarms = new Map<string, Query[]>();
  for (const [id, r] of t.ofType("AWS::CloudWatch::Alarm")) {
    const metrics = (r.Properties?.Metrics ?? []) as { Expression?: string; MetricStat?: unknown }[];
    if (r.Properties?.MetricName !== undefined || metrics.some((m) => m.MetricStat !== undefined))
      throw new Error(`${id}: a plain metric: it sees only one dimension set`);
    alarms.set(
      id,
      metrics.flatMap((m) => (m.Expression === undefined ? [] : [parse(id, m.Expression)])),
    );
  }
  return { dashboard, alarms };
}

describe("dashboard and alarm dimensions", () => {
  it("THEN the handlers emitted every metric the dashboard and alarms read (the scenario reached them all)", () => {
    // Assess
    expect([...namespaces]).toEqual([METRICS_NAMESPACE]);
    for (const name of [
      "LaunchFailures",
      "AgentUnreachable",
      "CycleErrors",
      "OrphansTerminated",
      "PendingDemand",
    ])
      expect(emitted.has(name), name).toBe(true);
  });

  it("THEN every dashboard query names a metric with exactly the dimensions it is emitted with", () => {
    // Prepare
    const { dashboard } = queries();
    expect(dashboard.length).toBeGreaterThan(0);

    // Assess
    for (const q of dashboard) {
      expect(q.namespace, q.where).toBe(METRICS_NAMESPACE);
      const sets = emitted.get(q.metric);
      if (q.metric === "OrphansTerminated" && sets === undefined) continue;
      expect(sets, `${q.where}: ${q.metric} is never emitted`).toBeDefined();
      if (q.dimensions !== undefined)
        expect([...(sets ?? [])], `${q.where}: ${q.metric}`).toContain(q.dimensions);
    }
  });

  it("THEN every alarm sees its metric under every dimension set a handler emits it with", () => {
    // Prepare
    const { alarms } = queries();
    expect(alarms.size).toBe(4);

    // Assess
    for (const [id, list] of alarms) {
      expect(list.length, id).toBeGreaterThan(0);
      for (const q of list) {
        expect(q.namespace, id).toBe(METRICS_NAMESPACE);
        const sets = [...(emitted.get(q.metric) ?? [])];
        expect(sets.length, `${id}: ${q.metric} is never emitted`).toBeGreaterThan(0);
        const seen = list.filter((x) => x.metric === q.metric);
        for (const dims of sets)
          expect(
            seen.some((x) => x.dimensions === undefined || x.dimensions === dims),
            `${id}: ${q.metric} {${dims}} is not seen`,
          ).toBe(true);
      }
    }
  });
});
