import { randomBytes } from "node:crypto";
import type { z } from "zod";
import { parseConfig } from "../../core/config.js";
import type { Launch } from "../../core/model.js";
import { SIMPLE_NAME } from "../../core/names.js";
import { formatPath, issuesFromZod, ValidationError, type ValidationIssue } from "../../core/validation.js";
import {
  AgentActionError,
  type AgentChannel,
  AgentUnreachableError,
  SlurmctldUnreachableError,
} from "../../ports/agent-channel.js";
import type { Clock } from "../../ports/clock.js";
import type { CloudProvider } from "../../ports/cloud-provider.js";
import { DEFAULT_IMAGE } from "../../ports/cloud-provider.js";
import {
  type ClusterRecord,
  type ClusterStatus,
  ConflictError,
  NotFoundInStoreError,
  type StateStore,
} from "../../ports/state-store.js";
import type { WorkflowStarter } from "../../workflow/starter.js";
import { createClusterRequestSchema } from "../../workflow/tasks/request.js";
import {
  currentExecution,
  startCreation,
  startDeletionAttempt,
  WorkflowStartError,
} from "../lifecycle-recovery.js";
import type { MetricsSink } from "../metrics.js";
import { nodeViews, slurmNodes } from "../node-list.js";
import { RebuildRefusedError, rebuildNodes } from "../node-rebuild.js";
import { retireNode } from "../node-retirement.js";
import { addQueue, deleteQueue, describeQueues, partitionSpecs, QueueOperationError } from "../queues.js";
import { appendControlEvent as event, recordedLaunch } from "../scale-cycle.js";
import { clusterPrices, computeUsage } from "../usage.js";
import {
  addNodesSchema,
  autoscalingSchema,
  createClusterSchema,
  deleteNodesSchema,
  IDEMPOTENCY_KEY,
  queueConfigSchema,
  rebuildNodesSchema,
  usageQuerySchema,
} from "./schemas.js";

/** A REST request, already taken out of API Gateway's event (functions/api.ts). */
export interface ApiRequest {
  method: string;
  path: string;
  /** Header names in any case. */
  headers: Record<string, string | undefined>;
  query: Record<string, string | undefined>;
  body: string | null;
  /**
   * Who is asking: the IAM principal (deployed API), `local:root` (the local mode's token). Operator
   * events record it; absent when the transport authenticated nobody.
   */
  principal?: string;
}

export interface ApiResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

export interface ApiDeps {
  store: StateStore;
  clock: Clock;
  workflows: WorkflowStarter;
  metrics: MetricsSink;
  /** The cloud and the agent of a cluster, for adding and deleting nodes by hand. */
  runtime: (cluster: ClusterRecord) => Promise<{ provider: CloudProvider; agent: AgentChannel }>;
  /** The boot script of manually added nodes (as the scaler's). @default none */
  userData?: (cluster: ClusterRecord, launch: Launch) => string | undefined;
  /** @default "c-" + 12 random hex digits */
  newClusterId?: () => string;
  /** The stack's region: a create request for another is refused naming `region`. @default no check */
  region?: string;
}

/** Bodies beyond this are refused before they are parsed. */
const MAX_BODY_CHARS = 256 * 1024;

class HttpError extends Error {
  override readonly name = "HttpError";
  constructor(
    readonly statusCode: number,
    message: string,
    readonly issues?: readonly ValidationIssue[],
  ) {
    super(message);
  }
}

type Handler = (deps: ApiDeps, req: ApiRequest, params: string[]) => Promise<ApiResponse>;

/**
 * One route. `body`: "json" requires a JSON body, "none" refuses any body, "empty" takes none or `{}`.
 * `query`: the query parameters it reads; any other is refused. Path parameters are the `{name}`s of
 * `path`, in order.
 */
export interface Route {
  method: "GET" | "POST" | "PUT" | "DELETE";
  path: string;
  pattern: RegExp;
  params: readonly string[];
  body: "json" | "none" | "empty";
  query: readonly string[];
  handler: Handler;
}

function route(
  method: Route["method"],
  path: string,
  body: Route["body"],
  handler: Handler,
  query: readonly string[] = [],
): Route {
  const params = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1] as string);
  const pattern = new RegExp(`^${path.replace(/\{\w+\}/g, "([^/]+)")}$`);
  return { method, path, pattern, params, body, query, handler };
}

