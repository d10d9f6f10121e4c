import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, copyFile, mkdir, readFile, realpath, rename, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { SIMPLE_NAME, SIMPLE_NAME_HINT } from "../lib/core/names.js";
import { MIN_KEY_BYTES } from "../lib/ports/agent-signing.js";
import {
  checkAttachSetup,
  controllerAddress,
  renderAttachConf,
} from "../scheduler-plugins/slurm/attach-checks.js";
import { SlurmClient } from "../scheduler-plugins/slurm/client.js";
import { SlurmUnavailableError } from "../scheduler-plugins/slurm/errors.js";
import { collectSlurmSetup } from "../scheduler-plugins/slurm/setup.js";
import { AGENT_VERSION } from "./version.js";

/**
 * `nowscale-agent install`: the one command that readies an existing Slurm master for `nowscale cluster
 * attach` (docs/attach.md). Run as root on the master, with the bundle it is run from:
 *
 *   node nowscale-agent.js install --partitions burst,gpu --listen 10.0.0.5:8787
 *
 * 1. copies the bundle to /opt/nowscale/nowscale-agent.js;
 * 2. the signing key: read from the cloud's secret store (`--key-secret`, AWS Secrets Manager through the
 *    AWS CLI and the machine's credentials), kept when /etc/nowscale/agent.key exists, else generated
 *    (48 random bytes, base64). Written 0400; printed only with `--print-key`: otherwise the command that
 *    stores it in Secrets Manager from the file is printed, so it never passes through a terminal or log;
 * 3. writes the systemd unit and, where systemd runs, enables and starts it;
 * 4. reads Slurm's setup (read-only) and prints what `attach` will check: the slurm.conf lines that are
 *    missing for the partitions (a NodeSet per partition, configless, MaxNodeCount), or "ready".
 * Running it again changes nothing that is already in place (the key is kept).
 * Exit: 0 installed and ready, 3 installed but slurm.conf needs the printed lines, 2 installed but
 * slurmctld did not answer, 64 bad usage, 1 any other failure.
 */

export interface InstallOptions {
  partitions: string[];
  /** Where the agent listens: an address the control plane reaches. */
  listen: string;
  /** Read the key from this Secrets Manager secret instead of generating one. */
  keySecret?: string;
  printKey: boolean;
  /** slurm.conf of the master. @default SLURM_CONF, else /etc/slurm/slurm.conf */
  slurmConf: string;
  /** Install below this directory instead of / (a test, or an image being built). */
  root: string;
  /** Write everything, start nothing. */
  noStart: boolean;
  /** The bundle to install. @default the file this code runs from, when it is the bundle */
  bundle?: string;
}

/** The secret names the IAM policies of the stack read (lib/infra/permissions.ts: `nowscale/*`). */
const SECRET_ID = /^[A-Za-z0-9/_+=.@:-]{1,512}$/;
const LISTEN = /^(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]{1,253}):(\d{1,5})$/;

