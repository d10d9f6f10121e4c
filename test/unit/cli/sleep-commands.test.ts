import { beforeAll, describe, expect, it } from "vitest";
import type { ApiBed } from "../../support/api-bed.js";
import { cliApiBed } from "../../support/cli-api-bed.js";

/**
 * `nowscale sleep|wake` and `nowscale nodes stop|resume` of the built CLI against the real local API
 * server over the API's routes on dynalite, the fake cloud and the fake agent.
 */

describe("nowscale sleep, wake, nodes stop and resume", () => {
  const t = cliApiBed("nowscale-sleep");
  const run = (args: string[]) => t.run(args);
  let bed: ApiBed;
  let clusterId = "";
  beforeAll(() => {
    ({ bed, clusterId } = t);
  });

  it("sleeps (the busy node named as waiting), refuses an unknown node to stop or resume, wakes", async () => {
    // Prepare: one node joined and running a job
    const added = await run(["nodes", "add", clusterId, "--queue", "compute", "--count", "1", "--json"]);
    expect(added.status, added.stderr).toBe(0);
    const [instance] = bed.provider.fakeCloud.live();
    if (instance === undefined) throw new Error("no node launched");
    bed.agent.join(instance.id, "compute", "c5.xlarge", "zone-a");
    const node = bed.agent.nodes[0];
    if (node === undefined) throw new Error("no node");
    node.state = "ALLOCATED";
    node.cpusAllocated = node.cpus;
    // Act
    const unknown = await run(["nodes", "stop", "i-none", "--cluster", clusterId]);
    const unknownResume = await run(["nodes", "resume", "i-none", "--cluster", clusterId]);
    const slept = await run(["sleep", clusterId]);
    const woken = await run(["wake", clusterId, "--json"]);
    const resumedAgain = await run(["nodes", "resume", instance.id, "--cluster", clusterId, "--json"]);
    // Assess
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toContain("nodes[0]");
    // resume refuses a name the cluster never had as stop does, not as a node to be replaced
    expect(unknownResume.status).toBe(unknown.status);
    expect(unknownResume.stderr).toContain("nodes[0]");
    expect(unknownResume.stderr).toContain("no node i-none in this cluster");
    expect(unknownResume.stdout).toBe("");
    expect(slept.status, slept.stderr).toBe(0);
    expect(slept.stdout).toContain(`${clusterId} is SLEEPING: autoscaling paused; nodes retired: none`);
    expect(slept.stdout).toMatch(new RegExp(`${instance.id}: Slurm shows it DRAINING with a job`));
    expect(woken.status, woken.stderr).toBe(0);
    expect(JSON.parse(woken.stdout)).toMatchObject({ status: "RUNNING", resumed: [instance.id] });
    expect(JSON.parse(resumedAgain.stdout).notResumed).toEqual([
      { node: instance.id, reason: expect.stringContaining("already in service") },
    ]);
    expect(bed.provider.fakeCloud.get(instance.id)?.state).not.toBe("TERMINATED");
  });
});
