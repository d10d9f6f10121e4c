import { QUEUE_FEATURE_PREFIX } from "../../lib/core/features.js";
import type { SlurmSetup } from "../../lib/ports/slurm-setup.js";

/**
 * What attaching an existing Slurm master to NowScale requires of its Slurm (docs/attach.md), checked on
 * the master's own answer (lib/ports/slurm-setup.ts). Shared by the control plane (`attach` refuses on
 * any error) and the agent (`nowscale-agent install` prints the slurm.conf lines that fix them), so both
 * always agree on what "ready" means. Pure: no I/O.
 *
 * NowScale's compute nodes are dynamic nodes: `slurmd -Z --conf-server HOST:PORT --conf "... Feature=
 * q_<partition>,type_<type>,zone_<zone>"` (bootstrap.ts). Such a node joins a partition only through a
 * NodeSet selecting its feature (or a partition with `Nodes=ALL`), so each scaled partition needs one
 * NodeSet line and its name in the partition's Nodes: the only edit of the user's slurm.conf.
 */

/** The oldest Slurm the attach path is built and tested for: `slurmd -Z --conf` and the JSON readers (22.05.8 measured). */
export const MIN_SLURM_VERSION = [22, 5] as const;

/** The NodeSet the install command suggests for a partition. */
export function nowscaleNodeSet(partition: string): string {
  return `nowscale_${partition}`;
}

export interface AttachFinding {
  /** What was checked. */
  check:
    | "version"
    | "configless"
    | "maxNodeCount"
    | "partition"
    | "nodeSet"
    | "featureNodes"
    | "treeWidth"
    | "configOverrides";
  /** The partition it is about, for partition checks. */
  partition?: string;
  message: string;
}

export interface AttachCheck {
  /** Any one refuses the attach. */
  errors: AttachFinding[];
  /** Worth knowing; the attach goes on. */
  notes: AttachFinding[];
  /** How each partition takes NowScale's nodes, when it does: "NodeSet nowscale_x" or "Nodes=ALL". */
  joins: { partition: string; by: string }[];
}

/** Checks the setup for scaling `partitions` (each a queue of the autoscaling configuration). */
export function checkAttachSetup(setup: SlurmSetup, partitions: readonly string[]): AttachCheck {
  const errors: AttachFinding[] = [];
  const notes: AttachFinding[] = [];
  const joins: AttachCheck["joins"] = [];
  const [major = 0, minor = 0] = setup.slurmVersion.split(".").map(Number);
  if (major < MIN_SLURM_VERSION[0] || (major === MIN_SLURM_VERSION[0] && minor < MIN_SLURM_VERSION[1])) {
    errors.push({
      check: "version",
      message: `Slurm ${setup.slurmVersion} is older than 22.05: NowScale's dynamic nodes (slurmd -Z --conf) need 22.05 or later`,
    });
  }
  if (!setup.slurmctldParameters.includes("enable_configless")) {
    errors.push({
      check: "configless",
      message:
        "SlurmctldParameters lacks enable_configless: compute nodes fetch slurm.conf from slurmctld (slurmd --conf-server)",
    });
  }
  if (setup.maxNodeCount === undefined || setup.maxNodeCount === 0) {
    errors.push({
      check: "maxNodeCount",
      message: "MaxNodeCount is not set: slurmctld refuses dynamic nodes without room in its node table",
    });
  }
  if (setup.treeWidth !== undefined && setup.treeWidth < 65_533) {
    notes.push({
      check: "treeWidth",
      message: `TreeWidth=${setup.treeWidth}: Slurm recommends TreeWidth=65533 with dynamic nodes (no fan-out through nodes that come and go)`,
    });
  }
  if (setup.slurmdParameters !== undefined && !setup.slurmdParameters.includes("config_overrides")) {
    notes.push({
      check: "configOverrides",
      message:
        "SlurmdParameters lacks config_overrides: each node registers the memory its queue's scaleUpMemRatio leaves (spec ÷ ratio), and Slurm drains one whose kernel reports less; keep scaleUpMemRatio at 1.1 or more",
    });
  }
  if (setup.featureNodes.count > 0) {
    errors.push({
      check: "featureNodes",
      message: `${setup.featureNodes.count} node(s) already carry NowScale's features (q_, type_ and zone_), e.g. ${setup.featureNodes.examples.join(", ")}: NowScale would scale them as its own; rename their features first`,
    });
  }
  const confSets = new Map((setup.conf?.nodeSets ?? []).map((s) => [s.name, s.feature]));
  for (const partition of partitions) {
    const live = setup.partitions.find((p) => p.name === partition);
    if (live === undefined) {
      errors.push({
        check: "partition",
        partition,
        message: `slurmctld has no partition ${partition} (it has ${setup.partitions.map((p) => p.name).join(", ") || "none"})`,
      });
      continue;
    }
    if (live.state !== "UP") {
      notes.push({
        check: "partition",
        partition,
        message: `partition ${partition} is ${live.state}, not UP`,
      });
    }
    const feature = `${QUEUE_FEATURE_PREFIX}${partition}`;
    const written = setup.conf?.partitions.find((p) => p.name === partition);
    if (written?.nodes.split(",").some((n) => n.trim().toUpperCase() === "ALL") === true) {
      joins.push({ partition, by: "Nodes=ALL" });
      continue;
    }
    const selecting = live.nodeSets.find((s) => confSets.get(s) === feature);
    if (selecting !== undefined) {
      joins.push({ partition, by: `NodeSet ${selecting}` });
      continue;
    }
    const suggested = nowscaleNodeSet(partition);
    if (setup.conf === undefined && live.nodeSets.includes(suggested)) {
      // The file could not be read: the name the install command suggests is the best evidence there is.
      joins.push({ partition, by: `NodeSet ${suggested}` });
      notes.push({
        check: "nodeSet",
        partition,
        message: `NodeSet ${suggested}'s feature is not verified (slurm.conf not readable: ${setup.confError ?? "unknown"})`,
      });
      continue;
    }
    const inFileOnly =
      written?.nodes
        .split(",")
        .some((n) => confSets.get(n.trim()) === feature && !live.nodeSets.includes(n.trim())) === true;
    errors.push({
      check: "nodeSet",
      partition,
      message: inFileOnly
        ? `slurm.conf gives partition ${partition} a NodeSet with Feature=${feature}, but slurmctld has not read it yet: run scontrol reconfigure (or restart slurmctld)`
        : `partition ${partition} takes no node with feature ${feature}: add "NodeSet=${suggested} Feature=${feature}" to slurm.conf and ${suggested} to the partition's Nodes=`,
    });
  }
  return { errors, notes, joins };
}

