import { z } from "zod";
import { cloudIdSchema, simpleNameSchema } from "../../lib/core/names.js";
import { parseWith } from "../../lib/core/validation.js";
import { ALIBABA_SECRET_FETCHER } from "./alibaba-secret-fetcher.js";
import { NODE_GRES_CONF } from "./bootstrap.js";
import { imdsLockdownLines } from "./imds.js";
import { bootPreamble } from "./preamble.js";
import { shellQuote } from "./shell.js";
import { renderSlurmConfParts } from "./slurm-conf.js";

/**
 * The user-data script that turns a fresh instance into a cluster's Slurm master: install slurmctld,
 * munge and node, fetch the munge key and the agent's HMAC key from AWS Secrets Manager by name (the
 * values are never in the user-data), write slurm.conf (configless, dynamic nodes, one partition per
 * queue), start slurmctld and the NowScale agent. Every value is checked here and single-quoted again
 * where the script uses it.
 *
 * The agent bundle comes from `agentUrl` (an https:// or s3:// URL; the stack's S3 asset by default,
 * lib/infra/agent-bundle.ts), checked against `agentSha256`, or is pre-installed in the image at
 * /opt/nowscale/nowscale-agent.js.
 *
 * With `wakeEventBus`, the agent's watcher (`nowscale-agent watch`, a unit of its own) wakes the scaler
 * through that EventBridge bus when jobs are submitted (docs/agent.md); without it, polling alone.
 */

const simpleName = simpleNameSchema;
const cloudId = cloudIdSchema;
const secretId = z.string().regex(/^[A-Za-z0-9/_+=.@:-]{1,512}$/, { error: "invalid secret id" });

export const masterBootstrapOptionsSchema = z.strictObject({
  clusterId: simpleName,
  region: cloudId,
  mungeKeySecretId: secretId,
  agentKeySecretId: secretId,
  queues: z
    .array(
      z.strictObject({
        name: simpleName,
        defMemPerCpuMiB: z
          .number()
          .int()
          .min(1)
          .max(1 << 30)
          .optional(),
      }),
    )
    .min(1)
    .max(100),
  maxNodeCount: z.number().int().min(1).max(1_000_000).default(1024),
  agentPort: z.number().int().min(1024).max(65_535).default(8787),
  agentUrl: z
    .string()
    .regex(/^(https:\/\/|s3:\/\/)[A-Za-z0-9._~:/?=&%+-]{1,1000}$/, {
      error: "expected an https:// or s3:// URL",
    })
    .optional(),
  /** The bundle's SHA-256 (hex): a downloaded bundle that does not match is refused. */
  agentSha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/, { error: "expected 64 lowercase hex digits" })
    .optional(),
  /** The stack's wake bus (name or ARN): the watcher puts its wakes there. @default no watcher */
  wakeEventBus: z
    .string()
    .regex(/^[A-Za-z0-9._/:-]{1,1600}$/, { error: "expected an event bus name or ARN" })
    .optional(),
  /**
   * Install AWS's SSM agent when the image has none (Debian's images do not): the control plane reaches
   * the master's agent through SSM Run Command.
   */
  installSsmAgent: z.boolean().default(false),
  /**
   * Where the secrets are read: AWS Secrets Manager with the aws CLI, or Tencent Cloud's Secrets Manager
   * (SSM) with the CVM role's temporary key from the metadata service, signed by node itself
   * (tencentSecretFetcher below), so no Tencent CLI is installed and no key is in the user data; or
   * Alibaba Cloud's KMS Secrets Manager with the RAM role's STS key from the metadata service in hardened
   * mode (ALIBABA_SECRET_FETCHER, alibaba-secret-fetcher.ts), likewise without a CLI.
   */
  secretStore: z.enum(["aws-secrets-manager", "tencent-ssm", "alibaba-kms"]).default("aws-secrets-manager"),
  preinstalledMarker: z
    .string()
    .regex(/^(\/[A-Za-z0-9._-]+)+$/)
    .refine((p) => !p.split("/").includes(".."))
    .default("/etc/nowscale/preinstalled"),
});

