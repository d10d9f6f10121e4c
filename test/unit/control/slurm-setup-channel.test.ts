import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { GetCommandInvocationCommand, SendCommandCommand, SSMClient } from "@aws-sdk/client-ssm";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, describe, expect, it } from "vitest";
import { createAgentServer, type NodeActions } from "../../../agent/server.js";
import { FakeAgent, readySetup } from "../../../lib/agent-channels/fake.js";
import { HttpAgentChannel } from "../../../lib/agent-channels/http.js";
import { SsmAgentChannel } from "../../../lib/agent-channels/ssm.js";
import type { SlurmSetup } from "../../../lib/ports/slurm-setup.js";
import { FakeClock } from "../../../lib/providers/fake/index.js";
import { SlurmUnavailableError } from "../../../scheduler-plugins/slurm/errors.js";

/**
 * The attach path's one new agent call, `slurm-setup`: over signed HTTP against the real agent server,
 * and over SSM Run Command (mocked SSM): the answer is checked, and every failure is the typed error
 * attach turns into a message naming the field.
 */

const KEY = Buffer.from("0123456789abcdef0123456789abcdef");
const clock = new FakeClock(Date.now());
const NO_ACTIONS = {} as NodeActions;

let server: Server | undefined;
afterEach(() => {
  server?.close();
  server = undefined;
});

async function agentWith(setup?: () => Promise<SlurmSetup>): Promise<string> {
  const fake = new FakeAgent(clock);
  server = createAgentServer({
    key: KEY,
    actions: NO_ACTIONS,
    report: () => fake.report(),
    ...(setup === undefined ? {} : { setup }),
  });
  await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const failure = (p: Promise<unknown>) =>
  p.then(
    () => "resolved",
    (e: Error) => `${e.name}: ${e.message}`,
  );

describe("slurm-setup over signed HTTP", () => {
  it("reads the setup; refuses a forged answer, a wrong key, an old agent, and says when slurmctld is down", async () => {
    // Prepare
    const ready = readySetup(["burst"]);
    const baseUrl = await agentWith(async () => ready);
    const good = new HttpAgentChannel({ baseUrl, key: KEY });
    const wrongKey = new HttpAgentChannel({
      baseUrl,
      key: Buffer.from("another-key-of-at-least-32-bytes!!"),
    });
    // Act
    const setup = await good.slurmSetup();
    const refused = await failure(wrongKey.slurmSetup());
    server?.close();
    const forged = await failure(
      new HttpAgentChannel({
        baseUrl: await agentWith(async () => ({
          ...ready,
          partitions: [{ name: "a b", nodeSets: [], state: "UP" }],
        })),
        key: KEY,
      }).slurmSetup(),
    );
    server?.close();
    const old = await failure(new HttpAgentChannel({ baseUrl: await agentWith(), key: KEY }).slurmSetup());
    server?.close();
    const down = await failure(
      new HttpAgentChannel({
        baseUrl: await agentWith(async () => {
          throw new SlurmUnavailableError("Unable to contact slurm controller");
        }),
        key: KEY,
      }).slurmSetup(),
    );
    // Assess
    expect(setup).toEqual(ready);
    expect(refused).toBe("AgentUnreachableError: agent slurm-setup: HTTP 401");
    expect(forged).toMatch(
      /^AgentUnreachableError: agent slurm-setup: not a valid answer: .*partitions\[0\]\.name/s,
    );
    expect(old).toContain("HTTP 404 (an agent older than the attach path: install this version)");
    expect(down).toBe("SlurmctldUnreachableError: agent slurm-setup: slurmctld did not answer");
  });
});

describe("slurm-setup over SSM Run Command", () => {
  it("runs the document's slurm-setup action on a hybrid (mi-) instance and checks its stdout", async () => {
    // Prepare
    const ssm = mockClient(SSMClient);
    ssm.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-1" } });
    ssm
      .on(GetCommandInvocationCommand)
      .resolvesOnce({
        Status: "Success",
        ResponseCode: 0,
        StandardOutputContent: JSON.stringify(readySetup(["burst"])),
      })
      .resolvesOnce({ Status: "Failed", ResponseCode: 2, StandardOutputContent: '{"error":"down"}' })
      .resolvesOnce({ Status: "Failed", ResponseCode: 64, StandardOutputContent: "" });
    const channel = new SsmAgentChannel({
      client: new SSMClient({ region: "us-east-1" }),
      instanceId: "mi-0123456789abcdef0",
      documentName: "NowScaleAgent",
      clock: new FakeClock(0),
      pollMs: 1,
    });
    // Act
    const setup = await channel.slurmSetup();
    const down = await failure(channel.slurmSetup());
    const old = await failure(channel.slurmSetup());
    ssm.restore();
    // Assess
    expect(setup.partitions.map((p) => p.name)).toEqual(["burst"]);
    const sent = ssm.commandCalls(SendCommandCommand)[0]?.args[0].input;
    expect(sent).toMatchObject({
      DocumentName: "NowScaleAgent",
      InstanceIds: ["mi-0123456789abcdef0"],
      Parameters: { action: ["slurm-setup"], node: [""], reason: [""] },
    });
    // The agent's own error follows, as in every run-command channel's message.
    expect(down).toBe(
      "SlurmctldUnreachableError: agent slurm-setup over SSM: slurmctld did not answer: down",
    );
    expect(old).toContain("exit 64 (an agent older than the attach path");
  });
});
