import { createHash, randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HttpAgentChannel } from "../../lib/agent-channels/http.js";
import type { CloudProvider } from "../../lib/ports/cloud-provider.js";
import { createLocalProvider, testbedNamespaceNodes } from "../../lib/providers/local/index.js";
import {
  type InstanceEndpoints,
  serveInstanceEndpoints,
} from "../../lib/providers/local/instance-endpoints/index.js";
import {
  type IsolatedRoot,
  isolatedRootUnavailableReason,
  startIsolatedRoot,
} from "../../lib/providers/local/isolated-root.js";
import {
  ensureBridge,
  killNamespaceProcesses,
  listNamespaceNodes,
  removeBridge,
  removeNamespace,
} from "../../lib/providers/local/netns.js";
import { type Testbed, testbedPaths } from "../../lib/providers/local/slurm-testbed.js";
import { LOCAL_MUNGE_SECRET } from "../../lib/providers/local/testbed-nodes.js";
import { renderBootstrapScript } from "../../scheduler-plugins/slurm/bootstrap.js";
import { runCommand } from "../../scheduler-plugins/slurm/exec.js";
import { renderMasterBootstrapScript } from "../../scheduler-plugins/slurm/master-bootstrap.js";

/**
 * The Slurm master's user data (renderMasterBootstrapScript, the text the AWS adapter sends, unmodified)
 * executed as cloud-init would run it, as root, in an isolated root (lib/providers/local/isolated-root.ts: this
 * machine's Debian through an overlay whose writes vanish, its own mount, PID, cgroup and network
 * namespaces): it installs slurmctld, munge and awscli from Debian's repositories, fetches the munge and
 * agent keys with `aws secretsmanager get-secret-value` and the agent with `aws s3 cp` from the
 * instance endpoints (lib/providers/local/instance-endpoints: IMDSv2 for the role's credentials, Secrets Manager,
 * S3), starts munged and slurmctld, installs and starts the agent; then `nowscale-agent report` answers
 * inside, and the control plane's HTTP channel reaches the agent from the host. Then a compute instance
 * launched by the local provider (its AWS compute user data run in a namespace on the master's bridge,
 * lib/providers/local/testbed-nodes.ts) joins this master, runs a job, and is terminated (its node
 * removed from the master's Slurm).
 *
 * Twice, once per branch of the script: on an image booted with systemd as PID 1 (as on a cloud
 * instance: munge, slurmctld and the agent as systemd units, the agent's hardened unit included), and
 * on an image without systemd (a container image: systemctl absent, the daemons started directly).
 *
 * The "image" differs from the host in what a cloud image would differ: slurmctld, munge and awscli
 * (and what depends on them) are removed first and apt's cache emptied, so the script really downloads
 * and installs them; apt reaches Debian through an HTTP proxy on the host's end of the veth (the host
 * neither forwards nor NATs); the host's own units that make no sense in a throw-away machine
 * (postgresql, getty, apt's timers) are masked. Without systemd, policy-rc.d keeps package installation
 * from starting daemons, as in container images.
 *
 * Ports and sockets are the root's own (its network stack, its /run), so the host's slurmctld and
 * munged, used by the other suites, are untouched. Everything goes in afterAll, also on failure.
 */
const HOSTNAME = "nsmaster";
const REGION = "eu-west-1";
const BUCKET = "nowscale-artifacts-local";
const AGENT_KEY_PATH = "agent/nowscale-agent.js";
const AGENT_BUNDLE = resolve(import.meta.dirname, "..", "..", "dist", "agent", "nowscale-agent.js");
const REINSTALLED = ["slurmctld", "munge", "awscli"];
/** dpkg-query's format for a package's status (its own ${...} syntax, not a template). */
const STATUS_FORMAT = ["$", "{Status}"].join("");
/** The host's units a throw-away master must not start (they would only slow its boot or clash). */
const MASKED = [
  "getty@tty1.service",
  "getty.target",
  "console-getty.service",
  "postgresql.service",
  "slurmd.service",
  "apt-daily.timer",
  "apt-daily-upgrade.timer",
  "dpkg-db-backup.timer",
  "e2scrub_all.timer",
  "e2scrub_reap.service",
  "fstrim.timer",
  "man-db.timer",
];
const CA_IN_ROOT = "/usr/local/share/nowscale-local/ca-bundle.pem";

