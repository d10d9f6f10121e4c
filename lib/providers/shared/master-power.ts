import { InvalidRequestError, NotFoundError, ServiceUnavailableError } from "../../ports/errors.js";
import { MANAGED_TAG, ROLE_TAG } from "../../ports/tags.js";

/** A described instance as the stop/start planner needs it: its power state in the cloud's own words, folded. */
export interface PoweredInstance {
  id: string;
  tags: Readonly<Record<string, string>>;
  /** "other": pending, rebooting, launch-failed, being released: neither to stop nor to start now. */
  power: "running" | "stopped" | "stopping" | "starting" | "other";
  /** The cloud's own state name, for messages. */
  cloudState: string;
}

/**
 * Which of `ids` to send to the cloud's stop (or start) call, after checking every one is a NowScale
 * master: tagged nowscale:managed=true and nowscale-role=master, as the AWS role's IAM condition demands
 * (lib/infra/permissions.ts). On Tencent and Alibaba the stack's access key is the user's, which no tag
 * condition narrows, so the adapter checks the tags itself before any stop or start is sent.
 *
 * CVM and ECS refuse to stop an instance that is not running, or start one that is not stopped, where
 * the port promises idempotence: so a stopped (or stopping) master is left out of a stop, a running (or
 * starting) one out of a start. A master in the opposite transition (a start while it is still
 * stopping) is a ServiceUnavailableError (retryable: ask again in a minute); an unknown id is a
 * NotFoundError, an instance that is not a NowScale master an InvalidRequestError; nothing is sent then.
 */
export function planPower(
  cloud: string,
  action: "stop" | "start",
  ids: readonly string[],
  described: readonly PoweredInstance[],
): string[] {
  const byId = new Map(described.map((i) => [i.id, i]));
  const chosen: string[] = [];
  for (const id of ids) {
    const instance = byId.get(id);
    if (instance === undefined) throw new NotFoundError(`${cloud}: no instance ${id} to ${action}`);
    if (instance.tags[MANAGED_TAG] !== "true" || instance.tags[ROLE_TAG] !== "master")
      throw new InvalidRequestError(
        `${cloud}: instance ${id} is not a NowScale master (tags ${MANAGED_TAG}=true and ${ROLE_TAG}=master): not ${action === "stop" ? "stopped" : "started"}`,
      );
    const [go, done, wait] =
      action === "stop"
        ? (["running", "stopped", "stopping"] as const)
        : (["stopped", "running", "starting"] as const);
    if (instance.power === go) chosen.push(id);
    else if (instance.power !== done && instance.power !== wait)
      throw new ServiceUnavailableError(
        `${cloud}: instance ${id} is ${instance.cloudState}; ${action} it again once that is over`,
      );
  }
  return chosen;
}
