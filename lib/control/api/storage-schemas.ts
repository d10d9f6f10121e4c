import { z } from "zod";
import { initScriptSchema, storageOptionSchema } from "../../../scheduler-plugins/slurm/bootstrap.js";

/**
 * Inputs of the node-setup routes (lib/control/storage.ts): the boot-script renderer's own schemas, so
 * the API refuses exactly what the renderer would, naming the field; the service adds the reserved mount
 * points. Kept apart from schemas.ts so the routes of other day-2 items do not meet these.
 */

/** AddClusterStorageOption: one mount, as THPC's CFSOption (protocol, remotePath, localPath). */
export const storageOptionBodySchema = storageOptionSchema;

/** DeleteClusterStorageOption names the mount point in the query: a path has slashes. */
export const storageDeleteQuery = z.strictObject({
  // Optional here so an unknown cluster is 404 before a missing path is 400; the route requires it.
  localPath: z
    .string()
    .regex(/^(\/[A-Za-z0-9._-]+)+\/?$/, {
      error: "expected an absolute path of letters, digits, '.', '_', '-' and '/'",
    })
    .optional()
    .describe("the mount point to delete, e.g. /data (required)"),
  /** Delete although jobs run (each node still unmounts only once nothing there uses the mount). */
  force: z.enum(["true", "false"], { error: "must be true or false" }).optional(),
});

/** ModifyInitNodeScripts: the whole list, replacing the previous one (`[]` removes every script). */
export const initScriptsBodySchema = z.strictObject({
  initScripts: z.array(initScriptSchema).max(20, { error: "at most 20 init scripts" }),
});
