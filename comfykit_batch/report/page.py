"""The gallery page's HTML, CSS and script: one static file, no server, no CDN, works from ``file://``.

The data arrives as a JSON block in the page; the script lays it out as an XY table whose axes and
filters are chosen in the page. Thumbnails load lazily (``loading="lazy"``), media only on play
(``preload="none"``), so a page of 10,000 results opens quickly and stays light.
"""

from __future__ import annotations

TEMPLATE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
body { font: 14px/1.35 system-ui, sans-serif; margin: 0; color: #1b1b1b; background: #fafafa; }
header { position: sticky; top: 0; z-index: 2; background: #fff; border-bottom: 1px solid #ddd; padding: 8px 12px; }
header h1 { font-size: 16px; margin: 0 0 6px; }
#controls { display: flex; flex-wrap: wrap; gap: 6px 14px; align-items: center; }
#controls label { white-space: nowrap; }
#summary { color: #555; margin-left: auto; }
main { padding: 12px; }
table#grid { border-collapse: separate; border-spacing: 6px; }
th { font-weight: 600; text-align: left; vertical-align: top; white-space: nowrap; }
th.col-label { position: sticky; top: 0; }
td.cell { vertical-align: top; background: #fff; border: 1px solid #e2e2e2; padding: 4px; }
.items { display: flex; flex-wrap: wrap; gap: 4px; }
.item { width: var(--thumb, 160px); min-height: 40px; position: relative; }
.item img { display: block; width: 100%; height: auto; image-rendering: pixelated; background: #eee; }
.item video, .item audio { width: 100%; }
.item pre.caption { color: #444; max-height: 4em; }
.item pre { white-space: pre-wrap; margin: 2px 0 0; font: 12px/1.3 ui-monospace, monospace; max-height: 9em; overflow: auto; }
.item.failed { background: #fde8e8; color: #b01e1e; border: 2px solid #be1e1e; padding: 4px; box-sizing: border-box; font-size: 12px; }
.item.missing { background: #eee; color: #666; padding: 4px; box-sizing: border-box; font-size: 12px; }
.item .file { font-size: 12px; word-break: break-all; }
.item .tag { font-size: 11px; color: #333; word-break: break-word; }
.empty { color: #999; font-size: 12px; }
</style>
</head>
<body>
<header>
<h1>__TITLE__</h1>
<div id="controls">
  <label>X <select id="axis-x"></select></label>
  <label>Y <select id="axis-y"></select></label>
  <label>output <select id="var"></select></label>
  <label>status <select id="status"><option value="">all</option><option>completed</option><option>failed</option></select></label>
  <label>size <input id="size" type="range" min="64" max="512" step="16" value="160"></label>
  <span id="filters"></span>
  <span id="summary"></span>
</div>
</header>
<main><table id="grid"></table></main>
<script type="application/json" id="data">__DATA__</script>
<script>
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const url = (p) => p.split("/").map(encodeURIComponent).join("/");
const state = {x: D.x || "", y: D.y || "", v: D.vars[0] || "", status: "", filters: Object.create(null)};
// what a bookmark may set; anything else (an axis, output or value this page no longer has) keeps the default
const allowed = {
  x: (v) => v === "" || D.params.includes(v),
  y: (v) => v === "" || D.params.includes(v),
  v: (v) => v === "" || D.vars.includes(v),
  status: (v) => ["", "completed", "failed"].includes(v),
};

function readHash() {
  const h = new URLSearchParams(location.hash.slice(1));
  for (const [k, v] of h) {
    if (Object.hasOwn(allowed, k) && allowed[k](v)) state[k] = v;
    else if (k.startsWith("f.") && D.params.includes(k.slice(2)) && validValue(k.slice(2), v)) state.filters[k.slice(2)] = v;
  }
  if (state.x && state.x === state.y) state.y = [D.y, D.x].find((p) => p && p !== state.x) || "";
}
function validValue(p, v) {
  return v === "" || (/^[0-9]+$/.test(v) && Number(v) < D.values[p].length);
}
function setAxis(key, value) {
  // one parameter on both axes would make a diagonal table: picking the other axis's parameter swaps the two
  const other = key === "x" ? "y" : "x";
  if (value && value === state[other]) state[other] = state[key];
  state[key] = value;
  $("axis-x").value = state.x;
  $("axis-y").value = state.y;
}
function writeHash() {
  const h = new URLSearchParams({x: state.x, y: state.y, v: state.v, status: state.status});
  for (const [k, v] of Object.entries(state.filters)) if (v !== "") h.set("f." + k, v);
  history.replaceState(null, "", "#" + h.toString());
}
function option(value, text, selected) {
  return `<option value="${esc(value)}"${selected ? " selected" : ""}>${esc(text)}</option>`;
}
function buildControls() {
  for (const id of ["axis-x", "axis-y"]) {
    const key = id === "axis-x" ? "x" : "y";
    $(id).innerHTML = option("", "(none)", !state[key]) + D.params.map((p) => option(p, p, state[key] === p)).join("");
    $(id).onchange = (e) => { setAxis(key, e.target.value); render(); };
  }
  $("var").innerHTML = option("", "(all)", !state.v) + D.vars.map((v) => option(v, v, state.v === v)).join("");
  $("var").onchange = (e) => { state.v = e.target.value; render(); };
  $("status").value = state.status;
  $("status").onchange = (e) => { state.status = e.target.value; render(); };
  $("size").oninput = (e) => document.body.style.setProperty("--thumb", e.target.value + "px");
  $("filters").innerHTML = D.params.map((p) => `<label>${esc(p)} <select class="filter" data-param="${esc(p)}">` +
    option("", "(all)", !state.filters[p]) +
    D.values[p].map((v, i) => option(String(i), v, state.filters[p] === String(i))).join("") + "</select></label>").join(" ");
  for (const sel of document.querySelectorAll("select.filter")) {
    sel.onchange = (e) => { state.filters[e.target.dataset.param] = e.target.value; render(); };
  }
}
function visible(job) {
  if (state.status && job.s !== state.status) return false;
  for (const [p, v] of Object.entries(state.filters)) if (v !== "" && String(job.p[p]) !== v) return false;
  return true;
}
function hover(job) {
  const lines = D.params.filter((p) => p in job.p).map((p) => `${p} = ${D.values[p][job.p[p]]}`);
  lines.push(`workflow = ${job.w}`, `status = ${job.s}`, `job = ${job.id}`);
  return esc(lines.join("\n"));
}
function cellTags(list) {
  // per job, what tells it apart from the others sharing its cell, shown on each of its items (hover alone is
  // not enough); the parameters and workflow that differ there, plus the job id where those are the same (repeats)
  const tags = new Map();
  if (list.length < 2) return tags;
  const differs = (f) => new Set(list.map(f)).size > 1;
  const params = D.params.filter((p) => differs((j) => j.p[p])), workflow = differs((j) => j.w);
  for (const j of list) {
    const parts = params.filter((p) => p in j.p).map((p) => `${p} = ${D.values[p][j.p[p]]}`);
    if (workflow) parts.unshift(`workflow = ${j.w}`);
    tags.set(j, parts.join(", "));
  }
  const count = new Map();
  for (const t of tags.values()) count.set(t, (count.get(t) || 0) + 1);
  for (const [j, t] of tags) if (count.get(t) > 1) tags.set(j, (t ? t + ", " : "") + `job = ${j.id}`);
  return tags;
}
function itemHtml(job, text) {
  const tag = text ? `<div class="tag">${esc(text)}</div>` : "";
  const item = (cls, inner) => `<div class="${cls}" data-id="${esc(job.id)}" title="${hover(job)}">${inner}</div>`;
  if (job.s !== "completed") return item("item failed", `${tag}${esc(job.s)}: ${esc(job.e || "")}`);
  const parts = [];
  // one output chosen: the job's text outputs go under it as captions; "(all)": each text is an item of its own
  const captions = state.v && !(state.v in job.t) ?
    Object.values(job.t).map((t) => `<pre class="caption">${esc(t.join("\n"))}</pre>`).join("") : "";
  for (const [v, kind, path, thumb] of job.f) {
    if (state.v && v !== state.v) continue;
    const href = url(path);
    const link = `<a class="file" href="${href}">${esc(v)}</a>`;
    if (kind === "image") {
      const img = `<img loading="lazy" decoding="async" alt="${esc(v)}" src="${url(thumb || path)}">`;
      parts.push(item("item", `<a href="${href}" target="_blank">${img}</a>${tag}${captions}`));
    } else if (kind === "video" || kind === "audio") {
      parts.push(item("item", `<${kind} controls preload="none" src="${href}"></${kind}>${link}${tag}${captions}`));
    } else {
      parts.push(item("item", `<a class="file" href="${href}">${esc(v)}: ${esc(path.split("/").pop())}</a>${tag}`));
    }
  }
  for (const [v, texts] of Object.entries(job.t)) {
    if (state.v && v !== state.v) continue;
    parts.push(item("item text", `${tag}<pre>${esc(texts.join("\n"))}</pre>`));
  }
  return parts.length ? parts.join("") : item("item missing", `${tag}no '${esc(state.v)}' output`);
}
function axisValues(jobs, p) {
  if (!p) return [null];
  const seen = new Set(jobs.filter((j) => p in j.p).map((j) => j.p[p]));
  return D.values[p].map((_, i) => i).filter((i) => seen.has(i));
}
function render() {
  writeHash();
  const jobs = D.jobs.filter(visible);
  const xs = axisValues(jobs, state.x), ys = axisValues(jobs, state.y);
  const cells = new Map();
  for (const j of jobs) {
    const key = (state.x ? j.p[state.x] : null) + "|" + (state.y ? j.p[state.y] : null);
    if (!cells.has(key)) cells.set(key, []);
    cells.get(key).push(j);
  }
  const label = (p, i) => p ? `${esc(p)} = ${esc(D.values[p][i])}` : "all";
  const out = ["<thead><tr><th class=\"corner\"></th>"];
  for (const x of xs) out.push(`<th class="col-label">${label(state.x, x)}</th>`);
  out.push("</tr></thead><tbody>");
  for (const y of ys) {
    out.push(`<tr><th class="row-label">${label(state.y, y)}</th>`);
    for (const x of xs) {
      const list = cells.get(x + "|" + y) || [];
      const tags = cellTags(list);
      const body = list.length ? list.map((j) => itemHtml(j, tags.get(j))).join("") : '<span class="empty">no job</span>';
      const dx = x === null ? "" : esc(D.values[state.x][x]), dy = y === null ? "" : esc(D.values[state.y][y]);
      out.push(`<td class="cell" data-x="${dx}" data-y="${dy}"><div class="items">${body}</div></td>`);
    }
    out.push("</tr>");
  }
  out.push("</tbody>");
  $("grid").innerHTML = out.join("");
  const failed = jobs.filter((j) => j.s !== "completed").length;
  $("summary").textContent = `${jobs.length} of ${D.jobs.length} jobs shown, ${failed} failed`;
  document.body.dataset.rendered = String(performance.now());
}
readHash();
buildControls();
render();
</script>
</body>
</html>
"""
