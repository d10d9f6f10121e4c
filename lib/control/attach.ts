import { randomBytes } from "node:crypto";
import {
  type AttachFinding,
  checkAttachSetup,
  controllerAddress,
} from "../../scheduler-plugins/slurm/attach-checks.js";
import type { ValidationIssue } from "../core/validation.js";
import {
  type AgentChannel,
  AgentUnreachableError,
  SlurmctldUnreachableError,
} from "../ports/agent-channel.js";
import type { AttachNetworkCheck, AttachNetworkFindings } from "../ports/attach-network.js";
import type { Clock } from "../ports/clock.js";
import { DEFAULT_IMAGE } from "../ports/cloud-provider.js";
import type { SlurmSetup } from "../ports/slurm-setup.js";
import { type AgentEndpoint, type ClusterRecord, originOf, type StateStore } from "../ports/state-store.js";
import type { AttachClusterBody } from "./api/schemas.js";
import { StateRefusedError } from "./errors.js";
import { appendControlEvent as event } from "./events.js";

/**
 * Attaching an existing Slurm master (docs/attach.md): a synchronous check-then-record, no workflow.
 * Attach makes nothing in any cloud (no network, secret or instance), so there is nothing to compensate,
 * and its slow steps are round trips to the agent: over HTTP a health check and the setup (10 s timeout
 * each, milliseconds when it answers), over SSM, Tencent TAT or Alibaba Cloud Assistant one command
 * (seconds; the setup's answer proves the agent runs), inside API Gateway's 29 s. Either every check passes and one
 * cluster record is written (RUNNING, `origin: "attached"`), or nothing is stored and the error names the
 * request field to fix. What is checked, in order:
 *
 * (a) the agent answers a signed request (its key is the one the control plane holds);
 * (b) Slurm ≥ 22.05, `enable_configless`, MaxNodeCount set, no node already carrying NowScale's features;
 * (c) every queue of the configuration is a partition of the master that takes nodes with `q_<queue>`
 *     (a NodeSet, or Nodes=ALL);
 * (d) what the cloud can tell of the compute subnets reaching slurmctld and slurmctld reaching them
 *     (AttachNetworkCheck; the rest is listed as the user's to ensure).
 *
 * The master is claimed (a lease named after its endpoint, held until detach), so two clusters never
 * scale one master.
 */

/** The attach request as the API's schema leaves it (lib/control/api/schemas.ts, attachClusterSchema). */
export type AttachRequest = AttachClusterBody;

export interface AttachPorts {
  /**
   * A channel to the master being attached, from the request alone (nothing is recorded yet): signed HTTP
   * with the key read from `agentKeySecret`, or the cloud's run-command channel on `instanceId` (SSM, TAT,
   * Cloud Assistant), the same channel later scale cycles make from the recorded endpoint. Throws
   * AttachRefusedError naming the field when the request cannot make one (a key cannot be read).
   */
  probe(request: AttachRequest, endpoint: AgentEndpoint): Promise<AgentChannel>;
  /** The cloud's network check (lib/ports/attach-network.ts); undefined: the network is not checked. */
  network?(request: AttachRequest): AttachNetworkCheck | undefined;
}

export interface AttachDeps {
  store: StateStore;
  clock: Clock;
  ports: AttachPorts;
  /** @default "c-" + 12 random hex digits */
  newClusterId?: () => string;
}

/** One line per check, as the API answers and the CLI prints them. */
export interface AttachCheckLine {
  check: string;
  ok: boolean;
  message: string;
}

export interface AttachOutcome {
  cluster: ClusterRecord;
  checks: AttachCheckLine[];
  /** What no check could verify and the user must ensure. */
  userMust: string[];
}

/** A check failed: nothing was stored (HTTP 422). A master already attached is a StateRefusedError (409). */
export class AttachRefusedError extends Error {
  override readonly name = "AttachRefusedError";
  constructor(
    message: string,
    readonly issues: readonly ValidationIssue[],
  ) {
    super(message);
  }
}

/** How long the claim on a master lasts: until detach releases it. */
const CLAIM_MS = 100 * 365 * 24 * 3600 * 1000;

