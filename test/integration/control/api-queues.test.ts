import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiBed, snapshot } from "../../support/api-bed.js";
import { startDynalite, type TestDynamo } from "../../support/dynalite.js";

/**
 * Queues on a live cluster through the API handler on dynalite (THPC AddQueue / DeleteQueue /
 * DescribeQueues): the partition is set through the agent before the configuration changes, a refused
 * reconfigure changes nothing, deletion refuses while jobs run (always) or pend (unless force), and a
 * deleted queue's nodes are retired. The fake agent keeps the partitions slurm.conf would declare.
 */

let db: TestDynamo;
beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => {
  await db.close();
});

const GPU = {
  queueName: "gpu",
  maxSize: 4,
  expansionNodeConfigs: [{ zone: "zone-a", instanceType: "c5.xlarge" }],
};

describe("POST /clusters/{id}/queues", () => {
  it("creates the partition through the agent, then adds the queue to the configuration", async () => {
    // Prepare
    const t = await apiBed(db);
    const id = await t.runningCluster();

    // Act
    const res = await t.call("POST", `/clusters/${id}/queues`, GPU);
    const list = await t.call("GET", `/clusters/${id}/queues`);

    // Assess
    expect(res.status).toBe(200);
    expect(t.agent.partitions).toEqual(["compute", "gpu"]);
    const cluster = await t.store.getCluster(id);
    const stored = cluster?.autoscaling as { queueConfigs: { queueName: string }[] } | undefined;
    expect(stored?.queueConfigs.map((q) => q.queueName)).toEqual(["compute", "gpu"]);
    expect(list.status).toBe(200);
    expect(list.body.slurm).toEqual({ reachable: true, partitionsNotInConfig: [] });
    expect(list.body.queues.map((q: { queueName: string }) => q.queueName)).toEqual(["compute", "gpu"]);
    expect(list.body.queues[1]).toMatchObject({
      maxSize: 4,
      slurm: { nodes: 0, pendingJobs: 0, partition: { state: "UP", default: false } },
    });
  });

  it("shows what Slurm really has next to the configuration: a queue without its partition, a partition without its queue", async () => {
    // Prepare: slurm.conf and the configuration disagree (a partition made by hand, the queue's lost)
    const t = await apiBed(db);
    const id = await t.runningCluster();
    t.agent.partitions = ["static"];
    // Act
    const list = await t.call("GET", `/clusters/${id}/queues`);
    // Assess
    expect(list.status).toBe(200);
    expect(list.body.slurm).toEqual({ reachable: true, partitionsNotInConfig: ["static"] });
    expect(list.body.queues[0]).toMatchObject({ queueName: "compute", slurm: { partition: null } });
  });

  it("changes nothing when the name is hostile, the queue exists or the master refuses the reconfigure", async () => {
    // Prepare
    const t = await apiBed(db);
    const id = await t.runningCluster();
    const before = await snapshot(db, t.tables);

    // Act
    const hostile = await t.call("POST", `/clusters/${id}/queues`, { ...GPU, queueName: "a;reboot" });
    const twice = await t.call("POST", `/clusters/${id}/queues`, { ...GPU, queueName: "compute" });
    t.agent.refuseReconfigure = true;
    const refused = await t.call("POST", `/clusters/${id}/queues`, GPU);
    t.agent.refuseReconfigure = false;
    t.agent.outage = "slurmctld";
    const down = await t.call("POST", `/clusters/${id}/queues`, GPU);

    // Assess
    expect(hostile.status).toBe(400);
    expect(hostile.body.issues[0].path).toBe("queueName");
    expect(twice.status).toBe(409);
    expect(refused.status).toBe(502);
    expect(refused.body.error).toMatch(/rolled back/);
    expect(down.status).toBe(503);
    expect(t.agent.partitions).toEqual(["compute"]);
    expect(await snapshot(db, t.tables)).toBe(before);
  });
});

describe("DELETE /clusters/{id}/queues/{queue}", () => {
  it("refuses while a job runs (even forced) or pends (unless forced), then retires the nodes and the partition", async () => {
    // Prepare: gpu added, one node of it in Slurm running a job
    const t = await apiBed(db);
    const id = await t.runningCluster();
    expect((await t.call("POST", `/clusters/${id}/queues`, GPU)).status).toBe(200);
    const added = await t.call("POST", `/clusters/${id}/nodes`, { queue: "gpu", count: 1 });
    const node = added.body.nodes[0] as string;
    t.agent.join(node, "gpu", "c5.xlarge", "zone-a");
    t.agent.jobs.push({
      queue: "gpu",
      state: "RUNNING",
      nodes: 1,
      cpusPerNode: 1,
      memPerNodeMiB: 0,
      gpusPerNode: 0,
      count: 1,
      oldestSubmittedAt: new Date(t.clock.now()).toISOString(),
      jobIds: ["7"],
      nodeNames: [node],
    });

    // Act
    const whileRunning = await t.call(
      "DELETE",
      `/clusters/${id}/queues/gpu`,
      undefined,
      {},
      { force: "true" },
    );
    t.agent.jobs = [];
    t.agent.addPending("gpu", "8", {});
    const whilePending = await t.call("DELETE", `/clusters/${id}/queues/gpu`);
    const forced = await t.call("DELETE", `/clusters/${id}/queues/gpu`, undefined, {}, { force: "true" });
    const last = await t.call("DELETE", `/clusters/${id}/queues/compute`);

    // Assess
    expect(whileRunning.status).toBe(409);
    expect(whileRunning.body.error).toMatch(/1 running job/);
    expect(whilePending.status).toBe(409);
    expect(whilePending.body.error).toMatch(/pending/);
    expect(forced.status).toBe(200);
    expect(forced.body.retired).toEqual([node]);
    expect(t.agent.calls).toContainEqual({ action: "drain", node, reason: "nowscale: queue gpu deleted" });
    expect(await t.store.listNodes(id)).toEqual([]);
    expect(t.agent.partitions).toEqual(["compute"]);
    expect(last.status).toBe(409);
    expect(last.body.error).toMatch(/last/);
  });
});

describe("PUT /clusters/{id}/autoscaling and queues", () => {
  it("creates a new queue's partition first, and refuses to drop a queue, pointing at queue delete", async () => {
    // Prepare
    const t = await apiBed(db);
    const id = await t.runningCluster();
    const cluster = await t.store.getCluster(id);
    const config = structuredClone(cluster?.autoscaling) as { queueConfigs: unknown[] };

    // Act
    const added = await t.call("PUT", `/clusters/${id}/autoscaling`, {
      ...config,
      queueConfigs: [...config.queueConfigs, GPU],
    });
    const dropped = await t.call("PUT", `/clusters/${id}/autoscaling`, { ...config, queueConfigs: [GPU] });

    // Assess
    expect(added.status).toBe(200);
    expect(t.agent.partitions).toEqual(["compute", "gpu"]);
    expect(dropped.status).toBe(409);
    expect(dropped.body.error).toMatch(/queue compute would be dropped.*queue delete/);
    expect(t.agent.partitions).toEqual(["compute", "gpu"]);
  });
});
