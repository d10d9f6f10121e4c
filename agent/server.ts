import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { SIMPLE_NAME } from "../lib/core/names.js";
import {
  type JobNote,
  type PartitionSpec,
  type PlaceholderSpec,
  parseJobNotes,
  parsePartitionSpecs,
  parsePlaceholderSpecs,
} from "../lib/ports/agent-protocol.js";
import type { Report } from "../lib/ports/agent-report.js";
import { RequestVerifier } from "../lib/ports/agent-signing.js";
import type { SlurmSetup } from "../lib/ports/slurm-setup.js";
import { DRAIN_REASON } from "../scheduler-plugins/slurm/client.js";
import { SlurmNodeNotFoundError, SlurmUnavailableError } from "../scheduler-plugins/slurm/errors.js";
import type { PartitionApplyResult } from "../scheduler-plugins/slurm/partition-apply.js";
import { answerSetNodeStorage } from "./node-storage.js";
import { answerSetUsers, type SetUsers } from "./users.js";
import { AGENT_VERSION } from "./version.js";

/** What the server does to Slurm; SlurmClient fits, tests pass a fake. */
export interface NodeActions {
  drain(node: string, reason: string): Promise<void>;
  resume(node: string): Promise<void>;
  deleteNode(node: string): Promise<void>;
  /** Writes one checked job note (scheduler-plugins/slurm/job-notes.ts). */
  setJobNote(note: JobNote): Promise<void>;
  /** Makes slurmctld's placeholder nodes exactly these (scheduler-plugins/slurm/placeholders.ts). */
  syncPlaceholders(specs: readonly PlaceholderSpec[]): Promise<{ created: string[]; removed: string[] }>;
  /** Makes slurm.conf's NowScale partitions exactly these, with rollback (partition-apply.ts). */
  setPartitions(specs: readonly PartitionSpec[]): Promise<PartitionApplyResult>;
}

/**
 * The answer to set-partitions: HTTP-like status and body, shared by the HTTP API and the CLI.
 * 400 a bad spec or a file NowScale did not render (nothing written), 503 slurmctld did not answer
 * (the file was rolled back), 502 slurmctld refused the file (rolled back) or another failure.
 */
export async function answerSetPartitions(
  actions: Pick<NodeActions, "setPartitions">,
  input: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  let specs: PartitionSpec[];
  try {
    specs = parsePartitionSpecs(input);
  } catch (error) {
    return { status: 400, body: { error: error instanceof TypeError ? error.message : "bad body" } };
  }
  try {
    return { status: 200, body: { ok: true, ...(await actions.setPartitions(specs)) } };
  } catch (error) {
    const message = error instanceof Error ? error.message.slice(0, 500) : "failed";
    if (error instanceof TypeError) return { status: 400, body: { error: message } };
    const rolledBack = error instanceof Error && error.name === "PartitionRollbackError";
    const unreachable =
      error instanceof SlurmUnavailableError || (error as Error)?.cause instanceof SlurmUnavailableError;
    return { status: unreachable ? 503 : 502, body: { error: message, rolledBack } };
  }
}

/**
 * Writes the notes one by one. slurmctld not answering stops at once (SlurmUnavailableError); any other
 * failure of one note is counted and the rest are still written. Shared by the HTTP API and the CLI.
 */
export async function applyJobNotes(
  actions: Pick<NodeActions, "setJobNote">,
  notes: readonly JobNote[],
): Promise<{ applied: number; failures: string[] }> {
  const failures: string[] = [];
  let applied = 0;
  for (const note of notes) {
    try {
      await actions.setJobNote(note);
      applied++;
    } catch (error) {
      if (error instanceof SlurmUnavailableError) throw error;
      failures.push(`jobs ${note.jobIds.join(",")}: ${error instanceof Error ? error.message : "failed"}`);
    }
  }
  return { applied, failures: failures.map((f) => f.slice(0, 300)) };
}

export interface AgentServerOptions {
  key: Uint8Array;
  actions: NodeActions;
  /** Produces one report; never throws (collectReport). */
  report: () => Promise<Report>;
  /**
   * Reads how the master's Slurm is set up (scheduler-plugins/slurm/setup.ts) for `GET /v1/slurm-setup`,
   * the attach checks' input. SlurmUnavailableError when slurmctld does not answer. @default none: 404
   */
  setup?: () => Promise<SlurmSetup>;
  /**
   * slurm.conf and reconfigure for `POST /v1/node-storage` (node-storage.ts: the storage line configless
   * nodes receive) and for the users lines `POST /v1/users` writes after the master's accounts
   * (node-users.ts). @default none: 404 for node-storage, no users lines
   */
  storage?: { confPath: string; reconfigure: () => Promise<void> };
  /** Replay window, seconds. @default 300 */
  windowS?: number;
  /**
   * Where the nonces of the window are kept across restarts (RequestVerifier's `replayFile`), e.g.
   * /var/lib/nowscale-agent/replay-cache.json. Without it a restart within the window forgets them and a
   * request captured before the restart can be replayed once after it.
   */
  replayFile?: string;
  /** @default Date.now */
  now?: () => number;
  /** One line per request; never given the key or signatures. @default no logging */
  log?: (entry: Record<string, unknown>) => void;
  /** Applies set-users (users-apply.ts on this host). @default applyUsers */
  setUsers?: SetUsers;
}

