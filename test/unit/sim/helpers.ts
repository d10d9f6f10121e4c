import { parseConfig } from "../../../lib/core/config.js";
import type { BootTimeSpec } from "../../../lib/sim/boot-time.js";
import { type PolicyRun, type PolicySpec, simulate } from "../../../lib/sim/simulate.js";
import { parseSwf } from "../../../lib/sim/swf.js";
import { toWorkload } from "../../../lib/sim/workload.js";

/** A trace job in the fields the tests vary; the rest of the 18 SWF fields are -1. */
export interface TraceJob {
  id: number;
  submit: number;
  run: number;
  procs: number;
  /** SWF requested time (field 9); -1 when omitted. */
  requested?: number;
}

/** An SWF text with the given jobs. */
export function swf(jobs: readonly TraceJob[]): string {
  const lines = ["; Version: 2", "; hand-made test trace"];
  for (const j of jobs) {
    const f = Array<number>(18).fill(-1);
    f[0] = j.id;
    f[1] = j.submit;
    f[3] = j.run;
    f[4] = j.procs;
    f[8] = j.requested ?? -1;
    f[10] = 1;
    f[14] = 0;
    lines.push(f.join(" "));
  }
  return `${lines.join("\n")}\n`;
}

/**
 * One queue "q" of 4-vCPU / 8 GiB nodes at 0.40 USD/h ("n4"), in zone z1 (and z2 when `zones` is 2).
 * With the default 1024 MiB per task and scaleUpMemRatio 1.1, four tasks fit a node.
 */
export function testConfig(
  overrides: { queue?: Record<string, unknown>; cluster?: Record<string, unknown>; zones?: number } = {},
) {
  const zones = overrides.zones ?? 1;
  return parseConfig({
    expansionBusyTime: 120,
    shrinkIdleTime: 300,
    policy: "thpc",
    instanceTypes: { n4: { vcpus: 4, memoryMiB: 8192, pricePerHour: 0.4 } },
    ...overrides.cluster,
    queueConfigs: [
      {
        queueName: "q",
        maxSize: 50,
        expansionNodeConfigs: Array.from({ length: zones }, (_, i) => ({
          zone: `z${i + 1}`,
          instanceType: "n4",
        })),
        ...overrides.queue,
      },
    ],
  });
}

export interface RunOptions {
  policy?: PolicySpec;
  config?: ReturnType<typeof testConfig>;
  boot?: BootTimeSpec;
  seed?: number;
  capacity?: Map<string, number>;
  pollSeconds?: number;
  terminateAtDrain?: boolean;
  wakeSeconds?: number;
  placement?: "fewest-free" | "busy-first";
}

/** Replays `jobs` under one policy (thpc by default) with poll 60 s and a fixed 180 s boot. */
export function run(jobs: readonly TraceJob[], options: RunOptions = {}): PolicyRun {
  const config = options.config ?? testConfig();
  const workload = toWorkload(parseSwf(swf(jobs)).records, config, { queueMap: {}, memPerCpuMiB: 1024 });
  const [result] = simulate(workload, config, {
    policies: [options.policy ?? { kind: "thpc" }],
    pollSeconds: options.pollSeconds ?? 60,
    boot: options.boot ?? { kind: "fixed", seconds: 180 },
    seed: options.seed ?? 1,
    capacity: options.capacity ?? new Map(),
    timeline: true,
    ...(options.terminateAtDrain === undefined ? {} : { terminateAtDrain: options.terminateAtDrain }),
    ...(options.wakeSeconds === undefined ? {} : { wakeSeconds: options.wakeSeconds }),
    ...(options.placement === undefined ? {} : { placement: options.placement }),
  });
  if (!result) throw new Error("simulate returned no run");
  return result;
}

/** Live node count at simulated second `s` (from the recorded step timeline). */
export function nodesAt(result: PolicyRun, s: number): number {
  const t = result.timeline;
  if (!t) throw new Error("no timeline");
  let nodes = 0;
  for (let i = 0; i < t.length && (t.timeMs[i] as number) <= s * 1000; i++) nodes = t.nodes[i] as number;
  return nodes;
}