/** Every route of the API (docs/control-plane.md; docs/openapi.json describes the bodies). */
export const ROUTES: readonly Route[] = [
  route("POST", "/clusters", "json", createCluster),
  route("GET", "/clusters", "none", listClusters),
  route("GET", "/clusters/{clusterId}", "none", getCluster),
  route("DELETE", "/clusters/{clusterId}", "none", deleteCluster),
  route("PUT", "/clusters/{clusterId}/autoscaling", "json", putAutoscaling),
  route("GET", "/clusters/{clusterId}/nodes", "none", listNodes),
  route("POST", "/clusters/{clusterId}/nodes", "json", addNodes),
  route("POST", "/clusters/{clusterId}/nodes/delete", "json", deleteNodes),
  route("POST", "/clusters/{clusterId}/nodes/rebuild", "json", rebuildNodesRoute),
  route("GET", "/clusters/{clusterId}/usage", "none", usage, ["from", "to"]),
  route("POST", "/clusters/{clusterId}/sleep", "empty", (d, r, p) => setStatus(d, r, p, "SLEEPING")),
  route("POST", "/clusters/{clusterId}/wake", "empty", (d, r, p) => setStatus(d, r, p, "RUNNING")),
  route("GET", "/clusters/{clusterId}/events", "none", listEvents, ["limit"]),
  route("GET", "/clusters/{clusterId}/nodes/{node}/console", "none", nodeConsole, ["lines"]),
  route("POST", "/clusters/{clusterId}/queues/{queue}/reset-protection", "none", resetProtection),
  route("GET", "/clusters/{clusterId}/queues", "none", listQueues),
  route("POST", "/clusters/{clusterId}/queues", "json", postQueue),
  route("DELETE", "/clusters/{clusterId}/queues/{queue}", "none", removeQueue, ["force"]),
];

/** Routes one request; every failure becomes a JSON error answer, never a stack trace. */
export async function handleApiRequest(deps: ApiDeps, req: ApiRequest): Promise<ApiResponse> {
  try {
    const path = req.path.replace(/\/+$/, "") || "/";
    const matches = ROUTES.filter((r) => r.pattern.test(path));
    if (matches.length === 0) throw new HttpError(404, "no such route");
    const served = matches.find((r) => r.method === req.method.toUpperCase());
    if (served === undefined) throw new HttpError(405, `use ${matches.map((r) => r.method).join(" or ")}`);
    checkQuery(served, req);
    checkBodyPresence(served, req);
    const params = (served.pattern.exec(path) ?? []).slice(1).map(decodePathPart);
    return await served.handler(deps, req, params);
  } catch (error) {
    if (error instanceof HttpError) {
      return json(error.statusCode, {
        error: error.message,
        ...(error.issues === undefined ? {} : { issues: error.issues }),
      });
    }
    if (error instanceof WorkflowStartError) return json(503, { error: error.message });
    if (error instanceof RebuildRefusedError) {
      const status = { "unknown-node": 404, "not-eligible": 409, "not-running": 409, "no-slurm-view": 503 }[
        error.kind
      ];
      return json(status, {
        error: error.message,
        ...(error.issues.length > 0 ? { issues: error.issues } : {}),
      });
    }
    if (error instanceof ConflictError) return json(409, { error: error.message });
    if (error instanceof NotFoundInStoreError) return json(404, { error: error.message });
    throw error;
  }
}

/** Query parameters the route does not read are refused by name (a typo is not silently ignored). */
function checkQuery(route: Route, req: ApiRequest): void {
  const unknown = Object.keys(req.query ?? {}).filter((k) => !route.query.includes(k));
  if (unknown.length === 0) return;
  const issues = unknown.slice(0, 20).map((k) => ({
    path: k.slice(0, 80),
    message: `unknown query parameter${route.query.length === 0 ? ": this route takes none" : `: use ${route.query.join(", ")}`}`,
  }));
  throw new HttpError(400, invalidMessage("query", issues), issues);
}

/**
 * A body must be JSON and say so (`content-type: application/json`, parameters such as charset allowed):
 * anything else is 415 naming the header, before it is read. A route that takes no body refuses one.
 */
function checkBodyPresence(route: Route, req: ApiRequest): void {
  if (req.body === null || req.body === "") return;
  if (route.body === "none") {
    throw new HttpError(400, `request body: ${route.method} ${route.path} takes no body`, [
      { path: "", message: "send no body" },
    ]);
  }
  const type = header(req, "content-type");
  const media = type?.split(";")[0]?.trim().toLowerCase();
  if (media !== "application/json") {
    throw new HttpError(
      415,
      `content-type header: the body must be sent as application/json (got ${type === undefined ? "none" : shown(type)})`,
      [{ path: "content-type", message: "use application/json" }],
    );
  }
}

// ── handlers ──────────────────────────────────────────────────────────────────────────────────────

