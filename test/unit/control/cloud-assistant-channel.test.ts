import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ecs from "@alicloud/ecs20140526";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CloudAssistantAgentChannel } from "../../../lib/agent-channels/cloud-assistant.js";
import { FakeAgent } from "../../../lib/agent-channels/fake.js";
import {
  AgentActionError,
  AgentUnreachableError,
  SlurmctldUnreachableError,
} from "../../../lib/ports/agent-channel.js";
import { placeholderName } from "../../../lib/ports/agent-protocol.js";
import { cjsDefault, clientConfig, EcsApi } from "../../../lib/providers/alibaba-ecs/ecs-api.js";
import { FakeClock, FakeCloud } from "../../../lib/providers/fake/index.js";
import {
  type CommandOutcome,
  type EcsSimulator,
  startEcsSimulator,
  TEST_ACCESS_KEY_ID,
  TEST_ACCESS_KEY_SECRET,
} from "../providers/simulators/alibaba-ecs.js";

const KEY = { accessKeyId: TEST_ACCESS_KEY_ID, accessKeySecret: TEST_ACCESS_KEY_SECRET };
const EcsClient = cjsDefault(ecs.default);

/**
 * The master's shell, as Cloud Assistant runs a RunShellScript: `sh -c` with a `node` first on PATH that
 * stands in for the agent. It records its words and its stdin, prints the answer file of its action and
 * exits with that action's status.
 */
class FakeMaster {
  readonly dir = mkdtempSync(join(tmpdir(), "nowscale-ca-"));
  constructor() {
    writeFileSync(
      join(this.dir, "node"),
      `#!/bin/sh\nprintf '%s\\n' "$@" > "${this.dir}/args"\ncat > "${this.dir}/stdin"\n` +
        `cat "${this.dir}/answer.$2" 2>/dev/null\nexit $(cat "${this.dir}/exit.$2" 2>/dev/null || echo 0)\n`,
      { mode: 0o755 },
    );
  }
  answer(action: string, text: string, exit = 0) {
    writeFileSync(join(this.dir, `answer.${action}`), text);
    writeFileSync(join(this.dir, `exit.${action}`), String(exit));
  }
  run = (_instanceId: string, script: string): CommandOutcome => {
    try {
      const output = execFileSync("sh", ["-c", script], {
        encoding: "utf8",
        input: "",
        env: { PATH: `${this.dir}:${process.env.PATH ?? ""}` },
      });
      return { exitCode: 0, output };
    } catch (error) {
      const e = error as { status?: number; stdout?: string };
      return { exitCode: e.status ?? 1, output: e.stdout ?? "" };
    }
  };
  args = () => readFileSync(join(this.dir, "args"), "utf8").trimEnd().split("\n");
  stdin = () => readFileSync(join(this.dir, "stdin"), "utf8");
  close = () => rmSync(this.dir, { recursive: true, force: true });
}