export type MasterBootstrapOptions = z.input<typeof masterBootstrapOptionsSchema>;

/** The master's bootstrap script. Throws ValidationError naming every bad field; nothing is generated then. */
export function renderMasterBootstrapScript(input: MasterBootstrapOptions): string {
  const o = parseWith(masterBootstrapOptionsSchema, input, "master bootstrap options");
  const q = shellQuote;
  const confParts = renderSlurmConfParts({
    queues: o.queues.map((queue) =>
      queue.defMemPerCpuMiB === undefined
        ? { name: queue.name }
        : { name: queue.name, defMemPerCpuMiB: queue.defMemPerCpuMiB },
    ),
    maxNodeCount: o.maxNodeCount,
  });
  // KMS keeps the munge key as base64 text (SecretData) and the agent's key as text, which is what each
  // line's pipe wants, so the Alibaba fetch takes no field. Its fetcher is defined once, as a function
  // (alibabaFetch), not inlined twice: the user data goes in RunInstances' query string.
  const getSecret = (id: string, field: "SecretBinary" | "SecretString") =>
    o.secretStore === "tencent-ssm"
      ? `NOWSCALE_SECRET_NAME=${q(id)} NOWSCALE_SECRET_FIELD=${field} NOWSCALE_REGION=${q(o.region)} node --input-type=module -e ${q(oneLine(TENCENT_SECRET_FETCHER))}`
      : o.secretStore === "alibaba-kms"
        ? `alibaba_secret ${q(id)}`
        : ["aws", "secretsmanager", "get-secret-value", "--secret-id", id, "--region", o.region]
            .concat(["--query", field, "--output", "text"])
            .map(q)
            .join(" ");
  const cli = o.secretStore === "aws-secrets-manager" ? ["awscli"] : [];
  const download =
    o.agentUrl === undefined
      ? undefined
      : o.agentUrl.startsWith("s3://")
        ? `aws s3 cp ${q(o.agentUrl)} /opt/nowscale/nowscale-agent.js.new --region ${q(o.region)} --only-show-errors`
        : `curl -fsSL --retry 5 --proto '=https' -o /opt/nowscale/nowscale-agent.js.new ${q(o.agentUrl)}`;
  // nowscale-agent: fetch (test/infra/agent-bundle.test.ts runs these lines)
  const fetchAgent =
    download === undefined
      ? `[ -f /opt/nowscale/nowscale-agent.js ] || { log "no agent: set agentUrl or pre-install it"; exit 1; }`
      : [
          download,
          ...(o.agentSha256 === undefined
            ? []
            : [
                `echo ${q(`${o.agentSha256}  /opt/nowscale/nowscale-agent.js.new`)} | sha256sum -c --status || { log "the agent bundle does not match its checksum: refused"; rm -f /opt/nowscale/nowscale-agent.js.new; exit 1; }`,
              ]),
          "mv -f /opt/nowscale/nowscale-agent.js.new /opt/nowscale/nowscale-agent.js",
        ].join("\n");
  const ssmAgent = o.installSsmAgent
    ? `
install_ssm_agent() {
  command -v amazon-ssm-agent >/dev/null && return 0
  snap list amazon-ssm-agent >/dev/null 2>&1 && return 0
  local arch; arch=$(dpkg --print-architecture 2>/dev/null || uname -m)
  case "$arch" in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; esac
  if command -v dpkg >/dev/null; then
    curl -fsSL --retry 5 -o /tmp/amazon-ssm-agent.deb "https://s3.${o.region}.amazonaws.com/amazon-ssm-${o.region}/latest/debian_\${arch}/amazon-ssm-agent.deb"
    dpkg -i /tmp/amazon-ssm-agent.deb
  else
    local pm=dnf; command -v dnf >/dev/null || pm=yum
    "$pm" install -y "https://s3.${o.region}.amazonaws.com/amazon-ssm-${o.region}/latest/linux_\${arch}/amazon-ssm-agent.rpm"
  fi
  systemctl enable --now amazon-ssm-agent
}
log "installing the SSM agent"
install_ssm_agent
`
    : "";

  return `${bootPreamble({
    role: "MASTER",
    title: `NowScale Slurm master bootstrap, generated for cluster ${o.clusterId}.`,
    clusterId: o.clusterId,
    preinstalledMarker: o.preinstalledMarker,
    packages: {
      debian: ["slurmctld", "munge", "nodejs", ...cli, "curl", "ca-certificates", "iptables"],
      rhel: ["slurm-slurmctld", "munge", "nodejs", ...cli, "curl", "iptables"],
    },
    installing: "installing slurmctld, munge and node",
  })}${ssmAgent}
${imdsLockdownLines(METADATA_ADDRESS[o.secretStore])}
${o.secretStore === "alibaba-kms" ? alibabaFetch(o.region) : ""}

log "fetching the munge key"
install -d -m 0700 /etc/munge
(
  umask 077
  ${getSecret(o.mungeKeySecretId, "SecretBinary")} | base64 -d > /etc/munge/munge.key.new
)
[ -s /etc/munge/munge.key.new ] || { log "the munge key secret was empty"; exit 1; }
mv -f /etc/munge/munge.key.new /etc/munge/munge.key
chown -R munge:munge /etc/munge 2>/dev/null || true
chmod 0400 /etc/munge/munge.key
if command -v systemctl >/dev/null; then systemctl enable munge; systemctl restart munge
else
  # No systemd (a container image): as munge.service does, as the munge user, with its run directory.
  install -d -o munge -g munge -m 0755 /run/munge
  runuser -u munge -- munged
fi

log "writing slurm.conf"
MASTER_IP=$(hostname -I | awk '{print $1}')
MASTER_HOST=$(hostname -s)
install -d -m 0755 /etc/slurm /var/spool/slurmctld /var/log/slurm
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=$NOWSCALE_CLUSTER_ID
SlurmctldHost=$MASTER_HOST($MASTER_IP)
AuthType=auth/munge
SlurmUser=slurm
StateSaveLocation=/var/spool/slurmctld
SlurmctldLogFile=/var/log/slurm/slurmctld.log
ProctrackType=proctrack/cgroup
TaskPlugin=task/cgroup,task/affinity
CONF
# Jobs confined to what they were given: their cores, memory and GPUs (ConstrainDevices hides the GPU
# devices a job was not given; bootstrap.ts names them in each GPU node's gres.conf). Configless nodes
# fetch this file from slurmctld with slurm.conf. As ParallelCluster's clusters do. IgnoreSystemdOnFailure:
# a node without systemd's bus (a container, a minimal image) builds its cgroups itself instead of failing.
cat > /etc/slurm/cgroup.conf <<'CONF'
CgroupPlugin=autodetect
ConstrainCores=yes
ConstrainRAMSpace=yes
ConstrainDevices=yes
IgnoreSystemdOnFailure=yes
CONF
cat >> /etc/slurm/slurm.conf <<'CONF'
${confParts}CONF
# Each compute node describes its own GPUs in ${NODE_GRES_CONF} (bootstrap.ts); configless nodes get
# this gres.conf, and the absolute Include is read from each node's own disk. The master keeps an empty one.
cat > /etc/slurm/gres.conf <<'CONF'
Include ${NODE_GRES_CONF}
CONF
[ -e ${NODE_GRES_CONF} ] || : > ${NODE_GRES_CONF}
chown slurm:slurm /var/spool/slurmctld /var/log/slurm 2>/dev/null || true
if command -v systemctl >/dev/null; then systemctl enable slurmctld; systemctl restart slurmctld; else slurmctld; fi

log "installing the NowScale agent"
install -d -m 0755 /opt/nowscale
${fetchAgent}
# The bundle is an ES module: without this, a Node before 20.19 (Debian 12's is 18) reads it as CommonJS.
printf '{"type":"module"}\\n' > /opt/nowscale/package.json
install -d -m 0700 /etc/nowscale
(
  umask 077
  ${getSecret(o.agentKeySecretId, "SecretString")} > /etc/nowscale/agent.key.new
)
[ -s /etc/nowscale/agent.key.new ] || { log "the agent key secret was empty"; exit 1; }
mv -f /etc/nowscale/agent.key.new /etc/nowscale/agent.key
chmod 0400 /etc/nowscale/agent.key
NODE=$(command -v node || echo /usr/bin/node)
if command -v systemctl >/dev/null; then
  cat > /etc/systemd/system/nowscale-agent.service <<UNIT
[Unit]
Description=NowScale agent
After=network-online.target slurmctld.service munge.service
[Service]
Environment=NOWSCALE_AGENT_LISTEN=0.0.0.0:${o.agentPort}
Environment=NOWSCALE_AGENT_KEY_FILE=/etc/nowscale/agent.key
Environment=SLURM_CONF=/etc/slurm/slurm.conf
ExecStart=$NODE /opt/nowscale/nowscale-agent.js serve
Restart=always
RestartSec=5
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
ReadWritePaths=/var/log
StateDirectory=nowscale-agent
StateDirectoryMode=0700
[Install]
WantedBy=multi-user.target
UNIT
  systemctl daemon-reload
  systemctl enable --now nowscale-agent
else
  NOWSCALE_AGENT_LISTEN=0.0.0.0:${o.agentPort} NOWSCALE_AGENT_KEY_FILE=/etc/nowscale/agent.key \\
    NOWSCALE_AGENT_STATE_DIR=/var/lib/nowscale-agent SLURM_CONF=/etc/slurm/slurm.conf nohup "$NODE" /opt/nowscale/nowscale-agent.js serve >>/var/log/nowscale-agent.log 2>&1 &
fi
${o.wakeEventBus === undefined ? "" : watcherLines(o.clusterId, o.wakeEventBus, o.region)}log "done"
`;
}

