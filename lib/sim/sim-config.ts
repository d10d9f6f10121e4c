import { z } from "zod";
import { parseConfig, type ResolvedConfig } from "../core/config.js";
import { cloudIdSchema, simpleNameSchema } from "../core/names.js";
import { parseWith, ValidationError } from "../core/validation.js";

/**
 * A simulation config is a NowScale config (the same file `nowscale plan` reads) with an optional
 * `simulation` section for what only a replay needs: how SWF queue numbers map to queues, the memory a
 * job gets when the trace does not say, and provider capacity limits that make fallback happen.
 */

export const DEFAULT_MEM_PER_CPU_MIB = 1024;

const capacitySchema = z.strictObject({
  instanceType: cloudIdSchema,
  zone: cloudIdSchema,
  /** Most instances of this type that can run in this zone at once; launches beyond it fall back. */
  maxNodes: z.number().int({ error: "expected a whole number" }).min(0).max(1_000_000),
});

export const simulationSchema = z.strictObject({
  /** SWF queue number (field 15) → queue name; "*" for every other number. Default: the first queue. */
  queueMap: z
    .record(z.string().regex(/^(\*|\d+)$/, { error: 'keys are SWF queue numbers or "*"' }), simpleNameSchema)
    .default({}),
  /** MiB per processor when the trace's requested memory (field 10) is unknown. */
  memPerCpuMiB: z
    .number()
    .int({ error: "expected a whole number" })
    .min(0)
    .max(1 << 24)
    .default(DEFAULT_MEM_PER_CPU_MIB),
  capacity: z.array(capacitySchema).max(1000).default([]),
  /**
   * Terminate an idle node in the poll that drains it when it runs no job, as the control plane does
   * (it reads Slurm back after the drain: node-retirement.ts). false replays the earlier behaviour, a
   * drained node terminated at the next poll. Default: on.
   */
  terminateAtDrain: z.boolean().default(true),
  /**
   * Event-driven scale-out: a job that cannot start when it arrives wakes the scaler this many seconds
   * after its busy time is up (the agent noticing it in squeue), besides the regular polls. Default: off.
   */
  wakeSeconds: z.number().int({ error: "expected a whole number" }).min(0).max(3600).optional(),
  /**
   * Where the scheduler puts a job: "fewest-free" (the node with the fewest free slots that holds it;
   * Slurm's best fit) or "busy-first" (nodes already running a job before idle ones, so idle nodes
   * stay idle and shrink; as node weights the agent would set). Default: fewest-free.
   */
  placement: z.enum(["fewest-free", "busy-first"]).default("fewest-free"),
});

export type SimulationSection = z.output<typeof simulationSchema>;

export interface SimConfig {
  config: ResolvedConfig;
  simulation: SimulationSection;
}

/**
 * Validates a simulation config file's JSON: the core config (strict, as everywhere) plus the
 * `simulation` section. Throws ValidationError naming each bad field.
 */
export function parseSimConfig(input: unknown, source = "config"): SimConfig {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw new ValidationError(source, [{ path: "", message: "expected a JSON object" }]);
  }
  const { simulation: rawSim, ...core } = input as Record<string, unknown>;
  const config = parseConfig(core, source);
  const simulation = parseWith(simulationSchema, rawSim ?? {}, `${source} (simulation section)`);
  const issues: { path: string; message: string }[] = [];
  for (const [number, queue] of Object.entries(simulation.queueMap)) {
    if (!config.queueByName.has(queue)) {
      issues.push({
        path: `simulation.queueMap.${number}`,
        message: `queue "${queue}" is not in queueConfigs (${[...config.queueByName.keys()].join(", ")})`,
      });
    }
  }
  simulation.capacity.forEach((c, i) => {
    if (!config.catalog[c.instanceType]) {
      issues.push({
        path: `simulation.capacity[${i}].instanceType`,
        message: `unknown instance type "${c.instanceType}"`,
      });
    }
  });
  if (issues.length > 0) throw new ValidationError(source, issues);
  return { config, simulation };
}
