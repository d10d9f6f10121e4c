import type { Command } from "commander";
import { CLUSTER_ARG, type CommonOptions, client, common } from "./api-commands.js";
import { clusterOrCurrent } from "./context.js";
import { progressWhile, readJsonFile, UsageError } from "./io.js";
import { formatTable } from "./table.js";

/**
 * `nowscale queue add|delete|list` (THPC AddQueue / DeleteQueue / DescribeQueues; docs/cli.md): the
 * API's /clusters/{id}/queues routes, whose logic is lib/control/queues.ts.
 */

interface QueueView {
  queueName: string;
  minSize: number;
  maxSize: number;
  expansionNodeConfigs: { instanceType: string; zone: string }[];
  slurm: {
    nodes: number;
    idle: number;
    busy: number;
    pendingJobs: number;
    runningJobs: number;
    partition?: { state: string; default: boolean } | null;
  } | null;
}

/** The queue's partition as Slurm has it: its state, "missing" when Slurm has none, "-" when unknown. */
const partitionCell = (q: QueueView) =>
  q.slurm?.partition === undefined ? "-" : q.slurm.partition === null ? "missing" : q.slurm.partition.state;

const print = (text: string): void => {
  process.stdout.write(`${text}\n`);
};
const note = (text: string) => process.stderr.write(`${text}\n`);
const id = (value: string) => encodeURIComponent(value);
const dash = (n: number | undefined) => (n === undefined ? "-" : String(n));

export function registerQueueCommands(program: Command): void {
  const queue = program.command("queue").description("a cluster's queues (Slurm partitions)");

  common(queue.command("list"))
    .description("list the queues: autoscaling settings and what Slurm says (nodes, jobs)")
    .argument("[cluster]", CLUSTER_ARG)
    .action(async (given: string | undefined, o: CommonOptions) => {
      const clusterId = clusterOrCurrent(given);
      const list = (await client(o).request("GET", `/clusters/${id(clusterId)}/queues`)) as {
        slurm: { reachable: boolean; error?: string; partitionsNotInConfig?: string[] };
        queues: QueueView[];
      };
      if (o.json === true) return print(JSON.stringify(list, null, 2));
      if (!list.slurm.reachable) note(`Slurm's view is unavailable (${list.slurm.error ?? "no answer"})`);
      print(
        formatTable(
          ["QUEUE", "MIN", "MAX", "TYPES", "PARTITION", "NODES", "IDLE", "BUSY", "PENDING", "RUNNING"],
          list.queues.map((q) => [
            q.queueName,
            String(q.minSize),
            String(q.maxSize),
            q.expansionNodeConfigs.map((e) => `${e.instanceType}@${e.zone}`).join(","),
            partitionCell(q),
            dash(q.slurm?.nodes),
            dash(q.slurm?.idle),
            dash(q.slurm?.busy),
            dash(q.slurm?.pendingJobs),
            dash(q.slurm?.runningJobs),
          ]),
        ),
      );
      const extra = list.slurm.partitionsNotInConfig ?? [];
      if (extra.length > 0)
        note(`partitions in Slurm that are no queue of the configuration: ${extra.join(" ")}`);
    });

  common(queue.command("add"))
    .description("add a queue: its Slurm partition on the running master, then the autoscaling configuration")
    .argument("[cluster]", CLUSTER_ARG)
    .option("--file <file>", "the queue as JSON (one entry of queueConfigs, docs/plan.md)")
    .option("--name <queue>", "without --file: the queue's name")
    .option("--instance-type <type>", "without --file: its instance type")
    .option("--zone <zone>", "without --file: its zone")
    .option("--max-size <n>", "without --file: its maxSize (0: kept at zero nodes)", "10")
    .action(
      async (
        given: string | undefined,
        o: CommonOptions & {
          file?: string;
          name?: string;
          instanceType?: string;
          zone?: string;
          maxSize: string;
        },
      ) => {
        const clusterId = clusterOrCurrent(given);
        let body: unknown;
        if (o.file !== undefined) body = readJsonFile(o.file, "queue");
        else {
          if (o.name === undefined || o.instanceType === undefined || o.zone === undefined)
            throw new UsageError("give --file, or --name, --instance-type and --zone");
          // 0 is a queue kept at zero nodes, as the config's maxSize allows; the API checks the upper bound.
          const maxSize = Number(o.maxSize);
          if (o.maxSize.trim() === "" || !Number.isInteger(maxSize) || maxSize < 0)
            throw new UsageError("--max-size must be a whole number ≥ 0 (0: a queue kept at zero nodes)");
          body = {
            queueName: o.name,
            maxSize,
            expansionNodeConfigs: [{ instanceType: o.instanceType, zone: o.zone }],
          };
        }
        const answer = (await progressWhile(
          `adding the queue to ${clusterId} (slurm.conf on the master, then scontrol reconfigure)…`,
          client(o).request("POST", `/clusters/${id(clusterId)}/queues`, body),
        )) as { queue: string };
        if (o.json === true) return print(JSON.stringify(answer, null, 2));
        print(`queue ${answer.queue} added to ${clusterId}: its partition is in Slurm`);
      },
    );

  common(queue.command("delete"))
    .description(
      "delete a queue: refused while jobs run there (always) or pend (unless --force); its nodes are drained and retired, then its partition removed",
    )
    .argument("<queue>", "the queue")
    .argument("[cluster]", CLUSTER_ARG)
    .option(
      "--force",
      "delete although jobs pend there (they are left unrunnable in Slurm); never while jobs run",
    )
    .action(async (name: string, given: string | undefined, o: CommonOptions & { force?: boolean }) => {
      const clusterId = clusterOrCurrent(given);
      const query = o.force === true ? "?force=true" : "";
      const answer = (await progressWhile(
        `deleting queue ${name} of ${clusterId}: draining and retiring its nodes…`,
        client(o).request("DELETE", `/clusters/${id(clusterId)}/queues/${id(name)}${query}`),
      )) as {
        queue: string;
        retired: string[];
      };
      if (o.json === true) return print(JSON.stringify(answer, null, 2));
      print(
        `queue ${answer.queue} deleted from ${clusterId}; nodes retired: ${answer.retired.length === 0 ? "none" : answer.retired.join(" ")}`,
      );
    });
}
