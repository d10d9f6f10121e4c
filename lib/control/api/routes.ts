import { z } from "zod";
import { formatPath, issuesFromZod, ValidationError, type ValidationIssue } from "../../core/validation.js";
import { type ClusterRecord, originOf } from "../../ports/state-store.js";
import * as admin from "../cluster-admin.js";
import { UnknownNameError } from "../errors.js";
import { rebuildNodes } from "../node-rebuild.js";
import { addQueue, deleteQueue, describeQueues } from "../queues.js";
import { resumeNodes, sleepCluster, stopNodes, wakeCluster } from "../sleep.js";
import * as storage from "../storage.js";
import type { UsersDeps } from "../users.js";
import * as users from "../users.js";
import {
  BodyTooLargeError,
  errorBody,
  MethodNotAllowedError,
  NoRouteError,
  statusOf,
  UnsupportedMediaTypeError,
} from "./errors.js";
import {
  addNodesSchema,
  attachClusterSchema,
  autoscalingSchema,
  chosenNodesSchema,
  clusterParams,
  consoleQuery,
  createClusterSchema,
  createHeaders,
  deleteNodesSchema,
  emptyBodySchema,
  eventsQuery,
  ifMatchHeaders,
  nodeParams,
  queueConfigSchema,
  queueParams,
  queueQuery,
  rebuildNodesSchema,
  sleepBodySchema,
  usageQuerySchema,
} from "./schemas.js";
import { initScriptsBodySchema, storageDeleteQuery, storageOptionBodySchema } from "./storage-schemas.js";
import { addUserSchema, deleteUserQuery, userCredentialsSchema, userParams } from "./users-api.js";

/**
 * The REST edge: each route parses its inputs once with the schemas of schemas.ts (which also generate
 * docs/openapi.json), calls a service of lib/control/cluster-admin.ts, and shapes the answer. The rules
 * live in the services; errors become answers through the one table of errors.ts.
 */

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

/**
 * `userSecrets`: where users' passwords and keys go (lib/control/users.ts); absent, they are refused (501).
 * `takenUserIds`: uids new users must not get (the local mode's host; lib/local/user-ids.ts).
 */
export type ApiDeps = admin.ClusterAdminDeps & Pick<UsersDeps, "userSecrets" | "takenUserIds">;

/** Bodies beyond this are refused before they are parsed. */
const MAX_BODY_CHARS = 256 * 1024;

/** Deeper than any valid body (the configuration nests five levels). */
const MAX_DEPTH = 32;

const none = z.strictObject({});
type Schema = z.ZodType;

/** A route's inputs, each parsed with its schema (a route without a body gets `undefined`). */
interface Input<P extends Schema, Q extends Schema, H extends Schema, B extends Schema> {
  params: z.output<P>;
  query: z.output<Q>;
  headers: z.output<H>;
  body: z.output<B>;
}

/**
 * One route. `body`: "json" requires a JSON body, "none" refuses any body, "empty" takes none or `{}`.
 * `params` and `query` are the names of its path and query parameters (any other query parameter is
 * refused by name); `serve` parses every input with the route's schemas, then runs the route.
 */
export interface Route {
  method: "GET" | "POST" | "PUT" | "DELETE";
  path: string;
  pattern: RegExp;
  params: readonly string[];
  body: "json" | "none" | "empty";
  query: readonly string[];
  serve: (deps: ApiDeps, req: ApiRequest, params: readonly string[]) => Promise<ApiResponse>;
}

function route<
  P extends z.ZodObject = typeof none,
  Q extends z.ZodObject = typeof none,
  H extends z.ZodObject = typeof none,
  B extends Schema = typeof none,
