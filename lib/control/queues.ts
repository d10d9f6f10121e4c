import {
  type Config,
  type ConfigInput,
  configSchema,
  parseConfig,
  type QueueConfig,
} from "../core/config.js";

import type { AgentChannel, PartitionSpec } from "../ports/agent-channel.js";
import type { OkReport } from "../ports/agent-report.js";
import type { Clock } from "../ports/clock.js";
import type { CloudProvider } from "../ports/cloud-provider.js";
import type { ClusterRecord, StateStore } from "../ports/state-store.js";
import { StateRefusedError, UnknownNameError } from "./errors.js";
import { appendControlEvent as event } from "./events.js";
import { retireNode } from "./node-retirement.js";
import { nodesRunningJobs } from "./slurm-evidence.js";
import { checkZones, type ZonesOf } from "./zones.js";

/**
 * Queues on a live cluster (THPC AddQueue / DeleteQueue / DescribeQueues). A queue is a Slurm partition
 * on the master: adding or deleting one changes the cluster's autoscaling configuration AND the master's
 * slurm.conf, through the agent's set-partitions (scheduler-plugins/slurm/partition-apply.ts: validated
 * names, the previous file kept, rolled back when reconfigure fails).
 *
 * Order, so a failure never leaves the scaler launching for a queue Slurm does not have:
 * - add: partition first, then the configuration (a configuration write that loses a race leaves an
 *   unused partition, which the next add or delete rewrites; never the reverse);
 * - delete: refuse on running jobs (always) and pending ones (unless `force`), drain the queue's nodes,
 *   check again on a fresh report, then the configuration (the scaler stops), then retire the nodes
 *   (node-retirement.ts), then the partition.
 */

export interface QueueDeps {
  store: StateStore;
  clock: Clock;
  runtime: (cluster: ClusterRecord) => Promise<{ provider: CloudProvider; agent: AgentChannel }>;
  /** Who asked (the IAM principal), recorded on the event. */
  by?: string | undefined;
  /** The zones of the cluster's region: a new queue naming another is refused (lib/control/zones.ts). @default no check */
  zones?: ZonesOf;
}

/** The partitions a configuration needs: one per queue, in order (the first is Slurm's default). */
export function partitionSpecs(config: Pick<Config, "queueConfigs">): PartitionSpec[] {
  return config.queueConfigs.map((q) => ({ name: q.queueName }));
}

/** Adds a queue: its partition on the master, then the configuration. Answers the new configuration. */
export async function addQueue(
  deps: QueueDeps,
  cluster: ClusterRecord,
  queue: unknown,
  expectedVersion = cluster.version,
): Promise<Config> {
  running(cluster);
  const current = configSchema.parse(cluster.autoscaling);
  const name = (queue as { queueName?: unknown } | null)?.queueName;
  if (current.queueConfigs.some((q) => q.queueName === name))
    throw new StateRefusedError(`queue ${String(name)} already exists`, [
      { path: "queueName", message: `queue ${String(name)} already exists` },
    ]);
  const next = checked({
    ...(cluster.autoscaling as ConfigInput),
    queueConfigs: [...current.queueConfigs, queue],
  });
  const added = next.queueConfigs.at(-1) as QueueConfig;
  // The path as the whole configuration's check names it (queueConfigs[N]...), the new queue alone.
  await checkZones(
    deps.zones,
    cluster.placement,
    next,
    "autoscaling configuration",
    [],
    new Set([added.queueName]),
  );
  const { agent } = await deps.runtime(cluster);
  await agent.setPartitions(partitionSpecs(next));
  await deps.store.updateCluster(cluster.clusterId, expectedVersion, {
    autoscaling: next,
    now: deps.clock.now(),
  });
  await event(
    deps.store,
    cluster.clusterId,
    deps.clock,
    "CONFIG_UPDATED",
    `queue ${added.queueName} added`,
    added.queueName,
    undefined,
    undefined,
    deps.by,
  );
  return next;
}

export interface DeleteQueueResult {
  queue: string;
  /** The queue's nodes retired (terminated and removed from Slurm, or left to the reconciler). */
  retired: string[];
}

/**
 * Deletes a queue. Refused (409) while any job runs in it, whatever `force` says: a running job is never
 * killed by a queue deletion (scancel it first). Refused (409) while jobs pend or are blocked there unless
 * `force`: forced, they stay in Slurm's queue for a partition that no longer exists, and Slurm shows them
 * as unrunnable until someone moves or cancels them. The last queue cannot be deleted.
 */
export async function deleteQueue(
  deps: QueueDeps,
  cluster: ClusterRecord,
  name: string,
  options: { force?: boolean } = {},
): Promise<DeleteQueueResult> {
  running(cluster);
  const current = configSchema.parse(cluster.autoscaling);
  if (!current.queueConfigs.some((q) => q.queueName === name))
    throw new UnknownNameError(`no queue ${name} in the configuration`, [
      { path: "queue", message: `no queue ${name} in the configuration` },
    ]);
  const remaining = current.queueConfigs.filter((q) => q.queueName !== name);
  if (remaining.length === 0)
    throw new StateRefusedError(`queue ${name} is the cluster's last: delete the cluster instead`);
  const { agent, provider } = await deps.runtime(cluster);
  const records = (await deps.store.listNodes(cluster.clusterId)).filter((r) => r.queue === name);
  const names = records.map((r) => r.nodeName);
  refuseBusy(await agent.report(), name, names, options.force === true);
  for (const node of names) await agent.drain(node, `nowscale: queue ${name} deleted`);
  // A job may have started between the report and the drains: look again before anything is destroyed.
  try {
    refuseBusy(await agent.report(), name, names, true);
  } catch (error) {
    for (const node of names) await agent.resume(node).catch(() => undefined);
    throw error;
  }
  const next = checked({ ...(cluster.autoscaling as ConfigInput), queueConfigs: remaining });
  await deps.store.updateCluster(cluster.clusterId, cluster.version, {
    autoscaling: next,
    now: deps.clock.now(),
  });
  const now = deps.clock.now();
  for (const record of records)
    await retireNode({ store: deps.store, provider, agent }, cluster.clusterId, record, now, {
      requested: true,
    });
  await agent.setPartitions(partitionSpecs(next));
  await event(
    deps.store,
    cluster.clusterId,
    deps.clock,
    "CONFIG_UPDATED",
    `queue ${name} deleted`,
    name,
    names,
    names.length,
    deps.by,
  );
  return { queue: name, retired: names };
}

