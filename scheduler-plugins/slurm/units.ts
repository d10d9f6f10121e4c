/** Small, total conversions of Slurm's textual numbers. Each returns undefined rather than throwing. */

const SIZE = /^(\d+(?:\.\d+)?)([KMGTP]?)$/i;
const FACTOR_TO_MIB: Record<string, number> = {
  K: 1 / 1024,
  "": 1,
  M: 1,
  G: 1024,
  T: 1024 * 1024,
  P: 1024 * 1024 * 1024,
};

/** "2000M", "4G", "512" (MiB, Slurm's default unit) → MiB; "UNLIMITED", "N/A", "" → undefined. */
export function parseMemMiB(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const m = SIZE.exec(text.trim());
  if (!m) return undefined;
  const value = Number(m[1]) * (FACTOR_TO_MIB[(m[2] ?? "").toUpperCase()] ?? 1);
  return Number.isFinite(value) ? Math.ceil(value) : undefined;
}

/** A non-negative safe integer from a string such as "4"; anything else → undefined. */
export function parseCount(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d{1,15}$/.test(text.trim())) return undefined;
  return Number(text.trim());
}

/**
 * A non-negative safe integer from JSON. Slurm 22.05 writes a plain number or null for "not set";
 * 23.02+ (OpenAPI v0.0.39+) writes {"set": true, "infinite": false, "number": 4}, unset or infinite → undefined.
 */
export function jsonCount(value: unknown): number | undefined {
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    const v = value as { set?: unknown; infinite?: unknown; number?: unknown };
    return v.set === true && v.infinite !== true ? jsonCount(v.number) : undefined;
  }
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

/** A JSON string, or the first string of a list (23.02+ writes job_state and shared as lists); else "". */
export function jsonText(value: unknown): string {
  if (Array.isArray(value)) return typeof value[0] === "string" ? value[0] : "";
  return typeof value === "string" ? value : "";
}

/** GPUs in a GRES/TRES list: "gres:gpu:2", "gres/gpu:a100:2", "gpu:2(S:0-1)", "gpu" (one) → 2, 2, 2, 1. */
export function gpusIn(list: string | undefined): number {
  if (!list) return 0;
  let total = 0;
  for (const item of list.split(",")) {
    const m = /^(?:gres[:/])?gpu(?::([^:(]+))?(?::(\d+))?(?:\(.*\))?$/i.exec(item.trim());
    if (!m) continue;
    // "gpu:2" puts the count where a type would be; "gpu:a100:2" has both.
    const count = m[2] ?? (m[1] !== undefined && /^\d+$/.test(m[1]) ? m[1] : "1");
    total += Number(count);
  }
  return Number.isSafeInteger(total) ? total : 0;
}

/** "2026-11-24T03:27:32" (scontrol/squeue, local time) → epoch ms; "Unknown"/"None"/"N/A" → undefined. */
export function parseSlurmLocalTime(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/.test(text.trim())) return undefined;
  const ms = Date.parse(text.trim());
  return Number.isFinite(ms) ? ms : undefined;
}
