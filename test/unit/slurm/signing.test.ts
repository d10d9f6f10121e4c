import { describe, expect, it } from "vitest";
import {
  HEADER_NONCE,
  HEADER_SIGNATURE,
  HEADER_TIMESTAMP,
  RequestVerifier,
  signRequest,
} from "../../../lib/ports/agent-signing.js";

const KEY = Buffer.from("k".repeat(32));
const NOW = Date.parse("2026-11-24T04:00:00Z");

function signed(body = '{"reason":"idle"}', at = NOW, key = KEY) {
  const request = { method: "POST", path: "/v1/nodes/c4-a/drain", body };
  return { ...request, headers: signRequest(key, request, at) };
}

describe("RequestVerifier", () => {
  it("accepts a fresh, correctly signed request", () => {
    // Prepare
    const verifier = new RequestVerifier({ key: KEY });
    // Act
    const result = verifier.verify(signed(), NOW);
    // Assess
    expect(result).toEqual({ ok: true });
  });

  it("refuses a tampered body", () => {
    const verifier = new RequestVerifier({ key: KEY });
    const request = signed();
    expect(verifier.verify({ ...request, body: '{"reason":"other"}' }, NOW)).toEqual({
      ok: false,
      reason: "bad signature",
    });
  });

  it("refuses a changed path or method", () => {
    const verifier = new RequestVerifier({ key: KEY });
    expect(verifier.verify({ ...signed(), path: "/v1/nodes/c4-b/drain" }, NOW).ok).toBe(false);
    expect(verifier.verify({ ...signed(), method: "DELETE" }, NOW).ok).toBe(false);
  });

  it("refuses a request signed with another key", () => {
    const verifier = new RequestVerifier({ key: KEY });
    expect(verifier.verify(signed(undefined, NOW, Buffer.from("x".repeat(32))), NOW)).toEqual({
      ok: false,
      reason: "bad signature",
    });
  });

  it("refuses a replayed nonce", () => {
    const verifier = new RequestVerifier({ key: KEY });
    const request = signed();
    expect(verifier.verify(request, NOW).ok).toBe(true);
    expect(verifier.verify(request, NOW + 1000)).toEqual({ ok: false, reason: "nonce already used" });
  });

  it("refuses clock skew beyond the window either way, and accepts it inside", () => {
    const verifier = new RequestVerifier({ key: KEY, windowS: 300 });
    expect(verifier.verify(signed(undefined, NOW - 301_000), NOW).ok).toBe(false);
    expect(verifier.verify(signed(undefined, NOW + 301_000), NOW).ok).toBe(false);
    expect(verifier.verify(signed(undefined, NOW - 299_000), NOW).ok).toBe(true);
  });

  it("refuses a changed timestamp even inside the window", () => {
    const verifier = new RequestVerifier({ key: KEY });
    const request = signed();
    const headers = { ...request.headers, [HEADER_TIMESTAMP]: String(Math.floor(NOW / 1000) - 10) };
    expect(verifier.verify({ ...request, headers }, NOW)).toEqual({ ok: false, reason: "bad signature" });
  });

  it("refuses missing and malformed headers", () => {
    const verifier = new RequestVerifier({ key: KEY });
    const request = signed();
    const { [HEADER_SIGNATURE]: _s, ...noSignature } = request.headers;
    expect(verifier.verify({ ...request, headers: noSignature }, NOW).ok).toBe(false);
    expect(
      verifier.verify({ ...request, headers: { ...request.headers, [HEADER_NONCE]: "short" } }, NOW).ok,
    ).toBe(false);
    expect(
      verifier.verify({ ...request, headers: { ...request.headers, [HEADER_SIGNATURE]: "v1=zz" } }, NOW).ok,
    ).toBe(false);
  });

  it("does not remember nonces of badly signed requests", () => {
    const verifier = new RequestVerifier({ key: KEY });
    const request = signed();
    verifier.verify({ ...request, body: "tampered" }, NOW);
    expect(verifier.verify(request, NOW).ok).toBe(true);
  });

  it("forgets nonces once their window has passed, and caps how many it holds", () => {
    const verifier = new RequestVerifier({ key: KEY, windowS: 10, maxNonces: 1 });
    expect(verifier.verify(signed(undefined, NOW), NOW).ok).toBe(true);
    expect(verifier.verify(signed(undefined, NOW), NOW)).toEqual({
      ok: false,
      reason: "too many requests in the replay window",
    });
    expect(verifier.verify(signed(undefined, NOW + 20_000), NOW + 20_000).ok).toBe(true);
  });

  it("refuses keys shorter than 32 bytes", () => {
    expect(() => new RequestVerifier({ key: Buffer.from("short") })).toThrow(/at least 32 bytes/);
  });
});
