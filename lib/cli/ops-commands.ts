import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { defaultProvider } from "@aws-sdk/credential-provider-node";
import { type Command, Option } from "commander";
import { DEFAULT_STATE_DIR, localPaths } from "../local/settings.js";
import { ApiClient } from "./api-client.js";
import { CLUSTER_ARG, type CommonOptions, client, common } from "./api-commands.js";
import { clearContext, clusterOrCurrent, contextPath, readContext, writeContext } from "./context.js";
import { toCsv } from "./csv.js";
import {
  type Check,
  cloudChecks,
  cloudChecksOnLocalMachine,
  failsDoctor,
  formatChecks,
  localChecks,
  machineProbes,
} from "./doctor.js";
import { parseTimeOption, progressWhile, UsageError } from "./io.js";
import { startCounter } from "./progress.js";
import { formatTable, utcTime } from "./table.js";

/**
 * Day-2 commands (docs/cli.md): `use` (the current cluster), `nodes list`, `nodes rebuild`, `usage`,
 * `history` and `doctor`. Like the API commands: tables for people on stdout, --json (and --csv where
 * it is data) for scripts, progress and notes on stderr.
 */

interface NodeView {
  node: string;
  queue: string;
  instanceType: string;
  zone: string;
  status: string;
  slurmState: string | null;
  runningJob: boolean | null;
  launchedAt: string;
  idleSeconds: number | null;
  hours: number;
  costSoFar: number | null;
  rebuild: { eligible: boolean; reason: string };
}

interface NodeList {
  clusterId: string;
  slurm: { reachable: boolean; error?: string };
  nodes: NodeView[];
}

interface UsageRow {
  clusterId: string;
  day: string;
  queue: string;
  instanceType: string;
  nodes: number;
  nodeHours: number;
  pricePerHour: number | null;
  cost: number | null;
}

interface UsageTotal {
  key: string;
  nodeHours: number;
  cost: number;
  unpricedNodeHours: number;
}

interface Usage {
  clusterId: string;
  from: string;
  to: string;
  rows: UsageRow[];
  byQueue: UsageTotal[];
  byInstanceType: UsageTotal[];
  byDay: UsageTotal[];
  total: Omit<UsageTotal, "key">;
  nodes: {
    node: string;
    queue: string;
    instanceType: string;
    launchedAt: string;
    endedAt?: string;
    hours: number;
    cost: number | null;
  }[];
}

interface EventView {
  at: string;
  kind: string;
  queue?: string;
  count?: number;
  nodes?: string[];
  message: string;
  by?: string;
}

const print = (text: string) => process.stdout.write(`${text}\n`);
const printJson = (value: unknown) => print(JSON.stringify(value, null, 2));
const note = (text: string) => process.stderr.write(`${text}\n`);
const id = (value: string) => encodeURIComponent(value);
/** "2026-01-01T00:00:00.000Z" → "2026-01-01 00:00:00Z": shorter in a table, still UTC and sortable. */
const when = utcTime;
const hours = (h: number) => h.toFixed(2);
const money = (c: number | null) => (c === null ? "-" : c.toFixed(4));
/** Who did it: the operator's principal, or NowScale itself for the scaler's, reconciler's and workflows' events. */
const who = (e: EventView) => e.by ?? "nowscale";

