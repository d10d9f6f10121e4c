import type { InstanceCatalog } from "../model.js";
import { alibabaCatalog } from "./alibaba.js";
import { awsCatalog } from "./aws.js";
import { tencentCatalog } from "./tencent.js";

/** Shipped catalogs a config can name in `catalogs`; its own `instanceTypes` override them. */
export const BUILTIN_CATALOGS = {
  aws: awsCatalog,
  tencent: tencentCatalog,
  alibaba: alibabaCatalog,
} as const satisfies Record<string, InstanceCatalog>;

export type BuiltinCatalogName = keyof typeof BUILTIN_CATALOGS;
