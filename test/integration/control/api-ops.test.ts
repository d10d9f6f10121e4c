import { Logger } from "@aws-lambda-powertools/logger";
import type { APIGatewayProxyEvent, Context } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApiHandler } from "../../../lib/control/api/handler.js";
import { type ApiBed, apiBed, snapshot } from "../../support/api-bed.js";
import { T0 } from "../../support/control-bed.js";
import { freshStore, startDynalite, type TestDynamo } from "../../support/dynalite.js";

/**
 * Day-2 operations through the API handler on dynalite (the deployed service's code path): the node list
 * (THPC DescribeNodes), rebuild of failed nodes (HPC-NOW rebuild), usage that adds up to the node
 * records with figures worked by hand, and the operator's principal on the events (history).
 * CONFIG: queue `compute`, c5.xlarge in zone-a from the AWS catalog at 0.17 per hour, bootTimeout 900 s.
 */

let db: TestDynamo;
beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => {
  await db.close();
});

const MIN = 60_000;
const HOUR = 3_600_000;
const PRINCIPAL = "arn:aws:sts::123456789012:assumed-role/Admin/alice";

/** Adds `count` nodes to `compute` by hand, as principal; their instance ids. */
async function addNodes(t: ApiBed, id: string, count: number): Promise<string[]> {
  const res = await t.request({
    method: "POST",
    path: `/clusters/${id}/nodes`,
    headers: { "content-type": "application/json" },
    query: {},
    body: JSON.stringify({ queue: "compute", count }),
    principal: PRINCIPAL,
  });
  expect(res.status).toBe(200);
  return res.body.nodes as string[];
}

describe("GET /clusters/{id}/nodes", () => {
  it("lists each node with Slurm's state, idle time, cost so far and whether it may be rebuilt", async () => {
    // Prepare: three nodes at T0; one joins IDLE at T0+10 min, one is DOWN in Slurm, one never joins
    const t = await apiBed(db);
    const id = await t.runningCluster();
    const [idle, down, booting] = (await addNodes(t, id, 3)) as [string, string, string];
    t.clock.advance(10 * MIN);
    t.agent.join(idle, "compute", "c5.xlarge", "zone-a");
    t.agent.join(down, "compute", "c5.xlarge", "zone-a");
    Object.assign(t.agent.nodes[1] ?? {}, { state: "DOWN", slurmState: "DOWN*+DYNAMIC_NORM" });
    t.clock.advance(15 * MIN);
    const [fresh] = (await addNodes(t, id, 1)) as [string];
    t.clock.advance(5 * MIN);
    // Act
    const res = await t.call("GET", `/clusters/${id}/nodes`);
    t.agent.outage = "agent";
    const blind = await t.call("GET", `/clusters/${id}/nodes`);
    const unknown = await t.call("GET", "/clusters/c-nope/nodes");
    // Assess: 30 min at 0.17/h is 0.085 each
    expect(res.status).toBe(200);
    expect(res.body.slurm).toEqual({ reachable: true });
    const byName = new Map(res.body.nodes.map((n: { node: string }) => [n.node, n]));
    expect(byName.get(idle)).toMatchObject({
      queue: "compute",
      instanceType: "c5.xlarge",
      zone: "zone-a",
      status: "LAUNCHING",
      slurmState: "IDLE+DYNAMIC_NORM",
      runningJob: false,
      launchedAt: new Date(T0).toISOString(),
      idleSince: new Date(T0 + 10 * MIN).toISOString(),
      idleSeconds: 1200,
      hours: 0.5,
      pricePerHour: 0.17,
      costSoFar: 0.085,
      rebuild: { eligible: false, reason: "healthy (IDLE+DYNAMIC_NORM)" },
    });
    expect(byName.get(down)).toMatchObject({
      slurmState: "DOWN*+DYNAMIC_NORM",
      idleSeconds: null,
      rebuild: { eligible: true, reason: "DOWN*+DYNAMIC_NORM in Slurm" },
    });
    expect(byName.get(booting)).toMatchObject({
      slurmState: null,
      rebuild: { eligible: true, reason: "boot failed: not in Slurm 1800 s after launch" },
    });
    expect(byName.get(fresh)).toMatchObject({
      hours: 0.083333,
      costSoFar: 0.014167,
      rebuild: { eligible: false, reason: "still booting (300 s of 900 s)" },
    });
    expect(blind.status).toBe(200);
    expect(blind.body.slurm.reachable).toBe(false);
    expect(blind.body.nodes).toHaveLength(4);
    expect(blind.body.nodes[0]).toMatchObject({ slurmState: null, runningJob: null, costSoFar: 0.085 });
    expect(unknown.status).toBe(404);
    expect(unknown.body.issues[0].path).toBe("clusterId");
  });
});

