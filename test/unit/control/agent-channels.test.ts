import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { GetCommandInvocationCommand, SendCommandCommand, SSMClient } from "@aws-sdk/client-ssm";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createAgentServer } from "../../../agent/server.js";
import { FakeAgent } from "../../../lib/agent-channels/fake.js";
import { HttpAgentChannel } from "../../../lib/agent-channels/http.js";
import { SsmAgentChannel } from "../../../lib/agent-channels/ssm.js";
import {
  AgentActionError,
  AgentUnreachableError,
  SlurmctldUnreachableError,
} from "../../../lib/ports/agent-channel.js";
import { placeholderName } from "../../../lib/ports/agent-protocol.js";
import type { Report } from "../../../lib/ports/agent-report.js";
import { FakeClock } from "../../../lib/providers/fake/index.js";
import { SlurmNodeNotFoundError } from "../../../scheduler-plugins/slurm/errors.js";

const KEY = Buffer.from("0123456789abcdef0123456789abcdef");
const clock = new FakeClock(Date.now());

async function okReport(): Promise<Report> {
  const agent = new FakeAgent(clock);
  agent.addPending("compute", "17", { nodes: 2, cpus: 4 });
  return agent.report();
}

let server: Server | undefined;
afterEach(() => {
  server?.close();
  server = undefined;
});

