import { DescribeAvailabilityZonesCommand, EC2Client, RunInstancesCommand } from "@aws-sdk/client-ec2";
import { InvokeCommand, LambdaClient } from "@aws-sdk/client-lambda";
import { SFNClient, StartExecutionCommand } from "@aws-sdk/client-sfn";
import { GetCommandInvocationCommand, SendCommandCommand, SSMClient } from "@aws-sdk/client-ssm";
import type { APIGatewayProxyEvent, Context } from "aws-lambda";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { FakeAgent } from "../../../lib/agent-channels/fake.js";
import { fanOutScaler } from "../../../lib/aws/fanout.js";
import { FakeClock } from "../../../lib/providers/fake/index.js";
import type { DynamoStateStore } from "../../../lib/state/dynamo-store.js";
import { TABLE_ENV, type TableNames } from "../../../lib/state/tables.js";
import { CONFIG, T0 } from "../../support/control-bed.js";
import { freshStore, startDynalite, type TestDynamo } from "../../support/dynalite.js";

let db: TestDynamo;
let store: DynamoStateStore;
let tables: TableNames;
beforeAll(async () => {
  db = await startDynalite();
  ({ store, tables } = await freshStore(db));
});
afterAll(async () => {
  await db.close();
  vi.unstubAllEnvs();
});

const context = {
  awsRequestId: "req-1",
  functionName: "api",
  getRemainingTimeInMillis: () => 30_000,
} as unknown as Context;

describe("scaler fan-out", () => {
  it("invokes the scaler asynchronously once per RUNNING cluster", async () => {
    // Prepare
    const lambda = mockClient(LambdaClient);
    lambda.on(InvokeCommand).resolves({ StatusCode: 202 });
    for (const id of ["a", "b", "c"]) {
      const { cluster } = await store.createCluster({
        clusterId: `fan-${id}`,
        name: id,
        placement: { cloud: "fake", region: "local", imageId: "img" },
        autoscaling: CONFIG,
        now: T0,
      });
      if (id !== "b")
        await store.updateCluster(cluster.clusterId, cluster.version, { status: "RUNNING", now: T0 });
    }
    // Act
    const { invoked, failed } = await fanOutScaler(
      store,
      new LambdaClient({ region: "us-east-1" }),
      "scaler-fn",
    );
    // Assess
    expect(invoked).toEqual(["fan-a", "fan-c"]);
    expect(failed).toEqual([]);
    const calls = lambda.commandCalls(InvokeCommand).map((c) => c.args[0].input);
    expect(calls.map((c) => c.InvocationType)).toEqual(["Event", "Event"]);
    expect(calls.map((c) => JSON.parse(Buffer.from(c.Payload as Uint8Array).toString()))).toEqual([
      { clusterId: "fan-a" },
      { clusterId: "fan-c" },
    ]);
    lambda.restore();
  });

  it("goes on past a failed invoke: the clusters after it are still scaled (class 9)", async () => {
    // Prepare: the first invoke is throttled
    const lambda = mockClient(LambdaClient);
    lambda.on(InvokeCommand).rejectsOnce(new Error("Rate exceeded")).resolves({ StatusCode: 202 });
    for (const id of ["x", "y"]) {
      const { cluster } = await store.createCluster({
        clusterId: `fan2-${id}`,
        name: id,
        placement: { cloud: "fake", region: "local", imageId: "img" },
        autoscaling: CONFIG,
        now: T0,
      });
      await store.updateCluster(cluster.clusterId, cluster.version, { status: "RUNNING", now: T0 });
    }
    // Act
    const { invoked, failed } = await fanOutScaler(
      store,
      new LambdaClient({ region: "us-east-1" }),
      "scaler-fn",
    );
    // Assess
    expect(failed.map((f) => f.error)).toEqual(["Rate exceeded"]);
    // the first cluster in id order failed; every one after it was still invoked
    expect(invoked).toEqual(expect.arrayContaining(["fan2-x", "fan2-y"]));
    lambda.restore();
  });
});

/** CONFIG with its one queue's entry in `zone`. */
const zoned = (zone: string) => ({
  ...CONFIG,
  queueConfigs: [
    { queueName: "compute", maxSize: 20, expansionNodeConfigs: [{ zone, instanceType: "c5.xlarge" }] },
  ],
});

