"""The dashboard's one page: inline CSS and JavaScript, no external URL.

The page holds no stored data: its script fetches ``/api/experiments`` and
``/api/trials?name=...&after=N`` and puts every stored string into the document with
``textContent``, never as HTML. The inline script and style are allowed by their hashes in the
Content-Security-Policy that :data:`CSP` gives, and nothing else is.
"""

from __future__ import annotations

import base64
import hashlib

__all__ = ["CSP", "PAGE"]

_STYLE = """
:root { --fg: #1d2330; --muted: #5f6b7a; --line: #d9dee5; --accent: #2463eb; --bg: #f7f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; align-items: baseline; gap: 1em; padding: .8em 1.2em;
         background: #fff; border-bottom: 1px solid var(--line); }
header h1 { font-size: 1.15em; margin: 0; }
#store { color: var(--muted); overflow-wrap: anywhere; }
#status { margin-left: auto; white-space: nowrap; }
#status.ok { color: #1a7f37; } #status.bad { color: #c62828; font-weight: 600; }
main { padding: 1em 1.2em; display: grid; gap: 1.2em; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .8em 1em; }
h2 { font-size: 1.05em; margin: 0 0 .6em; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; }
th, td { padding: .3em .6em; border-bottom: 1px solid var(--line); text-align: left;
         vertical-align: top; }
th { color: var(--muted); font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.arch { font-family: ui-monospace, monospace; font-size: .92em; overflow-wrap: anywhere; }
tr.selected { background: #eef3ff; }
button.pick { border: 0; background: none; padding: 0; color: var(--accent); cursor: pointer;
              font: inherit; text-align: left; text-decoration: underline;
              overflow-wrap: anywhere; }
.COMPLETE { color: #1a7f37; } .FAILED { color: #c62828; } .PRUNED { color: #9a6700; }
.INFEASIBLE { color: #8250df; } .muted { color: var(--muted); }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2em 1em; margin: 0 0 .8em; }
dt { color: var(--muted); } dd { margin: 0; overflow-wrap: anywhere; }
#plot { width: 100%; max-width: 760px; height: auto; display: block; margin-bottom: .8em; }
#plot .axis { stroke: #8b95a3; stroke-width: 1; }
#plot .best { fill: none; stroke: var(--accent); stroke-width: 2; }
#plot .dot { fill: #9aa5b4; } #plot .dot.record { fill: var(--accent); }
#plot .dot.current { stroke: var(--fg); stroke-width: 1.5; }
#plot text { font-size: 11px; fill: var(--muted); }
.scroll { max-height: 28em; overflow: auto; }
"""

