import { type IDENTITY_SOURCES, renderBootstrapScript } from "../../scheduler-plugins/slurm/bootstrap.js";
import { parseConfig } from "../core/config.js";
import type { Launch } from "../core/model.js";
import { ownValue } from "../core/own.js";
import type { ClusterRecord } from "../ports/state-store.js";

const IDENTITY: Partial<Record<ClusterRecord["placement"]["cloud"], (typeof IDENTITY_SOURCES)[number]>> = {
  aws: "aws-imds",
  tencent: "tencent-metadata",
  alibaba: "alibaba-metadata",
};

/**
 * The boot script of a launch's compute nodes (scheduler-plugins/slurm/bootstrap.ts): each node names
 * itself after its instance id and reads its type and zone from the metadata service, so one script
 * serves every instance and every candidate of the launch. slurmd gets the launch shape's CPUs and
 * the memory the planner assumed usable (spec ÷ the queue's scaleUpMemRatio), so jobs matched to the
 * shape fit on the node.
 *
 * Undefined (the instance boots without NowScale's bootstrap, and the reconciler's boot timeout applies)
 * until the cluster has what the script needs: the master's private IPv4 address (its agent endpoint)
 * and the munge key secret. The munge key is read with the AWS CLI from Secrets Manager, so only AWS
 * clusters get a script for now.
 */
export function computeUserData(cluster: ClusterRecord, launch: Launch): string | undefined {
  const identityFrom = IDENTITY[cluster.placement.cloud];
  if (identityFrom === undefined || cluster.placement.cloud !== "aws") return undefined;
  if (cluster.agent.kind !== "http") return undefined;
  const controllerAddress = new URL(cluster.agent.url).hostname;
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(controllerAddress)) return undefined;
  const munge = cluster.resources.find((r) => r.type === "secret:munge-key");
  if (munge === undefined) return undefined;
  const config = parseConfig(cluster.autoscaling, "autoscaling configuration");
  const shape = ownValue(config.catalog, launch.instanceType);
  const queue = config.queueByName.get(launch.queue);
  if (shape === undefined || queue === undefined) return undefined;
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
    controllerAddress,
    mungeKey: { source: "aws-secretsmanager", secretId: munge.id, region: cluster.placement.region },
  });
}
