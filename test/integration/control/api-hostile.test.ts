import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiRequest, ROUTES, type Route } from "../../../lib/control/api/routes.js";
import { type ApiBed, apiBed, snapshot, VALID_ATTACH, VALID_CREATE } from "../../support/api-bed.js";
import { CONFIG } from "../../support/control-bed.js";
import { startDynalite, type TestDynamo } from "../../support/dynalite.js";

/**
 * Every route and method of the API under hostile input: each input must be refused with a 4xx whose
 * error names the field, header, query or path parameter at fault, and no table may change.
 */

let db: TestDynamo;
beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => {
  await db.close();
});

// biome-ignore lint/suspicious/noExplicitAny: hostile values go into arbitrary places of a body
type Body = any;

/** Members of every JavaScript object: as names they must be refused or work, never be special. */
const OBJECT_MEMBER_NAMES = [
  "constructor",
  "toString",
  "__proto__",
  "hasOwnProperty",
  "valueOf",
  "prototype",
  "isPrototypeOf",
  "propertyIsEnumerable",
  "toLocaleString",
  "__defineGetter__",
  "__lookupSetter__",
];

const INJECTIONS = [
  "a; rm -rf /",
  "$(reboot)",
  "`id`",
  "../../etc/passwd",
  "x\nNodeName=evil",
  "' OR 1=1 --",
  "<script>alert(1)</script>",
  "-leading-dash",
  "é",
  "a".repeat(5000),
  "%00",
  "\u0000",
];

const NOT_STRINGS = [1e308, -1, 2 ** 53 + 1, 1.5, null, true, [], {}, [1, 2], { $ne: 1 }];

/** A string that is never a valid name here, or one of the object member names. */
const hostileName = fc.constantFrom(...INJECTIONS, "", ...OBJECT_MEMBER_NAMES);
const hostileValue = fc.oneof(fc.constantFrom(...INJECTIONS, ""), fc.constantFrom(...NOT_STRINGS));

/** One hostile request and what its answer must name. */
interface Hostile {
  route: Route;
  kind: string;
  req: ApiRequest;
  /** Found in the error or as an issue's path. */
  names: string;
}

interface Baseline {
  clusterId: string;
  body?: () => Body;
}

function baseline(route: Route, clusterId: string): Baseline {
  if (route.path === "/clusters" && route.method === "POST")
    return { clusterId, body: () => structuredClone(VALID_CREATE) };
  if (route.path === "/clusters/attach") return { clusterId, body: () => structuredClone(VALID_ATTACH) };
  if (route.path.endsWith("/autoscaling")) return { clusterId, body: () => structuredClone(CONFIG) };
  if (route.method === "POST" && route.path.endsWith("/nodes"))
    return { clusterId, body: () => ({ queue: "compute", count: 1 }) };
  if (route.path.endsWith("/nodes/rebuild")) return { clusterId, body: () => ({ nodes: ["i-none"] }) };
  if (route.path.endsWith("/nodes/delete")) return { clusterId, body: () => ({ nodes: ["i-none"] }) };
  if (route.path.endsWith("/nodes/stop") || route.path.endsWith("/nodes/resume"))
    return { clusterId, body: () => ({ nodes: ["i-none"] }) };
  if (route.method === "POST" && route.path.endsWith("/queues"))
    return {
      clusterId,
      body: () => ({
        queueName: "gpu",
        maxSize: 4,
        expansionNodeConfigs: [{ zone: "zone-a", instanceType: "c5.xlarge" }],
      }),
    };
  if (route.method === "POST" && route.path.endsWith("/storage"))
    return {
      clusterId,
      body: () => ({ protocol: "NFS 4.0", remotePath: "10.0.0.9:/export", localPath: "/data" }),
    };
  if (route.method === "PUT" && route.path.endsWith("/init-scripts"))
    return { clusterId, body: () => ({ initScripts: [] }) };
  if (route.method === "POST" && route.path.endsWith("/users"))
    return { clusterId, body: () => ({ name: "hostbase", password: "correct-horse-9" }) };
  if (route.path.endsWith("/credentials"))
    return { clusterId, body: () => ({ password: "correct-horse-9" }) };
  if (route.body === "empty") return { clusterId, body: () => ({}) };
  return { clusterId };
}

