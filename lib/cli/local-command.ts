import { spawn } from "node:child_process";
import { closeSync, openSync, readSync, statSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { resolve } from "node:path";
import type { Command } from "commander";
import { statusPageLink } from "../local/api-auth.js";
import { formatSummary, runDemo } from "../local/demo.js";
import { installCommand, installPackages, missingPackages } from "../local/dependencies.js";
import { busyPorts } from "../local/ports.js";
import {
  apiUrl,
  checkSettings,
  DEFAULT_SETTINGS,
  DEFAULT_STATE_DIR,
  type LocalSettings,
  localPaths,
} from "../local/settings.js";
import { isOurProcess, readLocalState } from "../local/state-file.js";
import { runSupervisor, SUPERVISOR_MARKER } from "../local/supervisor.js";
import { stopProcess, tearDownLocal } from "../local/teardown.js";
import { sleep } from "../providers/local/netns.js";
import { UsageError } from "./io.js";

/**
 * `nowscale local up|down|status`: the whole service on this machine (docs/local-mode.md). `up` starts
 * a background supervisor and follows its progress until it is ready; `down` stops it and sweeps away
 * anything it left, also after a crash.
 */
export function registerLocal(program: Command): void {
  const local = program
    .command("local")
    .description("run NowScale on this machine: real Slurm, namespace nodes, the same control plane");

  const withDir = (c: Command) =>
    c.option(
      "--state-dir <dir>",
      `where the local mode keeps its state and logs (env NOWSCALE_LOCAL_DIR)`,
      process.env.NOWSCALE_LOCAL_DIR ?? DEFAULT_STATE_DIR,
    );

  const withUpOptions = (c: Command) =>
    withDir(c)
      .option(
        "--install-deps",
        "install what is missing with apt-get (slurm-wlm, munge, iproute2, iptables, awscli, curl, openssl, python3)",
      )
      .option("--port <port>", "the API's port on 127.0.0.1", String(DEFAULT_SETTINGS.apiPort))
      .option("--agent-port <port>", "the agent's port on 127.0.0.1", String(DEFAULT_SETTINGS.agentPort))
      .option("--slurmctld-port <port>", "slurmctld's port", String(DEFAULT_SETTINGS.slurmctldPort))
      .option("--slurmd-port <port>", "the nodes' slurmd port", String(DEFAULT_SETTINGS.slurmdPort))
      .option("--prefix <prefix>", "prefix of every namespace and interface", DEFAULT_SETTINGS.prefix)
      .option("--subnet <a.b.c>", "the nodes' /24 (slurmctld on .1)", DEFAULT_SETTINGS.subnet)
      .option(
        "--interval <seconds>",
        "seconds between scale cycles",
        String(DEFAULT_SETTINGS.scalerIntervalSeconds),
      )
      .option("--boot-delay <ms>", "simulated boot time of a node", String(DEFAULT_SETTINGS.bootDelayMs))
      .option("--no-wake", "poll every --interval only: the agent does not wake the scaler on new jobs")
      .option("--timeout <seconds>", "how long to wait for the start", "180");

  withUpOptions(local.command("up"))
    .description("start munged, slurmctld, the agent, dynalite, the API and the scaler loop")
    .action(async (opts: Record<string, string | boolean | undefined>) => {
      const settings = settingsFrom(opts);
      const timeoutMs = startTimeoutMs(opts.timeout);
      requireRoot();
      await ensureDependencies(opts.installDeps === true);
      await up(settings, timeoutMs);
    });

  withUpOptions(local.command("demo"))
    .description(
      "local up, a cluster, a workload that makes it grow and shrink to zero, a summary, local down",
    )
    .option("--short", "a smaller workload (the end-to-end test)")
    .option("--shrink-idle <seconds>", "the cluster's shrinkIdleTime", "10")
    .action(async (opts: Record<string, string | boolean | undefined>) => {
      const settings = settingsFrom(opts);
      const timeoutMs = startTimeoutMs(opts.timeout);
      const shrinkIdle = Number(opts.shrinkIdle);
      // The cluster's shrinkIdleTime (0..604800, docs/plan.md): refused here, before anything starts.
      if (!Number.isInteger(shrinkIdle) || shrinkIdle < 0 || shrinkIdle > 604_800)
        throw new UsageError(
          `--shrink-idle must be a whole number of seconds from 0 to 604800, got "${String(opts.shrinkIdle)}"`,
        );
      requireRoot();
      await ensureDependencies(opts.installDeps === true);
      await demo(settings, opts.short === true, shrinkIdle, timeoutMs);
    });

  withDir(local.command("down"))
    .description("stop everything local up started and remove its namespaces, nodes, locks and state")
    .action(async (opts: { stateDir: string }) => {
      requireRoot();
      await down(resolve(opts.stateDir));
    });

  withDir(local.command("link"))
    .description("print a one-time link that opens the status page in a browser (valid 10 minutes)")
    .action(async (opts: { stateDir: string }) => {
      // The link is minted with the API's token, which only root can read.
      requireRoot();
      const stateDir = resolve(opts.stateDir);
      const state = readLocalState(stateDir);
      if (state === undefined || !isOurProcess(state.supervisorPid, SUPERVISOR_MARKER))
        throw new UsageError(`local mode is not running (no state in ${stateDir})`, 3);
      process.stdout.write(`${await linkOrError(state.settings)}\n`);
    });

  withDir(local.command("status"))
    .description("say whether the local mode runs, and where")
    .option("--json", "print the state as JSON")
    .action((opts: { stateDir: string; json?: boolean }) => {
      status(resolve(opts.stateDir), opts.json === true);
    });

  // The background process `up` starts; not for people.
  withDir(local.command("supervise", { hidden: true }))
    .requiredOption("--settings <json>", "the settings")
    .action(async (opts: { settings: string }) => {
      const settings = checkSettings(JSON.parse(opts.settings) as LocalSettings);
      const code = await runSupervisor(settings);
      if (code !== 0) throw new UsageError("the local mode stopped after a failed start", code);
    });
}

function port(value: unknown, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new UsageError(`${flag} must be a port number, got "${String(value)}"`);
  return n;
}

/** The settings' names as the user gave them: a refusal names the flag, not the field behind it. */
const FLAGS: [RegExp, string][] = [
  [/^the state directory\b/, "--state-dir"],
  [/^apiPort\b/, "--port"],
  [/^agentPort\b/, "--agent-port"],
  [/^slurmctldPort\b/, "--slurmctld-port"],
  [/^slurmdPort\b/, "--slurmd-port"],
  [/^prefix\b/, "--prefix"],
  [/^subnet\b/, "--subnet"],
  [/^scalerIntervalSeconds\b/, "--interval"],
  [/^bootDelayMs\b/, "--boot-delay"],
];

/** `--timeout` of up and demo: how long the start may take, in ms; refused before anything starts. */
export function startTimeoutMs(value: unknown): number {
  const s = Number(value);
  if (!Number.isInteger(s) || s < 1 || s > 3600)
    throw new UsageError(
      `--timeout must be a whole number of seconds from 1 to 3600, got "${String(value)}"`,
    );
  return s * 1000;
}

/** The options of up and demo as settings, checked (checkSettings), each refusal naming its flag. */
export function settingsFrom(opts: Record<string, string | boolean | undefined>): LocalSettings {
  try {
    return checkSettings({
      stateDir: resolve(String(opts.stateDir)),
      apiPort: port(opts.port, "--port"),
      agentPort: port(opts.agentPort, "--agent-port"),
      slurmctldPort: port(opts.slurmctldPort, "--slurmctld-port"),
      slurmdPort: port(opts.slurmdPort, "--slurmd-port"),
      prefix: String(opts.prefix),
      subnet: String(opts.subnet),
      scalerIntervalSeconds: Number(opts.interval),
      bootDelayMs: Number(opts.bootDelay),
      wake: opts.wake !== false,
    });
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    const flag = FLAGS.find(([field]) => field.test(error.message));
    throw new UsageError(flag === undefined ? error.message : error.message.replace(flag[0], flag[1]));
  }
}

function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new UsageError(
      "local mode needs root (network namespaces, munged, slurmctld, slurmd): run it with sudo",
    );
  }
}

