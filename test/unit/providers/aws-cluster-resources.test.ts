import {
  AuthorizeSecurityGroupIngressCommand,
  CreateInternetGatewayCommand,
  CreateRouteTableCommand,
  CreateSecurityGroupCommand,
  CreateSubnetCommand,
  CreateVpcCommand,
  DeleteSubnetCommand,
  DeleteVpcCommand,
  DescribeInternetGatewaysCommand,
  DescribeRouteTablesCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  DescribeVpcEndpointsCommand,
  DescribeVpcsCommand,
  EC2Client,
} from "@aws-sdk/client-ec2";
import {
  CreateSecretCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  ListSecretsCommand,
  SecretsManagerClient,
} from "@aws-sdk/client-secrets-manager";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { ThrottledError } from "../../../lib/ports/errors.js";
import { AwsClusterResources, subnetBlocks } from "../../../lib/providers/aws-ec2/cluster-resources.js";

const ec2 = mockClient(EC2Client);
const sm = mockClient(SecretsManagerClient);

function adapter() {
  return new AwsClusterResources({
    ec2: new EC2Client({ region: "us-east-1" }),
    secrets: new SecretsManagerClient({ region: "us-east-1" }),
    kmsKeyId: "arn:aws:kms:us-east-1:123456789012:key/k-1",
  });
}

function awsError(name: string, status: number) {
  return Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });
}

