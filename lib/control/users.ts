import { randomUUID } from "node:crypto";
import { ValidationError } from "../core/validation.js";
import { AgentActionError, type AgentChannel } from "../ports/agent-channel.js";
import type { Clock } from "../ports/clock.js";
import type { CloudProvider } from "../ports/cloud-provider.js";
import {
  MAX_USERS,
  nextUserId,
  parseUserSecret,
  USER_ID_MAX,
  USER_ID_MIN,
  type UserSecret,
  type UserSpec,
  type UsersRequest,
  userNameProblem,
} from "../ports/cluster-users.js";
import type { ClusterRecord, ClusterUser, StateStore } from "../ports/state-store.js";
import type { UserSecretStore } from "../ports/user-secrets.js";
import { checkComputeUserDataFits } from "./compute-user-data.js";
import {
  AdmissionBusyError,
  StateRefusedError,
  UnknownNameError,
  UnsupportedOperationError,
} from "./errors.js";
import { appendControlEvent as event } from "./events.js";

/**
 * Cluster users (HPC-NOW `userman add/delete/list/enable/disable/passwd`). The cluster record keeps the
 * list (names, uids, enabled, where the secret is: never a password or key); the master gets the whole
 * set through the agent's set-users (scheduler-plugins/slurm/users-apply.ts), with each changed user's
 * secret id, which the agent reads from the secret store itself; compute nodes get the names and uids in
 * their boot script (compute-user-data.ts), never a secret, and the running ones from the same set-users:
 * the agent writes the set as slurm.conf's users lines, which each node's sync follows (node-users.ts).
 *
 * - uids come from USER_ID_MIN upwards and are never reused: a deleted user stays in the record (deletedAt)
 *   so a name added again gets its old uid (and its kept files), and no other name ever gets it; a new
 *   uid also skips the ones taken where the users' files live (nextUserId, deps.takenUserIds, the agent's
 *   refusals: a kept home, an account or group of the master's own), so one host's clusters (the local mode) or a /home that outlived a master never
 *   hand a kept home to another user;
 * - the order is secret, then master, then record: a failure leaves the record as it was, and the same
 *   request again converges (set-users is idempotent);
 * - one change at a time per cluster (a lease): set-users replaces the whole set, so two changes at once
 *   could each undo the other's on the master.
 */

export interface UsersDeps {
  store: StateStore;
  clock: Clock;
  runtime: (cluster: ClusterRecord) => Promise<{ provider: CloudProvider; agent: AgentChannel }>;
  /** Where passwords and keys go. Absent: a password or key is refused (501); users without work. */
  userSecrets?: UserSecretStore | undefined;
  /** Who asked (the IAM principal), recorded on the event. */
  by?: string | undefined;
  /**
   * uids a new user of `cluster` must not get because they are in use where its users' files live
   * (nextUserId): the local mode answers its host's accounts, the owners of /home's entries and every
   * other local cluster's users (lib/local/user-ids.ts). Absent (a deployed cluster has a master of its
   * own): none beyond the record; the master's agent still refuses a uid that owns a kept home there,
   * and addUser then takes the next one.
   */
  takenUserIds?: ((cluster: ClusterRecord) => Promise<ReadonlySet<number>>) | undefined;
}

/** A user as the API shows it. */
export interface UserView {
  name: string;
  uid: number;
  gid: number;
  enabled: boolean;
  hasPassword: boolean;
  hasKey: boolean;
  createdAt: string;
}

export interface NewUserInput {
  name: string;
  password?: string | undefined;
  sshKey?: string | undefined;
}

const LEASE_TTL_MS = 120_000;
/** How many uids addUser tries when the master refuses them (kept homes, its own accounts or groups). */
const KEPT_HOME_RETRIES = 5;

/** The cluster's users (deleted ones left out), by uid. */
export function listUsers(cluster: ClusterRecord): UserView[] {
  return active(cluster).map(view);
}

