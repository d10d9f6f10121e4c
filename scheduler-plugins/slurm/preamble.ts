import { shellQuote } from "./shell.js";

/**
 * The opening every NowScale boot script shares, written once for the compute (bootstrap.ts) and the
 * master (master-bootstrap.ts) user data: strict bash, its output in /var/log/nowscale-bootstrap.log
 * (and the console), the role variables init scripts read (NOWSCALE_NODE_ROLE, NOWSCALE_CLUSTER_ID,
 * NOWSCALE_SCHEDULER_TYPE), `log`, and the package installation skipped on an image carrying the
 * pre-installed marker. The caller has validated every value; each is single-quoted again here.
 */
export interface PreambleOptions {
  role: "COMPUTE" | "MASTER";
  /** The script's comment line: what it is and for which cluster/node. Plain text, no newline. */
  title: string;
  clusterId: string;
  preinstalledMarker: string;
  /** More `readonly NAME=value` lines after the role's (values single-quoted here). */
  readonly?: readonly (readonly [string, string])[];
  /** Shell lines between `log` and the package installation (e.g. the node's identity). */
  beforeInstall?: string;
  /** The packages, Debian/Ubuntu names then RHEL-family (EPEL) names. */
  packages: { debian: readonly string[]; rhel: readonly string[] };
  /** The installation's log line: "installing slurmd and munge". */
  installing: string;
}

export function bootPreamble(o: PreambleOptions): string {
  const q = shellQuote;
  const extra = (o.readonly ?? []).map(([name, value]) => `readonly ${name}=${q(value)}\n`).join("");
  if (/\n/.test(o.title)) throw new TypeError("title: one line");
  // Our own fixed words, written in double quotes as the scripts always had them.
  if (!/^[a-z ,]+$/.test(o.installing)) throw new TypeError("installing: plain words");
  return `#!/bin/bash
# ${o.title} Do not edit.
set -euo pipefail
umask 022
exec > >(tee -a /var/log/nowscale-bootstrap.log) 2>&1

readonly NOWSCALE_NODE_ROLE=${o.role}
readonly NOWSCALE_CLUSTER_ID=${q(o.clusterId)}
readonly NOWSCALE_SCHEDULER_TYPE=SLURM
${extra}readonly PREINSTALLED_MARKER=${q(o.preinstalledMarker)}
export NOWSCALE_NODE_ROLE NOWSCALE_CLUSTER_ID NOWSCALE_SCHEDULER_TYPE

log() { printf '%s nowscale-bootstrap: %s\\n' "$(date -u +%FT%TZ)" "$*"; }
${o.beforeInstall === undefined ? "" : `\n${o.beforeInstall}\n`}
install_packages() {
  . /etc/os-release
  case " \${ID:-} \${ID_LIKE:-} " in
    *" debian "*|*" ubuntu "*)
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -q
      apt-get install -y -q ${o.packages.debian.join(" ")} ;;
    *" rhel "*|*" centos "*|*" fedora "*|*" rocky "*|*" almalinux "*|*" openEuler "*|*" openeuler "*)
      local pm=dnf; command -v dnf >/dev/null || pm=yum
      # RHEL-family: slurm comes from EPEL; openEuler ships it in its own repositories.
      if [ "\${ID:-}" != openEuler ] && ! rpm -q epel-release >/dev/null 2>&1; then "$pm" install -y epel-release || true; fi
      "$pm" install -y ${o.packages.rhel.join(" ")} ;;
    *) log "unsupported distribution \${ID:-unknown}: use a pre-installed image"; exit 1 ;;
  esac
}

if [ -f "$PREINSTALLED_MARKER" ]; then
  log "pre-installed image: skipping package installation"
else
  log "${o.installing}"
  install_packages
fi
`;
}
