import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The checkout's root, as this module sees it. */
export const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** The uid and gid of `nobody` on Debian. */
export const NOBODY = 65534;

/**
 * A command line that runs `args` as nobody, with the checkout reachable at /mnt. A clean clone may sit
 * below a directory only root may enter (mktemp -d is 0700), where nobody could not even load the
 * CLI: the checkout is bind-mounted on /mnt in a mount namespace of the command's own (nothing changes
 * for the host), and nobody gets nothing else of root's (a 0600 token stays unreadable). Needs root.
 * Use `inRepo("dist/bin/nowscale.js")` for paths inside the checkout.
 */
export function asNobodyCommand(args: readonly string[]): { file: string; args: string[] } {
  return {
    file: "unshare",
    args: [
      "--mount",
      "--propagation",
      "private",
      "sh",
      "-c",
      'mount --bind "$0" /mnt && exec "$@"',
      REPO_ROOT,
      "setpriv",
      `--reuid=${NOBODY}`,
      `--regid=${NOBODY}`,
      "--clear-groups",
      ...args,
    ],
  };
}

/** A path inside the checkout as a command from asNobodyCommand sees it. */
export function inRepo(relative: string): string {
  return join("/mnt", relative);
}
