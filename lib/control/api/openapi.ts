import { z } from "zod";
import {
  addNodesSchema,
  attachClusterSchema,
  autoscalingSchema,
  createClusterSchema,
  deleteNodesSchema,
} from "./schemas.js";

/**
 * The API's OpenAPI 3.1 document, generated from the same zod schemas the handlers validate with
 * (zod 4's JSON Schema output, in its request-body "input" form). `npm run build:openapi` writes it to
 * docs/openapi.json; a unit test fails when that file is stale.
 */
export function buildOpenApi(): Record<string, unknown> {
  const schema = (s: z.ZodType) =>
    z.toJSONSchema(s, { io: "input", unrepresentable: "any", target: "draft-2020-12" });
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
  const clusterId = { name: "clusterId", in: "path", required: true, schema: { type: "string" } };
  const sigv4 = [{ sigv4: [] }];

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
          parameters: [
            {
              name: "Idempotency-Key",
              in: "header",
              required: false,
              description: "a retried request with the same key returns the same cluster (kept 24 h)",
              schema: { type: "string", pattern: "^[A-Za-z0-9_-]{1,128}$" },
            },
          ],
          requestBody: body("CreateCluster"),
          responses: {
            "202": answer("created; the creation workflow runs"),
            "200": answer(
              "the cluster an earlier request with this Idempotency-Key created (its workflow started if it had not)",
            ),
            ...bodyErrors,
            "503": notStarted,
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
          },
        },
      },
      "/clusters/{clusterId}/detach": {
        parameters: [clusterId],
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
        parameters: [clusterId],
        get: { operationId: "getCluster", responses: { "200": answer("the cluster"), "404": errors["404"] } },
        delete: {
          operationId: "deleteCluster",
          description:
            "Idempotent while the deletion runs. A DELETING cluster whose deletion is not running gets a new attempt; a CREATING cluster is refused (409) only while its creation workflow runs.",
          responses: { "202": answer("DELETING; the deletion workflow runs"), ...errors, "503": notStarted },
        },
      },
      "/clusters/{clusterId}/autoscaling": {
        parameters: [clusterId],
        put: {
          operationId: "setAutoScalingConfiguration",
          description:
            "THPC's SetAutoScalingConfiguration: replaces the whole configuration. `If-Match: <version>` makes it conditional.",
          parameters: [{ name: "If-Match", in: "header", required: false, schema: { type: "string" } }],
          requestBody: body("AutoScalingConfiguration"),
          responses: { "200": answer("the updated cluster"), ...bodyErrors },
        },
      },
      "/clusters/{clusterId}/nodes": {
        parameters: [clusterId],
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
        parameters: [clusterId],
        post: {
          operationId: "deleteNodes",
          requestBody: body("DeleteNodes"),
          responses: { "200": answer("deleted", "DeleteNodesResult"), ...bodyErrors },
        },
      },
      "/clusters/{clusterId}/sleep": {
        parameters: [clusterId],
        post: {
          operationId: "sleepCluster",
          responses: { "200": answer("SLEEPING: autoscaling paused"), ...errors },
        },
      },
      "/clusters/{clusterId}/wake": {
        parameters: [clusterId],
        post: { operationId: "wakeUpCluster", responses: { "200": answer("RUNNING again"), ...errors } },
      },
      "/clusters/{clusterId}/events": {
        parameters: [clusterId],
        get: {
          operationId: "listScalingEvents",
          parameters: [
            {
              name: "limit",
              in: "query",
              required: false,
              schema: { type: "integer", minimum: 1, maximum: 1000 },
            },
          ],
          responses: { "200": answer("newest first", "EventList"), ...errors },
        },
      },
      "/clusters/{clusterId}/nodes/{node}/console": {
        parameters: [clusterId, { name: "node", in: "path", required: true, schema: { type: "string" } }],
        get: {
          operationId: "getNodeConsole",
          parameters: [
            {
              name: "lines",
              in: "query",
              required: false,
              schema: { type: "integer", minimum: 1, maximum: 10000 },
            },
          ],
          responses: {
            "200": answer("the node's console output (its boot), last lines", "NodeConsole"),
            ...errors,
            "501": answer("the cloud's provider cannot read instance consoles", "Error"),
          },
        },
      },
      "/clusters/{clusterId}/queues/{queue}/reset-protection": {
        parameters: [clusterId, { name: "queue", in: "path", required: true, schema: { type: "string" } }],
        post: {
          operationId: "resetProtectedMode",
          responses: { "200": answer("the queue's health", "QueueHealth"), ...errors },
        },
      },
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
                },
              },
            },
          },
        },
      },
    },
  };
}
