/**
 * Lookups of user-chosen names (instance types, queues, zones) in plain records. `record[name]` also
 * finds what every object inherits: `catalog["constructor"]` is the Object function, truthy where a
 * shape was expected, and `health["toString"].protected` reads a function's property. These helpers see
 * only the record's own entries, so such names are simply absent (or work, where they are legitimate).
 */

/** The record's own value for `key`; undefined for an absent key and for inherited members. */
export function ownValue<T>(record: Readonly<Record<string, T>> | undefined, key: string): T | undefined {
  return record !== undefined && Object.hasOwn(record, key) ? record[key] : undefined;
}

/** Whether `key` is one of the record's own entries (never an inherited member such as `constructor`). */
export function hasOwnKey(record: object | undefined, key: string): boolean {
  return record !== undefined && Object.hasOwn(record, key);
}

/** An empty record without a prototype: nothing is inherited and `__proto__` is an ordinary key. */
export function emptyRecord<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}
