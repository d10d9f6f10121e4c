import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it, vi } from "vitest";
import { main } from "../../../agent/main.js";
import { placeholderName } from "../../../lib/ports/agent-protocol.js";

/** A Slurm bin dir whose scontrol records its arguments and answers like Slurm for node "ghost" and "down". */
function fakeSlurm(): { dir: string; calls: () => string[] } {
  const dir = mkdtempSync(join(tmpdir(), "nowscale-scontrol-"));
  const log = join(dir, "calls");
  writeFileSync(log, "");
  writeFileSync(
    join(dir, "scontrol"),
    `#!/bin/bash
printf '%s\\n' "$*" >> '${log}'
case "$*" in
  *NodeName=ghost*) echo "slurm_update error: Invalid node name specified" >&2; exit 1 ;;
  *NodeName=down*) echo "slurm_load_node error: Unable to contact slurm controller (connect failure)" >&2; exit 1 ;;
  *JobId=5*) echo "Requested partition configuration not available now for job 5" >&2; exit 1 ;;
  *JobId=6*) echo "Invalid job id specified for job 6" >&2; exit 1 ;;
  *JobId=7*) echo "Access/permission denied for job 7" >&2; exit 1 ;;
  *JobId=8*) echo "Unable to contact slurm controller (connect failure)" >&2; exit 1 ;;
  "--future --oneliner show node") echo "NodeName=ph-00000000000000aa CPUTot=4 State=FUTURE+DYNAMIC_NORM" ;;
esac
exit 0
`,
  );
  chmodSync(join(dir, "scontrol"), 0o755);
  return { dir, calls: () => readFileSync(log, "utf8").trim().split("\n").filter(Boolean) };
}

async function run(argv: string[]): Promise<{ code: number; out: unknown }> {
  const out: string[] = [];
  const spy = vi.spyOn(process.stdout, "write").mockImplementation((chunk) => out.push(String(chunk)) > 0);
  const code = await main(argv);
  spy.mockRestore();
  return { code, out: JSON.parse(out.join("")) };
}

