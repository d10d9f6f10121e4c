import { randomBytes } from "node:crypto";
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
  DescribeInternetGatewaysCommand,
  DescribeRouteTablesCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  DescribeVpcEndpointsCommand,
  DescribeVpcsCommand,
  DetachInternetGatewayCommand,
  DisassociateRouteTableCommand,
  EC2Client,
  ModifySubnetAttributeCommand,
  ModifyVpcAttributeCommand,
} from "@aws-sdk/client-ec2";
import {
  CreateSecretCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  FilterNameStringType,
  paginateListSecrets,
  type SecretListEntry,
  SecretsManagerClient,
} from "@aws-sdk/client-secrets-manager";
import type {
  ClusterResourceRef,
  ClusterResources,
  CreatedNetwork,
  NetworkSpec,
  SecretKind,
} from "../../ports/cluster-resources.js";
import { secretName } from "../../ports/cluster-resources.js";
import { USER_NAME } from "../../ports/cluster-users.js";
import { type CloudProviderError, InvalidRequestError, isCloudProviderError } from "../../ports/errors.js";
import { CLUSTER_TAG, MANAGED_TAG, SECRET_KIND_TAG, SECRET_VPC_TAG, tagsToList } from "../../ports/tags.js";
import { USER_SECRET_KIND, userSecretName } from "../../ports/user-secrets.js";
import { subnetBlocks } from "../shared/subnet-blocks.js";
import { fromEc2Error } from "./errors.js";

export interface AwsClusterResourcesOptions {
  ec2?: EC2Client;
  secrets?: SecretsManagerClient;
  region?: string;
  /** The customer-managed KMS key the secrets are encrypted with (the stack's key). */
  kmsKeyId: string;
}

/** On the parts of the network that are not the cluster's own resources (the endpoints' group). */
const PART_TAG = "nowscale:part";
/** The interface endpoints a cluster's nodes need: the SSM agent's three services and Secrets Manager. */
export const INTERFACE_ENDPOINTS = ["ssm", "ssmmessages", "ec2messages", "secretsmanager"] as const;

/**
 * ClusterResources on AWS: a VPC with one subnet per zone and a self-referencing security group (EC2),
 * the munge key and the agent's HMAC key in Secrets Manager under the stack's KMS key. Every resource
 * carries `nowscale:cluster` and `nowscale:managed` from its creation call, which the stack's IAM
 * policy requires (aws:RequestTag) and which `list` and the delete permissions (aws:ResourceTag) use.
 */
export class AwsClusterResources implements ClusterResources {
  private readonly ec2: EC2Client;
  private readonly secrets: SecretsManagerClient;

  constructor(private readonly options: AwsClusterResourcesOptions) {
    const region = options.region === undefined ? {} : { region: options.region };
    this.ec2 = options.ec2 ?? new EC2Client(region);
    this.secrets = options.secrets ?? new SecretsManagerClient(region);
  }

