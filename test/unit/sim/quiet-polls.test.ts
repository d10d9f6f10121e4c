import { describe, expect, it } from "vitest";
import { bootSampler } from "../../../lib/sim/boot-time.js";
import { SimCluster } from "../../../lib/sim/cluster.js";
import { replay } from "../../../lib/sim/engine.js";
import { sortedWaits } from "../../../lib/sim/metrics.js";
import { CoreScaler } from "../../../lib/sim/scalers.js";
import { parseSimConfig } from "../../../lib/sim/sim-config.js";
import { parseSwf } from "../../../lib/sim/swf.js";
import { syntheticTrace } from "../../../lib/sim/synthetic.js";
import { toWorkload } from "../../../lib/sim/workload.js";

/**
 * The core scaler skipping only the polls its busy and idle times prove empty (as before the skipping
 * on an unchanged cluster): every other poll on the grid runs plan.
 */
class EveryPollScaler extends CoreScaler {
  override quietUntil(cluster: SimCluster): number {
    return this.idleUntil(cluster);
  }
}

/** Counts the polls that ran plan. */
function counted<T extends CoreScaler>(scaler: T): { scaler: T; polls: () => number } {
  let polls = 0;
  const poll = scaler.poll.bind(scaler);
  scaler.poll = (cluster, now) => {
    polls++;
    poll(cluster, now);
  };
  return { scaler, polls: () => polls };
}

/**
 * A 400-job synthetic trace (arrivals `meanInterarrivalS` apart on average) on a small cluster whose best fit runs out of capacity (offerings held
 * unavailable, then released), replayed to the end: everything the metrics are made of, and the polls.
 */
function replayed(
  policy: "thpc" | "packed",
  everyPoll: boolean,
  cluster: Record<string, unknown>,
  meanInterarrivalS: number,
) {
  const { config: base, simulation } = parseSimConfig({
    expansionBusyTime: 120,
    shrinkIdleTime: 300,
    catalogs: ["aws"],
    ...cluster,
    queueConfigs: [
      {
        queueName: "compute",
        maxSize: 40,
        expansionNodeConfigs: [
          { zone: "a", instanceType: "c5.2xlarge" },
          { zone: "a", instanceType: "c5.xlarge" },
          { zone: "b", instanceType: "c5.xlarge" },
        ],
      },
    ],
  });
  const config = { ...base, policy };
  const trace = parseSwf(syntheticTrace({ jobs: 400, seed: 11, meanInterarrivalS, maxProcs: 24 }));
  const workload = toWorkload(trace.records, config, simulation);
  const sim = new SimCluster(
    workload.jobs,
    config,
    new Map([["c5.2xlarge@a", 4]]),
    bootSampler({ kind: "normal", meanSeconds: 180, sdSeconds: 60 }, 3),
    true,
  );
  const { scaler, polls } = counted(
    everyPoll ? new EveryPollScaler(config, true) : new CoreScaler(config, true),
  );
  const span = replay(sim, scaler, { pollMs: 60_000, stallLimitMs: 3_600_000 });
  return {
    result: {
      span,
      waits: [...sortedWaits(sim, span.endMs)],
      counters: sim.counters,
      timeline: sim.timeline,
      settled: scaler.settled(),
    },
    polls: polls(),
  };
}

describe("polls skipped while the cluster is unchanged since an empty decision", () => {
  for (const policy of ["thpc", "packed"] as const) {
    for (const [name, cluster, meanInterarrivalS] of [
      ["defaults", {}, 90],
      // Short bootTimeout and reservationTimeout: their thresholds fall between polls.
      ["short timeouts", { bootTimeout: 200, reservationTimeout: 15 }, 90],
      ['capacityFallback "strict"', { capacityFallback: "strict" }, 90],
      // Sparse arrivals: the cluster often stays unchanged for long, so each threshold decides alone.
      ["sparse, short bootTimeout", { bootTimeout: 200 }, 2400],
      ["sparse, long reservationTimeout", { reservationTimeout: 900 }, 2400],
    ] as const) {
      it(`${policy}, ${name}: the same replay as running plan at every such poll, with fewer polls`, () => {
        // Prepare
        const every = replayed(policy, true, cluster, meanInterarrivalS);

        // Act
        const skipping = replayed(policy, false, cluster, meanInterarrivalS);

        // Assess
        expect(skipping.result).toEqual(every.result);
        expect(skipping.result.counters.launches).toBeGreaterThan(0);
        expect(skipping.polls).toBeLessThan(every.polls);
      });
    }
  }
});
