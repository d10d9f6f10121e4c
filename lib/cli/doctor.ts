import { spawnSync } from "node:child_process";
import { statSync } from "node:fs";
import { findProgram, LOCAL_PACKAGES } from "../local/dependencies.js";

/**
 * `nowscale doctor` (HPC-NOW's `envcheck`): what this machine needs to reach a deployed NowScale and to
 * run the local mode, one line per check with ok or fail and, when it fails, what to do. Credentials are
 * only said to be found or not: their values are never read into the answer.
 */

export interface Check {
  name: string;
  ok: boolean;
  /** What was found (ok) or what is wrong (fail). */
  detail: string;
  /** What to do about a failure. */
  fix?: string;
  /**
   * The check does not apply: nothing of it is set up on this machine (a local-only machine's AWS
   * checks). `ok` is false, yet it does not fail the doctor; shown as "n/a".
   */
  notConfigured?: boolean;
}

/** The facts the checks read, so tests can give their own. */
export interface Probes {
  /** Resolves when the default AWS credential chain finds credentials; rejects with why not. */
  credentials: () => Promise<void>;
  /** The region the AWS SDK would use (env, profile); rejects when none is set. */
  region: () => Promise<string>;
  /** The deployed API's answer to GET /clusters, or a rejection saying why it did not answer. */
  api: (() => Promise<{ clusters: unknown[] }>) | undefined;
  /** Where the API is, for the messages. */
  endpoint: string | undefined;
  uid: () => number;
  /** The path of a program on PATH (or /usr/sbin, /sbin), or undefined. */
  which: (program: string) => string | undefined;
  isDirectory: (path: string) => boolean;
  /** Whether `ip netns list` runs (network namespaces usable). */
  netns: () => { ok: boolean; error?: string };
}

const NO_API_NAMED = "no deployed API named";

export async function cloudChecks(
  p: Pick<Probes, "credentials" | "region" | "api" | "endpoint">,
): Promise<Check[]> {
  const checks: Check[] = [];
  try {
    await p.credentials();
    checks.push({ name: "credentials", ok: true, detail: "AWS credentials found (the default chain)" });
  } catch (error) {
    checks.push({
      name: "credentials",
      ok: false,
      detail: `no AWS credentials: ${firstLine(error)}`,
      fix: 'run "aws configure" or "aws sso login", or set AWS_PROFILE (the deployed API takes SigV4-signed requests)',
    });
  }
  try {
    const region = await p.region();
    checks.push({ name: "region", ok: true, detail: region });
  } catch (error) {
    checks.push({
      name: "region",
      ok: false,
      detail: `no region: ${firstLine(error)}`,
      fix: "set AWS_REGION, or region in your AWS profile, to the stack's region",
    });
  }
  if (p.api === undefined || p.endpoint === undefined) {
    checks.push({
      name: "stack",
      ok: false,
      detail: NO_API_NAMED,
      fix: "pass --endpoint or set NOWSCALE_ENDPOINT to the stack's ApiUrl output (npx cdk deploy prints it; docs/deploy.md)",
    });
  } else {
    try {
      const answer = await p.api();
      checks.push({
        name: "stack",
        ok: true,
        detail: `the API at ${p.endpoint} answers (${answer.clusters.length} cluster(s))`,
      });
    } catch (error) {
      checks.push({
        name: "stack",
        ok: false,
        detail: `the API at ${p.endpoint} does not answer: ${firstLine(error)}`,
        fix: "check the URL (the stack's ApiUrl output), that the stack is deployed in this account and region (npx cdk deploy), and that your principal may call execute-api:Invoke on it",
      });
    }
  }
  return checks;
}