describe("CloudAssistantAgentChannel (real ECS SDK, loopback Cloud Assistant, the line run by sh)", () => {
  let cloud: FakeCloud;
  let sim: EcsSimulator;
  let master: FakeMaster;
  let instanceId: string;
  let channel: CloudAssistantAgentChannel;
  const clock = new FakeClock(Date.now());

  beforeEach(async () => {
    cloud = new FakeCloud({ idPrefix: "i-bp", clock });
    master = new FakeMaster();
    sim = await startEcsSimulator(cloud, { runCommand: master.run });
    const config = {
      regionId: "cn-hangzhou",
      credential: KEY,
      endpoint: sim.endpoint,
      protocol: "http" as const,
    };
    const [started] = await new EcsApi(config).runInstances({
      candidate: { instanceType: "ecs.g7.large", zone: "cn-hangzhou-h", chargeType: "ON_DEMAND" },
      minCount: 1,
      maxCount: 1,
      imageId: "img",
      clientToken: "m1",
      namePrefix: "nowscale-hpc1-master",
      tags: {},
    });
    instanceId = started?.id ?? "";
    channel = new CloudAssistantAgentChannel({
      client: new EcsClient(clientConfig(config)),
      regionId: "cn-hangzhou",
      instanceId,
      clock,
    });
  });

  afterEach(async () => {
    master.close();
    await sim.close();
  });

  it("runs the report command as one Base64 RunShellScript and reads the agent's report", async () => {
    // Prepare
    const agent = new FakeAgent(clock);
    agent.addPending("compute", "17", { nodes: 2, cpus: 4 });
    master.answer("report", JSON.stringify(await agent.report()));

    // Act
    const report = await channel.report();

    // Assess
    expect(report.jobs[0]?.jobIds).toEqual(["17"]);
    const [run] = sim.callsOf("RunCommand");
    expect(run?.params).toMatchObject({
      RegionId: "cn-hangzhou",
      Type: "RunShellScript",
      ContentEncoding: "Base64",
      "InstanceId.1": instanceId,
      Timeout: "30",
    });
    expect(Buffer.from(run?.params.CommandContent ?? "", "base64").toString()).toBe(
      "'node' '/opt/nowscale/nowscale-agent.js' 'report'",
    );
    // Polled until done (the first answer is Running), asking for the output in plain text.
    expect(sim.callsOf("DescribeInvocationResults").map((c) => c.params.ContentEncoding)).toEqual([
      "PlainText",
      "PlainText",
    ]);
  });

  it("quotes a drain reason so nothing in it runs, and maps the agent's exit codes", async () => {
    // Act
    await channel.drain("hpc1-compute-1", "it's $(id) `x`");
    master.answer("resume", "", 3);
    const ghost = channel.resume("ghost-1");
    master.answer("delete-node", '{"error":"sinfo timed out"}\n', 2);
    const down = channel.deleteNode("hpc1-compute-1");

    // Assess
    await expect(ghost).rejects.toMatchObject({ status: 404 });
    await expect(down).rejects.toBeInstanceOf(SlurmctldUnreachableError);
    // The message names the channel and carries the agent's own error (run-command-channel.ts).
    await expect(down).rejects.toThrow(
      "agent delete-node hpc1-compute-1 over Cloud Assistant: slurmctld did not answer: sinfo timed out",
    );
    // The args file holds the last call's words; the drain ran first, so check it through the script.
    const drain = sim.callsOf("RunCommand")[0];
    const line = Buffer.from(drain?.params.CommandContent ?? "", "base64").toString();
    expect(line).toContain("'nowscale: it'\\''s $(id) `x`'");
    await expect(channel.drain("bad;name", "x")).rejects.toBeInstanceOf(AgentActionError);
  });

  it("sends job notes gzipped and base64-encoded into the agent's stdin", async () => {
    // Prepare
    const note = { jobIds: ["17"], text: "nowscale: it's $(id)", field: "comment" as const };

    // Act
    await channel.setJobNotes([note]);

    // Assess
    expect(master.args()).toEqual(["/opt/nowscale/nowscale-agent.js", "set-job-notes", "--notes", "-"]);
    expect(JSON.parse(master.stdin())).toEqual({ notes: [note] });
  });

  it("syncs placeholders through stdin and refuses a payload over Cloud Assistant's limit before sending", async () => {
    // Prepare
    const shape = {
      queue: "gpu",
      instanceType: "g4",
      cpus: 4,
      realMemoryMiB: 1000,
      gpus: 1,
      features: ["q_gpu"],
    };
    const spec = { name: placeholderName(shape), ...shape };
    master.answer("sync-placeholders", `{"ok":true,"created":["${spec.name}"],"removed":[]}\n`);
    const huge = Array.from({ length: 200 }, (_, i) => {
      const big = {
        ...shape,
        cpus: i + 1,
        features: Array.from({ length: 64 }, () => `f${randomBytes(6).toString("hex")}`),
      };
      return { name: placeholderName(big), ...big };
    });

    // Act
    const answer = await channel.syncPlaceholders([spec]);
    const refused = await channel.syncPlaceholders(huge).catch((e: unknown) => e);

    // Assess
    expect(answer).toEqual({ created: [spec.name], removed: [] });
    expect(JSON.parse(master.stdin())).toEqual({ placeholders: [spec] });
    expect(refused).toMatchObject({ status: 413 });
    expect(sim.callsOf("RunCommand")).toHaveLength(1);
  });

  it("is unreachable when the instance is gone or the command never finishes", async () => {
    // Prepare
    const gone = new CloudAssistantAgentChannel({
      client: new EcsClient(
        clientConfig({ regionId: "cn-hangzhou", credential: KEY, endpoint: sim.endpoint, protocol: "http" }),
      ),
      regionId: "cn-hangzhou",
      instanceId: "i-bpmissing",
      clock,
    });
    const stuck = new CloudAssistantAgentChannel({
      client: {
        runCommand: async () => ({ body: new ecs.RunCommandResponseBody({ invokeId: "t-1" }) }),
        describeInvocationResults: async () => ({ body: new ecs.DescribeInvocationResultsResponseBody({}) }),
      },
      regionId: "cn-hangzhou",
      instanceId,
      timeoutMs: 5_000,
      clock,
    });

    // Act
    const fromGone = await gone.health().catch((e: unknown) => e);
    const fromStuck = await stuck.report().catch((e: unknown) => e);

    // Assess
    expect(fromGone).toBeInstanceOf(AgentUnreachableError);
    expect(fromStuck).toBeInstanceOf(AgentUnreachableError);
    expect(String(fromStuck)).toMatch(/did not finish within 5000 ms/);
  });
});
