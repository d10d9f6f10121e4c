import { ownValue } from "../core/own.js";
import type { OkReport } from "../ports/agent-report.js";
import type { LocalControlPlane } from "./control-plane.js";

/**
 * What the status page shows, as JSON (GET /status.json): every cluster with its queues, nodes and
 * pending demand, and a short history of nodes against demand for the chart. The history is sampled by
 * the supervisor (a page opened late still sees the last minutes).
 */
export interface StatusSnapshot {
  generatedAt: string;
  clusters: ClusterStatusView[];
  /** Oldest first; one point per sample. */
  history: { t: number; nodes: number; pending: number }[];
}

export interface ClusterStatusView {
  clusterId: string;
  name: string;
  status: string;
  queues: {
    name: string;
    minSize: number;
    maxSize: number;
    nodes: number;
    pendingJobs: number;
    runningJobs: number;
    protected: boolean;
  }[];
  nodes: { name: string; queue: string; instanceType: string; zone: string; status: string; slurm: string }[];
  /** Why the agent's report is missing, when it is. */
  reportError?: string;
}

const HISTORY_POINTS = 900;

export class StatusSampler {
  private readonly history: StatusSnapshot["history"] = [];
  private timer: NodeJS.Timeout | undefined;
  private last: StatusSnapshot | undefined;

  constructor(private readonly cp: LocalControlPlane) {}

  /** Samples every `intervalMs` until stop(). */
  start(intervalMs: number): void {
    const tick = () => {
      this.snapshot()
        .catch(() => undefined)
        .finally(() => {
          if (this.timer !== undefined) this.timer = setTimeout(tick, intervalMs);
        });
    };
    this.timer = setTimeout(tick, 0);
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** The latest snapshot (taken now when none exists yet). */
  async current(): Promise<StatusSnapshot> {
    return this.last ?? (await this.snapshot());
  }

  private async snapshot(): Promise<StatusSnapshot> {
    const clusters: ClusterStatusView[] = [];
    for (const cluster of await this.cp.store.listClusters()) {
      if (cluster.status === "DELETED") continue;
      const records = await this.cp.store.listNodes(cluster.clusterId);
      let report: OkReport | undefined;
      let reportError: string | undefined;
      if (cluster.status === "RUNNING" || cluster.status === "SLEEPING") {
        try {
          report = await this.cp.agent.report();
        } catch (error) {
          reportError = (error as Error).message.slice(0, 300);
        }
      }
      const slurmState = new Map(report?.nodes.map((n) => [n.name, n.state]) ?? []);
      const jobs = (queue: string, state: string) =>
        (report?.jobs ?? [])
          .filter((j) => j.queue === queue && j.state === state)
          .reduce((s, j) => s + j.count, 0);
      clusters.push({
        clusterId: cluster.clusterId,
        name: cluster.name,
        status: cluster.status,
        queues: (cluster.autoscaling.queueConfigs ?? []).map((q) => ({
          name: q.queueName,
          minSize: q.minSize ?? 0,
          maxSize: q.maxSize ?? 10,
          nodes: records.filter((r) => r.queue === q.queueName).length,
          pendingJobs: jobs(q.queueName, "PENDING"),
          runningJobs: jobs(q.queueName, "RUNNING"),
          protected: ownValue(cluster.queueHealth, q.queueName)?.protected === true,
        })),
        nodes: records.map((r) => ({
          name: r.nodeName,
          queue: r.queue,
          instanceType: r.instanceType,
          zone: r.zone,
          status: r.status,
          slurm: slurmState.get(r.nodeName) ?? "-",
        })),
        ...(reportError === undefined ? {} : { reportError }),
      });
    }
    const t = Date.now();
    const nodes = clusters.reduce((s, c) => s + c.nodes.length, 0);
    const pending = clusters.reduce((s, c) => s + c.queues.reduce((q, x) => q + x.pendingJobs, 0), 0);
    this.history.push({ t, nodes, pending });
    if (this.history.length > HISTORY_POINTS) this.history.splice(0, this.history.length - HISTORY_POINTS);
    this.last = { generatedAt: new Date(t).toISOString(), clusters, history: [...this.history] };
    return this.last;
  }
}
