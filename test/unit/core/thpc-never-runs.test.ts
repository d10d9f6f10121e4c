import { describe, expect, it } from "vitest";
import { plan } from "../../../lib/core/index.js";
import { config, iso, job, minutes, node, queue, state, T0 } from "./builders.js";

describe("thpc: a job larger than maxSize", () => {
  it("does not reserve idle nodes, which shrink as usual", () => {
    // Prepare: maxSize 2 of c4m8; a 16-task job needs 4 such nodes, so it can never run. The one idle
    //   node (idle 10 min > shrinkIdleTime 300 s) would cover 4 tasks; found by the simulator: it
    //   stayed reserved for the job for ever and the cluster never shrank.
    const cfg = config({}, [queue({ maxSize: 2 })]);
    const s = state(
      [
        job({
          id: "big",
          nodes: undefined,
          cpusPerNode: undefined,
          memPerNodeMiB: undefined,
          gpusPerNode: undefined,
          tasks: 16,
          cpusPerTask: 1,
          memPerTaskMiB: 100,
        }),
      ],
      [node("n1", { idleSince: iso(T0 - minutes(10)) })],
    );

    // Act
    const decision = plan(cfg, s, T0);

    // Assess
    expect(decision.launches).toEqual([]);
    expect(decision.shrinks).toEqual([expect.objectContaining({ node: "n1", action: "drain" })]);
    expect(decision.skipped).toContainEqual(
      expect.objectContaining({ job: "big", code: "JOB_LARGER_THAN_MAX_SIZE" }),
    );
  });
});
