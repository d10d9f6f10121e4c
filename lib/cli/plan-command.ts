import type { Command } from "commander";
import { parseConfig, parseState, plan } from "../core/index.js";
import { parseTimeOption, readJsonFile } from "./io.js";

export interface PlanOptions {
  config: string;
  state: string;
  now?: string;
}

/** `nowscale plan`: one decision for a config and a cluster state, as JSON on stdout. */
export function runPlan(options: PlanOptions, clock: () => number = Date.now): string {
  const config = parseConfig(readJsonFile(options.config, "config"), options.config);
  const state = parseState(readJsonFile(options.state, "state"), options.state);
  const now = options.now === undefined ? clock() : parseTimeOption(options.now, "--now");
  return JSON.stringify(plan(config, state, now), null, 2);
}

export function registerPlan(program: Command): void {
  program
    .command("plan")
    .description("print the scaling decision for a config and a cluster state (what-if planner)")
    .requiredOption("--config <file>", "cluster autoscaling config (JSON)")
    .requiredOption("--state <file>", "cluster state: pending/running jobs and nodes (JSON)")
    .option("--now <iso8601>", "the time to plan at (default: the current time)")
    .action((options: PlanOptions) => {
      process.stdout.write(`${runPlan(options)}\n`);
    });
}