/** Adds a user on the master (and, through their boot script, on every node launched from now on). */
export async function addUser(deps: UsersDeps, clusterId: string, input: NewUserInput): Promise<UserView> {
  const problem = userNameProblem(input.name);
  if (problem !== undefined) throw invalid("name", problem);
  const secret = secretOf(input);
  const name = input.name;
  const absent = (cluster: ClusterRecord) => {
    if (active(cluster).some((u) => u.name === name))
      throw new StateRefusedError(`user ${name} already exists`, [
        { path: "name", message: `user ${name} already exists` },
      ]);
  };
  return locked(deps, clusterId, absent, async (cluster) => {
    const users = cluster.users ?? [];
    if (active(cluster).length >= MAX_USERS)
      throw new StateRefusedError(`the cluster has ${MAX_USERS} users, the most it may have`);
    const old = users.find((u) => u.name === name);
    // A name added again gets its old uid (its kept files); a new one the next uid free here and there.
    const taken = new Set(old === undefined ? ((await deps.takenUserIds?.(cluster)) ?? []) : []);
    const first =
      old?.uid ??
      nextUserId(
        users.map((u) => u.uid),
        taken,
      );
    if (first === undefined) throw new StateRefusedError(`no uid left in ${USER_ID_MIN}-${USER_ID_MAX}`);
    let uid = first;
    // Every user is in the nodes' boot script: refused before anything (secret, master) is touched.
    checkComputeUserDataFits(
      {
        ...cluster,
        users: [
          ...users.filter((u) => u.name !== name),
          { name, uid, enabled: true, createdAt: 0, hasPassword: false, hasKey: false },
        ],
      },
      "users",
      "delete users no longer needed, or make the init scripts URLs and the storage paths shorter",
    );
    // A channel that cannot carry set-users is refused before the secret is written: nothing to undo.
    await usersAgent(deps, cluster);
    const secretId = secret === undefined ? undefined : await putSecret(deps, cluster, name, secret);
    const user: ClusterUser = {
      name,
      uid,
      enabled: true,
      createdAt: deps.clock.now(),
      ...(secretId === undefined ? {} : { secretId }),
      hasPassword: secret?.password !== undefined,
      hasKey: secret?.sshKey !== undefined,
    };
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          await apply(deps, cluster, [...active(cluster), { ...user, uid }], [], name, secretId);
          break;
        } catch (error) {
          // The master has this uid already: a home kept from an earlier user (a /home that outlived
          // another cluster's master), or an account or group of its own (an attached master's site
          // users): the next free uid instead, never that user's files. Only a refusal of this uid.
          const kept = /uid: (?:gid )?(\d+) (?:owns |is )/.exec(
            error instanceof StateRefusedError ? error.message : "",
          );
          const next =
            kept === null || Number(kept[1]) !== uid
              ? undefined
              : nextUserId([...users.map((u) => u.uid), uid], taken);
          if (old !== undefined || next === undefined || attempt >= KEPT_HOME_RETRIES) throw error;
          taken.add(uid);
          uid = next;
        }
      }
      user.uid = uid;
    } catch (error) {
      // Nothing of the user stays behind: the secret written for them goes (the master refused or failed).
      if (secretId !== undefined) await deps.userSecrets?.remove(secretId).catch(() => undefined);
      throw error;
    }
    await save(deps, cluster, [...users.filter((u) => u.name !== name), user]);
    await event(
      deps.store,
      clusterId,
      deps.clock,
      "MANUAL",
      `user ${name} added (uid ${uid})`,
      undefined,
      undefined,
      undefined,
      deps.by,
    );
    return view(user);
  });
}

/** Deletes a user from the master; their files stay unless `purge`. Their secret is deleted. */
export async function deleteUser(
  deps: UsersDeps,
  clusterId: string,
  name: string,
  options: { purge?: boolean } = {},
): Promise<{ name: string; purged: boolean }> {
  return locked(
    deps,
    clusterId,
    (c) => known(c, name),
    async (cluster) => {
      const user = known(cluster, name);
      const purge = options.purge === true;
      await apply(
        deps,
        cluster,
        active(cluster).filter((u) => u.name !== name),
        purge ? [name] : [],
      );
      if (user.secretId !== undefined) await deps.userSecrets?.remove(user.secretId);
      const { secretId: _gone, ...kept } = user;
      const tombstone: ClusterUser = {
        ...kept,
        hasPassword: false,
        hasKey: false,
        deletedAt: deps.clock.now(),
        ...(purge ? { purged: true } : {}),
      };
      await save(deps, cluster, replace(cluster, tombstone));
      await event(
        deps.store,
        clusterId,
        deps.clock,
        "MANUAL",
        `user ${name} deleted${purge ? " with their files" : " (files kept)"}`,
        undefined,
        undefined,
        undefined,
        deps.by,
      );
      return { name, purged: purge };
    },
  );
}

