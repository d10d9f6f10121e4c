import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";

/**
 * The Debian packages the local mode needs, and one program each provides: Slurm and munge, the
 * namespaces (ip, nsenter, iptables for the instance endpoints' NAT), the instances' TLS certificate
 * (openssl) and what the AWS compute user data every local node boots from calls (aws, curl, python3).
 * The one list: `local up` installs from it and `doctor --local` checks each of its programs.
 */
export const LOCAL_PACKAGES: readonly { pkg: string; program: string }[] = [
  { pkg: "slurm-wlm", program: "slurmctld" },
  { pkg: "slurm-wlm", program: "slurmd" },
  { pkg: "slurm-wlm", program: "sbatch" },
  { pkg: "munge", program: "munged" },
  { pkg: "iproute2", program: "ip" },
  { pkg: "util-linux", program: "nsenter" },
  { pkg: "iptables", program: "iptables" },
  { pkg: "openssl", program: "openssl" },
  { pkg: "awscli", program: "aws" },
  { pkg: "curl", program: "curl" },
  { pkg: "python3", program: "python3" },
];

/**
 * Where `program` is installed: the first match on PATH, then the system directories (root's programs
 * live in sbin, often not on a user's PATH); undefined when nowhere. `local up` and `doctor --local`
 * both look here, so they agree on what is missing.
 */
export function findProgram(program: string): string | undefined {
  const dirs = (process.env.PATH ?? "").split(":").concat(["/usr/sbin", "/sbin", "/usr/bin", "/bin"]);
  for (const d of dirs) if (d !== "" && existsSync(join(d, program))) return join(d, program);
  return undefined;
}

function onPath(program: string): boolean {
  return findProgram(program) !== undefined;
}

/**
 * The packages whose programs are missing (each named once), empty when all are there. `has` says
 * whether a program is installed (this machine's PATH; a test gives another machine's).
 */
export function missingPackages(has: (program: string) => boolean = onPath): string[] {
  return [...new Set(LOCAL_PACKAGES.filter((p) => !has(p.program)).map((p) => p.pkg))];
}

/** The command a user runs to install `packages`. */
export function installCommand(packages: readonly string[]): string {
  return `apt-get update && apt-get install -y --no-install-recommends ${packages.join(" ")}`;
}

/**
 * Installs the packages with apt-get (root, Debian/Ubuntu), streaming apt's output to `out`.
 * Rejects with the command to run by hand when apt-get is missing or fails.
 */
export async function installPackages(
  packages: readonly string[],
  out: NodeJS.WritableStream,
): Promise<void> {
  if (packages.length === 0) return;
  if (!onPath("apt-get"))
    throw new Error(`apt-get is not available: install ${packages.join(", ")} with this system's tools`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  for (const args of [
    ["update", "-qq"],
    ["install", "-y", "-qq", "--no-install-recommends", ...packages],
  ]) {
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn("apt-get", args, { env, stdio: ["ignore", "pipe", "pipe"] });
      child.stdout.pipe(out, { end: false });
      child.stderr.pipe(out, { end: false });
      child.on("error", () => resolve(null));
      child.on("close", resolve);
    });
    if (code !== 0)
      throw new Error(`apt-get ${args[0]} failed (status ${code}); run: ${installCommand(packages)}`);
  }
}