>(spec: {
  method: Route["method"];
  path: string;
  params?: P;
  query?: Q;
  headers?: H;
  body?: { schema: B; required: boolean };
  run: (deps: ApiDeps, input: Input<P, Q, H, B>) => Promise<ApiResponse>;
}): Route {
  const params = [...spec.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1] as string);
  const paramSchema = spec.params ?? none;
  const declared = Object.keys(paramSchema.shape);
  if (params.join() !== declared.join())
    throw new Error(`${spec.path}: path parameters ${declared} do not match`);
  const querySchema = spec.query ?? none;
  const headerSchema = spec.headers ?? none;
  const body = spec.body;
  return {
    method: spec.method,
    path: spec.path,
    pattern: new RegExp(`^${spec.path.replace(/\{\w+\}/g, "([^/]+)")}$`),
    params,
    body: body === undefined ? "none" : body.required ? "json" : "empty",
    query: Object.keys(querySchema.shape),
    serve: async (deps, req, values) => {
      const input = {
        params: parsePath(paramSchema, params, values),
        query: parseQuery(querySchema, req.query ?? {}),
        headers: parseHeaders(headerSchema, req),
        body: body === undefined ? undefined : parseBody(body.schema, req, body.required),
      } as Input<P, Q, H, B>;
      return spec.run(deps, input);
    },
  };
}