async function startAgent(report: () => Promise<Report>, calls: string[] = []): Promise<string> {
  server = createAgentServer({
    key: KEY,
    report,
    actions: {
      drain: async (node, reason) => {
        calls.push(`drain ${node} ${reason}`);
      },
      resume: async (node) => {
        if (node === "ghost") throw new SlurmNodeNotFoundError("no such node");
        calls.push(`resume ${node}`);
      },
      deleteNode: async (node) => {
        calls.push(`delete ${node}`);
      },
      setJobNote: async (note) => {
        calls.push(`note ${note.jobIds.join(",")} ${note.field} ${note.text}`);
      },
      syncPlaceholders: async (specs) => {
        calls.push(`placeholders ${specs.length}`);
        return { created: specs.map((x) => x.name), removed: ["ph-00000000000000aa"] };
      },
      setPartitions: async (specs) => {
        calls.push(`partitions ${specs.map((x) => x.name).join(",")}`);
        return { partitions: specs.map((x) => x.name), added: [], removed: [], changed: true };
      },
    },
  });
  const s = server;
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

const randomHex = () => randomBytes(6).toString("hex");

/**
 * Runs a shell line the SSM channel sent, in /bin/sh as SSM does, with a `node` first on PATH that stands in for
 * the agent: it prints the words it was given, then what it read on stdin.
 */
function runSentLine(line: string): { words: string[]; stdin: string } {
  const bin = mkdtempSync(join(tmpdir(), "nowscale-ssm-"));
  writeFileSync(join(bin, "node"), "#!/bin/sh\nprintf '%s\\n' \"$@\"\necho ---\ncat\n", { mode: 0o755 });
  try {
    const out = execFileSync("sh", ["-c", line], {
      encoding: "utf8",
      env: { PATH: `${bin}:${process.env.PATH ?? ""}` },
    });
    const [words = "", stdin = ""] = out.split("---\n");
    return { words: words.trimEnd().split("\n"), stdin };
  } finally {
    rmSync(bin, { recursive: true, force: true });
  }
}

describe("HttpAgentChannel against the real agent server", () => {
  it("reads a signed, validated report and performs node actions", async () => {
    // Prepare
    const calls: string[] = [];
    const base = await startAgent(okReport, calls);
    const channel = new HttpAgentChannel({ baseUrl: base, key: KEY });
    // Act
    const report = await channel.report();
    await channel.drain("c4-a", "nowscale: idle 300 s");
    await channel.resume("c4-a");
    await channel.deleteNode("c4-a");
    await channel.setJobNotes([{ jobIds: ["17"], text: "nowscale: no type fits", field: "comment" }]);
    const badNote = channel
      .setJobNotes([{ jobIds: ["17"], text: "no prefix", field: "comment" }])
      .catch((e: unknown) => e);
    // Assess
    expect(report.jobs[0]?.jobIds).toEqual(["17"]);
    expect(calls).toEqual([
      "drain c4-a nowscale: idle 300 s",
      "resume c4-a",
      "delete c4-a",
      "note 17 comment nowscale: no type fits",
    ]);
    expect(await badNote).toMatchObject({ name: "AgentActionError", status: 400 });
    expect(String(await badNote)).toContain("notes[0].text");
    expect((await channel.health()).agentVersion).toMatch(/^\d/);
  });

  it("syncs placeholders: checked specs out, the agent's answer checked in", async () => {
    // Prepare
    const calls: string[] = [];
    const base = await startAgent(okReport, calls);
    const channel = new HttpAgentChannel({ baseUrl: base, key: KEY });
    const shape = {
      queue: "gpu",
      instanceType: "g4",
      cpus: 4,
      realMemoryMiB: 1000,
      gpus: 1,
      features: ["q_gpu"],
    };
    const spec = { name: placeholderName(shape), ...shape };
    // Act
    const answer = await channel.syncPlaceholders([spec]);
    const forged = await channel.syncPlaceholders([{ ...spec, cpus: 8 }]).catch((e: unknown) => e);
    // Assess
    expect(answer).toEqual({ created: [spec.name], removed: ["ph-00000000000000aa"] });
    expect(forged).toMatchObject({ name: "AgentActionError", status: 400 });
    expect(calls).toEqual(["placeholders 1"]);
  });

  it("is unreachable with the wrong key, and an unknown node is an action error", async () => {
    // Prepare
    const base = await startAgent(okReport);
    const wrong = new HttpAgentChannel({ baseUrl: base, key: Buffer.from("x".repeat(32)) });
    const right = new HttpAgentChannel({ baseUrl: base, key: KEY });
    // Act / Assess
    await expect(wrong.report()).rejects.toBeInstanceOf(AgentUnreachableError);
    await expect(right.resume("ghost")).rejects.toMatchObject({ name: "AgentActionError", status: 404 });
    await expect(right.drain("bad name; rm -rf /", "x")).rejects.toBeInstanceOf(AgentActionError);
  });

  it("turns a slurmctld-unreachable report into its typed error and an invalid report into unreachable", async () => {
    // Prepare
    const down = await startAgent(async () => ({
      schemaVersion: 1,
      agentVersion: "0.1.0",
      scheduler: "slurm",
      generatedAt: new Date().toISOString(),
      status: "slurmctld-unreachable",
      error: "connection refused",
    }));
    // Act / Assess
    await expect(new HttpAgentChannel({ baseUrl: down, key: KEY }).report()).rejects.toBeInstanceOf(
      SlurmctldUnreachableError,
    );
    server?.close();
    const bad = await startAgent(
      async () => ({ ...(await okReport()), jobs: [{ queue: "$(reboot)" }] }) as never,
    );
    await expect(new HttpAgentChannel({ baseUrl: bad, key: KEY }).report()).rejects.toBeInstanceOf(
      AgentUnreachableError,
    );
  });

  it("is unreachable when nothing listens", async () => {
    const channel = new HttpAgentChannel({ baseUrl: "http://127.0.0.1:1", key: KEY, timeoutMs: 2000 });
    await expect(channel.report()).rejects.toBeInstanceOf(AgentUnreachableError);
  });
});

const MiB = 1024 * 1024;

/**
 * A hostile agent: answers 200 with `total` bytes of JSON-ish filler in 64 KiB chunks, chunked (no
 * content-length) unless `declare` is set, honouring backpressure, and stops when the client goes away.
 */
async function startFloodingAgent(total: number, declare?: number) {
  const sent = { bytes: 0, closedEarly: false };
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  const flood = createServer((_req, res) => {
    res.writeHead(200, {
      "content-type": "application/json",
      ...(declare === undefined ? {} : { "content-length": String(declare) }),
    });
    let stopped = false;
    res.on("close", () => {
      stopped = true;
      sent.closedEarly = sent.bytes < total;
    });
    const pump = () => {
      while (!stopped && sent.bytes < total) {
        sent.bytes += chunk.length;
        if (!res.write(chunk)) return void res.once("drain", pump);
      }
      if (!stopped) res.end();
    };
    pump();
  });
  server = flood;
  await new Promise<void>((resolve) => flood.listen(0, "127.0.0.1", resolve));
  return { base: `http://127.0.0.1:${(flood.address() as AddressInfo).port}`, sent };
}

/** globalThis.fetch whose answer body counts what its reader pulls, chunk by chunk, with no read-ahead. */
function countingFetch() {
  const read = { bytes: 0, largestChunk: 0 };
  const fetchFn: typeof fetch = async (input, init) => {
    const response = await fetch(input, init);
    const source = response.body?.getReader();
    if (source === undefined) return response;
    const body = new ReadableStream<Uint8Array>(
      {
        async pull(controller) {
          const { done, value } = await source.read();
          if (done) return controller.close();
          read.bytes += value.byteLength;
          read.largestChunk = Math.max(read.largestChunk, value.byteLength);
          controller.enqueue(value);
        },
        cancel: (reason) => source.cancel(reason),
      },
      { highWaterMark: 0 },
    );
    return new Response(body, { status: response.status, headers: response.headers });
  };
  return { fetchFn, read };
}

/** Runs `act` while sampling the process's resident memory; the peak growth over the start, bytes. */
async function peakRssGrowth<T>(act: () => Promise<T>): Promise<{ result: T | unknown; growth: number }> {
  const start = process.memoryUsage.rss();
  let peak = start;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 2);
  const result = await act().catch((e: unknown) => e);
  clearInterval(timer);
  peak = Math.max(peak, process.memoryUsage.rss());
  return { result, growth: peak - start };
}

