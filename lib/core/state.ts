import { z } from "zod";
import { MAX_CONSTRAINT_LENGTH } from "./constraint.js";
import {
  type ClusterNode,
  type ClusterState,
  type Job,
  NODE_STATES,
  type UnavailableOffering,
} from "./model.js";
import { cloudIdSchema, JOB_ID, simpleNameSchema } from "./names.js";
import { parseWith } from "./validation.js";

/**
 * The cluster state as `nowscale plan` and the agent's report carry it: JSON with ISO-8601 times.
 * toClusterState turns it into the core's model (epoch ms).
 */

const simpleName = simpleNameSchema;
const cloudId = cloudIdSchema;
const isoTime = z.iso.datetime({
  offset: true,
  error: "expected an ISO-8601 time such as 2026-01-01T00:00:00Z",
});
const count = (min: number, max: number) =>
  z
    .number({ error: "expected a number" })
    .int({ error: "expected a whole number" })
    .min(min, { error: `must be at least ${min}` })
    .max(max, { error: `must be at most ${max}` });

export { JOB_ID };

const NODE_FIELDS = ["nodes", "cpusPerNode", "memPerNodeMiB", "gpusPerNode"] as const;
const TASK_FIELDS = ["tasks", "cpusPerTask", "memPerTaskMiB", "gpusPerTask"] as const;

export const jobInputSchema = z
  .strictObject({
    id: z.string().regex(JOB_ID, { error: "invalid job id: letters, digits and _ . : + -" }),
    queue: simpleName,
    state: z.enum(["PENDING", "RUNNING", "BLOCKED"]),
    submittedAt: isoTime,
    nodes: count(1, 100_000).optional(),
    cpusPerNode: count(1, 100_000).optional(),
    memPerNodeMiB: count(0, 1 << 30).optional(),
    gpusPerNode: count(0, 1024).optional(),
    tasks: count(1, 10_000_000).optional(),
    cpusPerTask: count(1, 100_000).optional(),
    memPerTaskMiB: count(0, 1 << 30).optional(),
    gpusPerTask: count(0, 1024).optional(),
    count: count(1, 10_000_000).default(1),
    reason: z.string().max(500).optional(),
    nodeNames: z.array(simpleName).max(100_000).optional(),
    /** The job takes its nodes whole (--exclusive, --mem=0, no memory and no partition default). */
    wholeNode: z.boolean().optional(),
    /** Slurm's constraint expression (sbatch -C). */
    constraint: z.string().min(1).max(MAX_CONSTRAINT_LENGTH).optional(),
  })
  .superRefine((j, ctx) => {
    const hasNodeForm = NODE_FIELDS.some((f) => j[f] !== undefined);
    const hasTaskForm = TASK_FIELDS.some((f) => j[f] !== undefined);
    if (hasNodeForm && hasTaskForm) {
      ctx.addIssue({
        code: "custom",
        path: ["tasks"],
        message:
          "give either nodes/cpusPerNode/memPerNodeMiB/gpusPerNode or tasks/cpusPerTask/memPerTaskMiB/gpusPerTask, not both",
      });
    } else if (hasTaskForm && j.tasks === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["tasks"],
        message: "required with cpusPerTask/memPerTaskMiB/gpusPerTask",
      });
    }
  });

export const nodeInputSchema = z.strictObject({
  name: simpleName,
  queue: simpleName,
  instanceType: cloudId,
  zone: cloudId,
  state: z.enum(NODE_STATES),
  idleSince: isoTime.optional(),
  launchedAt: isoTime.optional(),
  reason: z.string().max(500).optional(),
});

export const unavailableOfferingSchema = z.strictObject({
  instanceType: cloudId,
  zone: cloudId,
  chargeType: z.enum(["ON_DEMAND", "SPOT"]).optional(),
  /** Held until this time; for the whole decision when absent. */
  until: isoTime.optional(),
});

