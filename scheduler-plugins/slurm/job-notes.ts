import { type JobNote, NOTE_PREFIX, NOTE_TEXT, type NoteField } from "../../lib/ports/agent-protocol.js";

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
