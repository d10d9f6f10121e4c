import type { ResolvedQueue } from "./config.js";
import type { ClusterNode, Shrink, Skip } from "./model.js";

/** Prefix of the Slurm reason NowScale sets when it drains a node; other drains belong to people. */
export const DRAIN_REASON_PREFIX = "nowscale";

export interface ShrinkInput {
  queue: ResolvedQueue;
  nodes: readonly ClusterNode[];
  /** Names of nodes a running job occupies (from node states and running jobs' node lists). */
  busy: ReadonlySet<string>;
  /** Idle and booting nodes pending jobs will use, by node name → job id. */
  reserved: ReadonlyMap<string, string>;
  shrinkIdleTimeS: number;
  /** Idle vCPUs kept warm (the headroom); 0: none. */
  headroomVcpus?: number;
  /** vCPUs of a node (its type's), for the headroom. */
  vcpusOf?: (node: ClusterNode) => number;
  /** Terminate LAUNCHING nodes no pending job will use, beyond minSize and the headroom. */
  cancelUnneededBoots?: boolean;
  /** A LAUNCHING or NOT_READY node not usable this long after its launch is flagged (NOT_READY: retired). */
  bootTimeoutS: number;
  now: number;
}

const WORKING_STATES = new Set(["MIXED", "ALLOCATED", "DRAINING"]);

export function isBusy(node: ClusterNode, runningOn: ReadonlySet<string>): boolean {
  return WORKING_STATES.has(node.state) || runningOn.has(node.name);
}

/**
 * THPC shrink: a node idle without a break for shrinkIdleTime is drained; a drained node holding no
 * job is terminated. A node that runs a job is never terminated; minSize nodes and
 * desiredIdleNodeCapacity idle nodes are kept. Longest-idle nodes go first. Beyond THPC, when
 * configured: idle nodes are kept while the idle vCPUs left would fall below the headroom, and
 * booting nodes no pending job will use are terminated (newest first) down to the headroom.
 */
