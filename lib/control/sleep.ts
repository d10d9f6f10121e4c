import type { AgentChannel } from "../ports/agent-channel.js";
import type { OkReport } from "../ports/agent-report.js";
import type { Clock } from "../ports/clock.js";
import type { CloudProvider } from "../ports/cloud-provider.js";
import type { MasterPower } from "../ports/master-power.js";
import { type ClusterRecord, ConflictError, type NodeRecord, type StateStore } from "../ports/state-store.js";
import { StateRefusedError, UnknownNameError } from "./errors.js";
import { appendControlEvent as event } from "./events.js";
import { type ControlLog, silentLog } from "./log.js";
import { retireDrainedNodes } from "./node-retirement.js";
import { ignoreConflict } from "./store-retry.js";

export type { MasterPower } from "../ports/master-power.js";

/**
 * Sleep and wake (HPC-NOW `sleep` / `wakeup`), and stopping or resuming chosen compute nodes (HPC-NOW
 * `shutdownc` / `turnonc`), on the one rule destroying follows everywhere: a node running a job is never
 * terminated. Sleep first records SLEEPING (the scaler launches nothing from its next poll on: it scales
 * RUNNING clusters only; jobs may still be submitted and wait), then drains every compute node (Slurm
 * gives a drained node no new job) and retires, with node-retirement.ts's `retireDrainedNodes`, each one a
 * report read after the drain shows DRAINED with no job. The others are answered as waiting, with why;
 * while the cluster sleeps, the reconciler's "asleep" step (`retireSleepingNodes`) drains and retires
 * them as their jobs end, and nodes that joined late. Wake records RUNNING and resumes the nodes sleep
 * drained that still wait for their jobs (they may take new ones again); the scaler launches the rest on
 * demand.
 *
 * The master: a compute node under autoscaling has no "stopped" state worth keeping (it boots in a
 * minute and costs nothing once terminated), but the master holds slurm.conf, the accounting and the
 * users' files. Stopping it (an instance stopped, not terminated: its disk is kept) needs the cloud's
 * stop/start calls, a `MasterPower`; where the deployment has none for the cluster's cloud, or while
 * compute nodes still run jobs (they report to slurmctld), sleep leaves it running and says why.
 */

/** Slurm's reason on the nodes sleep drains; wake resumes exactly these. */
export const SLEEP_DRAIN_REASON = "nowscale: asleep";
/** Slurm's reason on the nodes `stopNodes` drains by hand. */
export const STOP_DRAIN_REASON = "nowscale: stopped by hand";

export interface SleepDeps {
  store: StateStore;
  clock: Clock;
  runtime: (cluster: ClusterRecord) => Promise<{ provider: CloudProvider; agent: AgentChannel }>;
  /** The master's stop/start for this cluster's cloud; undefined where the deployment has none. */
  masterPower?: ((cluster: ClusterRecord) => MasterPower | undefined) | undefined;
  /** Who asked (the IAM principal), recorded on the events. */
  by?: string | undefined;
  log?: ControlLog;
}

/** A compute node sleep (or a stop by hand) did not retire yet, and why. */
export interface WaitingNode {
  node: string;
  reason: string;
}

export interface MasterOutcome {
  /** "stopped" / "started" when the cloud was asked; "running" when it was left as it was. */
  state: "stopped" | "started" | "running";
  instanceIds: string[];
  /** Why the master was left running (asked to stop, but not stoppable now or here). */
  reason?: string;
}

export interface SleepResult {
  cluster: ClusterRecord;
  /** Compute nodes terminated and removed from Slurm by this call. */
  retired: string[];
  /** Compute nodes still there: running a job, booting, or not readable now. */
  waiting: WaitingNode[];
  /** Only when the master was asked to stop. */
  master?: MasterOutcome;
}

/**
 * Sleep: RUNNING → SLEEPING, then every compute node drained and the empty ones retired (a sleeping
 * cluster asked again drains and retires again). With `stopMaster`, the master is stopped once no
 * compute node is left. ConflictError (409) unless RUNNING or SLEEPING.
 */
