import type { PolicyMetrics } from "./metrics.js";
import type { PolicyRun } from "./simulate.js";
import { BREAKDOWN, duration, type SimulationSummary } from "./summary.js";
import type { TimelinePoint } from "./timeline.js";

/**
 * The `--out report.html` page: one self-contained file (inline CSS and SVG, no script, no network) with
 * each policy's capacity against demand over time, the wait-time distribution and the metrics side by side.
 */

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"];
const W = 900;
const H = 220;
const PAD = { left: 60, right: 20, top: 16, bottom: 32 };
const TIME_BUCKETS = 600;

export function renderHtmlReport(summary: SimulationSummary, runs: readonly PolicyRun[]): string {
  const color = (i: number) => COLORS[i % COLORS.length] as string;
  const from = Math.min(...runs.map((r) => r.span.startMs));
  const to = Math.max(...runs.map((r) => r.span.endMs));
  const series = runs.map((r) => r.timeline?.downsample(from, to, TIME_BUCKETS) ?? []);

  const timeCharts = runs
    .map(
      (
        r,
        i,
      ) => `<h3><span class="sw" style="background:${color(i)}"></span>${esc(r.policy)} — peak ${r.metrics.peakNodes} nodes</h3>
${timeChart(series[i] ?? [], from, to, color(i))}`,
    )
    .join("\n");

  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>NowScale simulation: ${esc(summary.trace.file)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px auto;max-width:960px;color:#222}
h1{font-size:20px}h2{font-size:17px;margin-top:28px}h3{font-size:14px;margin:14px 0 2px}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}td,th{padding:3px 10px;border-bottom:1px solid #ddd;text-align:right}
th:first-child,td:first-child{text-align:left}.best{font-weight:bold;color:#0a6b0a}
.sw{display:inline-block;width:10px;height:10px;margin-right:6px;border-radius:2px}
svg{display:block}.note{color:#666;font-size:12px}
</style></head><body>
<h1>NowScale trace simulation</h1>
<p>Trace <b>${esc(summary.trace.file)}</b>: ${summary.trace.jobs} jobs replayed (${summary.trace.records} records).
Config ${esc(summary.settings.config)}; poll every ${summary.settings.pollSeconds} s; boot ${esc(summary.settings.bootSeconds)} s; seed ${summary.settings.seed}.</p>
<h2>Policies side by side</h2>
${metricsTable(summary.policies)}
${barCharts(summary.policies, color)}
<h2>Against the clairvoyant bound</h2>
<p>Bound: <b>${summary.bound.vcpuHours.toFixed(0)} vCPU-hours</b>${summary.bound.cost === null ? "" : ` (${summary.bound.cost.toFixed(0)} USD)`}: what a
clairvoyant operator pays when every job starts at its submit time and each instance boots for ${summary.bound.bootSeconds} s
(work ${summary.bound.workHours.toFixed(0)}, rounding to whole units ${summary.bound.roundingHours.toFixed(0)}, boots ${summary.bound.bootHours.toFixed(0)},
short gaps kept idle ${summary.bound.idleHours.toFixed(0)}). A policy that makes jobs wait can go below it; read each ratio with its waits.</p>
<p class="note">The excess of each policy's vCPU-hours over the bound, by where it goes (each part less the bound's own part of that kind;
a part can be negative, e.g. idling through a gap where the bound boots again).</p>
${excessChart(summary, color)}
<h2>Cost against wait</h2>
<p class="note">Each policy's cost (or vCPU-hours) as a multiple of the bound against its mean wait; the line joins the policies no other
beats on both (the frontier). Lower left is better.</p>
${frontierChart(summary.policies, color)}
<h2>Wait-time distribution</h2>
<p class="note">Share of completed jobs that waited at most x seconds (log scale); higher and further left is better.</p>
${cdfChart(runs, color)}
<h2>Capacity against demand over time</h2>
<p class="note">Grey area: CPUs of running + pending jobs (demand); dark line: CPUs in use; coloured line: vCPUs of live nodes
(booting and draining included). Each chart has its own vertical scale. Each point is the peak within ${((to - from) / TIME_BUCKETS / 60000).toFixed(0)} min.</p>
${timeCharts}
</body></html>
`;
}

type Row = [string, (m: PolicyMetrics) => number | null, (v: number) => string, "low" | "high" | "none"];

const ROWS: Row[] = [
  ["completed jobs", (m) => m.completedJobs, String, "high"],
  ["jobs that never started", (m) => m.neverStartedJobs, String, "low"],
  // Waits count never-started jobs up to the replay's end: lower bounds, marked with "≥" then.
  ["mean wait", (m) => m.meanWaitS, duration, "low"],
  ["p50 wait", (m) => m.p50WaitS, duration, "low"],
  ["p95 wait", (m) => m.p95WaitS, duration, "low"],
  ["max wait", (m) => m.maxWaitS, duration, "low"],
  ["mean bounded slowdown", (m) => m.meanBoundedSlowdown, (v) => v.toFixed(2), "low"],
  ["node-hours", (m) => m.nodeHours, (v) => v.toFixed(0), "low"],
  ["cost (USD)", (m) => m.cost, (v) => v.toFixed(0), "low"],
  ["CPU utilization", (m) => m.cpuUtilization, (v) => `${(v * 100).toFixed(1)}%`, "high"],
  ["instances launched", (m) => m.launches, String, "none"],
  ["peak nodes", (m) => m.peakNodes, String, "none"],
  ["scale-out rounds", (m) => m.scaleOutRounds, String, "none"],
  ["capacity fallbacks", (m) => m.fallbacks, String, "none"],
  ["vCPU-hours", (m) => m.vcpuHours, (v) => v.toFixed(0), "low"],
  ["vCPU-hours ÷ bound", (m) => m.vcpuHoursToBound, (v) => `×${v.toFixed(3)}`, "low"],
  ["cost ÷ bound", (m) => m.costToBound, (v) => `×${v.toFixed(3)}`, "low"],
  ["lower bound node-hours", (m) => m.lowerBoundNodeHours, (v) => v.toFixed(0), "none"],
];

function metricsTable(policies: Record<string, PolicyMetrics>): string {
  const names = Object.keys(policies);
  const head = `<tr><th>metric</th>${names.map((n) => `<th>${esc(n)}</th>`).join("")}</tr>`;
  const body = ROWS.map(([label, get, fmt, better]) => {
    const values = names.map((n) => get(policies[n] as PolicyMetrics));
    const known = values.filter((v): v is number => v !== null);
    const best = better === "low" ? Math.min(...known) : better === "high" ? Math.max(...known) : Number.NaN;
    const lowerBound = (i: number) =>
      label.endsWith(" wait") && (policies[names[i] as string]?.neverStartedJobs ?? 0) > 0 ? "≥" : "";
    const cells = values.map((v, i) =>
      v === null ? "<td>n/a</td>" : `<td${v === best ? ' class="best"' : ""}>${lowerBound(i)}${fmt(v)}</td>`,
    );
    return `<tr><td>${label}</td>${cells.join("")}</tr>`;
  }).join("\n");
  return `<table>${head}\n${body}</table>`;
}

function barCharts(policies: Record<string, PolicyMetrics>, color: (i: number) => string): string {
  const entries = Object.entries(policies);
  const anyCost = entries.every(([, m]) => m.cost !== null);
  const charts: [string, (m: PolicyMetrics) => number, (v: number) => string][] = [
    anyCost
      ? ["cost (USD)", (m) => m.cost ?? 0, (v) => v.toFixed(0)]
      : ["node-hours", (m) => m.nodeHours, (v) => v.toFixed(0)],
    ["mean wait", (m) => m.meanWaitS, duration],
    ["p95 wait", (m) => m.p95WaitS, duration],
  ];
  const bw = 280;
  const rowH = 18;
  return `<div style="display:flex;gap:24px;flex-wrap:wrap">${charts
    .map(([title, get, fmt]) => {
      const max = Math.max(1e-9, ...entries.map(([, m]) => get(m)));
      const bars = entries
        .map(([name, m], i) => {
          const v = get(m);
          const len = (v / max) * (bw - 150);
          const y = 20 + i * rowH;
          return `<text x="0" y="${y + 12}" font-size="12">${esc(name)}</text><rect x="80" y="${y + 2}" width="${len.toFixed(1)}" height="${rowH - 6}" fill="${color(i)}"/><text x="${(84 + len).toFixed(1)}" y="${y + 12}" font-size="11">${fmt(v)}</text>`;
        })
        .join("");
      return `<svg width="${bw}" height="${24 + entries.length * rowH}" role="img" aria-label="${title}"><text x="0" y="12" font-size="12" font-weight="bold">${title}</text>${bars}</svg>`;
    })
    .join("")}</div>`;
}

const PART_COLORS = ["#e15759", "#f28e2b", "#edc948", "#76b7b2", "#b07aa1"];

/** One stacked bar per policy: its excess vCPU-hours over the bound, part by part. */
function excessChart(summary: SimulationSummary, _color: (i: number) => string): string {
  const entries = Object.entries(summary.policies);
  const parts = entries.map(([, m]) =>
    BREAKDOWN.map(
      ([, part, boundPart]) => m.breakdown[part] - (boundPart ? (summary.bound[boundPart] as number) : 0),
    ),
  );
  const pos = parts.map((p) => p.reduce((a, v) => a + Math.max(0, v), 0));
  const neg = parts.map((p) => p.reduce((a, v) => a + Math.min(0, v), 0));
  const max = Math.max(1e-9, ...pos);
  const min = Math.min(0, ...neg);
  const left = 90;
  const width = W - left - 190;
  const x = (v: number) => left + ((v - min) / (max - min)) * width;
  const rowH = 22;
  const bars = entries
    .map(([name, m], i) => {
      const y = 10 + i * rowH;
      let up = 0;
      let down = 0;
      const rects = (parts[i] ?? [])
        .map((v, k) => {
          const from = v >= 0 ? up : down + v;
          if (v >= 0) up += v;
          else down += v;
          const w = Math.abs(x(from + Math.abs(v)) - x(from));
          return `<rect x="${x(from).toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${PART_COLORS[k % PART_COLORS.length]}"><title>${esc(BREAKDOWN[k]?.[0] ?? "")}: ${v.toFixed(0)} vCPU-h</title></rect>`;
        })
        .join("");
      const excess = m.vcpuHours - summary.bound.vcpuHours;
      return `<text x="0" y="${y + 12}" font-size="12">${esc(name)}</text>${rects}<text x="${(x(up) + 4).toFixed(1)}" y="${y + 12}" font-size="11">${excess.toFixed(0)} vCPU-h (×${m.vcpuHoursToBound.toFixed(3)})</text>`;
    })
    .join("");
  const zero = `<line x1="${x(0)}" x2="${x(0)}" y1="4" y2="${14 + entries.length * rowH}" stroke="#444"/>`;
  const legend = BREAKDOWN.map(
    ([label], k) =>
      `<span class="sw" style="background:${PART_COLORS[k % PART_COLORS.length]}"></span>${esc(label)}&nbsp;&nbsp;`,
  ).join("");
  return `<svg width="${W}" height="${20 + entries.length * rowH}" role="img" aria-label="excess over the bound by part">${bars}${zero}</svg><div>${legend}</div>`;
}

/** Cost ratio (or vCPU-hours ratio) against mean wait, one point per policy, frontier joined. */
function frontierChart(policies: Record<string, PolicyMetrics>, color: (i: number) => string): string {
  const entries = Object.entries(policies);
  if (entries.length === 0) return "";
  const ratio = (m: PolicyMetrics) => m.costToBound ?? m.vcpuHoursToBound;
  const xs = entries.map(([, m]) => Math.log10(m.meanWaitS + 1));
  const ys = entries.map(([, m]) => ratio(m));
  const xMax = Math.max(1, ...xs) * 1.05;
  const yMin = Math.min(1, ...ys);
  const yMax = Math.max(yMin + 0.01, ...ys) * 1.01;
  const x = (v: number) => PAD.left + (v / xMax) * (W - PAD.left - PAD.right - 80);
  const y = (v: number) => H - PAD.bottom - ((v - yMin) / (yMax - yMin)) * (H - PAD.top - PAD.bottom);
  const onFrontier = entries.map(([, a]) =>
    entries.every(
      ([, b]) =>
        b === a ||
        !(
          b.meanWaitS <= a.meanWaitS &&
          ratio(b) <= ratio(a) &&
          (b.meanWaitS < a.meanWaitS || ratio(b) < ratio(a))
        ),
    ),
  );
  const front = entries
    .map((_, i) => i)
    .filter((i) => onFrontier[i])
    .sort((a, b) => (xs[a] as number) - (xs[b] as number))
    .map((i) => `${x(xs[i] as number).toFixed(1)},${y(ys[i] as number).toFixed(1)}`);
  const dots = entries
    .map(
      ([name], i) =>
        `<circle cx="${x(xs[i] as number).toFixed(1)}" cy="${y(ys[i] as number).toFixed(1)}" r="4" fill="${color(i)}"/><text x="${(x(xs[i] as number) + 7).toFixed(1)}" y="${(y(ys[i] as number) + (i % 2 === 0 ? 4 : 16)).toFixed(1)}" font-size="11">${esc(name)} ×${(ys[i] as number).toFixed(3)}</text>`,
    )
    .join("");
  const ticks: string[] = [];
  for (const [s, label] of [
    [10, "10 s"],
    [60, "1 min"],
    [600, "10 min"],
    [3600, "1 h"],
    [36_000, "10 h"],
    [360_000, "100 h"],
  ] as const) {
    if (Math.log10(s + 1) > xMax) break;
    ticks.push(
      `<text x="${x(Math.log10(s + 1))}" y="${H - 14}" font-size="11" text-anchor="middle">${label}</text>`,
    );
  }
  for (const f of [0, 0.5, 1]) {
    const v = yMin + f * (yMax - yMin);
    ticks.push(
      `<text x="${PAD.left - 6}" y="${y(v) + 4}" font-size="11" text-anchor="end">×${v.toFixed(2)}</text>`,
    );
  }
  const line =
    front.length > 1
      ? `<polyline fill="none" stroke="#999" stroke-dasharray="4 3" points="${front.join(" ")}"/>`
      : "";
  return `<svg width="${W}" height="${H}" role="img" aria-label="cost against mean wait">${axes()}${ticks.join("")}${line}${dots}</svg>`;
}

function cdfChart(runs: readonly PolicyRun[], color: (i: number) => string): string {
  const maxWait = Math.max(1, ...runs.map((r) => r.waits[r.waits.length - 1] ?? 0));
  const xMax = Math.log10(maxWait + 1);
  const x = (w: number) => PAD.left + (Math.log10(w + 1) / xMax) * (W - PAD.left - PAD.right);
  const y = (f: number) => H - PAD.bottom - f * (H - PAD.top - PAD.bottom);
  const lines = runs
    .map((r, i) => {
      const n = r.waits.length;
      if (n === 0) return "";
      const pts: string[] = [`${x(0).toFixed(1)},${y(0).toFixed(1)}`];
      const steps = Math.min(n, 400);
      for (let s = 1; s <= steps; s++) {
        const k = Math.ceil((s / steps) * n) - 1;
        pts.push(`${x(r.waits[k] as number).toFixed(1)},${y((k + 1) / n).toFixed(1)}`);
      }
      return `<polyline fill="none" stroke="${color(i)}" stroke-width="1.6" points="${pts.join(" ")}"/>`;
    })
    .join("");
  const ticks: string[] = [];
  const marks: [number, string][] = [
    [1, "1 s"],
    [10, "10 s"],
    [60, "1 min"],
    [600, "10 min"],
    [3600, "1 h"],
    [36_000, "10 h"],
    [360_000, "100 h"],
    [3_600_000, "1000 h"],
  ];
  for (const [s, label] of marks) {
    if (s > maxWait) break;
    ticks.push(
      `<line x1="${x(s)}" x2="${x(s)}" y1="${PAD.top}" y2="${H - PAD.bottom}" stroke="#eee"/><text x="${x(s)}" y="${H - 14}" font-size="11" text-anchor="middle">${label}</text>`,
    );
  }
  for (const f of [0, 0.5, 0.9, 1]) {
    ticks.push(
      `<text x="${PAD.left - 6}" y="${y(f) + 4}" font-size="11" text-anchor="end">${f * 100}%</text>`,
    );
  }
  const legend = runs
    .map((r, i) => `<span class="sw" style="background:${color(i)}"></span>${esc(r.policy)}&nbsp;&nbsp;`)
    .join("");
  return `<svg width="${W}" height="${H}" role="img" aria-label="wait-time distribution">${axes()}${ticks.join("")}${lines}</svg><div>${legend}</div>`;
}

function timeChart(points: readonly TimelinePoint[], from: number, to: number, color: string): string {
  if (points.length === 0) return `<p class="note">no timeline recorded</p>`;
  // Each policy on its own scale: a static cluster's backlog would flatten the others.
  const yMax = Math.max(1, ...points.map((p) => Math.max(p.vcpus, p.demandCpus)));
  const span = Math.max(1, to - from);
  const x = (t: number) => PAD.left + ((t - from) / span) * (W - PAD.left - PAD.right);
  const y = (v: number) => H - PAD.bottom - (v / yMax) * (H - PAD.top - PAD.bottom);
  const step = (get: (p: TimelinePoint) => number) => {
    const out: string[] = [];
    points.forEach((p, i) => {
      const next = points[i + 1]?.timeMs ?? to;
      out.push(
        `${x(p.timeMs).toFixed(1)},${y(get(p)).toFixed(1)}`,
        `${x(next).toFixed(1)},${y(get(p)).toFixed(1)}`,
      );
    });
    return out.join(" ");
  };
  const demand = `<polygon fill="#ccc" points="${x(from).toFixed(1)},${y(0)} ${step((p) => p.demandCpus)} ${x(to).toFixed(1)},${y(0)}"/>`;
  const running = `<polyline fill="none" stroke="#555" stroke-width="0.8" points="${step((p) => p.runningCpus)}"/>`;
  const capacity = `<polyline fill="none" stroke="${color}" stroke-width="1.2" points="${step((p) => p.vcpus)}"/>`;
  const ticks: string[] = [];
  const hours = span / 3_600_000;
  const every = niceStep(hours / 8);
  for (let h = 0; h <= hours; h += every) {
    const t = from + h * 3_600_000;
    ticks.push(
      `<text x="${x(t).toFixed(1)}" y="${H - 14}" font-size="11" text-anchor="middle">${h >= 48 ? `${(h / 24).toFixed(0)}d` : `${h.toFixed(0)}h`}</text>`,
    );
  }
  for (const f of [0, 0.5, 1]) {
    ticks.push(
      `<text x="${PAD.left - 6}" y="${y(f * yMax) + 4}" font-size="11" text-anchor="end">${Math.round(f * yMax)}</text>`,
    );
  }
  ticks.push(
    `<text x="12" y="${PAD.top + 70}" font-size="11" transform="rotate(-90 12 ${PAD.top + 70})">vCPUs</text>`,
  );
  return `<svg width="${W}" height="${H}" role="img" aria-label="capacity against demand">${demand}${running}${capacity}${axes()}${ticks.join("")}</svg>`;
}

function axes(): string {
  return `<line x1="${PAD.left}" y1="${H - PAD.bottom}" x2="${W - PAD.right}" y2="${H - PAD.bottom}" stroke="#888"/><line x1="${PAD.left}" y1="${PAD.top}" x2="${PAD.left}" y2="${H - PAD.bottom}" stroke="#888"/>`;
}

function niceStep(raw: number): number {
  for (const s of [1, 2, 6, 12, 24, 48, 24 * 7, 24 * 14, 24 * 30, 24 * 90, 24 * 365]) if (s >= raw) return s;
  return 24 * 365 * 10;
}

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