async function ensureDependencies(install: boolean): Promise<void> {
  const missing = missingPackages();
  if (missing.length === 0) return;
  if (!install) {
    throw new UsageError(
      `missing packages: ${missing.join(", ")}. Run "${installCommand(missing)}" ` +
        `or "nowscale local up --install-deps"`,
    );
  }
  process.stderr.write(`installing ${missing.join(", ")} with apt-get…\n`);
  await installPackages(missing, process.stderr);
  const still = missingPackages();
  if (still.length > 0) throw new UsageError(`still missing after apt-get: ${still.join(", ")}`);
}

/** The demo between up and down; down runs whatever happened, and any failure fails the command. */
async function demo(
  settings: LocalSettings,
  short: boolean,
  shrinkIdleSeconds: number,
  startTimeoutMs: number,
): Promise<void> {
  const started = Date.now();
  const say = (line: string) => process.stdout.write(`${line}\n`);
  await up(settings, startTimeoutMs);
  let failure: unknown;
  try {
    const summary = await runDemo(settings, { short, shrinkIdleSeconds, timeoutMs: 540_000, out: say });
    say("\nsummary");
    for (const line of formatSummary(summary)) say(`  ${line}`);
  } catch (error) {
    failure = error;
  }
  await down(settings.stateDir);
  if (failure !== undefined) {
    throw new UsageError(
      `demo FAILED: ${(failure as Error).message}; logs in ${localPaths(settings.stateDir).logDir}`,
      1,
    );
  }
  say(`demo passed in ${((Date.now() - started) / 1000).toFixed(0)} s (local up to local down)`);
}