describe("POST /clusters/{id}/nodes/rebuild", () => {
  it("retires only failed nodes and launches their replacements in the same queue, recording who asked", async () => {
    // Prepare: one healthy IDLE node, one DOWN, one running a job while DOWN, one failed boot
    const t = await apiBed(db);
    const id = await t.runningCluster();
    const [healthy, down, busy, failedBoot] = (await addNodes(t, id, 4)) as [string, string, string, string];
    for (const n of [healthy, down, busy]) t.agent.join(n, "compute", "c5.xlarge", "zone-a");
    Object.assign(t.agent.nodes[1] ?? {}, { state: "DOWN", slurmState: "DOWN+DYNAMIC_NORM" });
    Object.assign(t.agent.nodes[2] ?? {}, {
      state: "DOWN",
      slurmState: "DOWN+DYNAMIC_NORM",
      cpusAllocated: 2,
    });
    t.clock.advance(16 * MIN);
    const before = await snapshot(db, t.tables);
    const call = (body: unknown) =>
      t.request({
        method: "POST",
        path: `/clusters/${id}/nodes/rebuild`,
        headers: { "content-type": "application/json" },
        query: {},
        body: JSON.stringify(body),
        principal: PRINCIPAL,
      });
    // Act: naming a healthy and a busy node is refused whole; then every failed node
    const refused = await call({ nodes: [down, healthy, busy] });
    const unknownNode = await call({ nodes: ["i-nope"] });
    const afterRefusals = await snapshot(db, t.tables);
    const rebuilt = await call({});
    // Assess
    expect(refused.status).toBe(409);
    expect(refused.body.issues).toEqual([
      { path: "nodes[1]", message: `${healthy}: healthy (IDLE+DYNAMIC_NORM): only failed nodes are rebuilt` },
      { path: "nodes[2]", message: `${busy}: runs a job: only failed nodes are rebuilt` },
    ]);
    expect(unknownNode.status).toBe(404);
    expect(unknownNode.body.issues[0].path).toBe("nodes[0]");
    expect(afterRefusals).toBe(before);
    expect(rebuilt.status).toBe(200);
    expect(rebuilt.body.rebuilt.map((r: { node: string }) => r.node).sort()).toEqual(
      [down, failedBoot].sort(),
    );
    expect(rebuilt.body.launched).toHaveLength(2);
    expect(rebuilt.body.failures).toEqual([]);
    const live = t.provider.fakeCloud.live().map((i) => i.id);
    expect(live).not.toContain(down);
    expect(live).not.toContain(failedBoot);
    expect(live).toEqual(expect.arrayContaining([healthy, busy, ...rebuilt.body.launched]));
    const records = await t.store.listNodes(id);
    expect(records.map((r) => r.nodeName).sort()).toEqual([healthy, busy, ...rebuilt.body.launched].sort());
    for (const n of rebuilt.body.launched) {
      expect(records.find((r) => r.nodeName === n)).toMatchObject({
        queue: "compute",
        instanceType: "c5.xlarge",
        zone: "zone-a",
      });
    }
    // Slurm was told about the DOWN node only (the failed boot never joined)
    const deleted = t.agent.calls
      .filter((c) => c.action === "deleteNode")
      .map((c) => (c as { node: string }).node);
    expect(deleted).toEqual([down]);
    // The retired nodes' usage is kept
    expect((await t.store.listEndedNodes(id)).map((n) => [n.nodeName, n.endedAt]).sort()).toEqual(
      [
        [down, T0 + 16 * MIN],
        [failedBoot, T0 + 16 * MIN],
      ].sort(),
    );
    const events = await t.store.listEvents(id, 20);
    const manual = events.find((e) => e.kind === "MANUAL");
    expect(manual).toMatchObject({ by: PRINCIPAL, count: 2 });
    expect(events.find((e) => e.kind === "LAUNCHED" && e.message.includes("rebuild of"))?.by).toBe(PRINCIPAL);
  });

  it("refuses with 503 when Slurm cannot be read, and 409 on a cluster that is not RUNNING; nothing changes", async () => {
    // Prepare
    const t = await apiBed(db);
    const id = await t.runningCluster();
    await addNodes(t, id, 1);
    t.clock.advance(16 * MIN);
    t.agent.outage = "slurmctld";
    const before = await snapshot(db, t.tables);
    // Act
    const blind = await t.call("POST", `/clusters/${id}/nodes/rebuild`, {});
    await t.call("POST", `/clusters/${id}/sleep`);
    const mid = await snapshot(db, t.tables);
    const asleep = await t.call("POST", `/clusters/${id}/nodes/rebuild`, {});
    const badBody = await t.call("POST", `/clusters/${id}/nodes/rebuild`, { bootGraceSeconds: -1 });
    // Assess
    expect(blind.status).toBe(503);
    expect(blind.body.error).toContain("nothing rebuilt");
    expect(asleep.status).toBe(409);
    expect(badBody.status).toBe(400);
    expect(badBody.body.issues[0].path).toBe("bootGraceSeconds");
    expect(before).not.toBe(mid); // the sleep itself wrote; the refusals around it did not
    expect(await snapshot(db, t.tables)).toBe(mid);
    expect(t.provider.fakeCloud.live()).toHaveLength(1);
  });
});

