import type { AttachNetworkFindings, AttachNetworkInput, NetworkFinding } from "../ports/attach-network.js";
import { cidrContains } from "./aws-ec2/attach-network.js";

/**
 * The attach network check of the clouds whose masters are reached through a run-command channel
 * (Tencent TAT, Alibaba Cloud Assistant), once their adapters have read what the cloud's API shows
 * (lib/providers/tencent-cvm/attach-network.ts, lib/providers/alibaba-ecs/attach-network.ts). Pure: the
 * same verdicts for both clouds, from what each adapter mapped into these shapes.
 */

/** The master as the cloud describes it. */
export interface SeenMaster {
  instanceId: string;
  vpcId: string;
  privateIps: string[];
  securityGroupIds: string[];
}

/** A compute subnet (VSwitch) as the cloud describes it; undefined where the cloud does not know the id. */
export interface SeenSubnet {
  id: string;
  vpcId: string;
  cidr: string;
}

/** One inbound rule of one of the master's security groups, in the cloud's evaluation order. */
export interface SeenRule {
  /** "tcp", "all", or another protocol (which never admits slurmctld's TCP port). */
  protocol: string;
  fromPort: number;
  toPort: number;
  accept: boolean;
  /** Sources: an IPv4 CIDR, a security group, or something not evaluated here (a template, a prefix list). */
  cidr?: string;
  groupId?: string;
  opaque?: boolean;
}

export interface SeenNetwork {
  /** "Tencent" or "Alibaba" (messages). */
  cloud: string;
  /** The master, when the request names it and the cloud has it; undefined: not found (an error). */
  master?: SeenMaster;
  /** Per `input.subnetIds`, in order. */
  subnets: (SeenSubnet | undefined)[];
  /** Per `input.securityGroupIds`, in order: does the group exist. */
  groupsFound: boolean[];
  /** The master's groups' inbound rules, sorted as the cloud evaluates them (first match decides). */
  masterRules: SeenRule[];
  /** Groups whose members admit each other whatever the rules (Alibaba's InnerAccessPolicy Accept). */
  openWithin?: ReadonlySet<string>;
  /** How the user adds the missing rule, in the cloud's words. */
  ruleHint: string;
}

/** What the cloud's API cannot tell, on both clouds. */
export const RUN_COMMAND_UNVERIFIED = [
  "the compute security groups let slurmctld reach each node's SlurmdPort and srun's ports, and let the nodes out to slurmctld's port (the rules out of and into the compute groups are not read)",
  "network ACLs of the master's and the compute subnets, and firewalls on the hosts, let slurmctld's port, SlurmdPort and srun's ports through",
];

/**
 * The verdicts, in the order a user would fix them: the subnets and groups exist; the master is found
 * and holds slurmctld's address; the same VPC (else the route between VPCs is the user's); one of the
 * master's groups admits TCP `controllerPort` from every compute subnet (by a CIDR holding it, or from a
 * compute security group).
 */
