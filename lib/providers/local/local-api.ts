import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ChargeType, InstanceCatalog } from "../../core/model.js";
import { SIMPLE_NAME } from "../../core/names.js";
import { type Clock, systemClock } from "../../ports/clock.js";
import type { CloudInstance } from "../../ports/cloud-provider.js";
import {
  InsufficientCapacityError,
  InvalidRequestError,
  isCloudProviderError,
  NotFoundError,
  ServiceUnavailableError,
} from "../../ports/errors.js";
import { CLUSTER_TAG, QUEUE_TAG } from "../../ports/tags.js";
import type { CloudApi, RunInstancesInput } from "../shared/cloud-api.js";
import type { NamespaceNodes } from "./namespace-nodes.js";

/** Small shapes: a 2-core machine can hold several of them (slurmd -Z takes the shape on trust). */
export const LOCAL_CATALOG: InstanceCatalog = {
  "local.c1m1": { vcpus: 1, memoryMiB: 1024, gpus: 0 },
  "local.c2m2": { vcpus: 2, memoryMiB: 2048, gpus: 0 },
  "local.c2m4": { vcpus: 2, memoryMiB: 4096, gpus: 0 },
  "local.c4m4": { vcpus: 4, memoryMiB: 4096, gpus: 0 },
};

export interface OfferingLimit {
  instanceType: string;
  zone: string;
  /** At most this many live nodes of the offering; more fails as InsufficientCapacity. */
  maxNodes: number;
}

export interface LocalApiOptions {
  nodes: NamespaceNodes;
  /** Where instance records (type, zone, tags, token) live; the namespaces are the truth of what runs. */
  stateDir: string;
  /** Node addresses are `${subnetPrefix}.${n}` for n in [firstHost, lastHost]. @default "192.168.250" */
  subnetPrefix?: string;
  /** @default 10 */
  firstHost?: number;
  /** @default 250 */
  lastHost?: number;
  /** @default LOCAL_CATALOG */
  catalog?: InstanceCatalog;
  /** @default ["local-a", "local-b"] */
  zones?: readonly string[];
  /** Per-offering limits so candidate fallback can be exercised; unlisted offerings are unlimited. */
  capacity?: readonly OfferingLimit[];
  /** Waited before the nodes start, like a cloud's boot time. @default 0 */
  bootDelayMs?: number;
  clock?: Clock;
}

interface InstanceRecord {
  id: string;
  instanceType: string;
  zone: string;
  chargeType: ChargeType;
  address: string;
  tags: Record<string, string>;
  clientToken: string;
  launchedAt: number;
}

/** The local "cloud": an instance is a namespace node; its id is its Slurm node name. */
export class LocalApi implements CloudApi {
  readonly cloud = "local";
  readonly maxIdsPerCall = 100;
  readonly maxNameLength = 128;
  private readonly clock: Clock;
  private readonly limits: OfferingLimit[];

  constructor(private readonly options: LocalApiOptions) {
    this.clock = options.clock ?? systemClock;
    this.limits = [...(options.capacity ?? [])];
  }

  /** Changes an offering's limit at run time (demos and tests). */
  setCapacity(limit: OfferingLimit): void {
    const at = this.limits.findIndex((l) => l.instanceType === limit.instanceType && l.zone === limit.zone);
    if (at >= 0) this.limits.splice(at, 1);
    this.limits.push(limit);
  }

  async instanceTypes(): Promise<InstanceCatalog> {
    return this.catalog();
  }

  async runInstances(input: RunInstancesInput): Promise<CloudInstance[]> {
    const { candidate } = input;
    const shape = this.catalog()[candidate.instanceType];
    if (shape === undefined)
      throw localError(InvalidRequestError, "UnknownInstanceType", candidate.instanceType);
    if (!this.zoneNames().includes(candidate.zone))
      throw localError(InvalidRequestError, "UnknownZone", candidate.zone);
    const queue = input.tags[QUEUE_TAG];
    if (queue === undefined)
      throw localError(InvalidRequestError, "MissingQueueTag", "the queue tag is required");

    const records = await this.records();
    const live = new Set(await this.options.nodes.list());
    const earlier = records.filter((r) => r.clientToken === input.clientToken);
    if (earlier.length > 0) return earlier.map((r) => toInstance(r, live.has(r.id)));

    const limit = this.limits.find(
      (l) => l.instanceType === candidate.instanceType && l.zone === candidate.zone,
    );
    const used = records.filter(
      (r) => r.instanceType === candidate.instanceType && r.zone === candidate.zone && live.has(r.id),
    ).length;
    const free = limit === undefined ? Number.POSITIVE_INFINITY : Math.max(0, limit.maxNodes - used);
    if (free < input.minCount || free === 0) {
      throw localError(
        InsufficientCapacityError,
        "LocalCapacityExceeded",
        `${candidate.instanceType} in ${candidate.zone}`,
      );
    }
    const count = Math.min(input.maxCount, free);
    const addresses = this.freeAddresses(records, count);
    if (addresses.length < count)
      throw localError(InsufficientCapacityError, "LocalAddressesExhausted", "no free address");

    if ((this.options.bootDelayMs ?? 0) > 0) await this.clock.sleep(this.options.bootDelayMs ?? 0);
    const started: CloudInstance[] = [];
    for (const [i, address] of addresses.entries()) {
      const record: InstanceRecord = {
        id: nodeName(input.clientToken, i),
        instanceType: candidate.instanceType,
        zone: candidate.zone,
        chargeType: candidate.chargeType,
        address,
        tags: { ...input.tags },
        clientToken: input.clientToken,
        launchedAt: this.clock.now(),
      };
      await this.save(record);
      try {
        await this.options.nodes.create({
          name: record.id,
          address,
          instanceType: candidate.instanceType,
          zone: candidate.zone,
          imageId: input.imageId,
          ...(input.userData === undefined ? {} : { userData: input.userData }),
        });
      } catch (error) {
        await this.forget(record.id);
        // Nodes already up are returned: the caller sees a shortfall and decides (all-or-nothing releases them).
        if (started.length > 0) return started;
        const message = error instanceof Error ? error.message : String(error);
        throw localError(ServiceUnavailableError, "NodeStartFailed", message);
      }
      started.push(toInstance(record, true));
    }
    return started;
  }

