import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { clearContext, contextPath, readContext, writeContext } from "../../../lib/cli/context.js";
import { toCsv } from "../../../lib/cli/csv.js";
import { cloudChecks, formatChecks, localChecks } from "../../../lib/cli/doctor.js";

describe("toCsv", () => {
  it("quotes what RFC 4180 says must be quoted and doubles quotes; CRLF records; empty for null", () => {
    // Act
    const text = toCsv(
      ["a", "b,c", "d"],
      [
        ["plain", 'say "hi"', null],
        ["line\nbreak", " lead", 1.5],
        ["cr\r", "", undefined],
      ],
    );
    // Assess
    expect(text).toBe('a,"b,c",d\r\nplain,"say ""hi""",\r\n"line\nbreak"," lead",1.5\r\n"cr\r",,\r\n');
  });
});

describe("doctor's checks", () => {
  it("says what to do for each failure and never shows a credential", async () => {
    // Prepare: a machine with nothing
    const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    // Act
    const cloud = await cloudChecks({
      credentials: async () => {
        throw new Error("Could not load credentials from any providers");
      },
      region: async () => {
        throw new Error("Region is missing");
      },
      api: undefined,
      endpoint: undefined,
    });
    const local = localChecks({
      uid: () => 1000,
      which: () => undefined,
      isDirectory: () => false,
      netns: () => ({ ok: false, error: "mount --make-shared /run/netns failed: Operation not permitted" }),
    });
    const found = await cloudChecks({
      credentials: async () => undefined,
      region: async () => "eu-west-1",
      api: async () => ({ clusters: [1, 2] }),
      endpoint: "https://x.execute-api.eu-west-1.amazonaws.com/v1",
    });
    // Assess
    expect(cloud.map((c) => [c.name, c.ok])).toEqual([
      ["credentials", false],
      ["region", false],
      ["stack", false],
    ]);
    expect(local.map((c) => c.name)).toEqual([
      "root",
      "slurmctld",
      "slurmd",
      "munged",
      "/run/munge",
      "ip netns",
    ]);
    for (const c of [...cloud, ...local]) {
      expect(c.ok).toBe(false);
      expect(c.fix, c.name).toBeTruthy();
    }
    expect(local.find((c) => c.name === "munged")?.fix).toContain("apt-get install munge");
    expect(formatChecks(found)).toBe(
      [
        "ok    credentials  AWS credentials found (the default chain)",
        "ok    region       eu-west-1",
        "ok    stack        the API at https://x.execute-api.eu-west-1.amazonaws.com/v1 answers (2 cluster(s))",
      ].join("\n"),
    );
    expect(formatChecks([...cloud, ...found])).not.toContain(secret);
    expect(formatChecks(local)).toMatch(
      /^fail {2}root {8}running as uid 1000\n\s+→ the local mode needs root/,
    );
  });
});

describe("the current cluster's file", () => {
  it("lives under XDG_CONFIG_HOME, is 0600, refuses a bad id and reports a damaged file", () => {
    // Prepare
    const dir = mkdtempSync(join(tmpdir(), "nowscale-ctx-"));
    const path = contextPath({ XDG_CONFIG_HOME: dir, HOME: "/nonexistent" });
    // Act
    writeContext({ cluster: "c-0123456789ab", setAt: "2026-01-01T00:00:00Z" }, path);
    const read = readContext(path);
    // Assess
    expect(path).toBe(join(dir, "nowscale", "context.json"));
    expect(read?.cluster).toBe("c-0123456789ab");
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(() => writeContext({ cluster: "../x", setAt: "" }, path)).toThrow(/invalid cluster id/);
    expect(JSON.parse(readFileSync(path, "utf8")).cluster).toBe("c-0123456789ab");
    writeFileSync(path, "{not json");
    expect(() => readContext(path)).toThrow(/is damaged/);
    clearContext(path);
    expect(readContext(path)).toBeUndefined();
    expect(contextPath({ HOME: "/home/u" })).toBe("/home/u/.config/nowscale/context.json");
  });
});
