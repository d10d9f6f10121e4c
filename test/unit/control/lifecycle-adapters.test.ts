import { describe, expect, it } from "vitest";
import { FakeAgent } from "../../../lib/agent-channels/fake.js";
import { AgentActionError } from "../../../lib/ports/agent-channel.js";
import { FakeClock } from "../../../lib/providers/fake/fake-clock.js";
import { AgentChannelMasterAgent } from "../../../lib/workflow/tasks/agent-channel-adapter.js";
import { failureReason } from "../../../lib/workflow/tasks/reason.js";

const master = { instanceId: "i-1", agentPort: 8787 };

describe("AgentChannelMasterAgent", () => {
  it("is healthy when the agent answers and not (without throwing) while it is down", async () => {
    // Prepare
    const channel = new FakeAgent(new FakeClock());
    const agent = new AgentChannelMasterAgent(async () => channel);

    // Act
    const up = await agent.isHealthy("hpc-1", master);
    channel.outage = "agent";
    const down = await agent.isHealthy("hpc-1", master);

    // Assess
    expect([up, down]).toEqual([true, false]);
  });

  it("drains every node the report lists, and gives up quietly when it cannot", async () => {
    // Prepare
    const channel = new FakeAgent(new FakeClock());
    channel.join("i-a", "compute", "c5.xlarge", "us-east-1a");
    channel.join("i-b", "compute", "c5.xlarge", "us-east-1a");
    const agent = new AgentChannelMasterAgent(async () => channel);

    // Act
    const drained = await agent.drainAll("hpc-1", master, "nowscale: cluster deletion");
    const refusing = new AgentChannelMasterAgent(async () => {
      const c = new FakeAgent(new FakeClock());
      c.join("i-c", "compute", "c5.xlarge", "us-east-1a");
      c.drain = async () => {
        throw new AgentActionError("node actions need the HTTP channel");
      };
      return c;
    });

    // Assess
    expect(drained).toBe(true);
    expect(channel.calls.filter((c) => c.action === "drain").map((c) => "node" in c && c.node)).toEqual([
      "i-a",
      "i-b",
    ]);
    expect(await refusing.drainAll("hpc-1", master, "bye")).toBe(false);
  });
});

describe("failureReason", () => {
  it("keeps a Lambda error's type and message, never its stack trace", () => {
    const cause = JSON.stringify({
      errorType: "ThrottledError",
      errorMessage: "Rate\nexceeded",
      trace: ["at x"],
    });
    expect(failureReason({ Error: "ThrottledError", Cause: cause })).toBe("ThrottledError: Rate exceeded");
  });

  it("adds the clean-up's failure and bounds the length", () => {
    const reason = failureReason({ Error: "A", Cause: "x".repeat(5000) }, { Error: "B", Cause: "y" });
    expect(reason.length).toBeLessThanOrEqual(1000);
    expect(failureReason({ Error: "A", Cause: "a" }, { Error: "B", Cause: "b" })).toBe(
      "A: a; cleanup incomplete: B: b",
    );
    expect(failureReason({ Error: "A", Cause: "a" }, {})).toBe("A: a");
  });
});