  async terminateInstances(ids: readonly string[]): Promise<void> {
    const known = new Set((await this.records()).map((r) => r.id));
    const live = new Set(await this.options.nodes.list());
    const unknown = ids.filter((id) => !known.has(id) && !live.has(id));
    if (unknown.length > 0) throw localError(NotFoundError, "InstanceNotFound", unknown.join(", "));
    for (const id of ids) {
      try {
        await this.options.nodes.destroy(id);
      } catch (error) {
        if (isCloudProviderError(error)) throw error;
        throw localError(
          ServiceUnavailableError,
          "NodeStopFailed",
          error instanceof Error ? error.message : String(error),
        );
      }
      await this.forget(id);
    }
  }

  async describeInstances(ids: readonly string[]): Promise<CloudInstance[]> {
    const wanted = new Set(ids);
    const live = new Set(await this.options.nodes.list());
    return (await this.records()).filter((r) => wanted.has(r.id)).map((r) => toInstance(r, live.has(r.id)));
  }

  async listInstancesByTag(key: string, value: string): Promise<CloudInstance[]> {
    const live = new Set(await this.options.nodes.list());
    return (await this.records())
      .filter((r) => r.tags[key] === value && live.has(r.id))
      .map((r) => toInstance(r, true));
  }

  async consoleOutput(instanceId: string, maxLines: number): Promise<string | undefined> {
    if (!SIMPLE_NAME.test(instanceId)) return undefined;
    return this.options.nodes.consoleOutput(instanceId, maxLines);
  }

  private catalog(): InstanceCatalog {
    return this.options.catalog ?? LOCAL_CATALOG;
  }

  /** The configured zones (the local "region" is this machine): the ones a launch may name. */
  async zones(): Promise<string[]> {
    return [...this.zoneNames()];
  }

  private zoneNames(): readonly string[] {
    return this.options.zones ?? ["local-a", "local-b"];
  }

  private freeAddresses(records: readonly InstanceRecord[], count: number): string[] {
    const used = new Set(records.map((r) => r.address));
    const prefix = this.options.subnetPrefix ?? "192.168.250";
    const out: string[] = [];
    for (
      let n = this.options.firstHost ?? 10;
      n <= (this.options.lastHost ?? 250) && out.length < count;
      n++
    ) {
      const address = `${prefix}.${n}`;
      if (!used.has(address)) out.push(address);
    }
    return out;
  }

  private async records(): Promise<InstanceRecord[]> {
    await mkdir(this.options.stateDir, { recursive: true });
    const files = (await readdir(this.options.stateDir)).filter((f) => f.endsWith(".json")).sort();
    const out: InstanceRecord[] = [];
    for (const file of files) {
      out.push(JSON.parse(await readFile(join(this.options.stateDir, file), "utf8")) as InstanceRecord);
    }
    return out;
  }

  private async save(record: InstanceRecord): Promise<void> {
    await mkdir(this.options.stateDir, { recursive: true });
    await writeFile(join(this.options.stateDir, `${record.id}.json`), JSON.stringify(record));
  }

  private async forget(id: string): Promise<void> {
    await rm(join(this.options.stateDir, `${id}.json`), { force: true });
  }
}

/** Deterministic from the token, so a retried launch would name (and find) the same nodes. */
function nodeName(clientToken: string, index: number): string {
  return `ln-${createHash("sha256").update(`${clientToken}\n${index}`).digest("hex").slice(0, 10)}`;
}

function toInstance(record: InstanceRecord, running: boolean): CloudInstance {
  const clusterId = record.tags[CLUSTER_TAG];
  const queue = record.tags[QUEUE_TAG];
  return {
    id: record.id,
    instanceType: record.instanceType,
    zone: record.zone,
    chargeType: record.chargeType,
    state: running ? "RUNNING" : "TERMINATED",
    privateIp: record.address,
    launchedAt: record.launchedAt,
    tags: { ...record.tags },
    ...(clusterId === undefined ? {} : { clusterId }),
    ...(queue === undefined ? {} : { queue }),
  };
}

function localError(
  type: new (message: string, cause?: { code: string; message: string }) => Error,
  code: string,
  message: string,
): Error {
  return new type(`local ${code}: ${message}`, { code, message });
}