  /**
   * The cluster's VPC, made whole step by step; each step first looks for what a crashed earlier
   * attempt made (by tag, or by VPC), so a retried step finishes the network instead of making a second:
   * - the VPC (DNS hostnames on, for the endpoints' private names), one subnet per zone;
   * - egress: an internet gateway and a route table (0.0.0.0/0 → gateway) for every subnet, whose
   *   instances get a public IPv4 address; nothing gets in, as the cluster's security group admits only
   *   its members (a NAT gateway would cost $32 a month more per cluster for the same result);
   * - a gateway endpoint for S3 (free) on that route table;
   * - unless `interfaceEndpoints` is false: interface endpoints for SSM, SSM messages, EC2 messages and
   *   Secrets Manager in the first zone's subnet, behind a security group that admits HTTPS from the VPC,
   *   so the SSM agent and the boot scripts' secrets never leave AWS's network.
   */
  async createNetwork(clusterId: string, spec: NetworkSpec): Promise<CreatedNetwork> {
    const existing = await this.findNetwork(clusterId);
    const vpcId = existing?.vpcId ?? (await this.createVpc(clusterId, spec.cidr));
    await this.ec2Call(() =>
      this.ec2.send(new ModifyVpcAttributeCommand({ VpcId: vpcId, EnableDnsHostnames: { Value: true } })),
    );
    const vpcFilter = [{ Name: "vpc-id", Values: [vpcId] }];
    const subnets = await this.ec2Call(() =>
      this.ec2.send(new DescribeSubnetsCommand({ Filters: vpcFilter })),
    );
    const blocks = subnetBlocks(spec.cidr, spec.zones.length);
    const subnetIds: string[] = [];
    for (const [i, zone] of spec.zones.entries()) {
      const found = (subnets.Subnets ?? []).find((x) => x.AvailabilityZone === zone)?.SubnetId;
      const subnetId =
        found ??
        (
          await this.ec2Call(() =>
            this.ec2.send(
              new CreateSubnetCommand({
                VpcId: vpcId,
                AvailabilityZone: zone,
                CidrBlock: blocks[i],
                TagSpecifications: [
                  { ResourceType: "subnet", Tags: tags(clusterId, `nowscale-${clusterId}-${zone}`) },
                ],
              }),
            ),
          )
        ).Subnet?.SubnetId;
      if (subnetId === undefined) throw fromEc2Error(new Error("CreateSubnet returned no SubnetId"));
      subnetIds.push(subnetId);
    }
    const gatewayId = await this.ensureInternetGateway(clusterId, vpcId);
    const routeTableId = await this.ensureRouteTable(clusterId, vpcId, gatewayId, subnetIds);
    for (const subnetId of subnetIds) {
      await this.ec2Call(() =>
        this.ec2.send(
          new ModifySubnetAttributeCommand({ SubnetId: subnetId, MapPublicIpOnLaunch: { Value: true } }),
        ),
      );
    }
    const region = await this.region();
    const endpoints = await this.ec2Call(() =>
      this.ec2.send(new DescribeVpcEndpointsCommand({ Filters: vpcFilter })),
    );
    const has = (service: string) =>
      (endpoints.VpcEndpoints ?? []).some(
        (e) => e.ServiceName === service && !["deleting", "deleted"].includes(String(e.State).toLowerCase()),
      );
    const s3 = `com.amazonaws.${region}.s3`;
    if (!has(s3)) {
      await this.ec2Call(() =>
        this.ec2.send(
          new CreateVpcEndpointCommand({
            VpcId: vpcId,
            ServiceName: s3,
            VpcEndpointType: "Gateway",
            RouteTableIds: [routeTableId],
            TagSpecifications: [
              { ResourceType: "vpc-endpoint", Tags: tags(clusterId, `nowscale-${clusterId}-s3`) },
            ],
          }),
        ),
      );
    }
    if (spec.interfaceEndpoints !== false) {
      const groupId = await this.ensureEndpointGroup(clusterId, vpcId, spec.cidr);
      const [first] = subnetIds;
      for (const name of INTERFACE_ENDPOINTS) {
        const service = `com.amazonaws.${region}.${name}`;
        if (has(service) || first === undefined) continue;
        await this.ec2Call(() =>
          this.ec2.send(
            new CreateVpcEndpointCommand({
              VpcId: vpcId,
              ServiceName: service,
              VpcEndpointType: "Interface",
              SubnetIds: [first],
              SecurityGroupIds: [groupId],
              PrivateDnsEnabled: true,
              TagSpecifications: [
                { ResourceType: "vpc-endpoint", Tags: tags(clusterId, `nowscale-${clusterId}-${name}`) },
              ],
            }),
          ),
        );
      }
    }
    return { vpcId, subnetIds };
  }

