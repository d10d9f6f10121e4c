import { mkdtemp, readFile, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parsePartitionSpecs } from "../../../lib/ports/agent-protocol.js";
import {
  applyPartitions,
  PartitionRollbackError,
  PREVIOUS_CONF_SUFFIX,
} from "../../../scheduler-plugins/slurm/partition-apply.js";
import {
  managedPartitions,
  renderSlurmConfParts,
  rewritePartitionSection,
} from "../../../scheduler-plugins/slurm/slurm-conf.js";

// A master's slurm.conf as the bootstrap writes it, with a person's own partition after ours.
const CONF = [
  "ClusterName=c1",
  "SlurmctldHost=master(10.0.0.5)",
  "# --- NowScale: dynamic cloud nodes (slurmd -Z) ---",
  "MaxNodeCount=1024",
  "NodeSet=ns_compute Feature=q_compute",
  "PartitionName=compute Nodes=ns_compute Default=YES State=UP MaxTime=INFINITE",
  "NodeName=gpu-box CPUs=8 State=UNKNOWN",
  "PartitionName=mine Nodes=gpu-box Default=NO",
  "",
].join("\n");

describe("rewritePartitionSection", () => {
  it("adds a queue after the first, worked by hand, keeping every other line", () => {
    // Act
    const out = rewritePartitionSection(CONF, [
      { name: "compute" },
      { name: "big-mem", defMemPerCpuMiB: 4000 },
    ]);

    // Assess
    expect(out).toBe(
      [
        "ClusterName=c1",
        "SlurmctldHost=master(10.0.0.5)",
        "# --- NowScale: dynamic cloud nodes (slurmd -Z) ---",
        "MaxNodeCount=1024",
        "NodeSet=ns_compute Feature=q_compute",
        "PartitionName=compute Nodes=ns_compute Default=YES State=UP MaxTime=INFINITE",
        "NodeSet=ns_big-mem Feature=q_big-mem",
        "PartitionName=big-mem Nodes=ns_big-mem Default=NO State=UP MaxTime=INFINITE DefMemPerCPU=4000",
        "NodeName=gpu-box CPUs=8 State=UNKNOWN",
        "PartitionName=mine Nodes=gpu-box Default=NO",
        "",
      ].join("\n"),
    );
    expect(managedPartitions(out)).toEqual(["compute", "big-mem"]);
  });

  it("removes a queue and gives the default to the one left; people's partition stays", () => {
    // Prepare
    const two = rewritePartitionSection(CONF, [{ name: "compute" }, { name: "gpu" }]);

    // Act
    const out = rewritePartitionSection(two, [{ name: "gpu" }]);

    // Assess
    expect(out.split("\n").slice(4, 7)).toEqual([
      "NodeSet=ns_gpu Feature=q_gpu",
      "PartitionName=gpu Nodes=ns_gpu Default=YES State=UP MaxTime=INFINITE",
      "NodeName=gpu-box CPUs=8 State=UNKNOWN",
    ]);
    expect(out).not.toContain("compute");
    expect(out).toContain("PartitionName=mine Nodes=gpu-box Default=NO");
  });

  it("is what the master's renderer writes: the same set twice changes nothing", () => {
    // Prepare
    const conf = `ClusterName=x\n${renderSlurmConfParts({ queues: [{ name: "a" }, { name: "b", default: true }] })}`;

    // Act
    const out = rewritePartitionSection(conf, [{ name: "a" }, { name: "b", default: true }]);

    // Assess
    expect(out).toBe(conf);
  });

  it.each([
    ["a shell escape", "a;reboot"],
    ["a second setting smuggled in", "q Nodes=ALL"],
    ["a newline", "q\nNodeName=evil"],
    ["a leading dash", "-q"],
    ["a path", "../etc"],
    ["empty", ""],
    ["64 characters", "a".repeat(64)],
  ])("refuses %s as a queue name", (_, name) => {
    // Act / Assess
    expect(() => rewritePartitionSection(CONF, [{ name }])).toThrow(TypeError);
    expect(() => parsePartitionSpecs({ partitions: [{ name }] })).toThrow(/partitions\[0\]\.name/);
  });

  it("refuses a file NowScale did not render, and a queue named like someone else's partition", () => {
    // Act / Assess
    expect(() =>
      rewritePartitionSection("ClusterName=x\nPartitionName=p Nodes=n1\n", [{ name: "p2" }]),
    ).toThrow(/no NowScale partition/);
    expect(() => rewritePartitionSection(CONF, [{ name: "compute" }, { name: "mine" }])).toThrow(
      /declared in slurm.conf by someone else/,
    );
  });
});

