import { describe, expect, it } from "vitest";
import { parseState, ValidationError } from "../../../lib/core/index.js";

/**
 * The cluster state as `nowscale plan` and the agent's report carry it (docs/plan.md "State"): what a
 * valid entry becomes in the core's model, and how bad input is named field by field.
 */

const T = "2026-01-01T00:00:00Z";
const T_MS = Date.UTC(2026, 0, 1);

function issuesOf(input: unknown): string[] {
  try {
    parseState(input);
  } catch (error) {
    if (error instanceof ValidationError) return error.issues.map((i) => `${i.path}: ${i.message}`);
    throw error;
  }
  throw new Error("expected a ValidationError");
}

const pending = { id: "17", queue: "compute", state: "PENDING", submittedAt: T };
const idle = { name: "n1", queue: "compute", instanceType: "c5.xlarge", zone: "z1", state: "IDLE" };

describe("state: what a valid entry becomes", () => {
  it("a job with no request asks for one node of 1 CPU, no memory, no GPU; count 1", () => {
    expect(parseState({ jobs: [pending] })).toStrictEqual({
      jobs: [
        {
          id: "17",
          queue: "compute",
          state: "PENDING",
          submittedAt: T_MS,
          request: { kind: "nodes", nodes: 1, cpusPerNode: 1, memPerNodeMiB: 0, gpusPerNode: 0 },
          count: 1,
        },
      ],
      nodes: [],
    });
  });

  it("a task job's omitted fields default to 1 CPU, no memory, no GPU per task", () => {
    const state = parseState({ jobs: [{ ...pending, tasks: 6 }] });
    expect(state.jobs[0]?.request).toStrictEqual({
      kind: "tasks",
      tasks: 6,
      cpusPerTask: 1,
      memPerTaskMiB: 0,
      gpusPerTask: 0,
    });
  });

  it("keeps every optional field given, and times become epoch ms in any offset", () => {
    const state = parseState({
      jobs: [
        {
          ...pending,
          state: "RUNNING",
          submittedAt: "2026-01-01T01:00:00+01:00",
          nodes: 2,
          cpusPerNode: 4,
          memPerNodeMiB: 4096,
          gpusPerNode: 1,
          count: 3,
          reason: "Resources",
          nodeNames: ["n1", "n2"],
          wholeNode: true,
          constraint: "a&b",
        },
      ],
      nodes: [{ ...idle, idleSince: T, launchedAt: "2025-12-31T23:00:00Z", reason: "nowscale: idle" }],
      unavailableOfferings: [
        { instanceType: "c5.xlarge", zone: "z1", chargeType: "SPOT", until: T },
        { instanceType: "c5.large", zone: "z2" },
      ],
    });
    expect(state).toStrictEqual({
      jobs: [
        {
          id: "17",
          queue: "compute",
          state: "RUNNING",
          submittedAt: T_MS,
          request: { kind: "nodes", nodes: 2, cpusPerNode: 4, memPerNodeMiB: 4096, gpusPerNode: 1 },
          count: 3,
          reason: "Resources",
          nodeNames: ["n1", "n2"],
          wholeNode: true,
          constraint: "a&b",
        },
      ],
      nodes: [
        {
          name: "n1",
          queue: "compute",
          instanceType: "c5.xlarge",
          zone: "z1",
          state: "IDLE",
          idleSince: T_MS,
          launchedAt: T_MS - 3_600_000,
          reason: "nowscale: idle",
        },
      ],
      unavailableOfferings: [
        { instanceType: "c5.xlarge", zone: "z1", chargeType: "SPOT", until: T_MS },
        { instanceType: "c5.large", zone: "z2" },
      ],
    });
  });

  it("wholeNode false is the same as absent", () => {
    const state = parseState({ jobs: [{ ...pending, wholeNode: false }], nodes: [idle] });
    expect(Object.keys(state.jobs[0] ?? {})).not.toContain("wholeNode");
    expect(state.nodes[0]).toStrictEqual({
      name: "n1",
      queue: "compute",
      instanceType: "c5.xlarge",
      zone: "z1",
      state: "IDLE",
    });
  });

  it("an empty state is empty, without unavailable offerings", () => {
    expect(parseState({})).toStrictEqual({ jobs: [], nodes: [] });
  });
});

