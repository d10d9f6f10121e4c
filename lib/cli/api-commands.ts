import { resolve } from "node:path";
import type { Command } from "commander";
import { readApiToken } from "../local/api-auth.js";
import { apiUrl, DEFAULT_STATE_DIR } from "../local/settings.js";
import { readLocalState } from "../local/state-file.js";
import { ApiClient, LOCAL_ENDPOINT } from "./api-client.js";
import { clusterOrCurrent } from "./context.js";
import { progressWhile, readJsonFile, UsageError } from "./io.js";
import { formatTable, utcTime } from "./table.js";

/**
 * The commands that talk to the NowScale API (docs/local-mode.md): `cluster`, `autoscaling`, `nodes`
 * and `events`. The local mode's API by default, a deployed one with --endpoint (SigV4-signed). Tables
 * for people on stdout; --json prints the API's answer as it is; progress goes to stderr.
 */

export interface CommonOptions {
  endpoint?: string;
  region?: string;
  sign?: boolean;
  json?: boolean;
  stateDir?: string;
}

interface ClusterView {
  clusterId: string;
  name: string;
  status: string;
  origin?: "created" | "attached";
  attachment?: { controllerAddress: string; controllerPort: number; slurmVersion: string };
  reason?: string;
  version: number;
  placement: { cloud: string; region: string };
  autoscaling: { queueConfigs?: { queueName: string; minSize?: number; maxSize?: number }[] };
  updatedAt: string;
}

export function common(c: Command): Command {
  return c
    .option("--endpoint <url>", "the API (env NOWSCALE_ENDPOINT); default: the local mode's (127.0.0.1:8080)")
    .option("--region <region>", "the deployed API's region (default: from the URL, or AWS_REGION)")
    .option("--sign", "sign with SigV4 even for an endpoint on this machine")
    .option(
      "--state-dir <dir>",
      `the local mode whose API to call and whose token to send (env NOWSCALE_LOCAL_DIR, default ${DEFAULT_STATE_DIR})`,
    )
    .option("--json", "print the API's JSON answer");
}

/**
 * The API client for a command. Without --endpoint it is the local mode's API (its port from the state
 * file); to a local endpoint it sends the local mode's token (root only, lib/local/api-auth.ts).
 */
export function client(o: CommonOptions): ApiClient {
  const stateDir = resolve(o.stateDir ?? process.env.NOWSCALE_LOCAL_DIR ?? DEFAULT_STATE_DIR);
  const local = readLocalState(stateDir);
  const endpoint =
    o.endpoint ??
    process.env.NOWSCALE_ENDPOINT ??
    (local === undefined ? LOCAL_ENDPOINT : apiUrl(local.settings));
  return new ApiClient({
    endpoint,
    ...(o.region === undefined ? {} : { region: o.region }),
    ...(o.sign === true ? { sign: true } : {}),
    localToken: () => readApiToken(stateDir),
  });
}

/** A command's cluster argument: optional, the current cluster (nowscale use) when left out. */
export const CLUSTER_ARG = 'the cluster id (default: the current cluster, "nowscale use")';

const print = (text: string) => process.stdout.write(`${text}\n`);
const printJson = (value: unknown) => print(JSON.stringify(value, null, 2));
const id = (value: string) => encodeURIComponent(value);

function clusterTable(clusters: ClusterView[]): string {
  return formatTable(
    ["CLUSTER", "NAME", "STATUS", "CLOUD", "QUEUES", "UPDATED"],
    clusters.map((c) => [
      c.clusterId,
      c.name,
      c.status,
      `${c.placement.cloud}/${c.placement.region}`,
      (c.autoscaling.queueConfigs ?? []).map((q) => q.queueName).join(","),
      utcTime(c.updatedAt),
    ]),
  );
}