describe("functions/api.ts", () => {
  it("serves a create through API Gateway's proxy event, starting the workflow by Step Functions", async () => {
    // Prepare: the handler reads its tables from the environment and talks to dynalite
    for (const [id, name] of Object.entries(tables)) vi.stubEnv(TABLE_ENV[id as keyof TableNames], name);
    vi.stubEnv("AWS_REGION", "us-east-1");
    vi.stubEnv("AWS_ACCESS_KEY_ID", "test");
    vi.stubEnv("AWS_SECRET_ACCESS_KEY", "test");
    vi.stubEnv("AWS_ENDPOINT_URL_DYNAMODB", db.endpoint);
    vi.stubEnv(
      "NOWSCALE_CREATE_STATE_MACHINE_ARN",
      "arn:aws:states:us-east-1:123456789012:stateMachine:create",
    );
    vi.stubEnv(
      "NOWSCALE_DELETE_STATE_MACHINE_ARN",
      "arn:aws:states:us-east-1:123456789012:stateMachine:delete",
    );
    vi.stubEnv("POWERTOOLS_METRICS_NAMESPACE", "NowScale");
    vi.stubEnv("POWERTOOLS_DEV", "true");
    const sfn = mockClient(SFNClient);
    sfn.on(StartExecutionCommand).resolves({ executionArn: "arn:aws:states:::execution:create:create-x" });
    // The region's zones, for the check of the configuration's zones (EC2 at the SDK's boundary).
    const ec2 = mockClient(EC2Client);
    ec2.on(DescribeAvailabilityZonesCommand).resolves({
      AvailabilityZones: [
        { ZoneName: "us-east-1a", State: "available" },
        { ZoneName: "us-east-1b", State: "available" },
      ],
    });
    const { handler } = await import("../../../functions/api.js");
    const event = (method: string, path: string, body: unknown) =>
      ({
        httpMethod: method,
        path,
        headers: { "Idempotency-Key": "k-1", "Content-Type": "application/json; charset=utf-8" },
        queryStringParameters: null,
        body: body === undefined ? null : JSON.stringify(body),
        isBase64Encoded: false,
      }) as unknown as APIGatewayProxyEvent;
    const body = {
      name: "demo",
      region: "us-east-1",
      network: { vpcId: "vpc-1", subnetIds: ["subnet-1"] },
      master: { instanceType: "c5.xlarge", zone: "us-east-1a", imageId: "ami-1" },
      autoscaling: zoned("us-east-1b"),
    };
    // Act
    const created = await handler(event("POST", "/clusters", body), context);
    const bad = await handler(event("POST", "/clusters", { ...body, name: "$(reboot)" }), context);
    const badZone = await handler(
      event("POST", "/clusters", { ...body, autoscaling: zoned("us-east-1x") }),
      context,
    );
    // Assess
    expect(created.statusCode).toBe(202);
    const cluster = JSON.parse(created.body);
    expect(cluster.executionArn).toBe("arn:aws:states:::execution:create:create-x");
    const start = sfn.commandCalls(StartExecutionCommand)[0]?.args[0].input;
    expect(start?.name).toBe(`create-${cluster.clusterId}`);
    expect(JSON.parse(start?.input ?? "{}")).toMatchObject({
      clusterId: cluster.clusterId,
      request: { region: "us-east-1" },
    });
    expect(bad.statusCode).toBe(400);
    expect(JSON.parse(bad.body).issues[0].path).toBe("name");
    expect(badZone.statusCode).toBe(400);
    expect(JSON.parse(badZone.body).issues).toEqual([
      {
        path: "autoscaling.queueConfigs[0].expansionNodeConfigs[0].zone",
        message: '"us-east-1x" is not a zone of aws region us-east-1: one of us-east-1a, us-east-1b',
      },
    ]);
    expect(sfn.commandCalls(StartExecutionCommand)).toHaveLength(1);
    // One listing: the provider keeps the region's zones for the container's life.
    expect(ec2.commandCalls(DescribeAvailabilityZonesCommand)).toHaveLength(1);
    ec2.restore();
    sfn.restore();
  });
});

describe("functions/scaler-fanout.ts", () => {
  it("does not start without its variables: the cold start fails naming each one", async () => {
    // Prepare: the tables are set, the scaler's function name and the region are not.
    for (const [id, name] of Object.entries(tables)) vi.stubEnv(TABLE_ENV[id as keyof TableNames], name);
    vi.stubEnv("NOWSCALE_SCALER_FUNCTION_NAME", undefined);
    vi.stubEnv("AWS_REGION", "");
    // Act
    const loading = import("../../../functions/scaler-fanout.js");
    // Assess
    await expect(loading).rejects.toThrow(
      /Lambda environment \(scalerFanout\) is invalid:\n {2}AWS_REGION: is not set\n {2}NOWSCALE_SCALER_FUNCTION_NAME: is not set/,
    );
  });
});

