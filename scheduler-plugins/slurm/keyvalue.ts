/**
 * `scontrol -o show node|partition|job` prints one record per line as `Key=value Key=value`, where a
 * few values contain spaces (OS=Linux 6.1 #1 SMP, Reason=idle too long [root@...]). A token starts a
 * new field only when it looks like `Key=`; anything else continues the previous value.
 */
const KEY = /^([A-Za-z][A-Za-z0-9_:/]*)=(.*)$/s;

/** Keys whose value is free text that may itself contain `word=`: everything to the end of the line. */
const TRAILING_TEXT_KEYS = new Set(["Reason", "Comment", "Command", "Extra"]);

export type KeyValueRecord = Map<string, string>;

/** Splits one `scontrol -o` line into its fields. Never throws; unknown shapes give fewer fields. */
export function parseKeyValueLine(line: string): KeyValueRecord {
  const record: KeyValueRecord = new Map();
  const tokens = line.trim().split(/ +/);
  let current: string | undefined;
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i] as string;
    const match = current !== undefined && TRAILING_TEXT_KEYS.has(current) ? null : KEY.exec(token);
    if (match) {
      current = match[1] as string;
      record.set(current, match[2] as string);
    } else if (current !== undefined) {
      record.set(current, `${record.get(current)} ${token}`);
    }
  }
  return record;
}

/** One record per non-empty line. */
export function parseKeyValueLines(text: string): KeyValueRecord[] {
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map(parseKeyValueLine);
}
