import { uniformFloat64 } from "pure-rand/distribution/uniformFloat64";
import { xoroshiro128plus } from "pure-rand/generator/xoroshiro128plus";
import { formatSwf, SWF_FIELDS, type SwfRecord } from "./swf.js";

export interface SyntheticTraceOptions {
  jobs: number;
  seed: number;
  /** Mean seconds between arrivals (exponential). */
  meanInterarrivalS: number;
  /** Largest job, in processors. */
  maxProcs: number;
}

/**
 * A deterministic synthetic SWF trace for benchmarks and tests: Poisson arrivals; sizes mostly powers
 * of two (as in real logs) up to maxProcs, some odd; run times log-uniform from 10 s to 12 h;
 * requested times 1–3× the run time, as users over-ask. Same options → same text.
 */
export function syntheticTrace(options: SyntheticTraceOptions): string {
  const rng = xoroshiro128plus(options.seed);
  const u = () => uniformFloat64(rng);
  const maxLog = Math.floor(Math.log2(options.maxProcs));
  const records: Omit<SwfRecord, "line">[] = [];
  let t = 0;
  for (let i = 1; i <= options.jobs; i++) {
    t += -Math.log(1 - u()) * options.meanInterarrivalS;
    const pow = 2 ** Math.floor(u() * (maxLog + 1));
    const procs = u() < 0.8 ? pow : 1 + Math.floor(u() * options.maxProcs);
    const run = Math.round(10 * (12 * 360) ** u());
    const fields = Object.fromEntries(SWF_FIELDS.map((f) => [f, undefined])) as Record<
      (typeof SWF_FIELDS)[number],
      number | undefined
    >;
    fields.jobNumber = i;
    fields.submitTime = Math.round(t);
    fields.runTime = run;
    fields.allocatedProcessors = procs;
    fields.requestedProcessors = procs;
    fields.requestedTime = Math.round(run * (1 + 2 * u()));
    fields.status = 1;
    fields.queueNumber = 0;
    records.push(fields);
  }
  return formatSwf(
    [
      "Version: 2",
      `Note: synthetic trace, ${options.jobs} jobs, seed ${options.seed}`,
      `MaxProcs: ${options.maxProcs}`,
    ],
    records,
  );
}
