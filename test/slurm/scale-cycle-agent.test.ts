import { mkdtemp } from "node:fs/promises";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createAgentServer } from "../../agent/server.js";
import { AGENT_VERSION } from "../../agent/version.js";
import { HttpAgentChannel } from "../../lib/agent-channels/http.js";
import { runScaleCycle } from "../../lib/control/scale-cycle.js";
import { type ConfigInput, parseConfig } from "../../lib/core/config.js";
import type { AgentChannel, JobNote } from "../../lib/ports/agent-channel.js";
import {
  startTestbed,
  stopTestbed,
  type Testbed,
  testbedUnavailableReason,
} from "../../lib/providers/local/slurm-testbed.js";
import { SlurmClient } from "../../scheduler-plugins/slurm/client.js";
import { collectReport } from "../../scheduler-plugins/slurm/collect.js";
import { runCommand } from "../../scheduler-plugins/slurm/exec.js";
import { placeholderSpecs } from "../../scheduler-plugins/slurm/placeholders.js";
import { controlBed } from "../support/control-bed.js";
import { startDynalite, type TestDynamo } from "../support/dynalite.js";

/**
 * Issue 12 end to end on a real Slurm 22.05: the real scale cycle (on dynalite) plans on the report of
 * the real agent server and acts through its signed HTTP API: job notes in the jobs' Comment (squeue
 * shows them), placeholder FUTURE nodes in step with the configuration. Own ports and no network (no
 * node joins); run under `flock /tmp/slurm-test.lock npm run test:slurm`.
 */
