import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { EC2Client } from "@aws-sdk/client-ec2";
import { LambdaClient } from "@aws-sdk/client-lambda";
import { SFNClient } from "@aws-sdk/client-sfn";
import { runSimulation } from "@cloud-copilot/iam-simulate";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { EventBridgeWaker } from "../../agent/events.js";
import { FakeAgent, readySetup } from "../../lib/agent-channels/fake.js";
import { CONTROL_ENV, lambdaEnv } from "../../lib/aws/env.js";
import { fanOutScaler } from "../../lib/aws/fanout.js";
import { awsControlRuntime } from "../../lib/aws/runtime.js";
import { awsLifecycleDeps } from "../../lib/aws/workflow-deps.js";
import { computeUserData } from "../../lib/control/compute-user-data.js";
import { DEFAULT_IMAGE } from "../../lib/ports/cloud-provider.js";
import type { ClusterRecord, StateStore } from "../../lib/ports/state-store.js";
import { WAKE_DETAIL_TYPE, WAKE_SOURCE } from "../../lib/ports/wake.js";
import { defaultImageParameter } from "../../lib/providers/aws-ec2/index.js";
import { AwsMasterPower } from "../../lib/providers/aws-ec2/master-power.js";
import { FakeClock } from "../../lib/providers/fake/index.js";
import { createTables, TABLE_ENV, type TableNames } from "../../lib/state/tables.js";
import { createClusterDefinition, deleteClusterDefinition } from "../../lib/workflow/index.js";
import { runWorkflowLocally } from "../../lib/workflow/local-runner.js";
import { SfnWorkflowStarter } from "../../lib/workflow/starter.js";
import { lifecycleDepsFor } from "../../lib/workflow/tasks/deps.js";
import { runLifecycleTask } from "../../lib/workflow/tasks/dispatch.js";
import type { CreateClusterRequestInput } from "../../lib/workflow/tasks/request.js";
import { MemoryLifecycleStore } from "../../lib/workflow/tasks/store.js";
import { ACCOUNT, AwsWorld, REGION, type RecordedCall } from "../support/aws-world.js";
import { startDynalite } from "../support/dynalite.js";
import {
  checkRequests,
  eventBusArn,
  type IamRequest,
  iamRequestsFor,
  requiredResourceTypes,
} from "../support/iam-requests.js";
import { synthNowScale } from "./synth.js";
import { type PolicyDocument, ResolvedTemplate } from "./template-iam.js";

/**
 * IAM proven by simulation. The code runs against a stateful AWS (test/support/aws-world.ts) with the
 * environment each Lambda gets from the synthesized template: the creation and deletion workflows with
 * the workflow-task Lambda's real AWS ports, the scaler's, reconciler's and API's cluster runtime
 * (launch on demand and spot, list, describe, terminate, the agent over SSM and HTTP), the fan-out and
 * the API's workflow starts, and the secrets the master's and computes' boot scripts read. Every call
 * recorded there is expanded into the requests AWS authorizes (test/support/iam-requests.ts, checked
 * against AWS's published action, resource and condition-key data) and evaluated with
 * @cloud-copilot/iam-simulate against the role's policies in the template.
 */

type RoleName = "workflow" | "scaler" | "reconciler" | "api" | "fanout" | "master" | "compute";

let t: ResolvedTemplate;
let world: AwsWorld;
const roleIds = {} as Record<RoleName, string>;
const requests = {} as Record<RoleName, IamRequest[]>;
const CLUSTER = "hpc-1";
const OTHER_CLUSTER = "hpc-2";

function request(): CreateClusterRequestInput {
  return {
    region: REGION,
    network: { cidr: "10.42.0.0/16", zones: [`${REGION}a`, `${REGION}b`] },
    // No image: the default one, read from Debian's public parameter at create time.
    master: { instanceType: "c5.xlarge", zone: `${REGION}a` },
    agentHealthTimeoutSeconds: 120,
  };
}

/** The autoscaling configuration on the cluster record (the workflow's request carries none). */
const AUTOSCALING = {
  catalogs: ["aws" as const],
  queueConfigs: [
    {
      queueName: "compute",
      expansionNodeConfigs: [
        { zone: `${REGION}a`, instanceType: "c5.xlarge", chargeType: "ON_DEMAND" as const },
      ],
    },
  ],
};

function view() {
  return {
    profileRoles: t.profileRoles(),
    resource: (call: RecordedCall, id: string) =>
      call.touched.find((r) => r.id === id) ?? world.resources.get(id),
  };
}

/** Runs `act`, returns the calls it made. */
async function recording(act: () => Promise<unknown>): Promise<RecordedCall[]> {
  const start = world.calls.length;
  await act();
  return world.calls.slice(start);
}

function expand(calls: RecordedCall[], principalContext: Record<string, string> = {}): IamRequest[] {
  return calls.flatMap((c) => iamRequestsFor(c, view(), principalContext));
}

/** Runs the create workflow then (optionally) leaves the cluster; returns the calls of the workflow role. */
async function runCreate(clusterId: string, input: CreateClusterRequestInput, store: MemoryLifecycleStore) {
  const env = lambdaEnv("workflowTask", {
    ...t.functionEnv(t.functionId("WorkflowTask")),
    AWS_REGION: REGION,
  });
  store.add(clusterId);
  const deps = { ...awsLifecycleDeps(env), store };
  const result = await runWorkflowLocally(createClusterDefinition(), { clusterId, request: input }, (i) =>
    runLifecycleTask(deps, i),
  );
  return { result, deps };
}

function clusterRecord(clusterId: string, overrides: Partial<ClusterRecord> = {}): ClusterRecord {
  const tagged = (type: string) => world.ofType(type).filter((r) => r.tags["nowscale:cluster"] === clusterId);
  const master = tagged("instance").find((r) => r.tags["nowscale-role"] === "master");
  const munge = [...world.secrets.values()].find(
    (s) => s.tags["nowscale:cluster"] === clusterId && s.tags["nowscale:secret-kind"] === "munge-key",
  );
  const agentKey = [...world.secrets.values()].find(
    (s) => s.tags["nowscale:cluster"] === clusterId && s.tags["nowscale:secret-kind"] === "agent-hmac-key",
  );
  return {
    clusterId,
    placement: { cloud: "aws", region: REGION, imageId: "ami-0123456789abcdef0" },
    autoscaling: AUTOSCALING,
    status: "RUNNING",
    version: 1,
    createdAt: 0,
    updatedAt: 0,
    agent: { kind: "ssm", instanceId: master?.id ?? "i-missing" },
    resources: [
      ...tagged("vpc").map((r) => ({ type: "vpc", id: r.id })),
      ...tagged("subnet").map((r) => ({ type: "subnet", id: r.id })),
      ...tagged("security-group").map((r) => ({ type: "securityGroup", id: r.id })),
      ...(master === undefined ? [] : [{ type: "masterInstance", id: master.id }]),
      ...(munge === undefined ? [] : [{ type: "secret:munge-key", id: munge.arn }]),
      ...(agentKey === undefined ? [] : [{ type: "secret:agent-hmac-key", id: agentKey.arn }]),
    ],
    queueHealth: {},
    ...overrides,
  } as ClusterRecord;
}

