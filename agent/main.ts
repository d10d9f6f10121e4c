import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { SIMPLE_NAME } from "../lib/core/names.js";
import {
  type JobNote,
  type PlaceholderSpec,
  parseJobNotes,
  parsePlaceholderSpecs,
} from "../lib/ports/agent-protocol.js";
import { systemClock } from "../lib/ports/clock.js";
import { DEFAULT_WAKE_DEBOUNCE_MS, DEFAULT_WATCH_INTERVAL_MS } from "../lib/ports/wake.js";
import { SlurmClient } from "../scheduler-plugins/slurm/client.js";
import { collectReport } from "../scheduler-plugins/slurm/collect.js";
import { SlurmNodeNotFoundError, SlurmUnavailableError } from "../scheduler-plugins/slurm/errors.js";
import { collectSlurmSetup } from "../scheduler-plugins/slurm/setup.js";
import { arrivalsFile } from "./arrivals-file.js";
import { defaultCredentials, EventBridgeWaker } from "./events.js";
import { installOptions, runInstall } from "./install.js";
import { loadKey } from "./key.js";
import { answerSetNodeStorage } from "./node-storage.js";
import { answerSetPartitions, applyJobNotes, createAgentServer } from "./server.js";
import { answerSetUsers } from "./users.js";
import { AGENT_VERSION } from "./version.js";
import { runWatch } from "./watch.js";

const USAGE = `nowscale-agent ${AGENT_VERSION}: the NowScale agent on a Slurm master

  nowscale-agent report [--source json|format] [--state-dir DIR]
      Prints one JSON report (agent/report.schema.json) on stdout. Exit 0 when slurmctld answered,
      2 when the report says it did not (status "slurmctld-unreachable" or "error"). The recent
      arrivals are kept in the state directory (as serve's; /var/lib/nowscale-agent when it exists).
  nowscale-agent serve [--listen HOST:PORT] [--key-file FILE] [--window SECONDS] [--state-dir DIR]
                       [--source json|format]
      Serves the signed HTTP API (docs/agent.md). Default --listen 127.0.0.1:8787 (NOWSCALE_AGENT_LISTEN),
      key from --key-file, NOWSCALE_AGENT_KEY_FILE or NOWSCALE_AGENT_KEY. --state-dir (or
      NOWSCALE_AGENT_STATE_DIR, or systemd's STATE_DIRECTORY) keeps the replay cache across restarts.
  nowscale-agent drain NODE --reason TEXT | resume NODE | delete-node NODE
      One node action, as the HTTP API's (for SSM Run Command). Prints {"ok":true,...} or {"error":...}.
      Exit 0 done, 2 slurmctld did not answer, 3 no such node, 64 bad name or reason, 1 other failure.
  nowscale-agent set-job-notes --notes JSON|-
      Writes job notes, as POST /v1/jobs/notes: JSON is {"notes": [{"jobIds": [...], "text": "nowscale: ..."
      or "" to clear, "field": "comment"|"adminComment"}]}. Exit 0 done, 2 slurmctld did not answer,
      64 a bad note (nothing written), 1 Slurm refused some.
  nowscale-agent sync-placeholders --placeholders JSON|-
      Makes the placeholder nodes exactly these, as POST /v1/placeholders: JSON is {"placeholders": [...]}.
      Prints {"ok":true,"created":[...],"removed":[...]}. Exit 0 done, 2 slurmctld did not answer,
      64 a bad spec (nothing done), 1 Slurm refused.
  nowscale-agent set-partitions --partitions JSON|-
      Makes slurm.conf's NowScale partitions exactly these, as POST /v1/partitions: JSON is
      {"partitions": [{"name": "q1", "default": true, "defMemPerCpuMiB": 1000}]}. The file is kept as
      slurm.conf.nowscale-prev, rewritten atomically, then scontrol reconfigure; on failure it is rolled
      back. Exit 0 done, 2 slurmctld did not answer (rolled back), 64 a bad spec (nothing written),
      1 slurmctld refused the file (rolled back).
  nowscale-agent set-node-storage --storage JSON|-
      Makes slurm.conf's storage line say these mounts, as POST /v1/node-storage: JSON is {"storage":
      [{"protocol": "NFS 4.0", "remotePath": "host:/path", "localPath": "/data"}]}; scontrol reconfigure
      sends it to the configless nodes, whose storage sync mounts and unmounts. Exit codes as set-partitions.
  nowscale-agent set-users --users JSON|-
      Makes this host's NowScale users exactly these, as POST /v1/users: JSON is {"users": [{"name":
      "alice", "uid": 21000, "enabled": true, "secret": "SECRET-ID"}], "purge": ["bob"]}. A secret id
      is read from the secret store here (never a password in the JSON). Prints {"ok":true,"users":[...],
      "added":[...],"removed":[...],"updated":[...]}. Exit 0 done, 64 a bad request or a name or uid the
      host's own accounts have (nothing changed), 1 a command failed.
  "-" in place of JSON reads it from stdin (at most 4 MiB): how SSM Run Command passes it (docs/agent.md).
  nowscale-agent slurm-setup
      Prints how Slurm is set up (what \`nowscale cluster attach\` checks), as GET /v1/slurm-setup.
      Exit 0, 2 slurmctld did not answer.
  nowscale-agent install --partitions P[,P...] [--listen HOST:PORT] [--key-secret SECRET] [--print-key]
                         [--slurm-conf FILE] [--root DIR] [--no-start] [--bundle FILE]
      Readies an existing master for attach (docs/attach.md): installs this bundle, the signing key and
      the systemd unit, starts the agent, and prints the slurm.conf lines the partitions still need.
      Exit 0 ready, 3 slurm.conf needs the printed lines, 2 slurmctld did not answer, 64 bad usage.
  nowscale-agent watch --cluster-id ID --event-bus NAME --region REGION [--endpoint-url URL]
                       [--interval SECONDS] [--debounce SECONDS]
      Reads the pending job ids every --interval (2) seconds and, when new ones appear, wakes the scaler:
      one EventBridge event (source nowscale.agent) on the bus, at most one per --debounce (5) seconds.
      Credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, else the instance role (IMDSv2).
      Runs until SIGTERM; exit 64 on bad usage.

Slurm's commands honour SLURM_CONF. --slurm-bin DIR runs squeue/sinfo/scontrol from DIR.`;