describe("state: bad input is named field by field", () => {
  it("refuses a job that gives both request forms, or task fields without tasks", () => {
    expect(issuesOf({ jobs: [{ ...pending, nodes: 1, tasks: 2 }] })).toEqual([
      "jobs[0].tasks: give either nodes/cpusPerNode/memPerNodeMiB/gpusPerNode or tasks/cpusPerTask/memPerTaskMiB/gpusPerTask, not both",
    ]);
    expect(issuesOf({ jobs: [{ ...pending, cpusPerTask: 2 }] })).toEqual([
      "jobs[0].tasks: required with cpusPerTask/memPerTaskMiB/gpusPerTask",
    ]);
    expect(issuesOf({ jobs: [{ ...pending, gpusPerTask: 1 }] })).toHaveLength(1);
    expect(issuesOf({ jobs: [{ ...pending, memPerTaskMiB: 1 }] })).toHaveLength(1);
  });

  it("refuses a node listed twice and a job listed twice, naming the second", () => {
    expect(issuesOf({ nodes: [idle, { ...idle, state: "DOWN" }] })).toEqual([
      'nodes[1].name: node "n1" is listed twice',
    ]);
    expect(issuesOf({ jobs: [pending, { ...pending, state: "BLOCKED" }] })).toEqual([
      'jobs[1].id: job "17" is listed twice',
    ]);
  });

  it.each([
    [{ ...pending, nodes: 0 }, "jobs[0].nodes: must be at least 1"],
    [{ ...pending, nodes: 1.5 }, "jobs[0].nodes: expected a whole number"],
    [{ ...pending, nodes: "2" }, "jobs[0].nodes: expected a number"],
    [{ ...pending, count: 10_000_001 }, "jobs[0].count: must be at most 10000000"],
    [{ ...pending, gpusPerNode: 1025 }, "jobs[0].gpusPerNode: must be at most 1024"],
    [{ ...pending, memPerNodeMiB: -1 }, "jobs[0].memPerNodeMiB: must be at least 0"],
    [{ ...pending, tasks: 0 }, "jobs[0].tasks: must be at least 1"],
    [
      { ...pending, submittedAt: "yesterday" },
      "jobs[0].submittedAt: expected an ISO-8601 time such as 2026-01-01T00:00:00Z",
    ],
    [{ ...pending, id: "-1" }, "jobs[0].id: invalid job id: letters, digits and _ . : + -"],
    [{ ...pending, queue: "a b" }, expect.stringMatching(/^jobs\[0\]\.queue: invalid name: /)],
    [{ ...pending, constraint: "" }, expect.stringMatching(/^jobs\[0\]\.constraint: /)],
  ])("refuses a bad job field: %o", (bad, issue) => {
    expect(issuesOf({ jobs: [bad] })).toEqual([issue]);
  });

  it("accepts each field at its limits", () => {
    const state = parseState({
      jobs: [
        { ...pending, id: "a", nodes: 100_000, cpusPerNode: 100_000, memPerNodeMiB: 0, gpusPerNode: 1024 },
        { ...pending, id: "b", tasks: 10_000_000, cpusPerTask: 1, gpusPerTask: 0, count: 10_000_000 },
      ],
    });
    expect(state.jobs.map((j) => j.request.kind)).toEqual(["nodes", "tasks"]);
  });

  it("refuses a bad node: unknown state, bad time, bad instance type", () => {
    expect(issuesOf({ nodes: [{ ...idle, state: "BUSY" }] })).toEqual([
      expect.stringMatching(/^nodes\[0\]\.state: /),
    ]);
    expect(issuesOf({ nodes: [{ ...idle, idleSince: "now" }] })).toEqual([
      "nodes[0].idleSince: expected an ISO-8601 time such as 2026-01-01T00:00:00Z",
    ]);
    expect(issuesOf({ nodes: [{ ...idle, instanceType: "c5 large" }] })).toEqual([
      expect.stringMatching(/^nodes\[0\]\.instanceType: invalid identifier: /),
    ]);
    expect(issuesOf({ nodes: [{ ...idle, colour: "red" }] })).toEqual([
      "nodes[0].colour: unknown key: remove it or check its spelling (names are camelCase)",
    ]);
  });
});
