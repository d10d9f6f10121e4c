import { createServer, type RequestListener, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { SignatureV4 } from "@smithy/signature-v4";
import { afterEach, describe, expect, it } from "vitest";
import {
  defaultCredentials,
  EventBridgeWaker,
  NodeSha256,
  PUT_EVENTS_CONTENT_TYPE,
  PUT_EVENTS_TARGET,
  roleCredentials,
} from "../../../agent/events.js";
import {
  LOCAL_BUS_NAME,
  LOCAL_EVENTS_PATH,
  LOCAL_EVENTS_REGION,
  LocalEventBus,
} from "../../../lib/local/event-bus.js";
import { WAKE_DETAIL_TYPE, WAKE_SOURCE } from "../../../lib/ports/wake.js";
import { metadataHandler } from "../../../lib/providers/local/instance-endpoints/metadata.js";

/**
 * The wake's transport: the agent's signed PutEvents (agent/events.ts) against the local mode's bus
 * (lib/local/event-bus.ts), which recomputes the signature with the AWS SDK's signer and lets through only
 * wakes on its own bus; and the instance role credentials the agent takes from IMDSv2.
 */

const CREDENTIALS = { accessKeyId: "AKIALOCALTEST01", secretAccessKey: "bus-secret-0123456789" };
const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

async function listen(handler: RequestListener): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A bus on a loopback port; `woken` collects the details it hands to the scaler. */
async function bus(now?: () => number) {
  const woken: unknown[] = [];
  const events = new LocalEventBus({
    credentials: CREDENTIALS,
    onWake: (detail) => woken.push(detail),
    ...(now === undefined ? {} : { now }),
  });
  const base = await listen((req, res) => void events.handle(req, res));
  return { woken, endpoint: `${base}${LOCAL_EVENTS_PATH}` };
}

function waker(endpoint: string, credentials = CREDENTIALS, busName = LOCAL_BUS_NAME) {
  return new EventBridgeWaker({
    clusterId: "c-0123456789ab",
    busName,
    region: LOCAL_EVENTS_REGION,
    endpoint,
    credentials: async () => credentials,
  });
}

/** A PutEvents request signed with the bus's own credentials, with entries of our choosing. */
async function signedPut(endpoint: string, entries: unknown[], body?: (signed: string) => string) {
  const url = new URL(endpoint);
  const text = JSON.stringify({ Entries: entries });
  const signed = await new SignatureV4({
    service: "events",
    region: LOCAL_EVENTS_REGION,
    credentials: CREDENTIALS,
    sha256: NodeSha256,
  }).sign({
    method: "POST",
    protocol: "http:",
    hostname: url.hostname,
    port: Number(url.port),
    path: url.pathname,
    query: {},
    headers: { host: url.host, "content-type": PUT_EVENTS_CONTENT_TYPE, "x-amz-target": PUT_EVENTS_TARGET },
    body: text,
  });
  const { host: _host, ...headers } = signed.headers as Record<string, string>;
  const res = await fetch(endpoint, { method: "POST", headers, body: body?.(text) ?? text });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const wakeEntry = (extra: Record<string, unknown> = {}) => ({
  Source: WAKE_SOURCE,
  DetailType: WAKE_DETAIL_TYPE,
  Detail: JSON.stringify({ clusterId: "c-0123456789ab" }),
  EventBusName: LOCAL_BUS_NAME,
  ...extra,
});

describe("the agent's wake through the local bus", () => {
  it("THEN a wake the agent signs is accepted and its detail reaches the scaler", async () => {
    // Prepare
    const { woken, endpoint } = await bus();

    // Act
    await waker(endpoint).wake();

    // Assess
    expect(woken).toEqual([{ clusterId: "c-0123456789ab" }]);
  });

  it("THEN a wrong secret, an unknown key, no signature or a stale one is 403 and wakes nothing", async () => {
    // Prepare
    const { woken, endpoint } = await bus();
    const late = await bus(() => Date.now() + 6 * 60_000);

    // Act
    const results = await Promise.all([
      waker(endpoint, { ...CREDENTIALS, secretAccessKey: "guessed-secret-000000" })
        .wake()
        .catch((e: Error) => e.message),
      waker(endpoint, { ...CREDENTIALS, accessKeyId: "AKIAOTHER0000000" })
        .wake()
        .catch((e: Error) => e.message),
      fetch(endpoint, {
        method: "POST",
        headers: { "content-type": PUT_EVENTS_CONTENT_TYPE, "x-amz-target": PUT_EVENTS_TARGET },
        body: JSON.stringify({ Entries: [wakeEntry()] }),
      }).then((r) => `answered ${r.status}`),
      waker(late.endpoint)
        .wake()
        .catch((e: Error) => e.message),
    ]);

    // Assess
    expect(results[0]).toMatch(/answered 403 InvalidSignatureException/);
    expect(results[1]).toMatch(/answered 403 UnrecognizedClientException/);
    expect(results[2]).toBe("answered 403");
    expect(results[3]).toMatch(/answered 403 InvalidSignatureException.*expired/);
    expect([...woken, ...late.woken]).toEqual([]);
  });

  it("THEN a signed request whose body was changed on the way is 403 and wakes nothing", async () => {
    // Prepare
    const { woken, endpoint } = await bus();

    // Act: signed for one cluster, delivered naming another
    const answer = await signedPut(endpoint, [wakeEntry()], (text) =>
      text.replace("c-0123456789ab", "c-ffffffffffff"),
    );

    // Assess
    expect(answer.status).toBe(403);
    expect(answer.body.__type).toBe("InvalidSignatureException");
    expect(woken).toEqual([]);
  });

  it("THEN only wakes on its own bus get through: another source, detail-type or bus is refused per entry", async () => {
    // Prepare
    const { woken, endpoint } = await bus();

    // Act
    const answer = await signedPut(endpoint, [
      wakeEntry({ Source: "aws.ec2" }),
      wakeEntry({ DetailType: "NowScale Launch" }),
      wakeEntry({ EventBusName: "default" }),
      wakeEntry({ Detail: "{not json" }),
      wakeEntry(),
    ]);

    // Assess
    expect(answer.status).toBe(200);
    expect(answer.body.FailedEntryCount).toBe(4);
    const codes = (answer.body.Entries as { ErrorCode?: string }[]).map((e) => e.ErrorCode ?? "ok");
    expect(codes).toEqual([
      "AccessDeniedException",
      "AccessDeniedException",
      "AccessDeniedException",
      "MalformedDetail",
      "ok",
    ]);
    expect(woken).toEqual([{ clusterId: "c-0123456789ab" }]);
  });

  it("THEN the waker reports a refused entry as a failed wake", async () => {
    // Prepare
    const { woken, endpoint } = await bus();

    // Act
    const error = await waker(endpoint, CREDENTIALS, "default")
      .wake()
      .catch((e: Error) => e.message);

    // Assess
    expect(error).toMatch(/refused the wake: AccessDeniedException/);
    expect(woken).toEqual([]);
  });
});

describe("the agent's AWS credentials", () => {
  it("THEN on an instance they come from IMDSv2 (token, role, credentials) and are kept until near expiry", async () => {
    // Prepare: the local mode's AWS metadata service
    const requests: string[] = [];
    const handler = metadataHandler(
      {
        cloud: "aws",
        instanceId: "i-0master",
        instanceType: "t3.medium",
        zone: "us-east-1a",
        region: "us-east-1",
        privateIp: "10.0.0.5",
      },
      { accessKeyId: "ASIAROLE", secret: "role-secret", token: "role-token" },
      requests,
    );
    const base = await listen((req, res) => void handler(req, res));

    // Act
    const source = defaultCredentials({}, base);
    const first = await source();
    await source();

    // Assess
    expect(first).toMatchObject({
      accessKeyId: "ASIAROLE",
      secretAccessKey: "role-secret",
      sessionToken: "role-token",
    });
    expect(first.expiration?.getTime()).toBeGreaterThan(Date.now());
    expect(requests.filter((r) => r.startsWith("PUT"))).toHaveLength(1);
    expect(requests.length).toBe(3);
  });

  it("THEN the environment's keys come first, and an instance without a role is an error", async () => {
    // Prepare
    const base = await listen((req, res) => {
      res.writeHead(req.method === "PUT" ? 200 : 404).end(req.method === "PUT" ? "token" : "");
    });

    // Act
    const fromEnv = await defaultCredentials(
      { AWS_ACCESS_KEY_ID: "AKIAENV", AWS_SECRET_ACCESS_KEY: "s" },
      base,
    )();
    const noRole = await roleCredentials(base).catch((e: Error) => e.message);

    // Assess
    expect(fromEnv).toEqual({ accessKeyId: "AKIAENV", secretAccessKey: "s" });
    expect(noRole).toMatch(/answered 404/);
  });
});
