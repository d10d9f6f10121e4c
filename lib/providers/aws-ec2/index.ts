import type { CloudProvider } from "../../ports/cloud-provider.js";
import { ManagedProvider, type ManagedProviderOptions } from "../shared/managed-provider.js";
import { Ec2Api, type Ec2ApiOptions } from "./ec2-api.js";

export {
  AwsDefaultImages,
  DEFAULT_IMAGE_DISTRIBUTION,
  defaultImageParameter,
} from "./default-image.js";
export { Ec2Api, type Ec2ApiOptions } from "./ec2-api.js";
export { EC2_ERROR_CODES, fromEc2Error } from "./errors.js";

export type AwsEc2ProviderOptions = Ec2ApiOptions & ManagedProviderOptions;

/**
 * The AWS EC2 provider. Credentials come from the SDK's default chain (the Lambda's role, env, profile)
 * or from the client passed in; never from configuration files of this project.
 */
export function createAwsEc2Provider(options: AwsEc2ProviderOptions = {}): CloudProvider {
  return new ManagedProvider(new Ec2Api(options), options);
}
