import { randomBytes } from "node:crypto";
import { parseConfig } from "../core/config.js";
import type { Launch } from "../core/model.js";
import type { ValidationIssue } from "../core/validation.js";
import type { AgentChannel } from "../ports/agent-channel.js";
import type { Clock } from "../ports/clock.js";
import type { CloudProvider } from "../ports/cloud-provider.js";
import type { ClusterRecord, NodeRecord, StateStore } from "../ports/state-store.js";
import { SlurmUnavailableError, StateRefusedError, UnknownNameError } from "./errors.js";
import { appendControlEvent as event } from "./events.js";
import { recordedLaunch } from "./launch.js";
import type { ControlLog } from "./log.js";
import type { MetricsSink } from "./metrics.js";
import { rebuildEligibility, slurmNodes } from "./node-list.js";
import { retireNode } from "./node-retirement.js";

/**
 * Rebuild (HPC-NOW's `rebuild`): failed nodes are terminated through the one retirement path
 * (node-retirement.ts) and replaced in their queue through the one launch path (launch.ts: admission
 * under the lease, maxSize, protected mode, the deletion fence), the failed node's type and zone first.
 * Only failed nodes (rebuildEligibility: DOWN/FAIL/not responding in Slurm, lost by Slurm, or a boot that
 * never joined) and never one running a job; a request naming any other node changes nothing.
 */

export interface RebuildDeps {
  store: StateStore;
  clock: Clock;
  metrics: MetricsSink;
  provider: CloudProvider;
  agent: AgentChannel;
  userData?: (cluster: ClusterRecord, launch: Launch) => string | undefined;
  log?: ControlLog;
  /** The operator's principal, recorded on the events. */
  by?: string;
}

export interface RebuildRequest {
  /** The nodes to rebuild; every eligible node when absent. */
  nodes?: readonly string[];
  /** A LAUNCHING node absent from Slurm this long after launch counts as failed. @default the config's bootTimeout */
  bootGraceSeconds?: number;
}

export interface RebuildResult {
  /** Each node retired, why it was eligible, and its replacements' launch (round) if any. */
  rebuilt: { node: string; queue: string; reason: string; round?: string }[];
  /** Nodes started as replacements. */
  launched: string[];
  /** What went wrong per node or per launch, in words. */
  failures: { node?: string; queue?: string; message: string }[];
}