  /**
   * The user's own network, checked before anything is made in it: every subnet exists and is in the
   * VPC, and each has a way out: a default route through an internet gateway (with public addresses on
   * launch) or a NAT, or the VPC has the SSM, SSM messages, EC2 messages and Secrets Manager endpoints.
   * Throws InvalidRequestError naming the field (network.subnetIds[i]).
   */
  async validateNetwork(network: { vpcId: string; subnetIds: readonly string[] }): Promise<void> {
    const vpcFilter = [{ Name: "vpc-id", Values: [network.vpcId] }];
    const described = await this.ec2Call(() =>
      this.ec2.send(new DescribeSubnetsCommand({ Filters: vpcFilter })),
    );
    const tables = await this.ec2Call(() =>
      this.ec2.send(new DescribeRouteTablesCommand({ Filters: vpcFilter })),
    );
    const endpoints = await this.ec2Call(() =>
      this.ec2.send(new DescribeVpcEndpointsCommand({ Filters: vpcFilter })),
    );
    const region = await this.region();
    const missing = INTERFACE_ENDPOINTS.filter(
      (name) =>
        !(endpoints.VpcEndpoints ?? []).some((e) => e.ServiceName === `com.amazonaws.${region}.${name}`),
    );
    const main = (tables.RouteTables ?? []).find((t) => (t.Associations ?? []).some((a) => a.Main === true));
    for (const [i, subnetId] of network.subnetIds.entries()) {
      const field = `network.subnetIds[${i}]`;
      const subnet = (described.Subnets ?? []).find((x) => x.SubnetId === subnetId);
      if (subnet === undefined)
        throw new InvalidRequestError(`${field}: subnet ${subnetId} does not exist in ${network.vpcId}`);
      const table =
        (tables.RouteTables ?? []).find((t) => (t.Associations ?? []).some((a) => a.SubnetId === subnetId)) ??
        main;
      const out = (table?.Routes ?? []).find(
        (r) => r.DestinationCidrBlock === "0.0.0.0/0" && r.State !== "blackhole",
      );
      const viaGateway = out?.GatewayId?.startsWith("igw-") === true;
      const viaNat = out?.NatGatewayId !== undefined || out?.TransitGatewayId !== undefined;
      if (viaNat || (viaGateway && subnet.MapPublicIpOnLaunch === true) || missing.length === 0) continue;
      throw new InvalidRequestError(
        viaGateway
          ? `${field}: subnet ${subnetId} routes to an internet gateway but gives no public address on launch (MapPublicIpOnLaunch), and the VPC lacks endpoints for ${missing.join(", ")}`
          : `${field}: subnet ${subnetId} has no way out: no 0.0.0.0/0 route through an internet or NAT gateway, and the VPC lacks endpoints for ${missing.join(", ")}`,
      );
    }
  }

  private async findNetwork(clusterId: string): Promise<{ vpcId: string } | undefined> {
    const vpcs = await this.ec2Call(() =>
      this.ec2.send(
        new DescribeVpcsCommand({ Filters: [{ Name: `tag:${CLUSTER_TAG}`, Values: [clusterId] }] }),
      ),
    );
    const vpcId = vpcs.Vpcs?.[0]?.VpcId;
    return vpcId === undefined ? undefined : { vpcId };
  }

  private async createVpc(clusterId: string, cidr: string): Promise<string> {
    const vpc = await this.ec2Call(() =>
      this.ec2.send(
        new CreateVpcCommand({
          CidrBlock: cidr,
          TagSpecifications: [{ ResourceType: "vpc", Tags: tags(clusterId, `nowscale-${clusterId}`) }],
        }),
      ),
    );
    const vpcId = vpc.Vpc?.VpcId;
    if (vpcId === undefined) throw fromEc2Error(new Error("CreateVpc returned no VpcId"));
    return vpcId;
  }

