import { DeleteTableCommand, ScanCommand } from "@aws-sdk/client-dynamodb";
import { type ApiDeps, type ApiRequest, handleApiRequest } from "../../../lib/control/api/routes.js";
import { recoverStuckClusters } from "../../../lib/control/lifecycle-recovery.js";
import { RecordingMetrics } from "../../../lib/control/metrics.js";
import {
  type ReconcilerOptions,
  type ReconcileSummary,
  reconcileCluster,
} from "../../../lib/control/reconciler.js";
import {
  type CycleSummary,
  runScaleCycle,
  type ScaleCycleOptions,
} from "../../../lib/control/scale-cycle.js";
import type { ConfigInput } from "../../../lib/core/config.js";
import type { ChargeType } from "../../../lib/core/model.js";
import type { AgentChannel } from "../../../lib/ports/agent-channel.js";
import type { Clock } from "../../../lib/ports/clock.js";
import type { CloudProvider } from "../../../lib/ports/cloud-provider.js";
import type { ClusterRecord, StateStore } from "../../../lib/ports/state-store.js";
import { FakeClusterResources } from "../../../lib/providers/fake/fake-cluster-resources.js";
import { FakeClock, FakeCloud, FakeProvider } from "../../../lib/providers/fake/index.js";
import type { DynamoStateStore } from "../../../lib/state/dynamo-store.js";
import type { TableNames } from "../../../lib/state/tables.js";
import { createClusterDefinition, deleteClusterDefinition } from "../../../lib/workflow/index.js";
import { type LocalRunResult, runWorkflowLocally } from "../../../lib/workflow/local-runner.js";
import type { ExecutionState, WorkflowStarter } from "../../../lib/workflow/starter.js";
import type { MasterAgent } from "../../../lib/workflow/tasks/agent.js";
import type { LifecycleDeps } from "../../../lib/workflow/tasks/deps.js";
import { runLifecycleTask } from "../../../lib/workflow/tasks/dispatch.js";
import { StateStoreLifecycleStore } from "../../../lib/workflow/tasks/state-store-adapter.js";
import { freshStore, type TestDynamo } from "../dynalite.js";
import { type AgentFault, agentFaultMethods, corruptingAgent } from "./agent.js";
import { asActor } from "./context.js";
import { type PromiseFigures, PromiseObserver } from "./observers.js";
import { faultyProvider, type ProviderFault, providerFaultMethods } from "./provider.js";
import { Rng } from "./rng.js";
import { FaultBook } from "./rules.js";
import { type JobSpec, SlurmSim } from "./slurm.js";
import { faultyStore, type StoreFault, storeFaultMethods } from "./store.js";
import { Turnstile } from "./turnstile.js";

export const T0 = Date.UTC(2026, 0, 1);
const SECOND = 1000;
const MINUTE = 60 * SECOND;

export interface QueueSpec {
  name: string;
  maxSize: number;
  /** Tried in order. @default one ON_DEMAND c5.xlarge in zone-a */
  candidates?: { instanceType: string; zone: string; chargeType?: ChargeType }[];
  /** Seconds from launch to joining Slurm. @default 120 */
  bootSeconds?: number;
  /** Its nodes never join Slurm (a broken bootstrap). */
  broken?: boolean;
  /** Nodes launched this many ms after the world's start or later never join (the bootstrap broke then). */
  brokenFromMs?: number;
}

export interface WorldOptions {
  /** The scenario's name, for the figures. */
  name: string;
  seed: number;
  /** @default one queue "compute" of maxSize 4 */
  queues?: QueueSpec[];
  provider?: ProviderFault[];
  store?: StoreFault[];
  agent?: AgentFault[];
  /** "api": POST /clusters and the real creation workflow (the default); "store": records written directly. */
  create?: "api" | "store";
  /** Options of every scale cycle. @default the deployed ones (50 s window, a poll every 15 s) */
  scaler?: ScaleCycleOptions;
  reconciler?: ReconcilerOptions;
  /** Clock skew of one actor's clock against the world's, in ms (e.g. { reconciler: 120_000 }). */
  skew?: Partial<Record<"scaler" | "reconciler" | "api", number>>;
}

