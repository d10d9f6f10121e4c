import { createHash, randomUUID, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { SignatureV4 } from "@smithy/signature-v4";
import { NodeSha256, PUT_EVENTS_CONTENT_TYPE, PUT_EVENTS_TARGET } from "../../agent/events.js";
import { WAKE_DETAIL_TYPE, WAKE_SOURCE } from "../ports/wake.js";
import { sendJson } from "./api-gateway.js";

/**
 * The local mode's EventBridge: the stack's wake bus and rule on one machine. The agent's watcher sends
 * the same signed PutEvents request it sends to AWS (agent/events.ts, `--endpoint-url` pointing here);
 * this answers as EventBridge does and hands each wake's detail to the scaler loop, as the stack's rule
 * hands it to the scaler Lambda.
 *
 * Who may put: the request must be signed (SigV4, service `events`) with the credentials the supervisor
 * gave the watcher (the local stand-in for the master's instance role), within five minutes of this
 * clock; the signature is recomputed with the AWS SDK's signer and compared in constant time. And, as
 * the master role's policy says on AWS, only the wake's source and detail-type on this bus: any other
 * entry is refused (AccessDeniedException) and reaches nothing. A wake that gets through is still only
 * a hint (lib/control/wake.ts).
 */

export const LOCAL_EVENTS_PATH = "/local/events";
export const LOCAL_BUS_NAME = "nowscale-local-wake";
export const LOCAL_EVENTS_REGION = "local";

/** PutEvents takes at most 10 entries and 256 KiB. */
const MAX_ENTRIES = 10;
const MAX_BODY_BYTES = 256 * 1024;
const MAX_SKEW_MS = 5 * 60_000;

export interface LocalBusCredentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface LocalEventBusOptions {
  credentials: LocalBusCredentials;
  /** The rule's target: one call per accepted wake, with the event's detail (untrusted JSON). */
  onWake: (detail: unknown) => void;
  now?: () => number;
}

type EntryResult = { EventId: string } | { ErrorCode: string; ErrorMessage: string };

export class LocalEventBus {
  private readonly signer: SignatureV4;
  private readonly now: () => number;

  constructor(private readonly o: LocalEventBusOptions) {
    this.now = o.now ?? Date.now;
    this.signer = new SignatureV4({
      service: "events",
      region: LOCAL_EVENTS_REGION,
      credentials: o.credentials,
      sha256: NodeSha256,
    });
  }

  /** Serves one request to LOCAL_EVENTS_PATH; never throws. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const fail = (status: number, type: string, message: string) =>
      sendJson(res, status, { __type: type, message });
    if (req.method !== "POST") return fail(405, "MethodNotAllowed", "PutEvents is a POST");
    const body = await readLimited(req);
    if (body === undefined) return fail(413, "RequestEntityTooLarge", "the body is over 256 KiB");
    const refused = await this.authenticate(req, body);
    if (refused !== undefined) return fail(403, refused.type, refused.message);
    if (req.headers["x-amz-target"] !== PUT_EVENTS_TARGET)
      return fail(400, "UnknownOperationException", "only AWSEvents.PutEvents is served");
    if (String(req.headers["content-type"] ?? "").split(";")[0] !== PUT_EVENTS_CONTENT_TYPE)
      return fail(400, "SerializationException", `content-type must be ${PUT_EVENTS_CONTENT_TYPE}`);
    let entries: unknown;
    try {
      entries = (JSON.parse(body.toString("utf8")) as { Entries?: unknown }).Entries;
    } catch {
      return fail(400, "SerializationException", "the body is not JSON");
    }
    if (!Array.isArray(entries) || entries.length < 1 || entries.length > MAX_ENTRIES)
      return fail(400, "ValidationException", `Entries must hold 1 to ${MAX_ENTRIES} events`);
    const results = entries.map((entry) => this.put(entry));
    sendJson(res, 200, {
      FailedEntryCount: results.filter((r) => "ErrorCode" in r).length,
      Entries: results,
    });
  }

  /** One entry: refused unless it is a wake on this bus; a wake goes to the rule's target. */
  private put(entry: unknown): EntryResult {
    const e = (typeof entry === "object" && entry !== null ? entry : {}) as Record<string, unknown>;
    const bus = typeof e.EventBusName === "string" ? e.EventBusName : "";
    if (bus !== LOCAL_BUS_NAME && !bus.endsWith(`:event-bus/${LOCAL_BUS_NAME}`))
      return { ErrorCode: "AccessDeniedException", ErrorMessage: `no permission to put events on "${bus}"` };
    if (e.Source !== WAKE_SOURCE || e.DetailType !== WAKE_DETAIL_TYPE)
      return {
        ErrorCode: "AccessDeniedException",
        ErrorMessage: `only source ${WAKE_SOURCE} with detail-type "${WAKE_DETAIL_TYPE}" may be put`,
      };
    let detail: unknown;
    try {
      detail = JSON.parse(typeof e.Detail === "string" ? e.Detail : "");
    } catch {
      return { ErrorCode: "MalformedDetail", ErrorMessage: "Detail is not valid JSON" };
    }
    this.o.onWake(detail);
    return { EventId: randomUUID() };
  }

  /** Undefined when the request carries a valid signature of the watcher's credentials, else why not. */
  private async authenticate(
    req: IncomingMessage,
    body: Buffer,
  ): Promise<{ type: string; message: string } | undefined> {
    const auth = String(req.headers.authorization ?? "");
    const m =
      /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/events\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=[0-9a-f]{64}$/.exec(
        auth,
      );
    if (m === null) return { type: "MissingAuthenticationTokenException", message: "no SigV4 signature" };
    const [, keyId = "", , region = "", signedHeaders = ""] = m;
    if (keyId !== this.o.credentials.accessKeyId || region !== LOCAL_EVENTS_REGION)
      return { type: "UnrecognizedClientException", message: "the security token is not valid" };
    const date = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(
      String(req.headers["x-amz-date"] ?? ""),
    );
    const [y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0] = (date?.slice(1) ?? []).map(Number);
    const signedAt = date === null ? Number.NaN : Date.UTC(y, mo - 1, d, h, mi, sec);
    if (!(Math.abs(this.now() - signedAt) <= MAX_SKEW_MS))
      return { type: "InvalidSignatureException", message: "the signature is expired or not yet valid" };
    // Recompute over the headers the client signed; the body's hash is ours, never the client's header.
    const headers: Record<string, string> = {};
    for (const name of signedHeaders.split(";")) {
      if (name === "x-amz-date") continue;
      headers[name] =
        name === "x-amz-content-sha256"
          ? createHash("sha256").update(body).digest("hex")
          : String(req.headers[name] ?? "");
    }
    const url = new URL(req.url ?? "/", "http://localhost");
    const query: Record<string, string> = {};
    for (const [k, v] of url.searchParams) query[k] = v;
    const expected = await this.signer.sign(
      {
        method: "POST",
        protocol: "http:",
        hostname: url.hostname,
        path: url.pathname,
        query,
        headers,
        body: body.toString("utf8"),
      },
      { signingDate: new Date(signedAt) },
    );
    const mine = Buffer.from(String(expected.headers.authorization ?? ""));
    const theirs = Buffer.from(auth);
    if (mine.length !== theirs.length || !timingSafeEqual(mine, theirs))
      return { type: "InvalidSignatureException", message: "the request signature does not match" };
    return undefined;
  }
}

async function readLimited(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
