import { type Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";

export type MetricUnitName = "Count" | "Milliseconds" | "Seconds";

/**
 * Where the control services send their figures. The Lambda handlers pass Powertools' Metrics (EMF to
 * CloudWatch, namespace NowScale); tests pass RecordingMetrics.
 */
export interface MetricsSink {
  add(name: MetricName, unit: MetricUnitName, value: number, dimensions?: Record<string, string>): void;
}

/** Every metric the control plane emits (docs/control-plane.md, Metrics). */
export type MetricName =
  | "PendingDemand"
  | "NodesLaunching"
  | "NodesRunning"
  | "NodesIdle"
  | "NodesLaunched"
  | "LaunchFailures"
  | "ScaleOutLatency"
  | "NodeJoinLatency"
  | "NodesDrained"
  | "NodesTerminated"
  | "CycleDuration"
  | "CycleErrors"
  | "AgentUnreachable"
  | "OrphansTerminated"
  | "BootstrapFailures"
  | "ProtectedQueues";

/** Powertools Metrics as a sink: plain figures carry the cluster dimension; extra dimensions get their own EMF blob. */
export class PowertoolsMetricsSink implements MetricsSink {
  /** `dimensions` are added to every figure that carries its own (e.g. ClusterId), which single metrics lose. */
  constructor(
    private readonly metrics: Metrics,
    private readonly dimensions: Record<string, string> = {},
  ) {}

  add(name: MetricName, unit: MetricUnitName, value: number, dimensions: Record<string, string> = {}): void {
    const entries = Object.entries(dimensions);
    if (entries.length === 0) {
      this.metrics.addMetric(name, MetricUnit[unit], value);
      return;
    }
    const single = this.metrics.singleMetric();
    for (const [k, v] of [...Object.entries(this.dimensions), ...entries]) single.addDimension(k, v);
    single.addMetric(name, MetricUnit[unit], value);
  }
}

export interface RecordedMetric {
  name: MetricName;
  unit: MetricUnitName;
  value: number;
  dimensions: Record<string, string>;
}

/** Keeps every figure, for assertions. */
export class RecordingMetrics implements MetricsSink {
  readonly recorded: RecordedMetric[] = [];

  add(name: MetricName, unit: MetricUnitName, value: number, dimensions: Record<string, string> = {}): void {
    this.recorded.push({ name, unit, value, dimensions });
  }

  sum(name: MetricName): number {
    return this.recorded.filter((m) => m.name === name).reduce((s, m) => s + m.value, 0);
  }
}
