import fc from "fast-check";
import { afterAll, beforeAll, describe, it } from "vitest";
import { startDynalite, type TestDynamo } from "../support/dynalite.js";
import type { AgentFault } from "../support/faults/agent.js";
import type { PromiseFigures } from "../support/faults/observers.js";
import { UNTRACKED_LIMIT_S } from "../support/faults/observers.js";
import type { ProviderFault } from "../support/faults/provider.js";
import { describeSeed, faultSeed } from "../support/faults/rng.js";
import type { StoreFault } from "../support/faults/store.js";
import { World } from "../support/faults/world.js";
import { brokenPromises } from "./promises.js";
import { MINUTE, SECOND } from "./workload.js";

/**
 * The fast-check state machine: random sequences of scale cycles, reconciler runs, API calls (add nodes,
 * delete nodes, stop and resume nodes by hand, rebuild failed nodes, delete the cluster), boots that
 * outlast the boot timeout, time passing, jobs arriving and one-shot faults,
 * several actors at once now and then, on dynalite against the simulated cloud and Slurm. After every
 * step the promises that can be judged mid-run are checked (untracked ≤ 300 s, never over maxSize or
 * beyond demand, no busy node terminated, no DELETED or FAILED cluster with anything left); at the end
 * the world runs on for 10 minutes and the promises are checked again, stranded clusters included. Hostile
 * inputs (promise e) are the scenarios' and the API fuzzer's business, not the model's.
 *
 * FAULT_MODEL_RUNS sets the number of runs (CI: 200); FAULT_SEED replays one.
 */

let db: TestDynamo;
beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => {
  await db.close();
});

const RUNS = Number(process.env.FAULT_MODEL_RUNS ?? 200);
const seed = faultSeed();

/** What the model keeps: only whether the cluster was asked to go, the rest is read from the world. */
interface Model {
  deleteAsked: boolean;
}

type Cmd = fc.AsyncCommand<Model, World>;

/** The promises judged after every step; throws naming the broken one. */
async function checkStep(world: World, step: string): Promise<void> {
  const now = world.observer.interim();
  const broken: string[] = [];
  if (now.untrackedMaxS > UNTRACKED_LIMIT_S) broken.push(`untracked ${now.untrackedMaxS} s`);
  if (now.overMaxSize > 0) broken.push(`over maxSize by ${now.overMaxSize}`);
  if (now.beyondDemand > 0) broken.push(`${now.beyondDemand} launched beyond demand`);
  if (now.busyTerminated > 0) {
    const b = world.observer.busyTerminations.at(-1);
    broken.push(
      `busy terminated ${now.busyTerminated} (last: ${b?.instance} running job ${b?.job}, by ${b?.actor})`,
    );
  }
  for (const cluster of await world.rawStore.listClusters()) {
    if (cluster.status !== "DELETED" && cluster.status !== "FAILED") continue;
    const left = world.cloud.live().filter((i) => i.tags["nowscale:cluster"] === cluster.clusterId).length;
    if (left > 0) broken.push(`${cluster.clusterId} is ${cluster.status} with ${left} instance(s) live`);
  }
  if (broken.length > 0) throw new Error(`after ${step}: ${broken.join("; ")}`);
}

/** The name of the cluster's n-th node record (modulo their number); undefined when there is none. */
async function nthNode(world: World, n: number): Promise<string | undefined> {
  const records = await world.rawStore.listNodes(world.clusterId);
  return records[n % Math.max(1, records.length)]?.nodeName;
}

/** A command: `act` on the world, then the step check. */
function command(label: string, act: (world: World, model: Model) => Promise<void>): Cmd {
  return {
    check: () => true,
    run: async (model, world) => {
      await act(world, model);
      await checkStep(world, label);
    },
    toString: () => label,
  };
}

const PROVIDER_FAULTS: ProviderFault[] = [
  { kind: "listEmpty", actor: "reconciler" },
  { kind: "listShort", actor: "reconciler" },
  { kind: "listPaged", pageSize: 2, actor: "reconciler" },
  { kind: "crashAfterLaunch" },
  { kind: "lost" },
  { kind: "partial" },
  { kind: "capacityButLast" },
  { kind: "throttle", costMs: 30_000 },
  { kind: "error", error: "ServiceUnavailable" },
];
const STORE_FAULTS: StoreFault[] = [{ kind: "throttle" }, { kind: "lost" }, { kind: "error" }];
const AGENT_FAULTS: AgentFault[] = [
  { kind: "flapBusy", to: "DRAINED" },
  { kind: "flapBusy", to: "IDLE" },
  { kind: "dropNodes", count: 2 },
  { kind: "unreachable" },
  { kind: "tooLarge" },
];

