import * as ecs from "@alicloud/ecs20140526";
import type { MasterPower } from "../../ports/master-power.js";
import { type PoweredInstance, planPower } from "../shared/master-power.js";
import { type AlibabaAccessKey, EcsApi } from "./ecs-api.js";
import { fromEcsError } from "./errors.js";

type EcsClient = EcsApi["client"];

export interface AlibabaMasterPowerOptions {
  regionId: string;
  /** The stack's Alibaba key, read when first needed (lib/aws/runtime.ts reads it from Secrets Manager). */
  credential: () => Promise<AlibabaAccessKey>;
  /** A test server ("127.0.0.1:8080"). */
  endpoint?: string;
  /** @default "https" */
  protocol?: "https" | "http";
}

/** ECS's statuses folded for the planner. */
const POWER: Record<string, PoweredInstance["power"]> = {
  Running: "running",
  Stopped: "stopped",
  Stopping: "stopping",
  Starting: "starting",
};

/**
 * An Alibaba cluster's master stopped and started (sleep and wake, lib/control/sleep.ts), ECS 2014-05-26
 * StopInstances / StartInstances. StoppedMode StopCharging is economical mode: per the SDK's model,
 * compute (vCPU, memory, GPU) is no longer billed, the disks are; the private IP is kept (the agent's
 * endpoint), a static public IP may change; a start may fail for want of stock. An instance that does not
 * support it (local disks, subscription) is stopped all the same, billed (KeepCharging), without an error:
 * DescribeInstances' StoppedMode says which it got. ECS stops only Running instances and starts only
 * Stopped ones (IncorrectInstanceStatus otherwise), so DescribeInstances is read first, which also checks
 * the tags (shared/master-power.ts); errors are the port's typed ones (fromEcsError).
 */
export class AlibabaMasterPower implements MasterPower {
  private client: EcsClient | undefined;

  constructor(private readonly options: AlibabaMasterPowerOptions) {}

  async stop(instanceIds: readonly string[]): Promise<void> {
    if (instanceIds.length === 0) return;
    const chosen = planPower("ECS", "stop", instanceIds, await this.describe(instanceIds));
    if (chosen.length > 0)
      await this.call((c) =>
        c.stopInstances(
          new ecs.StopInstancesRequest({
            regionId: this.options.regionId,
            instanceId: chosen,
            stoppedMode: "StopCharging",
            // A clean shutdown (slurmctld writes its state out); ECS forces none unless asked.
            forceStop: false,
          }),
        ),
      );
  }

  async start(instanceIds: readonly string[]): Promise<void> {
    if (instanceIds.length === 0) return;
    const chosen = planPower("ECS", "start", instanceIds, await this.describe(instanceIds));
    if (chosen.length > 0)
      await this.call((c) =>
        c.startInstances(
          new ecs.StartInstancesRequest({ regionId: this.options.regionId, instanceId: chosen }),
        ),
      );
  }

  /** The instances as ECS sees them now: status, tags and the stop's mode. */
  async describe(instanceIds: readonly string[]): Promise<(PoweredInstance & { stoppedMode?: string })[]> {
    const out = await this.call((c) =>
      c.describeInstances(
        new ecs.DescribeInstancesRequest({
          regionId: this.options.regionId,
          instanceIds: JSON.stringify(instanceIds),
          maxResults: 100,
        }),
      ),
    );
    return (out.body?.instances?.instance ?? []).map((i) => ({
      id: i.instanceId ?? "",
      tags: Object.fromEntries((i.tags?.tag ?? []).map((t) => [t.tagKey ?? "", t.tagValue ?? ""])),
      power: POWER[i.status ?? ""] ?? "other",
      cloudState: i.status ?? "Unknown",
      ...(i.stoppedMode ? { stoppedMode: i.stoppedMode } : {}),
    }));
  }

  private async call<T>(operation: (client: EcsClient) => Promise<T>): Promise<T> {
    // The key is read outside the try: a missing or malformed secret is the deployment's error, told as
    // it is, not a cloud error.
    this.client ??= new EcsApi({
      regionId: this.options.regionId,
      credential: await this.options.credential(),
      ...(this.options.endpoint === undefined ? {} : { endpoint: this.options.endpoint }),
      ...(this.options.protocol === undefined ? {} : { protocol: this.options.protocol }),
    }).client;
    const client = this.client;
    try {
      return await operation(client);
    } catch (error) {
      throw fromEcsError(error);
    }
  }
}
