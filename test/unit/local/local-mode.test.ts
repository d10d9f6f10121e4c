import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { settingsFrom, startTimeoutMs } from "../../../lib/cli/local-command.js";
import { formatTable } from "../../../lib/cli/table.js";
import { missingPackages } from "../../../lib/local/dependencies.js";
import { LocalCloud, masterInstanceId } from "../../../lib/local/local-cloud.js";
import { busyPorts } from "../../../lib/local/ports.js";
import { checkSettings, DEFAULT_SETTINGS } from "../../../lib/local/settings.js";
import { withLocalAgentPort } from "../../../lib/local/workflows.js";
import type { LaunchRequest } from "../../../lib/ports/cloud-provider.js";
import { InvalidRequestError } from "../../../lib/ports/errors.js";
import { FakeClock, FakeProvider } from "../../../lib/providers/fake/index.js";
import { MASTER_QUEUE } from "../../../lib/workflow/tasks/create-tasks.js";

/** The local mode's pure parts: the master-claiming cloud, settings checks, the workflow request, tables. */

function masterLaunch(clusterId: string): LaunchRequest {
  return {
    clusterId,
    queue: MASTER_QUEUE,
    round: "master",
    candidates: [{ instanceType: "local.master", zone: "local-a", chargeType: "ON_DEMAND" }],
    count: 1,
    allOrNothing: true,
    imageId: "local",
  };
}

describe("LocalCloud", () => {
  it("claims this machine's master for one cluster, idempotently, and releases it on terminate", async () => {
    // Prepare
    const prepared: string[] = [];
    const cloud = new LocalCloud(new FakeProvider({ clock: new FakeClock() }), {
      agentAddress: "127.0.0.1",
      prepareMaster: async (id) => {
        prepared.push(id);
      },
    });

    // Act
    const first = await cloud.launch(masterLaunch("c-one"));
    const again = await cloud.launch(masterLaunch("c-one"));
    const other = cloud.launch(masterLaunch("c-two"));

    // Assess
    expect(first.instances.map((i) => [i.id, i.privateIp, i.state])).toEqual([
      [masterInstanceId("c-one"), "127.0.0.1", "RUNNING"],
    ]);
    expect(again.instances[0]?.id).toBe(first.instances[0]?.id);
    expect(prepared).toEqual(["c-one"]);
    await expect(other).rejects.toBeInstanceOf(InvalidRequestError);
    await expect(other).rejects.toThrow(/one cluster at a time and c-one holds/);
    expect((await cloud.list("c-one")).map((i) => i.id)).toEqual([masterInstanceId("c-one")]);

    // Act: terminate releases it
    await cloud.terminate([masterInstanceId("c-one")]);

    // Assess
    expect(await cloud.describe([masterInstanceId("c-one")])).toEqual([]);
    expect((await cloud.launch(masterLaunch("c-two"))).instances[0]?.id).toBe(masterInstanceId("c-two"));
  });

  it("sends compute launches to the local provider", async () => {
    // Prepare
    const computes = new FakeProvider({ clock: new FakeClock() });
    const cloud = new LocalCloud(computes, {
      agentAddress: "127.0.0.1",
      prepareMaster: async () => undefined,
    });

    // Act
    const result = await cloud.launch({
      ...masterLaunch("c-one"),
      queue: "compute",
      round: "r1",
      candidates: [{ instanceType: "c5.xlarge", zone: "zone-a", chargeType: "ON_DEMAND" }],
    });

    // Assess
    expect(result.instances).toHaveLength(1);
    expect((await cloud.list("c-one")).map((i) => i.id)).toEqual(result.instances.map((i) => i.id));
  });
});

