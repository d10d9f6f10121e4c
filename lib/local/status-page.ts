/**
 * The status page at the API's root: one self-contained HTML document (inline CSS and JS, no external
 * request) that polls /status.json every two seconds and draws clusters, queues, nodes and an SVG chart
 * of nodes against pending demand. Every value is inserted with textContent, never as HTML.
 *
 * The page itself holds no data; /status.json needs a page session (lib/local/api-auth.ts). Opened with
 * a one-time link `/#login=CODE`, the script removes the fragment from the address bar and history,
 * trades the code for a session at /local/sessions and keeps it in this tab's sessionStorage. Without
 * a session it says how to get a link.
 */
export function statusPageHtml(pollMs = 2000): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>NowScale local</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d2330; background: #f7f8fa; }
  h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 24px 0 8px; }
  .muted { color: #667; } .card { background: #fff; border: 1px solid #dde1e8; border-radius: 6px; padding: 12px 16px; margin: 12px 0; }
  table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eceff3; }
  th { font-weight: 600; color: #445; } .status { font-weight: 600; }
  svg { width: 100%; height: 220px; background: #fff; border: 1px solid #dde1e8; border-radius: 6px; }
  .legend span { display: inline-block; margin-right: 16px; } .sw { display: inline-block; width: 12px; height: 3px; vertical-align: middle; margin-right: 4px; }
</style>
</head>
<body>
<h1>NowScale</h1>
<div class="muted">local mode · updated <span id="updated">never</span></div>
<p id="auth" class="card" hidden></p>
<h2>Nodes and pending demand</h2>
<div class="legend"><span><i class="sw" style="background:#2f6fdf"></i>nodes</span><span><i class="sw" style="background:#e8812c"></i>pending jobs</span></div>
<svg id="chart" viewBox="0 0 800 220" preserveAspectRatio="none" role="img" aria-label="nodes and pending jobs over time">
  <polyline id="line-nodes" fill="none" stroke="#2f6fdf" stroke-width="2" points=""></polyline>
  <polyline id="line-pending" fill="none" stroke="#e8812c" stroke-width="2" points=""></polyline>
  <text id="chart-max" x="6" y="14" font-size="12" fill="#667"></text>
</svg>
<h2>Clusters</h2>
<div id="clusters"><p class="muted">no cluster yet: create one with the API or run npm run demo</p></div>
<script>
(() => {
  const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = String(text); if (cls) e.className = cls; return e; };
  const table = (headers, rows) => {
    const t = el("table"); const h = el("tr");
    for (const x of headers) h.appendChild(el("th", x));
    t.appendChild(h);
    for (const r of rows) { const tr = el("tr"); for (const x of r) tr.appendChild(el("td", x)); t.appendChild(tr); }
    return t;
  };
  function drawChart(history) {
    const w = 800, h = 220, pad = 20;
    const max = Math.max(1, ...history.map((p) => Math.max(p.nodes, p.pending)));
    const t0 = history.length ? history[0].t : 0, t1 = history.length ? history[history.length - 1].t : 1;
    const x = (t) => pad + (t1 === t0 ? 0 : ((t - t0) / (t1 - t0)) * (w - 2 * pad));
    const y = (v) => h - pad - (v / max) * (h - 2 * pad);
    const pts = (key) => history.map((p) => x(p.t).toFixed(1) + "," + y(p[key]).toFixed(1)).join(" ");
    document.getElementById("line-nodes").setAttribute("points", pts("nodes"));
    document.getElementById("line-pending").setAttribute("points", pts("pending"));
    document.getElementById("chart-max").textContent = "max " + max;
    document.getElementById("chart").dataset.points = String(history.length);
  }
  function render(s) {
    document.getElementById("updated").textContent = new Date(s.generatedAt).toLocaleTimeString();
    drawChart(s.history);
    const root = document.getElementById("clusters");
    if (s.clusters.length === 0) return;
    root.replaceChildren();
    for (const c of s.clusters) {
      const card = el("div", undefined, "card"); card.dataset.cluster = c.clusterId;
      const title = el("div"); title.appendChild(el("strong", c.name + " (" + c.clusterId + ") "));
      title.appendChild(el("span", c.status, "status")); card.appendChild(title);
      if (c.reportError) card.appendChild(el("div", "agent: " + c.reportError, "muted"));
      card.appendChild(el("h2", "Queues"));
      card.appendChild(table(["queue", "nodes", "min", "max", "pending jobs", "running jobs", "protected"],
        c.queues.map((q) => [q.name, q.nodes, q.minSize, q.maxSize, q.pendingJobs, q.runningJobs, q.protected ? "yes" : "no"])));
      card.appendChild(el("h2", "Nodes (" + c.nodes.length + ")"));
      card.appendChild(c.nodes.length === 0 ? el("p", "no compute nodes", "muted") :
        table(["node", "queue", "type", "zone", "NowScale", "Slurm"], c.nodes.map((n) => [n.name, n.queue, n.instanceType, n.zone, n.status, n.slurm])));
      root.appendChild(card);
    }
  }
  const KEY = "nowscale-session";
  const auth = (text) => { const a = document.getElementById("auth"); a.textContent = text; a.hidden = text === ""; };
  const signIn = "sign in: run 'nowscale local link' as root on this machine and open the link it prints";
  async function login() {
    const m = /^#login=([A-Za-z0-9_-]{16,128})$/.exec(location.hash);
    if (m === null) return;
    // The code is spent now: keep it out of the address bar and the history.
    history.replaceState(null, "", location.pathname + location.search);
    try {
      const r = await fetch("local/sessions", { method: "POST", cache: "no-store", headers: { authorization: "Bearer " + m[1] } });
      const body = await r.json();
      if (r.status === 201 && typeof body.session === "string") sessionStorage.setItem(KEY, body.session);
      else auth("this link is used up or expired: " + signIn.slice(9));
    } catch (e) { auth("the local API did not answer: is the local mode up?"); }
  }
  async function poll() {
    const session = sessionStorage.getItem(KEY);
    if (session === null) { if (document.getElementById("auth").hidden) auth(signIn); }
    else {
      try {
        const r = await fetch("status.json", { cache: "no-store", headers: { authorization: "Bearer " + session } });
        if (r.status === 401) { sessionStorage.removeItem(KEY); auth("the session ended (local mode restarted?): " + signIn); }
        else if (r.ok) { auth(""); render(await r.json()); }
      } catch (e) { /* next poll */ }
    }
    setTimeout(poll, ${Math.max(250, Math.floor(pollMs))});
  }
  login().finally(poll);
})();
</script>
</body>
</html>
`;
}