/** Enables or disables a user (disabled: the account expires, so nobody logs in or submits as it). */
export async function setUserEnabled(
  deps: UsersDeps,
  clusterId: string,
  name: string,
  enabled: boolean,
): Promise<UserView> {
  return locked(
    deps,
    clusterId,
    (c) => known(c, name),
    async (cluster) => {
      const user: ClusterUser = { ...known(cluster, name), enabled };
      await apply(deps, cluster, active({ ...cluster, users: replace(cluster, user) }), []);
      await save(deps, cluster, replace(cluster, user));
      await event(
        deps.store,
        clusterId,
        deps.clock,
        "MANUAL",
        `user ${name} ${enabled ? "enabled" : "disabled"}`,
        undefined,
        undefined,
        undefined,
        deps.by,
      );
      return view(user);
    },
  );
}

/** Sets a user's password and/or SSH public key: written to the secret store, applied by the master's agent. */
export async function setUserSecret(
  deps: UsersDeps,
  clusterId: string,
  name: string,
  input: { password?: string | undefined; sshKey?: string | undefined },
): Promise<UserView> {
  const secret = secretOf(input);
  if (secret === undefined) throw invalid("password", "give a password, an sshKey or both");
  return locked(
    deps,
    clusterId,
    (c) => known(c, name),
    async (cluster) => {
      const before = known(cluster, name);
      await usersAgent(deps, cluster);
      // What is not given is kept: the store merges the fields into the secret (UserSecretStore.put).
      const secretId = await putSecret(deps, cluster, name, secret);
      const user: ClusterUser = {
        ...before,
        secretId,
        hasPassword: before.hasPassword || secret.password !== undefined,
        hasKey: before.hasKey || secret.sshKey !== undefined,
      };
      try {
        await apply(deps, cluster, active({ ...cluster, users: replace(cluster, user) }), [], name, secretId);
      } catch (error) {
        // A secret this request made goes again (the user had none); one that was there keeps its
        // merged value, which the master did not take: the record still says what the master has.
        if (before.secretId === undefined) await deps.userSecrets?.remove(secretId).catch(() => undefined);
        throw error;
      }
      await save(deps, cluster, replace(cluster, user));
      await event(
        deps.store,
        clusterId,
        deps.clock,
        "MANUAL",
        `user ${name}: ${[secret.password && "password", secret.sshKey && "SSH key"].filter(Boolean).join(" and ")} set`,
        undefined,
        undefined,
        undefined,
        deps.by,
      );
      return view(user);
    },
  );
}

/** Names and uids for compute nodes' boot scripts (no secrets): the cluster's users, deleted ones out. */
export function nodeUsers(cluster: ClusterRecord): { name: string; uid: number; enabled: boolean }[] {
  return active(cluster).map((u) => ({ name: u.name, uid: u.uid, enabled: u.enabled }));
}

// ── helpers ─────────────────────────────────────────────────────────────────────────────────────

function active(cluster: ClusterRecord): ClusterUser[] {
  return (cluster.users ?? []).filter((u) => u.deletedAt === undefined).sort((a, b) => a.uid - b.uid);
}

function view(u: ClusterUser): UserView {
  return {
    name: u.name,
    uid: u.uid,
    gid: u.uid,
    enabled: u.enabled,
    hasPassword: u.hasPassword,
    hasKey: u.hasKey,
    createdAt: new Date(u.createdAt).toISOString(),
  };
}

function known(cluster: ClusterRecord, name: string): ClusterUser {
  const user = active(cluster).find((u) => u.name === name);
  if (user === undefined)
    throw new UnknownNameError(`no user ${String(name).slice(0, 40)} in cluster ${cluster.clusterId}`, [
      { path: "user", message: "no such user" },
    ]);
  return user;
}

function replace(cluster: ClusterRecord, user: ClusterUser): ClusterUser[] {
  return (cluster.users ?? []).map((u) => (u.name === user.name ? user : u));
}

function invalid(path: string, message: string): ValidationError {
  return new ValidationError("request body", [{ path, message }]);
}

/** The password and key of a request, checked (ValidationError naming the field); undefined when neither. */
function secretOf(input: {
  password?: string | undefined;
  sshKey?: string | undefined;
}): UserSecret | undefined {
  if (input.password === undefined && input.sshKey === undefined) return undefined;
  try {
    return parseUserSecret({
      ...(input.password === undefined ? {} : { password: input.password }),
      ...(input.sshKey === undefined ? {} : { sshKey: input.sshKey }),
    });
  } catch (error) {
    // "secret.password: ..." → the field as the request names it; the message never holds the value.
    const message = (error as Error).message;
    const field = /^secret\.(\w+)/.exec(message)?.[1] ?? "password";
    throw invalid(field, message.replace(/^secret\.\w+: /, ""));
  }
}