describe("HttpAgentChannel against an agent answering too much", () => {
  it("stops a chunked 256 MiB answer at the 16 MiB limit, fast and in bounded memory", async () => {
    // Prepare
    const { base, sent } = await startFloodingAgent(256 * MiB);
    const { fetchFn, read } = countingFetch();
    const channel = new HttpAgentChannel({ baseUrl: base, key: KEY, fetch: fetchFn });
    const started = Date.now();
    // Act
    const { result, growth } = await peakRssGrowth(() => channel.report());
    // Assess
    const elapsed = Date.now() - started;
    expect(result).toBeInstanceOf(AgentUnreachableError);
    expect((result as Error).message).toContain(`limit of ${16 * MiB} bytes`);
    expect(read.bytes).toBeGreaterThan(16 * MiB);
    expect(read.bytes).toBeLessThanOrEqual(16 * MiB + read.largestChunk);
    expect(read.largestChunk).toBeLessThanOrEqual(MiB);
    // Reading the whole answer grew the process by ~800 MB; streaming to the limit by ~60-70 MB (the
    // 16 MiB kept, socket and fetch buffers, garbage not yet collected).
    expect(growth).toBeLessThan(160 * MiB);
    expect(elapsed).toBeLessThan(5_000);
    await vi.waitFor(() => expect(sent.closedEarly).toBe(true));
    expect(sent.bytes).toBeLessThan(128 * MiB);
  });

  it("applies the limit whatever the headers say: an endless answer and an understated length", async () => {
    // Prepare: 1 MiB limit; 64 MiB stands in for endless (the client must stop long before)
    const endless = await startFloodingAgent(64 * MiB);
    const counted = countingFetch();
    const small = { baseUrl: endless.base, key: KEY, maxAnswerBytes: MiB, fetch: counted.fetchFn };
    // Act
    const stopped = await new HttpAgentChannel(small).health().catch((e: unknown) => e);
    server?.close();
    const declaredBig = await startFloodingAgent(64 * MiB, 64 * MiB);
    const refused = await new HttpAgentChannel({ baseUrl: declaredBig.base, key: KEY, maxAnswerBytes: MiB })
      .health()
      .catch((e: unknown) => e);
    // Assess
    expect(stopped).toBeInstanceOf(AgentUnreachableError);
    expect((stopped as Error).message).toContain(`limit of ${MiB} bytes`);
    expect(counted.read.bytes).toBeLessThanOrEqual(MiB + counted.read.largestChunk);
    expect(refused).toBeInstanceOf(AgentUnreachableError);
    expect((refused as Error).message).toMatch(/67108864 bytes is over the limit of 1048576 bytes/);
  });

  it("reads a chunked answer under the limit as before", async () => {
    // Prepare: a valid report sent without a content-length, in small pieces
    const text = JSON.stringify(await okReport());
    const chunked = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      for (let i = 0; i < text.length; i += 100) res.write(text.slice(i, i + 100));
      res.end();
    });
    server = chunked;
    await new Promise<void>((resolve) => chunked.listen(0, "127.0.0.1", resolve));
    const base = `http://127.0.0.1:${(chunked.address() as AddressInfo).port}`;
    // Act
    const report = await new HttpAgentChannel({
      baseUrl: base,
      key: KEY,
      maxAnswerBytes: text.length,
    }).report();
    // Assess
    expect(report.jobs[0]?.jobIds).toEqual(["17"]);
  });
});

