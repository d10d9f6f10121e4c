import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { retireNode } from "../../../lib/control/node-retirement.js";
import { reconcileCluster } from "../../../lib/control/reconciler.js";
import { runScaleCycle } from "../../../lib/control/scale-cycle.js";
import { type ControlBed, controlBed } from "../../support/control-bed.js";
import { startDynalite, type TestDynamo } from "../../support/dynalite.js";

let db: TestDynamo;
beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => {
  await db.close();
});

/** One launched node that joined Slurm and sits idle; its record. */
async function joinedNode(bed: ControlBed) {
  bed.agent.addPending("compute", "10", { nodes: 1, cpus: 4 });
  await runScaleCycle("demo", bed.deps("inv-1"), { windowMs: 0 });
  const [instance] = bed.provider.fakeCloud.live();
  if (instance === undefined) throw new Error("nothing launched");
  bed.agent.join(instance.id, "compute", "c5.xlarge", "zone-a");
  bed.agent.jobs = [];
  const [record] = await bed.store.listNodes("demo");
  if (record === undefined) throw new Error("no record");
  return record;
}

describe("retireNode", () => {
  it("terminates, removes the node from Slurm, then deletes the record", async () => {
    // Prepare
    const bed = await controlBed(db);
    const record = await joinedNode(bed);
    // Act
    const outcome = await retireNode(bed.deps("x"), "demo", record, bed.clock.now());
    // Assess
    expect(outcome).toBe("retired");
    expect(bed.provider.fakeCloud.get(record.instanceId)?.state).toBe("TERMINATED");
    expect(bed.agent.nodes.map((n) => n.name)).toEqual([]);
    expect(await bed.store.listNodes("demo")).toEqual([]);
  });

  it("keeps the record TERMINATING when Slurm cannot be told, and the reconciler finishes the job", async () => {
    // Prepare
    const bed = await controlBed(db);
    const record = await joinedNode(bed);
    bed.agent.outage = "slurmctld";
    // Act
    const outcome = await retireNode(bed.deps("x"), "demo", record, bed.clock.now());
    const kept = await bed.store.listNodes("demo");
    bed.agent.outage = "none";
    bed.clock.advance(130_000);
    const run = await reconcileCluster("demo", bed.deps("rec-1"));
    // Assess: the instance went at once; Slurm's node and the record only once Slurm was told
    expect(outcome).toBe("slurm-pending");
    expect(bed.provider.fakeCloud.get(record.instanceId)?.state).toBe("TERMINATED");
    expect(kept.map((r) => [r.nodeName, r.status])).toEqual([[record.nodeName, "TERMINATING"]]);
    expect(run.gone).toEqual([record.nodeName]);
    expect(bed.agent.nodes.map((n) => n.name)).toEqual([]);
    expect(await bed.store.listNodes("demo")).toEqual([]);
  });

  it("leaves the record TERMINATING when the terminate fails, for the reconciler to retry", async () => {
    // Prepare
    const bed = await controlBed(db);
    const record = await joinedNode(bed);
    bed.provider.terminate = async () => Promise.reject(new Error("cloud down"));
    // Act
    const failed = await retireNode(bed.deps("x"), "demo", record, bed.clock.now()).catch((e: unknown) => e);
    // Assess
    expect(failed).toBeInstanceOf(Error);
    expect((await bed.store.listNodes("demo")).map((r) => r.status)).toEqual(["TERMINATING"]);
    expect(bed.agent.nodes.map((n) => n.name)).toEqual([record.nodeName]);
  });
});