/** The secret ids a boot script reads with the AWS CLI. */
function secretsReadBy(script: string): string[] {
  const found = [
    ...script.matchAll(
      /'?aws'?\s+'?secretsmanager'?\s+'?get-secret-value'?\s+'?--secret-id'?\s+'?([^'\s]+)'?/g,
    ),
  ];
  return found.map((m) => m[1] ?? "");
}

/**
 * The watcher's wake as the master's boot script starts it: its `watch` arguments read from the rendered
 * script, and the PutEvents request the real agent code (EventBridgeWaker) sends with them, captured at a
 * local endpoint standing in for EventBridge.
 */
async function wakeCallOf(script: string): Promise<RecordedCall> {
  const arg = (flag: string) => new RegExp(`'${flag}' '([^']+)'`).exec(script)?.[1];
  const clusterId = arg("--cluster-id");
  const bus = arg("--event-bus");
  const region = arg("--region");
  expect({ clusterId, bus, region }, "the master starts the watcher").toEqual({
    clusterId: expect.any(String),
    bus: expect.any(String),
    region: REGION,
  });
  let body = "";
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      body = Buffer.concat(chunks).toString("utf8");
      res.writeHead(200, { "content-type": "application/x-amz-json-1.1" });
      res.end(JSON.stringify({ FailedEntryCount: 0, Entries: [{ EventId: "e-1" }] }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    await new EventBridgeWaker({
      clusterId: clusterId ?? "",
      busName: bus ?? "",
      region: region ?? "",
      endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
      credentials: async () => ({ accessKeyId: "AKIAEXAMPLE", secretAccessKey: "secret" }),
    }).wake();
  } finally {
    server.close();
  }
  return { service: "events", command: "PutEvents", input: JSON.parse(body), touched: [], secrets: [] };
}

/** The cluster's runtime ports, as the scaler, reconciler and API Lambdas build them, exercised whole. */
async function exerciseClusterRuntime(functionPrefix: string): Promise<RecordedCall[]> {
  const raw = { ...t.functionEnv(t.functionId(functionPrefix)), AWS_REGION: REGION };
  const kind = ({ Scaler: "scaler", Reconciler: "reconciler", ApiHandler: "api" } as const)[
    functionPrefix as "Scaler" | "Reconciler" | "ApiHandler"
  ];
  return recording(async () => {
    const cluster = clusterRecord(CLUSTER);
    const { runtime } = awsControlRuntime(lambdaEnv(kind, raw));
    const { provider, agent } = await runtime(cluster);
    const subnet = world.ofType("subnet").find((s) => s.tags["nowscale:cluster"] === CLUSTER);
    const onDemand = await provider.launch({
      clusterId: CLUSTER,
      queue: "compute",
      round: `${functionPrefix}-1`,
      candidates: [
        {
          instanceType: "c5.xlarge",
          zone: `${REGION}a`,
          chargeType: "ON_DEMAND",
          subnetId: subnet?.id ?? "",
        },
      ],
      count: 2,
      allOrNothing: true,
      imageId: "ami-0123456789abcdef0",
      userData: "#!/bin/sh\n",
      tags: { NowScaleRound: `${functionPrefix}-1` },
    });
    const spot = await provider.launch({
      clusterId: CLUSTER,
      queue: "compute",
      round: `${functionPrefix}-2`,
      // No subnet: the provider finds the cluster's subnet in the zone (DescribeSubnets).
      candidates: [{ instanceType: "c5.xlarge", zone: `${REGION}b`, chargeType: "SPOT" }],
      count: 1,
      allOrNothing: false,
      // The default image: EC2 resolves Debian's parameter (resolve:ssm) with the caller's rights.
      imageId: DEFAULT_IMAGE,
      tags: { NowScaleRound: `${functionPrefix}-2` },
    });
    expect(onDemand.failures, "on-demand launch").toEqual([]);
    expect(spot.failures, "spot launch").toEqual([]);
    const ids = [...onDemand.instances, ...spot.instances].map((i) => i.id);
    expect(await provider.list(CLUSTER)).not.toHaveLength(0);
    await provider.describe(ids);
    await provider.terminate(ids);
    await agent.report();
    await agent.drain(ids[0] ?? "", "nowscale: idle");
    await agent.resume(ids[0] ?? "");
    await agent.deleteNode(ids[0] ?? "");
    // The signed HTTP channel reads the cluster's agent key; Tencent and Alibaba clusters the credentials.
    const http = awsControlRuntime(lambdaEnv(kind, { ...raw, [CONTROL_ENV.agentTransport]: "http" }));
    const keyArn = cluster.resources.find((r) => r.type === "secret:agent-hmac-key")?.id;
    await http.runtime(
      clusterRecord(CLUSTER, {
        agent: { kind: "http", url: "http://10.42.0.5:8787", keySecretArn: keyArn ?? "" },
      }),
    );
    // Without a network: an Alibaba cluster's VSwitches are read from Alibaba's VPC API, not AWS's, so
    // only the credentials' read is an AWS permission (test/unit/control/aws-runtime.test.ts has the rest).
    for (const cloud of ["tencent", "alibaba"] as const)
      await runtime(
        clusterRecord(CLUSTER, {
          placement: { cloud, region: "ap-guangzhou", imageId: "img-1" },
          resources: [{ type: "masterInstance", id: "i-0123456789abcdef0", createdAt: 0 }],
        }),
      );
  });
}

/** What the user made and tagged for an attached master (docs/attach.md), in their own VPC. */
const ATTACHED = {
  master: "i-0user00000000master",
  hybrid: "mi-0123456789abcdef0",
  group: "sg-0user0000000attach",
  untaggedGroup: "sg-0user00000000plain",
  keySecret: "nowscale/attached/theirs/agent-key",
};

function attachedRecord(subnetId: string, agent: ClusterRecord["agent"]): ClusterRecord {
  return clusterRecord("attached-1", {
    agent,
    resources: [],
    origin: "attached",
    attachment: {
      channel: agent.kind === "http" ? "http" : "ssm",
      controllerAddress: "172.31.0.10",
      controllerPort: 6817,
      mungeKeySecret: "nowscale/attached/theirs/munge-key",
      subnetIds: [subnetId],
      securityGroupIds: [ATTACHED.group],
      slurmVersion: "22.05.8",
      attachedAt: 0,
    },
  });
}

/**
 * An attached cluster through a function's cluster runtime: computes launched into the user's tagged
 * security group and terminated; the agent over SSM on the user's tagged EC2 master and on a hybrid
 * (mi-) server, and over HTTP with the key from the user's secret; with `attach`, the attach checks
 * (the SSM probe and EC2's network check), as the API runs them.
 */
async function exerciseAttached(
  functionPrefix: string,
  subnetId: string,
  attach = false,
): Promise<RecordedCall[]> {
  const raw = { ...t.functionEnv(t.functionId(functionPrefix)), AWS_REGION: REGION };
  const kind = ({ Scaler: "scaler", Reconciler: "reconciler", ApiHandler: "api" } as const)[
    functionPrefix as "Scaler" | "Reconciler" | "ApiHandler"
  ];
  return recording(async () => {
    const control =
      functionPrefix === "WorkflowTask"
        ? {
            runtime: awsLifecycleDeps(lambdaEnv("workflowTask", raw)).controlPlane?.runtime,
            attach: undefined,
          }
        : awsControlRuntime(lambdaEnv(kind, raw));
    const runtime = control.runtime;
    if (runtime === undefined) throw new Error(`${functionPrefix} has no cluster runtime`);
    for (const instanceId of [ATTACHED.master, ATTACHED.hybrid]) {
      const { provider, agent } = await runtime(attachedRecord(subnetId, { kind: "ssm", instanceId }));
      if (functionPrefix !== "WorkflowTask") {
        const launched = await provider.launch({
          clusterId: "attached-1",
          queue: "compute",
          round: `${functionPrefix}-attached-${instanceId}`,
          candidates: [{ instanceType: "c5.xlarge", zone: `${REGION}a`, chargeType: "ON_DEMAND", subnetId }],
          count: 1,
          allOrNothing: true,
          imageId: "ami-0123456789abcdef0",
          userData: "#!/bin/sh\n",
        });
        expect(launched.failures, "launch into the attached group").toEqual([]);
        await provider.terminate(launched.instances.map((i) => i.id));
      } else {
        await provider.list("attached-1");
        await provider.terminate([]);
      }
      await agent.report();
      expect((await agent.slurmSetup?.())?.slurmVersion).toBe("22.05.8");
      await agent.drain("i-0abc", "nowscale: cluster detached");
      await agent.deleteNode("i-0abc");
    }
    await runtime(
      attachedRecord(subnetId, {
        kind: "http",
        url: "http://172.31.0.10:8787",
        keySecretArn: ATTACHED.keySecret,
      }),
    );
    if (attach && control.attach !== undefined) {
      const attachRequest = {
        name: "theirs",
        cloud: "aws",
        region: REGION,
        master: {
          channel: "ssm",
          instanceId: ATTACHED.master,
          mungeKeySecret: "nowscale/attached/theirs/munge-key",
        },
        network: { subnetIds: [subnetId], securityGroupIds: [ATTACHED.group] },
        autoscaling: AUTOSCALING,
      } as never;
      const probe = await control.attach.probe(attachRequest, { kind: "ssm", instanceId: ATTACHED.master });
      await probe.slurmSetup?.();
      await control.attach.network?.(attachRequest)?.check({
        region: REGION,
        controllerAddress: "172.31.0.10",
        controllerPort: 6817,
        slurmdPort: 6818,
        masterInstanceId: ATTACHED.master,
        subnetIds: [subnetId],
        securityGroupIds: [ATTACHED.group],
      });
    }
  });
}

/**
 * AWS-owned resources have no account in their ARN (arn:aws:ssm:us-east-1::parameter/aws/service/...),
 * which the simulator cannot parse: both sides get a stand-in account, which matches the same way.
 */
const awsOwned = (text: string) => text.replace(/^(arn:aws:ssm:[a-z0-9-]+):(:)/, "$1:000000000000$2");
function withAwsOwned<T>(value: T): T {
  return JSON.parse(JSON.stringify(value), (_k, v: unknown) =>
    typeof v === "string" ? awsOwned(v) : v,
  ) as T;
}

async function allowed(roleId: string, r: IamRequest, policies?: { name: string; policy: PolicyDocument }[]) {
  const response = await runSimulation(
    {
      identityPolicies: withAwsOwned(policies ?? t.rolePolicies(roleId)) as never,
      // KMS also needs the key's own policy to allow (the CDK default delegates to IAM).
      ...(r.action.startsWith("kms:") ? { resourcePolicy: t.keyPolicy(r.resource) as never } : {}),
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      request: {
        action: r.action,
        principal: `arn:aws:iam::${ACCOUNT}:role/${roleId}`,
        resource: { resource: awsOwned(r.resource), accountId: ACCOUNT },
        contextVariables: r.context,
      },
    },
    {},
  );
  if (response.resultType === "error")
    throw new Error(`${r.action} ${r.resource}: ${JSON.stringify(response.errors)}`);
  return response.overallResult === "Allowed";
}

function unique(list: IamRequest[]): IamRequest[] {
  const seen = new Map<string, IamRequest>();
  for (const r of list) seen.set(`${r.action}|${r.resource}|${JSON.stringify(r.context)}`, r);
  return [...seen.values()];
}

/** The DynamoDB requests one dynalite answers, as recorded calls (a transaction's items one by one). */
function dynamoCalls(target: string, body: Record<string, unknown>): RecordedCall[] {
  const op = target.split(".")[1] ?? target;
  const call = (command: string, input: Record<string, unknown>): RecordedCall => ({
    service: "dynamodb",
    command,
    input,
    touched: [],
    secrets: [],
  });
  if (op === "TransactWriteItems" || op === "TransactGetItems") {
    const kinds: Record<string, string> = {
      Put: "PutItem",
      Update: "UpdateItem",
      Delete: "DeleteItem",
      ConditionCheck: "ConditionCheckItem",
      Get: "GetItem",
    };
    return ((body.TransactItems ?? []) as Record<string, { TableName?: string }>[]).flatMap((item) =>
      Object.entries(item).map(([k, v]) => call(kinds[k] ?? k, { TableName: v.TableName })),
    );
  }
  if (op === "BatchGetItem" || op === "BatchWriteItem")
    return Object.keys((body.RequestItems ?? {}) as object).map((TableName) => call(op, { TableName }));
  return [
    call(op, {
      TableName: body.TableName,
      ...(typeof body.IndexName === "string" ? { IndexName: body.IndexName } : {}),
    }),
  ];
}

/**
 * The Lambda handlers themselves (functions/*.ts), with the environment the template gives them, against
 * the in-memory AWS and a dynalite holding the template's tables: the API creates a cluster and adds and
 * deletes nodes, the workflow-task Lambda runs both workflows, the fan-out, the scaler and the reconciler
 * run once each. Every AWS call, DynamoDB's included (recorded at dynalite), is attributed to the
 * function whose invocation made it.
 */
async function handlerScenario(): Promise<Partial<Record<RoleName, RecordedCall[]>>> {
  const calls: Partial<Record<RoleName, RecordedCall[]>> = {};
  const record = (role: RoleName, list: RecordedCall[]) => {
    calls[role] = [...(calls[role] ?? []), ...list];
  };
  let current: RoleName | undefined;
  const db = await startDynalite();
  db.server.prependListener("request", (req: import("node:http").IncomingMessage) => {
    const role = current;
    const target = String(req.headers["x-amz-target"] ?? "");
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (role === undefined || target === "") return;
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as Record<string, unknown>;
      record(role, dynamoCalls(target, body));
    });
  });
  const FUNCTIONS: Partial<Record<RoleName, string>> = {
    workflow: "WorkflowTask",
    scaler: "Scaler",
    fanout: "ScalerFanout",
    reconciler: "Reconciler",
    api: "ApiHandler",
  };
  // Each function's own environment, set before each of its invocations (some is read at call time,
  // and the master's and the computes' instance profiles share a variable name).
  const envOf = (role: RoleName) => t.functionEnv(t.functionId(FUNCTIONS[role] ?? ""));
  const useEnv = (role: RoleName) => {
    for (const [k, v] of Object.entries(envOf(role))) vi.stubEnv(k, v);
    for (const role2 of Object.keys(FUNCTIONS) as RoleName[])
      for (const k of Object.keys(envOf(role2))) if (!(k in envOf(role))) vi.stubEnv(k, undefined);
  };
  const scalerEnv = envOf("scaler");
  const tables = Object.fromEntries(
    (Object.keys(TABLE_ENV) as (keyof typeof TABLE_ENV)[]).map((id) => [id, scalerEnv[TABLE_ENV[id]] ?? ""]),
  ) as TableNames;
  await createTables(db.client, tables);
  vi.stubEnv("AWS_REGION", REGION);
  vi.stubEnv("AWS_ACCESS_KEY_ID", "test");
  vi.stubEnv("AWS_SECRET_ACCESS_KEY", "test");
  vi.stubEnv("AWS_ENDPOINT_URL_DYNAMODB", db.endpoint);
  vi.stubEnv("NOWSCALE_SCALER_WINDOW_SECONDS", "0");
  vi.stubEnv("POWERTOOLS_DEV", "true");
  const context = {
    awsRequestId: "req-h",
    functionName: "f",
    getRemainingTimeInMillis: () => 120_000,
  } as never;
  const as = async <T>(role: RoleName, act: () => Promise<T>): Promise<T> => {
    useEnv(role);
    current = role;
    const start = world.calls.length;
    try {
      return await act();
    } finally {
      record(role, world.calls.slice(start));
      current = undefined;
    }
  };
  const load = async <T>(role: RoleName, importer: () => Promise<T>): Promise<T> => {
    useEnv(role);
    return importer();
  };
  const { handler: api } = await load("api", () => import("../../functions/api.js"));
  const { handler: task } = await load("workflow", () => import("../../functions/workflow-task.js"));
  const { handler: fanout } = await load("fanout", () => import("../../functions/scaler-fanout.js"));
  const { handler: scaler } = await load("scaler", () => import("../../functions/scaler.js"));
  const { handler: reconciler } = await load("reconciler", () => import("../../functions/reconciler.js"));
  const http = (httpMethod: string, path: string, body?: unknown) =>
    ({
      httpMethod,
      path,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      queryStringParameters: null,
      body: body === undefined ? null : JSON.stringify(body),
      isBase64Encoded: false,
    }) as never;
  const started = () => {
    const sfn = world.calls.filter((c) => c.command === "StartExecution").at(-1);
    return JSON.parse(String(sfn?.input.input)) as Record<string, unknown>;
  };
  const runTask = (input: unknown) => task(input as never, context) as Promise<unknown>;

  const created = await as("api", () =>
    api(
      http(
        "POST",
        "/clusters",
        JSON.parse(readFileSync(new URL("../../examples/aws-cluster.json", import.meta.url), "utf8")),
      ),
      context,
    ),
  );
  expect((created as { statusCode: number }).statusCode).toBe(202);
  const createInput = started();
  const clusterId = String(createInput.clusterId);
  const made = await as("workflow", () =>
    runWorkflowLocally(createClusterDefinition(), createInput, runTask),
  );
  expect(made.status, JSON.stringify(made.error)).toBe("SUCCEEDED");
  await as("fanout", () => fanout({} as never, context));
  const agent = new FakeAgent(new FakeClock(Date.now() - 60_000));
  agent.addPending("compute", "7", { nodes: 2, cpus: 4 });
  const report = JSON.stringify(await agent.report());
  world.runCommand = () => ({ stdout: report, code: 0 });
  const cycle = (await as("scaler", () => scaler({ clusterId }, context))) as { launchedNodes?: number };
  expect(cycle.launchedNodes).toBe(2);
  await as("reconciler", () => reconciler({}, context));
  // Cluster users: the password goes to a tagged Secrets Manager secret, the user's deletion deletes it.
  const answerReport = world.runCommand;
  world.runCommand = () => ({
    stdout: JSON.stringify({ ok: true, users: [], added: [], removed: [], updated: [] }),
    code: 0,
  });
  const user = (await as("api", () =>
    api(
      http("POST", `/clusters/${clusterId}/users`, { name: "alice", password: "correct-horse-9" }),
      context,
    ),
  )) as { statusCode: number; body: string };
  expect(user.statusCode, user.body).toBe(200);
  const userGone = (await as("api", () =>
    api(http("DELETE", `/clusters/${clusterId}/users/alice`), context),
  )) as {
    statusCode: number;
    body: string;
  };
  expect(userGone.statusCode, userGone.body).toBe(200);
  // A user left at the cluster's deletion: the workflow deletes the secret (ListSecrets, DeleteSecret).
  const kept = (await as("api", () =>
    api(http("POST", `/clusters/${clusterId}/users`, { name: "bob", password: "battery-staple-7" }), context),
  )) as { statusCode: number; body: string };
  expect(kept.statusCode, kept.body).toBe(200);
  world.runCommand = answerReport;
  const added = (await as("api", () =>
    api(http("POST", `/clusters/${clusterId}/nodes`, { queue: "compute", count: 1 }), context),
  )) as {
    statusCode: number;
    body: string;
  };
  expect(added.statusCode, added.body).toBeLessThan(300);
  const node = world
    .tagged("nowscale:cluster", clusterId)
    .find((r) => r.type === "instance" && r.tags["nowscale-role"] !== "master");
  const deletedNodes = (await as("api", () =>
    api(http("POST", `/clusters/${clusterId}/nodes/delete`, { nodes: [node?.id ?? ""] }), context),
  )) as { statusCode: number; body: string };
  expect(deletedNodes.statusCode, deletedNodes.body).toBeLessThan(300);
  await as("api", () => api(http("DELETE", `/clusters/${clusterId}`), context));
  const gone = await as("workflow", () => runWorkflowLocally(deleteClusterDefinition(), started(), runTask));
  expect(gone.status, JSON.stringify(gone.error)).toBe("SUCCEEDED");
  expect([...world.secrets.values()].filter((s) => s.name.startsWith(`nowscale/${clusterId}/`))).toEqual([]);
  // A cluster left CREATING whose execution Step Functions no longer knows (the start did not take):
  // past the grace period, the reconciler describes the execution and starts the creation again.
  const stuckRequest = {
    ...JSON.parse(readFileSync(new URL("../../examples/aws-cluster.json", import.meta.url), "utf8")),
    name: "stuck",
  };
  const stuck = (await as("api", () => api(http("POST", "/clusters", stuckRequest), context))) as {
    statusCode: number;
  };
  expect(stuck.statusCode).toBe(202);
  const starts = world.calls.filter((c) => c.command === "StartExecution").length;
  const stuckId = String(started().clusterId);
  for (const arn of [...world.executions.keys()])
    if (arn.endsWith(`:create-${stuckId}`)) world.executions.delete(arn);
  vi.useFakeTimers({ toFake: ["Date"], now: Date.now() + 10 * 60_000 });
  try {
    await as("reconciler", () => reconciler({}, context));
  } finally {
    vi.useRealTimers();
  }
  const recovery = (calls.reconciler ?? []).map((c) => c.command);
  expect(recovery).toContain("DescribeExecution");
  expect(world.calls.filter((c) => c.command === "StartExecution").length).toBe(starts + 1);
  vi.unstubAllEnvs();
  await db.close();
  return calls;
}

