import { JOB_ID } from "../../lib/core/names.js";

/**
 * Job notes: why NowScale will not serve a job, written where the user looks (`squeue -O jobid,comment`)
 * and cleared when it no longer applies. The control plane decides what each job's note should be from
 * the report (which carries the notes Slurm holds now, see `readNote`) and the plan; the agent only
 * writes what it is given, checked against these allow-lists.
 *
 * A note goes into the job's Comment, unless the job carries a comment someone else wrote (users label
 * their jobs with --comment): then into its AdminComment (shown by `scontrol show job`; 22.05's
 * `squeue -O` has no field for it), so NowScale never overwrites a user's text.
 */

/** Every note starts so: it is how a note is told from a user's comment. */
export const NOTE_PREFIX = "nowscale: ";

/** A note: the prefix and 1-190 printable ASCII characters (Slurm keeps them as given, one argument). */
export const NOTE_TEXT = /^nowscale: [\x20-\x7e]{1,190}$/;

export const NOTE_FIELDS = ["comment", "adminComment"] as const;
export type NoteField = (typeof NOTE_FIELDS)[number];

/** Bounds of one request: notes per call, job ids per note. */
export const MAX_NOTES = 50;
export const MAX_NOTE_JOB_IDS = 20;

/** One change: write `text` into `field` of these jobs; `text` "" clears the field. */
export interface JobNote {
  jobIds: string[];
  text: string;
  field: NoteField;
}

/**
 * Validates a request's notes (`{"notes": [...]}` or the list itself). Throws TypeError naming the field
 * (`notes[2].text: ...`); nothing is written for a request with any bad note.
 */
export function parseJobNotes(input: unknown): JobNote[] {
  const list =
    typeof input === "object" && input !== null && !Array.isArray(input)
      ? (input as { notes?: unknown }).notes
      : input;
  if (!Array.isArray(list) || list.length < 1 || list.length > MAX_NOTES)
    throw new TypeError(`notes: must be a list of 1-${MAX_NOTES} notes`);
  return list.map((raw, i): JobNote => {
    const where = `notes[${i}]`;
    if (typeof raw !== "object" || raw === null || Array.isArray(raw))
      throw new TypeError(`${where}: must be an object {jobIds, text, field}`);
    const extra = Object.keys(raw).filter((k) => k !== "jobIds" && k !== "text" && k !== "field");
    if (extra.length > 0) throw new TypeError(`${where}.${extra[0]?.slice(0, 40)}: unknown field`);
    const { jobIds, text, field } = raw as Record<string, unknown>;
    if (!Array.isArray(jobIds) || jobIds.length < 1 || jobIds.length > MAX_NOTE_JOB_IDS)
      throw new TypeError(`${where}.jobIds: must be a list of 1-${MAX_NOTE_JOB_IDS} job ids`);
    jobIds.forEach((id, j) => {
      if (typeof id !== "string" || !JOB_ID.test(id))
        throw new TypeError(`${where}.jobIds[${j}]: not a Slurm job id`);
    });
    if (typeof text !== "string" || (text !== "" && !NOTE_TEXT.test(text)))
      throw new TypeError(
        `${where}.text: must be "" (clear) or "${NOTE_PREFIX}" and 1-190 printable ASCII characters`,
      );
    if (typeof field !== "string" || !(NOTE_FIELDS as readonly string[]).includes(field))
      throw new TypeError(`${where}.field: must be ${NOTE_FIELDS.join(" or ")}`);
    return { jobIds: [...(jobIds as string[])], text, field: field as NoteField };
  });
}

/**
 * A note for this reason, within the allow-list: the prefix, other characters than printable ASCII
 * replaced (× becomes x), cut to the length Slurm is given.
 */
export function noteText(reason: string): string {
  const plain = reason
    .replace(/×/g, "x")
    .replace(/[^\x20-\x7e]/g, "?")
    .trim();
  return `${NOTE_PREFIX}${plain.slice(0, 190) || "not served"}`;
}

/**
 * The job id scontrol reads: the report names an array's pending tasks "9_0-28" (no brackets pass the
 * job id allow-list); scontrol wants "9_[0-28]", which reaches only those tasks. The array's base id
 * would also reach its running tasks.
 */
export function scontrolJobId(id: string): string {
  const m = /^(\d+)_(\d+-\d+)$/.exec(id);
  return m ? `${m[1]}_[${m[2]}]` : id;
}

/** `scontrol update` arguments writing one note. */
export function jobNoteArgs(note: JobNote): string[] {
  const setting = note.field === "comment" ? "Comment" : "AdminComment";
  return ["update", `JobId=${note.jobIds.map(scontrolJobId).join(",")}`, `${setting}=${note.text}`];
}

/** What the report says about a job's notes (the group fields of the same names). */
export interface NoteState {
  /** NowScale's note the job holds now. */
  note?: string;
  /** Where it is. */
  noteIn?: NoteField;
  /** The job's Comment is someone else's: NowScale writes into AdminComment. */
  userComment?: true;
}

/**
 * Reads a job's Comment and AdminComment (squeue --json's `comment`, `admin_comment`). Only a text the
 * allow-list passes is a note: a user's comment that merely starts with the prefix stays theirs (and
 * untrusted text never reaches the report as a note).
 */
export function readNote(comment: string, adminComment: string): NoteState {
  const state: NoteState = {};
  if (NOTE_TEXT.test(comment)) {
    state.note = comment;
    state.noteIn = "comment";
  } else {
    if (comment !== "") state.userComment = true;
    if (NOTE_TEXT.test(adminComment)) {
      state.note = adminComment;
      state.noteIn = "adminComment";
    }
  }
  return state;
}
