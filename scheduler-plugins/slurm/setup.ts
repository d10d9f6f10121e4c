import { readFile } from "node:fs/promises";
import { dirname, isAbsolute, join } from "node:path";
import { QUEUE_FEATURE_PREFIX, TYPE_FEATURE_PREFIX, ZONE_FEATURE_PREFIX } from "../../lib/core/features.js";
import type { SlurmSetup } from "../../lib/ports/slurm-setup.js";
import type { SlurmClient } from "./client.js";
import { parseKeyValueLines } from "./keyvalue.js";

/**
 * How a master's Slurm is set up, read on the master by the agent (`nowscale-agent slurm-setup`, its
 * `GET /v1/slurm-setup`, and `nowscale-agent install`): the answer lib/ports/slurm-setup.ts describes.
 * Read-only: `sinfo --version`, `scontrol show config`, `scontrol show partition`, the node list, and the
 * slurm.conf file with its Include files. What it means for attaching is attach-checks.ts.
 */

/** Where slurm.conf is when neither `scontrol show config` nor SLURM_CONF says. */
const DEFAULT_CONF = "/etc/slurm/slurm.conf";
/** Include files followed at most this deep, and this many files in all (a loop stops here too). */
const MAX_INCLUDE_DEPTH = 4;
const MAX_CONF_FILES = 32;

export interface SetupOptions {
  /** @default node:fs readFile */
  readText?: (path: string) => Promise<string>;
  /** @default process.env */
  env?: NodeJS.ProcessEnv;
}

/** Reads the setup. Throws SlurmUnavailableError when slurmctld does not answer (nothing is guessed). */
export async function collectSlurmSetup(
  client: SlurmClient,
  agentVersion: string,
  options: SetupOptions = {},
): Promise<SlurmSetup> {
  const [slurmVersion, configText, partitionText, nodes] = await Promise.all([
    client.version(),
    client.scontrolText("config"),
    client.scontrolText("partitions"),
    client.nodes(),
  ]);
  const config = parseScontrolConfig(configText);
  const featured = nodes
    .filter((n) =>
      [QUEUE_FEATURE_PREFIX, TYPE_FEATURE_PREFIX, ZONE_FEATURE_PREFIX].every((p) =>
        n.features.some((f) => f.startsWith(p)),
      ),
    )
    .map((n) => n.name);
  const setup: SlurmSetup = {
    agentVersion,
    slurmVersion,
    controllers: controllersOf(config),
    slurmctldPort: firstPort(config.get("SlurmctldPort")) ?? 6817,
    slurmdPort: firstPort(config.get("SlurmdPort")) ?? 6818,
    slurmctldParameters: words(config.get("SlurmctldParameters")),
    slurmdParameters: words(config.get("SlurmdParameters")),
    partitions: parsePartitions(partitionText),
    featureNodes: { count: featured.length, examples: featured.slice(0, 10) },
  };
  const clusterName = config.get("ClusterName");
  if (clusterName !== undefined && /^[\x21-\x7e]{1,200}$/.test(clusterName)) setup.clusterName = clusterName;
  const maxNodeCount = wholeNumber(config.get("MaxNodeCount"));
  if (maxNodeCount !== undefined) setup.maxNodeCount = maxNodeCount;
  const treeWidth = wholeNumber(config.get("TreeWidth"));
  if (treeWidth !== undefined) setup.treeWidth = treeWidth;
  const env = options.env ?? process.env;
  const path = config.get("SLURM_CONF") ?? env.SLURM_CONF ?? DEFAULT_CONF;
  try {
    setup.conf = { path, ...(await readSlurmConf(path, options.readText ?? ((p) => readFile(p, "utf8")))) };
  } catch (error) {
    setup.confError = `${path}: ${(error as Error).message}`.slice(0, 500);
  }
  return setup;
}

/** `scontrol show config`'s `Key = value` lines; `SlurmctldHost[0]` keeps its index. */
export function parseScontrolConfig(text: string): Map<string, string> {
  const config = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /^([A-Za-z][A-Za-z0-9_[\]]*)\s+=\s?(.*)$/.exec(line.trimEnd());
    if (m) config.set(m[1] as string, (m[2] as string).trim());
  }
  return config;
}

