import type { ResolvedConfig } from "../core/config.js";
import type { ClusterNode, ClusterState, Decision, Launch, UnavailableOffering } from "../core/model.js";
import { plan } from "../core/plan.js";
import { MAX_LAUNCH_COUNT } from "../ports/cloud-provider.js";
import type { ClusterRecord, LaunchIntent, NodeRecord } from "../ports/state-store.js";
import { notServedReasons } from "./job-notes.js";
import { allowedCandidates, type KnownSupply, queueHealthOf, recordedPerRound } from "./launch.js";

/**
 * The scale cycle's decision for one poll, pure: what the poll observed in, what to do out, no I/O and no
 * clock (`now` is an argument). The scale cycle (scale-cycle.ts, `pollOnce`) reads the observations, calls
 * `decidePoll` and carries the decision out: launches through the launch path, job notes through the agent,
 * shrinks once the next report agrees.
 */

/** What one poll has read: the cluster's record and config, Slurm's view, NowScale's records and intents. */
export interface PollObservations {
  /** The cluster's record as the poll read it: its queue health decides protected mode. */
  cluster: Pick<ClusterRecord, "queueHealth">;
  config: ResolvedConfig;
  /** The agent's report as a cluster state (reportToClusterState). */
  seen: ClusterState;
  /** The cluster's node records, read after `intents` (as admission reads them). */
  records: readonly NodeRecord[];
  /** The cluster's INTENDED launch intents. */
  intents: readonly LaunchIntent[];
  /** What the provider holds unavailable after capacity errors. */
  unavailable: UnavailableOffering[];
  /** The poll's time, epoch ms. */
  now: number;
  /** Prefix of this poll's launch rounds: each launch's round is `<round>-l<launch>-<part>`. */
  round: string;
}

/** One step of the poll's launches, in the planner's order. */
export type PollLaunch =
  /** One provider call: at most MAX_LAUNCH_COUNT nodes of one planner launch, with its own round. */
  | { kind: "launch"; launch: Launch; round: string }
  /** A planner launch held back: every candidate is an offering of a queue in protected mode. */
  | { kind: "protected"; queue: string };

export interface PollDecision {
  /** The state the planner saw: Slurm's nodes with their launch times, plus nodes still launching. */
  state: ClusterState;
  /** The planner's decision on that state. */
  decision: Decision;
  /** What the plan counted as supply (admission lets less through when more appears after it). */
  known: KnownSupply;
  /** The launches to make and those held back, in the planner's order. */
  launches: PollLaunch[];
  /** Why each job not served is not, by job id: the planner's skips, then the protected queues' holds. */
  notServed: Map<string, string>;
}

/**
 * The report's idle times on the control plane's clock. `idleSince` is the master's clock and `now` ours;
 * a master whose clock is behind makes a node whose job has just ended look idle for as long as the skew,
 * so the shrink would drain it at once. When the report was generated behind `receivedAt` (skew plus the
 * transport's seconds), every idleSince moves forward by that much: the idle age becomes the age the
 * master itself measured. A master ahead is left as it is (its nodes look idle for less: later shrinks,
 * never earlier ones). Only idle times move: a shrink can only come later for it.
 */
export function idleOnOurClock(seen: ClusterState, generatedAt: number, receivedAt: number): ClusterState {
  const behindMs = receivedAt - generatedAt;
  if (!(behindMs > 0)) return seen;
  return {
    ...seen,
    nodes: seen.nodes.map((n) =>
      n.idleSince === undefined ? n : { ...n, idleSince: n.idleSince + behindMs },
    ),
  };
}

/** LAUNCHING records Slurm now lists: they joined since the last poll. */
export function joinedSinceLastPoll(records: readonly NodeRecord[], seen: ClusterState): NodeRecord[] {
  const inSlurm = new Set(seen.nodes.map((n) => n.name));
  return records.filter((record) => record.status === "LAUNCHING" && inSlurm.has(record.nodeName));
}