/** Runs the agent's command line; resolves with the exit code (serve resolves only on a start failure). */
export async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n\n${USAGE}\n`);
    return 64;
  }
  const { values, positionals } = parsed;
  const command = positionals[0];
  if (values.version) {
    process.stdout.write(`${AGENT_VERSION}\n`);
    return 0;
  }
  if (values.help || command === undefined) {
    process.stdout.write(`${USAGE}\n`);
    return command === undefined && !values.help ? 64 : 0;
  }
  const source = values.source;
  if (source !== undefined && source !== "json" && source !== "format") {
    process.stderr.write("--source must be json or format\n");
    return 64;
  }
  const client = new SlurmClient({
    ...(values["slurm-bin"] ? { binDir: values["slurm-bin"] } : {}),
    ...(source ? { source } : {}),
  });

  if (command === "report") {
    // SSM runs `report` afresh every poll: the arrivals record carries over in the state directory.
    const stateDir = replayStateDir(values["state-dir"]) ?? existingDir(SYSTEMD_STATE_DIR);
    const arrivals = stateDir === undefined ? undefined : arrivalsFile(stateDir);
    const report = await collectReport(client, AGENT_VERSION, Date.now, arrivals);
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return report.status === "ok" ? 0 : 2;
  }
  if (command === "drain" || command === "resume" || command === "delete-node") {
    return nodeAction(client, command, positionals[1], values.reason);
  }
  if (command === "slurm-setup") {
    try {
      process.stdout.write(`${JSON.stringify(await collectSlurmSetup(client, AGENT_VERSION))}\n`);
      return 0;
    } catch (error) {
      if (!(error instanceof SlurmUnavailableError)) throw error;
      process.stdout.write(`${JSON.stringify({ error: error.message.slice(0, 500) })}\n`);
      return 2;
    }
  }
  if (command === "install") {
    let options: ReturnType<typeof installOptions>;
    try {
      options = installOptions(values);
    } catch (error) {
      process.stderr.write(`${(error as Error).message}\n\n${USAGE}\n`);
      return 64;
    }
    return runInstall(options, (line) => process.stdout.write(`${line}\n`));
  }
  if (command === "set-job-notes") return setJobNotes(client, await jsonArgument(values.notes));
  if (command === "sync-placeholders")
    return syncPlaceholders(client, await jsonArgument(values.placeholders));
  if (command === "set-partitions") {
    const json = await jsonArgument(values.partitions);
    let input: unknown;
    try {
      input = JSON.parse(json ?? "null");
    } catch {
      input = undefined;
    }
    const { status, body } = await answerSetPartitions(client, input);
    process.stdout.write(`${JSON.stringify(body)}\n`);
    return status === 200 ? 0 : status === 400 ? 64 : status === 503 ? 2 : 1;
  }
  if (command === "set-node-storage") {
    let input: unknown;
    try {
      input = JSON.parse((await jsonArgument(values.storage)) ?? "null");
    } catch {
      input = undefined;
    }
    const env = process.env;
    const { status, body } = await answerSetNodeStorage(input, {
      confPath: env.SLURM_CONF ?? "/etc/slurm/slurm.conf",
      reconfigure: () => client.reconfigure(),
    });
    process.stdout.write(`${JSON.stringify(body)}\n`);
    return status === 200 ? 0 : status === 400 ? 64 : status === 503 ? 2 : 1;
  }
  if (command === "set-users") {
    let input: unknown;
    try {
      input = JSON.parse((await jsonArgument(values.users)) ?? "null");
    } catch {
      input = undefined;
    }
    // The running nodes get the set through slurm.conf's users lines (node-users.ts).
    const { status, body } = await answerSetUsers(input, undefined, {
      confPath: process.env.SLURM_CONF ?? "/etc/slurm/slurm.conf",
      reconfigure: () => client.reconfigure(),
    });
    process.stdout.write(`${JSON.stringify(body)}\n`);
    return status === 200 ? 0 : status === 400 ? 64 : 1;
  }
  if (command === "watch") return watch(client, values);
  if (command === "serve") {
    const listen = values.listen ?? process.env.NOWSCALE_AGENT_LISTEN ?? "127.0.0.1:8787";
    const m = /^(.*):(\d{1,5})$/.exec(listen);
    const windowS = Number(values.window ?? "300");
    if (!m || !Number.isInteger(windowS) || windowS < 1 || windowS > 3600) {
      process.stderr.write("--listen must be HOST:PORT and --window 1..3600 seconds\n");
      return 64;
    }
    const key = await loadKey(values["key-file"]);
    const log = (entry: Record<string, unknown>) =>
      process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...entry })}\n`);
    const stateDir = replayStateDir(values["state-dir"]);
    let replayFile: string | undefined;
    if (stateDir !== undefined) {
      await mkdir(stateDir, { recursive: true, mode: 0o700 });
      replayFile = join(stateDir, "replay-cache.json");
    }
    const arrivals = stateDir === undefined ? undefined : arrivalsFile(stateDir);
    const server = createAgentServer({
      key,
      actions: client,
      report: () => collectReport(client, AGENT_VERSION, Date.now, arrivals),
      setup: () => collectSlurmSetup(client, AGENT_VERSION),
      storage: {
        confPath: process.env.SLURM_CONF ?? "/etc/slurm/slurm.conf",
        reconfigure: () => client.reconfigure(),
      },
      windowS,
      ...(replayFile === undefined ? {} : { replayFile }),
      log,
    });
    const host = (m[1] as string).replace(/^\[(.*)\]$/, "$1");
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(Number(m[2]), host, () => resolve());
    });
    const address = server.address();
    // The first line gives the address (port 0 picks a free one).
    log({ msg: "listening", address, agentVersion: AGENT_VERSION, replayFile: replayFile ?? null });
    if (replayFile === undefined) {
      log({
        msg: "no --state-dir: the replay cache is in memory only; a request captured before a restart can be replayed once after it, within the window",
      });
    }
    const stop = () => server.close(() => process.exit(0));
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
    return await new Promise<number>(() => undefined);
  }
  process.stderr.write(`unknown command "${command}"\n\n${USAGE}\n`);
  return 64;
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      listen: { type: "string" },
      "key-file": { type: "string" },
      "state-dir": { type: "string" },
      window: { type: "string" },
      source: { type: "string" },
      "slurm-bin": { type: "string" },
      reason: { type: "string" },
      notes: { type: "string" },
      placeholders: { type: "string" },
      partitions: { type: "string" },
      storage: { type: "string" },
      users: { type: "string" },
      "key-secret": { type: "string" },
      "print-key": { type: "boolean" },
      "slurm-conf": { type: "string" },
      root: { type: "string" },
      "no-start": { type: "boolean" },
      bundle: { type: "string" },
      "cluster-id": { type: "string" },
      "event-bus": { type: "string" },
      region: { type: "string" },
      "endpoint-url": { type: "string" },
      interval: { type: "string" },
      debounce: { type: "string" },
      help: { type: "boolean", short: "h" },
      version: { type: "boolean" },
    },
  });
}