function duration(seconds: number | null): string {
  if (seconds === null) return "-";
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, "0")}m`;
}

function nodeTable(list: NodeList): string {
  return formatTable(
    ["NODE", "QUEUE", "TYPE", "ZONE", "STATUS", "SLURM", "LAUNCHED", "IDLE", "HOURS", "COST", "REBUILD"],
    list.nodes.map((n) => [
      n.node,
      n.queue,
      n.instanceType,
      n.zone,
      n.status,
      n.slurmState,
      when(n.launchedAt),
      duration(n.idleSeconds),
      hours(n.hours),
      money(n.costSoFar),
      n.rebuild.eligible ? `yes: ${n.rebuild.reason}` : "no",
    ]),
    80,
  );
}

const USAGE_HEADERS = [
  "cluster",
  "day",
  "queue",
  "instance_type",
  "nodes",
  "node_hours",
  "price_per_hour",
  "cost",
];

function usageCells(r: UsageRow): unknown[] {
  return [r.clusterId, r.day, r.queue, r.instanceType, r.nodes, r.nodeHours, r.pricePerHour, r.cost];
}

/** The usage of several clusters as one table, grouped as asked, with a total line. */
function usageTable(reports: readonly Usage[], by: string): string {
  const total = reports.reduce(
    (t, r) => ({
      nodeHours: t.nodeHours + r.total.nodeHours,
      cost: t.cost + r.total.cost,
      unpriced: t.unpriced + r.total.unpricedNodeHours,
    }),
    { nodeHours: 0, cost: 0, unpriced: 0 },
  );
  let table: string;
  if (by === "row") {
    table = formatTable(
      ["CLUSTER", "DAY", "QUEUE", "TYPE", "NODES", "NODE-HOURS", "PRICE/H", "COST"],
      [
        ...reports.flatMap((r) =>
          r.rows.map((x) => [
            x.clusterId,
            x.day,
            x.queue,
            x.instanceType,
            x.nodes,
            hours(x.nodeHours),
            x.pricePerHour ?? "-",
            money(x.cost),
          ]),
        ),
        ["total", "", "", "", "", hours(total.nodeHours), "", money(total.cost)],
      ],
    );
  } else if (by === "node") {
    table = formatTable(
      ["CLUSTER", "NODE", "QUEUE", "TYPE", "LAUNCHED", "ENDED", "HOURS", "COST"],
      [
        ...reports.flatMap((r) =>
          r.nodes.map((n) => [
            r.clusterId,
            n.node,
            n.queue,
            n.instanceType,
            when(n.launchedAt),
            when(n.endedAt) ?? "running",
            hours(n.hours),
            money(n.cost),
          ]),
        ),
        ["total", "", "", "", "", "", hours(total.nodeHours), money(total.cost)],
      ],
    );
  } else {
    const pick = { day: "byDay", queue: "byQueue", type: "byInstanceType", cluster: "" }[by] as
      | keyof Usage
      | "";
    const rows =
      pick === ""
        ? reports.map((r) => [r.clusterId, hours(r.total.nodeHours), money(r.total.cost)])
        : reports.flatMap((r) =>
            (r[pick] as UsageTotal[]).map((t) => [r.clusterId, t.key, hours(t.nodeHours), money(t.cost)]),
          );
    table = formatTable(
      pick === "" ? ["CLUSTER", "NODE-HOURS", "COST"] : ["CLUSTER", by.toUpperCase(), "NODE-HOURS", "COST"],
      [
        ...rows,
        pick === ""
          ? ["total", hours(total.nodeHours), money(total.cost)]
          : ["total", "", hours(total.nodeHours), money(total.cost)],
      ],
    );
  }
  const unpriced =
    total.unpriced > 0
      ? `\n${hours(total.unpriced)} node-hours have no price (their instance types have no pricePerHour): not in the cost`
      : "";
  return `${table}${unpriced}`;
}

export function registerOpsCommands(program: Command): void {
  common(program.command("use"))
    .description("choose the current cluster, used when a command's cluster is left out (HPC-NOW's switch)")
    .argument("[cluster]", "the cluster id; without it, show the current one")
    .option("--clear", "forget the current cluster")
    .action(async (cluster: string | undefined, o: CommonOptions & { clear?: boolean }) => {
      const path = contextPath();
      if (o.clear === true) {
        clearContext(path);
        print("no current cluster");
        return;
      }
      if (cluster === undefined) {
        const current = readContext(path);
        if (o.json === true) printJson(current ?? null);
        else print(current === undefined ? "no current cluster" : `current cluster: ${current.cluster}`);
        return;
      }
      // Only a cluster the API knows: a typo would otherwise send every later command to nothing.
      const c = (await client(o).request("GET", `/clusters/${id(cluster)}`)) as {
        clusterId: string;
        name: string;
        status: string;
      };
      writeContext(
        {
          cluster: c.clusterId,
          ...(o.endpoint === undefined ? {} : { endpoint: o.endpoint }),
          setAt: new Date().toISOString(),
        },
        path,
      );
      if (o.json === true) printJson(readContext(path));
      else print(`current cluster: ${c.clusterId} (${c.name}, ${c.status}), kept in ${path}`);
    });

  const nodes =
    program.commands.find((c) => c.name() === "nodes") ??
    program.command("nodes").description("a cluster's compute nodes");

  common(nodes.command("list"))
    .description("list the nodes: state in Slurm, queue, type, zone, launch, idle time, cost so far")
    .argument("[cluster]", CLUSTER_ARG)
    .action(async (given: string | undefined, o: CommonOptions) => {
      const clusterId = clusterOrCurrent(given);
      const list = (await client(o).request("GET", `/clusters/${id(clusterId)}/nodes`)) as NodeList;
      if (o.json === true) {
        printJson(list);
        return;
      }
      if (!list.slurm.reachable)
        note(`Slurm's view is unavailable (${list.slurm.error ?? "no answer"}): states shown as -`);
      print(list.nodes.length === 0 ? `no nodes in ${list.clusterId}` : nodeTable(list));
    });

  common(nodes.command("rebuild"))
    .description(
      "replace failed nodes (DOWN/FAIL in Slurm, or a boot that never joined) in their queue; never a node running a job",
    )
    .argument("[cluster]", CLUSTER_ARG)
    .argument("[nodes...]", "the nodes (default: every failed node)")
    .option(
      "--boot-grace <seconds>",
      "a node not in Slurm this long after launch has failed its boot (default: the cluster's bootTimeout)",
    )
    .option("--wait", "wait until the replacements have joined Slurm")
    .option("--timeout <seconds>", "with --wait: give up after this long", "900")
    .action(
      async (
        given: string | undefined,
        names: string[],
        o: CommonOptions & { bootGrace?: string; wait?: boolean; timeout: string },
      ) => {
        const clusterId = clusterOrCurrent(given);
        const grace = o.bootGrace === undefined ? undefined : Number(o.bootGrace);
        if (grace !== undefined && (!Number.isInteger(grace) || grace < 0 || grace > 86_400))
          throw new UsageError("--boot-grace must be a whole number of seconds from 0 to 86400");
        const timeout = Number(o.timeout);
        if (!Number.isFinite(timeout) || timeout <= 0)
          throw new UsageError("--timeout must be a number of seconds");
        const api = client(o);
        const result = (await progressWhile(
          `rebuilding ${names.length === 0 ? "every failed node" : names.join(" ")} of ${clusterId}…`,
          api.request("POST", `/clusters/${id(clusterId)}/nodes/rebuild`, {
            ...(names.length === 0 ? {} : { nodes: names }),
            ...(grace === undefined ? {} : { bootGraceSeconds: grace }),
          }),
        )) as {
          rebuilt: { node: string; reason: string }[];
          launched: string[];
          failures: { node?: string; queue?: string; message: string }[];
        };
        if (o.wait === true && result.launched.length > 0) {
          await waitForJoin(api, clusterId, result.launched, timeout * 1000);
        }
        if (o.json === true) {
          printJson(result);
          return;
        }
        if (result.rebuilt.length === 0) print("no failed node to rebuild");
        for (const r of result.rebuilt) print(`retired: ${r.node} (${r.reason})`);
        if (result.launched.length > 0) print(`started: ${result.launched.join(" ")}`);
        for (const f of result.failures) print(`failed: ${f.node ?? f.queue ?? ""}: ${f.message}`);
        if (result.failures.length > 0) process.exitCode = 1;
      },
    );

  common(program.command("usage"))
    .description("node-hours and cost per cluster, day, queue and instance type (HPC-NOW's usage)")
    .argument("[cluster]", CLUSTER_ARG)
    .option("--all", "every cluster")
    .option("--from <time>", "from this time (ISO-8601; default: the first launch)")
    .option("--to <time>", "to this time (ISO-8601; default: now)")
    .addOption(
      new Option("--by <what>", "the table's rows")
        .choices(["row", "day", "queue", "type", "node", "cluster"])
        .default("row"),
    )
    .option("--csv", "print the rows as CSV (RFC 4180)")
    .action(
      async (
        given: string | undefined,
        o: CommonOptions & { all?: boolean; from?: string; to?: string; by: string; csv?: boolean },
      ) => {
        if (o.json === true && o.csv === true) throw new UsageError("choose one of --json and --csv");
        if (o.all === true && given !== undefined) throw new UsageError("give a cluster or --all, not both");
        const query = new URLSearchParams();
        if (o.from !== undefined) {
          parseTimeOption(o.from, "--from");
          query.set("from", o.from);
        }
        if (o.to !== undefined) {
          parseTimeOption(o.to, "--to");
          query.set("to", o.to);
        }
        const api = client(o);
        let ids: string[];
        if (o.all === true) {
          const list = (await api.request("GET", "/clusters")) as { clusters: { clusterId: string }[] };
          ids = list.clusters.map((c) => c.clusterId);
        } else ids = [clusterOrCurrent(given)];
        const counter =
          ids.length > 1 ? startCounter(process.stderr, "reading usage", ids.length) : undefined;
        const reports: Usage[] = [];
        const suffix = query.size === 0 ? "" : `?${query.toString()}`;
        for (const [i, clusterId] of ids.entries()) {
          reports.push((await api.request("GET", `/clusters/${id(clusterId)}/usage${suffix}`)) as Usage);
          counter?.update(i + 1, clusterId);
        }
        counter?.stop();
        if (o.json === true) printJson(o.all === true ? { clusters: reports } : reports[0]);
        else if (o.csv === true) {
          process.stdout.write(
            toCsv(
              USAGE_HEADERS,
              reports.flatMap((r) => r.rows.map(usageCells)),
            ),
          );
        } else if (reports.every((r) => r.rows.length === 0)) print("no usage in this window");
        else print(usageTable(reports, o.by));
      },
    );

  common(program.command("history"))
    .description("who did what: operator actions (with the IAM principal) and scaling events, newest first")
    .argument("[cluster]", CLUSTER_ARG)
    .option("--limit <n>", "at most this many events (1-1000)", "100")
    .option("--operator", "operator actions only (events with a principal)")
    .option("--csv", "print as CSV (RFC 4180)")
    .action(
      async (
        given: string | undefined,
        o: CommonOptions & { limit: string; operator?: boolean; csv?: boolean },
      ) => {
        if (o.json === true && o.csv === true) throw new UsageError("choose one of --json and --csv");
        const clusterId = clusterOrCurrent(given);
        const answer = (await client(o).request(
          "GET",
          `/clusters/${id(clusterId)}/events?limit=${encodeURIComponent(o.limit)}`,
        )) as { events: EventView[] };
        const events = answer.events.filter((e) => o.operator !== true || e.by !== undefined);
        if (o.json === true) printJson({ events });
        else if (o.csv === true) {
          process.stdout.write(
            toCsv(
              ["at", "kind", "by", "queue", "count", "nodes", "message"],
              events.map((e) => [
                e.at,
                e.kind,
                who(e),
                e.queue,
                e.count,
                (e.nodes ?? []).join(" "),
                e.message,
              ]),
            ),
          );
        } else
          print(
            events.length === 0
              ? "no events"
              : formatTable(
                  ["TIME", "KIND", "BY", "QUEUE", "COUNT", "MESSAGE"],
                  events.map((e) => [when(e.at), e.kind, who(e), e.queue, e.count, e.message]),
                  100,
                ),
          );
      },
    );

  program
    .command("doctor")
    .description(
      "check this machine: AWS credentials, region, the deployed stack, the local mode's needs (HPC-NOW's envcheck)",
    )
    .option("--local", "only the local mode's checks")
    .option("--cloud", "only the deployed service's checks")
    .option("--endpoint <url>", "the deployed API (env NOWSCALE_ENDPOINT)")
    .option("--region <region>", "the deployed API's region (default: from the URL, or the AWS profile)")
    .option("--json", "print the checks as JSON")
    .action(
      async (o: { local?: boolean; cloud?: boolean; endpoint?: string; region?: string; json?: boolean }) => {
        const both = o.local !== true && o.cloud !== true;
        const endpoint = o.endpoint ?? process.env.NOWSCALE_ENDPOINT;
        const checks: Check[] = [];
        if (both || o.cloud === true) {
          const cloud = await cloudChecks({
            credentials: async () => {
              await withTimeout(
                defaultProvider({ timeout: 2000, maxRetries: 0 })(),
                8000,
                "no answer in 8 s",
              );
            },
            region: async () => {
              if (o.region !== undefined) return o.region;
              // The SDK's own resolution: AWS_REGION, then the profile's region in ~/.aws/config.
              const sdk = new DynamoDBClient({});
              try {
                return await sdk.config.region();
              } finally {
                sdk.destroy();
              }
            },
            endpoint,
            api:
              endpoint === undefined
                ? undefined
                : async () => {
                    const api = new ApiClient({
                      endpoint,
                      ...(o.region === undefined ? {} : { region: o.region }),
                      sign: true,
                    });
                    return (await withTimeout(
                      api.request("GET", "/clusters"),
                      15_000,
                      "no answer in 15 s",
                    )) as {
                      clusters: unknown[];
                    };
                  },
          });
          // Asked for nothing in particular on a machine that only runs the local mode: its missing AWS
          // setup is not a failure. Asked for --cloud, it is.
          const stateFile = localPaths(
            resolve(process.env.NOWSCALE_LOCAL_DIR ?? DEFAULT_STATE_DIR),
          ).stateFile;
          const local = both && existsSync(stateFile) ? dirname(stateFile) : undefined;
          const { checks: shown, note } = cloudChecksOnLocalMachine(cloud, local);
          checks.push(...shown);
          if (note !== undefined) process.stderr.write(`${note}\n`);
        }
        if (both || o.local === true) checks.push(...localChecks(machineProbes()));
        if (o.json === true) printJson({ checks });
        else print(formatChecks(checks));
        if (checks.some(failsDoctor)) process.exitCode = 1;
      },
    );
}

/** Polls the node list until every one of `launched` is JOINED, with a counter on stderr. */
async function waitForJoin(api: ApiClient, clusterId: string, launched: string[], timeoutMs: number) {
  const counter = startCounter(process.stderr, "replacements joined", launched.length);
  const deadline = Date.now() + timeoutMs;
  try {
    while (Date.now() < deadline) {
      const list = (await api.request("GET", `/clusters/${id(clusterId)}/nodes`)) as NodeList;
      const joined = list.nodes.filter((n) => launched.includes(n.node) && n.status !== "LAUNCHING").length;
      counter.update(joined);
      if (joined === launched.length) return;
      await new Promise((r) => setTimeout(r, 2000));
    }
  } finally {
    counter.stop();
  }
  throw new UsageError(`the replacements did not all join Slurm within ${timeoutMs / 1000} s`, 1);
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(message)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
