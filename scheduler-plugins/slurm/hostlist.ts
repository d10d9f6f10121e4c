import { SlurmParseError } from "./errors.js";

/** Refuses to expand expressions naming more hosts than this: a job list never needs more. */
const MAX_HOSTS = 100_000;

/**
 * Expands a Slurm hostlist ("c4-[a,b]", "node[01-03,7],gpu1") into node names, keeping zero padding.
 * Throws SlurmParseError on a malformed expression or one naming more than 100,000 hosts.
 */
export function expandHostlist(expr: string): string[] {
  const out: string[] = [];
  for (const part of splitTopLevel(expr.trim())) {
    if (part === "" || part === "(null)") continue;
    expandOne(part, out);
    if (out.length > MAX_HOSTS) throw new SlurmParseError("hostlist", `more than ${MAX_HOSTS} hosts`);
  }
  return out;
}

function splitTopLevel(expr: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i];
    if (c === "[") depth++;
    else if (c === "]") depth--;
    else if (c === "," && depth === 0) {
      parts.push(expr.slice(start, i));
      start = i + 1;
    }
    if (depth < 0 || depth > 1)
      throw new SlurmParseError("hostlist", `unbalanced brackets in "${expr.slice(0, 80)}"`);
  }
  if (depth !== 0) throw new SlurmParseError("hostlist", `unbalanced brackets in "${expr.slice(0, 80)}"`);
  parts.push(expr.slice(start));
  return parts;
}

function expandOne(part: string, out: string[]): void {
  const open = part.indexOf("[");
  if (open < 0) {
    out.push(part);
    return;
  }
  const close = part.indexOf("]", open);
  const prefix = part.slice(0, open);
  const suffixes: string[] = [];
  expandOne(part.slice(close + 1) || "\u0000", suffixes);
  for (const range of part.slice(open + 1, close).split(",")) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(range);
    if (!m) throw new SlurmParseError("hostlist", `bad range "${range.slice(0, 40)}"`);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    const width = (m[1] as string).length;
    if (to < from || to - from > MAX_HOSTS)
      throw new SlurmParseError("hostlist", `bad range "${range.slice(0, 40)}"`);
    for (let n = from; n <= to; n++) {
      const name = prefix + String(n).padStart(width, "0");
      for (const s of suffixes) out.push(s === "\u0000" ? name : name + s);
      if (out.length > MAX_HOSTS) throw new SlurmParseError("hostlist", `more than ${MAX_HOSTS} hosts`);
    }
  }
}
