import { awsCatalog } from "../lib/core/catalogs/aws.js";
import { type ClusterState, type Job, parseConfig, type ResolvedConfig } from "../lib/core/index.js";

/** Deterministic xorshift PRNG: benchmarks must build the same workload every run. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

const TYPES = Object.keys(awsCatalog).filter((t) => (awsCatalog[t]?.gpus ?? 0) === 0);
const ZONES = ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d"];

/** `queues` queues of `entries` entries each (types × zones from the AWS catalog). */
export function benchConfig(policy: "thpc" | "packed", queues = 50, entries = 20): ResolvedConfig {
  const random = rng(7);
  return parseConfig({
    policy,
    catalogs: ["aws"],
    queueConfigs: Array.from({ length: queues }, (_, q) => {
      const seen = new Set<string>();
      const list: { instanceType: string; zone: string }[] = [];
      while (list.length < entries) {
        const instanceType = TYPES[Math.floor(random() * TYPES.length)] as string;
        const zone = ZONES[Math.floor(random() * ZONES.length)] as string;
        if (seen.has(`${instanceType}@${zone}`)) continue;
        seen.add(`${instanceType}@${zone}`);
        list.push({ instanceType, zone });
      }
      return {
        queueName: `q${q}`,
        maxSize: 10_000,
        scaleOutRatio: 50,
        scaleOutNodeThreshold: 10,
        expansionNodeConfigs: list,
      };
    }),
  });
}

/** `pending` pending jobs spread over the queues, each its own entry (no aggregation), plus some nodes. */
export function benchState(pending: number, queues = 50): ClusterState {
  const random = rng(11);
  const t0 = Date.parse("2026-01-01T00:00:00Z");
  const jobs: Job[] = [];
  for (let i = 0; i < pending; i++) {
    const cpus = [1, 2, 4, 8, 16][Math.floor(random() * 5)] as number;
    const request: Job["request"] =
      random() < 0.7
        ? {
            kind: "nodes",
            nodes: random() < 0.9 ? 1 : 2 + Math.floor(random() * 6),
            cpusPerNode: cpus,
            memPerNodeMiB: cpus * 1024 * (1 + Math.floor(random() * 4)),
            gpusPerNode: 0,
          }
        : {
            kind: "tasks",
            tasks: 1 + Math.floor(random() * 64),
            cpusPerTask: 1,
            memPerTaskMiB: 1024,
            gpusPerTask: 0,
          };
    jobs.push({
      id: String(i),
      queue: `q${i % queues}`,
      state: "PENDING",
      submittedAt: t0 + Math.floor(random() * 3_600_000),
      request,
      count: 1,
    });
  }
  const nodes: ClusterState["nodes"] = Array.from({ length: queues * 20 }, (_, i) => ({
    name: `n${i}`,
    queue: `q${i % queues}`,
    instanceType: "c5.xlarge",
    zone: "us-east-1a",
    state: (["IDLE", "ALLOCATED", "LAUNCHING", "MIXED"] as const)[i % 4] ?? "IDLE",
    idleSince: t0,
  }));
  return { jobs, nodes };
}