/** The lease that says which cluster holds a master (one per master, whatever its channel's address). */
export function masterClaimKey(endpoint: AgentEndpoint): string {
  if (endpoint.kind === "ssm" || endpoint.kind === "tat" || endpoint.kind === "cloud-assistant")
    return `master#${endpoint.kind}#${endpoint.instanceId}`;
  if (endpoint.kind === "http") return `master#http#${new URL(endpoint.url).host}`;
  throw new TypeError("an attached master has an agent endpoint");
}

/** What every attached cluster's compute nodes rely on that no API can check (docs/attach.md). */
export const USER_MUST = [
  "compute nodes reach slurmctld on its port, and slurmctld reaches their slurmd on SlurmdPort (and srun's ports), across every route, firewall and network ACL between them",
  "the compute image's slurmd is within two major releases of the master's Slurm (a pre-installed image, or the distribution's packages)",
  "the munge key secret holds the master's /etc/munge/munge.key and the compute nodes' role may read it",
  "users and home directories the jobs need exist on the compute nodes (init scripts or the image)",
];

export async function attachCluster(deps: AttachDeps, request: AttachRequest): Promise<AttachOutcome> {
  const endpoint = endpointOf(request);
  const where = request.master.channel === "http" ? "master.url" : "master.instanceId";
  const checks: AttachCheckLine[] = [];

  // (a) a signed round trip (over a run-command channel, the cloud's API signs the command and the setup
  // below is its answer).
  const channel = await deps.ports.probe(request, endpoint);
  if (request.master.channel === "http") {
    try {
      const { agentVersion } = await channel.health();
      checks.push({ check: "agent", ok: true, message: `agent ${agentVersion} answered a signed request` });
    } catch (error) {
      if (!(error instanceof AgentUnreachableError || error instanceof SlurmctldUnreachableError))
        throw error;
      throw refused(where, agentProblem(request, (error as Error).message));
    }
  }

  // (b), (c): the master's Slurm, read-only.
  if (channel.slurmSetup === undefined) {
    throw refused(
      "master.channel",
      `the ${request.master.channel} channel cannot read a master's setup here`,
    );
  }
  let setup: SlurmSetup;
  try {
    setup = await channel.slurmSetup();
  } catch (error) {
    if (error instanceof SlurmctldUnreachableError)
      throw refused("master", `slurmctld did not answer the agent: ${error.message}`);
    if (error instanceof AgentUnreachableError) throw refused(where, agentProblem(request, error.message));
    throw error;
  }
  if (request.master.channel !== "http") {
    checks.push({
      check: "agent",
      ok: true,
      message: `agent ${setup.agentVersion} answered over ${CHANNEL_NAMES[request.master.channel]}`,
    });
  }
  const queues = (request.autoscaling.queueConfigs ?? []).map((q) => q.queueName);
  const slurm = checkAttachSetup(setup, queues);
  if (slurm.errors.length > 0) {
    const issues = slurm.errors.map((e) => ({ path: findingPath(e, queues), message: e.message }));
    throw new AttachRefusedError(
      `the master's Slurm is not ready: ${issues.map((i) => `${i.path}: ${i.message}`).join("; ")} (nowscale-agent install on the master prints the slurm.conf lines)`.slice(
        0,
        2000,
      ),
      issues,
    );
  }
  checks.push({
    check: "slurm",
    ok: true,
    message: `Slurm ${setup.slurmVersion}, configless, MaxNodeCount=${setup.maxNodeCount}`,
  });
  for (const join of slurm.joins) {
    checks.push({
      check: "partition",
      ok: true,
      message: `partition ${join.partition} takes nodes through ${join.by}`,
    });
  }
  for (const note of slurm.notes)
    checks.push({ check: note.check, ok: true, message: `note: ${note.message}` });
  const address = request.master.slurmctldAddress ?? controllerAddress(setup);
  if (address === undefined) {
    throw refused(
      "master.slurmctldAddress",
      `slurmctld's host ${setup.controllers[0]?.host ?? "(none)"} has no IPv4 address in SlurmctldHost: give the address compute nodes reach it on`,
    );
  }

  // (d) what the cloud can tell of the network.
  const userMust = [...USER_MUST];
  const network = deps.ports.network?.(request);
  let findings: AttachNetworkFindings | undefined;
  if (network !== undefined) {
    const subnets = computeSubnets(request);
    findings = await network.check({
      region: request.region,
      controllerAddress: address,
      controllerPort: setup.slurmctldPort,
      slurmdPort: setup.slurmdPort,
      ...(request.master.instanceId === undefined ? {} : { masterInstanceId: request.master.instanceId }),
      subnetIds: subnets.map((s) => s.id),
      subnetPaths: subnets.map((s) => s.path),
      securityGroupIds: request.network.securityGroupIds,
    });
    if (findings.errors.length > 0) {
      throw new AttachRefusedError(
        `the compute network cannot reach slurmctld: ${findings.errors.map((e) => `${e.path}: ${e.message}`).join("; ")}`.slice(
          0,
          2000,
        ),
        findings.errors,
      );
    }
    for (const v of findings.verified) checks.push({ check: "network", ok: true, message: v });
    userMust.unshift(...findings.unverified);
  } else {
    userMust.unshift(`the ${request.cloud} cloud's network is not checked by NowScale`);
  }

  // One cluster per master: the claim, then the record.
  const clusterId = (deps.newClusterId ?? defaultClusterId)();
  const now = deps.clock.now();
  const claim = await deps.store.acquireLease(masterClaimKey(endpoint), clusterId, CLAIM_MS, now);
  if (claim === undefined) {
    const holder = (await deps.store.listClusters()).find(
      (c) => originOf(c) === "attached" && c.status !== "DELETED" && sameEndpoint(c.agent, endpoint),
    );
    throw new StateRefusedError(
      `this master is already attached${holder === undefined ? "" : ` as cluster ${holder.clusterId}`}: detach it first`,
      [{ path: where, message: "already attached" }],
    );
  }
  try {
    const { cluster } = await deps.store.createCluster({
      clusterId,
      name: request.name,
      placement: {
        cloud: request.cloud,
        region: request.region,
        imageId: request.computeImageId ?? DEFAULT_IMAGE,
      },
      autoscaling: request.autoscaling,
      spec: request as unknown as Record<string, unknown>,
      origin: "attached",
      attachment: {
        channel: request.master.channel,
        controllerAddress: address,
        controllerPort: setup.slurmctldPort,
        mungeKeySecret: request.master.mungeKeySecret,
        ...(request.master.instanceId === undefined ? {} : { instanceId: request.master.instanceId }),
        subnetIds: request.network.subnetIds,
        securityGroupIds: request.network.securityGroupIds,
        ...(findings?.vpcId === undefined ? {} : { vpcId: findings.vpcId }),
        slurmVersion: setup.slurmVersion,
        attachedAt: now,
      },
      status: "RUNNING",
      agent: endpoint,
      now,
    });
    await event(
      deps.store,
      clusterId,
      deps.clock,
      "STATUS_CHANGED",
      `attached: Slurm ${setup.slurmVersion}, slurmctld ${address}:${setup.slurmctldPort}, partitions ${queues.join(", ")}`,
    );
    return { cluster, checks, userMust };
  } catch (error) {
    await deps.store.releaseLease(claim).catch(() => undefined);
    throw error;
  }
}

