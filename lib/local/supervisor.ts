import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, openSync } from "node:fs";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import type { Server } from "node:http";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { HttpAgentChannel } from "../agent-channels/http.js";
import { sleep } from "../providers/local/netns.js";
import { startTestbed } from "../providers/local/slurm-testbed.js";
import { ApiAuth, checkStateDirOwnership, writeApiToken } from "./api-auth.js";
import { startApiServer } from "./api-server.js";
import {
  LOCAL_EXTRA_CONF,
  LOCAL_MAX_NODES,
  type LocalControlPlane,
  startLocalControlPlane,
} from "./control-plane.js";
import {
  LOCAL_BUS_NAME,
  LOCAL_EVENTS_PATH,
  LOCAL_EVENTS_REGION,
  type LocalBusCredentials,
  LocalEventBus,
} from "./event-bus.js";
import { type ScalerLoop, startScalerLoop } from "./scaler-loop.js";
import { bridgeName, type LocalSettings, localPaths } from "./settings.js";
import { isOurProcess, type LocalState, readLocalState, writeLocalState } from "./state-file.js";
import { StatusSampler } from "./status.js";
import { AGENT_MARKER, stopProcess, tearDownLocal } from "./teardown.js";

/** The marker in the supervisor's command line (`nowscale local supervise ...`). */
export const SUPERVISOR_MARKER = "local supervise";

/** The agent bundle built next to this module (dist/agent/nowscale-agent.js). */
export function agentBundlePath(): string {
  return fileURLToPath(new URL("../../agent/nowscale-agent.js", import.meta.url));
}

/**
 * The local mode's background process: starts munged and slurmctld (test bed), the agent, dynalite, the
 * API and the scaler loop, recording each process in the state file as soon as it exists; on SIGTERM or
 * SIGINT it stops all of it. Progress lines go to stdout (the supervisor log `local up` follows).
 * Resolves with the exit code once everything is stopped.
 */
export async function runSupervisor(settings: LocalSettings): Promise<number> {
  const paths = localPaths(settings.stateDir);
  const log = (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);
  await mkdir(paths.logDir, { recursive: true });
  // munged refuses a socket below a directory others cannot enter (mkdtemp makes 0700 ones).
  await chmod(settings.stateDir, 0o755);
  // The API token and the agent's key live here: only root may be able to replace them.
  checkStateDirOwnership(settings.stateDir);
  await takeLock(paths.lockFile);
  const state: LocalState = {
    settings,
    phase: "starting",
    supervisorPid: process.pid,
    startedAt: Date.now(),
  };
  await writeLocalState(state);

  let cp: LocalControlPlane | undefined;
  let server: Server | undefined;
  let loop: ScalerLoop | undefined;
  let sampler: StatusSampler | undefined;
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      log("stopping");
      await writeLocalState({ ...state, phase: "stopping" }).catch(() => undefined);
      await loop?.stop().catch(() => undefined);
      sampler?.stop();
      if (server !== undefined) {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server?.close(() => resolve()));
      }
      await cp?.close().catch(() => undefined);
      await tearDownLocal(settings, state).catch((error: unknown) =>
        log(`clean-up incomplete: ${(error as Error).message}; run "nowscale local down" again`),
      );
      log("stopped");
    })();
    return stopping;
  };
  const onSignal = () => {
    stop().finally(() => process.exit(0));
  };
  process.once("SIGTERM", onSignal);
  process.once("SIGINT", onSignal);

  try {
    log(`step: starting munged and slurmctld (ports ${settings.slurmctldPort}/${settings.slurmdPort})`);
    const testbed = await startTestbed({
      stateDir: paths.slurmDir,
      clusterName: "nowscale",
      queues: [{ name: "compute" }],
      network: { bridge: bridgeName(settings), hostAddress: `${settings.subnet}.1` },
      netnsPrefix: settings.prefix,
      slurmctldPort: settings.slurmctldPort,
      slurmdPort: settings.slurmdPort,
      maxNodeCount: LOCAL_MAX_NODES,
      extraConf: LOCAL_EXTRA_CONF,
    });

    log(`step: starting the agent on 127.0.0.1:${settings.agentPort}`);
    await writeAgentKey(paths.agentKey);
    state.agentPid = startAgent(settings, testbed.env);
    await writeLocalState(state);
    await waitForAgent(settings);

    // The wake path (docs/local-mode.md): the local stand-in of the master's role credentials, the bus
    // that checks them, and the agent's watcher, started when a cluster claims the master.
    const wake = settings.wake !== false;
    const credentials: LocalBusCredentials = {
      accessKeyId: `AKIALOCAL${randomBytes(6).toString("hex").toUpperCase()}`,
      secretAccessKey: randomBytes(30).toString("base64"),
    };
    const bus = wake
      ? new LocalEventBus({
          credentials,
          onWake: (detail) => {
            loop?.wake(detail).catch((error: unknown) => log(`wake error: ${(error as Error).message}`));
          },
        })
      : undefined;
    const master = {
      claimed: async (clusterId: string) => {
        if (!wake) return;
        await stopProcess(state.watcherPid, AGENT_MARKER);
        state.watcherPid = startWatcher(settings, testbed.env, clusterId, credentials);
        await writeLocalState(state);
        log(`agent watcher started for ${clusterId} (pid ${state.watcherPid})`);
      },
      released: async () => {
        await stopProcess(state.watcherPid, AGENT_MARKER);
        delete state.watcherPid;
        await writeLocalState(state);
      },
    };

    log("step: starting dynalite and the control plane");
    cp = await startLocalControlPlane(settings, testbed, log, master);
    state.dynamoEndpoint = cp.dynamoEndpoint;

    log(`step: starting the API on http://127.0.0.1:${settings.apiPort}`);
    sampler = new StatusSampler(cp);
    sampler.start(2000);
    const status = sampler;
    // A new token at each start (never logged): the CLI reads it from the file, the browser gets a link.
    const auth = new ApiAuth(await writeApiToken(settings.stateDir));
    server = await startApiServer(cp.api, settings.apiPort, log, auth, () => status.current(), bus);
    loop = startScalerLoop(cp, settings.scalerIntervalSeconds * 1000, log);

    state.phase = "ready";
    state.readyAt = Date.now();
    await writeLocalState(state);
    log(`ready in ${((state.readyAt - state.startedAt) / 1000).toFixed(1)} s`);
  } catch (error) {
    const message = (error as Error).message;
    log(`failed: ${message}`);
    await stop();
    await writeLocalState({ ...state, phase: "failed", error: message }).catch(() => undefined);
    return 1;
  }
  await new Promise<never>(() => undefined);
  return 0;
}

