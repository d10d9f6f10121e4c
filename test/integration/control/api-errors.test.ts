import { Logger } from "@aws-lambda-powertools/logger";
import type { APIGatewayProxyEvent, Context } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { ERROR_STATUS, statusOf } from "../../../lib/control/api/errors.js";
import { createApiHandler } from "../../../lib/control/api/handler.js";
import { AttachRefusedError } from "../../../lib/control/attach.js";
import {
  AdmissionBusyError,
  SlurmUnavailableError,
  StateRefusedError,
  UnknownNameError,
  UnsupportedOperationError,
  ZonesUnavailableError,
} from "../../../lib/control/errors.js";
import { WorkflowStartError } from "../../../lib/control/lifecycle-recovery.js";
import { ValidationError } from "../../../lib/core/validation.js";
import {
  AgentActionError,
  AgentUnreachableError,
  SlurmctldUnreachableError,
} from "../../../lib/ports/agent-channel.js";
import { ConflictError, LeaseLostError, NotFoundInStoreError } from "../../../lib/ports/state-store.js";
import { SecretStoreError } from "../../../lib/ports/user-secrets.js";
import { type ApiBed, apiBed, snapshot } from "../../support/api-bed.js";
import { CONFIG } from "../../support/control-bed.js";
import { startDynalite, type TestDynamo } from "../../support/dynalite.js";

/**
 * The API's one error table (lib/control/api/errors.ts): each typed error answers its status with its
 * message (and issues), a bug answers 500 with nothing of it shown and the error logged, and bad input
 * at any place (path, query, header, body) names the field and writes nothing.
 */

let db: TestDynamo;
beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => {
  await db.close();
});

const context = { awsRequestId: "req-1", functionName: "api" } as unknown as Context;

function event(method: string, path: string): APIGatewayProxyEvent {
  return {
    httpMethod: method,
    path,
    headers: {},
    queryStringParameters: null,
    body: null,
    isBase64Encoded: false,
  } as unknown as APIGatewayProxyEvent;
}

/** The bed's store answers `getCluster` with this error (as a service or the store would throw it). */
function failing(t: ApiBed, error: Error): void {
  Object.assign(t.store, {
    getCluster: async () => {
      throw error;
    },
  });
}

