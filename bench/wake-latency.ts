/**
 * Submit → launch call in the local mode, with and without the agent's wake (needs root, slurm-wlm,
 * munge; the built CLI and agent bundle):
 *   npm run build && flock /work/notes/slurm.lock npx tsx bench/wake-latency.ts --samples 8 --interval 15 [--no-wake]
 * Starts `nowscale local up` (its own prefix, subnet and ports; `--interval` seconds between scale cycles),
 * creates a cluster of one-CPU nodes, then per sample waits a random part of the interval (so submissions
 * fall anywhere in the poll cycle), submits a one-CPU job that keeps its node busy, and times from `sbatch`
 * returning to the supervisor's `launch call:` line (written as the launch reaches the local provider).
 * Prints one JSON line with every sample. Not part of `npm run bench`, which needs no root.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { readApiToken } from "../lib/local/api-auth.js";
import { localPaths } from "../lib/local/settings.js";
import { sleep } from "../lib/providers/local/netns.js";
import { runCommand } from "../scheduler-plugins/slurm/exec.js";

const CLI = resolve(import.meta.dirname, "../dist/bin/nowscale.js");

export interface WakeLatencyOptions {
  samples: number;
  /** The local mode's `--interval`: seconds between scheduled scale cycles. */
  intervalSeconds: number;
  /** False: `--no-wake` (polling only). */
  wake: boolean;
  ports: { api: number; agent: number; slurmctld: number; slurmd: number };
  prefix: string;
  subnet: string;
  /** Longest wait for one launch call. @default twice the interval plus 30 s */
  timeoutMs?: number;
  /** The most a sample waits before its submission. @default the interval */
  maxJitterMs?: number;
  log?: (line: string) => void;
}

export interface WakeLatencyResult {
  /** The local mode's state directory (removed by `local down`; its logs stay). */
  stateDir: string;
  wake: boolean;
  intervalSeconds: number;
  samplesMs: number[];
  medianMs: number;
  meanMs: number;
  maxMs: number;
}

function cli(args: string[], timeoutMs = 240_000): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: timeoutMs });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** The launch calls the supervisor logged: epoch ms of each `launch call:` line. */
function launchCalls(supervisorLog: string): number[] {
  let text = "";
  try {
    text = readFileSync(supervisorLog, "utf8");
  } catch {
    return [];
  }
  return [...text.matchAll(/^(\S+) launch call: /gm)].map((m) => Date.parse(m[1] ?? ""));
}

