import { parseUsersRequest, type UsersAnswer, type UsersRequest } from "../lib/ports/cluster-users.js";
import { applyNodeUsers } from "../scheduler-plugins/slurm/node-users.js";
import { applyUsers } from "../scheduler-plugins/slurm/users-apply.js";

/** Applies a checked set-users request on this host (users-apply.ts); tests pass their own. */
export type SetUsers = (request: UsersRequest) => Promise<UsersAnswer>;

/** slurm.conf and reconfigure: where the set goes for the running compute nodes (node-users.ts). */
export interface NodeUsersTarget {
  confPath: string;
  reconfigure: () => Promise<void>;
}

/**
 * The answer to set-users: HTTP-like status and body, shared by the HTTP API (POST /v1/users) and the
 * CLI (`nowscale-agent set-users`, what SSM runs). 400 a bad request or one the host refuses (a name or
 * uid an account outside NowScale has: nothing changed), 502 a command that failed (useradd, chpasswd,
 * the secret store). Never echoes a secret: the request carries only secret ids.
 *
 * With `nodes`, once the master's accounts are set, the same set (names and numbers only) goes to the
 * running compute nodes as slurm.conf's users lines (node-users.ts): a reconfigure that fails is rolled
 * back and answered 502 (`nodesTold: false`); the master's accounts stay as set, and the same request
 * again converges (both steps are idempotent).
 */
export async function answerSetUsers(
  input: unknown,
  setUsers: SetUsers = (r) => applyUsers(r),
  nodes?: NodeUsersTarget,
): Promise<{ status: number; body: Record<string, unknown> }> {
  let request: UsersRequest;
  try {
    request = parseUsersRequest(input);
  } catch (error) {
    return { status: 400, body: { error: error instanceof TypeError ? error.message : "bad body" } };
  }
  let answer: UsersAnswer;
  try {
    answer = await setUsers(request);
  } catch (error) {
    const message = error instanceof Error ? error.message.slice(0, 500) : "failed";
    return { status: error instanceof TypeError ? 400 : 502, body: { error: message } };
  }
  if (nodes === undefined) return { status: 200, body: { ok: true, ...answer } };
  try {
    const { changed } = await applyNodeUsers(request, nodes);
    return { status: 200, body: { ok: true, ...answer, nodesChanged: changed } };
  } catch (error) {
    const message = error instanceof Error ? error.message.slice(0, 400) : "failed";
    return {
      status: 502,
      body: {
        error: `the master's users are set, but not the running nodes': ${message}`,
        nodesTold: false,
      },
    };
  }
}
