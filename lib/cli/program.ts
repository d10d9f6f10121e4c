import { Command, CommanderError } from "commander";
import { ValidationError } from "../core/index.js";
import { registerApiCommands } from "./api-commands.js";
import { UsageError } from "./io.js";
import { registerLocal } from "./local-command.js";
import { registerPlan } from "./plan-command.js";
import { registerSimulate } from "./simulate-command.js";

export const VERSION = "0.1.0";

export function buildProgram(): Command {
  const program = new Command()
    .name("nowscale")
    .description("NowScale: SLURM clusters that grow to the queue's demand and shrink to zero")
    .version(VERSION)
    .showHelpAfterError()
    .exitOverride();
  registerPlan(program);
  registerSimulate(program);
  registerLocal(program);
  registerApiCommands(program);
  return program;
}

/** Runs the CLI; user errors print one clear message (no stack) and set a non-zero exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv as string[]);
    // A command may set a status without failing (e.g. `local status --json` when not running).
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    if (error instanceof ValidationError || error instanceof UsageError) {
      process.stderr.write(`nowscale: ${error.message}\n`);
      return error instanceof UsageError ? error.exitCode : 2;
    }
    throw error;
  }
}