export function planShrink(input: ShrinkInput): { shrinks: Shrink[]; skipped: Skip[] } {
  const { queue, nodes, busy, reserved, now } = input;
  const q = queue.queueName;
  const shrinks: Shrink[] = [];
  const skipped: Skip[] = [];
  const skip = (node: ClusterNode, code: Skip["code"], reason: string) =>
    skipped.push({ node: node.name, queue: q, code, reason });

  let remaining = nodes.length;
  const idle = nodes.filter((n) => n.state === "IDLE" && !busy.has(n.name));
  let idleLeft = idle.filter((n) => !reserved.has(n.name)).length;
  const keep = (node: ClusterNode): boolean => {
    if (remaining - 1 < queue.minSize) {
      skip(node, "KEPT_FOR_MIN_SIZE", `queue ${q} keeps minSize ${queue.minSize} nodes`);
      return true;
    }
    return false;
  };

  const bootMs = input.bootTimeoutS * 1000;
  for (const node of nodes) {
    if (node.state === "LAUNCHING" || node.state === "NOT_READY") {
      const sinceS = node.launchedAt === undefined ? undefined : Math.floor((now - node.launchedAt) / 1000);
      if (node.state === "LAUNCHING" && sinceS !== undefined && sinceS * 1000 >= bootMs) {
        skip(
          node,
          "BOOT_TIMEOUT_PASSED",
          `not in Slurm ${sinceS} s after launch (bootTimeout ${input.bootTimeoutS} s): no longer counted as capacity; the reconciler retires it`,
        );
      } else if (node.state === "NOT_READY" && sinceS === undefined) {
        skip(
          node,
          "BOOT_TIMEOUT_PASSED",
          "in Slurm but not capacity (not responding, powered down or unknown), since an unknown time: not counted as capacity",
        );
      } else if (node.state === "NOT_READY" && (sinceS as number) * 1000 >= bootMs) {
        if (busy.has(node.name)) {
          skip(node, "RUNS_A_JOB", "not responding but holds a running job: left alone");
        } else if (!queue.enableAutoShrink) {
          skip(node, "AUTO_SHRINK_DISABLED", `auto shrink is disabled for queue ${q}`);
        } else {
          remaining--;
          shrinks.push({
            node: node.name,
            queue: q,
            action: "terminate",
            reason: `in Slurm but not capacity ${sinceS} s after launch (bootTimeout ${input.bootTimeoutS} s): retired`,
          });
        }
      }
    } else if (node.state === "DOWN") {
      skip(node, "LEFT_TO_RECONCILER", "node is DOWN: the reconciler replaces or removes it");
    } else if (node.state === "DRAINING" || (node.state === "DRAINED" && busy.has(node.name))) {
      skip(node, "RUNS_A_JOB", "draining: terminated once its jobs have ended");
    } else if (node.state === "DRAINED") {
      if (node.reason !== undefined && !node.reason.startsWith(DRAIN_REASON_PREFIX)) {
        skip(node, "DRAINED_BY_OTHERS", `drained by someone else ("${node.reason}"): left alone`);
      } else if (!queue.enableAutoShrink) {
        skip(node, "AUTO_SHRINK_DISABLED", `auto shrink is disabled for queue ${q}`);
      } else if (!keep(node)) {
        remaining--;
        shrinks.push({ node: node.name, queue: q, action: "terminate", reason: "drained and holds no job" });
      }
    }
  }

  const headroom = input.headroomVcpus ?? 0;
  const vcpusOf = input.vcpusOf ?? (() => 0);
  // Idle vCPUs no pending job will use: what the headroom counts.
  let spareVcpus = 0;
  for (const node of idle) if (!reserved.has(node.name)) spareVcpus += vcpusOf(node);

  const limitMs = input.shrinkIdleTimeS * 1000;
  const byIdleAge = [...idle].sort(
    (a, b) => (a.idleSince ?? now) - (b.idleSince ?? now) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );
  for (const node of byIdleAge) {
    const idleMs = node.idleSince === undefined ? 0 : now - node.idleSince;
    const job = reserved.get(node.name);
    if (job !== undefined) {
      skip(node, "RESERVED_FOR_PENDING_JOB", `pending job ${job} will run here`);
    } else if (node.idleSince === undefined || idleMs < limitMs) {
      skip(
        node,
        "IDLE_TIME_NOT_REACHED",
        node.idleSince === undefined
          ? "idle since an unknown time: the idle clock starts now"
          : `idle ${Math.floor(idleMs / 1000)} s of shrinkIdleTime ${input.shrinkIdleTimeS} s`,
      );
    } else if (!queue.enableAutoShrink) {
      skip(node, "AUTO_SHRINK_DISABLED", `auto shrink is disabled for queue ${q}`);
    } else if (keep(node)) {
      // kept for minSize
    } else if (idleLeft - 1 < queue.desiredIdleNodeCapacity) {
      skip(
        node,
        "KEPT_FOR_DESIRED_IDLE",
        `queue ${q} keeps desiredIdleNodeCapacity ${queue.desiredIdleNodeCapacity} idle nodes`,
      );
    } else if (headroom > 0 && spareVcpus - vcpusOf(node) < headroom) {
      skip(
        node,
        "KEPT_FOR_HEADROOM",
        `kept warm: ${spareVcpus} idle vCPUs, headroom ${headroom} vCPUs from recent arrivals`,
      );
    } else {
      remaining--;
      idleLeft--;
      spareVcpus -= vcpusOf(node);
      shrinks.push({
        node: node.name,
        queue: q,
        action: "drain",
        reason: `idle ${Math.floor(idleMs / 1000)} s without a break (shrinkIdleTime ${input.shrinkIdleTimeS} s)`,
      });
    }
  }
  if (input.cancelUnneededBoots && queue.enableAutoShrink) {
    // A booting node no pending job will use only adds idle time once up; terminating it now forgoes
    // the boot already paid, so the newest go first. The headroom counts it as spare capacity too.
    const unneeded = nodes
      .filter(
        (n) =>
          n.state === "LAUNCHING" &&
          !reserved.has(n.name) &&
          !busy.has(n.name) &&
          n.launchedAt !== undefined &&
          now - n.launchedAt < bootMs,
      )
      .sort((a, b) => (b.launchedAt ?? 0) - (a.launchedAt ?? 0) || (a.name < b.name ? -1 : 1));
    for (const node of unneeded) spareVcpus += vcpusOf(node);
    for (const node of unneeded) {
      if (headroom > 0 && spareVcpus - vcpusOf(node) < headroom) continue;
      if (keep(node)) continue;
      remaining--;
      spareVcpus -= vcpusOf(node);
      shrinks.push({
        node: node.name,
        queue: q,
        action: "terminate",
        reason: "booting, and no pending job will use it (cancelUnneededBoots)",
      });
    }
  }
  return { shrinks, skipped };
}