beforeAll(async () => {
  t = new ResolvedTemplate(synthNowScale().template.toJSON() as never);
  roleIds.workflow = t.functionRole(t.functionId("WorkflowTask"));
  roleIds.scaler = t.functionRole(t.functionId("Scaler"));
  roleIds.reconciler = t.functionRole(t.functionId("Reconciler"));
  roleIds.api = t.functionRole(t.functionId("ApiHandler"));
  roleIds.fanout = t.functionRole(t.functionId("ScalerFanout"));
  const profiles = t.ofType("AWS::IAM::InstanceProfile").map(([id]) => id);
  roleIds.master = t.profileRole(profiles.find((p) => p.startsWith("MasterRole")) ?? "");
  roleIds.compute = t.profileRole(profiles.find((p) => p.startsWith("ComputeRole")) ?? "");

  world = new AwsWorld().install();
  world.parameters.set(defaultImageParameter("amd64"), "ami-0d12a00000000a000");
  const scalerEnv = t.functionEnv(t.functionId("Scaler"));
  const secretsKey = t.functionEnv(t.functionId("WorkflowTask")).NOWSCALE_SECRETS_KMS_KEY_ARN ?? "";
  for (const [name, value] of [
    [CONTROL_ENV.tencentCredentialsSecretArn, { secretId: "AKID", secretKey: "k" }],
    [CONTROL_ENV.alibabaCredentialsSecretArn, { accessKeyId: "LTAI", accessKeySecret: "k" }],
  ] as const) {
    const arn = scalerEnv[name] ?? "";
    world.putSecret(
      arn.split(":secret:")[1] ?? "",
      {},
      secretsKey,
      { SecretString: JSON.stringify(value) },
      arn,
    );
  }

  // The workflow role: a cluster in a network NowScale makes, and one in the user's own VPC.
  const store = new MemoryLifecycleStore();
  const createCalls = await recording(async () => {
    const { result } = await runCreate(CLUSTER, request(), store);
    expect(result.status, store.clusters.get(CLUSTER)?.reason).toBe("SUCCEEDED");
  });
  const userVpc = world.put({
    id: "vpc-0user000000000001",
    type: "vpc",
    tags: {},
    attrs: { cidr: "172.31.0.0/16" },
  });
  const userSubnet = world.put({
    id: "subnet-0user0000000001",
    type: "subnet",
    tags: {},
    attrs: { vpcId: userVpc.id, zone: `${REGION}a`, cidr: "172.31.0.0/20", mapPublicIp: true },
  });
  // The user's way out: an internet gateway on the VPC's main route table.
  world.put({
    id: "igw-0user000000000001",
    type: "internet-gateway",
    tags: {},
    attrs: { attachments: [userVpc.id] },
  });
  world.put({
    id: "rtb-0user000000000001",
    type: "route-table",
    tags: {},
    attrs: {
      vpcId: userVpc.id,
      main: true,
      routes: [{ destination: "0.0.0.0/0", gatewayId: "igw-0user000000000001" }],
      associations: [],
    },
  });
  const userCalls = await recording(async () => {
    const { result } = await runCreate(
      OTHER_CLUSTER,
      { ...request(), network: { vpcId: userVpc.id, subnetIds: [userSubnet.id] } },
      store,
    );
    expect(result.status, store.clusters.get(OTHER_CLUSTER)?.reason).toBe("SUCCEEDED");
  });

  // The nodes: the secrets their boot scripts read, from inside their VPC.
  const masterRun = createCalls.find((c) => c.command === "RunInstances");
  const master = masterRun?.touched.find((r) => r.type === "instance");
  const masterScript = Buffer.from(String(masterRun?.input.UserData ?? ""), "base64").toString("utf8");
  const nodeRead = (ids: string[], _vpcId: string): RecordedCall[] =>
    ids.map((id) => {
      const secret = world.secrets.get(id) ?? [...world.secrets.values()].find((s) => s.name === id);
      return {
        service: "secretsmanager",
        command: "GetSecretValue",
        input: { SecretId: id },
        touched: [],
        secrets: secret === undefined ? [] : [structuredClone(secret)],
      };
    });
  const masterReads = secretsReadBy(masterScript);
  expect(masterReads).toHaveLength(2);
  const bundle = /'?aws'?\s+'?s3'?\s+'?cp'?\s+'?s3:\/\/([^/'\s]+)\/([^'\s]+)'?/.exec(masterScript);
  expect(bundle, "the master fetches the agent bundle from S3").not.toBeNull();
  const bundleRead: RecordedCall = {
    service: "s3",
    command: "GetObject",
    input: { Bucket: bundle?.[1], Key: bundle?.[2] },
    touched: [],
    secrets: [],
  };
  const vpcOf = (clusterId: string) =>
    world.ofType("vpc").find((v) => v.tags["nowscale:cluster"] === clusterId)?.id ?? "";
  const computeScript =
    computeUserData(clusterRecord(CLUSTER, { agent: { kind: "http", url: "http://10.42.0.5:8787" } }), {
      queue: "compute",
      instanceType: "c5.xlarge",
      zone: `${REGION}a`,
      chargeType: "ON_DEMAND",
      count: 1,
    } as never) ?? "";
  const computeReads = secretsReadBy(computeScript);
  expect(computeReads).toHaveLength(1);
  // The SSM agent's own calls on the master (AWS's agent, not NowScale's code: its documented needs).
  const ssmAgent: IamRequest[] = [
    ["ssm:UpdateInstanceInformation", "instance", `arn:aws:ec2:${REGION}:${ACCOUNT}:instance/${master?.id}`],
    ["ssm:ListInstanceAssociations", "instance", `arn:aws:ec2:${REGION}:${ACCOUNT}:instance/${master?.id}`],
    ["ec2messages:GetMessages", "*", "*"],
    ["ec2messages:AcknowledgeMessage", "*", "*"],
    ["ec2messages:SendReply", "*", "*"],
    ["ec2messages:GetEndpoint", "*", "*"],
    ["ec2messages:DeleteMessage", "*", "*"],
    ["ec2messages:FailMessage", "*", "*"],
    ["ssmmessages:CreateControlChannel", "*", "*"],
    ["ssmmessages:OpenControlChannel", "*", "*"],
    ["ssmmessages:CreateDataChannel", "*", "*"],
    ["ssmmessages:OpenDataChannel", "*", "*"],
  ].map(([action = "", resourceType = "", resource = ""]) => ({
    action,
    resourceType,
    resource,
    context: {},
    origin: "ssm-agent",
  }));
  requests.master = [
    ...expand([...nodeRead(masterReads, vpcOf(CLUSTER)), bundleRead, await wakeCallOf(masterScript)], {
      "aws:ec2InstanceSourceVPC": vpcOf(CLUSTER),
    }),
    ...ssmAgent,
  ];
  requests.compute = expand(nodeRead(computeReads, vpcOf(CLUSTER)), {
    "aws:ec2InstanceSourceVPC": vpcOf(CLUSTER),
  });

  // The cluster runtime of the three functions that reach clusters.
  const scalerCalls = await exerciseClusterRuntime("Scaler");
  const reconcilerCalls = await exerciseClusterRuntime("Reconciler");
  const apiCalls = await exerciseClusterRuntime("ApiHandler");

  // An attached master: what the user made and tagged, then the same functions and the detach.
  world.put({
    id: ATTACHED.group,
    type: "security-group",
    tags: { "nowscale:attach": "true" },
    attrs: { vpcId: userVpc.id },
  });
  world.put({ id: ATTACHED.untaggedGroup, type: "security-group", tags: {}, attrs: { vpcId: userVpc.id } });
  world.put({
    id: ATTACHED.master,
    type: "instance",
    tags: { "nowscale:attach": "true" },
    attrs: {
      state: "running",
      vpcId: userVpc.id,
      subnetId: userSubnet.id,
      securityGroupIds: [ATTACHED.group],
    },
  });
  world.put({
    id: ATTACHED.hybrid,
    type: "managed-instance",
    tags: { "nowscale:attach": "true" },
    attrs: {},
  });
  world.putSecret(
    ATTACHED.keySecret,
    { "nowscale:managed": "true", "nowscale:secret-kind": "agent-hmac-key" },
    "aws/secretsmanager",
    { SecretString: "k".repeat(48) },
  );
  const answer = world.runCommand;
  world.runCommand = (commands) =>
    commands.includes("action=slurm-setup")
      ? { stdout: JSON.stringify(readySetup(["compute"])), code: 0 }
      : answer(commands);
  const scalerAttached = await exerciseAttached("Scaler", userSubnet.id);
  const reconcilerAttached = await exerciseAttached("Reconciler", userSubnet.id);
  const apiAttached = await exerciseAttached("ApiHandler", userSubnet.id, true);
  const workflowAttached = await exerciseAttached("WorkflowTask", userSubnet.id);
  const apiEnv = t.functionEnv(t.functionId("ApiHandler"));
  const apiStarts = await recording(async () => {
    const starter = new SfnWorkflowStarter(
      new SFNClient({ region: REGION }),
      apiEnv[CONTROL_ENV.createStateMachineArn] ?? "",
      apiEnv[CONTROL_ENV.deleteStateMachineArn] ?? "",
    );
    await starter.startCreate(CLUSTER, request());
    await starter.startDelete(CLUSTER, 1);
  });
  // Sleep --stop-master and wake: the API stops and starts the cluster's master.
  const apiMasterPower = await recording(async () => {
    const master = clusterRecord(CLUSTER).resources.find((r) => r.type === "masterInstance");
    expect(master, "the cluster has a master").toBeDefined();
    const power = new AwsMasterPower(new EC2Client({ region: REGION }));
    await power.stop([master?.id ?? ""]);
    await power.start([master?.id ?? ""]);
  });
  const fanoutEnv = t.functionEnv(t.functionId("ScalerFanout"));
  const fanoutCalls = await recording(() =>
    fanOutScaler(
      { listClusters: async () => [clusterRecord(CLUSTER)] } as unknown as StateStore,
      new LambdaClient({ region: REGION }),
      fanoutEnv[CONTROL_ENV.scalerFunctionName] ?? "",
    ),
  );

  // Deletion of both clusters by the workflow role.
  const env = lambdaEnv("workflowTask", {
    ...t.functionEnv(t.functionId("WorkflowTask")),
    AWS_REGION: REGION,
  });
  const deps = { ...awsLifecycleDeps(env), store };
  // A Tencent or Alibaba cluster's task reads the stack's key for that cloud (lifecycleDepsFor).
  const otherCloudCalls = await recording(async () => {
    for (const cloud of ["tencent", "alibaba"] as const)
      await lifecycleDepsFor(deps, { cloud, region: "ap-guangzhou" });
  });
  expect(otherCloudCalls.map((c) => c.command)).toEqual(["GetSecretValue", "GetSecretValue"]);
  const deleteCalls = await recording(async () => {
    for (const clusterId of [CLUSTER, OTHER_CLUSTER]) {
      const result = await runWorkflowLocally(deleteClusterDefinition(), { clusterId }, (i) =>
        runLifecycleTask(deps, i),
      );
      expect(result.status, JSON.stringify(result.error)).toBe("SUCCEEDED");
    }
  });

  // The handlers themselves, DynamoDB included.
  const handlers = await handlerScenario();
  requests.workflow = expand([
    ...createCalls,
    ...userCalls,
    ...deleteCalls,
    ...workflowAttached,
    ...otherCloudCalls,
    ...(handlers.workflow ?? []),
  ]);
  requests.scaler = expand([...scalerCalls, ...scalerAttached, ...(handlers.scaler ?? [])]);
  requests.reconciler = expand([...reconcilerCalls, ...reconcilerAttached, ...(handlers.reconciler ?? [])]);
  requests.api = expand([
    ...apiCalls,
    ...apiAttached,
    ...apiStarts,
    ...apiMasterPower,
    ...(handlers.api ?? []),
  ]);
  requests.fanout = expand([...fanoutCalls, ...(handlers.fanout ?? [])]);
}, 180_000);

