import type { ChargeType } from "../../core/model.js";
import type { Clock } from "../../ports/clock.js";

/**
 * An in-memory cloud: instances, per-offering capacity, idempotency tokens and injectable faults.
 * It knows no cloud's dialect; the fake adapter maps its faults onto the typed errors, and the tests'
 * wire simulators (EC2 mock, CVM and ECS HTTP servers) map them onto each cloud's real error codes.
 */

/** What can go wrong, in cloud-neutral words. */
export type FaultKind =
  | "capacity"
  | "quota"
  | "throttle"
  | "server"
  | "invalid"
  | "unauthorized"
  | "notFound"
  | "tokenMismatch";

export type FakeOperation = "run" | "terminate" | "describe" | "list" | "zones";

export class FakeCloudFault extends Error {
  override readonly name = "FakeCloudFault";
  constructor(
    readonly kind: FaultKind,
    readonly operation: FakeOperation,
    message: string,
  ) {
    super(message);
  }
}

export interface FakeRunInput {
  clientToken?: string;
  instanceType: string;
  zone: string;
  chargeType: ChargeType;
  subnetId?: string;
  imageId: string;
  minCount: number;
  maxCount: number;
  tags: Readonly<Record<string, string>>;
  userData?: string;
  name?: string;
}

export type FakeInstanceState = "PENDING" | "RUNNING" | "TERMINATED";

export interface FakeInstance {
  id: string;
  instanceType: string;
  zone: string;
  chargeType: ChargeType;
  subnetId?: string;
  imageId: string;
  state: FakeInstanceState;
  privateIp: string;
  launchedAt: number;
  tags: Record<string, string>;
  clientToken?: string;
}

export interface FakeCall {
  operation: FakeOperation;
  input: unknown;
}

export interface FakeCloudOptions {
  /** Instance ids are this prefix plus a counter: "i-" (EC2, ECS), "ins-" (CVM). */
  idPrefix?: string;
  clock?: Clock;
  /** State of a new instance. @default "RUNNING" */
  launchState?: FakeInstanceState;
  /**
   * The region's zones, as zones() answers them (the API's zone check); launches are not limited to them.
   * @default FAKE_ZONES
   */
  zones?: readonly string[];
}

/** The fake's region's zones by default: us-east-1's first three, the zones the tests' configurations name. */
export const FAKE_ZONES: readonly string[] = ["us-east-1a", "us-east-1b", "us-east-1c"];

export class FakeCloud {
  readonly calls: FakeCall[] = [];
  private readonly instances = new Map<string, FakeInstance>();
  private readonly capacity = new Map<string, number>();
  private readonly underDelivery = new Map<string, number>();
  private readonly tokens = new Map<string, { fingerprint: string; ids: string[] }>();
  private readonly faults: { operation: FakeOperation; kind: FaultKind }[] = [];
  private nextId = 1;

  constructor(private readonly options: FakeCloudOptions = {}) {}

  /** The region's zones (a cloud's DescribeZones). */
  zones(): string[] {
    this.calls.push({ operation: "zones", input: undefined });
    this.throwInjected("zones");
    return [...(this.options.zones ?? FAKE_ZONES)];
  }

  /** Remaining slots for an offering; unset means unlimited. */
  setCapacity(instanceType: string, zone: string, slots: number): void {
    this.capacity.set(offeringKey(instanceType, zone), slots);
  }

  /**
   * From now on the offering starts at most `count` instances whatever the minimum asked: a cloud that
   * under-delivers (no MinCount, or instances failing after the call returned).
   */
  setUnderDelivery(instanceType: string, zone: string, count: number): void {
    this.underDelivery.set(offeringKey(instanceType, zone), count);
  }

  /** The next `times` calls of `operation` fail with `kind`. */
  failNext(operation: FakeOperation, kind: FaultKind, times = 1): void {
    for (let i = 0; i < times; i++) this.faults.push({ operation, kind });
  }

  /** Puts an instance in place without a call, e.g. another cluster's. */
  seed(instance: Partial<FakeInstance> & Pick<FakeInstance, "instanceType" | "zone" | "tags">): FakeInstance {
    const created: FakeInstance = {
      id: this.newId(),
      chargeType: "ON_DEMAND",
      imageId: "img-seeded",
      state: "RUNNING",
      privateIp: this.newIp(),
      launchedAt: this.now(),
      ...instance,
    };
    this.instances.set(created.id, created);
    return created;
  }

