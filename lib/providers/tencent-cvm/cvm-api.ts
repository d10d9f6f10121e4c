import { createHash } from "node:crypto";
import {
  type Credential,
  DefaultCredentialProvider,
  type DynamicCredential,
} from "tencentcloud-sdk-nodejs-common";
import { cvm } from "tencentcloud-sdk-nodejs-cvm";
import type {
  Instance,
  RunInstancesRequest,
} from "tencentcloud-sdk-nodejs-cvm/tencentcloud/services/cvm/v20170312/cvm_models.js";
import { tencentCatalog } from "../../core/catalogs/tencent.js";
import type { ChargeType, InstanceCatalog } from "../../core/model.js";
import { type Clock, systemClock } from "../../ports/clock.js";
import type { CloudInstance, InstanceState } from "../../ports/cloud-provider.js";
import { InvalidRequestError, isCloudProviderError, NotFoundError } from "../../ports/errors.js";
import { CLUSTER_TAG, QUEUE_TAG, tagsToList } from "../../ports/tags.js";
import type { CloudApi, RunInstancesInput } from "../shared/cloud-api.js";
import { fromCvmError, MIN_COUNT_REFUSALS, type MinCountRefusal } from "./errors.js";

type CvmClient = InstanceType<typeof cvm.v20170312.Client>;

export interface CvmApiOptions {
  /** e.g. "ap-guangzhou". */
  region: string;
  /**
   * A secret passed in ({ secretId, secretKey, token? }, e.g. read from Secrets Manager) or a dynamic
   * provider. @default the SDK's default chain (environment, profile file, CVM role, OIDC)
   */
  credential?: Credential | DynamicCredential;
  /** The VPC of the candidates' subnets; CVM wants both ids. */
  vpcId?: string;
  securityGroupIds?: string[];
  /** CAM role the nodes assume (the CVM counterpart of an instance profile). */
  camRoleName?: string;
  /** Key pairs for node login; none means the image's own login settings. */
  keyIds?: string[];
  /** Override the API endpoint, e.g. a private endpoint or a test server ("127.0.0.1:8080"). */
  endpoint?: string;
  /** @default "https://" */
  protocol?: "https://" | "http://";
  /** @default 30 */
  requestTimeoutSeconds?: number;
  /** @default the built-in Tencent catalog (CVM prices vary by region and are left out) */
  catalog?: InstanceCatalog;
  /** A configured client (tests); overrides everything above but `vpcId` and the launch settings. */
  client?: CvmClient;
  /** For the wait of an all-or-nothing launch's confirmation. @default the wall clock */
  clock?: Clock;
  /**
   * How long an all-or-nothing launch waits for its instances to leave PENDING (RUNNING, or LAUNCH_FAILED),
   * polling every 5 s. @default 120000
   */
  confirmLaunchMs?: number;
  /** Where the one-time notice that CVM refused MinCount goes. @default console.warn */
  warn?: (message: string) => void;
}

const PAGE = 100;

/** CVM 2017-03-12: RunInstances, TerminateInstances, DescribeInstances, DescribeZones. */
export class CvmApi implements CloudApi {
  readonly cloud = "tencent";
  readonly maxIdsPerCall = 100;
  /** InstanceName takes 128 characters; CVM appends "-<n>" to each of a multi-instance launch's names. */
  readonly maxNameLength = 128 - 4;
  readonly client: CvmClient;

  constructor(private readonly options: CvmApiOptions) {
    this.client =
      options.client ??
      new cvm.v20170312.Client({
        credential: options.credential ?? new DefaultCredentialProvider(),
        region: options.region,
        profile: {
          httpProfile: {
            reqTimeout: options.requestTimeoutSeconds ?? 30,
            protocol: options.protocol ?? "https://",
            ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
          },
        },
      });
  }

  async instanceTypes(): Promise<InstanceCatalog> {
    return this.options.catalog ?? tencentCatalog;
  }

  /** DescribeZones: the region's zones; only those AVAILABLE are kept. */
  async zones(): Promise<string[]> {
    const out = await this.call((c) => c.DescribeZones(null));
    return (out.ZoneSet ?? []).flatMap((z) =>
      z.Zone !== undefined && (z.ZoneState === undefined || z.ZoneState === "AVAILABLE") ? [z.Zone] : [],
    );
  }