/** An EventBridge bus name or ARN (EventBridge's own pattern, with ':' for an ARN). */
const BUS_NAME = /^[A-Za-z0-9._/:-]{1,1600}$/;
const REGION = /^[a-z0-9-]{1,32}$/;

/** `watch`: the pending-job watcher that wakes the scaler (agent/watch.ts); runs until SIGTERM. */
async function watch(client: SlurmClient, values: ReturnType<typeof parse>["values"]): Promise<number> {
  const clusterId = values["cluster-id"] ?? "";
  const bus = values["event-bus"] ?? "";
  const region = values.region ?? process.env.AWS_REGION ?? "";
  const intervalS = Number(values.interval ?? DEFAULT_WATCH_INTERVAL_MS / 1000);
  const debounceS = Number(values.debounce ?? DEFAULT_WAKE_DEBOUNCE_MS / 1000);
  const problems = [
    SIMPLE_NAME.test(clusterId) ? "" : "--cluster-id must be a cluster id",
    BUS_NAME.test(bus) ? "" : "--event-bus must be an event bus name or ARN",
    REGION.test(region) ? "" : "--region (or AWS_REGION) must be a region such as eu-west-1",
    intervalS >= 0.5 && intervalS <= 60 ? "" : "--interval must be 0.5 to 60 seconds",
    debounceS >= 1 && debounceS <= 600 ? "" : "--debounce must be 1 to 600 seconds",
  ].filter(Boolean);
  let waker: EventBridgeWaker | undefined;
  if (problems.length === 0) {
    try {
      waker = new EventBridgeWaker({
        clusterId,
        busName: bus,
        region,
        credentials: defaultCredentials(),
        ...(values["endpoint-url"] === undefined ? {} : { endpoint: values["endpoint-url"] }),
      });
    } catch (error) {
      problems.push(`--endpoint-url: ${(error as Error).message}`);
    }
  }
  if (problems.length > 0 || waker === undefined) {
    process.stderr.write(`${problems.join("\n")}\n\n${USAGE}\n`);
    return 64;
  }
  const log = (entry: Record<string, unknown>) =>
    process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...entry })}\n`);
  let stopped = false;
  const stop = () => {
    stopped = true;
    process.exit(0);
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
  log({ msg: "watching", clusterId, bus, region, intervalS, debounceS, agentVersion: AGENT_VERSION });
  const w = waker;
  await runWatch({
    read: () => client.pendingJobIds(),
    wake: () => w.wake(),
    clock: systemClock,
    intervalMs: intervalS * 1000,
    debounceMs: debounceS * 1000,
    log,
    stopped: () => stopped,
  });
  return 0;
}

/**
 * Where the replay cache lives: --state-dir, else NOWSCALE_AGENT_STATE_DIR, else the first directory of
 * STATE_DIRECTORY (set by systemd for `StateDirectory=`, see agent/nowscale-agent.service).
 */
export function replayStateDir(
  flag: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  const fromSystemd = env.STATE_DIRECTORY?.split(":")[0];
  const dir = flag ?? env.NOWSCALE_AGENT_STATE_DIR ?? fromSystemd;
  return dir === undefined || dir === "" ? undefined : dir;
}

/** systemd's StateDirectory=nowscale-agent (agent/nowscale-agent.service), where `serve` keeps its state. */
const SYSTEMD_STATE_DIR = "/var/lib/nowscale-agent";

function existingDir(dir: string): string | undefined {
  return existsSync(dir) ? dir : undefined;
}

/** The most JSON read from stdin: ten times what the largest valid placeholder list needs. */
const MAX_STDIN_BYTES = 4 * 1024 * 1024;

/**
 * A JSON option's text: the value itself, or stdin for "-" (SSM Run Command pipes it there, past the
 * 128 KiB limit of one argument). More than MAX_STDIN_BYTES gives undefined, which the caller refuses.
 */
async function jsonArgument(value: string | undefined): Promise<string | undefined> {
  if (value !== "-") return value;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    size += (chunk as Buffer).length;
    if (size > MAX_STDIN_BYTES) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** The job notes action with the same checks as the HTTP API. */
async function setJobNotes(client: SlurmClient, json: string | undefined): Promise<number> {
  const answer = (code: number, body: Record<string, unknown>) => {
    process.stdout.write(`${JSON.stringify(body)}\n`);
    return code;
  };
  let notes: JobNote[];
  try {
    notes = parseJobNotes(JSON.parse(json ?? "null"));
  } catch (error) {
    const message = error instanceof TypeError ? error.message : "--notes must be JSON";
    return answer(64, { error: `usage: nowscale-agent set-job-notes --notes JSON: ${message}` });
  }
  try {
    const { applied, failures } = await applyJobNotes(client, notes);
    if (failures.length > 0) return answer(1, { error: failures[0], applied, failed: failures.length });
    return answer(0, { ok: true, applied });
  } catch (error) {
    if (error instanceof SlurmUnavailableError) return answer(2, { error: error.message.slice(0, 500) });
    throw error;
  }
}

/** The placeholder sync with the same checks as the HTTP API. */
async function syncPlaceholders(client: SlurmClient, json: string | undefined): Promise<number> {
  const answer = (code: number, body: Record<string, unknown>) => {
    process.stdout.write(`${JSON.stringify(body)}\n`);
    return code;
  };
  let specs: PlaceholderSpec[];
  try {
    specs = parsePlaceholderSpecs(JSON.parse(json ?? "null"));
  } catch (error) {
    const message = error instanceof TypeError ? error.message : "--placeholders must be JSON";
    return answer(64, { error: `usage: nowscale-agent sync-placeholders --placeholders JSON: ${message}` });
  }
  try {
    return answer(0, { ok: true, ...(await client.syncPlaceholders(specs)) });
  } catch (error) {
    const message = error instanceof Error ? error.message.slice(0, 500) : "Slurm command failed";
    return answer(error instanceof SlurmUnavailableError ? 2 : 1, { error: message });
  }
}

/** One node action with the same client, checks and idempotency as the HTTP API. */
async function nodeAction(
  client: SlurmClient,
  action: "drain" | "resume" | "delete-node",
  node: string | undefined,
  reason: string | undefined,
): Promise<number> {
  const answer = (code: number, body: Record<string, unknown>) => {
    process.stdout.write(`${JSON.stringify(body)}\n`);
    return code;
  };
  if (node === undefined || (action === "drain" && reason === undefined)) {
    return answer(64, {
      error: `usage: nowscale-agent ${action} NODE${action === "drain" ? " --reason TEXT" : ""}`,
    });
  }
  try {
    if (action === "drain") await client.drain(node, reason as string);
    else if (action === "resume") await client.resume(node);
    else await client.deleteNode(node);
    return answer(0, { ok: true, node, action });
  } catch (error) {
    const message = error instanceof Error ? error.message.slice(0, 500) : "Slurm command failed";
    if (error instanceof TypeError) return answer(64, { error: message });
    if (error instanceof SlurmNodeNotFoundError) return answer(3, { error: message });
    if (error instanceof SlurmUnavailableError) return answer(2, { error: message });
    return answer(1, { error: message });
  }
}
