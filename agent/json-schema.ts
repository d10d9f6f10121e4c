import { z } from "zod";
import { reportSchema } from "../lib/ports/agent-report.js";

/** The report's JSON Schema (draft 2020-12), generated from the zod schema the control plane uses. */
export function reportJsonSchema(): Record<string, unknown> {
  return {
    $id: "https://nowscale.dev/schemas/agent-report.schema.json",
    title: "NowScale agent report",
    ...z.toJSONSchema(reportSchema, { target: "draft-2020-12", io: "output" }),
  };
}
