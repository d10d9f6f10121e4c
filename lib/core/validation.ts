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

/** Turns zod's issues into ones a user can act on: unknown keys are named with their full path. */
export function issuesFromZod(error: z.ZodError): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  for (const issue of error.issues) {
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        out.push({
          path: formatPath([...issue.path, key]),
          message: "unknown key: remove it or check its spelling (names are camelCase)",
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
  if (!result.success) throw new ValidationError(source, issuesFromZod(result.error));
  return result.data;
}
