import type { ResolvedEntry, ResolvedQueue, ShapeGroup } from "./config.js";
import { type Constraint, countedParts, formatConstraint, parseConstraint, satisfies } from "./constraint.js";
import { nodeFeatures } from "./features.js";
import { bestFit, RequestIds, type Slice, type SlicedRequest, slicesPerNode } from "./fit.js";
import type { ClusterNode, Job, Skip, SlurmMismatch, UnavailableOffering } from "./model.js";
import { type Hold, jobSkip, type SupplyNode } from "./plan-terms.js";

/**
 * What one pending job may use: the shapes (and entries) it may launch and the existing nodes it may
 * take. Constraints (-C), offerings held unavailable and the safety net's evidence narrow it.
 */
export interface JobView {
  /** Views with the same id have the same groups: policies cache fits by it. */
  readonly id: number;
  /** Shape groups the job may launch, each with only the entries it may use. */
  readonly groups: readonly ShapeGroup[];
  /** Indices (into the queue's entries) of those entries. */
  readonly entries: ReadonlySet<number>;
  /** Every entry of the queue: policies skip the entry checks. */
  readonly allEntries: boolean;
  /** Every existing node of the queue (no constraint, no exclusion): policies skip the node checks. */
  readonly anyNode: boolean;
  /** True when the job may run on this existing node. */
  accepts(node: ClusterNode): boolean;
}

export interface PrepareInput {
  queue: ResolvedQueue;
  /** Pending jobs of the queue, oldest first. */
  jobs: readonly Job[];
  /** Holds from demand rules (busy time, expansion disabled), by index into `jobs` (undefined: none). */
  holds: readonly (Hold | undefined)[];
  supply: readonly SupplyNode[];
  unavailable: readonly UnavailableOffering[];
  capacityFallback: "next-shape" | "strict";
  reservationTimeoutS: number;
  now: number;
}

export interface PreparedJobs {
  /** The jobs to plan, oldest first; a job with node counts in its constraint becomes one part per count. */
  jobs: Job[];
  /** By index into `jobs`: each job's view (fullView(queue) for a job nothing narrows). */
  views: JobView[];
  /** By index into `jobs`: each job's hold, undefined for a job that may launch. */
  holds: (Hold | undefined)[];
  /** By index into `jobs`: each job's request as slices, with an id shared by equal requests of the call. */
  requests: SlicedRequest[];
  /** Jobs left out before planning (constraint not understood or satisfied by no type). */
  skipped: Skip[];
  mismatches: SlurmMismatch[];
  /** Why a job's launch is not its plain best fit (capacity fallback), by job id. */
  notes: Map<string, string>;
}

/**
 * What depends on the queue's config alone, made once per (immutable) resolved queue: the scaler
 * plans every few seconds, and the simulator thousands of times, with the same config.
 */
const entryFeatureCache = new WeakMap<ResolvedQueue, readonly Set<string>[]>();
const allEntriesCache = new WeakMap<ResolvedQueue, ReadonlySet<number>>();

function featuresOfEntries(queue: ResolvedQueue): readonly Set<string>[] {
  let features = entryFeatureCache.get(queue);
  if (!features) {
    features = queue.entries.map(
      (e) => new Set(nodeFeatures(queue.queueName, e.instanceType, e.zone, queue.features)),
    );
    entryFeatureCache.set(queue, features);
  }
  return features;
}

function allEntriesOf(queue: ResolvedQueue): ReadonlySet<number> {
  let all = allEntriesCache.get(queue);
  if (!all) {
    all = new Set(queue.entries.map((e) => e.index));
    allEntriesCache.set(queue, all);
  }
  return all;
}

/** At most this many mismatches are listed per queue; the rule applies to all of them. */
const MAX_MISMATCHES = 200;
const NO_NODES: readonly SupplyNode[] = [];

/** Whole seconds an idle node has been beside a pending job: since the later of the two. */
function waitedBeside(s: SupplyNode, job: Job, now: number): number {
  return Math.floor((now - Math.max(s.node.idleSince ?? now, job.submittedAt)) / 1000);
}

