import { z } from "zod";
import { simpleNameSchema } from "../../core/names.js";
import { PASSWORD, SSH_PUBLIC_KEY, USER_NAME, USER_NAME_HINT } from "../../ports/cluster-users.js";

/**
 * The users routes' inputs (HPC-NOW `userman`; lib/control/users.ts has the rules) and their part of the
 * OpenAPI document, kept apart from schemas.ts and openapi.ts so the routes of other day-2 items do not
 * collide with them. A password or key is never echoed: errors name the field, never the value.
 */

const userName = z.string().regex(USER_NAME, { error: `invalid user name: ${USER_NAME_HINT}` });
const password = z
  .string()
  .regex(PASSWORD, { error: "must be 8-128 printable ASCII characters" })
  .describe("The user's password (stored in the cloud's secret store, set on the master only).");
const sshKey = z
  .string()
  .regex(SSH_PUBLIC_KEY, { error: "must be one OpenSSH public key line (ssh-ed25519 AAAA... comment)" })
  .describe("One OpenSSH public key line, written to the user's ~/.ssh/authorized_keys on the master.");

export const userParams = z.strictObject({ clusterId: simpleNameSchema, user: userName });
/** Delete user: `purge=true` also removes the user's home directory (kept otherwise). */
export const deleteUserQuery = z.strictObject({
  purge: z.enum(["true", "false"], { error: "must be true or false" }).optional(),
});
export const addUserSchema = z.strictObject({
  name: userName,
  password: password.optional(),
  sshKey: sshKey.optional(),
});
export const userCredentialsSchema = z
  .strictObject({ password: password.optional(), sshKey: sshKey.optional() })
  .refine((b) => b.password !== undefined || b.sshKey !== undefined, {
    error: "give a password, an sshKey or both",
    path: ["password"],
  });

/** What openapi.ts lends the users' part of the document. */
export interface OpenApiHelpers {
  schema: (s: z.ZodType) => Record<string, unknown>;
  parameters: (where: "path" | "query" | "header", s: z.ZodObject) => unknown[];
  body: (ref: string) => unknown;
  answer: (description: string, ref?: string) => unknown;
  errors: Record<string, unknown>;
  bodyErrors: Record<string, unknown>;
}

/** The users' paths and component schemas of the OpenAPI document. */
export function usersOpenApi(h: OpenApiHelpers, clusterParams: z.ZodObject) {
  const masterErrors = {
    "501": h.answer("no secret store for passwords and keys, or an agent channel without users", "Error"),
    "502": h.answer("the master refused or a command failed there: nothing recorded", "Error"),
    "503": h.answer(
      "the master or the secret store did not answer, or another users change runs: retry",
      "Error",
    ),
  };
  const user = {
    type: "object",
    required: ["name", "uid", "gid", "enabled", "hasPassword", "hasKey", "createdAt"],
    properties: {
      name: { type: "string" },
      uid: { type: "integer" },
      gid: { type: "integer" },
      enabled: { type: "boolean" },
      hasPassword: { type: "boolean" },
      hasKey: { type: "boolean" },
      createdAt: { type: "string", format: "date-time" },
    },
  };
  return {
    paths: {
      "/clusters/{clusterId}/users": {
        parameters: h.parameters("path", clusterParams),
        get: {
          operationId: "listUsers",
          description: "HPC-NOW userman list: the cluster's users (never a password or key).",
          responses: { "200": h.answer("the users", "UserList"), ...h.errors },
        },
        post: {
          operationId: "addUser",
          description:
            "HPC-NOW userman add: the user is made on the running master (uid and a group of the same number, from 21000, never reused) and on every compute node launched from now on; a password or key goes to the cloud's secret store, and the master's agent reads it there. System names and the host's own accounts are refused (409).",
          requestBody: h.body("AddUser"),
          responses: { "200": h.answer("the user", "User"), ...h.bodyErrors, ...masterErrors },
        },
      },
      "/clusters/{clusterId}/users/{user}": {
        parameters: h.parameters("path", userParams),
        delete: {
          operationId: "deleteUser",
          description:
            "HPC-NOW userman delete: the user is removed from the master and their secret deleted; their files stay unless purge=true.",
          parameters: h.parameters("query", deleteUserQuery),
          responses: { "200": h.answer("the user deleted", "UserDeleted"), ...h.errors, ...masterErrors },
        },
      },
      "/clusters/{clusterId}/users/{user}/enable": {
        parameters: h.parameters("path", userParams),
        post: {
          operationId: "enableUser",
          description: "HPC-NOW userman enable: the account's expiry is cleared.",
          responses: { "200": h.answer("the user", "User"), ...h.errors, ...masterErrors },
        },
      },
      "/clusters/{clusterId}/users/{user}/disable": {
        parameters: h.parameters("path", userParams),
        post: {
          operationId: "disableUser",
          description:
            "HPC-NOW userman disable: the account expires, so the user can neither log in nor submit jobs; files, uid and running jobs stay.",
          responses: { "200": h.answer("the user", "User"), ...h.errors, ...masterErrors },
        },
      },
      "/clusters/{clusterId}/users/{user}/credentials": {
        parameters: h.parameters("path", userParams),
        put: {
          operationId: "setUserCredentials",
          description:
            "HPC-NOW userman passwd: the password and/or SSH public key given replace the stored ones (what is not given is kept), in the secret store, then on the master.",
          requestBody: h.body("UserCredentials"),
          responses: { "200": h.answer("the user", "User"), ...h.bodyErrors, ...masterErrors },
        },
      },
    },
    schemas: {
      AddUser: h.schema(addUserSchema),
      UserCredentials: h.schema(userCredentialsSchema),
      User: user,
      UserList: {
        type: "object",
        required: ["clusterId", "users"],
        properties: { clusterId: { type: "string" }, users: { type: "array", items: user } },
      },
      UserDeleted: {
        type: "object",
        required: ["clusterId", "name", "purged"],
        properties: { clusterId: { type: "string" }, name: { type: "string" }, purged: { type: "boolean" } },
      },
    },
  };
}
