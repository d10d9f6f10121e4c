import { USER_GECOS, USER_ID_MAX, USER_ID_MIN, USER_NAME } from "../../lib/ports/cluster-users.js";

/**
 * The node's half of the channel of node-storage.ts and node-users.ts (kept apart from them so the boot
 * script's renderer can install it without an import cycle): the comment lines' prefixes and the sync
 * program.
 */

/** The storage line's prefix; Slurm ignores it, configless nodes receive it. */
export const STORAGE_LINE_PREFIX = "#nowscale-storage ";

/** The users lines' prefix (node-users.ts): the cluster's users, names and numbers only. */
export const USERS_LINE_PREFIX = "#nowscale-users ";

/** How often a node compares its mounts and users with the lines (seconds). */
export const STORAGE_SYNC_INTERVAL_S = 15;

/**
 * The node's sync program (python3, which every NowScale image has), run every STORAGE_SYNC_INTERVAL_S:
 *
 * - storage: reads the storage line of the slurm.conf slurmd received, checks each entry against the
 *   same allow-lists, mounts what is missing and unmounts what it mounted before and is no longer
 *   wanted. An unmount under a running job fails (EBUSY) and is retried on the next round, so a job never
 *   loses its files; the state of what it mounted is kept in /var/lib/nowscale/storage-mounted.json.
 *   Mount options are the boot script's.
 * - users (node-users.ts): reads the users lines (none: never told, nothing done), checks every name, uid
 *   and gid again against USER_NAME (the whole string) and NowScale's range, and makes the node's
 *   NowScale accounts (GECOS marker as its first subfield, and range, as users-apply.ts tells them) the
 *   lines': missing ones created with the same uid and gid, disabled ones expired (`usermod -e 1`), absent
 *   ones removed (`userdel`, files kept unless the purge list names them; a failure, say a process still
 *   running as the user, is retried next round). An account of the node's own with the same name is left
 *   alone. Commands get argv lists, no shell.
 *
 * With `users` as its argument it creates (never removes) the users listed on stdin, one `name uid 0|1`
 * a line (1 enabled): what the boot script runs before slurmd joins, the same code as on a running node.
 */
export function storageSyncProgram(): string {
  // Terse on purpose: it travels gzipped in every compute boot script, under the clouds' 16 KiB of user
  // data (bootstrap.ts); test/unit/slurm/node-users.test.ts runs it on fixtures.
  return String.raw`#!/usr/bin/env python3
# NowScale: a node kept in step with the master's slurm.conf (scheduler-plugins/slurm/node-storage-sync.ts)
import base64,json,os,re,subprocess as sp,sys,time
ST="/var/lib/nowscale/storage-mounted.json"
ETC=os.environ.get("NOWSCALE_SYNC_ETC","/etc")
NAME=re.compile(${JSON.stringify(USER_NAME.source)})
G=${JSON.stringify(USER_GECOS)}
LO,HI=${USER_ID_MIN},${USER_ID_MAX}
L=re.compile(r"^(/[A-Za-z0-9._-]+)+$")
N=r"^[A-Za-z0-9.-]+:/[A-Za-z0-9._/-]*$"
R={"NFS 3.0":re.compile(N),"NFS 4.0":re.compile(N),"TURBO":re.compile(r"^[0-9.]+@[a-z]+[0-9]*:/[A-Za-z0-9._/-]+$")}
O={"NFS 3.0":["-t","nfs","-o","vers=3,nolock,proto=tcp,noresvport"],"NFS 4.0":["-t","nfs","-o","vers=4.0,noresvport"],"TURBO":["-t","lustre"]}
def log(m):print("nowscale-storage-sync: "+m,flush=True)
def run(*a):return sp.run(a).returncode
def pw():return{f[0]:f for f in(l.rstrip("\n").split(":")for l in open(ETC+"/passwd"))if len(f)>6}
def users(want,purge,remove):
 have,keep=pw(),set()
 off={f[0]for f in(l.split(":")for l in open(ETC+"/shadow"))if len(f)>7 and f[7].isdigit()and int(f[7])<=time.time()//86400}
 for u in want:
  n,i,g,on=u if type(u)is list and len(u)==4 else("",0,1,2)
  if not(type(n)is str and NAME.fullmatch(n)and type(i)is int and LO<=i<=HI and g==i and on in(0,1)):log("refused a user entry that fails the allow-lists");continue
  keep.add(n);a=have.get(n)
  if a is None:
   if sp.run(["getent","group",n],stdout=sp.DEVNULL).returncode:run("groupadd","-g",str(i),n)
   if run("useradd","-u",str(i),"-g",str(i),"-c",G,"-m","-s","/bin/bash",n):log("could not create user "+n);continue
   os.chmod(pw()[n][5],0o700);log("created user %s (uid %d)"%(n,i))
  elif a[2]!=str(i)or a[4].split(",")[0]!=G:log("user %s has another account on this node: left as it is"%n);continue
  if on==(n in off):run("usermod","-e","" if on else "1",n);log(("enabled " if on else "disabled ")+n)
 for n,a in have.items()if remove else[]:
  if n in keep or a[4].split(",")[0]!=G or not a[2].isdigit()or not LO<=int(a[2])<=HI:continue
  run("userdel",*(["-r"]if n in purge else[]),n)
  log("kept user "+n+": userdel failed, retrying"if n in pw()else"removed user "+n+(" and its files"if n in purge else", files kept"))
if sys.argv[1:]==["users"]:
 try:users([[m[1],int(m[2]),int(m[2]),int(m[3])]if m else 0 for m in(re.match(r"(\S+) (\d+) ([01])$",l)for l in sys.stdin)],(),0)
 except Exception as e:log("users: "+str(e)[:200])
 sys.exit()
t=None
for c in os.environ.get("NOWSCALE_SYNC_CONF","/run/slurm/conf/slurm.conf:/etc/slurm/slurm.conf").split(":"):
 try:t=open(c).read().split("\n");break
 except OSError:pass
if t is None:sys.exit()
def load(p):
 s="".join(l[len(p):].strip()for l in t if l.startswith(p))
 return json.loads(base64.b64decode(s))if s else None
try:
 u=load(${JSON.stringify(USERS_LINE_PREFIX)})
 if u:users(u["u"],set(u["p"]),1)
except Exception as e:log("users not synced: "+str(e)[:200])
if "NOWSCALE_SYNC_ETC" in os.environ:sys.exit()
ok={}
for s in load(${JSON.stringify(STORAGE_LINE_PREFIX)})or[]:
 p,r,k=s.get("localPath",""),s.get("remotePath",""),s.get("protocol","")
 p=p.rstrip("/")or p
 if k not in R or not R[k].match(r)or not L.match(p)or".."in p.split("/"):log("refused a storage entry that fails the allow-lists");continue
 ok[p]=s
try:mine=json.load(open(ST))
except(OSError,ValueError):mine={}
def mounted(p):return run("mountpoint","-q",p)==0
for p,s in ok.items():
 if mounted(p):mine.setdefault(p,s);continue
 os.makedirs(p,exist_ok=True)
 if run("mount",*O[s["protocol"]],s["remotePath"],p)==0:mine[p]=s;log("mounted "+s["remotePath"]+" on "+p)
for p in[p for p in mine if p not in ok]:
 if not mounted(p)or run("umount",p)==0:del mine[p];log("unmounted "+p)
 else:log("kept "+p+": in use, retrying")
os.makedirs(os.path.dirname(ST),exist_ok=True)
json.dump(mine,open(ST+".new","w"))
os.replace(ST+".new",ST)
`;
}