_SCRIPT = """
"use strict";
const TRIALS_MS = 1000, LIST_MS = 3000, SHOWN = 500;
// rows: the trials by number; open: numbers of rows still RUNNING or stale (read again)
const state = { name: null, last: -1, rows: [], open: new Set(), gen: 0 };
const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function fmt(v, digits) {
  return v === null || v === undefined ? "-" : Number(v).toFixed(digits === undefined ? 4 : digits);
}
function countsText(counts) {
  const parts = Object.entries(counts).filter((kv) => kv[1] > 0)
    .map((kv) => kv[1] + " " + kv[0].toLowerCase());
  return parts.length ? parts.join(", ") : "none yet";
}
function objectivesText(exp) { return exp.objectives.map((o) => o.text).join(", "); }
function setStatus(text, bad) {
  const s = $("status");
  s.textContent = text;
  s.className = bad ? "bad" : "ok";
}
async function getJSON(url) {
  const response = await fetch(url, { cache: "no-store", credentials: "same-origin" });
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) throw new Error((body && body.error) || "HTTP " + response.status);
  return body;
}

function renderList(data) {
  $("store").textContent = data.store;
  const body = $("experiments").tBodies[0];
  const rows = data.experiments.map((exp) => {
    const tr = el("tr");
    tr.dataset.name = exp.name;
    if (exp.name === state.name) tr.className = "selected";
    const pick = el("button", exp.name, "pick");
    pick.type = "button";
    pick.addEventListener("click", () => select(exp.name));
    const first = el("td");
    first.append(pick);
    tr.append(first, el("td", exp.source), el("td", exp.space), el("td", exp.strategy),
      el("td", objectivesText(exp)), el("td", exp.total, "num"));
    for (const status of ["COMPLETE", "FAILED", "PRUNED", "INFEASIBLE"]) {
      tr.append(el("td", exp.counts[status], "num"));
    }
    tr.append(el("td", exp.best ? fmt(exp.best.value) + " (#" + exp.best.number + ")" : "-",
      "num"));
    return tr;
  });
  body.replaceChildren(...rows);
  $("empty").hidden = rows.length > 0;
}

async function pollList() {
  try {
    renderList(await getJSON("/api/experiments"));
    setStatus("live, updated " + new Date().toLocaleTimeString(), false);
  } catch (e) {
    setStatus("cannot read the store: " + e.message, true);
  }
}

function select(name) {
  state.name = name;
  state.last = -1;
  state.rows = [];
  state.open = new Set();
  state.gen += 1;
  $("trials").tBodies[0].replaceChildren();
  $("detail").hidden = false;
  for (const tr of $("experiments").tBodies[0].rows) {
    tr.className = tr.dataset.name === name ? "selected" : "";
  }
  history.replaceState(null, "", "#" + encodeURIComponent(name));
  pollTrials();
}

function renderSummary(exp) {
  $("exp-name").textContent = exp.name;
  $("exp-setup").textContent = exp.space + " space, " + exp.strategy + " (seed " + exp.seed +
    ") on " + exp.source;
  $("exp-objectives").textContent = objectivesText(exp);
  $("exp-total").textContent = String(exp.total);
  $("exp-counts").textContent = countsText(exp.counts);
  const best = $("exp-best");
  best.textContent = exp.best ? fmt(exp.best.value) : "-";
  best.dataset.value = exp.best && exp.best.value !== null ? String(exp.best.value) : "";
  $("exp-best-number").textContent = exp.best ? "trial " + exp.best.number : "";
  $("exp-best-arch").textContent = exp.best ? exp.best.arch : "-";
  $("exp-front-row").hidden = $("exp-front").hidden = !exp.front;
  if (exp.front) $("exp-front").textContent = exp.front.length + " trials: " +
    exp.front.map((n) => "#" + n).join(" ");
  const heads = $("trials").tHead.rows[0].cells;
  heads[3].textContent = exp.objectives.map((o) => o.text).join(" / ");
  heads[4].textContent = "best so far";
}

function trialRow(t) {
  const tr = el("tr");
  tr.dataset.number = String(t.number);
  const status = t.status === "FAILED" && t.error ? "FAILED: " + t.error : t.status;
  const test = Object.values(t.test_metrics)[0];
  tr.append(el("td", t.number, "num"), el("td", status, t.status), el("td", t.arch, "arch"),
    el("td", t.values.map((v) => fmt(v)).join(" / "), "num"), el("td", fmt(t.best), "num"),
    el("td", fmt(test), "num"), el("td", t.fidelity === null ? "-" : t.fidelity, "num"),
    el("td", fmt(t.wall_time, 2), "num"));
  return tr;
}

function appendRows(rows) {
  const body = $("trials").tBodies[0];
  for (const t of rows) {
    if (t.number <= state.last) {  // a row read again: it has finished, or is retried
      // numbers may have gaps (a damaged row is skipped): find the row by its number
      const at = state.rows.findIndex((r) => r.number === t.number);
      if (at >= 0) state.rows[at] = t;
      const shown = body.querySelector('tr[data-number="' + t.number + '"]');
      if (shown) shown.replaceWith(trialRow(t));
    } else {
      state.rows.push(t);
      state.last = t.number;
      body.insertBefore(trialRow(t), body.firstChild);
    }
    if (t.status === "RUNNING" || t.stale) state.open.add(t.number);
    else state.open.delete(t.number);
  }
  while (body.rows.length > SHOWN) body.deleteRow(body.rows.length - 1);
  $("trials-note").textContent = state.rows.length > SHOWN
    ? "newest " + SHOWN + " of " + state.rows.length + " trials" : state.rows.length + " trials";
}

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function drawPlot(exp) {
  const plot = $("plot");
  const W = 760, H = 260, L = 64, R = 16, T = 20, B = 34;
  const dots = state.rows.filter((t) => t.status === "COMPLETE" && t.values[0] !== null);
  const steps = state.rows.filter((t) => t.best !== null);
  const parts = [svg("text", { x: L, y: 13 }, "best so far: " + exp.objectives[0].text)];
  if (!steps.length) {
    parts.push(svg("text", { x: L, y: H / 2 }, "no completed trial yet"));
    plot.replaceChildren(...parts);
    return;
  }
  const ys = dots.map((t) => t.values[0]).concat(steps.map((t) => t.best));
  let lo = Math.min(...ys), hi = Math.max(...ys);
  if (hi - lo < 1e-12) { lo -= 0.5; hi += 0.5; }
  const n = Math.max(1, state.rows[state.rows.length - 1].number);
  const x = (v) => L + (v / n) * (W - L - R);
  const y = (v) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);
  parts.push(svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" }),
    svg("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" }),
    svg("text", { x: L - 6, y: T + 4, "text-anchor": "end" }, fmt(hi)),
    svg("text", { x: L - 6, y: H - B, "text-anchor": "end" }, fmt(lo)),
    svg("text", { x: L, y: H - B + 16 }, "0"),
    svg("text", { x: W - R, y: H - B + 16, "text-anchor": "end" }, "trial " + n));
  const current = exp.best ? exp.best.number : null;
  for (const t of dots) {  // "record": was the best when stored; "current": the best now
    const cls = "dot" + (t.number === t.best_number ? " record" : "") +
      (t.number === current ? " current" : "");
    const mark = svg("circle", { cx: x(t.number), cy: y(t.values[0]),
      r: t.number === current ? 4 : 2.5, class: cls });
    mark.append(svg("title", {}, "#" + t.number + ": " + fmt(t.values[0])));
    parts.push(mark);
  }
  let d = "";
  steps.forEach((t, i) => {
    d += (i ? " H" + x(t.number).toFixed(1) + " V" : "M" + x(t.number).toFixed(1) + " ") +
      y(t.best).toFixed(1);
  });
  d += " H" + x(n).toFixed(1);
  parts.push(svg("path", { d: d, class: "best", "data-points": steps.length }));
  plot.replaceChildren(...parts);
}

async function pollTrials() {
  if (state.name === null) return;
  const gen = state.gen;
  // rows after the oldest running one come again (their best-so-far may change with it);
  // stale rows (which a retry may still change) are asked for by number
  const open = [...state.open];
  const running = open.filter((n) => state.rows[n].status === "RUNNING");
  const after = running.length ? Math.min(...running) - 1 : state.last;
  const stale = open.filter((n) => state.rows[n].status !== "RUNNING").slice(0, 1000);
  const url = "/api/trials?name=" + encodeURIComponent(state.name) + "&after=" + after +
    (stale.length ? "&refresh=" + stale.join(",") : "");
  try {
    const data = await getJSON(url);
    if (gen !== state.gen) return;
    appendRows(data.trials);
    renderSummary(data.experiment);
    drawPlot(data.experiment);
  } catch (e) {
    if (gen === state.gen) setStatus("cannot read " + state.name + ": " + e.message, true);
  }
}

function loop(fn, ms) {
  const run = async () => {
    if (!document.hidden) await fn();
    setTimeout(run, ms);
  };
  run();
}

const wanted = decodeURIComponent(location.hash.slice(1));
if (wanted) select(wanted);
loop(pollList, LIST_MS);
setTimeout(() => loop(pollTrials, TRIALS_MS), TRIALS_MS);
"""

