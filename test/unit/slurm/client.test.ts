import { describe, expect, it } from "vitest";
import { loadKey } from "../../../agent/key.js";
import { parseConfig } from "../../../lib/core/config.js";
import type { PlaceholderSpec } from "../../../lib/ports/agent-protocol.js";
import type { ArrivalRecord } from "../../../scheduler-plugins/slurm/arrivals.js";
import { SlurmClient } from "../../../scheduler-plugins/slurm/client.js";
import { collectReport } from "../../../scheduler-plugins/slurm/collect.js";
import {
  SlurmCommandError,
  SlurmNodeNotFoundError,
  SlurmUnavailableError,
} from "../../../scheduler-plugins/slurm/errors.js";
import type { CommandResult, CommandRunner } from "../../../scheduler-plugins/slurm/exec.js";
import { placeholderSpecs } from "../../../scheduler-plugins/slurm/placeholders.js";
import { fixture } from "./fixtures.js";

type Script = (file: string, args: readonly string[]) => Partial<CommandResult>;

/** A runner that answers from a script and records every call (file and arguments, as execFile gets them). */
function fakeRunner(script: Script): { runner: CommandRunner; calls: string[][] } {
  const calls: string[][] = [];
  const runner: CommandRunner = async (file, args) => {
    calls.push([file, ...args]);
    return { code: 0, stdout: "", stderr: "", ...script(file, args) };
  };
  return { runner, calls };
}

const healthy: Script = (file, args) => {
  if (args[0] === "--version") return { stdout: "slurm-wlm 22.05.8\n" };
  if (file === "squeue") return { stdout: fixture("squeue.json") };
  if (file === "sinfo") return { stdout: fixture("sinfo.json") };
  if (args.includes("partition")) return { stdout: fixture("scontrol-partitions.txt") };
  return {};
};