/** Gives the master's claim up when the cluster that holds it is detached; another cluster's claim stays. */
export async function releaseMasterClaim(
  store: StateStore,
  cluster: ClusterRecord,
  now: number,
): Promise<void> {
  if (originOf(cluster) !== "attached" || cluster.agent.kind === "none") return;
  // Taking it first proves it is this cluster's (or free); another holder's answers undefined and stays.
  const lease = await store.acquireLease(masterClaimKey(cluster.agent), cluster.clusterId, CLAIM_MS, now);
  if (lease !== undefined) await store.releaseLease(lease);
}

/** The run-command channels as their clouds name them (messages). */
const CHANNEL_NAMES = {
  ssm: "SSM Run Command",
  tat: "Tencent TAT",
  "cloud-assistant": "Alibaba Cloud Assistant",
} as const;

function endpointOf(request: AttachRequest): AgentEndpoint {
  const channel = request.master.channel;
  if (channel !== "http") {
    // The schema checked the id against the channel's allow-list (lib/control/api/schemas.ts).
    if (request.master.instanceId === undefined)
      throw refused("master.instanceId", `the ${channel} channel needs the master's instance id`);
    return { kind: channel, instanceId: request.master.instanceId };
  }
  if (request.master.url === undefined) throw refused("master.url", "the http channel needs the agent's URL");
  if (request.master.agentKeySecret === undefined)
    throw refused("master.agentKeySecret", "the http channel needs the secret holding the agent's key");
  return { kind: "http", url: request.master.url, keySecretArn: request.master.agentKeySecret };
}