_BODY = """
<header>
  <h1>nasforge dashboard</h1>
  <span id="store"></span>
  <span id="status" class="ok">connecting</span>
</header>
<main>
  <section>
    <h2>Experiments</h2>
    <table id="experiments">
      <thead><tr>
        <th>name</th><th>source</th><th>space</th><th>strategy</th><th>objective</th>
        <th class="num">trials</th><th class="num">complete</th><th class="num">failed</th>
        <th class="num">pruned</th><th class="num">infeasible</th><th class="num">best</th>
      </tr></thead>
      <tbody></tbody>
    </table>
    <p id="empty" class="muted" hidden>The store holds no experiment yet.</p>
  </section>
  <section id="detail" hidden>
    <h2 id="exp-name"></h2>
    <dl>
      <dt>search</dt><dd id="exp-setup"></dd>
      <dt>objective</dt><dd id="exp-objectives"></dd>
      <dt>trials</dt><dd><span id="exp-total"></span> (<span id="exp-counts"></span>)</dd>
      <dt>best</dt><dd><span id="exp-best"></span> <span id="exp-best-number" class="muted">
        </span></dd>
      <dt>best architecture</dt><dd id="exp-best-arch" class="arch"></dd>
      <dt id="exp-front-row" hidden>Pareto front</dt><dd id="exp-front" hidden></dd>
    </dl>
    <svg id="plot" viewBox="0 0 760 260" role="img" aria-label="best value so far by trial">
    </svg>
    <p id="trials-note" class="muted"></p>
    <div class="scroll">
      <table id="trials">
        <thead><tr>
          <th class="num">#</th><th>status</th><th>architecture</th><th class="num">value</th>
          <th class="num">best so far</th><th class="num">test</th><th class="num">fidelity</th>
          <th class="num">seconds</th>
        </tr></thead>
        <tbody></tbody>
      </table>
    </div>
  </section>
</main>
"""


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


PAGE = (
    '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
    '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
    "<title>nasforge dashboard</title>\n"
    f"<style>{_STYLE}</style>\n</head>\n<body>{_BODY}<script>{_SCRIPT}</script>\n"
    "</body>\n</html>\n"
).encode()
"""The page, UTF-8 encoded."""

CSP = (
    f"default-src 'none'; script-src {_sha256(_SCRIPT)}; style-src {_sha256(_STYLE)}; "
    "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
"""Content-Security-Policy of the page: its own inline script and style, requests to itself."""
