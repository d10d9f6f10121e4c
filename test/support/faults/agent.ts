import {
  type AgentChannel,
  AgentUnreachableError,
  SlurmctldUnreachableError,
} from "../../../lib/ports/agent-channel.js";
import type { JobGroup, OkReport, ReportNode } from "../../../lib/ports/agent-report.js";
import type { FaultBook, When } from "./rules.js";

/**
 * Faults at the AgentChannel port: a report that lies for one poll, and an agent that cannot answer.
 *
 * - `flapBusy`: one busy node (seeded pick) is reported `to` IDLE (idle for an hour) or DRAINED (by
 *   NowScale, an hour ago), and its running job no longer names it: a consistent but wrong picture, as a
 *   report read half before and half after a change would give. Fires only when a node is busy.
 * - `dropNodes`: `count` nodes (default 1; only busy ones with `busyOnly`) are missing from the report's
 *   node list; the jobs are left as they are.
 * - `unreachable`: every call throws AgentUnreachableError (no answer).
 * - `slurmctldDown`: every call throws SlurmctldUnreachableError (the agent answered, Slurm did not).
 * - `slow`: the answer takes `ms` of clock time; beyond the channel's 10 s timeout it is
 *   AgentUnreachableError after 10 s, as lib/control/agent-http.ts answers.
 * - `tooLarge`: a 256 MiB answer: AgentUnreachableError("answer too large"), as the channel refuses
 *   answers over 16 MiB.
 * - `jobBeforeDrain`: Slurm starts a job on the node a drain is for just before the drain lands (the job
 *   arrived between the report the scaler planned on and its drain), so the drain finds it busy.
 */
export type AgentFault = When &
  (
    | { kind: "flapBusy"; to: "IDLE" | "DRAINED" }
    | { kind: "dropNodes"; count?: number; busyOnly?: boolean }
    | { kind: "unreachable" }
    | { kind: "slurmctldDown" }
    | { kind: "slow"; ms: number }
    | { kind: "tooLarge" }
    | { kind: "jobBeforeDrain" }
  );

/** The channel's own timeout (lib/control/agent-http.ts). */
export const AGENT_TIMEOUT_MS = 10_000;

export function agentFaultMethods(kind: AgentFault["kind"]): readonly string[] {
  switch (kind) {
    case "flapBusy":
    case "dropNodes":
    case "tooLarge":
      return ["report"];
    case "jobBeforeDrain":
      return ["drain"];
    default:
      return ["report", "drain", "resume", "deleteNode", "setJobNotes", "syncPlaceholders", "health"];
  }
}

const BUSY_STATES = new Set(["ALLOCATED", "MIXED", "DRAINING"]);

/** The names of the report's busy nodes: a working state, or named by a running job. */
export function busyNodes(report: OkReport): string[] {
  const running = new Set(report.jobs.filter((j) => j.state === "RUNNING").flatMap((j) => j.nodeNames ?? []));
  return report.nodes.filter((n) => BUSY_STATES.has(n.state) || running.has(n.name)).map((n) => n.name);
}

/**
 * `inner` with the book's agent faults. Report corruption needs the report first, so `report` asks the
 * inner agent and then decides; `peek` lets `flapBusy` fire only when a node is busy.
 */