function clusterDetails(c: ClusterView): string {
  const lines = [
    `cluster  ${c.clusterId} (${c.name})`,
    `status   ${c.status}${c.reason === undefined ? "" : `: ${c.reason}`}`,
    `cloud    ${c.placement.cloud}, region ${c.placement.region}`,
    ...(c.attachment === undefined
      ? []
      : [
          `attached Slurm ${c.attachment.slurmVersion}, slurmctld ${c.attachment.controllerAddress}:${c.attachment.controllerPort} (the master is the user's: never touched)`,
        ]),
    `version  ${c.version}, updated ${utcTime(c.updatedAt)}`,
    "",
    formatTable(
      ["QUEUE", "MIN", "MAX"],
      (c.autoscaling.queueConfigs ?? []).map((q) => [q.queueName, q.minSize ?? 0, q.maxSize ?? 10]),
    ),
  ];
  return lines.join("\n");
}

/** Polls the cluster until one of `statuses`, reporting each change on stderr. */
async function waitForStatus(api: ApiClient, clusterId: string, statuses: string[], timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    const c = (await api.request("GET", `/clusters/${id(clusterId)}`)) as ClusterView;
    if (c.status !== last) process.stderr.write(`  ${clusterId}: ${c.status}\n`);
    last = c.status;
    if (statuses.includes(c.status)) return c;
    if (c.status === "FAILED")
      throw new UsageError(`cluster ${clusterId} FAILED: ${c.reason ?? "no reason"}`, 1);
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new UsageError(`cluster ${clusterId} is still ${last} after ${timeoutMs / 1000} s`, 1);
}