export async function measureWakeLatency(o: WakeLatencyOptions): Promise<WakeLatencyResult> {
  const log = o.log ?? (() => undefined);
  const stateDir = await mkdtemp(join(tmpdir(), "nowscale-wake-"));
  const paths = localPaths(stateDir);
  const env = { ...process.env, SLURM_CONF: join(paths.slurmDir, "slurm.conf") };
  const upArgs = [
    "local",
    "up",
    "--state-dir",
    stateDir,
    "--port",
    String(o.ports.api),
    "--agent-port",
    String(o.ports.agent),
    "--slurmctld-port",
    String(o.ports.slurmctld),
    "--slurmd-port",
    String(o.ports.slurmd),
    "--prefix",
    o.prefix,
    "--subnet",
    o.subnet,
    "--interval",
    String(o.intervalSeconds),
    "--boot-delay",
    "0",
    ...(o.wake ? [] : ["--no-wake"]),
  ];
  const started = cli(upArgs);
  if (started.status !== 0) throw new Error(`local up failed: ${started.out}`);
  const samplesMs: number[] = [];
  try {
    const token = readApiToken(stateDir);
    const api = async (path: string, init: RequestInit = {}) => {
      const res = await fetch(`http://127.0.0.1:${o.ports.api}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const created = await api("/clusters", { method: "POST", body: JSON.stringify(wakeCluster(o.samples)) });
    if (created.status !== 202) throw new Error(`cluster create: ${JSON.stringify(created.body)}`);
    const clusterId = String(created.body.clusterId);
    const deadline = Date.now() + 60_000;
    while ((await api(`/clusters/${clusterId}`)).body.status !== "RUNNING") {
      if (Date.now() > deadline) throw new Error("the cluster did not become RUNNING within 60 s");
      await sleep(200);
    }
    log(`cluster ${clusterId} RUNNING; interval ${o.intervalSeconds} s, wake ${o.wake}`);
    const timeoutMs = o.timeoutMs ?? 2 * o.intervalSeconds * 1000 + 30_000;
    for (let i = 0; i < o.samples; i++) {
      const jitter = Math.round(Math.random() * (o.maxJitterMs ?? o.intervalSeconds * 1000));
      await sleep(jitter);
      const before = launchCalls(paths.supervisorLog).length;
      const r = await runCommand(
        "sbatch",
        ["--parsable", "-p", "compute", "-n1", "--output=/dev/null", "--wrap", "sleep 3600"],
        { env, timeoutMs: 30_000 },
      );
      const submitted = Date.now();
      if (r.code !== 0) throw new Error(`sbatch failed: ${r.stderr.trim()}`);
      let call: number | undefined;
      while (call === undefined && Date.now() - submitted < timeoutMs) {
        call = launchCalls(paths.supervisorLog)[before];
        if (call === undefined) await sleep(50);
      }
      if (call === undefined)
        throw new Error(`no launch call within ${timeoutMs / 1000} s of job ${r.stdout.trim()}`);
      samplesMs.push(call - submitted);
      log(
        `sample ${i + 1}: waited ${jitter} ms, job ${r.stdout.trim()} submitted ${new Date(submitted).toISOString()}` +
          ` → launch call in ${call - submitted} ms`,
      );
    }
    await runCommand("scancel", ["--user", "root"], { env, timeoutMs: 30_000 });
  } finally {
    cli(["local", "down", "--state-dir", stateDir]);
  }
  const sorted = [...samplesMs].sort((a, b) => a - b);
  return {
    stateDir,
    wake: o.wake,
    intervalSeconds: o.intervalSeconds,
    samplesMs,
    medianMs: sorted[Math.floor((sorted.length - 1) / 2)] ?? Number.NaN,
    meanMs: Math.round(samplesMs.reduce((s, x) => s + x, 0) / Math.max(1, samplesMs.length)),
    maxMs: sorted.at(-1) ?? Number.NaN,
  };
}

/** One queue of one-CPU nodes, room for a node per sample; nodes stay (each job keeps its node busy). */
export function wakeCluster(samples: number) {
  return {
    name: "wake",
    cloud: "local",
    region: "local",
    network: { vpcId: "local-vpc", subnetIds: ["local-subnet"] },
    master: { instanceType: "local.master", zone: "local-a", imageId: "local" },
    autoscaling: {
      expansionBusyTime: 0,
      shrinkIdleTime: 600,
      instanceTypes: { "local.c1m1": { vcpus: 1, memoryMiB: 1024 } },
      queueConfigs: [
        {
          queueName: "compute",
          maxSize: Math.max(1, samples),
          scaleUpMemRatio: 1,
          expansionNodeConfigs: [{ zone: "local-a", instanceType: "local.c1m1" }],
        },
      ],
    },
  };
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const arg = (name: string, fallback: string) => {
    const at = process.argv.indexOf(name);
    return at >= 0 ? (process.argv[at + 1] ?? fallback) : fallback;
  };
  const result = await measureWakeLatency({
    samples: Number(arg("--samples", "8")),
    intervalSeconds: Number(arg("--interval", "15")),
    wake: !process.argv.includes("--no-wake"),
    ports: { api: 7880, agent: 7819, slurmctld: 7817, slurmd: 7818 },
    prefix: "nswb-",
    subnet: "192.168.243",
    log: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
