import type { OkReport, ReportNode } from "../ports/agent-report.js";

/**
 * What one agent report says about the nodes, as the control plane's destroying decisions read it.
 * A node "runs a job" when Slurm allocates any of its CPUs, shows it MIXED, ALLOCATED or DRAINING, or
 * names it in a running job group: any one of these keeps it from being terminated or deleted from Slurm.
 */
export function nodesRunningJobs(report: OkReport): Set<string> {
  const busy = new Set<string>();
  for (const n of report.nodes) {
    if (n.cpusAllocated > 0 || n.state === "MIXED" || n.state === "ALLOCATED" || n.state === "DRAINING") {
      busy.add(n.name);
    }
  }
  for (const group of report.jobs) {
    if (group.state !== "RUNNING") continue;
    for (const name of group.nodeNames ?? []) busy.add(name);
  }
  return busy;
}

/** DOWN, or not responding (Slurm's trailing "*"), or failing: the node serves no job. */
export function isUnhealthy(node: ReportNode): boolean {
  if (node.state === "DOWN") return true;
  const flags = node.slurmState.toUpperCase().split("+");
  return flags.some((f) => f === "NOT_RESPONDING" || f === "FAIL" || f.endsWith("*"));
}
