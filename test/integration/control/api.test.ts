import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TableNames } from "../../../lib/state/tables.js";
import { type ApiBed, apiBed, snapshot, VALID_CREATE } from "../../support/api-bed.js";
import { CONFIG } from "../../support/control-bed.js";
import { startDynalite, type TestDynamo } from "../../support/dynalite.js";

let db: TestDynamo;
beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => {
  await db.close();
});

// biome-ignore lint/suspicious/noExplicitAny: the tests poke hostile values into arbitrary places of a body
type MutableBody = any;

const api = () => apiBed(db);
const runningCluster = (t: ApiBed) => t.runningCluster();
const snapshotOf = (tables: TableNames) => snapshot(db, tables);

describe("API", () => {
  it("creates a cluster, starts the create workflow, and a retried request with the same key returns it", async () => {
    // Prepare
    const t = await api();
    // Act
    const first = await t.call("POST", "/clusters", VALID_CREATE, { "Idempotency-Key": "req-1" });
    const retried = await t.call("POST", "/clusters", VALID_CREATE, { "idempotency-key": "req-1" });
    const other = await t.call("POST", "/clusters", VALID_CREATE, { "Idempotency-Key": "req-2" });
    // Assess
    expect(first.status).toBe(202);
    expect(first.body).toMatchObject({ clusterId: "c-1", status: "CREATING" });
    expect(first.body.executionArn).toContain("create-c-1");
    expect(retried.status).toBe(200);
    expect(retried.body.clusterId).toBe("c-1");
    expect(other.body.clusterId).toBe("c-3");
    expect(t.workflows.started.map((s) => s.name)).toEqual(["create-c-1", "create-c-3"]);
    expect(t.workflows.started[0]?.request).toMatchObject({ region: "local", master: { agentPort: 8787 } });
    const list = await t.call("GET", "/clusters");
    expect(list.body.clusters.map((c: { clusterId: string }) => c.clusterId)).toEqual(["c-1", "c-3"]);
  });

  it("rejects a bad body with 400 naming the field, and changes nothing", async () => {
    // Prepare
    const t = await api();
    const before = await snapshotOf(t.tables);
    const bad = structuredClone(VALID_CREATE) as MutableBody;
    bad.autoscaling.queueConfigs[0].scaleOutRatio = 101;
    // Act
    const res = await t.call("POST", "/clusters", bad);
    const unknown = await t.call("POST", "/clusters", { ...VALID_CREATE, extra: 1 });
    const notJson = await t.call("POST", "/clusters", "{not json");
    // Assess
    expect(res.status).toBe(400);
    expect(res.body.error).toContain("autoscaling.queueConfigs[0].scaleOutRatio");
    expect(res.body.issues[0].path).toBe("autoscaling.queueConfigs[0].scaleOutRatio");
    expect(unknown.body.issues[0].path).toBe("extra");
    expect(notJson.status).toBe(400);
    expect(await snapshotOf(t.tables)).toBe(before);
    expect(t.workflows.started).toEqual([]);
  });

  it("replaces the autoscaling configuration (validated by the core's schema)", async () => {
    // Prepare
    const t = await api();
    const id = await runningCluster(t);
    const next = { ...CONFIG, shrinkIdleTime: 600 };
    // Act
    const ok = await t.call("PUT", `/clusters/${id}/autoscaling`, next);
    const bad = await t.call("PUT", `/clusters/${id}/autoscaling`, {
      ...CONFIG,
      queueConfigs: [
        { queueName: "compute", expansionNodeConfigs: [{ zone: "z", instanceType: "nope.large" }] },
      ],
    });
    const stale = await t.call("PUT", `/clusters/${id}/autoscaling`, next, { "If-Match": "1" });
    const missing = await t.call("PUT", "/clusters/c-404/autoscaling", next);
    // Assess
    expect(ok.status).toBe(200);
    expect(ok.body.autoscaling.shrinkIdleTime).toBe(600);
    expect(bad.status).toBe(400);
    expect(bad.body.issues[0].path).toBe("queueConfigs[0].expansionNodeConfigs[0].instanceType");
    expect(stale.status).toBe(409);
    expect(missing.status).toBe(404);
  });

  it("adds nodes by hand through a recorded launch, and deletes them by hand", async () => {
    // Prepare
    const t = await api();
    const id = await runningCluster(t);
    // Act
    const added = await t.call("POST", `/clusters/${id}/nodes`, { queue: "compute", count: 2 });
    const nodes = added.body.nodes as string[];
    const deleted = await t.call("POST", `/clusters/${id}/nodes/delete`, { nodes: [nodes[0]] });
    const unknown = await t.call("POST", `/clusters/${id}/nodes/delete`, { nodes: ["i-nope"] });
    const badQueue = await t.call("POST", `/clusters/${id}/nodes`, { queue: "gpu", count: 1 });
    const tooMany = await t.call("POST", `/clusters/${id}/nodes`, { queue: "compute", count: 30 });
    // Assess
    expect(added.status).toBe(200);
    expect(nodes).toHaveLength(2);
    expect((await t.store.listLaunchIntents(id))[0]?.status).toBe("LAUNCHED");
    expect(deleted.status).toBe(200);
    expect(t.provider.fakeCloud.live().map((i) => i.id)).toEqual([nodes[1]]);
    expect((await t.store.listNodes(id)).map((n) => n.nodeName)).toEqual([nodes[1]]);
    expect(unknown.status).toBe(404);
    expect(badQueue.status).toBe(400);
    expect(badQueue.body.issues[0].path).toBe("queue");
    expect(tooMany.status).toBe(409);
  });

  it("shows a node's console where the provider keeps it, also once the node is gone; 501 where it cannot", async () => {
    // Prepare
    const t = await api();
    const id = await runningCluster(t);
    const added = await t.call("POST", `/clusters/${id}/nodes`, { queue: "compute", count: 1 });
    const node = (added.body.nodes as string[])[0] ?? "";
    const noConsole = await t.call("GET", `/clusters/${id}/nodes/${node}/console`);
    const asked: string[] = [];
    Object.assign(t.provider, {
      consoleOutput: async (instanceId: string, lines?: number) => {
        asked.push(`${instanceId}:${lines}`);
        return instanceId === "gone-1" ? "boot failed\nexit 1" : undefined;
      },
    });
    // Act
    const gone = await t.call("GET", `/clusters/${id}/nodes/gone-1/console`, undefined, {}, { lines: "5" });
    const none = await t.call("GET", `/clusters/${id}/nodes/${node}/console`);
    const badLines = await t.call(
      "GET",
      `/clusters/${id}/nodes/${node}/console`,
      undefined,
      {},
      { lines: "0" },
    );
    // Assess
    expect(noConsole.status).toBe(501);
    expect(gone.status).toBe(200);
    expect(gone.body).toEqual({ node: "gone-1", instanceId: "gone-1", output: "boot failed\nexit 1" });
    expect(none.status).toBe(404);
    expect(badLines.status).toBe(400);
    expect(badLines.body.issues[0].path).toBe("lines");
    expect(asked).toEqual(["gone-1:5", `${node}:100`]);
  });

  it("sleeps and wakes a running cluster, 409 otherwise; deletes with the delete workflow", async () => {
    // Prepare
    const t = await api();
    const id = await runningCluster(t);
    const creating = (await t.call("POST", "/clusters", VALID_CREATE)).body.clusterId as string;
    // Act
    const asleep = await t.call("POST", `/clusters/${id}/sleep`);
    const wrong = await t.call("POST", `/clusters/${creating}/wake`);
    const awake = await t.call("POST", `/clusters/${id}/wake`);
    const tooEarly = await t.call("DELETE", `/clusters/${creating}`);
    const deleting = await t.call("DELETE", `/clusters/${id}`);
    const again = await t.call("DELETE", `/clusters/${id}`);
    const events = await t.call("GET", `/clusters/${id}/events`);
    // Assess
    expect(asleep.body.status).toBe("SLEEPING");
    expect(wrong.status).toBe(409);
    expect(awake.body.status).toBe("RUNNING");
    expect(tooEarly.status).toBe(409);
    expect(deleting.status).toBe(202);
    expect(deleting.body.status).toBe("DELETING");
    expect(again.status).toBe(202);
    expect(t.workflows.started.filter((s) => s.kind === "delete")).toHaveLength(1);
    expect(events.body.events[0].message).toBe("cluster deletion started");
  });

  it("answers 404 for unknown routes and clusters, 405 for a wrong method", async () => {
    const t = await api();
    expect((await t.call("GET", "/nowhere")).status).toBe(404);
    expect((await t.call("GET", "/clusters/c-none")).status).toBe(404);
    expect((await t.call("GET", "/clusters/..%2F..%2Fetc")).status).toBe(404);
    expect((await t.call("PATCH", "/clusters")).status).toBe(405);
    const huge = await t.call("POST", "/clusters", `{"name":"${"a".repeat(300_000)}"}`);
    expect(huge.status).toBe(413);
  });
});

