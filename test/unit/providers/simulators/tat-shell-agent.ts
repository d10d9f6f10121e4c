import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TatAgent } from "./tencent-services.js";

/**
 * A TAT agent for the simulator that runs the command it was sent in /bin/sh, as TAT's agent does, with a
 * `node` first on PATH standing in for nowscale-agent: it records the words it was given and what it read
 * on stdin, and `respond` decides the agent's exit code and stdout from them. So the channel's quoting and
 * payload pipeline really run; only the agent's answer is scripted.
 */
export function shellTatAgent(
  respond: (
    instanceId: string,
    words: string[],
    stdin: string,
  ) => { exitCode: number; output: string } | undefined,
): TatAgent & { ran: { instanceId: string; words: string[]; stdin: string }[] } {
  const ran: { instanceId: string; words: string[]; stdin: string }[] = [];
  const agent = (instanceId: string, command: string) => {
    const bin = mkdtempSync(join(tmpdir(), "nowscale-tat-"));
    writeFileSync(join(bin, "node"), "#!/bin/sh\nprintf '%s\\n' \"$@\"\necho ---\ncat\n", { mode: 0o755 });
    try {
      const out = execFileSync("sh", ["-c", command], {
        encoding: "utf8",
        env: { PATH: `${bin}:${process.env.PATH ?? ""}` },
      });
      const [words = "", stdin = ""] = out.split("---\n");
      const call = { instanceId, words: words.trimEnd().split("\n"), stdin };
      ran.push(call);
      return respond(instanceId, call.words, call.stdin);
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  };
  return Object.assign(agent, { ran });
}
