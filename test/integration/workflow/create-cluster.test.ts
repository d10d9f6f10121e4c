import { describe, expect, it } from "vitest";
import {
  InvalidRequestError,
  QuotaExceededError,
  ServiceUnavailableError,
  ThrottledError,
} from "../../../lib/ports/errors.js";
import { createClusterDefinition } from "../../../lib/workflow/create-cluster.js";
import { CLUSTER_ID, createRequest, WorkflowBed } from "./harness.js";

const definition = createClusterDefinition();

const NOTHING_LEFT = { resources: [], instances: [], ledger: [] };

describe("create-cluster workflow, run locally on the real definition", () => {
  it("creates network, security group, secrets and master, waits for the agent, ends RUNNING", async () => {
    // Prepare
    const bed = new WorkflowBed();

    // Act
    const result = await bed.run(definition, { clusterId: CLUSTER_ID, request: createRequest() });

    // Assess
    expect(result.status).toBe("SUCCEEDED");
    expect(bed.record().status).toBe("RUNNING");
    expect(bed.record().history).toEqual(["REQUESTED", "CREATING", "RUNNING"]);
    const kinds = bed.resources.live(CLUSTER_ID).map((r) => r.kind);
    expect(kinds.sort()).toEqual(["network", "secret", "secret", "securityGroup"]);
    const [master] = bed.liveInstances();
    expect(bed.liveInstances()).toHaveLength(1);
    expect(master?.tags["nowscale:queue"]).toBe("master");
    expect(bed.record().master?.instanceId).toBe(master?.id);
    // The agent was polled until healthy, through the Wait/Choice loop.
    expect(result.path.filter((s) => s === "CheckAgentHealth")).toHaveLength(2);
    expect(result.retried).toEqual([]);
  });

  it("launches the master in the cluster's security group with a bootstrap that fetches secrets by id", async () => {
    // Prepare
    const bed = new WorkflowBed();

    // Act
    await bed.run(definition, { clusterId: CLUSTER_ID, request: createRequest() });

    // Assess
    const group = bed.resources.live(CLUSTER_ID).find((r) => r.kind === "securityGroup");
    expect(bed.providerSecurityGroups).toContainEqual([
      group?.kind === "securityGroup" && group.securityGroupId,
    ]);
    const launch = bed.provider.calls.find((c) => c.method === "launch");
    const userData = launch?.method === "launch" ? (launch.request.userData ?? "") : "";
    expect(userData).toContain("secretsmanager");
    for (const [id, value] of bed.resources.secretValues) {
      expect(userData).toContain(id);
      expect(userData).not.toContain(value);
      // No task input (the workflow's state) carries a secret value either.
      expect(JSON.stringify(bed.taskInputs)).not.toContain(value);
    }
  });

  it("uses the user's VPC and subnets as they are and creates only the security group", async () => {
    // Prepare
    const bed = new WorkflowBed();
    const request = createRequest({ network: { vpcId: "vpc-user", subnetIds: ["subnet-user-a"] } });

    // Act
    const result = await bed.run(definition, { clusterId: CLUSTER_ID, request });

    // Assess
    expect(result.status).toBe("SUCCEEDED");
    expect(bed.resources.calls.some((c) => c.method === "createNetwork")).toBe(false);
    expect(bed.resources.calls.find((c) => c.method === "createSecurityGroup")?.args).toEqual([
      CLUSTER_ID,
      "vpc-user",
    ]);
    expect(bed.liveInstances()[0]?.subnetId).toBe("subnet-user-a");
  });

  it("retries a throttled step with backoff and then succeeds", async () => {
    // Prepare
    const bed = new WorkflowBed();
    bed.resources.failNext("createSecurityGroup", new ThrottledError("Rate exceeded"), { times: 2 });
    bed.resources.failNext("createSecret", new ServiceUnavailableError("internal error"), { after: 1 });

    // Act
    const result = await bed.run(definition, { clusterId: CLUSTER_ID, request: createRequest() });

    // Assess
    expect(result.status).toBe("SUCCEEDED");
    expect(result.retried).toEqual(["CreateSecurityGroup", "CreateSecurityGroup", "CreateSecrets"]);
    expect(bed.record().status).toBe("RUNNING");
    // Idempotent steps: the retried secrets step did not make a second munge key.
    expect(bed.resources.live(CLUSTER_ID).filter((r) => r.kind === "secret")).toHaveLength(2);
  });

  it("does not retry a validation error and names the bad field in the reason", async () => {
    // Prepare
    const bed = new WorkflowBed();
    const request = {
      ...createRequest(),
      master: { instanceType: "c5.xlarge", zone: "x;rm -rf /", imageId: "ami-1" },
    };

    // Act
    const result = await bed.run(definition, { clusterId: CLUSTER_ID, request });

    // Assess
    expect(result.status).toBe("FAILED");
    expect(result.error?.name).toBe("ClusterCreationFailed");
    expect(result.retried).toEqual([]);
    expect(bed.record().status).toBe("FAILED");
    expect(bed.record().reason).toMatch(/^ValidationError: .*master\.zone/);
    expect(bed.leftovers()).toEqual(NOTHING_LEFT);
  });

  it("refuses a request for another region than the stack's, naming the field, before making anything", async () => {
    // Prepare
    const bed = new WorkflowBed();
    bed.region = "eu-west-1";

    // Act
    const result = await bed.run(definition, { clusterId: CLUSTER_ID, request: createRequest() });

    // Assess
    expect(result.status).toBe("FAILED");
    expect(result.retried).toEqual([]);
    expect(bed.record().reason).toMatch(
      /^ValidationError: .*region: must be the stack's region eu-west-1, not us-east-1/,
    );
    expect(bed.resources.calls.filter((c) => c.method.startsWith("create"))).toEqual([]);
    expect(bed.leftovers()).toEqual(NOTHING_LEFT);
  });

  it("gives up after six throttled retries and cleans up", async () => {
    // Prepare
    const bed = new WorkflowBed();
    bed.resources.failNext("createSecret", new ThrottledError("Rate exceeded"), { times: 7 });

    // Act
    const result = await bed.run(definition, { clusterId: CLUSTER_ID, request: createRequest() });

    // Assess
    expect(result.status).toBe("FAILED");
    expect(result.retried.filter((s) => s === "CreateSecrets")).toHaveLength(6);
    expect(bed.record().reason).toBe("ThrottledError: Rate exceeded");
    expect(bed.leftovers()).toEqual(NOTHING_LEFT);
  });

  /** Each step failing for good: compensation removes everything made before it, the cluster ends FAILED. */
  const failures: {
    step: string;
    inject: (bed: WorkflowBed) => void;
    reason: RegExp;
    request?: ReturnType<typeof createRequest>;
  }[] = [
    {
      step: "RecordCreating",
      inject: (bed) => bed.store.failNext("setStatus", new Error("conditional check failed"), "CREATING"),
      reason: /^Error: conditional check failed$/,
    },
    {
      step: "CreateNetwork",
      inject: (bed) => bed.resources.failNext("createNetwork", new QuotaExceededError("VpcLimitExceeded")),
      reason: /^QuotaExceededError: VpcLimitExceeded$/,
    },
    {
      step: "CreateNetwork (made, then the ledger write failed)",
      inject: (bed) => bed.store.failNext("recordResource", new Error("store unavailable")),
      reason: /^Error: store unavailable$/,
    },
    {
      step: "CreateSecurityGroup",
      inject: (bed) => bed.resources.failNext("createSecurityGroup", new InvalidRequestError("bad vpc")),
      reason: /^InvalidRequestError: bad vpc$/,
    },
    {
      step: "CreateSecrets (the first)",
      inject: (bed) => bed.resources.failNext("createSecret", new InvalidRequestError("kms key disabled")),
      reason: /kms key disabled/,
    },
    {
      step: "CreateSecrets (the second)",
      inject: (bed) =>
        bed.resources.failNext("createSecret", new InvalidRequestError("kms key disabled"), { after: 1 }),
      reason: /kms key disabled/,
    },
    {
      step: "LaunchMaster (the cloud refuses)",
      inject: (bed) => bed.provider.fakeCloud.failNext("run", "invalid"),
      reason: /^InvalidRequestError: /,
    },
    {
      step: "LaunchMaster (started, then the ledger write failed)",
      inject: (bed) => {
        // network, security group, two secrets recorded; the fifth record is the master's.
        const original = bed.store.recordResource.bind(bed.store);
        let calls = 0;
        bed.store.recordResource = async (clusterId, ref) => {
          if (++calls === 5) throw new Error("store unavailable after launch");
          return original(clusterId, ref);
        };
      },
      reason: /store unavailable after launch/,
    },
    {
      step: "CheckAgentHealth (the check itself throws)",
      inject: (bed) => {
        bed.agent.failNextPoll = new Error("agent channel misconfigured");
      },
      reason: /agent channel misconfigured/,
    },
    {
      step: "CheckAgentHealth (never healthy before the deadline)",
      inject: (bed) => {
        bed.agent.reachable = false;
      },
      reason: /^AgentHealthTimeout: /,
    },
    {
      step: "RecordRunning",
      inject: (bed) => bed.store.failNext("setStatus", new Error("lost the record"), "RUNNING"),
      reason: /lost the record/,
    },
  ];

  it.each(failures)("when $step fails, compensation removes what was made and records FAILED", async (c) => {
    // Prepare
    const bed = new WorkflowBed();
    c.inject(bed);

    // Act
    const result = await bed.run(definition, {
      clusterId: CLUSTER_ID,
      request: c.request ?? createRequest(),
    });

    // Assess
    expect(result.status).toBe("FAILED");
    expect(result.path).toContain("CleanUpInstances");
    expect(bed.record().status).toBe("FAILED");
    expect(bed.record().reason).toMatch(c.reason);
    expect(bed.leftovers()).toEqual(NOTHING_LEFT);
  });

  it("the agent timeout path polls until the deadline, then cleans up", async () => {
    // Prepare
    const bed = new WorkflowBed();
    bed.agent.reachable = false;

    // Act
    const result = await bed.run(definition, { clusterId: CLUSTER_ID, request: createRequest() });

    // Assess: 120 s timeout, each poll advances 20 s.
    expect(result.path.filter((s) => s === "CheckAgentHealth")).toHaveLength(6);
    expect(result.path).toContain("AgentHealthTimedOut");
    expect(bed.leftovers()).toEqual(NOTHING_LEFT);
  });

  it("records FAILED with both reasons when clean-up itself fails", async () => {
    // Prepare
    const bed = new WorkflowBed();
    bed.agent.reachable = false;
    bed.resources.failNext("deleteSecret", new InvalidRequestError("AccessDenied on DeleteSecret"));

    // Act
    const result = await bed.run(definition, { clusterId: CLUSTER_ID, request: createRequest() });

    // Assess
    expect(result.status).toBe("FAILED");
    expect(bed.record().reason).toMatch(
      /^AgentHealthTimeout: .*; cleanup incomplete: InvalidRequestError: AccessDenied on DeleteSecret$/,
    );
    // The instances went before the failing step; the secrets are still there and listed by tag.
    expect(bed.liveInstances()).toEqual([]);
    expect(bed.resources.live(CLUSTER_ID).some((r) => r.kind === "secret")).toBe(true);
  });

  it("waits for a security group still in use during clean-up", async () => {
    // Prepare
    const bed = new WorkflowBed();
    bed.agent.reachable = false;
    const inUse = Object.assign(new InvalidRequestError("has a dependent object"), {});
    Object.defineProperty(inUse, "cause", { value: { code: "DependencyViolation", message: "in use" } });
    bed.resources.failNext("deleteSecurityGroup", inUse, { times: 2 });

    // Act
    const result = await bed.run(definition, { clusterId: CLUSTER_ID, request: createRequest() });

    // Assess
    expect(result.retried).toEqual(["CleanUpNetwork", "CleanUpNetwork"]);
    expect(bed.record().reason).toMatch(/^AgentHealthTimeout: /);
    expect(bed.leftovers()).toEqual(NOTHING_LEFT);
  });
});
