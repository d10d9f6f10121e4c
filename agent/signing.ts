import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * Request signing between the control plane and the agent: HMAC-SHA256 over
 *
 *   "nowscale-v1\n" + METHOD + "\n" + path (with query) + "\n" + timestamp + "\n" + nonce + "\n" + hex(SHA-256(body))
 *
 * sent in X-NowScale-Timestamp (Unix seconds), X-NowScale-Nonce and X-NowScale-Signature ("v1=" + hex).
 * The agent accepts a request only inside the replay window around its clock and only once per nonce.
 */
export const HEADER_TIMESTAMP = "x-nowscale-timestamp";
export const HEADER_NONCE = "x-nowscale-nonce";
export const HEADER_SIGNATURE = "x-nowscale-signature";

const NONCE = /^[A-Za-z0-9_-]{16,64}$/;
const SIGNATURE = /^v1=([0-9a-f]{64})$/;
/** Keys shorter than this are refused: HMAC-SHA256 wants at least 256 bits. */
export const MIN_KEY_BYTES = 32;

export interface SignedParts {
  method: string;
  path: string;
  body: string | Uint8Array;
  /** Unix seconds. */
  timestamp: number;
  nonce: string;
}

/** The hex HMAC of a request. */
export function signature(key: Uint8Array, parts: SignedParts): string {
  const bodyHash = createHash("sha256").update(parts.body).digest("hex");
  const text = [
    "nowscale-v1",
    parts.method.toUpperCase(),
    parts.path,
    String(parts.timestamp),
    parts.nonce,
    bodyHash,
  ].join("\n");
  return createHmac("sha256", key).update(text).digest("hex");
}

/** Headers for a request signed now (or at `nowMs`) with a fresh random nonce. */
export function signRequest(
  key: Uint8Array,
  request: { method: string; path: string; body?: string },
  nowMs = Date.now(),
): Record<string, string> {
  const timestamp = Math.floor(nowMs / 1000);
  const nonce = randomBytes(18).toString("base64url");
  const sig = signature(key, {
    method: request.method,
    path: request.path,
    body: request.body ?? "",
    timestamp,
    nonce,
  });
  return { [HEADER_TIMESTAMP]: String(timestamp), [HEADER_NONCE]: nonce, [HEADER_SIGNATURE]: `v1=${sig}` };
}

export type VerifyResult = { ok: true } | { ok: false; reason: string };

export interface VerifierOptions {
  key: Uint8Array;
  /** Accepted clock difference either way, seconds. @default 300 */
  windowS?: number;
  /** Nonces remembered at most; beyond it requests are refused until old ones expire. @default 100000 */
  maxNonces?: number;
}

/**
 * Checks signed requests and remembers their nonces for the replay window. A nonce is recorded only
 * after its signature checks out, so unsigned traffic cannot fill the cache.
 */
export class RequestVerifier {
  private readonly seen = new Map<string, number>();
  private readonly windowS: number;
  private readonly maxNonces: number;

  constructor(private readonly options: VerifierOptions) {
    if (options.key.length < MIN_KEY_BYTES)
      throw new TypeError(`the signing key must have at least ${MIN_KEY_BYTES} bytes`);
    this.windowS = options.windowS ?? 300;
    this.maxNonces = options.maxNonces ?? 100_000;
  }

  /** Verifies one request; `headers` are Node's lower-case request headers. `nowMs` is the agent's clock. */
  verify(
    request: {
      method: string;
      path: string;
      body: Uint8Array | string;
      headers: Record<string, string | string[] | undefined>;
    },
    nowMs: number,
  ): VerifyResult {
    const timestampText = single(request.headers[HEADER_TIMESTAMP]);
    const nonce = single(request.headers[HEADER_NONCE]);
    const sigMatch = SIGNATURE.exec(single(request.headers[HEADER_SIGNATURE]) ?? "");
    if (timestampText === undefined || nonce === undefined || !sigMatch)
      return { ok: false, reason: "missing or malformed signature headers" };
    if (!/^\d{1,12}$/.test(timestampText) || !NONCE.test(nonce))
      return { ok: false, reason: "malformed timestamp or nonce" };
    const timestamp = Number(timestampText);
    const nowS = Math.floor(nowMs / 1000);
    if (Math.abs(nowS - timestamp) > this.windowS)
      return { ok: false, reason: "timestamp outside the replay window" };
    const expected = Buffer.from(signature(this.options.key, { ...request, timestamp, nonce }), "hex");
    const given = Buffer.from(sigMatch[1] as string, "hex");
    if (!timingSafeEqual(expected, given)) return { ok: false, reason: "bad signature" };
    this.forgetExpired(nowS);
    if (this.seen.has(nonce)) return { ok: false, reason: "nonce already used" };
    if (this.seen.size >= this.maxNonces)
      return { ok: false, reason: "too many requests in the replay window" };
    // Remember until the request's timestamp leaves the window, the last moment it could be replayed.
    this.seen.set(nonce, timestamp + this.windowS);
    return { ok: true };
  }

  private forgetExpired(nowS: number): void {
    for (const [nonce, expiry] of this.seen) {
      if (expiry < nowS) this.seen.delete(nonce);
    }
  }
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? (value.length === 1 ? value[0] : undefined) : value;
}
