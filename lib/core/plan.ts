import { candidateOf } from "./candidate.js";
import type { ResolvedConfig, ResolvedQueue } from "./config.js";
import { headroomLaunchCount } from "./headroom.js";
import type {
  Candidate,
  ClusterNode,
  ClusterState,
  Decision,
  Job,
  Launch,
  QueueArrivals,
  QueueSummary,
  Shrink,
  Skip,
} from "./model.js";
import { ownValue } from "./own.js";
import { type Hold, jobSkip, type SupplyNode } from "./plan-terms.js";
import type { NewNode, Policy, PolicyResult } from "./policy.js";
import { planPacked } from "./policy-packed.js";
import { planThpc } from "./policy-thpc.js";
import { roundSize } from "./rounds.js";
import { isBusy, planShrink } from "./shrink.js";
import { prepareJobs } from "./views.js";

const POLICIES: Record<ResolvedConfig["policy"], Policy> = { thpc: planThpc, packed: planPacked };

/**
 * One scaling decision for the whole cluster. Pure: the same config, state and `now` (epoch ms)
 * always give the same decision, and nothing is read or changed outside the arguments.
 */
export function plan(config: ResolvedConfig, state: ClusterState, now: number): Decision {
  const decision: Decision = { launches: [], shrinks: [], skipped: [], queues: [], mismatches: [] };
  const jobsByQueue = new Map<string, Job[]>();
  const nodesByQueue = new Map<string, ClusterNode[]>();
  const runningOn = new Set<string>();

  for (const job of state.jobs) {
    if (job.state === "RUNNING") {
      for (const name of job.nodeNames ?? []) runningOn.add(name);
      continue;
    }
    if (!config.queueByName.has(job.queue)) {
      decision.skipped.push(
        jobSkip(job, "QUEUE_NOT_CONFIGURED", `queue ${job.queue} is not in queueConfigs`),
      );
      continue;
    }
    if (job.state === "BLOCKED") {
      decision.skipped.push(jobSkip(job, "BLOCKED", job.reason ?? "blocked: scale-out cannot help"));
      continue;
    }
    push(jobsByQueue, job.queue, job);
  }
  for (const node of state.nodes) {
    if (!config.queueByName.has(node.queue)) {
      decision.skipped.push({
        node: node.name,
        queue: node.queue,
        code: "QUEUE_NOT_CONFIGURED",
        reason: `queue ${node.queue} is not in queueConfigs: node left alone`,
      });
      continue;
    }
    push(nodesByQueue, node.queue, node);
  }

  const policy = POLICIES[config.policy];
  const bootTimeoutMs = config.bootTimeout * 1000;
  for (const queue of config.queues) {
    const pending = oldestFirst(jobsByQueue.get(queue.queueName) ?? []);
    const nodes = byName(nodesByQueue.get(queue.queueName) ?? []);
    const busy = new Set<string>();
    for (const n of nodes) if (isBusy(n, runningOn)) busy.add(n.name);
    const supply: SupplyNode[] = [];
    for (const node of nodes) {
      const shape = ownValue(config.catalog, node.instanceType);
      if (
        shape &&
        (node.state === "IDLE" ? !busy.has(node.name) : coversWhileBooting(node, now, bootTimeoutMs))
      ) {
        supply.push({ node, shape });
      }
    }
    const prepared = prepareJobs({
      queue,
      jobs: pending,
      holds: holds(queue, pending, config.expansionBusyTime, now),
      supply,
      unavailable: state.unavailableOfferings ?? [],
      capacityFallback: config.capacityFallback,
      reservationTimeoutS: config.reservationTimeout,
      now,
    });
    decision.skipped.push(...prepared.skipped);
    decision.mismatches.push(...prepared.mismatches);
    const jobs = prepared.jobs;
    const room = Math.max(0, queue.maxSize - nodes.length);
    const result = policy({
      queue,
      jobs,
      holds: prepared.holds,
      requests: prepared.requests,
      supply,
      room,
      weighPrice: config.weighPrice,
      views: prepared.views,
    });
    const launching = nodes.filter((n) => n.state === "LAUNCHING").length;
    const summary = scaleOut(queue, jobs, result, nodes.length, launching, decision, prepared.notes);
    summary.pendingJobs = pending.reduce((sum, j) => sum + j.count, 0);
    decision.queues.push(summary);

    const headroom = headroomVcpus(config, queue, state, pending, now);
    const vcpusOf = (n: ClusterNode) => ownValue(config.catalog, n.instanceType)?.vcpus ?? 0;
    const shrink = planShrink({
      queue,
      nodes,
      busy,
      reserved: result.reserved,
      shrinkIdleTimeS: config.shrinkIdleTime,
      bootTimeoutS: config.bootTimeout,
      now,
      headroomVcpus: headroom,
      vcpusOf,
      cancelUnneededBoots: config.cancelUnneededBoots,
    });
    decision.shrinks.push(...shrink.shrinks);
    decision.skipped.push(...shrink.skipped);
    noteUnknownTypes(config, queue, nodes, busy, shrink.shrinks, decision);
    if (config.headroomLaunch)
      launchHeadroom(queue, nodes, busy, result, shrink.shrinks, headroom, vcpusOf, summary, decision);
  }
  return decision;
}