/**
 * The agent's watcher (agent/watch.ts): a unit of its own, so a watcher that fails never takes the agent's
 * API down with it. It reads squeue as root (SLURM_CONF) and signs its wakes with the instance role's
 * credentials from the metadata service, which the lockdown above keeps for root.
 */
function watcherLines(clusterId: string, bus: string, region: string): string {
  // Allow-listed by the schema and quoted again: systemd's ExecStart reads single quotes as the shell does.
  const args = ["watch", "--cluster-id", clusterId, "--event-bus", bus, "--region", region]
    .map(shellQuote)
    .join(" ");
  return `log "starting the agent's watcher (wakes the scaler on new jobs)"
if command -v systemctl >/dev/null; then
  cat > /etc/systemd/system/nowscale-agent-watch.service <<UNIT
[Unit]
Description=NowScale agent watcher (wakes the scaler when jobs are submitted)
After=network-online.target slurmctld.service nowscale-agent.service
[Service]
Environment=SLURM_CONF=/etc/slurm/slurm.conf
ExecStart=$NODE /opt/nowscale/nowscale-agent.js ${args}
Restart=always
RestartSec=5
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
[Install]
WantedBy=multi-user.target
UNIT
  systemctl daemon-reload
  systemctl enable --now nowscale-agent-watch
else
  SLURM_CONF=/etc/slurm/slurm.conf nohup "$NODE" /opt/nowscale/nowscale-agent.js ${args} >>/var/log/nowscale-agent-watch.log 2>&1 &
fi
`;
}

