/**
 * The node's half of the storage channel of node-storage.ts (kept apart from it so the boot script's
 * renderer can install it without an import cycle): the comment line's prefix and the sync program.
 */

/** The comment line's prefix; Slurm ignores it, configless nodes receive it. */
export const STORAGE_LINE_PREFIX = "#nowscale-storage ";

/** How often a node compares its mounts with the line (seconds). */
export const STORAGE_SYNC_INTERVAL_S = 15;

/**
 * The node's sync program (python3, which every NowScale image has): reads the storage line of the
 * slurm.conf slurmd received, checks each entry against the same allow-lists, mounts what is missing and
 * unmounts what it mounted before and is no longer wanted. An unmount under a running job fails (EBUSY)
 * and is retried on the next round, so a job never loses its files; the state of what it mounted is kept
 * in /var/lib/nowscale/storage-mounted.json. Mount options are the boot script's.
 */
export function storageSyncProgram(): string {
  return `#!/usr/bin/env python3
# NowScale: the cluster's storage mounts on a running node (scheduler-plugins/slurm/node-storage.ts).
import base64, json, os, re, subprocess, sys
CONF = ["/run/slurm/conf/slurm.conf", "/etc/slurm/slurm.conf"]
STATE = "/var/lib/nowscale/storage-mounted.json"
PREFIX = ${JSON.stringify(STORAGE_LINE_PREFIX)}
LOCAL = re.compile(r"^(/[A-Za-z0-9._-]+)+$")
REMOTE = {"NFS 3.0": re.compile(r"^[A-Za-z0-9.-]+:/[A-Za-z0-9._/-]*$"), "NFS 4.0": re.compile(r"^[A-Za-z0-9.-]+:/[A-Za-z0-9._/-]*$"), "TURBO": re.compile(r"^[0-9.]+@[a-z]+[0-9]*:/[A-Za-z0-9._/-]+$")}
OPTIONS = {"NFS 3.0": ["-t", "nfs", "-o", "vers=3,nolock,proto=tcp,noresvport"], "NFS 4.0": ["-t", "nfs", "-o", "vers=4.0,noresvport"], "TURBO": ["-t", "lustre"]}
def log(m): print("nowscale-storage-sync: " + m, flush=True)
def wanted():
    for path in CONF:
        try:
            text = open(path).read()
        except OSError:
            continue
        for line in text.split("\\n"):
            if line.startswith(PREFIX):
                return json.loads(base64.b64decode(line[len(PREFIX):].strip()))
        return []
    return None
def mounted(p):
    return subprocess.run(["mountpoint", "-q", p]).returncode == 0
want = wanted()
if want is None:
    sys.exit(0)
ok = {}
for s in want:
    p, r, proto = s.get("localPath", ""), s.get("remotePath", ""), s.get("protocol", "")
    p = p.rstrip("/") or p
    if proto not in REMOTE or not REMOTE[proto].match(r) or not LOCAL.match(p) or ".." in p.split("/"):
        log("refused a storage entry that fails the allow-lists")
        continue
    ok[p] = s
try:
    mine = json.load(open(STATE))
except (OSError, ValueError):
    mine = {}
for p, s in ok.items():
    if mounted(p):
        mine.setdefault(p, s)
        continue
    os.makedirs(p, exist_ok=True)
    r = subprocess.run(["mount"] + OPTIONS[s["protocol"]] + [s["remotePath"], p])
    if r.returncode == 0:
        mine[p] = s
        log("mounted " + s["remotePath"] + " on " + p)
for p in [p for p in mine if p not in ok]:
    if not mounted(p) or subprocess.run(["umount", p]).returncode == 0:
        del mine[p]
        log("unmounted " + p)
    else:
        log("kept " + p + ": in use, retrying")
os.makedirs(os.path.dirname(STATE), exist_ok=True)
json.dump(mine, open(STATE + ".new", "w"))
os.replace(STATE + ".new", STATE)
`;
}
