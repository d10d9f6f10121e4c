import {
  AssociateRouteTableCommand,
  AttachInternetGatewayCommand,
  AuthorizeSecurityGroupIngressCommand,
  CreateInternetGatewayCommand,
  CreateRouteCommand,
  CreateRouteTableCommand,
  CreateSecurityGroupCommand,
  CreateSubnetCommand,
  CreateVpcCommand,
  CreateVpcEndpointCommand,
  DeleteInternetGatewayCommand,
  DeleteRouteTableCommand,
  DeleteSecurityGroupCommand,
  DeleteSubnetCommand,
  DeleteVpcCommand,
  DeleteVpcEndpointsCommand,
  DescribeAvailabilityZonesCommand,
  DescribeInstancesCommand,
  DescribeInstanceTypeOfferingsCommand,
  DescribeInstanceTypesCommand,
  DescribeInternetGatewaysCommand,
  DescribeRouteTablesCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  DescribeVpcEndpointsCommand,
  DescribeVpcsCommand,
  DetachInternetGatewayCommand,
  DisassociateRouteTableCommand,
  EC2Client,
  EC2ServiceException,
  type Filter,
  ModifySubnetAttributeCommand,
  ModifyVpcAttributeCommand,
  RunInstancesCommand,
  StartInstancesCommand,
  StopInstancesCommand,
  type Tag,
  type TagSpecification,
  TerminateInstancesCommand,
} from "@aws-sdk/client-ec2";
import { InvokeCommand, LambdaClient } from "@aws-sdk/client-lambda";
import {
  CreateSecretCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  ListSecretsCommand,
  ResourceNotFoundException,
  SecretsManagerClient,
} from "@aws-sdk/client-secrets-manager";
import {
  DescribeExecutionCommand,
  ExecutionDoesNotExist,
  SFNClient,
  StartExecutionCommand,
} from "@aws-sdk/client-sfn";
import {
  GetCommandInvocationCommand,
  GetParameterCommand,
  SendCommandCommand,
  SSMClient,
} from "@aws-sdk/client-ssm";
import { mockClient } from "aws-sdk-client-mock";
import { awsCatalog } from "../../lib/core/catalogs/aws.js";
import { REPORT_SCHEMA_VERSION } from "../../lib/ports/agent-report.js";

/**
 * A small stateful AWS for tests: EC2 (network, instances), Secrets Manager, SSM, Step Functions and
 * Lambda answered from one in-memory world through aws-sdk-client-mock on the SDK's client classes, so
 * every client the code builds itself talks to it. Every call is recorded with a snapshot of what it
 * touched (the tags of the resources it names, as they were at the call), which the IAM simulation
 * (test/infra/iam-simulation.test.ts) turns into the requests AWS would authorize.
 */

export const ACCOUNT = "123456789012";
export const REGION = "us-east-1";

export interface Resource {
  id: string;
  type: string;
  tags: Record<string, string>;
  /** vpc, zone, cidr, state, group ids, route table's routes and associations, ... */
  attrs: Record<string, unknown>;
}

export interface SecretEntry {
  arn: string;
  name: string;
  tags: Record<string, string>;
  kmsKeyId: string;
  value: { SecretString?: string; SecretBinary?: Uint8Array };
}

export interface RecordedCall {
  service: string;
  command: string;
  input: Record<string, unknown>;
  output?: Record<string, unknown>;
  /** Resources the call names or creates, as they were when it was made (tags included). */
  touched: Resource[];
  /** Secrets the call names, as they were. */
  secrets: SecretEntry[];
}

/** What the SSM mock answers a Run Command with: a handler per command line (default: an empty ok report). */
export type RunCommandAnswer = (commands: string[]) => { stdout: string; code: number };

export class AwsWorld {
  readonly resources = new Map<string, Resource>();
  readonly secrets = new Map<string, SecretEntry>();
  readonly calls: RecordedCall[] = [];
  /** Public SSM parameters (name → value), e.g. the default image. */
  readonly parameters = new Map<string, string>();
  /** Instance types beyond the built-in catalog (e.g. Graviton ones), with their shape. */
  readonly extraTypes = new Map<string, { vcpus: number; memoryMiB: number; gpus: number }>();
  /** Zones each instance type is offered in; a type absent here is offered everywhere. */
  readonly offerings = new Map<string, string[]>();
  runCommand: RunCommandAnswer = () => ({ stdout: emptyReport(), code: 0 });
  /** ListSecrets answers as if nothing were made yet (its listing lags up to five minutes on AWS). */
  staleSecretListing = false;
  /** Names ListSecrets does not show yet (made in the last five minutes), while it shows the rest. */
  readonly unlistedSecrets = new Set<string>();
  /** Step Functions executions started here (ARN → status); `delete` one to make it unknown to DescribeExecution. */
  readonly executions = new Map<string, "RUNNING" | "SUCCEEDED" | "FAILED" | "ABORTED" | "TIMED_OUT">();
  /** Errors the next calls of a command throw, by command name. */
  private readonly faults = new Map<string, Error[]>();
  private readonly commands = new Map<string, { commands: string[]; instanceId: string }>();
  private counter = 0;
  private stubs: { restore(): void }[] = [];