describe("nowscale-agent node actions (for SSM Run Command)", () => {
  it("drains with the nowscale prefix, resumes and deletes, with argument arrays", async () => {
    // Prepare
    const slurm = fakeSlurm();
    const bin = ["--slurm-bin", slurm.dir, "--source", "json"];
    // Act
    const drained = await run(["drain", "c4-a", "--reason", "idle 300 s", ...bin]);
    const resumed = await run(["resume", "c4-a", ...bin]);
    const deleted = await run(["delete-node", "c4-a", ...bin]);
    const goneAlready = await run(["delete-node", "ghost", ...bin]);
    // Assess
    expect([drained.code, resumed.code, deleted.code, goneAlready.code]).toEqual([0, 0, 0, 0]);
    expect(drained.out).toEqual({ ok: true, node: "c4-a", action: "drain" });
    expect(slurm.calls()).toEqual([
      "update NodeName=c4-a State=DRAIN Reason=nowscale: idle 300 s",
      "update NodeName=c4-a State=RESUME",
      "delete NodeName=c4-a",
      "delete NodeName=ghost",
    ]);
  });

  it("set-job-notes writes Comment/AdminComment with scontrol, array records in brackets; Slurm's after-update warning and gone jobs are done", async () => {
    // Prepare
    const slurm = fakeSlurm();
    const bin = ["--slurm-bin", slurm.dir, "--source", "json"];
    const notes = (list: unknown[]) => ["set-job-notes", "--notes", JSON.stringify({ notes: list }), ...bin];
    // Act
    const done = await run(
      notes([
        { jobIds: ["5", "9_0-28"], text: "nowscale: no instance type of queue gpu fits", field: "comment" },
        { jobIds: ["6"], text: "", field: "adminComment" },
      ]),
    );
    const refused = await run(notes([{ jobIds: ["7"], text: "nowscale: x", field: "comment" }]));
    const down = await run(notes([{ jobIds: ["8"], text: "nowscale: x", field: "comment" }]));
    const bad = await run(notes([{ jobIds: ["5"], text: "nowscale: $(id)\n", field: "comment" }]));
    // Assess
    expect([done.code, refused.code, down.code, bad.code]).toEqual([0, 1, 2, 64]);
    expect(done.out).toEqual({ ok: true, applied: 2 });
    expect(String((bad.out as { error: string }).error)).toContain("notes[0].text");
    expect(slurm.calls()).toEqual([
      "update JobId=5,9_[0-28] Comment=nowscale: no instance type of queue gpu fits",
      "update JobId=6 AdminComment=",
      "update JobId=7 Comment=nowscale: x",
      "update JobId=8 Comment=nowscale: x",
    ]);
  });

  it("sync-placeholders creates the missing and deletes the stale, printing what it did; a forged name is 64", async () => {
    // Prepare
    const slurm = fakeSlurm();
    const bin = ["--slurm-bin", slurm.dir, "--source", "json"];
    const shape = {
      queue: "gpu",
      instanceType: "g4",
      cpus: 4,
      realMemoryMiB: 1000,
      gpus: 1,
      features: ["q_gpu"],
    };
    const spec = { name: placeholderName(shape), ...shape };
    const sync = (list: unknown[]) => [
      "sync-placeholders",
      "--placeholders",
      JSON.stringify({ placeholders: list }),
      ...bin,
    ];
    // Act
    const done = await run(sync([spec]));
    const forged = await run(sync([{ ...spec, name: "ph-00000000000000aa" }]));
    // Assess
    expect([done.code, forged.code]).toEqual([0, 64]);
    expect(done.out).toEqual({ ok: true, created: [spec.name], removed: ["ph-00000000000000aa"] });
    expect(slurm.calls()).toEqual([
      "--future --oneliner show node",
      `create NodeName=${spec.name} State=FUTURE CPUs=4 RealMemory=1000 Features=q_gpu Gres=gpu:1`,
      "delete NodeName=ph-00000000000000aa",
    ]);
  });

  it("answers with distinct exit codes: 3 unknown node, 2 slurmctld down, 64 bad name or missing reason", async () => {
    // Prepare
    const slurm = fakeSlurm();
    const bin = ["--slurm-bin", slurm.dir, "--source", "json"];
    // Act
    const unknown = await run(["drain", "ghost", "--reason", "x", ...bin]);
    const down = await run(["resume", "down", ...bin]);
    const badName = await run(["drain", "a;reboot", "--reason", "x", ...bin]);
    const noReason = await run(["drain", "c4-a", ...bin]);
    // Assess
    expect([unknown.code, down.code, badName.code, noReason.code]).toEqual([3, 2, 64, 64]);
    expect(slurm.calls()).toEqual([
      "update NodeName=ghost State=DRAIN Reason=nowscale: x",
      "update NodeName=down State=RESUME",
    ]);
  });

  it("reads the JSON of set-job-notes and sync-placeholders from stdin for '-', as the SSM document pipes it", () => {
    // Prepare: the built agent bundle, as the master runs it
    const slurm = fakeSlurm();
    const bundle = fileURLToPath(new URL("../../../dist/agent/nowscale-agent.js", import.meta.url));
    const agent = (args: string[], input: string) =>
      spawnSync(process.execPath, [bundle, ...args, "--slurm-bin", slurm.dir, "--source", "json"], {
        input,
        encoding: "utf8",
      });
    const notes = { notes: [{ jobIds: ["17"], text: "nowscale: no type fits", field: "comment" }] };
    // Act
    const done = agent(["set-job-notes", "--notes", "-"], JSON.stringify(notes));
    const bad = agent(["set-job-notes", "--notes", "-"], "not json");
    const tooBig = agent(["sync-placeholders", "--placeholders", "-"], " ".repeat(5 * 1024 * 1024));
    // Assess
    expect(done.status, done.stdout).toBe(0);
    expect(slurm.calls()).toEqual(["update JobId=17 Comment=nowscale: no type fits"]);
    expect(bad.status).toBe(64);
    expect(bad.stdout).toContain("--notes must be JSON");
    expect(tooBig.status).toBe(64);
  });
});
