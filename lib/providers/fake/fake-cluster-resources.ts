import type {
  ClusterResourceRef,
  ClusterResources,
  CreatedNetwork,
  NetworkSpec,
  SecretKind,
} from "../../ports/cluster-resources.js";
import { secretName } from "../../ports/cluster-resources.js";
import { InvalidRequestError } from "../../ports/errors.js";

type Method = keyof ClusterResources;

interface Live {
  clusterId: string;
  ref: ClusterResourceRef;
}

/**
 * ClusterResources in memory for tests: what exists (`live`), every call (`calls`), and injectable
 * failures (`failNext`). Idempotent like the real adapter: a second create for the same cluster returns
 * the first resource.
 */
export class FakeClusterResources implements ClusterResources {
  readonly calls: { method: Method; args: unknown[] }[] = [];
  /** Values of the secrets, by id, to check they never leave the adapter. */
  readonly secretValues = new Map<string, string>();
  private readonly resources = new Map<string, Live>();
  private readonly faults: { method: Method; error: Error; after: number }[] = [];
  private nextId = 1;

  /**
   * `times` calls of `method` throw `error` before doing anything, after `after` calls of it that
   * succeed (e.g. the second createSecret fails with `{ after: 1 }`).
   */
  failNext(method: Method, error: Error, options: { times?: number; after?: number } = {}): void {
    for (let i = 0; i < (options.times ?? 1); i++)
      this.faults.push({ method, error, after: options.after ?? 0 });
  }

  /** What exists, for assertions. */
  live(clusterId?: string): ClusterResourceRef[] {
    return [...this.resources.values()]
      .filter((r) => clusterId === undefined || r.clusterId === clusterId)
      .map((r) => structuredClone(r.ref));
  }

  async createNetwork(clusterId: string, spec: NetworkSpec): Promise<CreatedNetwork> {
    this.enter("createNetwork", clusterId, spec);
    const existing = this.find(clusterId, "network");
    if (existing?.kind === "network") return { vpcId: existing.vpcId, subnetIds: existing.subnetIds };
    const vpcId = this.id("vpc");
    const subnetIds = spec.zones.map(() => this.id("subnet"));
    this.put(clusterId, vpcId, { kind: "network", vpcId, subnetIds });
    return { vpcId, subnetIds };
  }

  /** The user's networks the fake knows as invalid (vpcId → the message); all others pass. */
  readonly invalidNetworks = new Map<string, string>();

  async validateNetwork(network: { vpcId: string; subnetIds: readonly string[] }): Promise<void> {
    this.enter("validateNetwork", network);
    const problem = this.invalidNetworks.get(network.vpcId);
    if (problem !== undefined) throw new InvalidRequestError(problem);
  }

  async createSecurityGroup(clusterId: string, vpcId: string): Promise<{ securityGroupId: string }> {
    this.enter("createSecurityGroup", clusterId, vpcId);
    const existing = this.find(clusterId, "securityGroup");
    if (existing?.kind === "securityGroup") return { securityGroupId: existing.securityGroupId };
    const securityGroupId = this.id("sg");
    this.put(clusterId, securityGroupId, { kind: "securityGroup", securityGroupId });
    return { securityGroupId };
  }

  /** Secret id → the VPC it is scoped to, as the AWS adapter tags it. */
  private readonly secretVpcs = new Map<string, string>();

  async createSecret(
    clusterId: string,
    kind: SecretKind,
    options: { vpcId?: string } = {},
  ): Promise<{ secretId: string; secretName: string }> {
    this.enter("createSecret", clusterId, kind);
    const name = secretName(clusterId, kind);
    const existing = [...this.resources.values()].find(
      (r) => r.clusterId === clusterId && r.ref.kind === "secret" && r.ref.secretKind === kind,
    );
    if (existing?.ref.kind === "secret") return { secretId: existing.ref.secretId, secretName: name };
    // One cluster per VPC, as on AWS (ClusterResources.createSecret).
    const holder = [...this.resources.values()].find(
      (r) =>
        r.clusterId !== clusterId &&
        r.ref.kind === "secret" &&
        options.vpcId !== undefined &&
        this.secretVpcs.get(r.ref.secretId) === options.vpcId,
    );
    if (holder !== undefined)
      throw new InvalidRequestError(
        `network.vpcId: ${options.vpcId} already holds NowScale cluster ${holder.clusterId}`,
      );
    const secretId = `arn:aws:secretsmanager:us-east-1:123456789012:secret:${name}-${this.id("s")}`;
    this.secretValues.set(secretId, `fake-secret-value-${this.nextId}`);
    this.put(clusterId, secretId, { kind: "secret", secretKind: kind, secretId });
    if (options.vpcId !== undefined) this.secretVpcs.set(secretId, options.vpcId);
    return { secretId, secretName: name };
  }

  async deleteSecret(secretId: string): Promise<void> {
    this.enter("deleteSecret", secretId);
    this.resources.delete(secretId);
    this.secretValues.delete(secretId);
    this.secretVpcs.delete(secretId);
  }

  async deleteSecurityGroup(securityGroupId: string): Promise<void> {
    this.enter("deleteSecurityGroup", securityGroupId);
    this.resources.delete(securityGroupId);
  }

  async deleteNetwork(network: { vpcId: string; subnetIds: readonly string[] }): Promise<void> {
    this.enter("deleteNetwork", network);
    this.resources.delete(network.vpcId);
  }

  async list(clusterId: string): Promise<ClusterResourceRef[]> {
    this.enter("list", clusterId);
    return this.live(clusterId);
  }

  private enter(method: Method, ...args: unknown[]): void {
    this.calls.push({ method, args });
    const i = this.faults.findIndex((f) => f.method === method);
    if (i < 0) return;
    const pending = this.faults[i];
    if (pending !== undefined && pending.after > 0) {
      for (const f of this.faults) if (f.method === method) f.after--;
      return;
    }
    const [fault] = this.faults.splice(i, 1);
    if (fault !== undefined) throw fault.error;
  }

  private find(clusterId: string, kind: ClusterResourceRef["kind"]): ClusterResourceRef | undefined {
    return [...this.resources.values()].find((r) => r.clusterId === clusterId && r.ref.kind === kind)?.ref;
  }

  private put(clusterId: string, key: string, ref: ClusterResourceRef): void {
    this.resources.set(key, { clusterId, ref });
  }

  private id(prefix: string): string {
    return `${prefix}-${String(this.nextId++).padStart(8, "0")}`;
  }
}
