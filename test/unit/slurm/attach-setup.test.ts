import { describe, expect, it } from "vitest";
import { readySetup } from "../../../lib/agent-channels/fake.js";
import { parseSlurmSetup, type SlurmSetup } from "../../../lib/ports/slurm-setup.js";
import {
  checkAttachSetup,
  controllerAddress,
  renderAttachConf,
} from "../../../scheduler-plugins/slurm/attach-checks.js";
import {
  parsePartitions,
  parseScontrolConfig,
  parseSlurmConfText,
  readSlurmConf,
} from "../../../scheduler-plugins/slurm/setup.js";

/** What Slurm 22.05.8 printed on the test bed (scontrol show config, an excerpt; show partition). */
const CONFIG_TEXT = `Configuration data as of 2026-11-30T17:10:29
ClusterName             = exp
MaxNodeCount            = 64
SlurmctldAddr           = (null)
SlurmctldHost[0]        = vm(192.168.231.1)
SlurmctldParameters     = enable_configless
SlurmctldPort           = 7617
SlurmdPort              = 7618
SLURM_CONF              = /tmp/attach-exp-x/slurm.conf
SLURM_VERSION           = 22.05.8
TreeWidth               = 50
`;
const PARTITIONS_TEXT = `PartitionName=burst AllowGroups=ALL AllowAccounts=ALL Default=NO NodeSets=nowscale_burst Nodes=dyn1,own1 State=UP TotalCPUs=2
PartitionName=plain AllowGroups=ALL Default=NO Nodes=own1 State=UP TotalCPUs=1
PartitionName=allp AllowGroups=ALL Default=NO Nodes=own1 State=DOWN TotalCPUs=1
`;
const CONF_TEXT = `# the user's slurm.conf
ClusterName=exp
nodeset=nowscale_burst   feature=q_burst   # lower case, as Slurm allows
NodeSet=gpus Feature=gpu
NodeName=own1 CPUs=1 RealMemory=500 State=CLOUD
PartitionName=DEFAULT MaxTime=60
PartitionName=burst Nodes=own1,nowscale_burst State=UP
PartitionName=plain Nodes=own1 Default=YES State=UP
Include extra.conf
`;
const EXTRA_TEXT = "PartitionName=allp Nodes=ALL State=DOWN\n";

async function setupFrom(conf = CONF_TEXT): Promise<SlurmSetup> {
  const config = parseScontrolConfig(CONFIG_TEXT);
  const files = new Map([
    ["/etc/slurm/slurm.conf", conf],
    ["/etc/slurm/extra.conf", EXTRA_TEXT],
  ]);
  const read = async (path: string) => {
    const text = files.get(path);
    if (text === undefined) throw new Error(`ENOENT: ${path}`);
    return text;
  };
  return parseSlurmSetup({
    agentVersion: "0.1.0",
    slurmVersion: config.get("SLURM_VERSION"),
    clusterName: config.get("ClusterName"),
    controllers: [{ host: "vm", address: "192.168.231.1" }],
    slurmctldPort: Number(config.get("SlurmctldPort")),
    slurmdPort: Number(config.get("SlurmdPort")),
    slurmctldParameters: [config.get("SlurmctldParameters")],
    maxNodeCount: Number(config.get("MaxNodeCount")),
    treeWidth: Number(config.get("TreeWidth")),
    partitions: parsePartitions(PARTITIONS_TEXT),
    conf: { path: "/etc/slurm/slurm.conf", ...(await readSlurmConf("/etc/slurm/slurm.conf", read)) },
    featureNodes: { count: 0, examples: [] },
  });
}

describe("reading a master's Slurm setup", () => {
  it("reads scontrol's config, partitions (node sets), and slurm.conf with its Include, keys in any case", async () => {
    // Prepare / Act
    const setup = await setupFrom();
    const parsed = parseSlurmConfText(CONF_TEXT);
    // Assess
    expect(parseScontrolConfig(CONFIG_TEXT).get("SlurmctldHost[0]")).toBe("vm(192.168.231.1)");
    expect(setup.partitions).toEqual([
      { name: "burst", nodeSets: ["nowscale_burst"], state: "UP" },
      { name: "plain", nodeSets: [], state: "UP" },
      { name: "allp", nodeSets: [], state: "DOWN" },
    ]);
    expect(parsed.nodeSets).toEqual([
      { name: "nowscale_burst", feature: "q_burst" },
      { name: "gpus", feature: "gpu" },
    ]);
    expect(parsed.partitions.map((p) => p.name)).toEqual(["burst", "plain"]);
    expect(parsed.includes).toEqual(["extra.conf"]);
    expect(setup.conf?.partitions.map((p) => `${p.name}:${p.nodes}`)).toEqual([
      "burst:own1,nowscale_burst",
      "plain:own1",
      "allp:ALL",
    ]);
    expect(controllerAddress(setup)).toBe("192.168.231.1");
  });

  it("an unreadable Include is skipped, an unreadable slurm.conf is an error", async () => {
    // Prepare
    const read = async (path: string) => {
      if (path === "/a/slurm.conf") return "Include /missing.conf\nNodeSet=x Feature=q_x\n";
      throw new Error("ENOENT");
    };
    // Act
    const found = await readSlurmConf("/a/slurm.conf", read);
    const missing = await readSlurmConf("/b/slurm.conf", read).then(
      () => "read",
      (e: Error) => e.message,
    );
    // Assess
    expect(found.nodeSets).toEqual([{ name: "x", feature: "q_x" }]);
    expect(missing).toBe("ENOENT");
  });
});

