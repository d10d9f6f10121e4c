import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { synthNowScale } from "./synth.js";
import { ResolvedTemplate } from "./template-iam.js";

/**
 * The deployed API serves what the API document promises: every path and method of docs/openapi.json
 * is a method of the template's REST API, with SigV4 (AWS_IAM) auth and its path parameters required,
 * and the API has no method the document does not describe.
 */

let t: ResolvedTemplate;
beforeAll(() => {
  t = new ResolvedTemplate(synthNowScale().template.toJSON() as never);
}, 120_000);

/** "METHOD /path" for every method of the template's REST API, with its properties. */
function deployedMethods(): Map<string, Record<string, unknown>> {
  const resources = new Map(t.ofType("AWS::ApiGateway::Resource"));
  const pathOf = (ref: unknown): string => {
    const id = (ref as { Ref?: string }).Ref;
    const r = id === undefined ? undefined : resources.get(id);
    if (r === undefined) return ""; // the RestApi's root resource
    return `${pathOf(r.Properties?.ParentId)}/${String(r.Properties?.PathPart)}`;
  };
  const out = new Map<string, Record<string, unknown>>();
  for (const [, m] of t.ofType("AWS::ApiGateway::Method")) {
    const p = m.Properties ?? {};
    const method = String(p.HttpMethod);
    if (method === "OPTIONS") continue;
    out.set(`${method} ${pathOf(p.ResourceId) || "/"}`, p);
  }
  return out;
}

describe("API Gateway against docs/openapi.json", () => {
  it("THEN every documented path and method is deployed with AWS_IAM and its path parameters required, and nothing else is", () => {
    // Prepare
    const doc = JSON.parse(readFileSync(new URL("../../docs/openapi.json", import.meta.url), "utf8")) as {
      paths: Record<string, Record<string, unknown>>;
    };
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops)
        .filter((m) => ["get", "put", "post", "delete", "patch"].includes(m))
        .map((m) => `${m.toUpperCase()} ${path}`),
    );
    const deployed = deployedMethods();

    // Assess
    expect(documented.length).toBeGreaterThan(0);
    expect([...deployed.keys()].sort()).toEqual([...documented].sort());
    for (const key of documented) {
      const method = deployed.get(key) ?? {};
      expect(method.AuthorizationType, key).toBe("AWS_IAM");
      const params = [...key.matchAll(/\{(\w+)\}/g)].map((m) => `method.request.path.${m[1]}`);
      for (const p of params)
        expect((method.RequestParameters as Record<string, boolean> | undefined)?.[p], `${key} ${p}`).toBe(
          true,
        );
    }
  });
});
