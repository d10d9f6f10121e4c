import { mkdtemp, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ConfigInput, parseConfig } from "../../lib/core/config.js";
import type { OkReport } from "../../lib/ports/agent-report.js";
import {
  startTestbed,
  stopTestbed,
  type Testbed,
  testbedUnavailableReason,
} from "../../lib/providers/local/slurm-testbed.js";
import { SlurmClient } from "../../scheduler-plugins/slurm/client.js";
import { runCommand } from "../../scheduler-plugins/slurm/exec.js";
import { placeholderSpecs } from "../../scheduler-plugins/slurm/placeholders.js";

/**
 * Issue 15's recent arrivals on a real Slurm 22.05, through the built agent as SSM runs it (`report`, a
 * fresh process each time, with a state directory): squeue lists a job that has ended (cancelled) until
 * MinJobAge, both readers (json and format) count it, and once Slurm has purged it the record in the
 * state directory still does. The queue's largest shape comes from its placeholder FUTURE nodes (no
 * node joins). MinJobAge is 2 s here so the purge comes within a minute or two. Run under
 * `flock /work/notes/slurm.lock`.
 */
describe("recent arrivals counted by the agent on a real Slurm", () => {
  const bundle = resolve(import.meta.dirname, "../../dist/agent/nowscale-agent.js");
  let tb: Testbed;

  const slurm = async (file: string, args: string[]) => {
    const r = await runCommand(file, args, { env: tb.env, timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`${file} ${args.join(" ")}: ${r.stderr}`);
    return r.stdout.trim();
  };
  /** One `nowscale-agent report` run, as SSM Run Command starts it. */
  const report = async (stateDir: string, source: "json" | "format" = "json"): Promise<OkReport> => {
    const r = await runCommand(
      process.execPath,
      [bundle, "report", "--state-dir", stateDir, "--source", source],
      { env: tb.env, timeoutMs: 60_000 },
    );
    if (r.code !== 0) throw new Error(`report: exit ${r.code}: ${r.stdout}${r.stderr}`);
    return JSON.parse(r.stdout) as OkReport;
  };
  const cpusIn = (r: OkReport, windowS: number) =>
    r.arrivals?.find((a) => a.queue === "compute" && a.windowS === windowS)?.cpus;

  beforeAll(async () => {
    const unavailable = testbedUnavailableReason();
    if (unavailable !== undefined) throw new Error(`the real-Slurm suite cannot run here: ${unavailable}`);
    tb = await startTestbed({
      stateDir: await mkdtemp(join(tmpdir(), "nowscale-arrivals-")),
      clusterName: "arrivals",
      queues: [{ name: "compute" }],
      netnsPrefix: "nsarr-",
      slurmctldPort: 7817,
      slurmdPort: 7818,
      extraConf: ["MinJobAge=2"],
    });
  }, 180_000);

  afterAll(async () => {
    if (tb !== undefined) await stopTestbed(tb);
  }, 180_000);

  it("counts an ended job while squeue lists it, and keeps it in the state directory after Slurm purged it", async () => {
    // Prepare: compute's shapes are 1 and 2 CPUs (placeholders); jobs of 1, 2 and 4 CPUs pend (the
    //   4-CPU one is multi-node here, not counted); the 1-CPU one is cancelled: ended, still listed.
    const config: ConfigInput = {
      instanceTypes: { "t.c1": { vcpus: 1, memoryMiB: 1024 }, "t.c2": { vcpus: 2, memoryMiB: 2048 } },
      queueConfigs: [
        {
          queueName: "compute",
          maxSize: 4,
          expansionNodeConfigs: [
            { zone: "z-a", instanceType: "t.c1" },
            { zone: "z-a", instanceType: "t.c2" },
          ],
        },
      ],
    };
    const client = new SlurmClient({ env: tb.env });
    await client.syncPlaceholders(placeholderSpecs(parseConfig(config)));
    const sbatch = (n: number) =>
      slurm("sbatch", [
        "--parsable",
        "--output=/dev/null",
        "-p",
        "compute",
        "-n",
        String(n),
        "--wrap",
        "true",
      ]);
    const one = await sbatch(1);
    await sbatch(2);
    await sbatch(4);
    await slurm("scancel", [one]);
    const kept = await mkdtemp(join(tmpdir(), "nowscale-arrivals-state-"));

    // Act: reports while the cancelled job is listed, then after Slurm purged it
    const listed = (await client.jobs()).jobs.find((j) => j.id === one)?.state;
    const whileListed = await report(kept);
    const formatWhileListed = await report(await mkdtemp(join(tmpdir(), "nowscale-arrivals-fmt-")), "format");
    const deadline = Date.now() + 180_000;
    while ((await client.jobs()).jobs.some((j) => j.id === one)) {
      if (Date.now() > deadline) throw new Error(`job ${one} was not purged within 180 s`);
      await new Promise((r) => setTimeout(r, 2_000));
    }
    const afterPurge = await report(kept);
    const fresh = await report(await mkdtemp(join(tmpdir(), "nowscale-arrivals-fresh-")));

    // Assess
    expect(listed).toBe("CANCELLED");
    expect(cpusIn(whileListed, 900)).toBe(3);
    expect(cpusIn(formatWhileListed, 900)).toBe(3);
    expect(cpusIn(afterPurge, 900)).toBe(3);
    expect(cpusIn(fresh, 900)).toBe(2);
    expect((await stat(join(kept, "arrivals.json"))).mode & 0o777).toBe(0o600);
    await slurm("scancel", ["--user=root"]);
  }, 300_000);
});