async function createCluster(deps: ApiDeps, req: ApiRequest): Promise<ApiResponse> {
  const key = header(req, "idempotency-key");
  if (key !== undefined && !IDEMPOTENCY_KEY.test(key)) {
    throw new HttpError(400, "Idempotency-Key header: 1-128 letters, digits, '_' or '-'");
  }
  const body = parseBody(req, createClusterSchema, "request body");
  const { name, cloud, computeImageId, ...rest } = body;
  // The workflow's own schema again, for its cross-field rules (the master's zone among the network's).
  const request = checkWith(createClusterRequestSchema, rest);
  if (deps.region !== undefined && request.region !== deps.region) {
    throw new HttpError(400, "request body is invalid", [
      { path: "region", message: `must be the stack's region ${deps.region}, not ${request.region}` },
    ]);
  }
  checkConfig(body.autoscaling, "autoscaling.");
  const now = deps.clock.now();
  const clusterId = (deps.newClusterId ?? defaultClusterId)();
  const { cluster, created } = await deps.store.createCluster(
    {
      clusterId,
      name,
      // Without an image: the default (Debian 12) image of each launch's architecture (lib/providers/aws-ec2).
      placement: {
        cloud,
        region: request.region,
        imageId: computeImageId ?? request.master.imageId ?? DEFAULT_IMAGE,
      },
      autoscaling: request.autoscaling,
      spec: request as unknown as Record<string, unknown>,
      now,
    },
    key,
  );
  let current = cluster;
  let started = false;
  // The first start, or a retried request whose first attempt recorded the cluster but whose start
  // failed (or died before it): the execution is named after the cluster, so starting twice is one run.
  if (current.executionArn === undefined && current.status === "CREATING") {
    try {
      current = await startCreation(deps, current);
      started = true;
    } catch (error) {
      if (!(error instanceof WorkflowStartError)) throw error;
      const message = "cluster recorded; its creation workflow could not be started";
      if (created) {
        await event(deps.store, cluster.clusterId, deps.clock, "STATUS_CHANGED", message, ...by(req));
      }
      throw new WorkflowStartError(
        `${error.message}: cluster ${current.clusterId} is recorded CREATING; retry with the same ` +
          "Idempotency-Key or DELETE it (the reconciler also starts it within minutes)",
      );
    }
  }
  if (started) {
    await event(
      deps.store,
      cluster.clusterId,
      deps.clock,
      "STATUS_CHANGED",
      "cluster creation started",
      ...by(req),
    );
  }
  return json(created ? 202 : 200, clusterView(current));
}

async function listClusters(deps: ApiDeps): Promise<ApiResponse> {
  const clusters = await deps.store.listClusters();
  return json(200, { clusters: clusters.map(clusterView) });
}

async function getCluster(deps: ApiDeps, _req: ApiRequest, [id]: string[]): Promise<ApiResponse> {
  return json(200, clusterView(await mustGet(deps, id)));
}

/**
 * Starts the deletion workflow; idempotent while one runs. A DELETING cluster whose deletion never
 * started (the start failed) or ended without recording DELETED gets a new attempt. A CREATING cluster
 * is refused only while its creation workflow runs: one whose start failed, or whose execution ended
 * without recording the outcome, is deleted (deletion removes whatever the ledger and the tag find).
 */
async function deleteCluster(deps: ApiDeps, req: ApiRequest, [id]: string[]): Promise<ApiResponse> {
  const cluster = await mustGet(deps, id);
  if (cluster.status === "DELETED") return json(202, clusterView(cluster));
  const running = (await describeCurrent(deps, cluster)).status === "RUNNING";
  if (cluster.status === "DELETING" && running) return json(202, clusterView(cluster));
  if (cluster.status === "CREATING" && running) {
    throw new HttpError(409, "the cluster is still being created: wait until it is RUNNING or FAILED");
  }
  const why = cluster.status === "DELETING" ? " (the previous attempt is not running)" : "";
  try {
    return json(202, clusterView(await startDeletionAttempt(deps, cluster, why, req.principal)));
  } catch (error) {
    if (!(error instanceof WorkflowStartError)) throw error;
    throw new WorkflowStartError(
      `${error.message}: cluster ${cluster.clusterId} is recorded DELETING; retry the DELETE (the reconciler also retries within minutes)`,
    );
  }
}

/** How the cluster's current workflow stands; 503 when Step Functions cannot say. */
async function describeCurrent(deps: ApiDeps, cluster: ClusterRecord) {
  try {
    return await currentExecution(deps, cluster);
  } catch (error) {
    throw new HttpError(
      503,
      `the workflow's state could not be read: ${(error as Error).message}`.slice(0, 500),
    );
  }
}

