import { beforeAll, describe, expect, it } from "vitest";
import type { ApiBed } from "../../support/api-bed.js";
import { cliApiBed } from "../../support/cli-api-bed.js";

/**
 * `nowscale queue add|list|delete` of the built CLI against the real local API server over the API's
 * routes on dynalite and the fake agent (which keeps the partitions slurm.conf would declare).
 */

describe("nowscale queue", () => {
  const t = cliApiBed("nowscale-queue");
  const run = (args: string[]) => t.run(args);
  let bed: ApiBed;
  let clusterId = "";
  beforeAll(() => {
    ({ bed, clusterId } = t);
  });

  it("adds a queue (its partition first), lists it with Slurm's view, refuses a busy delete, then deletes", async () => {
    // Act
    const added = await run([
      "queue",
      "add",
      clusterId,
      "--name",
      "gpu",
      "--instance-type",
      "c5.xlarge",
      "--zone",
      "zone-a",
    ]);
    const hostile = await run([
      "queue",
      "add",
      clusterId,
      "--name",
      "a;reboot",
      "--instance-type",
      "c5.xlarge",
      "--zone",
      "zone-a",
    ]);
    bed.agent.addPending("gpu", "9", {});
    const listed = await run(["queue", "list", clusterId]);
    const refused = await run(["queue", "delete", "gpu", clusterId]);
    const forced = await run(["queue", "delete", "gpu", clusterId, "--force", "--json"]);

    // Assess
    expect(added.status, added.stderr).toBe(0);
    expect(added.stdout).toContain("queue gpu added");
    expect(hostile.status).toBe(1);
    expect(hostile.stderr).toContain("queueName");
    expect(listed.stdout).toMatch(/gpu\s+0\s+10\s+c5\.xlarge@zone-a\s+UP\s+0\s+0\s+0\s+1\s+0/);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/pending job/);
    expect(forced.status, forced.stderr).toBe(0);
    expect(JSON.parse(forced.stdout)).toMatchObject({ queue: "gpu", retired: [] });
    expect(bed.agent.partitions).toEqual(["compute"]);
  });

  it("adds a queue kept at zero nodes (--max-size 0, as the config allows); refuses a negative or fractional one", async () => {
    // Prepare
    const add = (name: string, maxSize: string) =>
      run([
        "queue",
        "add",
        clusterId,
        "--name",
        name,
        "--instance-type",
        "c5.xlarge",
        "--zone",
        "zone-a",
        "--max-size",
        maxSize,
      ]);
    // Act
    const zero = await add("idle0", "0");
    const negative = await add("neg", "-1");
    const fraction = await add("half", "1.5");
    const tooLarge = await add("huge", "10001");
    const listed = await run(["queue", "list", clusterId]);
    // Assess: 0 reaches the config; bad usage is 2 and sends nothing; the API's bound is 400 naming maxSize
    expect(zero.status, zero.stderr).toBe(0);
    expect(zero.stdout).toContain("queue idle0 added");
    expect(listed.stdout).toMatch(/idle0\s+0\s+0\s+c5\.xlarge@zone-a/);
    for (const refused of [negative, fraction]) {
      expect(refused.status).toBe(2);
      expect(refused.stderr).toContain("--max-size must be a whole number ≥ 0");
    }
    expect(tooLarge.status).toBe(1);
    expect(tooLarge.stderr).toContain("maxSize");
    expect(bed.agent.partitions).not.toContain("neg");
    expect(bed.agent.partitions).not.toContain("huge");
    const forced = await run(["queue", "delete", "idle0", clusterId, "--force"]);
    expect(forced.status, forced.stderr).toBe(0);
  });

  it("a refused request (400 bad input, 404 unknown cluster) prints its error, never a progress line before it", async () => {
    // Act
    const badName = await run([
      "queue",
      "add",
      clusterId,
      "--name",
      "a;reboot",
      "--instance-type",
      "c5.xlarge",
      "--zone",
      "zone-a",
    ]);
    const unknownCluster = await run([
      "queue",
      "add",
      "no-such-cluster",
      "--name",
      "gpu2",
      "--instance-type",
      "c5.xlarge",
      "--zone",
      "zone-a",
    ]);
    const unknownQueue = await run(["queue", "delete", "no-such-queue", clusterId]);
    const badUser = await run(["users", "add", "Root;x", clusterId]);
    const badNodes = await run(["nodes", "add", clusterId, "--queue", "no-such-queue", "--count", "1"]);

    // Assess
    for (const refused of [badName, unknownCluster, unknownQueue, badUser, badNodes]) {
      expect(refused.status).toBe(1);
      expect(refused.stderr).not.toMatch(/adding|deleting|launching/);
    }
    expect(badNodes.stderr).toContain("queue: no such queue");
    expect(badName.stderr).toContain("queueName");
    expect(unknownCluster.stderr).toMatch(/no-such-cluster/);
    expect(unknownQueue.stderr).toMatch(/no-such-queue/);
    expect(badUser.stderr).toMatch(/name/);
  });
});
