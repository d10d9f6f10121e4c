/**
 * Slurm's node constraint expressions (sbatch -C / --constraint), read the way Slurm 22.05 documents
 * them: a feature name, `a&b` (AND), `a|b` (OR), `[a|b]` (matching OR: all nodes share one of them),
 * `a*3` (node counts), `[a*3&b*1]` (several counts) and parentheses `[(a&b)*2&c*1]`. AND binds tighter
 * than OR. Pure; nothing here throws on user text: parseConstraint returns an error message instead.
 */

export type Constraint =
  | { kind: "feature"; name: string }
  | { kind: "and"; items: Constraint[] }
  | { kind: "or"; items: Constraint[] }
  /** `expr*count`: `count` of the job's nodes satisfy `expr`. */
  | { kind: "count"; expr: Constraint; count: number };

/** Slurm feature names: what sbatch accepts between the operators. */
const NAME = /^[A-Za-z0-9_.:+=/-]+/;

/** Longest expression read; Slurm's own limit on a job's features is larger, but no real one comes close. */
export const MAX_CONSTRAINT_LENGTH = 1000;

/** Parses an expression; `{ error }` names the position and the problem. Brackets are read as grouping. */
export function parseConstraint(text: string): { constraint: Constraint } | { error: string } {
  if (text.length > MAX_CONSTRAINT_LENGTH)
    return { error: `longer than ${MAX_CONSTRAINT_LENGTH} characters` };
  const source = text.replace(/\s+/g, "");
  if (source === "") return { error: "empty expression" };
  let pos = 0;
  let depth = 0;
  const fail = (message: string): never => {
    throw new ConstraintSyntaxError(`${message} at position ${pos + 1} of "${source.slice(0, 80)}"`);
  };

  // or := and ('|' and)* ; and := unit ('&' unit)* ; unit := atom ('*' digits)? ; atom := name | '(' or ')' | '[' or ']'
  const parseOr = (): Constraint => {
    const items = [parseAnd()];
    while (source[pos] === "|") {
      pos++;
      items.push(parseAnd());
    }
    return items.length === 1 ? (items[0] as Constraint) : { kind: "or", items };
  };
  const parseAnd = (): Constraint => {
    const items = [parseUnit()];
    while (source[pos] === "&" || source[pos] === ",") {
      // Slurm reads ',' as AND too (the form it prints back for some expressions).
      pos++;
      items.push(parseUnit());
    }
    return items.length === 1 ? (items[0] as Constraint) : { kind: "and", items };
  };
  const parseUnit = (): Constraint => {
    const expr = parseAtom();
    if (source[pos] !== "*") return expr;
    pos++;
    const digits = /^\d{1,6}/.exec(source.slice(pos))?.[0];
    if (digits === undefined) fail("expected a node count after '*'");
    pos += (digits as string).length;
    const count = Number(digits);
    if (count < 1) fail("a node count must be at least 1");
    return { kind: "count", expr, count };
  };
  const parseAtom = (): Constraint => {
    const open = source[pos];
    if (open === "(" || open === "[") {
      const close = open === "(" ? ")" : "]";
      pos++;
      depth++;
      if (depth > 20) fail("nested too deeply");
      const inner = parseOr();
      if (source[pos] !== close) fail(`expected '${close}'`);
      pos++;
      depth--;
      return inner;
    }
    const name = NAME.exec(source.slice(pos))?.[0];
    if (name === undefined) fail("expected a feature name");
    pos += (name as string).length;
    return { kind: "feature", name: name as string };
  };

  try {
    const constraint = parseOr();
    if (pos < source.length) fail(`unexpected '${source[pos]}'`);
    return { constraint };
  } catch (error) {
    if (error instanceof ConstraintSyntaxError) return { error: error.message };
    throw error;
  }
}

class ConstraintSyntaxError extends Error {}

/** True when one node with these features satisfies the expression (counts read as "at least some nodes"). */
export function satisfies(constraint: Constraint, features: ReadonlySet<string>): boolean {
  switch (constraint.kind) {
    case "feature":
      return features.has(constraint.name);
    case "and": {
      // Counted parts ask for different nodes (`[a*3&b*1]`): a node needs the plain parts and, when
      // there are counted ones, one of them. Jobs with counts are split into parts before this is asked.
      const counted = constraint.items.filter((c) => c.kind === "count");
      const plain = constraint.items.filter((c) => c.kind !== "count");
      return (
        plain.every((c) => satisfies(c, features)) &&
        (counted.length === 0 || counted.some((c) => satisfies(c, features)))
      );
    }
    case "or":
      return constraint.items.some((c) => satisfies(c, features));
    case "count":
      return satisfies(constraint.expr, features);
  }
}

/**
 * The counted parts of an expression (`[a*3&b*1]` → a: 3 nodes, b: 1 node; `a*4` → a: 4 nodes), or
 * undefined when it has no node counts at top level. Nodes beyond the counted ones satisfy `rest`.
 */
export function countedParts(
  constraint: Constraint,
): { parts: { constraint: Constraint; nodes: number }[]; rest: Constraint | undefined } | undefined {
  if (constraint.kind === "count") {
    return { parts: [{ constraint: constraint.expr, nodes: constraint.count }], rest: undefined };
  }
  if (constraint.kind !== "and" || !constraint.items.some((c) => c.kind === "count")) return undefined;
  const parts: { constraint: Constraint; nodes: number }[] = [];
  const plain: Constraint[] = [];
  for (const item of constraint.items) {
    if (item.kind === "count") parts.push({ constraint: item.expr, nodes: item.count });
    else plain.push(item);
  }
  const rest =
    plain.length === 0 ? undefined : plain.length === 1 ? plain[0] : { kind: "and" as const, items: plain };
  // Plain terms beside counts apply to every node (Slurm: `a*2&b` means all nodes have b, two have a).
  if (rest !== undefined) {
    for (const part of parts) part.constraint = { kind: "and", items: [part.constraint, rest] };
  }
  return { parts, rest };
}

/** The expression as Slurm would print it, normalised (for reasons and tests). */
export function formatConstraint(constraint: Constraint): string {
  switch (constraint.kind) {
    case "feature":
      return constraint.name;
    case "and":
      return constraint.items
        .map((c) => (c.kind === "or" ? `(${formatConstraint(c)})` : formatConstraint(c)))
        .join("&");
    case "or":
      return constraint.items.map(formatConstraint).join("|");
    case "count": {
      const inner = formatConstraint(constraint.expr);
      return `${constraint.expr.kind === "feature" ? inner : `(${inner})`}*${constraint.count}`;
    }
  }
}