  /**
   * RunInstances answers with ids before the instances exist, and some may end LAUNCH_FAILED (a stock-out
   * found late). So an all-or-nothing launch (the master's, a tightly coupled job's) is confirmed by DescribeInstances until
   * none is PENDING: the LAUNCH_FAILED ones are terminated (they exist, and are billed for nothing) and
   * left out, so the caller sees fewer than it asked for, a capacity event of the offering (ManagedProvider
   * marks it unavailable), never a node that fails to boot. Best-effort launches with MinCount are not held
   * up: a member that fails later never joins Slurm and is reaped as any node that does not boot.
   *
   * Partial delivery (MinCount) "only takes effect for accounts, regions and charge types that support it"
   * (the SDK's RunInstancesRequest.MinCount). Where CVM refuses it (MIN_COUNT_REFUSALS), the same candidate
   * is asked again without MinCount, i.e. for InstanceCount = maxCount: CVM then starts all of them or
   * none at call time, and the call is confirmed by describe whatever the mode (a best-effort call too:
   * without MinCount its short delivery is only seen that way), so ManagedProvider sees what really exists
   * and passes the rest to the next candidate (best-effort) or releases the short set (all-or-nothing).
   * The refusal is remembered (for the region, or for the charge type) so later launches of this provider
   * do not pay the refused call again, and logged once.
   */
  async runInstances(input: RunInstancesInput): Promise<CloudInstance[]> {
    const { chargeType } = input.candidate;
    let started: CloudInstance[];
    let withMinCount = this.partialDelivery(chargeType);
    if (withMinCount) {
      try {
        started = await this.startInstances(input, true);
      } catch (error) {
        const refusal = minCountRefusal(error);
        if (refusal === undefined) throw error;
        withMinCount = false;
        // A code about MinCount itself is remembered at once (even if the plain call then fails, e.g. for
        // capacity); the generic account refusal only once the plain call goes through (else it was not
        // about MinCount, and stays the Unauthorized error the plain call throws).
        if (refusal !== "account") this.rememberNoPartialDelivery(refusal, chargeType, error);
        started = await this.startInstances(input, false);
        if (refusal === "account") this.rememberNoPartialDelivery(refusal, chargeType, error);
      }
    } else {
      started = await this.startInstances(input, false);
    }
    if ((withMinCount && input.allOrNothing !== true) || started.length === 0) return started;
    return this.confirmed(started);
  }

  /**
   * Waits (confirmLaunchMs at most) until none of `started` is PENDING, terminates the LAUNCH_FAILED ones
   * and returns the rest.
   */
  private async confirmed(started: CloudInstance[]): Promise<CloudInstance[]> {
    const clock = this.options.clock ?? systemClock;
    const deadline = clock.now() + (this.options.confirmLaunchMs ?? 120_000);
    const ids = started.map((i) => i.id);
    let failed: string[] = [];
    for (;;) {
      const described = await this.describeInstances(ids);
      const pending = described.filter((i) => i.state === "PENDING").length;
      failed = described.filter((i) => this.launchFailed.has(i.id)).map((i) => i.id);
      if (pending === 0 || clock.now() >= deadline) break;
      await clock.sleep(5_000);
    }
    if (failed.length === 0) return started;
    await this.terminateInstances(failed);
    return started.filter((i) => !failed.includes(i.id));
  }

  /** The ids DescribeInstances last saw LAUNCH_FAILED (the port's state for them is UNKNOWN). */
  private readonly launchFailed = new Set<string>();

  /** Set once CVM refused MinCount in this provider's region (or for the whole account). */
  private regionRefusesMinCount = false;
  /** The charge types CVM refused MinCount for in this region. */
  private readonly chargeTypesRefusingMinCount = new Set<ChargeType>();

  /** False once CVM refused MinCount for this charge type here: the launch then goes without it. */
  private partialDelivery(chargeType: ChargeType): boolean {
    return !this.regionRefusesMinCount && !this.chargeTypesRefusingMinCount.has(chargeType);
  }