const commands = [
  fc
    .record({
      count: fc.integer({ min: 1, max: 3 }),
      minutes: fc.integer({ min: 2, max: 40 }),
      nodes: fc.integer({ min: 1, max: 2 }),
    })
    .map(({ count, minutes, nodes }) =>
      command(`submit ${count} job(s) of ${nodes} node(s), ${minutes} min`, async (world) => {
        for (let i = 0; i < count; i++)
          world.submit({ queue: "compute", runtimeMs: minutes * MINUTE, nodes });
      }),
    ),
  fc.constant(command("scale cycle", async (world) => void (await world.scaleCycle()))),
  fc.constant(command("reconciler", async (world) => void (await world.reconcile()))),
  fc.integer({ min: 1, max: 5 }).map((count) =>
    command(`add ${count} node(s)`, async (world) => {
      await world.call("POST", `/clusters/${world.clusterId}/nodes`, { queue: "compute", count });
    }),
  ),
  fc.nat().map((n) =>
    command(`delete node #${n}`, async (world) => {
      const records = await world.rawStore.listNodes(world.clusterId);
      const record = records[n % Math.max(1, records.length)];
      if (record === undefined) return;
      await world.call("POST", `/clusters/${world.clusterId}/nodes/delete`, { nodes: [record.nodeName] });
    }),
  ),
  // By hand, as an operator would: stop (drain, retire once empty), resume, rebuild every failed node.
  // None of them may terminate a node running a job (only POST /nodes/delete is let off).
  fc.record({ n: fc.nat(), route: fc.constantFrom("stop", "resume") }).map(({ n, route }) =>
    command(`${route} node #${n} by hand`, async (world) => {
      const name = await nthNode(world, n);
      if (name === undefined) return;
      await world.call("POST", `/clusters/${world.clusterId}/nodes/${route}`, { nodes: [name] });
    }),
  ),
  fc.constant(
    command("rebuild every failed node", async (world) => {
      await world.call("POST", `/clusters/${world.clusterId}/nodes/rebuild`, {});
    }),
  ),
  // Boots that outlast the reconciler's boot timeout (900 s) join while it retires them.
  fc.constantFrom(120, 880, 960, 1040).map((seconds) =>
    command(`boots take ${seconds} s from now`, async (world) => {
      for (const q of world.queues) q.bootSeconds = seconds;
    }),
  ),
  fc.constant(
    command("delete the cluster", async (world, model) => {
      model.deleteAsked = true;
      await world.call("DELETE", `/clusters/${world.clusterId}`);
    }),
  ),
  fc.integer({ min: 15, max: 900 }).map((seconds) =>
    command(`${seconds} s pass`, async (world) => {
      await world.advance(seconds * SECOND);
      await world.runWorkflows();
    }),
  ),
  fc
    .oneof(
      fc.constantFrom(...PROVIDER_FAULTS).map((f) => ({ port: "provider" as const, fault: f })),
      fc.constantFrom(...STORE_FAULTS).map((f) => ({ port: "store" as const, fault: f })),
      fc.constantFrom(...AGENT_FAULTS).map((f) => ({ port: "agent" as const, fault: f })),
    )
    .map(({ port, fault }) =>
      command(`arm ${port} fault ${JSON.stringify(fault)}`, async (world) => {
        // One-shot: the next matching call gets it.
        if (port === "provider") world.providerFaults.add({ ...(fault as ProviderFault), times: 1 });
        else if (port === "store") world.storeFaults.add({ ...(fault as StoreFault), times: 1 });
        else world.agentFaults.add({ ...(fault as AgentFault), times: 1 });
      }),
    ),
  fc.nat().map((n) =>
    command(`scale cycle, reconciler and a resume of node #${n} by hand at once`, async (world) => {
      const name = await nthNode(world, n);
      await world.concurrently<unknown>([
        { name: "scaler", run: () => world.scaleCycle() },
        { name: "reconciler", run: () => world.reconcile() },
        {
          name: "api POST nodes/resume",
          run: async () =>
            name === undefined
              ? undefined
              : world.call("POST", `/clusters/${world.clusterId}/nodes/resume`, { nodes: [name] }),
        },
      ]);
    }),
  ),
  fc.integer({ min: 1, max: 3 }).map((count) =>
    command(`scale cycle, reconciler and add ${count} node(s) at once`, async (world) => {
      await world.concurrently<unknown>([
        { name: "scaler", run: () => world.scaleCycle() },
        { name: "reconciler", run: () => world.reconcile() },
        {
          name: "api POST nodes",
          run: () => world.call("POST", `/clusters/${world.clusterId}/nodes`, { queue: "compute", count }),
        },
      ]);
    }),
  ),
];