// ── hostile inputs ──────────────────────────────────────────────────────────────────────────────────

const hostileValue = fc.oneof(
  fc.constantFrom(
    "a; rm -rf /",
    "$(reboot)",
    "`id`",
    "../../etc/passwd",
    "x\nNodeName=evil",
    "' OR 1=1 --",
    "<script>alert(1)</script>",
    "-leading-dash",
    "",
    "é",
    "a".repeat(5000),
  ),
  fc.constantFrom(1e308, -1, 2 ** 53 + 1, 1.5, Number.MAX_SAFE_INTEGER, -1e308),
  fc.constantFrom(null, true, [], {}, [1, 2], { $ne: 1 }),
);

/** Places in each body where a hostile value can never be valid. */
const TARGETS: {
  path: string;
  method: string;
  route: (id: string) => string;
  body: () => MutableBody;
  set: (b: MutableBody, v: unknown) => void;
  field: string;
}[] = [
  {
    path: "name",
    method: "POST",
    route: () => "/clusters",
    body: () => structuredClone(VALID_CREATE),
    set: (b, v) => {
      b.name = v;
    },
    field: "name",
  },
  {
    path: "cloud",
    method: "POST",
    route: () => "/clusters",
    body: () => structuredClone(VALID_CREATE),
    set: (b, v) => {
      b.cloud = v;
    },
    field: "cloud",
  },
  {
    path: "master.imageId",
    method: "POST",
    route: () => "/clusters",
    body: () => structuredClone(VALID_CREATE),
    set: (b, v) => {
      b.master.imageId = v;
    },
    field: "master.imageId",
  },
  {
    path: "maxSize",
    method: "POST",
    route: () => "/clusters",
    body: () => structuredClone(VALID_CREATE),
    set: (b, v) => {
      b.autoscaling.queueConfigs[0].maxSize = v;
    },
    field: "autoscaling.queueConfigs[0].maxSize",
  },
  {
    path: "queueName",
    method: "PUT",
    route: (id) => `/clusters/${id}/autoscaling`,
    body: () => structuredClone(CONFIG),
    set: (b, v) => {
      b.queueConfigs[0].queueName = v;
    },
    field: "queueConfigs[0].queueName",
  },
  {
    path: "instanceType",
    method: "PUT",
    route: (id) => `/clusters/${id}/autoscaling`,
    body: () => structuredClone(CONFIG),
    set: (b, v) => {
      b.queueConfigs[0].expansionNodeConfigs[0].instanceType = v;
    },
    field: "queueConfigs[0].expansionNodeConfigs[0].instanceType",
  },
  {
    path: "count",
    method: "POST",
    route: (id) => `/clusters/${id}/nodes`,
    body: () => ({ queue: "compute", count: 1 }),
    set: (b, v) => {
      b.count = v;
    },
    field: "count",
  },
  {
    path: "queue",
    method: "POST",
    route: (id) => `/clusters/${id}/nodes`,
    body: () => ({ queue: "compute", count: 1 }),
    set: (b, v) => {
      b.queue = v;
    },
    field: "queue",
  },
  {
    path: "nodes",
    method: "POST",
    route: (id) => `/clusters/${id}/nodes/delete`,
    body: () => ({ nodes: ["i-1"] }),
    set: (b, v) => {
      b.nodes = [v];
    },
    field: "nodes[0]",
  },
];

