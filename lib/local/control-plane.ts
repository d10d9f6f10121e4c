import { chmod, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { Agent, type Server } from "node:http";
import { join } from "node:path";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { runCommand } from "../../scheduler-plugins/slurm/exec.js";
import { renderSlurmConfParts } from "../../scheduler-plugins/slurm/slurm-conf.js";
import { HttpAgentChannel } from "../agent-channels/http.js";
import type { ApiDeps } from "../control/api/routes.js";
import { RecordingMetrics } from "../control/metrics.js";
import type { Launch } from "../core/model.js";
import type { AgentChannel } from "../ports/agent-channel.js";
import { systemClock } from "../ports/clock.js";
import type { CloudProvider } from "../ports/cloud-provider.js";
import type { ClusterRecord } from "../ports/state-store.js";
import { FakeClusterResources } from "../providers/fake/fake-cluster-resources.js";
import { createLocalProvider, testbedNamespaceNodes } from "../providers/local/index.js";
import type { Testbed } from "../providers/local/slurm-testbed.js";
import { DynamoStateStore } from "../state/dynamo-store.js";
import { createTables, prefixedTableNames } from "../state/tables.js";
import { AgentChannelMasterAgent } from "../workflow/tasks/agent-channel-adapter.js";
import type { LifecycleDeps } from "../workflow/tasks/deps.js";
import { StateStoreLifecycleStore } from "../workflow/tasks/state-store-adapter.js";
import { localAttachedAgent, localAttachedUserData, localAttachPorts } from "./attached.js";
import { LocalCloud } from "./local-cloud.js";
import { type LocalSettings, localPaths } from "./settings.js";
import { localComputeUserData } from "./user-data.js";
import { localTakenUserIds } from "./user-ids.js";
import { LocalUserSecrets } from "./user-secrets.js";
import { LocalWorkflowStarter } from "./workflows.js";

/**
 * The control plane's pieces wired for one machine: dynalite for DynamoDB (the same store and tables),
 * the local cloud (namespace nodes; the master is this machine's slurmctld and agent), the agent over
 * signed HTTP, and the workflows run locally. The API, the scaler loop and the workflows all share it.
 */
export interface LocalControlPlane {
  store: DynamoStateStore;
  cloud: LocalCloud;
  agent: AgentChannel;
  lifecycle: LifecycleDeps;
  workflows: LocalWorkflowStarter;
  api: ApiDeps;
  metrics: RecordingMetrics;
  /** The compute user data of a launch (the scale cycle's and the API's). */
  userData: (cluster: ClusterRecord, launch: Launch) => string | undefined;
  /**
   * A cluster's cloud and agent: this machine's agent for a created cluster, the attached master's own
   * agent (lib/local/attached.ts) for an attached one.
   */
  runtime(cluster: ClusterRecord): Promise<{ provider: CloudProvider; agent: AgentChannel }>;
  dynamoEndpoint: string;
  close(): Promise<void>;
}

/** What the supervisor does when the master changes hands (start and stop the agent's watcher). */
export interface LocalMasterEvents {
  claimed(clusterId: string): Promise<void>;
  released(clusterId: string): Promise<void>;
}

export async function startLocalControlPlane(
  settings: LocalSettings,
  testbed: Testbed,
  log: (line: string) => void,
  master?: LocalMasterEvents,
): Promise<LocalControlPlane> {
  const paths = localPaths(settings.stateDir);
  const clock = systemClock;
  const dynamo = await startDynalite(join(paths.runDir, "dynalite.sock"));
  const client = new DynamoDBClient({
    // The host is never resolved: every connection goes to the socket.
    endpoint: "http://dynalite.local",
    region: "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
    requestHandler: { httpAgent: dynamo.agent },
  });
  const tables = prefixedTableNames("nowscale-local-");
  await createTables(client, tables);
  const store = new DynamoStateStore({ client, tables });

  const key = Buffer.from((await readFile(paths.agentKey, "utf8")).trim(), "utf8");
  const agent = new HttpAgentChannel({ baseUrl: `http://127.0.0.1:${settings.agentPort}`, key, clock });
  // Users' passwords and keys: root-only files, the local mode's secret store (lib/local/user-secrets.ts).
  const userSecrets = new LocalUserSecrets(join(settings.stateDir, "secrets", "users"));
  // The local instances' stand-in NFS server (no NFS in this kernel): only for a state directory of
  // plain path segments, which the stand-in's script embeds; otherwise storage mounts fail at boot.
  const plainPath =
    /^(\/[A-Za-z0-9._-]+)+$/.test(paths.nfsExportRoot) && !paths.nfsExportRoot.includes("/../");
  if (plainPath) await mkdir(paths.nfsExportRoot, { recursive: true, mode: 0o755 });
  else log(`storage: ${paths.nfsExportRoot} is not a plain path; NFS mounts will fail on local instances`);
  const computes = createLocalProvider({
    nodes: testbedNamespaceNodes(testbed, plainPath ? { nfsExportRoot: paths.nfsExportRoot } : {}),
    stateDir: paths.instancesDir,
    subnetPrefix: settings.subnet,
    bootDelayMs: settings.bootDelayMs,
    clock,
  });
  const cloud = new LocalCloud(computes, {
    agentAddress: "127.0.0.1",
    prepareMaster: async (clusterId) => {
      const cluster = await store.getCluster(clusterId);
      if (cluster !== undefined) await setSlurmQueues(testbed, cluster, log);
    },
    ...(master === undefined ? {} : { masterClaimed: (id: string) => master.claimed(id) }),
    masterReleased: async (id: string) => {
      // A cloud master's accounts go with its instance; this machine stays, so the deleted cluster's
      // users are removed from it (homes kept, as `users delete`), lest the next cluster's first user get
      // a uid whose files a previous cluster's user left. Best effort: the deletion goes on regardless.
      await agent
        .setUsers({ users: [], purge: [] })
        .then((a) => a.removed.length > 0 && log(`cluster ${id}: users ${a.removed.join(", ")} removed`))
        .catch((error: unknown) => log(`cluster ${id}: its users not removed: ${(error as Error).message}`));
      // Their passwords and keys go too, as a cloud's secret store loses them with the cluster.
      await userSecrets
        .removeCluster(id)
        .then((users) => users.length > 0 && log(`cluster ${id}: secrets of ${users.join(", ")} removed`))
        .catch((error: unknown) =>
          log(`cluster ${id}: its users' secrets not removed: ${(error as Error).message}`),
        );
      await master?.released(id);
    },
    // One line per compute launch call: when the launch reached the provider (docs/local-mode.md measures
    // submit → launch call from it).
    computeLaunch: (request) =>
      log(
        `launch call: ${request.clusterId} queue ${request.queue} count ${request.count} round ${request.round}`,
      ),
  });
  const runtime = async (cluster: ClusterRecord) => ({
    provider: cloud as CloudProvider,
    agent: cluster.attachment === undefined ? agent : await localAttachedAgent(cluster, clock),
  });
  const lifecycle: LifecycleDeps = {
    store: new StateStoreLifecycleStore(store, clock),
    // No network or secrets to make on one machine: the bridge and the local keys exist already.
    resources: new FakeClusterResources(),
    provider: () => cloud,
    agent: new AgentChannelMasterAgent(async () => agent),
    clock,
    controlPlane: { store, runtime },
  };
  const workflows = new LocalWorkflowStarter(lifecycle, settings.agentPort, log);
  const metrics = new RecordingMetrics();
  // Every compute node boots from the cloud's user data (AWS's), run in its namespace instance.
  const created = localComputeUserData(testbed);
  const userData = (cluster: ClusterRecord, launch: Launch) =>
    cluster.attachment === undefined ? created(cluster, launch) : localAttachedUserData(cluster, launch);
  const api: ApiDeps = {
    store,
    clock,
    workflows,
    metrics,
    runtime,
    // Whatever cloud a cluster names, its computes are this machine's namespaces: their zones.
    zones: () => cloud.zones(),
    userData,
    attach: localAttachPorts(clock),
    userSecrets,
    // Several clusters share this machine's accounts and /home: uids unique on the host (user-ids.ts).
    takenUserIds: localTakenUserIds(store),
  };
  return {
    store,
    cloud,
    agent,
    lifecycle,
    workflows,
    api,
    metrics,
    userData,
    runtime,
    dynamoEndpoint: dynamo.endpoint,
    close: async () => {
      client.destroy();
      await dynamo.close();
    },
  };
}

/**
 * An in-memory dynalite (a dev dependency: local mode runs from a checkout) on a Unix socket in a
 * directory only root may enter. dynalite has no authentication, and the tables decide what the
 * workflows launch (user data that runs as root), so it must not listen on a TCP port any local user
 * could reach. `agent` connects every request to that socket.
 */
async function startDynalite(
  socket: string,
): Promise<{ endpoint: string; agent: Agent; close(): Promise<void> }> {
  // @ts-expect-error dynalite ships no types
  const { default: dynalite } = await import("dynalite");
  const server: Server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  const dir = join(socket, "..");
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  await rm(socket, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socket, resolve);
  });
  await chmod(socket, 0o600);
  // An Agent's own options override each request's, so every connection goes to the socket.
  const agent = new Agent({ keepAlive: true, socketPath: socket } as ConstructorParameters<typeof Agent>[0]);
  return {
    endpoint: `unix:${socket}`,
    agent,
    close: async () => {
      agent.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(socket, { force: true });
    },
  };
}