/** How often the world's driver does what the deployed schedules do. */
export interface Cadence {
  /** EventBridge → fan-out → one scaler invocation per RUNNING cluster. @default 60 s */
  scalerEveryMs: number;
  /** Invocations per fan-out (an async invoke can be delivered twice). @default 1 */
  scalersPerTick: number;
  /** @default 300 s */
  reconcilerEveryMs: number;
  /** Run the actors due at the same time concurrently (Turnstile) instead of one after another. */
  overlap: boolean;
  /** Observation (and Slurm) step. @default 15 s */
  tickMs: number;
}

const DEFAULT_CADENCE: Cadence = {
  scalerEveryMs: MINUTE,
  scalersPerTick: 1,
  reconcilerEveryMs: 2 * MINUTE, // the stack's ReconcilerSchedule (lib/infra/stack.ts)
  overlap: false,
  tickMs: 15 * SECOND,
};

/** The clock every part of the world shares; sleeping lets the observers look (and Slurm move on). */
class WorldClock extends FakeClock {
  onSleep: (() => Promise<void>) | undefined;

  override async sleep(ms: number): Promise<void> {
    await super.sleep(ms);
    await this.onSleep?.();
  }
}

/** The autoscaling configuration of the queues: jobs take whole c5.xlarge nodes, no waiting, shrink after 300 s. */
export function configFor(queues: readonly QueueSpec[]): ConfigInput {
  return {
    catalogs: ["aws"],
    expansionBusyTime: 0,
    shrinkIdleTime: 300,
    queueConfigs: queues.map((q) => ({
      queueName: q.name,
      maxSize: q.maxSize,
      expansionNodeConfigs: (q.candidates ?? [{ instanceType: "c5.xlarge", zone: "zone-a" }]).map((c) => ({
        instanceType: c.instanceType,
        zone: c.zone,
        chargeType: c.chargeType ?? "ON_DEMAND",
      })),
    })),
  };
}

/** The creation request of a cluster with these queues (the API's CreateCluster body). */
export function createBody(name: string, queues: readonly QueueSpec[]) {
  return {
    name,
    cloud: "fake",
    region: "local",
    network: { cidr: "10.42.0.0/16", zones: ["zone-a", "zone-b", "zone-c"] },
    master: { instanceType: "c5.xlarge", zone: "zone-a", imageId: "img-master" },
    computeImageId: "img-compute",
    autoscaling: configFor(queues),
    agentHealthTimeoutSeconds: 120,
  };
}

/**
 * The workflows as Step Functions would run them: a start returns at once and the execution runs later
 * (at the world's next tick) from the same ASL definitions CDK deploys; `failNext` makes the next
 * StartExecution of a kind fail, as a throttled or unavailable Step Functions API would.
 */
export class SimWorkflows implements WorkflowStarter {
  readonly results: { name: string; result: LocalRunResult | Error }[] = [];
  /** StartExecution calls that failed (failNext). */
  startFailures = 0;
  private readonly started = new Set<string>();
  /** How each execution stands, by its ARN, as DescribeExecution would answer. */
  private readonly states = new Map<string, ExecutionState>();
  private readonly queued: { name: string; run: () => Promise<LocalRunResult> }[] = [];
  private readonly failures: ("create" | "delete")[] = [];

  constructor(private readonly handler: (input: unknown) => Promise<unknown>) {}

  failNext(kind: "create" | "delete"): void {
    this.failures.push(kind);
  }

  async startCreate(clusterId: string, request: unknown): Promise<string> {
    this.maybeFail("create");
    return this.enqueue(`create-${clusterId}`, () =>
      runWorkflowLocally(createClusterDefinition(), { clusterId, request }, this.handler),
    );
  }

