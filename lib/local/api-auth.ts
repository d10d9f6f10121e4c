import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { lstatSync, readFileSync } from "node:fs";
import { rename, rm, writeFile } from "node:fs/promises";
import type { IncomingMessage } from "node:http";
import { apiUrl, type LocalSettings, localPaths } from "./settings.js";

/**
 * Who may call the local API. The supervisor runs as root and the API it serves launches instances whose
 * user data and init scripts run as root, so a caller must prove it is root too: it must present the
 * API token, 32 random bytes the supervisor writes at each start to STATE_DIR/api.token (mode 0600,
 * owner root, in a state directory only root can write). Reading that file is the proof; the CLI does it
 * for every request and sends `Authorization: Bearer TOKEN`.
 *
 * Why a token file and not a root-owned Unix socket: a browser cannot open a Unix socket, and the status
 * page must stay reachable from one; the same header also protects against other local web pages, which
 * cannot add it to a cross-origin request (no CORS is answered), whereas a cookie would be sent by the
 * browser to any port of 127.0.0.1.
 *
 * The browser gets in with a one-time link (`nowscale local up` and `nowscale local link` print it):
 * `http://127.0.0.1:PORT/#login=CODE`. A fragment never reaches the server or its logs; the page trades
 * the code (single use, valid LOGIN_CODE_TTL_MS) for a page session kept in the tab's sessionStorage
 * (bound to the page's own origin, port included) and removes the fragment from the address bar. A page
 * session can only read GET /status.json, nothing that changes state.
 */

/** The local server's own routes: mint a login code (API token), trade one for a page session (open). */
export const LOGIN_CODES_PATH = "/local/login-codes";
export const SESSIONS_PATH = "/local/sessions";

/** The one-time code of a status-page link lives this long. */
export const LOGIN_CODE_TTL_MS = 10 * 60_000;
/** At most this many unused codes; minting another drops the oldest. */
const MAX_CODES = 16;
/** At most this many page sessions; a new one drops the oldest. */
const MAX_SESSIONS = 64;
/** A page session lasts at most this long (then the page asks for a new link). */
const SESSION_TTL_MS = 12 * 3_600_000;

/** What the caller may do: everything (the API token), or read the status (a page session). */
export type Access = "full" | "status" | "none";

/** A fresh random secret, URL-safe. */
function secret(): string {
  return randomBytes(32).toString("base64url");
}

function digest(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}

/** The bearer credential of a request, or undefined when it has none in that form. */
export function bearer(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (typeof header !== "string") return undefined;
  const m = /^Bearer ([A-Za-z0-9_-]{16,128})$/.exec(header.trim());
  return m?.[1];
}

/**
 * Checks credentials for one running API. Holds the token's digest (compared in constant time), the
 * unused login codes and the page sessions, all in memory: a restart invalidates every link and session.
 */
export class ApiAuth {
  private readonly tokenDigest: Buffer;
  /** digest (hex) → expiry (epoch ms); a Map with fixed keys, never user-chosen ones. */
  private readonly codes = new Map<string, number>();
  private readonly sessions = new Map<string, number>();

  constructor(
    token: string,
    private readonly now: () => number = Date.now,
  ) {
    if (!/^[A-Za-z0-9_-]{32,128}$/.test(token))
      throw new TypeError("the API token must be 32-128 URL-safe characters");
    this.tokenDigest = digest(token);
  }

  /** What the request's bearer credential allows (the API token: full; a live page session: status). */
  access(req: IncomingMessage): Access {
    const presented = bearer(req);
    if (presented === undefined) return "none";
    const d = digest(presented);
    if (timingSafeEqual(d, this.tokenDigest)) return "full";
    const expiry = this.sessions.get(d.toString("hex"));
    if (expiry !== undefined && expiry > this.now()) return "status";
    return "none";
  }

  /** A new one-time login code for the status page (only a caller with full access gets here). */
  mintLoginCode(): { code: string; expiresAt: number } {
    this.prune(this.codes, MAX_CODES - 1);
    const code = secret();
    const expiresAt = this.now() + LOGIN_CODE_TTL_MS;
    this.codes.set(digest(code).toString("hex"), expiresAt);
    return { code, expiresAt };
  }