  private rememberNoPartialDelivery(scope: MinCountRefusal, chargeType: ChargeType, error: unknown): void {
    // Logged once: two launches running at once may both have paid the refused call.
    if (!this.partialDelivery(chargeType)) return;
    if (scope === "chargeType") this.chargeTypesRefusingMinCount.add(chargeType);
    else this.regionRefusesMinCount = true;
    const code = isCloudProviderError(error) ? (error.cause?.code ?? "unknown") : "unknown";
    const what =
      scope === "chargeType"
        ? `${chargeType} instances in ${this.options.region}`
        : `${scope === "account" ? "this account in " : ""}${this.options.region}`;
    (this.options.warn ?? console.warn)(
      `CVM refused MinCount (${code}): no partial delivery for ${what}; launches there now ask for the whole count without MinCount and confirm by DescribeInstances`,
    );
  }

  /**
   * The RunInstances call. Without MinCount it carries its own token, derived from the launch's: whether
   * CVM keeps the token of a call it refused is not documented, and a token reused with other parameters
   * may be refused, while a derived one stays deterministic (a retried launch finds its instances again).
   */
  private async startInstances(input: RunInstancesInput, withMinCount: boolean): Promise<CloudInstance[]> {
    const request = this.runRequest(input, withMinCount);
    const response = await this.call((c) => c.RunInstances(request));
    const { candidate } = input;
    // RunInstances answers with ids only; the rest is what was asked for.
    return (response.InstanceIdSet ?? []).map((id) => ({
      id,
      instanceType: candidate.instanceType,
      zone: candidate.zone,
      chargeType: candidate.chargeType,
      state: "PENDING" as const,
      tags: { ...input.tags },
      ...(candidate.subnetId === undefined ? {} : { subnetId: candidate.subnetId }),
      ...withClusterAndQueue(input.tags),
    }));
  }

  /** The exact RunInstances request; `withMinCount` false leaves MinCount out (see runInstances). */
  runRequest(input: RunInstancesInput, withMinCount = true): RunInstancesRequest {
    const { candidate } = input;
    if (candidate.subnetId !== undefined && this.options.vpcId === undefined) {
      throw new InvalidRequestError("a CVM subnet needs its VPC: set vpcId in the Tencent provider options");
    }
    return {
      InstanceChargeType: candidate.chargeType === "SPOT" ? "SPOTPAID" : "POSTPAID_BY_HOUR",
      Placement: { Zone: candidate.zone },
      InstanceType: candidate.instanceType,
      ImageId: input.imageId,
      ...(candidate.subnetId === undefined || this.options.vpcId === undefined
        ? {}
        : { VirtualPrivateCloud: { VpcId: this.options.vpcId, SubnetId: candidate.subnetId } }),
      InstanceCount: input.maxCount,
      ...(withMinCount ? { MinCount: input.minCount } : {}),
      InstanceName: input.namePrefix,
      ClientToken: withMinCount ? input.clientToken : withoutMinCountToken(input.clientToken),
      TagSpecification: [{ ResourceType: "instance", Tags: tagsToList(input.tags) }],
      ...(this.options.securityGroupIds === undefined
        ? {}
        : { SecurityGroupIds: this.options.securityGroupIds }),
      ...(this.options.camRoleName === undefined ? {} : { CamRoleName: this.options.camRoleName }),
      ...(this.options.keyIds === undefined ? {} : { LoginSettings: { KeyIds: this.options.keyIds } }),
      ...(input.userData === undefined
        ? {}
        : { UserData: Buffer.from(input.userData, "utf8").toString("base64") }),
    };
  }

  /**
   * TerminateInstances takes one charge type per call: a batch mixing spot and pay-as-you-go instances
   * is refused. So the batch is described first and terminated per charge type; ids the describe does not
   * know (gone already, or not visible yet) go in a call of their own, where "not found" is the caller's.
   */
  async terminateInstances(ids: readonly string[]): Promise<void> {
    const described = ids.length <= 1 ? [] : await this.describeInstances(ids);
    const groups = new Map<string, string[]>();
    for (const id of ids) {
      const chargeType = described.find((i) => i.id === id)?.chargeType ?? "unknown";
      groups.set(chargeType, [...(groups.get(chargeType) ?? []), id]);
    }
    for (const group of groups.values()) await this.call((c) => c.TerminateInstances({ InstanceIds: group }));
  }

