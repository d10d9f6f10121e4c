/** Writes agent/report.schema.json from the zod schema: `npm run build:agent-schema`. */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { reportJsonSchema } from "./json-schema.js";

const target = join(import.meta.dirname, "report.schema.json");
writeFileSync(target, `${JSON.stringify(reportJsonSchema(), null, 2)}\n`);
console.log(`wrote ${target}`);