afterAll(() => world?.restore());

const ROLES: RoleName[] = ["workflow", "scaler", "reconciler", "api", "fanout", "master", "compute"];

describe("IAM simulation of every recorded call", () => {
  it("THEN every request is one AWS's published data knows: action, resource type and condition keys", async () => {
    // Act
    const problems = await checkRequests(ROLES.flatMap((role) => requests[role]));

    // Assess
    expect(problems).toEqual([]);
  });

  it("THEN RunInstances is expanded to every resource type AWS requires it to be authorized against, spot included", async () => {
    // Prepare
    const required = await requiredResourceTypes("ec2:RunInstances");
    const run = requests.scaler.filter((r) => r.action === "ec2:RunInstances");

    // Assess
    const types = new Set(run.map((r) => r.resourceType));
    for (const type of [...required, "volume", "spot-instances-request"]) expect(types, type).toContain(type);
    expect(requests.workflow.some((r) => r.action === "iam:PassRole")).toBe(true);
  });

  it("THEN the handlers' DynamoDB calls are among them, on the template's tables", () => {
    // Assess
    for (const role of ["workflow", "scaler", "reconciler", "api", "fanout"] as const) {
      const dynamo = requests[role].filter((r) => r.action.startsWith("dynamodb:"));
      expect(dynamo.length, role).toBeGreaterThan(0);
      for (const r of dynamo)
        expect(r.resource, role).toMatch(/:table\/Tables[A-Za-z]+Table[0-9A-F]{8}(\/index\/.+)?$/);
    }
  });

  it.each(ROLES)(
    "THEN every request the %s role makes is allowed by its policies in the template",
    async (role) => {
      // Prepare
      const list = unique(requests[role]);
      expect(list.length).toBeGreaterThan(0);

      // Act
      const denied: string[] = [];
      for (const r of list)
        if (!(await allowed(roleIds[role], r)))
          denied.push(`${r.origin}: ${r.action} on ${r.resource} ${JSON.stringify(r.context)}`);

      // Assess
      expect(denied).toEqual([]);
    },
  );

  it.each(ROLES)(
    "THEN every statement NowScale wrote for the %s role is needed: removing it denies a recorded call",
    async (role) => {
      // Prepare
      const policies = t.rolePolicies(roleIds[role]);
      const list = unique(requests[role]);
      const own = policies.flatMap((p, pi) =>
        p.policy.Statement.flatMap((s, si) => (typeof s.Sid === "string" ? [{ pi, si, sid: s.Sid }] : [])),
      );

      // Act
      const unneeded: string[] = [];
      for (const { pi, si, sid } of own) {
        const without = policies.map((p, i) =>
          i === pi
            ? { ...p, policy: { ...p.policy, Statement: p.policy.Statement.filter((_, j) => j !== si) } }
            : p,
        );
        let needed = false;
        for (const r of list) {
          if (!(await allowed(roleIds[role], r, without))) {
            needed = true;
            break;
          }
        }
        if (!needed) unneeded.push(sid);
      }

      // Assess
      expect(unneeded).toEqual([]);
    },
  );
});

