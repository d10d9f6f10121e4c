/**
 * Cluster size and demand over simulated time, stored only where they change (a step function), so
 * its size grows with the number of events, i.e. linearly in the trace.
 */
export interface TimelinePoint {
  timeMs: number;
  nodes: number;
  vcpus: number;
  runningCpus: number;
  pendingCpus: number;
  /** Running + pending CPUs. */
  demandCpus: number;
}

export class Timeline {
  readonly timeMs: number[] = [];
  readonly nodes: number[] = [];
  readonly vcpus: number[] = [];
  readonly runningCpus: number[] = [];
  readonly pendingCpus: number[] = [];

  get length(): number {
    return this.timeMs.length;
  }

  add(timeMs: number, nodes: number, vcpus: number, runningCpus: number, pendingCpus: number): void {
    const last = this.timeMs.length - 1;
    if (
      last >= 0 &&
      this.nodes[last] === nodes &&
      this.vcpus[last] === vcpus &&
      this.runningCpus[last] === runningCpus &&
      this.pendingCpus[last] === pendingCpus
    ) {
      return;
    }
    if (last >= 0 && this.timeMs[last] === timeMs) {
      // Several events at one instant: keep the state after the last of them.
      this.nodes[last] = nodes;
      this.vcpus[last] = vcpus;
      this.runningCpus[last] = runningCpus;
      this.pendingCpus[last] = pendingCpus;
      return;
    }
    this.timeMs.push(timeMs);
    this.nodes.push(nodes);
    this.vcpus.push(vcpus);
    this.runningCpus.push(runningCpus);
    this.pendingCpus.push(pendingCpus);
  }

  /**
   * At most `buckets` points over [from, to]: each bucket keeps the largest value reached in it (so
   * short peaks stay visible), which is what a chart of a long trace needs.
   */
  downsample(fromMs: number, toMs: number, buckets: number): TimelinePoint[] {
    const out: TimelinePoint[] = [];
    if (this.length === 0 || toMs <= fromMs) return out;
    const width = (toMs - fromMs) / buckets;
    let i = 0;
    // The state in force at the start of the first bucket.
    let current: TimelinePoint = {
      timeMs: fromMs,
      nodes: 0,
      vcpus: 0,
      runningCpus: 0,
      pendingCpus: 0,
      demandCpus: 0,
    };
    for (let b = 0; b < buckets; b++) {
      const start = fromMs + b * width;
      const end = start + width;
      const peak = { ...current, timeMs: start };
      while (i < this.length && (this.timeMs[i] as number) < end) {
        current = this.point(i);
        peak.nodes = Math.max(peak.nodes, current.nodes);
        peak.vcpus = Math.max(peak.vcpus, current.vcpus);
        peak.runningCpus = Math.max(peak.runningCpus, current.runningCpus);
        peak.pendingCpus = Math.max(peak.pendingCpus, current.pendingCpus);
        peak.demandCpus = Math.max(peak.demandCpus, current.demandCpus);
        i++;
      }
      out.push(peak);
    }
    return out;
  }

  private point(i: number): TimelinePoint {
    const runningCpus = this.runningCpus[i] as number;
    const pendingCpus = this.pendingCpus[i] as number;
    return {
      timeMs: this.timeMs[i] as number,
      nodes: this.nodes[i] as number,
      vcpus: this.vcpus[i] as number,
      runningCpus,
      pendingCpus,
      demandCpus: runningCpus + pendingCpus,
    };
  }
}
