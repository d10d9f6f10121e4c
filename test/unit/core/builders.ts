import {
  type ConfigInput,
  parseConfig,
  parseState,
  type ResolvedConfig,
  type StateInput,
} from "../../../lib/core/index.js";

/** Test builders: small valid inputs that each test bends to its case. */

export const T0 = Date.parse("2026-01-01T00:00:00Z");
export const iso = (ms: number) => new Date(ms).toISOString();
export const minutes = (m: number) => m * 60_000;

type QueueInput = ConfigInput["queueConfigs"][number];

export function queue(overrides: Partial<QueueInput> = {}): QueueInput {
  return {
    queueName: "compute",
    maxSize: 100,
    expansionNodeConfigs: [{ zone: "z1", instanceType: "c4m8" }],
    scaleUpMemRatio: 1,
    ...overrides,
  };
}

export const SHAPES = {
  c2m4: { vcpus: 2, memoryMiB: 4096, gpus: 0, pricePerHour: 0.1 },
  c4m8: { vcpus: 4, memoryMiB: 8192, gpus: 0, pricePerHour: 0.2 },
  c4m16: { vcpus: 4, memoryMiB: 16384, gpus: 0, pricePerHour: 0.25 },
  c8m8: { vcpus: 8, memoryMiB: 8192, gpus: 0, pricePerHour: 0.3 },
  c8m16: { vcpus: 8, memoryMiB: 16384, gpus: 0, pricePerHour: 0.4 },
  c16m32: { vcpus: 16, memoryMiB: 32768, gpus: 0, pricePerHour: 0.8 },
  g4m16: { vcpus: 4, memoryMiB: 16384, gpus: 1, pricePerHour: 0.5 },
};

export function config(
  overrides: Partial<ConfigInput> = {},
  queues: QueueInput[] = [queue()],
): ResolvedConfig {
  return parseConfig({ expansionBusyTime: 0, instanceTypes: SHAPES, queueConfigs: queues, ...overrides });
}

export type JobIn = NonNullable<StateInput["jobs"]>[number];
export type NodeIn = NonNullable<StateInput["nodes"]>[number];

let nextJob = 1;
export function job(overrides: Partial<JobIn> = {}): JobIn {
  return {
    id: String(nextJob++),
    queue: "compute",
    state: "PENDING",
    submittedAt: iso(T0),
    nodes: 1,
    cpusPerNode: 4,
    memPerNodeMiB: 4096,
    gpusPerNode: 0,
    ...overrides,
  };
}

export function node(name: string, overrides: Partial<NodeIn> = {}): NodeIn {
  return {
    name,
    queue: "compute",
    instanceType: "c4m8",
    zone: "z1",
    state: "IDLE",
    idleSince: iso(T0),
    ...overrides,
  };
}

export function state(jobs: JobIn[] = [], nodes: NodeIn[] = []) {
  return parseState({ jobs, nodes });
}

/** A state with any of its fields, unavailable offerings included. */
export function parseStateWith(input: StateInput) {
  return parseState(input);
}