export async function sleepCluster(
  deps: SleepDeps,
  clusterId: string,
  options: { stopMaster?: boolean } = {},
): Promise<SleepResult> {
  let cluster = await clusterOf(deps, clusterId);
  if (cluster.status !== "RUNNING" && cluster.status !== "SLEEPING")
    throw new ConflictError(`the cluster is ${cluster.status}, not RUNNING or SLEEPING`);
  if (cluster.status === "RUNNING") {
    // First the status: from now on no poll launches (a cycle already past its read launches nothing
    // either: launches are fenced on the status, launch.ts).
    cluster = await deps.store.updateCluster(cluster.clusterId, cluster.version, {
      status: "SLEEPING",
      now: deps.clock.now(),
    });
    await event(deps.store, clusterId, deps.clock, "STATUS_CHANGED", "asleep", ...by(deps));
  }
  const { provider, agent } = await deps.runtime(cluster);
  const records = await deps.store.listNodes(cluster.clusterId);
  const { retired, waiting } = await drainAndRetire(
    { ...deps, provider, agent },
    cluster.clusterId,
    records,
    SLEEP_DRAIN_REASON,
  );
  if (retired.length > 0)
    await event(
      deps.store,
      clusterId,
      deps.clock,
      "TERMINATED",
      "asleep: drained and holds no job",
      undefined,
      retired,
      retired.length,
      deps.by,
    );
  const result: SleepResult = { cluster, retired, waiting };
  if (options.stopMaster === true) result.master = await stopMaster(deps, cluster, waiting);
  return result;
}

/**
 * Wake: the master started (when the deployment can start it), SLEEPING → RUNNING (the scaler resumes
 * at its next poll and launches for the jobs that queued), and the nodes sleep drained that still wait
 * resumed. A RUNNING cluster is answered as it is. ConflictError (409) in any other status.
 */
export async function wakeCluster(
  deps: SleepDeps,
  clusterId: string,
): Promise<{ cluster: ClusterRecord; resumed: string[]; master?: MasterOutcome }> {
  const cluster = await clusterOf(deps, clusterId);
  if (cluster.status === "RUNNING") return { cluster, resumed: [] };
  if (cluster.status !== "SLEEPING")
    throw new ConflictError(`the cluster is ${cluster.status}, not SLEEPING`);
  const power = deps.masterPower?.(cluster);
  const masters = masterIds(cluster);
  let master: MasterOutcome | undefined;
  if (power !== undefined && masters.length > 0) {
    // Starting a running instance is a no-op: no need to remember whether sleep stopped it.
    await power.start(masters);
    master = { state: "started", instanceIds: masters };
  }
  const updated = await deps.store.updateCluster(cluster.clusterId, cluster.version, {
    status: "RUNNING",
    now: deps.clock.now(),
  });
  await event(deps.store, clusterId, deps.clock, "STATUS_CHANGED", "awake", ...by(deps));
  const resumed: string[] = [];
  try {
    const { agent } = await deps.runtime(updated);
    const report = await agent.report();
    const records = await deps.store.listNodes(clusterId);
    for (const node of report.nodes)
      if (node.reason === SLEEP_DRAIN_REASON && (node.state === "DRAINED" || node.state === "DRAINING")) {
        await agent.resume(node.name);
        await backInService(deps, clusterId, records, node.name);
        resumed.push(node.name);
      }
  } catch (error) {
    // A master still booting: its drained nodes stay drained, and the scale cycle, now running again,
    // retires them as empty drained nodes (they take no job) and launches what the queue needs.
    (deps.log ?? silentLog).warn("awake, but the sleep-drained nodes could not be resumed", {
      clusterId,
      error: (error as Error).message.slice(0, 300),
    });
  }
  return { cluster: updated, resumed, ...(master === undefined ? {} : { master }) };
}

/**
 * The reconciler's "asleep" step for a SLEEPING cluster: every compute node drained (those that joined
 * after sleep, or whose drain failed) and each one Slurm shows drained and empty retired.
 */