  async startDelete(clusterId: string, attempt: number): Promise<string> {
    this.maybeFail("delete");
    return this.enqueue(`delete-${clusterId}-${attempt}`, () =>
      runWorkflowLocally(deleteClusterDefinition(), { clusterId }, this.handler),
    );
  }

  async describeExecution(executionArn: string): Promise<ExecutionState> {
    return this.states.get(executionArn) ?? { status: "ABSENT" };
  }

  /** Runs every execution started so far, one after another, as the actor "workflow". */
  async runQueued(): Promise<void> {
    while (this.queued.length > 0) {
      const next = this.queued.shift();
      if (next === undefined) break;
      const arn = arnOf(next.name);
      try {
        const result = await asActor("workflow", next.run);
        this.results.push({ name: next.name, result });
        this.states.set(arn, { status: result.status });
      } catch (error) {
        this.results.push({ name: next.name, result: error as Error });
        this.states.set(arn, { status: "FAILED", error: (error as Error).message });
      }
    }
  }

  get pending(): number {
    return this.queued.length;
  }

  private maybeFail(kind: "create" | "delete"): void {
    const at = this.failures.indexOf(kind);
    if (at < 0) return;
    this.failures.splice(at, 1);
    this.startFailures++;
    const error = new Error("Rate exceeded (injected StartExecution failure)");
    error.name = "ThrottlingException";
    throw error;
  }

  private enqueue(name: string, run: () => Promise<LocalRunResult>): string {
    if (!this.started.has(name)) {
      this.started.add(name);
      this.queued.push({ name, run });
      this.states.set(arnOf(name), { status: "RUNNING" });
    }
    return arnOf(name);
  }
}

function arnOf(name: string): string {
  return `arn:aws:states:local:000000000000:execution:nowscale:${name}`;
}

export interface ApiAnswer {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: answers are read field by field in the scenarios
  body: any;
}

/**
 * A simulated world: dynalite (the real DynamoDB store), the fake cloud, one simulated Slurm per
 * cluster behind its AgentChannel, one clock — driven by the real control plane (runScaleCycle,
 * reconcileCluster, handleApiRequest, the creation and deletion workflows), with faults injected at the
 * ports and every promise observed.
 *
 * The control plane sees only the decorated ports: `store`, `provider`, `agentFor(id)`; the observers
 * read `rawStore` and the fake cloud, which no fault touches. Each call site of the control plane is one
 * method here (scaleCycle, reconcile, api, runWorkflows), so a changed signature is fixed in one place.
 */
export class World {
  readonly clock: WorldClock;
  readonly rng: Rng;
  readonly cloud: FakeCloud;
  readonly resources = new FakeClusterResources();
  readonly metrics = new RecordingMetrics();
  readonly turnstile: Turnstile;
  readonly providerFaults: FaultBook<ProviderFault>;
  readonly storeFaults: FaultBook<StoreFault>;
  readonly agentFaults: FaultBook<AgentFault>;
  /** What the control plane is given. */
  readonly store: StateStore;
  readonly provider: CloudProvider;
  readonly observer: PromiseObserver;
  readonly workflows: SimWorkflows;
  readonly lifecycle: LifecycleDeps;
  readonly api: ApiDeps;
  readonly queues: QueueSpec[];
  readonly cadence: Cadence = { ...DEFAULT_CADENCE };
  /** Errors the control plane threw (a crashed Lambda), by actor. */
  readonly crashes: { at: number; actor: string; error: string }[] = [];
  /** Scenario-specific figures, printed with the promises. */
  readonly notes: Record<string, number | string> = {};
  /** The cluster the scenario is about. */
  clusterId = "";
  private readonly sims = new Map<string, SlurmSim>();
  private readonly agents = new Map<string, AgentChannel>();
  private invocations = 0;
  private nextScaler: number;
  private nextReconciler: number;
  private clusterSeq = 0;
  private lastSampleAt = T0;
  /** World time when the run (and the fault plans) started: after the cluster was created. */
  startedAt = T0;

