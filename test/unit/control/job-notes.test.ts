import { describe, expect, it } from "vitest";
import { jobNoteChanges, notServedReasons } from "../../../lib/control/job-notes.js";
import type { Decision } from "../../../lib/core/model.js";
import { NOTE_TEXT } from "../../../lib/ports/agent-protocol.js";
import type { OkReport } from "../../../lib/ports/agent-report.js";
import { noteText, scontrolJobId } from "../../../scheduler-plugins/slurm/job-notes.js";

function decision(skipped: Decision["skipped"]): Decision {
  return { launches: [], shrinks: [], skipped, queues: [], mismatches: [] } as unknown as Decision;
}

function report(jobs: OkReport["jobs"], source: OkReport["source"] = "json"): OkReport {
  return {
    schemaVersion: 1,
    agentVersion: "x",
    scheduler: "slurm",
    generatedAt: "2026-01-01T00:00:00Z",
    status: "ok",
    slurmVersion: "22.05.8",
    source,
    jobs,
    nodes: [],
    unmanagedNodes: [],
    ignored: { jobs: 0, nodes: 0, examples: [] },
  };
}

const pending = (id: string, extra: Partial<OkReport["jobs"][number]> = {}): OkReport["jobs"][number] => ({
  queue: "gpu",
  state: "PENDING",
  nodes: 1,
  cpusPerNode: 1,
  count: 1,
  oldestSubmittedAt: "2026-01-01T00:00:00Z",
  jobIds: [id],
  ...extra,
});

describe("job notes", () => {
  it("a reason loses its running count and the group's size, so the note does not change every poll", () => {
    // Prepare
    const skip = (s: number) =>
      decision([
        {
          job: "7",
          queue: "gpu",
          code: "NOT_STARTED_BY_SLURM",
          reason: `Slurm has not started it on idle g4 node n1 for ${s} s (Slurm: Resources): NowScale launches no more (${s} identical jobs)`,
          copies: s,
        },
      ] as Decision["skipped"]);
    // Act
    const [a, b] = [notServedReasons(skip(61)).get("7"), notServedReasons(skip(75)).get("7")];
    // Assess
    expect(a).toBe(b);
    expect(a).toBe(
      "Slurm has not started it on idle g4 node n1 (Slurm: Resources): NowScale launches no more",
    );
  });

  it("only reasons that last become notes: no capacity and busy time are events only", () => {
    const reasons = notServedReasons(
      decision([
        { job: "1", queue: "gpu", code: "NO_CAPACITY", reason: "x", copies: 1 },
        { job: "2", queue: "gpu", code: "BUSY_TIME_NOT_REACHED", reason: "x", copies: 1 },
        { job: "3", queue: "gpu", code: "JOB_LARGER_THAN_MAX_SIZE", reason: "needs 12", copies: 1 },
      ] as Decision["skipped"]),
    );
    expect([...reasons.keys()]).toEqual(["3"]);
  });

  it("a note is always within the allow-list, whatever the reason holds", () => {
    for (const reason of ["12 × 4 GPUs", "é\n$(id)", "x".repeat(500), ""]) {
      expect(noteText(reason)).toMatch(NOTE_TEXT);
    }
    expect(noteText("12 × 4 GPUs")).toBe("nowscale: 12 x 4 GPUs");
  });

  it("an array's pending record is named in brackets for scontrol; other ids stay", () => {
    expect(["9_0-28", "9_3", "17", "17+1"].map(scontrolJobId)).toEqual(["9_[0-28]", "9_3", "17", "17+1"]);
  });

  it("clears a note on a job that started or is blocked, and leaves groups without notes alone", () => {
    // Prepare
    const r = report([
      pending("1", { state: "RUNNING", note: "nowscale: a", noteIn: "comment" }),
      pending("2", { state: "BLOCKED", reason: "JobHeldUser", note: "nowscale: b", noteIn: "adminComment" }),
      pending("3"),
    ]);
    // Act: even a reason for them does not keep a note on jobs that are not pending
    const notes = jobNoteChanges(r, new Map([["1", "x"]]), () => true);
    // Assess
    expect(notes).toEqual([
      { jobIds: ["1"], text: "", field: "comment" },
      { jobIds: ["2"], text: "", field: "adminComment" },
    ]);
  });

  it("rewrites a changed reason in the field the note is in; the memory suppresses a repeat", () => {
    // Prepare
    const r = report([pending("4", { note: "nowscale: old", noteIn: "adminComment", userComment: true })]);
    const seen = new Set<string>();
    const isNew = (key: string) => !seen.has(key) && seen.add(key) !== undefined;
    // Act
    const first = jobNoteChanges(r, new Map([["4", "new"]]), isNew);
    const again = jobNoteChanges(r, new Map([["4", "new"]]), isNew);
    // Assess
    expect(first).toEqual([{ jobIds: ["4"], text: "nowscale: new", field: "adminComment" }]);
    expect(again).toEqual([]);
  });
});