async function putAutoscaling(deps: ApiDeps, req: ApiRequest, [id]: string[]): Promise<ApiResponse> {
  const body = parseBody(req, autoscalingSchema, "autoscaling configuration");
  checkConfig(body, "");
  const cluster = await mustGet(deps, id);
  if (cluster.status === "DELETING" || cluster.status === "DELETED") {
    throw new HttpError(409, `the cluster is ${cluster.status}`);
  }
  const expected = ifMatch(req) ?? cluster.version;
  // Queues are partitions on the master: a new one gets its partition first (as POST .../queues does);
  // one dropped is refused, since its nodes must be drained and retired first (DELETE .../queues/{q}).
  const before = parseConfig(cluster.autoscaling, "autoscaling configuration").queues.map((q) => q.queueName);
  const after = body.queueConfigs.map((q) => q.queueName);
  const dropped = before.filter((q) => !after.includes(q));
  if (dropped.length > 0)
    throw new HttpError(
      409,
      `queue ${dropped.join(", ")} would be dropped: delete a queue with DELETE /clusters/${cluster.clusterId}/queues/{queue} (nowscale queue delete), which drains and retires its nodes first`,
    );
  if (after.some((q) => !before.includes(q))) {
    if (cluster.status !== "RUNNING")
      throw new HttpError(
        409,
        `the cluster is ${cluster.status}: queues can be added to a RUNNING cluster only`,
      );
    const { agent } = await deps.runtime(cluster);
    await queueCall(() => agent.setPartitions(partitionSpecs(body)));
  }
  const updated = await deps.store.updateCluster(cluster.clusterId, expected, {
    autoscaling: body,
    now: deps.clock.now(),
  });
  await event(
    deps.store,
    cluster.clusterId,
    deps.clock,
    "CONFIG_UPDATED",
    "autoscaling configuration replaced",
    ...by(req),
  );
  return json(200, clusterView(updated));
}

async function addNodes(deps: ApiDeps, req: ApiRequest, [id]: string[]): Promise<ApiResponse> {
  const body = parseBody(req, addNodesSchema, "request body");
  const cluster = await mustGet(deps, id);
  const config = parseConfig(cluster.autoscaling, "autoscaling configuration");
  const queue = config.queueByName.get(body.queue);
  if (queue === undefined) {
    throw new HttpError(400, "request body is invalid", [
      { path: "queue", message: "no such queue in the configuration" },
    ]);
  }
  const candidates = queue.entries
    .filter((e) => body.instanceType === undefined || e.instanceType === body.instanceType)
    .filter((e) => body.zone === undefined || e.zone === body.zone)
    .map(({ instanceType, zone, chargeType, subnetId, imageId }) => ({
      instanceType,
      zone,
      chargeType,
      ...(subnetId === undefined ? {} : { subnetId }),
      ...(imageId === undefined ? {} : { imageId }),
    }));
  const first = candidates[0];
  if (first === undefined) {
    const path = body.zone !== undefined && body.instanceType === undefined ? "zone" : "instanceType";
    throw new HttpError(400, "request body is invalid", [
      { path, message: "not among the queue's expansionNodeConfigs" },
    ]);
  }
  if (cluster.status !== "RUNNING") throw new HttpError(409, `the cluster is ${cluster.status}, not RUNNING`);
  // maxSize, protected mode and the fence against deletion are checked by the one admission every launch
  // path shares (recordedLaunch), under the cluster's admission lease.
  const launch: Launch = {
    queue: body.queue,
    instanceType: first.instanceType,
    zone: first.zone,
    count: body.count,
    candidates,
    allOrNothing: false,
    jobs: [],
    reason: "added by hand",
  };
  const now = deps.clock.now();
  const round = `manual-${now.toString(36)}-${randomBytes(4).toString("hex")}`;
  const { provider } = await deps.runtime(cluster);
  const owner = `api-${randomBytes(8).toString("hex")}`;
  const { outcome, refused, message } = await recordedLaunch(
    { ...deps, provider, owner, ...(req.principal === undefined ? {} : { by: req.principal }) },
    cluster,
    launch,
    round,
    [],
    {
      fit: "exact",
    },
  );
  if (refused !== undefined && outcome === undefined) {
    throw new HttpError(refused === "admission-busy" ? 503 : 409, message ?? refused);
  }
  return json(200, {
    round,
    nodes: outcome?.instances.map((i) => i.id) ?? [],
    failures: outcome?.failures ?? [],
  });
}