  private async ensureInternetGateway(clusterId: string, vpcId: string): Promise<string> {
    const attached = await this.ec2Call(() =>
      this.ec2.send(
        new DescribeInternetGatewaysCommand({ Filters: [{ Name: "attachment.vpc-id", Values: [vpcId] }] }),
      ),
    );
    const found = attached.InternetGateways?.[0]?.InternetGatewayId;
    if (found !== undefined) return found;
    const made = await this.ec2Call(() =>
      this.ec2.send(
        new CreateInternetGatewayCommand({
          TagSpecifications: [
            { ResourceType: "internet-gateway", Tags: tags(clusterId, `nowscale-${clusterId}`) },
          ],
        }),
      ),
    );
    const gatewayId = made.InternetGateway?.InternetGatewayId;
    if (gatewayId === undefined) throw fromEc2Error(new Error("CreateInternetGateway returned no id"));
    await this.ec2Call(() =>
      this.ec2.send(new AttachInternetGatewayCommand({ InternetGatewayId: gatewayId, VpcId: vpcId })),
    );
    return gatewayId;
  }

  private async ensureRouteTable(
    clusterId: string,
    vpcId: string,
    gatewayId: string,
    subnetIds: readonly string[],
  ): Promise<string> {
    const tables = await this.ec2Call(() =>
      this.ec2.send(
        new DescribeRouteTablesCommand({
          Filters: [
            { Name: "vpc-id", Values: [vpcId] },
            { Name: `tag:${CLUSTER_TAG}`, Values: [clusterId] },
          ],
        }),
      ),
    );
    let table = tables.RouteTables?.[0];
    if (table === undefined) {
      const made = await this.ec2Call(() =>
        this.ec2.send(
          new CreateRouteTableCommand({
            VpcId: vpcId,
            TagSpecifications: [
              { ResourceType: "route-table", Tags: tags(clusterId, `nowscale-${clusterId}`) },
            ],
          }),
        ),
      );
      table = made.RouteTable;
    }
    const routeTableId = table?.RouteTableId;
    if (routeTableId === undefined) throw fromEc2Error(new Error("CreateRouteTable returned no id"));
    if (!(table?.Routes ?? []).some((r) => r.DestinationCidrBlock === "0.0.0.0/0")) {
      await this.ec2Call(() =>
        this.ec2.send(
          new CreateRouteCommand({
            RouteTableId: routeTableId,
            DestinationCidrBlock: "0.0.0.0/0",
            GatewayId: gatewayId,
          }),
        ),
      );
    }
    for (const subnetId of subnetIds) {
      if ((table?.Associations ?? []).some((a) => a.SubnetId === subnetId)) continue;
      await this.ec2Call(() =>
        this.ec2.send(new AssociateRouteTableCommand({ RouteTableId: routeTableId, SubnetId: subnetId })),
      );
    }
    return routeTableId;
  }

  private async ensureEndpointGroup(clusterId: string, vpcId: string, cidr: string): Promise<string> {
    const groups = await this.ec2Call(() =>
      this.ec2.send(
        new DescribeSecurityGroupsCommand({
          Filters: [
            { Name: "vpc-id", Values: [vpcId] },
            { Name: `tag:${PART_TAG}`, Values: ["endpoints"] },
          ],
        }),
      ),
    );
    const found = groups.SecurityGroups?.[0]?.GroupId;
    if (found !== undefined) return found;
    const made = await this.ec2Call(() =>
      this.ec2.send(
        new CreateSecurityGroupCommand({
          GroupName: `nowscale-${clusterId}-endpoints`,
          Description: `NowScale cluster ${clusterId}: its VPC endpoints, HTTPS from the VPC only`,
          VpcId: vpcId,
          TagSpecifications: [
            {
              ResourceType: "security-group",
              Tags: tagsToList({
                ...baseTags(clusterId),
                Name: `nowscale-${clusterId}-endpoints`,
                [PART_TAG]: "endpoints",
              }),
            },
          ],
        }),
      ),
    );
    const groupId = made.GroupId;
    if (groupId === undefined) throw fromEc2Error(new Error("CreateSecurityGroup returned no GroupId"));
    await this.ec2Call(() =>
      this.ec2.send(
        new AuthorizeSecurityGroupIngressCommand({
          GroupId: groupId,
          IpPermissions: [{ IpProtocol: "tcp", FromPort: 443, ToPort: 443, IpRanges: [{ CidrIp: cidr }] }],
        }),
      ),
    );
    return groupId;
  }

