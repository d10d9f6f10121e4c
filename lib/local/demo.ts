import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import example from "../../examples/local-cluster.json" with { type: "json" };
import { runCommand } from "../../scheduler-plugins/slurm/exec.js";
import { listNamespaceNodes, sleep } from "../providers/local/netns.js";
import { readApiToken, statusPageLink } from "./api-auth.js";
import { apiUrl, type LocalSettings, localPaths } from "./settings.js";

/**
 * The demo a new user runs first (`npm run demo`): against a running local mode, create a cluster with
 * two queues and three shapes through the API, submit a workload with sbatch (varied shapes, a multi-node
 * job, a burst that takes several scale-out rounds), follow it live until every job has ended and the
 * cluster is back to zero compute nodes, and summarise. Throws (with what went wrong) on any failure.
 */

/** The demo's cluster: the API's create body. Short idle and busy times so it shrinks within the demo. */
export function demoCluster(shrinkIdleSeconds: number) {
  // The one definition is the example a user creates by hand (examples/local-cluster.json): queues
  // compute (THPC's proportional rounds: scaleOutRatio 50) and bigmem.
  return { ...example, autoscaling: { ...example.autoscaling, shrinkIdleTime: shrinkIdleSeconds } };
}

/** The demo fails when neither jobs nor nodes change for this long. */
const STALL_MS = 180_000;

export interface DemoJob {
  label: string;
  args: string[];
}

/** The workload: sbatch arguments (never a shell line), each job sleeping a few seconds. */
export function demoWorkload(short: boolean): DemoJob[] {
  const burst = short ? 3 : 6;
  const jobs: DemoJob[] = [];
  for (let i = 0; i < burst; i++)
    jobs.push({ label: `burst-${i + 1}`, args: ["-p", "compute", "-n1", "--wrap", "sleep 6"] });
  jobs.push({ label: "two-cpu", args: ["-p", "compute", "-c2", "--wrap", "sleep 6"] });
  jobs.push({ label: "multi-node", args: ["-p", "compute", "-N2", "--wrap", "srun sleep 5"] });
  jobs.push({ label: "bigmem", args: ["-p", "bigmem", "--mem=3000", "--wrap", "sleep 6"] });
  if (!short) jobs.push({ label: "bigmem-2", args: ["-p", "bigmem", "--mem=3000", "--wrap", "sleep 4"] });
  return jobs;
}

interface JobSeen {
  label: string;
  id: string;
  submittedAt: number;
  startedAt?: number;
  endedAt?: number;
  nodes: string[];
}

export interface DemoSummary {
  jobs: number;
  launches: number;
  nodesLaunched: number;
  waitSeconds: { median: number; max: number };
  submitToRegistrationSeconds: { median: number; max: number };
  durationSeconds: number;
}

export interface DemoOptions {
  short: boolean;
  shrinkIdleSeconds: number;
  /** Give up after this long. */
  timeoutMs: number;
  out: (line: string) => void;
}

