import { mkdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { SIMPLE_NAME } from "../../core/names.js";
import { bootInstance, consoleTail } from "../../local/instance-boot.js";
import {
  type InstanceCloud,
  type InstanceEndpoints,
  type InstanceObject,
  serveInstanceEndpoints,
} from "../../local/instance-endpoints/index.js";
import { createNamespace, listNamespaceNodes, removeNamespace } from "../../local/netns.js";
import { removeTestbedNode, type Testbed, testbedPaths } from "../../local/slurm-testbed.js";
import type { NamespaceNodes } from "./namespace-nodes.js";

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
 * Instances of a running test bed (lib/local/slurm-testbed.ts): a namespace on its bridge with the
 * cloud's metadata and secret endpoints inside (the munge key is the test bed's), booted by running its
 * user data (lib/local/instance-boot.ts). The boot script joins the test bed's slurmctld itself.
 */
export function testbedNamespaceNodes(tb: Testbed, options: TestbedInstanceOptions = {}): NamespaceNodes {
  const endpoints = new Map<string, InstanceEndpoints>();
  const instanceDir = (name: string) => join(tb.stateDir, "instances", name);
  return {
    create: async (spec) => {
      if (!tb.network)
        throw new Error("this test bed has no network: start it with `network` to add namespace nodes");
      if (!SIMPLE_NAME.test(spec.name))
        throw new TypeError(`invalid instance name "${spec.name.slice(0, 80)}"`);
      const dir = instanceDir(spec.name);
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
        const served = await serveInstanceEndpoints(
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
        endpoints.set(spec.name, served);
        await bootInstance({
          netns,
          dir,
          consoleLog: consoleLogPath(tb, spec.name),
          // An instance launched without user data boots and does nothing (it never joins).
          userData: spec.userData ?? "#!/bin/sh\nexit 0\n",
          hostsFile: served.hostsFile,
          hostname: spec.name,
          env: served.env,
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
        await endpoints.get(spec.name)?.close();
        endpoints.delete(spec.name);
        await removeNamespace(netns).catch(() => undefined);
        throw error;
      }
    },
    destroy: async (name) => {
      if (!SIMPLE_NAME.test(name)) throw new TypeError(`invalid instance name "${name.slice(0, 80)}"`);
      await removeTestbedNode(tb, name);
      await endpoints.get(name)?.close();
      endpoints.delete(name);
      await rm(instanceDir(name), { recursive: true, force: true });
    },
    list: () => listNamespaceNodes(tb.netnsPrefix),
    consoleOutput: (name, maxLines) => consoleTail(consoleLogPath(tb, name), maxLines),
  };
}
