/**
 * Single-quotes a value for bash: the result is one word whose value is exactly `value`, whatever it
 * holds ($(...), backticks, quotes, newlines). NUL cannot be represented and is refused.
 */
export function shellQuote(value: string): string {
  if (value.includes("\0")) throw new TypeError("a shell word cannot contain NUL");
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
