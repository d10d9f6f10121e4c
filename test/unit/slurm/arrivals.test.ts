import { mkdtemp, readFile, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ARRIVALS_FILE, arrivalsFile } from "../../../agent/arrivals-file.js";
import { parseReport, reportToClusterState } from "../../../lib/ports/agent-report.js";
import { LIMITS } from "../../../lib/ports/agent-report-limits.js";
import {
  ARRIVAL_WINDOWS_S,
  type ArrivalRecord,
  arrivalsOf,
  largestCpusByQueue,
  MAX_ARRIVAL_QUEUES,
  observeArrivals,
  parseArrivalRecord,
} from "../../../scheduler-plugins/slurm/arrivals.js";
import type { SlurmJob, SlurmNode } from "../../../scheduler-plugins/slurm/model.js";

/**
 * The agent's count of recent arrivals (scheduler-plugins/slurm/arrivals.ts), by hand: minutes are
 * epoch minutes; NOW is 10:00:30, so the current minute is 10:00 and a 300 s window holds the minutes
 * 09:56 to 10:00.
 */
const NOW = Date.parse("2026-11-30T10:00:30Z");
const MINUTE = 60_000;
const minuteOf = (ms: number) => Math.floor(ms / MINUTE);

function job(overrides: Partial<SlurmJob>): SlurmJob {
  return {
    id: "1",
    taskCount: 1,
    partitions: ["compute"],
    state: "PENDING",
    reason: "Resources",
    dependency: "",
    submittedAt: NOW - MINUTE,
    nodeCount: 1,
    nodesFixed: false,
    cpus: 1,
    tasks: 1,
    cpusPerTask: 1,
    minCpusPerNode: 1,
    gpusPerNode: 0,
    gpusPerTask: 0,
    gpusPerJob: 0,
    memWholeNode: false,
    features: "",
    exclusive: false,
    nodeNames: [],
    ...overrides,
  };
}

function node(name: string, queue: string, cpus: number, state = "IDLE"): SlurmNode {
  return {
    name,
    state,
    flags: [],
    cpus,
    cpusAllocated: 0,
    memoryMiB: 4096,
    memoryAllocatedMiB: 0,
    gpus: 0,
    features: [`q_${queue}`, `type_t${cpus}`, "zone_a"],
    partitions: [queue],
    reason: "",
  };
}

const window = (arrivals: ReturnType<typeof arrivalsOf>, queue: string, windowS: number) =>
  arrivals.find((a) => a.queue === queue && a.windowS === windowS)?.cpus;

describe("largestCpusByQueue", () => {
  it("takes each queue's largest node, placeholders (FUTURE) included; nodes without NowScale's features are none", () => {
    // Act
    const largest = largestCpusByQueue([
      node("i-1", "compute", 4),
      node("ph-0123456789abcdef", "compute", 16, "FUTURE"),
      node("i-2", "gpu", 8),
      { ...node("static-1", "compute", 64), features: [] },
    ]);
    // Assess
    expect([...largest]).toEqual([
      ["compute", 16],
      ["gpu", 8],
    ]);
  });
});

describe("observeArrivals and arrivalsOf", () => {
  const largest = new Map([["compute", 16]]);

  it("counts the single-node jobs squeue lists by submit minute, ended ones included, and sums them per window", () => {
    // Prepare: at 09:59 a 4-CPU pending job and a 2-CPU one that has ended (CANCELLED, still listed);
    //   at 09:50 an 8-CPU running job and a pending array record of 3 tasks of 2 CPUs (6);
    //   a 32-CPU job (more than the largest node, 16: multi-node) and a job of an unknown queue.
    const jobs = [
      job({ id: "1", cpus: 4, submittedAt: NOW - MINUTE }),
      job({ id: "2", cpus: 2, submittedAt: NOW - MINUTE, state: "CANCELLED" }),
      job({ id: "3", cpus: 8, submittedAt: NOW - 10 * MINUTE, state: "RUNNING" }),
      job({ id: "4_0-2", cpus: 2, taskCount: 3, submittedAt: NOW - 10 * MINUTE }),
      job({ id: "5", cpus: 32, submittedAt: NOW - MINUTE }),
      job({ id: "6", cpus: 1, partitions: ["other"], submittedAt: NOW - MINUTE }),
    ];

    // Act
    const record = observeArrivals(undefined, { jobs, largest, now: NOW });
    const arrivals = arrivalsOf(record, NOW);

    // Assess: 09:59 holds 6 CPUs, 09:50 holds 14; 300 s: 6; 900 s and longer: 20.
    expect(record.queues).toEqual([
      {
        queue: "compute",
        buckets: [
          [minuteOf(NOW - 10 * MINUTE), 14],
          [minuteOf(NOW - MINUTE), 6],
        ],
      },
    ]);
    expect(arrivals.map((a) => a.windowS)).toEqual([...ARRIVAL_WINDOWS_S]);
    expect(window(arrivals, "compute", 300)).toBe(6);
    expect(window(arrivals, "compute", 900)).toBe(20);
    expect(window(arrivals, "compute", 86_400)).toBe(20);
  });

  it("keeps per minute the largest sum any report saw: a job that has left squeue lowers nothing", () => {
    // Prepare: report 1 sees two 4-CPU jobs of 09:59; report 2, later, sees one (the other ended and
    //   was purged after MinJobAge) and a new 2-CPU job of 10:03.
    const first = observeArrivals(undefined, {
      jobs: [job({ id: "1", cpus: 4 }), job({ id: "2", cpus: 4 })],
      largest,
      now: NOW,
    });
    const later = NOW + 4 * MINUTE;

    // Act
    const second = observeArrivals(first, {
      jobs: [job({ id: "1", cpus: 4 }), job({ id: "7", cpus: 2, submittedAt: later })],
      largest,
      now: later,
    });

    // Assess: 09:59 keeps 8; 10:04 has 2. At 10:04:30, 300 s holds 10:00..10:04: 2; 900 s: 10.
    expect(second.queues[0]?.buckets).toEqual([
      [minuteOf(NOW - MINUTE), 8],
      [minuteOf(later), 2],
    ]);
    const arrivals = arrivalsOf(second, later);
    expect(window(arrivals, "compute", 300)).toBe(2);
    expect(window(arrivals, "compute", 900)).toBe(10);
  });

  it("drops minutes older than a day, and a queue whose largest node is unknown is not counted", () => {
    // Prepare: a record holding a minute 25 h old and one 23 h old
    const old: ArrivalRecord = {
      version: 1,
      queues: [
        {
          queue: "compute",
          buckets: [
            [minuteOf(NOW - 25 * 60 * MINUTE), 5],
            [minuteOf(NOW - 23 * 60 * MINUTE), 7],
          ],
        },
      ],
    };

    // Act
    const record = observeArrivals(old, {
      jobs: [job({ id: "1", partitions: ["gpu"], cpus: 1 })],
      largest,
      now: NOW,
    });

    // Assess
    expect(record.queues).toEqual([{ queue: "compute", buckets: [[minuteOf(NOW - 23 * 60 * MINUTE), 7]] }]);
    expect(window(arrivalsOf(record, NOW), "compute", 86_400)).toBe(7);
  });

  it("keeps at most MAX_ARRIVAL_QUEUES queues, so a report's arrivals stay within the schema's limit", () => {
    // Prepare: one job in each of 300 queues
    const many = new Map<string, number>();
    const jobs: SlurmJob[] = [];
    for (let i = 0; i < 300; i++) {
      many.set(`q${i}`, 4);
      jobs.push(job({ id: String(i + 1), partitions: [`q${i}`] }));
    }

    // Act
    const arrivals = arrivalsOf(observeArrivals(undefined, { jobs, largest: many, now: NOW }), NOW);

    // Assess
    expect(new Set(arrivals.map((a) => a.queue)).size).toBe(MAX_ARRIVAL_QUEUES);
    expect(arrivals.length).toBeLessThanOrEqual(LIMITS.arrivals);
  });
});

