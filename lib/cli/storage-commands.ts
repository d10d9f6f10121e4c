import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { CLUSTER_ARG, type CommonOptions, client, common } from "./api-commands.js";
import { clusterOrCurrent } from "./context.js";
import { UsageError } from "./io.js";
import { formatTable } from "./table.js";

/**
 * `nowscale storage add|delete|list` (THPC AddClusterStorageOption / DeleteClusterStorageOption /
 * DescribeClusterStorageOption) and `nowscale init-scripts set|show` (ModifyInitNodeScripts; docs/cli.md):
 * the API's /clusters/{id}/storage and /init-scripts routes, whose logic is lib/control/storage.ts. The
 * API checks every value (the boot-script renderer's allow-lists); the CLI only assembles the body.
 */

interface StorageView {
  protocol: string;
  remotePath: string;
  localPath: string;
}
type InitScriptView = { url: string; timeoutS: number } | { inline: string; timeoutS: number };

const print = (text: string): void => {
  process.stdout.write(`${text}\n`);
};
const note = (text: string) => process.stderr.write(`${text}\n`);
const id = (value: string) => encodeURIComponent(value);
const PROTOCOLS = ["NFS 3.0", "NFS 4.0", "TURBO"];
/** Largest local script file read for --script (the API allows 4096 characters). */
const MAX_SCRIPT_BYTES = 64 * 1024;