/** Starts the supervisor in the background and relays its progress until it is ready or has failed. */
export async function up(settings: LocalSettings, timeoutMs: number): Promise<void> {
  const paths = localPaths(settings.stateDir);
  const existing = readLocalState(settings.stateDir);
  if (existing !== undefined) {
    if (isOurProcess(existing.supervisorPid, SUPERVISOR_MARKER)) {
      process.stderr.write(
        `local mode already runs (pid ${existing.supervisorPid}): ${apiUrl(existing.settings)}\n`,
      );
      return;
    }
    process.stderr.write("a previous local mode did not stop cleanly: cleaning up first…\n");
    await tearDownLocal(existing.settings, existing);
  }
  const busy = await busyPorts(settings);
  if (busy.length > 0) {
    throw new UsageError(`ports in use: ${busy.join(", ")}: stop what uses them or choose others`, 1);
  }
  await mkdir(paths.logDir, { recursive: true });
  const logFd = openSync(paths.supervisorLog, "a");
  let offset = statSync(paths.supervisorLog).size;
  const child = spawn(
    process.execPath,
    [
      process.argv[1] ?? "",
      "local",
      "supervise",
      "--state-dir",
      settings.stateDir,
      "--settings",
      JSON.stringify(settings),
    ],
    { detached: true, stdio: ["ignore", logFd, logFd] },
  );
  child.unref();
  closeSync(logFd);
  const pid = child.pid;
  const deadline = Date.now() + timeoutMs;
  const relay = () => {
    const size = statSync(paths.supervisorLog).size;
    if (size <= offset) return;
    const fd = openSync(paths.supervisorLog, "r");
    const buffer = Buffer.alloc(size - offset);
    readSync(fd, buffer, 0, buffer.length, offset);
    closeSync(fd);
    offset = size;
    for (const line of buffer.toString("utf8").split("\n")) {
      const text = line.replace(/^\S+Z /, "");
      if (text.startsWith("step: ")) process.stderr.write(`  ${text.slice(6)}…\n`);
      else if (text.startsWith("failed: ")) process.stderr.write(`  ${text}\n`);
    }
  };
  process.stderr.write(`starting NowScale local mode in ${settings.stateDir}\n`);
  while (Date.now() < deadline) {
    await sleep(250);
    relay();
    const state = readLocalState(settings.stateDir);
    if (state?.phase === "ready" && state.supervisorPid === pid) {
      process.stdout.write(
        `NowScale local mode is up: API on ${apiUrl(settings)} (token in ${paths.apiToken}, root only)\n` +
          `  status page (one-time link, 10 min; "nowscale local link" prints another): ${await statusPageLink(
            settings,
          ).catch((error: unknown) => `unavailable (${(error as Error).message})`)}\n` +
          `  logs: ${paths.logDir}   stop: nowscale local down --state-dir ${settings.stateDir}\n`,
      );
      return;
    }
    if (state?.phase === "failed" || !isOurProcess(pid, SUPERVISOR_MARKER)) {
      relay();
      const why = state?.error ?? "the supervisor exited";
      await rm(paths.stateFile, { force: true });
      throw new UsageError(`local mode did not start: ${why}\n  see ${paths.supervisorLog}`, 1);
    }
  }
  process.stderr.write(`local mode was not ready within ${timeoutMs / 1000} s; stopping it\n`);
  await down(settings.stateDir);
  throw new UsageError(
    `local mode was not ready within ${timeoutMs / 1000} s; see ${paths.supervisorLog}`,
    1,
  );
}