export function registerApiCommands(program: Command): void {
  const cluster = program
    .command("cluster")
    .description("create, list, show, delete, attach and detach clusters");

  common(cluster.command("create"))
    .description("create a cluster from a JSON request (docs/local-mode.md has one for the local mode)")
    .requiredOption("--file <file>", "the create request")
    .option("--idempotency-key <key>", "a retried create with the same key returns the first cluster")
    .option("--wait", "wait until the cluster is RUNNING")
    .action(async (o: CommonOptions & { file: string; idempotencyKey?: string; wait?: boolean }) => {
      const api = client(o);
      const body = readJsonFile(o.file, "create request");
      const headers: Record<string, string> =
        o.idempotencyKey === undefined ? {} : { "idempotency-key": o.idempotencyKey };
      let c = (await api.request("POST", "/clusters", body, headers)) as ClusterView;
      if (o.wait === true) {
        process.stderr.write(`waiting for ${c.clusterId} to be RUNNING…\n`);
        c = await waitForStatus(api, c.clusterId, ["RUNNING"], 1_800_000);
      }
      if (o.json === true) printJson(c);
      else print(`${c.clusterId} ${c.status}`);
    });

  common(cluster.command("list"))
    .description("list the clusters")
    .action(async (o: CommonOptions) => {
      const answer = (await client(o).request("GET", "/clusters")) as { clusters: ClusterView[] };
      if (o.json === true) printJson(answer);
      else print(answer.clusters.length === 0 ? "no clusters" : clusterTable(answer.clusters));
    });

  common(cluster.command("get"))
    .description("show one cluster")
    .argument("[cluster]", CLUSTER_ARG)
    .action(async (given: string | undefined, o: CommonOptions) => {
      const clusterId = clusterOrCurrent(given);
      const c = (await client(o).request("GET", `/clusters/${id(clusterId)}`)) as ClusterView;
      if (o.json === true) printJson(c);
      else print(clusterDetails(c));
    });

  common(cluster.command("delete"))
    .description("delete a cluster (its nodes, master and resources)")
    // Named every time: a deletion never falls back on the current cluster.
    .argument("<cluster>", "the cluster id")
    .option("--wait", "wait until the cluster is DELETED")
    .action(async (clusterId: string, o: CommonOptions & { wait?: boolean }) => {
      const api = client(o);
      let c = (await api.request("DELETE", `/clusters/${id(clusterId)}`)) as ClusterView;
      if (o.wait === true) {
        process.stderr.write(`waiting for ${clusterId} to be DELETED…\n`);
        c = await waitForStatus(api, clusterId, ["DELETED"], 1_800_000);
      }
      if (o.json === true) printJson(c);
      else print(`${c.clusterId} ${c.status}`);
    });

  common(cluster.command("attach"))
    .description("attach an existing Slurm master from a JSON request (docs/attach.md): checked, then scaled")
    .requiredOption(
      "--file <file>",
      "the attach request (examples/attach-aws.json, attach-tencent.json, attach-alibaba.json)",
    )
    .action(async (o: CommonOptions & { file: string }) => {
      const body = readJsonFile(o.file, "attach request");
      const c = (await client(o).request("POST", "/clusters/attach", body)) as ClusterView & {
        checks: { check: string; message: string }[];
        userMust: string[];
      };
      if (o.json === true) {
        printJson(c);
        return;
      }
      print(`${c.clusterId} ${c.status}: attached`);
      for (const check of c.checks) print(`  checked: ${check.message}`);
      for (const must of c.userMust) print(`  yours to ensure: ${must}`);
    });

  common(cluster.command("detach"))
    .description(
      "detach an attached cluster: retire the nodes NowScale launched (never a node running a job) and the Slurm entries it added; the master is never touched",
    )
    .argument("<cluster>", "the cluster id")
    .option("--wait", "wait until the detach has ended (DELETED)")
    .action(async (clusterId: string, o: CommonOptions & { wait?: boolean }) => {
      const api = client(o);
      let c = (await api.request("POST", `/clusters/${id(clusterId)}/detach`)) as ClusterView;
      if (o.wait === true) {
        process.stderr.write(
          `waiting for ${clusterId} to be detached (jobs on NowScale's nodes finish first)…\n`,
        );
        c = await waitForStatus(api, clusterId, ["DELETED"], 7 * 24 * 3_600_000);
      }
      if (o.json === true) printJson(c);
      else print(`${c.clusterId} ${c.status === "DELETED" ? "detached" : c.status}`);
    });

  const autoscaling = program.command("autoscaling").description("a cluster's autoscaling configuration");

  common(autoscaling.command("get"))
    .description("print the configuration (JSON, ready to edit and set)")
    .argument("[cluster]", CLUSTER_ARG)
    .action(async (given: string | undefined, o: CommonOptions) => {
      const clusterId = clusterOrCurrent(given);
      const c = (await client(o).request("GET", `/clusters/${id(clusterId)}`)) as ClusterView;
      printJson(c.autoscaling);
    });

  common(autoscaling.command("set"))
    .description("replace the configuration with a JSON file")
    .argument("[cluster]", CLUSTER_ARG)
    .requiredOption("--file <file>", "the configuration (docs/plan.md, Config)")
    .option("--if-version <version>", "only if the cluster is still at this version")
    .action(async (given: string | undefined, o: CommonOptions & { file: string; ifVersion?: string }) => {
      const clusterId = clusterOrCurrent(given);
      // Checked here so the refusal names the option the user gave, not the HTTP header it becomes.
      if (o.ifVersion !== undefined && !/^[1-9]\d{0,14}$/.test(o.ifVersion))
        throw new UsageError(
          `--if-version must be the cluster's version, a whole number ≥ 1 ("nowscale cluster get" shows it), got "${o.ifVersion}"`,
        );
      const body = readJsonFile(o.file, "autoscaling configuration");
      const headers: Record<string, string> = o.ifVersion === undefined ? {} : { "if-match": o.ifVersion };
      const c = (await client(o).request(
        "PUT",
        `/clusters/${id(clusterId)}/autoscaling`,
        body,
        headers,
      )) as ClusterView;
      if (o.json === true) printJson(c);
      else print(`${c.clusterId}: configuration replaced (version ${c.version})`);
    });

  const nodes = program
    .command("nodes")
    .description(
      "a cluster's compute nodes: list, add, delete, stop, resume and rebuild them by hand, read a boot log",
    );

  common(nodes.command("add"))
    .description("launch nodes in a queue now")
    .argument("[cluster]", CLUSTER_ARG)
    .requiredOption("--queue <queue>", "the queue")
    .requiredOption("--count <n>", "how many nodes (1-100)")
    .option("--instance-type <type>", "one of the queue's instance types")
    .option("--zone <zone>", "one of the queue's zones")
    .action(
      async (
        given: string | undefined,
        o: CommonOptions & { queue: string; count: string; instanceType?: string; zone?: string },
      ) => {
        const clusterId = clusterOrCurrent(given);
        const count = Number(o.count);
        if (!Number.isInteger(count) || count < 1 || count > 100)
          throw new UsageError("--count must be a whole number from 1 to 100");
        // Said only once the request was taken up: a refused one (no such queue) gets its error alone.
        const answer = (await progressWhile(
          `launching ${count} node(s) in ${o.queue}…`,
          client(o).request("POST", `/clusters/${id(clusterId)}/nodes`, {
            queue: o.queue,
            count,
            ...(o.instanceType === undefined ? {} : { instanceType: o.instanceType }),
            ...(o.zone === undefined ? {} : { zone: o.zone }),
          }),
        )) as { nodes: string[]; failures: { kind: string; message: string }[] };
        if (o.json === true) printJson(answer);
        else {
          print(answer.nodes.length === 0 ? "no node started" : `started: ${answer.nodes.join(" ")}`);
          for (const f of answer.failures) print(`failed: ${f.kind}: ${f.message}`);
        }
      },
    );

  common(nodes.command("delete"))
    .description("terminate nodes and remove them from Slurm")
    .argument("<cluster>", "the cluster id")
    .argument("<nodes...>", "node names")
    .action(async (clusterId: string, names: string[], o: CommonOptions) => {
      const answer = (await client(o).request("POST", `/clusters/${id(clusterId)}/nodes/delete`, {
        nodes: names,
      })) as { deleted: string[] };
      if (o.json === true) printJson(answer);
      else print(`deleted: ${answer.deleted.join(" ")}`);
    });

  common(nodes.command("log"))
    .description("a node's console log: its boot (the user data's output), kept after a failed boot")
    .argument("<cluster>", "the cluster id")
    .argument("<node>", "the node name")
    .option("--lines <n>", "the last n lines (1-10000)", "100")
    .action(async (clusterId: string, node: string, o: CommonOptions & { lines: string }) => {
      const answer = (await client(o).request(
        "GET",
        `/clusters/${id(clusterId)}/nodes/${id(node)}/console?lines=${encodeURIComponent(o.lines)}`,
      )) as { node: string; instanceId: string; output: string };
      if (o.json === true) printJson(answer);
      else print(answer.output);
    });

  common(program.command("events"))
    .description("a cluster's scaling events, newest first")
    .argument("[cluster]", CLUSTER_ARG)
    .option("--limit <n>", "at most this many (1-1000)", "50")
    .action(async (given: string | undefined, o: CommonOptions & { limit: string }) => {
      const clusterId = clusterOrCurrent(given);
      const answer = (await client(o).request(
        "GET",
        `/clusters/${id(clusterId)}/events?limit=${encodeURIComponent(o.limit)}`,
      )) as { events: { at: string; kind: string; queue?: string; count?: number; message: string }[] };
      if (o.json === true) printJson(answer);
      else
        print(
          answer.events.length === 0
            ? "no events"
            : formatTable(
                ["TIME", "KIND", "QUEUE", "COUNT", "MESSAGE"],
                answer.events.map((e) => [utcTime(e.at), e.kind, e.queue, e.count, e.message]),
                100,
              ),
        );
    });
}
