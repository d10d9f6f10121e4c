import { describe, expect, it } from "vitest";
import { FakeAgent } from "../../../lib/agent-channels/fake.js";
import { drainedWithoutJob, stillAsPlanned } from "../../../lib/control/node-retirement.js";
import type { OkReport, ReportNode } from "../../../lib/ports/agent-report.js";
import { FakeClock } from "../../../lib/providers/fake/index.js";

/** A report of one node `i-1`, changed by `patch`, beside the given running job groups. */
async function reportWith(patch: Partial<ReportNode>, runningOn: string[] = []): Promise<OkReport> {
  const agent = new FakeAgent(new FakeClock());
  agent.join("i-1", "compute", "c5.xlarge", "zone-a");
  Object.assign(agent.nodes[0] as ReportNode, patch);
  if (runningOn.length > 0) {
    agent.jobs.push({
      queue: "compute",
      state: "RUNNING",
      nodes: 1,
      cpusPerNode: 4,
      count: 1,
      oldestSubmittedAt: "2026-01-01T00:00:00.000Z",
      jobIds: ["9"],
      nodeNames: runningOn,
    });
  }
  return agent.report();
}

const drained = { state: "DRAINED", reason: "nowscale: idle 61 s", slurmState: "IDLE+DRAIN" } as const;

describe("drainedWithoutJob: what the report read after a drain must say before the same-poll terminate", () => {
  it("answers nothing against a node DRAINED by NowScale with no job", async () => {
    // Prepare
    const report = await reportWith(drained);
    // Act
    const why = drainedWithoutJob(report, "i-1");
    // Assess
    expect(why).toBeUndefined();
  });

  it("keeps a node Slurm shows DRAINING (a job landed before the drain: ALLOCATED, MIXED or COMPLETING + DRAIN)", async () => {
    // Prepare
    const report = await reportWith({ ...drained, state: "DRAINING", slurmState: "MIXED+DRAIN" });
    // Act / Assess
    expect(drainedWithoutJob(report, "i-1")).toBe("Slurm shows it DRAINING with a job");
  });

  it("keeps a DRAINED node with an allocated CPU, or one a running job names", async () => {
    // Prepare
    const allocated = await reportWith({ ...drained, cpusAllocated: 1 });
    const named = await reportWith(drained, ["i-1"]);
    // Act / Assess
    expect(drainedWithoutJob(allocated, "i-1")).toBe("Slurm shows it DRAINED with a job");
    expect(drainedWithoutJob(named, "i-1")).toBe("Slurm shows it DRAINED with a job");
  });

  it("keeps a node not yet DRAINED (still IDLE: the drain has not landed), one missing, one drained by a person", async () => {
    // Prepare
    const idle = await reportWith({});
    const other = await reportWith({ ...drained, reason: "disk check" });
    // Act / Assess
    expect(drainedWithoutJob(idle, "i-1")).toBe("Slurm shows it IDLE, not DRAINED");
    expect(drainedWithoutJob(idle, "i-2")).toBe("not in the report read after the drain");
    expect(drainedWithoutJob(other, "i-1")).toBe('drained by someone else ("disk check")');
  });
});

describe("stillAsPlanned: what a report read right before a planned terminate must say", () => {
  it("agrees when Slurm shows the node as the plan saw it with no job, and names what changed otherwise", async () => {
    // Prepare: i-1 in the state each case needs; another report has no node at all
    const asDrained = await reportWith(drained);
    const notReady = await reportWith({ state: "NOT_READY", slurmState: "IDLE+POWERED_DOWN" });
    const idle = await reportWith({});
    const busy = await reportWith({ state: "ALLOCATED", cpusAllocated: 4 });
    const none = { ...idle, nodes: [] };
    // Act / Assess: a boot still not in Slurm, a drained node still empty, a node still not ready
    expect(stillAsPlanned(none, "i-1", "LAUNCHING")).toBeUndefined();
    expect(stillAsPlanned(asDrained, "i-1", "DRAINED")).toBeUndefined();
    expect(stillAsPlanned(notReady, "i-1", "NOT_READY")).toBeUndefined();
    // a boot that joined, a drained node resumed, a not-ready node now running a job, a state never planned
    expect(stillAsPlanned(idle, "i-1", "LAUNCHING")).toBe("joined Slurm since the plan (IDLE)");
    expect(stillAsPlanned(idle, "i-1", "DRAINED")).toBe("Slurm shows it IDLE, not DRAINED");
    expect(stillAsPlanned(busy, "i-1", "NOT_READY")).toBe("Slurm now shows it running a job");
    expect(stillAsPlanned(idle, "i-1", "IDLE")).toBe("planned for a node IDLE: not terminated");
  });
});
