// tickcore live page: polls the server's JSON endpoints (/healthz, /v1/symbols, /v1/symbols/SYM,
// /v1/memory once a second; /v1/correlation, /v1/mst, /v1/clusters every 5 s) and draws with plain
// DOM and canvas. The MST is drawn with a radial tree layout: rooted at its highest-degree node,
// each subtree gets an angle in proportion to its leaves, depth is the radius; nodes are coloured
// by their /v1/clusters cluster. Drawn counts are left in data-* attributes for the tests. No library, no
// build step: the files are embedded into the binary (server/web.c). With http.token set, the
// token comes from the URL (#token=...) or is asked for once, and kept for the tab's session.
"use strict";
const $ = (id) => document.getElementById(id);
const state = { rows: [], sortKey: "volume", sortDesc: true, book: null, asked: false,
                lastMsgs: null, lastT: null, rss: [], xsAt: -Infinity };

function token() {
  const m = /[#&]token=([^&]+)/.exec(location.hash);
  if (m) { sessionStorage.setItem("tickcore.token", decodeURIComponent(m[1])); history.replaceState(null, "", location.pathname); }
  return sessionStorage.getItem("tickcore.token");
}

async function get(path) {
  const t = token();
  const r = await fetch(path, { headers: t ? { Authorization: "Bearer " + t } : {}, cache: "no-store" });
  if (r.status === 401) {
    if (!state.asked) {
      state.asked = true;
      const v = window.prompt("This tickcore server wants its http.token:");
      if (v) { sessionStorage.setItem("tickcore.token", v); return get(path); }
    }
    throw new Error("unauthorized: open the page with #token=... or reload and give the token");
  }
  const body = await r.json();
  if (!r.ok) { const e = new Error(body.error ? body.error.message : r.statusText); e.status = r.status; throw e; }
  return body;
}

const fmtInt = (v) => (v == null ? "–" : Math.round(v).toLocaleString("en-US"));
const fmtPx = (v) => (v == null || !isFinite(v) ? "–" : v.toFixed(v < 1 ? 4 : 2));
const fmtBytes = (v) => (v == null ? "–" : v >= 1 << 30 ? (v / 2 ** 30).toFixed(2) + " GiB" : (v / 2 ** 20).toFixed(1) + " MiB");
function cell(tr, cls, value, text) {
  const td = document.createElement("td");
  td.className = cls;
  if (value != null) td.dataset.value = String(value);
  td.textContent = text;
  tr.appendChild(td);
}
function showError(msg) { const e = $("error"); e.hidden = !msg; e.textContent = msg || ""; }

async function pollSession() {
  const h = await get("/healthz");
  $("status").textContent = h.status;
  const put = (id, v, text) => { const e = $(id); e.dataset.value = String(v); e.textContent = text; };
  put("next-seq", h.next_sequence, fmtInt(h.next_sequence));
  put("messages", h.messages, fmtInt(h.messages));
  put("rate", h.msg_per_s, fmtInt(h.msg_per_s));
  put("gaps", h.gaps, fmtInt(h.gaps));
  put("lost", h.lost_messages, fmtInt(h.lost_messages));
  const j = h.journal || {};
  put("journal", j.state, j.state === "off" ? "off" : j.state + " (" + fmtBytes(j.bytes) + ")");
  $("journal").className = j.state === "failed" ? "bad" : "";
  $("uptime").textContent = h.uptime_s.toFixed(0) + " s";
}

function renderSymbols() {
  const k = state.sortKey, d = state.sortDesc ? -1 : 1;
  const rows = state.rows.slice().sort((a, b) => {
    const x = a[k], y = b[k];
    if (typeof x === "string") return d * x.localeCompare(y);
    return d * ((x ?? -Infinity) - (y ?? -Infinity));
  });
  const tb = document.createElement("tbody");
  for (const s of rows) {
    const tr = document.createElement("tr");
    tr.dataset.symbol = s.symbol;
    if (state.book === s.symbol) tr.className = "sel";
    cell(tr, "symbol", null, s.symbol);
    cell(tr, "last", s.last, fmtPx(s.last));
    cell(tr, "bid", s.bid, fmtPx(s.bid));
    cell(tr, "ask", s.ask, fmtPx(s.ask));
    cell(tr, "spread", s.spread, fmtPx(s.spread));
    cell(tr, "volume", s.volume, fmtInt(s.volume));
    cell(tr, "vwap", s.vwap, fmtPx(s.vwap));
    cell(tr, "ret", s.ret, s.ret == null ? "–" : (100 * s.ret).toFixed(2) + "%");
    cell(tr, "barret", s.barret, s.barret == null ? "–" : (100 * s.barret).toFixed(3) + "%");
    cell(tr, "trades", s.trades, fmtInt(s.trades));
    tr.onclick = () => { state.book = s.symbol; pollBook().catch(() => {}); renderSymbols(); };
    tb.appendChild(tr);
  }
  $("symbols").replaceChild(tb, $("symbols").tBodies[0]);
}

async function pollSymbols() {
  const r = await get("/v1/symbols");
  state.rows = r.symbols.map((s) => ({ ...s,
    spread: s.bid != null && s.ask != null ? s.ask - s.bid : null,
    ret: s.vwap ? s.last / s.vwap - 1 : null, barret: s.return }));
  if (!state.book && state.rows.length)
    state.book = state.rows.reduce((a, b) => (b.volume > a.volume ? b : a)).symbol;
  renderSymbols();
}

async function pollBook() {
  if (!state.book) return;
  const b = await get("/v1/symbols/" + encodeURIComponent(state.book) + "?depth=10");
  $("book-symbol").textContent = b.symbol;
  const tb = document.createElement("tbody");
  const bids = b.depth ? b.depth.bids : [], asks = b.depth ? b.depth.asks : [];
  for (let i = 0; i < Math.max(bids.length, asks.length); i++) {
    const tr = document.createElement("tr"), bl = bids[i] || {}, al = asks[i] || {};
    cell(tr, "bord", bl.orders, bl.orders ?? "");
    cell(tr, "bsz", bl.shares, bl.shares != null ? fmtInt(bl.shares) : "");
    cell(tr, "bid", bl.price, bl.price != null ? fmtPx(bl.price) : "");
    cell(tr, "ask", al.price, al.price != null ? fmtPx(al.price) : "");
    cell(tr, "asz", al.shares, al.shares != null ? fmtInt(al.shares) : "");
    cell(tr, "aord", al.orders, al.orders ?? "");
    tb.appendChild(tr);
  }
  $("book").replaceChild(tb, $("book").tBodies[0]);
}

function drawRss() {
  const c = $("rss-chart"), g = c.getContext("2d"), pts = state.rss;
  g.clearRect(0, 0, c.width, c.height);
  g.fillStyle = "#777"; g.font = "11px sans-serif";
  g.fillText("RSS, last " + (pts.length < 120 ? pts.length + " s" : Math.round(pts.length / 60) + " min") + " (flat = nothing grows)", 4, 12);
  if (pts.length < 2) return;
  const hi = Math.max(...pts) * 1.1, lo = 0;
  g.strokeStyle = "#1f77b4"; g.lineWidth = 2; g.beginPath();
  pts.forEach((v, i) => {
    const x = 4 + (i / (pts.length - 1)) * (c.width - 8), y = c.height - 4 - ((v - lo) / (hi - lo)) * (c.height - 22);
    i ? g.lineTo(x, y) : g.moveTo(x, y);
  });
  g.stroke();
}

async function pollMemory() {
  const m = await get("/v1/memory");
  const churn = m.total ? m.total.churn_allocs : null;
  const a = $("allocs-after-seal");
  a.textContent = fmtInt(churn); a.dataset.value = String(churn);
  a.className = churn === 0 ? "ok" : "bad";
  $("sealed").textContent = m.sealed ? "yes" : "no";
  $("live-bytes").textContent = fmtBytes(m.total ? m.total.live : null);
  $("rss").textContent = fmtBytes(m.rss); $("rss").dataset.value = String(m.rss);
  $("peak-rss").textContent = fmtBytes(m.peak_rss);
  state.rss.push(m.rss); if (state.rss.length > 600) state.rss.shift();
  drawRss();
  const tb = document.createElement("tbody");
  for (const o of m.objects || []) {
    const tr = document.createElement("tr");
    cell(tr, "kind", null, o.kind); cell(tr, "name", null, o.name);
    cell(tr, "used", o.used, fmtInt(o.used)); cell(tr, "hw", o.high_water, fmtInt(o.high_water));
    cell(tr, "cap", o.capacity, fmtInt(o.capacity));
    tb.appendChild(tr);
  }
  $("objects").replaceChild(tb, $("objects").tBodies[0]);
}

async function pollCorrelation() {
  const names = state.rows.slice().sort((a, b) => b.volume - a.volume).slice(0, 32).map((s) => s.symbol);
  const c = $("heatmap"), g = c.getContext("2d");
  if (names.length < 2) { $("xs-note").textContent = "(needs two symbols with trades)"; return; }
  let r;
  try { r = await get("/v1/correlation?symbols=" + names.map(encodeURIComponent).join(",")); }
  catch (e) { $("xs-note").textContent = "(" + e.message + ")"; return; }
  const syms = r.symbols || names, m = r.matrix || r.correlation || [];
  const n = syms.length, px = Math.floor((c.width - 60) / n);
  g.clearRect(0, 0, c.width, c.height);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      const v = m[i] && m[i][j] != null ? m[i][j] : 0;
      g.fillStyle = v >= 0 ? `rgb(255,${Math.round(255 * (1 - v))},${Math.round(255 * (1 - v))})`
                           : `rgb(${Math.round(255 * (1 + v))},${Math.round(255 * (1 + v))},255)`;
      g.fillRect(60 + j * px, 10 + i * px, px, px);
    }
  g.fillStyle = "#333"; g.font = Math.min(11, px) + "px sans-serif";
  syms.forEach((s, i) => g.fillText(s, 2, 10 + i * px + px * 0.8));
  $("xs-note").textContent = `(${n} most traded symbols, red = +1, blue = -1)`;
}