  private constructor(
    readonly options: WorldOptions,
    readonly rawStore: DynamoStateStore,
    readonly tables: TableNames,
    private readonly db: TestDynamo,
  ) {
    this.clock = new WorldClock(T0);
    this.rng = new Rng(options.seed);
    this.queues = options.queues ?? [{ name: "compute", maxSize: 4 }];
    this.cloud = new FakeCloud({ clock: this.clock });
    this.turnstile = new Turnstile(this.rng.fork("turnstile"));
    const started = this.clock.now();
    this.providerFaults = new FaultBook(
      options.provider ?? [],
      this.clock,
      this.rng.fork("provider"),
      started,
      providerFaultMethods,
    );
    this.storeFaults = new FaultBook(
      options.store ?? [],
      this.clock,
      this.rng.fork("store"),
      started,
      storeFaultMethods,
    );
    this.agentFaults = new FaultBook(
      options.agent ?? [],
      this.clock,
      this.rng.fork("agent"),
      started,
      agentFaultMethods,
    );
    const sleep = (ms: number) => this.clock.sleep(ms);
    const pickRng = this.rng.fork("pick");
    const pick = <T>(items: readonly T[]) => pickRng.pick(items);
    const jitter = this.rng.fork("jitter");
    const fake = new FakeProvider({ cloud: this.cloud, clock: this.clock, random: () => jitter.next() });
    this.observer = new PromiseObserver(
      this.clock,
      this.cloud,
      rawStore,
      () => this.sims.values(),
      (_cluster, queue) => this.queues.find((q) => q.name === queue)?.maxSize,
    );
    this.store = this.turnstile.gate(faultyStore(this.observer.store(rawStore), this.storeFaults, { sleep }));
    const observed = this.observer.provider(fake, (id) => this.sims.get(id));
    this.provider = this.turnstile.gate(faultyProvider(observed, this.providerFaults, { sleep, pick }));
    const master: MasterAgent = {
      isHealthy: async () => true,
      drainAll: async (clusterId) => {
        this.sim(clusterId).drainAll("nowscale: cluster deletion");
        return true;
      },
    };
    this.lifecycle = {
      store: new StateStoreLifecycleStore(this.store, this.clock),
      resources: this.resources,
      provider: () => this.provider,
      agent: master,
      clock: this.clock,
    };
    this.workflows = new SimWorkflows((input) => runLifecycleTask(this.lifecycle, input));
    this.api = {
      store: this.store,
      clock: this.clockOf("api"),
      workflows: this.workflows,
      metrics: this.metrics,
      runtime: async (cluster: ClusterRecord) => ({
        provider: this.provider,
        agent: this.agentFor(cluster.clusterId),
      }),
      newClusterId: () => `c-${(++this.clusterSeq).toString().padStart(4, "0")}`,
    };
    let sampling = false;
    this.clock.onSleep = async () => {
      if (sampling || this.clock.now() - this.lastSampleAt < this.cadence.tickMs) return;
      sampling = true;
      try {
        await this.sample();
      } finally {
        sampling = false;
      }
    };
    this.nextScaler = this.clock.now();
    this.nextReconciler = this.clock.now() + this.cadence.reconcilerEveryMs;
  }

  /** A world with one RUNNING cluster (`clusterId`) made through the API and the creation workflow. */
  static async create(db: TestDynamo, options: WorldOptions): Promise<World> {
    const { store, tables } = await freshStore(db);
    const world = new World(options, store, tables, db);
    // Creating the cluster is not under test here: faults start with the run.
    await world.withoutFaults(async () => {
      world.clusterId = await world.newCluster("demo", options.create ?? "api");
    });
    world.nextScaler = world.clock.now();
    world.nextReconciler = world.clock.now() + world.cadence.reconcilerEveryMs;
    return world;
  }

