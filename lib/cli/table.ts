/**
 * A plain text table for people (`--json` prints the API's JSON instead). Cells are made printable
 * (control characters become '?') and cut at `maxCell` characters, since they come from the API.
 */
export function formatTable(
  headers: readonly string[],
  rows: readonly (readonly unknown[])[],
  maxCell = 60,
): string {
  const clean = (v: unknown) => {
    const text = (v === undefined || v === null ? "-" : String(v)).replace(/\p{Cc}/gu, "?");
    return text.length > maxCell ? `${text.slice(0, maxCell - 1)}…` : text;
  };
  const cells = [headers.map(clean), ...rows.map((r) => r.map(clean))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  return cells
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/** A time in a table, UTC to the second (docs/cli.md): "…T00:00:00.000Z" → "… 00:00:00Z". */
export const utcTime = (iso: string | undefined) => iso?.replace("T", " ").replace(/\.\d+Z$/, "Z");
