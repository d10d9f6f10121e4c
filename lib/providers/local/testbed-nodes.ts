import { mkdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { renderBootstrapScript } from "../../../scheduler-plugins/slurm/bootstrap.js";
import { runCommand } from "../../../scheduler-plugins/slurm/exec.js";
import { SIMPLE_NAME } from "../../core/names.js";
import { bootInstance, consoleTail } from "./instance-boot.js";
import {
  type InstanceCloud,
  type InstanceEndpoints,
  type InstanceObject,
  serveInstanceEndpoints,
} from "./instance-endpoints/index.js";
import type { NamespaceNodeSpec, NamespaceNodes } from "./namespace-nodes.js";
import { createNamespace, listNamespaceNodes, removeNamespace } from "./netns.js";
import {
  removeTestbedNode as removeNode,
  type Testbed,
  type TestbedNodeSpec,
  testbedPaths,
  waitForNode,
  writeTestbedGres,
} from "./slurm-testbed.js";

/** The munge key's secret name in every local instance's secret store (Secrets Manager, SSM or KMS). */
export const LOCAL_MUNGE_SECRET = "nowscale-local-munge-key";
/** The image without NowScale's packages: its boot installs them (apt-get) as on a plain cloud image. */
export const BARE_IMAGE = "local-bare";
/** bootstrap.ts's default marker of a pre-installed image, present on every other local image. */
const PREINSTALLED_MARKER = "/etc/nowscale/preinstalled";

export interface TestbedInstanceOptions {
  /** Whose metadata service and secret store the instances have. @default "aws" */
  cloud?: InstanceCloud;
  /** The region their metadata service answers (and their secret store's host name). @default "local" */
  region?: string;
  /** S3 objects the instances can fetch (AWS only), e.g. init scripts. */
  objects?: readonly InstanceObject[];
  /**
   * The host directory standing for the NFS server on the bridge's host address: `HOST:/path` mounts
   * ROOT/path. This machine's kernel has neither an NFS server nor an NFS client (no nfs/nfsd in
   * /proc/filesystems), so the instances' mount.nfs is a stand-in that bind-mounts the export; the
   * boot script's own `mount -t nfs -o ... HOST:/path DIR` runs unchanged through mount(8).
   */
  nfsExportRoot?: string;
}

/** The stand-in mount.nfs (mount(8) runs /sbin/mount.TYPE as `mount.nfs REMOTE DIR -o OPTIONS`). */
export function localMountNfs(serverAddress: string, exportRoot: string): string {
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(serverAddress))
    throw new TypeError(`invalid NFS server address "${serverAddress}"`);
  if (!/^(\/[A-Za-z0-9._-]+)+$/.test(exportRoot) || exportRoot.split("/").includes(".."))
    throw new TypeError(
      `nfsExportRoot: expected an absolute path of plain segments, got "${exportRoot.slice(0, 200)}"`,
    );
  return `#!/bin/sh
# NowScale local instance: stand-in for mount.nfs (no NFS in this kernel). SERVER:/path is the host
# directory ${exportRoot}/path, bind-mounted where mount(8) was asked to mount the export.
set -eu
remote=$1; dir=$2; shift 2
server=\${remote%%:*}; path=\${remote#*:}
case "$path" in /*) ;; *) echo "mount.nfs: bad remote $remote" >&2; exit 32 ;; esac
case "$path" in *..*) echo "mount.nfs: bad path $path" >&2; exit 32 ;; esac
if [ "$server" != '${serverAddress}' ]; then echo "mount.nfs: Connection timed out ($server)" >&2; exit 32; fi
if [ ! -d '${exportRoot}'"$path" ]; then echo "mount.nfs: access denied by server while mounting $remote" >&2; exit 32; fi
echo "mount.nfs (local stand-in): $remote on $dir $*" >&2
exec mount --bind '${exportRoot}'"$path" "$dir"
`;
}