  /** Creates a RUNNING cluster with the world's queues; returns its id. */
  async newCluster(name: string, how: "api" | "store" = "api"): Promise<string> {
    if (how === "store") {
      const clusterId = `c-${(++this.clusterSeq).toString().padStart(4, "0")}`;
      const { cluster } = await this.rawStore.createCluster({
        clusterId,
        name,
        placement: { cloud: "fake", region: "local", imageId: "img-compute" },
        autoscaling: configFor(this.queues),
        now: this.clock.now(),
      });
      await this.rawStore.updateCluster(clusterId, cluster.version, {
        status: "RUNNING",
        now: this.clock.now(),
      });
      this.sim(clusterId);
      return clusterId;
    }
    const created = await this.call("POST", "/clusters", createBody(name, this.queues));
    if (created.status !== 202) throw new Error(`cluster creation refused: ${JSON.stringify(created.body)}`);
    const clusterId = created.body.clusterId as string;
    this.sim(clusterId);
    await this.runWorkflows();
    const cluster = await this.rawStore.getCluster(clusterId);
    if (cluster?.status !== "RUNNING")
      throw new Error(`cluster ${clusterId} did not come up: ${cluster?.status}`);
    return clusterId;
  }

  /** The cluster's simulated Slurm (made on first use). */
  sim(clusterId: string = this.clusterId): SlurmSim {
    let sim = this.sims.get(clusterId);
    if (sim === undefined) {
      sim = new SlurmSim(
        clusterId,
        this.cloud,
        this.clock,
        (queue, launchedAt) => {
          const spec = this.queues.find((q) => q.name === queue);
          const brokenFrom =
            spec?.brokenFromMs === undefined ? undefined : this.startedAt + spec.brokenFromMs;
          return {
            bootMs: (spec?.bootSeconds ?? 120) * SECOND,
            broken: spec?.broken === true || (brokenFrom !== undefined && launchedAt >= brokenFrom),
          };
        },
        this.rng.fork(`slurm-${clusterId}`),
      );
      this.sims.set(clusterId, sim);
    }
    return sim;
  }

  /** The agent channel the control plane gets for a cluster: its Slurm, with the agent faults, gated. */
  agentFor(clusterId: string): AgentChannel {
    let agent = this.agents.get(clusterId);
    if (agent === undefined) {
      const pickRng = this.rng.fork(`agent-${clusterId}`);
      agent = this.turnstile.gate(
        corruptingAgent(this.sim(clusterId), this.agentFaults, {
          sleep: (ms) => this.clock.sleep(ms),
          pick: (items) => pickRng.pick(items),
          landJob: (node) => this.sim(clusterId).landJobOn(node, 10 * 60 * SECOND) !== undefined,
        }),
      );
      this.agents.set(clusterId, agent);
    }
    return agent;
  }

  /** Submits a job to the cluster's Slurm now. */
  submit(job: JobSpec, clusterId: string = this.clusterId): string {
    return this.sim(clusterId).submit(job);
  }

  /** An actor's clock: the world's, shifted by the actor's skew. */
  clockOf(actor: "scaler" | "reconciler" | "api"): Clock {
    const skew = this.options.skew?.[actor] ?? 0;
    if (skew === 0) return this.clock;
    return { now: () => this.clock.now() + skew, sleep: (ms) => this.clock.sleep(ms) };
  }

  // ── the control plane's call sites ───────────────────────────────────────────────────────────────

  /** One scaler invocation (functions/scaler.ts) for the cluster; a crash is recorded, not thrown. */
  async scaleCycle(
    clusterId: string = this.clusterId,
    options?: ScaleCycleOptions,
  ): Promise<CycleSummary | Error> {
    const owner = `scaler-${++this.invocations}`;
    return this.catching("scaler", () =>
      runScaleCycle(
        clusterId,
        {
          store: this.store,
          agent: this.agentFor(clusterId),
          provider: this.provider,
          clock: this.clockOf("scaler"),
          metrics: this.metrics,
          owner,
        },
        options ?? this.options.scaler ?? {},
      ),
    );
  }

