import { noteText } from "../../scheduler-plugins/slurm/job-notes.js";
import type { Decision } from "../core/model.js";
import type { JobNote, NoteField } from "../ports/agent-protocol.js";
import type { OkReport } from "../ports/agent-report.js";

/**
 * Skip codes that mean NowScale will not serve the job as it stands, whatever capacity appears: the
 * job's note says why. Transient ones (NO_CAPACITY, BEST_FIT_UNAVAILABLE, busy time, round caps) are
 * told as events only, so a note does not flap with the cloud's capacity.
 */
export const NOTED_SKIPS: ReadonlySet<string> = new Set([
  "NO_FITTING_SHAPE",
  "JOB_LARGER_THAN_MAX_SIZE",
  "CONSTRAINT_UNSATISFIABLE",
  "CONSTRAINT_NOT_UNDERSTOOD",
  "NOT_STARTED_BY_SLURM",
]);

/** At most this many notes are written per poll (one agent call); the rest wait for the next poll. */
export const MAX_NOTES_PER_POLL = 20;

/**
 * Why each pending job (by the core's id, the group's jobIds[0]) is not served: the planner's skips
 * above, then `held` (jobs whose launch the control plane held back, e.g. a queue in protected mode).
 * Reasons lose what changes without their cause changing (a running count "for 45 s", the group's
 * "(5 identical jobs)", which a note on each job does not need), so a note is rewritten only when its
 * cause changes.
 */
export function notServedReasons(
  decision: Decision,
  held: ReadonlyMap<string, string> = new Map(),
): Map<string, string> {
  const reasons = new Map<string, string>();
  for (const skip of decision.skipped) {
    if (!("job" in skip) || !NOTED_SKIPS.has(skip.code) || reasons.has(skip.job)) continue;
    reasons.set(skip.job, skip.reason.replace(/ for \d+ s\b/g, "").replace(/ \(\d+ identical jobs\)$/, ""));
  }
  for (const [job, reason] of held) if (!reasons.has(job)) reasons.set(job, reason);
  return reasons;
}

/**
 * The notes to write so every job group of the report holds the note it should: a pending group NowScale
 * will not serve gets `nowscale: <reason>`; any other group holding a note has it cleared (the job was
 * served, started, or is blocked by Slurm for its own reason). The report says what each group holds
 * now, so nothing is written when Slurm already agrees, and a new scaler clears what an earlier one
 * wrote. A note goes into the Comment, or into AdminComment when the job's Comment is someone else's.
 *
 * `isNew(key)` is the memory of the notes written in the previous polls: a note written once and still
 * not in the report (a job Slurm would not update) is not written again every poll. Returns at most
 * `max` notes, oldest groups first as the report lists them. Reports from the format-string reader
 * (Slurm before 22.05) carry no comments, so nothing is written for them: a user's comment could not be
 * told from an empty one.
 */
export function jobNoteChanges(
  report: OkReport,
  reasons: ReadonlyMap<string, string>,
  isNew: (key: string) => boolean,
  max = MAX_NOTES_PER_POLL,
): JobNote[] {
  if (report.source !== "json") return [];
  const notes: JobNote[] = [];
  for (const group of report.jobs) {
    if (notes.length >= max) break;
    const reason = group.state === "PENDING" ? reasons.get(group.jobIds[0] as string) : undefined;
    const wanted = reason === undefined ? undefined : noteText(reason);
    if (wanted === group.note) continue;
    let field: NoteField;
    if (wanted === undefined) {
      if (group.noteIn === undefined) continue;
      field = group.noteIn;
    } else field = group.noteIn ?? (group.userComment ? "adminComment" : "comment");
    const note: JobNote = { jobIds: [...group.jobIds], text: wanted ?? "", field };
    if (!isNew(noteKey(note))) continue;
    notes.push(note);
  }
  return notes;
}

/** The memory's key of one note: the same write to the same jobs. */
export function noteKey(note: JobNote): string {
  return `${note.jobIds.join(",")} ${note.field} ${note.text}`;
}
