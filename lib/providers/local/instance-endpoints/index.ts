import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { Socket } from "node:net";
import { join } from "node:path";
import { runCommand } from "../../../../scheduler-plugins/slurm/exec.js";
import { CLOUD_ID, SIMPLE_NAME } from "../../../core/names.js";
import { netnsPath } from "../netns.js";
import { type ApiRequest, alibabaApis, awsApis, tencentApis } from "./apis.js";
import { listenInNamespace, type NamespaceListener } from "./listen-in-netns.js";
import { metadataHandler } from "./metadata.js";
import { makeServerTls } from "./tls.js";

/**
 * What a cloud instance reaches at boot, served inside the local instance's own network namespace:
 * the cloud's metadata service on its own address (added to the namespace's loopback) and the secret
 * store (and, for AWS, S3) behind the real API host names, which the instance's own hosts file points
 * at the namespace's loopback. The scripts' text stays the cloud's: the CLI calls they make
 * (`aws secretsmanager get-secret-value`, `aws s3 cp`, curl to the metadata address) reach these
 * emulators because of the hosts file and a CA bundle the instance's environment names
 * (AWS_CA_BUNDLE, CURL_CA_BUNDLE, SSL_CERT_FILE). Debian 12's awscli (2.9.19) predates
 * AWS_ENDPOINT_URL (2.13), hence host names and TLS rather than an endpoint override.
 *
 * The caller runs the instance's processes with `env` and binds `hostsFile` over /etc/hosts in the
 * instance's private mount namespace (lib/providers/local/instance-boot.ts does both).
 */

export type InstanceCloud = "aws" | "tencent" | "alibaba";

export interface InstanceIdentity {
  cloud: InstanceCloud;
  /** The instance id the metadata service answers (the local Slurm node name). */
  instanceId: string;
  instanceType: string;
  zone: string;
  region: string;
  privateIp: string;
  /** AWS's HttpPutResponseHopLimit: the IP TTL of the IMDSv2 token answer. @default 1 */
  hopLimit?: number;
}

/** A secret as the cloud's secret store holds it: a binary (AWS SecretBinary, KMS binary) or a text. */
export interface InstanceSecret {
  name: string;
  binary?: Buffer;
  text?: string;
}

/** An S3 object the instance may fetch (`aws s3 cp s3://bucket/key`). */
export interface InstanceObject {
  bucket: string;
  key: string;
  body: Buffer;
}

export interface InstanceEndpoints {
  /** Environment for the instance's processes: the CA bundle, nothing else of the host's. */
  env: Record<string, string>;
  /** The instance's /etc/hosts: the host's entries plus the cloud API names on the namespace loopback. */
  hostsFile: string;
  /** The instance's own metadata address (for tests: what it is reached on). */
  metadataAddress: string;
  /** Every request served, as "METHOD host path" (no bodies, no tokens), oldest first. */
  requests: readonly string[];
  /** Stops serving; the namespace's addresses go with the namespace. */
  close(): Promise<void>;
}

