import { parseNodeStorage } from "../../scheduler-plugins/slurm/node-storage.js";
import { isSimpleName } from "../core/names.js";
import { ValidationError } from "../core/validation.js";
import {
  AgentActionError,
  type AgentChannel,
  AgentUnreachableError,
  type NodeStorageSpec,
  SlurmctldUnreachableError,
} from "../ports/agent-channel.js";
import {
  type JobNote,
  type PartitionSpec,
  type PartitionsAnswer,
  PLACEHOLDER_NAME,
  type PlaceholderSpec,
  parseJobNotes,
  parsePartitionSpecs,
  parsePartitionsAnswer,
  parsePlaceholderSpecs,
} from "../ports/agent-protocol.js";
import { signRequest } from "../ports/agent-signing.js";
import type { Clock } from "../ports/clock.js";
import { systemClock } from "../ports/clock.js";
import {
  parseUsersAnswer,
  parseUsersRequest,
  type UsersAnswer,
  type UsersRequest,
} from "../ports/cluster-users.js";
import { parseSlurmSetup, type SlurmSetup } from "../ports/slurm-setup.js";
import { reportFromText } from "./report-text.js";

export interface HttpAgentChannelOptions {
  /** e.g. http://10.0.0.5:8787 (a private address in the cluster's VPC) or an https:// URL. */
  baseUrl: string;
  /** The agent's HMAC key (docs/agent.md, Signing). */
  key: Uint8Array;
  /** Per request. @default 10000 */
  timeoutMs?: number;
  /**
   * The most bytes of an answer that are read. An answer that declares a larger content-length is refused
   * unread; any other (chunked, no length, or a length that lies) is read as a stream and the request is
   * aborted as soon as it passes the limit, so at most limit + one network chunk is ever held.
   * @default 16 MiB
   */
  maxAnswerBytes?: number;
  clock?: Clock;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
}

/** The agent's HTTP API with HMAC-signed requests (agent/signing.ts). */
export class HttpAgentChannel implements AgentChannel {
  private readonly base: string;
  private readonly timeoutMs: number;
  private readonly maxAnswerBytes: number;
  private readonly clock: Clock;
  private readonly fetchFn: typeof fetch;

  constructor(private readonly options: HttpAgentChannelOptions) {
    this.base = options.baseUrl.replace(/\/+$/, "");
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.maxAnswerBytes = options.maxAnswerBytes ?? 16 * 1024 * 1024;
    this.clock = options.clock ?? systemClock;
    this.fetchFn = options.fetch ?? globalThis.fetch;
  }

  async report() {
    const { status, text } = await this.request("GET", "/v1/report");
    if (status !== 200) throw new AgentUnreachableError(`agent report: HTTP ${status}`);
    return reportFromText(text, "agent report");
  }

  async drain(node: string, reason: string): Promise<void> {
    await this.action("POST", `/v1/nodes/${checkedNode(node)}/drain`, JSON.stringify({ reason }));
  }

  async resume(node: string): Promise<void> {
    await this.action("POST", `/v1/nodes/${checkedNode(node)}/resume`);
  }

  async deleteNode(node: string): Promise<void> {
    await this.action("DELETE", `/v1/nodes/${checkedNode(node)}`);
  }

  async setJobNotes(notes: readonly JobNote[]): Promise<void> {
    await this.action("POST", "/v1/jobs/notes", JSON.stringify({ notes: checkedNotes(notes) }));
  }

  async syncPlaceholders(
    specs: readonly PlaceholderSpec[],
  ): Promise<{ created: string[]; removed: string[] }> {
    const body = JSON.stringify({ placeholders: checkedPlaceholders(specs) });
    return placeholderAnswer(await this.action("POST", "/v1/placeholders", body), "agent placeholders");
  }

  async setPartitions(specs: readonly PartitionSpec[]): Promise<PartitionsAnswer> {
    const body = JSON.stringify({ partitions: checkedPartitions(specs) });
    return partitionsAnswer(await this.action("POST", "/v1/partitions", body), "agent partitions");
  }

  async setNodeStorage(storage: readonly NodeStorageSpec[]): Promise<{ changed: boolean }> {
    const body = JSON.stringify({ storage: checkedStorage(storage) });
    return storageAnswer(await this.action("POST", "/v1/node-storage", body), "agent node-storage");
  }