  /** Mocks every client class; `restore()` undoes it. */
  install(): this {
    const ec2 = mockClient(EC2Client);
    const sm = mockClient(SecretsManagerClient);
    const ssm = mockClient(SSMClient);
    const sfn = mockClient(SFNClient);
    const lambda = mockClient(LambdaClient);
    this.stubs = [ec2, sm, ssm, sfn, lambda];
    const on = <I, O>(
      stub: { on(c: unknown): { callsFake(f: (i: I) => unknown): unknown } },
      service: string,
      command: { name: string },
      handler: (input: I, call: RecordedCall) => O,
    ) => {
      stub.on(command).callsFake((input: I) => {
        const name = command.name.replace(/Command$/, "");
        const call: RecordedCall = {
          service,
          command: name,
          input: structuredClone(input) as Record<string, unknown>,
          touched: [],
          secrets: [],
        };
        this.calls.push(call);
        const fault = this.faults.get(name)?.shift();
        if (fault !== undefined) throw fault;
        const output = handler(input, call) as Record<string, unknown>;
        call.output = output;
        return output;
      });
    };
    const e = (c: { name: string }, h: (input: never, call: RecordedCall) => unknown) =>
      on(ec2 as never, "ec2", c, h);
    e(CreateVpcCommand, (i: { CidrBlock: string; TagSpecifications?: TagSpecification[] }, call) => {
      const vpc = this.create("vpc", i.TagSpecifications, { cidr: i.CidrBlock }, call);
      // Every VPC comes with its main route table (local route only).
      this.put({
        id: this.id("rtb"),
        type: "route-table",
        tags: {},
        attrs: { vpcId: vpc.id, main: true, routes: [], associations: [] },
      });
      return { Vpc: { VpcId: vpc.id, CidrBlock: i.CidrBlock } };
    });
    e(
      ModifyVpcAttributeCommand,
      (
        i: {
          VpcId: string;
          EnableDnsSupport?: { Value?: boolean };
          EnableDnsHostnames?: { Value?: boolean };
        },
        call,
      ) => {
        const vpc = this.touch(i.VpcId, call);
        if (i.EnableDnsSupport !== undefined) vpc.attrs.dnsSupport = i.EnableDnsSupport.Value;
        if (i.EnableDnsHostnames !== undefined) vpc.attrs.dnsHostnames = i.EnableDnsHostnames.Value;
        return {};
      },
    );
    e(
      CreateSubnetCommand,
      (
        i: {
          VpcId: string;
          AvailabilityZone: string;
          CidrBlock: string;
          TagSpecifications?: TagSpecification[];
        },
        call,
      ) => {
        this.touch(i.VpcId, call);
        const s = this.create(
          "subnet",
          i.TagSpecifications,
          { vpcId: i.VpcId, zone: i.AvailabilityZone, cidr: i.CidrBlock },
          call,
        );
        return { Subnet: { SubnetId: s.id, VpcId: i.VpcId, AvailabilityZone: i.AvailabilityZone } };
      },
    );
    e(
      ModifySubnetAttributeCommand,
      (i: { SubnetId: string; MapPublicIpOnLaunch?: { Value?: boolean } }, call) => {
        const subnet = this.touch(i.SubnetId, call);
        if (i.MapPublicIpOnLaunch !== undefined) subnet.attrs.mapPublicIp = i.MapPublicIpOnLaunch.Value;
        return {};
      },
    );
    e(
      CreateSecurityGroupCommand,
      (i: { VpcId: string; GroupName: string; TagSpecifications?: TagSpecification[] }, call) => {
        this.touch(i.VpcId, call);
        const g = this.create(
          "security-group",
          i.TagSpecifications,
          { vpcId: i.VpcId, name: i.GroupName, ingress: [] },
          call,
        );
        return { GroupId: g.id };
      },
    );
    e(AuthorizeSecurityGroupIngressCommand, (i: { GroupId: string; IpPermissions: unknown[] }, call) => {
      const g = this.touch(i.GroupId, call);
      (g.attrs.ingress as unknown[]).push(...i.IpPermissions);
      return { Return: true };
    });
    e(CreateInternetGatewayCommand, (i: { TagSpecifications?: TagSpecification[] }, call) => {
      const g = this.create("internet-gateway", i.TagSpecifications, { attachments: [] }, call);
      return { InternetGateway: { InternetGatewayId: g.id } };
    });
    e(AttachInternetGatewayCommand, (i: { InternetGatewayId: string; VpcId: string }, call) => {
      const g = this.touch(i.InternetGatewayId, call);
      this.touch(i.VpcId, call);
      g.attrs.attachments = [i.VpcId];
      return {};
    });
    e(DetachInternetGatewayCommand, (i: { InternetGatewayId: string; VpcId: string }, call) => {
      const g = this.touch(i.InternetGatewayId, call);
      this.touch(i.VpcId, call);
      g.attrs.attachments = [];
      return {};
    });
    e(DeleteInternetGatewayCommand, (i: { InternetGatewayId: string }, call) => {
      const g = this.touch(i.InternetGatewayId, call);
      if ((g.attrs.attachments as string[]).length > 0) throw ec2Error("DependencyViolation", "attached");
      this.resources.delete(g.id);
      return {};
    });
    e(CreateRouteTableCommand, (i: { VpcId: string; TagSpecifications?: TagSpecification[] }, call) => {
      this.touch(i.VpcId, call);
      const t = this.create(
        "route-table",
        i.TagSpecifications,
        { vpcId: i.VpcId, main: false, routes: [], associations: [] },
        call,
      );
      return { RouteTable: { RouteTableId: t.id, VpcId: i.VpcId } };
    });
    e(
      CreateRouteCommand,
      (i: { RouteTableId: string; DestinationCidrBlock?: string; GatewayId?: string }, call) => {
        const t = this.touch(i.RouteTableId, call);
        // IAM authorizes CreateRoute on the route table only: the gateway is checked, not recorded.
        if (i.GatewayId !== undefined && !this.resources.has(i.GatewayId))
          throw ec2Error("InvalidGatewayID.NotFound", i.GatewayId);
        (t.attrs.routes as unknown[]).push({ destination: i.DestinationCidrBlock, gatewayId: i.GatewayId });
        return { Return: true };
      },
    );
    e(AssociateRouteTableCommand, (i: { RouteTableId: string; SubnetId: string }, call) => {
      const t = this.touch(i.RouteTableId, call);
      this.touch(i.SubnetId, call);
      const associationId = this.id("rtbassoc");
      (t.attrs.associations as { id: string; subnetId: string }[]).push({
        id: associationId,
        subnetId: i.SubnetId,
      });
      return { AssociationId: associationId };
    });
    e(DisassociateRouteTableCommand, (i: { AssociationId: string }, call) => {
      for (const t of this.ofType("route-table")) {
        const list = t.attrs.associations as { id: string }[];
        if (list.some((a) => a.id === i.AssociationId)) {
          call.touched.push(structuredClone(t));
          t.attrs.associations = list.filter((a) => a.id !== i.AssociationId);
          return {};
        }
      }
      throw ec2Error("InvalidAssociationID.NotFound", i.AssociationId);
    });
    e(DeleteRouteTableCommand, (i: { RouteTableId: string }, call) => {
      const t = this.touch(i.RouteTableId, call);
      if ((t.attrs.associations as unknown[]).length > 0) throw ec2Error("DependencyViolation", "associated");
      this.resources.delete(t.id);
      return {};
    });
    e(
      CreateVpcEndpointCommand,
      (
        i: {
          VpcId: string;
          ServiceName: string;
          VpcEndpointType?: string;
          SubnetIds?: string[];
          SecurityGroupIds?: string[];
          RouteTableIds?: string[];
          PrivateDnsEnabled?: boolean;
          TagSpecifications?: TagSpecification[];
        },
        call,
      ) => {
        this.touch(i.VpcId, call);
        for (const id of [...(i.SubnetIds ?? []), ...(i.SecurityGroupIds ?? []), ...(i.RouteTableIds ?? [])])
          this.touch(id, call);
        const ep = this.create(
          "vpc-endpoint",
          i.TagSpecifications,
          {
            vpcId: i.VpcId,
            service: i.ServiceName,
            endpointType: i.VpcEndpointType ?? "Gateway",
            subnetIds: i.SubnetIds ?? [],
            securityGroupIds: i.SecurityGroupIds ?? [],
            routeTableIds: i.RouteTableIds ?? [],
            privateDns: i.PrivateDnsEnabled ?? false,
          },
          call,
        );
        return { VpcEndpoint: { VpcEndpointId: ep.id, ServiceName: i.ServiceName } };
      },
    );
    e(DeleteVpcEndpointsCommand, (i: { VpcEndpointIds: string[] }, call) => {
      for (const id of i.VpcEndpointIds) {
        this.touch(id, call);
        this.resources.delete(id);
      }
      return { Unsuccessful: [] };
    });
    e(DeleteSecurityGroupCommand, (i: { GroupId: string }, call) => {
      const g = this.touchOrNotFound(i.GroupId, call, "InvalidGroup.NotFound");
      const users = [...this.ofType("instance"), ...this.ofType("vpc-endpoint")].filter(
        (r) =>
          r.attrs.state !== "terminated" &&
          ((r.attrs.securityGroupIds as string[] | undefined) ?? []).includes(g.id),
      );
      if (users.length > 0) throw ec2Error("DependencyViolation", `${g.id} is in use`);
      this.resources.delete(g.id);
      return {};
    });
    e(DeleteSubnetCommand, (i: { SubnetId: string }, call) => {
      const s = this.touchOrNotFound(i.SubnetId, call, "InvalidSubnetID.NotFound");
      const users = [...this.ofType("instance"), ...this.ofType("vpc-endpoint")].filter(
        (r) =>
          r.attrs.state !== "terminated" &&
          (r.attrs.subnetId === s.id || ((r.attrs.subnetIds as string[] | undefined) ?? []).includes(s.id)),
      );
      if (users.length > 0) throw ec2Error("DependencyViolation", `${s.id} has dependencies`);
      this.resources.delete(s.id);
      return {};
    });
    e(DeleteVpcCommand, (i: { VpcId: string }, call) => {
      const v = this.touchOrNotFound(i.VpcId, call, "InvalidVpcID.NotFound");
      const left = [...this.resources.values()].filter(
        (r) =>
          r.attrs.state !== "terminated" &&
          !(r.type === "route-table" && r.attrs.main === true) &&
          (r.attrs.vpcId === v.id ||
            (r.type === "internet-gateway" && (r.attrs.attachments as string[]).includes(v.id))),
      );
      if (left.length > 0)
        throw ec2Error(
          "DependencyViolation",
          `${v.id} has dependencies: ${left.map((r) => r.id).join(", ")}`,
        );
      for (const t of this.ofType("route-table")) if (t.attrs.vpcId === v.id) this.resources.delete(t.id);
      this.resources.delete(v.id);
      return {};
    });
    const describe = (type: string, filters: Filter[] | undefined) =>
      this.ofType(type).filter((r) => matches(r, filters ?? []));
    e(DescribeVpcsCommand, (i: { Filters?: Filter[] }) => ({
      Vpcs: describe("vpc", i.Filters).map((r) => ({
        VpcId: r.id,
        CidrBlock: r.attrs.cidr,
        Tags: tagList(r.tags),
      })),
    }));
    e(DescribeSubnetsCommand, (i: { Filters?: Filter[]; SubnetIds?: string[] }) => ({
      Subnets: describe("subnet", i.Filters)
        .filter((r) => i.SubnetIds === undefined || i.SubnetIds.includes(r.id))
        .map((r) => ({
          SubnetId: r.id,
          VpcId: r.attrs.vpcId,
          AvailabilityZone: r.attrs.zone,
          CidrBlock: r.attrs.cidr,
          MapPublicIpOnLaunch: r.attrs.mapPublicIp === true,
          Tags: tagList(r.tags),
        })),
    }));
    e(DescribeSecurityGroupsCommand, (i: { Filters?: Filter[] }) => ({
      SecurityGroups: describe("security-group", i.Filters).map((r) => ({
        GroupId: r.id,
        VpcId: r.attrs.vpcId,
        Tags: tagList(r.tags),
      })),
    }));
    e(DescribeInternetGatewaysCommand, (i: { Filters?: Filter[] }) => ({
      InternetGateways: describe("internet-gateway", i.Filters).map((r) => ({
        InternetGatewayId: r.id,
        Attachments: (r.attrs.attachments as string[]).map((VpcId) => ({ VpcId, State: "available" })),
        Tags: tagList(r.tags),
      })),
    }));
    e(DescribeRouteTablesCommand, (i: { Filters?: Filter[] }) => ({
      RouteTables: describe("route-table", i.Filters).map((r) => ({
        RouteTableId: r.id,
        VpcId: r.attrs.vpcId,
        Routes: (r.attrs.routes as { destination?: string; gatewayId?: string }[]).map((x) => ({
          DestinationCidrBlock: x.destination,
          GatewayId: x.gatewayId,
        })),
        Associations: [
          ...(r.attrs.main === true ? [{ Main: true, RouteTableId: r.id }] : []),
          ...(r.attrs.associations as { id: string; subnetId: string }[]).map((a) => ({
            RouteTableAssociationId: a.id,
            SubnetId: a.subnetId,
            Main: false,
          })),
        ],
        Tags: tagList(r.tags),
      })),
    }));
    e(DescribeVpcEndpointsCommand, (i: { Filters?: Filter[] }) => ({
      VpcEndpoints: describe("vpc-endpoint", i.Filters).map((r) => ({
        VpcEndpointId: r.id,
        VpcId: r.attrs.vpcId,
        ServiceName: r.attrs.service,
        VpcEndpointType: r.attrs.endpointType,
        State: "available",
        Tags: tagList(r.tags),
      })),
    }));
    e(
      RunInstancesCommand,
      (
        i: {
          ImageId: string;
          InstanceType: string;
          MinCount: number;
          MaxCount: number;
          SubnetId?: string;
          SecurityGroupIds?: string[];
          Placement?: { AvailabilityZone?: string };
          TagSpecifications?: TagSpecification[];
          InstanceMarketOptions?: { MarketType?: string };
          IamInstanceProfile?: { Arn?: string };
        },
        call,
      ) => {
        const subnet = i.SubnetId === undefined ? undefined : this.touch(i.SubnetId, call);
        for (const g of i.SecurityGroupIds ?? []) {
          const group = this.touch(g, call);
          // EC2's rule: the groups must be in the instance's VPC (the default VPC without a subnet).
          if (group.attrs.vpcId !== (subnet?.attrs.vpcId ?? "vpc-default"))
            throw ec2Error("InvalidParameter", `security group ${g} and subnet belong to different networks`);
        }
        const zone =
          (subnet?.attrs.zone as string | undefined) ?? i.Placement?.AvailabilityZone ?? `${REGION}a`;
        const offered = this.offerings.get(i.InstanceType);
        if (offered !== undefined && !offered.includes(zone))
          throw ec2Error("Unsupported", `${i.InstanceType} is not supported in ${zone}`);
        // resolve:ssm:NAME is EC2's own way to launch from an SSM parameter's image.
        let imageId = i.ImageId;
        if (imageId.startsWith("resolve:ssm:")) {
          const resolved = this.parameters.get(imageId.slice("resolve:ssm:".length));
          if (resolved === undefined) throw ec2Error("InvalidParameterValue", `cannot resolve ${imageId}`);
          imageId = resolved;
        }
        const tags = tagsOf(i.TagSpecifications, "instance");
        const started = Array.from({ length: i.MaxCount }, () =>
          this.put({
            id: this.id("i"),
            type: "instance",
            tags,
            attrs: {
              state: "running",
              instanceType: i.InstanceType,
              zone,
              subnetId: i.SubnetId,
              vpcId: subnet?.attrs.vpcId ?? "vpc-default",
              securityGroupIds: i.SecurityGroupIds ?? [],
              imageId,
              spot: i.InstanceMarketOptions?.MarketType === "spot",
              privateIp: `10.42.0.${++this.counter % 250}`,
              profile: i.IamInstanceProfile?.Arn,
            },
          }),
        );
        call.touched.push(...started.map((r) => structuredClone(r)));
        return { Instances: started.map(instanceOut) };
      },
    );
    e(TerminateInstancesCommand, (i: { InstanceIds: string[] }, call) => {
      for (const id of i.InstanceIds) {
        const r = this.resources.get(id);
        if (r === undefined)
          throw ec2Error("InvalidInstanceID.NotFound", `The instance ID '${id}' does not exist`);
        call.touched.push(structuredClone(r));
      }
      for (const id of i.InstanceIds) {
        const r = this.resources.get(id);
        if (r !== undefined) r.attrs.state = "terminated";
      }
      return {
        TerminatingInstances: i.InstanceIds.map((InstanceId) => ({
          InstanceId,
          CurrentState: { Name: "shutting-down" },
        })),
      };
    });
    // Sleep and wake stop and start a master (lib/providers/aws-ec2/master-power.ts).
    for (const [command, state] of [
      [StopInstancesCommand, "stopped"],
      [StartInstancesCommand, "running"],
    ] as const)
      e(command, (i: { InstanceIds: string[] }, call) => {
        for (const id of i.InstanceIds) {
          const r = this.resources.get(id);
          if (r === undefined)
            throw ec2Error("InvalidInstanceID.NotFound", `The instance ID '${id}' does not exist`);
          call.touched.push(structuredClone(r));
          r.attrs.state = state;
        }
        return {};
      });
    e(DescribeInstancesCommand, (i: { Filters?: Filter[] }) => {
      const found = describe("instance", i.Filters);
      return { Reservations: found.length === 0 ? [] : [{ Instances: found.map(instanceOut) }] };
    });
    e(DescribeInstanceTypesCommand, (i: { InstanceTypes?: string[]; NextToken?: string }) => {
      for (const name of i.InstanceTypes ?? [])
        if (awsCatalog[name] === undefined && !this.extraTypes.has(name))
          throw ec2Error(
            "InvalidInstanceType",
            `The following supplied instance types do not exist: [${name}]`,
          );
      return {
        InstanceTypes: (i.InstanceTypes ?? []).map((name) => {
          const info = awsCatalog[name] ?? this.extraTypes.get(name);
          return {
            InstanceType: name,
            VCpuInfo: { DefaultVCpus: info?.vcpus },
            ProcessorInfo: {
              SupportedArchitectures: /^[a-z]+\d+g[a-z]*\./.test(name) ? ["arm64"] : ["x86_64"],
            },
            MemoryInfo: { SizeInMiB: info?.memoryMiB },
            ...((info?.gpus ?? 0) > 0 ? { GpuInfo: { Gpus: [{ Count: info?.gpus }] } } : {}),
          };
        }),
      };
    });
    // The region's zones, as the API's zone check reads them (lib/control/zones.ts).
    e(DescribeAvailabilityZonesCommand, () => ({
      AvailabilityZones: ["a", "b", "c"].map((z) => ({ ZoneName: `${REGION}${z}`, State: "available" })),
    }));
    e(
      DescribeInstanceTypeOfferingsCommand,
      (i: { Filters?: Filter[]; NextToken?: string; MaxResults?: number }) => {
        const all = Object.keys(awsCatalog).flatMap((name) => {
          const zones = this.offerings.get(name);
          return zones === undefined ? [name] : zones.length > 0 ? [name] : [];
        });
        const wanted = i.Filters?.find((f) => f.Name === "instance-type")?.Values;
        const list = all.filter((n) => wanted === undefined || wanted.includes(n));
        const start = Number(i.NextToken ?? 0);
        const size = i.MaxResults ?? 1000;
        const page = list.slice(start, start + size);
        return {
          InstanceTypeOfferings: page.map((InstanceType) => ({
            InstanceType,
            LocationType: "region",
            Location: REGION,
          })),
          ...(start + size < list.length ? { NextToken: String(start + size) } : {}),
        };
      },
    );

    const s = (c: { name: string }, h: (input: never, call: RecordedCall) => unknown) =>
      on(sm as never, "secretsmanager", c, h);
    s(
      CreateSecretCommand,
      (
        i: {
          Name: string;
          KmsKeyId?: string;
          SecretString?: string;
          SecretBinary?: Uint8Array;
          Tags?: Tag[];
        },
        call,
      ) => {
        if ([...this.secrets.values()].some((x) => x.name === i.Name))
          throw Object.assign(new Error("exists"), {
            name: "ResourceExistsException",
            $metadata: { httpStatusCode: 400 },
          });
        const entry = this.putSecret(
          i.Name,
          Object.fromEntries((i.Tags ?? []).map((t) => [t.Key, t.Value])),
          i.KmsKeyId ?? "aws/secretsmanager",
          {
            ...(i.SecretString === undefined ? {} : { SecretString: i.SecretString }),
            ...(i.SecretBinary === undefined ? {} : { SecretBinary: i.SecretBinary }),
          },
        );
        call.secrets.push(structuredClone(entry));
        return { ARN: entry.arn, Name: entry.name };
      },
    );
    s(DescribeSecretCommand, (i: { SecretId: string }, call) => {
      const entry = this.secret(i.SecretId);
      if (entry === undefined) {
        call.secrets.push({
          arn: secretArn(i.SecretId, ""),
          name: i.SecretId,
          tags: {},
          kmsKeyId: "",
          value: {},
        });
        throw new ResourceNotFoundException({ message: "not found", $metadata: { httpStatusCode: 400 } });
      }
      call.secrets.push(structuredClone(entry));
      return { ARN: entry.arn, Name: entry.name, Tags: tagList(entry.tags) };
    });
    s(GetSecretValueCommand, (i: { SecretId: string }, call) => {
      const entry = this.secret(i.SecretId);
      if (entry === undefined)
        throw new ResourceNotFoundException({ message: "not found", $metadata: { httpStatusCode: 400 } });
      call.secrets.push(structuredClone(entry));
      return { ARN: entry.arn, Name: entry.name, ...entry.value };
    });
    s(DeleteSecretCommand, (i: { SecretId: string }, call) => {
      const entry = this.secret(i.SecretId);
      if (entry === undefined)
        throw new ResourceNotFoundException({ message: "not found", $metadata: { httpStatusCode: 400 } });
      call.secrets.push(structuredClone(entry));
      this.secrets.delete(entry.arn);
      return { ARN: entry.arn };
    });
    s(ListSecretsCommand, (i: { Filters?: { Key: string; Values: string[] }[] }) => {
      // ListSecrets is eventually consistent: "might not reflect changes from the last five minutes".
      if (this.staleSecretListing) return { SecretList: [] };
      const keys = i.Filters?.find((f) => f.Key === "tag-key")?.Values ?? [];
      const values = i.Filters?.find((f) => f.Key === "tag-value")?.Values ?? [];
      return {
        SecretList: [...this.secrets.values()]
          .filter(
            // As on AWS, each filter matches any tag's key (or value) by prefix, independently.
            (x) =>
              !this.unlistedSecrets.has(x.name) &&
              keys.every((k) => Object.keys(x.tags).some((t) => t.startsWith(k))) &&
              values.every((v) => Object.values(x.tags).some((t) => t.startsWith(v))),
          )
          .map((x) => ({ ARN: x.arn, Name: x.name, Tags: tagList(x.tags) })),
      };
    });

    const m = (c: { name: string }, h: (input: never, call: RecordedCall) => unknown) =>
      on(ssm as never, "ssm", c, h);
    m(
      SendCommandCommand,
      (i: { DocumentName: string; InstanceIds: string[]; Parameters?: Record<string, string[]> }, call) => {
        for (const id of i.InstanceIds) this.touch(id, call);
        const commandId = `cmd-${++this.counter}`;
        const [instanceId = ""] = i.InstanceIds;
        this.commands.set(commandId, {
          commands: documentCommands(i.DocumentName, i.Parameters ?? {}),
          instanceId,
        });
        return { Command: { CommandId: commandId, DocumentName: i.DocumentName } };
      },
    );
    m(GetCommandInvocationCommand, (i: { CommandId: string; InstanceId: string }) => {
      const sent = this.commands.get(i.CommandId);
      if (sent === undefined)
        throw Object.assign(new Error("no invocation"), {
          name: "InvocationDoesNotExist",
          $metadata: { httpStatusCode: 400 },
        });
      const { stdout, code } = this.runCommand(sent.commands);
      return { Status: code === 0 ? "Success" : "Failed", StandardOutputContent: stdout, ResponseCode: code };
    });
    m(GetParameterCommand, (i: { Name: string }) => {
      const value = this.parameters.get(i.Name);
      if (value === undefined)
        throw Object.assign(new Error(`parameter ${i.Name} not found`), {
          name: "ParameterNotFound",
          $metadata: { httpStatusCode: 400 },
        });
      return { Parameter: { Name: i.Name, Value: value, Type: "String" } };
    });
    on(sfn as never, "states", StartExecutionCommand, (i: { stateMachineArn: string; name: string }) => {
      const executionArn = `${i.stateMachineArn.replace(":stateMachine:", ":execution:")}:${i.name}`;
      if (!this.executions.has(executionArn)) this.executions.set(executionArn, "RUNNING");
      return { executionArn, startDate: new Date(0) };
    });
    on(sfn as never, "states", DescribeExecutionCommand, (i: { executionArn: string }) => {
      const status = this.executions.get(i.executionArn);
      if (status === undefined)
        throw new ExecutionDoesNotExist({ message: `no execution ${i.executionArn}`, $metadata: {} });
      return { executionArn: i.executionArn, status, startDate: new Date(0) };
    });
    on(lambda as never, "lambda", InvokeCommand, () => ({ StatusCode: 202 }));
    return this;
  }