export async function runDemo(settings: LocalSettings, options: DemoOptions): Promise<DemoSummary> {
  const started = Date.now();
  const base = apiUrl(settings);
  const token = readApiToken(settings.stateDir);
  const env = { ...process.env, SLURM_CONF: join(localPaths(settings.stateDir).slurmDir, "slurm.conf") };
  const slurm = (file: string, args: string[]) => runCommand(file, args, { env, timeoutMs: 30_000 });
  const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s`;

  options.out("creating the cluster (queues compute and bigmem, shapes local.c1m1, local.c2m2, local.c2m4)");
  const created = await call(base, token, "POST", "/clusters", demoCluster(options.shrinkIdleSeconds));
  const clusterId = (created as { clusterId: string }).clusterId;
  await until("the cluster to be RUNNING", 90_000, async () => {
    const c = (await call(base, token, "GET", `/clusters/${clusterId}`)) as {
      status: string;
      reason?: string;
    };
    if (c.status === "FAILED") throw new Error(`cluster creation failed: ${c.reason ?? "no reason given"}`);
    return c.status === "RUNNING";
  });
  options.out(`cluster ${clusterId} is RUNNING with zero compute nodes; submitting the workload`);
  options.out(`watch it live on the status page (one-time link): ${await statusPageLink(settings)}`);

  const jobDir = join(localPaths(settings.stateDir).logDir, "jobs");
  await mkdir(jobDir, { recursive: true });
  const jobs: JobSeen[] = [];
  for (const job of demoWorkload(options.short)) {
    const r = await slurm("sbatch", [
      "--parsable",
      `--job-name=${job.label}`,
      // Job output goes with the logs, not into whatever directory the demo was started from.
      `--chdir=${jobDir}`,
      `--output=${jobDir}/%x-%j.out`,
      ...job.args,
    ]);
    if (r.code !== 0) throw new Error(`sbatch ${job.label} failed: ${r.stderr.trim()}`);
    jobs.push({
      label: job.label,
      id: r.stdout.trim().split(";")[0] ?? "",
      submittedAt: Date.now(),
      nodes: [],
    });
  }
  options.out(`submitted ${jobs.length} jobs: ${jobs.map((j) => j.label).join(", ")}`);

  const registered = new Map<string, number>();
  const deadline = started + options.timeoutMs;
  let lastLine = "";
  let lastChange = Date.now();
  let everNodes = 0;
  for (;;) {
    if (Date.now() > deadline)
      throw new Error(`the demo did not finish within ${options.timeoutMs / 1000} s`);
    const queue = await slurm("squeue", ["-h", "-o", "%i|%T|%N"]);
    const nodes = await slurm("sinfo", ["-h", "-N", "-o", "%N|%T"]);
    if (queue.code !== 0 || nodes.code !== 0)
      throw new Error(`Slurm did not answer: ${queue.stderr}${nodes.stderr}`);
    const now = Date.now();
    const states = new Map<string, { state: string; nodes: string }>();
    for (const line of queue.stdout.trim().split("\n").filter(Boolean)) {
      const [id = "", state = "", nodeList = ""] = line.split("|");
      states.set(id, { state, nodes: nodeList });
    }
    for (const job of jobs) {
      const s = states.get(job.id);
      if (s?.state === "RUNNING" && job.startedAt === undefined) {
        job.startedAt = now;
        job.nodes = await expand(slurm, s.nodes);
      }
      if (s === undefined && job.endedAt === undefined) {
        job.endedAt = now;
        job.startedAt ??= now;
      }
    }
    const nodeStates = nodes.stdout
      .trim()
      .split("\n")
      .filter(Boolean)
      .map((l) => l.split("|"));
    for (const [name = ""] of nodeStates) if (!registered.has(name)) registered.set(name, now);
    const namespaces = (await listNamespaceNodes(settings.prefix)).length;
    everNodes = Math.max(everNodes, namespaces);
    const count = (st: string) => [...states.values()].filter((s) => s.state === st).length;
    const done = jobs.filter((j) => j.endedAt !== undefined).length;
    const busy = nodeStates.filter(([, st]) => /alloc|mix/.test(st ?? "")).length;
    const line =
      `jobs: ${count("PENDING")} pending, ${count("RUNNING")} running, ${done}/${jobs.length} done | ` +
      `nodes: ${namespaces} up (${busy} busy, ${nodeStates.length - busy} idle or draining in Slurm)`;
    if (line !== lastLine) {
      options.out(`${elapsed()}  ${line}`);
      lastChange = now;
    }
    lastLine = line;
    // Nothing moved for this long: something is wrong (a crashed scaler, a node that never registers).
    if (now - lastChange > STALL_MS) {
      throw new Error(
        `nothing changed for ${STALL_MS / 1000} s (${line}); see the supervisor and slurm logs`,
      );
    }
    if (done === jobs.length && namespaces === 0 && nodeStates.length === 0 && everNodes > 0) break;
    await sleep(1000);
  }

  const events = (await call(base, token, "GET", `/clusters/${clusterId}/events?limit=1000`)) as {
    events: { kind: string; count?: number; nodes?: string[] }[];
  };
  const launches = events.events.filter((e) => e.kind === "LAUNCHED");
  const waits = jobs.map((j) => ((j.startedAt ?? j.submittedAt) - j.submittedAt) / 1000);
  const toRegistration = jobs
    .map(
      (j) => Math.min(...j.nodes.map((n) => registered.get(n) ?? Number.POSITIVE_INFINITY)) - j.submittedAt,
    )
    .filter((ms) => Number.isFinite(ms) && ms >= 0)
    .map((ms) => ms / 1000);
  options.out("deleting the cluster");
  await call(base, token, "DELETE", `/clusters/${clusterId}`);
  await until("the cluster to be DELETED", 90_000, async () => {
    const c = (await call(base, token, "GET", `/clusters/${clusterId}`)) as { status: string };
    return c.status === "DELETED";
  });
  return {
    jobs: jobs.length,
    launches: launches.length,
    nodesLaunched: launches.reduce((s, e) => s + (e.count ?? 0), 0),
    waitSeconds: stats(waits),
    submitToRegistrationSeconds: stats(toRegistration),
    durationSeconds: (Date.now() - started) / 1000,
  };
}

/** The summary as a few lines of text. */
export function formatSummary(s: DemoSummary): string[] {
  const f = (x: number) => x.toFixed(1);
  return [
    `jobs: ${s.jobs}, all finished`,
    `launches: ${s.launches} (${s.nodesLaunched} nodes), and the cluster shrank back to zero compute nodes`,
    `job wait (submit → start): median ${f(s.waitSeconds.median)} s, max ${f(s.waitSeconds.max)} s`,
    `submit → node registered in Slurm: median ${f(s.submitToRegistrationSeconds.median)} s, ` +
      `max ${f(s.submitToRegistrationSeconds.max)} s (±1 s: sampled every second)`,
    `demo time: ${f(s.durationSeconds)} s`,
  ];
}

function stats(values: number[]): { median: number; max: number } {
  if (values.length === 0) return { median: 0, max: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  return { median: sorted[Math.floor((sorted.length - 1) / 2)] ?? 0, max: sorted.at(-1) ?? 0 };
}

async function expand(
  slurm: (file: string, args: string[]) => ReturnType<typeof runCommand>,
  hostlist: string,
): Promise<string[]> {
  if (hostlist === "") return [];
  const r = await slurm("scontrol", ["show", "hostnames", hostlist]);
  return r.code === 0 ? r.stdout.trim().split("\n").filter(Boolean) : [];
}

async function call(
  base: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<unknown> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status}: ${text.slice(0, 500)}`);
  return JSON.parse(text) as unknown;
}

async function until(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(500);
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
}
