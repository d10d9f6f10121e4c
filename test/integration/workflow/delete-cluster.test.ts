import { describe, expect, it } from "vitest";
import { ThrottledError, UnauthorizedError } from "../../../lib/ports/errors.js";
import { createClusterDefinition } from "../../../lib/workflow/create-cluster.js";
import { deleteClusterDefinition } from "../../../lib/workflow/delete-cluster.js";
import { CLUSTER_ID, createRequest, WorkflowBed } from "./harness.js";

/** A running cluster with two compute nodes the scaler launched. */
async function runningCluster(): Promise<WorkflowBed> {
  const bed = new WorkflowBed();
  const created = await bed.run(createClusterDefinition(), {
    clusterId: CLUSTER_ID,
    request: createRequest(),
  });
  expect(created.status).toBe("SUCCEEDED");
  await bed.provider.launch({
    clusterId: CLUSTER_ID,
    queue: "compute",
    round: "cycle-1",
    candidates: [{ instanceType: "c5.xlarge", zone: "us-east-1a", chargeType: "ON_DEMAND" }],
    count: 2,
    allOrNothing: false,
    imageId: "ami-0123456789abcdef0",
  });
  expect(bed.liveInstances()).toHaveLength(3);
  return bed;
}

describe("delete-cluster workflow, run locally on the real definition", () => {
  it("drains, terminates computes before the master, deletes secrets and network, ends DELETED", async () => {
    // Prepare
    const bed = await runningCluster();
    const masterId = bed.record().master?.instanceId;
    bed.provider.calls.length = 0;

    // Act
    const result = await bed.run(deleteClusterDefinition(), { clusterId: CLUSTER_ID });

    // Assess
    expect(result.status).toBe("SUCCEEDED");
    expect(bed.record().status).toBe("DELETED");
    expect(bed.agent.drained).toEqual([CLUSTER_ID]);
    const terminations = bed.provider.calls.flatMap((c) => (c.method === "terminate" ? [c.instanceIds] : []));
    expect(terminations[0]).toHaveLength(2);
    expect(terminations[0]).not.toContain(masterId);
    expect(terminations[1]).toEqual([masterId]);
    expect(bed.leftovers()).toEqual({ resources: [], instances: [], ledger: [] });
  });

  it("still deletes everything when the agent cannot be reached to drain", async () => {
    // Prepare
    const bed = await runningCluster();
    bed.agent.reachable = false;

    // Act
    const result = await bed.run(deleteClusterDefinition(), { clusterId: CLUSTER_ID });

    // Assess
    expect(result.status).toBe("SUCCEEDED");
    expect(bed.leftovers()).toEqual({ resources: [], instances: [], ledger: [] });
  });

  it("retries a throttled secret deletion and succeeds", async () => {
    // Prepare
    const bed = await runningCluster();
    bed.resources.failNext("deleteSecret", new ThrottledError("Rate exceeded"));

    // Act
    const result = await bed.run(deleteClusterDefinition(), { clusterId: CLUSTER_ID });

    // Assess
    expect(result.status).toBe("SUCCEEDED");
    expect(result.retried).toEqual(["DeleteSecrets"]);
  });

  it("records DELETE_FAILED with the reason, and a second run finishes the job", async () => {
    // Prepare
    const bed = await runningCluster();
    bed.resources.failNext("deleteNetwork", new UnauthorizedError("not allowed to DeleteVpc"));

    // Act
    const failed = await bed.run(deleteClusterDefinition(), { clusterId: CLUSTER_ID });
    const again = await bed.run(deleteClusterDefinition(), { clusterId: CLUSTER_ID });

    // Assess
    expect(failed.status).toBe("FAILED");
    expect(failed.error?.name).toBe("ClusterDeletionFailed");
    expect(bed.record().history).toContain("DELETE_FAILED");
    expect(bed.record().reason).toBe("UnauthorizedError: not allowed to DeleteVpc");
    expect(again.status).toBe("SUCCEEDED");
    expect(bed.record().status).toBe("DELETED");
    expect(bed.leftovers()).toEqual({ resources: [], instances: [], ledger: [] });
  });
});