  async describeInstances(ids: readonly string[]): Promise<CloudInstance[]> {
    if (ids.length === 0) return [];
    try {
      const response = await this.call((c) => c.DescribeInstances({ InstanceIds: [...ids], Limit: PAGE }));
      const set = response.InstanceSet ?? [];
      for (const i of set)
        if (i.InstanceState === "LAUNCH_FAILED" && i.InstanceId !== undefined)
          this.launchFailed.add(i.InstanceId);
      return set.map(toCloudInstance);
    } catch (error) {
      // Should CVM refuse the batch for one unknown id, ask id by id and leave the unknown ones out.
      if (!(error instanceof NotFoundError)) throw error;
      if (ids.length === 1) return [];
      const out: CloudInstance[] = [];
      for (const id of ids) out.push(...(await this.describeInstances([id])));
      return out;
    }
  }

  async listInstancesByTag(key: string, value: string): Promise<CloudInstance[]> {
    const out: CloudInstance[] = [];
    for (let offset = 0; ; offset += PAGE) {
      const page = await this.call((c) =>
        c.DescribeInstances({
          Filters: [{ Name: `tag:${key}`, Values: [value] }],
          Offset: offset,
          Limit: PAGE,
        }),
      );
      const set = page.InstanceSet ?? [];
      out.push(...set.map(toCloudInstance));
      if (set.length < PAGE || offset + PAGE >= (page.TotalCount ?? 0)) break;
    }
    return out.filter((i) => i.state !== "TERMINATED");
  }

  private async call<T>(operation: (client: CvmClient) => Promise<T>): Promise<T> {
    try {
      return await operation(this.client);
    } catch (error) {
      throw fromCvmError(error);
    }
  }
}

/** How CVM refused MinCount, if `error` is such a refusal (MIN_COUNT_REFUSALS). */
function minCountRefusal(error: unknown): MinCountRefusal | undefined {
  const code = isCloudProviderError(error) ? error.cause?.code : undefined;
  return code === undefined ? undefined : MIN_COUNT_REFUSALS.get(code);
}

/** The token of a launch call without MinCount: "nm-" and 48 hex digits, 51 ASCII characters (CVM takes 64). */
export function withoutMinCountToken(clientToken: string): string {
  return `nm-${createHash("sha256").update(clientToken).digest("hex").slice(0, 48)}`;
}

/** CVM states; LAUNCH_FAILED instances exist (and must be terminated) but will never run. */
const STATES: Record<string, InstanceState> = {
  PENDING: "PENDING",
  LAUNCH_FAILED: "UNKNOWN",
  RUNNING: "RUNNING",
  STARTING: "PENDING",
  REBOOTING: "RUNNING",
  STOPPING: "STOPPING",
  STOPPED: "STOPPED",
  SHUTDOWN: "TERMINATING",
  TERMINATING: "TERMINATING",
};

export function toCloudInstance(instance: Instance): CloudInstance {
  const tags: Record<string, string> = {};
  for (const t of instance.Tags ?? []) if (t.Key !== undefined) tags[t.Key] = t.Value ?? "";
  const privateIp = instance.PrivateIpAddresses?.[0];
  const subnetId = instance.VirtualPrivateCloud?.SubnetId;
  const launchedAt = instance.CreatedTime === undefined ? Number.NaN : Date.parse(instance.CreatedTime);
  return {
    id: instance.InstanceId ?? "",
    instanceType: instance.InstanceType ?? "",
    zone: instance.Placement?.Zone ?? "",
    chargeType: instance.InstanceChargeType === "SPOTPAID" ? "SPOT" : "ON_DEMAND",
    state: STATES[instance.InstanceState ?? ""] ?? "UNKNOWN",
    tags,
    ...(subnetId === undefined ? {} : { subnetId }),
    ...(privateIp === undefined ? {} : { privateIp }),
    ...(Number.isNaN(launchedAt) ? {} : { launchedAt }),
    ...withClusterAndQueue(tags),
  };
}

function withClusterAndQueue(tags: Readonly<Record<string, string>>): { clusterId?: string; queue?: string } {
  const clusterId = tags[CLUSTER_TAG];
  const queue = tags[QUEUE_TAG];
  return { ...(clusterId === undefined ? {} : { clusterId }), ...(queue === undefined ? {} : { queue }) };
}
