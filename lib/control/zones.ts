import type { Config } from "../core/config.js";
import { formatPath, ValidationError, type ValidationIssue } from "../core/validation.js";
import type { ClusterPlacement } from "../ports/state-store.js";
import { ZonesUnavailableError } from "./errors.js";

/**
 * The zones of a cloud's region that launches may use (CloudProvider.zones of a provider for that cloud
 * and region). The API's check of a configuration's zones calls it.
 */
export type ZonesOf = (placement: Pick<ClusterPlacement, "cloud" | "region">) => Promise<readonly string[]>;

/** The zones listed in a refusal; a region has a handful, this only bounds a message. */
const MAX_LISTED = 12;

/**
 * Refuses (ValidationError, HTTP 400) a configuration whose expansionNodeConfigs name a zone the cluster's
 * region does not have, each such entry named by its path (`prefix` + `queueConfigs[0].expansionNodeConfigs[1].zone`),
 * before anything is written: the instance types were checked against the configuration's catalog by its
 * schema, the zones are checked here against the cloud, since a zone the region lacks fails every launch
 * (LAUNCH_FAILED) and nothing else would tell. Without `zonesOf` (an edge that cannot ask the cloud) no
 * check is made. `only` restricts the check to the queues it names (a queue add checks the new one: the
 * others were checked when they were written).
 */
export async function checkZones(
  zonesOf: ZonesOf | undefined,
  placement: Pick<ClusterPlacement, "cloud" | "region">,
  config: Pick<Config, "queueConfigs">,
  source: string,
  prefix: readonly PropertyKey[] = [],
  only?: ReadonlySet<string>,
): Promise<void> {
  if (zonesOf === undefined) return;
  const named = config.queueConfigs.flatMap((q, qi) =>
    only !== undefined && !only.has(q.queueName)
      ? []
      : q.expansionNodeConfigs.map((e, ei) => ({ zone: e.zone, qi, ei })),
  );
  if (named.length === 0) return;
  let listed: readonly string[];
  try {
    listed = await zonesOf({ cloud: placement.cloud, region: placement.region });
  } catch (error) {
    throw new ZonesUnavailableError(
      `the zones of ${placement.cloud} region ${placement.region} could not be read to check the configuration's zones: ${(error as Error).message}`.slice(
        0,
        500,
      ),
      { cause: error },
    );
  }
  const zones = new Set(listed);
  const sorted = [...zones].sort();
  const shown =
    sorted.length === 0
      ? "it has none open to launches"
      : `one of ${sorted.slice(0, MAX_LISTED).join(", ")}${sorted.length > MAX_LISTED ? ", ..." : ""}`;
  const issues: ValidationIssue[] = [];
  for (const { zone, qi, ei } of named) {
    if (zones.has(zone)) continue;
    issues.push({
      path: formatPath([...prefix, "queueConfigs", qi, "expansionNodeConfigs", ei, "zone"]),
      message: `"${zone}" is not a zone of ${placement.cloud} region ${placement.region}: ${shown}`,
    });
  }
  if (issues.length > 0) throw new ValidationError(source, issues);
}