  /**
   * One reconciler run (functions/reconciler.ts) over every cluster that is not DELETED, each isolated
   * from the others' failures. Clusters the reconciler does not manage answer "not-active".
   */
  async reconcile(): Promise<(ReconcileSummary | Error)[]> {
    // As functions/reconciler.ts: first the clusters no workflow works on any more.
    await this.catching("reconciler", () =>
      recoverStuckClusters({
        store: this.store,
        clock: this.clockOf("reconciler"),
        workflows: this.workflows,
      }),
    );
    const clusters = await this.rawStore.listClusters();
    const out: (ReconcileSummary | Error)[] = [];
    for (const cluster of clusters) {
      if (cluster.status === "DELETED") continue;
      out.push(await this.reconcileOne(cluster.clusterId));
    }
    return out;
  }

  async reconcileOne(clusterId: string = this.clusterId): Promise<ReconcileSummary | Error> {
    const owner = `reconciler-${++this.invocations}`;
    // Extra fields a fixed reconciler may want (workflows to restart, the lifecycle ports) ride along.
    const deps = {
      store: this.store,
      agent: this.agentFor(clusterId),
      provider: this.provider,
      clock: this.clockOf("reconciler"),
      metrics: this.metrics,
      owner,
      workflows: this.workflows,
    };
    return this.catching("reconciler", () =>
      reconcileCluster(clusterId, deps, this.options.reconciler ?? {}),
    );
  }