  /** The region the clients call (the option, else the client's own configuration). */
  private async region(): Promise<string> {
    return this.options.region ?? (await this.ec2.config.region());
  }

  async createSecurityGroup(clusterId: string, vpcId: string): Promise<{ securityGroupId: string }> {
    const existing = (await this.list(clusterId)).find((r) => r.kind === "securityGroup");
    if (existing?.kind === "securityGroup") return { securityGroupId: existing.securityGroupId };
    const group = await this.ec2Call(() =>
      this.ec2.send(
        new CreateSecurityGroupCommand({
          GroupName: `nowscale-${clusterId}`,
          Description: `NowScale cluster ${clusterId}: members only`,
          VpcId: vpcId,
          TagSpecifications: [
            { ResourceType: "security-group", Tags: tags(clusterId, `nowscale-${clusterId}`) },
          ],
        }),
      ),
    );
    const securityGroupId = group.GroupId;
    if (securityGroupId === undefined)
      throw fromEc2Error(new Error("CreateSecurityGroup returned no GroupId"));
    // Members reach each other (slurmctld, slurmd, munge, the agent); nothing else gets in, no public SSH.
    await this.ec2Call(() =>
      this.ec2.send(
        new AuthorizeSecurityGroupIngressCommand({
          GroupId: securityGroupId,
          IpPermissions: [{ IpProtocol: "-1", UserIdGroupPairs: [{ GroupId: securityGroupId }] }],
        }),
      ),
    );
    return { securityGroupId };
  }

  async createSecret(
    clusterId: string,
    kind: SecretKind,
    options: { vpcId?: string } = {},
  ): Promise<{ secretId: string; secretName: string }> {
    const name = secretName(clusterId, kind);
    try {
      const found = await this.secrets.send(new DescribeSecretCommand({ SecretId: name }));
      if (found.ARN !== undefined && found.DeletedDate === undefined)
        return { secretId: found.ARN, secretName: name };
    } catch (error) {
      if ((error as { name?: string }).name !== "ResourceNotFoundException") throw fromSecretsError(error);
    }
    if (options.vpcId !== undefined) await this.refuseSharedVpc(clusterId, options.vpcId);
    // munge wants 1024 random bytes; the agent's key is text of at least 32 bytes (docs/agent.md).
    const value =
      kind === "munge-key"
        ? { SecretBinary: randomBytes(1024) }
        : { SecretString: randomBytes(48).toString("base64") };
    try {
      const created = await this.secrets.send(
        new CreateSecretCommand({
          Name: name,
          Description: `NowScale ${kind} of cluster ${clusterId}`,
          KmsKeyId: this.options.kmsKeyId,
          ...value,
          // The node roles read a secret only by its kind and from its cluster's VPC (lib/infra/node-role.ts).
          Tags: tagsToList({
            ...baseTags(clusterId),
            [SECRET_KIND_TAG]: kind,
            ...(options.vpcId === undefined ? {} : { [SECRET_VPC_TAG]: options.vpcId }),
          }),
        }),
      );
      if (created.ARN === undefined) throw new Error("CreateSecret returned no ARN");
      return { secretId: created.ARN, secretName: name };
    } catch (error) {
      throw fromSecretsError(error);
    }
  }

