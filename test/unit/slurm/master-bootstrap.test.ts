import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { ValidationError } from "../../../lib/core/validation.js";
import {
  type MasterBootstrapOptions,
  renderMasterBootstrapScript,
} from "../../../scheduler-plugins/slurm/master-bootstrap.js";

const options: MasterBootstrapOptions = {
  clusterId: "hpc-1",
  region: "us-east-1",
  mungeKeySecretId: "arn:aws:secretsmanager:us-east-1:123456789012:secret:nowscale/hpc-1/munge-key-AbCdEf",
  agentKeySecretId: "nowscale/hpc-1/agent-hmac-key",
  queues: [{ name: "compute" }, { name: "gpu", defMemPerCpuMiB: 2000 }],
  agentUrl: "s3://my-bucket/nowscale-agent.js",
};

describe("renderMasterBootstrapScript", () => {
  it("is valid bash that fetches both secrets by id and starts slurmctld and the agent", () => {
    // Act
    const script = renderMasterBootstrapScript(options);

    // Assess
    execFileSync("bash", ["-n"], { input: script });
    expect(script).toContain(`'--secret-id' '${options.mungeKeySecretId}'`);
    expect(script).toContain(`'--secret-id' '${options.agentKeySecretId}'`);
    expect(script).toContain(
      "PartitionName=gpu Nodes=ns_gpu Default=NO State=UP MaxTime=INFINITE DefMemPerCPU=2000",
    );
    expect(script).toContain("SlurmctldParameters=enable_configless");
    expect(script).toContain("nowscale-agent.js serve");
    // The agent keeps its replay cache across restarts in its state directory (systemd or plain).
    expect(script).toContain("StateDirectory=nowscale-agent");
    expect(script).toContain("NOWSCALE_AGENT_STATE_DIR=/var/lib/nowscale-agent");
    expect(script).toContain("aws s3 cp 's3://my-bucket/nowscale-agent.js'");
  });

  it("confines jobs to their cores, memory and GPUs with the cgroup plugins, for every configless node", () => {
    // Act
    const script = renderMasterBootstrapScript(options);

    // Assess: slurm.conf's plugins and the cgroup.conf the nodes fetch from slurmctld
    const conf = (file: string) =>
      new RegExp(`cat > ${file} <<'?CONF'?\\n([\\s\\S]*?)\\nCONF`).exec(script)?.[1]?.split("\n") ?? [];
    expect(conf("/etc/slurm/slurm.conf")).toEqual(
      expect.arrayContaining(["ProctrackType=proctrack/cgroup", "TaskPlugin=task/cgroup,task/affinity"]),
    );
    expect(conf("/etc/slurm/cgroup.conf")).toEqual([
      "CgroupPlugin=autodetect",
      "ConstrainCores=yes",
      "ConstrainRAMSpace=yes",
      "ConstrainDevices=yes",
      "IgnoreSystemdOnFailure=yes",
    ]);
    expect(script).not.toContain("TaskPlugin=task/none");
  });

  it("starts the agent's watcher as a unit of its own when given the wake bus, and none without it", () => {
    // Act
    const bus = "NowScaleWakeBusC0DC8DB4";
    const script = renderMasterBootstrapScript({ ...options, wakeEventBus: bus });
    const without = renderMasterBootstrapScript(options);

    // Assess
    execFileSync("bash", ["-n"], { input: script });
    const watch = `/opt/nowscale/nowscale-agent.js 'watch' '--cluster-id' 'hpc-1' '--event-bus' '${bus}' '--region' 'us-east-1'`;
    const unit = /cat > \/etc\/systemd\/system\/nowscale-agent-watch.service <<UNIT\n([\s\S]*?)\nUNIT/.exec(
      script,
    )?.[1];
    expect(unit).toContain(`ExecStart=$NODE ${watch}`);
    expect(unit).toContain("Environment=SLURM_CONF=/etc/slurm/slurm.conf");
    expect(script).toContain("systemctl enable --now nowscale-agent-watch");
    // without systemd, in the background as the agent is
    expect(script).toContain(`nohup "$NODE" ${watch} >>/var/log/nowscale-agent-watch.log`);
    expect(without).not.toContain("watch");
  });

  it("fits the clouds' user-data limit (16 KiB after base64) with many queues", () => {
    // Act
    const queues = Array.from({ length: 30 }, (_, i) => ({ name: `queue-${i}`, defMemPerCpuMiB: 4096 }));
    const script = renderMasterBootstrapScript({
      ...options,
      queues,
      wakeEventBus: "NowScaleWakeBusC0DC8DB4",
    });

    // Assess
    expect(Buffer.from(script).toString("base64").length).toBeLessThanOrEqual(16_384);
  });

  it.each([
    ["clusterId", { clusterId: "a;rm -rf /" }],
    ["region", { region: "$(id)" }],
    ["mungeKeySecretId", { mungeKeySecretId: "x`id`" }],
    ["agentKeySecretId", { agentKeySecretId: "a b" }],
    ["queues[0].name", { queues: [{ name: "q\nx" }] }],
    ["agentUrl", { agentUrl: "http://insecure/agent.js" }],
    ["agentPort", { agentPort: 22 }],
    ["wakeEventBus", { wakeEventBus: "bus'; reboot; '" }],
  ])("refuses a hostile %s", (field, bad) => {
    // Act
    const render = () => renderMasterBootstrapScript({ ...options, ...bad } as MasterBootstrapOptions);

    // Assess
    expect(render).toThrow(ValidationError);
    try {
      render();
    } catch (error) {
      expect((error as ValidationError).issues.map((i) => i.path)).toContain(field);
    }
  });
});
