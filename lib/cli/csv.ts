/**
 * CSV as RFC 4180 writes it, for `--csv`: fields separated by commas, records by CRLF, a field quoted
 * when it holds a comma, a double quote, CR or LF, or starts or ends with a space, and a double quote
 * inside a quoted field doubled. null and undefined are empty fields; numbers are written as JavaScript
 * prints them (no thousands separators, '.' as the decimal point).
 *
 * A cell starting with =, +, - or @ is a formula to a spreadsheet (CSV injection). The values written
 * here are NowScale's own (allow-listed names, times, numbers), so such a cell can only be a negative
 * number, and is left as it is.
 *
 * Own code rather than a package: the project has no CSV library yet and these twenty lines are the whole
 * of what `--csv` needs (csv-stringify would do the same; see docs/cli.md).
 */
export function toCsv(headers: readonly string[], rows: readonly (readonly unknown[])[]): string {
  return `${[headers, ...rows].map((r) => r.map(field).join(",")).join("\r\n")}\r\n`;
}

function field(value: unknown): string {
  if (value === null || value === undefined) return "";
  const text = typeof value === "string" ? value : String(value);
  return /[",\r\n]|^ | $/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}
