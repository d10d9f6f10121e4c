import { statSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { LOCAL_PACKAGES } from "../../../lib/local/dependencies.js";
import type { ApiBed } from "../../support/api-bed.js";
import { cliApiBed } from "../../support/cli-api-bed.js";

/**
 * The day-2 commands of the built CLI (`use`, `nodes list`, `nodes rebuild`, `usage`, `history`,
 * `doctor`, suggestions) against the real local API server (startApiServer: the token, the proxy event,
 * the deployed handler) over the API's routes on dynalite, the fake cloud and agent. The bed's clock
 * stands still at 2026-01-01T00:00Z unless a test moves it; c5.xlarge costs 0.17 per hour.
 */

const MIN = 60_000;

describe("nowscale use / nodes / usage / history / doctor", () => {
  const t = cliApiBed("nowscale-ops");
  const run = (args: string[]) => t.run(args);
  let bed: ApiBed;
  let configDir = "";
  let clusterId = "";
  beforeAll(() => {
    ({ bed, configDir, clusterId } = t);
  });

  it("use: keeps the current cluster in a 0600 file after checking it exists, and commands say they used it", async () => {
    // Act
    const unknown = await run(["use", "c-nope"]);
    const noneYet = await run(["nodes", "list"]);
    const chosen = await run(["use", clusterId]);
    const shown = await run(["use"]);
    const listed = await run(["nodes", "list"]);
    // Assess
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toContain("HTTP 404");
    expect(noneYet.status).toBe(2);
    expect(noneYet.stderr).toContain("nowscale use CLUSTER");
    expect(chosen.status).toBe(0);
    expect(chosen.stdout).toContain(`current cluster: ${clusterId} (demo, RUNNING)`);
    expect(statSync(join(configDir, "context.json")).mode & 0o777).toBe(0o600);
    expect(statSync(configDir).mode & 0o777).toBe(0o700);
    expect(shown.stdout.trim()).toBe(`current cluster: ${clusterId}`);
    expect(listed.status).toBe(0);
    expect(listed.stderr).toContain(`using cluster ${clusterId} (the current cluster`);
    expect(listed.stdout.trim()).toBe(`no nodes in ${clusterId}`);
  });

  it("nodes list and nodes rebuild: a table, --json, and a failed node replaced", async () => {
    // Prepare: two nodes at T0; one joins IDLE, the other goes DOWN in Slurm
    const added = await bed.call("POST", `/clusters/${clusterId}/nodes`, { queue: "compute", count: 2 });
    const [idle, down] = added.body.nodes as [string, string];
    bed.agent.join(idle, "compute", "c5.xlarge", "zone-a");
    bed.agent.join(down, "compute", "c5.xlarge", "zone-a");
    Object.assign(bed.agent.nodes.find((n) => n.name === down) ?? {}, { state: "DOWN", slurmState: "DOWN*" });
    bed.clock.advance(30 * MIN);
    // Act
    const table = await run(["nodes", "list", clusterId]);
    const json = await run(["nodes", "list", clusterId, "--json"]);
    const refused = await run(["nodes", "rebuild", clusterId, idle]);
    const rebuilt = await run(["nodes", "rebuild", clusterId]);
    // Assess
    expect(table.status).toBe(0);
    const lines = table.stdout.trim().split("\n");
    expect(lines[0]).toMatch(
      /^NODE\s+QUEUE\s+TYPE\s+ZONE\s+STATUS\s+SLURM\s+LAUNCHED\s+IDLE\s+HOURS\s+COST\s+REBUILD$/,
    );
    const idleLine = lines.find((l) => l.startsWith(idle)) ?? "";
    expect(idleLine).toMatch(
      /compute\s+c5\.xlarge\s+zone-a\s+LAUNCHING\s+IDLE\+DYNAMIC_NORM\s+2026-01-01 00:00:00Z\s+30m\s+0\.50\s+0\.0850\s+no$/,
    );
    expect(lines.find((l) => l.startsWith(down))).toContain("yes: DOWN* in Slurm");
    expect(JSON.parse(json.stdout).nodes).toHaveLength(2);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain("HTTP 409");
    expect(refused.stderr).toContain(`nodes[0]: ${idle}: healthy`);
    expect(rebuilt.status).toBe(0);
    expect(rebuilt.stdout).toContain(`retired: ${down} (DOWN* in Slurm)`);
    expect(rebuilt.stdout).toMatch(/^started: \S+$/m);
    expect(bed.provider.fakeCloud.live().map((i) => i.id)).not.toContain(down);
  });

  it("usage: a table, --by, --json and RFC 4180 --csv that add up to the node records; --all counts progress", async () => {
    // Prepare: a second cluster with one node for --all; then an hour passes. At this point the first
    // cluster has: idle (T0 → now), down (T0 → T0+30 min, retired), its replacement (T0+30 → now).
    const other = await bed.runningCluster();
    await bed.call("POST", `/clusters/${other}/nodes`, { queue: "compute", count: 1 });
    bed.clock.advance(60 * MIN); // now T0+90 min
    // Act
    const table = await run(["usage", clusterId]);
    const byNode = await run(["usage", clusterId, "--by", "node"]);
    const json = await run(["usage", clusterId, "--json"]);
    const csv = await run(["usage", clusterId, "--csv"]);
    const all = await run(["usage", "--all", "--by", "cluster"]);
    const badTime = await run(["usage", clusterId, "--from", "yesterday"]);
    // Assess, by hand: 1.5 h + 0.5 h + 1 h = 3 node-hours × 0.17 = 0.51; the other cluster 1 h = 0.17
    expect(table.status).toBe(0);
    expect(table.stdout).toMatch(
      new RegExp(`${clusterId}\\s+2026-01-01\\s+compute\\s+c5\\.xlarge\\s+3\\s+3\\.00\\s+0\\.17\\s+0\\.5100`),
    );
    expect(table.stdout).toMatch(/^total\s+3\.00\s+0\.5100$/m);
    expect(byNode.stdout).toMatch(/running\s+1\.50\s+0\.2550/);
    const report = JSON.parse(json.stdout);
    expect(report.total).toEqual({ nodeHours: 3, cost: 0.51, unpricedNodeHours: 0 });
    const hours = report.nodes.reduce((s: number, n: { hours: number }) => s + n.hours, 0);
    expect(hours).toBeCloseTo(report.total.nodeHours, 9);
    expect(csv.stdout).toBe(
      "cluster,day,queue,instance_type,nodes,node_hours,price_per_hour,cost\r\n" +
        `${clusterId},2026-01-01,compute,c5.xlarge,3,3,0.17,0.51\r\n`,
    );
    expect(all.status).toBe(0);
    expect(all.stderr).toContain("reading usage: 1/2");
    expect(all.stderr).toContain("reading usage: 2/2");
    expect(all.stdout).toMatch(new RegExp(`^${other}\\s+1\\.00\\s+0\\.1700$`, "m"));
    expect(all.stdout).toMatch(/^total\s+4\.00\s+0\.6800$/m);
    expect(badTime.status).toBe(2);
    expect(badTime.stderr).toContain("--from must be an ISO-8601 time");
  });

  it("history: who did what, local:root for the operator's actions and nowscale for the service's", async () => {
    // Prepare: one event of the service's own (no principal)
    await bed.store.appendEvent({
      clusterId,
      kind: "DRAINED",
      message: "idle, for the test",
      at: bed.clock.now(),
    });
    // Act
    const table = await run(["history", clusterId]);
    const operator = await run(["history", clusterId, "--operator", "--csv"]);
    // Assess
    expect(table.status).toBe(0);
    expect(table.stdout).toMatch(/^TIME\s+KIND\s+BY\s+QUEUE\s+COUNT\s+MESSAGE$/m);
    expect(table.stdout).toMatch(/DRAINED\s+nowscale\s+-\s+-\s+idle, for the test/);
    expect(table.stdout).toMatch(/MANUAL\s+local:root\s+-\s+1\s+rebuilt by hand/);
    const rows = operator.stdout.trim().split("\r\n");
    expect(rows[0]).toBe("at,kind,by,queue,count,nodes,message");
    expect(rows.slice(1).every((r) => r.includes(",local:root,"))).toBe(true);
    // the rebuild's message holds a comma, so it is quoted
    expect(rows.find((r) => r.includes(",MANUAL,"))).toMatch(
      /,"rebuilt by hand: 1 failed node\(s\) retired, 1 replacement\(s\) started"$/,
    );
    expect(operator.stdout).not.toContain("DRAINED");
  });

  it("suggests the command or flag meant, and doctor checks this machine one line each", async () => {
    // Act
    const verb = await run(["clustr", "list"]);
    const sub = await run(["nodes", "lst"]);
    const flag = await run(["usage", "--jsn"]);
    const doctor = await run(["doctor", "--local", "--json"]);
    // Assess
    // bad usage: 2, as every command's own refusals (docs/cli.md, exit status)
    for (const r of [verb, sub, flag]) expect(r.status).toBe(2);
    expect(verb.stderr).toContain("(Did you mean cluster?)");
    expect(sub.stderr).toContain("(Did you mean list?)");
    expect(flag.stderr).toContain("(Did you mean --json?)");
    const checks = JSON.parse(doctor.stdout).checks as { name: string; ok: boolean; fix?: string }[];
    expect(checks.map((c) => c.name)).toEqual([
      "root",
      ...LOCAL_PACKAGES.map((p) => p.program),
      "/run/munge",
      "ip netns",
    ]);
    expect(checks[0]?.ok).toBe(process.getuid?.() === 0);
    for (const c of checks) if (!c.ok) expect(c.fix).toBeTruthy();
    expect(doctor.status).toBe(checks.every((c) => c.ok) ? 0 : 1);
  });
});