/**
 * A node whose instance type the config's catalog does not name (a typo in the state, or a type since
 * removed from the config) covers no pending job and counts no vCPUs, but is shrunk by the same rules
 * as any other (drained once idle shrinkIdleTime, never while it runs a job). Without this note the
 * only trace would be a drain with an ordinary reason, and a typo could not be told from a removal.
 * The note comes in addition to the node's shrink or other skip, which it names.
 */
function noteUnknownTypes(
  config: ResolvedConfig,
  queue: ResolvedQueue,
  nodes: readonly ClusterNode[],
  busy: ReadonlySet<string>,
  shrinks: readonly Shrink[],
  decision: Decision,
): void {
  for (const node of nodes) {
    if (ownValue(config.catalog, node.instanceType) !== undefined) continue;
    const shrink = shrinks.find((s) => s.node === node.name);
    const outcome = shrink
      ? `planned to ${shrink.action} by the usual shrink rules (see shrinks)`
      : busy.has(node.name)
        ? "it runs a job, so it is left alone"
        : "not shrunk this cycle (the usual shrink rules apply)";
    decision.skipped.push({
      node: node.name,
      queue: queue.queueName,
      code: "TYPE_NOT_CONFIGURED",
      reason: `instance type ${node.instanceType} is not in the config's catalog (a typo, or a type removed from the config?): it covers no pending job; ${outcome}`,
    });
  }
}

/** Launches nodes of the queue's first shape up to the warm headroom (config headroomLaunch; headroom.ts). */
function launchHeadroom(
  queue: ResolvedQueue,
  nodes: readonly ClusterNode[],
  busy: ReadonlySet<string>,
  result: PolicyResult,
  shrinks: readonly Shrink[],
  headroomVcpus: number,
  vcpusOf: (n: ClusterNode) => number,
  summary: QueueSummary,
  decision: Decision,
): void {
  const room = Math.min(
    queue.maxSize - nodes.length - summary.launchedNodes,
    queue.maxNodesPerCycle - summary.launchingNodes - summary.launchedNodes,
  );
  const reserved = result.reserved;
  const count = headroomLaunchCount({ queue, nodes, busy, reserved, shrinks, headroomVcpus, vcpusOf, room });
  const first = queue.groups[0];
  if (count <= 0 || !first) return;
  decision.launches.push({
    ...launchAt(queue, first.entries, count),
    allOrNothing: false,
    jobs: [],
    reason: `warm headroom: ${headroomVcpus} vCPUs from recent arrivals, too few idle or booting`,
  });
  summary.launchedNodes += count;
}

/**
 * The warm headroom of a queue, in vCPUs: the rate at which single-node jobs' CPUs arrived over the
 * last headroomWindow seconds × headroomSeconds. From the state's `arrivals` when it lists the queue
 * (the agent reports several windows: the one nearest headroomWindow, arrivalsFor), else from the jobs
 * in the state (running jobs included; those that already ended are not there).
 */