  restore(): void {
    for (const stub of this.stubs) stub.restore();
    this.stubs = [];
  }

  /** The next `times` calls of `command` (e.g. "RunInstances") throw `error`. */
  failNext(command: string, error: Error, times = 1): void {
    const list = this.faults.get(command) ?? [];
    for (let i = 0; i < times; i++) list.push(error);
    this.faults.set(command, list);
  }

  /** The `nth` next call of `command` (1 = the next) throws `error`; those before it answer as usual. */
  failAt(command: string, nth: number, error: Error): void {
    const list = this.faults.get(command) ?? [];
    // An undefined fault lets its call through (install's handler throws only a defined one).
    for (let i = 1; i < nth; i++) list.push(undefined as unknown as Error);
    list.push(error);
    this.faults.set(command, list);
  }

  clearFaults(): void {
    this.faults.clear();
  }

  /** A resource made outside NowScale (the user's VPC, say). */
  put(resource: Resource): Resource {
    this.resources.set(resource.id, resource);
    return resource;
  }

  putSecret(
    name: string,
    tags: Record<string, string>,
    kmsKeyId: string,
    value: SecretEntry["value"],
    arn?: string,
  ): SecretEntry {
    const entry: SecretEntry = { arn: arn ?? secretArn(name, `-${"AbCdEf"}`), name, tags, kmsKeyId, value };
    this.secrets.set(entry.arn, entry);
    return entry;
  }

