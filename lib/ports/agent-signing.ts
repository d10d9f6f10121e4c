import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { replaceFileAtomically } from "./atomic-file.js";

/**
 * Request signing between the control plane and the agent: HMAC-SHA256 over
 *
 *   "nowscale-v1\n" + METHOD + "\n" + path (with query) + "\n" + timestamp + "\n" + nonce + "\n" + hex(SHA-256(body))
 *
 * sent in X-NowScale-Timestamp (Unix seconds), X-NowScale-Nonce and X-NowScale-Signature ("v1=" + hex).
 * The agent accepts a request only inside the replay window around its clock and only once per nonce;
 * with a replay file the nonces outlive a restart of the agent (RequestVerifier).
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

/**
 * `stored: false`: the signature was good but the nonce could not be saved to the replay file, so the
 * request must not be acted on (the agent answers 500, not 401: the caller did nothing wrong).
 */
export type VerifyResult = { ok: true } | { ok: false; reason: string; stored?: false };

export interface VerifierOptions {
  key: Uint8Array;
  /** Accepted clock difference either way, seconds. @default 300 */
  windowS?: number;
  /** Nonces remembered at most; beyond it requests are refused until old ones expire. @default 100000 */
  maxNonces?: number;
  /**
   * The replay file: the nonces of the window, rewritten atomically (temporary file, fsync, rename)
   * before each accepted request is answered, and read back at start, so a request captured before a
   * restart is still refused after it. Without it the nonces live in memory only and an agent restarted
   * within the window accepts a replay of a request signed before the restart.
   */
  replayFile?: string;
  /** The agent's clock at start, ms: the fallback of an unreadable replay file. @default Date.now() */
  startedAtMs?: number;
}

/**
 * The replay file's format: `{"version": 1, "nonces": [[nonce, expiry in Unix seconds], ...]}`, plus
 * `"notAfter": S` while an epoch fallback is in force (so a second restart keeps refusing what the first
 * one could not check).
 */
const REPLAY_FILE_VERSION = 1;

/**
 * Checks signed requests and remembers their nonces for the replay window. A nonce is recorded only
 * after its signature checks out, so unsigned traffic cannot fill the cache.
 *
 * With `replayFile`: a missing file is a first start (nothing to remember). A file that cannot be read
 * or parsed falls back to epoch scoping: every request signed at or before the start second is refused
 * (`startProblem` says why), which closes the same hole without the file, but only as well as the
 * control plane's clock agrees with the agent's (see docs/agent.md, Signing).
 */
export class RequestVerifier {
  private readonly seen = new Map<string, number>();
  private readonly windowS: number;
  private readonly maxNonces: number;
  /** Requests signed at or before this Unix second are refused (only after an unreadable replay file). */
  private notAfterS: number | undefined;
  /** Why the replay file could not be used at start, if it could not; undefined otherwise. */
  readonly startProblem: string | undefined;

  constructor(private readonly options: VerifierOptions) {
    if (options.key.length < MIN_KEY_BYTES)
      throw new TypeError(`the signing key must have at least ${MIN_KEY_BYTES} bytes`);
    this.windowS = options.windowS ?? 300;
    this.maxNonces = options.maxNonces ?? 100_000;
    if (options.replayFile !== undefined) {
      const startS = Math.floor((options.startedAtMs ?? Date.now()) / 1000);
      const loaded = loadReplayFile(options.replayFile);
      if (typeof loaded === "string") {
        this.startProblem = loaded;
        this.notAfterS = startS;
      } else {
        // A fallback of an earlier start still matters while requests signed before it are in the window.
        if (loaded.notAfterS !== undefined && loaded.notAfterS + this.windowS >= startS)
          this.notAfterS = loaded.notAfterS;
        for (const [nonce, expiry] of loaded.nonces) {
          if (expiry < startS) continue;
          if (this.seen.size >= this.maxNonces) {
            // More than this agent may keep (maxNonces was lowered): what is dropped is covered by epoch.
            this.notAfterS = startS;
            break;
          }
          this.seen.set(nonce, expiry);
        }
      }
    }
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
    if (this.notAfterS !== undefined && timestamp <= this.notAfterS)
      return { ok: false, reason: "signed before the agent started (its replay file was unreadable)" };
    const expected = Buffer.from(signature(this.options.key, { ...request, timestamp, nonce }), "hex");
    const given = Buffer.from(sigMatch[1] as string, "hex");
    if (!timingSafeEqual(expected, given)) return { ok: false, reason: "bad signature" };
    this.forgetExpired(nowS);
    if (this.seen.has(nonce)) return { ok: false, reason: "nonce already used" };
    if (this.seen.size >= this.maxNonces)
      return { ok: false, reason: "too many requests in the replay window" };
    // Remember until the request's timestamp leaves the window, the last moment it could be replayed.
    this.seen.set(nonce, timestamp + this.windowS);
    if (this.options.replayFile !== undefined) {
      try {
        saveReplayFile(this.options.replayFile, this.seen, this.notAfterS);
      } catch (error) {
        // The nonce stays remembered in memory; the request is not acted on, so no replay can follow.
        const why = error instanceof Error ? error.message : String(error);
        return { ok: false, reason: `the replay file could not be saved: ${why}`, stored: false };
      }
    }
    return { ok: true };
  }

  private forgetExpired(nowS: number): void {
    for (const [nonce, expiry] of this.seen) {
      if (expiry < nowS) this.seen.delete(nonce);
    }
  }
}

interface ReplayFileContents {
  nonces: [string, number][];
  notAfterS?: number;
}

/** A replay file's contents; nothing when it does not exist; a sentence when it cannot be used. */
function loadReplayFile(file: string): ReplayFileContents | string {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { nonces: [] };
    return `replay file ${file} could not be read: ${(error as Error).message}`;
  }
  try {
    const parsed = JSON.parse(text) as { version?: unknown; nonces?: unknown; notAfter?: unknown };
    if (parsed.version !== REPLAY_FILE_VERSION || !Array.isArray(parsed.nonces))
      throw new Error("bad format");
    if (parsed.notAfter !== undefined && !Number.isInteger(parsed.notAfter)) throw new Error("bad notAfter");
    const entries: [string, number][] = [];
    for (const entry of parsed.nonces as unknown[]) {
      if (!Array.isArray(entry) || entry.length !== 2) throw new Error("bad entry");
      const [nonce, expiry] = entry as [unknown, unknown];
      if (typeof nonce !== "string" || !NONCE.test(nonce) || !Number.isInteger(expiry))
        throw new Error("bad entry");
      entries.push([nonce, expiry as number]);
    }
    return {
      nonces: entries,
      ...(parsed.notAfter === undefined ? {} : { notAfterS: parsed.notAfter as number }),
    };
  } catch (error) {
    return `replay file ${file} is not a valid replay file (${(error as Error).message})`;
  }
}

/** Replaces the replay file atomically (atomic-file.ts): a crash leaves the old or the new list, never half. */
function saveReplayFile(file: string, nonces: Map<string, number>, notAfterS: number | undefined): void {
  const text = JSON.stringify({
    version: REPLAY_FILE_VERSION,
    ...(notAfterS === undefined ? {} : { notAfter: notAfterS }),
    nonces: [...nonces],
  });
  replaceFileAtomically(file, text);
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? (value.length === 1 ? value[0] : undefined) : value;
}