/** Request bodies are small JSON objects; anything bigger is refused before it is read further. */
const MAX_BODY_BYTES = 64 * 1024;

/**
 * The agent's HTTP API. Every request must be signed (signing.ts); one that is not, or that replays a
 * nonce of the window (also across a restart, with `replayFile`), gets 401 and changes nothing. Routes:
 *   GET    /v1/health                 {status, agentVersion}
 *   GET    /v1/report                 the report (lib/ports/agent-report.ts); 200 also when slurmctld is down
 *   POST   /v1/nodes/{name}/drain     body {"reason": "..."}; prefixed "nowscale: " unless it starts so
 *   POST   /v1/nodes/{name}/resume
 *   DELETE /v1/nodes/{name}           removes a dynamic node from slurmctld
 *   POST   /v1/jobs/notes             body {"notes": [{jobIds, text, field}]} (job-notes.ts); 400 for any
 *                                     bad note (nothing written), 502 when Slurm refused some
 *   POST   /v1/placeholders           body {"placeholders": [spec]} (placeholders.ts): creates the missing
 *                                     FUTURE nodes, deletes the other ph- ones; {created, removed}
 *   GET    /v1/slurm-setup            how Slurm is set up (lib/ports/slurm-setup.ts), read-only: what
 *                                     `nowscale cluster attach` checks; 503 when slurmctld does not answer
 *   POST   /v1/node-storage           body {"storage": [{protocol, remotePath, localPath}]}: slurm.conf's
 *                                     storage line for the nodes' sync, reconfigure, rollback (node-storage.ts)
 *   POST   /v1/partitions             body {"partitions": [{name, default?, defMemPerCpuMiB?}]}: rewrites
 *                                     slurm.conf's NowScale partitions, scontrol reconfigure, rollback on
 *                                     failure (partition-apply.ts); {partitions, added, removed, changed}
 *   POST   /v1/users                  body {"users": [{name, uid, enabled, secret?}], "purge": [name]}: makes
 *                                     the host's NowScale users exactly these (users-apply.ts; agent/users.ts),
 *                                     then slurm.conf's users lines for the running nodes (node-users.ts)
 * Actions are idempotent; 404 for an unknown node (drain), 503 when slurmctld does not answer.
 */
