import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { buildOpenApi } from "../../../lib/control/api/openapi.js";
import { ROUTES } from "../../../lib/control/api/routes.js";

describe("docs/openapi.json", () => {
  it("is what the API's schemas generate (run `npm run build:openapi` when this fails)", () => {
    // Prepare
    const onDisk = JSON.parse(readFileSync(new URL("../../../docs/openapi.json", import.meta.url), "utf8"));
    // Act
    const generated = JSON.parse(JSON.stringify(buildOpenApi()));
    // Assess
    expect(onDisk).toEqual(generated);
  });

  it("describes the strict bodies: unknown keys refused, limits carried over", () => {
    // Prepare / Act
    // biome-ignore lint/suspicious/noExplicitAny: JSON Schema documents are read freely here
    const schemas = (buildOpenApi().components as { schemas: Record<string, any> }).schemas;
    // Assess
    expect(schemas.AddNodes.additionalProperties).toBe(false);
    expect(schemas.AddNodes.properties.count).toMatchObject({ minimum: 1, maximum: 100 });
    expect(schemas.CreateCluster.required).toEqual(
      expect.arrayContaining(["name", "region", "master", "autoscaling"]),
    );
    expect(schemas.AutoScalingConfiguration.properties.queueConfigs.minItems).toBe(1);
  });

  it("describes every route the API serves, and only those; every route with a body answers 415", () => {
    // Prepare
    const paths = buildOpenApi().paths as Record<
      string,
      Record<string, { responses: Record<string, unknown> }>
    >;
    // Act
    const documented = Object.entries(paths).flatMap(([path, ops]) =>
      Object.keys(ops)
        .filter((m) => m !== "parameters")
        .map((m) => `${m.toUpperCase()} ${path}`),
    );
    // Assess
    expect(documented.sort()).toEqual(ROUTES.map((r) => `${r.method} ${r.path}`).sort());
    for (const route of ROUTES.filter((r) => r.body === "json")) {
      expect(Object.keys(paths[route.path]?.[route.method.toLowerCase()]?.responses ?? {})).toContain("415");
    }
  });
});
