import { FakeAgent } from "../../lib/agent-channels/fake.js";
import { RecordingMetrics } from "../../lib/control/metrics.js";
import type { ScaleCycleDeps } from "../../lib/control/scale-cycle.js";
import type { ConfigInput } from "../../lib/core/config.js";
import type { ClusterRecord } from "../../lib/ports/state-store.js";
import { FakeClock, FakeProvider } from "../../lib/providers/fake/index.js";
import type { DynamoStateStore } from "../../lib/state/dynamo-store.js";
import { freshStore, type TestDynamo } from "./dynalite.js";

export const T0 = Date.UTC(2026, 0, 1);

export const CONFIG: ConfigInput = {
  catalogs: ["aws"],
  expansionBusyTime: 0,
  shrinkIdleTime: 300,
  queueConfigs: [
    {
      queueName: "compute",
      maxSize: 20,
      expansionNodeConfigs: [{ zone: "zone-a", instanceType: "c5.xlarge" }],
    },
  ],
};

/** A RUNNING cluster on fresh tables, a fake cloud and a fake agent sharing one fake clock. */
export interface ControlBed {
  store: DynamoStateStore;
  clock: FakeClock;
  provider: FakeProvider;
  agent: FakeAgent;
  metrics: RecordingMetrics;
  cluster: ClusterRecord;
  deps(owner: string): ScaleCycleDeps;
}

export async function controlBed(
  db: TestDynamo,
  clusterId = "demo",
  config: ConfigInput = CONFIG,
): Promise<ControlBed> {
  const { store } = await freshStore(db);
  const clock = new FakeClock(T0);
  const provider = new FakeProvider({ clock });
  const agent = new FakeAgent(clock);
  const metrics = new RecordingMetrics();
  const { cluster: creating } = await store.createCluster({
    clusterId,
    name: clusterId,
    placement: { cloud: "fake", region: "local", imageId: "img-compute" },
    autoscaling: config,
    now: T0,
  });
  const cluster = await store.updateCluster(clusterId, creating.version, { status: "RUNNING", now: T0 });
  return {
    store,
    clock,
    provider,
    agent,
    metrics,
    cluster,
    deps: (owner) => ({ store, clock, provider, agent, metrics, owner }),
  };
}

/**
 * Slurm runs job `jobId` on the node (joined: in the fake agent's report): all its CPUs and a RUNNING group
 * naming it; a node NowScale had drained becomes DRAINING, as Slurm shows a drained node still running a
 * job. No pending group is left: the job is the one that was pending.
 */
export function runJobOn(bed: ControlBed, node: string, jobId: string): void {
  const n = bed.agent.nodes.find((x) => x.name === node);
  if (n === undefined) throw new Error(`${node} has not joined`);
  n.cpusAllocated = n.cpus;
  n.state = n.reason === undefined ? "ALLOCATED" : "DRAINING";
  delete n.idleSince;
  bed.agent.jobs = bed.agent.jobs.filter((g) => g.state !== "PENDING");
  bed.agent.jobs.push({
    queue: n.queue,
    state: "RUNNING",
    nodes: 1,
    cpusPerNode: n.cpus,
    memPerNodeMiB: 0,
    gpusPerNode: 0,
    count: 1,
    oldestSubmittedAt: new Date(bed.clock.now()).toISOString(),
    jobIds: [jobId],
    nodeNames: [node],
  });
}