function headroomVcpus(
  config: ResolvedConfig,
  queue: ResolvedQueue,
  state: ClusterState,
  pending: readonly Job[],
  now: number,
): number {
  if (config.headroomSeconds <= 0) return 0;
  const given = arrivalsFor(state.arrivals, queue.queueName, config.headroomWindow);
  if (given) return Math.ceil((given.cpus / given.windowS) * config.headroomSeconds);
  const largest = Math.max(0, ...queue.groups.map((g) => g.shape.vcpus));
  const since = now - config.headroomWindow * 1000;
  let cpus = 0;
  const count = (job: Job) => {
    if (job.submittedAt < since) return;
    const r = job.request;
    const c = r.kind === "tasks" ? r.tasks * r.cpusPerTask : r.nodes * r.cpusPerNode;
    if (c <= largest) cpus += c * job.count;
  };
  for (const job of pending) count(job);
  for (const job of state.jobs) if (job.state === "RUNNING" && job.queue === queue.queueName) count(job);
  return Math.ceil((cpus / config.headroomWindow) * config.headroomSeconds);
}

/**
 * The queue's arrivals over the window nearest `windowS`: that window itself, else the longest shorter
 * one, else the shortest longer one; on a tie, the first listed. Undefined when the queue has none.
 */
export function arrivalsFor(
  arrivals: ClusterState["arrivals"],
  queue: string,
  windowS: number,
): QueueArrivals | undefined {
  let best: QueueArrivals | undefined;
  // Lower is nearer: windows up to windowS by how much shorter, then longer ones by how much longer.
  const distance = (a: QueueArrivals) => (a.windowS <= windowS ? windowS - a.windowS : 2 ** 31 + a.windowS);
  for (const a of arrivals ?? []) {
    if (a.queue === queue && (best === undefined || distance(a) < distance(best))) best = a;
  }
  return best;
}

/**
 * A node that is not capacity yet (LAUNCHING, or NOT_READY in Slurm) covers pending demand only within
 * bootTimeout of its launch. A LAUNCHING node of unknown launch time is given the benefit of the doubt
 * (the scale cycle always knows it); a NOT_READY one is not, since nothing says it will ever come up.
 */
function coversWhileBooting(node: ClusterNode, now: number, bootTimeoutMs: number): boolean {
  if (node.state !== "LAUNCHING" && node.state !== "NOT_READY") return false;
  if (node.launchedAt === undefined) return node.state === "LAUNCHING";
  return now - node.launchedAt < bootTimeoutMs;
}

/** Each job's hold from the demand rules, by index into `jobs` (undefined: it may launch). */
function holds(
  queue: ResolvedQueue,
  jobs: readonly Job[],
  busyTimeS: number,
  now: number,
): (Hold | undefined)[] {
  const held = new Array<Hold | undefined>(jobs.length).fill(undefined);
  if (!queue.enableAutoExpansion) {
    // One hold for all: its text names the queue only.
    return held.fill({
      code: "AUTO_EXPANSION_DISABLED",
      reason: `auto expansion is disabled for queue ${queue.queueName}`,
    });
  }
  for (let i = 0; i < jobs.length; i++) {
    const waitedS = Math.floor((now - (jobs[i] as Job).submittedAt) / 1000);
    if (waitedS < busyTimeS) {
      held[i] = {
        code: "BUSY_TIME_NOT_REACHED",
        reason: `waited ${Math.max(0, waitedS)} s of expansionBusyTime ${busyTimeS} s`,
      };
    }
  }
  return held;
}