describe("SsmAgentChannel", () => {
  it("runs node actions as single-quoted argument words and maps the agent's exit codes", async () => {
    // Prepare
    const ssm = mockClient(SSMClient);
    ssm.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-3" } });
    ssm
      .on(GetCommandInvocationCommand)
      .resolvesOnce({ Status: "Success", ResponseCode: 0 })
      .resolvesOnce({ Status: "Failed", ResponseCode: 3 })
      .resolvesOnce({ Status: "Failed", ResponseCode: 2 });
    const channel = new SsmAgentChannel({
      client: new SSMClient({ region: "us-east-1" }),
      instanceId: "i-m",
      clock: new FakeClock(),
    });
    // Act
    await channel.drain("i-0abc", "idle for 300 s; it's time");
    const unknown = channel.resume("ghost").catch((e: unknown) => e);
    const down = channel.deleteNode("i-0abc").catch((e: unknown) => e);
    // Assess
    const commands = ssm
      .commandCalls(SendCommandCommand)
      .map((c) => c.args[0].input.Parameters?.commands?.[0]);
    expect(commands[0]).toBe(
      "'node' '/opt/nowscale/nowscale-agent.js' 'drain' 'i-0abc' '--reason' 'nowscale: idle for 300 s; it'\\''s time'",
    );
    expect(await unknown).toMatchObject({ name: "AgentActionError", status: 404 });
    expect(await down).toBeInstanceOf(SlurmctldUnreachableError);
    await expect(channel.drain("a;reboot", "x")).rejects.toBeInstanceOf(AgentActionError);
    await expect(channel.drain("i-0abc", "bad\nreason")).rejects.toBeInstanceOf(AgentActionError);
    expect(ssm.commandCalls(SendCommandCommand)).toHaveLength(3);
    ssm.restore();
  });

  it("with the stack's agent document, sends only the action, node and a reason cut to the document's pattern", async () => {
    // Prepare
    const ssm = mockClient(SSMClient);
    ssm.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-4" } });
    ssm.on(GetCommandInvocationCommand).resolves({ Status: "Success", ResponseCode: 0 });
    const channel = new SsmAgentChannel({
      client: new SSMClient({ region: "us-east-1" }),
      instanceId: "i-m",
      clock: new FakeClock(),
      documentName: "NowScale-AgentDocument-1",
    });
    // Act
    await channel.drain("i-0abc", "idle for 300 s; it's time");
    // Assess
    const sent = ssm.commandCalls(SendCommandCommand)[0]?.args[0].input;
    expect(sent?.DocumentName).toBe("NowScale-AgentDocument-1");
    expect(sent?.Parameters).toEqual({
      action: ["drain"],
      node: ["i-0abc"],
      reason: ["nowscale: idle for 300 s; it_s time"],
    });
    // job notes: the JSON as the document's payload parameter, gzipped and base64-encoded
    const note = { jobIds: ["17"], text: "nowscale: it's $(id)", field: "comment" as const };
    await channel.setJobNotes([note]);
    const notes = ssm.commandCalls(SendCommandCommand)[1]?.args[0].input.Parameters;
    expect(notes?.action).toEqual(["set-job-notes"]);
    expect(notes?.node).toEqual([""]);
    expect(notes?.payload?.[0]).toMatch(/^[A-Za-z0-9+/=]+$/);
    expect(JSON.parse(gunzipSync(Buffer.from(notes?.payload?.[0] ?? "", "base64")).toString("utf8"))).toEqual(
      {
        notes: [note],
      },
    );
    ssm.restore();
  });

  it("writes job notes with one set-job-notes command, the JSON one single-quoted word", async () => {
    // Prepare
    const ssm = mockClient(SSMClient);
    ssm.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-4" } });
    ssm
      .on(GetCommandInvocationCommand)
      .resolvesOnce({ Status: "Success", ResponseCode: 0 })
      .resolvesOnce({ Status: "Failed", ResponseCode: 2 });
    const channel = new SsmAgentChannel({
      client: new SSMClient({ region: "us-east-1" }),
      instanceId: "i-m",
      clock: new FakeClock(),
    });
    const note = { jobIds: ["17", "9_0-28"], text: "nowscale: it's $(id) `x`", field: "comment" as const };
    // Act
    await channel.setJobNotes([note]);
    const down = channel.setJobNotes([note]).catch((e: unknown) => e);
    const bad = channel.setJobNotes([{ ...note, jobIds: ["1;reboot"] }]).catch((e: unknown) => e);
    // Assess
    const command = ssm.commandCalls(SendCommandCommand)[0]?.args[0].input.Parameters?.commands?.[0];
    const ran = runSentLine(command ?? "");
    expect(ran.words).toEqual(["/opt/nowscale/nowscale-agent.js", "set-job-notes", "--notes", "-"]);
    expect(JSON.parse(ran.stdin)).toEqual({ notes: [note] });
    expect(await down).toBeInstanceOf(SlurmctldUnreachableError);
    expect(await bad).toMatchObject({ name: "AgentActionError", status: 400 });
    expect(ssm.commandCalls(SendCommandCommand)).toHaveLength(2);
    ssm.restore();
  });

  it("syncs placeholders with one sync-placeholders command and reads its answer from stdout", async () => {
    // Prepare
    const shape = {
      queue: "gpu",
      instanceType: "g4",
      cpus: 4,
      realMemoryMiB: 1000,
      gpus: 1,
      features: ["q_gpu"],
    };
    const spec = { name: placeholderName(shape), ...shape };
    const ssm = mockClient(SSMClient);
    ssm.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-5" } });
    ssm
      .on(GetCommandInvocationCommand)
      .resolvesOnce({
        Status: "Success",
        ResponseCode: 0,
        StandardOutputContent: `{"ok":true,"created":["${spec.name}"],"removed":[]}\n`,
      })
      .resolvesOnce({ Status: "Success", ResponseCode: 0, StandardOutputContent: '{"created":["$(id)"]}' });
    const channel = new SsmAgentChannel({
      client: new SSMClient({ region: "us-east-1" }),
      instanceId: "i-m",
      clock: new FakeClock(),
    });
    // Act
    const answer = await channel.syncPlaceholders([spec]);
    const lying = await channel.syncPlaceholders([spec]).catch((e: unknown) => e);
    // Assess
    const command = ssm.commandCalls(SendCommandCommand)[0]?.args[0].input.Parameters?.commands?.[0];
    const ran = runSentLine(command ?? "");
    expect(ran.words).toEqual([
      "/opt/nowscale/nowscale-agent.js",
      "sync-placeholders",
      "--placeholders",
      "-",
    ]);
    expect(JSON.parse(ran.stdin)).toEqual({ placeholders: [spec] });
    expect(answer).toEqual({ created: [spec.name], removed: [] });
    expect(lying).toBeInstanceOf(AgentUnreachableError);
    // A list whose payload SSM could not carry is refused before anything is sent.
    const huge = Array.from({ length: 1000 }, (_, i) => {
      const big = { ...shape, cpus: i + 1, features: Array.from({ length: 64 }, () => `f${randomHex()}`) };
      return { name: placeholderName(big), ...big };
    });
    const sent = ssm.commandCalls(SendCommandCommand).length;
    await expect(channel.syncPlaceholders(huge)).rejects.toMatchObject({ status: 413 });
    expect(ssm.commandCalls(SendCommandCommand)).toHaveLength(sent);
    ssm.restore();
  });

  it("runs the fixed report command and validates its output", async () => {
    // Prepare
    const ssm = mockClient(SSMClient);
    const report = await okReport();
    ssm.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-1" } });
    ssm
      .on(GetCommandInvocationCommand)
      .resolvesOnce({ Status: "InProgress" })
      .resolves({ Status: "Success", StandardOutputContent: JSON.stringify(report) });
    const channel = new SsmAgentChannel({
      client: new SSMClient({ region: "us-east-1" }),
      instanceId: "i-master",
      clock: new FakeClock(),
    });
    // Act
    const got = await channel.report();
    // Assess
    expect(got.jobs).toEqual(report.status === "ok" ? report.jobs : []);
    const sent = ssm.commandCalls(SendCommandCommand)[0]?.args[0].input;
    expect(sent?.InstanceIds).toEqual(["i-master"]);
    expect(sent?.Parameters?.commands).toEqual(["'node' '/opt/nowscale/nowscale-agent.js' 'report'"]);
    expect(ssm.commandCalls(GetCommandInvocationCommand)).toHaveLength(2);
    ssm.restore();
  });

  it("reports slurmctld down from a failed command's output, and times out on a stuck command", async () => {
    // Prepare
    const ssm = mockClient(SSMClient);
    ssm.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-2" } });
    ssm.on(GetCommandInvocationCommand).resolvesOnce({
      Status: "Failed",
      StandardOutputContent: JSON.stringify({
        schemaVersion: 1,
        agentVersion: "0.1.0",
        scheduler: "slurm",
        generatedAt: new Date().toISOString(),
        status: "slurmctld-unreachable",
        error: "down",
      }),
    });
    const fake = new FakeClock();
    const channel = new SsmAgentChannel({
      client: new SSMClient({ region: "us-east-1" }),
      instanceId: "i-m",
      clock: fake,
    });
    // Act / Assess
    await expect(channel.report()).rejects.toBeInstanceOf(SlurmctldUnreachableError);
    ssm.on(GetCommandInvocationCommand).resolves({ Status: "InProgress" });
    await expect(channel.report()).rejects.toBeInstanceOf(AgentUnreachableError);
    ssm.restore();
  });
});