describe("IAM simulation of what must be denied", () => {
  const instance = (id: string) => `arn:aws:ec2:${REGION}:${ACCOUNT}:instance/${id}`;
  const terminate = (tags: Record<string, string>): IamRequest => ({
    action: "ec2:TerminateInstances",
    resourceType: "instance",
    resource: instance("i-0fffffffffffffff1"),
    context: Object.fromEntries(Object.entries(tags).map(([k, v]) => [`aws:ResourceTag/${k}`, v])),
    origin: "negative",
  });
  const otherMaster = {
    "nowscale:cluster": OTHER_CLUSTER,
    "nowscale:managed": "true",
    "nowscale-role": "master",
  };

  it.each(["workflow", "scaler", "reconciler", "api"] as const)(
    "THEN the %s role cannot terminate an untagged instance",
    async (role) => {
      expect(await allowed(roleIds[role], terminate({ Name: "someone-elses" }))).toBe(false);
    },
  );

  it.each(["scaler", "reconciler", "api"] as const)(
    "THEN the %s role cannot terminate a master, its cluster's or another's",
    async (role) => {
      expect(await allowed(roleIds[role], terminate(otherMaster))).toBe(false);
      // ... while a compute of that cluster it may: the denial is the master tag, not the cluster.
      expect(
        await allowed(
          roleIds[role],
          terminate({ "nowscale:cluster": OTHER_CLUSTER, "nowscale:managed": "true" }),
        ),
      ).toBe(true);
    },
  );

  it("THEN the api role may stop and start only a tagged master (sleep and wake), and the scaler none", async () => {
    const as = (action: string, tags: Record<string, string>): IamRequest => ({
      ...terminate(tags),
      action,
    });
    const compute = { "nowscale:cluster": OTHER_CLUSTER, "nowscale:managed": "true" };
    for (const action of ["ec2:StopInstances", "ec2:StartInstances"]) {
      expect(await allowed(roleIds.api, as(action, otherMaster)), action).toBe(true);
      expect(await allowed(roleIds.api, as(action, compute)), `${action} compute`).toBe(false);
      expect(
        await allowed(roleIds.api, as(action, { "nowscale-role": "master" })),
        `${action} untagged`,
      ).toBe(false);
      expect(await allowed(roleIds.scaler, as(action, otherMaster)), `${action} scaler`).toBe(false);
    }
  });

  it.each(["workflow", "scaler", "reconciler", "api"] as const)(
    "THEN the %s role can pass no role but its node role",
    async (role) => {
      const others = [
        roleIds.workflow,
        roleIds.scaler,
        role === "workflow" ? roleIds.compute : roleIds.master,
      ];
      for (const other of others) {
        const pass: IamRequest = {
          action: "iam:PassRole",
          resourceType: "role",
          resource: `arn:aws:iam::${ACCOUNT}:role/${other}`,
          context: { "iam:PassedToService": "ec2.amazonaws.com" },
          origin: "negative",
        };
        expect(await allowed(roleIds[role], pass), other).toBe(false);
      }
    },
  );

  it("THEN a node cannot read another cluster's secrets, a compute not even its own agent key, and no one off the instance", async () => {
    // Prepare: the real secrets of the two clusters the workflows made (now deleted: their tags as made).
    const created = requests.workflow.filter((r) => r.action === "secretsmanager:CreateSecret");
    const secret = (clusterId: string, kind: string) => {
      const r = created.find(
        (c) =>
          c.context["aws:RequestTag/nowscale:cluster"] === clusterId &&
          c.context["aws:RequestTag/nowscale:secret-kind"] === kind,
      );
      if (r === undefined) throw new Error(`no ${kind} of ${clusterId}`);
      const tags = Object.fromEntries(
        Object.entries(r.context).flatMap(([k, v]) =>
          k.startsWith("aws:RequestTag/") ? [[k.replace("aws:RequestTag/", "aws:ResourceTag/"), v]] : [],
        ),
      );
      return { resource: r.resource, tags, vpc: String(tags["aws:ResourceTag/nowscale:vpc"]) };
    };
    const read = (
      s: { resource: string; tags: Record<string, unknown> },
      sourceVpc?: string,
    ): IamRequest => ({
      action: "secretsmanager:GetSecretValue",
      resourceType: "Secret",
      resource: s.resource,
      context: {
        ...(s.tags as Record<string, string>),
        ...(sourceVpc === undefined ? {} : { "aws:ec2InstanceSourceVPC": sourceVpc }),
      },
      origin: "negative",
    });
    const mine = secret(CLUSTER, "munge-key");
    const theirs = secret(OTHER_CLUSTER, "munge-key");
    const myAgentKey = secret(CLUSTER, "agent-hmac-key");
    expect(mine.vpc).not.toBe(theirs.vpc);

    // Assess
    for (const role of ["master", "compute"] as const) {
      expect(await allowed(roleIds[role], read(mine, mine.vpc)), `${role} own`).toBe(true);
      expect(await allowed(roleIds[role], read(theirs, mine.vpc)), `${role} other`).toBe(false);
      expect(await allowed(roleIds[role], read(mine)), `${role} off-instance`).toBe(false);
    }
    expect(await allowed(roleIds.master, read(myAgentKey, mine.vpc))).toBe(true);
    expect(await allowed(roleIds.compute, read(myAgentKey, mine.vpc))).toBe(false);
    for (const role of ["scaler", "reconciler", "api"] as const)
      expect(await allowed(roleIds[role], read(mine)), role).toBe(false);
  });

  it("THEN an attached master's Run Command and its computes' launch reach only what the user tagged nowscale:attach", async () => {
    // Prepare
    const send = (resourceType: string, resource: string, tags: Record<string, string>): IamRequest => ({
      action: "ssm:SendCommand",
      resourceType,
      resource,
      context: Object.fromEntries(Object.entries(tags).map(([k, v]) => [`ssm:resourceTag/${k}`, v])),
      origin: "negative",
    });
    const hybrid = `arn:aws:ssm:${REGION}:${ACCOUNT}:managed-instance/mi-0fffffffffffffff1`;
    const launchInto = (tags: Record<string, string>): IamRequest => ({
      action: "ec2:RunInstances",
      resourceType: "security-group",
      resource: `arn:aws:ec2:${REGION}:${ACCOUNT}:security-group/sg-0fffffffffffffff1`,
      context: Object.fromEntries(Object.entries(tags).map(([k, v]) => [`aws:ResourceTag/${k}`, v])),
      origin: "negative",
    });
    // Assess
    for (const role of ["workflow", "scaler", "reconciler", "api"] as const) {
      expect(
        await allowed(roleIds[role], send("managed-instance", hybrid, { "nowscale:attach": "true" })),
        role,
      ).toBe(true);
      expect(await allowed(roleIds[role], send("managed-instance", hybrid, {})), role).toBe(false);
      expect(
        await allowed(roleIds[role], send("managed-instance", hybrid, { "nowscale:attach": "yes" })),
        role,
      ).toBe(false);
      expect(
        await allowed(roleIds[role], send("instance", instance("i-0fffffffffffffff3"), { Name: "theirs" })),
        role,
      ).toBe(false);
    }
    for (const role of ["scaler", "reconciler", "api"] as const) {
      expect(await allowed(roleIds[role], launchInto({ "nowscale:attach": "true" })), role).toBe(true);
      expect(await allowed(roleIds[role], launchInto({ Name: "theirs" })), role).toBe(false);
    }
    // Nothing of an attached master may be terminated: it carries no nowscale:managed tag.
    for (const role of ["workflow", "scaler", "reconciler", "api"] as const)
      expect(await allowed(roleIds[role], terminate({ "nowscale:attach": "true" })), role).toBe(false);
  });

  it("THEN a master wakes through its own stack's bus only, with the wake's source and detail-type; no other role wakes", async () => {
    // Prepare
    const [busId = ""] = t.ofType("AWS::Events::EventBus").map(([id]) => id);
    const own = t.getAtt(busId, "Arn");
    const put = (bus: string, sources = [WAKE_SOURCE], detailTypes = [WAKE_DETAIL_TYPE]): IamRequest => ({
      action: "events:PutEvents",
      resourceType: "event-bus",
      resource: bus,
      context: { "events:source": sources, "events:detail-type": detailTypes },
      origin: "negative",
    });
    expect(requests.master.filter((r) => r.action === "events:PutEvents").map((r) => r.resource)).toEqual([
      own,
    ]);

    // Assess: the wake itself, on the stack's bus
    expect(await allowed(roleIds.master, put(own))).toBe(true);
    // another bus: the account's default one, another stack's wake bus
    for (const bus of [eventBusArn("default"), eventBusArn("OtherStackWakeBus0123ABCD")])
      expect(await allowed(roleIds.master, put(bus)), bus).toBe(false);
    // anything but a wake on the own bus: another source (an AWS one too), another detail-type, a wake
    // with another event beside it in the same call, and a call whose entries carry no source at all
    for (const source of ["aws.ec2", "nowscale.scaler", "nowscale.agent.other"])
      expect(await allowed(roleIds.master, put(own, [source])), source).toBe(false);
    expect(await allowed(roleIds.master, put(own, [WAKE_SOURCE], ["NowScale Launch"]))).toBe(false);
    expect(await allowed(roleIds.master, put(own, [WAKE_SOURCE, "aws.ec2"]))).toBe(false);
    expect(await allowed(roleIds.master, { ...put(own), context: {} }), "keys absent").toBe(false);
    // and no other role, a compute node's above all
    for (const role of ["compute", "workflow", "scaler", "reconciler", "api", "fanout"] as const)
      expect(await allowed(roleIds[role], put(own)), role).toBe(false);
  });

  it("THEN Run Command reaches masters only, never a compute or an untagged instance", async () => {
    const send = (tags: Record<string, string>): IamRequest => ({
      action: "ssm:SendCommand",
      resourceType: "instance",
      resource: instance("i-0fffffffffffffff2"),
      context: Object.fromEntries(Object.entries(tags).map(([k, v]) => [`ssm:resourceTag/${k}`, v])),
      origin: "negative",
    });
    for (const role of ["workflow", "scaler", "reconciler", "api"] as const) {
      expect(
        await allowed(roleIds[role], send({ "nowscale:cluster": CLUSTER, "nowscale:managed": "true" })),
        role,
      ).toBe(false);
      expect(await allowed(roleIds[role], send({})), role).toBe(false);
    }
  });
});
