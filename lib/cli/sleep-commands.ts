import type { Command } from "commander";
import { CLUSTER_ARG, type CommonOptions, client, common } from "./api-commands.js";
import { clusterOrCurrent } from "./context.js";
import { UsageError } from "./io.js";

/**
 * `nowscale sleep|wake` (HPC-NOW sleep / wakeup) and `nowscale nodes stop|resume` (HPC-NOW shutdownc /
 * turnonc): the API's /sleep, /wake, /nodes/stop and /nodes/resume routes, whose rules are in
 * lib/control/sleep.ts (a node running a job is never terminated: it is named as waiting).
 */

interface Waiting {
  node: string;
  reason: string;
}

interface SleepAnswer {
  clusterId: string;
  status: string;
  retired?: string[];
  waiting?: Waiting[];
  resumed?: string[];
  master?: { state: string; instanceIds: string[]; reason?: string };
}

const print = (text: string): void => {
  process.stdout.write(`${text}\n`);
};
const note = (text: string) => process.stderr.write(`${text}\n`);
const id = (value: string) => encodeURIComponent(value);
const list = (xs: readonly string[] | undefined) =>
  xs === undefined || xs.length === 0 ? "none" : xs.join(" ");
const waitingLines = (ws: readonly Waiting[]) => ws.map((w) => `  ${w.node}: ${w.reason}`).join("\n");

export function registerSleepCommands(program: Command): void {
  common(program.command("sleep"))
    .description(
      "pause autoscaling (HPC-NOW's sleep): no launch while asleep (jobs may queue), every compute node drained and retired once it holds no job; never a node running a job",
    )
    .argument("[cluster]", CLUSTER_ARG)
    .option("--wait", "ask again every few seconds until no compute node is left")
    .option("--timeout <seconds>", "with --wait: give up after this long", "3600")
    .option(
      "--stop-master",
      "also stop the master (stopped, not terminated: its disk kept) once no compute node is left (AWS, Tencent, Alibaba; not attached clusters or the local mode)",
    )
    .action(
      async (
        given: string | undefined,
        o: CommonOptions & { wait?: boolean; timeout: string; stopMaster?: boolean },
      ) => {
        const clusterId = clusterOrCurrent(given);
        const timeoutS = Number(o.timeout);
        if (!Number.isFinite(timeoutS) || timeoutS <= 0)
          throw new UsageError("--timeout must be a number of seconds > 0");
        const api = client(o);
        const body = o.stopMaster === true ? { stopMaster: true } : {};
        const retired = new Set<string>();
        const waited = new Set<string>();
        const deadline = Date.now() + timeoutS * 1000;
        let answer: SleepAnswer;
        for (;;) {
          answer = (await api.request("POST", `/clusters/${id(clusterId)}/sleep`, body)) as SleepAnswer;
          for (const n of answer.retired ?? []) retired.add(n);
          const waiting = answer.waiting ?? [];
          // A node that waited before and no longer does was retired in between, by the reconciler's
          // asleep step when its job ended (lib/control/sleep.ts): it is one of this sleep's retirements.
          const still = new Set(waiting.map((w) => w.node));
          for (const n of waited) if (!still.has(n)) retired.add(n);
          for (const n of still) waited.add(n);
          if (o.wait !== true || waiting.length === 0) break;
          if (Date.now() > deadline)
            throw new UsageError(
              `${clusterId} is asleep, but ${waiting.length} node(s) still wait after ${timeoutS} s:\n${waitingLines(waiting)}`,
              1,
            );
          note(`  ${waiting.length} node(s) still run jobs: ${waiting.map((w) => w.node).join(" ")}`);
          await new Promise((r) => setTimeout(r, 5000));
        }
        if (o.json === true) return print(JSON.stringify({ ...answer, retired: [...retired] }, null, 2));
        print(`${clusterId} is ${answer.status}: autoscaling paused; nodes retired: ${list([...retired])}`);
        const waiting = answer.waiting ?? [];
        if (waiting.length > 0)
          print(`nodes still waiting (retired when their jobs end):\n${waitingLines(waiting)}`);
        if (answer.master !== undefined)
          print(
            answer.master.state === "stopped"
              ? `master stopped: ${answer.master.instanceIds.join(" ")}`
              : `master left running: ${answer.master.reason ?? ""}`,
          );
      },
    );

  common(program.command("wake"))
    .description(
      "resume autoscaling (HPC-NOW's wakeup): the master started if sleep stopped it, the scaler launches for the queued jobs",
    )
    .argument("[cluster]", CLUSTER_ARG)
    .action(async (given: string | undefined, o: CommonOptions) => {
      const clusterId = clusterOrCurrent(given);
      const answer = (await client(o).request("POST", `/clusters/${id(clusterId)}/wake`, {})) as SleepAnswer;
      if (o.json === true) return print(JSON.stringify(answer, null, 2));
      print(`${clusterId} is ${answer.status}: autoscaling resumed; nodes resumed: ${list(answer.resumed)}`);
      if (answer.master !== undefined) print(`master started: ${answer.master.instanceIds.join(" ")}`);
    });

  const nodes =
    program.commands.find((c) => c.name() === "nodes") ??
    program.command("nodes").description("a cluster's compute nodes");

  common(nodes.command("stop"))
    .description(
      "HPC-NOW's shutdownc: drain the nodes (no new job) and retire each one that holds no job; one running a job is retired when it ends",
    )
    .argument("<nodes...>", "node names")
    .option("--cluster <cluster>", CLUSTER_ARG)
    .action(async (names: string[], o: CommonOptions & { cluster?: string }) => {
      const clusterId = clusterOrCurrent(o.cluster);
      const answer = (await client(o).request("POST", `/clusters/${id(clusterId)}/nodes/stop`, {
        nodes: names,
      })) as { retired: string[]; waiting: Waiting[] };
      if (o.json === true) return print(JSON.stringify(answer, null, 2));
      print(`retired: ${list(answer.retired)}`);
      if (answer.waiting.length > 0)
        print(`drained, retired when their jobs end:\n${waitingLines(answer.waiting)}`);
    });

  common(nodes.command("resume"))
    .description(
      "HPC-NOW's turnonc: nodes a stop or sleep drained that still wait for their jobs take jobs again; retired nodes are replaced by the scaler on demand",
    )
    .argument("<nodes...>", "node names")
    .option("--cluster <cluster>", CLUSTER_ARG)
    .action(async (names: string[], o: CommonOptions & { cluster?: string }) => {
      const clusterId = clusterOrCurrent(o.cluster);
      const answer = (await client(o).request("POST", `/clusters/${id(clusterId)}/nodes/resume`, {
        nodes: names,
      })) as { resumed: string[]; notResumed: Waiting[] };
      if (o.json === true) return print(JSON.stringify(answer, null, 2));
      print(`resumed: ${list(answer.resumed)}`);
      if (answer.notResumed.length > 0) print(`not resumed:\n${waitingLines(answer.notResumed)}`);
    });
}