  /**
   * One NowScale cluster per VPC: a node role reads the secrets tagged with the VPC its request comes
   * from (aws:ec2InstanceSourceVPC, lib/infra/node-role.ts), so a second cluster in the same VPC could
   * read the first's munge key. Throws InvalidRequestError naming network.vpcId and the other cluster.
   * The creation workflow's VPC claim (LifecycleStore.claimVpc, strongly consistent) decides within one
   * stack; this check also sees clusters of another NowScale stack in the account, but ListSecrets lags
   * up to five minutes, so it is a second line, not the rule.
   */
  private async refuseSharedVpc(clusterId: string, vpcId: string): Promise<void> {
    for (const s of await this.secretsTagged(SECRET_VPC_TAG, vpcId)) {
      const other = s.Tags?.find((t) => t.Key === CLUSTER_TAG)?.Value;
      if (other === undefined || other === clusterId || s.DeletedDate !== undefined) continue;
      throw new InvalidRequestError(
        `network.vpcId: ${vpcId} already holds NowScale cluster ${other}; a node reads the secrets of ` +
          "its own VPC's cluster, so two clusters in one VPC could read each other's munge key: choose " +
          `another VPC (or let NowScale create one with network.cidr), or delete cluster ${other} first ` +
          "(Secrets Manager may list a cluster deleted in the last five minutes: then retry later)",
      );
    }
  }

  /**
   * The secrets whose tag `key` is exactly `value`, every page. ListSecrets' filters match the key and
   * the value separately, and by prefix, so the pair is checked here.
   */
  private async secretsTagged(key: string, value: string): Promise<SecretListEntry[]> {
    const out: SecretListEntry[] = [];
    const filters = [
      { Key: FilterNameStringType.tag_key, Values: [key] },
      { Key: FilterNameStringType.tag_value, Values: [value] },
    ];
    try {
      for await (const page of paginateListSecrets({ client: this.secrets }, { Filters: filters }))
        out.push(
          ...(page.SecretList ?? []).filter((s) => s.Tags?.find((t) => t.Key === key)?.Value === value),
        );
    } catch (error) {
      throw fromSecretsError(error);
    }
    return out;
  }

  async deleteSecret(secretId: string): Promise<void> {
    try {
      await this.secrets.send(
        new DeleteSecretCommand({ SecretId: secretId, ForceDeleteWithoutRecovery: true }),
      );
    } catch (error) {
      if ((error as { name?: string }).name === "ResourceNotFoundException") return;
      throw fromSecretsError(error);
    }
  }

  /**
   * The cluster's users' secrets (lib/aws/user-secrets.ts), each deleted at once like the cluster's own
   * (deleteSecret): the cluster is gone, and a recovery window would keep its users' passwords (and bill
   * them) for days more. Only an entry whose tags say exactly this cluster, kind `cluster-user` and managed
   * is deleted (the listing's tag filters match keys and values separately and by prefix). Idempotent: a
   * secret already gone (the listing lags) or already scheduled for deletion is passed over. The listing
   * lags up to five minutes, so a user's secret made in the last minutes before the deletion may be
   * missing from it: each `recorded` ARN (the record's users) is deleted by its ARN as well, when it names
   * a user's secret of this cluster (`nowscale/<cluster>/users/<user>`); one already gone succeeds.
   */
  async deleteUserSecrets(clusterId: string, recorded: readonly string[] = []): Promise<string[]> {
    const names: string[] = [];
    const deleted = new Set<string>();
    for (const s of await this.secretsTagged(CLUSTER_TAG, clusterId)) {
      const tag = (key: string) => s.Tags?.find((t) => t.Key === key)?.Value;
      if (tag(SECRET_KIND_TAG) !== USER_SECRET_KIND || tag(MANAGED_TAG) !== "true") continue;
      if (s.ARN === undefined || s.DeletedDate !== undefined) continue;
      await this.deleteSecret(s.ARN);
      deleted.add(s.ARN);
      names.push(s.Name ?? s.ARN);
    }
    for (const arn of recorded) {
      const name = userSecretNameOfArn(arn, clusterId);
      if (name === undefined || deleted.has(arn)) continue;
      await this.deleteSecret(arn);
      deleted.add(arn);
      names.push(name);
    }
    return names;
  }

  async deleteSecurityGroup(securityGroupId: string): Promise<void> {
    await this.goneIsFine(() => this.ec2.send(new DeleteSecurityGroupCommand({ GroupId: securityGroupId })));
  }

