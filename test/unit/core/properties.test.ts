import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  bestFit,
  type ClusterState,
  type Decision,
  layoutOn,
  NODE_STATES,
  parseConfig,
  parseState,
  plan,
  type ResolvedConfig,
  slicesOf,
} from "../../../lib/core/index.js";
import { iso, minutes, SHAPES, T0 } from "./builders.js";

const NOW = T0 + minutes(30);
const TYPES = Object.keys(SHAPES);
const QUEUES = ["q0", "q1", "q2"];

const entryArb = fc.record({ instanceType: fc.constantFrom(...TYPES), zone: fc.constantFrom("z1", "z2") });

const queueArb = (queueName: string) =>
  fc
    .record({
      minSize: fc.nat(3),
      extra: fc.nat(12),
      entries: fc.uniqueArray(entryArb, {
        minLength: 1,
        maxLength: 4,
        selector: (e) => `${e.instanceType}@${e.zone}`,
      }),
      desiredIdleNodeCapacity: fc.nat(2),
      scaleOutRatio: fc.integer({ min: 1, max: 100 }),
      scaleOutNodeThreshold: fc.nat(10),
      maxNodesPerCycle: fc.integer({ min: 1, max: 10 }),
      scaleUpMemRatio: fc.constantFrom(1, 1.1, 1.5),
      enableAutoExpansion: fc.boolean(),
      enableAutoShrink: fc.boolean(),
    })
    .map(({ extra, entries, minSize, ...rest }) => ({
      queueName,
      minSize,
      maxSize: minSize + extra,
      expansionNodeConfigs: entries,
      ...rest,
      desiredIdleNodeCapacity: Math.min(rest.desiredIdleNodeCapacity, minSize + extra),
    }));

const configArb = fc
  .record({
    queueCount: fc.integer({ min: 1, max: 3 }),
    policy: fc.constantFrom("thpc" as const, "packed" as const),
    expansionBusyTime: fc.constantFrom(0, 120),
    shrinkIdleTime: fc.constantFrom(0, 300, 900),
    q: fc.tuple(queueArb("q0"), queueArb("q1"), queueArb("q2")),
  })
  .map(({ queueCount, q, ...rest }) =>
    parseConfig({ ...rest, instanceTypes: SHAPES, queueConfigs: q.slice(0, queueCount) }),
  );

const jobArb = fc.oneof(
  fc.record({
    queue: fc.constantFrom(...QUEUES),
    state: fc.constantFrom("PENDING", "PENDING", "PENDING", "RUNNING", "BLOCKED"),
    ageS: fc.nat(1200),
    nodes: fc.integer({ min: 1, max: 4 }),
    cpusPerNode: fc.integer({ min: 1, max: 20 }),
    memPerNodeMiB: fc.nat(40_000),
    gpusPerNode: fc.constantFrom(0, 0, 0, 1, 2),
    count: fc.constantFrom(1, 1, 1, 3),
  }),
  fc.record({
    queue: fc.constantFrom(...QUEUES),
    state: fc.constant("PENDING"),
    ageS: fc.nat(1200),
    tasks: fc.integer({ min: 1, max: 40 }),
    cpusPerTask: fc.integer({ min: 1, max: 4 }),
    memPerTaskMiB: fc.nat(6000),
  }),
);

const nodeArb = fc.record({
  queue: fc.constantFrom(...QUEUES),
  instanceType: fc.constantFrom(...TYPES),
  state: fc.constantFrom(...NODE_STATES),
  idleS: fc.nat(2000),
  drainedByOthers: fc.boolean(),
});

const stateArb = fc
  .record({ jobs: fc.array(jobArb, { maxLength: 30 }), nodes: fc.array(nodeArb, { maxLength: 16 }) })
  .map(({ jobs, nodes }) => {
    const nodeNames = nodes.map((_, i) => `n${i}`);
    return {
      jobs: jobs.map(({ ageS, ...j }, i) => ({
        ...j,
        id: `j${i}`,
        submittedAt: iso(NOW - ageS * 1000),
        ...(j.state === "RUNNING" && nodeNames.length > 0
          ? { nodeNames: [nodeNames[i % nodeNames.length] as string] }
          : {}),
      })),
      nodes: nodes.map(({ idleS, drainedByOthers, ...n }, i) => ({
        ...n,
        name: nodeNames[i] as string,
        zone: "z1",
        ...(n.state === "IDLE" || n.state === "DRAINED" ? { idleSince: iso(NOW - idleS * 1000) } : {}),
        ...(n.state === "DRAINED" ? { reason: drainedByOthers ? "maintenance" : "nowscale: idle" } : {}),
      })),
    };
  });

