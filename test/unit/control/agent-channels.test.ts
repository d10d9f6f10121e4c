import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { GetCommandInvocationCommand, SendCommandCommand, SSMClient } from "@aws-sdk/client-ssm";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, describe, expect, it } from "vitest";
import type { Report } from "../../../agent/report-schema.js";
import { createAgentServer } from "../../../agent/server.js";
import { HttpAgentChannel } from "../../../lib/control/agent-http.js";
import { SsmAgentChannel } from "../../../lib/control/agent-ssm.js";
import { FakeAgent } from "../../../lib/control/fake-agent.js";
import {
  AgentActionError,
  AgentUnreachableError,
  SlurmctldUnreachableError,
} from "../../../lib/ports/agent-channel.js";
import { FakeClock } from "../../../lib/providers/fake/index.js";
import { SlurmNodeNotFoundError } from "../../../scheduler-plugins/slurm/errors.js";

const KEY = Buffer.from("0123456789abcdef0123456789abcdef");
const clock = new FakeClock(Date.now());

async function okReport(): Promise<Report> {
  const agent = new FakeAgent(clock);
  agent.addPending("compute", "17", { nodes: 2, cpus: 4 });
  return agent.report();
}

let server: Server | undefined;
afterEach(() => {
  server?.close();
  server = undefined;
});