describe("fast-check model of the control plane under faults", () => {
  it(`keeps the five promises over ${RUNS} random runs`, { timeout: 600_000 }, async (ctx) => {
    const totals: PromiseFigures = {
      scenario: `fast-check model (worst of ${RUNS} runs)`,
      seed,
      untrackedMaxS: 0,
      maxLive: [],
      overMaxSize: 0,
      beyondDemand: 0,
      doubleLaunches: 0,
      busyTerminated: 0,
      busyTerminations: [],
      strandedClusters: 0,
      stranded: [],
      hostileSent: 0,
      hostileRefused: 0,
      hostileAccepted: [],
      notes: { worlds: 0 },
    };
    // The worst world's figures, not sums: shrinking replays a failing world many times over.
    const add = (f: PromiseFigures) => {
      totals.untrackedMaxS = Math.max(totals.untrackedMaxS, f.untrackedMaxS);
      totals.overMaxSize = Math.max(totals.overMaxSize, f.overMaxSize);
      totals.beyondDemand = Math.max(totals.beyondDemand, f.beyondDemand);
      totals.busyTerminated = Math.max(totals.busyTerminated, f.busyTerminated);
      totals.strandedClusters = Math.max(totals.strandedClusters, f.strandedClusters);
      if (f.busyTerminations.length > totals.busyTerminations.length)
        totals.busyTerminations = f.busyTerminations;
      if (f.stranded.length > totals.stranded.length) totals.stranded = f.stranded;
      totals.notes.worlds = Number(totals.notes.worlds) + 1;
    };
    const property = fc.asyncProperty(
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.commands(commands, { maxCommands: 12, size: "+1" }),
      async (worldSeed, cmds) => {
        const world = await World.create(db, {
          name: "model",
          seed: worldSeed,
          create: "store",
          queues: [{ name: "compute", maxSize: 4 }],
          scaler: { windowMs: 0 },
        });
        // Coarser observation than the scenarios: each run must stay well under a second.
        world.cadence.tickMs = 30 * SECOND;
        // A warm start: three nodes busy with half-hour jobs, so that every fault meets running work.
        for (let i = 0; i < 3; i++) world.submit({ queue: "compute", runtimeMs: 30 * MINUTE });
        await world.run(3 * MINUTE);
        let figures: PromiseFigures | undefined;
        try {
          await fc.asyncModelRun(() => ({ model: { deleteAsked: false }, real: world }), cmds);
          // Let the schedules run on (two reconciler runs): what is half-done must finish or be undone.
          await world.run(10 * MINUTE);
          figures = await world.finish();
          const broken = brokenPromises(figures);
          if (broken.length > 0) throw new Error(`at the end: ${broken.join("; ")}`);
        } finally {
          if (figures === undefined) figures = await world.finish().catch(() => undefined);
          if (figures !== undefined) add(figures);
          await world.dispose();
        }
      },
    );
    try {
      await fc.assert(property, {
        numRuns: RUNS,
        seed,
        plugins: [fc.interruptAfterTimeLimit(300_000, { failOnInterrupt: true })],
      });
    } catch (error) {
      (error as Error).message = `${(error as Error).message}\n${describeSeed(seed)}`;
      throw error;
    } finally {
      totals.doubleLaunches = totals.overMaxSize + totals.beyondDemand;
      ctx.task.meta.faultFigures = totals;
      console.log(
        `[faults] ${totals.scenario}: ${totals.notes.worlds} worlds run (shrinking included), worst: untracked max ${totals.untrackedMaxS} s, double launches ${totals.doubleLaunches}, busy terminated ${totals.busyTerminated}, stranded ${totals.strandedClusters} (seed ${seed})`,
      );
    }
  });
});
