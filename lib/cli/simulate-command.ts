import { readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { type Command, Option } from "commander";
import { configSchema } from "../core/config.js";
import { type BootTimeSpec, parseBootTime } from "../sim/boot-time.js";
import { capacityKey } from "../sim/cluster.js";
import { type ReplayStart, simulateInParallel, startReplays } from "../sim/parallel.js";
import { parseSimConfig, simulationSchema } from "../sim/sim-config.js";
import { parsePolicies, policyName, type SimulateOptions } from "../sim/simulate.js";
import { formatTable, type SimulationSummary, summarize } from "../sim/summary.js";
import { parseSwf } from "../sim/swf.js";
import { toWorkload } from "../sim/workload.js";
import { readJsonFile, UsageError } from "./io.js";

export interface SimulateCliOptions {
  trace: string;
  config: string;
  compare?: string;
  pollSeconds: string;
  bootSeconds: string;
  seed: string;
  memPerCpuMib?: string;
  capacity?: string;
  queueMap?: string;
  json?: boolean;
  out?: string;
  progress?: boolean;
  set?: string;
}

export interface SimulateOutput {
  summary: SimulationSummary;
  /** What goes to stdout: JSON with --json, else the table. */
  stdout: string;
  /** The HTML report when --out was given (the caller writes it). */
  html?: string;
}

/**
 * `nowscale simulate`: replays an SWF trace through the scaling core under each policy and reports
 * waits, node-hours and cost. Pure apart from reading the two input files; `onProgress` gets 0..1.
 */
export async function runSimulate(
  options: SimulateCliOptions,
  onProgress?: SimulateOptions["onProgress"],
): Promise<SimulateOutput> {
  const pollSeconds = wholeNumber(options.pollSeconds, "--poll-seconds", 1, 86_400);
  const seed = wholeNumber(options.seed, "--seed", 0, 2 ** 31 - 1);
  const boot: BootTimeSpec | string = parseBootTime(options.bootSeconds);
  if (typeof boot === "string") throw new UsageError(`--boot-seconds: ${boot}`);
  // With --compare, the replay workers start now: they load their modules while this thread reads
  // the config and the trace (a bad list is reported where it was before, after them).
  const compared = options.compare === undefined ? undefined : parsePolicies(options.compare);
  const started = typeof compared === "object" ? startReplays(compared) : undefined;
  try {
    return await simulateWith(options, pollSeconds, seed, boot, compared, started, onProgress);
  } finally {
    await started?.stop();
  }
}

async function simulateWith(
  options: SimulateCliOptions,
  pollSeconds: number,
  seed: number,
  boot: BootTimeSpec,
  compared: ReturnType<typeof parsePolicies> | undefined,
  started: ReplayStart | undefined,
  onProgress: SimulateOptions["onProgress"] | undefined,
): Promise<SimulateOutput> {
  const raw = withSettings(readJsonFile(options.config, "config"), options.set);
  const { config, simulation } = parseSimConfig(raw, options.config);
  if (options.memPerCpuMib !== undefined) {
    simulation.memPerCpuMiB = wholeNumber(options.memPerCpuMib, "--mem-per-cpu-mib", 0, 1 << 24);
  }
  const capacity = new Map(simulation.capacity.map((c) => [capacityKey(c.instanceType, c.zone), c.maxNodes]));
  for (const [key, max] of pairs(options.capacity, "--capacity", "c5.xlarge@us-east-1a=10")) {
    if (!/^[^@=]+@[^@=]+$/.test(key))
      throw new UsageError(`--capacity: "${key}" is not TYPE@ZONE, e.g. c5.xlarge@us-east-1a=10`);
    capacity.set(key, wholeNumber(max, `--capacity ${key}`, 0, 1_000_000));
  }
  for (const [number, queue] of pairs(options.queueMap, "--queue-map", "0=compute,*=compute")) {
    if (!/^(\*|\d+)$/.test(number))
      throw new UsageError(`--queue-map: "${number}" is not an SWF queue number or *`);
    if (!config.queueByName.has(queue))
      throw new UsageError(`--queue-map: queue "${queue}" is not in the config's queueConfigs`);
    simulation.queueMap[number] = queue;
  }

  let text: string;
  try {
    text = readFileSync(options.trace, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(
      `cannot read trace file ${options.trace}: ${code === "ENOENT" ? "no such file" : String(code ?? error)}`,
    );
  }
  const trace = parseSwf(text, options.trace);
  const workload = toWorkload(trace.records, config, simulation);
  if (workload.jobs.length === 0) {
    throw new UsageError(
      `trace ${options.trace} has no job that can be replayed (each needs a submit time, run time and processor count)`,
    );
  }

  const policies = compared ?? [{ kind: config.policy }];
  if (typeof policies === "string") throw new UsageError(policies);
  // Policies replay on worker threads, one per core: the same runs, sooner.
  const { runs, bound } = await simulateInParallel(
    workload,
    config,
    {
      policies,
      pollSeconds,
      boot,
      seed,
      capacity,
      timeline: options.out !== undefined,
      terminateAtDrain: simulation.terminateAtDrain,
      placement: simulation.placement,
      ...(simulation.wakeSeconds === undefined ? {} : { wakeSeconds: simulation.wakeSeconds }),
      ...(onProgress ? { onProgress } : {}),
    },
    started,
  );
  const summary = summarize({
    traceFile: options.trace,
    trace,
    workload,
    configFile: options.config,
    pollSeconds,
    boot,
    seed,
    memPerCpuMiB: simulation.memPerCpuMiB,
    capacity,
    runs,
    bound,
    levers: {
      terminateAtDrain: simulation.terminateAtDrain,
      wakeSeconds: simulation.wakeSeconds ?? null,
      placement: simulation.placement,
    },
  });
  const out: SimulateOutput = {
    summary,
    stdout: options.json ? JSON.stringify(summary, null, 2) : formatTable(summary),
  };
  // Loaded only when asked for, like the progress bar: start-up counts in a replay's time.
  if (options.out !== undefined)
    out.html = (await import("../sim/report-html.js")).renderHtmlReport(summary, runs);
  return out;
}

export function registerSimulate(program: Command): void {
  program
    .command("simulate")
    .description(
      "replay an SWF job trace through the scaling core and compare policies (waits, node-hours, cost)",
    )
    .requiredOption("--trace <file.swf>", "job trace in the Standard Workload Format")
    .requiredOption(
      "--config <file.json>",
      "NowScale config, optionally with a `simulation` section (see docs/simulator.md)",
    )
    .option(
      "--compare <policies>",
      "comma-separated: thpc, packed, static:N, per-job (default: the config's policy)",
    )
    .option("--poll-seconds <s>", "scaler poll interval", "60")
    .option(
      "--boot-seconds <spec>",
      'instance boot time: seconds, "uniform:MIN:MAX" or "normal:MEAN:SD"',
      "180",
    )
    .option("--seed <n>", "seed for boot-time draws", "1")
    .option("--mem-per-cpu-mib <MiB>", "memory per processor when the trace has none (overrides the config)")
    .option("--capacity <list>", "capacity limits, e.g. c5.xlarge@us-east-1a=10,c5.xlarge@us-east-1b=4")
    .option("--queue-map <list>", "SWF queue number to queue, e.g. 0=compute,1=gpu,*=compute")
    .option(
      "--set <list>",
      "override config fields, e.g. shrinkIdleTime=60,headroomSeconds=1800,simulation.wakeSeconds=10",
    )
    .option("--json", "print the metrics as JSON on stdout")
    .option("--out <report.html>", "write a self-contained HTML report")
    .addOption(new Option("--progress", "show a progress bar on stderr even when it is not a terminal"))
    .action(async (options: SimulateCliOptions) => {
      if (options.out !== undefined) checkReportPath(options.out);
      const showBar = options.progress === true || process.stderr.isTTY === true;
      const bar = showBar
        ? (await import("./progress.js")).startProgress(process.stderr, policyCount(options))
        : undefined;
      let result: SimulateOutput;
      try {
        result = await runSimulate(options, bar?.update);
      } finally {
        bar?.stop();
      }
      if (options.out !== undefined && result.html !== undefined) {
        try {
          writeFileSync(options.out, result.html);
        } catch (error) {
          throw new UsageError(`cannot write report ${options.out}: ${(error as Error).message}`);
        }
        process.stderr.write(`nowscale: report written to ${options.out}\n`);
      }
      process.stdout.write(`${result.stdout}\n`);
    });
}

/** A report path without its directory is refused before the replay (minutes on a long trace). */
function checkReportPath(path: string): void {
  const dir = dirname(resolve(path));
  let isDirectory = false;
  try {
    isDirectory = statSync(dir).isDirectory();
  } catch {
    // missing or unreadable: refused below
  }
  if (!isDirectory)
    throw new UsageError(`--out ${path}: no directory ${dir}: create it first or write the report elsewhere`);
}

/**
 * Applies `--set key=value,...` to the raw config before it is validated: top-level config fields and
 * `simulation.<field>`, only names the schemas know (so no other key reaches the object); each value
 * is read as JSON (a number, true/false, a quoted string or an array), else taken as a string.
 */
function withSettings(raw: unknown, text: string | undefined): unknown {
  if (text === undefined) return raw;
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return raw;
  const out = { ...(raw as Record<string, unknown>) };
  const sim = { ...((out.simulation as Record<string, unknown> | undefined) ?? {}) };
  const configKeys = new Set(Object.keys(configSchema.shape));
  const simKeys = new Set(Object.keys(simulationSchema.shape));
  for (const [key, value] of pairs(text, "--set", "shrinkIdleTime=60")) {
    let parsed: unknown = value;
    try {
      parsed = JSON.parse(value);
    } catch {
      // Not JSON: a plain string (e.g. placement=busy-first).
    }
    const simKey = key.startsWith("simulation.") ? key.slice("simulation.".length) : undefined;
    if (simKey !== undefined && simKeys.has(simKey)) sim[simKey] = parsed;
    else if (simKey === undefined && configKeys.has(key)) out[key] = parsed;
    else
      throw new UsageError(
        `--set: unknown field "${key}": use a config field (${[...configKeys].join(", ")}) or simulation.<${[...simKeys].join("|")}>`,
      );
  }
  out.simulation = sim;
  return out;
}

function policyCount(options: SimulateCliOptions): string[] {
  const parsed = options.compare === undefined ? undefined : parsePolicies(options.compare);
  return Array.isArray(parsed) ? parsed.map(policyName) : [];
}

function wholeNumber(text: string, flag: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || n < min || n > max) {
    throw new UsageError(`${flag} must be a whole number from ${min} to ${max}, got "${text}"`);
  }
  return n;
}

/** Splits `a=1,b=2` into pairs; a piece without '=' is a usage error showing `example`. */
function pairs(text: string | undefined, flag: string, example: string): [string, string][] {
  if (text === undefined) return [];
  return text.split(",").map((piece) => {
    const at = piece.lastIndexOf("=");
    if (at <= 0) throw new UsageError(`${flag}: "${piece}" is not KEY=VALUE, e.g. ${example}`);
    return [piece.slice(0, at).trim(), piece.slice(at + 1).trim()];
  });
}