describe("functions/scaler.ts", () => {
  it("runs one cycle for the cluster: report over SSM, launch on EC2, records in DynamoDB", async () => {
    // Prepare
    for (const [id, name] of Object.entries(tables)) vi.stubEnv(TABLE_ENV[id as keyof TableNames], name);
    vi.stubEnv("AWS_REGION", "us-east-1");
    vi.stubEnv("AWS_ACCESS_KEY_ID", "test");
    vi.stubEnv("AWS_SECRET_ACCESS_KEY", "test");
    vi.stubEnv("AWS_ENDPOINT_URL_DYNAMODB", db.endpoint);
    vi.stubEnv("NOWSCALE_SCALER_WINDOW_SECONDS", "0");
    vi.stubEnv("POWERTOOLS_DEV", "true");
    const { cluster } = await store.createCluster({
      clusterId: "aws-1",
      name: "aws-1",
      placement: { cloud: "aws", region: "us-east-1", imageId: "ami-compute" },
      autoscaling: {
        expansionBusyTime: 0,
        catalogs: ["aws"],
        queueConfigs: [
          { queueName: "compute", expansionNodeConfigs: [{ zone: "us-east-1a", instanceType: "c5.xlarge" }] },
        ],
      },
      now: Date.now(),
    });
    await store.updateCluster("aws-1", cluster.version, {
      status: "RUNNING",
      resources: [
        { type: "masterInstance", id: "i-master", createdAt: Date.now() },
        { type: "securityGroup", id: "sg-1", createdAt: Date.now() },
      ],
      now: Date.now(),
    });
    const agent = new FakeAgent(new FakeClock(Date.now() - 60_000));
    agent.addPending("compute", "42", { nodes: 2, cpus: 4 });
    const ssm = mockClient(SSMClient);
    ssm.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-1" } });
    ssm
      .on(GetCommandInvocationCommand)
      .resolves({ Status: "Success", StandardOutputContent: JSON.stringify(await agent.report()) });
    const ec2 = mockClient(EC2Client);
    ec2.on(RunInstancesCommand).callsFake((input) =>
      Promise.resolve({
        Instances: Array.from({ length: input.MaxCount }, (_, i) => ({
          InstanceId: `i-00${i}`,
          InstanceType: input.InstanceType,
          Placement: { AvailabilityZone: input.Placement?.AvailabilityZone },
          State: { Name: "pending" },
          LaunchTime: new Date(),
        })),
      }),
    );
    const { handler } = await import("../../../functions/scaler.js");
    // Act
    const summary = await handler({ clusterId: "aws-1" }, {
      ...context,
      awsRequestId: "req-scaler",
    } as Context);
    // Assess
    expect(summary).toMatchObject({ outcome: "done", launchedNodes: 2 });
    const run = ec2.commandCalls(RunInstancesCommand)[0]?.args[0].input;
    expect(run).toMatchObject({
      MinCount: 2,
      MaxCount: 2,
      ImageId: "ami-compute",
      SecurityGroupIds: ["sg-1"],
    });
    expect(run?.ClientToken).toMatch(/^ns1-/);
    expect(ssm.commandCalls(SendCommandCommand)[0]?.args[0].input.InstanceIds).toEqual(["i-master"]);
    expect((await store.listNodes("aws-1")).map((n) => n.nodeName)).toEqual(["i-000", "i-001"]);
    expect(await handler({ clusterId: "$(reboot)" }, context)).toEqual({ skipped: "bad event" });
    ssm.restore();
    ec2.restore();
  });

  it("takes a wake as a hint: one cycle for a RUNNING cluster, then debounced; forged ones cost nothing", async () => {
    // Prepare: the environment of the test above; a second cluster with one pending job
    const { cluster } = await store.createCluster({
      clusterId: "aws-2",
      name: "aws-2",
      placement: { cloud: "aws", region: "us-east-1", imageId: "ami-compute" },
      autoscaling: {
        expansionBusyTime: 0,
        catalogs: ["aws"],
        queueConfigs: [
          { queueName: "compute", expansionNodeConfigs: [{ zone: "us-east-1a", instanceType: "c5.xlarge" }] },
        ],
      },
      now: Date.now(),
    });
    await store.updateCluster("aws-2", cluster.version, {
      status: "RUNNING",
      resources: [{ type: "masterInstance", id: "i-master2", createdAt: Date.now() }],
      now: Date.now(),
    });
    const agent = new FakeAgent(new FakeClock(Date.now() - 60_000));
    agent.addPending("compute", "43", { nodes: 1, cpus: 4 });
    const ssm = mockClient(SSMClient);
    ssm.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-2" } });
    ssm
      .on(GetCommandInvocationCommand)
      .resolves({ Status: "Success", StandardOutputContent: JSON.stringify(await agent.report()) });
    const ec2 = mockClient(EC2Client);
    ec2.on(RunInstancesCommand).callsFake((input) =>
      Promise.resolve({
        Instances: [
          {
            InstanceId: "i-woken",
            InstanceType: input.InstanceType,
            Placement: { AvailabilityZone: input.Placement?.AvailabilityZone },
            State: { Name: "pending" },
            LaunchTime: new Date(),
          },
        ],
      }),
    );
    const { handler } = await import("../../../functions/scaler.js");
    const invoke = (event: unknown, id: string) =>
      handler(event as never, { ...context, awsRequestId: id } as Context);

    // Act: forged wakes (no valid id, unknown cluster), the real one, the same again at once
    const forged = [
      await invoke({ clusterId: { S: "aws-2" }, wake: true }, "w-1"),
      await invoke({ clusterId: "aws-nope", wake: true }, "w-2"),
    ];
    const woken = await invoke({ clusterId: "aws-2", wake: true }, "w-3");
    const again = await invoke({ clusterId: "aws-2", wake: true }, "w-4");

    // Assess
    expect(forged).toEqual([{ skipped: "wake bad-cluster-id" }, { skipped: "wake unknown-cluster" }]);
    expect(woken).toMatchObject({ outcome: "done", launchedNodes: 1 });
    expect(again).toEqual({ skipped: "wake debounced" });
    expect(ec2.commandCalls(RunInstancesCommand)).toHaveLength(1);
    expect(ssm.commandCalls(SendCommandCommand)).toHaveLength(1);
    expect(await store.readLease("wake#aws-nope")).toBeUndefined();
    ssm.restore();
    ec2.restore();
  });

  it("a woken invocation finding a cycle just ending takes its lease over; one finding it running leaves it the poll", async () => {
    // Prepare: two clusters whose cycle lease another invocation holds, one for 1.5 s more, one for 60 s
    const ssm = mockClient(SSMClient);
    ssm.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-3" } });
    const agent = new FakeAgent(new FakeClock(Date.now() - 60_000));
    agent.addPending("compute", "44", { nodes: 1, cpus: 4 });
    ssm
      .on(GetCommandInvocationCommand)
      .resolves({ Status: "Success", StandardOutputContent: JSON.stringify(await agent.report()) });
    const ec2 = mockClient(EC2Client);
    ec2.on(RunInstancesCommand).callsFake((input) =>
      Promise.resolve({
        Instances: [
          {
            InstanceId: `i-${input.Placement?.AvailabilityZone}-taken`,
            InstanceType: input.InstanceType,
            Placement: { AvailabilityZone: input.Placement?.AvailabilityZone },
            State: { Name: "pending" },
            LaunchTime: new Date(),
          },
        ],
      }),
    );
    for (const [id, holdMs] of [
      ["aws-ending", 1500],
      ["aws-busy", 60_000],
    ] as const) {
      const { cluster } = await store.createCluster({
        clusterId: id,
        name: id,
        placement: { cloud: "aws", region: "us-east-1", imageId: "ami-compute" },
        autoscaling: {
          expansionBusyTime: 0,
          catalogs: ["aws"],
          queueConfigs: [
            {
              queueName: "compute",
              expansionNodeConfigs: [{ zone: "us-east-1a", instanceType: "c5.xlarge" }],
            },
          ],
        },
        now: Date.now(),
      });
      await store.updateCluster(id, cluster.version, {
        status: "RUNNING",
        resources: [{ type: "masterInstance", id: `i-${id}`, createdAt: Date.now() }],
        now: Date.now(),
      });
      expect(
        await store.acquireLease(`scaler#${id}`, "another-invocation", holdMs, Date.now()),
      ).toBeDefined();
    }
    const { handler } = await import("../../../functions/scaler.js");
    const invoke = (clusterId: string) =>
      handler({ clusterId, wake: true } as never, { ...context, awsRequestId: `w-${clusterId}` } as Context);

    // Act
    const [ending, busy] = await Promise.all([invoke("aws-ending"), invoke("aws-busy")]);

    // Assess
    expect(ending).toMatchObject({ outcome: "done", launchedNodes: 1 });
    expect(busy).toMatchObject({ outcome: "lease-held-elsewhere", launchedNodes: 0 });
    expect(ec2.commandCalls(RunInstancesCommand)).toHaveLength(1);
    ssm.restore();
    ec2.restore();
  }, 20_000);
});
