import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { clearContext, contextPath, readContext, writeContext } from "../../../lib/cli/context.js";
import { toCsv } from "../../../lib/cli/csv.js";
import { cloudChecks, formatChecks, localChecks } from "../../../lib/cli/doctor.js";
import { LOCAL_PACKAGES, missingPackages } from "../../../lib/local/dependencies.js";
import { runCli } from "../../support/cli.js";

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
  it("doctor --local checks exactly the programs local up's package check needs (one list)", () => {
    // Prepare: a machine that has every program but those local up would install
    const missing = new Set(["iptables", "aws", "python3"]);
    const which = (program: string) => (missing.has(program) ? undefined : `/usr/bin/${program}`);
    // Act
    const local = localChecks({ uid: () => 0, which, isDirectory: () => true, netns: () => ({ ok: true }) });
    const upMissing = missingPackages((program) => which(program) !== undefined);
    // Assess: the same programs, and doctor fails on what local up would install
    const programs = local.filter((c) => LOCAL_PACKAGES.some((p) => p.program === c.name));
    expect(programs.map((c) => c.name)).toEqual(LOCAL_PACKAGES.map((p) => p.program));
    expect(local.filter((c) => !c.ok).map((c) => c.fix)).toEqual(
      upMissing.map((pkg) => `apt-get install ${pkg} (or "nowscale local up --install-deps")`),
    );
    expect(upMissing).toEqual(["iptables", "awscli", "python3"]);
  });

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
    // Every program local up's package check needs, in its order: iptables, openssl, aws, curl, python3 too.
    expect(local.map((c) => c.name)).toEqual([
      "root",
      "slurmctld",
      "slurmd",
      "sbatch",
      "munged",
      "ip",
      "nsenter",
      "iptables",
      "openssl",
      "aws",
      "curl",
      "python3",
      "/run/munge",
      "ip netns",
    ]);
    for (const c of [...cloud, ...local]) {
      expect(c.ok).toBe(false);
      expect(c.fix, c.name).toBeTruthy();
    }
    expect(local.find((c) => c.name === "munged")?.fix).toContain("apt-get install munge");
    expect(local.find((c) => c.name === "aws")?.fix).toContain("apt-get install awscli");
    expect(local.find((c) => c.name === "iptables")?.fix).toContain("apt-get install iptables");
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

describe("nowscale doctor on a machine that runs the local mode only", () => {
  /** No AWS credentials, region or endpoint anywhere (HOME without ~/.aws, no instance metadata). */
  const bareMachine = (stateDir: string) => {
    const home = mkdtempSync(join(tmpdir(), "nowscale-doctor-home-"));
    return {
      HOME: home,
      NOWSCALE_LOCAL_DIR: stateDir,
      NOWSCALE_ENDPOINT: undefined,
      AWS_PROFILE: undefined,
      AWS_REGION: undefined,
      AWS_DEFAULT_REGION: undefined,
      AWS_ACCESS_KEY_ID: undefined,
      AWS_SECRET_ACCESS_KEY: undefined,
      AWS_SESSION_TOKEN: undefined,
      AWS_CONFIG_FILE: join(home, "none"),
      AWS_SHARED_CREDENTIALS_FILE: join(home, "none"),
      AWS_EC2_METADATA_DISABLED: "true",
      AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: undefined,
      AWS_CONTAINER_CREDENTIALS_FULL_URI: undefined,
      AWS_WEB_IDENTITY_TOKEN_FILE: undefined,
    };
  };

  it("reports the AWS checks as not configured (not failed) when a local state exists, and suggests --local", () => {
    // Prepare: a local mode's state, nothing of AWS
    const stateDir = mkdtempSync(join(tmpdir(), "nowscale-doctor-state-"));
    writeFileSync(join(stateDir, "local.json"), "{}");
    const env = bareMachine(stateDir);

    // Act
    const text = runCli(["doctor"], { env });
    const json = runCli(["doctor", "--json"], { env });
    const cloudOnly = runCli(["doctor", "--cloud"], { env });
    const noState = runCli(["doctor", "--json"], { env: bareMachine(join(stateDir, "nothing-here")) });

    // Assess: n/a lines, a note naming --local, and the exit code the local checks alone decide
    expect(text.stdout).toMatch(/^n\/a {3}credentials {2}not configured/m);
    expect(text.stdout).toMatch(/^n\/a {3}stack {8}not configured/m);
    expect(text.stdout).not.toMatch(/^fail {2}(credentials|region|stack)/m);
    expect(text.stderr).toContain('run "nowscale doctor --local"');
    expect(text.stderr).toContain(stateDir);
    const checks = JSON.parse(json.stdout).checks as { name: string; ok: boolean; notConfigured?: boolean }[];
    const aws = checks.filter((c) => ["credentials", "region", "stack"].includes(c.name));
    expect(aws.map((c) => [c.name, c.notConfigured])).toEqual([
      ["credentials", true],
      ["region", true],
      ["stack", true],
    ]);
    const local = checks.filter((c) => !aws.includes(c));
    expect(json.status).toBe(local.every((c) => c.ok) ? 0 : 1);
    // Asked for the AWS checks, or without a local state: a missing AWS setup is a failure
    expect(cloudOnly.status).toBe(1);
    expect(cloudOnly.stdout).toMatch(/^fail {2}credentials/m);
    // The AWS SDK's notice about Node 20 (it builds a client for the credentials check) is not shown
    expect(cloudOnly.stderr).not.toContain("NodeVersionSupportWarning");
    expect(noState.status).toBe(1);
    const bare = JSON.parse(noState.stdout).checks as { name: string; notConfigured?: boolean }[];
    expect(bare.find((c) => c.name === "credentials")?.notConfigured).toBeUndefined();
  });
});