/**
 * Narrows each pending job to what it may use and splits jobs with node counts (`[a*3&b*1]`) into parts.
 * Pure: everything comes from the input.
 */
export function prepareJobs(input: PrepareInput): PreparedJobs {
  const { queue, now } = input;
  const out: PreparedJobs = {
    jobs: [],
    views: [],
    holds: [],
    requests: [],
    skipped: [],
    mismatches: [],
    notes: new Map(),
  };
  const q = queue.queueName;
  if (input.jobs.length === 0) return out;

  const isUnavailable = (e: ResolvedEntry) =>
    input.unavailable.some(
      (u) =>
        u.instanceType === e.instanceType &&
        u.zone === e.zone &&
        (u.chargeType === undefined || u.chargeType === e.chargeType) &&
        (u.until === undefined || u.until > now),
    );
  const available =
    input.unavailable.length === 0
      ? allEntriesOf(queue)
      : new Set(queue.entries.filter((e) => !isUnavailable(e)).map((e) => e.index));
  const allAvailable = available.size === queue.entries.length;
  const limitMs = input.reservationTimeoutS * 1000;
  // Idle nodes Slurm has had its chance to use: idle longer than the safety net's limit.
  const staleIdle = input.supply.filter(
    (s) => s.node.state === "IDLE" && s.node.idleSince !== undefined && now - s.node.idleSince > limitMs,
  );
  // Most jobs: no constraint, nothing held unavailable, no idle node Slurm had its chance on.
  const plain = (job: Job) =>
    job.constraint === undefined &&
    allAvailable &&
    (staleIdle.length === 0 || now - job.submittedAt <= limitMs);
  // Every job plain (most polls): nothing below is needed.
  const all = fullView(queue);
  if (input.jobs.every(plain)) {
    out.jobs = input.jobs.slice();
    out.views = new Array<JobView>(input.jobs.length).fill(all);
    out.holds = input.holds.slice();
    const requestIds = new RequestIds();
    out.requests = input.jobs.map((job) => requestIds.of(job.request, queue.scaleUpMemRatio));
    return out;
  }

  let nextId = 1;
  const entryFeatures = featuresOfEntries(queue);
  const nodeFeatureCache = new Map<ClusterNode, Set<string>>();
  const featuresOf = (node: ClusterNode) => {
    let set = nodeFeatureCache.get(node);
    if (!set) {
      set = new Set(nodeFeatures(node.queue, node.instanceType, node.zone, queue.features));
      nodeFeatureCache.set(node, set);
    }
    return set;
  };
  const parsed = new Map<string, ReturnType<typeof parseConstraint>>();
  const parse = (text: string) => {
    let result = parsed.get(text);
    if (!result) {
      result = parseConstraint(text);
      parsed.set(text, result);
    }
    return result;
  };

  // Views shared by every job with the same constraint, refused types and availability; a job's own
  // excluded nodes (the safety net) wrap a shared view, which keeps its id: fits depend on groups only.
  // By constraint key, then refused key: [with unavailable offerings, without].
  const shared = new Map<string, Map<string, [JobView | undefined, JobView | undefined]>>();
  const noViews = (): [JobView | undefined, JobView | undefined] => [undefined, undefined];
  const makeView = (allowed: (e: ResolvedEntry) => boolean, constraint: Constraint | undefined): JobView => {
    const groups: ShapeGroup[] = [];
    const entries = new Set<number>();
    for (const group of queue.groups) {
      const kept = group.entries.filter(allowed);
      for (const e of kept) entries.add(e.index);
      if (kept.length === group.entries.length) groups.push(group);
      else if (kept.length > 0) {
        // A narrower group gets its own key, so its nodes never join a launch of the full group.
        groups.push({
          key: `${group.key}#${kept.map((e) => e.index).join(",")}`,
          shape: group.shape,
          entries: kept,
        });
      }
    }
    const allEntries = entries.size === queue.entries.length;
    return {
      id: allEntries ? 0 : nextId++,
      groups: allEntries ? queue.groups : groups,
      entries,
      allEntries,
      anyNode: constraint === undefined,
      accepts: (node) => constraint === undefined || satisfies(constraint, featuresOf(node)),
    };
  };
  /** `constraintKey` is the constraint's normal form ("" for none), `refusedKey` the refused types sorted. */
  const viewFor = (
    constraint: Constraint | undefined,
    constraintKey: string,
    refused: ReadonlySet<string> | undefined,
    refusedKey: string,
    withUnavailable: boolean,
    excluded: ReadonlySet<string> | undefined,
  ): JobView => {
    const pair = inner(inner(shared, constraintKey), refusedKey, noViews);
    const slot = withUnavailable ? 0 : 1;
    let view = pair[slot];
    if (!view) {
      const allowed = (e: ResolvedEntry) =>
        (constraint === undefined || satisfies(constraint, entryFeatures[e.index] as Set<string>)) &&
        !refused?.has(e.instanceType) &&
        (withUnavailable || available.has(e.index));
      view = makeView(allowed, constraint);
      pair[slot] = view;
    }
    if (excluded === undefined || excluded.size === 0) return view;
    const base = view;
    return { ...base, anyNode: false, accepts: (node) => base.accepts(node) && !excluded.has(node.name) };
  };

  // Requests as small integers: the keys below are looked up once per job, without building strings.
  const requestIds = new RequestIds();
  // Many jobs share a request and a view: fit each pair once. By view id, then request.
  const fits = new Map<number, Map<number, ReturnType<typeof bestFit>>>();
  const fitOf = (view: JobView, request: number, slice: Slice, units: number, distinct: boolean) => {
    const byRequest = inner(fits, view.id);
    let fit = byRequest.get(request);
    if (fit === undefined) {
      fit = bestFit(view, slice, units, distinct);
      byRequest.set(request, fit);
    }
    return fit;
  };

  /**
   * Per constraint and request: the stale idle nodes the job seems to fit, their types and names. Only
   * when together they could hold the whole job (`units`): Slurm starts a job on all its nodes at once,
   * so idle nodes that could hold only part of it (a multi-node job whose other nodes still boot) say
   * nothing about how Slurm reads it, and they stay the job's (reserved, not shrunk) while it pends.
   */
  const nets = new Map<
    string,
    Map<
      number,
      { nodes: SupplyNode[]; refused: Set<string>; refusedKey: string; excluded: Set<string> } | null
    >
  >();
  const safetyNet = (
    ckey: string,
    request: number,
    constraintView: JobView,
    slice: Slice,
    units: number,
    distinct: boolean,
  ) => {
    const byRequest = inner(nets, ckey);
    let net = byRequest.get(request);
    if (net === undefined) {
      let room = 0;
      const nodes = staleIdle.filter((s) => {
        const n = constraintView.accepts(s.node) ? slicesPerNode(slice, s.shape, distinct) : 0;
        room += n;
        return n > 0;
      });
      const refused = new Set(nodes.map((s) => s.node.instanceType));
      net =
        nodes.length === 0 || room < units
          ? null
          : {
              nodes,
              refused,
              refusedKey: [...refused].sort().join(","),
              excluded: new Set(nodes.map((s) => s.node.name)),
            };
      byRequest.set(request, net);
    }
    return net ?? undefined;
  };

  /** By constraint key, then request × 2 + 1 when the safety net applies. */
  const lookups = new Map<
    string,
    Map<
      number,
      { fitAll: ReturnType<typeof bestFit>; launchable: JobView; fitAvailable: ReturnType<typeof bestFit> }
    >
  >();
  const keyOf = (c: Constraint | undefined) => (c === undefined ? "" : formatConstraint(c));
  const whole: { job: Job; constraint: Constraint | undefined } = {
    job: input.jobs[0] as Job,
    constraint: undefined,
  };
  const wholeOnly = [whole];

  for (let index = 0; index < input.jobs.length; index++) {
    const job = input.jobs[index] as Job;
    const baseHold = input.holds[index];
    if (plain(job)) {
      out.jobs.push(job);
      out.views.push(all);
      out.holds.push(baseHold);
      out.requests.push(requestIds.of(job.request, queue.scaleUpMemRatio));
      continue;
    }
    let constraint: Constraint | undefined;
    if (job.constraint !== undefined) {
      const result = parse(job.constraint);
      if ("error" in result) {
        out.skipped.push(
          jobSkip(
            job,
            "CONSTRAINT_NOT_UNDERSTOOD",
            `constraint "${job.constraint.slice(0, 100)}" not understood (${result.error}): NowScale launches nothing for it`,
          ),
        );
        continue;
      }
      constraint = result.constraint;
    }

    // Node counts (`[a*3&b*1]`): one part per count, each with its own constraint, all-or-nothing each.
    // Without counts, the job is its one part (a list made once per call, not per job).
    whole.job = job;
    whole.constraint = constraint;
    let parts: { job: Job; constraint: Constraint | undefined }[] = wholeOnly;
    const counted = constraint && job.request.kind === "nodes" ? countedParts(constraint) : undefined;
    if (counted && job.request.kind === "nodes") {
      const request = job.request;
      const countedNodes = counted.parts.reduce((n, p) => n + p.nodes, 0);
      parts = counted.parts.map((p) => ({
        job: { ...job, request: { ...request, nodes: p.nodes } },
        constraint: p.constraint,
      }));
      if (request.nodes > countedNodes) {
        parts.push({
          job: { ...job, request: { ...request, nodes: request.nodes - countedNodes } },
          constraint: counted.rest,
        });
      }
    }

    // Without a constraint every entry is allowed: nothing to check (most jobs).
    const unsatisfied =
      constraint === undefined
        ? undefined
        : parts.find(
            (p) =>
              viewFor(p.constraint, keyOf(p.constraint), undefined, "", true, undefined).entries.size === 0,
          );
    if (unsatisfied && constraint !== undefined) {
      out.skipped.push(
        jobSkip(
          job,
          "CONSTRAINT_UNSATISFIABLE",
          `no instance type of queue ${q} has features satisfying "${formatConstraint(unsatisfied.constraint ?? constraint)}" (features: q_${q}, type_<type>, zone_<zone>${queue.features.length > 0 ? `, ${queue.features.join(", ")}` : ""})`,
        ),
      );
      continue;
    }

    for (const { job: part, constraint: partConstraint } of parts) {
      const sliced = requestIds.of(part.request, queue.scaleUpMemRatio);
      const { slice, units, distinct, id: request } = sliced;
      const ckey = keyOf(partConstraint);
      const constraintView = viewFor(partConstraint, ckey, undefined, "", true, undefined);

      // The safety net: idle nodes this job seems to fit, where Slurm has not started it. What it
      // refuses and excludes depends on the constraint and the request only: worked out once per pair.
      const net =
        staleIdle.length > 0 && now - part.submittedAt > limitMs
          ? safetyNet(ckey, request, constraintView, slice, units, distinct)
          : undefined;
      const refused = net?.refused;
      const excluded = net?.excluded;
      for (const s of net?.nodes ?? NO_NODES) {
        if (out.mismatches.length >= MAX_MISMATCHES) break;
        const waitedS = waitedBeside(s, part, now);
        const mismatch: SlurmMismatch = {
          node: s.node.name,
          job: part.id,
          queue: q,
          waitedS,
          reason: `idle ${waitedS} s beside pending job ${part.id}, which NowScale read as fitting it, and Slurm has not started it there${part.reason ? ` (Slurm: ${part.reason})` : ""}: the node no longer covers the job`,
        };
        if (part.reason !== undefined) mismatch.slurmReason = part.reason;
        out.mismatches.push(mismatch);
      }

      const rkey = net?.refusedKey ?? "";
      // The views and fits depend on the constraint, the request and the safety net's verdict only.
      const byRequest = inner(lookups, ckey);
      const lookKey = request * 2 + (net === undefined ? 0 : 1);
      let look = byRequest.get(lookKey);
      if (look === undefined) {
        const allView = viewFor(partConstraint, ckey, refused, rkey, true, undefined);
        const launchable = viewFor(partConstraint, ckey, refused, rkey, false, excluded);
        look = {
          fitAll: fitOf(allView, request, slice, units, distinct),
          launchable,
          fitAvailable: fitOf(launchable, request, slice, units, distinct),
        };
        byRequest.set(lookKey, look);
      }
      const { fitAll, launchable, fitAvailable } = look;
      let hold = baseHold;
      let view = launchable;
      if (hold === undefined && refused !== undefined && fitAll === null) {
        // Every type NowScale reads as fitting is one Slurm did not use: launching more of it would leak.
        // The reason names the safety net's last node (a net has at least one).
        const last = net?.nodes[net.nodes.length - 1] as SupplyNode;
        hold = {
          code: "NOT_STARTED_BY_SLURM",
          reason: `Slurm has not started it on idle ${[...refused].join(", ")} node ${last.node.name} for ${waitedBeside(last, part, now)} s${part.reason ? ` (Slurm: ${part.reason})` : ""}: NowScale's reading of the job differs from Slurm's, so it launches no more of that type for it`,
        };
      }
      if (fitAll !== null && fitAvailable?.group.key !== fitAll.group.key) {
        const bestEntries = fitAll.group.entries.map((e) => `${e.instanceType}@${e.zone}`).join(", ");
        const fullyHeld = fitAll.group.entries.every((e) => !available.has(e.index));
        if (hold === undefined && fullyHeld && input.capacityFallback === "strict") {
          hold = {
            code: "BEST_FIT_UNAVAILABLE",
            reason: `every offering of the best-fit shape (${bestEntries}) is held unavailable after capacity errors; capacityFallback "strict" waits for it`,
          };
        } else if (hold === undefined && fitAvailable === null) {
          hold = {
            code: "NO_CAPACITY",
            reason: `every offering that fits (${bestEntries} first) is held unavailable after capacity errors`,
          };
        } else if (fullyHeld && fitAvailable !== null) {
          const { vcpus, memoryMiB, gpus } = fitAll.group.shape;
          out.notes.set(
            part.id,
            `next-best shape: the best fit ${vcpus} vCPU / ${memoryMiB} MiB${gpus ? ` / ${gpus} GPU` : ""} (${bestEntries}) is held unavailable after capacity errors`,
          );
        }
      }
      // A held job launches nothing; it keeps the shapes it fits so it is not read as fitting none.
      if (hold !== undefined) {
        view =
          fitAll === null
            ? viewFor(partConstraint, ckey, undefined, "", true, excluded)
            : viewFor(partConstraint, ckey, refused, rkey, true, excluded);
      }
      out.jobs.push(part);
      out.views.push(view);
      out.holds.push(hold);
      out.requests.push(sliced);
    }
  }
  return out;
}

/** The map under `key` in `outer`, made (by `make`, else empty) when there is none yet. */
function inner<K, V>(outer: Map<K, V>, key: K, make?: () => V): V;
function inner<K, K2, V2>(outer: Map<K, Map<K2, V2>>, key: K): Map<K2, V2>;
function inner<K, V>(outer: Map<K, V>, key: K, make?: () => V): V {
  let value = outer.get(key);
  if (value === undefined) {
    value = make ? make() : (new Map() as V);
    outer.set(key, value);
  }
  return value;
}

const fullViewCache = new WeakMap<ResolvedQueue, JobView>();

/** The default view: every shape and node of the queue (one per queue, like the caches above). */
export function fullView(queue: ResolvedQueue): JobView {
  let view = fullViewCache.get(queue);
  if (!view) {
    view = {
      id: 0,
      groups: queue.groups,
      entries: allEntriesOf(queue),
      allEntries: true,
      anyNode: true,
      accepts: () => true,
    };
    fullViewCache.set(queue, view);
  }
  return view;
}
