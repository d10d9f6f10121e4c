import { JOB_ID } from "../../lib/core/names.js";

/**
 * The cheapest read of "what is pending", for the agent's watcher (agent/watch.ts): one id per pending
 * job record, nothing else. `squeue --json` costs about 3 KB a job (docs/agent.md, "Size and speed"); this
 * is one short line a job.
 */
export const PENDING_IDS_ARGS: readonly string[] = ["--noheader", "--all", "--states=PENDING", "--format=%i"];

/**
 * The pending job ids in `squeue ${PENDING_IDS_ARGS}`'s output. A pending array record (`9_[0-28]`, or
 * `9_[3-28%4]` once tasks started) is its base id `9`, so the record shrinking as its tasks start is not
 * new demand; a task split off (`9_3`, e.g. requeued) is its own id. Lines that fail the job id
 * allow-list are left out.
 */
export function parsePendingIds(stdout: string): string[] {
  const ids: string[] = [];
  for (const line of stdout.split("\n")) {
    const id = line.trim().replace(/_\[[^\]]*\]$/, "");
    if (id !== "" && JOB_ID.test(id)) ids.push(id);
  }
  return ids;
}