const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                 "#7f7f7f", "#bcbd22", "#17becf"];

// Radial layout of a forest given as edges: positions keyed by symbol, deterministic.
function radialLayout(names, edges, cx, cy, rmax) {
  const adj = new Map(names.map((n) => [n, []]));
  for (const e of edges) { adj.get(e.from).push(e.to); adj.get(e.to).push(e.from); }
  for (const l of adj.values()) l.sort();
  const order = names.slice().sort((a, b) => adj.get(b).length - adj.get(a).length || a.localeCompare(b));
  const parent = new Map(), kids = new Map(), depth = new Map(), roots = [];
  for (const r of order) {               // one BFS per component, from its highest-degree node
    if (parent.has(r)) continue;
    roots.push(r); parent.set(r, null); depth.set(r, 1);
    const q = [r];
    for (let i = 0; i < q.length; i++) {
      const u = q[i]; kids.set(u, []);
      for (const v of adj.get(u)) if (!parent.has(v)) { parent.set(v, u); depth.set(v, depth.get(u) + 1); kids.get(u).push(v); q.push(v); }
    }
  }
  const leaves = new Map();
  const count = (u) => { let n = 0; for (const v of kids.get(u)) n += count(v); leaves.set(u, Math.max(1, n)); return leaves.get(u); };
  let total = 0; for (const r of roots) total += count(r);
  const maxd = Math.max(1, ...depth.values()), pos = new Map();
  const single = roots.length === 1;
  const place = (u, a0, a1) => {
    const d = single ? depth.get(u) - 1 : depth.get(u), r = (d / (single ? Math.max(1, maxd - 1) : maxd)) * rmax, a = (a0 + a1) / 2;
    pos.set(u, [cx + r * Math.cos(a), cy + r * Math.sin(a)]);
    let b = a0;
    for (const v of kids.get(u)) { const w = ((a1 - a0) * leaves.get(v)) / leaves.get(u); place(v, b, b + w); b += w; }
  };
  let a = 0;
  for (const r of roots) { const w = (2 * Math.PI * leaves.get(r)) / total; place(r, a, a + w); a += w; }
  return pos;
}