export function createAgentServer(options: AgentServerOptions): Server {
  const now = options.now ?? Date.now;
  const log = options.log ?? (() => undefined);
  const verifier = new RequestVerifier({
    key: options.key,
    windowS: options.windowS ?? 300,
    ...(options.replayFile === undefined ? {} : { replayFile: options.replayFile }),
    startedAtMs: now(),
  });
  if (verifier.startProblem !== undefined) {
    log({ msg: `${verifier.startProblem}; requests signed before this start are refused` });
  }
  let inflightReport: Promise<Report> | undefined;
  // Concurrent report requests share one run of squeue/sinfo.
  const report = () => {
    inflightReport ??= options.report().finally(() => {
      inflightReport = undefined;
    });
    return inflightReport;
  };

  return createServer((req, res) => {
    const started = now();
    const path = req.url ?? "/";
    const method = req.method ?? "GET";
    handle(req, res, method, path)
      .catch((error: unknown) =>
        send(res, 500, { error: error instanceof Error ? error.name : "internal error" }),
      )
      .finally(() => log({ method, path: path.slice(0, 200), status: res.statusCode, ms: now() - started }));
  });

  async function handle(
    req: IncomingMessage,
    res: ServerResponse,
    method: string,
    path: string,
  ): Promise<void> {
    const body = await readBody(req);
    if (body === undefined) return send(res, 413, { error: `body larger than ${MAX_BODY_BYTES} bytes` });
    const verdict = verifier.verify({ method, path, body, headers: req.headers }, now());
    // A good request whose nonce could not be saved is not acted on; it is our failure, not the caller's.
    if (!verdict.ok) return send(res, verdict.stored === false ? 500 : 401, { error: verdict.reason });

    if (method === "GET" && path === "/v1/health")
      return send(res, 200, { status: "ok", agentVersion: AGENT_VERSION });
    if (method === "GET" && path === "/v1/report") return send(res, 200, await report());
    if (method === "GET" && path === "/v1/slurm-setup") {
      if (options.setup === undefined) return send(res, 404, { error: "no such route" });
      try {
        return send(res, 200, await options.setup());
      } catch (error) {
        if (error instanceof SlurmUnavailableError) return send(res, 503, { error: error.message });
        return send(res, 502, {
          error: error instanceof Error ? error.message.slice(0, 500) : "Slurm command failed",
        });
      }
    }

    if (path === "/v1/jobs/notes") {
      if (method !== "POST") return send(res, 405, { error: "use POST" });
      let notes: JobNote[];
      try {
        notes = parseJobNotes(JSON.parse(body.toString("utf8")));
      } catch (error) {
        return send(res, 400, { error: error instanceof TypeError ? error.message : "body must be JSON" });
      }
      try {
        const { applied, failures } = await applyJobNotes(options.actions, notes);
        if (failures.length > 0)
          return send(res, 502, { error: failures[0], applied, failed: failures.length });
        return send(res, 200, { ok: true, applied });
      } catch (error) {
        if (error instanceof SlurmUnavailableError) return send(res, 503, { error: error.message });
        throw error;
      }
    }

    if (path === "/v1/placeholders") {
      if (method !== "POST") return send(res, 405, { error: "use POST" });
      let specs: PlaceholderSpec[];
      try {
        specs = parsePlaceholderSpecs(JSON.parse(body.toString("utf8")));
      } catch (error) {
        return send(res, 400, { error: error instanceof TypeError ? error.message : "body must be JSON" });
      }
      try {
        return send(res, 200, { ok: true, ...(await options.actions.syncPlaceholders(specs)) });
      } catch (error) {
        if (error instanceof SlurmUnavailableError) return send(res, 503, { error: error.message });
        return send(res, 502, {
          error: error instanceof Error ? error.message.slice(0, 500) : "Slurm command failed",
        });
      }
    }

    if (path === "/v1/partitions") {
      if (method !== "POST") return send(res, 405, { error: "use POST" });
      let input: unknown;
      try {
        input = JSON.parse(body.toString("utf8"));
      } catch {
        return send(res, 400, { error: "body must be JSON" });
      }
      const answer = await answerSetPartitions(options.actions, input);
      return send(res, answer.status, answer.body);
    }

    if (path === "/v1/node-storage" && options.storage !== undefined) {
      if (method !== "POST") return send(res, 405, { error: "use POST" });
      let input: unknown;
      try {
        input = JSON.parse(body.toString("utf8"));
      } catch {
        return send(res, 400, { error: "body must be JSON" });
      }
      const answer = await answerSetNodeStorage(input, options.storage);
      return send(res, answer.status, answer.body);
    }

    if (path === "/v1/users") {
      if (method !== "POST") return send(res, 405, { error: "use POST" });
      let input: unknown;
      try {
        input = JSON.parse(body.toString("utf8"));
      } catch {
        return send(res, 400, { error: "body must be JSON" });
      }
      const answer = await answerSetUsers(input, options.setUsers, options.storage);
      return send(res, answer.status, answer.body);
    }

    const m = /^\/v1\/nodes\/([^/?]+)(\/drain|\/resume)?$/.exec(path);
    if (!m) return send(res, 404, { error: "no such route" });
    const node = decodeURIComponent(m[1] as string);
    if (!SIMPLE_NAME.test(node)) return send(res, 400, { error: "invalid node name" });
    const action = m[2] === "/drain" ? "drain" : m[2] === "/resume" ? "resume" : "delete";
    const allowed = action === "delete" ? "DELETE" : "POST";
    if (method !== allowed) return send(res, 405, { error: `use ${allowed}` });

    try {
      if (action === "drain") {
        const reason = drainReason(body);
        if (reason === undefined)
          return send(res, 400, { error: 'body must be {"reason": "1-200 printable characters"}' });
        await options.actions.drain(node, reason);
      } else if (action === "resume") await options.actions.resume(node);
      else await options.actions.deleteNode(node);
      return send(res, 200, { ok: true, node, action });
    } catch (error) {
      if (error instanceof SlurmNodeNotFoundError) return send(res, 404, { error: error.message });
      if (error instanceof SlurmUnavailableError) return send(res, 503, { error: error.message });
      if (error instanceof TypeError) return send(res, 400, { error: error.message });
      return send(res, 502, {
        error: error instanceof Error ? error.message.slice(0, 500) : "Slurm command failed",
      });
    }
  }
}

function drainReason(body: Buffer): string | undefined {
  try {
    const parsed: unknown = JSON.parse(body.toString("utf8"));
    const reason =
      typeof parsed === "object" && parsed !== null ? (parsed as { reason?: unknown }).reason : undefined;
    return typeof reason === "string" && DRAIN_REASON.test(reason) ? reason : undefined;
  } catch {
    return undefined;
  }
}

/** The whole body, or undefined once it passes MAX_BODY_BYTES. */
function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        resolve(undefined);
        req.destroy();
      } else chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
  });
  res.end(text);
}
