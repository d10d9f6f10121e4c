import { dirname } from "node:path";
import { gzipSync } from "node:zlib";
import { z } from "zod";
import {
  CLOUD_ID,
  cloudIdSchema,
  FEATURE_NAME,
  FEATURE_NAME_HINT,
  SIMPLE_NAME,
  simpleNameSchema,
} from "../../lib/core/names.js";
import { parseWith } from "../../lib/core/validation.js";
import { MAX_USERS, USER_ID_MAX, USER_ID_MIN, USER_NAME } from "../../lib/ports/cluster-users.js";
import { placementFeatures } from "./features.js";
import { imdsLockdownLines } from "./imds.js";
import { STORAGE_SYNC_INTERVAL_S, storageSyncProgram } from "./node-storage-sync.js";
import { bootPreamble } from "./preamble.js";
import { shellQuote } from "./shell.js";

/**
 * The user-data script that turns a fresh instance into a compute node: install slurmd and munge
 * (unless the image is pre-installed), fetch the munge key from a secret, mount the cluster's storage,
 * run the init scripts, then start `slurmd -Z` with the node's queue, type and zone as features and
 * slurm.conf fetched from slurmctld (configless). Every value is checked against an allow-list here
 * and single-quoted again where the script uses it.
 */

const simpleName = simpleNameSchema;
const cloudId = cloudIdSchema;
const ipv4 = z.ipv4({ error: "expected an IPv4 address" });
const int = (min: number, max: number) => z.number().int().min(min).max(max);
/** Linux's limits (NAME_MAX, PATH_MAX less its NUL): past them mkdir or mount fails on the node. */
export const PATH_SEGMENT_MAX_BYTES = 255;
export const PATH_MAX_BYTES = 4095;

/**
 * An absolute path of plain segments: no "..", no spaces, no shell characters; each segment at most
 * 255 bytes and the whole at most 4095 (ASCII only, so characters are bytes), checked here rather than
 * left to fail at the node's mount.
 */
const localPath = z
  .string()
  .max(PATH_MAX_BYTES, { error: `must be at most ${PATH_MAX_BYTES} bytes (the path length limit)` })
  .regex(/^(\/[A-Za-z0-9._-]+)+\/?$/, {
    error: "expected an absolute path of letters, digits, '.', '_', '-' and '/'",
  })
  .refine((p) => !p.split("/").includes(".."), { error: "must not contain '..'" })
  .superRefine((p, ctx) => {
    const long = p.split("/").find((segment) => segment.length > PATH_SEGMENT_MAX_BYTES);
    if (long !== undefined) {
      ctx.addIssue({
        code: "custom",
        message: `each path segment must be at most ${PATH_SEGMENT_MAX_BYTES} bytes (the file-name limit); one has ${long.length}`,
      });
    }
  });

/** THPC's storage options: CFS (NFS 3.0 / 4.0) and CFS Turbo (Lustre). */
export const storageOptionSchema = z.discriminatedUnion("protocol", [
  z.strictObject({
    protocol: z.enum(["NFS 3.0", "NFS 4.0"]),
    /** host:/path, e.g. 172.30.2.143:/qxt67552/subfolder */
    remotePath: z.string().regex(/^[A-Za-z0-9.-]+:\/[A-Za-z0-9._/-]*$/, { error: "expected host:/path" }),
    localPath,
  }),
  z.strictObject({
    protocol: z.literal("TURBO"),
    /** Lustre NID and file system, e.g. 172.30.2.180@tcp0:/4fe1839b/cfs */
    remotePath: z
      .string()
      .regex(/^[0-9.]+@[a-z]+[0-9]*:\/[A-Za-z0-9._/-]+$/, { error: "expected address@tcpN:/fsname" }),
    localPath,
  }),
]);

/** An init script's URL: https:// or s3://, of characters that need no quoting beyond single quotes. */
export const INIT_SCRIPT_URL = /^(https:\/\/|s3:\/\/)[A-Za-z0-9._~:/?=&%+-]{1,1000}$/;

/** The largest inline init script: boot scripts travel as user data (16 KiB on EC2, base64 here). */
export const INLINE_SCRIPT_MAX_CHARS = 4096;

