import { parseUsersRequest, type UsersAnswer, type UsersRequest } from "../lib/ports/cluster-users.js";
import { applyUsers } from "../scheduler-plugins/slurm/users-apply.js";

/** Applies a checked set-users request on this host (users-apply.ts); tests pass their own. */
export type SetUsers = (request: UsersRequest) => Promise<UsersAnswer>;

/**
 * The answer to set-users: HTTP-like status and body, shared by the HTTP API (POST /v1/users) and the
 * CLI (`nowscale-agent set-users`, what SSM runs). 400 a bad request or one the host refuses (a name or
 * uid an account outside NowScale has: nothing changed), 502 a command that failed (useradd, chpasswd,
 * the secret store). Never echoes a secret: the request carries only secret ids.
 */
export async function answerSetUsers(
  input: unknown,
  setUsers: SetUsers = (r) => applyUsers(r),
): Promise<{ status: number; body: Record<string, unknown> }> {
  let request: UsersRequest;
  try {
    request = parseUsersRequest(input);
  } catch (error) {
    return { status: 400, body: { error: error instanceof TypeError ? error.message : "bad body" } };
  }
  try {
    return { status: 200, body: { ok: true, ...(await setUsers(request)) } };
  } catch (error) {
    const message = error instanceof Error ? error.message.slice(0, 500) : "failed";
    return { status: error instanceof TypeError ? 400 : 502, body: { error: message } };
  }
}