export async function retireSleepingNodes(
  deps: { store: StateStore; clock: Clock; provider: CloudProvider; agent: AgentChannel; log?: ControlLog },
  clusterId: string,
): Promise<{ retired: string[]; waiting: WaitingNode[] }> {
  const records = await deps.store.listNodes(clusterId);
  const outcome = await drainAndRetire(deps, clusterId, records, SLEEP_DRAIN_REASON);
  if (outcome.retired.length > 0)
    await event(
      deps.store,
      clusterId,
      deps.clock,
      "TERMINATED",
      "asleep: its jobs have ended",
      undefined,
      outcome.retired,
      outcome.retired.length,
    );
  return outcome;
}

/**
 * HPC-NOW `shutdownc` for chosen compute nodes: each drained (no new job) and retired at once when it
 * holds no job; a node running a job is answered as waiting, and retired when its job ends (the scale
 * cycle terminates NowScale's empty drained nodes, the reconciler's asleep step on a sleeping cluster).
 * Unknown names are refused (404, each one named) before anything changes. Under autoscaling the
 * scaler may launch new nodes later if the queue's demand or minSize asks for them.
 */
export async function stopNodes(
  deps: SleepDeps,
  clusterId: string,
  nodes: readonly string[],
): Promise<{ retired: string[]; waiting: WaitingNode[] }> {
  const cluster = await clusterOf(deps, clusterId);
  if (cluster.status !== "RUNNING" && cluster.status !== "SLEEPING")
    throw new StateRefusedError(`the cluster is ${cluster.status}: its master must answer`);
  const all = await deps.store.listNodes(cluster.clusterId);
  const chosen = chosenRecords(all, nodes);
  const { provider, agent } = await deps.runtime(cluster);
  const outcome = await drainAndRetire(
    { ...deps, provider, agent },
    cluster.clusterId,
    chosen,
    STOP_DRAIN_REASON,
  );
  await event(
    deps.store,
    cluster.clusterId,
    deps.clock,
    "MANUAL",
    `nodes stopped by hand: ${outcome.retired.length} retired, ${outcome.waiting.length} waiting for their jobs`,
    undefined,
    [...nodes],
    nodes.length,
    deps.by,
  );
  return outcome;
}

/**
 * HPC-NOW `turnonc`: chosen nodes that a stop or sleep drained and that still wait for their jobs are
 * resumed (they take jobs again) and their records return to JOINED, the status of a node in service, in
 * the same call: nothing then treats them as drained (the scaler counts them as supply again, and only
 * its idle shrink retires them later). A node already retired has no instance left to start: the scaler
 * launches new nodes for the queue's jobs instead: such a name, like a booting one, a node already in
 * service (resumed before: a second resume is a no-op) or one drained by someone else, is answered as not
 * resumed, with why. A name the cluster never had is refused (404 naming `nodes[i]`), nothing resumed.
 */
export async function resumeNodes(
  deps: SleepDeps,
  clusterId: string,
  nodes: readonly string[],
): Promise<{ resumed: string[]; notResumed: WaitingNode[] }> {
  const cluster = await clusterOf(deps, clusterId);
  if (cluster.status !== "RUNNING")
    throw new StateRefusedError(`the cluster is ${cluster.status}, not RUNNING: wake it first`);
  const { agent } = await deps.runtime(cluster);
  const report = await agent.report();
  const records = await deps.store.listNodes(cluster.clusterId);
  const retired = await unknownToResume(deps, cluster.clusterId, nodes, report, records);
  const resumed: string[] = [];
  const notResumed: WaitingNode[] = [];
  for (const name of nodes) {
    const seen = report.nodes.find((n) => n.name === name);
    if (seen === undefined)
      notResumed.push({
        node: name,
        reason: retired.has(name)
          ? "retired (not in Slurm, no instance left to start): the scaler launches nodes on demand"
          : "not in Slurm yet (booting): nothing to resume",
      });
    else if (seen.reason === STOP_DRAIN_REASON || seen.reason === SLEEP_DRAIN_REASON) {
      // Slurm first: should the record write be lost, a second resume finds the node in service and
      // puts its record right (below).
      await agent.resume(name);
      await backInService(deps, cluster.clusterId, records, name);
      resumed.push(name);
    } else if (seen.reason === undefined && seen.state !== "DRAINING" && seen.state !== "DRAINED") {
      await backInService(deps, cluster.clusterId, records, name);
      notResumed.push({
        node: name,
        reason: `already in service (Slurm shows it ${seen.state}, not drained): nothing to resume`,
      });
    } else
      notResumed.push({
        node: name,
        reason: `not stopped by NowScale (Slurm shows it ${seen.state}${
          seen.reason === undefined ? "" : `, reason "${seen.reason.slice(0, 80)}"`
        }): left as it is`,
      });
  }
  // Nothing resumed, nothing changed: no event either.
  if (resumed.length > 0)
    await event(
      deps.store,
      cluster.clusterId,
      deps.clock,
      "MANUAL",
      `nodes resumed by hand: ${resumed.length}`,
      undefined,
      resumed,
      resumed.length,
      deps.by,
    );
  return { resumed, notResumed };
}