/** Room for every namespace node one machine can hold. */
export const LOCAL_MAX_NODES = 64;

/**
 * Appended to the test bed's slurm.conf (after the NowScale part). Slurm schedules on its own clock
 * (main loop every 60 s, backfill every 30 s) and a node that just registered can sit idle next to the
 * job it was launched for; short loops make the local mode's waits show NowScale's own latency.
 */
export const LOCAL_EXTRA_CONF = ["SchedulerParameters=sched_interval=2,bf_interval=2"];

/**
 * Makes Slurm's partitions the cluster's queues: the NowScale part of slurm.conf (always its tail in a
 * test bed) is rendered again and slurmctld re-reads it. Done when the master is claimed, before any
 * compute node of the cluster exists.
 */
export async function setSlurmQueues(
  testbed: Testbed,
  cluster: ClusterRecord,
  log: (line: string) => void,
): Promise<void> {
  const queues = (cluster.autoscaling.queueConfigs ?? []).map((q) => ({ name: q.queueName }));
  const conf = await readFile(testbed.confPath, "utf8");
  const at = conf.indexOf("# --- NowScale: dynamic cloud nodes");
  if (at < 0) throw new Error(`${testbed.confPath} has no NowScale part to replace`);
  const parts = renderSlurmConfParts({ queues, maxNodeCount: LOCAL_MAX_NODES });
  await writeFile(testbed.confPath, `${conf.slice(0, at)}${parts}\n${LOCAL_EXTRA_CONF.join("\n")}\n`);
  const r = await runCommand("scontrol", ["reconfigure"], { env: testbed.env, timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`scontrol reconfigure failed: ${(r.stderr || r.error || "").trim()}`);
  log(`slurm partitions: ${queues.map((q) => q.name).join(", ")}`);
}