describe("GET /clusters/{id}/usage", () => {
  it("adds up to the node records: hours per day, queue and type, cost at the catalog's price (worked by hand)", async () => {
    // Prepare: A and B launched at T0 (2026-01-01 00:00Z); A deleted at 01:30; B runs on past midnight;
    // C launched at 2026-01-01 23:00 and retired at 2026-01-02 00:30 by rebuild-free delete.
    const t = await apiBed(db);
    const id = await t.runningCluster();
    const [a, b] = (await addNodes(t, id, 2)) as [string, string];
    t.clock.advance(90 * MIN);
    expect((await t.call("POST", `/clusters/${id}/nodes/delete`, { nodes: [a] })).status).toBe(200);
    t.clock.advance(21.5 * HOUR); // 23:00
    const [c] = (await addNodes(t, id, 1)) as [string];
    t.clock.advance(90 * MIN); // 2026-01-02 00:30
    expect((await t.call("POST", `/clusters/${id}/nodes/delete`, { nodes: [c] })).status).toBe(200);
    t.clock.advance(30 * MIN); // 01:00, B still runs
    // Act
    const all = await t.call("GET", `/clusters/${id}/usage`);
    const day2 = await t.call(
      "GET",
      `/clusters/${id}/usage`,
      undefined,
      {},
      { from: "2026-01-02T00:00:00Z" },
    );
    const bad = await t.call("GET", `/clusters/${id}/usage`, undefined, {}, { from: "yesterday" });
    const reversed = await t.call(
      "GET",
      `/clusters/${id}/usage`,
      undefined,
      {},
      {
        from: "2026-01-02T00:00:00Z",
        to: "2026-01-01T00:00:00Z",
      },
    );
    // Assess, by hand:
    //   2026-01-01: A 1.5 h + B 24 h + C 1 h = 26.5 h over 3 nodes, × 0.17 = 4.505
    //   2026-01-02: B 1 h + C 0.5 h = 1.5 h over 2 nodes, × 0.17 = 0.255
    expect(all.status).toBe(200);
    expect(all.body.rows).toEqual([
      {
        clusterId: id,
        day: "2026-01-01",
        queue: "compute",
        instanceType: "c5.xlarge",
        nodes: 3,
        nodeHours: 26.5,
        pricePerHour: 0.17,
        cost: 4.505,
      },
      {
        clusterId: id,
        day: "2026-01-02",
        queue: "compute",
        instanceType: "c5.xlarge",
        nodes: 2,
        nodeHours: 1.5,
        pricePerHour: 0.17,
        cost: 0.255,
      },
    ]);
    expect(all.body.total).toEqual({ nodeHours: 28, cost: 4.76, unpricedNodeHours: 0 });
    expect(all.body.from).toBe("2026-01-01T00:00:00.000Z");
    expect(all.body.to).toBe("2026-01-02T01:00:00.000Z");
    // per node: the figures the rows are made of
    const hours = Object.fromEntries(
      all.body.nodes.map((n: { node: string; hours: number }) => [n.node, n.hours]),
    );
    expect(hours).toEqual({ [a]: 1.5, [b]: 25, [c]: 1.5 });
    expect(all.body.nodes.find((n: { node: string }) => n.node === a).endedAt).toBe(
      "2026-01-01T01:30:00.000Z",
    );
    expect(all.body.nodes.find((n: { node: string }) => n.node === b).endedAt).toBeUndefined();
    expect(day2.body.rows).toHaveLength(1);
    expect(day2.body.total).toEqual({ nodeHours: 1.5, cost: 0.255, unpricedNodeHours: 0 });
    expect(bad.status).toBe(400);
    expect(bad.body.issues[0].path).toBe("from");
    expect(reversed.status).toBe(400);
    expect(reversed.body.issues[0].path).toBe("to");
  });
});

