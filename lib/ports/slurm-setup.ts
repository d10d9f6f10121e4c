import { z } from "zod";
import { parseWith } from "../core/validation.js";

/**
 * The agent's `slurm-setup` answer (`GET /v1/slurm-setup`, `nowscale-agent slurm-setup`): how the master's
 * Slurm is set up, as far as attaching it to NowScale needs to know (docs/attach.md). The agent builds it
 * from `sinfo --version`, `scontrol show config`, `scontrol show partition`, the node list and the
 * slurm.conf it runs with (scheduler-plugins/slurm/setup.ts); the control plane reads it as untrusted data
 * through `parseSlurmSetup` and checks it with scheduler-plugins/slurm/attach-checks.ts.
 */

/** Slurm words as scontrol prints them: no spaces, printable ASCII. */
const word = z.string().regex(/^[\x21-\x7e]{1,200}$/);
const port = z.number().int().min(1).max(65_535);

export const slurmSetupSchema = z.strictObject({
  agentVersion: z.string().max(50),
  /** `sinfo --version`: "22.05.8". */
  slurmVersion: z.string().regex(/^\d{1,3}\.\d{1,3}\.\d{1,3}$/),
  clusterName: word.optional(),
  /** SlurmctldHost lines in order: the host name and, when given in parentheses, the address. */
  controllers: z.array(z.strictObject({ host: word, address: word.optional() })).max(8),
  /** The first port of SlurmctldPort (a range "6817-6818" is read as 6817). */
  slurmctldPort: port,
  slurmdPort: port,
  /** SlurmctldParameters split at commas ("enable_configless", ...). */
  slurmctldParameters: z.array(word).max(100),
  /** SlurmdParameters split at commas ("config_overrides", ...); absent from older agents' answers. */
  slurmdParameters: z.array(word).max(100).optional(),
  /** Absent when Slurm prints none. */
  maxNodeCount: z.number().int().min(0).max(100_000_000).optional(),
  treeWidth: z.number().int().min(0).max(100_000).optional(),
  /** Every partition slurmctld holds: its node sets (by name) and its state. */
  partitions: z
    .array(
      z.strictObject({
        name: word,
        nodeSets: z.array(word).max(100),
        state: word,
      }),
    )
    .max(10_000),
  /**
   * What the slurm.conf file says (its Include files followed), when the agent could read it: each node
   * set's feature, and each partition's Nodes expression as written (`ALL` is only visible there).
   */
  conf: z
    .strictObject({
      path: z.string().max(1000),
      nodeSets: z.array(z.strictObject({ name: word, feature: word.optional() })).max(1000),
      partitions: z
        .array(z.strictObject({ name: word, nodes: z.string().max(4000), line: z.string().max(8000) }))
        .max(10_000),
    })
    .optional(),
  /** Why the file could not be read, when it could not. */
  confError: z.string().max(500).optional(),
  /** Nodes that already carry NowScale's three features (q_, type_, zone_): NowScale would treat them as its own. */
  featureNodes: z.strictObject({
    count: z.number().int().min(0),
    examples: z.array(z.string().max(200)).max(10),
  }),
});

export type SlurmSetup = z.output<typeof slurmSetupSchema>;

/** Validates an agent's answer; throws ValidationError naming the bad fields. */
export function parseSlurmSetup(raw: unknown, origin = "slurm setup"): SlurmSetup {
  return parseWith(slurmSetupSchema, raw, origin);
}
