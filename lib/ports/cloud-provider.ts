import type { ChargeType, InstanceCatalog, UnavailableOffering } from "../core/model.js";
import type { CloudProviderError } from "./errors.js";

/**
 * The one port between NowScale and a cloud. The control plane speaks only this; each adapter
 * (AWS EC2, Tencent CVM, Alibaba ECS, local namespaces, fake) translates it into its cloud's dialect.
 * Every method may throw a CloudProviderError subclass (lib/ports/errors.ts); none throws a cloud's own error.
 */
export interface CloudProvider {
  /** Which adapter this is: "aws", "tencent", "alibaba", "local" or "fake". */
  readonly cloud: string;

  /**
   * The instance types this provider can launch, with their shapes and, where known, on-demand price.
   * The result is the catalog the core's best-fit matching uses; it does not say where capacity exists.
   */
  instanceTypes(): Promise<InstanceCatalog>;

  /**
   * The zones of the provider's region that instances may be launched in now (available, and opted in
   * where the cloud asks for that), sorted; one cloud call at most, cached by the adapter for the
   * provider's life. The API checks a queue's expansionNodeConfigs' zones against it, so a typo is
   * refused when it is written rather than failing every launch (lib/control/zones.ts).
   */
  zones(): Promise<string[]>;

  /**
   * Starts `count` instances for one queue, trying the candidates in order:
   * - a candidate whose (instance type, zone) had a capacity error within the unavailable-offering TTL is
   *   skipped without a cloud call (and reported as a skipped failure);
   * - all-or-nothing: one candidate must start all `count` instances (MinCount = count); anything less is
   *   terminated before the next candidate is tried, so the call never leaves a partial set behind;
   * - best-effort: each candidate starts what it can (MinCount = 1) and the rest goes to the next candidate;
   *   where the cloud refuses MinCount (Tencent without partial delivery), the adapter asks the candidate
   *   for the whole remainder without it and confirms what exists, so the rest still goes on;
   * - each candidate's call carries an idempotency token derived from (clusterId, round, candidate), so
   *   calling launch again with the same request returns the instances already started instead of
   *   starting a second set;
   * - throttling and cloud-side failures are retried with backoff; invalid requests and auth failures are not;
   * - every instance is tagged at creation with the cluster id, the queue and the NowScale marker.
   * Resolves with what started (possibly nothing) and one typed failure per candidate that did not deliver;
   * it rejects only for a request that is invalid as a whole (InvalidRequestError) or when `onStarted`
   * rejects.
   */
  launch(request: LaunchRequest): Promise<LaunchResult>;

  /**
   * Terminates the instances. Idempotent: an instance that is already gone (or terminating) counts as
   * terminated, so retrying a terminate, or terminating an id the cloud never knew, succeeds.
   */
  terminate(instanceIds: readonly string[]): Promise<void>;

  /**
   * The cluster's live instances (not yet terminated), found by the `nowscale:cluster` tag, never by
   * NowScale's own records: the reconciler compares the two to find orphans.
   */
  list(clusterId: string): Promise<CloudInstance[]>;

  /** The instances among `instanceIds` that the cloud still knows, in any state; unknown ids are left out. */
  describe(instanceIds: readonly string[]): Promise<CloudInstance[]>;

  /**
   * The offerings (instance type, zone, charge type) this provider holds unavailable now after a capacity
   * error, each with the epoch ms it is held until; no cloud call (asynchronous like every port method,
   * so decorators such as the fault suite's may wrap it). The scale cycle gives them to the
   * planner, which then plans the next-best shape instead of a launch the provider would skip
   * (capacityFallback, docs/plan.md). Held in memory: empty after a cold start.
   */
  unavailableOfferings(): Promise<UnavailableOffering[]>;

  /**
   * The instance's console output (what its boot wrote: cloud-init and the user data), at most the
   * last `maxLines` lines; undefined when the cloud keeps none for it (unknown or gone instance).
   * Optional: only providers that can read it implement it (the local provider; EC2 GetConsoleOutput
   * would fit). Never throws for an unknown instance.
   */
  consoleOutput?(instanceId: string, maxLines?: number): Promise<string | undefined>;
}

