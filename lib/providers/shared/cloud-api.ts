import type { InstanceCatalog } from "../../core/model.js";
import type { CloudInstance, LaunchCandidate } from "../../ports/cloud-provider.js";

/**
 * What an adapter implements: one cloud's calls, translated, and nothing more. The shared
 * ManagedProvider wraps it with the behaviour every cloud gets the same way (candidate walk, offering
 * cache, all-or-nothing, tokens, retries, tags), so an adapter never re-implements those.
 * Every method throws only CloudProviderError subclasses: the adapter maps its cloud's codes.
 */
export interface CloudApi {
  readonly cloud: string;
  /** At most this many ids per terminate or describe call. */
  readonly maxIdsPerCall: number;
  /** The longest instance name the cloud takes (room for any suffix it adds itself left out). */
  readonly maxNameLength: number;

  instanceTypes(): Promise<InstanceCatalog>;

  /** The region's zones open to launches (CloudProvider.zones), in any order; the caller caches them. */
  zones(): Promise<string[]>;

  /**
   * One launch call on one candidate: start between minCount and maxCount instances, or throw.
   * `clientToken` goes to the cloud's ClientToken; a call repeated with the same token returns the
   * instances of the first call. Returns the instances the cloud reports as started.
   */
  runInstances(input: RunInstancesInput): Promise<CloudInstance[]>;

  /** Terminates all ids in one call; throws NotFoundError when the cloud does not know one of them. */
  terminateInstances(ids: readonly string[]): Promise<void>;

  /** The instances among ids the cloud still knows; unknown ids are left out, never an error. */
  describeInstances(ids: readonly string[]): Promise<CloudInstance[]>;

  /** Live (not terminated) instances carrying tag `key` = `value`. */
  listInstancesByTag(key: string, value: string): Promise<CloudInstance[]>;

  /** The instance's console output, last `maxLines` lines (CloudProvider.consoleOutput). Optional. */
  consoleOutput?(instanceId: string, maxLines: number): Promise<string | undefined>;
}

export interface RunInstancesInput {
  candidate: LaunchCandidate;
  /** The candidate's image, else the request's. */
  imageId: string;
  minCount: number;
  maxCount: number;
  /** The request's: all `maxCount` or none (a cloud whose ids come before its instances confirms them). */
  allOrNothing?: boolean;
  clientToken: string;
  /** Complete: the caller's tags plus the reserved nowscale: ones. */
  tags: Readonly<Record<string, string>>;
  /** Plain text; the adapter encodes it (all three clouds take base64). */
  userData?: string;
  /** A readable name for consoles (`nowscale-<cluster>-<queue>`, cut to maxNameLength); not an identity. */
  namePrefix: string;
}
