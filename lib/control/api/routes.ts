import { randomBytes } from "node:crypto";
import type { z } from "zod";
import { parseConfig } from "../../core/config.js";
import type { Launch } from "../../core/model.js";
import { SIMPLE_NAME } from "../../core/names.js";
import { issuesFromZod, ValidationError, type ValidationIssue } from "../../core/validation.js";
import type { AgentChannel } from "../../ports/agent-channel.js";
import type { Clock } from "../../ports/clock.js";
import type { CloudProvider } from "../../ports/cloud-provider.js";
import {
  type ClusterRecord,
  type ClusterStatus,
  ConflictError,
  NotFoundInStoreError,
  type StateStore,
} from "../../ports/state-store.js";
import { DEFAULT_IMAGE } from "../../providers/aws-ec2/default-image.js";
import { createClusterRequestSchema } from "../lifecycle/request.js";
import type { MetricsSink } from "../metrics.js";
import { appendControlEvent as event, recordedLaunch } from "../scale-cycle.js";
import {
  addNodesSchema,
  autoscalingSchema,
  createClusterSchema,
  deleteNodesSchema,
  IDEMPOTENCY_KEY,
} from "./schemas.js";
import type { WorkflowStarter } from "./workflows.js";

/** A REST request, already taken out of API Gateway's event (functions/api.ts). */
export interface ApiRequest {
  method: string;
  path: string;
  /** Header names in any case. */
  headers: Record<string, string | undefined>;
  query: Record<string, string | undefined>;
  body: string | null;
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

const ROUTES: { method: string; pattern: RegExp; handler: Handler }[] = [
  { method: "POST", pattern: /^\/clusters$/, handler: createCluster },
  { method: "GET", pattern: /^\/clusters$/, handler: listClusters },
  { method: "GET", pattern: /^\/clusters\/([^/]+)$/, handler: getCluster },
  { method: "DELETE", pattern: /^\/clusters\/([^/]+)$/, handler: deleteCluster },
  { method: "PUT", pattern: /^\/clusters\/([^/]+)\/autoscaling$/, handler: putAutoscaling },
  { method: "POST", pattern: /^\/clusters\/([^/]+)\/nodes$/, handler: addNodes },
  { method: "POST", pattern: /^\/clusters\/([^/]+)\/nodes\/delete$/, handler: deleteNodes },
  {
    method: "POST",
    pattern: /^\/clusters\/([^/]+)\/sleep$/,
    handler: (d, r, p) => setStatus(d, r, p, "SLEEPING"),
  },
  {
    method: "POST",
    pattern: /^\/clusters\/([^/]+)\/wake$/,
    handler: (d, r, p) => setStatus(d, r, p, "RUNNING"),
  },
  { method: "GET", pattern: /^\/clusters\/([^/]+)\/events$/, handler: listEvents },
  {
    method: "POST",
    pattern: /^\/clusters\/([^/]+)\/queues\/([^/]+)\/reset-protection$/,
    handler: resetProtection,
  },
];

/** Routes one request; every failure becomes a JSON error answer, never a stack trace. */
export async function handleApiRequest(deps: ApiDeps, req: ApiRequest): Promise<ApiResponse> {
  try {
    const path = req.path.replace(/\/+$/, "") || "/";
    const matches = ROUTES.filter((r) => r.pattern.test(path));
    if (matches.length === 0) throw new HttpError(404, "no such route");
    const route = matches.find((r) => r.method === req.method.toUpperCase());
    if (route === undefined) throw new HttpError(405, `use ${matches.map((r) => r.method).join(" or ")}`);
    const params = (route.pattern.exec(path) ?? []).slice(1).map(decodePathPart);
    return await route.handler(deps, req, params);
  } catch (error) {
    if (error instanceof HttpError) {
      return json(error.statusCode, {
        error: error.message,
        ...(error.issues === undefined ? {} : { issues: error.issues }),
      });
    }
    if (error instanceof ConflictError) return json(409, { error: error.message });
    if (error instanceof NotFoundInStoreError) return json(404, { error: error.message });
    throw error;
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
  // A retried request whose first attempt recorded the cluster but died before starting the workflow.
  if (current.executionArn === undefined && current.status === "CREATING") {
    const executionArn = await deps.workflows.startCreate(current.clusterId, current.spec);
    current = await deps.store.updateCluster(current.clusterId, current.version, { executionArn, now });
  }
  if (created) {
    await event(deps.store, current.clusterId, deps.clock, "STATUS_CHANGED", "cluster creation started");
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

async function deleteCluster(deps: ApiDeps, _req: ApiRequest, [id]: string[]): Promise<ApiResponse> {
  const cluster = await mustGet(deps, id);
  if (cluster.status === "DELETING" || cluster.status === "DELETED") return json(202, clusterView(cluster));
  if (cluster.status === "CREATING") {
    throw new HttpError(409, "the cluster is still being created: wait until it is RUNNING or FAILED");
  }
  const now = deps.clock.now();
  const deleting = await deps.store.updateCluster(cluster.clusterId, cluster.version, {
    status: "DELETING",
    now,
  });
  const executionArn = await deps.workflows.startDelete(cluster.clusterId, deleting.version);
  const updated = await deps.store.updateCluster(cluster.clusterId, deleting.version, { executionArn, now });
  await event(deps.store, cluster.clusterId, deps.clock, "STATUS_CHANGED", "cluster deletion started");
  return json(202, clusterView(updated));
}

async function putAutoscaling(deps: ApiDeps, req: ApiRequest, [id]: string[]): Promise<ApiResponse> {
  const body = parseBody(req, autoscalingSchema, "autoscaling configuration");
  checkConfig(body, "");
  const cluster = await mustGet(deps, id);
  if (cluster.status === "DELETING" || cluster.status === "DELETED") {
    throw new HttpError(409, `the cluster is ${cluster.status}`);
  }
  const expected = ifMatch(req) ?? cluster.version;
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
    { ...deps, provider, owner },
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
    if (record.status !== "TERMINATING") {
      await deps.store.updateNodeStatus(
        cluster.clusterId,
        record.nodeName,
        record.status,
        "TERMINATING",
        now,
      );
    }
    await provider.terminate([record.instanceId]);
    await agent.deleteNode(record.nodeName).catch(() => undefined); // the reconciler retries "Slurm told"
    await deps.store.deleteNode(cluster.clusterId, record.nodeName);
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
  );
  return json(200, { deleted: body.nodes });
}

async function setStatus(
  deps: ApiDeps,
  req: ApiRequest,
  [id]: string[],
  status: "SLEEPING" | "RUNNING",
): Promise<ApiResponse> {
  if (req.body !== null && req.body.trim() !== "" && req.body.trim() !== "{}") {
    throw new HttpError(400, "request body is invalid", [{ path: "", message: "expected no body" }]);
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

async function resetProtection(deps: ApiDeps, _req: ApiRequest, [id, queue]: string[]): Promise<ApiResponse> {
  const cluster = await mustGet(deps, id);
  if (queue === undefined || !SIMPLE_NAME.test(queue)) throw new HttpError(404, "no such queue");
  const health = await deps.store.resetProtectedMode(cluster.clusterId, queue, deps.clock.now());
  await event(
    deps.store,
    cluster.clusterId,
    deps.clock,
    "PROTECTED_MODE_CLEARED",
    "reset by an operator",
    queue,
  );
  return json(200, health);
}

// ── helpers ───────────────────────────────────────────────────────────────────────────────────────

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
  if (req.body.length > MAX_BODY_CHARS)
    throw new HttpError(413, `${source} is larger than ${MAX_BODY_CHARS} characters`);
  let raw: unknown;
  try {
    raw = JSON.parse(req.body);
  } catch {
    throw new HttpError(400, `${source} is not valid JSON`, [{ path: "", message: "not valid JSON" }]);
  }
  const result = schema.safeParse(raw);
  if (!result.success) {
    const issues = issuesFromZod(result.error);
    throw new HttpError(400, invalidMessage(source, issues), issues);
  }
  return result.data;
}

/** "request body is invalid: name: invalid name ...; count: must be at most 100" — every field named. */
function invalidMessage(source: string, issues: readonly ValidationIssue[]): string {
  return `${source} is invalid: ${issues.map((i) => `${i.path || "(top level)"}: ${i.message}`).join("; ")}`.slice(
    0,
    2000,
  );
}

/** Resolves the catalog references (the schema checks them too; this catches anything resolve refuses). */
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
  if (id === undefined || !SIMPLE_NAME.test(id)) throw new HttpError(404, "no such cluster");
  const cluster = await deps.store.getCluster(id);
  if (cluster === undefined) throw new HttpError(404, `no cluster ${id}`);
  return cluster;
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
