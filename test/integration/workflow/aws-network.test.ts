import { EC2ServiceException } from "@aws-sdk/client-ec2";
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { lambdaEnv, WORKFLOW_ENV } from "../../../lib/aws/env.js";
import { SecretsManagerUserSecrets } from "../../../lib/aws/user-secrets.js";
import { awsLifecycleDeps } from "../../../lib/aws/workflow-deps.js";
import { TABLE_ENV } from "../../../lib/state/tables.js";
import { createClusterDefinition, deleteClusterDefinition } from "../../../lib/workflow/index.js";
import { runWorkflowLocally } from "../../../lib/workflow/local-runner.js";
import { runLifecycleTask } from "../../../lib/workflow/tasks/dispatch.js";
import type { CreateClusterRequestInput } from "../../../lib/workflow/tasks/request.js";
import { MemoryLifecycleStore } from "../../../lib/workflow/tasks/store.js";
import { ACCOUNT, AwsWorld, REGION, type Resource } from "../../support/aws-world.js";

/**
 * The network a cluster gets on AWS, made by the creation workflow's real tasks (the workflow-task
 * Lambda's AWS ports) against the in-memory EC2 of test/support/aws-world.ts, which keeps EC2's rules
 * on dependencies (a VPC goes only once nothing is left in it): resources and routes asserted, and
 * compensation and deletion leaving nothing behind.
 */

const CLUSTER = "net-1";
let world: AwsWorld;
let store: MemoryLifecycleStore;

const env = lambdaEnv("workflowTask", {
  // The store is the in-memory one below; the table names only have to be there.
  ...Object.fromEntries(Object.values(TABLE_ENV).map((name) => [name, "unused"])),
  AWS_REGION: REGION,
  [WORKFLOW_ENV.secretsKmsKeyArn]: `arn:aws:kms:${REGION}:${ACCOUNT}:key/k-1`,
  [WORKFLOW_ENV.nodeInstanceProfileArn]: `arn:aws:iam::${ACCOUNT}:instance-profile/master`,
});

function request(network: CreateClusterRequestInput["network"]): CreateClusterRequestInput {
  return {
    region: REGION,
    network,
    master: { instanceType: "c5.xlarge", zone: `${REGION}a`, imageId: "ami-0123456789abcdef0" },
    agentHealthTimeoutSeconds: 120,
  };
}

const NETWORK = { cidr: "10.42.0.0/16", zones: [`${REGION}a`, `${REGION}b`] };

function run(kind: "create" | "delete", input: Record<string, unknown>, clusterId = CLUSTER) {
  const deps = { ...awsLifecycleDeps(env), store };
  const definition = kind === "create" ? createClusterDefinition() : deleteClusterDefinition();
  return runWorkflowLocally(definition, { clusterId, ...input }, (i) => runLifecycleTask(deps, i));
}

/** What still exists of the cluster: live resources and secrets carrying its tag, or in its VPC. */
function leftovers(): string[] {
  const vpcs = new Set(
    world
      .ofType("vpc")
      .filter((v) => v.tags["nowscale:cluster"] === CLUSTER)
      .map((v) => v.id),
  );
  const live = [...world.resources.values()].filter(
    (r) =>
      r.attrs.state !== "terminated" &&
      (r.tags["nowscale:cluster"] === CLUSTER || vpcs.has(String(r.attrs.vpcId))),
  );
  const secrets = [...world.secrets.values()].filter((s) => s.tags["nowscale:cluster"] === CLUSTER);
  return [...live.map((r) => `${r.type} ${r.id}`), ...secrets.map((s) => `secret ${s.name}`)];
}

const one = (list: Resource[]): Resource => {
  expect(list).toHaveLength(1);
  return list[0] as Resource;
};

beforeEach(() => {
  world = new AwsWorld().install();
  store = new MemoryLifecycleStore();
  store.add(CLUSTER);
});

afterEach(() => world.restore());

