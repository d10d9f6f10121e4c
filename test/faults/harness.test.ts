import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ServiceUnavailableError } from "../../lib/ports/errors.js";
import { FakeClock, FakeCloud, FakeProvider } from "../../lib/providers/fake/index.js";
import { freshStore, startDynalite, type TestDynamo } from "../support/dynalite.js";
import { type AgentFault, agentFaultMethods, corruptingAgent } from "../support/faults/agent.js";
import { asActor } from "../support/faults/context.js";
import {
  faultyProvider,
  InjectedCrash,
  type ProviderFault,
  providerFaultMethods,
} from "../support/faults/provider.js";
import { Rng } from "../support/faults/rng.js";
import { FaultBook, type When } from "../support/faults/rules.js";
import { SlurmSim } from "../support/faults/slurm.js";
import { faultyStore, type StoreFault, storeFaultMethods } from "../support/faults/store.js";
import { Turnstile } from "../support/faults/turnstile.js";
import { World } from "../support/faults/world.js";
import { MINUTE } from "./workload.js";

/** The instrument itself: each fault does what its doc says, and the same seed replays the same run. */

let db: TestDynamo;
beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => {
  await db.close();
});

const T0 = Date.UTC(2026, 0, 1);
const TAGS = { "nowscale:cluster": "demo", "nowscale:queue": "compute" };
const CANDIDATES = ["zone-a", "zone-b", "zone-c"].map((zone) => ({
  instanceType: "c5.xlarge",
  zone,
  chargeType: "ON_DEMAND" as const,
}));
const REQUEST = {
  clusterId: "demo",
  queue: "compute",
  round: "r1",
  candidates: CANDIDATES,
  count: 3,
  allOrNothing: false,
  imageId: "img-1",
};

function provider(rules: ProviderFault[]) {
  const clock = new FakeClock(T0);
  const cloud = new FakeCloud({ clock });
  const inner = new FakeProvider({ cloud, clock });
  const book = new FaultBook(rules, clock, new Rng(1), T0, providerFaultMethods);
  const rng = new Rng(2);
  const faulty = faultyProvider(inner, book, { sleep: (ms) => clock.sleep(ms), pick: (xs) => rng.pick(xs) });
  return { clock, cloud, faulty, book };
}

