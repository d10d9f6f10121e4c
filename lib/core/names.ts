import { z } from "zod";

/**
 * Allow-lists for every name that can reach a shell script, slurm.conf, a cloud tag or a log line.
 * A name that fails here is rejected at the edge; nothing downstream quotes its way out of a bad name.
 */

/** Queue, cluster and node names: letters, digits and '-', not starting with '-'. */
export const SIMPLE_NAME = /^[A-Za-z0-9][A-Za-z0-9-]{0,62}$/;

/** Cloud identifiers (instance types, zones, subnets, images) also use '.' and '_' (c5.xlarge, ecs.g7.large). */
export const CLOUD_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Slurm job ids: 17, 17_3 (array), 17+1 (het job). */
export const JOB_ID = /^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,127}$/;

/** Slurm node feature names NowScale writes and the agent reports: what its prefixes and cloud ids produce. */
export const FEATURE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,191}$/;

/** A queue's own Slurm node features (config `features`): a plain word, as slurm.conf and sbatch -C read it. */
export const FEATURE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export const FEATURE_NAME_HINT =
  "use letters, digits, '.', '_' and '-', at most 63 characters, not starting with '.', '_' or '-'";

export const SIMPLE_NAME_HINT = "use letters, digits and '-', at most 63 characters, not starting with '-'";
export const CLOUD_ID_HINT =
  "use letters, digits, '.', '_' and '-', at most 128 characters, not starting with '-'";

export function isSimpleName(value: string): boolean {
  return SIMPLE_NAME.test(value);
}

export function isCloudId(value: string): boolean {
  return CLOUD_ID.test(value);
}

/** A name (SIMPLE_NAME) as a zod schema, its error saying how to fix it: every schema's one copy. */
export const simpleNameSchema = z.string().regex(SIMPLE_NAME, { error: `invalid name: ${SIMPLE_NAME_HINT}` });

/** A cloud identifier (CLOUD_ID) as a zod schema, its error saying how to fix it. */
export const cloudIdSchema = z.string().regex(CLOUD_ID, { error: `invalid identifier: ${CLOUD_ID_HINT}` });