async function deleteNodes(deps: ApiDeps, req: ApiRequest, [id]: string[]): Promise<ApiResponse> {
  const body = parseBody(req, deleteNodesSchema, "request body");
  const cluster = await mustGet(deps, id);
  const records = await deps.store.listNodes(cluster.clusterId);
  const issues: ValidationIssue[] = [];
  const chosen = body.nodes.map((name, i) => {
    const record = records.find((r) => r.nodeName === name);
    if (record === undefined)
      issues.push({ path: `nodes[${i}]`, message: `no node ${name} in this cluster` });
    return record;
  });
  if (issues.length > 0) throw new HttpError(404, "unknown nodes", issues);
  const { provider, agent } = await deps.runtime(cluster);
  const now = deps.clock.now();
  for (const record of chosen) {
    if (record === undefined) continue;
    // Slurm not told: the record stays TERMINATING and the reconciler removes the node from Slurm.
    await retireNode({ store: deps.store, provider, agent }, cluster.clusterId, record, now);
  }
  await event(
    deps.store,
    cluster.clusterId,
    deps.clock,
    "MANUAL",
    "nodes deleted by hand",
    undefined,
    body.nodes,
    body.nodes.length,
    req.principal,
  );
  return json(200, { deleted: body.nodes });
}

/**
 * The cluster's nodes (THPC DescribeNodes): each record with Slurm's state from the agent's report, idle
 * time, cost so far and whether it may be rebuilt. Slurm unreachable: the records still answer, with
 * `slurm.reachable` false and Slurm's fields null.
 */
async function listNodes(deps: ApiDeps, _req: ApiRequest, [id]: string[]): Promise<ApiResponse> {
  const cluster = await mustGet(deps, id);
  const records = await deps.store.listNodes(cluster.clusterId);
  let slurm: ReturnType<typeof slurmNodes> | undefined;
  let slurmError: string | undefined;
  if (cluster.status === "RUNNING" || cluster.status === "SLEEPING") {
    try {
      const { agent } = await deps.runtime(cluster);
      slurm = slurmNodes(await agent.report());
    } catch (error) {
      slurmError = (error as Error).message.slice(0, 300);
    }
  } else slurmError = `the cluster is ${cluster.status}`;
  const now = deps.clock.now();
  const config = parseConfig(cluster.autoscaling, "autoscaling configuration");
  const views = nodeViews(records, slurm, clusterPrices(cluster), now, config.bootTimeout * 1000);
  const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
  return json(200, {
    clusterId: cluster.clusterId,
    at: iso(now),
    slurm: slurm === undefined ? { reachable: false, error: slurmError } : { reachable: true },
    nodes: views.map((v) => ({
      ...v,
      launchedAt: iso(v.launchedAt),
      ...(v.joinedAt === undefined ? {} : { joinedAt: iso(v.joinedAt) }),
      ...(v.idleSince === undefined ? {} : { idleSince: iso(v.idleSince) }),
    })),
  });
}

/** Rebuild failed nodes (lib/control/node-rebuild.ts): retire them, launch replacements in their queue. */
async function rebuildNodesRoute(deps: ApiDeps, req: ApiRequest, [id]: string[]): Promise<ApiResponse> {
  const body = parseBody(req, rebuildNodesSchema, "request body");
  const cluster = await mustGet(deps, id);
  const { provider, agent } = await deps.runtime(cluster);
  const result = await rebuildNodes(
    {
      ...deps,
      provider,
      agent,
      ...(req.principal === undefined ? {} : { by: req.principal }),
    },
    cluster,
    {
      ...(body.nodes === undefined ? {} : { nodes: body.nodes }),
      ...(body.bootGraceSeconds === undefined ? {} : { bootGraceSeconds: body.bootGraceSeconds }),
    },
  );
  return json(200, result);
}

/**
 * Node-hours and cost by day, queue and instance type (lib/control/usage.ts) in the window [from, to]
 * (ISO-8601; the first launch and now by default), from the live records and the usage history.
 */