  ofType(type: string): Resource[] {
    return [...this.resources.values()].filter((r) => r.type === type);
  }

  /** Live (not terminated) resources carrying `key` = `value`. */
  tagged(key: string, value: string): Resource[] {
    return [...this.resources.values()].filter(
      (r) => r.tags[key] === value && r.attrs.state !== "terminated",
    );
  }

  id(prefix: string): string {
    this.counter += 1;
    return `${prefix}-0${this.counter.toString(16).padStart(16, "0")}`;
  }

  private create(
    type: string,
    specs: TagSpecification[] | undefined,
    attrs: Record<string, unknown>,
    call: RecordedCall,
  ): Resource {
    const prefix =
      {
        vpc: "vpc",
        subnet: "subnet",
        "security-group": "sg",
        "internet-gateway": "igw",
        "route-table": "rtb",
        "vpc-endpoint": "vpce",
      }[type] ?? type;
    const r = this.put({ id: this.id(prefix), type, tags: tagsOf(specs, type), attrs });
    call.touched.push(structuredClone(r));
    return r;
  }

  private touch(id: string, call: RecordedCall): Resource {
    const r = this.resources.get(id);
    if (r === undefined) throw ec2Error(`Invalid${kindName(id)}ID.NotFound`, `The ID '${id}' does not exist`);
    call.touched.push(structuredClone(r));
    return r;
  }