const ROUTE_LIST = [
  route({
    method: "POST",
    path: "/clusters",
    headers: createHeaders,
    body: { schema: createClusterSchema, required: true },
    run: async (deps, { headers, body }) => {
      const { name, cloud, computeImageId, autoscaling, ...request } = body;
      const { cluster, created } = await admin.createCluster(
        deps,
        { name, cloud, computeImageId, autoscaling, request },
        headers["Idempotency-Key"],
      );
      return json(created ? 202 : 200, clusterView(cluster));
    },
  }),
  route({
    method: "POST",
    path: "/clusters/attach",
    body: { schema: attachClusterSchema, required: true },
    run: async (deps, { body }) => {
      const { cluster, checks, userMust } = await admin.attachCluster(deps, body);
      return json(201, { ...clusterView(cluster), checks, userMust });
    },
  }),
  route({
    method: "GET",
    path: "/clusters",
    run: async (deps) => json(200, { clusters: (await admin.listClusters(deps)).map(clusterView) }),
  }),
  route({
    method: "GET",
    path: "/clusters/{clusterId}",
    params: clusterParams,
    run: async (deps, { params }) => json(200, clusterView(await admin.getCluster(deps, params.clusterId))),
  }),
  route({
    method: "DELETE",
    path: "/clusters/{clusterId}",
    params: clusterParams,
    run: async (deps, { params }) =>
      json(202, clusterView(await admin.deleteCluster(deps, params.clusterId))),
  }),
  route({
    method: "POST",
    path: "/clusters/{clusterId}/detach",
    params: clusterParams,
    run: async (deps, { params }) =>
      json(202, clusterView(await admin.detachCluster(deps, params.clusterId))),
  }),
  route({
    method: "PUT",
    path: "/clusters/{clusterId}/autoscaling",
    params: clusterParams,
    headers: ifMatchHeaders,
    body: { schema: autoscalingSchema, required: true },
    run: async (deps, { params, headers, body }) =>
      json(
        200,
        clusterView(await admin.replaceAutoscaling(deps, params.clusterId, body, headers["If-Match"])),
      ),
  }),
  route({
    method: "POST",
    path: "/clusters/{clusterId}/nodes",
    params: clusterParams,
    body: { schema: addNodesSchema, required: true },
    run: async (deps, { params, body }) => json(200, await admin.addNodes(deps, params.clusterId, body)),
  }),
  route({
    method: "GET",
    path: "/clusters/{clusterId}/nodes",
    params: clusterParams,
    run: async (deps, { params }) => {
      const list = await admin.listNodes(deps, params.clusterId);
      return json(200, {
        ...list,
        at: iso(list.at),
        nodes: list.nodes.map((v) => ({
          ...v,
          launchedAt: iso(v.launchedAt),
          ...(v.joinedAt === undefined ? {} : { joinedAt: iso(v.joinedAt) }),
          ...(v.idleSince === undefined ? {} : { idleSince: iso(v.idleSince) }),
        })),
      });
    },
  }),
  route({
    method: "POST",
    path: "/clusters/{clusterId}/nodes/rebuild",
    params: clusterParams,
    body: { schema: rebuildNodesSchema, required: true },
    run: async (deps, { params, body }) => {
      const cluster = await admin.getCluster(deps, params.clusterId);
      const { provider, agent } = await deps.runtime(cluster);
      const { by, ...rest } = deps;
      return json(
        200,
        await rebuildNodes({ ...rest, provider, agent, ...(by === undefined ? {} : { by }) }, cluster, {
          ...(body.nodes === undefined ? {} : { nodes: body.nodes }),
          ...(body.bootGraceSeconds === undefined ? {} : { bootGraceSeconds: body.bootGraceSeconds }),
        }),
      );
    },
  }),
  route({
    method: "GET",
    path: "/clusters/{clusterId}/usage",
    params: clusterParams,
    query: usageQuerySchema,
    run: async (deps, { params, query }) => {
      const from = query.from === undefined ? undefined : Date.parse(query.from);
      const to = query.to === undefined ? undefined : Date.parse(query.to);
      if (from !== undefined && to !== undefined && to < from)
        throw new ValidationError("query", [{ path: "to", message: "must not be before from" }]);
      const report = await admin.usage(deps, params.clusterId, from, to);
      return json(200, {
        ...report,
        from: iso(report.from),
        to: iso(report.to),
        at: iso(report.at),
        nodes: report.nodes.map((n) => ({
          ...n,
          launchedAt: iso(n.launchedAt),
          ...(n.endedAt === undefined ? {} : { endedAt: iso(n.endedAt) }),
        })),
      });
    },
  }),
  route({
    method: "POST",
    path: "/clusters/{clusterId}/nodes/delete",
    params: clusterParams,
    body: { schema: deleteNodesSchema, required: true },
    run: async (deps, { params, body }) => {
      await admin.deleteNodes(deps, params.clusterId, body.nodes);
      return json(200, { deleted: body.nodes });
    },
  }),
  route({
    method: "POST",
    path: "/clusters/{clusterId}/sleep",
    params: clusterParams,
    body: { schema: sleepBodySchema, required: false },
    run: async (deps, { params, body }) => {
      const r = await sleepCluster(deps, params.clusterId, { stopMaster: body?.stopMaster === true });
      return json(200, { ...clusterView(r.cluster), ...sleepAnswer(r) });
    },
  }),
  route({
    method: "POST",
    path: "/clusters/{clusterId}/wake",
    params: clusterParams,
    body: { schema: emptyBodySchema, required: false },
    run: async (deps, { params }) => {
      const r = await wakeCluster(deps, params.clusterId);
      return json(200, { ...clusterView(r.cluster), ...sleepAnswer(r) });
    },
  }),
  // Stop or resume chosen compute nodes (HPC-NOW shutdownc / turnonc; lib/control/sleep.ts).
  route({
    method: "POST",
    path: "/clusters/{clusterId}/nodes/stop",
    params: clusterParams,
    body: { schema: chosenNodesSchema, required: true },
    run: async (deps, { params, body }) => json(200, await stopNodes(deps, params.clusterId, body.nodes)),
  }),
  route({
    method: "POST",
    path: "/clusters/{clusterId}/nodes/resume",
    params: clusterParams,
    body: { schema: chosenNodesSchema, required: true },
    run: async (deps, { params, body }) => json(200, await resumeNodes(deps, params.clusterId, body.nodes)),
  }),
  route({
    method: "GET",
    path: "/clusters/{clusterId}/events",
    params: clusterParams,
    query: eventsQuery,
    run: async (deps, { params, query }) => {
      const events = await admin.listEvents(deps, params.clusterId, query.limit);
      return json(200, { events: events.map((e) => ({ ...e, at: new Date(e.at).toISOString() })) });
    },
  }),
  route({
    method: "GET",
    path: "/clusters/{clusterId}/nodes/{node}/console",
    params: nodeParams,
    query: consoleQuery,
    run: async (deps, { params, query }) =>
      json(200, await admin.nodeConsole(deps, params.clusterId, params.node, query.lines)),
  }),
  route({
    method: "GET",
    path: "/clusters/{clusterId}/queues",
    params: clusterParams,
    run: async (deps, { params }) => {
      const cluster = await admin.getCluster(deps, params.clusterId);
      return json(200, { clusterId: cluster.clusterId, ...(await describeQueues(deps, cluster)) });
    },
  }),
  route({
    method: "POST",
    path: "/clusters/{clusterId}/queues",
    params: clusterParams,
    headers: ifMatchHeaders,
    body: { schema: queueConfigSchema, required: true },
    run: async (deps, { params, headers, body }) => {
      const cluster = await admin.getCluster(deps, params.clusterId);
      const config = await addQueue(deps, cluster, body, headers["If-Match"] ?? cluster.version);
      return json(200, { clusterId: cluster.clusterId, queue: body.queueName, autoscaling: config });
    },
  }),
  route({
    method: "DELETE",
    path: "/clusters/{clusterId}/queues/{queue}",
    params: queueParams,
    query: queueQuery,
    run: async (deps, { params, query }) => {
      const cluster = await admin.getCluster(deps, params.clusterId);
      const result = await deleteQueue(deps, cluster, params.queue, { force: query.force === "true" });
      return json(200, { clusterId: cluster.clusterId, ...result });
    },
  }),
  route({
    method: "POST",
    path: "/clusters/{clusterId}/queues/{queue}/reset-protection",
    params: queueParams,
    run: async (deps, { params }) =>
      json(200, await admin.resetProtection(deps, params.clusterId, params.queue)),
  }),
  // ── node setup: storage options and init scripts (lib/control/storage.ts) ──
  route({
    method: "GET",
    path: "/clusters/{clusterId}/storage",
    params: clusterParams,
    run: async (deps, { params }) => {
      const cluster = await admin.getCluster(deps, params.clusterId);
      return json(200, { clusterId: cluster.clusterId, storage: storage.describeStorageOptions(cluster) });
    },
  }),
  route({
    method: "POST",
    path: "/clusters/{clusterId}/storage",
    params: clusterParams,
    body: { schema: storageOptionBodySchema, required: true },
    run: async (deps, { params, body }) => {
      const cluster = await admin.getCluster(deps, params.clusterId);
      return json(200, {
        clusterId: cluster.clusterId,
        ...(await storage.addStorageOption(deps, cluster, body)),
      });
    },
  }),
  route({
    method: "DELETE",
    path: "/clusters/{clusterId}/storage",
    params: clusterParams,
    query: storageDeleteQuery,
    run: async (deps, { params, query }) => {
      const cluster = await admin.getCluster(deps, params.clusterId);
      if (query.localPath === undefined)
        throw new ValidationError("query", [
          { path: "localPath", message: "the mount point to delete, e.g. /data" },
        ]);
      const change = await storage.deleteStorageOption(deps, cluster, query.localPath, {
        force: query.force === "true",
      });
      return json(200, { clusterId: cluster.clusterId, ...change });
    },
  }),
  route({
    method: "GET",
    path: "/clusters/{clusterId}/init-scripts",
    params: clusterParams,
    run: async (deps, { params }) => {
      const cluster = await admin.getCluster(deps, params.clusterId);
      return json(200, { clusterId: cluster.clusterId, initScripts: storage.describeInitScripts(cluster) });
    },
  }),
  route({
    method: "PUT",
    path: "/clusters/{clusterId}/init-scripts",
    params: clusterParams,
    body: { schema: initScriptsBodySchema, required: true },
    run: async (deps, { params, body }) => {
      const cluster = await admin.getCluster(deps, params.clusterId);
      const scripts = await storage.setInitScripts(deps, cluster, body.initScripts);
      return json(200, { clusterId: cluster.clusterId, initScripts: scripts });
    },
  }),
  // ── cluster users (HPC-NOW userman; lib/control/users.ts, inputs in users-api.ts) ──
  route({
    method: "GET",
    path: "/clusters/{clusterId}/users",
    params: clusterParams,
    run: async (deps, { params }) => {
      const cluster = await admin.getCluster(deps, params.clusterId);
      return json(200, { clusterId: cluster.clusterId, users: users.listUsers(cluster) });
    },
  }),
  route({
    method: "POST",
    path: "/clusters/{clusterId}/users",
    params: clusterParams,
    body: { schema: addUserSchema, required: true },
    run: async (deps, { params, body }) => json(200, await users.addUser(deps, params.clusterId, body)),
  }),
  route({
    method: "DELETE",
    path: "/clusters/{clusterId}/users/{user}",
    params: userParams,
    query: deleteUserQuery,
    run: async (deps, { params, query }) => {
      const purge = query.purge === "true";
      const result = await users.deleteUser(deps, params.clusterId, params.user, { purge });
      return json(200, { clusterId: params.clusterId, ...result });
    },
  }),
  ...(["enable", "disable"] as const).map((verb) =>
    route({
      method: "POST",
      path: `/clusters/{clusterId}/users/{user}/${verb}`,
      params: userParams,
      body: { schema: emptyBodySchema, required: false },
      run: async (deps, { params }) =>
        json(200, await users.setUserEnabled(deps, params.clusterId, params.user, verb === "enable")),
    }),
  ),
  route({
    method: "PUT",
    path: "/clusters/{clusterId}/users/{user}/credentials",
    params: userParams,
    body: { schema: userCredentialsSchema, required: true },
    run: async (deps, { params, body }) =>
      json(200, await users.setUserSecret(deps, params.clusterId, params.user, body)),
  }),
];