/** Where an instance's console log is kept: beside Slurm's logs, which stay after `local down`. */
export function consoleLogPath(tb: Testbed, name: string): string {
  return join(testbedPaths(tb.stateDir).logDir, "console", `${name}.log`);
}

/**
 * Instances of a running test bed (lib/providers/local/slurm-testbed.ts): a namespace on its bridge with the
 * cloud's metadata and secret endpoints inside (the munge key is the test bed's), booted by running its
 * user data (lib/providers/local/instance-boot.ts). The boot script joins the test bed's slurmctld itself.
 */
export function testbedNamespaceNodes(tb: Testbed, options: TestbedInstanceOptions = {}): NamespaceNodes {
  return {
    create: (spec) => startInstance(tb, spec, options),
    destroy: (name) => removeTestbedNode(tb, name),
    list: () => listNamespaceNodes(tb.netnsPrefix),
    consoleOutput: (name, maxLines) => consoleTail(consoleLogPath(tb, name), maxLines),
  };
}

/** The endpoints each running instance is served, by test bed directory and instance name. */
const served = new Map<string, InstanceEndpoints>();
const key = (tb: Testbed, name: string) => `${tb.stateDir}\n${name}`;
const instanceDir = (tb: Testbed, name: string) => join(tb.stateDir, "instances", name);

/**
 * Starts an instance of the test bed that boots from `spec.userData` (NamespaceNodes.create).
 * `extraEnv` is added to the instance's environment (a test bed's GPU stand-ins: GPU_DEV_DIR).
 */
async function startInstance(
  tb: Testbed,
  spec: NamespaceNodeSpec,
  options: TestbedInstanceOptions,
  extraEnv: Record<string, string> = {},
): Promise<void> {
  if (!tb.network)
    throw new Error("this test bed has no network: start it with `network` to add namespace nodes");
  if (!SIMPLE_NAME.test(spec.name)) throw new TypeError(`invalid instance name "${spec.name.slice(0, 80)}"`);
  const dir = instanceDir(tb, spec.name);
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(dir, "endpoints"), { recursive: true, mode: 0o700 });
  await mkdir(join(testbedPaths(tb.stateDir).logDir, "console"), { recursive: true, mode: 0o700 });
  const netns = await createNamespace(
    {
      name: spec.name,
      netnsPrefix: tb.netnsPrefix,
      bridge: tb.network.bridge,
      address: spec.address,
      prefixLength: tb.network.prefixLength ?? 24,
    },
    // With internet access, the route out goes through the host.
    tb.network.internet === true ? tb.network.hostAddress : undefined,
  );
  try {
    const paths = testbedPaths(tb.stateDir);
    const endpoints = await serveInstanceEndpoints(
      netns,
      {
        cloud: options.cloud ?? "aws",
        instanceId: spec.name,
        instanceType: spec.instanceType,
        zone: spec.zone,
        region: options.region ?? "local",
        privateIp: spec.address,
      },
      [{ name: LOCAL_MUNGE_SECRET, binary: await readFile(paths.mungeKey) }],
      options.objects ?? [],
      { dir: join(dir, "endpoints") },
    );
    served.set(key(tb, spec.name), endpoints);
    await bootInstance({
      netns,
      dir,
      consoleLog: consoleLogPath(tb, spec.name),
      // An instance launched without user data boots and does nothing (it never joins).
      userData: spec.userData ?? "#!/bin/sh\nexit 0\n",
      hostsFile: endpoints.hostsFile,
      hostname: spec.name,
      env: { ...endpoints.env, ...extraEnv },
      // The master's slurm.conf names its own munge socket (AuthInfo): in the instance, that path
      // is the instance's own munged, as on a cloud node.
      extraBinds: [[join(dir, "root", "run", "munge"), paths.mungeSocketDir]],
      imageFiles: spec.imageId === BARE_IMAGE ? [] : [PREINSTALLED_MARKER],
      ...(options.nfsExportRoot === undefined
        ? {}
        : {
            sbinFiles: [["mount.nfs", localMountNfs(tb.controlAddress, options.nfsExportRoot)]] as const,
          }),
    });
  } catch (error) {
    await served.get(key(tb, spec.name))?.close();
    served.delete(key(tb, spec.name));
    await removeNamespace(netns).catch(() => undefined);
    throw error;
  }
}