export function judgeAttachNetwork(input: AttachNetworkInput, seen: SeenNetwork): AttachNetworkFindings {
  const errors: NetworkFinding[] = [];
  const verified: string[] = [];
  const unverified = [...RUN_COMMAND_UNVERIFIED];
  const subnetPath = (i: number) => input.subnetPaths?.[i] ?? `network.subnetIds[${i}]`;
  seen.subnets.forEach((s, i) => {
    if (s === undefined)
      errors.push({
        path: subnetPath(i),
        message: `no subnet ${input.subnetIds[i]} in ${input.region}: name a ${seen.cloud} subnet (VSwitch) of the compute VPC`,
      });
  });
  seen.groupsFound.forEach((found, i) => {
    if (!found)
      errors.push({
        path: `network.securityGroupIds[${i}]`,
        message: `no security group ${input.securityGroupIds[i]} in ${input.region}`,
      });
  });
  const subnets = seen.subnets.filter((s): s is SeenSubnet => s !== undefined);
  const vpcs = new Set(subnets.map((s) => s.vpcId));
  const [only] = vpcs;
  const vpcId: { vpcId?: string } =
    vpcs.size === 1 && only !== undefined && only !== "" ? { vpcId: only } : {};
  if (vpcs.size > 1)
    errors.push({
      path: "network.subnetIds",
      message: `the compute subnets are in several VPCs (${[...vpcs].join(", ")}): a cluster's computes launch into one VPC`,
    });
  if (subnets.length > 0)
    verified.push(`the compute subnets exist: ${subnets.map((s) => `${s.id} (${s.cidr})`).join(", ")}`);

  const master = seen.master;
  if (input.masterInstanceId === undefined) {
    unverified.push(
      `the master's VPC and security groups (the request names no ${seen.cloud} instance: an http master is not looked up)`,
    );
    return { errors, verified, unverified, ...vpcId };
  }
  if (master === undefined) {
    errors.push({
      path: "master.instanceId",
      message: `no ${seen.cloud} instance ${input.masterInstanceId} in ${input.region}`,
    });
    return { errors, verified, unverified, ...vpcId };
  }
  if (!master.privateIps.includes(input.controllerAddress)) {
    errors.push({
      path: "master.slurmctldAddress",
      message: `${input.controllerAddress} is not an address of the master ${master.instanceId} (it has ${master.privateIps.join(", ") || "none"}): give the private address slurmctld listens on`,
    });
  } else verified.push(`slurmctld's address ${input.controllerAddress} is the master ${master.instanceId}'s`);

  const otherVpc = subnets.filter((s) => s.vpcId !== master.vpcId);
  if (subnets.length > 0 && otherVpc.length === 0)
    verified.push(`the master is in the compute VPC ${master.vpcId}: the VPC's own route joins them`);
  for (const s of otherVpc)
    unverified.push(
      `a route between the master's VPC ${master.vpcId} and subnet ${s.id}'s VPC ${s.vpcId} (peering or CCN / CEN), both ways`,
    );

  // Inbound to slurmctld: one verdict per compute subnet, the first rule matching deciding.
  const computeGroups = new Set(input.securityGroupIds);
  const sharedOpen = master.securityGroupIds.some(
    (g) => computeGroups.has(g) && (seen.openWithin?.has(g) ?? false),
  );
  const port = input.controllerPort;
  const closed: string[] = [];
  const opaque: string[] = [];
  for (const [i, s] of seen.subnets.entries()) {
    if (s === undefined) continue;
    if (sharedOpen) continue;
    const verdict = firstMatch(seen.masterRules, port, s.cidr, computeGroups);
    if (verdict === "unknown") opaque.push(s.id);
    else if (verdict !== "accept") closed.push(`${subnetPath(i)} ${s.id} (${s.cidr})`);
  }
  const groups = master.securityGroupIds.join(", ") || "none";
  if (closed.length > 0) {
    errors.push({
      path: "master.instanceId",
      message: `the master's security groups (${groups}) do not let TCP ${port} (slurmctld) in from ${closed.join(", ")}: ${seen.ruleHint.replace("{port}", String(port))}`,
    });
  } else if (subnets.length > 0) {
    const sentence = `the master's security groups (${groups}) let TCP ${port} (slurmctld) in from the compute subnets or security groups`;
    if (opaque.length > 0)
      unverified.push(`${sentence} (${opaque.join(", ")}: a template rule, not evaluated)`);
    else verified.push(sentence);
  }
  return { errors, verified, unverified, ...vpcId };
}

/**
 * The first rule matching TCP `port` from `cidr` (or a compute group) decides; none: dropped. A drop
 * matches when it covers any part of `cidr`, an accept only when it covers all of it.
 */
function firstMatch(
  rules: readonly SeenRule[],
  port: number,
  cidr: string,
  groups: ReadonlySet<string>,
): "accept" | "drop" | "unknown" {
  for (const r of rules) {
    if (r.protocol !== "tcp" && r.protocol !== "all") continue;
    if (port < r.fromPort || port > r.toPort) continue;
    if (r.opaque === true) return "unknown";
    // An accept must hold the whole subnet; a drop decides as soon as it holds part of it (two CIDR
    // blocks overlap only when one holds the other): the nodes in that part would never reach slurmctld.
    const from =
      (r.groupId !== undefined && groups.has(r.groupId)) ||
      (r.cidr !== undefined && (cidrContains(r.cidr, cidr) || (!r.accept && cidrContains(cidr, r.cidr))));
    if (from) return r.accept ? "accept" : "drop";
  }
  return "drop";
}

/** A port field: "all", "-1/-1", "6817", "6000-7000", "6817/6817"; a list ("22,6817") as its ranges. */
export function portRanges(spec: string | undefined): [number, number][] {
  const text = (spec ?? "").trim().toLowerCase();
  if (text === "" || text === "all" || text === "-1/-1" || text === "-1") return [[0, 65_535]];
  return text.split(",").flatMap((part) => {
    const [a = "", b] = part.split(/[-/]/);
    const from = Number(a);
    const to = b === undefined ? from : Number(b);
    return Number.isInteger(from) && Number.isInteger(to) ? [[from, to] as [number, number]] : [];
  });
}
