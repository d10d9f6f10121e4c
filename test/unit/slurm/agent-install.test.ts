import { describe, expect, it } from "vitest";
import { installOptions, installPaths, renderAgentUnit } from "../../../agent/install.js";

/**
 * `nowscale-agent install`'s inputs: every option checked before anything is written, named in the
 * error; the unit it writes carries only plain paths and addresses. (Its run on a real master is
 * test/slurm/attach.test.ts.)
 */
describe("nowscale-agent install options", () => {
  it("takes partitions, the listen address, a key secret and a root; defaults the rest", () => {
    // Act
    const o = installOptions({
      partitions: "burst, gpu",
      listen: "10.0.0.5:8787",
      "key-secret": "nowscale/a/agent-key",
      root: "/tmp/x",
    });
    const plain = installOptions({ partitions: "burst" });
    // Assess
    expect(o).toMatchObject({
      partitions: ["burst", "gpu"],
      listen: "10.0.0.5:8787",
      keySecret: "nowscale/a/agent-key",
      root: "/tmp/x",
      printKey: false,
      noStart: false,
    });
    expect(plain).toMatchObject({ listen: "0.0.0.0:8787", root: "/" });
    expect(installPaths("/").keyFile).toBe("/etc/nowscale/agent.key");
  });

  it("refuses bad options naming the option, before anything is done", () => {
    const refused = (values: Record<string, string | boolean>) => {
      try {
        installOptions(values);
        return "accepted";
      } catch (error) {
        return (error as Error).message;
      }
    };
    expect(refused({})).toContain("--partitions");
    expect(refused({ partitions: "a;b" })).toContain('--partitions: "a;b"');
    expect(refused({ partitions: "burst", listen: "8787" })).toContain("--listen");
    expect(refused({ partitions: "burst", listen: "$(id):80" })).toContain("--listen");
    expect(refused({ partitions: "burst", "key-secret": "x y" })).toContain("--key-secret");
    expect(refused({ partitions: "burst", "slurm-conf": "etc/slurm.conf" })).toContain("--slurm-conf");
    expect(refused({ partitions: "burst", "slurm-conf": "/etc/slurm $(id).conf" })).toContain("--slurm-conf");
  });

  it("writes a unit with the listen address, key file and state directory, and refuses anything but plain paths", () => {
    // Act
    const unit = renderAgentUnit({
      node: "/usr/bin/node",
      bundle: "/opt/nowscale/nowscale-agent.js",
      keyFile: "/etc/nowscale/agent.key",
      listen: "10.0.0.5:8787",
      slurmConf: "/etc/slurm/slurm.conf",
      stateDir: "/var/lib/nowscale-agent",
    });
    const hostile = () =>
      renderAgentUnit({
        node: "/usr/bin/node",
        bundle: "/opt/x.js\nExecStartPre=/bin/sh -c id",
        keyFile: "/k",
        listen: "a:1",
        slurmConf: "/s",
        stateDir: "/d",
      });
    // Assess
    expect(unit).toContain("Environment=NOWSCALE_AGENT_LISTEN=10.0.0.5:8787\n");
    expect(unit).toContain("Environment=NOWSCALE_AGENT_KEY_FILE=/etc/nowscale/agent.key\n");
    expect(unit).toContain("ExecStart=/usr/bin/node /opt/nowscale/nowscale-agent.js serve\n");
    expect(unit).toContain("NoNewPrivileges=yes");
    expect(hostile).toThrow("bundle: not a plain path or address");
  });
});