  private touchOrNotFound(id: string, call: RecordedCall, code: string): Resource {
    const r = this.resources.get(id);
    if (r === undefined) throw ec2Error(code, `The ID '${id}' does not exist`);
    call.touched.push(structuredClone(r));
    return r;
  }

  private secret(idOrName: string): SecretEntry | undefined {
    return this.secrets.get(idOrName) ?? [...this.secrets.values()].find((x) => x.name === idOrName);
  }
}

export function secretArn(name: string, suffix: string): string {
  return `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${name}${suffix}`;
}

/** An agent report with no jobs and no nodes, as `nowscale-agent report` prints it. */
export function emptyReport(): string {
  return JSON.stringify({
    schemaVersion: REPORT_SCHEMA_VERSION,
    agentVersion: "0.1.0",
    scheduler: "slurm",
    generatedAt: new Date(0).toISOString(),
    status: "ok",
    slurmVersion: "22.05.8",
    source: "json",
    jobs: [],
    nodes: [],
    unmanagedNodes: [],
    ignored: { jobs: 0, nodes: 0, examples: [] },
  });
}

function kindName(id: string): string {
  const prefix = id.split("-")[0] ?? "";
  return (
    {
      vpc: "Vpc",
      subnet: "Subnet",
      sg: "Group",
      igw: "InternetGateway",
      rtb: "RouteTable",
      i: "Instance",
      vpce: "VpcEndpoint",
    }[prefix] ?? "Resource"
  );
}