async function putSecret(
  deps: UsersDeps,
  cluster: ClusterRecord,
  name: string,
  secret: UserSecret,
): Promise<string> {
  // On AWS the secret carries the cluster's VPC: only that VPC's master role may read it.
  const vpcId = cluster.resources.find((r) => r.type === "vpc")?.id;
  if (deps.userSecrets === undefined)
    throw new UnsupportedOperationError("this deployment has no secret store for users' passwords and keys");
  // The cluster's cloud picks the store there (its master reads it with its own role).
  const { cloud, region } = cluster.placement;
  return deps.userSecrets.put(cluster.clusterId, name, secret, { vpcId, cloud, region });
}

/** The master's users made exactly `users`; `secretId` goes with `changed` only (the agent reads it). */
async function apply(
  deps: UsersDeps,
  cluster: ClusterRecord,
  users: readonly ClusterUser[],
  purge: string[],
  changed?: string,
  secretId?: string,
): Promise<void> {
  const agent = await usersAgent(deps, cluster);
  const request: UsersRequest = {
    users: users.map(
      (u): UserSpec => ({
        name: u.name,
        uid: u.uid,
        enabled: u.enabled,
        ...(u.name === changed && secretId !== undefined ? { secret: secretId } : {}),
      }),
    ),
    purge,
  };
  try {
    await agent.setUsers(request);
  } catch (error) {
    // The master refused (a name or uid its own accounts have): the request's fault, not the agent's.
    if (error instanceof AgentActionError && error.status === 400)
      throw new StateRefusedError(`the master refused: ${error.message}`, [
        { path: "name", message: error.message.slice(0, 300) },
      ]);
    throw error;
  }
}

/**
 * The cluster's agent channel, refused (501, before any secret is written or any change made) when it
 * has no set-users: every channel NowScale builds has it (HTTP, SSM, TAT, Cloud Assistant), so this is an
 * agent channel of another kind, whose master cannot be told.
 */
async function usersAgent(
  deps: UsersDeps,
  cluster: ClusterRecord,
): Promise<AgentChannel & Required<Pick<AgentChannel, "setUsers">>> {
  const { agent } = await deps.runtime(cluster);
  if (agent.setUsers === undefined)
    throw new UnsupportedOperationError(
      `cluster ${cluster.clusterId}'s agent channel cannot manage users (nothing was stored): reach its master ` +
        "over HTTP, SSM, TAT or Cloud Assistant (the cluster's agent endpoint), then add the user again",
    );
  return agent as AgentChannel & Required<Pick<AgentChannel, "setUsers">>;
}

async function save(deps: UsersDeps, cluster: ClusterRecord, users: ClusterUser[]): Promise<void> {
  await deps.store.updateCluster(cluster.clusterId, cluster.version, { users, now: deps.clock.now() });
}

/**
 * Runs `body` on the freshest record under the cluster's users lease (one change at a time). `check` runs
 * on the record first, before the lease is taken: a request refused there (no such cluster or user, not
 * RUNNING) writes nothing at all, not even a lease.
 */
async function locked<T>(
  deps: UsersDeps,
  clusterId: string,
  check: (cluster: ClusterRecord) => void,
  body: (cluster: ClusterRecord) => Promise<T>,
): Promise<T> {
  const read = async () => {
    const cluster = await deps.store.getCluster(clusterId);
    if (cluster === undefined || cluster.status === "DELETED")
      throw new UnknownNameError(`no cluster ${clusterId}`, [
        { path: "clusterId", message: "no such cluster" },
      ]);
    if (cluster.status !== "RUNNING")
      throw new StateRefusedError(`the cluster is ${cluster.status}, not RUNNING: its master must answer`);
    check(cluster);
    return cluster;
  };
  await read();
  const key = `users:${clusterId}`;
  const lease = await deps.store.acquireLease(key, `users-${randomUUID()}`, LEASE_TTL_MS, deps.clock.now());
  if (lease === undefined)
    throw new AdmissionBusyError(`another change to cluster ${clusterId}'s users is under way: retry`);
  try {
    return await body(await read());
  } finally {
    await deps.store.releaseLease(lease).catch(() => undefined);
  }
}