describe("what attach requires of the master's Slurm", () => {
  it("passes a partition with a NodeSet selecting q_<partition>, and one with Nodes=ALL; notes TreeWidth and a DOWN partition", async () => {
    // Prepare
    const setup = await setupFrom();
    // Act
    const check = checkAttachSetup(setup, ["burst", "allp"]);
    // Assess
    expect(check.errors).toEqual([]);
    expect(check.joins).toEqual([
      { partition: "burst", by: "NodeSet nowscale_burst" },
      { partition: "allp", by: "Nodes=ALL" },
    ]);
    expect(check.notes.map((n) => n.check)).toEqual(["treeWidth", "partition"]);
  });

  it("names what is missing: a partition without the NodeSet, one that does not exist, configless, MaxNodeCount, old Slurm, featured nodes", async () => {
    // Prepare
    const setup: SlurmSetup = {
      ...(await setupFrom()),
      slurmVersion: "21.08.8",
      slurmctldParameters: ["idle_on_node_suspend"],
      featureNodes: { count: 1, examples: ["old-cloud-1"] },
    };
    delete setup.maxNodeCount;
    // Act
    const check = checkAttachSetup(setup, ["plain", "nope"]);
    // Assess
    expect(
      check.errors.map((e) => `${e.check}${e.partition === undefined ? "" : ` ${e.partition}`}`),
    ).toEqual(["version", "configless", "maxNodeCount", "featureNodes", "nodeSet plain", "partition nope"]);
    expect(check.errors[4]?.message).toBe(
      'partition plain takes no node with feature q_plain: add "NodeSet=nowscale_plain Feature=q_plain" to slurm.conf and nowscale_plain to the partition\'s Nodes=',
    );
  });

  it("a NodeSet with another feature does not count; one in slurm.conf that slurmctld has not read says to reconfigure", async () => {
    // Prepare
    const wrongFeature = await setupFrom(CONF_TEXT.replace("feature=q_burst", "feature=q_other"));
    const notRead = await setupFrom(
      CONF_TEXT.replace(
        "PartitionName=plain Nodes=own1",
        "NodeSet=nowscale_plain Feature=q_plain\nPartitionName=plain Nodes=own1,nowscale_plain",
      ),
    );
    // Act
    const wrong = checkAttachSetup(wrongFeature, ["burst"]);
    const stale = checkAttachSetup(notRead, ["plain"]);
    // Assess
    expect(wrong.errors.map((e) => e.check)).toEqual(["nodeSet"]);
    expect(stale.errors[0]?.message).toContain("slurmctld has not read it yet: run scontrol reconfigure");
  });

  it("the install command's lines make a failing setup pass: the partition's own line gains the NodeSet", async () => {
    // Prepare
    const setup: SlurmSetup = { ...(await setupFrom()), slurmctldParameters: ["idle_on_node_suspend"] };
    // Act
    const lines = renderAttachConf(setup, ["burst", "plain"]);
    const fixed = parseSlurmConfText(
      `${CONF_TEXT.replace(/^PartitionName=plain.*$/m, "")}\n${lines.filter((l) => !l.startsWith("#")).join("\n")}`,
    );
    const after: SlurmSetup = {
      ...setup,
      slurmctldParameters: ["idle_on_node_suspend", "enable_configless"],
      treeWidth: 65533,
      partitions: setup.partitions.map((p) =>
        p.name === "plain" ? { ...p, nodeSets: ["nowscale_plain"] } : p,
      ),
      conf: { path: "/etc/slurm/slurm.conf", nodeSets: fixed.nodeSets, partitions: fixed.partitions },
    };
    // Assess
    expect(lines).toEqual([
      "# replaces your SlurmctldParameters line, if you have one",
      "SlurmctldParameters=idle_on_node_suspend,enable_configless",
      "# recommended with dynamic nodes",
      "TreeWidth=65533",
      "NodeSet=nowscale_plain Feature=q_plain",
      "# replaces your PartitionName=plain line:",
      "PartitionName=plain Nodes=own1,nowscale_plain Default=YES State=UP",
    ]);
    expect(checkAttachSetup(after, ["burst", "plain"]).errors).toEqual([]);
    expect(renderAttachConf(after, ["burst", "plain"])).toEqual([]);
  });

  it("the fake agent's default setup is ready for its partitions", () => {
    // Prepare / Act
    const check = checkAttachSetup(readySetup(["compute", "gpu"]), ["compute", "gpu"]);
    // Assess
    expect(check).toEqual({
      errors: [],
      notes: [],
      joins: [
        { partition: "compute", by: "NodeSet nowscale_compute" },
        { partition: "gpu", by: "NodeSet nowscale_gpu" },
      ],
    });
  });
});
