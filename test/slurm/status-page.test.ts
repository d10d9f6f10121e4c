import { spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type BrowserContext, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readApiToken } from "../../lib/local/api-auth.js";
import { demoCluster } from "../../lib/local/demo.js";
import { localPaths } from "../../lib/local/settings.js";
import { testbedUnavailableReason } from "../../lib/providers/local/slurm-testbed.js";
import { runCommand } from "../../scheduler-plugins/slurm/exec.js";
import { CLI } from "../support/cli.js";

/**
 * The status page of a running local mode in headless Chromium (Debian's chromium, driven by
 * playwright-core): opened with the one-time link `nowscale local link` prints, it loads, shows the
 * cluster, and its chart follows the nodes launched for a job; the same link a second time, or the page
 * without one, shows no data.
 * The screenshot goes to .test-results/status-page.png. Its own prefix, subnet and ports keep it apart
 * from the other real-Slurm suites.
 */
const CHROMIUM = "/usr/bin/chromium";
const PORTS = { api: 7480, agent: 7419, slurmctld: 7417, slurmd: 7418 };
const API = `http://127.0.0.1:${PORTS.api}`;
const SCREENSHOT = resolve(import.meta.dirname, "..", "..", ".test-results", "status-page.png");

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 240_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe("the status page in headless Chromium", () => {
  let stateDir = "";
  let profile = "";
  let browser: BrowserContext | undefined;

  beforeAll(async () => {
    const unavailable = testbedUnavailableReason();
    if (unavailable !== undefined) throw new Error(`the real-Slurm suite cannot run here: ${unavailable}`);
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first`);
    stateDir = await mkdtemp(join(tmpdir(), "nowscale-status-page-"));
    profile = await mkdtemp(join(tmpdir(), "nowscale-chromium-"));
    const up = cli([
      "local",
      "up",
      "--state-dir",
      stateDir,
      "--port",
      String(PORTS.api),
      "--agent-port",
      String(PORTS.agent),
      "--slurmctld-port",
      String(PORTS.slurmctld),
      "--slurmd-port",
      String(PORTS.slurmd),
      "--prefix",
      "nssp-",
      "--subnet",
      "192.168.249",
      "--boot-delay",
      "200",
    ]);
    if (up.status !== 0) throw new Error(`local up failed: ${up.out}`);
    // A fresh profile (the --user-data-dir the brief asks for): playwright takes it as an argument here.
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      viewport: { width: 1100, height: 900 },
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    if (stateDir !== "") {
      const down = cli(["local", "down", "--state-dir", stateDir]);
      expect(down.status, down.out).toBe(0);
    }
    if (profile !== "") await rm(profile, { recursive: true, force: true });
  }, 240_000);

  it("loads, shows the cluster, and its chart follows the nodes", async () => {
    // Prepare: a running cluster
    const created = await fetch(`${API}/clusters`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${readApiToken(stateDir)}` },
      body: JSON.stringify(demoCluster(5)),
    });
    expect(created.status).toBe(202);
    const { clusterId } = (await created.json()) as { clusterId: string };
    const page = await (browser as BrowserContext).newPage();
    const external: string[] = [];
    page.on("request", (r) => {
      if (!r.url().startsWith(API)) external.push(r.url());
    });

    const link = cli(["local", "link", "--state-dir", stateDir]);
    expect(link.status, link.out).toBe(0);
    const url = link.out.trim();
    expect(url).toMatch(new RegExp(`^${API}/#login=[\\w-]{43}$`));

    // Act: open the page with the link
    await page.goto(url);

    // Assess: the cluster is shown and becomes RUNNING
    const card = page.locator(`[data-cluster="${clusterId}"]`);
    await card.waitFor({ timeout: 60_000 });
    await card.locator(".status", { hasText: /^RUNNING$/ }).waitFor({ timeout: 60_000 });
    const pointsBefore = await page.locator("#line-nodes").getAttribute("points");

    // Act: a job makes the cluster grow
    const env = { ...process.env, SLURM_CONF: join(localPaths(stateDir).slurmDir, "slurm.conf") };
    const job = await runCommand(
      "sbatch",
      ["-p", "compute", "-N2", "--output=/dev/null", "--wrap", "sleep 20"],
      { env },
    );
    expect(job.code, job.stderr).toBe(0);

    // Assess: nodes appear in the table and the chart rises above zero
    // (the page's CSP forbids evaluated strings, so the test reads the chart's attribute; y = 200 is zero)
    const deadline = Date.now() + 90_000;
    let lowest = 200;
    while (lowest >= 200 && Date.now() < deadline) {
      const points = (await page.locator("#line-nodes").getAttribute("points")) ?? "";
      const ys = points
        .split(" ")
        .filter(Boolean)
        .map((p) => Number(p.split(",")[1]));
      lowest = Math.min(200, ...ys);
      await page.waitForTimeout(1000);
    }
    expect(lowest).toBeLessThan(200);
    await card.getByText(/Nodes \([1-9]/).waitFor({ timeout: 30_000 });
    expect(await page.locator("#line-nodes").getAttribute("points")).not.toBe(pointsBefore);
    await expect(card.getByText("compute", { exact: true }).first().isVisible()).resolves.toBe(true);
    await mkdir(resolve(SCREENSHOT, ".."), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(statSync(SCREENSHOT).size).toBeGreaterThan(10_000);
    expect(external).toEqual([]);
    // The code left the address bar at once
    expect(page.url()).toBe(`${API}/`);

    // Act: the same link in another tab (spent), and the page without any link
    const reused = await (browser as BrowserContext).newPage();
    await reused.goto(url);
    const bare = await (browser as BrowserContext).newPage();
    await bare.goto(`${API}/`);

    // Assess: neither shows data; each says how to get in
    await reused.locator("#auth", { hasText: /used up or expired/ }).waitFor({ timeout: 10_000 });
    await bare.locator("#auth", { hasText: /nowscale local link/ }).waitFor({ timeout: 10_000 });
    await bare.waitForTimeout(2500);
    expect(await bare.locator("[data-cluster]").count()).toBe(0);
    expect(await reused.locator("[data-cluster]").count()).toBe(0);
  }, 240_000);
});