describe("SlurmClient actions", () => {
  it("drains with NowScale's reason prefix, as one argument, without a shell", async () => {
    // Prepare
    const { runner, calls } = fakeRunner(() => ({}));
    // Act
    await new SlurmClient({ runner }).drain("c4-a", "idle 300 s; rm -rf /");
    // Assess
    expect(calls).toEqual([
      ["scontrol", "update", "NodeName=c4-a", "State=DRAIN", "Reason=nowscale: idle 300 s; rm -rf /"],
    ]);
  });

  it("keeps a reason that already starts with nowscale", async () => {
    const { runner, calls } = fakeRunner(() => ({}));
    await new SlurmClient({ runner }).drain("c4-a", "nowscale: shrink");
    expect(calls[0]).toContain("Reason=nowscale: shrink");
  });

  it("refuses hostile node names and reasons before running anything", async () => {
    const { runner, calls } = fakeRunner(() => ({}));
    const client = new SlurmClient({ runner });
    await expect(client.drain("a;rm -rf /", "x")).rejects.toThrow(TypeError);
    await expect(client.drain("c4-a", "line\nbreak")).rejects.toThrow(TypeError);
    await expect(client.deleteNode("$(id)")).rejects.toThrow(TypeError);
    expect(calls).toEqual([]);
  });

  it("treats resuming a node in service and deleting a missing node as done", async () => {
    const { runner } = fakeRunner((_f, args) =>
      args[0] === "delete"
        ? { code: 1, stderr: "delete_node nodename=c4-a: Invalid node name specified" }
        : { code: 1, stderr: "slurm_update error: Invalid node state specified" },
    );
    const client = new SlurmClient({ runner });
    await expect(client.resume("c4-a")).resolves.toBeUndefined();
    await expect(client.deleteNode("c4-a")).resolves.toBeUndefined();
  });

  it("creates a placeholder node once: one that exists already is done, a hostile feature is refused", async () => {
    // Prepare: slurmctld answers the second create with its "already exists" error (seen on 22.05).
    let created = false;
    const { runner, calls } = fakeRunner(() => {
      if (!created) {
        created = true;
        return {};
      }
      return { code: 1, stderr: "scontrol: error: Node 'ph-1' already exists in the node table" };
    });
    const client = new SlurmClient({ runner });
    const spec = {
      name: "ph-1",
      queue: "gpu",
      instanceType: "g4",
      cpus: 4,
      realMemoryMiB: 1000,
      gpus: 1,
      features: ["q_gpu"],
    };
    // Act
    await client.createPlaceholder(spec);
    await client.createPlaceholder(spec);
    // Assess
    expect(calls).toHaveLength(2);
    expect(calls[0]).toEqual([
      "scontrol",
      "create",
      "NodeName=ph-1",
      "State=FUTURE",
      "CPUs=4",
      "RealMemory=1000",
      "Features=q_gpu",
      "Gres=gpu:1",
    ]);
    await expect(client.createPlaceholder({ ...spec, features: ["a,b State=IDLE"] })).rejects.toThrow(
      TypeError,
    );
    expect(calls).toHaveLength(2);
  });

  it("syncs placeholders: creates the missing, deletes stale ph- FUTURE nodes, never another node", async () => {
    // Prepare: Slurm holds one wanted placeholder, one stale, a FUTURE node of someone else's, a real node.
    const [wanted, missing] = placeholderSpecs(
      parseConfig({
        instanceTypes: { a: { vcpus: 4, memoryMiB: 8192 }, b: { vcpus: 8, memoryMiB: 8192, gpus: 2 } },
        queueConfigs: [
          {
            queueName: "q",
            expansionNodeConfigs: [
              { instanceType: "a", zone: "z" },
              { instanceType: "b", zone: "z" },
            ],
          },
        ],
      }),
    ) as [PlaceholderSpec, PlaceholderSpec];
    const stale = "ph-00000000000000aa";
    const listing = [
      `NodeName=${wanted.name} CPUTot=4 State=FUTURE+DYNAMIC_NORM`,
      `NodeName=${stale} CPUTot=4 State=FUTURE+DYNAMIC_NORM`,
      "NodeName=static-9 CPUTot=4 State=FUTURE",
      "NodeName=ph-00000000000000bb CPUTot=4 State=IDLE",
    ].join("\n");
    const { runner, calls } = fakeRunner((_f, args) => (args[0] === "--future" ? { stdout: listing } : {}));
    const client = new SlurmClient({ runner });
    // Act
    const result = await client.syncPlaceholders([wanted, missing]);
    const refused = client.syncPlaceholders([{ ...missing, name: "static-9" }]).catch((e: unknown) => e);
    // Assess
    expect(result).toEqual({ created: [missing.name], removed: [stale] });
    expect(calls.map((c) => c.slice(0, 3))).toEqual([
      ["scontrol", "--future", "--oneliner"],
      ["scontrol", "create", `NodeName=${missing.name}`],
      ["scontrol", "delete", `NodeName=${stale}`],
    ]);
    expect(String(await refused)).toContain("placeholders[0].name");
    expect(calls).toHaveLength(3);
  });

  it("names an unknown node on drain, an unreachable controller, and other failures", async () => {
    const unknown = new SlurmClient({
      runner: fakeRunner(() => ({ code: 1, stderr: "Invalid node name specified" })).runner,
    });
    await expect(unknown.drain("c4-x", "x")).rejects.toThrow(SlurmNodeNotFoundError);
    const down = new SlurmClient({
      runner: fakeRunner(() => ({
        code: 1,
        stderr: "slurm_update error: Unable to contact slurm controller (connect failure)",
      })).runner,
    });
    await expect(down.drain("c4-a", "x")).rejects.toThrow(SlurmUnavailableError);
    const busy = new SlurmClient({ runner: fakeRunner(() => ({ code: 1, stderr: "Node has jobs" })).runner });
    await expect(busy.deleteNode("c4-a")).rejects.toThrow(SlurmCommandError);
  });
});

describe("SlurmClient reads", () => {
  it("uses JSON on 22.05 and the format strings before", async () => {
    const json = fakeRunner(healthy);
    await new SlurmClient({ runner: json.runner }).jobs();
    expect(json.calls).toContainEqual(["squeue", "--all", "--json"]);
    const old = fakeRunner((file, args) =>
      args[0] === "--version"
        ? { stdout: "slurm 21.08.8\n" }
        : file === "squeue"
          ? { stdout: fixture("squeue-format.txt") }
          : {},
    );
    const { source, jobs } = await new SlurmClient({ runner: old.runner }).jobs();
    expect(source).toBe("format");
    expect(jobs.length).toBe(10);
    expect(old.calls.some((c) => c[0] === "squeue" && c.some((a) => a.startsWith("--format=")))).toBe(true);
  });
});

