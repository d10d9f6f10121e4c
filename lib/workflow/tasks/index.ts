export type { MasterAgent } from "./agent.js";
export { MASTER_QUEUE } from "./create-tasks.js";
export {
  type CloudLifecycleParts,
  type CloudPartsFactory,
  type LifecycleDeps,
  lifecycleDepsFor,
  OTHER_LIFECYCLE_CLOUDS,
  type OtherCloudParts,
  type OtherLifecycleCloud,
} from "./deps.js";
export { runLifecycleTask, type TaskInput, type TaskName, taskInputSchema } from "./dispatch.js";
export { BadTaskInputError, ResourcesInUseError } from "./errors.js";
export { failureReason } from "./reason.js";
export {
  type CreateClusterRequest,
  type CreateClusterRequestInput,
  createClusterRequestSchema,
  parseCreateCluster,
} from "./request.js";
export {
  type ClusterLifecycleStatus,
  type LifecycleStore,
  type MasterRecord,
  MemoryLifecycleStore,
} from "./store.js";
