import { BUILTIN_CATALOGS } from "../../core/catalogs/index.js";
import type { InstanceCatalog, UnavailableOffering } from "../../core/model.js";
import type {
  CloudInstance,
  CloudProvider,
  LaunchRequest,
  LaunchResult,
} from "../../ports/cloud-provider.js";
import { type CloudErrorKind, cloudError } from "../../ports/errors.js";
import { CLUSTER_TAG, QUEUE_TAG } from "../../ports/tags.js";
import type { CloudApi, RunInstancesInput } from "../shared/cloud-api.js";
import { ManagedProvider, type ManagedProviderOptions } from "../shared/managed-provider.js";
import { FakeCloud, FakeCloudFault, type FakeInstance, type FaultKind } from "./fake-cloud.js";

const KIND_OF_FAULT: Record<FaultKind, CloudErrorKind> = {
  capacity: "InsufficientCapacity",
  quota: "QuotaExceeded",
  throttle: "Throttled",
  server: "ServiceUnavailable",
  invalid: "InvalidRequest",
  unauthorized: "Unauthorized",
  notFound: "NotFound",
  tokenMismatch: "InvalidRequest",
};

/** The fake cloud's calls as a CloudApi: faults become the typed errors, with the fault kind as the code. */
export class FakeCloudApi implements CloudApi {
  readonly cloud = "fake";
  readonly maxIdsPerCall = 100;
  readonly maxNameLength = 128;

  constructor(
    readonly fakeCloud: FakeCloud,
    private readonly catalog: InstanceCatalog = BUILTIN_CATALOGS.aws,
  ) {}

  async instanceTypes(): Promise<InstanceCatalog> {
    return this.catalog;
  }

  async zones(): Promise<string[]> {
    return mapFaults(() => this.fakeCloud.zones());
  }

  async runInstances(input: RunInstancesInput): Promise<CloudInstance[]> {
    return mapFaults(() =>
      this.fakeCloud
        .run({
          clientToken: input.clientToken,
          instanceType: input.candidate.instanceType,
          zone: input.candidate.zone,
          chargeType: input.candidate.chargeType,
          imageId: input.imageId,
          minCount: input.minCount,
          maxCount: input.maxCount,
          tags: input.tags,
          name: input.namePrefix,
          ...(input.candidate.subnetId === undefined ? {} : { subnetId: input.candidate.subnetId }),
          ...(input.userData === undefined ? {} : { userData: input.userData }),
        })
        .map(toCloudInstance),
    );
  }

  async terminateInstances(ids: readonly string[]): Promise<void> {
    mapFaults(() => this.fakeCloud.terminate(ids));
  }

  async describeInstances(ids: readonly string[]): Promise<CloudInstance[]> {
    return mapFaults(() => this.fakeCloud.describe(ids).map(toCloudInstance));
  }

  async listInstancesByTag(key: string, value: string): Promise<CloudInstance[]> {
    return mapFaults(() => this.fakeCloud.list(key, value).map(toCloudInstance));
  }
}

export function toCloudInstance(instance: FakeInstance): CloudInstance {
  const clusterId = instance.tags[CLUSTER_TAG];
  const queue = instance.tags[QUEUE_TAG];
  return {
    id: instance.id,
    instanceType: instance.instanceType,
    zone: instance.zone,
    chargeType: instance.chargeType,
    state: instance.state,
    privateIp: instance.privateIp,
    launchedAt: instance.launchedAt,
    tags: { ...instance.tags },
    ...(instance.subnetId === undefined ? {} : { subnetId: instance.subnetId }),
    ...(clusterId === undefined ? {} : { clusterId }),
    ...(queue === undefined ? {} : { queue }),
  };
}

function mapFaults<T>(operation: () => T): T {
  try {
    return operation();
  } catch (error) {
    if (error instanceof FakeCloudFault) {
      throw cloudError(KIND_OF_FAULT[error.kind], error.message, {
        code: error.kind,
        message: error.message,
      });
    }
    throw error;
  }
}

/** One port-level call, as the code under test made it. */
export type FakeProviderCall =
  | { method: "instanceTypes" }
  | { method: "zones" }
  | { method: "launch"; request: LaunchRequest }
  | { method: "terminate"; instanceIds: string[] }
  | { method: "list"; clusterId: string }
  | { method: "describe"; instanceIds: string[] };

export interface FakeProviderOptions extends ManagedProviderOptions {
  cloud?: FakeCloud;
  catalog?: InstanceCatalog;
}

/**
 * The provider for unit tests of the control plane: the real shared behaviour over an in-memory cloud.
 * `calls` records what the code under test asked of the port; `cloud` injects faults (failNext,
 * setCapacity, setUnderDelivery) and shows what is running (live()).
 */
export class FakeProvider implements CloudProvider {
  readonly cloud = "fake";
  readonly calls: FakeProviderCall[] = [];
  readonly fakeCloud: FakeCloud;
  private readonly inner: ManagedProvider;

  constructor(options: FakeProviderOptions = {}) {
    this.fakeCloud =
      options.cloud ?? new FakeCloud(options.clock === undefined ? {} : { clock: options.clock });
    this.inner = new ManagedProvider(new FakeCloudApi(this.fakeCloud, options.catalog), options);
  }

  instanceTypes(): Promise<InstanceCatalog> {
    this.calls.push({ method: "instanceTypes" });
    return this.inner.instanceTypes();
  }

  zones(): Promise<string[]> {
    this.calls.push({ method: "zones" });
    return this.inner.zones();
  }

  launch(request: LaunchRequest): Promise<LaunchResult> {
    // The request's callback is not data: the call log keeps the rest.
    const { onStarted: _callback, ...data } = request;
    this.calls.push({ method: "launch", request: structuredClone(data) });
    return this.inner.launch(request);
  }

  terminate(instanceIds: readonly string[]): Promise<void> {
    this.calls.push({ method: "terminate", instanceIds: [...instanceIds] });
    return this.inner.terminate(instanceIds);
  }

  list(clusterId: string): Promise<CloudInstance[]> {
    this.calls.push({ method: "list", clusterId });
    return this.inner.list(clusterId);
  }

  unavailableOfferings(): Promise<UnavailableOffering[]> {
    return this.inner.unavailableOfferings();
  }

  describe(instanceIds: readonly string[]): Promise<CloudInstance[]> {
    this.calls.push({ method: "describe", instanceIds: [...instanceIds] });
    return this.inner.describe(instanceIds);
  }
}