  /** One API request through handleApiRequest (functions/api.ts); a thrown error answers 500. */
  async call(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<ApiAnswer> {
    const req: ApiRequest = {
      method,
      path,
      headers: { "content-type": "application/json", ...headers },
      query: {},
      body: body === undefined ? null : typeof body === "string" ? body : JSON.stringify(body),
    };
    const answer = await this.catching(`api ${method} ${path}`, () => handleApiRequest(this.api, req));
    if (answer instanceof Error) return { status: 500, body: { error: answer.message } };
    let parsed: unknown;
    try {
      parsed = JSON.parse(answer.body);
    } catch {
      parsed = answer.body;
    }
    return { status: answer.statusCode, body: parsed };
  }

  /** Runs the workflow executions started so far. */
  async runWorkflows(): Promise<void> {
    await this.workflows.runQueued();
  }

  /** Runs the actors at the same time, interleaved at every port call in an order the seed decides. */
  async concurrently<T>(actors: readonly { name: string; run: () => Promise<T> }[]): Promise<T[]> {
    const settled = await this.turnstile.all(actors);
    return settled.map((s) => {
      if (s.status === "fulfilled") return s.value;
      throw s.reason;
    });
  }

  // ── time ────────────────────────────────────────────────────────────────────────────────────────

  /**
   * Lets `ms` of world time pass with the deployed schedules: a scaler invocation per RUNNING cluster
   * every minute, the reconciler every 2 minutes, started workflows at the next tick, observations every
   * tick. The actors' own clock sleeps (the scaler's polls) move time too.
   */
  async run(ms: number): Promise<void> {
    const end = this.clock.now() + ms;
    while (this.clock.now() < end) {
      const now = this.clock.now();
      const due: { name: string; run: () => Promise<unknown> }[] = [];
      if (now >= this.nextScaler) {
        while (this.nextScaler <= now) this.nextScaler += this.cadence.scalerEveryMs;
        for (const cluster of await this.rawStore.listClusters({ status: "RUNNING" })) {
          for (let i = 0; i < this.cadence.scalersPerTick; i++) {
            due.push({ name: "scaler", run: () => this.scaleCycle(cluster.clusterId) });
          }
        }
      }
      if (now >= this.nextReconciler) {
        while (this.nextReconciler <= now) this.nextReconciler += this.cadence.reconcilerEveryMs;
        due.push({ name: "reconciler", run: () => this.reconcile() });
      }
      if (this.cadence.overlap && due.length > 1) await this.concurrently(due);
      else for (const actor of due) await actor.run();
      await this.runWorkflows();
      await this.sample();
      const next = Math.min(
        this.nextScaler,
        this.nextReconciler,
        this.clock.now() + this.cadence.tickMs,
        end,
      );
      if (next > this.clock.now()) this.clock.advance(next - this.clock.now());
    }
    await this.sample();
  }

  /** Moves the clock without running any actor (Slurm and the observers follow). */
  async advance(ms: number): Promise<void> {
    const end = this.clock.now() + ms;
    while (this.clock.now() < end) {
      this.clock.advance(Math.min(this.cadence.tickMs, end - this.clock.now()));
      await this.sample();
    }
  }

  async sample(): Promise<void> {
    this.lastSampleAt = this.clock.now();
    await this.observer.sample();
  }

  /** Runs `fn` with every fault suspended (setting up, or the hostile-input sample). */
  async withoutFaults<T>(fn: () => Promise<T>): Promise<T> {
    const books = [this.providerFaults, this.storeFaults, this.agentFaults];
    const before = books.map((b) => b.suspended);
    for (const b of books) b.suspended = true;
    try {
      return await fn();
    } finally {
      books.forEach((b, i) => {
        b.suspended = before[i] ?? false;
      });
    }
  }

  // ── the end ─────────────────────────────────────────────────────────────────────────────────────

  /**
   * Promise (e) on a small sample: hostile requests against the cluster (names that are members of
   * JavaScript objects, unknown queues, a text/plain body, out-of-range counts), each of which must be
   * answered 4xx naming the field with every table unchanged. The big fuzzer lives in the API tests.
   */
  async probeHostileInputs(): Promise<void> {
    await this.withoutFaults(async () => {
      // The sample needs a RUNNING cluster (a deleted one answers 409/404 before looking at the input).
      const running = (await this.rawStore.getCluster(this.clusterId))?.status === "RUNNING";
      const target = running ? this.clusterId : await this.newCluster("hostile-probe", "store");
      for (const probe of hostileSample(target, this.queues[0]?.name ?? "compute")) {
        const before = await this.snapshot();
        const answer = await this.call(probe.method, probe.path, probe.body, probe.headers ?? {});
        const after = await this.snapshot();
        const refused =
          answer.status >= 400 && answer.status < 500 && names(answer, probe) && before === after;
        this.observer.hostile.sent++;
        if (refused) this.observer.hostile.refused++;
        else
          this.observer.hostile.accepted.push(
            `${probe.label}: ${answer.status}${before === after ? "" : ", state changed"}`,
          );
      }
    });
  }

  /** Every item of every table, to compare "nothing changed". */
  private async snapshot(): Promise<string> {
    const all: unknown[] = [];
    for (const name of Object.values(this.tables)) {
      const out = await this.db.client.send(new ScanCommand({ TableName: name, ConsistentRead: true }));
      all.push(name, out.Items ?? []);
    }
    return JSON.stringify(all);
  }

  /** The five promises over the whole run, plus the scenario's notes. */
  async finish(): Promise<PromiseFigures> {
    await this.runWorkflows();
    const notes: Record<string, number | string> = { ...this.notes };
    notes.crashes = this.crashes.length;
    notes.jobsLost = [...this.sims.values()].reduce((s, sim) => s + sim.losses.length, 0);
    for (const [kind, n] of this.providerFaults.injected) notes[`provider.${kind}`] = n;
    for (const [kind, n] of this.storeFaults.injected) notes[`store.${kind}`] = n;
    for (const [kind, n] of this.agentFaults.injected) notes[`agent.${kind}`] = n;
    return this.observer.finish(this.options.name, this.options.seed, this.resources, notes);
  }

  /** Drops the world's tables (runs that make many worlds, such as the fast-check model, clean up). */
  async dispose(): Promise<void> {
    for (const name of Object.values(this.tables)) {
      await this.db.client.send(new DeleteTableCommand({ TableName: name })).catch(() => undefined);
    }
  }

  /** Launches (instances started) per queue so far, from the observer. */
  launchedIn(queue: string, clusterId: string = this.clusterId): number {
    return this.observer.launches
      .filter((l) => l.cluster === clusterId && l.queue === queue)
      .reduce((s, l) => s + l.started, 0);
  }

  private async catching<T>(actor: string, fn: () => Promise<T>): Promise<T | Error> {
    try {
      return await asActor(actor, fn);
    } catch (error) {
      const e = error instanceof Error ? error : new Error(String(error));
      this.crashes.push({ at: this.clock.now(), actor, error: `${e.name}: ${e.message}`.slice(0, 300) });
      return e;
    }
  }
}

export interface HostileProbe {
  label: string;
  method: string;
  path: string;
  body?: unknown;
  headers?: Record<string, string>;
  /** The field the refusal must name (any of them). */
  field: string | string[];
}

/** True when the answer names the probe's field (the error line or an issue's path). */
export function names(answer: ApiAnswer, probe: HostileProbe): boolean {
  const text = JSON.stringify(answer.body).toLowerCase();
  const fields = Array.isArray(probe.field) ? probe.field : [probe.field];
  return fields.some((f) => text.includes(f.toLowerCase()));
}

/** The small hostile sample of promise (e); test/integration/control/api.test.ts holds the big fuzzer. */
export function hostileSample(clusterId: string, queue: string): HostileProbe[] {
  const nodes = `/clusters/${clusterId}/nodes`;
  const config = configFor([{ name: queue, maxSize: 4 }]);
  const withType = (instanceType: string) => ({
    ...config,
    queueConfigs: config.queueConfigs.map((q) => ({
      ...q,
      expansionNodeConfigs: [{ instanceType, zone: "zone-a", chargeType: "ON_DEMAND" }],
    })),
  });
  return [
    {
      label: "queue constructor",
      method: "POST",
      path: nodes,
      body: { queue: "constructor", count: 1 },
      field: "queue",
    },
    {
      label: "queue __proto__",
      method: "POST",
      path: nodes,
      body: { queue: "__proto__", count: 1 },
      field: "queue",
    },
    {
      label: "instanceType toString",
      method: "POST",
      path: nodes,
      body: { queue, count: 1, instanceType: "toString" },
      field: "instanceType",
    },
    {
      label: "__proto__ key in a body",
      method: "POST",
      path: nodes,
      body: `{"queue":"${queue}","count":1,"__proto__":{"count":50}}`,
      field: "__proto__",
    },
    {
      label: "text/plain body",
      method: "POST",
      path: nodes,
      body: { queue, count: 1 },
      headers: { "content-type": "text/plain" },
      field: ["content-type", "application/json"],
    },
    { label: "count -1", method: "POST", path: nodes, body: { queue, count: -1 }, field: "count" },
    { label: "count 1e9", method: "POST", path: nodes, body: { queue, count: 1e9 }, field: "count" },
    {
      label: "delete node constructor",
      method: "POST",
      path: `${nodes}/delete`,
      body: { nodes: ["constructor"] },
      field: "nodes[0]",
    },
    {
      label: "reset protection of hasOwnProperty",
      method: "POST",
      path: `/clusters/${clusterId}/queues/hasOwnProperty/reset-protection`,
      field: "queue",
    },
    {
      label: "reset protection of an unknown queue",
      method: "POST",
      path: `/clusters/${clusterId}/queues/no-such-queue/reset-protection`,
      field: "queue",
    },
    {
      label: "instance type constructor in the configuration",
      method: "PUT",
      path: `/clusters/${clusterId}/autoscaling`,
      body: withType("constructor"),
      field: "instanceType",
    },
  ];
}