  async setUsers(request: UsersRequest): Promise<UsersAnswer> {
    const body = JSON.stringify(checkedUsers(request));
    return usersAnswer(await this.action("POST", "/v1/users", body), "agent users");
  }

  async health(): Promise<{ agentVersion: string }> {
    const { status, text } = await this.request("GET", "/v1/health");
    if (status !== 200) throw new AgentUnreachableError(`agent health: HTTP ${status}`);
    const parsed = safeJson(text) as { agentVersion?: unknown } | undefined;
    const version = parsed?.agentVersion;
    if (typeof version !== "string" || version.length > 50) {
      throw new AgentUnreachableError("agent health: unexpected answer");
    }
    return { agentVersion: version };
  }

  async slurmSetup(): Promise<SlurmSetup> {
    const { status, text } = await this.request("GET", "/v1/slurm-setup");
    if (status === 503) throw new SlurmctldUnreachableError("agent slurm-setup: slurmctld did not answer");
    if (status !== 200) {
      const hint = status === 404 ? " (an agent older than the attach path: install this version)" : "";
      throw new AgentUnreachableError(`agent slurm-setup: HTTP ${status}${hint}`);
    }
    return setupFromText(text, "agent slurm-setup");
  }

  /** Resolves with the answer's text on 200; the typed errors otherwise. */
  private async action(method: string, path: string, body?: string): Promise<string> {
    const { status, text } = await this.request(method, path, body);
    if (status === 200) return text;
    if (status === 503)
      throw new SlurmctldUnreachableError(`agent ${method} ${path}: slurmctld did not answer`);
    if (status === 401) throw new AgentUnreachableError(`agent ${method} ${path}: signature refused (401)`);
    const error = (safeJson(text) as { error?: unknown } | undefined)?.error;
    const detail = typeof error === "string" ? `: ${error.slice(0, 200)}` : "";
    throw new AgentActionError(`agent ${method} ${path}: HTTP ${status}${detail}`, status);
  }

  private async request(
    method: string,
    path: string,
    body?: string,
  ): Promise<{ status: number; text: string }> {
    const headers: Record<string, string> = signRequest(
      this.options.key,
      { method, path, ...(body === undefined ? {} : { body }) },
      this.clock.now(),
    );
    if (body !== undefined) headers["content-type"] = "application/json";
    const what = `agent ${method} ${path}`;
    // Our own abort, for an answer over the limit; the timeout covers the body as well as the headers.
    const stop = new AbortController();
    try {
      const response = await this.fetchFn(this.base + path, {
        method,
        headers,
        ...(body === undefined ? {} : { body }),
        signal: AbortSignal.any([AbortSignal.timeout(this.timeoutMs), stop.signal]),
        redirect: "error",
      });
      const length = Number(response.headers.get("content-length") ?? "0");
      if (length > this.maxAnswerBytes) {
        stop.abort();
        await response.body?.cancel().catch(() => undefined);
        throw new AgentUnreachableError(
          `${what}: answer of ${length} bytes is over the limit of ${this.maxAnswerBytes} bytes`,
        );
      }
      const text = await readLimited(response, this.maxAnswerBytes, stop, what);
      if (response.status === 401 && path === "/v1/report") {
        throw new AgentUnreachableError(`agent ${method} ${path}: signature refused (401)`);
      }
      return { status: response.status, text };
    } catch (error) {
      if (error instanceof AgentUnreachableError) throw error;
      throw new AgentUnreachableError(`agent ${method} ${path}: ${(error as Error).message ?? "failed"}`, {
        cause: error,
      });
    }
  }
}

/**
 * The body as UTF-8 text, read chunk by chunk; once more than `limit` bytes have arrived the request is
 * aborted (the connection closed, not drained) and AgentUnreachableError names the limit.
 */
async function readLimited(
  response: Response,
  limit: number,
  stop: AbortController,
  what: string,
): Promise<string> {
  if (response.body === null) return "";
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      stop.abort();
      await reader.cancel().catch(() => undefined);
      throw new AgentUnreachableError(
        `${what}: answer over the limit of ${limit} bytes (stopped after ${size} bytes)`,
      );
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, size).toString("utf8");
}