describe("local settings", () => {
  it("accepts the defaults and names the bad field otherwise", () => {
    const ok = { ...DEFAULT_SETTINGS, stateDir: "/var/tmp/x" };
    expect(checkSettings(ok)).toEqual(ok);
    expect(() => checkSettings({ ...ok, stateDir: "relative" })).toThrow(/absolute path/);
    expect(() => checkSettings({ ...ok, apiPort: 80 })).toThrow(/apiPort/);
    expect(() => checkSettings({ ...ok, prefix: "bad prefix;" })).toThrow(/prefix/);
    expect(() => checkSettings({ ...ok, prefix: "toolongx-" })).toThrow(/prefix/);
    expect(() => checkSettings({ ...ok, subnet: "10.0.300" })).toThrow(/subnet/);
    // slurm.conf splits on spaces: a state directory with one would break slurmctld after the start
    expect(() => checkSettings({ ...ok, stateDir: "/tmp/dir with space" })).toThrow(/state directory/);
  });

  it("names the flag the user gave, not the field behind it, before anything starts", () => {
    // Prepare: the options as commander hands them over, defaults filled in
    const opts = {
      stateDir: "/var/tmp/x",
      port: "8080",
      agentPort: "8787",
      slurmctldPort: "6817",
      slurmdPort: "6818",
      prefix: "nsl-",
      subnet: "192.168.250",
      interval: "2",
      bootDelay: "1000",
    };
    // Act
    const refusal = (changes: Record<string, string>) => {
      try {
        settingsFrom({ ...opts, ...changes });
        return "accepted";
      } catch (error) {
        return (error as Error).message;
      }
    };
    // Assess
    expect(settingsFrom(opts)).toMatchObject({ apiPort: 8080, scalerIntervalSeconds: 2, bootDelayMs: 1000 });
    expect(refusal({ port: "80808" })).toBe("--port must be a port number from 1024 to 65535, got 80808");
    expect(refusal({ interval: "0" })).toBe("--interval must be 1 to 300");
    expect(refusal({ bootDelay: "-5" })).toBe("--boot-delay must be 0 to 600000");
    expect(refusal({ prefix: "my prefix" })).toMatch(/^--prefix must be/);
    expect(refusal({ stateDir: "/tmp/dir with space" })).toMatch(
      /^--state-dir must be an absolute path of letters/,
    );
    expect(startTimeoutMs("180")).toBe(180_000);
    expect(() => startTimeoutMs("abc")).toThrow(
      '--timeout must be a whole number of seconds from 1 to 3600, got "abc"',
    );
    expect(() => startTimeoutMs("0")).toThrow(/--timeout/);
  });
});

describe("the local mode's packages", () => {
  it("names every package a machine with only Slurm, munge and ip lacks, the boot scripts' tools included", () => {
    // Prepare: a minimal Debian with Slurm installed by hand (no aws, curl, python3, openssl, iptables)
    const installed = new Set(["slurmctld", "slurmd", "sbatch", "munged", "ip"]);
    // Act
    const missing = missingPackages((program) => installed.has(program));
    const none = missingPackages(() => true);
    // Assess: --install-deps installs these, so a fresh machine's nodes can run their user data
    expect(missing).toEqual(["util-linux", "iptables", "openssl", "awscli", "curl", "python3"]);
    expect(none).toEqual([]);
  });
});

describe("withLocalAgentPort", () => {
  it("sets the master's agent port and leaves anything else for the workflow to validate", () => {
    expect(withLocalAgentPort({ region: "local", master: { zone: "a", agentPort: 1 } }, 8787)).toEqual({
      region: "local",
      master: { zone: "a", agentPort: 8787 },
    });
    expect(withLocalAgentPort("junk", 8787)).toBe("junk");
    expect(withLocalAgentPort({ master: null }, 8787)).toEqual({ master: null });
  });
});

describe("formatTable", () => {
  it("aligns columns and makes cells printable", () => {
    expect(
      formatTable(
        ["A", "BB"],
        [
          ["x\u0007y", undefined],
          ["long-cell", 2],
        ],
      ),
    ).toBe("A          BB\nx?y        -\nlong-cell  2");
  });
});

describe("busyPorts", () => {
  it("names each port something else holds, with the flag that moves it", async () => {
    // Prepare: hold a free port as the agent's
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
    const held = (holder.address() as { port: number }).port;
    const free = createServer();
    await new Promise<void>((resolve) => free.listen(0, "127.0.0.1", resolve));
    const freePort = (free.address() as { port: number }).port;
    await new Promise<void>((resolve) => free.close(() => resolve()));

    try {
      // Act
      const busy = await busyPorts({
        ...DEFAULT_SETTINGS,
        stateDir: "/var/tmp/x",
        apiPort: freePort,
        agentPort: held,
        slurmctldPort: freePort,
      });

      // Assess
      expect(busy).toEqual([`${held} (--agent-port)`]);
    } finally {
      await new Promise<void>((resolve) => holder.close(() => resolve()));
    }
  });
});
