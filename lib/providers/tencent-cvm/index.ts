import type { CloudProvider } from "../../ports/cloud-provider.js";
import { ManagedProvider, type ManagedProviderOptions } from "../shared/managed-provider.js";
import { CvmApi, type CvmApiOptions } from "./cvm-api.js";

export { CvmApi, type CvmApiOptions } from "./cvm-api.js";
export { CVM_ERROR_CODES, fromCvmError } from "./errors.js";

export type TencentCvmProviderOptions = CvmApiOptions & ManagedProviderOptions;

/**
 * The Tencent Cloud CVM provider (the CVM-only SDK package keeps the Lambda bundle small). Credentials:
 * a secret passed in, else the SDK's default chain; never from this project's files.
 */
export function createTencentCvmProvider(options: TencentCvmProviderOptions): CloudProvider {
  return new ManagedProvider(new CvmApi(options), options);
}
