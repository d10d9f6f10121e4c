import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeAgent } from "../../../lib/agent-channels/fake.js";
import { TatAgentChannel, tatClient } from "../../../lib/agent-channels/tat.js";
import {
  AgentActionError,
  AgentUnreachableError,
  SlurmctldUnreachableError,
} from "../../../lib/ports/agent-channel.js";
import type { Report } from "../../../lib/ports/agent-report.js";
import { FakeClock, FakeCloud } from "../../../lib/providers/fake/index.js";
import { shellTatAgent } from "../providers/simulators/tat-shell-agent.js";
import {
  type CvmSimulator,
  startCvmSimulator,
  TEST_SECRET_ID,
  TEST_SECRET_KEY,
} from "../providers/simulators/tencent-cvm.js";

const AGENT = "/opt/nowscale/nowscale-agent.js";

async function okReport(clock: FakeClock): Promise<Report> {
  const agent = new FakeAgent(clock);
  agent.addPending("compute", "17", { nodes: 2, cpus: 4 });
  return agent.report();
}

describe("TatAgentChannel (real TAT SDK, local TAT endpoint, the command run in sh)", () => {
  let cloud: FakeCloud;
  let sim: CvmSimulator;
  let master: string;
  let clock: FakeClock;

  beforeEach(async () => {
    clock = new FakeClock();
    cloud = new FakeCloud({ idPrefix: "ins-", clock });
    sim = await startCvmSimulator(cloud);
    [master] = cloud
      .run({
        instanceType: "S5.LARGE8",
        zone: "ap-guangzhou-3",
        chargeType: "ON_DEMAND",
        imageId: "img-1",
        minCount: 1,
        maxCount: 1,
        tags: {},
      })
      .map((i) => i.id) as [string];
  });

  afterEach(() => sim.close());

  const channel = (timeoutMs = 30_000) =>
    new TatAgentChannel({
      client: tatClient({
        region: "ap-guangzhou",
        credential: { secretId: TEST_SECRET_ID, secretKey: TEST_SECRET_KEY },
        endpoint: sim.endpoint,
        protocol: "http://",
      }),
      instanceId: master,
      clock,
      timeoutMs,
    });

  it("runs the fixed report command on the master and validates its output", async () => {
    // Prepare
    const report = await okReport(clock);
    const agent = shellTatAgent(() => ({ exitCode: 0, output: JSON.stringify(report) }));
    sim.services.tatAgent = agent;
    sim.services.tatPolls = 2;

    // Act
    const got = await channel().report();

    // Assess
    expect(got.jobs).toEqual(report.status === "ok" ? report.jobs : []);
    expect(agent.ran).toEqual([{ instanceId: master, words: [AGENT, "report"], stdin: "" }]);
    const [run] = sim.callsOf("RunCommand");
    expect(run?.params).toMatchObject({ InstanceIds: [master], CommandType: "SHELL", SaveCommand: false });
    expect(sim.callsOf("DescribeInvocationTasks")[0]?.params).toEqual({
      Filters: [{ Name: "invocation-id", Values: [expect.any(String)] }],
      HideOutput: false,
    });
  });

  it("runs node actions as single-quoted words and maps the agent's exit codes", async () => {
    // Prepare
    const codes: Record<string, number> = { "n-1": 0, "n-2": 2, "n-3": 3, "n-4": 64 };
    const agent = shellTatAgent((_id, words) => ({ exitCode: codes[words[2] ?? ""] ?? 1, output: "" }));
    sim.services.tatAgent = agent;
    const c = channel();

    // Act
    await c.drain("n-1", "it's $(reboot) `x`");
    const down = await c.resume("n-2").catch((e: unknown) => e);
    const missing = await c.deleteNode("n-3").catch((e: unknown) => e);
    const refused = await c.resume("n-4").catch((e: unknown) => e);
    const invalid = await c.resume("bad;name").catch((e: unknown) => e);

    // Assess
    expect(agent.ran[0]?.words).toEqual([AGENT, "drain", "n-1", "--reason", "nowscale: it's $(reboot) `x`"]);
    expect(down).toBeInstanceOf(SlurmctldUnreachableError);
    expect(missing).toMatchObject({ name: "AgentActionError", status: 404 });
    expect(refused).toMatchObject({ name: "AgentActionError", status: 400 });
    expect((refused as Error).message).toBe("agent resume n-4 over TAT: refused");
    expect(invalid).toBeInstanceOf(AgentActionError);
    expect(agent.ran).toHaveLength(4);
  });

  it("gives job notes to the agent's stdin through the gzipped payload", async () => {
    // Prepare
    const agent = shellTatAgent(() => ({ exitCode: 0, output: "" }));
    sim.services.tatAgent = agent;
    const note = { jobIds: ["17", "9_0-28"], text: "nowscale: it's $(id) `x`", field: "comment" as const };

    // Act
    await channel().setJobNotes([note]);

    // Assess
    expect(agent.ran[0]?.words).toEqual([AGENT, "set-job-notes", "--notes", "-"]);
    expect(JSON.parse(agent.ran[0]?.stdin ?? "")).toEqual({ notes: [note] });
  });

  it("is unreachable when the master has no TAT agent answering, or the command never ends", async () => {
    // Prepare: no agent: TAT cannot deliver the command.
    sim.services.tatAgent = undefined;
    const undelivered = await channel()
      .health()
      .catch((e: unknown) => e);
    // An agent that takes longer than the channel waits.
    sim.services.tatAgent = shellTatAgent(() => ({ exitCode: 0, output: "{}" }));
    sim.services.tatPolls = 1000;

    // Act
    const stuck = await channel(5_000)
      .report()
      .catch((e: unknown) => e);

    // Assess
    expect(undelivered).toBeInstanceOf(AgentUnreachableError);
    expect((undelivered as Error).message).toMatch(/DELIVER_FAILED/);
    expect(stuck).toBeInstanceOf(AgentUnreachableError);
    expect((stuck as Error).message).toMatch(/did not finish within 5000 ms/);
  });

  it("is unreachable when RunCommand is refused (an unknown instance)", async () => {
    // Prepare
    const c = new TatAgentChannel({
      client: tatClient({
        region: "ap-guangzhou",
        credential: { secretId: TEST_SECRET_ID, secretKey: TEST_SECRET_KEY },
        endpoint: sim.endpoint,
        protocol: "http://",
      }),
      instanceId: "ins-gone",
      clock,
    });

    // Act
    const failure = await c.report().catch((e: unknown) => e);

    // Assess
    expect(failure).toBeInstanceOf(AgentUnreachableError);
    expect((failure as Error).message).toMatch(/InvalidInstanceId\.NotFound|no instance/);
  });
});