export function corruptingAgent(
  inner: AgentChannel,
  book: FaultBook<AgentFault>,
  deps: {
    sleep: (ms: number) => Promise<void>;
    pick: <T>(items: readonly T[]) => T | undefined;
    /** Starts a job on the node now if it is idle and in service; true when one started. */
    landJob?: (node: string) => boolean;
  },
): AgentChannel {
  const failing = async <T>(method: string, call: () => Promise<T>): Promise<T> => {
    const fault = book.match(method);
    if (fault === undefined) return call();
    return applyTransportFault(fault, deps, call);
  };
  return {
    report: async () => {
      const report = await inner.report();
      const fault = book.match("report", (rule) =>
        rule.kind === "flapBusy" || (rule.kind === "dropNodes" && rule.busyOnly === true)
          ? busyNodes(report).length > 0
          : true,
      );
      if (fault === undefined) return report;
      switch (fault.kind) {
        case "flapBusy":
          return flap(report, deps.pick(busyNodes(report)), fault.to);
        case "dropNodes": {
          const pool = fault.busyOnly === true ? busyNodes(report) : report.nodes.map((n) => n.name);
          const dropped = new Set<string>();
          for (let i = 0; i < (fault.count ?? 1); i++) {
            const name = deps.pick(pool.filter((n) => !dropped.has(n)));
            if (name !== undefined) dropped.add(name);
          }
          return { ...report, nodes: report.nodes.filter((n) => !dropped.has(n.name)) };
        }
        case "tooLarge":
          throw new AgentUnreachableError(
            "answer too large: 268435456 bytes over the 16777216 limit (injected)",
          );
        default:
          // A slow agent answers with Slurm's state at the end of the wait, not at its start.
          return applyTransportFault(fault, deps, () => inner.report());
      }
    },
    drain: async (node, reason) => {
      const landed = book.match(
        "drain",
        (rule) => rule.kind !== "jobBeforeDrain" || deps.landJob !== undefined,
      );
      if (landed?.kind === "jobBeforeDrain") {
        deps.landJob?.(node);
        return inner.drain(node, reason);
      }
      if (landed === undefined) return inner.drain(node, reason);
      return applyTransportFault(landed, deps, () => inner.drain(node, reason));
    },
    resume: (node) => failing("resume", () => inner.resume(node)),
    deleteNode: (node) => failing("deleteNode", () => inner.deleteNode(node)),
    setJobNotes: (notes) => failing("setJobNotes", () => inner.setJobNotes(notes)),
    syncPlaceholders: (specs) => failing("syncPlaceholders", () => inner.syncPlaceholders(specs)),
    setPartitions: (specs) => failing("setPartitions", () => inner.setPartitions(specs)),
    health: () => failing("health", () => inner.health()),
  };
}

async function applyTransportFault<T>(
  fault: AgentFault,
  deps: { sleep: (ms: number) => Promise<void> },
  call: () => Promise<T>,
): Promise<T> {
  switch (fault.kind) {
    case "unreachable":
      throw new AgentUnreachableError("connect ETIMEDOUT (injected)");
    case "slurmctldDown":
      throw new SlurmctldUnreachableError("slurmctld did not answer (injected)");
    case "slow":
      if (fault.ms > AGENT_TIMEOUT_MS) {
        await deps.sleep(AGENT_TIMEOUT_MS);
        throw new AgentUnreachableError(`no answer within ${AGENT_TIMEOUT_MS} ms (injected)`);
      }
      await deps.sleep(fault.ms);
      return call();
    case "tooLarge":
      throw new AgentUnreachableError("answer too large (injected)");
    default:
      return call();
  }
}

/** The report with `name` shown free: IDLE or DRAINED an hour ago, and no running job naming it. */
function flap(report: OkReport, name: string | undefined, to: "IDLE" | "DRAINED"): OkReport {
  if (name === undefined) return report;
  const hourAgo = new Date(Date.parse(report.generatedAt) - 3_600_000).toISOString();
  const nodes: ReportNode[] = report.nodes.map((n) => {
    if (n.name !== name) return n;
    const { reason: _reason, ...rest } = n;
    return {
      ...rest,
      state: to,
      idleSince: hourAgo,
      cpusAllocated: 0,
      memoryAllocatedMiB: 0,
      slurmState: to === "IDLE" ? "IDLE+DYNAMIC_NORM" : "IDLE+DRAIN+DYNAMIC_NORM",
      ...(to === "DRAINED" ? { reason: "nowscale: idle 3600 s without a break (shrinkIdleTime 300 s)" } : {}),
    };
  });
  const jobs: JobGroup[] = [];
  for (const job of report.jobs) {
    if (job.state !== "RUNNING" || job.nodeNames === undefined || !job.nodeNames.includes(name)) {
      jobs.push(job);
      continue;
    }
    const nodeNames = job.nodeNames.filter((n) => n !== name);
    if (nodeNames.length > 0) jobs.push({ ...job, nodeNames });
  }
  return { ...report, nodes, jobs };
}
