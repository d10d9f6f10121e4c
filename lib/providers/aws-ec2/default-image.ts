import {
  type _InstanceType,
  DescribeInstanceTypesCommand,
  type DescribeInstanceTypesCommandOutput,
  type EC2Client,
} from "@aws-sdk/client-ec2";
import { GetParameterCommand, type SSMClient } from "@aws-sdk/client-ssm";
import { InvalidRequestError } from "../../ports/errors.js";
import { fromEc2Error } from "./errors.js";

/**
 * The default image of NowScale's AWS clusters: Debian 12 "bookworm", whose packages the boot scripts
 * install (slurm-wlm 22.05.8, the first Slurm with dynamic nodes, which NowScale's nodes join as, and
 * nodejs 18.20.4, the Node the agent bundle is built for). Debian publishes the latest image of each
 * architecture in a public SSM parameter in every region.
 */
export const DEFAULT_IMAGE_DISTRIBUTION = {
  name: "Debian 12 (bookworm)",
  slurm: "22.05.8",
  node: "18.20.4",
} as const;

/** The public SSM parameter with the latest Debian 12 image for an architecture. */
export function defaultImageParameter(architecture: "amd64" | "arm64"): string {
  return `/aws/service/debian/release/12/latest/${architecture}`;
}

/** amd64 or arm64 for an instance type, from DescribeInstanceTypes; remembered per client. */
export async function architectureOf(ec2: EC2Client, instanceType: string): Promise<"amd64" | "arm64"> {
  let out: DescribeInstanceTypesCommandOutput;
  try {
    out = await ec2.send(
      new DescribeInstanceTypesCommand({ InstanceTypes: [instanceType as _InstanceType] }),
    );
  } catch (error) {
    throw fromEc2Error(error);
  }
  const archs = out.InstanceTypes?.[0]?.ProcessorInfo?.SupportedArchitectures ?? [];
  if (archs.includes("x86_64")) return "amd64";
  if (archs.includes("arm64")) return "arm64";
  throw new InvalidRequestError(
    `instance type ${instanceType}: no x86_64 or arm64 architecture in this region`,
  );
}

/** The default master image at create time: the parameter's current value for the type's architecture. */
export class AwsDefaultImages {
  constructor(
    private readonly ec2: EC2Client,
    private readonly ssm: SSMClient,
  ) {}

  async defaultImage(instanceType: string): Promise<string> {
    const name = defaultImageParameter(await architectureOf(this.ec2, instanceType));
    let value: string | undefined;
    try {
      value = (await this.ssm.send(new GetParameterCommand({ Name: name }))).Parameter?.Value;
    } catch (error) {
      throw fromEc2Error(error);
    }
    if (value === undefined || !/^ami-[0-9a-f]{8,17}$/.test(value))
      throw new InvalidRequestError(`the default image parameter ${name} holds no image id`);
    return value;
  }
}