/** Every route of the API (docs/control-plane.md; docs/openapi.json describes the inputs). */
export const ROUTES: readonly Route[] = ROUTE_LIST;

/**
 * Routes one request. An error the table of errors.ts knows becomes its JSON answer; any other is
 * rethrown for the Lambda's handler to log and answer 500 (handler.ts), never shown to the caller.
 */
export async function handleApiRequest(deps: ApiDeps, req: ApiRequest): Promise<ApiResponse> {
  try {
    const path = req.path.replace(/\/+$/, "") || "/";
    const matches = ROUTES.filter((r) => r.pattern.test(path));
    if (matches.length === 0) throw new NoRouteError("no such route");
    const served = matches.find((r) => r.method === req.method.toUpperCase());
    if (served === undefined)
      throw new MethodNotAllowedError(`use ${matches.map((r) => r.method).join(" or ")}`);
    checkBodyFraming(served, req);
    const params = (served.pattern.exec(path) ?? []).slice(1).map(decodePathPart);
    return await served.serve(
      req.principal === undefined ? deps : { ...deps, by: req.principal },
      req,
      params,
    );
  } catch (error) {
    const status = statusOf(error);
    if (status === undefined) throw error;
    return json(status, errorBody(error as Error));
  }
}

// ── parsing: each input once, with its schema ─────────────────────────────────────────────────────

