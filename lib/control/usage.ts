import { BUILTIN_CATALOGS } from "../core/catalogs/index.js";
import { parseConfig } from "../core/config.js";
import type { InstanceCatalog } from "../core/model.js";
import { ownValue } from "../core/own.js";
import type { ClusterRecord, EndedNode, NodeRecord } from "../ports/state-store.js";

/**
 * Node-hours and cost (HPC-NOW's `usage`): a pure function of the node records (the live ones and the
 * usage history of those whose record was deleted) and the catalogs' prices. No I/O and no clock: `now`
 * is an argument, so the same input always gives the same figures and tests can work them by hand.
 *
 * A node costs from its launch (`launchedAt`) to its end: `endedAt` for an ended node, the time its
 * terminate was decided (`updatedAt`) for a TERMINATING record, else `now`. Its time is cut at UTC day
 * boundaries and at the window [from, to]; each piece goes to (day, queue, instance type). Cost is node
 * hours × the instance type's `pricePerHour` (the catalog's unit: USD for the shipped AWS catalog), the
 * on-demand price for SPOT nodes too: a guide, not a bill. Types without a price have no cost; their
 * hours are counted apart (`unpricedNodeHours`).
 */

/** An instance type's price per hour, or undefined when no catalog has one. */
export type PriceOf = (instanceType: string) => number | undefined;

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/**
 * The prices of a cluster's nodes: its autoscaling configuration's catalog (the shipped catalogs it
 * names and its own `instanceTypes`), then the shipped catalog of its cloud, for a type the configuration
 * no longer lists. Own-key lookups only, so a type named `constructor` finds nothing.
 */
export function clusterPrices(cluster: Pick<ClusterRecord, "autoscaling" | "placement">): PriceOf {
  let catalog: InstanceCatalog | undefined;
  try {
    catalog = parseConfig(cluster.autoscaling, "autoscaling configuration").catalog;
  } catch {
    // A stored configuration is validated on write; a catalog that changed under it leaves the cloud's.
    catalog = undefined;
  }
  const cloud = ownValue(BUILTIN_CATALOGS, cluster.placement.cloud) as InstanceCatalog | undefined;
  return (instanceType) => {
    const own = catalog === undefined ? undefined : ownValue(catalog, instanceType);
    return (
      own?.pricePerHour ?? (cloud === undefined ? undefined : ownValue(cloud, instanceType)?.pricePerHour)
    );
  };
}

export interface UsageInput {
  clusterId: string;
  /** The cluster's node records now (StateStore.listNodes). */
  live: readonly NodeRecord[];
  /** Its ended nodes (StateStore.listEndedNodes). */
  ended: readonly EndedNode[];
  price: PriceOf;
  /** Epoch ms: the end of every node still running. */
  now: number;
  /** Epoch ms; the window's start. @default the first launch */
  from?: number;
  /** Epoch ms; the window's end, at most `now`. @default now */
  to?: number;
}

/** One (day, queue, instance type) of one cluster. */
export interface UsageRow {
  clusterId: string;
  /** UTC day, YYYY-MM-DD. */
  day: string;
  queue: string;
  instanceType: string;
  /** Nodes that ran during the day. */
  nodes: number;
  nodeHours: number;
  pricePerHour: number | null;
  /** null when the type has no price. */
  cost: number | null;
}

/** A node's share of the window. */
export interface NodeUsage {
  node: string;
  queue: string;
  instanceType: string;
  zone: string;
  chargeType: string;
  launchedAt: number;
  /** undefined while it runs. */
  endedAt?: number;
  hours: number;
  cost: number | null;
}

export interface UsageTotal {
  key: string;
  nodeHours: number;
  cost: number;
  unpricedNodeHours: number;
}

export interface UsageReport {
  clusterId: string;
  from: number;
  to: number;
  rows: UsageRow[];
  byQueue: UsageTotal[];
  byInstanceType: UsageTotal[];
  byDay: UsageTotal[];
  total: Omit<UsageTotal, "key">;
  nodes: NodeUsage[];
}

/** Figures in answers: 6 decimals (a millisecond is 2.8e-7 h), so sums stay exact to the display. */
const round6 = (x: number) => Math.round(x * 1e6) / 1e6;