/** slurmctld's address as compute nodes reach it: the first SlurmctldHost's address, when it is IPv4. */
export function controllerAddress(setup: SlurmSetup): string | undefined {
  const address = setup.controllers[0]?.address;
  return address !== undefined && /^\d{1,3}(\.\d{1,3}){3}$/.test(address) ? address : undefined;
}

/**
 * The slurm.conf lines that make the setup pass `checkAttachSetup` for `partitions`, as the install
 * command prints them; empty when nothing is missing. Partition lines are the file's own line with the
 * NodeSet added to its Nodes= (when the file could be read), so the user replaces one line by another.
 */
export function renderAttachConf(setup: SlurmSetup, partitions: readonly string[]): string[] {
  const check = checkAttachSetup(setup, partitions);
  const failed = (c: AttachFinding["check"]) => check.errors.some((e) => e.check === c);
  const lines: string[] = [];
  if (failed("configless")) {
    const params = [...setup.slurmctldParameters, "enable_configless"];
    lines.push(
      "# replaces your SlurmctldParameters line, if you have one",
      `SlurmctldParameters=${params.join(",")}`,
    );
  }
  if (failed("maxNodeCount"))
    lines.push("# room for dynamic nodes (your nodes plus NowScale's)", "MaxNodeCount=1024");
  if (check.notes.some((n) => n.check === "treeWidth"))
    lines.push("# recommended with dynamic nodes", "TreeWidth=65533");
  for (const partition of partitions) {
    if (!check.errors.some((e) => e.check === "nodeSet" && e.partition === partition)) continue;
    const set = nowscaleNodeSet(partition);
    lines.push(`NodeSet=${set} Feature=${QUEUE_FEATURE_PREFIX}${partition}`);
    const written = setup.conf?.partitions.find((p) => p.name === partition);
    if (written !== undefined && written.nodes !== "") {
      lines.push(
        `# replaces your PartitionName=${partition} line:`,
        written.line.replace(/(^|\s)(nodes=)(\S+)/i, `$1$2$3,${set}`),
      );
    } else if (written !== undefined) {
      lines.push(`# replaces your PartitionName=${partition} line:`, `${written.line} Nodes=${set}`);
    } else {
      lines.push(`# add ${set} to the Nodes= of PartitionName=${partition}`);
    }
  }
  return lines;
}