describe("the arrivals in the report", () => {
  it("pass through the report's schema into the core's state; bad ones are refused naming the field", () => {
    // Prepare
    const base = {
      schemaVersion: 1,
      agentVersion: "x",
      scheduler: "slurm",
      generatedAt: new Date(NOW).toISOString(),
      status: "ok",
      slurmVersion: "22.05.8",
      source: "json",
      jobs: [],
      nodes: [],
      unmanagedNodes: [],
      ignored: { jobs: 0, nodes: 0, examples: [] },
    };
    const arrivals = [{ queue: "compute", windowS: 3600, cpus: 20 }];

    // Act
    const report = parseReport({ ...base, arrivals });
    const bad = () => parseReport({ ...base, arrivals: [{ queue: "a b", windowS: 0, cpus: -1 }] });

    // Assess
    if (report.status !== "ok") throw new Error("not ok");
    expect(reportToClusterState(report).arrivals).toEqual(arrivals);
    expect(bad).toThrow(/arrivals\[0\]\.queue/);
    expect(bad).toThrow(/arrivals\[0\]\.windowS/);
  });
});

describe("the record's file (agent/arrivals-file.ts)", () => {
  it("saves the record (mode 0600) and loads it back; a damaged file reads as none", async () => {
    // Prepare
    const dir = await mkdtemp(join(tmpdir(), "nowscale-arrivals-"));
    const store = arrivalsFile(dir);
    const record = observeArrivals(undefined, {
      jobs: [job({ cpus: 4 })],
      largest: new Map([["compute", 16]]),
      now: NOW,
    });

    // Act
    const before = await store.load();
    await store.save(record);
    const mode = (await stat(join(dir, ARRIVALS_FILE))).mode & 0o777;
    const loaded = await store.load();
    await writeFile(join(dir, ARRIVALS_FILE), '{"version":1,"queues":[{"queue":"$(x)","buckets":[]}]}');
    const damaged = await store.load();

    // Assess
    expect(before).toBeUndefined();
    expect(mode).toBe(0o600);
    expect(loaded).toEqual(record);
    expect(JSON.parse(await readFile(join(dir, ARRIVALS_FILE), "utf8")).queues[0].queue).toBe("$(x)");
    expect(damaged).toBeUndefined();
  });

  it("parseArrivalRecord refuses what is not a record: bad JSON, version, pairs, counts", () => {
    // Act / Assess
    expect(parseArrivalRecord("{")).toBeUndefined();
    expect(parseArrivalRecord('{"version":2,"queues":[]}')).toBeUndefined();
    expect(parseArrivalRecord('{"version":1,"queues":[{"queue":"q","buckets":[[1]]}]}')).toBeUndefined();
    expect(parseArrivalRecord('{"version":1,"queues":[{"queue":"q","buckets":[[1,-5]]}]}')).toBeUndefined();
    expect(parseArrivalRecord('{"version":1,"queues":[{"queue":"q","buckets":[[1,5]]}]}')).toEqual({
      version: 1,
      queues: [{ queue: "q", buckets: [[1, 5]] }],
    });
  });
});