/** One local mode per state directory: the lock names the supervisor; a dead holder's lock is taken over. */
async function takeLock(lockFile: string): Promise<void> {
  const holder = readLocalState(lockFile.replace(/\/local\.lock$/, ""));
  if (existsSync(lockFile) && isOurProcess(holder?.supervisorPid, SUPERVISOR_MARKER)) {
    throw new Error(`local mode is already running here (pid ${holder?.supervisorPid})`);
  }
  await writeFile(lockFile, `${process.pid}\n`, { mode: 0o600 });
}

/** A fresh HMAC key, readable by root only; never logged. */
async function writeAgentKey(file: string): Promise<void> {
  await writeFile(file, `${randomBytes(48).toString("base64")}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
}

function startAgent(settings: LocalSettings, env: NodeJS.ProcessEnv): number {
  const paths = localPaths(settings.stateDir);
  const bundle = agentBundlePath();
  if (!existsSync(bundle)) throw new Error(`${bundle} is missing: run "npm run build" first`);
  const out = openSync(paths.agentLog, "a");
  const child = spawn(
    process.execPath,
    [
      bundle,
      "serve",
      "--listen",
      `127.0.0.1:${settings.agentPort}`,
      "--key-file",
      paths.agentKey,
      "--source",
      "json",
      // The replay cache survives an agent restart, as on a deployed master (docs/agent.md).
      "--state-dir",
      join(settings.stateDir, "agent"),
    ],
    // Its own process group: a signal to the supervisor's group does not reach it; teardown stops it by pid.
    { env, detached: true, stdio: ["ignore", out, out] },
  );
  child.unref();
  if (child.pid === undefined) throw new Error("the agent did not start");
  return child.pid;
}

/**
 * The agent's watcher for the cluster holding the master (`nowscale-agent watch`, as the master's boot
 * script starts it on AWS), sending its wakes to the local bus with the local credentials (in its
 * environment only: never logged, readable by root alone in /proc).
 */
function startWatcher(
  settings: LocalSettings,
  env: NodeJS.ProcessEnv,
  clusterId: string,
  credentials: LocalBusCredentials,
): number {
  const paths = localPaths(settings.stateDir);
  const out = openSync(paths.watcherLog, "a");
  const { AWS_SESSION_TOKEN: _token, ...rest } = env;
  const child = spawn(
    process.execPath,
    [
      agentBundlePath(),
      "watch",
      "--cluster-id",
      clusterId,
      "--event-bus",
      LOCAL_BUS_NAME,
      "--region",
      LOCAL_EVENTS_REGION,
      "--endpoint-url",
      `http://127.0.0.1:${settings.apiPort}${LOCAL_EVENTS_PATH}`,
    ],
    {
      env: {
        ...rest,
        AWS_ACCESS_KEY_ID: credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      },
      // Its own process group, as the agent's: teardown stops it by pid.
      detached: true,
      stdio: ["ignore", out, out],
    },
  );
  child.unref();
  if (child.pid === undefined) throw new Error("the agent's watcher did not start");
  return child.pid;
}

async function waitForAgent(settings: LocalSettings, timeoutMs = 20_000): Promise<void> {
  const key = Buffer.from((await readFile(localPaths(settings.stateDir).agentKey, "utf8")).trim(), "utf8");
  const channel = new HttpAgentChannel({ baseUrl: `http://127.0.0.1:${settings.agentPort}`, key });
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    try {
      await channel.health();
      return;
    } catch (error) {
      last = (error as Error).message;
    }
    await sleep(200);
  }
  throw new Error(
    `the agent did not answer on 127.0.0.1:${settings.agentPort} within ${timeoutMs / 1000} s (${last}); ` +
      `see ${localPaths(settings.stateDir).agentLog} (is the port in use? pass --agent-port)`,
  );
}