function sameEndpoint(a: AgentEndpoint, b: AgentEndpoint): boolean {
  if (a.kind === "none" || b.kind === "none") return false;
  return masterClaimKey(a) === masterClaimKey(b);
}

function agentProblem(request: AttachRequest, detail: string): string {
  const id = request.master.instanceId;
  const hints = {
    http: `check that nowscale-agent runs on the master (nowscale-agent install), that ${request.master.url} is reachable from the control plane, and that ${request.master.agentKeySecret} holds the master's /etc/nowscale/agent.key (401: it does not)`,
    ssm: `check that ${id} is online in SSM (aws ssm describe-instance-information), carries the tag nowscale:attach=true, and runs nowscale-agent from /opt/nowscale`,
    tat: `check that ${id} is a running CVM instance in ${request.region} whose TAT agent is online (tccli tat DescribeAutomationAgentStatus --InstanceIds '["${id}"]'), that the stack's Tencent key may tat:RunCommand on it, and that nowscale-agent is installed in /opt/nowscale`,
    "cloud-assistant": `check that ${id} is a running ECS instance in ${request.region} whose Cloud Assistant agent is online (aliyun ecs DescribeCloudAssistantStatus --RegionId ${request.region} --InstanceId.1 ${id}), that the stack's Alibaba key may ecs:RunCommand on it, and that nowscale-agent is installed in /opt/nowscale`,
  } as const;
  const hint = hints[request.master.channel];
  return `the agent did not answer a signed request (${detail.slice(0, 300)}): ${hint}`;
}

/**
 * The subnets compute nodes launch into: `network.subnetIds`, and on Tencent and Alibaba each queue
 * entry's own `subnetId` (VSwitch), where their launches go (AWS places nodes by zone in the former).
 */
function computeSubnets(request: AttachRequest): { id: string; path: string }[] {
  const out = request.network.subnetIds.map((id, i) => ({ id, path: `network.subnetIds[${i}]` }));
  if (request.cloud !== "tencent" && request.cloud !== "alibaba") return out;
  const seen = new Set(request.network.subnetIds);
  (request.autoscaling.queueConfigs ?? []).forEach((q, i) => {
    q.expansionNodeConfigs.forEach((e, j) => {
      if (e.subnetId === undefined || seen.has(e.subnetId)) return;
      seen.add(e.subnetId);
      out.push({
        id: e.subnetId,
        path: `autoscaling.queueConfigs[${i}].expansionNodeConfigs[${j}].subnetId`,
      });
    });
  });
  return out;
}

/** Partition findings name the queue in the configuration; the rest name the master. */
function findingPath(finding: AttachFinding, queues: readonly string[]): string {
  if (finding.partition === undefined) return "master";
  const i = queues.indexOf(finding.partition);
  return i < 0 ? "autoscaling.queueConfigs" : `autoscaling.queueConfigs[${i}].queueName`;
}

function refused(path: string, message: string): AttachRefusedError {
  return new AttachRefusedError(`${path}: ${message}`.slice(0, 2000), [
    { path, message: message.slice(0, 1000) },
  ]);
}

function defaultClusterId(): string {
  return `c-${randomBytes(6).toString("hex")}`;
}