/**
 * A body must be JSON and say so (`content-type: application/json`, parameters such as charset allowed):
 * anything else is 415 naming the header, before it is read. A route that takes no body refuses one.
 */
function checkBodyFraming(route: Route, req: ApiRequest): void {
  if (req.body === null || req.body === "") return;
  if (route.body === "none") {
    throw new ValidationError("request body", [
      { path: "", message: `${route.method} ${route.path} takes no body: send none` },
    ]);
  }
  const type = header(req, "content-type");
  const media = type?.split(";")[0]?.trim().toLowerCase();
  if (media !== "application/json") {
    throw new UnsupportedMediaTypeError(
      `content-type header: the body must be sent as application/json (got ${type === undefined ? "none" : admin.shown(type)})`,
      [{ path: "content-type", message: "use application/json" }],
    );
  }
}

/** Path parameters that are not valid names name nothing: 404 naming the parameter. */
function parsePath<P extends z.ZodObject>(
  schema: P,
  names: readonly string[],
  values: readonly string[],
): z.output<P> {
  const raw = Object.fromEntries(names.map((name, i) => [name, values[i] ?? ""]));
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  const issues = issuesFromZod(result.error, schema);
  const name = issues[0]?.path ?? "";
  throw new UnknownNameError(`no ${name} ${admin.shown(String(raw[name] ?? ""))}`, issues);
}

