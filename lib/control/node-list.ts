import type { OkReport, ReportNode } from "../ports/agent-report.js";
import type { NodeRecord } from "../ports/state-store.js";
import { isUnhealthy, nodesRunningJobs } from "./slurm-evidence.js";
import type { PriceOf } from "./usage.js";

/**
 * A cluster's nodes as an operator sees them (THPC's DescribeNodes): NowScale's record joined with
 * Slurm's view from the agent's report, the cost so far from the catalogs' prices, and whether the node
 * may be rebuilt. Pure: `now` is an argument; the API reads the records and the report.
 */

export interface NodeView {
  node: string;
  instanceId: string;
  queue: string;
  instanceType: string;
  zone: string;
  chargeType: string;
  /** NowScale's record: LAUNCHING, JOINED, DRAINING, TERMINATING. */
  status: string;
  /** Slurm's state with its flags (IDLE+CLOUD, DOWN*...); null when Slurm does not list it or cannot say. */
  slurmState: string | null;
  /** Whether Slurm runs a job on it (allocated CPUs, MIXED, ALLOCATED, DRAINING, or a running job names it). */
  runningJob: boolean | null;
  /** Epoch ms. */
  launchedAt: number;
  joinedAt?: number;
  /** Epoch ms when its current idle stretch began (Slurm's report); IDLE nodes only. */
  idleSince?: number;
  idleSeconds: number | null;
  hours: number;
  pricePerHour: number | null;
  costSoFar: number | null;
  rebuild: Eligibility;
}

export interface Eligibility {
  eligible: boolean;
  /** Why, in words. */
  reason: string;
}

/** What Slurm says about the nodes, from one report (undefined when the agent or slurmctld did not answer). */
export interface SlurmNodes {
  byName: ReadonlyMap<string, ReportNode>;
  busy: ReadonlySet<string>;
}

export function slurmNodes(report: OkReport): SlurmNodes {
  return { byName: new Map(report.nodes.map((n) => [n.name, n])), busy: nodesRunningJobs(report) };
}

/**
 * Whether `nowscale nodes rebuild` may replace the node: only a failed one, and never one running a job.
 * - a node Slurm shows DOWN, FAIL or not responding (isUnhealthy), running no job;
 * - a joined node Slurm no longer lists (Slurm lost it), when the reconciler already marked it (`downSince`):
 *   one report leaving a node out may be short, and would take a node running a job;
 * - a LAUNCHING node Slurm does not list `bootGraceMs` after its launch (its boot failed: the cluster's
 *   `bootTimeout` by default, sooner when the operator has read the console log).
 * Without Slurm's view nothing is eligible: whether a job runs there cannot be told.
 */
export function rebuildEligibility(
  record: NodeRecord,
  slurm: SlurmNodes | undefined,
  now: number,
  bootGraceMs: number,
): Eligibility {
  if (slurm === undefined) return { eligible: false, reason: "Slurm's view is unavailable" };
  if (record.status === "TERMINATING") return { eligible: false, reason: "already terminating" };
  if (slurm.busy.has(record.nodeName)) return { eligible: false, reason: "runs a job" };
  const seen = slurm.byName.get(record.nodeName);
  if (seen !== undefined) {
    if (isUnhealthy(seen)) return { eligible: true, reason: `${seen.slurmState} in Slurm` };
    return { eligible: false, reason: `healthy (${seen.slurmState})` };
  }
  if (record.status !== "LAUNCHING") {
    // One report that leaves a node out may be short (the node, and its job, missing from one answer):
    // lost only when an earlier look (the reconciler's downSince) also found it missing or failed.
    if (record.downSince === undefined)
      return {
        eligible: false,
        reason:
          "missing from this report only: lost once the reconciler's next run misses it too (one short report is not evidence)",
      };
    return { eligible: true, reason: "Slurm no longer lists it" };
  }
  const age = now - record.launchedAt;
  if (age >= bootGraceMs) {
    return { eligible: true, reason: `boot failed: not in Slurm ${Math.round(age / 1000)} s after launch` };
  }
  return {
    eligible: false,
    reason: `still booting (${Math.round(age / 1000)} s of ${Math.round(bootGraceMs / 1000)} s)`,
  };
}

/** The views of `records`, in launch order; `slurm` undefined when Slurm could not be read. */
export function nodeViews(
  records: readonly NodeRecord[],
  slurm: SlurmNodes | undefined,
  price: PriceOf,
  now: number,
  bootGraceMs: number,
): NodeView[] {
  return [...records]
    .sort((a, b) => a.launchedAt - b.launchedAt || (a.nodeName < b.nodeName ? -1 : 1))
    .map((r) => {
      const seen = slurm?.byName.get(r.nodeName);
      const end = r.status === "TERMINATING" ? Math.min(r.updatedAt, now) : now;
      const hours = Math.max(0, end - r.launchedAt) / 3_600_000;
      const pricePerHour = price(r.instanceType) ?? null;
      // The report's times are ISO-8601 text (untrusted, schema-checked): read as epoch ms.
      const idleText = seen?.state === "IDLE" ? seen.idleSince : undefined;
      const idle = idleText === undefined ? undefined : Date.parse(idleText);
      return {
        node: r.nodeName,
        instanceId: r.instanceId,
        queue: r.queue,
        instanceType: r.instanceType,
        zone: r.zone,
        chargeType: r.chargeType,
        status: r.status,
        slurmState: seen?.slurmState ?? null,
        runningJob: slurm === undefined ? null : slurm.busy.has(r.nodeName),
        launchedAt: r.launchedAt,
        ...(r.joinedAt === undefined ? {} : { joinedAt: r.joinedAt }),
        ...(idle === undefined ? {} : { idleSince: idle }),
        idleSeconds: idle === undefined ? null : Math.max(0, Math.round((now - idle) / 1000)),
        hours: Math.round(hours * 1e6) / 1e6,
        pricePerHour,
        costSoFar: pricePerHour === null ? null : Math.round(hours * pricePerHour * 1e6) / 1e6,
        rebuild: rebuildEligibility(r, slurm, now, bootGraceMs),
      };
    });
}