describe("the scale cycle through the real agent on a real Slurm", () => {
  const key = Buffer.from("job-notes-test-key-0123456789abcdef0123");
  let tb: Testbed;
  let db: TestDynamo;
  let server: Server;
  let baseUrl: string;

  const slurm = async (file: string, args: string[]) => {
    const r = await runCommand(file, args, { env: tb.env, timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`${file} ${args.join(" ")}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const sbatch = (args: string[]) => slurm("sbatch", ["--parsable", "--output=/dev/null", ...args]);
  /** What the user sees: `squeue -O jobid,comment` for one job. */
  const comment = async (id: string) =>
    (await slurm("squeue", ["--noheader", "--jobs", id, "-O", "comment:300"])).trim();
  const adminComment = async (id: string) =>
    (
      /AdminComment=(.*?)(?: [A-Z][A-Za-z]+=|$)/m.exec(await slurm("scontrol", ["show", "job", id]))?.[1] ??
      ""
    ).trim();

  beforeAll(async () => {
    const unavailable = testbedUnavailableReason();
    if (unavailable !== undefined) throw new Error(`the real-Slurm suite cannot run here: ${unavailable}`);
    db = await startDynalite();
    tb = await startTestbed({
      stateDir: await mkdtemp(join(tmpdir(), "nowscale-job-notes-")),
      clusterName: "jobnotes",
      queues: [{ name: "gpu", defMemPerCpuMiB: 1000 }],
      netnsPrefix: "nsjn-",
      slurmctldPort: 7517,
      slurmdPort: 7518,
    });
    const client = new SlurmClient({ env: tb.env });
    server = createAgentServer({ key, actions: client, report: () => collectReport(client, AGENT_VERSION) });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }, 180_000);

  afterEach(async () => {
    await slurm("scancel", ["--user=root"]);
  });

  afterAll(async () => {
    server?.close();
    if (tb !== undefined) await stopTestbed(tb);
    await db?.close();
  }, 180_000);

  it("a job no type fits says why in squeue's comment (AdminComment beside a user's comment), once; cleared when the configuration serves it", async () => {
    // Prepare: a queue whose type has 4 GPUs; two jobs asking 12 GPUs per node, one labelled by its user.
    const config = (gpus: number[]): ConfigInput => ({
      expansionBusyTime: 0,
      instanceTypes: Object.fromEntries(gpus.map((g) => [`g${g}`, { vcpus: 8, memoryMiB: 65536, gpus: g }])),
      queueConfigs: [
        {
          queueName: "gpu",
          maxSize: 10,
          expansionNodeConfigs: gpus.map((g) => ({ zone: "zone-a", instanceType: `g${g}` })),
        },
      ],
    });
    const bed = await controlBed(db, "notes", config([4]));
    bed.clock.advance(Date.now() + 60_000 - bed.clock.now());
    const plain = await sbatch(["-p", "gpu", "--gpus-per-node=12", "--wrap", "sleep 300"]);
    const labelled = await sbatch([
      "-p",
      "gpu",
      "--gpus-per-node=12",
      "--comment=project X",
      "--wrap",
      "true",
    ]);
    // An array's pending record: the agent names it N_[0-3] to scontrol.
    const array = await sbatch(["-p", "gpu", "--array=0-3", "--gpus-per-node=12", "--wrap", "true"]);
    const written: JobNote[][] = [];
    const http = new HttpAgentChannel({ baseUrl, key });
    const agent: AgentChannel = Object.assign(Object.create(http) as AgentChannel, {
      setJobNotes: async (notes: readonly JobNote[]) => {
        written.push([...notes]);
        await http.setJobNotes(notes);
      },
    });
    const cycle = (owner: string) =>
      runScaleCycle("notes", { ...bed.deps(owner), agent }, { windowMs: 0, pollMs: 15_000 });

    // Act: a cycle; another (a new scaler, no memory); then the queue gets a 16-GPU type.
    await cycle("inv-1");
    const shown = {
      plain: await comment(plain),
      labelled: await comment(labelled),
      array: await comment(array),
    };
    const admin = await adminComment(labelled);
    await cycle("inv-2");
    const cluster = await bed.store.getCluster("notes");
    await bed.store.updateCluster("notes", cluster?.version ?? 0, {
      autoscaling: config([4, 16]),
      now: bed.clock.now(),
    });
    await cycle("inv-3");

    // Assess
    const note = /^nowscale: no instance type of queue gpu fits \d+ CPU, \d+ MiB, 12 GPU per node$/;
    expect(shown.plain).toMatch(note);
    expect(shown.labelled).toBe("project X");
    expect(shown.array).toBe(shown.plain);
    expect(admin).toMatch(note);
    // The second scaler read the notes back from Slurm and wrote nothing; the third cleared both.
    const calls = written.map((notes) => ({
      writes: notes.map((n) => `${n.field} ${n.text === "" ? "clear" : "set"}`).sort(),
      jobs: notes.flatMap((n) => n.jobIds).sort(),
    }));
    const jobs = [plain, labelled, `${array}_0-3`].sort();
    expect(calls).toEqual([
      { writes: ["adminComment set", "comment set"], jobs },
      { writes: ["adminComment clear", "comment clear"], jobs },
    ]);
    expect(await comment(plain)).toBe("");
    expect(await comment(array)).toBe("");
    expect(await comment(labelled)).toBe("project X");
    expect(await adminComment(labelled)).toBe("");
    expect(bed.provider.calls.filter((c) => c.method === "launch")).not.toHaveLength(0);
  });

  it("keeps placeholder FUTURE nodes in step with the queue's types: -C and --gpus accepted in an empty queue, never capacity", async () => {
    // Prepare: a queue of one 4-GPU type; no node ever advertised type_p4 (slurmctld remembers a feature
    // of a deleted node, so the other test's type names would not do).
    const config = (type: string, gpus: number): ConfigInput => ({
      expansionBusyTime: 0,
      instanceTypes: { [type]: { vcpus: 8, memoryMiB: 65536, gpus } },
      queueConfigs: [
        { queueName: "gpu", maxSize: 10, expansionNodeConfigs: [{ zone: "zone-a", instanceType: type }] },
      ],
    });
    const bed = await controlBed(db, "placeholders", config("p4", 4));
    bed.clock.advance(Date.now() + 60_000 - bed.clock.now());
    const agent = new HttpAgentChannel({ baseUrl, key });
    const cycle = (owner: string) =>
      runScaleCycle("placeholders", { ...bed.deps(owner), agent }, { windowMs: 0, pollMs: 15_000 });
    const future = async () =>
      (await slurm("scontrol", ["--future", "--oneliner", "show", "node"]))
        .split("\n")
        .filter((l) => / State=FUTURE/.test(l))
        .map((l) => /^NodeName=(\S+) /.exec(l)?.[1]);
    const refused = async (args: string[]) => {
      const r = await runCommand("sbatch", ["--parsable", "--output=/dev/null", ...args], { env: tb.env });
      return r.code === 0 ? "" : r.stderr.trim();
    };
    // Clean slate: placeholders of the other test's cluster go with its configuration.
    await agent.syncPlaceholders([]);
    const before = await refused(["-p", "gpu", "-C", "type_p4", "--wrap", "true"]);

    // Act: a cycle; then the queue's type changes to an 8-GPU one and another cycle runs.
    await cycle("inv-1");
    const created = await future();
    const constrained = await sbatch(["-p", "gpu", "-C", "type_p4", "--wrap", "sleep 300"]);
    const gpuJob = await sbatch(["-p", "gpu", "--gpus-per-node=4", "--wrap", "sleep 300"]);
    await cycle("inv-2");
    const launchedBeside = bed.provider.calls.filter((c) => c.method === "launch").length;
    const cluster = await bed.store.getCluster("placeholders");
    await bed.store.updateCluster("placeholders", cluster?.version ?? 0, {
      autoscaling: config("p8", 8),
      now: bed.clock.now(),
    });
    await cycle("inv-3");

    // Assess
    const [p4] = placeholderSpecs(parseConfig(config("p4", 4)));
    const [p8] = placeholderSpecs(parseConfig(config("p8", 8)));
    expect(before).toMatch(/Invalid feature specification/);
    expect(created).toEqual([p4?.name]);
    expect(constrained).toMatch(/^\d+$/);
    expect(gpuJob).toMatch(/^\d+$/);
    // The placeholder is no capacity: the pending jobs were launched for.
    expect(launchedBeside).toBeGreaterThan(0);
    expect(await future()).toEqual([p8?.name]);
  });
});