function pathOf(route: Route, values: Record<string, string>): string {
  return route.path.replace(/\{(\w+)\}/g, (_, p: string) => encodeURIComponent(values[p] ?? ""));
}

function request(
  route: Route,
  base: Baseline,
  change: { params?: Record<string, string>; body?: string | null; headers?: Record<string, string> } = {},
  query: Record<string, string> = {},
): ApiRequest {
  const params = {
    clusterId: base.clusterId,
    queue: "compute",
    node: "ln-none",
    user: "nobody1",
    ...change.params,
  };
  const body = change.body !== undefined ? change.body : base.body ? JSON.stringify(base.body()) : null;
  return {
    method: route.method,
    path: pathOf(route, params),
    headers: change.headers ?? (body === null ? {} : { "content-type": "application/json" }),
    query,
    body,
  };
}

/** Sets an own property, even one named `__proto__` (an assignment would set the prototype instead). */
function setOwn(target: Body, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Places in each body where a value can never be valid, with the arbitrary of such values. */
const FIELD_TARGETS: Record<
  string,
  { field: string; set: (b: Body, v: unknown) => void; values: fc.Arbitrary<unknown> }[]
> = {
  "POST /clusters": [
    { field: "name", set: (b, v) => setOwn(b, "name", v), values: hostileValue },
    {
      field: "cloud",
      set: (b, v) => setOwn(b, "cloud", v),
      values: fc.oneof(hostileValue, fc.constantFrom(...OBJECT_MEMBER_NAMES)),
    },
    { field: "master.imageId", set: (b, v) => setOwn(b.master, "imageId", v), values: hostileValue },
    {
      field: "autoscaling.queueConfigs[0].expansionNodeConfigs[0].instanceType",
      set: (b, v) => setOwn(b.autoscaling.queueConfigs[0].expansionNodeConfigs[0], "instanceType", v),
      values: fc.oneof(hostileValue, fc.constantFrom(...OBJECT_MEMBER_NAMES)),
    },
    {
      field: "autoscaling.catalogs[0]",
      set: (b, v) => setOwn(b.autoscaling, "catalogs", [v]),
      values: fc.oneof(hostileValue, fc.constantFrom(...OBJECT_MEMBER_NAMES)),
    },
    {
      field: "autoscaling.queueConfigs[0].maxSize",
      set: (b, v) => setOwn(b.autoscaling.queueConfigs[0], "maxSize", v),
      values: fc.constantFrom(1e308, -1, 1.5, 10_001, "10", null, true, [], {}, ...OBJECT_MEMBER_NAMES),
    },
  ],
  "POST /clusters/attach": [
    { field: "name", set: (b, v) => setOwn(b, "name", v), values: hostileValue },
    { field: "master.url", set: (b, v) => setOwn(b.master, "url", v), values: hostileValue },
    {
      field: "master.mungeKeySecret",
      set: (b, v) => setOwn(b.master, "mungeKeySecret", v),
      values: hostileValue,
    },
    {
      field: "master.channel",
      set: (b, v) => setOwn(b.master, "channel", v),
      values: fc.oneof(hostileValue, fc.constantFrom(...OBJECT_MEMBER_NAMES)),
    },
    {
      field: "autoscaling.queueConfigs[0].queueName",
      set: (b, v) => setOwn(b.autoscaling.queueConfigs[0], "queueName", v),
      values: hostileValue,
    },
  ],
  "PUT /clusters/{clusterId}/autoscaling": [
    {
      field: "queueConfigs[0].queueName",
      set: (b, v) => setOwn(b.queueConfigs[0], "queueName", v),
      values: hostileValue,
    },
    {
      field: "queueConfigs[0].expansionNodeConfigs[0].instanceType",
      set: (b, v) => setOwn(b.queueConfigs[0].expansionNodeConfigs[0], "instanceType", v),
      values: fc.oneof(hostileValue, fc.constantFrom(...OBJECT_MEMBER_NAMES)),
    },
    {
      field: "policy",
      set: (b, v) => setOwn(b, "policy", v),
      values: fc.oneof(hostileValue, fc.constantFrom(...OBJECT_MEMBER_NAMES)),
    },
  ],
  "POST /clusters/{clusterId}/nodes": [
    {
      field: "count",
      set: (b, v) => setOwn(b, "count", v),
      values: fc.constantFrom(0, 101, 1e308, -1, 1.5, "1", null, true, [], {}, ...OBJECT_MEMBER_NAMES),
    },
    {
      field: "queue",
      set: (b, v) => setOwn(b, "queue", v),
      values: fc.oneof(hostileValue, fc.constantFrom(...OBJECT_MEMBER_NAMES, "gpu")),
    },
    {
      field: "instanceType",
      set: (b, v) => setOwn(b, "instanceType", v),
      values: fc.oneof(hostileValue, fc.constantFrom(...OBJECT_MEMBER_NAMES, "m5.large")),
    },
    {
      field: "zone",
      set: (b, v) => setOwn(b, "zone", v),
      values: fc.oneof(hostileValue, fc.constantFrom(...OBJECT_MEMBER_NAMES, "zone-b")),
    },
  ],
  "POST /clusters/{clusterId}/nodes/rebuild": [
    {
      field: "nodes[0]",
      set: (b, v) => setOwn(b, "nodes", [v]),
      values: fc.oneof(hostileValue, fc.constantFrom(...OBJECT_MEMBER_NAMES)),
    },
    {
      field: "bootGraceSeconds",
      set: (b, v) => setOwn(b, "bootGraceSeconds", v),
      values: fc.constantFrom(-1, 86_401, 1e308, 1.5, "1", null, true, [], {}, ...OBJECT_MEMBER_NAMES),
    },
  ],
  "POST /clusters/{clusterId}/queues": [
    {
      field: "queueName",
      set: (b, v) => setOwn(b, "queueName", v),
      // "toString" and the like are valid queue names (the allow-list; kept in Maps, never as object
      // keys), so adding one is not refused: only what the allow-list refuses is hostile here.
      values: hostileValue,
    },
  ],
  "POST /clusters/{clusterId}/nodes/delete": [
    {
      field: "nodes[0]",
      set: (b, v) => setOwn(b, "nodes", [v]),
      values: fc.oneof(hostileValue, fc.constantFrom(...OBJECT_MEMBER_NAMES)),
    },
  ],
  "POST /clusters/{clusterId}/nodes/stop": [
    {
      field: "nodes[0]",
      set: (b, v) => setOwn(b, "nodes", [v]),
      values: fc.oneof(hostileValue, fc.constantFrom(...OBJECT_MEMBER_NAMES)),
    },
  ],
  "POST /clusters/{clusterId}/nodes/resume": [
    {
      field: "nodes[0]",
      set: (b, v) => setOwn(b, "nodes", [v]),
      // "valueOf" and the like are valid node names: resuming one Slurm does not list is answered in
      // notResumed (200, nothing changed), so only what the allow-list refuses is hostile here.
      values: hostileValue,
    },
  ],
  "POST /clusters/{clusterId}/sleep": [
    {
      field: "stopMaster",
      set: (b, v) => setOwn(b, "stopMaster", v),
      values: fc.constantFrom("yes", 1, null, [], {}, ...OBJECT_MEMBER_NAMES),
    },
  ],
};

const KNOWN_KEYS = new Set([
  "name",
  "cloud",
  "region",
  "computeImageId",
  "agentHealthTimeoutSeconds",
  "autoscaling",
  "master",
  "network",
  "queue",
  "count",
  "instanceType",
  "zone",
  "nodes",
  "bootGraceSeconds",
  "queueConfigs",
  "catalogs",
  "instanceTypes",
  "policy",
  "weighPrice",
  "expansionBusyTime",
  "shrinkIdleTime",
]);
const unknownKey = fc.oneof(
  fc.constantFrom(...OBJECT_MEMBER_NAMES.filter((n) => n !== "__proto__")),
  fc.stringMatching(/^[a-z]{1,12}$/).filter((k) => !KNOWN_KEYS.has(k)),
);

const BAD_CONTENT_TYPES = [
  undefined,
  "text/plain",
  "text/plain; charset=utf-8",
  "application/xml",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
  "application/jsonx",
  "application/json-patch+json",
  "text/json",
  "json",
  "",
  "constructor",
];

/** The object inside a body where a `__proto__` key goes, and its path. */
function protoPlaces(body: Body): { path: string; holder: Body }[] {
  const places: { path: string; holder: Body }[] = [{ path: "", holder: body }];
  const walk = (value: Body, path: string) => {
    if (typeof value !== "object" || value === null) return;
    for (const [k, v] of Object.entries(value)) {
      const p = Array.isArray(value) ? `${path}[${k}]` : path === "" ? k : `${path}.${k}`;
      if (typeof v === "object" && v !== null && !Array.isArray(v)) places.push({ path: p, holder: v });
      walk(v, p);
    }
  };
  walk(body, "");
  return places;
}

/** Every kind of hostile input that applies to the route. */
function hostileFor(route: Route, base: Baseline): fc.Arbitrary<Hostile>[] {
  const key = `${route.method} ${route.path}`;
  const kinds: fc.Arbitrary<Hostile>[] = [];
  const make = (kind: string, req: ApiRequest, names: string): Hostile => ({ route, kind, req, names });

  // Path parameters: hostile, object member names, or well formed but absent.
  for (const param of route.params) {
    kinds.push(
      fc
        .oneof(
          hostileName.filter((v) => v !== ""),
          fc.constantFrom("c-404", "nope"),
        )
        .map((v) => make(`path ${param}`, request(route, base, { params: { [param]: v } }), param)),
    );
  }
  // Query parameters the route does not read.
  kinds.push(
    fc
      .tuple(fc.oneof(unknownKey, fc.constantFrom("__proto__", "LIMIT", "Limit", "limit")), fc.string())
      .filter(([k]) => !route.query.includes(k))
      .map(([k, v]) => make("unknown query", request(route, base, {}, { [k]: v }), k)),
  );
  if (route.query.includes("limit")) {
    kinds.push(
      fc
        .constantFrom(
          ...["0", "1001", "-1", "1.5", "abc", "", "NaN", "Infinity", "1e9", "99999999999999999999"],
          ...OBJECT_MEMBER_NAMES,
        )
        .map((v) => make("query limit", request(route, base, {}, { limit: v }), "limit")),
    );
  }
  for (const param of ["from", "to"].filter((p) => route.query.includes(p))) {
    kinds.push(
      fc
        .constantFrom(
          "yesterday",
          "",
          "2026-13-01T00:00:00Z",
          "1767225600000",
          "2026-01-01",
          ...OBJECT_MEMBER_NAMES,
        )
        .map((v) => make(`query ${param}`, request(route, base, {}, { [param]: v }), param)),
    );
  }
  if (route.body === "none") {
    // A body where none is taken, whatever it is labelled.
    kinds.push(
      fc
        .tuple(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom("application/json", "text/plain"))
        .map(([v, type]) =>
          make(
            "body on a route without",
            request(route, base, { body: JSON.stringify(v) ?? "null", headers: { "content-type": type } }),
            "request body",
          ),
        ),
    );
  } else {
    // A body not labelled application/json.
    kinds.push(
      fc.tuple(fc.constantFrom(...BAD_CONTENT_TYPES), fc.boolean()).map(([type, upper]) => {
        const headers: Record<string, string> =
          type === undefined ? {} : { [upper ? "Content-Type" : "content-type"]: type };
        return make(`content-type ${type}`, request(route, base, { headers }), "content-type");
      }),
    );
    // A `__proto__` key anywhere in the body.
    kinds.push(
      fc.tuple(fc.nat(), fc.jsonValue({ maxDepth: 1 })).map(([n, value]) => {
        const body = base.body?.() ?? {};
        const places = protoPlaces(body);
        const place = places[n % places.length] as { path: string; holder: Body };
        setOwn(place.holder, "__proto__", value);
        const path = place.path === "" ? "__proto__" : `${place.path}.__proto__`;
        return make("__proto__ key", request(route, base, { body: JSON.stringify(body) }), path);
      }),
    );
  }
  if (route.body === "json") {
    // An unknown key at the top level.
    kinds.push(
      unknownKey.map((k) => {
        const body = base.body?.() ?? {};
        setOwn(body, k, "x");
        return make("unknown key", request(route, base, { body: JSON.stringify(body) }), k);
      }),
    );
    // Not JSON, or not an object.
    kinds.push(
      fc
        .constantFrom("{not json", "[]", "null", "1", '"x"', "{", '{"a":1}}')
        .map((text) => make("not a JSON object", request(route, base, { body: text }), "")),
    );
  }
  for (const target of FIELD_TARGETS[key] ?? []) {
    kinds.push(
      target.values.map((v) => {
        const body = base.body?.();
        target.set(body, v);
        return make(
          `field ${target.field}`,
          request(route, base, { body: JSON.stringify(body) }),
          target.field,
        );
      }),
    );
  }
  if (key === "POST /clusters") {
    kinds.push(
      fc
        .constantFrom("", "a b", "$(reboot)", "x".repeat(129), "ключ", "a;b", "../x", "a/b")
        .map((v) =>
          make(
            "Idempotency-Key",
            request(route, base, { headers: { "content-type": "application/json", "Idempotency-Key": v } }),
            "Idempotency-Key",
          ),
        ),
    );
  }
  if (key === "PUT /clusters/{clusterId}/autoscaling") {
    kinds.push(
      fc
        .constantFrom("abc", "0", "-1", "1.5", "", ...OBJECT_MEMBER_NAMES)
        .map((v) =>
          make(
            "If-Match",
            request(route, base, { headers: { "content-type": "application/json", "If-Match": v } }),
            "If-Match",
          ),
        ),
    );
  }
  return kinds;
}

/** The answer names the field: in the error line, or as the path of one of its issues. */
function namesIt(body: { error?: unknown; issues?: { path: string }[] }, names: string): boolean {
  if (names === "") return (body.issues ?? []).some((i) => i.path === "");
  return (
    (typeof body.error === "string" && body.error.toLowerCase().includes(names.toLowerCase())) ||
    (body.issues ?? []).some((i) => i.path === names)
  );
}

describe("API under hostile input, every route", () => {
  it("refuses every hostile input with a 4xx naming the field, and no table changes", async () => {
    // Prepare: a running cluster with a node, so that valid requests would act.
    const t: ApiBed = await apiBed(db);
    const id = await t.runningCluster();
    await t.call("POST", `/clusters/${id}/nodes`, { queue: "compute", count: 1 });
    const before = await snapshot(db, t.tables);
    const liveBefore = t.provider.fakeCloud.live().length;
    const startsBefore = t.workflows.startCalls.length;
    const perRoute = new Map<string, number>();
    const failures: string[] = [];
    let total = 0;
    let refused = 0;
    const arbitrary = fc
      .constantFrom(...ROUTES)
      .chain((route) => fc.oneof(...hostileFor(route, baseline(route, id))));
    // Act
    await fc.assert(
      fc.asyncProperty(arbitrary, async (h) => {
        total += 1;
        const routeKey = `${h.route.method} ${h.route.path}`;
        perRoute.set(routeKey, (perRoute.get(routeKey) ?? 0) + 1);
        const res = await t.request(h.req);
        const ok = res.status >= 400 && res.status < 500 && namesIt(res.body, h.names);
        if (ok) refused += 1;
        else if (failures.length < 5)
          failures.push(`${routeKey} ${h.kind}: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
        return ok;
      }),
      // About 50 per route, so that each route gets its 30 or more as routes are added.
      { numRuns: Math.max(1200, 50 * ROUTES.length), seed: 10, endOnFailure: true },
    );
    const unchanged = (await snapshot(db, t.tables)) === before;
    console.log(
      `hostile inputs ${total}, refused ${refused} (${Math.round((100 * refused) / total)}%), ` +
        `tables ${unchanged ? "unchanged" : "CHANGED"}; per route: ${[...perRoute].map(([r, n]) => `${r} ${n}`).join(", ")}`,
    );
    // Assess
    expect(failures).toEqual([]);
    expect(total).toBeGreaterThanOrEqual(1000);
    expect(refused).toBe(total);
    expect(unchanged).toBe(true);
    expect([...perRoute.keys()].sort()).toEqual(ROUTES.map((r) => `${r.method} ${r.path}`).sort());
    for (const n of perRoute.values()) expect(n).toBeGreaterThanOrEqual(30);
    expect(t.provider.fakeCloud.live()).toHaveLength(liveBefore);
    expect(t.workflows.startCalls.length).toBe(startsBefore);
  }, 120_000);
});

describe("API request framing", () => {
  it("answers 415 naming content-type for a body not sent as application/json, and accepts charset", async () => {
    // Prepare
    const t = await apiBed(db);
    const before = await snapshot(db, t.tables);
    // Act
    const plain = await t.call("POST", "/clusters", VALID_CREATE, { "content-type": "text/plain" });
    const none = await t.request({
      method: "POST",
      path: "/clusters",
      headers: {},
      query: {},
      body: JSON.stringify(VALID_CREATE),
    });
    const form = await t.call("POST", "/clusters", VALID_CREATE, {
      "content-type": "application/x-www-form-urlencoded",
    });
    const unchanged = (await snapshot(db, t.tables)) === before;
    const charset = await t.call("POST", "/clusters", VALID_CREATE, {
      "Content-Type": "Application/JSON; charset=UTF-8",
    });
    // Assess
    for (const res of [plain, none, form]) {
      expect(res.status).toBe(415);
      expect(res.body.error).toContain("content-type");
    }
    expect(plain.body.error).toContain('"text/plain"');
    expect(unchanged).toBe(true);
    expect(charset.status).toBe(202);
  });

  it("refuses a __proto__ key anywhere in a body with 400 naming its path, instead of dropping it", async () => {
    // Prepare: a key JSON.parse makes an own property, which the record schema would drop silently.
    const t = await apiBed(db);
    const id = await t.runningCluster();
    const before = await snapshot(db, t.tables);
    const config = `{"catalogs":["aws"],"instanceTypes":{"__proto__":{"vcpus":1,"memoryMiB":1}},"queueConfigs":[{"queueName":"compute","expansionNodeConfigs":[{"zone":"z","instanceType":"c5.xlarge"}]}]}`;
    // Act
    const nested = await t.call("PUT", `/clusters/${id}/autoscaling`, config);
    const top = await t.call(
      "POST",
      `/clusters/${id}/nodes`,
      '{"queue":"compute","count":1,"__proto__":{"count":50}}',
    );
    const sleep = await t.call("POST", `/clusters/${id}/sleep`, '{"__proto__":{}}');
    // Assess
    expect(nested.status).toBe(400);
    expect(nested.body.issues).toEqual([
      { path: "instanceTypes.__proto__", message: "a key named __proto__ is not allowed" },
    ]);
    expect(top.status).toBe(400);
    expect(top.body.issues[0].path).toBe("__proto__");
    expect(sleep.status).toBe(400);
    expect(sleep.body.issues[0].path).toBe("__proto__");
    expect(await snapshot(db, t.tables)).toBe(before);
    expect(t.provider.fakeCloud.live()).toHaveLength(0);
  });

  it("refuses unknown query parameters and bodies on routes that take none, naming them", async () => {
    // Prepare
    const t = await apiBed(db);
    const id = await t.runningCluster();
    // Act
    const query = await t.call(
      "GET",
      `/clusters/${id}/events`,
      undefined,
      {},
      { limit: "5", constructor: "1" },
    );
    const body = await t.call("DELETE", `/clusters/${id}`, { force: true });
    const deep = await t.call("PUT", `/clusters/${id}/autoscaling`, `${"[".repeat(5000)}${"]".repeat(5000)}`);
    // Assess
    expect(query.status).toBe(400);
    expect(query.body.issues[0].path).toBe("constructor");
    expect(body.status).toBe(400);
    expect(body.body.error).toContain("request body");
    expect((await t.store.getCluster(id))?.status).toBe("RUNNING");
    expect(deep.status).toBe(400);
  });
});