/** The Alibaba fetcher as a shell function of the secret's name: `alibaba_secret NAME` prints its value. */
const alibabaFetch = (region: string) =>
  `alibaba_secret() { NOWSCALE_SECRET_NAME="$1" NOWSCALE_REGION=${shellQuote(region)} node --input-type=module -e ${shellQuote(oneLine(ALIBABA_SECRET_FETCHER))}; }`;

/** The fetcher on one line (each of its statements ends with ';'), so the script's line is one command. */
const oneLine = (js: string) =>
  js
    .trim()
    .split("\n")
    .map((l) => l.trim())
    .join(" ");

/**
 * Each secret store's cloud's metadata service, where the instance role's key is: kept from jobs as AWS's
 * is (metadata.tencentyun.com is 169.254.0.23; Alibaba's is 100.100.100.200).
 */
const METADATA_ADDRESS = {
  "aws-secrets-manager": "169.254.169.254",
  "tencent-ssm": "169.254.0.23",
  "alibaba-kms": "100.100.100.200",
} as const;

/**
 * Reads one secret from Tencent Cloud's Secrets Manager on a CVM instance: the CAM role's temporary key
 * from the metadata service, a TC3-HMAC-SHA256 signed GetSecretValue to SSM's internal endpoint (reached
 * from the VPC without a NAT gateway), the field (SecretBinary is base64, as the munge key's pipe wants)
 * on stdout. The secret's name, field and region come from the environment, never from the script's text.
 * NOWSCALE_TENCENT_METADATA and NOWSCALE_TENCENT_SSM_ENDPOINT exist for tests (the loopback simulator).
 */