export function localChecks(p: Pick<Probes, "uid" | "which" | "isDirectory" | "netns">): Check[] {
  const checks: Check[] = [];
  const uid = p.uid();
  checks.push(
    uid === 0
      ? { name: "root", ok: true, detail: "running as root" }
      : {
          name: "root",
          ok: false,
          detail: `running as uid ${uid}`,
          fix: "the local mode needs root (network namespaces, munged, slurmd): run it with sudo",
        },
  );
  // Every program `local up` needs (its package check's own list), so doctor passes only where it can start.
  for (const { pkg, program } of LOCAL_PACKAGES) {
    const path = p.which(program);
    checks.push(
      path === undefined
        ? {
            name: program,
            ok: false,
            detail: "not found",
            fix: `apt-get install ${pkg} (or "nowscale local up --install-deps")`,
          }
        : { name: program, ok: true, detail: path },
    );
  }
  checks.push(
    p.isDirectory("/run/munge")
      ? { name: "/run/munge", ok: true, detail: "exists" }
      : {
          name: "/run/munge",
          ok: false,
          detail: "missing",
          fix: "install munge (its package creates it) or: install -d -o munge -g munge -m 0755 /run/munge",
        },
  );
  const netns = p.netns();
  checks.push(
    netns.ok
      ? { name: "ip netns", ok: true, detail: "network namespaces usable" }
      : {
          name: "ip netns",
          ok: false,
          detail: netns.error ?? "ip netns list failed",
          fix: "apt-get install iproute2, and run as root on a kernel with network namespaces (a container needs CAP_SYS_ADMIN and CAP_NET_ADMIN)",
        },
  );
  return checks;
}

/**
 * The AWS checks of a machine that uses the local mode only: when no credentials were found and no
 * deployed API is named, but a local mode's state exists (`localState`: its directory), the AWS checks
 * are reported "not configured" rather than failed, and the answer's `note` suggests --local. Otherwise
 * the checks as they are, and no note.
 */
export function cloudChecksOnLocalMachine(
  cloud: readonly Check[],
  localState: string | undefined,
): { checks: Check[]; note?: string } {
  const failed = (name: string) => cloud.some((c) => c.name === name && !c.ok);
  const stackNamed = cloud.some((c) => c.name === "stack" && c.detail !== NO_API_NAMED);
  if (localState === undefined || !failed("credentials") || stackNamed) return { checks: [...cloud] };
  return {
    checks: cloud.map((c) =>
      c.ok
        ? c
        : {
            name: c.name,
            ok: false,
            notConfigured: true,
            detail: `not configured (${c.detail}): this machine runs the local mode only`,
          },
    ),
    note: `no AWS credentials or deployed stack configured, and a local mode's state is in ${localState}: the AWS checks are not configured, not failed (run "nowscale doctor --local" for the local mode's checks only; docs/deploy.md to reach a deployed stack)`,
  };
}

/** True when a check fails the doctor (exit 1): failed, and applying to this machine. */
export function failsDoctor(c: Check): boolean {
  return !c.ok && c.notConfigured !== true;
}

/** One line per check: "ok    name  detail", "n/a   name  detail" or "fail  name  detail: fix". */
export function formatChecks(checks: readonly Check[]): string {
  const width = Math.max(...checks.map((c) => c.name.length));
  return checks
    .map((c) => {
      const label = c.ok ? "ok  " : c.notConfigured === true ? "n/a " : "fail";
      const head = `${label}  ${c.name.padEnd(width)}  ${c.detail}`;
      return c.ok || c.fix === undefined ? head : `${head}\n      ${"".padEnd(width)}  → ${c.fix}`;
    })
    .join("\n");
}

/** The real machine's facts (everything but the cloud's, which the command wires). */
export function machineProbes(): Pick<Probes, "uid" | "which" | "isDirectory" | "netns"> {
  return {
    uid: () => process.getuid?.() ?? -1,
    which: findProgram,
    isDirectory: (path) => {
      try {
        return statSync(path).isDirectory();
      } catch {
        return false;
      }
    },
    netns: () => {
      const r = spawnSync("ip", ["netns", "list"], { encoding: "utf8", timeout: 10_000 });
      if (r.error !== undefined) return { ok: false, error: `ip: ${r.error.message}` };
      if (r.status !== 0)
        return { ok: false, error: (r.stderr || `status ${r.status}`).trim().slice(0, 200) };
      return { ok: true };
    },
  };
}

function firstLine(error: unknown): string {
  return String((error as Error)?.message ?? error)
    .split("\n")[0]
    ?.slice(0, 200) as string;
}
