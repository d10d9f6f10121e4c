import { describe, expect, it } from "vitest";
import {
  countedParts,
  formatConstraint,
  MAX_CONSTRAINT_LENGTH,
  parseConstraint,
  satisfies,
} from "../../../lib/core/constraint.js";

/**
 * Slurm's -C expressions as constraint.ts reads them: the exact error for each kind of bad text (with
 * its 1-based position), the limits, the normal form printed back, and node counts. Expected by hand.
 */

function parsed(text: string) {
  const result = parseConstraint(text);
  if ("error" in result) throw new Error(result.error);
  return result.constraint;
}
const errorOf = (text: string) => {
  const result = parseConstraint(text);
  return "error" in result ? result.error : undefined;
};

describe("parseConstraint: errors name the problem and its position", () => {
  it.each([
    ["a&", 'expected a feature name at position 3 of "a&"'],
    ["(a|b", `expected ')' at position 5 of "(a|b"`],
    ["[a|b)", `expected ']' at position 5 of "[a|b)"`],
    ["a*", `expected a node count after '*' at position 3 of "a*"`],
    ["a*0", 'a node count must be at least 1 at position 4 of "a*0"'],
    ["a!b", `unexpected '!' at position 2 of "a!b"`],
    ["a*1234567", `unexpected '7' at position 9 of "a*1234567"`],
    ["", "empty expression"],
    [" \t ", "empty expression"],
  ])("%j → %s", (text, error) => {
    expect(errorOf(text)).toBe(error);
  });

  it("reads up to MAX_CONSTRAINT_LENGTH characters, not one more", () => {
    expect(MAX_CONSTRAINT_LENGTH).toBe(1000);
    expect(errorOf("a".repeat(1000))).toBeUndefined();
    expect(errorOf("a".repeat(1001))).toBe("longer than 1000 characters");
  });

  it("reads 20 levels of brackets, not 21 (the position is just past the 21st)", () => {
    const nest = (n: number) => `${"(".repeat(n)}a${")".repeat(n)}`;
    expect(parsed(nest(20))).toEqual({ kind: "feature", name: "a" });
    expect(errorOf(nest(21))).toMatch(/^nested too deeply at position 22 of /);
  });

  it("quotes at most 80 characters of the expression", () => {
    const text = `${"a".repeat(100)}!`;
    expect(errorOf(text)).toBe(`unexpected '!' at position 101 of "${"a".repeat(80)}"`);
  });
});

describe("parseConstraint and formatConstraint: the normal form", () => {
  it.each([
    [" a & b ", "a&b"],
    ["a,b", "a&b"],
    ["a|b&c", "a|b&c"],
    ["(a|b)&c", "(a|b)&c"],
    ["[a|b]", "a|b"],
    ["a*3", "a*3"],
    ["(a&b)*2", "(a&b)*2"],
    ["[a*3&b*1]", "a*3&b*1"],
    ["gpu:a100|x.y=z/1+2-3_4", "gpu:a100|x.y=z/1+2-3_4"],
  ])("%j → %j", (text, normal) => {
    expect(formatConstraint(parsed(text))).toBe(normal);
  });

  it("AND binds tighter than OR", () => {
    expect(parsed("a|b&c")).toEqual({
      kind: "or",
      items: [
        { kind: "feature", name: "a" },
        {
          kind: "and",
          items: [
            { kind: "feature", name: "b" },
            { kind: "feature", name: "c" },
          ],
        },
      ],
    });
  });
});

describe("node counts", () => {
  it("one counted term is one part and nothing else", () => {
    const parts = countedParts(parsed("a*4"));
    expect(parts?.parts.map((p) => [formatConstraint(p.constraint), p.nodes])).toEqual([["a", 4]]);
    expect(parts?.rest).toBeUndefined();
  });

  it("several plain terms beside a count apply to every node, and are the rest", () => {
    const parts = countedParts(parsed("a*2&b&c"));
    expect(parts?.parts.map((p) => [formatConstraint(p.constraint), p.nodes])).toEqual([["a&b&c", 2]]);
    expect(parts?.rest && formatConstraint(parts.rest)).toBe("b&c");
  });

  it("an OR at the top has no parts", () => {
    expect(countedParts(parsed("a*2|b"))).toBeUndefined();
  });

  it("a node satisfies an AND with counts when it has the plain terms and one counted term", () => {
    const c = parsed("ib&a*2&b*1");
    expect(satisfies(c, new Set(["ib", "b"]))).toBe(true);
    expect(satisfies(c, new Set(["ib"]))).toBe(false);
    expect(satisfies(c, new Set(["a", "b"]))).toBe(false);
    expect(satisfies(parsed("a&b"), new Set(["a", "b"]))).toBe(true);
    expect(satisfies(parsed("(a|b)*2"), new Set(["b"]))).toBe(true);
  });
});