/** A status-page link; a UsageError says why there is none. */
async function linkOrError(settings: LocalSettings): Promise<string> {
  try {
    return await statusPageLink(settings);
  } catch (error) {
    throw new UsageError(`no status-page link: ${(error as Error).message}`, 1);
  }
}

/** Stops the supervisor (it cleans up), then sweeps whatever is left; works without any state too. */
export async function down(stateDir: string): Promise<void> {
  const state = readLocalState(stateDir);
  const settings = state?.settings ?? { ...DEFAULT_SETTINGS, stateDir };
  if (isOurProcess(state?.supervisorPid, SUPERVISOR_MARKER)) {
    process.stderr.write(`stopping the local mode (pid ${state?.supervisorPid})…\n`);
    await stopProcess(state?.supervisorPid, SUPERVISOR_MARKER, 120_000);
  }
  process.stderr.write("removing what is left (nodes, namespaces, daemons, locks, state)…\n");
  await tearDownLocal(settings, state);
  process.stdout.write(`local mode is down; logs stay in ${localPaths(stateDir).logDir}\n`);
}

function status(stateDir: string, json: boolean): void {
  const state = readLocalState(stateDir);
  const running = state !== undefined && isOurProcess(state.supervisorPid, SUPERVISOR_MARKER);
  if (json) {
    process.stdout.write(`${JSON.stringify({ running, ...(state ?? {}) }, null, 2)}\n`);
    if (!running) process.exitCode = 3;
    return;
  }
  if (state === undefined) {
    throw new UsageError(`local mode is not running (no state in ${stateDir})`, 3);
  }
  if (!running) {
    throw new UsageError(
      `local mode is not running but left state behind: run "nowscale local down --state-dir ${stateDir}"`,
      3,
    );
  }
  process.stdout.write(
    `${[
      `local mode: ${state.phase} (supervisor pid ${state.supervisorPid}, agent pid ${state.agentPid ?? "-"})`,
      `  API: ${apiUrl(state.settings)} (token in ${localPaths(stateDir).apiToken}, root only)`,
      `  status page: "nowscale local link --state-dir ${stateDir}" prints a one-time link`,
      `  slurm: SLURM_CONF=${localPaths(stateDir).slurmDir}/slurm.conf`,
      `  logs: ${localPaths(stateDir).logDir}`,
    ].join("\n")}\n`,
  );
}
