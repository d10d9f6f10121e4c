import { Metrics } from "@aws-lambda-powertools/metrics";
import { describe, expect, it, vi } from "vitest";
import { PowertoolsMetricsSink } from "../../../lib/control/metrics.js";

describe("PowertoolsMetricsSink", () => {
  it("emits EMF in the NowScale namespace; figures with their own dimensions keep the cluster's", () => {
    // Prepare
    const lines: string[] = [];
    const spy = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk).trim());
      return true;
    });
    const metrics = new Metrics({ namespace: "NowScale", serviceName: "test" });
    const sink = new PowertoolsMetricsSink(metrics, { ClusterId: "c-1" });
    // Act
    sink.add("LaunchFailures", "Count", 1, { Reason: "InsufficientCapacity" });
    sink.add("PendingDemand", "Count", 7);
    metrics.publishStoredMetrics();
    spy.mockRestore();
    // Assess
    const blobs = lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
    const failure = blobs.find((b) => "LaunchFailures" in b);
    expect(failure).toMatchObject({ ClusterId: "c-1", Reason: "InsufficientCapacity", LaunchFailures: 1 });
    expect(failure._aws.CloudWatchMetrics[0].Namespace).toBe("NowScale");
    expect(blobs.find((b) => "PendingDemand" in b)?.PendingDemand).toBe(7);
  });
});
