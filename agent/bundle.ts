import { createHash } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildSync } from "esbuild";

/**
 * The agent as one file for the masters: every dependency bundled, ES module, minified. Its target is
 * the Node the default master image packages (Debian 12's nodejs 18.20, lib/infra/default-image.ts), so
 * the bundle must keep to Node 18's language and APIs; test/infra/agent-bundle.test.ts runs it there.
 */
export const AGENT_NODE_TARGET = "node18";

/** The Node version the bundle is tested under: Debian 12's nodejs package (bookworm-security). */
export const AGENT_TEST_NODE_VERSION = "18.20.4";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Builds the bundle to `outfile` (synchronously: CDK constructs it while synthesizing); returns its SHA-256. */
export function buildAgentBundle(outfile: string): { outfile: string; sha256: string } {
  mkdirSync(dirname(outfile), { recursive: true });
  buildSync({
    entryPoints: [join(ROOT, "agent/cli.ts")],
    bundle: true,
    platform: "node",
    target: AGENT_NODE_TARGET,
    format: "esm",
    minify: true,
    keepNames: true,
    legalComments: "none",
    outfile,
    logLevel: "warning",
  });
  return { outfile, sha256: createHash("sha256").update(readFileSync(outfile)).digest("hex") };
}

// `tsx agent/bundle.ts OUTFILE` (npm run build:agent).
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { outfile, sha256 } = buildAgentBundle(process.argv[2] ?? join(ROOT, "dist/agent/nowscale-agent.js"));
  process.stdout.write(`${outfile}  sha256 ${sha256}\n`);
}
