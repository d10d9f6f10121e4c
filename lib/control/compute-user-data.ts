import {
  type BootstrapOptions,
  type IDENTITY_SOURCES,
  renderBootstrapScript,
} from "../../scheduler-plugins/slurm/bootstrap.js";
import { parseConfig } from "../core/config.js";
import type { Launch } from "../core/model.js";
import { ownValue } from "../core/own.js";
import { ValidationError } from "../core/validation.js";
import { MAX_USER_DATA_BASE64_BYTES } from "../ports/cloud-provider.js";
import type { AttachedMaster, ClusterRecord } from "../ports/state-store.js";
import { nodeUsers } from "./users.js";

const IDENTITY: Partial<Record<ClusterRecord["placement"]["cloud"], (typeof IDENTITY_SOURCES)[number]>> = {
  aws: "aws-imds",
  tencent: "tencent-metadata",
  alibaba: "alibaba-metadata",
};

export type BootCloud = "aws" | "tencent" | "alibaba";

/** Where a compute node finds its master and its munge key: what differs between clouds and the local mode. */
export interface ComputeBootTarget {
  /** The cloud whose metadata service names the node and whose secret store holds the munge key. */
  cloud: BootCloud;
  /** slurmctld's IPv4 address as the nodes reach it. */
  controllerAddress: string;
  /** @default 6817 */
  controllerPort?: number;
  /** The munge key secret: its ARN or name (AWS), its name (Tencent SSM, Alibaba KMS). */
  mungeSecret: string;
  region: string;
  /** Storage and init scripts of the node (bootstrap.ts options). */
  storage?: BootstrapOptions["storage"];
  initScripts?: BootstrapOptions["initScripts"];
}

/**
 * The boot script of a launch's compute nodes (scheduler-plugins/slurm/bootstrap.ts): each node names
 * itself after its instance id and reads its type and zone from the metadata service, so one script
 * serves every instance and every candidate of the launch. slurmd gets the launch shape's CPUs and
 * the memory the planner assumed usable (spec ÷ the queue's scaleUpMemRatio), so jobs matched to the
 * shape fit on the node.
 *
 * Undefined (the instance boots without NowScale's bootstrap, and the reconciler's boot timeout applies)
 * until the cluster has what the script needs: the master's private IPv4 address (its agent endpoint)
 * and the munge key secret (Secrets Manager on AWS, SSM on Tencent, KMS on Alibaba).
 */
export function computeUserData(cluster: ClusterRecord, launch: Launch): string | undefined {
  const cloud = cluster.placement.cloud;
  if (cloud !== "aws" && cloud !== "tencent" && cloud !== "alibaba") return undefined;
  const attached = cluster.attachment;
  if (attached !== undefined) {
    // An attached master: the nodes join the user's slurmctld configless, with the user's munge key.
    return renderComputeUserData(
      cluster,
      launch,
      attachedBootTarget(cloud, cluster.placement.region, attached),
    );
  }
  if (cluster.agent.kind !== "http") return undefined;
  const controllerAddress = new URL(cluster.agent.url).hostname;
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(controllerAddress)) return undefined;
  const munge = cluster.resources.find((r) => r.type === "secret:munge-key");
  if (munge === undefined) return undefined;
  return renderComputeUserData(cluster, launch, {
    cloud,
    controllerAddress,
    mungeSecret: munge.id,
    region: cluster.placement.region,
  });
}

/** Where the compute nodes of an attached master boot to: its slurmctld and its munge key's secret. */
export function attachedBootTarget(
  cloud: BootCloud,
  region: string,
  attached: AttachedMaster,
): ComputeBootTarget {
  return {
    cloud,
    controllerAddress: attached.controllerAddress,
    controllerPort: attached.controllerPort,
    mungeSecret: attached.mungeKeySecret,
    region,
  };
}

