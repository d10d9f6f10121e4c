export { NowScaleApi } from "./api.js";
export { NowScaleKeys } from "./keys.js";
export { nowscaleFunction, PROJECT_ROOT, SERVICE_NAME } from "./lambda.js";
export { NodeRole } from "./node-role.js";
export { NowScaleObservability } from "./observability.js";
export { CREDENTIALS_ENV, NowScaleStack, type NowScaleStackProps } from "./stack.js";
export { NowScaleTables } from "./tables.js";
export { NowScaleWorkflows } from "./workflows.js";
