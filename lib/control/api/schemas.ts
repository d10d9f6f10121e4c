import { z } from "zod";
import { configSchema, queueConfigSchema as coreQueueConfigSchema } from "../../core/config.js";
import { cloudIdSchema, simpleNameSchema } from "../../core/names.js";
import { checkMasterZone, createClusterRequestShape } from "../../workflow/tasks/request.js";

/**
 * Every input of the API as a zod schema: path parameters, query parameters, headers and bodies. The
 * routes (routes.ts) parse each input once with these, and the same schemas generate docs/openapi.json
 * (openapi.ts). Objects are strict: an unknown key or query parameter is an error naming it.
 */
const simpleName = simpleNameSchema;
const cloudId = cloudIdSchema;
const int = (min: number, max: number) =>
  z
    .number({ error: "expected a number" })
    .int({ error: "expected a whole number" })
    .min(min, { error: `must be at least ${min}` })
    .max(max, { error: `must be at most ${max}` });

/** A whole number sent as a query string (`?limit=5`), as Number() reads it; one message for any fault. */
const queryInt = (min: number, max: number) => {
  const error = `a whole number from ${min} to ${max}`;
  return z.coerce.number<string>({ error }).int({ error }).min(min, { error }).max(max, { error });
};

export const CLOUDS = ["aws", "tencent", "alibaba", "local", "fake"] as const;

// ── path parameters ───────────────────────────────────────────────────────────────────────────────
// A value that is not a valid name names nothing: the routes answer 404 naming the parameter.

export const clusterParams = z.strictObject({ clusterId: simpleName });
export const nodeParams = z.strictObject({ clusterId: simpleName, node: simpleName });
export const queueParams = z.strictObject({ clusterId: simpleName, queue: simpleName });

// ── query parameters ──────────────────────────────────────────────────────────────────────────────

export const eventsQuery = z.strictObject({ limit: queryInt(1, 1000).default(100) });
/** Delete queue: `force=true` also deletes a queue whose jobs pend (never one whose jobs run). */
export const queueQuery = z.strictObject({
  force: z.enum(["true", "false"], { error: "must be true or false" }).optional(),
});
export const consoleQuery = z.strictObject({ lines: queryInt(1, 10_000).default(100) });

// ── headers (matched in any case) ─────────────────────────────────────────────────────────────────

export const IDEMPOTENCY_KEY = /^[A-Za-z0-9_-]{1,128}$/;

export const createHeaders = z.strictObject({
  "Idempotency-Key": z
    .string()
    .regex(IDEMPOTENCY_KEY, { error: "1-128 letters, digits, '_' or '-'" })
    .optional()
    .describe("a retried request with the same key returns the same cluster (kept 24 h)"),
});

