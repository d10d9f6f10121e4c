import type { CloudProvider } from "../../ports/cloud-provider.js";
import { ManagedProvider, type ManagedProviderOptions } from "../shared/managed-provider.js";
import { EcsApi, type EcsApiOptions } from "./ecs-api.js";

export { type AlibabaAccessKey, EcsApi, type EcsApiOptions } from "./ecs-api.js";
export { ECS_ERROR_CODES, fromEcsError } from "./errors.js";

export type AlibabaEcsProviderOptions = EcsApiOptions & ManagedProviderOptions;

/**
 * The Alibaba Cloud ECS provider. Credentials: an access key passed in (from a secret), else the SDK's
 * default chain; never from this project's files.
 */
export function createAlibabaEcsProvider(options: AlibabaEcsProviderOptions): CloudProvider {
  return new ManagedProvider(new EcsApi(options), options);
}
