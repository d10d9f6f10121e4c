import { z } from "zod";
import {
  addNodesSchema,
  attachClusterSchema,
  autoscalingSchema,
  chosenNodesSchema,
  clusterParams,
  consoleQuery,
  createClusterSchema,
  createHeaders,
  deleteNodesSchema,
  eventsQuery,
  ifMatchHeaders,
  nodeParams,
  queueConfigSchema,
  queueParams,
  queueQuery,
  rebuildNodesSchema,
  sleepBodySchema,
  usageQuerySchema,
} from "./schemas.js";
import { initScriptsBodySchema, storageDeleteQuery, storageOptionBodySchema } from "./storage-schemas.js";
import { usersOpenApi } from "./users-api.js";

/**
 * The API's OpenAPI 3.1 document, generated from the same zod schemas the routes parse every input with
 * (zod 4's JSON Schema output, in its request "input" form): bodies, path and query parameters, headers.
 * `npm run build:openapi` writes it to docs/openapi.json; a unit test fails when that file is stale.
 */
export function buildOpenApi(): Record<string, unknown> {
  const schema = (s: z.ZodType) =>
    z.toJSONSchema(s, { io: "input", unrepresentable: "any", target: "draft-2020-12" });
  /** One OpenAPI parameter per key of a route's params, query or headers schema. */
  const parameters = (where: "path" | "query" | "header", s: z.ZodObject) =>
    Object.entries(s.shape).map(([name, field]) => {
      const { $schema: _, description, ...fieldSchema } = schema(field as z.ZodType);
      return {
        name,
        in: where,
        required: where === "path" || !(field as z.ZodType).safeParse(undefined).success,
        ...(description === undefined ? {} : { description }),
        schema: fieldSchema,
      };
    });
  const body = (ref: string) => ({
    required: true,
    content: { "application/json": { schema: { $ref: `#/components/schemas/${ref}` } } },
  });
  const answer = (description: string, ref = "Cluster") => ({
    description,
    content: { "application/json": { schema: { $ref: `#/components/schemas/${ref}` } } },
  });
  const errors = {
    "400": answer("invalid input: `issues` names each field (body, header or query parameter)", "Error"),
    "404": answer("no such cluster (or queue, or route): `issues` names the path parameter", "Error"),
    "409": answer("the cluster's state or version does not allow it", "Error"),
  };
  /** Routes that take a body: it must be sent as application/json (charset and other parameters allowed). */
  const bodyErrors = {
    ...errors,
    "413": answer("the body is larger than 256 KiB", "Error"),
    "415": answer("the body is not sent with content-type application/json", "Error"),
  };
  const notStarted = answer(
    "the workflow could not be started: the cluster keeps its status; retry (the reconciler also retries)",
    "Error",
  );
  const zonesUnread = answer(
    "the cloud did not list its region's zones, so the configuration's could not be checked: nothing changed; retry",
    "Error",
  );
  const sigv4 = [{ sigv4: [] }];
  // Cluster users (HPC-NOW userman): their paths and schemas live with their inputs (users-api.ts).
  const users = usersOpenApi({ schema, parameters, body, answer, errors, bodyErrors }, clusterParams);

  return {
    openapi: "3.1.0",
    info: {
      title: "NowScale control plane API",
      version: "1",
      description:
        "Clusters that scale themselves (docs/control-plane.md). Every method needs AWS SigV4 (API Gateway AWS_IAM).",
    },
    security: sigv4,
    paths: {
      "/clusters": {
        get: { operationId: "listClusters", responses: { "200": answer("all clusters", "ClusterList") } },
        post: {
          operationId: "createCluster",
          parameters: parameters("header", createHeaders),
          requestBody: body("CreateCluster"),
          responses: {
            "202": answer("created; the creation workflow runs"),
            "200": answer(
              "the cluster an earlier request with this Idempotency-Key created (its workflow started if it had not)",
            ),
            ...bodyErrors,
            "503": answer(
              "the workflow could not be started (the cluster is recorded CREATING; retry, the reconciler also retries), or the cloud did not list its zones for the configuration's check (nothing recorded; retry)",
              "Error",
            ),
          },
        },
      },
      "/clusters/attach": {
        post: {
          operationId: "attachCluster",
          description:
            "Attaches an existing Slurm master (docs/attach.md): its agent answers a signed request, its Slurm is 22.05+ and configless, every queue is a partition taking NowScale's nodes, and what the cloud can tell of the network is checked; then one RUNNING cluster is recorded. A failed check stores nothing.",
          requestBody: body("AttachCluster"),
          responses: {
            "201": answer(
              "attached: the cluster, with `checks` (what was verified) and `userMust` (what was not)",
            ),
            ...bodyErrors,
            "409": answer("this master is already attached", "Error"),
            "422": answer(
              "a check failed: `issues` names the request field to fix; nothing was stored",
              "Error",
            ),
            "501": answer("this control plane cannot attach masters", "Error"),
            "503": zonesUnread,
          },
        },
      },
      "/clusters/{clusterId}/detach": {
        parameters: parameters("path", clusterParams),
        post: {
          operationId: "detachCluster",
          description:
            "An attached cluster only (DELETE does the same for it): the deletion workflow retires the nodes NowScale launched (drained, never while running a job) and the Slurm entries it added, then records DELETED; the master is never touched.",
          responses: {
            "202": answer("DELETING; the detach runs"),
            ...errors,
            "409": answer("a created cluster (DELETE deletes it), or one still being created", "Error"),
            "503": notStarted,
          },
        },
      },
      "/clusters/{clusterId}": {
        parameters: parameters("path", clusterParams),
        get: { operationId: "getCluster", responses: { "200": answer("the cluster"), "404": errors["404"] } },
        delete: {
          operationId: "deleteCluster",
          description:
            "Idempotent while the deletion runs. A DELETING cluster whose deletion is not running gets a new attempt; a CREATING cluster is refused (409) only while its creation workflow runs.",
          responses: { "202": answer("DELETING; the deletion workflow runs"), ...errors, "503": notStarted },
        },
      },
      "/clusters/{clusterId}/autoscaling": {
        parameters: parameters("path", clusterParams),
        put: {
          operationId: "setAutoScalingConfiguration",
          description:
            "THPC's SetAutoScalingConfiguration: replaces the whole configuration. `If-Match: <version>` makes it conditional. Each entry's zone must be one of the cluster's region (400 naming `queueConfigs[i].expansionNodeConfigs[j].zone`).",
          parameters: parameters("header", ifMatchHeaders),
          requestBody: body("AutoScalingConfiguration"),
          responses: {
            "200": answer("the updated cluster"),
            ...bodyErrors,
            "503": zonesUnread,
          },
        },
      },
      "/clusters/{clusterId}/nodes": {
        parameters: parameters("path", clusterParams),
        get: {
          operationId: "describeNodes",
          description:
            "THPC's DescribeNodes: every node record with Slurm's state (the agent's report), idle time, cost so far (hours × the catalog's pricePerHour) and whether `nodes/rebuild` may replace it. When Slurm cannot be read the records still answer, with `slurm.reachable` false.",
          responses: { "200": answer("the nodes", "NodeList"), ...errors },
        },
        post: {
          operationId: "addNodes",
          requestBody: body("AddNodes"),
          responses: {
            "200": answer("the launch's round, nodes and failures", "AddNodesResult"),
            ...bodyErrors,
          },
        },
      },
      "/clusters/{clusterId}/nodes/delete": {
        parameters: parameters("path", clusterParams),
        post: {
          operationId: "deleteNodes",
          requestBody: body("DeleteNodes"),
          responses: { "200": answer("deleted", "DeleteNodesResult"), ...bodyErrors },
        },
      },
      "/clusters/{clusterId}/nodes/rebuild": {
        parameters: parameters("path", clusterParams),
        post: {
          operationId: "rebuildNodes",
          description:
            "HPC-NOW's rebuild: failed nodes (DOWN/FAIL/not responding in Slurm, lost by Slurm, or not in Slurm `bootGraceSeconds` after launch; never one running a job) are terminated and replaced in their queue through the launch path. Send `{}` for every failed node. A named node that is unknown (404) or not failed (409) is named in `issues` and nothing changes; 503 when Slurm's view cannot be read.",
          requestBody: body("RebuildNodes"),
          responses: {
            "200": answer("what was retired and launched", "RebuildNodesResult"),
            ...bodyErrors,
            "503": answer("Slurm's view could not be read: nothing rebuilt", "Error"),
          },
        },
      },
      "/clusters/{clusterId}/usage": {
        parameters: parameters("path", clusterParams),
        get: {
          operationId: "describeUsage",
          description:
            "Node-hours and cost per UTC day, queue and instance type in [from, to], from the node records and the usage history of deleted ones (HPC-NOW's usage). Cost is hours × the catalog's on-demand pricePerHour: a guide, not a bill.",
          parameters: parameters("query", usageQuerySchema),
          responses: { "200": answer("the usage", "Usage"), ...errors },
        },
      },
      "/clusters/{clusterId}/sleep": {
        parameters: parameters("path", clusterParams),
        post: {
          operationId: "sleepCluster",
          description:
            "HPC-NOW's sleep: SLEEPING (the scaler launches nothing; jobs may queue), every compute node drained and each empty one retired; nodes running a job are never terminated: `waiting` names them, and they are retired as their jobs end. With stopMaster, the master is stopped (not terminated) once no compute node is left, where the deployment can (docs/control-plane.md).",
          requestBody: {
            required: false,
            content: { "application/json": { schema: { $ref: "#/components/schemas/Sleep" } } },
          },
          responses: { "200": answer("SLEEPING: autoscaling paused", "SleepResult"), ...errors },
        },
      },
      "/clusters/{clusterId}/wake": {
        parameters: parameters("path", clusterParams),
        post: {
          operationId: "wakeUpCluster",
          description:
            "HPC-NOW's wakeup: the master started (where sleep could stop it), RUNNING again (the scaler launches for the queued jobs), the nodes sleep drained that still wait resumed.",
          responses: { "200": answer("RUNNING again", "SleepResult"), ...errors },
        },
      },
      "/clusters/{clusterId}/nodes/stop": {
        parameters: parameters("path", clusterParams),
        post: {
          operationId: "stopNodes",
          description:
            "HPC-NOW's shutdownc: the chosen compute nodes drained (no new job) and each empty one retired at once; a node running a job is answered in `waiting` and retired when its job ends.",
          requestBody: body("ChosenNodes"),
          responses: { "200": answer("retired and waiting", "StopNodesResult"), ...bodyErrors },
        },
      },
      "/clusters/{clusterId}/nodes/resume": {
        parameters: parameters("path", clusterParams),
        post: {
          operationId: "resumeNodes",
          description:
            "HPC-NOW's turnonc: the chosen nodes that a stop or sleep drained, still waiting for their jobs, take jobs again. A retired node has no instance left: the scaler launches new ones on demand. A name the cluster never had (not in Slurm, no record, not retired) is 404 naming `nodes[i]`, nothing resumed, as stop.",
          requestBody: body("ChosenNodes"),
          responses: { "200": answer("resumed and not", "ResumeNodesResult"), ...bodyErrors },
        },
      },
      "/clusters/{clusterId}/events": {
        parameters: parameters("path", clusterParams),
        get: {
          operationId: "listScalingEvents",
          parameters: parameters("query", eventsQuery),
          responses: { "200": answer("newest first", "EventList"), ...errors },
        },
      },
      "/clusters/{clusterId}/nodes/{node}/console": {
        parameters: parameters("path", nodeParams),
        get: {
          operationId: "getNodeConsole",
          parameters: parameters("query", consoleQuery),
          responses: {
            "200": answer("the node's console output (its boot), last lines", "NodeConsole"),
            ...errors,
            "501": answer("the cloud's provider cannot read instance consoles", "Error"),
          },
        },
      },
      "/clusters/{clusterId}/queues": {
        parameters: parameters("path", clusterParams),
        get: {
          operationId: "describeQueues",
          description:
            "THPC DescribeQueues: each queue's autoscaling settings and what Slurm's report says about it (nodes, idle, busy, pending and running jobs); `slurm.reachable` false and each queue's `slurm` null when the master cannot be read.",
          responses: { "200": answer("the queues", "QueueList"), ...errors },
        },
        post: {
          operationId: "addQueue",
          description:
            "THPC AddQueue: the queue's Slurm partition is created on the running master (the agent rewrites slurm.conf's partition section, keeps the previous file and runs scontrol reconfigure, rolling back on failure), then the queue is added to the autoscaling configuration. 409 when it exists or the cluster is not RUNNING; 502/503 when the master refused or did not answer (nothing changed).",
          parameters: parameters("header", ifMatchHeaders),
          requestBody: body("QueueConfig"),
          responses: {
            "200": answer("the new autoscaling configuration", "QueueChange"),
            ...bodyErrors,
            "502": answer("the master refused the change (slurm.conf rolled back)", "Error"),
            "503": answer(
              "the master did not answer, or the cloud did not list its zones: nothing changed",
              "Error",
            ),
          },
        },
      },
      "/clusters/{clusterId}/queues/{queue}": {
        parameters: parameters("path", queueParams),
        delete: {
          operationId: "deleteQueue",
          description:
            "THPC DeleteQueue: refused (409) while any job runs in the queue, always; while jobs pend there unless force=true (they are then left unrunnable in Slurm). Otherwise the queue's nodes are drained, checked again, the queue leaves the configuration, its nodes are retired and its partition is removed. The last queue cannot be deleted.",
          parameters: parameters("query", queueQuery),
          responses: {
            "200": answer("the queue and the nodes retired", "QueueDeleted"),
            ...errors,
            "502": answer("the master refused", "Error"),
            "503": answer("the master did not answer", "Error"),
          },
        },
      },
      "/clusters/{clusterId}/queues/{queue}/reset-protection": {
        parameters: parameters("path", queueParams),
        post: {
          operationId: "resetProtectedMode",
          responses: { "200": answer("the queue's health", "QueueHealth"), ...errors },
        },
      },
      // ── node setup (lib/control/storage.ts) ──
      "/clusters/{clusterId}/storage": {
        parameters: parameters("path", clusterParams),
        get: {
          operationId: "describeClusterStorageOption",
          description:
            "THPC DescribeClusterStorageOption: the mounts every compute node launched from now on makes before it joins.",
          responses: { "200": answer("the storage options", "StorageOptions"), ...errors },
        },
        post: {
          operationId: "addClusterStorageOption",
          description:
            "THPC AddClusterStorageOption (one CFSOption): checked as the boot-script renderer checks it (host:/path or Lustre NID remote, an absolute local path of plain segments outside the node's system trees). On a RUNNING cluster the master's agent first writes the whole set into slurm.conf (one comment line, scontrol reconfigure, rolled back on failure), which configless Slurm sends to every node, whose storage sync mounts it within 15 s (`runningNodes`: synced); then it is stored on the cluster and rendered into the boot script of every node launched afterwards. 409 when the local path is already a mount point; 502/503 when the master refused or did not answer (nothing changed).",
          requestBody: body("StorageOption"),
          responses: {
            "200": answer("the storage options after the change", "StorageOptions"),
            ...bodyErrors,
          },
        },
        delete: {
          operationId: "deleteClusterStorageOption",
          description:
            "THPC DeleteClusterStorageOption: nodes launched afterwards no longer mount `localPath`, and running nodes unmount it (the same path as add). Slurm cannot tell which job reads which path, so it is refused (409) while any job runs on the cluster unless force=true; even forced, a node unmounts only once nothing there uses the mount (a busy umount is retried). 404 naming localPath when it is not a mount point of the cluster.",
          parameters: parameters("query", storageDeleteQuery),
          responses: { "200": answer("the storage options after the change", "StorageOptions"), ...errors },
        },
      },
      "/clusters/{clusterId}/init-scripts": {
        parameters: parameters("path", clusterParams),
        get: {
          operationId: "describeInitNodeScripts",
          description:
            "The init scripts every compute node launched from now on runs before it joins, in order.",
          responses: { "200": answer("the init scripts", "InitScripts"), ...errors },
        },
        put: {
          operationId: "modifyInitNodeScripts",
          description:
            "THPC ModifyInitNodeScripts: replaces the list (`[]` removes them). Each script is an https:// or s3:// `url`, or `inline` text starting with #!/ (at most 4096 printable ASCII characters, sent to the node base64-encoded), with a timeout. As in THPC, it applies to nodes launched afterwards; running nodes do not run it.",
          requestBody: body("InitScriptsChange"),
          responses: { "200": answer("the init scripts after the change", "InitScripts"), ...bodyErrors },
        },
      },
      ...users.paths,
    },
    components: {
      securitySchemes: {
        sigv4: {
          type: "apiKey",
          name: "Authorization",
          in: "header",
          "x-amazon-apigateway-authtype": "awsSigv4",
        },
      },
      schemas: {
        CreateCluster: schema(createClusterSchema),
        AttachCluster: schema(attachClusterSchema),
        AutoScalingConfiguration: schema(autoscalingSchema),
        AddNodes: schema(addNodesSchema),
        DeleteNodes: schema(deleteNodesSchema),
        RebuildNodes: schema(rebuildNodesSchema),
        Sleep: schema(sleepBodySchema),
        ChosenNodes: schema(chosenNodesSchema),
        SleepResult: {
          allOf: [
            { $ref: "#/components/schemas/Cluster" },
            {
              type: "object",
              properties: {
                retired: { type: "array", items: { type: "string" } },
                waiting: { $ref: "#/components/schemas/WaitingNodes" },
                resumed: { type: "array", items: { type: "string" } },
                master: {
                  type: "object",
                  properties: {
                    state: { enum: ["stopped", "started", "running"] },
                    instanceIds: { type: "array", items: { type: "string" } },
                    reason: { type: "string" },
                  },
                },
              },
            },
          ],
        },
        WaitingNodes: {
          type: "array",
          items: {
            type: "object",
            properties: { node: { type: "string" }, reason: { type: "string" } },
          },
        },
        StopNodesResult: {
          type: "object",
          properties: {
            retired: { type: "array", items: { type: "string" } },
            waiting: { $ref: "#/components/schemas/WaitingNodes" },
          },
        },
        ResumeNodesResult: {
          type: "object",
          properties: {
            resumed: { type: "array", items: { type: "string" } },
            notResumed: { $ref: "#/components/schemas/WaitingNodes" },
          },
        },
        Error: {
          type: "object",
          required: ["error"],
          properties: {
            error: { type: "string" },
            issues: {
              type: "array",
              items: {
                type: "object",
                required: ["path", "message"],
                properties: { path: { type: "string" }, message: { type: "string" } },
              },
            },
          },
        },
        Cluster: {
          type: "object",
          required: [
            "clusterId",
            "name",
            "status",
            "version",
            "placement",
            "autoscaling",
            "createdAt",
            "updatedAt",
          ],
          properties: {
            clusterId: { type: "string" },
            name: { type: "string" },
            status: { enum: ["CREATING", "RUNNING", "SLEEPING", "DELETING", "DELETED", "FAILED"] },
            reason: { type: "string" },
            version: { type: "integer" },
            origin: { enum: ["created", "attached"] },
            attachment: { type: "object" },
            placement: { type: "object" },
            autoscaling: { $ref: "#/components/schemas/AutoScalingConfiguration" },
            agent: { type: "object", properties: { kind: { enum: ["http", "ssm", "none"] } } },
            queueHealth: {
              type: "object",
              additionalProperties: { $ref: "#/components/schemas/QueueHealth" },
            },
            resources: { type: "array", items: { type: "object" } },
            executionArn: { type: "string" },
            createdAt: { type: "string", format: "date-time" },
            updatedAt: { type: "string", format: "date-time" },
          },
        },
        ClusterList: {
          type: "object",
          properties: { clusters: { type: "array", items: { $ref: "#/components/schemas/Cluster" } } },
        },
        QueueConfig: schema(queueConfigSchema),
        StorageOption: schema(storageOptionBodySchema),
        InitScriptsChange: schema(initScriptsBodySchema),
        StorageOptions: {
          type: "object",
          properties: {
            clusterId: { type: "string" },
            storage: { type: "array", items: { $ref: "#/components/schemas/StorageOption" } },
            runningNodes: {
              type: "string",
              description: "synced, or why the running nodes were not told (changes only)",
            },
          },
        },
        InitScripts: {
          type: "object",
          properties: {
            clusterId: { type: "string" },
            initScripts: { type: "array", items: { type: "object" } },
          },
        },
        QueueChange: {
          type: "object",
          properties: {
            clusterId: { type: "string" },
            queue: { type: "string" },
            autoscaling: { type: "object" },
          },
        },
        QueueDeleted: {
          type: "object",
          properties: {
            clusterId: { type: "string" },
            queue: { type: "string" },
            retired: { type: "array", items: { type: "string" } },
          },
        },
        QueueList: {
          type: "object",
          properties: {
            clusterId: { type: "string" },
            slurm: {
              type: "object",
              properties: { reachable: { type: "boolean" }, error: { type: "string" } },
            },
            queues: { type: "array", items: { type: "object" } },
          },
        },
        QueueHealth: {
          type: "object",
          properties: {
            queue: { type: "string" },
            consecutiveBootstrapFailures: { type: "integer" },
            protected: { type: "boolean" },
            updatedAt: { type: "integer" },
          },
        },
        AddNodesResult: {
          type: "object",
          properties: {
            round: { type: "string" },
            nodes: { type: "array", items: { type: "string" } },
            failures: { type: "array", items: { type: "object" } },
          },
        },
        DeleteNodesResult: {
          type: "object",
          properties: { deleted: { type: "array", items: { type: "string" } } },
        },
        NodeList: {
          type: "object",
          properties: {
            clusterId: { type: "string" },
            at: { type: "string", format: "date-time" },
            slurm: {
              type: "object",
              properties: { reachable: { type: "boolean" }, error: { type: "string" } },
            },
            nodes: {
              type: "array",
              items: {
                type: "object",
                properties: {
                  node: { type: "string" },
                  instanceId: { type: "string" },
                  queue: { type: "string" },
                  instanceType: { type: "string" },
                  zone: { type: "string" },
                  chargeType: { enum: ["ON_DEMAND", "SPOT"] },
                  status: { enum: ["LAUNCHING", "JOINED", "DRAINING", "TERMINATING"] },
                  slurmState: { type: ["string", "null"] },
                  runningJob: { type: ["boolean", "null"] },
                  launchedAt: { type: "string", format: "date-time" },
                  joinedAt: { type: "string", format: "date-time" },
                  idleSince: { type: "string", format: "date-time" },
                  idleSeconds: { type: ["integer", "null"] },
                  hours: { type: "number" },
                  pricePerHour: { type: ["number", "null"] },
                  costSoFar: { type: ["number", "null"] },
                  rebuild: {
                    type: "object",
                    properties: { eligible: { type: "boolean" }, reason: { type: "string" } },
                  },
                },
              },
            },
          },
        },
        RebuildNodesResult: {
          type: "object",
          properties: {
            rebuilt: {
              type: "array",
              items: {
                type: "object",
                properties: {
                  node: { type: "string" },
                  queue: { type: "string" },
                  reason: { type: "string" },
                  round: { type: "string" },
                },
              },
            },
            launched: { type: "array", items: { type: "string" } },
            failures: { type: "array", items: { type: "object" } },
          },
        },
        Usage: {
          type: "object",
          properties: {
            clusterId: { type: "string" },
            from: { type: "string", format: "date-time" },
            to: { type: "string", format: "date-time" },
            at: { type: "string", format: "date-time" },
            rows: {
              type: "array",
              items: {
                type: "object",
                properties: {
                  clusterId: { type: "string" },
                  day: { type: "string", format: "date" },
                  queue: { type: "string" },
                  instanceType: { type: "string" },
                  nodes: { type: "integer" },
                  nodeHours: { type: "number" },
                  pricePerHour: { type: ["number", "null"] },
                  cost: { type: ["number", "null"] },
                },
              },
            },
            byQueue: { $ref: "#/components/schemas/UsageTotals" },
            byInstanceType: { $ref: "#/components/schemas/UsageTotals" },
            byDay: { $ref: "#/components/schemas/UsageTotals" },
            total: { type: "object" },
            nodes: { type: "array", items: { type: "object" } },
          },
        },
        UsageTotals: {
          type: "array",
          items: {
            type: "object",
            properties: {
              key: { type: "string" },
              nodeHours: { type: "number" },
              cost: { type: "number" },
              unpricedNodeHours: { type: "number" },
            },
          },
        },
        NodeConsole: {
          type: "object",
          properties: {
            node: { type: "string" },
            instanceId: { type: "string" },
            output: { type: "string" },
          },
        },
        EventList: {
          type: "object",
          properties: {
            events: {
              type: "array",
              items: {
                type: "object",
                properties: {
                  eventId: { type: "string" },
                  kind: { type: "string" },
                  message: { type: "string" },
                  queue: { type: "string" },
                  nodes: { type: "array", items: { type: "string" } },
                  count: { type: "integer" },
                  at: { type: "string", format: "date-time" },
                  by: {
                    type: "string",
                    description:
                      "who asked (operator actions): the caller's IAM principal ARN, or local:root in the local mode; absent on the service's own events",
                  },
                },
              },
            },
          },
        },
      },
      ...users.schemas,
    },
  };
}
