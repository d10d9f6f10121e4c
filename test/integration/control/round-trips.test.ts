import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { handleApiRequest } from "../../../lib/control/api/routes.js";
import { runScaleCycle } from "../../../lib/control/scale-cycle.js";
import { RecordingWorkflowStarter } from "../../../lib/workflow/starter.js";
import { CONFIG, controlBed } from "../../support/control-bed.js";
import { startDynalite, type TestDynamo } from "../../support/dynalite.js";

/**
 * Issue 14, item 6 (fewer round trips), measured on dynalite: a poll's reads of its cluster's nodes
 * partition are all different queries (the intents by their key range, the node records), and node
 * churn stays off the cluster record's version, so an operator's conditional PUT still lands.
 */

let db: TestDynamo;
beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => {
  await db.close();
});

const ONE_POLL = { windowMs: 0, pollMs: 15_000 };

/** Records the key condition of every Query sent on the shared client while `act` runs. */
async function queriesDuring(act: () => Promise<unknown>): Promise<string[]> {
  const queries: string[] = [];
  const name = "countQueries";
  db.client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === "QueryCommand") queries.push(JSON.stringify(args.input));
      return next(args);
    },
    { step: "initialize", name },
  );
  try {
    await act();
  } finally {
    db.client.middlewareStack.remove(name);
  }
  return queries;
}

describe("round trips", () => {
  it("a poll makes no two identical queries on its cluster's partition: intents are read by key range", async () => {
    // Prepare: a running cluster with a launching node and the job it is for (the poll launches nothing)
    const bed = await controlBed(db);
    bed.agent.addPending("compute", "1", { nodes: 1, cpus: 4 });
    await runScaleCycle("demo", bed.deps("inv-1"), ONE_POLL);
    bed.clock.advance(20_000);
    // Act
    const queries = await queriesDuring(() => runScaleCycle("demo", bed.deps("inv-2"), ONE_POLL));
    // Assess
    const conditions = queries.map((q) => JSON.parse(q).KeyConditionExpression as string);
    expect(new Set(queries).size).toBe(queries.length);
    expect(conditions.sort()).toEqual(["clusterId = :c", "clusterId = :c AND begins_with(nodeName, :p)"]);
    expect((await bed.store.listNodes("demo")).map((n) => n.status)).toEqual(["LAUNCHING"]);
  });

  it("keeps node churn off the cluster's version: a PUT /autoscaling with the version read before a join lands", async () => {
    // Prepare: the operator reads the version; then a node is launched and joins Slurm.
    const bed = await controlBed(db);
    const read = await bed.store.getCluster("demo");
    bed.agent.addPending("compute", "7", { nodes: 1, cpus: 4 });
    await runScaleCycle("demo", bed.deps("inv-1"), ONE_POLL);
    const [node] = await bed.store.listNodes("demo");
    bed.agent.join(node?.nodeName ?? "", "compute", "c5.xlarge", "zone-a");
    bed.clock.advance(20_000);
    await runScaleCycle("demo", bed.deps("inv-2"), ONE_POLL);
    const deps = {
      store: bed.store,
      clock: bed.clock,
      metrics: bed.metrics,
      workflows: new RecordingWorkflowStarter(),
      runtime: async () => ({ provider: bed.provider, agent: bed.agent }),
    };
    // Act
    const put = await handleApiRequest(deps, {
      method: "PUT",
      path: "/clusters/demo/autoscaling",
      headers: { "content-type": "application/json", "If-Match": `"${read?.version}"` },
      query: {},
      body: JSON.stringify({ ...CONFIG, shrinkIdleTime: 600 }),
    });
    // Assess
    expect((await bed.store.listNodes("demo")).map((n) => n.status)).toEqual(["JOINED"]);
    expect(put.statusCode).toBe(200);
    expect(JSON.parse(put.body)).toMatchObject({ version: (read?.version ?? 0) + 1 });
  });
});
