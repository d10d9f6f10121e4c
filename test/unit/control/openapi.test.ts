import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { buildOpenApi } from "../../../lib/control/api/openapi.js";

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
});
