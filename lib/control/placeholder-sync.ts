import { placeholderChanges, placeholderSpecs } from "../../scheduler-plugins/slurm/placeholders.js";
import type { ResolvedConfig } from "../core/config.js";
import type { PlaceholderSpec } from "../ports/agent-protocol.js";
import type { OkReport } from "../ports/agent-report.js";

/**
 * The placeholders to sync, or undefined when Slurm's are in step with the configuration (or the report
 * does not list them: an agent that could not read them). Slurm's placeholder names are digests of
 * their whole spec, so comparing names is comparing shapes, features and zones.
 */
export function placeholdersToSync(
  report: OkReport,
  config: ResolvedConfig,
): { specs: PlaceholderSpec[]; key: string } | undefined {
  if (report.placeholders === undefined) return undefined;
  const specs = placeholderSpecs(config);
  const { create, remove } = placeholderChanges(specs, report.placeholders);
  if (create.length === 0 && remove.length === 0) return undefined;
  return { specs, key: specs.map((s) => s.name).join(",") };
}