/**
 * The image id a cluster's placement carries when the user named none: the provider launches its cloud's
 * default image (on AWS, the latest Debian 12 for each instance type's architecture, resolved from its
 * public SSM parameter: lib/providers/aws-ec2/default-image.ts). Never a real image id.
 */
export const DEFAULT_IMAGE = "nowscale-default-debian-12";

/**
 * How long a provider holds an offering unavailable after a capacity error (10 minutes), as
 * ParallelCluster and Karpenter do; the simulator's full pools use the same figure.
 */
export const DEFAULT_UNAVAILABLE_TTL_MS = 600_000;

/** One place to try: the core's Candidate with the subnet the cloud needs. */
export interface LaunchCandidate {
  instanceType: string;
  zone: string;
  chargeType: ChargeType;
  /** AWS subnet, Tencent subnet or Alibaba vSwitch; it must lie in `zone`. */
  subnetId?: string;
  /** Overrides the request's image for this candidate (e.g. a GPU image). */
  imageId?: string;
}

export interface LaunchRequest {
  clusterId: string;
  queue: string;
  /**
   * Identifies the scaling decision this launch carries out (e.g. the scale cycle's id and the launch's
   * index). Together with the cluster and the candidate it derives each call's idempotency token: the
   * same round retried never starts a second set of instances; a new round always may.
   */
  round: string;
  /** Tried in order, first to last. */
  candidates: readonly LaunchCandidate[];
  /** Instances wanted, 1..MAX_LAUNCH_COUNT. */
  count: number;
  /** True when the instances only help if all of them start (one multi-node job's full set). */
  allOrNothing: boolean;
  imageId: string;
  /** Plain text (a shell script or cloud-init); adapters encode it as their cloud wants. */
  userData?: string;
  /** Extra tags; the `nowscale:` keys are reserved and always set by the provider. */
  tags?: Readonly<Record<string, string>>;
  /**
   * Called with the new instances of every cloud call, before the provider keeps or releases any of them
   * (a surplus, or a short all-or-nothing set it terminates again), so the caller records every id first:
   * an instance whose release then fails is never untracked. If it rejects, launch rejects with that
   * error and releases nothing (what started is left to the caller's records and the round tag).
   * `candidateIndex` is the index in `candidates` of the candidate the call was for (so the caller
   * knows each instance's launch token without guessing it back from the instance's shape).
   */
  onStarted?: (instances: readonly CloudInstance[], candidateIndex: number) => Promise<void>;
}

/** Launches larger than this are split by the caller (Alibaba and EC2 MinCount calls take at most 100). */
export const MAX_LAUNCH_COUNT = 100;

/**
 * The most user data a launch may carry, in base64 bytes: EC2 takes 16 KiB before encoding, CVM 16 KiB
 * after, so the stricter one, after encoding. Providers refuse more (InvalidRequestError) and the control
 * plane refuses a node setup whose boot script would exceed it.
 */
export const MAX_USER_DATA_BASE64_BYTES = 16_384;

export interface CandidateFailure {
  /** Index into the request's candidates. */
  index: number;
  candidate: LaunchCandidate;
  error: CloudProviderError;
  /** True when no call was made: the offering was held unavailable after an earlier capacity error. */
  skipped: boolean;
}

export interface LaunchResult {
  /** Instances started (or found again by the idempotency token), at most `count`. */
  instances: CloudInstance[];
  /** One entry per candidate that was tried or skipped and did not deliver its share. */
  failures: CandidateFailure[];
  /**
   * Instances the provider started but could not terminate again (an all-or-nothing shortfall or a
   * surplus whose terminate failed after retries). They carry the cluster tag, so the reconciler's orphan
   * sweep removes them; the list is here so the caller can log it.
   */
  unreleased: string[];
}

export type InstanceState =
  | "PENDING"
  | "RUNNING"
  | "STOPPING"
  | "STOPPED"
  | "TERMINATING"
  | "TERMINATED"
  | "UNKNOWN";

export interface CloudInstance {
  id: string;
  instanceType: string;
  zone: string;
  chargeType: ChargeType;
  state: InstanceState;
  subnetId?: string;
  privateIp?: string;
  /** Epoch ms, when the cloud reports it. */
  launchedAt?: number;
  /** From the `nowscale:cluster` and `nowscale:queue` tags. */
  clusterId?: string;
  queue?: string;
  tags: Record<string, string>;
}