const inputArb = fc.record({ config: configArb, raw: stateArb });

function launchedFor(decision: Decision, queue: string, withJobs: boolean): number {
  return decision.launches
    .filter((l) => l.queue === queue && l.jobs.length > 0 === withJobs)
    .reduce((n, l) => n + l.count, 0);
}

function fits(config: ResolvedConfig, state: ClusterState, jobId: string): boolean {
  const job = state.jobs.find((j) => j.id === jobId);
  const queue = job && config.queueByName.get(job.queue);
  if (!job || !queue) return false;
  const { slice, units, distinct } = slicesOf(job.request, queue.scaleUpMemRatio);
  return bestFit(queue, slice, units, distinct) !== null;
}

describe("plan properties", () => {
  it("never launches above maxSize (existing nodes included)", () => {
    fc.assert(
      fc.property(inputArb, ({ config, raw }) => {
        const state = parseState(raw);
        const decision = plan(config, state, NOW);
        for (const q of config.queues) {
          const existing = state.nodes.filter((n) => n.queue === q.queueName).length;
          const launched =
            launchedFor(decision, q.queueName, true) + launchedFor(decision, q.queueName, false);
          expect(launched).toBeLessThanOrEqual(Math.max(0, q.maxSize - existing));
        }
      }),
      { numRuns: 300 },
    );
  });

  it("never launches above maxNodesPerCycle (launching nodes included)", () => {
    fc.assert(
      fc.property(inputArb, ({ config, raw }) => {
        const state = parseState(raw);
        const decision = plan(config, state, NOW);
        for (const q of config.queues) {
          const launching = state.nodes.filter(
            (n) => n.queue === q.queueName && n.state === "LAUNCHING",
          ).length;
          const launched =
            launchedFor(decision, q.queueName, true) + launchedFor(decision, q.queueName, false);
          expect(launched).toBeLessThanOrEqual(Math.max(0, q.maxNodesPerCycle - launching));
        }
      }),
      { numRuns: 300 },
    );
  });

  it("never terminates or drains a node that runs a job", () => {
    fc.assert(
      fc.property(inputArb, ({ config, raw }) => {
        const state = parseState(raw);
        const decision = plan(config, state, NOW);
        const running = new Set(
          state.jobs.filter((j) => j.state === "RUNNING").flatMap((j) => j.nodeNames ?? []),
        );
        for (const shrink of decision.shrinks) {
          const node = state.nodes.find((n) => n.name === shrink.node);
          expect(node).toBeDefined();
          expect(running.has(shrink.node)).toBe(false);
          expect(["MIXED", "ALLOCATED", "DRAINING", "DOWN", "LAUNCHING"]).not.toContain(node?.state);
          if (shrink.action === "terminate") expect(node?.state).toBe("DRAINED");
        }
      }),
      { numRuns: 300 },
    );
  });

  it("gives the same decision for the same input, whatever the order of jobs and nodes", () => {
    fc.assert(
      fc.property(inputArb, fc.func(fc.integer()), ({ config, raw }, shuffleKey) => {
        const a = plan(config, parseState(raw), NOW);
        const b = plan(config, parseState(raw), NOW);
        expect(b).toEqual(a);
        const order = <T>(list: T[]) =>
          list
            .map((v, i) => ({ v, k: shuffleKey(i) }))
            .sort((x, y) => x.k - y.k)
            .map((x) => x.v);
        const shuffled = plan(config, parseState({ jobs: order(raw.jobs), nodes: order(raw.nodes) }), NOW);
        expect(shuffled.launches).toEqual(a.launches);
        expect(shuffled.shrinks).toEqual(a.shrinks);
      }),
      { numRuns: 200 },
    );
  });

  it("launches nothing for a job that no entry fits", () => {
    fc.assert(
      fc.property(inputArb, ({ config, raw }) => {
        const state = parseState(raw);
        const decision = plan(config, state, NOW);
        for (const launch of decision.launches) {
          for (const id of launch.jobs) expect(fits(config, state, id)).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("launches never exceed the unmet demand", () => {
    fc.assert(
      fc.property(inputArb, ({ config, raw }) => {
        const state = parseState(raw);
        const decision = plan(config, state, NOW);
        for (const q of config.queues) {
          // Demand: fresh best-fit nodes of every pending job old enough to count, in a queue that expands.
          // packed may trade node count for price, and thpc falls back to another shape when the safety
          // net refused the best fit (an idle node of it Slurm did not start the job on within
          // reservationTimeout): so a refused job is bounded by the least-fitting shape instead.
          let demand = 0;
          for (const job of state.jobs) {
            if (job.queue !== q.queueName || job.state !== "PENDING" || !q.enableAutoExpansion) continue;
            if (NOW - job.submittedAt < config.expansionBusyTime * 1000) continue;
            const { slice, units, distinct } = slicesOf(job.request, q.scaleUpMemRatio);
            const fresh = q.groups.map((g) => layoutOn(slice, units, distinct, g.shape)?.nodes ?? 0);
            const refusable = state.nodes.some(
              (n) =>
                n.queue === q.queueName &&
                n.state === "IDLE" &&
                n.idleSince !== undefined &&
                NOW - n.idleSince >= config.reservationTimeout * 1000,
            );
            const perCopy =
              config.policy === "thpc" && !refusable
                ? (bestFit(q, slice, units, distinct)?.layout.nodes ?? 0)
                : Math.max(0, ...fresh);
            demand += perCopy * job.count;
          }
          expect(launchedFor(decision, q.queueName, true)).toBeLessThanOrEqual(demand);
          // No node is launched for nobody: a launch has jobs or is the minSize top-up.
          for (const l of decision.launches.filter((x) => x.queue === q.queueName && x.jobs.length === 0)) {
            expect(l.reason).toMatch(/below minSize/);
          }
          // Top-ups only fill the gap to minSize.
          const existing = state.nodes.filter((n) => n.queue === q.queueName).length;
          expect(launchedFor(decision, q.queueName, false)).toBeLessThanOrEqual(
            Math.max(0, q.minSize - existing),
          );
        }
      }),
      { numRuns: 300 },
    );
  });

  it("uses existing nodes first: identical one-node jobs launch only what idle and launching nodes do not cover", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 30 }),
        fc.integer({ min: 0, max: 10 }),
        fc.integer({ min: 0, max: 10 }),
        fc.constantFrom("thpc" as const, "packed" as const),
        (jobs, idle, launching, policy) => {
          const config = parseConfig({
            expansionBusyTime: 0,
            policy,
            instanceTypes: SHAPES,
            queueConfigs: [
              {
                queueName: "q0",
                maxSize: 100,
                scaleUpMemRatio: 1,
                expansionNodeConfigs: [{ zone: "z", instanceType: "c4m8" }],
              },
            ],
          });
          const state = parseState({
            jobs: Array.from({ length: jobs }, (_, i) => ({
              id: `j${i}`,
              queue: "q0",
              state: "PENDING",
              submittedAt: iso(T0),
              nodes: 1,
              cpusPerNode: 4,
              memPerNodeMiB: 1000,
            })),
            nodes: [
              ...Array.from({ length: idle }, (_, i) => ({
                name: `i${i}`,
                queue: "q0",
                instanceType: "c4m8",
                zone: "z",
                state: "IDLE",
                // Idle for less than the safety net's reservationTimeout: Slurm has not had its pass yet.
                idleSince: iso(NOW - 20_000),
              })),
              ...Array.from({ length: launching }, (_, i) => ({
                name: `l${i}`,
                queue: "q0",
                instanceType: "c4m8",
                zone: "z",
                state: "LAUNCHING",
              })),
            ],
          });
          const launched = launchedFor(plan(config, state, NOW), "q0", true);
          expect(launched).toBe(Math.min(Math.max(0, jobs - idle - launching), Math.max(0, 100 - launching)));
        },
      ),
      { numRuns: 200 },
    );
  });
});