  /**
   * Everything createNetwork made, in the order EC2 lets it go: the endpoints, the endpoints' security
   * group, the route table (its associations first), the internet gateway (detached first), the subnets,
   * the VPC. Found by the VPC, so what a crashed attempt made goes too. An interface endpoint's network
   * interfaces linger a little after its deletion: the group, subnet or VPC deletion then fails with
   * DependencyViolation, which the workflow waits for and retries.
   */
  async deleteNetwork(network: { vpcId: string; subnetIds: readonly string[] }): Promise<void> {
    const vpcId = network.vpcId;
    const vpcFilter = [{ Name: "vpc-id", Values: [vpcId] }];
    const endpoints = await this.goneIsEmpty(() =>
      this.ec2.send(new DescribeVpcEndpointsCommand({ Filters: vpcFilter })),
    );
    const endpointIds = (endpoints?.VpcEndpoints ?? []).flatMap((e) =>
      e.VpcEndpointId === undefined || String(e.State).toLowerCase() === "deleted" ? [] : [e.VpcEndpointId],
    );
    if (endpointIds.length > 0)
      await this.goneIsFine(() =>
        this.ec2.send(new DeleteVpcEndpointsCommand({ VpcEndpointIds: endpointIds })),
      );
    const groups = await this.goneIsEmpty(() =>
      this.ec2.send(
        new DescribeSecurityGroupsCommand({
          Filters: [...vpcFilter, { Name: `tag:${PART_TAG}`, Values: ["endpoints"] }],
        }),
      ),
    );
    for (const g of groups?.SecurityGroups ?? []) {
      const groupId = g.GroupId;
      if (groupId !== undefined)
        await this.goneIsFine(() => this.ec2.send(new DeleteSecurityGroupCommand({ GroupId: groupId })));
    }
    const tables = await this.goneIsEmpty(() =>
      this.ec2.send(new DescribeRouteTablesCommand({ Filters: vpcFilter })),
    );
    for (const t of tables?.RouteTables ?? []) {
      if ((t.Associations ?? []).some((a) => a.Main === true) || t.RouteTableId === undefined) continue;
      for (const a of t.Associations ?? []) {
        const associationId = a.RouteTableAssociationId;
        if (associationId !== undefined)
          await this.goneIsFine(() =>
            this.ec2.send(new DisassociateRouteTableCommand({ AssociationId: associationId })),
          );
      }
      const routeTableId = t.RouteTableId;
      await this.goneIsFine(() => this.ec2.send(new DeleteRouteTableCommand({ RouteTableId: routeTableId })));
    }
    const gateways = await this.goneIsEmpty(() =>
      this.ec2.send(
        new DescribeInternetGatewaysCommand({ Filters: [{ Name: "attachment.vpc-id", Values: [vpcId] }] }),
      ),
    );
    for (const g of gateways?.InternetGateways ?? []) {
      const gatewayId = g.InternetGatewayId;
      if (gatewayId === undefined) continue;
      await this.goneIsFine(() =>
        this.ec2.send(new DetachInternetGatewayCommand({ InternetGatewayId: gatewayId, VpcId: vpcId })),
      );
      await this.goneIsFine(() =>
        this.ec2.send(new DeleteInternetGatewayCommand({ InternetGatewayId: gatewayId })),
      );
    }
    const subnets = await this.goneIsEmpty(() =>
      this.ec2.send(new DescribeSubnetsCommand({ Filters: vpcFilter })),
    );
    const subnetIds = new Set([
      ...network.subnetIds,
      ...(subnets?.Subnets ?? []).flatMap((x) => (x.SubnetId === undefined ? [] : [x.SubnetId])),
    ]);
    for (const subnetId of subnetIds) {
      await this.goneIsFine(() => this.ec2.send(new DeleteSubnetCommand({ SubnetId: subnetId })));
    }
    await this.goneIsFine(() => this.ec2.send(new DeleteVpcCommand({ VpcId: vpcId })));
  }