/** One master per branch of the script; each with its own bridge, subnet and compute prefix. */
const VARIANTS = [
  { init: "systemd", name: "nsmboot", bridge: "nsmbbr", subnet: "192.168.246", computePrefix: "nsmbc-" },
  { init: "sleep", name: "nsmbootc", bridge: "nsmcbr", subnet: "192.168.245", computePrefix: "nsmcc-" },
] as const;

describe.each(VARIANTS)("the master bootstrap, executed in an isolated root (init: $init)", (variant) => {
  const NAME = variant.name;
  const HOST_ADDRESS = `${variant.subnet}.1`;
  const ROOT_ADDRESS = `${variant.subnet}.2`;
  const systemd = variant.init === "systemd";
  let work = "";
  let root: IsolatedRoot | undefined;
  let endpoints: InstanceEndpoints | undefined;
  let provider: CloudProvider | undefined;
  /** Why Debian's mirror cannot be reached from here, when it cannot. */
  let debianUnreachable: string | undefined;
  let boot: { code: number | null; out: string; seconds: number } | undefined;
  let bootLog = "";
  const agentKey = randomBytes(48).toString("base64");
  const mungeKey = randomBytes(1024);
  const hostMungeSocket = "/run/munge/munge.socket.2";
  const hostMungeBefore = existsSync(hostMungeSocket) ? statSync(hostMungeSocket).ino : undefined;

  /** Runs inside the root; the failure message carries the bootstrap log's tail. */
  const inRoot = async (argv: string[], env: Record<string, string> = {}) => {
    const r = await (root as IsolatedRoot).exec(argv, { env, timeoutMs: 60_000 });
    return {
      ...r,
      why: `${argv.join(" ")}: ${r.stderr}${r.error ?? ""}\n--- bootstrap log tail:\n${bootLog.slice(-3000)}`,
    };
  };

  beforeAll(async () => {
    const unavailable = await isolatedRootUnavailableReason();
    if (unavailable !== undefined) throw new Error(`the isolated root cannot run here: ${unavailable}`);
    if (!existsSync(AGENT_BUNDLE)) throw new Error(`${AGENT_BUNDLE} is missing: run "npm run build" first`);
    work = await mkdtemp(join(tmpdir(), "nowscale-master-boot-"));
    await mkdir(join(work, "endpoints"));
    // The master and its compute nodes share a bridge, as a VPC subnet
    await ensureBridge({ bridge: variant.bridge, hostAddress: HOST_ADDRESS });
    root = await startIsolatedRoot({
      bridge: variant.bridge,
      name: NAME,
      hostAddress: HOST_ADDRESS,
      rootAddress: ROOT_ADDRESS,
      hostname: HOSTNAME,
      workDir: join(work, "iso"),
      proxyHosts: ["deb.debian.org"],
      init: variant.init,
    });

    // The instance's cloud: IMDSv2 (role credentials), Secrets Manager and S3, inside its namespace
    const bundle = await readFile(AGENT_BUNDLE);
    endpoints = await serveInstanceEndpoints(
      NAME,
      {
        cloud: "aws",
        instanceId: HOSTNAME,
        instanceType: "c5.large",
        zone: `${REGION}a`,
        region: REGION,
        privateIp: ROOT_ADDRESS,
      },
      [
        { name: "nowscale/c-mboot/munge", binary: mungeKey },
        { name: "nowscale/c-mboot/agent", text: agentKey },
      ],
      [{ bucket: BUCKET, key: AGENT_KEY_PATH, body: bundle }],
      { dir: join(work, "endpoints") },
    );

    // The image: apt through the proxy, its host name, the packages absent; with systemd, booted
    await root.writeFile(
      "/etc/apt/apt.conf.d/00nowscale-proxy",
      `Acquire::http::Proxy "${root.proxyUrl}";\n`,
    );
    await root.writeFile("/etc/hostname", `${HOSTNAME}\n`);
    await root.writeFile("/etc/hosts", await readFile(endpoints.hostsFile));
    await root.writeFile(CA_IN_ROOT, await readFile(endpoints.env.AWS_CA_BUNDLE as string));
    if (!systemd) await root.writeFile("/usr/sbin/policy-rc.d", "#!/bin/sh\nexit 101\n", 0o755);
    // Without Debian's mirror the install step cannot run here: the image is then marked pre-installed
    // (the script's own way to skip it), its test says why, and every later step still runs.
    debianUnreachable = await debianMirrorUnreachable();
    if (debianUnreachable !== undefined) {
      console.log(`package installation cannot run here: ${debianUnreachable}`);
      await root.writeFile("/etc/nowscale/preinstalled", "");
    }
    const prepared = await root.exec(
      [
        "sh",
        "-c",
        [
          ...MASKED.map((unit) => `ln -sf /dev/null /etc/systemd/system/${unit}`),
          ...(systemd ? [] : ["rm -f /usr/bin/systemctl"]),
          ...(debianUnreachable === undefined
            ? [`apt-get remove -y -q ${REINSTALLED.join(" ")}`, "apt-get clean"]
            : []),
        ].join(" && "),
      ],
      { env: { DEBIAN_FRONTEND: "noninteractive" }, timeoutMs: 120_000 },
    );
    if (prepared.code !== 0) throw new Error(`preparing the image failed: ${prepared.stderr}`);
    if (systemd) {
      const state = await root.boot(120_000);
      // A unit of the host's that fails here is the host's business, not the script's: say which.
      if (state !== "running") console.log(`the isolated root booted ${state}`);
    }

    // Act: the user data as cloud-init runs it (a file under /var/lib/cloud, executed as root)
    const script = renderMasterBootstrapScript({
      clusterId: "c-mboot",
      region: REGION,
      mungeKeySecretId: "nowscale/c-mboot/munge",
      agentKeySecretId: "nowscale/c-mboot/agent",
      queues: [{ name: "compute" }],
      agentUrl: `s3://${BUCKET}/${AGENT_KEY_PATH}`,
      agentSha256: createHash("sha256").update(bundle).digest("hex"),
    });
    await root.writeFile("/var/lib/cloud/instance/scripts/part-001", script, 0o700);
    const caEnv = Object.fromEntries(Object.keys(endpoints.env).map((k) => [k, CA_IN_ROOT]));
    const started = Date.now();
    const r = await root.exec(["/var/lib/cloud/instance/scripts/part-001"], {
      env: caEnv,
      timeoutMs: 600_000,
    });
    boot = {
      code: r.code,
      out: `${r.stdout}${r.stderr}${r.error ?? ""}`,
      seconds: (Date.now() - started) / 1000,
    };
    bootLog = await root.readFile("/var/log/nowscale-bootstrap.log").catch(() => boot?.out ?? "");
    console.log(
      `master bootstrap (init ${variant.init}): exit ${boot.code} after ${boot.seconds.toFixed(1)} s`,
    );
  }, 900_000);

  afterAll(async () => {
    // Every step runs whatever the one before did: a failed test must not leave anything behind.
    const failures: unknown[] = [];
    const step = async (what: () => Promise<unknown>) => {
      await what().catch((error: unknown) => failures.push(error));
    };
    // Compute instances first (their namespaces, endpoints and records), then the master
    const left = await listNamespaceNodes(variant.computePrefix);
    if (provider !== undefined && left.length > 0)
      await step(() => (provider as CloudProvider).terminate(left));
    for (const node of await listNamespaceNodes(variant.computePrefix)) {
      await step(() => killNamespaceProcesses(`${variant.computePrefix}${node}`, 1000));
      await step(() => removeNamespace(`${variant.computePrefix}${node}`));
    }
    await step(async () => endpoints?.close());
    await step(async () => root?.close());
    await step(() => removeBridge(variant.bridge));
    if (work !== "") await runCommand("rm", ["-rf", work]);
    expect(failures).toEqual([]);
    // Assess the clean-up: no namespace, veth, bridge, process or mount of the root or its nodes is left
    expect(await listNamespaceNodes(variant.computePrefix)).toEqual([]);
    expect((await runCommand("ip", ["link", "show", "dev", variant.bridge])).code).not.toBe(0);
    const netns = await runCommand("ip", ["netns", "list"]);
    expect(netns.stdout).not.toMatch(new RegExp(`^${NAME}\\b`, "m"));
    expect((await runCommand("ip", ["link", "show", "dev", `${NAME}h`])).code).not.toBe(0);
    expect(await readFile("/proc/self/mountinfo", "utf8")).not.toContain(work === "" ? "\0" : work);
    expect(
      readdirSync("/proc").filter((p) => /^\d+$/.test(p) && cmdlineOf(p).includes(work === "" ? "\0" : work)),
    ).toEqual([]);
    // The host's own munged socket (the other suites') is the same file as before
    expect(existsSync(hostMungeSocket) ? statSync(hostMungeSocket).ino : undefined).toBe(hostMungeBefore);
  }, 300_000);

  it("runs the script to the end", () => {
    expect(boot?.code, `${boot?.out.slice(-4000)}`).toBe(0);
    expect(bootLog).toMatch(/nowscale-bootstrap: done/);
    // Neither key is ever in the log
    expect(bootLog).not.toContain(agentKey);
    expect(bootLog).not.toContain(mungeKey.toString("base64").slice(0, 40));
  });

  it("installs slurmctld, munge and awscli from Debian's repositories", async () => {
    if (debianUnreachable !== undefined)
      throw new Error(
        `not run: deb.debian.org cannot be reached from this machine (${debianUnreachable}); ` +
          "the script ran on an image marked pre-installed, and the later steps ran",
      );
    const log = (root as IsolatedRoot).proxyLog;
    for (const pkg of REINSTALLED) {
      const status = await inRoot(["dpkg-query", "-W", "-f", STATUS_FORMAT, pkg]);
      expect(status.stdout, status.why).toBe("install ok installed");
      expect(
        log.some((l) =>
          new RegExp(`^GET deb\\.debian\\.org/debian\\S*/pool/main/\\S+/${pkg}_[^/]+\\.deb$`).test(l),
        ),
        pkg,
      ).toBe(true);
    }
    expect(log.some((l) => l.includes("(refused)"))).toBe(false);
  });

  it("fetches the keys from Secrets Manager and the agent from S3 with the role's credentials", () => {
    const requests = (endpoints as InstanceEndpoints).requests;
    expect(requests.some((r) => /^PUT \S+ \/latest\/api\/token$/.test(r))).toBe(true);
    expect(requests.some((r) => r.includes("/latest/meta-data/iam/security-credentials/"))).toBe(true);
    expect(requests.filter((r) => r.startsWith(`POST secretsmanager.${REGION}.amazonaws.com`))).toHaveLength(
      2,
    );
    expect(requests.some((r) => r.startsWith("GET ") && r.includes(AGENT_KEY_PATH))).toBe(true);
  });

  it("starts munged with the cluster's key and slurmctld on its own address", async () => {
    const key = await inRoot(["cat", "/etc/munge/munge.key"]);
    expect(Buffer.from(key.stdout, "latin1").length).toBeGreaterThan(0);
    const sameKey = await inRoot(["sh", "-c", "sha256sum < /etc/munge/munge.key"]);
    expect(sameKey.stdout.split(" ")[0]).toBe(createHash("sha256").update(mungeKey).digest("hex"));
    const munge = await inRoot(["sh", "-c", "munge -n | unmunge"]);
    expect(munge.code, munge.why).toBe(0);
    expect(munge.stdout).toMatch(/STATUS:\s+Success/);
    const ping = await inRoot(["scontrol", "ping"], { SLURM_CONF: "/etc/slurm/slurm.conf" });
    expect(ping.stdout, ping.why).toMatch(new RegExp(`Slurmctld\\(primary\\) at ${HOSTNAME} is UP`));
    const parts = await inRoot(["sinfo", "-h", "-o", "%R"], { SLURM_CONF: "/etc/slurm/slurm.conf" });
    expect(parts.stdout.split("\n"), parts.why).toContain("compute");
    if (systemd) {
      // On a cloud image they are systemd's units, enabled for the next boot
      const units = await inRoot(["systemctl", "is-active", "munge", "slurmctld", "nowscale-agent"]);
      expect(units.stdout.trim().split("\n"), units.why).toEqual(["active", "active", "active"]);
      const enabled = await inRoot(["systemctl", "is-enabled", "munge", "slurmctld", "nowscale-agent"]);
      expect(enabled.stdout.trim().split("\n"), enabled.why).toEqual(["enabled", "enabled", "enabled"]);
    }
  });

  it("installs and starts the agent: report answers inside, and the control plane's channel from the host", async () => {
    // Prepare: a job waiting for a compute node, which the report must show
    const slurm = { SLURM_CONF: "/etc/slurm/slurm.conf" };
    const job = await inRoot(["sbatch", "--parsable", "-p", "compute", "-N1", "--wrap", "sleep 30"], slurm);
    expect(job.code, job.why).toBe(0);

    // Act
    const report = await inRoot(["node", "/opt/nowscale/nowscale-agent.js", "report"], slurm);
    const channel = new HttpAgentChannel({
      baseUrl: `http://${ROOT_ADDRESS}:8787`,
      key: Buffer.from(agentKey, "utf8"),
    });
    const overHttp = await channel.report();
    const wrongKey = new HttpAgentChannel({ baseUrl: `http://${ROOT_ADDRESS}:8787`, key: randomBytes(48) });

    // Assess
    expect(report.code, report.why).toBe(0);
    const parsed = JSON.parse(report.stdout) as { status: string; jobs: { queue: string; state: string }[] };
    expect(parsed.status).toBe("ok");
    expect(parsed.jobs.map((j) => [j.queue, j.state])).toEqual([["compute", "PENDING"]]);
    expect(overHttp.status).toBe("ok");
    expect(overHttp.status === "ok" ? overHttp.jobs.map((j) => j.queue) : []).toEqual(["compute"]);
    await expect(wrongKey.health()).rejects.toThrow();
  });

  it("a compute instance launched by the local provider joins this master and runs a job", async () => {
    // Prepare: the local provider's instances on the master's bridge, with the cluster's munge key in
    // their own Secrets Manager (as the deployed secret is shared by master and computes)
    const tbDir = join(work, "computes");
    const paths = testbedPaths(tbDir);
    await mkdir(paths.mungeDir, { recursive: true, mode: 0o700 });
    await mkdir(paths.mungeSocketDir, { recursive: true });
    await writeFile(paths.mungeKey, mungeKey, { mode: 0o400 });
    // Slurm's clients on the host (terminate removes the node from Slurm) reach the root's slurmctld
    // over the bridge, with credentials from the root's own munged (through /proc/PID/root).
    const masterConf = await (root as IsolatedRoot).readFile("/etc/slurm/slurm.conf");
    const mungeSocket = `/proc/${(root as IsolatedRoot).pid}/root/run/munge/munge.socket.2`;
    await writeFile(paths.conf, `${masterConf}AuthInfo=socket=${mungeSocket}\n`);
    const testbed: Testbed = {
      stateDir: tbDir,
      confPath: paths.conf,
      env: { ...process.env, SLURM_CONF: paths.conf },
      controlAddress: ROOT_ADDRESS,
      slurmctldPort: 6817,
      netnsPrefix: variant.computePrefix,
      network: { bridge: variant.bridge, hostAddress: HOST_ADDRESS },
    };
    provider = createLocalProvider({
      nodes: testbedNamespaceNodes(testbed, { cloud: "aws", region: REGION }),
      stateDir: join(tbDir, "instances"),
      subnetPrefix: variant.subnet,
    });
    const slurm = { SLURM_CONF: "/etc/slurm/slurm.conf" };
    await inRoot(["scancel", "--partition=compute"], slurm);

    // Act: launch one node with the AWS compute user data aimed at this master
    const launched = await provider.launch({
      clusterId: "c-mboot",
      queue: "compute",
      round: "cycle-1.0",
      candidates: [{ instanceType: "local.c2m2", zone: "local-a", chargeType: "ON_DEMAND" }],
      count: 1,
      allOrNothing: true,
      imageId: "local",
      userData: renderBootstrapScript({
        clusterId: "c-mboot",
        identityFrom: "aws-imds",
        queue: "compute",
        instanceType: "local.c2m2",
        zone: "local-a",
        cpus: 2,
        realMemoryMiB: 2048,
        controllerAddress: ROOT_ADDRESS,
        controllerPort: 6817,
        mungeKey: { source: "aws-secretsmanager", secretId: LOCAL_MUNGE_SECRET, region: REGION },
      }),
    });
    const node = launched.instances[0]?.id ?? "";
    expect(node, JSON.stringify(launched.failures)).not.toBe("");
    let state = "";
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline && !/^idle/i.test(state)) {
      state = (await inRoot(["sinfo", "-h", "-n", node, "-o", "%T"], slurm)).stdout.trim();
      if (!/^idle/i.test(state)) await new Promise((r) => setTimeout(r, 1000));
    }
    const consoleLog = (await provider.consoleOutput?.(node, 60)) ?? "";
    expect(state, `node ${node} in the master's Slurm: "${state}"\n--- its console:\n${consoleLog}`).toMatch(
      /^idle/i,
    );

    // Act: a job on the master's queue
    const job = await inRoot(
      ["sbatch", "--parsable", "--wait", "-p", "compute", "-N1", "--wrap", "hostname"],
      slurm,
    );

    // Assess: it ran on the launched node and ended well
    expect(job.code, job.why).toBe(0);
    const shown = await inRoot(["scontrol", "show", "job", job.stdout.trim()], slurm);
    expect(shown.stdout).toMatch(/JobState=COMPLETED/);
    expect(shown.stdout).toMatch(new RegExp(`NodeList=${node}\\b`));
    expect(consoleLog).toContain("user data exited with 0");

    // Act: terminate
    await provider.terminate([node]);

    // Assess: the instance is gone, and so is its node in the master's Slurm
    expect(await listNamespaceNodes(variant.computePrefix)).toEqual([]);
    const after = await inRoot(["scontrol", "show", "node", node], slurm);
    expect(after.stdout).not.toContain(`NodeName=${node}`);
  });
});

/** Why http://deb.debian.org cannot be reached from the host (the proxy's side), or undefined. */
async function debianMirrorUnreachable(): Promise<string | undefined> {
  try {
    const res = await fetch("http://deb.debian.org/debian/dists/bookworm/InRelease", {
      method: "HEAD",
      signal: AbortSignal.timeout(15_000),
    });
    return res.ok ? undefined : `HTTP ${res.status}`;
  } catch (error) {
    return String((error as Error).cause ?? (error as Error).message);
  }
}

function cmdlineOf(pid: string): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8");
  } catch {
    return "";
  }
}