export async function rebuildNodes(
  deps: RebuildDeps,
  cluster: ClusterRecord,
  request: RebuildRequest,
): Promise<RebuildResult> {
  const { store, clock } = deps;
  const clusterId = cluster.clusterId;
  // Replacements need a RUNNING cluster (the launch path's admission): refuse before retiring anything.
  if (cluster.status !== "RUNNING") {
    throw new StateRefusedError(`the cluster is ${cluster.status}, not RUNNING: nothing rebuilt`);
  }
  const config = parseConfig(cluster.autoscaling, "autoscaling configuration");
  const graceMs = (request.bootGraceSeconds ?? config.bootTimeout) * 1000;
  const records = await store.listNodes(clusterId);
  const byName = new Map(records.map((r) => [r.nodeName, r]));
  const issues: ValidationIssue[] = [];
  for (const [i, name] of (request.nodes ?? []).entries()) {
    if (!byName.has(name)) issues.push({ path: `nodes[${i}]`, message: `no node ${name} in this cluster` });
  }
  if (issues.length > 0) throw new UnknownNameError("unknown nodes", issues);

  // Slurm's view decides what failed and what runs a job: without it nothing is touched.
  let slurm: ReturnType<typeof slurmNodes>;
  try {
    slurm = slurmNodes(await deps.agent.report());
  } catch (error) {
    throw new SlurmUnavailableError(
      `Slurm's view of the nodes could not be read (${(error as Error).message.slice(0, 200)}): nothing rebuilt; retry when the agent answers`,
    );
  }
  const now = clock.now();
  const chosen: { record: NodeRecord; reason: string }[] = [];
  if (request.nodes === undefined) {
    for (const record of records) {
      const e = rebuildEligibility(record, slurm, now, graceMs);
      if (e.eligible) chosen.push({ record, reason: e.reason });
    }
  } else {
    for (const [i, name] of request.nodes.entries()) {
      const record = byName.get(name) as NodeRecord;
      const e = rebuildEligibility(record, slurm, now, graceMs);
      if (e.eligible) chosen.push({ record, reason: e.reason });
      else
        issues.push({ path: `nodes[${i}]`, message: `${name}: ${e.reason}: only failed nodes are rebuilt` });
    }
    if (issues.length > 0) throw new StateRefusedError("nodes not rebuilt", issues);
  }

  const result: RebuildResult = { rebuilt: [], launched: [], failures: [] };
  // 1. Retire each: terminate, Slurm told (when it lists the node), record deleted (its usage kept).
  const retired: { record: NodeRecord; reason: string }[] = [];
  for (const c of chosen) {
    try {
      await retireNode(deps, clusterId, c.record, now, { inSlurm: slurm.byName.has(c.record.nodeName) });
      retired.push(c);
    } catch (error) {
      result.failures.push({
        node: c.record.nodeName,
        message: `terminate failed, not replaced (the reconciler retries the terminate): ${(error as Error).message.slice(0, 300)}`,
      });
    }
  }
  // 2. Replace per (queue, type, zone): one launch each, that offering first, then the queue's others.
  const groups = new Map<string, { record: NodeRecord; reason: string }[]>();
  for (const r of retired) {
    const key = JSON.stringify([r.record.queue, r.record.instanceType, r.record.zone]);
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  for (const group of groups.values()) {
    const first = (group[0] as { record: NodeRecord }).record;
    const queue = config.queueByName.get(first.queue);
    const names = group.map((g) => g.record.nodeName);
    if (queue === undefined) {
      for (const g of group) {
        result.rebuilt.push({ node: g.record.nodeName, queue: first.queue, reason: g.reason });
      }
      result.failures.push({
        queue: first.queue,
        message: `queue ${first.queue} is no longer configured: ${names.join(" ")} retired, not replaced`,
      });
      continue;
    }
    const entries = queue.entries.map(({ instanceType, zone, chargeType, subnetId, imageId }) => ({
      instanceType,
      zone,
      chargeType,
      ...(subnetId === undefined ? {} : { subnetId }),
      ...(imageId === undefined ? {} : { imageId }),
    }));
    const same = entries.filter((e) => e.instanceType === first.instanceType && e.zone === first.zone);
    const candidates = [
      ...(same.length > 0
        ? same
        : [{ instanceType: first.instanceType, zone: first.zone, chargeType: first.chargeType }]),
      ...entries.filter((e) => !(e.instanceType === first.instanceType && e.zone === first.zone)),
    ];
    const launch: Launch = {
      queue: first.queue,
      instanceType: first.instanceType,
      zone: first.zone,
      count: group.length,
      candidates,
      allOrNothing: false,
      jobs: [],
      reason: `rebuild of ${names.join(" ")}`.slice(0, 300),
    };
    const round = `rebuild-${clock.now().toString(36)}-${randomBytes(4).toString("hex")}`;
    const owner = `rebuild-${randomBytes(8).toString("hex")}`;
    const { outcome, refused, message } = await recordedLaunch(
      { ...deps, owner, ...(deps.by === undefined ? {} : { by: deps.by }) },
      cluster,
      launch,
      round,
      [],
      // What still fits: the retired nodes freed their slots, but the scaler may have taken some since.
      { fit: "cap" },
    );
    const started = outcome?.instances.map((i) => i.id) ?? [];
    result.launched.push(...started);
    for (const g of group) {
      result.rebuilt.push({ node: g.record.nodeName, queue: first.queue, reason: g.reason, round });
    }
    if (refused !== undefined && started.length === 0) {
      result.failures.push({
        queue: first.queue,
        message: `replacements not launched (${refused}): ${message ?? ""}`.trim(),
      });
    } else if (started.length < group.length) {
      const kinds = [...new Set((outcome?.failures ?? []).map((f) => f.kind))].join(", ");
      result.failures.push({
        queue: first.queue,
        message: `${started.length} of ${group.length} replacement(s) started${kinds === "" ? "" : `: ${kinds}`}`,
      });
    }
  }
  if (result.rebuilt.length > 0) {
    const nodes = result.rebuilt.map((r) => r.node);
    await event(
      store,
      clusterId,
      clock,
      "MANUAL",
      `rebuilt by hand: ${nodes.length} failed node(s) retired, ${result.launched.length} replacement(s) started`,
      undefined,
      nodes,
      nodes.length,
      deps.by,
    );
  }
  return result;
}
