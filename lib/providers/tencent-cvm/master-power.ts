import type { Credential } from "tencentcloud-sdk-nodejs-common";
import type { Instance } from "tencentcloud-sdk-nodejs-cvm/tencentcloud/services/cvm/v20170312/cvm_models.js";
import type { MasterPower } from "../../ports/master-power.js";
import { type PoweredInstance, planPower } from "../shared/master-power.js";
import { CvmApi } from "./cvm-api.js";
import { fromCvmError } from "./errors.js";

type CvmClient = CvmApi["client"];

export interface TencentMasterPowerOptions {
  region: string;
  /** The stack's Tencent key, read when first needed (lib/aws/runtime.ts reads it from Secrets Manager). */
  credential: () => Promise<Credential>;
  /** A test server ("127.0.0.1:8080"). */
  endpoint?: string;
  /** @default "https://" */
  protocol?: "https://" | "http://";
}

/** CVM's states folded for the planner (STOPPING / STARTING are the transitions; see StopInstances' doc). */
const POWER: Record<string, PoweredInstance["power"]> = {
  RUNNING: "running",
  STOPPED: "stopped",
  STOPPING: "stopping",
  STARTING: "starting",
};

/**
 * A Tencent cluster's master stopped and started (sleep and wake, lib/control/sleep.ts), CVM 2017-03-12.
 * StopInstances asks StoppedMode STOP_CHARGING ("关机停止收费"): the SDK's model says it "only takes
 * effect for some pay-as-you-go instances", and names the page that lists which (按量计费实例关机不收费说明,
 * cloud.tencent.com/document/product/213/19918); subscription instances are not pay-as-you-go. Which
 * ones qualify is left to CVM: DescribeInstances' StopChargingMode says which mode the instance got
 * (STOP_CHARGING, KEEP_CHARGING, or NOT_APPLICABLE). CPU and memory are
 * given back, so StartInstances may fail for want of stock (ResourceInsufficient: try again later); the
 * disks and the private IP (the agent's endpoint) are kept. StopType SOFT_FIRST: a clean shutdown,
 * forced only if that fails, so slurmctld's state is written out.
 *
 * CVM stops only RUNNING instances and starts only STOPPED ones: DescribeInstances is read first, which
 * also checks the tags (shared/master-power.ts); errors are the port's typed ones (fromCvmError).
 */
export class TencentMasterPower implements MasterPower {
  private client: CvmClient | undefined;

  constructor(private readonly options: TencentMasterPowerOptions) {}

  async stop(instanceIds: readonly string[]): Promise<void> {
    if (instanceIds.length === 0) return;
    const chosen = planPower("CVM", "stop", instanceIds, await this.describe(instanceIds));
    if (chosen.length > 0)
      await this.call((c) =>
        c.StopInstances({ InstanceIds: chosen, StopType: "SOFT_FIRST", StoppedMode: "STOP_CHARGING" }),
      );
  }

  async start(instanceIds: readonly string[]): Promise<void> {
    if (instanceIds.length === 0) return;
    const chosen = planPower("CVM", "start", instanceIds, await this.describe(instanceIds));
    if (chosen.length > 0) await this.call((c) => c.StartInstances({ InstanceIds: chosen }));
  }

  /** The instances as CVM sees them now: state, tags and the stop's charging mode. */
  async describe(
    instanceIds: readonly string[],
  ): Promise<(PoweredInstance & { stopChargingMode?: string })[]> {
    const out = await this.call((c) =>
      c.DescribeInstances({ InstanceIds: [...instanceIds], Limit: Math.max(instanceIds.length, 1) }),
    );
    return (out.InstanceSet ?? []).map((i: Instance) => ({
      id: i.InstanceId ?? "",
      tags: Object.fromEntries((i.Tags ?? []).map((t) => [t.Key ?? "", t.Value ?? ""])),
      power: POWER[i.InstanceState ?? ""] ?? "other",
      cloudState: i.InstanceState ?? "UNKNOWN",
      ...(i.StopChargingMode === undefined ? {} : { stopChargingMode: i.StopChargingMode }),
    }));
  }

  private async call<T>(operation: (client: CvmClient) => Promise<T>): Promise<T> {
    // The key is read outside the try: a missing or malformed secret is the deployment's error, told as
    // it is, not a cloud error.
    this.client ??= new CvmApi({
      region: this.options.region,
      credential: await this.options.credential(),
      ...(this.options.endpoint === undefined ? {} : { endpoint: this.options.endpoint }),
      ...(this.options.protocol === undefined ? {} : { protocol: this.options.protocol }),
    }).client;
    const client = this.client;
    try {
      return await operation(client);
    } catch (error) {
      throw fromCvmError(error);
    }
  }
}
