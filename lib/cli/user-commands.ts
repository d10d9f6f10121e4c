import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { CLUSTER_ARG, type CommonOptions, client, common } from "./api-commands.js";
import { clusterOrCurrent } from "./context.js";
import { progressWhile, UsageError } from "./io.js";
import { formatTable, utcTime } from "./table.js";

/**
 * `nowscale users add|delete|list|enable|disable|passwd` (HPC-NOW `userman`; docs/cli.md): the API's
 * /clusters/{id}/users routes, whose logic is lib/control/users.ts. A password is never an argument
 * (argv is in `ps` and shell history, unlike HPC-NOW's `userman add NAME PASSWORD`): it is read from
 * stdin (--password-stdin) or a file, and never printed.
 */

interface UserView {
  name: string;
  uid: number;
  gid: number;
  enabled: boolean;
  hasPassword: boolean;
  hasKey: boolean;
  createdAt: string;
}

interface SecretOptions {
  passwordStdin?: boolean;
  passwordFile?: string;
  sshKeyFile?: string;
}

const print = (text: string): void => {
  process.stdout.write(`${text}\n`);
};
const id = (value: string) => encodeURIComponent(value);

/** The password (first line of stdin or the file) and the key (first line of its file) given, if any. */
export function secretBody(o: SecretOptions, stdin: () => string = () => readFileSync(0, "utf8")) {
  const firstLine = (text: string) => text.split(/\r?\n/)[0] ?? "";
  const read = (path: string, what: string) => {
    try {
      return readFileSync(path, "utf8");
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new UsageError(
        `cannot read the ${what} file ${path}: ${code === "ENOENT" ? "no such file" : (code ?? String(error))}`,
      );
    }
  };
  if (o.passwordStdin === true && o.passwordFile !== undefined)
    throw new UsageError("give --password-stdin or --password-file, not both");
  const password =
    o.passwordStdin === true
      ? firstLine(stdin())
      : o.passwordFile === undefined
        ? undefined
        : firstLine(read(o.passwordFile, "password"));
  const sshKey =
    o.sshKeyFile === undefined ? undefined : firstLine(read(o.sshKeyFile, "SSH public key")).trim();
  return { ...(password === undefined ? {} : { password }), ...(sshKey === undefined ? {} : { sshKey }) };
}

function secretOptions(command: Command): Command {
  return command
    .option("--password-stdin", "read the password from the first line of stdin (never an argument)")
    .option("--password-file <file>", "read the password from the first line of this file")
    .option("--ssh-key-file <file>", "an OpenSSH public key file (e.g. ~/.ssh/id_ed25519.pub)");
}

export function registerUserCommands(program: Command): void {
  const users = program.command("users").description("a cluster's users (HPC-NOW userman)");

  common(users.command("list"))
    .description("list the cluster's users (never a password or key)")
    .argument("[cluster]", CLUSTER_ARG)
    .action(async (given: string | undefined, o: CommonOptions) => {
      const clusterId = clusterOrCurrent(given);
      const list = (await client(o).request("GET", `/clusters/${id(clusterId)}/users`)) as {
        users: UserView[];
      };
      if (o.json === true) return print(JSON.stringify(list, null, 2));
      if (list.users.length === 0) return print(`no users in ${clusterId}`);
      print(
        formatTable(
          ["USER", "UID", "ENABLED", "PASSWORD", "SSH KEY", "CREATED"],
          list.users.map((u) => [
            u.name,
            String(u.uid),
            u.enabled ? "yes" : "no",
            u.hasPassword ? "set" : "-",
            u.hasKey ? "set" : "-",
            utcTime(u.createdAt),
          ]),
        ),
      );
    });

  secretOptions(common(users.command("add")))
    .description(
      "add a user on the master and every compute node (same uid); password and key go to the secret store",
    )
    .argument("<user>", "the user name (lower-case letters, digits, '_', '-'; not a system account's)")
    .argument("[cluster]", CLUSTER_ARG)
    .action(async (name: string, given: string | undefined, o: CommonOptions & SecretOptions) => {
      const clusterId = clusterOrCurrent(given);
      const user = (await progressWhile(
        `adding user ${name} to ${clusterId} (on its master through the agent)…`,
        client(o).request("POST", `/clusters/${id(clusterId)}/users`, { name, ...secretBody(o) }),
      )) as UserView;
      if (o.json === true) return print(JSON.stringify(user, null, 2));
      print(`user ${user.name} added to ${clusterId} (uid ${user.uid}, gid ${user.gid})`);
    });

  common(users.command("delete"))
    .description("delete a user from the master and every compute node; their files stay unless --purge")
    .argument("<user>", "the user")
    .argument("[cluster]", CLUSTER_ARG)
    .option("--purge", "also remove the user's home directory")
    .action(async (name: string, given: string | undefined, o: CommonOptions & { purge?: boolean }) => {
      const clusterId = clusterOrCurrent(given);
      const query = o.purge === true ? "?purge=true" : "";
      const answer = (await client(o).request(
        "DELETE",
        `/clusters/${id(clusterId)}/users/${id(name)}${query}`,
      )) as {
        name: string;
        purged: boolean;
      };
      if (o.json === true) return print(JSON.stringify(answer, null, 2));
      print(
        `user ${answer.name} deleted from ${clusterId}${answer.purged ? " with their files" : "; their files are kept"}`,
      );
    });

  for (const verb of ["enable", "disable"] as const) {
    common(users.command(verb))
      .description(
        verb === "enable"
          ? "enable a user again"
          : "disable a user: the account expires (no login, so no new jobs); files and uid stay",
      )
      .argument("<user>", "the user")
      .argument("[cluster]", CLUSTER_ARG)
      .action(async (name: string, given: string | undefined, o: CommonOptions) => {
        const clusterId = clusterOrCurrent(given);
        const user = (await client(o).request(
          "POST",
          `/clusters/${id(clusterId)}/users/${id(name)}/${verb}`,
        )) as UserView;
        if (o.json === true) return print(JSON.stringify(user, null, 2));
        print(`user ${user.name} ${user.enabled ? "enabled" : "disabled"} in ${clusterId}`);
      });
  }

  secretOptions(common(users.command("passwd")))
    .description("set a user's password and/or SSH public key (what is not given is kept)")
    .argument("<user>", "the user")
    .argument("[cluster]", CLUSTER_ARG)
    .action(async (name: string, given: string | undefined, o: CommonOptions & SecretOptions) => {
      const clusterId = clusterOrCurrent(given);
      const body = secretBody(o);
      if (Object.keys(body).length === 0)
        throw new UsageError("give --password-stdin, --password-file or --ssh-key-file");
      const user = (await client(o).request(
        "PUT",
        `/clusters/${id(clusterId)}/users/${id(name)}/credentials`,
        body,
      )) as UserView;
      if (o.json === true) return print(JSON.stringify(user, null, 2));
      print(
        `user ${user.name}: ${[body.password && "password", body.sshKey && "SSH key"].filter(Boolean).join(" and ")} set`,
      );
    });
}