/** Applies the round (scaleOutRatio / threshold) and the per-cycle cap, then groups nodes into launches. */
function scaleOut(
  queue: ResolvedQueue,
  jobs: readonly Job[],
  result: PolicyResult,
  existing: number,
  launching: number,
  decision: Decision,
  notes: ReadonlyMap<string, string>,
): QueueSummary {
  const needed = result.newNodes.reduce((n, run) => n + run.count, 0);
  const byRatio = roundSize(needed, queue.scaleOutRatio, queue.scaleOutNodeThreshold);
  const cycleRoom = Math.max(0, queue.maxNodesPerCycle - launching);
  const round = Math.min(byRatio, cycleRoom);

  for (const skip of result.skipped) decision.skipped.push(skip);
  // One reason for every job the round leaves out (worked out when one is: most polls defer none).
  let why: { code: Skip["code"]; reason: string } | undefined;
  const deferral = () =>
    (why ??=
      byRatio <= cycleRoom
        ? {
            code: "DEFERRED_BY_SCALE_OUT_RATIO",
            reason: `this round launches ${round} of ${needed} needed nodes (scaleOutRatio ${queue.scaleOutRatio}%, threshold ${queue.scaleOutNodeThreshold})`,
          }
        : {
            code: "CYCLE_CAP_REACHED",
            reason: `maxNodesPerCycle ${queue.maxNodesPerCycle} reached with ${launching} nodes launching and ${round} launched now`,
          });
  const { launches, launchOf } = groupIntoLaunches(queue, result.newNodes, round, needed, notes);
  // Every copy whose first new node lies beyond the round waits for a later round, and says so; each
  // launched copy counts in the launch that holds its first new node.
  const copies = launches.map(() => new Map<string, number>());
  const { copyStarts } = result;
  for (let index = 0; index < copyStarts.length; index++) {
    const starts = copyStarts[index];
    if (starts === undefined) continue;
    const job = jobs[index] as Job;
    const deferred = starts.atOrAbove(round);
    if (deferred > 0) {
      const { code, reason } = deferral();
      decision.skipped.push(jobSkip(job, code, reason, deferred));
    }
    if (starts.first >= round) continue;
    starts.forEachBelow(round, (position, n) => {
      const perJob = copies[launchOf[position] as number];
      perJob?.set(job.id, (perJob.get(job.id) ?? 0) + n);
    });
  }
  launches.forEach((launch, i) => {
    launch.copies = launch.jobs.map((id) => copies[i]?.get(id) ?? 0);
  });
  let launched = round;
  // Keep the queue at minSize, counting what this round launches.
  const topUp = Math.min(queue.minSize - existing - round, cycleRoom - round);
  const first = queue.groups[0];
  if (queue.enableAutoExpansion && topUp > 0 && first) {
    launches.push({
      ...launchAt(queue, first.entries, topUp),
      allOrNothing: false,
      jobs: [],
      reason: `queue ${queue.queueName} is below minSize ${queue.minSize}`,
    });
    launched += topUp;
  }
  decision.launches.push(...launches);
  return {
    queue: queue.queueName,
    pendingJobs: 0,
    neededNodes: needed,
    launchedNodes: launched,
    existingNodes: existing,
    launchingNodes: launching,
  };
}

function groupIntoLaunches(
  queue: ResolvedQueue,
  runs: readonly NewNode[],
  round: number,
  needed: number,
  notes: ReadonlyMap<string, string>,
): { launches: Launch[]; launchOf: Int32Array } {
  // Nodes per unit, for the all-or-nothing test of the round's multi-node units: only their units are
  // counted (a pass that hashed every run's unit cost more than the rest of this function).
  const unitSize = new Map<string | number, number>();
  for (let i = 0, position = 0; i < runs.length && position < round; i++) {
    const run = runs[i] as NewNode;
    if (run.multiNode) unitSize.set(run.unit, 0);
    position += run.count;
  }
  if (unitSize.size > 0) {
    for (const run of runs) {
      if (!run.multiNode) continue;
      const size = unitSize.get(run.unit);
      if (size !== undefined) unitSize.set(run.unit, size + run.count);
    }
  }
  const byUnit = new Map<
    string | number,
    { run: NewNode; count: number; jobs: Set<string>; index: number }
  >();
  /** For each new node of the round (by position), the index of its launch. */
  const launchOf = new Int32Array(round);
  let position = 0;
  for (const run of runs) {
    if (position >= round) break;
    const take = Math.min(round - position, run.count);
    let entry = byUnit.get(run.unit);
    if (!entry) {
      entry = { run, count: 0, jobs: new Set(), index: byUnit.size };
      byUnit.set(run.unit, entry);
    }
    launchOf.fill(entry.index, position, position + take);
    position += take;
    entry.count += take;
    for (const id of run.jobs) entry.jobs.add(id);
  }
  const launches = [...byUnit.values()].map(({ run, count, jobs }): Launch => {
    const { vcpus, memoryMiB, gpus } = run.group.shape;
    const shape = `${vcpus} vCPU / ${memoryMiB} MiB${gpus ? ` / ${gpus} GPU` : ""}`;
    const why =
      notes.size === 0
        ? []
        : [...new Set([...jobs].map((id) => notes.get(id)).filter((n) => n !== undefined))];
    return {
      ...launchAt(queue, run.group.entries, count),
      allOrNothing: run.multiNode && count === unitSize.get(run.unit),
      jobs: [...jobs],
      reason: `best fit ${shape} for ${jobs.size} job(s); round of ${round} of ${needed} needed nodes${why.length > 0 ? `; ${why.join("; ")}` : ""}`,
    };
  });
  return { launches, launchOf };
}