async function usage(deps: ApiDeps, req: ApiRequest, [id]: string[]): Promise<ApiResponse> {
  const parsed = usageQuerySchema.safeParse({ ...req.query });
  if (!parsed.success) {
    const issues = issuesFromZod(parsed.error);
    throw new HttpError(400, invalidMessage("query", issues), issues);
  }
  const from = parsed.data.from === undefined ? undefined : Date.parse(parsed.data.from);
  const to = parsed.data.to === undefined ? undefined : Date.parse(parsed.data.to);
  if (from !== undefined && to !== undefined && to < from) {
    throw new HttpError(400, "query is invalid: to: must not be before from", [
      { path: "to", message: "must not be before from" },
    ]);
  }
  const cluster = await mustGet(deps, id);
  const [live, ended] = await Promise.all([
    deps.store.listNodes(cluster.clusterId),
    deps.store.listEndedNodes(cluster.clusterId, from),
  ]);
  const now = deps.clock.now();
  const report = computeUsage({
    clusterId: cluster.clusterId,
    live,
    ended,
    price: clusterPrices(cluster),
    now,
    ...(from === undefined ? {} : { from }),
    ...(to === undefined ? {} : { to }),
  });
  const iso = (ms: number) => new Date(ms).toISOString();
  return json(200, {
    ...report,
    from: iso(report.from),
    to: iso(report.to),
    at: iso(now),
    nodes: report.nodes.map((n) => ({
      ...n,
      launchedAt: iso(n.launchedAt),
      ...(n.endedAt === undefined ? {} : { endedAt: iso(n.endedAt) }),
    })),
  });
}

async function setStatus(
  deps: ApiDeps,
  req: ApiRequest,
  [id]: string[],
  status: "SLEEPING" | "RUNNING",
): Promise<ApiResponse> {
  if (req.body !== null && req.body !== "") {
    const raw = readJson(req, "request body");
    if (typeof raw !== "object" || raw === null || Array.isArray(raw) || Object.keys(raw).length > 0) {
      throw new HttpError(400, "request body is invalid: (top level): expected no body or {}", [
        { path: "", message: "expected no body or {}" },
      ]);
    }
  }
  const cluster = await mustGet(deps, id);
  const from: ClusterStatus = status === "SLEEPING" ? "RUNNING" : "SLEEPING";
  if (cluster.status === status) return json(200, clusterView(cluster));
  if (cluster.status !== from) throw new HttpError(409, `the cluster is ${cluster.status}, not ${from}`);
  const updated = await deps.store.updateCluster(cluster.clusterId, cluster.version, {
    status,
    now: deps.clock.now(),
  });
  await event(
    deps.store,
    cluster.clusterId,
    deps.clock,
    "STATUS_CHANGED",
    status === "SLEEPING" ? "asleep" : "awake",
    ...by(req),
  );
  return json(200, clusterView(updated));
}

async function listEvents(deps: ApiDeps, req: ApiRequest, [id]: string[]): Promise<ApiResponse> {
  const raw = req.query.limit;
  const limit = raw === undefined ? 100 : Number(raw);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
    throw new HttpError(400, "query is invalid", [
      { path: "limit", message: "a whole number from 1 to 1000" },
    ]);
  }
  const cluster = await mustGet(deps, id);
  const events = await deps.store.listEvents(cluster.clusterId, limit);
  return json(200, { events: events.map((e) => ({ ...e, at: new Date(e.at).toISOString() })) });
}

/**
 * A node's console output (its boot: cloud-init and the user data), the last `lines` lines (default 100).
 * A node is named after its instance id, so a node already gone (a failed boot) is still found by name
 * where the cloud keeps its console. 501 where the cloud's provider cannot read consoles.
 */
async function nodeConsole(deps: ApiDeps, req: ApiRequest, [id, node]: string[]): Promise<ApiResponse> {
  const raw = req.query.lines;
  const lines = raw === undefined ? 100 : Number(raw);
  if (!Number.isInteger(lines) || lines < 1 || lines > 10_000) {
    throw new HttpError(400, "query is invalid", [
      { path: "lines", message: "a whole number from 1 to 10000" },
    ]);
  }
  if (node === undefined || !SIMPLE_NAME.test(node)) throw new HttpError(404, `no node ${shown(node ?? "")}`);
  const cluster = await mustGet(deps, id);
  const record = (await deps.store.listNodes(cluster.clusterId)).find((n) => n.nodeName === node);
  const { provider } = await deps.runtime(cluster);
  if (provider.consoleOutput === undefined) {
    if (record === undefined) throw new HttpError(404, `no node ${node} in cluster ${cluster.clusterId}`);
    throw new HttpError(501, `the ${provider.cloud} provider cannot read instance consoles`);
  }
  const output = await provider.consoleOutput(record?.instanceId ?? node, lines);
  if (output === undefined)
    throw new HttpError(404, `no node ${node} with a console output in cluster ${cluster.clusterId}`);
  return json(200, { node, instanceId: record?.instanceId ?? node, output });
}

