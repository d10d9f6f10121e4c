/** The pure scaling core: no I/O, no clock, no SDK. Shared by Lambda, local mode, `plan` and the simulator. */
export { BUILTIN_CATALOGS, type BuiltinCatalogName } from "./catalogs/index.js";
export {
  type Config,
  type ConfigInput,
  configSchema,
  parseConfig,
  type QueueConfig,
  type ResolvedConfig,
  type ResolvedQueue,
  resolveConfig,
} from "./config.js";
export { bestFit, layoutOn, shapeKey, slicesOf } from "./fit.js";
export * from "./model.js";
export { isCloudId, isSimpleName } from "./names.js";
export { emptyRecord, hasOwnKey, ownValue } from "./own.js";
export { plan } from "./plan.js";
export { roundSize } from "./rounds.js";
export { DRAIN_REASON_PREFIX } from "./shrink.js";
export { type JobInput, type NodeInput, parseState, type StateInput, stateInputSchema } from "./state.js";
export { ValidationError, type ValidationIssue } from "./validation.js";