export const TENCENT_SECRET_FETCHER = `
import { createHash, createHmac } from "node:crypto";
const env = process.env;
const meta = (env.NOWSCALE_TENCENT_METADATA || "http://metadata.tencentyun.com") + "/latest/meta-data/cam/security-credentials/";
const endpoint = env.NOWSCALE_TENCENT_SSM_ENDPOINT || "https://ssm.internal.tencentcloudapi.com";
const get = async (url) => { const r = await fetch(url); if (!r.ok) throw new Error(url + ": HTTP " + r.status); return r; };
const role = (await (await get(meta)).text()).trim().split("\\n")[0];
const c = await (await get(meta + role)).json();
const body = JSON.stringify({ SecretName: env.NOWSCALE_SECRET_NAME, VersionId: "v1" });
const ts = Math.floor(Date.now() / 1000);
const date = new Date(ts * 1000).toISOString().slice(0, 10);
const host = new URL(endpoint).hostname;
const sha = (s) => createHash("sha256").update(s).digest("hex");
const mac = (k, m) => createHmac("sha256", k).update(m).digest();
const canonical = ["POST", "/", "", "content-type:application/json\\nhost:" + host + "\\n", "content-type;host", sha(body)].join("\\n");
const scope = date + "/ssm/tc3_request";
const toSign = ["TC3-HMAC-SHA256", String(ts), scope, sha(canonical)].join("\\n");
const signature = createHmac("sha256", mac(mac(mac("TC3" + c.TmpSecretKey, date), "ssm"), "tc3_request")).update(toSign).digest("hex");
const res = await fetch(endpoint, { method: "POST", body, headers: {
  "Content-Type": "application/json", "X-TC-Action": "GetSecretValue", "X-TC-Version": "2019-09-23",
  "X-TC-Timestamp": String(ts), "X-TC-Region": env.NOWSCALE_REGION, "X-TC-Token": c.Token,
  Authorization: "TC3-HMAC-SHA256 Credential=" + c.TmpSecretId + "/" + scope + ", SignedHeaders=content-type;host, Signature=" + signature,
} });
const answer = (await res.json()).Response ?? {};
if (answer.Error) { console.error("SSM GetSecretValue: " + answer.Error.Code); process.exit(1); }
process.stdout.write(answer[env.NOWSCALE_SECRET_FIELD] ?? "");
`;
