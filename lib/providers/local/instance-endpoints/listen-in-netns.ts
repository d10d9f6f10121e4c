import { spawn } from "node:child_process";
import type { Server } from "node:net";
import { netnsPath } from "../netns.js";

/**
 * Listening sockets created INSIDE a network namespace, served by this process. A short helper (this
 * Node binary, entered into the namespace with nsenter) binds each address and hands the listening
 * socket back over the IPC channel (child_process `send` with a handle); a socket keeps the namespace it
 * was made in, so connections come only from inside that namespace and no packet leaves it, while the
 * handlers stay ordinary code in this process. The helper exits once every socket is handed over.
 */
const HELPER = `
const net = require("node:net");
const want = JSON.parse(process.argv[1]);
let sent = 0;
for (const [host, port] of want) {
  const server = net.createServer();
  server.on("error", (e) => { process.send({ error: host + ":" + port + ": " + e.message }, () => process.exit(1)); });
  server.listen({ host, port, exclusive: true }, () => {
    process.send({ host, port }, server, () => {
      server.close();
      if (++sent === want.length) process.disconnect();
    });
  });
}`;

export interface NamespaceListener {
  host: string;
  port: number;
  server: Server;
}

/** Binds every [host, port] in the namespace; rejects (closing what was bound) if one cannot be bound. */
export function listenInNamespace(
  netns: string,
  addresses: readonly (readonly [string, number])[],
  timeoutMs = 15_000,
): Promise<NamespaceListener[]> {
  return new Promise((resolve, reject) => {
    const got: NamespaceListener[] = [];
    const child = spawn(
      "nsenter",
      [`--net=${netnsPath(netns)}`, process.execPath, "-e", HELPER, JSON.stringify(addresses)],
      { stdio: ["ignore", "ignore", "pipe", "ipc"] },
    );
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString("utf8");
    });
    const fail = (message: string) => {
      clearTimeout(timer);
      for (const l of got) l.server.close();
      child.kill("SIGKILL");
      reject(new Error(`cannot listen in namespace ${netns}: ${message}`));
    };
    const timer = setTimeout(() => fail("the helper did not answer in time"), timeoutMs);
    child.on("message", (message: { host?: string; port?: number; error?: string }, handle?: unknown) => {
      if (message.error !== undefined) return fail(message.error);
      if (handle === undefined || message.host === undefined || message.port === undefined) return;
      got.push({ host: message.host, port: message.port, server: handle as Server });
      if (got.length === addresses.length) {
        clearTimeout(timer);
        resolve(got);
      }
    });
    child.on("error", (e) => fail(e.message));
    child.on("exit", (code) => {
      if (got.length < addresses.length) fail(`helper exited with ${code}: ${stderr.trim().slice(0, 500)}`);
    });
  });
}