/** The agent's own allow-lists, before anything is sent: a bad note is the caller's error. */
export function checkedNotes(notes: readonly JobNote[]): JobNote[] {
  try {
    return parseJobNotes([...notes]);
  } catch (error) {
    throw new AgentActionError(`invalid job notes: ${(error as Error).message}`, 400);
  }
}

export function checkedPlaceholders(specs: readonly PlaceholderSpec[]): PlaceholderSpec[] {
  try {
    return parsePlaceholderSpecs([...specs]);
  } catch (error) {
    throw new AgentActionError(`invalid placeholders: ${(error as Error).message}`, 400);
  }
}

export function checkedPartitions(specs: readonly PartitionSpec[]): PartitionSpec[] {
  try {
    return parsePartitionSpecs([...specs]);
  } catch (error) {
    throw new AgentActionError(`invalid partitions: ${(error as Error).message}`, 400);
  }
}

/** A set-users request checked as the agent checks it: AgentActionError (400) naming the field. */
export function checkedUsers(request: UsersRequest): UsersRequest {
  try {
    return parseUsersRequest(request);
  } catch (error) {
    throw new AgentActionError(`invalid users: ${(error as Error).message}`, 400);
  }
}

/** The agent's set-users answer (its last line), checked. */
export function usersAnswer(text: string, what: string): UsersAnswer {
  const answer = parseUsersAnswer(safeJson(text.trim().split("\n").pop() ?? ""));
  if (answer === undefined) throw new AgentUnreachableError(`${what}: unexpected answer`);
  return answer;
}

/** The agent's set-partitions answer (its last line), checked. */
export function partitionsAnswer(text: string, what: string): PartitionsAnswer {
  const answer = parsePartitionsAnswer(safeJson(text.trim().split("\n").pop() ?? ""));
  if (answer === undefined) throw new AgentUnreachableError(`${what}: unexpected answer`);
  return answer;
}

/** The agent's `{created, removed}` answer, checked: untrusted like everything it says. */
export function placeholderAnswer(text: string, what: string): { created: string[]; removed: string[] } {
  const parsed = safeJson(text.trim().split("\n").pop() ?? "") as
    | { created?: unknown; removed?: unknown }
    | undefined;
  const names = (v: unknown) =>
    Array.isArray(v) &&
    v.length <= 10_000 &&
    v.every((n) => typeof n === "string" && PLACEHOLDER_NAME.test(n))
      ? (v as string[])
      : undefined;
  const created = names(parsed?.created);
  const removed = names(parsed?.removed);
  if (created === undefined || removed === undefined)
    throw new AgentUnreachableError(`${what}: unexpected answer`);
  return { created, removed };
}

/** The agent's slurm-setup answer, checked: untrusted like everything it says. */
export function setupFromText(text: string, what: string): SlurmSetup {
  const raw = safeJson(text.trim().split("\n").pop() ?? "");
  if (raw === undefined) throw new AgentUnreachableError(`${what}: the answer is not JSON`);
  try {
    return parseSlurmSetup(raw, what);
  } catch (error) {
    throw new AgentUnreachableError(
      `${what}: not a valid answer: ${(error as Error).message.slice(0, 300)}`,
      {
        cause: error,
      },
    );
  }
}

function checkedNode(node: string): string {
  if (!isSimpleName(node))
    throw new AgentActionError(`invalid node name ${JSON.stringify(node.slice(0, 80))}`);
  return node;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The agent's set-node-storage answer, checked (untrusted like everything it says). */
export function storageAnswer(text: string, what: string): { changed: boolean } {
  const line = text.trim().split("\n").at(-1) ?? "";
  const parsed = safeJson(line) as { ok?: unknown; changed?: unknown } | undefined;
  if (parsed?.ok !== true || typeof parsed.changed !== "boolean")
    throw new AgentUnreachableError(`${what}: unexpected answer`);
  return { changed: parsed.changed };
}

/** The entries as the agent checks them; a bad one is an AgentActionError (400) before anything is sent. */
export function checkedStorage(storage: readonly NodeStorageSpec[]): NodeStorageSpec[] {
  try {
    return parseNodeStorage([...storage]);
  } catch (error) {
    if (error instanceof ValidationError)
      throw new AgentActionError(`storage: ${JSON.stringify(error.issues).slice(0, 300)}`, 400);
    throw error;
  }
}