describe("history: the operator's principal on the events", () => {
  it("records the IAM principal API Gateway authenticated, and none on the service's own events", async () => {
    // Prepare: the deployed handler (createApiHandler, as functions/api.ts builds it) over the bed's deps
    const t = await apiBed(db);
    const id = await t.runningCluster();
    const handler = createApiHandler(t.deps, new Logger({ serviceName: "test", logLevel: "SILENT" }));
    const event = (method: string, path: string, userArn: string | null) =>
      ({
        httpMethod: method,
        path,
        headers: {},
        queryStringParameters: null,
        body: null,
        isBase64Encoded: false,
        requestContext: { identity: { userArn, caller: userArn === null ? null : "AROAEXAMPLE:alice" } },
      }) as unknown as APIGatewayProxyEvent;
    const context = {
      functionName: "api",
      awsRequestId: "r-1",
      getRemainingTimeInMillis: () => 29_000,
    } as unknown as Context;
    // Act
    const slept = await handler(event("POST", `/clusters/${id}/sleep`, PRINCIPAL), context);
    const woke = await handler(event("POST", `/clusters/${id}/wake`, null), context);
    const listed = await t.call("GET", `/clusters/${id}/events`);
    // Assess
    expect(slept.statusCode).toBe(200);
    expect(woke.statusCode).toBe(200);
    const byMessage = new Map(
      listed.body.events.map((e: { message: string; by?: string }) => [e.message, e.by]),
    );
    expect(byMessage.get("asleep")).toBe(PRINCIPAL);
    expect(byMessage.has("awake")).toBe(true);
    expect(byMessage.get("awake")).toBeUndefined();
  });
});

describe("the usage history (DynamoStateStore)", () => {
  it("keeps a deleted node's record with its end; a retried delete keeps the first end; endedSince filters", async () => {
    // Prepare: two records, one TERMINATING (its retirement decided at T0+2 h)
    const { store } = await freshStore(db);
    const base = {
      clusterId: "c-u",
      queue: "compute",
      instanceType: "c5.xlarge",
      zone: "zone-a",
      chargeType: "ON_DEMAND" as const,
      launchedAt: T0,
      updatedAt: T0,
    };
    await store.putNode({ ...base, nodeName: "i-a", instanceId: "i-a", status: "JOINED" });
    await store.putNode({ ...base, nodeName: "i-b", instanceId: "i-b", status: "JOINED" });
    await store.updateNodeStatus("c-u", "i-b", "JOINED", "TERMINATING", T0 + 2 * HOUR);
    // Act: i-a deleted at T0+1 h and again later (a retry); i-b without an end (its retirement's time)
    await store.deleteNode("c-u", "i-a", T0 + HOUR);
    await store.putNode({ ...base, nodeName: "i-a", instanceId: "i-a", status: "JOINED" });
    await store.deleteNode("c-u", "i-a", T0 + 5 * HOUR);
    await store.deleteNode("c-u", "i-b");
    await store.deleteNode("c-u", "i-gone", T0); // nothing to keep
    // Assess
    expect(await store.listNodes("c-u")).toEqual([]);
    const ended = await store.listEndedNodes("c-u");
    expect(ended.map((n) => [n.nodeName, n.endedAt, n.status])).toEqual([
      ["i-a", T0 + HOUR, "JOINED"],
      ["i-b", T0 + 2 * HOUR, "TERMINATING"],
    ]);
    expect(ended[0]).not.toHaveProperty("usageKey");
    expect(ended[0]).not.toHaveProperty("expiresAt");
    expect((await store.listEndedNodes("c-u", T0 + 90 * MIN)).map((n) => n.nodeName)).toEqual(["i-b"]);
  });
});