async function pollMst() {
  const c = $("mst"), g = c.getContext("2d");
  let m, cl;
  try {
    for (let i = 0; i < 2; i++) {      // the two answers of one cross-section (same generation)
      m = await get("/v1/mst"); cl = await get("/v1/clusters");
      if (m.generation === cl.generation) break;
    }
  } catch (e) { $("mst-note").textContent = "(" + e.message + ")"; return; }
  const cluster = new Map((cl.nodes || []).map((n) => [n.symbol, n.cluster]));
  const names = [...new Set([...(cl.nodes || []).map((n) => n.symbol),
                             ...m.edges.flatMap((e) => [e.from, e.to])])];
  g.clearRect(0, 0, c.width, c.height);
  const pos = radialLayout(names, m.edges, c.width / 2, c.height / 2, Math.min(c.width, c.height) / 2 - 24);
  g.strokeStyle = "#999"; g.lineWidth = 1.5;
  let drawn = 0;
  for (const e of m.edges) {
    const p = pos.get(e.from), q = pos.get(e.to);
    g.beginPath(); g.moveTo(p[0], p[1]); g.lineTo(q[0], q[1]); g.stroke(); drawn++;
  }
  g.font = "10px sans-serif";
  for (const n of names) {
    const [x, y] = pos.get(n), k = cluster.get(n);
    g.fillStyle = k == null ? "#333" : PALETTE[k % PALETTE.length];
    g.beginPath(); g.arc(x, y, 5, 0, 2 * Math.PI); g.fill();
    if (names.length <= 64) { g.fillStyle = "#222"; g.fillText(n, x + 6, y - 4); }
  }
  const img = g.getImageData(0, 0, c.width, c.height).data;
  let ink = 0;
  for (let i = 3; i < img.length; i += 4) if (img[i]) ink++;
  c.dataset.ink = String(ink);
  c.dataset.edges = String(drawn); c.dataset.nodes = String(names.length);
  c.dataset.generation = String(m.generation);
  $("mst-note").textContent = `(${names.length} symbols, ${drawn} edges, ${cl.count} clusters by colour; generation ${m.generation})`;
}

async function tick() {
  try {
    await pollSession();
    await pollSymbols();
    await pollBook();
    await pollMemory();
    if (performance.now() - state.xsAt > 5000) { state.xsAt = performance.now(); await pollCorrelation(); await pollMst(); }
    showError(null);
    // the first tick that rendered every panel: tests/web_test.py reads the mark's time
    if (!document.body.dataset.loaded) performance.mark("tickcore-first-data");
    document.body.dataset.loaded = "1";
  } catch (e) {
    showError(e.message);
  }
}

document.querySelectorAll("#symbols th").forEach((th) => {
  th.onclick = () => {
    const k = th.dataset.key;
    state.sortDesc = state.sortKey === k ? !state.sortDesc : k !== "symbol";
    state.sortKey = k; renderSymbols();
  };
});
tick();
setInterval(tick, 1000);