/**
 * Refuses, before anything is resumed, each name that is neither in Slurm, nor a node record of the
 * cluster (booting), nor in its usage history (retired): 404 naming `nodes[i]`, as stop does for names
 * it does not know, so a typo is told and not answered as a node the scaler will replace. Returns the
 * names the history shows retired. The history is read only when some name is in neither of the others.
 */
async function unknownToResume(
  deps: { store: StateStore },
  clusterId: string,
  nodes: readonly string[],
  report: OkReport,
  records: readonly NodeRecord[],
): Promise<Set<string>> {
  const known = new Set([...report.nodes.map((n) => n.name), ...records.map((r) => r.nodeName)]);
  if (nodes.every((n) => known.has(n))) return new Set();
  const retired = new Set((await deps.store.listEndedNodes(clusterId)).map((e) => e.nodeName));
  const issues = nodes
    .map((n, i) => ({ n, i }))
    .filter(({ n }) => !known.has(n) && !retired.has(n))
    .map(({ n, i }) => ({ path: `nodes[${i}]`, message: `no node ${n.slice(0, 80)} in this cluster` }));
  if (issues.length > 0) throw new UnknownNameError("unknown nodes", issues);
  return retired;
}

/**
 * A node resumed in Slurm is in service again: its record DRAINING → JOINED (a record in another status,
 * or one another writer moved meanwhile, is left as it is).
 */
async function backInService(
  deps: { store: StateStore; clock: Clock },
  clusterId: string,
  records: readonly NodeRecord[],
  name: string,
): Promise<void> {
  if (records.find((r) => r.nodeName === name)?.status !== "DRAINING") return;
  await deps.store
    .updateNodeStatus(clusterId, name, "DRAINING", "JOINED", deps.clock.now())
    .catch(ignoreConflict);
}

/**
 * Drains each record's node that Slurm lists (JOINED → DRAINING on the record) and retires, on a report
 * read after the drains, each one Slurm shows DRAINED by NowScale with no job. Booting nodes (not in
 * Slurm yet) and busy ones are answered as waiting.
 */