describe("the network the creation workflow makes on AWS", () => {
  it("has public subnets behind an internet gateway, no way in, an S3 gateway endpoint and the four interface endpoints", async () => {
    // Act
    const result = await run("create", { request: request(NETWORK) });

    // Assess
    expect(result.status, store.clusters.get(CLUSTER)?.reason).toBe("SUCCEEDED");
    const vpc = one(world.ofType("vpc").filter((v) => v.tags["nowscale:cluster"] === CLUSTER));
    expect(vpc.attrs.dnsHostnames).toBe(true);
    const inVpc = (type: string) => world.ofType(type).filter((r) => r.attrs.vpcId === vpc.id);
    const subnets = inVpc("subnet");
    expect(subnets.map((s) => [s.attrs.zone, s.attrs.cidr, s.attrs.mapPublicIp])).toEqual([
      [`${REGION}a`, "10.42.0.0/20", true],
      [`${REGION}b`, "10.42.16.0/20", true],
    ]);
    const gateway = one(
      world.ofType("internet-gateway").filter((g) => (g.attrs.attachments as string[]).includes(vpc.id)),
    );
    const table = one(inVpc("route-table").filter((t) => t.attrs.main !== true));
    expect(table.attrs.routes).toEqual([{ destination: "0.0.0.0/0", gatewayId: gateway.id }]);
    expect((table.attrs.associations as { subnetId: string }[]).map((a) => a.subnetId).sort()).toEqual(
      subnets.map((s) => s.id).sort(),
    );
    const endpoints = inVpc("vpc-endpoint");
    const s3 = one(endpoints.filter((e) => e.attrs.service === `com.amazonaws.${REGION}.s3`));
    expect(s3.attrs).toMatchObject({ endpointType: "Gateway", routeTableIds: [table.id] });
    const iface = endpoints.filter((e) => e.attrs.endpointType === "Interface");
    expect(iface.map((e) => e.attrs.service).sort()).toEqual(
      ["ec2messages", "secretsmanager", "ssm", "ssmmessages"].map((n) => `com.amazonaws.${REGION}.${n}`),
    );
    const endpointGroup = one(inVpc("security-group").filter((g) => g.tags["nowscale:part"] === "endpoints"));
    for (const e of iface)
      expect(e.attrs).toMatchObject({
        subnetIds: [subnets[0]?.id],
        securityGroupIds: [endpointGroup.id],
        privateDns: true,
      });
    expect(endpointGroup.attrs.ingress).toEqual([
      { IpProtocol: "tcp", FromPort: 443, ToPort: 443, IpRanges: [{ CidrIp: "10.42.0.0/16" }] },
    ]);
    // The cluster's own group admits its members only: nothing from the internet.
    const group = one(inVpc("security-group").filter((g) => g.tags["nowscale:part"] === undefined));
    expect(group.attrs.ingress).toEqual([{ IpProtocol: "-1", UserIdGroupPairs: [{ GroupId: group.id }] }]);
    const master = one(world.ofType("instance").filter((i) => i.tags["nowscale-role"] === "master"));
    expect(master.attrs).toMatchObject({ subnetId: subnets[0]?.id, securityGroupIds: [group.id] });
    for (const r of [vpc, ...subnets, gateway, table, ...endpoints, endpointGroup, group, master])
      expect(r.tags, `${r.type} ${r.id}`).toMatchObject({
        "nowscale:cluster": CLUSTER,
        "nowscale:managed": "true",
      });
  });

  it("is made whole by a retried step after a crash, and the deletion workflow removes all of it", async () => {
    // Prepare: the first attempt dies after the internet gateway (the route table's creation fails)
    world.failNext(
      "CreateRouteTable",
      new EC2ServiceException({
        name: "RequestLimitExceeded",
        $fault: "client",
        message: "slow down",
        $metadata: { httpStatusCode: 503 },
      }),
    );

    // Act
    const created = await run("create", { request: request(NETWORK) });
    const deleted = await run("delete", {});

    // Assess: one VPC, one gateway (the retry found them), then nothing left
    expect(created.status, store.clusters.get(CLUSTER)?.reason).toBe("SUCCEEDED");
    expect(created.retried).toContain("CreateNetwork");
    expect(world.calls.filter((c) => c.command === "CreateVpc")).toHaveLength(1);
    expect(world.calls.filter((c) => c.command === "CreateInternetGateway")).toHaveLength(1);
    expect(deleted.status, store.clusters.get(CLUSTER)?.reason).toBe("SUCCEEDED");
    expect(leftovers()).toEqual([]);
  });

  it("is removed whole by the compensation when the master cannot start", async () => {
    // Prepare
    world.failNext(
      "RunInstances",
      new EC2ServiceException({
        name: "InvalidAMIID.NotFound",
        $fault: "client",
        message: "no such image",
        $metadata: { httpStatusCode: 400 },
      }),
    );

    // Act
    const result = await run("create", { request: request(NETWORK) });

    // Assess
    expect(result.status).toBe("FAILED");
    expect(store.clusters.get(CLUSTER)?.reason).toMatch(/InvalidAMIID/);
    expect(leftovers()).toEqual([]);
    expect(world.ofType("vpc").filter((v) => v.tags["nowscale:cluster"] === CLUSTER)).toEqual([]);
  });

  it("starts the master from the latest Debian 12 image of its architecture when the request names none", async () => {
    // Prepare: Debian's public parameters, and a Graviton master
    world.parameters.set("/aws/service/debian/release/12/latest/amd64", "ami-0d12a0000000000a1");
    world.parameters.set("/aws/service/debian/release/12/latest/arm64", "ami-0d12a0000000000b2");
    world.extraTypes.set("c7g.xlarge", { vcpus: 4, memoryMiB: 8192, gpus: 0 });
    const input = request(NETWORK);
    const { imageId: _named, ...master } = input.master;

    // Act
    const result = await run("create", {
      request: { ...input, master: { ...master, instanceType: "c7g.xlarge" } },
    });

    // Assess
    expect(result.status, store.clusters.get(CLUSTER)?.reason).toBe("SUCCEEDED");
    const run0 = world.calls.find((c) => c.command === "RunInstances");
    expect(run0?.input.ImageId).toBe("ami-0d12a0000000000b2");
    expect(world.calls.filter((c) => c.command === "GetParameter").map((c) => c.input.Name)).toEqual([
      "/aws/service/debian/release/12/latest/arm64",
    ]);
  });

  it("has no interface endpoints when the request turns them off", async () => {
    // Act
    const result = await run("create", { request: request({ ...NETWORK, interfaceEndpoints: false }) });

    // Assess
    expect(result.status, store.clusters.get(CLUSTER)?.reason).toBe("SUCCEEDED");
    const endpoints = world.ofType("vpc-endpoint");
    expect(endpoints.map((e) => e.attrs.endpointType)).toEqual(["Gateway"]);
  });
});