export function registerStorageCommands(program: Command): void {
  const storage = program
    .command("storage")
    .description("a cluster's storage mounts (THPC storage options): on its running nodes and every new one");

  common(storage.command("list"))
    .description("list the storage options: protocol, remote path, mount point")
    .argument("[cluster]", CLUSTER_ARG)
    .action(async (given: string | undefined, o: CommonOptions) => {
      const clusterId = clusterOrCurrent(given);
      const answer = (await client(o).request("GET", `/clusters/${id(clusterId)}/storage`)) as {
        storage: StorageView[];
      };
      if (o.json === true) return print(JSON.stringify(answer, null, 2));
      if (answer.storage.length === 0) return print(`no storage options on ${clusterId}`);
      print(
        formatTable(
          ["MOUNT POINT", "PROTOCOL", "REMOTE"],
          answer.storage.map((s) => [s.localPath, s.protocol, s.remotePath]),
        ),
      );
    });

  common(storage.command("add"))
    .description("add a mount: running nodes mount it within 15 s, new nodes before they join")
    .argument("[cluster]", CLUSTER_ARG)
    .requiredOption("--remote <path>", "host:/path (NFS), or address@tcpN:/fsname (CFS Turbo / Lustre)")
    .requiredOption("--local <path>", "the mount point on each node, e.g. /data")
    .option("--protocol <protocol>", `one of ${PROTOCOLS.join(", ")}`, "NFS 4.0")
    .action(
      async (
        given: string | undefined,
        o: CommonOptions & { remote: string; local: string; protocol: string },
      ) => {
        const clusterId = clusterOrCurrent(given);
        if (!PROTOCOLS.includes(o.protocol))
          throw new UsageError(`--protocol must be one of ${PROTOCOLS.join(", ")}`);
        const body = { protocol: o.protocol, remotePath: o.remote, localPath: o.local };
        const answer = (await client(o).request("POST", `/clusters/${id(clusterId)}/storage`, body)) as {
          storage: StorageView[];
          runningNodes: string;
        };
        if (o.json === true) return print(JSON.stringify(answer, null, 2));
        print(
          `storage ${o.remote} on ${o.local} added to ${clusterId}: new nodes mount it; running nodes: ${answer.runningNodes}`,
        );
      },
    );

  common(storage.command("delete"))
    .description(
      "delete a mount: running nodes unmount it once nothing uses it, new nodes no longer mount it; refused while jobs run unless --force",
    )
    .argument("<local-path>", "the mount point, e.g. /data")
    .argument("[cluster]", CLUSTER_ARG)
    .option("--force", "delete although jobs run (a node still unmounts only once nothing there uses it)")
    .action(async (localPath: string, given: string | undefined, o: CommonOptions & { force?: boolean }) => {
      const clusterId = clusterOrCurrent(given);
      const force = o.force === true ? "&force=true" : "";
      const answer = (await client(o).request(
        "DELETE",
        `/clusters/${id(clusterId)}/storage?localPath=${id(localPath)}${force}`,
      )) as { storage: StorageView[]; runningNodes: string };
      if (o.json === true) return print(JSON.stringify(answer, null, 2));
      print(`storage on ${localPath} deleted from ${clusterId}; running nodes: ${answer.runningNodes}`);
    });

  const scripts = program
    .command("init-scripts")
    .description("scripts every node launched afterwards runs before it joins (THPC InitNodeScripts)");

  common(scripts.command("show"))
    .description("show the init scripts, in the order nodes run them")
    .argument("[cluster]", CLUSTER_ARG)
    .action(async (given: string | undefined, o: CommonOptions) => {
      const clusterId = clusterOrCurrent(given);
      const answer = (await client(o).request("GET", `/clusters/${id(clusterId)}/init-scripts`)) as {
        initScripts: InitScriptView[];
      };
      if (o.json === true) return print(JSON.stringify(answer, null, 2));
      if (answer.initScripts.length === 0) return print(`no init scripts on ${clusterId}`);
      print(
        formatTable(
          ["#", "SCRIPT", "TIMEOUT"],
          answer.initScripts.map((s, i) => [
            String(i),
            "url" in s ? s.url : `inline: ${s.inline.split("\n")[0]} (${s.inline.length} characters)`,
            `${s.timeoutS}s`,
          ]),
        ),
      );
    });

  common(scripts.command("set"))
    .description("replace the init scripts (THPC ModifyInitNodeScripts); running nodes do not run them")
    .argument("[cluster]", CLUSTER_ARG)
    .option(
      "--script <url-or-file>",
      "an https:// or s3:// URL, or a local file sent inline (starts with #!/); repeat for more, in order",
      (value: string, all: string[]) => [...all, value],
      [] as string[],
    )
    .option("--timeout <seconds>", "each script's timeout (1-3600)", "600")
    .option("--clear", "remove every init script")
    .action(
      async (
        given: string | undefined,
        o: CommonOptions & { script: string[]; timeout: string; clear?: boolean },
      ) => {
        const clusterId = clusterOrCurrent(given);
        if ((o.clear === true) === o.script.length > 0)
          throw new UsageError("give --script (one or more) or --clear");
        const timeoutS = Number(o.timeout);
        if (!Number.isInteger(timeoutS) || timeoutS < 1 || timeoutS > 3600)
          throw new UsageError("--timeout must be a whole number of seconds from 1 to 3600");
        const initScripts = o.script.map((s) =>
          /^(https|s3):\/\//.test(s) ? { url: s, timeoutS } : { inline: readScript(s), timeoutS },
        );
        const answer = (await client(o).request("PUT", `/clusters/${id(clusterId)}/init-scripts`, {
          initScripts,
        })) as { initScripts: InitScriptView[] };
        if (o.json === true) return print(JSON.stringify(answer, null, 2));
        note("nodes launched from now on run them before they join; running nodes are not changed");
        print(`${answer.initScripts.length} init script(s) set on ${clusterId}`);
      },
    );
}

function readScript(path: string): string {
  // An http:// or ftp:// URL is not a file either: say which schemes are taken, not "no such file".
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(path)?.[1];
  if (scheme !== undefined)
    throw new UsageError(
      `--script ${path}: ${scheme}:// is not accepted: give an https:// or s3:// URL, or a local file`,
    );
  let text: Buffer;
  try {
    text = readFileSync(path);
  } catch (error) {
    const why =
      (error as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (error as Error).message;
    throw new UsageError(`--script ${path}: not an https:// or s3:// URL, and ${why}`);
  }
  if (text.length > MAX_SCRIPT_BYTES)
    throw new UsageError(`--script ${path}: larger than ${MAX_SCRIPT_BYTES} bytes`);
  return text.toString("utf8");
}