async function drainAndRetire(
  deps: { store: StateStore; clock: Clock; provider: CloudProvider; agent: AgentChannel; log?: ControlLog },
  clusterId: string,
  records: readonly NodeRecord[],
  reason: string,
): Promise<{ retired: string[]; waiting: WaitingNode[] }> {
  const waiting: WaitingNode[] = [];
  if (records.length === 0) return { retired: [], waiting };
  let report: OkReport;
  try {
    report = await deps.agent.report();
  } catch (error) {
    const why = `Slurm could not be read: ${(error as Error).message.slice(0, 200)}`;
    return { retired: [], waiting: records.map((r) => ({ node: r.nodeName, reason: why })) };
  }
  const inSlurm = new Map(report.nodes.map((n) => [n.name, n]));
  const drained: NodeRecord[] = [];
  for (const record of records) {
    const seen = inSlurm.get(record.nodeName);
    if (seen === undefined) {
      waiting.push({
        node: record.nodeName,
        reason:
          record.status === "TERMINATING"
            ? "being terminated (the reconciler finishes it)"
            : "not in Slurm yet (booting): drained once it joins",
      });
      continue;
    }
    // A node NowScale already drained keeps its reason (its retirement is under way either way).
    if (seen.reason === undefined || !seen.reason.startsWith("nowscale")) {
      try {
        await deps.agent.drain(record.nodeName, reason);
      } catch (error) {
        waiting.push({
          node: record.nodeName,
          reason: `drain failed: ${(error as Error).message.slice(0, 200)}`,
        });
        continue;
      }
    }
    if (record.status === "JOINED")
      await deps.store
        .updateNodeStatus(clusterId, record.nodeName, "JOINED", "DRAINING", deps.clock.now())
        .catch(ignoreConflict);
    drained.push(record.status === "JOINED" ? { ...record, status: "DRAINING" } : record);
  }
  const { retired, kept } = await retireDrainedNodes(deps, clusterId, drained, () => deps.clock.now());
  return { retired: retired.map((r) => r.nodeName), waiting: [...kept, ...waiting] };
}

async function stopMaster(
  deps: SleepDeps,
  cluster: ClusterRecord,
  waiting: readonly WaitingNode[],
): Promise<MasterOutcome> {
  const instanceIds = masterIds(cluster);
  const power = deps.masterPower?.(cluster);
  if (power === undefined || instanceIds.length === 0)
    return {
      state: "running",
      instanceIds,
      reason:
        cluster.placement.cloud === "local"
          ? "the local mode's master is this machine's slurmctld: `nowscale local down` stops it"
          : instanceIds.length === 0
            ? "the cluster has no master instance NowScale created (attached): stop it where it runs"
            : `this deployment cannot stop a master on ${cluster.placement.cloud} (no stop/start for that cloud yet)`,
    };
  if (waiting.length > 0)
    return {
      state: "running",
      instanceIds,
      reason: `${waiting.length} compute node(s) still wait (${waiting
        .slice(0, 5)
        .map((w) => w.node)
        .join(", ")}): sleep again with the master stop once they are retired`,
    };
  try {
    await power.stop(instanceIds);
  } catch (error) {
    // Asleep all the same: the master's stop is an extra, told with the cloud's reason.
    return {
      state: "running",
      instanceIds,
      reason: `the cloud refused the stop: ${(error as Error).message.slice(0, 200)}`,
    };
  }
  await event(
    deps.store,
    cluster.clusterId,
    deps.clock,
    "MANUAL",
    "master stopped (asleep)",
    undefined,
    undefined,
    undefined,
    deps.by,
  );
  return { state: "stopped", instanceIds };
}

/** The master: the instances the cluster's workflow created (compute nodes are never in `resources`). */
function masterIds(cluster: ClusterRecord): string[] {
  return cluster.resources.filter((r) => r.type === "masterInstance").map((r) => r.id);
}

function chosenRecords(all: readonly NodeRecord[], nodes: readonly string[]): NodeRecord[] {
  const byName = new Map(all.map((r) => [r.nodeName, r]));
  const issues = nodes
    .map((n, i) => ({ n, i }))
    .filter(({ n }) => !byName.has(n))
    .map(({ n, i }) => ({ path: `nodes[${i}]`, message: `no node ${n.slice(0, 80)} in this cluster` }));
  if (issues.length > 0) throw new UnknownNameError("unknown nodes", issues);
  return nodes.map((n) => byName.get(n) as NodeRecord);
}

async function clusterOf(deps: { store: StateStore }, clusterId: string): Promise<ClusterRecord> {
  const cluster = await deps.store.getCluster(clusterId);
  if (cluster === undefined)
    throw new UnknownNameError("no such cluster", [{ path: "clusterId", message: "no such cluster" }]);
  return cluster;
}

function by(deps: { by?: string | undefined }): [undefined, undefined, undefined, string | undefined] {
  return [undefined, undefined, undefined, deps.by];
}
