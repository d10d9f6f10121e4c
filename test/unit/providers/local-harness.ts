import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CloudInstance } from "../../../lib/ports/cloud-provider.js";
import { type CloudErrorKind, cloudError } from "../../../lib/ports/errors.js";
import { FakeClock, type FaultKind } from "../../../lib/providers/fake/index.js";
import { LocalApi, type NamespaceNodeSpec, type NamespaceNodes } from "../../../lib/providers/local/index.js";
import type { CloudApi, RunInstancesInput } from "../../../lib/providers/shared/cloud-api.js";
import { ManagedProvider } from "../../../lib/providers/shared/managed-provider.js";
import type { ContractHarness } from "./provider-contract.js";

const KINDS: Record<FaultKind, CloudErrorKind> = {
  capacity: "InsufficientCapacity",
  quota: "QuotaExceeded",
  throttle: "Throttled",
  server: "ServiceUnavailable",
  invalid: "InvalidRequest",
  unauthorized: "Unauthorized",
  notFound: "NotFound",
  tokenMismatch: "InvalidRequest",
};

/** Namespace nodes in memory; a per-offering cap makes node starts fail mid-launch (a shortfall). */
export class MemoryNamespaceNodes implements NamespaceNodes {
  readonly nodes = new Map<string, NamespaceNodeSpec>();
  readonly perCallCap = new Map<string, number>();
  private startedThisCall = new Map<string, number>();

  beginCall(): void {
    this.startedThisCall = new Map();
  }

  async create(spec: NamespaceNodeSpec): Promise<void> {
    const key = offeringOf(spec);
    const started = this.startedThisCall.get(key) ?? 0;
    const cap = this.perCallCap.get(key);
    if (cap !== undefined && started >= cap) throw new Error(`slurmd did not start on ${spec.name}`);
    this.startedThisCall.set(key, started + 1);
    this.nodes.set(spec.name, spec);
  }

  async destroy(name: string): Promise<void> {
    this.nodes.delete(name);
  }

  async list(): Promise<string[]> {
    return [...this.nodes.keys()].sort();
  }

  async consoleOutput(name: string): Promise<string | undefined> {
    return this.nodes.has(name) ? "booted in memory" : undefined;
  }

  count(instanceType: string, zone: string): number {
    return [...this.nodes.values()].filter((s) => offeringOf(s) === `${instanceType}\n${zone}`).length;
  }
}

function offeringOf(spec: NamespaceNodeSpec): string {
  return `${spec.instanceType}\n${spec.zone}`;
}

/** The local adapter with faults injected at its API boundary (a local machine does not throttle by itself). */
class InjectingApi implements CloudApi {
  readonly cloud = "local";
  readonly maxIdsPerCall = 100;
  readonly maxNameLength = 128;
  readonly inputs: RunInstancesInput[] = [];
  readonly faults: FaultKind[] = [];
  zoneCalls = 0;

  constructor(
    private readonly inner: LocalApi,
    private readonly nodes: MemoryNamespaceNodes,
  ) {}

  instanceTypes() {
    return this.inner.instanceTypes();
  }

  zones() {
    this.zoneCalls++;
    return this.inner.zones();
  }

  async runInstances(input: RunInstancesInput): Promise<CloudInstance[]> {
    this.inputs.push(input);
    const fault = this.faults.shift();
    if (fault !== undefined)
      throw cloudError(KINDS[fault], `injected ${fault}`, { code: fault, message: "injected" });
    this.nodes.beginCall();
    return this.inner.runInstances(input);
  }

  terminateInstances(ids: readonly string[]) {
    return this.inner.terminateInstances(ids);
  }

  describeInstances(ids: readonly string[]) {
    return this.inner.describeInstances(ids);
  }

  listInstancesByTag(key: string, value: string) {
    return this.inner.listInstancesByTag(key, value);
  }
}

export async function localHarness(): Promise<ContractHarness> {
  const clock = new FakeClock();
  const stateDir = await mkdtemp(join(tmpdir(), "nowscale-local-contract-"));
  const nodes = new MemoryNamespaceNodes();
  const local = new LocalApi({ nodes, stateDir, clock });
  const api = new InjectingApi(local, nodes);
  return {
    provider: new ManagedProvider(api, { clock, random: () => 0.5 }),
    cloud: {
      setCapacity: (instanceType, zone, slots) =>
        local.setCapacity({ instanceType, zone, maxNodes: nodes.count(instanceType, zone) + slots }),
      setUnderDelivery: (instanceType, zone, count) =>
        nodes.perCallCap.set(`${instanceType}\n${zone}`, count),
      failNext: (_operation, kind, times = 1) => {
        for (let i = 0; i < times; i++) api.faults.push(kind);
      },
      live: async () => local.describeInstances(await nodes.list()),
      seed: (instance) =>
        local.runInstances({
          candidate: { instanceType: instance.instanceType, zone: instance.zone, chargeType: "ON_DEMAND" },
          imageId: "local",
          minCount: 1,
          maxCount: 1,
          clientToken: "seeded",
          tags: instance.tags,
          namePrefix: "seeded",
        }),
    },
    launchInputs: () => api.inputs.map((i) => ({ ...i, name: i.namePrefix })),
    clock,
    candidates: [
      { instanceType: "local.c2m2", zone: "local-a", chargeType: "ON_DEMAND" },
      { instanceType: "local.c2m4", zone: "local-b", chargeType: "ON_DEMAND" },
    ],
    imageId: "local",
    missingId: "ln-deadbeef00",
    wireLaunchCalls: () => api.inputs.length,
    zones: ["local-a", "local-b"],
    wireZoneCalls: () => api.zoneCalls,
    close: () => rm(stateDir, { recursive: true, force: true }),
  };
}