  async list(clusterId: string): Promise<ClusterResourceRef[]> {
    const filter = [{ Name: `tag:${CLUSTER_TAG}`, Values: [clusterId] }];
    const refs: ClusterResourceRef[] = [];
    const vpcs = await this.ec2Call(() => this.ec2.send(new DescribeVpcsCommand({ Filters: filter })));
    for (const vpc of vpcs.Vpcs ?? []) {
      if (vpc.VpcId === undefined) continue;
      const subnets = await this.ec2Call(() =>
        this.ec2.send(
          new DescribeSubnetsCommand({
            Filters: [...filter, { Name: "vpc-id", Values: [vpc.VpcId as string] }],
          }),
        ),
      );
      refs.push({
        kind: "network",
        vpcId: vpc.VpcId,
        subnetIds: (subnets.Subnets ?? []).flatMap((s) => (s.SubnetId === undefined ? [] : [s.SubnetId])),
      });
    }
    const groups = await this.ec2Call(() =>
      this.ec2.send(new DescribeSecurityGroupsCommand({ Filters: filter })),
    );
    for (const g of groups.SecurityGroups ?? []) {
      // The endpoints' group is part of the network: deleteNetwork removes it after the endpoints.
      if (g.Tags?.some((t) => t.Key === PART_TAG)) continue;
      if (g.GroupId !== undefined) refs.push({ kind: "securityGroup", securityGroupId: g.GroupId });
    }
    for (const s of await this.secretsTagged(CLUSTER_TAG, clusterId)) {
      const kind = s.Tags?.find((t) => t.Key === SECRET_KIND_TAG)?.Value;
      // Only the kinds NowScale writes.
      if (s.ARN === undefined || (kind !== "munge-key" && kind !== "agent-hmac-key")) continue;
      refs.push({ kind: "secret", secretKind: kind, secretId: s.ARN });
    }
    return refs;
  }

  private async ec2Call<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw fromEc2Error(error);
    }
  }

  /** A Describe whose VPC is already gone finds nothing. */
  private async goneIsEmpty<T>(call: () => Promise<T>): Promise<T | undefined> {
    try {
      return await call();
    } catch (error) {
      const mapped = fromEc2Error(error);
      if (mapped.cause?.code.endsWith(".NotFound")) return undefined;
      throw mapped;
    }
  }

  /** Deleting what is already gone succeeds (`Invalid…ID.NotFound`, `InvalidGroup.NotFound`). */
  private async goneIsFine(call: () => Promise<unknown>): Promise<void> {
    try {
      await call();
    } catch (error) {
      const mapped = fromEc2Error(error);
      if (mapped.cause?.code.endsWith(".NotFound")) return;
      throw mapped;
    }
  }
}

function baseTags(clusterId: string): Record<string, string> {
  return { [CLUSTER_TAG]: clusterId, [MANAGED_TAG]: "true" };
}

function tags(clusterId: string, name: string) {
  return tagsToList({ Name: name, ...baseTags(clusterId) });
}

/**
 * The name of a user's secret of the cluster that `arn` names (`nowscale/<cluster>/users/<user>`, then the
 * six characters Secrets Manager appends), or undefined for any other ARN: a record's id is deleted only
 * when it is that.
 */
function userSecretNameOfArn(arn: string, clusterId: string): string | undefined {
  const name = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:(.+)-[A-Za-z0-9]{6}$/.exec(arn)?.[1];
  const prefix = userSecretName(clusterId, "");
  if (name === undefined || !name.startsWith(prefix)) return undefined;
  return USER_NAME.test(name.slice(prefix.length)) ? name : undefined;
}

/** Secrets Manager's codes share EC2's throttling and auth names; the rest is the request's fault. */
function fromSecretsError(error: unknown): CloudProviderError {
  if (isCloudProviderError(error)) return error;
  return fromEc2Error(error);
}

export { subnetBlocks };