async function resetProtection(deps: ApiDeps, req: ApiRequest, [id, queue]: string[]): Promise<ApiResponse> {
  const cluster = await mustGet(deps, id);
  // Only the configuration's queues have a health to reset: any other name would be written into the
  // cluster record (growing it toward DynamoDB's item limit) for nothing.
  const configured = parseConfig(cluster.autoscaling, "autoscaling configuration").queueByName;
  if (queue === undefined || !configured.has(queue)) {
    throw new HttpError(
      404,
      `no queue ${shown(queue ?? "")} in the configuration of cluster ${cluster.clusterId}`,
      [{ path: "queue", message: `not among the configured queues (${[...configured.keys()].join(", ")})` }],
    );
  }
  const health = await deps.store.resetProtectedMode(cluster.clusterId, queue, deps.clock.now());
  await event(
    deps.store,
    cluster.clusterId,
    deps.clock,
    "PROTECTED_MODE_CLEARED",
    "reset by an operator",
    queue,
    undefined,
    undefined,
    req.principal,
  );
  return json(200, health);
}

// ── helpers ───────────────────────────────────────────────────────────────────────────────────────

/** The trailing arguments of appendControlEvent that record who asked (queue, nodes, count, by). */
function by(req: ApiRequest): [undefined, undefined, undefined, string | undefined] {
  return [undefined, undefined, undefined, req.principal];
}

function checkWith<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) {
    const issues = issuesFromZod(result.error);
    throw new HttpError(400, invalidMessage("request body", issues), issues);
  }
  return result.data;
}

function parseBody<S extends z.ZodType>(req: ApiRequest, schema: S, source: string): z.output<S> {
  if (req.body === null || req.body === "") {
    throw new HttpError(400, `${source} is missing`, [{ path: "", message: "a JSON body is required" }]);
  }
  const raw = readJson(req, source);
  const result = schema.safeParse(raw);
  if (!result.success) {
    const issues = issuesFromZod(result.error);
    throw new HttpError(400, invalidMessage(source, issues), issues);
  }
  return result.data;
}

/**
 * The body as JSON: at most MAX_BODY_CHARS (413), valid JSON, nested at most MAX_DEPTH deep, and no key
 * named `__proto__` anywhere. JSON.parse makes such a key an own property; schemas and object spreads
 * would then drop it silently (or set a prototype), so it is refused by its path instead.
 */
function readJson(req: ApiRequest, source: string): unknown {
  const body = req.body ?? "";
  if (body.length > MAX_BODY_CHARS)
    throw new HttpError(413, `${source} is larger than ${MAX_BODY_CHARS} characters`);
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    throw new HttpError(400, `${source} is not valid JSON`, [{ path: "", message: "not valid JSON" }]);
  }
  const issues = forbiddenKeys(raw);
  if (issues.length > 0) throw new HttpError(400, invalidMessage(source, issues), issues);
  return raw;
}

/** Deeper than any valid body (the configuration nests five levels). */
const MAX_DEPTH = 32;

/** Keys named `__proto__` and nesting beyond MAX_DEPTH, found without recursion (a body may nest deeply). */
function forbiddenKeys(value: unknown): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const stack: { value: unknown; path: (string | number)[] }[] = [{ value, path: [] }];
  while (stack.length > 0 && issues.length < 20) {
    const item = stack.pop() as { value: unknown; path: (string | number)[] };
    if (typeof item.value !== "object" || item.value === null) continue;
    if (item.path.length >= MAX_DEPTH) {
      issues.push({ path: formatPath(item.path), message: `nested deeper than ${MAX_DEPTH} levels` });
      continue;
    }
    if (Array.isArray(item.value)) {
      item.value.forEach((v, i) => {
        stack.push({ value: v, path: [...item.path, i] });
      });
      continue;
    }
    for (const [key, v] of Object.entries(item.value)) {
      if (key === "__proto__") {
        issues.push({
          path: formatPath([...item.path, key]),
          message: "a key named __proto__ is not allowed",
        });
      } else stack.push({ value: v, path: [...item.path, key] });
    }
  }
  return issues;
}

/** "request body is invalid: name: invalid name ...; count: must be at most 100" — every field named. */
function invalidMessage(source: string, issues: readonly ValidationIssue[]): string {
  return `${source} is invalid: ${issues.map((i) => `${i.path || "(top level)"}: ${i.message}`).join("; ")}`.slice(
    0,
    2000,
  );
}

/** Resolves the catalog references (the schema checks them too; this catches anything resolve refuses). */
// ── queues (THPC AddQueue / DeleteQueue / DescribeQueues): the logic is lib/control/queues.ts ──────

async function listQueues(deps: ApiDeps, _req: ApiRequest, [id]: string[]): Promise<ApiResponse> {
  const cluster = await mustGet(deps, id);
  return json(200, { clusterId: cluster.clusterId, ...(await describeQueues(deps, cluster)) });
}

