import { expect, type TestContext } from "vitest";
import { type PromiseFigures, UNTRACKED_LIMIT_S } from "../support/faults/observers.js";
import { describeSeed } from "../support/faults/rng.js";
import type { World } from "../support/faults/world.js";

declare module "vitest" {
  interface TaskMeta {
    /** The scenario's figures, read by test/faults/reporter.ts for the closing lines. */
    faultFigures?: PromiseFigures;
  }
}

/** Every promise the figures break, in words; empty when all five hold. */
export function brokenPromises(f: PromiseFigures): string[] {
  const broken: string[] = [];
  if (f.untrackedMaxS > UNTRACKED_LIMIT_S) {
    broken.push(
      `(a) untracked max ${f.untrackedMaxS} s > ${UNTRACKED_LIMIT_S} s (instance ${f.untrackedWorst})`,
    );
  }
  if (f.doubleLaunches > 0) {
    const over = f.maxLive
      .filter((m) => m.max > m.maxSize)
      .map((m) => `${m.queue} reached ${m.max} of maxSize ${m.maxSize}`);
    broken.push(
      `(b) double launches ${f.doubleLaunches}: ${[...over, `${f.beyondDemand} launched beyond demand`].join("; ")}`,
    );
  }
  if (f.busyTerminated > 0) {
    const who = f.busyTerminations.map((b) => `${b.instance} (job ${b.job}) by ${b.actor}`).slice(0, 5);
    broken.push(`(c) busy terminated ${f.busyTerminated}: ${who.join(", ")}`);
  }
  if (f.strandedClusters > 0)
    broken.push(`(d) stranded clusters ${f.strandedClusters}: ${f.stranded.join("; ")}`);
  if (f.hostileRefused < f.hostileSent) {
    broken.push(
      `(e) hostile inputs refused ${f.hostileRefused}/${f.hostileSent}: accepted ${f.hostileAccepted.join("; ")}`,
    );
  }
  return broken;
}

/** One line of figures per scenario, as printed and as the reporter repeats them. */
export function figuresLine(f: PromiseFigures): string {
  const clusters = new Set(f.maxLive.map((m) => m.cluster)).size;
  const live = f.maxLive
    .map((m) => `${clusters > 1 ? `${m.cluster}/` : ""}${m.queue} ${m.max}/${m.maxSize}`)
    .join(", ");
  const notes = Object.entries(f.notes)
    .filter(([, v]) => v !== 0)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  return [
    `untracked max ${f.untrackedMaxS} s`,
    `double launches ${f.doubleLaunches} (max live ${live || "-"}; beyond demand ${f.beyondDemand})`,
    `busy terminated ${f.busyTerminated}`,
    `stranded clusters ${f.strandedClusters}`,
    `hostile refused ${f.hostileRefused}/${f.hostileSent}`,
    ...(notes === "" ? [] : [notes]),
  ].join(" · ");
}

/**
 * The end of every scenario's run, before its own assertions: the hostile sample, the figures (printed,
 * and attached to the test for the reporter), and one soft assertion listing every broken promise with
 * the seed that replays it — soft, so the scenario's own assertions still run and report too.
 */
export async function settle(ctx: TestContext, world: World): Promise<PromiseFigures> {
  await world.probeHostileInputs();
  const figures = await world.finish();
  ctx.task.meta.faultFigures = figures;
  console.log(`[faults] ${figures.scenario}: ${figuresLine(figures)} (seed ${figures.seed})`);
  expect
    .soft(brokenPromises(figures), `${figures.scenario}: promises broken, ${describeSeed(figures.seed)}`)
    .toEqual([]);
  return figures;
}