export function computeUsage(input: UsageInput): UsageReport {
  const { now } = input;
  // One interval per launch: an ended copy wins over a live record of the same launch (a TERMINATING
  // record whose delete landed in the usage table but not yet in the nodes table, say).
  const intervals = new Map<string, { node: NodeRecord; start: number; end: number; running: boolean }>();
  for (const node of input.ended) {
    intervals.set(launchKey(node), { node, start: node.launchedAt, end: node.endedAt, running: false });
  }
  for (const node of input.live) {
    const key = launchKey(node);
    if (intervals.has(key)) continue;
    const end = node.status === "TERMINATING" ? Math.min(node.updatedAt, now) : now;
    intervals.set(key, { node, start: node.launchedAt, end, running: node.status !== "TERMINATING" });
  }
  let firstLaunch = now;
  for (const i of intervals.values()) firstLaunch = Math.min(firstLaunch, i.start);
  const from = input.from ?? firstLaunch;
  const to = Math.min(input.to ?? now, now);

  const rows = new Map<string, { row: UsageRow; ms: number; nodes: Set<string> }>();
  const nodes: NodeUsage[] = [];
  for (const { node, start, end, running } of intervals.values()) {
    const a = Math.max(start, from);
    const b = Math.min(end, to);
    const price = input.price(node.instanceType);
    let ms = 0;
    // Cut at each UTC midnight inside [a, b).
    for (let t = a; t < b; ) {
      const dayStart = Math.floor(t / DAY_MS) * DAY_MS;
      const piece = Math.min(b, dayStart + DAY_MS) - t;
      const day = new Date(dayStart).toISOString().slice(0, 10);
      const key = JSON.stringify([day, node.queue, node.instanceType]);
      let entry = rows.get(key);
      if (entry === undefined) {
        entry = {
          row: {
            clusterId: input.clusterId,
            day,
            queue: node.queue,
            instanceType: node.instanceType,
            nodes: 0,
            nodeHours: 0,
            pricePerHour: price ?? null,
            cost: null,
          },
          ms: 0,
          nodes: new Set(),
        };
        rows.set(key, entry);
      }
      entry.ms += piece;
      entry.nodes.add(launchKey(node));
      ms += piece;
      t += piece;
    }
    if (b <= a) continue;
    nodes.push({
      node: node.nodeName,
      queue: node.queue,
      instanceType: node.instanceType,
      zone: node.zone,
      chargeType: node.chargeType,
      launchedAt: node.launchedAt,
      ...(running ? {} : { endedAt: end }),
      hours: round6(ms / HOUR_MS),
      cost: price === undefined ? null : round6((ms / HOUR_MS) * price),
    });
  }

  const out: UsageRow[] = [...rows.values()]
    .map(({ row, ms, nodes: n }) => ({
      ...row,
      nodes: n.size,
      nodeHours: round6(ms / HOUR_MS),
      cost: row.pricePerHour === null ? null : round6((ms / HOUR_MS) * row.pricePerHour),
    }))
    .sort((x, y) => cmp(x.day, y.day) || cmp(x.queue, y.queue) || cmp(x.instanceType, y.instanceType));
  nodes.sort((x, y) => x.launchedAt - y.launchedAt || cmp(x.node, y.node));
  return {
    clusterId: input.clusterId,
    from,
    to,
    rows: out,
    byQueue: totals(out, (r) => r.queue),
    byInstanceType: totals(out, (r) => r.instanceType),
    byDay: totals(out, (r) => r.day),
    total: (({ key: _k, ...t }) => t)(totals(out, () => "")[0] ?? emptyTotal("")),
    nodes,
  };
}

function launchKey(node: NodeRecord): string {
  return `${node.nodeName}#${node.launchedAt}`;
}

function emptyTotal(key: string): UsageTotal {
  return { key, nodeHours: 0, cost: 0, unpricedNodeHours: 0 };
}

/** Sums of the rows by `keyOf`, in key order; costs of priced rows only. */
export function totals(rows: readonly UsageRow[], keyOf: (row: UsageRow) => string): UsageTotal[] {
  const sums = new Map<string, UsageTotal>();
  for (const row of rows) {
    const key = keyOf(row);
    const t = sums.get(key) ?? emptyTotal(key);
    t.nodeHours += row.nodeHours;
    if (row.cost === null) t.unpricedNodeHours += row.nodeHours;
    else t.cost += row.cost;
    sums.set(key, t);
  }
  return [...sums.values()]
    .map((t) => ({
      key: t.key,
      nodeHours: round6(t.nodeHours),
      cost: round6(t.cost),
      unpricedNodeHours: round6(t.unpricedNodeHours),
    }))
    .sort((x, y) => cmp(x.key, y.key));
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