/** Query parameters the route does not read are refused by name (a typo is not silently ignored). */
function parseQuery<Q extends z.ZodObject>(
  schema: Q,
  query: Record<string, string | undefined>,
): z.output<Q> {
  const result = schema.safeParse(query);
  if (result.success) return result.data;
  const known = Object.keys(schema.shape);
  const issues: ValidationIssue[] = [];
  for (const issue of result.error.issues) {
    if (issue.code !== "unrecognized_keys") issues.push(...issuesFromZod(new z.ZodError([issue]), schema));
    else
      for (const key of issue.keys.slice(0, 20))
        issues.push({
          path: key.slice(0, 80),
          message: `unknown query parameter${known.length === 0 ? ": this route takes none" : `: use ${known.join(", ")}`}`,
        });
  }
  throw new ValidationError("query", issues);
}

/** The headers the route reads, by their names in any case; others are not the route's business. */
function parseHeaders<H extends z.ZodObject>(schema: H, req: ApiRequest): z.output<H> {
  const raw: Record<string, string> = {};
  for (const name of Object.keys(schema.shape)) {
    const value = header(req, name.toLowerCase());
    if (value !== undefined) raw[name] = value;
  }
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  const issues = issuesFromZod(result.error, schema);
  throw new ValidationError(`${issues.map((i) => i.path).join(", ")} header`, issues);
}

/** The body: absent only where the route allows, at most MAX_BODY_CHARS (413), JSON, then the schema. */
function parseBody<B extends Schema>(schema: B, req: ApiRequest, required: boolean): z.output<B> | undefined {
  if (req.body === null || req.body === "") {
    if (!required) return undefined;
    throw new ValidationError("request body", [{ path: "", message: "a JSON body is required" }]);
  }
  if (req.body.length > MAX_BODY_CHARS)
    throw new BodyTooLargeError(`request body is larger than ${MAX_BODY_CHARS} characters`);
  let raw: unknown;
  try {
    raw = JSON.parse(req.body);
  } catch {
    throw new ValidationError("request body", [{ path: "", message: "not valid JSON" }]);
  }
  const forbidden = forbiddenKeys(raw);
  if (forbidden.length > 0) throw new ValidationError("request body", forbidden);
  const result = schema.safeParse(raw);
  if (!result.success) throw new ValidationError("request body", issuesFromZod(result.error, schema));
  return result.data;
}

/**
 * Keys named `__proto__` and nesting beyond MAX_DEPTH, found without recursion (a body may nest deeply).
 * JSON.parse makes such a key an own property; schemas and object spreads would then drop it silently (or
 * set a prototype), so it is refused by its path instead.
 */
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

function header(req: ApiRequest, name: string): string | undefined {
  for (const [k, v] of Object.entries(req.headers)) if (k.toLowerCase() === name) return v;
  return undefined;
}

function decodePathPart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return "";
  }
}

// ── answers ───────────────────────────────────────────────────────────────────────────────────────

export function clusterView(c: ClusterRecord) {
  return {
    clusterId: c.clusterId,
    name: c.name,
    status: c.status,
    ...(c.reason === undefined ? {} : { reason: c.reason }),
    version: c.version,
    origin: originOf(c),
    ...(c.attachment === undefined ? {} : { attachment: c.attachment }),
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

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function json(statusCode: number, body: unknown): ApiResponse {
  return {
    statusCode,
    headers: { "content-type": "application/json", "cache-control": "no-store" },
    body: JSON.stringify(body),
  };
}

/** Sleep's and wake's answer beside the cluster: the nodes retired, waiting or resumed, the master. */
function sleepAnswer(r: {
  retired?: string[];
  waiting?: { node: string; reason: string }[];
  resumed?: string[];
  master?: { state: string; instanceIds: string[]; reason?: string };
}): Record<string, unknown> {
  return {
    ...(r.retired === undefined ? {} : { retired: r.retired }),
    ...(r.waiting === undefined ? {} : { waiting: r.waiting }),
    ...(r.resumed === undefined ? {} : { resumed: r.resumed }),
    ...(r.master === undefined ? {} : { master: r.master }),
  };
}
