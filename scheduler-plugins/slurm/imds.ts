/**
 * The instance metadata service (and so the node role's credentials) for root only, as AWS
 * ParallelCluster does: an iptables rule rejects every packet to 169.254.169.254 from any other user,
 * so a Slurm job (which runs as its user) cannot take the role's credentials and read the cluster's
 * secrets. Root keeps it: the boot script, the SSM agent, slurmd and the NowScale agent run as root.
 * A systemd unit puts the rule back at every boot, before the network and Slurm come up.
 */

/** The iptables rule, checked before it is added so that running it twice adds it once. */
export const IMDS_RULE = imdsRule("169.254.169.254");

/** The rule for a metadata address (Tencent's is 169.254.0.23, Alibaba's 100.100.100.200). */
export function imdsRule(address: string): string {
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(address)) throw new TypeError(`invalid metadata address "${address}"`);
  return `OUTPUT -d ${address}/32 -m owner ! --uid-owner 0 -j REJECT`;
}

/**
 * Shell lines (for a bash boot script with `log` defined) that apply the rule now and at every boot,
 * for the cloud's metadata address (AWS's by default).
 */
export function imdsLockdownLines(address = "169.254.169.254"): string {
  const rule = imdsRule(address);
  const apply = `iptables -C ${rule} 2>/dev/null || iptables -I ${rule.replace("OUTPUT", "OUTPUT 1")}`;
  return `log "keeping the metadata service for root only"
command -v iptables >/dev/null || { log "iptables is needed to keep the metadata service from jobs"; exit 1; }
${apply}
iptables -C ${rule} || { log "the metadata service rule did not take"; exit 1; }
if command -v systemctl >/dev/null; then
  cat > /etc/systemd/system/nowscale-imds-lockdown.service <<'UNIT'
[Unit]
Description=NowScale: the instance metadata service for root only
DefaultDependencies=no
Wants=network-pre.target
Before=network-pre.target slurmd.service slurmctld.service
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c '${apply}'
[Install]
WantedBy=multi-user.target
UNIT
  systemctl daemon-reload
  systemctl enable nowscale-imds-lockdown.service
fi`;
}
