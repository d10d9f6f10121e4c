import { createServer } from "node:net";
import type { LocalSettings } from "./settings.js";

/** True when a TCP listener can bind `port` on `host` now (it is closed again at once). */
export function canListen(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/**
 * The ports `local up` needs that something else holds, each with the flag that moves it, so a start
 * fails before any daemon runs. slurmctld listens on every address; the API and the agent on loopback.
 */
export async function busyPorts(settings: LocalSettings): Promise<string[]> {
  const wanted: [number, string, string][] = [
    [settings.apiPort, "127.0.0.1", "--port"],
    [settings.agentPort, "127.0.0.1", "--agent-port"],
    [settings.slurmctldPort, "0.0.0.0", "--slurmctld-port"],
  ];
  const busy: string[] = [];
  for (const [port, host, flag] of wanted) {
    if (!(await canListen(port, host))) busy.push(`${port} (${flag})`);
  }
  return busy;
}
