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
