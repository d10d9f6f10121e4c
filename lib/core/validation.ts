import { distance } from "fastest-levenshtein";
import type { z } from "zod";

/** One problem found in user input: where it is (`queueConfigs[0].scaleOutRatio`) and what to do. */
export interface ValidationIssue {
  path: string;
  message: string;
}

/**
 * Bad input, named field by field. Thrown by the parse functions at the edge (CLI, API, agent report);
 * nothing has been changed when it is thrown.
 */
export class ValidationError extends Error {
  override readonly name = "ValidationError";
  constructor(
    readonly source: string,
    readonly issues: readonly ValidationIssue[],
  ) {
    super(
      `${source} is invalid:\n${issues.map((i) => `  ${i.path || "(top level)"}: ${i.message}`).join("\n")}`,
    );
  }
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out === "" ? String(part) : `.${String(part)}`;
  }
  return out;
}

const MAX_SUGGESTIONS = 20;

/**
 * Turns zod's issues into ones a user can act on: unknown keys are named with their full path and with
 * the key of `schema` probably meant (`shrinkIdleTme` → `shrinkIdleTime`).
 */
export function issuesFromZod(error: z.ZodError, schema: z.ZodType): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  for (const issue of error.issues) {
    if (issue.code === "unrecognized_keys") {
      const known = keysAt(schema, issue.path);
      for (const key of issue.keys) {
        // The first few only: a body of thousands of made-up keys costs no edit-distance tables.
        const meant = out.length < MAX_SUGGESTIONS ? closestKey(key, known) : undefined;
        out.push({
          path: formatPath([...issue.path, key]),
          message:
            meant === undefined
              ? "unknown key: remove it or check its spelling (names are camelCase)"
              : `unknown key: did you mean "${meant}"? (names are camelCase)`,
        });
      }
    } else if (issue.code === "invalid_key") {
      // A bad record key (e.g. an instance type name): say which key and why.
      const why = issue.issues.map((i) => i.message).join("; ");
      out.push({ path: formatPath(issue.path), message: `bad key: ${why}` });
    } else {
      out.push({ path: formatPath(issue.path), message: issue.message });
    }
  }
  return out;
}

export function parseWith<S extends z.ZodType>(schema: S, input: unknown, source: string): z.output<S> {
  const result = schema.safeParse(input);
  if (!result.success) throw new ValidationError(source, issuesFromZod(result.error, schema));
  return result.data;
}

/** What a schema node is, as far as finding an object's keys needs (zod 4's `_zod.def`). */
interface SchemaDef {
  type?: string;
  innerType?: unknown;
  in?: unknown;
  element?: unknown;
  valueType?: unknown;
  shape?: Record<string, unknown>;
}

const WRAPPERS = new Set(["optional", "default", "prefault", "nullable", "nonoptional", "readonly", "catch"]);

/** The definition under any wrappers (optional, default, a transform's input side). */
function unwrap(schema: unknown): SchemaDef | undefined {
  const def = (schema as { _zod?: { def?: SchemaDef } } | undefined)?._zod?.def;
  if (def?.type === "pipe") return unwrap(def.in);
  return WRAPPERS.has(def?.type ?? "") ? unwrap(def?.innerType) : def;
}

/** The schema one step down `part` (an object's key, an array's or a record's entry). */
function childOf(def: SchemaDef | undefined, part: PropertyKey): unknown {
  if (def?.type === "array") return def.element;
  if (def?.type === "record") return def.valueType;
  const shape = def?.shape ?? {};
  return typeof part === "string" && Object.hasOwn(shape, part) ? shape[part] : undefined;
}

/** The keys the object schema at `path` takes (zod reports an unknown key at its object's path). */
function keysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let def = unwrap(schema);
  for (const part of path) def = unwrap(childOf(def, part));
  return Object.keys(def?.shape ?? {});
}

/** The known key a mistyped one most likely meant: the same but for case, or at most 2 edits away. */
function closestKey(key: string, known: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  let best: string | undefined;
  // One more than the edits allowed: a short key must be nearly right to suggest anything.
  let bestDistance = Math.min(2, Math.floor(key.length / 3)) + 1;
  for (const candidate of known) {
    // Keys are short and the first 20 unknown ones only are looked at: the full table is cheap.
    const d = distance(lower, candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}
