import { writeFileSync } from "node:fs";
import { buildOpenApi } from "../lib/control/api/openapi.js";

/** `npm run build:openapi`: writes docs/openapi.json from the API's zod schemas. */
writeFileSync(
  new URL("../docs/openapi.json", import.meta.url),
  `${JSON.stringify(buildOpenApi(), null, 2)}\n`,
);
