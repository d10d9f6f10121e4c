import type { ConfigInput } from "../../../lib/core/config.js";
import { FakeClock } from "../../../lib/providers/fake/fake-clock.js";
import { FakeClusterResources } from "../../../lib/providers/fake/fake-cluster-resources.js";
import { FakeProvider } from "../../../lib/providers/fake/fake-provider.js";
import type { StateMachineDefinition } from "../../../lib/workflow/asl.js";
import { type LocalRunResult, runWorkflowLocally } from "../../../lib/workflow/local-runner.js";
import type { MasterAgent } from "../../../lib/workflow/tasks/agent.js";
import { runLifecycleTask } from "../../../lib/workflow/tasks/dispatch.js";
import type { CreateClusterRequestInput } from "../../../lib/workflow/tasks/request.js";
import {
  type LifecycleStore,
  type MasterRecord,
  MemoryLifecycleStore,
} from "../../../lib/workflow/tasks/store.js";

/** A master agent that turns healthy after `healthyAfterPolls` polls; each poll moves the clock on. */
export class FakeAgent implements MasterAgent {
  polls = 0;
  drained: string[] = [];
  healthyAfterPolls = 2;
  reachable = true;
  failNextPoll: Error | undefined;

  constructor(private readonly clock: FakeClock) {}

  async isHealthy(_clusterId: string, _master: MasterRecord): Promise<boolean> {
    this.polls++;
    this.clock.advance(20_000);
    const failure = this.failNextPoll;
    if (failure !== undefined) {
      this.failNextPoll = undefined;
      throw failure;
    }
    return this.reachable && this.polls >= this.healthyAfterPolls;
  }

  async drainAll(clusterId: string, _master: MasterRecord, _reason: string): Promise<boolean> {
    if (!this.reachable) return false;
    this.drained.push(clusterId);
    return true;
  }
}

export const CLUSTER_ID = "hpc-1";

/** The autoscaling configuration the cluster record holds (the workflow's request carries none). */
export const AUTOSCALING: ConfigInput = {
  catalogs: ["aws"],
  queueConfigs: [
    {
      queueName: "compute",
      expansionNodeConfigs: [{ zone: "us-east-1a", instanceType: "c5.xlarge", chargeType: "ON_DEMAND" }],
    },
  ],
};

export function createRequest(overrides: Partial<CreateClusterRequestInput> = {}): CreateClusterRequestInput {
  return {
    region: "us-east-1",
    network: { cidr: "10.42.0.0/16", zones: ["us-east-1a", "us-east-1b"] },
    master: { instanceType: "c5.xlarge", zone: "us-east-1a", imageId: "ami-0123456789abcdef0" },
    agentHealthTimeoutSeconds: 120,
    ...overrides,
  };
}

/** The real lifecycle tasks over fakes, and the real definitions run by aws-local-stepfunctions. */
export class WorkflowBed {
  readonly clock = new FakeClock();
  readonly store = new MemoryLifecycleStore();
  readonly resources = new FakeClusterResources();
  readonly provider = new FakeProvider({ clock: this.clock });
  readonly agent = new FakeAgent(this.clock);
  /** The security groups each provider was built with. */
  readonly providerSecurityGroups: (string[] | undefined)[] = [];
  readonly taskInputs: unknown[] = [];
  /** The stack's region the tasks check requests against (undefined: no check). */
  region: string | undefined;

  readonly lifecycleStore: LifecycleStore;

  /** `lifecycleStore` replaces the in-memory store (e.g. the DynamoDB one on dynalite). */
  constructor(
    readonly clusterId = CLUSTER_ID,
    lifecycleStore?: LifecycleStore,
  ) {
    this.store.add(clusterId);
    this.lifecycleStore = lifecycleStore ?? this.store;
  }

  readonly handler = (input: unknown): Promise<unknown> => {
    this.taskInputs.push(structuredClone(input));
    return runLifecycleTask(
      {
        store: this.lifecycleStore,
        resources: this.resources,
        provider: (options) => {
          this.providerSecurityGroups.push(options?.securityGroupIds);
          return this.provider;
        },
        agent: this.agent,
        clock: this.clock,
        ...(this.region === undefined ? {} : { region: this.region }),
      },
      input,
    );
  };

  run(definition: StateMachineDefinition, input: Record<string, unknown>): Promise<LocalRunResult> {
    return runWorkflowLocally(definition, input, this.handler);
  }

  record() {
    const record = this.store.clusters.get(this.clusterId);
    if (record === undefined) throw new Error("no record");
    return record;
  }

  liveInstances() {
    return this.provider.fakeCloud.live().filter((i) => i.tags["nowscale:cluster"] === this.clusterId);
  }

  /** Everything that still exists for the cluster: resources, instances and ledger entries. */
  leftovers() {
    return {
      resources: this.resources.live(this.clusterId),
      instances: this.liveInstances().map((i) => i.id),
      ledger: [...this.record().ledger.keys()],
    };
  }
}