/**
 * Stops the instance's processes, deletes it from slurmctld, removes its namespace, stops its
 * endpoints and deletes its files (the console log stays). Idempotent.
 */
export async function removeTestbedNode(tb: Testbed, name: string): Promise<void> {
  if (!SIMPLE_NAME.test(name)) throw new TypeError(`invalid instance name "${name.slice(0, 80)}"`);
  await removeNode(tb, name);
  await served.get(key(tb, name))?.close();
  served.delete(key(tb, name));
  await rm(instanceDir(tb, name), { recursive: true, force: true });
}

/**
 * A test bed node booted as a cloud node is: the AWS compute user data, named by the options (not the
 * metadata), with the CPUs, memory, GPUs and placement features of `spec` (its features must be
 * placementFeatures' q_/type_/zone_ and the queue's own), joined when this resolves (IDLE, or MIXED/ALLOCATED when a job was waiting for it). GPUs are
 * the test bed's stand-in devices (writeTestbedGres), which the script finds through GPU_DEV_DIR.
 */
export async function addTestbedNode(tb: Testbed, spec: TestbedNodeSpec): Promise<void> {
  const pick = (prefix: string) => {
    const found = spec.features.find((f) => f.startsWith(prefix))?.slice(prefix.length);
    if (found === undefined) throw new TypeError(`features: no ${prefix}… feature (use placementFeatures)`);
    return found;
  };
  const queue = pick("q_");
  const instanceType = pick("type_");
  const zone = pick("zone_");
  const own = spec.features.filter((f) => !/^(q|type|zone)_/.test(f));
  const gpus = spec.gpus ?? 0;
  const ownGres = spec.gresFromBootScript === true;
  const gpuDir = await writeTestbedGres(tb, spec.name, gpus, { line: !ownGres });
  // slurmctld serves gres.conf to configless nodes as it read it: let it read the new lines.
  if (gpus > 0 && !ownGres) {
    const r = await runCommand("scontrol", ["reconfigure"], { env: tb.env, timeoutMs: 30_000 });
    if (r.code !== 0) throw new Error(`scontrol reconfigure failed: ${(r.stderr || r.error || "").trim()}`);
  }
  const userData = renderBootstrapScript({
    clusterId: "testbed",
    nodeName: spec.name,
    queue,
    instanceType,
    zone,
    cpus: spec.cpus,
    realMemoryMiB: spec.realMemoryMiB,
    gpus,
    features: own,
    gpuDetect: "files",
    controllerAddress: tb.controlAddress,
    controllerPort: tb.slurmctldPort,
    mungeKey: { source: "aws-secretsmanager", secretId: LOCAL_MUNGE_SECRET, region: "local" },
    ...(spec.users === undefined ? {} : { users: [...spec.users] }),
  });
  await startInstance(
    tb,
    { name: spec.name, address: spec.address, instanceType, zone, imageId: "local", userData },
    {},
    gpuDir === undefined ? {} : { GPU_DEV_DIR: gpuDir },
  );
  try {
    // Joined: IDLE, or already running a job Slurm was holding for it (a multi-node job starts the
    // moment its last node registers).
    await waitForNode(tb, spec.name, ["IDLE", "MIXED", "ALLOCATED"], 60_000);
  } catch (error) {
    const console = await consoleTail(consoleLogPath(tb, spec.name), 15);
    throw new Error(`${(error as Error).message}; console:\n${console ?? "(none)"}`);
  }
}