async function startAgent(report: () => Promise<Report>, calls: string[] = []): Promise<string> {
  server = createAgentServer({
    key: KEY,
    report,
    actions: {
      drain: async (node, reason) => {
        calls.push(`drain ${node} ${reason}`);
      },
      resume: async (node) => {
        if (node === "ghost") throw new SlurmNodeNotFoundError("no such node");
        calls.push(`resume ${node}`);
      },
      deleteNode: async (node) => {
        calls.push(`delete ${node}`);
      },
    },
  });
  const s = server;
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

describe("HttpAgentChannel against the real agent server", () => {
  it("reads a signed, validated report and performs node actions", async () => {
    // Prepare
    const calls: string[] = [];
    const base = await startAgent(okReport, calls);
    const channel = new HttpAgentChannel({ baseUrl: base, key: KEY });
    // Act
    const report = await channel.report();
    await channel.drain("c4-a", "nowscale: idle 300 s");
    await channel.resume("c4-a");
    await channel.deleteNode("c4-a");
    // Assess
    expect(report.jobs[0]?.jobIds).toEqual(["17"]);
    expect(calls).toEqual(["drain c4-a nowscale: idle 300 s", "resume c4-a", "delete c4-a"]);
    expect((await channel.health()).agentVersion).toMatch(/^\d/);
  });

  it("is unreachable with the wrong key, and an unknown node is an action error", async () => {
    // Prepare
    const base = await startAgent(okReport);
    const wrong = new HttpAgentChannel({ baseUrl: base, key: Buffer.from("x".repeat(32)) });
    const right = new HttpAgentChannel({ baseUrl: base, key: KEY });
    // Act / Assess
    await expect(wrong.report()).rejects.toBeInstanceOf(AgentUnreachableError);
    await expect(right.resume("ghost")).rejects.toMatchObject({ name: "AgentActionError", status: 404 });
    await expect(right.drain("bad name; rm -rf /", "x")).rejects.toBeInstanceOf(AgentActionError);
  });

  it("turns a slurmctld-unreachable report into its typed error and an invalid report into unreachable", async () => {
    // Prepare
    const down = await startAgent(async () => ({
      schemaVersion: 1,
      agentVersion: "0.1.0",
      scheduler: "slurm",
      generatedAt: new Date().toISOString(),
      status: "slurmctld-unreachable",
      error: "connection refused",
    }));
    // Act / Assess
    await expect(new HttpAgentChannel({ baseUrl: down, key: KEY }).report()).rejects.toBeInstanceOf(
      SlurmctldUnreachableError,
    );
    server?.close();
    const bad = await startAgent(
      async () => ({ ...(await okReport()), jobs: [{ queue: "$(reboot)" }] }) as never,
    );
    await expect(new HttpAgentChannel({ baseUrl: bad, key: KEY }).report()).rejects.toBeInstanceOf(
      AgentUnreachableError,
    );
  });

  it("is unreachable when nothing listens", async () => {
    const channel = new HttpAgentChannel({ baseUrl: "http://127.0.0.1:1", key: KEY, timeoutMs: 2000 });
    await expect(channel.report()).rejects.toBeInstanceOf(AgentUnreachableError);
  });
});

describe("SsmAgentChannel", () => {
  it("runs node actions as single-quoted argument words and maps the agent's exit codes", async () => {
    // Prepare
    const ssm = mockClient(SSMClient);
    ssm.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-3" } });
    ssm
      .on(GetCommandInvocationCommand)
      .resolvesOnce({ Status: "Success", ResponseCode: 0 })
      .resolvesOnce({ Status: "Failed", ResponseCode: 3 })
      .resolvesOnce({ Status: "Failed", ResponseCode: 2 });
    const channel = new SsmAgentChannel({
      client: new SSMClient({ region: "us-east-1" }),
      instanceId: "i-m",
      clock: new FakeClock(),
    });
    // Act
    await channel.drain("i-0abc", "idle for 300 s; it's time");
    const unknown = channel.resume("ghost").catch((e: unknown) => e);
    const down = channel.deleteNode("i-0abc").catch((e: unknown) => e);
    // Assess
    const commands = ssm
      .commandCalls(SendCommandCommand)
      .map((c) => c.args[0].input.Parameters?.commands?.[0]);
    expect(commands[0]).toBe(
      "'node' '/opt/nowscale/nowscale-agent.js' 'drain' 'i-0abc' '--reason' 'nowscale: idle for 300 s; it'\\''s time'",
    );
    expect(await unknown).toMatchObject({ name: "AgentActionError", status: 404 });
    expect(await down).toBeInstanceOf(SlurmctldUnreachableError);
    await expect(channel.drain("a;reboot", "x")).rejects.toBeInstanceOf(AgentActionError);
    await expect(channel.drain("i-0abc", "bad\nreason")).rejects.toBeInstanceOf(AgentActionError);
    expect(ssm.commandCalls(SendCommandCommand)).toHaveLength(3);
    ssm.restore();
  });

  it("runs the fixed report command and validates its output", async () => {
    // Prepare
    const ssm = mockClient(SSMClient);
    const report = await okReport();
    ssm.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-1" } });
    ssm
      .on(GetCommandInvocationCommand)
      .resolvesOnce({ Status: "InProgress" })
      .resolves({ Status: "Success", StandardOutputContent: JSON.stringify(report) });
    const channel = new SsmAgentChannel({
      client: new SSMClient({ region: "us-east-1" }),
      instanceId: "i-master",
      clock: new FakeClock(),
    });
    // Act
    const got = await channel.report();
    // Assess
    expect(got.jobs).toEqual(report.status === "ok" ? report.jobs : []);
    const sent = ssm.commandCalls(SendCommandCommand)[0]?.args[0].input;
    expect(sent?.InstanceIds).toEqual(["i-master"]);
    expect(sent?.Parameters?.commands).toEqual(["'node' '/opt/nowscale/nowscale-agent.js' 'report'"]);
    expect(ssm.commandCalls(GetCommandInvocationCommand)).toHaveLength(2);
    ssm.restore();
  });

  it("reports slurmctld down from a failed command's output, and times out on a stuck command", async () => {
    // Prepare
    const ssm = mockClient(SSMClient);
    ssm.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-2" } });
    ssm.on(GetCommandInvocationCommand).resolvesOnce({
      Status: "Failed",
      StandardOutputContent: JSON.stringify({
        schemaVersion: 1,
        agentVersion: "0.1.0",
        scheduler: "slurm",
        generatedAt: new Date().toISOString(),
        status: "slurmctld-unreachable",
        error: "down",
      }),
    });
    const fake = new FakeClock();
    const channel = new SsmAgentChannel({
      client: new SSMClient({ region: "us-east-1" }),
      instanceId: "i-m",
      clock: fake,
    });
    // Act / Assess
    await expect(channel.report()).rejects.toBeInstanceOf(SlurmctldUnreachableError);
    ssm.on(GetCommandInvocationCommand).resolves({ Status: "InProgress" });
    await expect(channel.report()).rejects.toBeInstanceOf(AgentUnreachableError);
    ssm.restore();
  });
});
