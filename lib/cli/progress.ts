import cliProgress from "cli-progress";

/** A progress bar over several policy replays; `update(policy, fraction)` moves it. */
export interface Progress {
  update: (policy: string, fraction: number) => void;
  stop: () => void;
}

const STEPS = 1000;

/**
 * Draws on `stream` (stderr: stdout stays clean for --json). `policies` sizes the bar; an unknown
 * policy name gets the next slot, so the bar also works when the list is not known up front.
 */
export function startProgress(stream: NodeJS.WriteStream, policies: readonly string[]): Progress {
  const slots = new Map(policies.map((p, i) => [p, i]));
  const total = Math.max(1, policies.length) * STEPS;
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: "simulate {policy} [{bar}] {percentage}%",
      hideCursor: true,
      clearOnComplete: true,
      noTTYOutput: true,
      notTTYSchedule: 2000,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { policy: policies[0] ?? "" });
  return {
    update: (policy, fraction) => {
      let slot = slots.get(policy);
      if (slot === undefined) {
        slot = slots.size;
        slots.set(policy, slot);
      }
      bar.update(Math.min(total, slot * STEPS + Math.round(fraction * STEPS)), { policy });
    },
    stop: () => bar.stop(),
  };
}

/** Progress through a known number of steps (clusters read, nodes joined): `update(done, note)`. */
export interface Counter {
  update: (done: number, note?: string) => void;
  stop: () => void;
}

/**
 * A counter on `stream` (stderr): a bar on a terminal; elsewhere (a pipe, CI's log) one plain line per
 * change, "label: done/total note", so logs stay readable and nothing is redrawn.
 */
export function startCounter(stream: NodeJS.WriteStream, label: string, total: number): Counter {
  if (stream.isTTY !== true) {
    let last = "";
    return {
      update: (done, note) => {
        const line = `${label}: ${done}/${total}${note === undefined ? "" : ` ${note}`}`;
        if (line !== last) stream.write(`${line}\n`);
        last = line;
      },
      stop: () => undefined,
    };
  }
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: `${label} [{bar}] {value}/{total} {note}`,
      hideCursor: true,
      clearOnComplete: false,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(Math.max(1, total), 0, { note: "" });
  return {
    update: (done, note) => bar.update(done, { note: note ?? "" }),
    stop: () => bar.stop(),
  };
}