/** `If-Match: <version>` (quotes allowed) makes a PUT conditional on the version the caller read. */
export const ifMatchHeaders = z.strictObject({
  "If-Match": z
    .string()
    .transform((v) => v.replace(/"/g, ""))
    .pipe(
      z.coerce
        .number<string>({ error: "a cluster version" })
        .int({ error: "a cluster version" })
        .min(1, { error: "a cluster version" }),
    )
    .optional(),
});

// ── bodies ────────────────────────────────────────────────────────────────────────────────────────

/**
 * Create cluster: the creation workflow's request (lib/workflow/tasks/request.ts, validated again by the
 * workflow's first step) plus the cluster's name, its cloud, the compute nodes' image and the autoscaling
 * configuration, which is validated here only and stored on the cluster record only.
 */
export const createClusterSchema = z
  .strictObject({
    /** A label for people; the API assigns the cluster id. */
    name: simpleName,
    /** @default "aws" */
    cloud: z.enum(CLOUDS).default("aws"),
    /** The image compute nodes boot from. @default the master's image */
    computeImageId: cloudId.optional(),
    region: createClusterRequestShape.region,
    network: createClusterRequestShape.network,
    master: createClusterRequestShape.master,
    autoscaling: configSchema,
    agentHealthTimeoutSeconds: createClusterRequestShape.agentHealthTimeoutSeconds,
  })
  .superRefine(checkMasterZone);

export const addNodesSchema = z.strictObject({
  queue: simpleName,
  count: int(1, 100),
  /** Restricts the queue's expansionNodeConfigs to this type (and zone). */
  instanceType: cloudId.optional(),
  zone: cloudId.optional(),
});

export const deleteNodesSchema = z.strictObject({
  nodes: z.array(simpleName).min(1).max(100),
});

/** Rebuild: the failed nodes to replace (every failed node when absent). */
export const rebuildNodesSchema = z.strictObject({
  nodes: z.array(simpleName).min(1).max(100).optional(),
  /** A LAUNCHING node not in Slurm this long after launch counts as a failed boot. @default the config's bootTimeout */
  bootGraceSeconds: int(0, 86_400).optional(),
});

const isoQueryTime = z.iso.datetime({
  offset: true,
  error: "expected an ISO-8601 time such as 2026-01-01T00:00:00Z",
});

/** Usage's query: the window (ISO-8601 times); from the first launch to now by default. */
export const usageQuerySchema = z.strictObject({
  from: isoQueryTime.optional(),
  to: isoQueryTime.optional(),
});

/** The autoscaling PUT takes exactly the core's configuration. */
export const autoscalingSchema = configSchema;

/** Sleep and wake take no body, or `{}`. */
export const emptyBodySchema = z.strictObject({});

/** A secret's name or ARN (AWS Secrets Manager; in the local mode a root-only file's absolute path). */
const secretRef = z.string().regex(/^(?!.*\.\.)[A-Za-z0-9/][A-Za-z0-9/_+=.@:-]{0,511}$/, {
  error: "a secret name or ARN: letters, digits and / _ + = . @ : -, not starting with a sign, no '..'",
});

/** The agent's URL: scheme, host and port only (no credentials, path or query to smuggle anything in). */
const agentUrl = z
  .string()
  .regex(/^https?:\/\/[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::\d{1,5})?\/?$/, {
    error: "expected http(s)://HOST[:PORT], an address the control plane reaches",
  });

const MUNGE_SECRET_RULES: Partial<Record<(typeof CLOUDS)[number], { pattern: RegExp; message: string }>> = {
  tencent: {
    pattern: /^[A-Za-z0-9_-]{1,128}$/,
    message: "a Tencent SSM secret name: letters, digits, _ and -",
  },
  alibaba: { pattern: /^[A-Za-z0-9_/+=.@-]{1,192}$/, message: "an Alibaba KMS secret name (no ':')" },
};

/** How the control plane may reach an attached master's agent (docs/attach.md). */
export const ATTACH_CHANNELS = ["http", "ssm", "tat", "cloud-assistant"] as const;

/**
 * The master's instance id per run-command channel, as each cloud spells it (an allow-list: the id
 * reaches the cloud's API and the master's lease key), and the cloud whose channel it is.
 */
const MASTER_ID_RULES = {
  // SSM reaches hybrid-activated servers anywhere (mi-…), whatever cloud the computes run on: any cloud.
  ssm: {
    pattern: /^(i|mi)-[0-9A-Za-z]{1,40}$/,
    what: "the master's managed instance id (i-… or mi-…)",
    cloud: undefined,
  },
  tat: {
    pattern: /^ins-[a-z0-9]{8}$/,
    what: "the master's CVM instance id (ins- and 8 letters or digits)",
    cloud: "tencent",
  },
  "cloud-assistant": {
    pattern: /^i-[a-z0-9]{8,30}$/,
    what: "the master's ECS instance id (i- and 8 to 30 letters or digits)",
    cloud: "alibaba",
  },
} as const;

/** Clouds whose compute nodes launch into the user's subnets and security groups. */
const NETWORKED_CLOUDS: readonly string[] = ["aws", "tencent", "alibaba"];

/**
 * Attach an existing Slurm master (docs/attach.md): how to reach its agent, where its compute nodes go,
 * and the autoscaling configuration whose queues are the master's partitions to scale.
 */
export const attachClusterSchema = z
  .strictObject({
    name: simpleName,
    /** @default "aws" */
    cloud: z.enum(CLOUDS).default("aws"),
    region: cloudId,
    master: z
      .strictObject({
        /**
         * "http": the agent's signed HTTP API at `url`; the cloud's run-command channel on `instanceId`:
         * "ssm" (AWS SSM Run Command, i-… or mi-…), "tat" (Tencent TAT, ins-…), "cloud-assistant"
         * (Alibaba Cloud Assistant, i-…).
         */
        channel: z.enum(ATTACH_CHANNELS),
        url: agentUrl.optional(),
        /** http: the secret holding the agent's key (what `nowscale-agent install` wrote to /etc/nowscale/agent.key). */
        agentKeySecret: secretRef.optional(),
        instanceId: cloudId.optional(),
        /** The IPv4 address compute nodes reach slurmctld on. @default the first SlurmctldHost's address */
        slurmctldAddress: z.ipv4({ error: "expected an IPv4 address" }).optional(),
        /** The secret holding the master's munge key (binary), which compute nodes fetch at boot. */
        mungeKeySecret: secretRef,
      })
      .superRefine((m, ctx) => {
        const need = (field: "url" | "agentKeySecret" | "instanceId", why: string) => {
          if (m[field] === undefined) ctx.addIssue({ code: "custom", path: [field], message: why });
        };
        if (m.channel === "http") {
          need("url", "the http channel needs the agent's URL");
          need("agentKeySecret", "the http channel needs the secret holding the agent's key");
          return;
        }
        const rule = MASTER_ID_RULES[m.channel];
        if (m.instanceId === undefined) need("instanceId", `the ${m.channel} channel needs ${rule.what}`);
        else if (!rule.pattern.test(m.instanceId))
          ctx.addIssue({ code: "custom", path: ["instanceId"], message: `expected ${rule.what}` });
      }),
    /** Where compute nodes launch (the user's own: never created, changed or deleted). */
    network: z
      .strictObject({
        subnetIds: z.array(cloudId).max(16),
        securityGroupIds: z.array(cloudId).max(5),
      })
      .default({ subnetIds: [], securityGroupIds: [] }),
    /** The image compute nodes boot from; its slurmd must suit the master's Slurm. @default the cloud's default image */
    computeImageId: cloudId.optional(),
    /** The core's configuration: each queue is one of the master's partitions. */
    autoscaling: configSchema,
  })
  .superRefine((r, ctx) => {
    // The secret stores' own name rules, as the compute boot script reads them (bootstrap.ts).
    // A run-command channel is its own cloud's: TAT reaches CVM instances only, Cloud Assistant ECS ones.
    const own = r.master.channel === "http" ? undefined : MASTER_ID_RULES[r.master.channel].cloud;
    if (own !== undefined && own !== r.cloud)
      ctx.addIssue({
        code: "custom",
        path: ["master", "channel"],
        message: `the ${r.master.channel} channel reaches ${own} instances only: use it with "cloud": "${own}", or the http channel`,
      });
    const rule = MUNGE_SECRET_RULES[r.cloud];
    if (rule !== undefined && !rule.pattern.test(r.master.mungeKeySecret))
      ctx.addIssue({ code: "custom", path: ["master", "mungeKeySecret"], message: rule.message });
    if (!NETWORKED_CLOUDS.includes(r.cloud)) return;
    if (r.network.subnetIds.length === 0)
      ctx.addIssue({ code: "custom", path: ["network", "subnetIds"], message: "name the compute subnets" });
    if (r.network.securityGroupIds.length === 0)
      ctx.addIssue({
        code: "custom",
        path: ["network", "securityGroupIds"],
        message: "name the compute nodes' security groups",
      });
  });

export type AttachClusterBody = z.output<typeof attachClusterSchema>;

/** Add queue (THPC AddQueue): one queue of the core's configuration, as in `queueConfigs[]`. */
export const queueConfigSchema = coreQueueConfigSchema;

export type CreateClusterBody = z.output<typeof createClusterSchema>;

/** Sleep (HPC-NOW sleep): with `stopMaster`, the master is stopped (not terminated) once no compute node is left. */
export const sleepBodySchema = z.strictObject({
  stopMaster: z
    .boolean()
    .optional()
    .describe("stop the master instance (its disk kept) once every compute node is retired"),
});

/** Stop or resume chosen compute nodes (HPC-NOW shutdownc / turnonc), by Slurm node name. */
export const chosenNodesSchema = z.strictObject({
  nodes: z.array(simpleName).min(1).max(100),
});