describe("the user's own network", () => {
  function userVpc(options: { route?: "igw" | "none"; publicIp?: boolean; endpoints?: boolean }) {
    const vpc = world.put({ id: "vpc-0u1", type: "vpc", tags: {}, attrs: { cidr: "172.31.0.0/16" } });
    const subnet = world.put({
      id: "subnet-0u1",
      type: "subnet",
      tags: {},
      attrs: {
        vpcId: vpc.id,
        zone: `${REGION}a`,
        cidr: "172.31.0.0/20",
        mapPublicIp: options.publicIp ?? true,
      },
    });
    world.put({ id: "igw-0u1", type: "internet-gateway", tags: {}, attrs: { attachments: [vpc.id] } });
    world.put({
      id: "rtb-0u1",
      type: "route-table",
      tags: {},
      attrs: {
        vpcId: vpc.id,
        main: true,
        routes: options.route === "none" ? [] : [{ destination: "0.0.0.0/0", gatewayId: "igw-0u1" }],
        associations: [],
      },
    });
    if (options.endpoints === true)
      for (const name of ["ssm", "ssmmessages", "ec2messages", "secretsmanager"])
        world.put({
          id: `vpce-0u${name}`,
          type: "vpc-endpoint",
          tags: {},
          attrs: { vpcId: vpc.id, service: `com.amazonaws.${REGION}.${name}`, endpointType: "Interface" },
        });
    return { vpcId: vpc.id, subnetIds: [subnet.id] };
  }

  it.each([
    ["no route out", { route: "none" as const }, /network\.subnetIds\[0\]: subnet subnet-0u1 has no way out/],
    [
      "an internet gateway but no public addresses",
      { publicIp: false },
      /network\.subnetIds\[0\].*MapPublicIpOnLaunch/,
    ],
  ])("refuses a subnet with %s, naming the field, and makes nothing", async (_name, options, reason) => {
    // Act
    const result = await run("create", { request: request(userVpc(options)) });

    // Assess
    expect(result.status).toBe("FAILED");
    expect(store.clusters.get(CLUSTER)?.reason).toMatch(reason);
    expect(world.calls.filter((c) => c.command.startsWith("Create"))).toEqual([]);
  });

  it("refuses a subnet that is not in the VPC", async () => {
    // Act
    const network = userVpc({});
    const result = await run("create", {
      request: request({ ...network, subnetIds: ["subnet-0elsewhere"] }),
    });

    // Assess
    expect(store.clusters.get(CLUSTER)?.reason).toMatch(
      /network\.subnetIds\[0\]: subnet subnet-0elsewhere does not exist in vpc-0u1/,
    );
    expect(result.status).toBe("FAILED");
  });

  it("takes a private subnet when the VPC has the endpoints, and deletion leaves the user's network alone", async () => {
    // Act
    const created = await run("create", { request: request(userVpc({ route: "none", endpoints: true })) });
    const deleted = await run("delete", {});

    // Assess
    expect(created.status, store.clusters.get(CLUSTER)?.reason).toBe("SUCCEEDED");
    expect(deleted.status).toBe("SUCCEEDED");
    expect(leftovers()).toEqual([]);
    expect(world.resources.has("vpc-0u1")).toBe(true);
    expect(world.resources.has("subnet-0u1")).toBe(true);
    expect(world.ofType("vpc-endpoint")).toHaveLength(4);
  });

  it("refuses a second cluster in a VPC that holds one, naming network.vpcId, and leaves the first whole", async () => {
    // Prepare: node roles read the secrets of their own VPC's cluster, so one VPC holds one cluster.
    const network = userVpc({});
    store.add("net-2");
    const first = await run("create", { request: request(network) });
    const firstSecrets = [...world.secrets.values()].filter((x) => x.tags["nowscale:cluster"] === CLUSTER);

    // Act
    const second = await run("create", { request: request(network) }, "net-2");

    // Assess
    expect(first.status, store.clusters.get(CLUSTER)?.reason).toBe("SUCCEEDED");
    expect(second.status).toBe("FAILED");
    expect(store.clusters.get("net-2")?.reason).toMatch(
      /network\.vpcId: vpc-0u1 already holds another NowScale cluster/,
    );
    expect([...world.secrets.values()].filter((x) => x.tags["nowscale:cluster"] === "net-2")).toEqual([]);
    expect(firstSecrets).toHaveLength(2);
    for (const secret of firstSecrets) expect(world.secrets.has(secret.arn)).toBe(true);
    expect(store.vpcClaims.get("vpc-0u1")).toBe(CLUSTER);
  });

  it("refuses a VPC whose secrets belong to a cluster of another NowScale stack, naming it", async () => {
    // Prepare: no claim in this stack's store, but the cloud lists the other stack's secret in the VPC
    const network = userVpc({});
    world.putSecret(
      "nowscale/other-1/munge-key",
      { "nowscale:cluster": "other-1", "nowscale:managed": "true", "nowscale:vpc": "vpc-0u1" },
      "arn:aws:kms:us-east-1:123456789012:key/k-other",
      { SecretString: "x" },
    );

    // Act
    const result = await run("create", { request: request(network) });

    // Assess
    expect(result.status).toBe("FAILED");
    expect(store.clusters.get(CLUSTER)?.reason).toMatch(
      /network\.vpcId: vpc-0u1 already holds NowScale cluster other-1/,
    );
    expect(store.vpcClaims.size).toBe(0);
  });

  it("lets one of two concurrent creations into one VPC through, even while Secrets Manager's listing lags", async () => {
    // Prepare: the listing shows nothing new, as it may for five minutes on AWS
    const network = userVpc({});
    store.add("net-2");
    world.staleSecretListing = true;

    // Act
    const results = await Promise.all([
      run("create", { request: request(network) }),
      run("create", { request: request(network) }, "net-2"),
    ]);

    // Assess: exactly one holds secrets scoped to the VPC; the other was refused before it made anything
    expect(results.map((r) => r.status).sort()).toEqual(["FAILED", "SUCCEEDED"]);
    const holders = new Set(
      [...world.secrets.values()]
        .filter((x) => x.tags["nowscale:vpc"] === "vpc-0u1")
        .map((x) => x.tags["nowscale:cluster"]),
    );
    expect(holders.size).toBe(1);
    const loser = results[0]?.status === "FAILED" ? CLUSTER : "net-2";
    expect(store.clusters.get(loser)?.reason).toMatch(
      /network\.vpcId: vpc-0u1 already holds another NowScale cluster/,
    );
    expect(world.ofType("security-group").filter((g) => g.tags["nowscale:cluster"] === loser)).toEqual([]);
  });

  it("gives the VPC to a new cluster once the one holding it is deleted", async () => {
    // Prepare
    const network = userVpc({});
    store.add("net-2");
    await run("create", { request: request(network) });
    await run("delete", {});
    world.staleSecretListing = true;

    // Act
    const next = await run("create", { request: request(network) }, "net-2");

    // Assess
    expect(next.status, store.clusters.get("net-2")?.reason).toBe("SUCCEEDED");
    expect(store.vpcClaims.get("vpc-0u1")).toBe("net-2");
  });
});