describe("the API's error table", () => {
  it("answers each typed error with its status, its message and its issues", async () => {
    // Prepare: one instance of every class the table lists, thrown where a service reads the cluster.
    const issues = [{ path: "clusterId", message: "no such cluster" }];
    const cases: [Error, number][] = [
      [new ValidationError("request body", [{ path: "count", message: "must be at most 100" }]), 400],
      [new UnknownNameError("no cluster x", issues), 404],
      [new NotFoundInStoreError("gone meanwhile"), 404],
      [new ConflictError("the cluster is DELETING"), 409],
      [new StateRefusedError("nodes not rebuilt", [{ path: "nodes[0]", message: "running a job" }]), 409],
      [new AttachRefusedError("master.url: no answer", [{ path: "master.url", message: "no answer" }]), 422],
      [new UnsupportedOperationError("the fake provider cannot read consoles"), 501],
      [new AgentActionError("scontrol reconfigure failed: rolled back", 502), 502],
      [new AgentUnreachableError("connect ECONNREFUSED"), 503],
      [new SlurmctldUnreachableError("slurmctld did not answer"), 503],
      [new WorkflowStartError("Step Functions throttled: retry"), 503],
      [new AdmissionBusyError("another launch holds the admission lease: retry"), 503],
      [new SlurmUnavailableError("Slurm's view could not be read: retry"), 503],
      [new SecretStoreError("Secrets Manager: throttled"), 503],
      [new ZonesUnavailableError("the zones of aws region us-east-1 could not be read"), 503],
    ];
    const t = await apiBed(db);
    const answers: { status: number; body: { error: string; issues?: unknown } }[] = [];
    // Act
    for (const [error] of cases) {
      failing(t, error);
      answers.push(await t.call("GET", "/clusters/c-1"));
    }
    // Assess
    expect(answers.map((a) => a.status)).toEqual(cases.map(([, status]) => status));
    expect(answers[0]?.body).toEqual({
      error: "request body is invalid: count: must be at most 100",
      issues: [{ path: "count", message: "must be at most 100" }],
    });
    expect(answers[1]?.body).toEqual({ error: "no cluster x", issues });
    expect(answers[3]?.body).toEqual({ error: "the cluster is DELETING" });
    // Every class of the table was exercised, and a subclass answers as its nearest listed ancestor.
    const listed = [...ERROR_STATUS.keys()].filter((c) => !cases.some(([e]) => e.constructor === c));
    expect(listed.map((c) => c.name).sort()).toEqual([
      "BodyTooLargeError",
      "MethodNotAllowedError",
      "NoRouteError",
      "UnsupportedMediaTypeError",
    ]);
    class StricterConflict extends ConflictError {}
    expect(statusOf(new StricterConflict("x"))).toBe(409);
    expect(statusOf(new LeaseLostError("x"))).toBeUndefined();
    expect(statusOf("a string")).toBeUndefined();
  });

  it("answers the request framing's errors: 404 no route, 405, 413, 415", async () => {
    // Prepare
    const t = await apiBed(db);
    const id = await t.runningCluster();
    // Act
    const noRoute = await t.call("GET", "/nothing");
    const method = await t.call("PATCH", "/clusters");
    const large = await t.call("PUT", `/clusters/${id}/autoscaling`, `{"a":"${"x".repeat(300_000)}"}`);
    const media = await t.call("PUT", `/clusters/${id}/autoscaling`, CONFIG, {
      "content-type": "text/plain",
    });
    // Assess
    expect([noRoute.status, method.status, large.status, media.status]).toEqual([404, 405, 413, 415]);
    expect(method.body.error).toBe("use POST or GET");
    expect(media.body.issues).toEqual([{ path: "content-type", message: "use application/json" }]);
  });

  it("answers a bug (a TypeError) with 500, not 400, and shows nothing of it; the error is logged", async () => {
    // Prepare: a programming error deep in a service, carrying something that must not leak.
    const t = await apiBed(db);
    const logger = new Logger({ serviceName: "api-test", logLevel: "SILENT" });
    const logged = vi.spyOn(logger, "error");
    const handler = createApiHandler(t.deps, logger);
    failing(t, new TypeError("Cannot read properties of undefined (reading 'secretKey')"));
    // Act
    const direct = t.call("GET", "/clusters/c-1");
    const answer = await handler(event("GET", "/clusters/c-1"), context);
    // Assess
    await expect(direct).rejects.toThrow(TypeError);
    expect(answer.statusCode).toBe(500);
    expect(JSON.parse(answer.body)).toEqual({ error: "internal error" });
    expect(answer.body).not.toContain("secretKey");
    expect(logged).toHaveBeenCalledWith("request failed", { error: expect.any(TypeError) });
  });

  it("names the field of bad input at every place, path, query, header and body, and writes nothing", async () => {
    // Prepare
    const t = await apiBed(db);
    const id = await t.runningCluster();
    const before = await snapshot(db, t.tables);
    // Act
    const path = await t.call("GET", "/clusters/a%20b");
    const query = await t.call("GET", `/clusters/${id}/events`, undefined, {}, { limit: "1001" });
    const header = await t.call("PUT", `/clusters/${id}/autoscaling`, CONFIG, { "If-Match": "seven" });
    const body = await t.call("POST", `/clusters/${id}/nodes`, { queue: "compute", count: 0 });
    // Assess
    expect(path).toEqual({
      status: 404,
      body: { error: 'no clusterId "a b"', issues: [{ path: "clusterId", message: expect.any(String) }] },
    });
    expect(query).toEqual({
      status: 400,
      body: {
        error: "query is invalid: limit: a whole number from 1 to 1000",
        issues: [{ path: "limit", message: "a whole number from 1 to 1000" }],
      },
    });
    expect(header.status).toBe(400);
    expect(header.body.issues).toEqual([{ path: "If-Match", message: "a cluster version" }]);
    expect(body.status).toBe(400);
    expect(body.body.issues).toEqual([{ path: "count", message: "must be at least 1" }]);
    expect(await snapshot(db, t.tables)).toBe(before);
  });
});