describe("fault harness", () => {
  it("a rule fires inside its window, after `after` calls, at most `times`, for its actor only", async () => {
    // Prepare
    const clock = new FakeClock(T0);
    const book = new FaultBook<When & { kind: string }>(
      [{ kind: "x", fromMs: 1000, untilMs: 5000, after: 1, times: 2, actor: "scaler", methods: ["list"] }],
      clock,
      new Rng(1),
      T0,
      () => [],
    );
    const fired = (method: string) => book.match(method) !== undefined;
    // Act
    const early = await asActor("scaler", async () => fired("list"));
    clock.advance(1000);
    const seen = await asActor("scaler", async () => [
      fired("list"),
      fired("list"),
      fired("launch"),
      fired("list"),
      fired("list"),
    ]);
    const other = await asActor("reconciler", async () => fired("list"));
    // Assess
    expect(early).toBe(false);
    expect(seen).toEqual([false, true, false, true, false]);
    expect(other).toBe(false);
    expect(book.injected.get("x")).toBe(2);
  });

  it("provider: listings short, empty and paged; capacity on the last candidate; partial sets left unreleased", async () => {
    // Prepare
    const t = provider([
      { kind: "listEmpty", times: 1 },
      { kind: "listShort", times: 1 },
      { kind: "listPaged", pageSize: 2, times: 1 },
      { kind: "capacityButLast", times: 1 },
      { kind: "partial", times: 1 },
    ]);
    for (let i = 0; i < 4; i++) t.cloud.seed({ instanceType: "c5.xlarge", zone: "zone-a", tags: TAGS });
    // Act
    const listings = [await t.faulty.list("demo"), await t.faulty.list("demo"), await t.faulty.list("demo")];
    const last = await t.faulty.launch(REQUEST);
    const partial = await t.faulty.launch({ ...REQUEST, round: "r2", count: 2, allOrNothing: true });
    // Assess
    expect(listings.map((l) => l.length)).toEqual([0, 3, 2]);
    expect(last.instances.map((i) => i.zone)).toEqual(["zone-c", "zone-c", "zone-c"]);
    expect(last.failures.map((f) => [f.index, f.error.kind])).toEqual([
      [0, "InsufficientCapacity"],
      [1, "InsufficientCapacity"],
    ]);
    expect(partial.instances).toEqual([]);
    expect(partial.unreleased).toHaveLength(1);
    expect(t.cloud.get(partial.unreleased[0] ?? "")?.state).toBe("RUNNING");
    expect((await t.faulty.list("demo")).length).toBe(4 + 3 + 1);
  });

  it("provider: a crash after launch and a lost answer leave the effect in the cloud", async () => {
    // Prepare
    const t = provider([
      { kind: "crashAfterLaunch", times: 1 },
      { kind: "lost", methods: ["terminate"], times: 1 },
    ]);
    // Act
    const crash = await t.faulty.launch(REQUEST).catch((e: unknown) => e);
    const started = t.cloud.live();
    const lost = await t.faulty.terminate(started.map((i) => i.id)).catch((e: unknown) => e);
    // Assess
    expect(crash).toBeInstanceOf(InjectedCrash);
    expect(started).toHaveLength(3);
    expect(lost).toBeInstanceOf(ServiceUnavailableError);
    expect(t.cloud.live()).toEqual([]);
  });

  it("store: a throttled call writes nothing, a lost answer follows a write that happened", async () => {
    // Prepare
    const { store } = await freshStore(db);
    const clock = new FakeClock(T0);
    const book = new FaultBook<StoreFault>(
      [
        { kind: "throttle", methods: ["createCluster"], times: 1 },
        { kind: "lost", methods: ["createCluster"], times: 1 },
      ],
      clock,
      new Rng(1),
      T0,
      storeFaultMethods,
    );
    const faulty = faultyStore(store, book, { sleep: (ms) => clock.sleep(ms) });
    const input = {
      clusterId: "c1",
      name: "c1",
      placement: { cloud: "fake" as const, region: "local", imageId: "img-1" },
      autoscaling: {
        queueConfigs: [{ queueName: "q", expansionNodeConfigs: [{ instanceType: "c5.xlarge", zone: "z" }] }],
      },
      now: T0,
    };
    // Act
    const throttled = await faulty.createCluster(input).catch((e: Error) => e.name);
    const afterThrottle = await store.getCluster("c1");
    const lost = await faulty.createCluster(input).catch((e: Error) => e.name);
    // Assess
    expect(throttled).toBe("ProvisionedThroughputExceededException");
    expect(afterThrottle).toBeUndefined();
    expect(lost).toBe("TimeoutError");
    expect((await store.getCluster("c1"))?.status).toBe("CREATING");
  });

  it("slurm: nodes join after boot, jobs run; a terminated busy node goes DOWN and its job is requeued", async () => {
    // Prepare
    const clock = new FakeClock(T0);
    const cloud = new FakeCloud({ clock });
    const sim = new SlurmSim(
      "demo",
      cloud,
      clock,
      (q) => ({ bootMs: 60_000, broken: q === "bad" }),
      new Rng(1),
    );
    const good = cloud.seed({ instanceType: "c5.xlarge", zone: "zone-a", tags: TAGS, launchedAt: T0 });
    cloud.seed({ instanceType: "c5.xlarge", zone: "zone-a", tags: { ...TAGS, "nowscale:queue": "bad" } });
    const job = sim.submit({ queue: "compute", runtimeMs: 10 * MINUTE });
    // Act
    clock.advance(59_000);
    const early = await sim.report();
    clock.advance(1_000);
    const joined = await sim.report();
    const refused = await sim.deleteNode(good.id).catch((e: Error) => e.message);
    cloud.terminate([good.id]);
    sim.noteStopped([good.id], clock.now());
    const after = await sim.report();
    // Assess
    expect(early.nodes).toEqual([]);
    expect(joined.nodes.map((n) => [n.name, n.state])).toEqual([[good.id, "ALLOCATED"]]);
    expect(joined.jobs[0]).toMatchObject({ state: "RUNNING", nodeNames: [good.id] });
    expect(refused).toContain("409");
    expect(after.nodes.map((n) => n.state)).toEqual(["DOWN"]);
    expect(after.jobs[0]).toMatchObject({ state: "PENDING", jobIds: [job] });
    expect(sim.losses).toMatchObject([{ jobId: job, node: good.id, cause: "terminated" }]);
  });

  it("agent: a flap shows one busy node free for one report, and waits for a busy node", async () => {
    // Prepare
    const clock = new FakeClock(T0);
    const cloud = new FakeCloud({ clock });
    const sim = new SlurmSim("demo", cloud, clock, () => ({ bootMs: 0, broken: false }), new Rng(1));
    const book = new FaultBook<AgentFault>(
      [{ kind: "flapBusy", to: "DRAINED", times: 1 }],
      clock,
      new Rng(1),
      T0,
      agentFaultMethods,
    );
    const agent = corruptingAgent(sim, book, { sleep: (ms) => clock.sleep(ms), pick: (xs) => xs[0] });
    const node = cloud.seed({ instanceType: "c5.xlarge", zone: "zone-a", tags: TAGS });
    // Act
    const idle = await agent.report();
    sim.submit({ queue: "compute", runtimeMs: MINUTE });
    const flapped = await agent.report();
    const next = await agent.report();
    // Assess
    expect(idle.nodes.map((n) => n.state)).toEqual(["IDLE"]);
    expect(flapped.nodes.map((n) => [n.name, n.state])).toEqual([[node.id, "DRAINED"]]);
    expect(flapped.jobs.filter((j) => j.state === "RUNNING")).toEqual([]);
    expect(next.nodes.map((n) => n.state)).toEqual(["ALLOCATED"]);
  });

  it("turnstile: the same seed interleaves concurrent actors the same way, a different one differently", async () => {
    // Prepare
    const order = async (seed: number) => {
      const turnstile = new Turnstile(new Rng(seed));
      const log: string[] = [];
      const port = turnstile.gate({ call: async (who: string) => void log.push(who) });
      const actor = (name: string) => ({
        name,
        run: async () => {
          for (let i = 0; i < 4; i++) await port.call(`${name}${i}`);
        },
      });
      await turnstile.all([actor("a"), actor("b"), actor("c")]);
      return log.join(" ");
    };
    // Act
    const runs = [await order(7), await order(7), await order(8), await order(9)];
    // Assess
    expect(runs[0]).toBe(runs[1]);
    expect(new Set(runs).size).toBeGreaterThan(1);
    expect(runs[0]?.split(" ").sort()).toEqual([
      "a0",
      "a1",
      "a2",
      "a3",
      "b0",
      "b1",
      "b2",
      "b3",
      "c0",
      "c1",
      "c2",
      "c3",
    ]);
  });

  it("observer: a busy node terminated by the scaler counts, one terminated by the deletion workflow does not", async () => {
    // Prepare
    const world = await World.create(db, { name: "observer check", seed: 1 });
    world.submit({ queue: "compute", runtimeMs: 60 * MINUTE });
    world.submit({ queue: "compute", runtimeMs: 60 * MINUTE });
    await world.run(5 * MINUTE);
    const [first, second] = world.sim().liveComputes();
    if (first === undefined || second === undefined) throw new Error("no nodes");
    // Act
    await asActor("scaler", () => world.provider.terminate([first.id]));
    await asActor("workflow", () => world.provider.terminate([second.id]));
    // Assess
    expect(world.observer.busyTerminations.map((b) => b.actor)).toEqual(["scaler", "workflow"]);
    expect(world.observer.interim().busyTerminated).toBe(1);
    await world.dispose();
  });
});