export const stateInputSchema = z
  .strictObject({
    jobs: z.array(jobInputSchema).default([]),
    nodes: z.array(nodeInputSchema).default([]),
    /** Offerings held unavailable after capacity errors: the planner launches elsewhere meanwhile. */
    unavailableOfferings: z.array(unavailableOfferingSchema).max(10_000).default([]),
    /** Recent arrivals per queue (CPUs of single-node jobs in the last windowS s), for the warm headroom. */
    arrivals: z
      .array(
        z.strictObject({
          queue: simpleName,
          windowS: z.number().int().min(1).max(86_400),
          cpus: z.number().int().min(0).max(1_000_000_000),
        }),
      )
      .max(1000)
      .default([]),
  })
  .superRefine((s, ctx) => {
    const names = new Set<string>();
    s.nodes.forEach((n, i) => {
      if (names.has(n.name)) {
        ctx.addIssue({
          code: "custom",
          path: ["nodes", i, "name"],
          message: `node "${n.name}" is listed twice`,
        });
      }
      names.add(n.name);
    });
    const ids = new Set<string>();
    s.jobs.forEach((j, i) => {
      if (ids.has(j.id))
        ctx.addIssue({ code: "custom", path: ["jobs", i, "id"], message: `job "${j.id}" is listed twice` });
      ids.add(j.id);
    });
  });

export type JobInput = z.input<typeof jobInputSchema>;
export type NodeInput = z.input<typeof nodeInputSchema>;
export type StateInput = z.input<typeof stateInputSchema>;

function toJob(j: z.output<typeof jobInputSchema>): Job {
  const request: Job["request"] =
    j.tasks !== undefined
      ? {
          kind: "tasks",
          tasks: j.tasks,
          cpusPerTask: j.cpusPerTask ?? 1,
          memPerTaskMiB: j.memPerTaskMiB ?? 0,
          gpusPerTask: j.gpusPerTask ?? 0,
        }
      : {
          kind: "nodes",
          nodes: j.nodes ?? 1,
          cpusPerNode: j.cpusPerNode ?? 1,
          memPerNodeMiB: j.memPerNodeMiB ?? 0,
          gpusPerNode: j.gpusPerNode ?? 0,
        };
  const job: Job = {
    id: j.id,
    queue: j.queue,
    state: j.state,
    submittedAt: Date.parse(j.submittedAt),
    request,
    count: j.count,
  };
  if (j.reason !== undefined) job.reason = j.reason;
  if (j.nodeNames !== undefined) job.nodeNames = j.nodeNames;
  if (j.wholeNode) job.wholeNode = true;
  if (j.constraint !== undefined) job.constraint = j.constraint;
  return job;
}

function toNode(n: z.output<typeof nodeInputSchema>): ClusterNode {
  const node: ClusterNode = {
    name: n.name,
    queue: n.queue,
    instanceType: n.instanceType,
    zone: n.zone,
    state: n.state,
  };
  if (n.idleSince !== undefined) node.idleSince = Date.parse(n.idleSince);
  if (n.launchedAt !== undefined) node.launchedAt = Date.parse(n.launchedAt);
  if (n.reason !== undefined) node.reason = n.reason;
  return node;
}

/** Validates raw JSON (throws ValidationError naming each bad field) and converts times to epoch ms. */
export function parseState(input: unknown, source = "state"): ClusterState {
  const s = parseWith(stateInputSchema, input, source);
  const state: ClusterState = { jobs: s.jobs.map(toJob), nodes: s.nodes.map(toNode) };
  if (s.unavailableOfferings.length > 0) {
    state.unavailableOfferings = s.unavailableOfferings.map((o): UnavailableOffering => {
      const out: UnavailableOffering = { instanceType: o.instanceType, zone: o.zone };
      if (o.chargeType !== undefined) out.chargeType = o.chargeType;
      if (o.until !== undefined) out.until = Date.parse(o.until);
      return out;
    });
  }
  if (s.arrivals.length > 0) state.arrivals = s.arrivals.map((a) => ({ ...a }));
  return state;
}