function launchAt(
  queue: ResolvedQueue,
  entries: readonly Candidate[],
  count: number,
): Pick<Launch, "queue" | "instanceType" | "zone" | "count" | "candidates"> {
  const candidates = entries.map(candidateOf);
  const first = candidates[0];
  if (!first) throw new Error(`queue ${queue.queueName} has a shape group without entries`);
  return { queue: queue.queueName, instanceType: first.instanceType, zone: first.zone, count, candidates };
}

/**
 * Pending jobs in FIFO order: submit time, then id. When the submit times are whole ms spanning less
 * than about 100 days (always, in practice), each job's key is (time − the first job's) × 2^20 + its
 * index, and a native numeric sort of a Float64Array orders them; runs of equal times are then ordered
 * by id. Otherwise, a comparator sort. The keys are made in the pass that checks the order, and equal
 * times are found from the sorted keys: with 100k jobs, each pass that reads every job object again
 * costs about as much as the sort.
 */
function oldestFirst(jobs: Job[]): Job[] {
  const n = jobs.length;
  if (n < 2) return jobs.slice();
  const SHIFT = 2 ** 20;
  const first = (jobs[0] as Job).submittedAt;
  const keys = new Float64Array(n);
  let min = first;
  let max = first;
  let whole = Number.isInteger(first);
  let sorted = true;
  for (let i = 1; i < n; i++) {
    const job = jobs[i] as Job;
    const t = job.submittedAt;
    if (t < min) min = t;
    if (t > max) max = t;
    if (!Number.isInteger(t)) whole = false;
    if (sorted && !before(jobs[i - 1] as Job, job)) sorted = false;
    keys[i] = (t - first) * SHIFT + i;
  }
  // Already in order (the agent reports squeue's order): nothing to sort.
  if (sorted) return jobs.slice();
  if (n >= SHIFT || (max - min + 1) * SHIFT >= Number.MAX_SAFE_INTEGER || !whole) {
    return jobs.slice().sort((a, b) => (before(a, b) ? -1 : before(b, a) ? 1 : 0));
  }
  keys.sort();
  // A key is (time − first) × 2^20 + index, exactly: its time and index come back by division.
  const delta = (key: number) => Math.floor(key / SHIFT);
  const out = new Array<Job>(n);
  for (let i = 0; i < n; i++) {
    const key = keys[i] as number;
    out[i] = jobs[key - delta(key) * SHIFT] as Job;
  }
  // Equal submit times: by id.
  for (let i = 0; i < n; ) {
    let j = i + 1;
    while (j < n && delta(keys[j] as number) === delta(keys[i] as number)) j++;
    if (j - i > 1) {
      const run = out.slice(i, j).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      for (let k = i; k < j; k++) out[k] = run[k - i] as Job;
    }
    i = j;
  }
  return out;
}

/**
 * Sorts nodes by name, in place. A list already in order (the simulator's, and sinfo's as a rule) is
 * only checked: the planner runs every poll, and a comparator sort costs more than the check.
 */
function byName(nodes: ClusterNode[]): ClusterNode[] {
  for (let i = 1; i < nodes.length; i++) {
    if ((nodes[i - 1] as ClusterNode).name > (nodes[i] as ClusterNode).name) {
      return nodes.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    }
  }
  return nodes;
}

/** FIFO order: submit time, then id. */
function before(a: Job, b: Job): boolean {
  return a.submittedAt < b.submittedAt || (a.submittedAt === b.submittedAt && a.id < b.id);
}

function push<T>(map: Map<string, T[]>, key: string, value: T): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
