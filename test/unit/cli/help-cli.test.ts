import { describe, expect, it } from "vitest";
import { buildProgram, helpOfUnknownAsUnknown } from "../../../lib/cli/program.js";
import { runCli } from "../../support/cli.js";

describe("nowscale help", () => {
  it("names a command it does not know, in commander's words, and exits 2 (bad usage)", () => {
    // Act
    const top = runCli(["help", "nosuch"]);
    const typo = runCli(["help", "clustr"]);
    const nested = runCli(["nodes", "help", "nosuch"]);
    const known = runCli(["help", "plan"]);
    // Assess
    for (const r of [top, typo, nested]) {
      expect(r.status).toBe(2);
      expect(r.stdout).toBe("");
    }
    expect(top.stderr).toMatch(/^error: unknown command 'nosuch'\n/);
    expect(typo.stderr).toContain("(Did you mean cluster?)");
    expect(nested.stderr).toMatch(/^error: unknown command 'nosuch'\n/);
    expect(nested.stderr).toContain("Usage: nowscale nodes");
    expect(known.status).toBe(0);
    expect(known.stdout).toMatch(/^Usage: nowscale plan \[options\]/);
  });

  it("drops the help word only where commander has a help command, never an argument named help", async () => {
    // Prepare
    const argv = (...args: string[]) => ["node", "nowscale", ...args];
    const program = await buildProgram(argv("nodes"));
    // Act / Assess: a node named help (nodes stop takes names) stays; known topics stay
    expect(helpOfUnknownAsUnknown(program, argv("nodes", "stop", "help", "x"))).toEqual(
      argv("nodes", "stop", "help", "x"),
    );
    expect(helpOfUnknownAsUnknown(program, argv("help", "nodes"))).toEqual(argv("help", "nodes"));
    expect(helpOfUnknownAsUnknown(program, argv("help"))).toEqual(argv("help"));
    expect(helpOfUnknownAsUnknown(program, argv("help", "--json"))).toEqual(argv("help", "--json"));
    expect(helpOfUnknownAsUnknown(program, argv("nodes", "help", "nosuch"))).toEqual(argv("nodes", "nosuch"));
  });
});