describe("collectReport", () => {
  it("gives an ok report from healthy commands", async () => {
    const report = await collectReport(
      new SlurmClient({ runner: fakeRunner(healthy).runner }),
      "0.1.0",
      () => 0,
    );
    expect(report.status).toBe("ok");
  });

  it("lists the placeholders slurmctld holds, and leaves them out rather than fail when they cannot be read", async () => {
    // Prepare
    const ph = "ph-0123456789abcdef";
    const withFuture: Script = (file, args) =>
      args[0] === "--future"
        ? { stdout: `NodeName=${ph} CPUTot=4 State=FUTURE+DYNAMIC_NORM\n` }
        : healthy(file, args);
    const failing: Script = (file, args) =>
      args[0] === "--future" ? { code: 1, stderr: "scontrol: error: boom" } : healthy(file, args);
    // Act
    const listed = await collectReport(new SlurmClient({ runner: fakeRunner(withFuture).runner }), "x");
    const left = await collectReport(new SlurmClient({ runner: fakeRunner(failing).runner }), "x");
    // Assess
    expect(listed).toMatchObject({ status: "ok", placeholders: [ph] });
    expect(left.status).toBe("ok");
    expect(left).not.toHaveProperty("placeholders");
  });

  it("counts the recent arrivals of each queue whose shapes it knows, and keeps the record in the store", async () => {
    // Prepare: the recorded squeue (all submitted at one second) and a 4-CPU placeholder of compute:
    //   compute's jobs of at most 4 CPUs: 2 + 2 + 3 + 1 + 1 + 1 = 10 (the 8-CPU ones are multi-node
    //   here); gpu has no known shape, so it is not counted.
    const ph = "ph-0123456789abcdef";
    const withFuture: Script = (file, args) =>
      args[0] === "--future"
        ? { stdout: `NodeName=${ph} CPUTot=4 AvailableFeatures=q_compute,type_t4,zone_a State=FUTURE\n` }
        : healthy(file, args);
    const submitted = 1795491942 * 1000;
    const saved: ArrivalRecord[] = [];
    const store = { load: async () => undefined, save: async (r: ArrivalRecord) => void saved.push(r) };
    // Act
    const report = await collectReport(
      new SlurmClient({ runner: fakeRunner(withFuture).runner }),
      "x",
      () => submitted + 30_000,
      store,
    );
    // Assess
    if (report.status !== "ok") throw new Error(report.error);
    expect(report.arrivals?.find((a) => a.windowS === 300)).toEqual({
      queue: "compute",
      windowS: 300,
      cpus: 10,
    });
    expect(new Set(report.arrivals?.map((a) => a.queue))).toEqual(new Set(["compute"]));
    expect(saved.map((r) => r.queues.map((q) => q.buckets))).toEqual([
      [[[Math.floor(submitted / 60_000), 10]]],
    ]);
  });

  it("says slurmctld is unreachable when squeue --json carries errors (exit 0, empty list)", async () => {
    const { runner } = fakeRunner((file, args) =>
      file === "squeue" ? { stdout: fixture("squeue-unreachable.json") } : healthy(file, args),
    );
    const report = await collectReport(new SlurmClient({ runner }), "0.1.0", () => 0);
    expect(report.status).toBe("slurmctld-unreachable");
    expect(report).not.toHaveProperty("jobs");
  });

  it("says slurmctld is unreachable when the fallback squeue cannot connect", async () => {
    const recorded = fixture("squeue-format-unreachable.txt").split("\n").slice(1).join("\n");
    const { runner } = fakeRunner((file, args) =>
      file === "squeue"
        ? { code: 1, stderr: recorded }
        : args[0] === "--version"
          ? { stdout: "slurm 21.08.8" }
          : {},
    );
    const report = await collectReport(new SlurmClient({ runner }), "0.1.0", () => 0);
    expect(report.status).toBe("slurmctld-unreachable");
  });

  it("reports an error, not an empty queue, when Slurm's output cannot be read", async () => {
    const { runner } = fakeRunner((file, args) =>
      file === "squeue" ? { stdout: "{not json" } : healthy(file, args),
    );
    const report = await collectReport(new SlurmClient({ runner }), "0.1.0", () => 0);
    expect(report).toMatchObject({ status: "error" });
    expect(report).not.toHaveProperty("jobs");
  });
});

describe("loadKey", () => {
  it("reads the key from the environment and refuses short keys without echoing them", async () => {
    await expect(loadKey(undefined, { NOWSCALE_AGENT_KEY: `  ${"k".repeat(32)}\n` })).resolves.toHaveLength(
      32,
    );
    const error = await loadKey(undefined, { NOWSCALE_AGENT_KEY: "secret-but-short" }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).not.toContain("secret-but-short");
    await expect(loadKey(undefined, {})).rejects.toThrow(/no signing key/);
  });
});