  /** Trades a login code for a page session; the code is spent either way. Undefined when it is not valid. */
  openSession(code: string): string | undefined {
    const key = digest(code).toString("hex");
    const expiry = this.codes.get(key);
    this.codes.delete(key);
    if (expiry === undefined || expiry <= this.now()) return undefined;
    this.prune(this.sessions, MAX_SESSIONS - 1);
    const session = secret();
    this.sessions.set(digest(session).toString("hex"), this.now() + SESSION_TTL_MS);
    return session;
  }

  /** Drops expired entries, then the oldest until at most `keep` remain (Maps iterate in insertion order). */
  private prune(map: Map<string, number>, keep: number): void {
    const now = this.now();
    for (const [k, expiry] of map) if (expiry <= now) map.delete(k);
    for (const k of map.keys()) {
      if (map.size <= keep) break;
      map.delete(k);
    }
  }
}

/**
 * Refuses a state directory that someone other than root could change: not a directory, a symbolic
 * link, not owned by this (root) user, or writable by group or others. Such a directory (say one an
 * unprivileged user made in /var/tmp beforehand) would let its owner swap the token or key files.
 */
export function checkStateDirOwnership(stateDir: string): void {
  const st = lstatSync(stateDir);
  const uid = process.getuid?.() ?? 0;
  if (!st.isDirectory() || st.isSymbolicLink())
    throw new Error(`the state directory ${stateDir} must be a directory, not a link`);
  if (st.uid !== uid)
    throw new Error(
      `the state directory ${stateDir} belongs to uid ${st.uid}, not ${uid}: remove it or choose another`,
    );
  if ((st.mode & 0o022) !== 0)
    throw new Error(`the state directory ${stateDir} is writable by others: chmod go-w it or choose another`);
}

/**
 * Writes a fresh API token to STATE_DIR/api.token, readable by root only, and returns it (never logged).
 * Written to a new file then renamed, so no existing file (or link) is ever written through.
 */
export async function writeApiToken(stateDir: string): Promise<string> {
  const file = localPaths(stateDir).apiToken;
  const tmp = `${file}.${process.pid}.new`;
  const token = secret();
  await rm(tmp, { force: true });
  await writeFile(tmp, `${token}\n`, { mode: 0o600, flag: "wx" });
  await rename(tmp, file);
  return token;
}

/**
 * The API token of the local mode in `stateDir`, for a client. Throws an Error that says what to do
 * when it cannot be read (not root, or no local mode there).
 */
export function readApiToken(stateDir: string): string {
  const file = localPaths(stateDir).apiToken;
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EACCES" || code === "EPERM")
      throw new Error(
        `cannot read the local API's token ${file}: the local API accepts root only (use sudo)`,
      );
    if (code === "ENOENT")
      throw new Error(
        `no local API token in ${stateDir}: is the local mode up there? ("nowscale local up", or pass --state-dir)`,
      );
    throw new Error(`cannot read the local API's token ${file}: ${code ?? (error as Error).message}`);
  }
  const token = text.trim();
  if (!/^[A-Za-z0-9_-]{32,128}$/.test(token)) throw new Error(`${file} does not hold an API token`);
  return token;
}

/**
 * A fresh one-time link to the status page of the local mode `settings` describes, minted by its API
 * with the token (so the caller must be root). For a person's terminal only: the code is spent by the
 * first browser that opens it and expires after LOGIN_CODE_TTL_MS.
 */
export async function statusPageLink(settings: Pick<LocalSettings, "stateDir" | "apiPort">): Promise<string> {
  const base = apiUrl(settings);
  const res = await fetch(`${base}${LOGIN_CODES_PATH}`, {
    method: "POST",
    headers: { authorization: `Bearer ${readApiToken(settings.stateDir)}` },
  });
  const body = (await res.json().catch(() => ({}))) as { path?: unknown; error?: unknown };
  if (res.status !== 201 || typeof body.path !== "string")
    throw new Error(
      `the local API refused a status-page link: HTTP ${res.status} ${String(body.error ?? "")}`,
    );
  return `${base}${body.path}`;
}
