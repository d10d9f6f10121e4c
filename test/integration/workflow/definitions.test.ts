import { describe, expect, it } from "vitest";
import {
  createClusterDefinition,
  definitionJson,
  deleteClusterDefinition,
  type State,
  TASK_FUNCTION_ARN_PLACEHOLDER,
} from "../../../lib/workflow/index.js";
import { taskInputSchema } from "../../../lib/workflow/tasks/dispatch.js";

const definitions = { create: createClusterDefinition(), delete: deleteClusterDefinition() };

describe.each(Object.entries(definitions))("the %s definition", (_name, definition) => {
  const states = Object.entries(definition.States) as [string, State][];
  const tasks = states.flatMap(([name, s]) => (s.Type === "Task" ? [[name, s] as const] : []));

  it("invokes only the workflow-task Lambda, through the substitution placeholder", () => {
    for (const [, task] of tasks) expect(task.Resource).toBe(TASK_FUNCTION_ARN_PLACEHOLDER);
    expect(definitionJson(definition)).toContain("$" + "{TaskFunctionArn}");
  });

  it("names a known task in every Task state", () => {
    const known = taskInputSchema.options.map((o) => o.shape.task.value);
    for (const [, task] of tasks) expect(known).toContain(task.Parameters.task);
  });

  it("retries throttling with full jitter and never retries validation errors", () => {
    for (const [, task] of tasks) {
      const retry = task.Retry ?? [];
      expect(retry[0]?.ErrorEquals).toContain("ValidationError");
      expect(retry[0]?.MaxAttempts).toBe(0);
      const throttle = retry.find((r) => r.ErrorEquals.includes("ThrottledError"));
      expect(throttle?.JitterStrategy).toBe("FULL");
      expect(throttle?.BackoffRate).toBeGreaterThan(1);
    }
  });

  it("catches every failure of every Task state except the final failure record", () => {
    for (const [name, task] of tasks) {
      expect(task.Catch?.[0]?.ErrorEquals, name).toEqual(["States.ALL"]);
    }
  });

  it("only points at states that exist", () => {
    const names = new Set(Object.keys(definition.States));
    expect(names.has(definition.StartAt)).toBe(true);
    for (const [, s] of states) {
      const targets = [
        "Next" in s ? s.Next : undefined,
        ...(s.Type === "Task" ? (s.Catch ?? []).map((c) => c.Next) : []),
        ...(s.Type === "Choice" ? [...s.Choices.map((c) => c.Next), s.Default] : []),
      ].filter((t): t is string => t !== undefined);
      for (const t of targets) expect(names.has(t), t).toBe(true);
    }
  });
});