  run(input: FakeRunInput): FakeInstance[] {
    this.calls.push({ operation: "run", input });
    this.throwInjected("run");
    const fingerprint = JSON.stringify({ ...input, clientToken: undefined, userData: undefined });
    if (input.clientToken !== undefined) {
      const earlier = this.tokens.get(input.clientToken);
      if (earlier !== undefined) {
        if (earlier.fingerprint !== fingerprint) {
          throw new FakeCloudFault("tokenMismatch", "run", "client token reused with different parameters");
        }
        return earlier.ids.map((id) => this.mustGet(id));
      }
    }
    const key = offeringKey(input.instanceType, input.zone);
    const slots = this.capacity.get(key) ?? Number.POSITIVE_INFINITY;
    const cap = this.underDelivery.get(key);
    let count: number;
    if (cap !== undefined) {
      count = Math.min(input.maxCount, cap, slots);
    } else {
      if (slots < input.minCount) {
        throw new FakeCloudFault("capacity", "run", `no capacity for ${input.instanceType} in ${input.zone}`);
      }
      count = Math.min(input.maxCount, slots);
    }
    if (count <= 0)
      throw new FakeCloudFault("capacity", "run", `no capacity for ${input.instanceType} in ${input.zone}`);
    if (Number.isFinite(slots)) this.capacity.set(key, slots - count);
    const started: FakeInstance[] = [];
    for (let i = 0; i < count; i++) {
      const instance: FakeInstance = {
        id: this.newId(),
        instanceType: input.instanceType,
        zone: input.zone,
        chargeType: input.chargeType,
        imageId: input.imageId,
        state: this.options.launchState ?? "RUNNING",
        privateIp: this.newIp(),
        launchedAt: this.now(),
        tags: { ...input.tags },
        ...(input.subnetId === undefined ? {} : { subnetId: input.subnetId }),
        ...(input.clientToken === undefined ? {} : { clientToken: input.clientToken }),
      };
      this.instances.set(instance.id, instance);
      started.push(instance);
    }
    if (input.clientToken !== undefined) {
      this.tokens.set(input.clientToken, { fingerprint, ids: started.map((i) => i.id) });
    }
    return started;
  }

  /** Like EC2 and ECS: one unknown id fails the whole call; terminating a terminated instance succeeds. */
  terminate(ids: readonly string[]): void {
    this.calls.push({ operation: "terminate", input: [...ids] });
    this.throwInjected("terminate");
    const unknown = ids.filter((id) => !this.instances.has(id));
    if (unknown.length > 0)
      throw new FakeCloudFault("notFound", "terminate", `unknown instance ${unknown.join(", ")}`);
    for (const id of ids) {
      const instance = this.mustGet(id);
      if (instance.state === "TERMINATED") continue;
      instance.state = "TERMINATED";
      const key = offeringKey(instance.instanceType, instance.zone);
      const slots = this.capacity.get(key);
      if (slots !== undefined) this.capacity.set(key, slots + 1);
    }
  }

  describe(ids: readonly string[]): FakeInstance[] {
    this.calls.push({ operation: "describe", input: [...ids] });
    this.throwInjected("describe");
    return ids.flatMap((id) => {
      const instance = this.instances.get(id);
      return instance === undefined ? [] : [{ ...instance, tags: { ...instance.tags } }];
    });
  }

  /** Live instances carrying the tag. */
  list(tagKey: string, tagValue: string): FakeInstance[] {
    this.calls.push({ operation: "list", input: { tagKey, tagValue } });
    this.throwInjected("list");
    return this.live().filter((i) => i.tags[tagKey] === tagValue);
  }

  /** Instances not terminated: what the account is paying for. */
  live(): FakeInstance[] {
    return [...this.instances.values()].filter((i) => i.state !== "TERMINATED").map((i) => ({ ...i }));
  }

  get(id: string): FakeInstance | undefined {
    const instance = this.instances.get(id);
    return instance === undefined ? undefined : { ...instance };
  }

  callsOf(operation: FakeOperation): FakeCall[] {
    return this.calls.filter((c) => c.operation === operation);
  }

  private throwInjected(operation: FakeOperation): void {
    const at = this.faults.findIndex((f) => f.operation === operation);
    if (at < 0) return;
    const [fault] = this.faults.splice(at, 1);
    if (fault !== undefined) throw new FakeCloudFault(fault.kind, operation, `injected ${fault.kind} fault`);
  }

  private mustGet(id: string): FakeInstance {
    const instance = this.instances.get(id);
    if (instance === undefined) throw new Error(`fake cloud lost instance ${id}`);
    return instance;
  }

  private newId(): string {
    const n = this.nextId++;
    return `${this.options.idPrefix ?? "i-"}${n.toString(16).padStart(8, "0")}`;
  }

  private newIp(): string {
    const n = this.nextId;
    return `10.0.${(n >> 8) & 255}.${n & 255}`;
  }

  private now(): number {
    return this.options.clock?.now() ?? Date.now();
  }
}

function offeringKey(instanceType: string, zone: string): string {
  return `${instanceType}\n${zone}`;
}