async function postQueue(deps: ApiDeps, req: ApiRequest, [id]: string[]): Promise<ApiResponse> {
  const body = parseBody(req, queueConfigSchema, "queue");
  const cluster = await mustGet(deps, id);
  const config = await queueCall(() =>
    addQueue({ ...deps, ...by1(req) }, cluster, body, ifMatch(req) ?? cluster.version),
  );
  return json(200, { clusterId: cluster.clusterId, queue: body.queueName, autoscaling: config });
}

async function removeQueue(deps: ApiDeps, req: ApiRequest, [id, queue]: string[]): Promise<ApiResponse> {
  const force = req.query.force;
  if (force !== undefined && force !== "true" && force !== "false")
    throw new HttpError(400, "query is invalid", [{ path: "force", message: "must be true or false" }]);
  const cluster = await mustGet(deps, id);
  if (queue === undefined || !SIMPLE_NAME.test(queue))
    throw new HttpError(404, "no such queue", [{ path: "queue", message: "no such queue" }]);
  const result = await queueCall(() =>
    deleteQueue({ ...deps, ...by1(req) }, cluster, queue, { force: force === "true" }),
  );
  return json(200, { clusterId: cluster.clusterId, ...result });
}

function by1(req: ApiRequest): { by?: string } {
  return req.principal === undefined ? {} : { by: req.principal };
}

/** The queue service's refusals and the agent's failures as HTTP answers. */
async function queueCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof QueueOperationError) {
      const issues = error.path === undefined ? undefined : [{ path: error.path, message: error.message }];
      throw new HttpError(error.status, error.message, issues);
    }
    if (error instanceof ValidationError) {
      const issues = error.issues.map((i) => ({ path: `autoscaling.${i.path}`, message: i.message }));
      throw new HttpError(400, invalidMessage("request body", issues), issues);
    }
    if (error instanceof SlurmctldUnreachableError || error instanceof AgentUnreachableError)
      throw new HttpError(503, `the master did not answer: ${error.message}`.slice(0, 500));
    if (error instanceof AgentActionError)
      throw new HttpError(502, `the master refused: ${error.message}`.slice(0, 500));
    throw error;
  }
}

function checkConfig(config: unknown, prefix: string): void {
  try {
    parseConfig(config, "autoscaling configuration");
  } catch (error) {
    if (error instanceof ValidationError) {
      const issues = error.issues.map((i) => ({ path: prefix + i.path, message: i.message }));
      throw new HttpError(400, invalidMessage("request body", issues), issues);
    }
    throw error;
  }
}

async function mustGet(deps: ApiDeps, id: string | undefined): Promise<ClusterRecord> {
  const cluster = id !== undefined && SIMPLE_NAME.test(id) ? await deps.store.getCluster(id) : undefined;
  if (cluster === undefined) {
    throw new HttpError(404, `no cluster ${shown(id ?? "")}`, [
      { path: "clusterId", message: "no such cluster" },
    ]);
  }
  return cluster;
}

/** A user's string inside an error message: quoted, and short. */
function shown(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}

function header(req: ApiRequest, name: string): string | undefined {
  for (const [k, v] of Object.entries(req.headers)) if (k.toLowerCase() === name) return v;
  return undefined;
}

/** `If-Match: <version>` makes a PUT conditional on the version the caller read. */
function ifMatch(req: ApiRequest): number | undefined {
  const value = header(req, "if-match")?.replace(/"/g, "");
  if (value === undefined) return undefined;
  const version = Number(value);
  if (!Number.isInteger(version) || version < 1)
    throw new HttpError(400, "If-Match header: a cluster version");
  return version;
}

function decodePathPart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return "";
  }
}

function defaultClusterId(): string {
  return `c-${randomBytes(6).toString("hex")}`;
}

export function clusterView(c: ClusterRecord) {
  return {
    clusterId: c.clusterId,
    name: c.name,
    status: c.status,
    ...(c.reason === undefined ? {} : { reason: c.reason }),
    version: c.version,
    placement: c.placement,
    autoscaling: c.autoscaling,
    agent: { kind: c.agent.kind },
    queueHealth: c.queueHealth,
    resources: c.resources,
    createdAt: new Date(c.createdAt).toISOString(),
    updatedAt: new Date(c.updatedAt).toISOString(),
    ...(c.executionArn === undefined ? {} : { executionArn: c.executionArn }),
  };
}

function json(statusCode: number, body: unknown): ApiResponse {
  return {
    statusCode,
    headers: { "content-type": "application/json", "cache-control": "no-store" },
    body: JSON.stringify(body),
  };
}
