import { describe, expect, it } from "vitest";
import { parseConfig } from "../../../lib/core/index.js";
import {
  placeholderCreateArgs,
  placeholderName,
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
        name: placeholderName("gpu", "g4dn.xlarge"),
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
});