describe("parsePartitionSpecs", () => {
  it("names the bad field and refuses two defaults, duplicates and unknown fields", () => {
    // Act / Assess
    expect(() => parsePartitionSpecs({ partitions: [] })).toThrow(/partitions: must be a list of 1-64/);
    expect(() => parsePartitionSpecs({ partitions: [{ name: "a" }, { name: "a" }] })).toThrow(
      /partitions\[1\]\.name: "a" is listed twice/,
    );
    expect(() =>
      parsePartitionSpecs({
        partitions: [
          { name: "a", default: true },
          { name: "b", default: true },
        ],
      }),
    ).toThrow(/at most one may be the default/);
    expect(() => parsePartitionSpecs({ partitions: [{ name: "a", nodes: "ALL" }] })).toThrow(
      /partitions\[0\]\.nodes: unknown field/,
    );
    expect(() => parsePartitionSpecs({ partitions: [{ name: "a", defMemPerCpuMiB: 0.5 }] })).toThrow(
      /partitions\[0\]\.defMemPerCpuMiB/,
    );
    expect(parsePartitionSpecs([{ name: "a", default: false, defMemPerCpuMiB: 100 }])).toEqual([
      { name: "a", default: false, defMemPerCpuMiB: 100 },
    ]);
  });
});

describe("applyPartitions", () => {
  const setup = async () => {
    const dir = await mkdtemp(join(tmpdir(), "nowscale-part-"));
    const confPath = join(dir, "slurm.conf");
    await writeFile(confPath, CONF, { mode: 0o644 });
    return { dir, confPath };
  };

  it("writes the new file, keeps the previous one and reconfigures once", async () => {
    // Prepare
    const { confPath } = await setup();
    let reconfigures = 0;

    // Act
    const result = await applyPartitions([{ name: "compute" }, { name: "gpu" }], {
      confPath,
      reconfigure: async () => {
        reconfigures++;
      },
    });
    const again = await applyPartitions([{ name: "compute" }, { name: "gpu" }], {
      confPath,
      reconfigure: async () => {
        reconfigures++;
      },
    });

    // Assess
    expect(result).toEqual({ partitions: ["compute", "gpu"], added: ["gpu"], removed: [], changed: true });
    expect(again.changed).toBe(false);
    expect(reconfigures).toBe(1);
    expect(managedPartitions(await readFile(confPath, "utf8"))).toEqual(["compute", "gpu"]);
    expect(await readFile(`${confPath}${PREVIOUS_CONF_SUFFIX}`, "utf8")).toBe(CONF);
    expect((await stat(confPath)).mode & 0o777).toBe(0o644);
  });

  it("puts the previous file back when reconfigure fails, and reconfigures again with it", async () => {
    // Prepare
    const { confPath } = await setup();
    const seen: string[] = [];
    const reconfigure = async () => {
      seen.push(await readFile(confPath, "utf8"));
      if (seen.length === 1) throw new Error("slurmctld: Invalid partition specification");
    };

    // Act
    const error = await applyPartitions([{ name: "gpu" }], { confPath, reconfigure }).catch(
      (e: unknown) => e,
    );

    // Assess
    expect(error).toBeInstanceOf(PartitionRollbackError);
    expect((error as Error).message).toMatch(/rolled back.*Invalid partition specification/);
    expect(await readFile(confPath, "utf8")).toBe(CONF);
    expect(managedPartitions(seen[0] as string)).toEqual(["gpu"]);
    expect(seen[1]).toBe(CONF);
  });

  it("writes nothing and never reconfigures for a hostile name", async () => {
    // Prepare
    const { confPath } = await setup();
    let reconfigures = 0;

    // Act
    const error = await applyPartitions([{ name: "x\nSlurmUser=nobody" }], {
      confPath,
      reconfigure: async () => {
        reconfigures++;
      },
    }).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(TypeError);
    expect(await readFile(confPath, "utf8")).toBe(CONF);
    expect(reconfigures).toBe(0);
    await expect(stat(`${confPath}${PREVIOUS_CONF_SUFFIX}`)).rejects.toThrow(/ENOENT/);
  });
});
