import { describe, expect, it } from "vitest";
import { parseConfig } from "../../../lib/core/index.js";
import { parsePlaceholderSpecs, placeholderName } from "../../../lib/ports/agent-protocol.js";
import {
  placeholderChanges,
  placeholderCreateArgs,
  placeholderSpecs,
} from "../../../scheduler-plugins/slurm/placeholders.js";

describe("placeholder FUTURE nodes per queue × instance type", () => {
  const config = parseConfig({
    instanceTypes: {
      "c5.xlarge": { vcpus: 4, memoryMiB: 8192 },
      "g4dn.xlarge": { vcpus: 4, memoryMiB: 16384, gpus: 1 },
    },
    queueConfigs: [
      {
        queueName: "gpu",
        features: ["ib"],
        expansionNodeConfigs: [
          { instanceType: "g4dn.xlarge", zone: "us-east-1a" },
          { instanceType: "c5.xlarge", zone: "us-east-1a" },
          { instanceType: "g4dn.xlarge", zone: "us-east-1b" },
        ],
      },
    ],
  });

  it("gives each type of each queue one node with its shape, every zone and the queue's features", () => {
    // Act
    const specs = placeholderSpecs(config);
    // Assess: memory as the bootstrap declares it (spec ÷ scaleUpMemRatio 1.1).
    expect(specs).toEqual([
      {
        name: placeholderName({
          queue: "gpu",
          instanceType: "g4dn.xlarge",
          cpus: 4,
          realMemoryMiB: 14894,
          gpus: 1,
          features: ["q_gpu", "type_g4dn.xlarge", "zone_us-east-1a", "zone_us-east-1b", "ib"],
        }),
        queue: "gpu",
        instanceType: "g4dn.xlarge",
        cpus: 4,
        realMemoryMiB: 14894,
        gpus: 1,
        features: ["q_gpu", "type_g4dn.xlarge", "zone_us-east-1a", "zone_us-east-1b", "ib"],
      },
      expect.objectContaining({
        instanceType: "c5.xlarge",
        gpus: 0,
        features: ["q_gpu", "type_c5.xlarge", "zone_us-east-1a", "ib"],
      }),
    ]);
    expect(specs[0]?.name).toMatch(/^ph-[0-9a-f]{16}$/);
  });

  it("renders scontrol create with State=FUTURE and the GRES count", () => {
    const [gpu, cpu] = placeholderSpecs(config);
    expect(gpu && placeholderCreateArgs(gpu)).toEqual([
      "create",
      `NodeName=${gpu?.name}`,
      "State=FUTURE",
      "CPUs=4",
      "RealMemory=14894",
      "Features=q_gpu,type_g4dn.xlarge,zone_us-east-1a,zone_us-east-1b,ib",
      "Gres=gpu:1",
    ]);
    expect(cpu && placeholderCreateArgs(cpu)).not.toContain("Gres=gpu:0");
  });

  it("names a placeholder after its whole spec: a changed shape, zone or feature is a new name", () => {
    // Prepare
    const names = (input: Parameters<typeof parseConfig>[0]) =>
      placeholderSpecs(parseConfig(input)).map((s) => s.name);
    const queue = (extra: object) => ({
      queueName: "gpu",
      expansionNodeConfigs: [{ instanceType: "g4dn.xlarge", zone: "us-east-1a" }],
      ...extra,
    });
    const types = { "g4dn.xlarge": { vcpus: 4, memoryMiB: 16384, gpus: 1 } };
    // Act
    const base = names({ instanceTypes: types, queueConfigs: [queue({})] });
    const variants = [
      names({
        instanceTypes: { "g4dn.xlarge": { vcpus: 8, memoryMiB: 16384, gpus: 1 } },
        queueConfigs: [queue({})],
      }),
      names({ instanceTypes: types, queueConfigs: [queue({ features: ["ib"] })] }),
      names({ instanceTypes: types, queueConfigs: [queue({ scaleUpMemRatio: 1.2 })] }),
      names({
        instanceTypes: types,
        queueConfigs: [
          queue({
            expansionNodeConfigs: [
              { instanceType: "g4dn.xlarge", zone: "us-east-1a" },
              { instanceType: "g4dn.xlarge", zone: "us-east-1b" },
            ],
          }),
        ],
      }),
    ];
    // Assess
    expect(names({ instanceTypes: types, queueConfigs: [queue({})] })).toEqual(base);
    for (const v of variants) expect(v).not.toEqual(base);
  });

  it("a sync creates what is missing and removes only placeholder names no longer wanted", () => {
    const specs = placeholderSpecs(config);
    const stale = "ph-00000000000000aa";
    const { create, remove } = placeholderChanges(specs, [specs[0]?.name ?? "", stale, "c4-a", "ph-x"]);
    expect(create.map((s) => s.name)).toEqual([specs[1]?.name]);
    expect(remove).toEqual([stale]);
  });

  it("a sync request must carry whole specs whose names are their digests; the error names the field", () => {
    const [spec] = placeholderSpecs(config);
    expect(parsePlaceholderSpecs({ placeholders: [spec] })).toEqual([spec]);
    const bad: [object, string][] = [
      [{ ...spec, name: "c4-a" }, "placeholders[0].name"],
      [{ ...spec, cpus: 0 }, "placeholders[0].cpus"],
      [{ ...spec, features: ["a,b State=IDLE"] }, "placeholders[0].features"],
      [{ ...spec, queue: "a;b" }, "placeholders[0].queue"],
      [{ ...spec, extra: 1 }, "placeholders[0].extra"],
    ];
    for (const [input, field] of bad) expect(() => parsePlaceholderSpecs([input])).toThrow(field);
  });
});