/** Parses and checks the install command's options; throws TypeError naming the option. */
export function installOptions(values: Record<string, string | boolean | undefined>): InstallOptions {
  const text = (name: string) => {
    const v = values[name];
    return typeof v === "string" ? v : undefined;
  };
  const partitions = (text("partitions") ?? "")
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p !== "");
  if (partitions.length === 0)
    throw new TypeError("--partitions: name the partitions NowScale scales (P1,P2,...)");
  for (const p of partitions)
    if (!SIMPLE_NAME.test(p)) throw new TypeError(`--partitions: "${p.slice(0, 80)}": ${SIMPLE_NAME_HINT}`);
  const listen = text("listen") ?? "0.0.0.0:8787";
  const m = LISTEN.exec(listen);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65_535)
    throw new TypeError("--listen: HOST:PORT, an address the control plane reaches");
  const keySecret = text("key-secret");
  if (keySecret !== undefined && !SECRET_ID.test(keySecret))
    throw new TypeError("--key-secret: a Secrets Manager secret name or ARN");
  const root = resolve(text("root") ?? "/");
  const slurmConf = text("slurm-conf") ?? process.env.SLURM_CONF ?? "/etc/slurm/slurm.conf";
  if (!slurmConf.startsWith("/") || /[\s'"\\$`]/.test(slurmConf))
    throw new TypeError("--slurm-conf: an absolute path without spaces or quotes");
  const bundle = text("bundle");
  return {
    partitions,
    listen,
    ...(keySecret === undefined ? {} : { keySecret }),
    printKey: values["print-key"] === true,
    slurmConf,
    root,
    noStart: values["no-start"] === true,
    ...(bundle === undefined ? {} : { bundle }),
  };
}

/** Where the install puts things, below `root`. */
export function installPaths(root: string) {
  return {
    bundle: join(root, "opt/nowscale/nowscale-agent.js"),
    keyFile: join(root, "etc/nowscale/agent.key"),
    unit: join(root, "etc/systemd/system/nowscale-agent.service"),
    stateDir: join(root, "var/lib/nowscale-agent"),
  };
}

/**
 * The systemd unit (agent/nowscale-agent.service's hardening) for these paths. Its Environment= lines and
 * ExecStart are all a supervisor needs to run the agent; the real-Slurm attach test runs it from them.
 */
export function renderAgentUnit(options: {
  node: string;
  bundle: string;
  keyFile: string;
  listen: string;
  slurmConf: string;
  stateDir: string;
}): string {
  for (const [name, value] of Object.entries(options)) {
    if (!/^[A-Za-z0-9._/:[\]-]{1,500}$/.test(value))
      throw new TypeError(`${name}: not a plain path or address`);
  }
  return `# NowScale agent on an attached Slurm master: written by \`nowscale-agent install\` (docs/attach.md).
[Unit]
Description=NowScale agent (reports Slurm demand, drains and removes NowScale's nodes)
Documentation=https://github.com/nowscale/nowscale/blob/main/docs/attach.md
After=network-online.target slurmctld.service munge.service
Wants=network-online.target

[Service]
Type=simple
Environment=NOWSCALE_AGENT_LISTEN=${options.listen}
Environment=NOWSCALE_AGENT_KEY_FILE=${options.keyFile}
Environment=NOWSCALE_AGENT_STATE_DIR=${options.stateDir}
Environment=SLURM_CONF=${options.slurmConf}
ExecStart=${options.node} ${options.bundle} serve
Restart=always
RestartSec=5
User=root
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
ReadWritePaths=/var/log
StateDirectory=nowscale-agent
StateDirectoryMode=0700
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryMax=1G

[Install]
WantedBy=multi-user.target
`;
}

/** Runs the install; `out` gets the lines for the person at the terminal. Resolves with the exit code. */
export async function runInstall(options: InstallOptions, out: (line: string) => void): Promise<number> {
  const paths = installPaths(options.root);
  const bundle = await bundleToInstall(options.bundle);
  await mkdir(dirname(paths.bundle), { recursive: true, mode: 0o755 });
  if ((await realpath(bundle)) !== (await realpath(paths.bundle).catch(() => ""))) {
    await copyFile(bundle, `${paths.bundle}.new`);
    await chmod(`${paths.bundle}.new`, 0o755);
    await rename(`${paths.bundle}.new`, paths.bundle);
  }
  out(`agent ${AGENT_VERSION} installed: ${paths.bundle}`);

  await mkdir(dirname(paths.keyFile), { recursive: true, mode: 0o700 });
  await chmod(dirname(paths.keyFile), 0o700);
  const keySource = await writeKey(options, paths.keyFile);
  out(`signing key ${keySource}: ${paths.keyFile} (0400)`);
  if (options.printKey) {
    out(`signing key (keep it secret): ${(await readFile(paths.keyFile, "utf8")).trim()}`);
  } else if (options.keySecret === undefined) {
    out("store it where the control plane reads it (the key itself is never printed):");
    out(
      `  aws secretsmanager create-secret --name nowscale/attached/NAME/agent-key --secret-string file://${paths.keyFile} ` +
        "--tags Key=nowscale:managed,Value=true Key=nowscale:secret-kind,Value=agent-hmac-key",
    );
  }

  await mkdir(dirname(paths.unit), { recursive: true, mode: 0o755 });
  await writeFile(
    paths.unit,
    renderAgentUnit({
      node: process.execPath,
      bundle: paths.bundle,
      keyFile: paths.keyFile,
      listen: options.listen,
      slurmConf: options.slurmConf,
      stateDir: paths.stateDir,
    }),
    { mode: 0o644 },
  );
  out(`systemd unit: ${paths.unit}`);
  const systemd = options.root === "/" && existsSync("/run/systemd/system");
  if (!options.noStart && systemd) {
    await run("systemctl", ["daemon-reload"]);
    await run("systemctl", ["enable", "--now", "nowscale-agent"]);
    await run("systemctl", ["restart", "nowscale-agent"]);
    out(`agent started: listening on ${options.listen} (systemctl status nowscale-agent)`);
  } else {
    out(
      systemd
        ? "not started (--no-start): systemctl enable --now nowscale-agent"
        : `not started (no systemd here): run its ExecStart with its Environment= lines, as ${paths.unit} says`,
    );
  }

  const client = new SlurmClient({ env: { ...process.env, SLURM_CONF: options.slurmConf } });
  let setup: Awaited<ReturnType<typeof collectSlurmSetup>>;
  try {
    setup = await collectSlurmSetup(client, AGENT_VERSION, {
      env: { ...process.env, SLURM_CONF: options.slurmConf },
    });
  } catch (error) {
    if (error instanceof SlurmUnavailableError) {
      out(`Slurm not checked: ${error.message}; run this command again once slurmctld answers`);
      return 2;
    }
    throw error;
  }
  const check = checkAttachSetup(setup, options.partitions);
  const address = controllerAddress(setup);
  out(
    `Slurm ${setup.slurmVersion}, slurmctld at ${address ?? setup.controllers[0]?.host ?? "?"}:${setup.slurmctldPort}` +
      (address === undefined ? " (not an IPv4 address: give master.slurmctldAddress when attaching)" : ""),
  );
  for (const join of check.joins)
    out(`partition ${join.partition}: takes NowScale's nodes through ${join.by}`);
  for (const note of check.notes) out(`note: ${note.message}`);
  if (check.errors.length === 0) {
    out(
      `ready: attach partitions ${options.partitions.join(", ")} (nowscale cluster attach, docs/attach.md)`,
    );
    return 0;
  }
  for (const error of check.errors) out(`missing: ${error.message}`);
  const lines = renderAttachConf(setup, options.partitions);
  if (lines.length > 0) {
    out(`add to ${setup.conf?.path ?? options.slurmConf}:`);
    out("--- slurm.conf ---");
    for (const line of lines) out(line);
    out("--- end ---");
    out(
      "then restart slurmctld (MaxNodeCount and SlurmctldParameters are read at its start; NodeSet and partition lines also by scontrol reconfigure), and run this command again",
    );
  }
  return 3;
}

/** The bundle file: `--bundle`, or the file this code runs from when that is the one-file bundle. */
async function bundleToInstall(given: string | undefined): Promise<string> {
  if (given !== undefined) return resolve(given);
  const self = fileURLToPath(import.meta.url);
  if (basename(self) !== "nowscale-agent.js")
    throw new TypeError(
      "--bundle: run install from the bundle (node nowscale-agent.js install ...) or name it",
    );
  return self;
}

/** Writes the key file (0400) unless it is there; says where the key came from. Never logs it. */
async function writeKey(options: InstallOptions, keyFile: string): Promise<string> {
  let key: string;
  let source: string;
  if (options.keySecret !== undefined) {
    key = (
      await run("aws", [
        "secretsmanager",
        "get-secret-value",
        "--secret-id",
        options.keySecret,
        "--query",
        "SecretString",
        "--output",
        "text",
      ])
    ).trim();
    source = `read from Secrets Manager secret ${options.keySecret}`;
  } else if (existsSync(keyFile)) {
    key = (await readFile(keyFile, "utf8")).trim();
    source = "kept";
  } else {
    key = randomBytes(48).toString("base64");
    source = "generated";
  }
  if (Buffer.byteLength(key, "utf8") < MIN_KEY_BYTES)
    throw new Error(`the signing key (${source}) is shorter than ${MIN_KEY_BYTES} bytes`);
  if (source !== "kept") {
    await writeFile(`${keyFile}.new`, `${key}\n`, { mode: 0o400 });
    await rename(`${keyFile}.new`, keyFile);
  }
  await chmod(keyFile, 0o400);
  return source;
}

/** A command with an argument array (no shell); rejects with its stderr's first line. */
function run(file: string, args: string[]): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    execFile(file, args, { timeout: 60_000, encoding: "utf8" }, (error, stdout, stderr) => {
      if (error === null) return resolvePromise(stdout);
      const detail = (stderr || error.message).trim().split("\n")[0]?.slice(0, 300) ?? "";
      reject(new Error(`${file} ${args[0] ?? ""} failed: ${detail}`));
    });
  });
}
