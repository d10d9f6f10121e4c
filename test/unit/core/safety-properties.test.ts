import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseConstraint, satisfies } from "../../../lib/core/constraint.js";
import { nodeFeatures } from "../../../lib/core/features.js";
import { slicesOf, slicesPerNode } from "../../../lib/core/fit.js";
import { NODE_STATES, parseConfig, parseState, plan } from "../../../lib/core/index.js";
import { iso, minutes, SHAPES, T0 } from "./builders.js";

/**
 * Issue 12's properties, over random job shapes (whole-node, constrained, aggregated) and node states
 * (idle for any time, launching and not ready since any time): the safety net holds, constraints are
 * obeyed, and every pending copy is accounted for exactly once.
 */
const NOW = T0 + minutes(60);
const TYPES = Object.keys(SHAPES);
/** Constraints without node counts (counted ones split a job into parts, each accounted on its own). */
const CONSTRAINTS = [
  undefined,
  "type_c4m8",
  "type_g4m16|type_c16m32",
  "ib",
  "zone_z2",
  "ib&type_c8m8",
  "bigmem",
  "type_nope&ib",
];

const configArb = fc
  .record({
    policy: fc.constantFrom("thpc" as const, "packed" as const),
    expansionBusyTime: fc.constantFrom(0, 120),
    reservationTimeout: fc.constantFrom(30, 60, 600),
    bootTimeout: fc.constantFrom(300, 900),
    entries: fc.uniqueArray(
      fc.record({ instanceType: fc.constantFrom(...TYPES), zone: fc.constantFrom("z1", "z2") }),
      { minLength: 1, maxLength: 4, selector: (e) => `${e.instanceType}@${e.zone}` },
    ),
    features: fc.constantFrom([], ["ib"]),
    maxSize: fc.integer({ min: 1, max: 30 }),
    maxNodesPerCycle: fc.integer({ min: 1, max: 10 }),
    scaleOutRatio: fc.constantFrom(50, 100),
  })
  .map(({ entries, features, maxSize, maxNodesPerCycle, scaleOutRatio, ...rest }) =>
    parseConfig({
      ...rest,
      instanceTypes: SHAPES,
      queueConfigs: [
        {
          queueName: "q",
          maxSize,
          maxNodesPerCycle,
          scaleOutRatio,
          scaleUpMemRatio: 1,
          features,
          expansionNodeConfigs: entries,
        },
      ],
    }),
  );

const jobArb = fc.record({
  state: fc.constantFrom("PENDING", "PENDING", "PENDING", "BLOCKED"),
  ageS: fc.nat(1800),
  nodes: fc.integer({ min: 1, max: 3 }),
  cpusPerNode: fc.integer({ min: 1, max: 16 }),
  memPerNodeMiB: fc.nat(20_000),
  gpusPerNode: fc.constantFrom(0, 0, 0, 1),
  count: fc.constantFrom(1, 1, 2, 5),
  wholeNode: fc.boolean(),
  constraint: fc.constantFrom(...CONSTRAINTS),
});

const nodeArb = fc.record({
  instanceType: fc.constantFrom(...TYPES),
  zone: fc.constantFrom("z1", "z2"),
  state: fc.constantFrom(...NODE_STATES),
  idleS: fc.nat(1800),
  launchedS: fc.option(fc.nat(2400), { nil: undefined }),
});

const inputArb = fc.record({
  config: configArb,
  jobs: fc.array(jobArb, { maxLength: 12 }),
  nodes: fc.array(nodeArb, { maxLength: 8 }),
});

type ValueOf<A> = A extends fc.Arbitrary<infer T> ? T : never;

function build({ jobs, nodes }: { jobs: ValueOf<typeof jobArb>[]; nodes: ValueOf<typeof nodeArb>[] }) {
  return parseState({
    jobs: jobs.map(({ ageS, constraint, wholeNode, ...j }, i) => ({
      ...j,
      id: `j${i}`,
      queue: "q",
      submittedAt: iso(NOW - ageS * 1000),
      ...(constraint === undefined ? {} : { constraint }),
      ...(wholeNode ? { wholeNode } : {}),
    })),
    nodes: nodes.map(({ idleS, launchedS, ...n }, i) => ({
      ...n,
      name: `n${i}`,
      queue: "q",
      ...(n.state === "IDLE" || n.state === "DRAINED" ? { idleSince: iso(NOW - idleS * 1000) } : {}),
      ...(launchedS === undefined ? {} : { launchedAt: iso(NOW - launchedS * 1000) }),
    })),
  });
}