describe("AwsClusterResources", () => {
  beforeEach(() => {
    ec2.reset();
    sm.reset();
    ec2.on(DescribeVpcsCommand).resolves({ Vpcs: [] });
    ec2.on(DescribeSecurityGroupsCommand).resolves({ SecurityGroups: [] });
    // The rest of the network (gateway, routes, endpoints): test/integration/workflow/aws-network.test.ts.
    ec2.on(DescribeSubnetsCommand).resolves({ Subnets: [] });
    ec2.on(DescribeInternetGatewaysCommand).resolves({ InternetGateways: [] });
    ec2.on(CreateInternetGatewayCommand).resolves({ InternetGateway: { InternetGatewayId: "igw-1" } });
    ec2.on(DescribeRouteTablesCommand).resolves({ RouteTables: [] });
    ec2.on(CreateRouteTableCommand).resolves({ RouteTable: { RouteTableId: "rtb-1" } });
    ec2.on(DescribeVpcEndpointsCommand).resolves({ VpcEndpoints: [] });
    ec2.on(CreateSecurityGroupCommand).resolves({ GroupId: "sg-endpoints" });
    sm.on(ListSecretsCommand).resolves({ SecretList: [] });
  });

  it("creates a tagged VPC and one tagged subnet per zone from the VPC's block", async () => {
    // Prepare
    ec2.on(CreateVpcCommand).resolves({ Vpc: { VpcId: "vpc-1" } });
    ec2
      .on(CreateSubnetCommand)
      .resolvesOnce({ Subnet: { SubnetId: "subnet-a" } })
      .resolves({ Subnet: { SubnetId: "subnet-b" } });

    // Act
    const network = await adapter().createNetwork("hpc-1", {
      cidr: "10.42.0.0/16",
      zones: ["us-east-1a", "us-east-1b"],
    });

    // Assess
    expect(network).toEqual({ vpcId: "vpc-1", subnetIds: ["subnet-a", "subnet-b"] });
    const vpcTags = ec2.commandCalls(CreateVpcCommand)[0]?.args[0].input.TagSpecifications?.[0]?.Tags;
    expect(vpcTags).toContainEqual({ Key: "nowscale:cluster", Value: "hpc-1" });
    expect(vpcTags).toContainEqual({ Key: "nowscale:managed", Value: "true" });
    const subnets = ec2.commandCalls(CreateSubnetCommand).map((c) => c.args[0].input);
    expect(subnets.map((s) => [s.AvailabilityZone, s.CidrBlock])).toEqual([
      ["us-east-1a", "10.42.0.0/20"],
      ["us-east-1b", "10.42.16.0/20"],
    ]);
  });

  it("returns the cluster's existing network instead of making a second one", async () => {
    // Prepare
    ec2.on(DescribeVpcsCommand).resolves({ Vpcs: [{ VpcId: "vpc-old" }] });
    ec2
      .on(DescribeSubnetsCommand)
      .resolves({ Subnets: [{ SubnetId: "subnet-old", AvailabilityZone: "us-east-1a" }] });

    // Act
    const network = await adapter().createNetwork("hpc-1", { cidr: "10.42.0.0/16", zones: ["us-east-1a"] });

    // Assess
    expect(network).toEqual({ vpcId: "vpc-old", subnetIds: ["subnet-old"] });
    expect(ec2.commandCalls(CreateVpcCommand)).toHaveLength(0);
    expect(ec2.commandCalls(CreateSubnetCommand)).toHaveLength(0);
  });

  it("opens the security group to its own members only", async () => {
    // Prepare
    ec2.on(CreateSecurityGroupCommand).resolves({ GroupId: "sg-1" });

    // Act
    await adapter().createSecurityGroup("hpc-1", "vpc-1");

    // Assess
    const rule = ec2.commandCalls(AuthorizeSecurityGroupIngressCommand)[0]?.args[0].input;
    expect(rule?.IpPermissions).toEqual([{ IpProtocol: "-1", UserIdGroupPairs: [{ GroupId: "sg-1" }] }]);
    expect(JSON.stringify(rule)).not.toContain("0.0.0.0/0");
  });

  it("creates secrets under the KMS key with a random value that it never returns", async () => {
    // Prepare
    sm.on(DescribeSecretCommand).rejects(awsError("ResourceNotFoundException", 400));
    sm.on(CreateSecretCommand).resolves({ ARN: "arn:secret:munge" });

    // Act
    const secret = await adapter().createSecret("hpc-1", "munge-key");

    // Assess
    expect(secret).toEqual({ secretId: "arn:secret:munge", secretName: "nowscale/hpc-1/munge-key" });
    const input = sm.commandCalls(CreateSecretCommand)[0]?.args[0].input;
    expect(input?.KmsKeyId).toBe("arn:aws:kms:us-east-1:123456789012:key/k-1");
    expect(input?.SecretBinary).toHaveLength(1024);
    expect(input?.Tags).toContainEqual({ Key: "nowscale:cluster", Value: "hpc-1" });
  });

  it("maps throttling onto ThrottledError, which the workflow retries", async () => {
    // Prepare
    ec2.on(CreateVpcCommand).rejects(awsError("RequestLimitExceeded", 503));

    // Act
    const creating = adapter().createNetwork("hpc-1", { cidr: "10.42.0.0/16", zones: ["us-east-1a"] });

    // Assess
    await expect(creating).rejects.toBeInstanceOf(ThrottledError);
  });

  it("treats deleting what is already gone as success", async () => {
    // Prepare
    sm.on(DeleteSecretCommand).rejects(awsError("ResourceNotFoundException", 400));
    ec2.on(DeleteSubnetCommand).rejects(awsError("InvalidSubnetID.NotFound", 400));
    ec2.on(DeleteVpcCommand).rejects(awsError("InvalidVpcID.NotFound", 400));

    // Act
    const deleting = Promise.all([
      adapter().deleteSecret("arn:secret:gone"),
      adapter().deleteNetwork({ vpcId: "vpc-gone", subnetIds: ["subnet-gone"] }),
    ]);

    // Assess
    await expect(deleting).resolves.toBeDefined();
  });

  it("carves equal subnet blocks in order", () => {
    expect(subnetBlocks("10.0.0.0/24", 3)).toEqual(["10.0.0.0/28", "10.0.0.16/28", "10.0.0.32/28"]);
  });
});