describe("the cluster's users' secrets on AWS", () => {
  /** Two users' secrets of the cluster, a neighbour's, and look-alikes the deletion must leave. */
  async function clusterWithUsers(): Promise<{
    kept: string[];
    users: SecretsManagerUserSecrets;
    vpcId: string;
  }> {
    store.add("net-10");
    const created = await run("create", { request: request(NETWORK) });
    expect(created.status, store.clusters.get(CLUSTER)?.reason).toBe("SUCCEEDED");
    const vpcId = one(world.ofType("vpc").filter((v) => v.tags["nowscale:cluster"] === CLUSTER)).id;
    const users = new SecretsManagerUserSecrets(new SecretsManagerClient({ region: REGION }), "k-1");
    await users.put(CLUSTER, "alice", { password: "correct-horse-9" }, { vpcId });
    await users.put(CLUSTER, "bob", { password: "battery-staple-7" }, { vpcId });
    // A cluster whose id starts with this one's (ListSecrets' tag-value filter matches by prefix).
    await users.put("net-10", "alice", { password: "neighbour-pass-3" });
    // Named like a user's secret but untagged, and tagged with the cluster but of another kind.
    world.putSecret("nowscale/net-1/users/carol", {}, "k-1", { SecretString: "{}" }, secretArnOf("carol"));
    world.putSecret(
      "nowscale/net-1/notes",
      { "nowscale:cluster": CLUSTER, "nowscale:managed": "true", "nowscale:secret-kind": "notes" },
      "k-1",
      { SecretString: "{}" },
      secretArnOf("notes"),
    );
    return {
      kept: ["nowscale/net-10/users/alice", "nowscale/net-1/users/carol", "nowscale/net-1/notes"],
      users,
      vpcId,
    };
  }
  /** The ARNs of the cluster's users' secrets as they stand now. */
  async function userArns(names: string[]): Promise<string[]> {
    return names.map(
      (n) => [...world.secrets.values()].find((x) => x.name === `nowscale/${CLUSTER}/users/${n}`)?.arn ?? n,
    );
  }
  /** The cluster record's users name these secret ids (ClusterUser.secretId). */
  function recordUsers(...ids: (string | string[])[]): void {
    const record = store.clusters.get(CLUSTER);
    if (record === undefined) throw new Error(`no cluster ${CLUSTER}`);
    record.userSecretIds = ids.flat();
  }
  const secretArnOf = (name: string) =>
    `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:look-alike-${name}`;
  const secretNames = () => [...world.secrets.values()].map((s) => s.name).sort();

  it("deletes both users' secrets with the cluster, at once, and leaves the neighbour's and the look-alikes", async () => {
    // Prepare
    const { kept } = await clusterWithUsers();

    // Act
    const deleted = await run("delete", {});

    // Assess
    expect(deleted.status, store.clusters.get(CLUSTER)?.reason).toBe("SUCCEEDED");
    expect(secretNames()).toEqual([...kept].sort());
    const userDeletes = world.calls.filter(
      (c) =>
        c.command === "DeleteSecret" && String(c.input.SecretId).includes(":secret:nowscale/net-1/users/"),
    );
    expect(userDeletes).toHaveLength(2);
    // No recovery window: the cluster is gone, its users' passwords go now (as its own secrets do).
    for (const c of userDeletes) expect(c.input.ForceDeleteWithoutRecovery).toBe(true);
  });

  it("deletes a user's secret the listing does not show yet, by the ARN the cluster record names", async () => {
    // Prepare: dave is added just before the deletion; ListSecrets (up to five minutes behind) misses him
    const { kept, users, vpcId } = await clusterWithUsers();
    const dave = await users.put(CLUSTER, "dave", { password: "tr0ub4dor-and-3" }, { vpcId });
    world.unlistedSecrets.add("nowscale/net-1/users/dave");
    recordUsers(await userArns(["alice", "bob"]), dave);

    // Act
    const deleted = await run("delete", {});

    // Assess: dave's secret is gone with the others, deleted by its ARN at once; the rest untouched
    expect(deleted.status, store.clusters.get(CLUSTER)?.reason).toBe("SUCCEEDED");
    expect(secretNames()).toEqual([...kept].sort());
    const daves = world.calls.filter((c) => c.command === "DeleteSecret" && c.input.SecretId === dave);
    expect(daves.map((c) => c.input.ForceDeleteWithoutRecovery)).toEqual([true]);
  });

  it("succeeds when a secret the cluster record names is already gone", async () => {
    // Prepare: erin's secret was deleted behind the record (or by an earlier attempt)
    const { kept, users, vpcId } = await clusterWithUsers();
    const erin = await users.put(CLUSTER, "erin", { password: "gone-already-5" }, { vpcId });
    await users.remove(erin);
    recordUsers(await userArns(["alice", "bob"]), erin);

    // Act
    const deleted = await run("delete", {});

    // Assess: the deletion was asked for (and found nothing), and the teardown went on to the end
    expect(deleted.status, store.clusters.get(CLUSTER)?.reason).toBe("SUCCEEDED");
    expect(world.calls.filter((c) => c.command === "DeleteSecret" && c.input.SecretId === erin)).toHaveLength(
      2,
    );
    expect(secretNames()).toEqual([...kept].sort());
    expect(leftovers()).toEqual(["secret nowscale/net-1/notes"]);
  });

  it("never deletes by the record a secret that is not one of the cluster's users'", async () => {
    // Prepare: a record naming the neighbour's user secret and a look-alike (a corrupted or forged record)
    const { kept } = await clusterWithUsers();
    const neighbour = [...world.secrets.values()].find((x) => x.name === "nowscale/net-10/users/alice");
    recordUsers(neighbour?.arn ?? "", secretArnOf("carol"));

    // Act
    const deleted = await run("delete", {});

    // Assess
    expect(deleted.status, store.clusters.get(CLUSTER)?.reason).toBe("SUCCEEDED");
    expect(secretNames()).toEqual([...kept].sort());
  });

  it("finishes on a second run after a deletion that stopped between the two users' secrets", async () => {
    // Prepare: the cluster's munge and agent keys go first (calls 1-2), alice's (3), bob's is denied (4)
    const { kept } = await clusterWithUsers();
    world.failAt(
      "DeleteSecret",
      4,
      Object.assign(new Error("not allowed"), {
        name: "AccessDeniedException",
        $fault: "client",
        $metadata: { httpStatusCode: 400 },
      }),
    );

    // Act
    const failed = await run("delete", {});
    const between = secretNames();
    const again = await run("delete", {});

    // Assess
    expect(failed.status).toBe("FAILED");
    expect(between).toEqual([...kept, "nowscale/net-1/users/bob"].sort());
    expect(again.status, store.clusters.get(CLUSTER)?.reason).toBe("SUCCEEDED");
    expect(secretNames()).toEqual([...kept].sort());
    expect(leftovers()).toEqual(["secret nowscale/net-1/notes"]);
  });
});