describe("issue 12 properties", () => {
  it("no idle node stays reserved for a pending job past the safety net's limit, unless the idle nodes could not hold the whole job", () => {
    fc.assert(
      fc.property(inputArb, ({ config, jobs, nodes }) => {
        const state = build({ jobs, nodes });
        const decision = plan(config, state, NOW);
        const limitMs = config.reservationTimeout * 1000;
        for (const skip of decision.skipped) {
          if (!("node" in skip) || skip.code !== "RESERVED_FOR_PENDING_JOB") continue;
          const jobId = /pending job (\S+) will run here/.exec(skip.reason)?.[1];
          const job = state.jobs.find((j) => j.id === jobId);
          const node = state.nodes.find((n) => n.name === skip.node);
          if (job === undefined) throw new Error(`no pending job ${jobId}`);
          const together = NOW - Math.max(node?.idleSince ?? NOW, job.submittedAt);
          if (together <= limitMs) continue;
          // Past the limit: Slurm had no chance to start the job on the idle nodes, which together
          // could not hold it (a multi-node job whose other nodes still boot).
          const parsed = job.constraint === undefined ? undefined : parseConstraint(job.constraint);
          const accepts = (type: string, zone: string) =>
            parsed === undefined ||
            ("constraint" in parsed &&
              satisfies(
                parsed.constraint,
                new Set(nodeFeatures("q", type, zone, config.queues[0]?.features ?? [])),
              ));
          const { slice, units, distinct } = slicesOf(job.request, 1);
          const room = state.nodes
            .filter((n) => n.state === "IDLE" && n.idleSince !== undefined && NOW - n.idleSince > limitMs)
            .filter((n) => accepts(n.instanceType, n.zone))
            .reduce(
              (r, n) => r + slicesPerNode(slice, SHAPES[n.instanceType as keyof typeof SHAPES], distinct),
              0,
            );
          expect(room).toBeLessThan(units);
        }
      }),
      { numRuns: 400 },
    );
  });

  it("launches nothing for a job whose constraint no type satisfies, and only satisfying types otherwise", () => {
    fc.assert(
      fc.property(inputArb, ({ config, jobs, nodes }) => {
        const state = build({ jobs, nodes });
        const decision = plan(config, state, NOW);
        const queue = config.queues[0];
        if (!queue) return;
        for (const launch of decision.launches) {
          for (const id of launch.jobs) {
            const text = state.jobs.find((j) => j.id === id)?.constraint;
            if (text === undefined) continue;
            const parsed = parseConstraint(text);
            if ("error" in parsed) throw new Error(`launched for unreadable constraint ${text}`);
            for (const c of launch.candidates) {
              const features = new Set(nodeFeatures("q", c.instanceType, c.zone, queue.features));
              expect(satisfies(parsed.constraint, features)).toBe(true);
            }
          }
        }
      }),
      { numRuns: 400 },
    );
  });

  it("every pending copy appears in launches or in skipped, exactly once", () => {
    fc.assert(
      fc.property(inputArb, ({ config, jobs, nodes }) => {
        const state = build({ jobs, nodes });
        const decision = plan(config, state, NOW);
        for (const job of state.jobs) {
          const skipped = decision.skipped
            .filter((s) => "job" in s && s.job === job.id)
            .reduce((n, s) => n + ("copies" in s ? s.copies : 0), 0);
          const launched = decision.launches.reduce(
            (n, l) => n + l.jobs.reduce((m, id, i) => m + (id === job.id ? (l.copies?.[i] ?? 0) : 0), 0),
            0,
          );
          expect(skipped + launched).toBe(job.count);
        }
      }),
      { numRuns: 400 },
    );
  });
});