/** The boot script for a launch and a target (the local mode's master and secret, or a cloud's). */
export function renderComputeUserData(
  cluster: ClusterRecord,
  launch: Launch,
  target: ComputeBootTarget,
): string | undefined {
  const identityFrom = IDENTITY[target.cloud];
  if (identityFrom === undefined) return undefined;
  const config = parseConfig(cluster.autoscaling, "autoscaling configuration");
  const shape = ownValue(config.catalog, launch.instanceType);
  const queue = config.queueByName.get(launch.queue);
  if (shape === undefined || queue === undefined) return undefined;
  const mungeKey: BootstrapOptions["mungeKey"] =
    target.cloud === "aws"
      ? { source: "aws-secretsmanager", secretId: target.mungeSecret, region: target.region }
      : target.cloud === "tencent"
        ? { source: "tencent-ssm", secretName: target.mungeSecret, region: target.region }
        : { source: "alibaba-kms", secretName: target.mungeSecret, region: target.region };
  return renderBootstrapScript({
    clusterId: cluster.clusterId,
    identityFrom,
    queue: launch.queue,
    instanceType: launch.instanceType,
    zone: launch.zone,
    cpus: shape.vcpus,
    realMemoryMiB: Math.max(1, Math.floor(shape.memoryMiB / queue.scaleUpMemRatio)),
    gpus: shape.gpus,
    features: queue.features,
    controllerAddress: target.controllerAddress,
    ...(target.controllerPort === undefined ? {} : { controllerPort: target.controllerPort }),
    mungeKey,
    // The cluster's node setup (lib/control/storage.ts) unless the target names its own; the renderer
    // checks it again against its allow-lists, so a record changed behind the API's back renders nothing.
    storage: target.storage ?? (cluster.nodeSetup?.storage as BootstrapOptions["storage"]) ?? [],
    initScripts: target.initScripts ?? cluster.nodeSetup?.initScripts ?? [],
    // The cluster's users, names and uids only (lib/control/users.ts): the same uid as on the master.
    ...(cluster.users === undefined ? {} : { users: nodeUsers(cluster) }),
  });
}

/**
 * Stand-ins for what a cluster may not have yet (a master address, a munge secret): as long as the real
 * ones may be (a dotted quad, the longest port, an ARN-sized secret id), so a setup that fits with them
 * fits with the real ones.
 */
const STAND_IN_TARGET = {
  controllerAddress: "255.255.255.255",
  controllerPort: 65535,
} as const;

/**
 * The stand-in munge secret of each cloud, as long as its store's names may be: an ARN on AWS, a name
 * on Tencent (128 characters without '/') and Alibaba (192): an ARN is not a valid name there, and the
 * boot script's own check would refuse the size check itself.
 */
const STAND_IN_MUNGE_SECRET: Record<BootCloud, string> = {
  aws: `arn:aws:secretsmanager:ap-southeast-1:123456789012:secret:${"x".repeat(64)}`,
  tencent: "x".repeat(128),
  alibaba: "x".repeat(192),
};

/**
 * The largest compute boot script, in base64 bytes (as the providers measure it), over every queue and
 * launch entry of the cluster: what its scaler would send, or the stand-in target's when the cluster
 * has no master address or munge secret yet. Undefined when nothing renders (no queues).
 */
export function largestComputeUserData(cluster: ClusterRecord): { bytes: number; queue: string } | undefined {
  const config = parseConfig(cluster.autoscaling, "autoscaling configuration");
  const cloud = cluster.placement.cloud;
  const bootCloud: BootCloud = cloud === "tencent" || cloud === "alibaba" ? cloud : "aws";
  let largest: { bytes: number; queue: string } | undefined;
  for (const queue of config.queues) {
    for (const entry of queue.entries) {
      const launch: Launch = {
        queue: queue.queueName,
        instanceType: entry.instanceType,
        zone: entry.zone,
        count: 1,
        candidates: [],
        allOrNothing: false,
        jobs: [],
        reason: "size check",
      };
      const text =
        computeUserData(cluster, launch) ??
        renderComputeUserData(cluster, launch, {
          cloud: bootCloud,
          region: cluster.placement.region,
          ...STAND_IN_TARGET,
          mungeSecret: STAND_IN_MUNGE_SECRET[bootCloud],
        });
      if (text === undefined) continue;
      const bytes = Buffer.byteLength(Buffer.from(text, "utf8").toString("base64"));
      if (largest === undefined || bytes > largest.bytes) largest = { bytes, queue: queue.queueName };
    }
  }
  return largest;
}

/**
 * Refuses a node setup (storage, init scripts, users) whose compute boot script would not fit the
 * clouds' user-data limit (validate-request.ts, the limit the providers enforce at launch): a
 * ValidationError naming `field`, with the size, the limit and `advice`. `cluster` is the record as it
 * would be after the change; the caller writes nothing when this throws.
 */
export function checkComputeUserDataFits(cluster: ClusterRecord, field: string, advice: string): void {
  const largest = largestComputeUserData(cluster);
  if (largest === undefined || largest.bytes <= MAX_USER_DATA_BASE64_BYTES) return;
  throw new ValidationError("node setup", [
    {
      path: field,
      message: `the compute boot script (queue ${largest.queue}) would be ${largest.bytes} bytes in base64, over the cloud's ${MAX_USER_DATA_BASE64_BYTES}-byte user-data limit, and every launch would fail: ${advice}`,
    },
  ]);
}