export interface QueueView {
  queueName: string;
  minSize: number;
  maxSize: number;
  expansionNodeConfigs: QueueConfig["expansionNodeConfigs"];
  /** What Slurm says, from the agent's report; null when the agent could not be read. */
  slurm: {
    nodes: number;
    idle: number;
    busy: number;
    pendingJobs: number;
    runningJobs: number;
    /**
     * The queue's partition as slurmctld has it; null when Slurm has no such partition (the configuration
     * and slurm.conf disagree); absent when the agent does not report partitions.
     */
    partition?: { state: string; default: boolean } | null;
  } | null;
}

/** The queues with their autoscaling settings and what Slurm's report says about each. */
export async function describeQueues(
  deps: QueueDeps,
  cluster: ClusterRecord,
): Promise<{
  queues: QueueView[];
  slurm: { reachable: boolean; error?: string; partitionsNotInConfig?: string[] };
}> {
  const config = configSchema.parse(cluster.autoscaling);
  let report: OkReport | undefined;
  let error: string | undefined;
  if (cluster.status === "RUNNING" || cluster.status === "SLEEPING") {
    try {
      report = await (await deps.runtime(cluster)).agent.report();
    } catch (e) {
      error = (e as Error).message.slice(0, 300);
    }
  } else error = `the cluster is ${cluster.status}`;
  const busy = report === undefined ? new Set<string>() : nodesRunningJobs(report);
  const queues = config.queueConfigs.map((q): QueueView => {
    const count = (state: string) =>
      report?.jobs
        .filter((g) => g.queue === q.queueName && g.state === state)
        .reduce((n, g) => n + g.count, 0) ?? 0;
    const nodes = report?.nodes.filter((n) => n.queue === q.queueName) ?? [];
    return {
      queueName: q.queueName,
      minSize: q.minSize,
      maxSize: q.maxSize,
      expansionNodeConfigs: q.expansionNodeConfigs,
      slurm:
        report === undefined
          ? null
          : {
              nodes: nodes.length,
              idle: nodes.filter((n) => n.state === "IDLE").length,
              busy: nodes.filter((n) => busy.has(n.name)).length,
              pendingJobs: count("PENDING") + count("BLOCKED"),
              runningJobs: count("RUNNING"),
              ...partitionOf(report, q.queueName),
            },
    };
  });
  return {
    queues,
    slurm:
      report === undefined
        ? { reachable: false, ...(error === undefined ? {} : { error }) }
        : {
            reachable: true,
            // Partitions Slurm has that are no queue of the configuration (static or left behind).
            ...(report.partitions === undefined
              ? {}
              : {
                  partitionsNotInConfig: report.partitions
                    .map((p) => p.name)
                    .filter((name) => !config.queueConfigs.some((q) => q.queueName === name)),
                }),
          },
  };
}

/** The queue's partition in the report (`partition: null` when Slurm has none); nothing when not reported. */
function partitionOf(
  report: OkReport,
  queue: string,
): { partition?: { state: string; default: boolean } | null } {
  if (report.partitions === undefined) return {};
  const p = report.partitions.find((x) => x.name === queue);
  return { partition: p === undefined ? null : { state: p.state, default: p.default } };
}

function running(cluster: ClusterRecord): void {
  if (cluster.status !== "RUNNING")
    throw new StateRefusedError(`the cluster is ${cluster.status}, not RUNNING: its master must answer`);
}

/** The whole configuration, checked as PUT /autoscaling checks it (ValidationError naming the path). */
function checked(input: unknown): Config {
  parseConfig(input, "autoscaling configuration");
  return configSchema.parse(input);
}

function refuseBusy(report: OkReport, queue: string, nodes: readonly string[], force: boolean): void {
  const jobs = (state: string) =>
    report.jobs.filter((g) => g.queue === queue && g.state === state).reduce((n, g) => n + g.count, 0);
  const busy = nodesRunningJobs(report);
  const busyNodes = nodes.filter((n) => busy.has(n));
  const running = jobs("RUNNING");
  if (running > 0 || busyNodes.length > 0)
    throw new StateRefusedError(
      `queue ${queue} has ${running} running job(s)${busyNodes.length > 0 ? ` on ${busyNodes.slice(0, 5).join(", ")}` : ""}: a deletion never stops a running job; wait or scancel them`,
    );
  const waiting = jobs("PENDING") + jobs("BLOCKED");
  if (waiting > 0 && !force)
    throw new StateRefusedError(
      `queue ${queue} has ${waiting} pending job(s): move or cancel them, or delete with force (they are left unrunnable)`,
    );
}