function ec2Error(code: string, message: string): EC2ServiceException {
  return new EC2ServiceException({
    name: code,
    $fault: "client",
    message,
    $metadata: { httpStatusCode: 400 },
  });
}

function tagsOf(specs: TagSpecification[] | undefined, type: string): Record<string, string> {
  const spec = specs?.find((s) => s.ResourceType === type);
  return Object.fromEntries((spec?.Tags ?? []).map((t) => [t.Key ?? "", t.Value ?? ""]));
}

function tagList(tags: Record<string, string>): Tag[] {
  return Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
}

function matches(r: Resource, filters: Filter[]): boolean {
  return filters.every((f) => {
    const values = f.Values ?? [];
    const name = f.Name ?? "";
    if (name.startsWith("tag:")) return values.includes(r.tags[name.slice(4)] ?? "\u0000");
    if (name === "tag-key") return values.some((v) => v in r.tags);
    if (name === "vpc-id") return values.includes(String(r.attrs.vpcId));
    if (name === "instance-id") return values.includes(r.id);
    if (name === "instance-state-name") return values.includes(String(r.attrs.state));
    if (name === "attachment.vpc-id")
      return ((r.attrs.attachments as string[] | undefined) ?? []).some((v) => values.includes(v));
    if (name === "association.main") return values.includes(String(r.attrs.main === true));
    return false;
  });
}

function instanceOut(r: Resource) {
  return {
    InstanceId: r.id,
    InstanceType: r.attrs.instanceType,
    ImageId: r.attrs.imageId,
    Placement: { AvailabilityZone: r.attrs.zone },
    State: { Name: r.attrs.state },
    PrivateIpAddress: r.attrs.privateIp,
    SubnetId: r.attrs.subnetId,
    VpcId: r.attrs.vpcId,
    LaunchTime: new Date(0),
    Tags: tagList(r.tags),
    ...(r.attrs.spot === true ? { InstanceLifecycle: "spot" } : {}),
  } as never;
}

/** The shell lines a Run Command document runs on the instance. */
function documentCommands(document: string, parameters: Record<string, string[]>): string[] {
  if (document === "AWS-RunShellScript") return parameters.commands ?? [];
  // A custom document: its parameters, as `name=value` words, are what the test can see.
  return Object.entries(parameters).map(([k, v]) => `${k}=${v.join(",")}`);
}