/**
 * One init script (THPC InitNodeScripts): fetched from `url` (https:// or s3://), or given `inline` as
 * its text. Inline text reaches the node base64-encoded and is written to a file, never spliced into the
 * boot script's shell; it must start with `#!/` as THPC requires, and hold printable ASCII, tabs and
 * newlines only (no control characters that could hide a line from a reviewer).
 */
export const initScriptSchema = z.union([
  z.strictObject({
    url: z.string().regex(INIT_SCRIPT_URL, { error: "expected an https:// or s3:// URL" }),
    timeoutS: int(1, 3600).default(600),
  }),
  z.strictObject({
    inline: z
      .string()
      .max(INLINE_SCRIPT_MAX_CHARS, { error: `at most ${INLINE_SCRIPT_MAX_CHARS} characters` })
      .regex(/^#!\/[^\n]*\n/, { error: "must start with a #!/ interpreter line" })
      .regex(/^[\x20-\x7e\t\n]*$/, { error: "printable ASCII, tabs and newlines only" }),
    timeoutS: int(1, 3600).default(600),
  }),
]);

export type InitScript = z.input<typeof initScriptSchema>;
export type StorageOption = z.input<typeof storageOptionSchema>;

/** Where the munge key comes from: never the user-data itself. */
export const mungeKeySourceSchema = z.discriminatedUnion("source", [
  z.strictObject({
    source: z.literal("aws-secretsmanager"),
    secretId: z.string().regex(/^[A-Za-z0-9/_+=.@:-]{1,512}$/),
    region: cloudId,
  }),
  /**
   * Tencent Cloud SSM GetSecretValue (API 3.0, TC3-HMAC-SHA256), signed with the instance's CAM role
   * credentials from the metadata service; SecretBinary (or SecretString holding the key in base64).
   */
  z.strictObject({
    source: z.literal("tencent-ssm"),
    secretName: z.string().regex(/^[A-Za-z0-9_-]{1,128}$/),
    region: cloudId,
  }),
  /**
   * Alibaba Cloud KMS GetSecretValue (RPC, HMAC-SHA1) on the region's VPC endpoint, signed with the
   * instance's RAM role credentials from the metadata service (token mode); binary or base64 text data.
   */
  z.strictObject({
    source: z.literal("alibaba-kms"),
    secretName: z.string().regex(/^[A-Za-z0-9_/+=.@-]{1,192}$/),
    region: cloudId,
  }),
  /**
   * Any command that prints the key in base64 on stdout, as an argument array, e.g.
   * ["tccli", "ssm", "GetSecretValue", ...] or ["aliyun", "kms", "GetSecretValue", ...] piped through a filter.
   */
  z.strictObject({
    source: z.literal("command"),
    argv: z
      .array(z.string().regex(/^[\x20-\x7e]{1,1000}$/))
      .min(1)
      .max(50),
  }),
]);

/**
 * The node's own gres.conf lines. Compute nodes run configless (`slurmd --conf-server`): slurmd reads the
 * gres.conf slurmctld serves, and in 22.05 a local gres.conf beside it is removed. So the master's
 * gres.conf holds only `Include /etc/slurm/nowscale-node-gres.conf` (master-bootstrap.ts; an absolute Include is read
 * on each node from its own disk, measured on 22.05), and every compute node writes that file before
 * slurmd starts: its GPUs, or nothing (an Include of a missing file would stop slurmd).
 */
export const NODE_GRES_CONF = "/etc/slurm/nowscale-node-gres.conf";

/** Where Slurm's plugins live on the distributions NowScale installs (gpu_nvml.so is looked for there). */
const SLURM_PLUGIN_DIRS = [
  "/usr/lib/x86_64-linux-gnu/slurm-wlm",
  "/usr/lib/aarch64-linux-gnu/slurm-wlm",
  "/usr/lib/x86_64-linux-gnu/slurm",
  "/usr/lib64/slurm",
  "/usr/lib/slurm",
  "/usr/local/lib/slurm",
];

/**
 * Shell that writes the node's gres.conf (NODE_GRES_CONF) for its GPUs, beside the \`Gres=gpu:N\` it
 * declares, so Slurm binds each job to the GPUs it was given (CUDA_VISIBLE_DEVICES; device cgroups with
 * TaskPlugin=task/cgroup and ConstrainDevices=yes):
 * - no GPUs: an empty file;
 * - NVML (libnvidia-ml and Slurm's gpu/nvml plugin on the image): \`NodeName=<node> AutoDetect=nvml\`;
 * - otherwise the device files: \`NodeName=<node> Name=gpu File=/dev/nvidia[0-N-1]\`, after waiting for
 *   them. A device still missing fails the boot: slurmd would not start with a missing File (22.05 stops
 *   after 20 s), and a node registering fewer GPUs than it declares is drained by Slurm, not NowScale.
 * GPU_DEV_DIR, SLURM_PLUGIN_DIRS and the PATH's ldconfig can be overridden (tests run this function).
 */
export function nodeGresCommands(gpus: number, detect: "auto" | "nvml" | "files", waitS: number): string {
  // A CPU node's file is empty: the function below is left out of its script (user data is 16 KiB).
  if (gpus === 0)
    return `log ${shellQuote(`writing ${NODE_GRES_CONF} for 0 GPUs`)}
install -d -m 0755 ${shellQuote(dirname(NODE_GRES_CONF))} && : > ${shellQuote(NODE_GRES_CONF)}
`;
  return `write_node_gres() {
  local gpus=$1 out=$2 detect=$3 dev=\${GPU_DEV_DIR:-/dev} wait_s=$4
  install -d -m 0755 "$(dirname "$out")"
  if [ "$gpus" -eq 0 ]; then : > "$out"; return 0; fi
  if [ "$detect" = auto ]; then
    detect=files
    if ldconfig -p 2>/dev/null | grep -q 'libnvidia-ml.so.1'; then
      local d
      for d in \${SLURM_PLUGIN_DIRS:-${SLURM_PLUGIN_DIRS.join(" ")}}; do
        if [ -e "$d/gpu_nvml.so" ]; then detect=nvml; break; fi
      done
    fi
  fi
  if [ "$detect" = nvml ]; then
    printf 'NodeName=%s AutoDetect=nvml\n' "$NODE_NAME" > "$out.new"
  else
    # nvidia-smi creates the device files when the driver has not yet.
    if command -v nvidia-smi >/dev/null; then nvidia-smi -L >/dev/null 2>&1 || true; fi
    local i waited=0
    for ((i = 0; i < gpus; i++)); do
      while [ ! -e "$dev/nvidia$i" ] && [ "$waited" -lt "$wait_s" ]; do sleep 5; waited=$((waited + 5)); done
      [ -e "$dev/nvidia$i" ] || { log "GPU device $dev/nvidia$i is missing: this node cannot serve Gres=gpu:$gpus"; return 1; }
    done
    if [ "$gpus" -eq 1 ]; then
      printf 'NodeName=%s Name=gpu File=%s/nvidia0\n' "$NODE_NAME" "$dev" > "$out.new"
    else
      printf 'NodeName=%s Name=gpu File=%s/nvidia[0-%d]\n' "$NODE_NAME" "$dev" $((gpus - 1)) > "$out.new"
    fi
  fi
  mv -f "$out.new" "$out"
}
log ${shellQuote(`writing ${NODE_GRES_CONF} for ${gpus} GPU${gpus === 1 ? "" : "s"}`)}
write_node_gres ${gpus} ${shellQuote(NODE_GRES_CONF)} ${detect} ${waitS}
`;
}

/**
 * Where a node learns its own name, type and zone at boot instead of from the options: one launch call
 * starts `count` instances with the same user data, so the name (the instance id, as slurm-gcp names nodes
 * after instances) and the candidate that delivered (type, zone) can only be known on the instance.
 */
export const IDENTITY_SOURCES = ["aws-imds", "tencent-metadata", "alibaba-metadata"] as const;

export const bootstrapOptionsSchema = z
  .strictObject({
    clusterId: simpleName,
    /** The Slurm node name; give either this or `identityFrom`. */
    nodeName: simpleName.optional(),
    /** Read the node name (instance id), instance type and zone from the cloud's metadata service at boot. */
    identityFrom: z.enum(IDENTITY_SOURCES).optional(),
    queue: simpleName,
    instanceType: cloudId,
    zone: cloudId,
    cpus: int(1, 100_000),
    realMemoryMiB: int(1, 1 << 30),
    gpus: int(0, 64).default(0),
    /** The queue's own Slurm features (config `features`), after q_/type_/zone_: what jobs' -C can name. */
    features: z
      .array(z.string().regex(FEATURE_NAME, { error: `invalid feature: ${FEATURE_NAME_HINT}` }))
      .max(32)
      .default([]),
    /** slurmctld's address and port: slurmd fetches slurm.conf from it (SlurmctldParameters=enable_configless). */
    controllerAddress: ipv4,
    controllerPort: int(1, 65_535).default(6817),
    mungeKey: mungeKeySourceSchema,
    storage: z.array(storageOptionSchema).max(20).default([]),
    /** Scripts run before the node joins, with NOWSCALE_NODE_ROLE, NOWSCALE_CLUSTER_ID, NOWSCALE_SCHEDULER_TYPE set. */
    initScripts: z.array(initScriptSchema).max(20).default([]),
    /**
     * The cluster's users (lib/ports/cluster-users.ts), made on the node before it joins with the uid and
     * gid the master gave them, so a job runs as the same user on both. Names and numbers only: a node
     * never gets a password or key.
     */
    users: z
      .array(
        z.strictObject({
          name: z.string().regex(USER_NAME, { error: "invalid user name" }),
          uid: int(USER_ID_MIN, USER_ID_MAX),
          enabled: z.boolean().default(true),
        }),
      )
      .max(MAX_USERS)
      .default([]),
    /** Present on images built with NowScale's packages: installation is skipped. */
    preinstalledMarker: localPath.default("/etc/nowscale/preinstalled"),
    /**
     * How the node's gres.conf names its GPUs: "auto" uses NVML (`AutoDetect=nvml`) where the image has
     * both libnvidia-ml and Slurm's gpu/nvml plugin, else the device files /dev/nvidia0…N-1; "nvml" and
     * "files" force one.
     */
    gpuDetect: z.enum(["auto", "nvml", "files"]).default("auto"),
    /** How long to wait for the GPU device files (the driver creates them as it loads). */
    gpuWaitS: int(0, 3600).default(300),
  })
  .superRefine((o, ctx) => {
    if ((o.nodeName === undefined) === (o.identityFrom === undefined)) {
      ctx.addIssue({
        code: "custom",
        path: ["nodeName"],
        message: "give exactly one of nodeName and identityFrom",
      });
    }
  });

export type BootstrapOptions = z.input<typeof bootstrapOptionsSchema>;

/** The bootstrap script for one node. Throws ValidationError naming every bad field; nothing is generated then. */
export function renderBootstrapScript(input: BootstrapOptions): string {
  const o = parseWith(bootstrapOptionsSchema, input, "bootstrap options");
  const q = shellQuote;
  const features = placementFeatures(
    { queue: o.queue, instanceType: o.instanceType, zone: o.zone },
    o.features,
  );
  const nodeConf = [`CPUs=${o.cpus}`, `RealMemory=${o.realMemoryMiB}`, `Feature=${features.join(",")}`];
  if (o.gpus > 0) nodeConf.push(`Gres=gpu:${o.gpus}`);
  const identity =
    o.identityFrom === undefined
      ? `readonly NODE_NAME=${q(o.nodeName ?? "")}
readonly NODE_CONF=${q(nodeConf.join(" "))}`
      : identityFromMetadata(o.identityFrom, o.queue, o.cpus, o.realMemoryMiB, o.gpus, o.features);
  const nodeLabel = o.nodeName ?? `(instance id from ${o.identityFrom})`;

  return `${bootPreamble({
    role: "COMPUTE",
    title: `NowScale compute node bootstrap, generated for cluster ${o.clusterId}, node ${nodeLabel}.`,
    clusterId: o.clusterId,
    preinstalledMarker: o.preinstalledMarker,
    readonly: [["CONF_SERVER", `${o.controllerAddress}:${o.controllerPort}`]],
    beforeInstall: identity,
    packages: {
      debian: ["slurmd", "munge", "nfs-common", "curl", "ca-certificates", "awscli", "iptables", "python3"],
      rhel: ["slurm-slurmd", "munge", "nfs-utils", "curl", "awscli", "iptables", "python3"],
    },
    installing: "installing slurmd and munge",
  })}
${imdsLockdownLines(metadataAddress(o.identityFrom))}

log "fetching the munge key"
install -d -m 0700 /etc/munge
(
  umask 077
  ${mungeKeyCommand(o.mungeKey)} | base64 -d > /etc/munge/munge.key.new
)
[ -s /etc/munge/munge.key.new ] || { log "the munge key secret was empty"; exit 1; }
mv -f /etc/munge/munge.key.new /etc/munge/munge.key
chown -R munge:munge /etc/munge 2>/dev/null || true
chmod 0400 /etc/munge/munge.key
# Without systemd, munged runs as munge, as its unit and init script run it (as root it refuses the munge-owned dirs).
if command -v systemctl >/dev/null; then systemctl enable munge; systemctl restart munge; else runuser -u munge -- munged; fi
${o.storage.map((s) => mountCommands(s)).join("")}${o.initScripts.map((s, i) => initScriptCommands(s, i)).join("")}
${nodeGresCommands(o.gpus, o.gpuDetect, o.gpuWaitS)}${syncProgramCommands()}${usersCommands(o.users)}
log "starting slurmd -Z as $NODE_NAME"
hostnamectl set-hostname "$NODE_NAME" 2>/dev/null || hostname "$NODE_NAME" || true
install -d -m 0755 /var/spool/slurmd /var/log/slurm
SLURMD=$(command -v slurmd || echo /usr/sbin/slurmd)
if command -v systemctl >/dev/null; then
  install -d /etc/systemd/system/slurmd.service.d
  # Debian's unit starts slurmd only when /etc/slurm/slurm.conf exists ([Unit] ConditionPathExists),
  # which a configless node never has: the empty assignment clears it (a [Unit] key; in [Service] it is
  # ignored and systemctl restart silently starts nothing).
  cat > /etc/systemd/system/slurmd.service.d/nowscale.conf <<UNIT
[Unit]
ConditionPathExists=
[Service]
ExecStart=
ExecStart=$SLURMD -D -s -Z -N $NODE_NAME --conf-server $CONF_SERVER "--conf=$NODE_CONF"
UNIT
  systemctl daemon-reload
  systemctl enable slurmd
  systemctl restart slurmd
else
  "$SLURMD" -Z -N "$NODE_NAME" --conf-server "$CONF_SERVER" --conf "$NODE_CONF"
fi
${storageSyncCommands()}
log "done"
`;
}

/**
 * Tencent SSM GetSecretValue with Python's standard library only (Debian and RHEL images carry python3;
 * tccli would be one more package to install): CAM role credentials from the metadata service, TC3
 * signature, the key printed in base64. No single quotes inside (the script single-quotes it).
 */
const TENCENT_SSM_PY = `import base64,datetime,hashlib,hmac,json,sys,time,urllib.error,urllib.request
name,region=sys.argv[1],sys.argv[2]
md="http://metadata.tencentyun.com/latest/meta-data/cam/security-credentials/"
role=urllib.request.urlopen(md,timeout=10).read().decode().split()[0]
c=json.load(urllib.request.urlopen(md+role,timeout=10))
host="ssm.tencentcloudapi.com"
body=json.dumps({"SecretName":name,"VersionId":"SSM_Current"})
ts=int(time.time())
day=datetime.datetime.fromtimestamp(ts,datetime.timezone.utc).strftime("%Y-%m-%d")
ct="application/json; charset=utf-8"
canon="POST\\n/\\n\\ncontent-type:"+ct+"\\nhost:"+host+"\\nx-tc-action:getsecretvalue\\n\\ncontent-type;host;x-tc-action\\n"+hashlib.sha256(body.encode()).hexdigest()
scope=day+"/ssm/tc3_request"
sts="TC3-HMAC-SHA256\\n"+str(ts)+"\\n"+scope+"\\n"+hashlib.sha256(canon.encode()).hexdigest()
h=lambda k,m: hmac.new(k,m.encode(),hashlib.sha256).digest()
sig=hmac.new(h(h(h(("TC3"+c["TmpSecretKey"]).encode(),day),"ssm"),"tc3_request"),sts.encode(),hashlib.sha256).hexdigest()
auth="TC3-HMAC-SHA256 Credential="+c["TmpSecretId"]+"/"+scope+", SignedHeaders=content-type;host;x-tc-action, Signature="+sig
req=urllib.request.Request("https://"+host+"/",data=body.encode(),method="POST",headers={"Authorization":auth,"Content-Type":ct,"X-TC-Action":"GetSecretValue","X-TC-Timestamp":str(ts),"X-TC-Version":"2019-09-23","X-TC-Region":region,"X-TC-Token":c["Token"]})
r=json.load(urllib.request.urlopen(req,timeout=30))["Response"]
if "Error" in r: sys.exit("SSM GetSecretValue: "+r["Error"]["Code"]+": "+r["Error"]["Message"])
sys.stdout.write(r.get("SecretBinary") or r["SecretString"])`;

/** Alibaba KMS GetSecretValue, the same way (RAM role credentials in token mode, RPC signature). */
const ALIBABA_KMS_PY = `import base64,hashlib,hmac,json,sys,time,urllib.error,urllib.parse,urllib.request,uuid
name,region=sys.argv[1],sys.argv[2]
md="http://100.100.100.200/latest/"
tok=urllib.request.urlopen(urllib.request.Request(md+"api/token",method="PUT",headers={"X-aliyun-ecs-metadata-token-ttl-seconds":"300"}),timeout=10).read().decode()
get=lambda p: urllib.request.urlopen(urllib.request.Request(md+"meta-data/"+p,headers={"X-aliyun-ecs-metadata-token":tok}),timeout=10).read().decode()
role=get("ram/security-credentials/").split()[0]
c=json.loads(get("ram/security-credentials/"+role))
p={"Action":"GetSecretValue","SecretName":name,"Format":"JSON","Version":"2016-01-20","AccessKeyId":c["AccessKeyId"],"SecurityToken":c["SecurityToken"],"SignatureMethod":"HMAC-SHA1","SignatureVersion":"1.0","SignatureNonce":str(uuid.uuid4()),"Timestamp":time.strftime("%Y-%m-%dT%H:%M:%SZ",time.gmtime())}
q=lambda s: urllib.parse.quote(s,safe="-_.~")
sts="POST&%2F&"+q("&".join(q(k)+"="+q(v) for k,v in sorted(p.items())))
p["Signature"]=base64.b64encode(hmac.new((c["AccessKeySecret"]+"&").encode(),sts.encode(),hashlib.sha1).digest()).decode()
req=urllib.request.Request("https://kms-vpc."+region+".aliyuncs.com/",data=urllib.parse.urlencode(p).encode(),method="POST",headers={"Content-Type":"application/x-www-form-urlencoded"})
try:
    r=json.load(urllib.request.urlopen(req,timeout=30))
except urllib.error.HTTPError as e:
    sys.exit("KMS GetSecretValue: HTTP "+str(e.code)+": "+e.read().decode()[:300])
sys.stdout.write(r["SecretData"])`;

/**
 * `python3 -c PROGRAM ARGS…` with the program gzipped and base64-encoded: the compute boot script must fit
 * the clouds' 16 KiB of user data (the secret fetchers are its largest inline text).
 */
function packedPython(program: string, args: readonly string[]): string {
  const packed = shellQuote(gzipSync(program, { level: 9 }).toString("base64"));
  return `python3 -c "$(printf '%s' ${packed} | base64 -d | gunzip)" ${args.map(shellQuote).join(" ")}`;
}

function mungeKeyCommand(source: z.output<typeof mungeKeySourceSchema>): string {
  if (source.source === "tencent-ssm")
    return packedPython(TENCENT_SSM_PY, [source.secretName, source.region]);
  if (source.source === "alibaba-kms")
    return packedPython(ALIBABA_KMS_PY, [source.secretName, source.region]);
  if (source.source === "aws-secretsmanager") {
    // The secret holds the key as SecretBinary; the CLI prints it base64-encoded.
    return [
      "aws",
      "secretsmanager",
      "get-secret-value",
      "--secret-id",
      source.secretId,
      "--region",
      source.region,
      "--query",
      "SecretBinary",
      "--output",
      "text",
    ]
      .map(shellQuote)
      .join(" ");
  }
  return source.argv.map(shellQuote).join(" ");
}

const SYNC_PROGRAM = "/opt/nowscale/nowscale-storage-sync";

/**
 * Writes the node's sync program (node-storage-sync.ts) before the users are made: the boot script makes
 * them with it (usersCommands), the timer of storageSyncCommands runs it afterwards.
 */
function syncProgramCommands(): string {
  return `
install -d -m 0755 /opt/nowscale
printf '%s' ${shellQuote(gzipSync(storageSyncProgram(), { level: 9 }).toString("base64"))} | base64 -d | gunzip > ${SYNC_PROGRAM}
chmod 0700 ${SYNC_PROGRAM}`;
}

/**
 * Starts the node's sync (node-storage-sync.ts): every STORAGE_SYNC_INTERVAL_S it makes the node's mounts
 * and NowScale users what the master's slurm.conf says, so storage and users added, disabled or deleted
 * after the node booted reach it. A systemd timer where systemd runs, else a background loop (the local
 * mode's instances).
 */
function storageSyncCommands(): string {
  const program = SYNC_PROGRAM;
  return `log "starting the storage and users sync (every ${STORAGE_SYNC_INTERVAL_S} s)"
if command -v systemctl >/dev/null; then
  cat > /etc/systemd/system/nowscale-storage-sync.service <<'UNIT'
[Unit]
Description=NowScale: the cluster's storage mounts and users
[Service]
Type=oneshot
ExecStart=/usr/bin/python3 ${program}
UNIT
  cat > /etc/systemd/system/nowscale-storage-sync.timer <<'UNIT'
[Unit]
Description=NowScale: storage and users kept in step with the master
[Timer]
OnBootSec=${STORAGE_SYNC_INTERVAL_S}
OnUnitActiveSec=${STORAGE_SYNC_INTERVAL_S}
AccuracySec=1
[Install]
WantedBy=timers.target
UNIT
  systemctl daemon-reload
  systemctl enable --now nowscale-storage-sync.timer
else
  nohup sh -c 'while :; do python3 ${program}; sleep ${STORAGE_SYNC_INTERVAL_S}; done' </dev/null >>/var/log/nowscale-storage-sync.log 2>&1 &
fi`;
}

/**
 * The cluster's users on the node (users-apply.ts makes them on the master), made by the sync program
 * (node-storage-sync.ts, the code that keeps them in step later): a group and a user of the same number,
 * the master's GECOS marker, a 0700 home; a disabled one expired. An account the image already has under
 * that name is left alone and logged. One `name uid 0|1` line per user: names passed the renderer's
 * USER_NAME allow-list, and the quoted here-document keeps the shell from reading them.
 */
export function usersCommands(users: readonly { name: string; uid: number; enabled: boolean }[]): string {
  if (users.length === 0) return "";
  return `
log ${shellQuote(`creating ${users.length} cluster user${users.length === 1 ? "" : "s"}`)}
python3 ${SYNC_PROGRAM} users <<'USERS'
${users.map((u) => `${u.name} ${u.uid} ${u.enabled ? 1 : 0}`).join("\n")}
USERS
`;
}

function mountCommands(s: z.output<typeof storageOptionSchema>): string {
  const options =
    s.protocol === "NFS 3.0"
      ? ["-t", "nfs", "-o", "vers=3,nolock,proto=tcp,noresvport"]
      : s.protocol === "NFS 4.0"
        ? ["-t", "nfs", "-o", "vers=4.0,noresvport"]
        : ["-t", "lustre"];
  const local = shellQuote(s.localPath);
  return `
log ${shellQuote(`mounting ${s.remotePath} (${s.protocol}) on ${s.localPath}`)}
mkdir -p ${local}
if ! mountpoint -q ${local}; then
  for attempt in 1 2 3 4 5; do
    mount ${options.map(shellQuote).join(" ")} ${shellQuote(s.remotePath)} ${local} && break
    [ "$attempt" = 5 ] && { log "mount failed"; exit 1; }
    sleep $((attempt * 5))
  done
fi
`;
}

function initScriptCommands(script: z.output<typeof initScriptSchema>, index: number): string {
  const file = `/var/lib/nowscale/init-${index}`;
  let fetch: string;
  let label: string;
  if ("inline" in script) {
    // base64 in single quotes: the text never meets the boot script's shell.
    fetch = `printf '%s' ${shellQuote(Buffer.from(script.inline, "utf8").toString("base64"))} | base64 -d > ${file}`;
    label = `(inline, ${script.inline.length} characters)`;
  } else {
    const url = script.url;
    label = url;
    fetch = url.startsWith("s3://")
      ? `aws s3 cp ${shellQuote(url)} ${file}`
      : `curl -fsSL --retry 5 --proto '=https' -o ${file} ${shellQuote(url)}`;
  }
  return `
log ${shellQuote(`running init script ${index}: ${label}`)}
install -d -m 0700 /var/lib/nowscale
${fetch}
chmod 0700 ${file}
timeout ${script.timeoutS} ${file}
`;
}

/** The metadata address jobs must not reach (AWS's for a node named by the options, as before). */
function metadataAddress(source: (typeof IDENTITY_SOURCES)[number] | undefined): string {
  return source === "tencent-metadata"
    ? "169.254.0.23"
    : source === "alibaba-metadata"
      ? "100.100.100.200"
      : "169.254.169.254";
}

/** Metadata reads per cloud: (instance id, instance type, zone) paths and how to get a session token. */
const METADATA: Record<
  (typeof IDENTITY_SOURCES)[number],
  { fetch: string; id: string; type: string; zone: string }
> = {
  "aws-imds": {
    // IMDSv2 only (instances are launched with HttpTokens=required).
    fetch: `md() { local t; t=$(curl -sf -X PUT 'http://169.254.169.254/latest/api/token' -H 'X-aws-ec2-metadata-token-ttl-seconds: 300'); curl -sf -H "X-aws-ec2-metadata-token: $t" "http://169.254.169.254/latest/meta-data/$1"; }`,
    id: "instance-id",
    type: "instance-type",
    zone: "placement/availability-zone",
  },
  "tencent-metadata": {
    fetch: `md() { curl -sf "http://metadata.tencentyun.com/latest/meta-data/$1"; }`,
    id: "instance-id",
    type: "instance/instance-type",
    zone: "placement/zone",
  },
  "alibaba-metadata": {
    // Hardened (token) mode, which NowScale's launches require.
    fetch: `md() { local t; t=$(curl -sf -X PUT 'http://100.100.100.200/latest/api/token' -H 'X-aliyun-ecs-metadata-token-ttl-seconds: 300'); curl -sf -H "X-aliyun-ecs-metadata-token: $t" "http://100.100.100.200/latest/meta-data/$1"; }`,
    id: "instance-id",
    type: "instance/instance-type",
    zone: "zone-id",
  },
};

/**
 * Shell lines that set NODE_NAME, INSTANCE_TYPE, ZONE and NODE_CONF from the metadata service. What the
 * service answers is checked against the same allow-lists as everything else before it is used.
 */
function identityFromMetadata(
  source: (typeof IDENTITY_SOURCES)[number],
  queue: string,
  cpus: number,
  realMemoryMiB: number,
  gpus: number,
  queueFeatures: readonly string[],
): string {
  const m = METADATA[source];
  const q = shellQuote;
  const name = SIMPLE_NAME.source;
  const id = CLOUD_ID.source;
  const head = `CPUs=${cpus} RealMemory=${realMemoryMiB} Feature=q_${queue},type_`;
  const own = queueFeatures.map((f) => `,${f}`).join("");
  const tail = own + (gpus > 0 ? ` Gres=gpu:${gpus}` : "");
  return `${m.fetch}
NODE_NAME=$(md ${q(m.id)}) || { log "could not read the instance id from the metadata service"; exit 1; }
INSTANCE_TYPE=$(md ${q(m.type)}) || { log "could not read the instance type"; exit 1; }
ZONE=$(md ${q(m.zone)}) || { log "could not read the zone"; exit 1; }
[[ "$NODE_NAME" =~ ${name} ]] || { log "unusable instance id from the metadata service"; exit 1; }
[[ "$INSTANCE_TYPE" =~ ${id} ]] || { log "unusable instance type from the metadata service"; exit 1; }
[[ "$ZONE" =~ ${id} ]] || { log "unusable zone from the metadata service"; exit 1; }
NODE_CONF=${q(head)}"$INSTANCE_TYPE"${q(",zone_")}"$ZONE"${tail === "" ? "" : q(tail)}
readonly NODE_NAME INSTANCE_TYPE ZONE NODE_CONF`;
}