/** Values that happen to be valid somewhere are skipped per target (e.g. 1e308 is a bad count but "" is a bad name). */
function isHostileFor(field: string, v: unknown): boolean {
  if (field === "count") return !(Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 100);
  if (field.endsWith("maxSize"))
    return !(Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 10_000);
  return true;
}

describe("API under hostile input", () => {
  it("answers 400 naming the field for every hostile value and unknown key, and changes nothing", async () => {
    // Prepare
    const t = await api();
    const id = await runningCluster(t);
    const before = await snapshotOf(t.tables);
    const liveBefore = t.provider.fakeCloud.live().length;
    // Act / Assess
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...TARGETS),
        hostileValue,
        fc.option(
          fc
            .string({ minLength: 1, maxLength: 20 })
            .filter(
              (k) =>
                /^[a-z]+$/i.test(k) &&
                ![
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
                  "queueConfigs",
                  "catalogs",
                  "instanceTypes",
                  "policy",
                  "weighPrice",
                  "expansionBusyTime",
                  "shrinkIdleTime",
                ].includes(k),
            ),
        ),
        async (target, value, unknownKey) => {
          fc.pre(isHostileFor(target.field, value));
          const body = target.body();
          target.set(body, value);
          if (unknownKey !== null) body[unknownKey] = "x";
          const res = await t.call(target.method, target.route(id), body);
          expect(res.status).toBe(400);
          const paths = (res.body.issues as { path: string }[]).map((i) => i.path);
          expect(paths.some((p) => p === target.field || (unknownKey !== null && p === unknownKey))).toBe(
            true,
          );
        },
      ),
      { numRuns: 150, seed: 6 },
    );
    expect(await snapshotOf(t.tables)).toBe(before);
    expect(t.provider.fakeCloud.live()).toHaveLength(liveBefore);
    expect(t.workflows.started.filter((s) => s.clusterId !== id)).toEqual([]);
  });

  it("never answers 5xx to arbitrary JSON on any route", async () => {
    const t = await api();
    const id = await runningCluster(t);
    const before = await snapshotOf(t.tables);
    const routes = [
      "/clusters",
      `/clusters/${id}/autoscaling`,
      `/clusters/${id}/nodes`,
      `/clusters/${id}/nodes/delete`,
    ];
    const methods: Record<string, string> = { "/clusters": "POST", [`/clusters/${id}/autoscaling`]: "PUT" };
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...routes), fc.jsonValue({ maxDepth: 3 }), async (route, body) => {
        const res = await t.call(methods[route] ?? "POST", route, body);
        expect(res.status).toBe(400);
      }),
      { numRuns: 100, seed: 7 },
    );
    expect(await snapshotOf(t.tables)).toBe(before);
  });
});