/** Plans the poll: the planner's state from the observations, its decision, and the launches to make. */
export function decidePoll(o: PollObservations): PollDecision {
  const state = plannerState(o.seen, o.records, o.intents, o.unavailable);
  const decision = plan(o.config, state, o.now);
  // What this plan counted as supply: a launch or node that appears after it (another path launched
  // meanwhile) reduces what admission lets through.
  const known: KnownSupply = {
    instances: new Set(o.records.map((r) => r.instanceId)),
    rounds: new Set(o.intents.map((i) => i.round)),
  };
  // Jobs whose launch this poll holds back (their queue is protected): their notes say so.
  const held = new Map<string, string>();
  const launches: PollLaunch[] = [];
  for (const [index, launch] of decision.launches.entries()) {
    if (allowedCandidates(queueHealthOf(o.cluster, launch.queue), launch.candidates).length === 0) {
      launches.push({ kind: "protected", queue: launch.queue });
      for (const job of launch.jobs) held.set(job, protectedReason(launch.queue));
      continue;
    }
    for (const [part, count] of splitCount(launch.count).entries()) {
      launches.push({ kind: "launch", launch: { ...launch, count }, round: `${o.round}-l${index}-${part}` });
    }
  }
  return { state, decision, known, launches, notServed: notServedReasons(decision, held) };
}

/**
 * The state the planner sees. A node in Slurm that is not capacity yet covers demand only within
 * bootTimeout of its launch: the planner needs the launch time, which only NowScale's records know.
 * Nodes still launching (records not yet in Slurm, intents in flight) are added as LAUNCHING.
 */
export function plannerState(
  seen: ClusterState,
  records: readonly NodeRecord[],
  intents: readonly LaunchIntent[],
  unavailable: UnavailableOffering[],
): ClusterState {
  const inSlurm = new Set(seen.nodes.map((n) => n.name));
  const launchedAt = new Map(records.map((r) => [r.nodeName, r.launchedAt]));
  return {
    jobs: seen.jobs,
    nodes: [
      ...seen.nodes.map((n) => {
        const at = launchedAt.get(n.name);
        return n.launchedAt === undefined && at !== undefined ? { ...n, launchedAt: at } : n;
      }),
      ...launchingNodes(records, intents, inSlurm),
    ],
    // What the provider holds unavailable after capacity errors: the planner falls back to the next-best
    // shape (capacityFallback) rather than plan a launch the provider would skip every cycle.
    unavailableOfferings: unavailable,
    // The agent's count of recent arrivals (ended jobs included), for the warm headroom.
    ...(seen.arrivals === undefined ? {} : { arrivals: seen.arrivals }),
  };
}

function protectedReason(queue: string): string {
  return `queue ${queue} is in protected mode (its nodes failed to boot): nothing is launched for it until a node joins or an operator clears it`;
}

/** Nodes the planner must count as launching: started but not yet in Slurm, and launches still in flight. */
function launchingNodes(
  records: readonly NodeRecord[],
  intents: readonly LaunchIntent[],
  inSlurm: Set<string>,
): ClusterNode[] {
  const nodes: ClusterNode[] = records
    // Only nodes still booting: a joined node that left Slurm is the reconciler's business, not capacity.
    .filter((r) => !inSlurm.has(r.nodeName) && r.status === "LAUNCHING")
    .map((r) => ({
      name: r.nodeName,
      queue: r.queue,
      instanceType: r.instanceType,
      zone: r.zone,
      state: "LAUNCHING",
      launchedAt: r.launchedAt,
    }));
  // An intent in flight may already have recorded some instances (recorded before any release): those
  // are counted as records above, the rest as the intent's.
  const recorded = recordedPerRound(records);
  for (const intent of intents) {
    const first = intent.candidates[0];
    if (first === undefined) continue;
    for (let i = recorded.get(intent.round) ?? 0; i < intent.count; i++) {
      nodes.push({
        name: `intent-${intent.round}-${i}`,
        queue: intent.queue,
        instanceType: first.instanceType,
        zone: first.zone,
        state: "LAUNCHING",
        launchedAt: intent.intendedAt,
      });
    }
  }
  return nodes;
}

/** A launch's count in provider calls of at most MAX_LAUNCH_COUNT nodes each. */
function splitCount(count: number): number[] {
  const parts: number[] = [];
  for (let left = count; left > 0; left -= MAX_LAUNCH_COUNT) parts.push(Math.min(left, MAX_LAUNCH_COUNT));
  return parts;
}