/** `SlurmctldHost[i] = host(addr)` (or `host`), in index order. */
function controllersOf(config: Map<string, string>): SlurmSetup["controllers"] {
  const controllers: SlurmSetup["controllers"] = [];
  for (let i = 0; i < 8; i++) {
    const value = config.get(`SlurmctldHost[${i}]`);
    if (value === undefined) break;
    const m = /^([\x21-\x27\x2a-\x7e]{1,200})(?:\(([\x21-\x27\x2a-\x7e]{1,200})\))?$/.exec(value);
    if (!m) continue;
    controllers.push({ host: m[1] as string, ...(m[2] === undefined ? {} : { address: m[2] }) });
  }
  return controllers;
}

function firstPort(value: string | undefined): number | undefined {
  const n = Number(/^(\d{1,5})/.exec(value ?? "")?.[1]);
  return Number.isInteger(n) && n >= 1 && n <= 65_535 ? n : undefined;
}

function wholeNumber(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{1,9}$/.test(value)) return undefined;
  return Number(value);
}

function words(value: string | undefined): string[] {
  if (value === undefined || value === "(null)") return [];
  return value
    .split(",")
    .map((w) => w.trim())
    .filter((w) => /^[\x21-\x7e]{1,200}$/.test(w));
}

/** `scontrol --oneliner show partition`: each partition's name, node sets and state. */
export function parsePartitions(text: string): SlurmSetup["partitions"] {
  if (/^No partitions in the system/m.test(text)) return [];
  return parseKeyValueLines(text)
    .map((r) => ({
      name: r.get("PartitionName") ?? "",
      nodeSets: words(r.get("NodeSets")),
      state: r.get("State") ?? "UNKNOWN",
    }))
    .filter((p) => /^[\x21-\x7e]{1,200}$/.test(p.name) && /^[\x21-\x7e]{1,200}$/.test(p.state));
}

type ConfPart = Omit<NonNullable<SlurmSetup["conf"]>, "path">;

/**
 * The node sets and partitions of a slurm.conf and the files it includes (relative Include paths are
 * read beside the file that names them, as slurmctld does). Keys are read without regard to case, as
 * Slurm reads them; `PartitionName=DEFAULT` is not a partition. Throws when the top file cannot be read;
 * an Include that cannot be read is skipped (slurmctld would have failed on it).
 */
export async function readSlurmConf(
  path: string,
  readText: (path: string) => Promise<string>,
): Promise<ConfPart> {
  const result: ConfPart = { nodeSets: [], partitions: [] };
  const seen = new Set<string>();
  const visit = async (file: string, depth: number, required: boolean): Promise<void> => {
    if (seen.has(file) || seen.size >= MAX_CONF_FILES || depth > MAX_INCLUDE_DEPTH) return;
    seen.add(file);
    let text: string;
    try {
      text = await readText(file);
    } catch (error) {
      if (required) throw error;
      return;
    }
    const parsed = parseSlurmConfText(text);
    result.nodeSets.push(...parsed.nodeSets);
    result.partitions.push(...parsed.partitions);
    for (const include of parsed.includes) {
      await visit(isAbsolute(include) ? include : join(dirname(file), include), depth + 1, false);
    }
  };
  await visit(path, 0, true);
  return result;
}

/** One file's NodeSet and PartitionName lines and Include paths. */
export function parseSlurmConfText(text: string): ConfPart & { includes: string[] } {
  const out: ConfPart & { includes: string[] } = { nodeSets: [], partitions: [], includes: [] };
  for (const raw of text.split("\n")) {
    const line = raw.replace(/(^|[^\\])#.*$/, "$1").trim();
    if (line === "") continue;
    const tokens = line.split(/\s+/);
    const first = tokens[0] as string;
    if (/^include$/i.test(first) && tokens[1] !== undefined) {
      out.includes.push(tokens[1]);
      continue;
    }
    const fields = new Map<string, string>();
    for (const token of tokens) {
      const eq = token.indexOf("=");
      if (eq > 0) fields.set(token.slice(0, eq).toLowerCase(), token.slice(eq + 1));
    }
    const key = first.slice(0, Math.max(0, first.indexOf("="))).toLowerCase();
    const name = fields.get(key);
    if (name === undefined || !/^[\x21-\x7e]{1,200}$/.test(name)) continue;
    if (key === "nodeset") {
      const feature = fields.get("feature");
      out.nodeSets.push({
        name,
        ...(feature !== undefined && /^[\x21-\x7e]{1,200}$/.test(feature) ? { feature } : {}),
      });
    } else if (key === "partitionname" && name.toUpperCase() !== "DEFAULT") {
      out.partitions.push({
        name,
        nodes: (fields.get("nodes") ?? "").slice(0, 4000),
        line: line.slice(0, 8000),
      });
    }
  }
  return out;
}
