import { existsSync } from "node:fs";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runCommand } from "../../../../scheduler-plugins/slurm/exec.js";

/**
 * A throw-away certificate authority per instance and one server certificate for the cloud API host
 * names the instance's hosts file points at the emulators. The CLIs and SDKs in the instance verify TLS
 * as they do on the cloud, against a bundle of the system's CAs plus this one (AWS_CA_BUNDLE etc.).
 * Made with openssl(1); the CA's key is deleted once the certificate is signed.
 */
export interface ServerTls {
  key: string;
  cert: string;
  /** The system's CAs plus this CA: what the instance's clients trust. */
  bundleFile: string;
}

const SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";
const HOST = /^[a-z0-9][a-z0-9.-]{0,252}$/;

export async function makeServerTls(dir: string, hostNames: readonly string[]): Promise<ServerTls> {
  for (const h of hostNames) if (!HOST.test(h)) throw new TypeError(`invalid host name "${h.slice(0, 80)}"`);
  const f = (name: string) => join(dir, name);
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await openssl([
    "req",
    "-x509",
    ...ec,
    "-keyout",
    f("ca.key"),
    "-out",
    f("ca.pem"),
    "-days",
    "7",
    "-subj",
    "/CN=NowScale local instance CA",
  ]);
  await openssl([
    "req",
    ...ec,
    "-keyout",
    f("server.key"),
    "-out",
    f("server.csr"),
    "-subj",
    "/CN=nowscale-instance-endpoints",
  ]);
  await writeFile(f("server.ext"), `subjectAltName=${hostNames.map((h) => `DNS:${h}`).join(",")}\n`);
  await openssl([
    "x509",
    "-req",
    "-in",
    f("server.csr"),
    "-CA",
    f("ca.pem"),
    "-CAkey",
    f("ca.key"),
    "-CAcreateserial",
    "-out",
    f("server.pem"),
    "-days",
    "7",
    "-extfile",
    f("server.ext"),
  ]);
  await rm(f("ca.key"), { force: true });
  const ca = await readFile(f("ca.pem"), "utf8");
  const system = existsSync(SYSTEM_BUNDLE) ? await readFile(SYSTEM_BUNDLE, "utf8") : "";
  await writeFile(f("ca-bundle.pem"), `${system}\n${ca}`);
  return {
    key: await readFile(f("server.key"), "utf8"),
    cert: await readFile(f("server.pem"), "utf8"),
    bundleFile: f("ca-bundle.pem"),
  };
}

async function openssl(args: string[]): Promise<void> {
  const r = await runCommand("openssl", args, { timeoutMs: 30_000 });
  if (r.code !== 0)
    throw new Error(`openssl ${args[0]} failed: ${(r.stderr || r.error || "").trim().slice(0, 300)}`);
}