/** Where each cloud's metadata service answers (Tencent's host name resolves to 169.254.0.23). */
export const METADATA_ADDRESS: Record<InstanceCloud, string> = {
  aws: "169.254.169.254",
  tencent: "169.254.0.23",
  alibaba: "100.100.100.200",
};
const TENCENT_METADATA_HOST = "metadata.tencentyun.com";
/** The cloud APIs answer on the namespace's loopback (the instance's hosts file says so). */
const API_ADDRESS = "127.0.0.1";
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/** Starts the endpoints for one instance. Throws naming the bad field (nothing is started then). */
export async function serveInstanceEndpoints(
  netns: string,
  identity: InstanceIdentity,
  secrets: readonly InstanceSecret[],
  objects: readonly InstanceObject[] = [],
  options: { dir: string },
): Promise<InstanceEndpoints> {
  checkIdentity(identity);
  for (const o of objects)
    if (!BUCKET.test(o.bucket)) throw new TypeError(`objects: invalid bucket "${o.bucket.slice(0, 80)}"`);
  const hopLimit = identity.hopLimit ?? 1;
  if (!Number.isInteger(hopLimit) || hopLimit < 1 || hopLimit > 64)
    throw new TypeError("hopLimit must be 1 to 64");

  const requests: string[] = [];
  const credentials = {
    accessKeyId: `ASIA${randomBytes(8).toString("hex").toUpperCase()}`,
    secret: randomBytes(24).toString("base64"),
    token: randomBytes(32).toString("base64"),
  };
  const r = identity.region;
  const apiHosts =
    identity.cloud === "aws"
      ? [
          `secretsmanager.${r}.amazonaws.com`,
          "s3.amazonaws.com",
          `s3.${r}.amazonaws.com`,
          ...new Set(
            objects.flatMap((o) => [`${o.bucket}.s3.amazonaws.com`, `${o.bucket}.s3.${r}.amazonaws.com`]),
          ),
        ]
      : identity.cloud === "tencent"
        ? ["ssm.tencentcloudapi.com", `ssm.${r}.tencentcloudapi.com`]
        : [`kms.${r}.aliyuncs.com`, `kms-vpc.${r}.aliyuncs.com`];
  const tls = await makeServerTls(options.dir, apiHosts);
  const metadataAddress = METADATA_ADDRESS[identity.cloud];

  // The namespace's own addresses and, for AWS, the hop limit on the token answer (mangle TTL).
  const inNs = async (args: string[], okWhen?: RegExp) => {
    const res = await runCommand("nsenter", [`--net=${netnsPath(netns)}`, ...args], { timeoutMs: 15_000 });
    if (res.code !== 0 && !(okWhen?.test(res.stderr) ?? false))
      throw new Error(`${args.join(" ")} in ${netns} failed: ${(res.stderr || res.error || "").trim()}`);
  };
  await inNs(["ip", "link", "set", "lo", "up"]);
  await inNs(["ip", "addr", "add", `${metadataAddress}/32`, "dev", "lo"], /File exists/);
  if (identity.cloud === "aws") {
    const rule = [
      "OUTPUT",
      "-s",
      `${metadataAddress}/32`,
      "-p",
      "tcp",
      "--sport",
      "80",
      "-j",
      "TTL",
      "--ttl-set",
      String(hopLimit),
    ];
    await inNs(["iptables", "-t", "mangle", "-A", ...rule]);
  }

  const metadata = metadataHandler(identity, credentials, requests);
  const apis =
    identity.cloud === "aws"
      ? awsApis(identity, credentials, secrets, objects)
      : identity.cloud === "tencent"
        ? tencentApis(identity, credentials, secrets)
        : alibabaApis(identity, credentials, secrets);
  const metadataServer = createHttpServer((req, res) => void metadata(req, res));
  const apiServer = createHttpsServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    void serveApi(req, res, apis, requests);
  });

  let listeners: NamespaceListener[];
  try {
    listeners = await listenInNamespace(netns, [
      [metadataAddress, 80],
      [API_ADDRESS, 443],
    ]);
  } catch (error) {
    metadataServer.close();
    apiServer.close();
    throw error;
  }
  for (const l of listeners) {
    const target = l.port === 80 ? metadataServer : apiServer;
    l.server.on("connection", (socket: Socket) => target.emit("connection", socket));
  }

  const hostsFile = join(options.dir, "hosts");
  const hostHosts = await readFile("/etc/hosts", "utf8").catch(() => "127.0.0.1 localhost\n");
  const ours = [
    `# NowScale local instance ${identity.instanceId}: the cloud's endpoints inside its namespace`,
    `${API_ADDRESS} ${apiHosts.join(" ")}`,
    ...(identity.cloud === "tencent" ? [`${metadataAddress} ${TENCENT_METADATA_HOST}`] : []),
    `${identity.privateIp} ${identity.instanceId}`,
  ];
  await writeFile(hostsFile, `${hostHosts.trimEnd()}\n${ours.join("\n")}\n`, { mode: 0o644 });

  return {
    env: {
      AWS_CA_BUNDLE: tls.bundleFile,
      CURL_CA_BUNDLE: tls.bundleFile,
      SSL_CERT_FILE: tls.bundleFile,
      REQUESTS_CA_BUNDLE: tls.bundleFile,
    },
    hostsFile,
    metadataAddress,
    requests,
    close: async () => {
      for (const l of listeners) l.server.close();
      metadataServer.closeAllConnections();
      apiServer.closeAllConnections();
      await Promise.all([
        new Promise((resolve) => metadataServer.close(resolve)),
        new Promise((resolve) => apiServer.close(resolve)),
      ]);
    },
  };
}

async function serveApi(
  req: IncomingMessage,
  res: ServerResponse,
  apis: (request: ApiRequest) => { status: number; headers?: Record<string, string>; body: Buffer | string },
  requests: string[],
): Promise<void> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 1 << 20) {
      res.writeHead(413).end();
      return;
    }
    chunks.push(chunk as Buffer);
  }
  const host = (req.headers.host ?? "").replace(/:\d+$/, "");
  const url = new URL(req.url ?? "/", "https://local");
  requests.push(`${req.method} ${host} ${url.pathname}`);
  try {
    const answer = apis({
      method: req.method ?? "GET",
      host,
      url,
      headers: req.headers,
      body: Buffer.concat(chunks),
    });
    res.writeHead(answer.status, answer.headers ?? {});
    res.end(req.method === "HEAD" ? undefined : answer.body);
  } catch (error) {
    res.writeHead(500, { "content-type": "text/plain" }).end((error as Error).message);
  }
}

function checkIdentity(i: InstanceIdentity): void {
  if (!["aws", "tencent", "alibaba"].includes(i.cloud))
    throw new TypeError(`identity.cloud: unknown cloud "${String(i.cloud).slice(0, 40)}"`);
  if (!SIMPLE_NAME.test(i.instanceId))
    throw new TypeError(`identity.instanceId: invalid "${i.instanceId.slice(0, 80)}"`);
  for (const field of ["instanceType", "zone", "region"] as const)
    if (!CLOUD_ID.test(i[field]))
      throw new TypeError(`identity.${field}: invalid "${i[field].slice(0, 80)}"`);
  if (!IPV4.test(i.privateIp))
    throw new TypeError(`identity.privateIp: invalid "${i.privateIp.slice(0, 40)}"`);
}
