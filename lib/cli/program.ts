import { Command, CommanderError } from "commander";
import { ValidationError } from "../core/index.js";
import { UsageError } from "./io.js";
import { registerPlan } from "./plan-command.js";
import { registerSimulate } from "./simulate-command.js";

export const VERSION = "0.1.0";

/**
 * The CLI. `plan` and `simulate` are pure and load nothing else: the local mode and the API commands
 * pull in cloud SDKs (about a second of start-up), so they are imported only when the command line
 * may need them (any other command, or none, e.g. --help).
 */
export async function buildProgram(argv: readonly string[] = []): Promise<Command> {
  const command = argv.slice(2).find((a) => !a.startsWith("-"));
  const program = new Command()
    .name("nowscale")
    .description("NowScale: SLURM clusters that grow to the queue's demand and shrink to zero")
    .version(VERSION)
    .showHelpAfterError()
    // "nowscale clustr" → (Did you mean cluster?); the same for subcommands and --flags (inherited).
    .showSuggestionAfterError(true)
    .exitOverride();
  registerPlan(program);
  registerSimulate(program);
  if (command === "plan" || command === "simulate") return program;
  const [{ registerLocal }, { registerApiCommands }, { registerOpsCommands }, { registerQueueCommands }] =
    await Promise.all([
      import("./local-command.js"),
      import("./api-commands.js"),
      import("./ops-commands.js"),
      import("./queue-commands.js"),
    ]);
  registerLocal(program);
  registerApiCommands(program);
  registerOpsCommands(program);
  registerQueueCommands(program);
  (await import("./storage-commands.js")).registerStorageCommands(program);
  // Sleep and wake, nodes stop and resume (#17).
  (await import("./sleep-commands.js")).registerSleepCommands(program);
  // Cluster users (HPC-NOW userman).
  (await import("./user-commands.js")).registerUserCommands(program);
  return program;
}

/**
 * `nowscale help nosuch` (or `nowscale nodes help nosuch`): commander answers a help request for a
 * command it does not know with the general help alone, naming nothing, where `nowscale nosuch` says
 * "error: unknown command 'nosuch'" with a suggestion. The help word is dropped from such a command
 * line, so commander refuses the name in its own words (bad usage: exit 2 in main). Any other command
 * line is returned as it is. Only the command path is walked (names up to the first option): the
 * commands that hold subcommands take no options of their own before them.
 */
export function helpOfUnknownAsUnknown(program: Command, argv: readonly string[]): string[] {
  const args = argv.slice(2);
  let command = program;
  for (let i = 0; i < args.length; i++) {
    const word = args[i] as string;
    if (word.startsWith("-")) break;
    const sub = command.commands.find((c) => c.name() === word || c.aliases().includes(word));
    if (sub !== undefined) {
      command = sub;
      continue;
    }
    const topic = args[i + 1];
    const known = (name: string) =>
      command.commands.some((c) => c.name() === name || c.aliases().includes(name));
    // Only where commander has its help command (a command with subcommands): elsewhere `help` is an
    // argument (a node named help), never dropped.
    if (
      word === "help" &&
      command.commands.length > 0 &&
      topic !== undefined &&
      !topic.startsWith("-") &&
      !known(topic)
    )
      return [...argv.slice(0, 2 + i), ...argv.slice(3 + i)];
    break;
  }
  return [...argv];
}

/** Runs the CLI; user errors print one clear message (no stack) and set a non-zero exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    const program = await buildProgram(argv);
    await program.parseAsync(helpOfUnknownAsUnknown(program, argv));
    // A command may set a status without failing (e.g. `local status --json` when not running).
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (error) {
    // Commander's own refusals (an unknown command or flag, a missing option, a bad choice, no command)
    // exit 1 by default; they are bad usage, which is 2 in every command's contract (docs/cli.md).
    // Help and --version end through here too, with 0.
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    if (error instanceof ValidationError || error instanceof UsageError) {
      process.stderr.write(`nowscale: ${error.message}\n`);
      return error instanceof UsageError ? error.exitCode : 2;
    }
    throw error;
  }
}
