import { existsSync, readdirSync, readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { measureWakeLatency, type WakeLatencyOptions } from "../../bench/wake-latency.js";
import { testbedUnavailableReason } from "../../lib/providers/local/slurm-testbed.js";
import { CLI } from "../support/cli.js";

/**
 * Event-driven scale-out on a real Slurm, end to end: `nowscale local up` with a scale-cycle interval of
 * 300 s, so within this test no scheduled cycle ever runs; a job submitted with sbatch must still reach
 * the local provider's launch call within seconds, which only the agent's watcher (squeue), its signed
 * PutEvents, the local bus and the woken cycle can explain. The control, with `--no-wake`, sees no launch
 * call at all in the same time. Its own prefix, subnet and ports; run under `flock /work/notes/slurm.lock`.
 */

const BASE: Omit<WakeLatencyOptions, "wake" | "samples"> = {
  intervalSeconds: 300,
  ports: { api: 7980, agent: 7919, slurmctld: 7917, slurmd: 7918 },
  prefix: "nswt-",
  subnet: "192.168.244",
  maxJitterMs: 3000,
};

/** Processes whose command line or environment mentions the state directory (the watcher's SLURM_CONF). */
function processesOf(stateDir: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const text = `${readFileSync(`/proc/${entry}/cmdline`, "utf8")}\0${readFileSync(`/proc/${entry}/environ`, "utf8")}`;
      if (text.includes(stateDir)) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

describe("event-driven scale-out in the local mode", () => {
  beforeAll(() => {
    const unavailable = testbedUnavailableReason();
    if (unavailable !== undefined) throw new Error(`the real-Slurm suite cannot run here: ${unavailable}`);
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first`);
  });

  it("THEN each submitted job reaches the launch call within seconds, long before the 300 s poll", async () => {
    // Act
    const result = await measureWakeLatency({ ...BASE, wake: true, samples: 3, timeoutMs: 30_000 });

    // Assess
    expect(result.samplesMs).toHaveLength(3);
    for (const ms of result.samplesMs) expect(ms).toBeLessThan(10_000);
    const watcherLog = readFileSync(`${result.stateDir}/logs/agent-watch.log`, "utf8");
    expect(watcherLog.match(/"msg":"wake sent"/g)?.length).toBe(3);
    expect(processesOf(result.stateDir)).toEqual([]);
    process.stdout.write(`wake: submit → launch call ${JSON.stringify(result.samplesMs)} ms\n`);
  }, 240_000);

  it("THEN without the wake (the control) no launch call comes in the same time", async () => {
    // Act
    const result = await measureWakeLatency({ ...BASE, wake: false, samples: 1, timeoutMs: 20_000 }).catch(
      (error: Error) => error,
    );

    // Assess
    expect(result).toBeInstanceOf(Error);
    expect((result as Error).message).toMatch(/no launch call within 20 s/);
  }, 240_000);
});
