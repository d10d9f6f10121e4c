import { describe, expect, it } from "vitest";
import { clusterPrices, computeUsage, type PriceOf } from "../../../lib/control/usage.js";
import type { EndedNode, NodeRecord } from "../../../lib/ports/state-store.js";

/**
 * Usage is a pure function of the node records and the prices: every figure here is worked by hand.
 * Day 1 is 2026-03-01 (UTC).
 */
const D1 = Date.UTC(2026, 2, 1);
const H = 3_600_000;
const PRICES: Record<string, number> = { small: 0.1, big: 0.4 };
const price: PriceOf = (t) => (Object.hasOwn(PRICES, t) ? PRICES[t] : undefined);

function node(name: string, fields: Partial<NodeRecord> = {}): NodeRecord {
  return {
    clusterId: "c-1",
    nodeName: name,
    instanceId: name,
    queue: "compute",
    instanceType: "small",
    zone: "a",
    chargeType: "ON_DEMAND",
    status: "JOINED",
    launchedAt: D1,
    updatedAt: D1,
    ...fields,
  };
}

const ended = (name: string, endedAt: number, fields: Partial<NodeRecord> = {}): EndedNode => ({
  ...node(name, fields),
  endedAt,
});

describe("computeUsage", () => {
  it("cuts each node at UTC midnight and sums per day, queue and type; cost at each type's price", () => {
    // Prepare: n1 small 22:00 → 02:00 next day (2 h + 2 h); n2 big in gpu 10:00 → 10:30 (ended);
    // n3 small still running from 23:00, now is day 2 01:00 (1 h + 1 h)
    const now = D1 + 25 * H;
    // Act
    const u = computeUsage({
      clusterId: "c-1",
      live: [node("n3", { launchedAt: D1 + 23 * H })],
      ended: [
        ended("n1", D1 + 26 * H, { launchedAt: D1 + 22 * H }),
        ended("n2", D1 + 10.5 * H, { launchedAt: D1 + 10 * H, queue: "gpu", instanceType: "big" }),
      ],
      price,
      now,
    });
    // Assess: n1 ends after now (clock skew): counted up to now, 2 h on day 1 and 1 h on day 2
    expect(u.rows).toEqual([
      {
        clusterId: "c-1",
        day: "2026-03-01",
        queue: "compute",
        instanceType: "small",
        nodes: 2,
        nodeHours: 3,
        pricePerHour: 0.1,
        cost: 0.3,
      },
      {
        clusterId: "c-1",
        day: "2026-03-01",
        queue: "gpu",
        instanceType: "big",
        nodes: 1,
        nodeHours: 0.5,
        pricePerHour: 0.4,
        cost: 0.2,
      },
      {
        clusterId: "c-1",
        day: "2026-03-02",
        queue: "compute",
        instanceType: "small",
        nodes: 2,
        nodeHours: 2,
        pricePerHour: 0.1,
        cost: 0.2,
      },
    ]);
    expect(u.total).toEqual({ nodeHours: 5.5, cost: 0.7, unpricedNodeHours: 0 });
    expect(u.byQueue).toEqual([
      { key: "compute", nodeHours: 5, cost: 0.5, unpricedNodeHours: 0 },
      { key: "gpu", nodeHours: 0.5, cost: 0.2, unpricedNodeHours: 0 },
    ]);
    expect(u.byDay.map((d) => [d.key, d.nodeHours])).toEqual([
      ["2026-03-01", 3.5],
      ["2026-03-02", 2],
    ]);
    expect(u.from).toBe(D1 + 10 * H);
    expect(u.to).toBe(now);
    // the per-node figures add up to the rows
    expect(u.nodes.reduce((s, n) => s + n.hours, 0)).toBeCloseTo(u.total.nodeHours, 9);
    expect(u.nodes.find((n) => n.node === "n3")?.endedAt).toBeUndefined();
  });

  it("clips to the window, ends a TERMINATING record at its retirement, and counts an ended copy once", () => {
    // Prepare: t1 TERMINATING since 03:00 (launched 01:00); t2 both live and ended (same launch) at 04:00;
    // odd has no price. Window 02:00 → 05:00, now 06:00.
    const live = [
      node("t1", { launchedAt: D1 + H, status: "TERMINATING", updatedAt: D1 + 3 * H }),
      node("t2", { launchedAt: D1, status: "TERMINATING", updatedAt: D1 + 4 * H }),
      node("odd", { instanceType: "odd", launchedAt: D1 }),
    ];
    // Act
    const u = computeUsage({
      clusterId: "c-1",
      live,
      ended: [ended("t2", D1 + 4 * H)],
      price,
      now: D1 + 6 * H,
      from: D1 + 2 * H,
      to: D1 + 5 * H,
    });
    // Assess: t1 02→03 = 1 h, t2 02→04 = 2 h (once), odd 02→05 = 3 h unpriced
    expect(u.nodes.map((n) => [n.node, n.hours, n.cost])).toEqual([
      ["odd", 3, null],
      ["t2", 2, 0.2],
      ["t1", 1, 0.1],
    ]);
    expect(u.total).toEqual({ nodeHours: 6, cost: 0.3, unpricedNodeHours: 3 });
    expect(u.rows.find((r) => r.instanceType === "odd")).toMatchObject({ pricePerHour: null, cost: null });
  });

  it("answers nothing for a window with no node, and the same input always gives the same figures", () => {
    // Prepare
    const input = { clusterId: "c-1", live: [node("a")], ended: [], price, now: D1 + H };
    // Act
    const before = computeUsage({ ...input, from: D1 - 2 * H, to: D1 - H });
    // Assess
    expect(before.rows).toEqual([]);
    expect(before.total).toEqual({ nodeHours: 0, cost: 0, unpricedNodeHours: 0 });
    expect(computeUsage(input)).toEqual(computeUsage(input));
  });
});

describe("clusterPrices", () => {
  it("takes the configuration's own prices, then the cloud's shipped catalog; prototype names find nothing", () => {
    // Prepare
    const price = clusterPrices({
      placement: { cloud: "aws", region: "us-east-1", imageId: "ami-1" },
      autoscaling: {
        instanceTypes: { "my.type": { vcpus: 2, memoryMiB: 2048, pricePerHour: 0.05 } },
        queueConfigs: [{ queueName: "q", expansionNodeConfigs: [{ zone: "a", instanceType: "my.type" }] }],
      },
    });
    // Act / Assess
    expect(price("my.type")).toBe(0.05);
    expect(price("c5.xlarge")).toBe(0.17); // not configured any more: the AWS catalog's
    expect(price("constructor")).toBeUndefined();
    expect(price("local.c1m1")).toBeUndefined();
  });
});
