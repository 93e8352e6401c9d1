"""The gallery page's HTML, CSS and script: one small static file, no server, no CDN, works from ``file://``.

The page holds no record. It loads ``gallery-data/columns.js`` (what filters and axes need, one typed array
per column: a million jobs take a few megabytes) with a ``<script>`` element, then lays the table out in
numbers only and draws just the cells and cards on screen (every card has the same size, so where each one
sits is arithmetic). The details a card shows (files, texts, failure) come from ``gallery-data/NNNN.js``,
loaded when a card of theirs first comes on screen; only on-screen images get a ``src``, media load on
play (``preload="none"``). Cells and labels keep the table's element names (``td.cell``, ``th.col-label``)
so what looked at the table before still finds them.
"""

from __future__ import annotations

STYLE = r"""
body { font: 14px/1.35 system-ui, sans-serif; margin: 0; color: #1b1b1b; background: #fafafa; --thumb: 160px; }
header { position: sticky; top: 0; z-index: 3; background: #fff; border-bottom: 1px solid #ddd; padding: 8px 12px; }
header h1 { font-size: 16px; margin: 0 0 6px; }
#controls { display: flex; flex-wrap: wrap; gap: 6px 14px; align-items: center; }
#controls label { white-space: nowrap; }
#summary { color: #555; margin-left: auto; }
#summary.error, input.filter.bad { color: #b01e1e; border-color: #b01e1e; }
main { padding: 12px; }
#cols { position: sticky; z-index: 2; height: 26px; background: #fafafa; }
#grid { position: relative; }
th.col-label, th.row-label { position: absolute; display: block; font-weight: 600; text-align: left; white-space: nowrap;
  overflow: hidden; text-overflow: ellipsis; }
th.col-label { top: 0; height: 24px; }
th.row-label { left: 0; }
td.cell { position: absolute; display: block; box-sizing: border-box; background: #fff; border: 1px solid #e2e2e2; padding: 4px; }
.items { position: relative; }
.item { position: absolute; width: var(--thumb); height: calc(var(--thumb) + 64px); overflow: auto; box-sizing: border-box; }
.item img { display: block; width: 100%; height: var(--thumb); object-fit: contain; image-rendering: pixelated; background: #eee; }
.item video, .item audio { width: 100%; }
.item pre.caption { color: #444; max-height: 4em; }
.item pre { white-space: pre-wrap; margin: 2px 0 0; font: 12px/1.3 ui-monospace, monospace; max-height: 9em; overflow: auto; }
.item.failed { background: #fde8e8; color: #b01e1e; border: 2px solid #be1e1e; padding: 4px; font-size: 12px; }
.item.missing, .item.loading { background: #eee; color: #666; padding: 4px; font-size: 12px; }
.item .file { font-size: 12px; word-break: break-all; }
.item .tag { font-size: 11px; color: #333; word-break: break-word; }
.empty { color: #999; font-size: 12px; }
"""

BODY = r"""
<header>
<h1>__TITLE__</h1>
<div id="controls">
  <label>X <select id="axis-x"></select></label>
  <label>Y <select id="axis-y"></select></label>
  <label>output <select id="var"></select></label>
  <label>status <select id="status"><option value="">all</option><option>completed</option><option>failed</option></select></label>
  <label>size <input id="size" type="range" min="64" max="512" step="16" value="160"></label>
  <span id="filters"></span>
  <span id="summary">loading...</span>
</div>
</header>
<main><div id="cols"></div><div id="grid"></div></main>
"""

# Data arriving: columns decoded into typed arrays (D: names and value labels; C: the columns); details by chunk.
SCRIPT_DATA = r"""
"use strict";
const TOKEN = "__TOKEN__", DIR = "__DATA_DIR__";
const D = {params: [], values: {}, vars: [], statuses: [], workflows: [], x: "", y: "", n: 0, chunk: 1, chunks: 0};
const C = {p: Object.create(null), count: Object.create(null), s: null, w: null, every: null};
const chunks = new Map(), loading = new Set(), KEEP = 64;
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const url = (p) => p.split("/").map(encodeURIComponent).join("/");

function load(name) {
  // a script element, not fetch: file:// pages may not fetch files, but may run scripts beside them
  const s = document.createElement("script");
  s.src = `${DIR}/${name}?v=${TOKEN}`;
  s.charset = "utf-8";
  s.onload = () => s.remove();
  s.onerror = () => { s.remove(); problem(`${DIR}/${name} could not be read: keep ${DIR}/ beside this page`); };
  document.head.appendChild(s);
}
function problem(text) {
  $("summary").textContent = text;
  $("summary").className = "error";
}
function column(spec) {
  const bin = atob(spec[1]), bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return spec[0] === 1 ? bytes : spec[0] === 2 ? new Uint16Array(bytes.buffer) : new Int32Array(bytes.buffer);
}
window.galleryColumns = (token, meta) => {
  if (token !== TOKEN) return problem("the gallery was written again since this page was opened: reload it");
  performance.mark("columns-read");  // marks for bench/gallery.py: where the opening time goes
  for (const p of meta.params) if (typeof meta.values[p] === "string") meta.values[p] = meta.values[p].split("\0");
  Object.assign(D, {name: meta.name, params: meta.params, values: meta.values, vars: meta.vars, x: meta.x, y: meta.y,
    n: meta.n, chunk: meta.chunk, chunks: meta.chunks, statuses: meta.status.names, workflows: meta.workflow.names});
  for (const p of D.params) C.p[p] = column(meta.codes[p]);
  for (const v of D.vars) C.count[v] = column(meta.counts[v]);
  C.s = column(meta.status.codes);
  C.w = column(meta.workflow.codes);
  C.every = column(meta.every);
  performance.mark("columns-decoded");
  start();
};
window.galleryChunk = (token, index, records) => {
  if (token !== TOKEN) return problem("the gallery was written again since this page was opened: reload it");
  loading.delete(index);
  chunks.set(index, records);
  for (const old of chunks.keys()) if (chunks.size > KEEP) chunks.delete(old);  // oldest first
  arrived(index);
};
function detail(i) {
  const index = Math.floor(i / D.chunk), records = chunks.get(index);
  if (records === undefined) {
    if (!loading.has(index)) { loading.add(index); load(String(index).padStart(4, "0") + ".js"); }
    return null;
  }
  chunks.delete(index);  // most recently used last
  chunks.set(index, records);
  return records[i - index * D.chunk];
}
function job(i) {
  // one job as the cards read it: its parameters' value positions from the columns, the rest from its chunk
  const d = detail(i) || {id: "", f: [], t: {}};
  const p = {};
  for (const name of D.params) { const c = C.p[name][i]; if (c) p[name] = c - 1; }
  return {i, id: d.id, w: D.workflows[C.w[i] - 1], s: D.statuses[C.s[i] - 1], p, f: d.f, t: d.t, e: d.e};
}
"""

# The page's choices: axes, output, status and filters, kept in the address.
SCRIPT_CONTROLS = r"""
let state = null;
const LIST = 2000;  // a parameter with more values gets a text box, not a list of options
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
function filterHtml(p) {
  const values = D.values[p], chosen = state.filters[p];
  if (values.length > LIST) {
    const text = chosen ? values[Number(chosen)] : "";
    return `<label>${esc(p)} <input class="filter" data-param="${esc(p)}" placeholder="(all)" size="10" value="${esc(text)}"></label>`;
  }
  return `<label>${esc(p)} <select class="filter" data-param="${esc(p)}">` + option("", "(all)", !chosen) +
    values.map((v, i) => option(String(i), v, chosen === String(i))).join("") + "</select></label>";
}
function typedFilter(input) {
  // a value typed for a parameter of many values: its position, or the box marked when no value reads so
  // (a scan, not a map of a million labels: one filter typed costs milliseconds, a map the best part of a second)
  const p = input.dataset.param, text = input.value, i = D.values[p].indexOf(text);
  input.classList.toggle("bad", text !== "" && i < 0);
  if (text === "" || i >= 0) { state.filters[p] = text === "" ? "" : String(i); relayout(); }
}
function buildControls() {
  for (const id of ["axis-x", "axis-y"]) {
    const key = id === "axis-x" ? "x" : "y";
    $(id).innerHTML = option("", "(none)", !state[key]) + D.params.map((p) => option(p, p, state[key] === p)).join("");
    $(id).onchange = (e) => { setAxis(key, e.target.value); relayout(); };
  }
  $("var").innerHTML = option("", "(all)", !state.v) + D.vars.map((v) => option(v, v, state.v === v)).join("");
  $("var").onchange = (e) => { state.v = e.target.value; relayout(); };
  $("status").value = state.status;
  $("status").onchange = (e) => { state.status = e.target.value; relayout(); };
  $("size").oninput = (e) => { document.body.style.setProperty("--thumb", e.target.value + "px"); relayout(); };
  $("filters").innerHTML = D.params.map(filterHtml).join(" ");
  for (const el of document.querySelectorAll(".filter")) {
    const picked = () => { state.filters[el.dataset.param] = el.value; relayout(); };
    el.onchange = el.tagName === "INPUT" ? () => typedFilter(el) : picked;
  }
}
"""

# The table in numbers: which jobs match, their cells in order, each column's width and each row's height.
SCRIPT_LAYOUT = r"""
let L = null;
const GAP = 6, PAD = 4, LABEL_W = 170, SPACE = 4, OVER = 200, ALL = 500;
function matching() {
  const s = state.status ? D.statuses.indexOf(state.status) + 1 : 0;
  if (state.status && !s) return new Int32Array(0);
  const conds = Object.entries(state.filters).filter(([, v]) => v !== "").map(([p, v]) => [C.p[p], Number(v) + 1]);
  const out = new Int32Array(D.n);
  let m = 0;
  next: for (let i = 0; i < D.n; i++) {
    if (s && C.s[i] !== s) continue;
    for (const [col, code] of conds) if (col[i] !== code) continue next;
    out[m++] = i;
  }
  return out.subarray(0, m);
}
function axis(jobs, p) {
  // the values of p the matching jobs have, in sweep order, and where each value's column (or row) is
  if (!p) return {list: [null], at: () => 0};
  const col = C.p[p], seen = new Uint8Array(D.values[p].length + 1), pos = new Int32Array(seen.length).fill(-1), list = [];
  for (let k = 0; k < jobs.length; k++) seen[col[jobs[k]]] = 1;
  for (let c = 1; c < seen.length; c++) if (seen[c]) { pos[c] = list.length; list.push(c - 1); }
  return {list, at: (j) => pos[col[j]]};
}
function sortBy(jobs, key, size) {
  // a stable counting sort: jobs of a cell keep their record order
  if (size < 2) return jobs;
  const start = new Int32Array(size + 1), out = new Int32Array(jobs.length);
  for (let k = 0; k < jobs.length; k++) start[key(jobs[k]) + 1]++;
  for (let i = 0; i < size; i++) start[i + 1] += start[i];
  for (let k = 0; k < jobs.length; k++) out[start[key(jobs[k])]++] = jobs[k];
  return out;
}
function itemCount(j) {
  if (D.statuses[C.s[j] - 1] !== "completed") return 1;
  return (state.v ? C.count[state.v][j] : C.every[j]) || 1;
}
function cellsOf(order, ax, ay) {
  // runs of jobs sharing a cell: its column, row, first job and first item (items: a job may show several)
  const cx = [], cy = [], start = [], items = new Int32Array(order.length + 1);
  for (let k = 0; k < order.length; k++) {
    const j = order[k], x = ax.at(j), y = ay.at(j);
    if (!k || x !== cx[cx.length - 1] || y !== cy[cy.length - 1]) { cx.push(x); cy.push(y); start.push(k); }
    items[k + 1] = items[k] + itemCount(j);
  }
  start.push(order.length);
  return {cx: Int32Array.from(cx), cy: Int32Array.from(cy), start: Int32Array.from(start), items};
}
function sizes(L) {
  // each column as wide as its fullest cell needs (up to its share of the window), each row as tall as its tallest cell
  const nx = L.xs.length, ny = L.ys.length, slotW = L.cardW + SPACE;
  const share = Math.max(1, Math.floor((document.documentElement.clientWidth - LABEL_W - 40) / nx / slotW));
  const cards = new Int32Array(nx).fill(1), heights = new Float64Array(ny);
  const count = (c) => L.items[L.start[c + 1]] - L.items[L.start[c]];
  for (let c = 0; c < L.cx.length; c++) cards[L.cx[c]] = Math.min(share, Math.max(cards[L.cx[c]], count(c)));
  for (let c = 0; c < L.cx.length; c++) {
    const h = Math.ceil(count(c) / cards[L.cx[c]]) * L.slotH - SPACE + 2 * PAD + 2;
    heights[L.cy[c]] = Math.max(heights[L.cy[c]], h);
  }
  L.cards = cards;
  L.left = prefix(nx, (c) => cards[c] * slotW - SPACE + 2 * PAD + 2 + GAP);
  L.top = prefix(ny, (r) => Math.max(heights[r], 40) + GAP);
  L.rowFirst = new Int32Array(ny + 1).fill(L.cx.length);
  for (let c = L.cx.length - 1; c >= 0; c--) L.rowFirst[L.cy[c]] = c;
  for (let r = ny - 1; r >= 0; r--) L.rowFirst[r] = Math.min(L.rowFirst[r], L.rowFirst[r + 1]);
}
function prefix(n, size) {
  const out = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) out[i + 1] = out[i] + size(i);
  return out;
}
function relayout() {
  writeHash();
  const jobs = matching(), ax = axis(jobs, state.x), ay = axis(jobs, state.y);
  let order = jobs.filter((j) => ax.at(j) >= 0 && ay.at(j) >= 0);
  order = sortBy(sortBy(order, ax.at, ax.list.length), ay.at, ay.list.length);
  const cardW = Number($("size").value);
  L = {jobs, order, xs: ax.list, ys: ay.list, cardW, slotH: cardW + 64 + SPACE, tags: new Map(), ...cellsOf(order, ax, ay)};
  sizes(L);
  L.all = L.items[order.length] <= ALL && L.xs.length * L.ys.length <= ALL;
  let failed = 0;
  for (let k = 0; k < jobs.length; k++) if (D.statuses[C.s[jobs[k]] - 1] !== "completed") failed++;
  L.summary = `${jobs.length} of ${D.n} jobs shown, ${failed} failed`;
  performance.mark("laid-out");
  clear();
  render();
}
"""

# Drawing what is on screen: cells, their cards, the labels; cards whose chunk is loading are filled when it comes.
SCRIPT_DRAW = r"""
let live = new Map(), frame = 0;
function clear() {
  for (const cell of live.values()) cell.el.remove();
  live = new Map();
}
function find(edges, v) {
  // the last i with edges[i] <= v (edges rise from 0)
  let lo = 0, hi = edges.length - 2;
  if (hi < 0) return 0;
  while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (edges[mid] <= v) lo = mid; else hi = mid - 1; }
  return lo;
}
function view() {
  // what to draw: the window's part of the table (and a margin), or all of a small table (a full-page screenshot,
  // printing and the browser's find then see every card)
  if (L.all) return {top: -Infinity, bottom: Infinity, left: -Infinity, right: Infinity};
  const r = $("grid").getBoundingClientRect();
  return {top: -r.top - OVER, bottom: -r.top + innerHeight + OVER, left: -r.left - LABEL_W, right: -r.left - LABEL_W + innerWidth};
}
function cellAt(r, c) {
  // the cell index of row r, column c, or -1 (cells of a row are in column order)
  let lo = L.rowFirst[r], hi = L.rowFirst[r + 1] - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (L.cx[mid] === c) return mid;
    if (L.cx[mid] < c) lo = mid + 1; else hi = mid - 1;
  }
  return -1;
}
function render() {
  frame = 0;
  const v = view(), nx = L.xs.length, ny = L.ys.length, want = new Set();
  $("grid").style.height = L.top[ny] + "px";
  $("grid").style.width = $("cols").style.width = LABEL_W + L.left[nx] + "px";
  $("cols").style.top = document.querySelector("header").offsetHeight + "px";
  const r0 = find(L.top, Math.max(0, v.top)), r1 = find(L.top, Math.max(0, v.bottom));
  const c0 = find(L.left, Math.max(0, v.left)), c1 = find(L.left, Math.max(0, v.right));
  for (let r = r0; r <= r1 && r < ny; r++) {
    for (let c = c0; c <= c1 && c < nx; c++) {
      const key = r * nx + c;
      want.add(key);
      const cell = live.get(key) || addCell(r, c, key);
      if (cell.index >= 0) syncItems(cell, v);
    }
  }
  for (const [key, cell] of live) if (!want.has(key)) { cell.el.remove(); live.delete(key); }
  labels(r0, Math.min(r1, ny - 1), c0, Math.min(c1, nx - 1));
  done();
}
function schedule() {
  if (L && !frame) frame = requestAnimationFrame(render);
}
function axisLabel(p, i) {
  return p ? `${p} = ${D.values[p][i]}` : "all";
}
function labels(r0, r1, c0, c1) {
  const cols = [], rows = [];
  for (let c = c0; c <= c1; c++) {
    cols.push(th("col-label", axisLabel(state.x, L.xs[c]), LABEL_W + L.left[c], 0, L.left[c + 1] - L.left[c] - GAP));
  }
  for (let r = r0; r <= r1; r++) rows.push(th("row-label", axisLabel(state.y, L.ys[r]), 0, L.top[r], LABEL_W - GAP));
  $("cols").replaceChildren(...cols);
  for (const old of $("grid").querySelectorAll(":scope > th")) old.remove();
  $("grid").prepend(...rows);
}
function th(cls, text, left, top, width) {
  const el = document.createElement("th");
  el.className = cls;
  el.textContent = el.title = text;
  Object.assign(el.style, {left: left + "px", top: top + "px", width: width + "px"});
  return el;
}
function addCell(r, c, key) {
  // a td element outside a table: the same name as the table's cells had, laid out by position
  const el = document.createElement("td"), index = cellAt(r, c);
  el.className = "cell";
  el.dataset.x = L.xs[c] === null ? "" : D.values[state.x][L.xs[c]];
  el.dataset.y = L.ys[r] === null ? "" : D.values[state.y][L.ys[r]];
  Object.assign(el.style, {left: LABEL_W + L.left[c] + "px", top: L.top[r] + "px",
    width: L.left[c + 1] - L.left[c] - GAP + "px", height: L.top[r + 1] - L.top[r] - GAP + "px"});
  el.innerHTML = index < 0 ? '<div class="items"><span class="empty">no job</span></div>' : '<div class="items"></div>';
  const cell = {el, r, c, index, box: el.firstChild, items: new Map()};
  live.set(key, cell);
  $("grid").appendChild(el);
  return cell;
}
function syncItems(cell, v) {
  const per = L.cards[cell.c], first = L.items[L.start[cell.index]], count = L.items[L.start[cell.index + 1]] - first;
  const y = L.top[cell.r] + PAD + 1;
  const k0 = Math.max(0, Math.floor((v.top - y) / L.slotH) * per), k1 = Math.min(count, (Math.floor((v.bottom - y) / L.slotH) + 1) * per);
  let added = false;
  for (const [k, el] of cell.items) if (k < k0 || k >= k1) { el.remove(); cell.items.delete(k); }
  for (let k = k0; k < k1; k++) {
    if (!cell.items.has(k)) { cell.items.set(k, card(cell, k, first + k)); added = true; }
  }
  if (added) for (const k of [...cell.items.keys()].sort((a, b) => a - b)) cell.box.appendChild(cell.items.get(k));
}
function card(cell, k, item) {
  // the k-th card of a cell: which job (a binary search over item offsets) and which of its items
  let lo = L.start[cell.index], hi = L.start[cell.index + 1] - 1;
  while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (L.items[mid] <= item) lo = mid; else hi = mid - 1; }
  const j = L.order[lo], d = detail(j);
  const el = element(d ? itemsHtml(job(j), tagOf(cell.index, j, d.id))[item - L.items[lo]] : '<div class="item loading">...</div>');
  if (!d) { el.dataset.job = j; el.dataset.item = item - L.items[lo]; el.dataset.cell = cell.index; }
  const per = L.cards[cell.c];
  Object.assign(el.style, {left: (k % per) * (L.cardW + SPACE) + "px", top: Math.floor(k / per) * L.slotH + "px"});
  return el;
}
function element(html) {
  const t = document.createElement("template");
  t.innerHTML = html;
  return t.content.firstElementChild;
}
function arrived() {
  for (const cell of live.values()) {
    for (const [k, el] of cell.items) {
      if (!el.classList.contains("loading")) continue;
      const j = Number(el.dataset.job), d = detail(j);
      if (!d) continue;
      const fresh = element(itemsHtml(job(j), tagOf(cell.index, j, d.id))[Number(el.dataset.item)]);
      fresh.style.cssText = el.style.cssText;
      el.replaceWith(fresh);
      cell.items.set(k, fresh);
    }
  }
  done();
}
function done() {
  $("summary").textContent = L.summary;
  $("summary").className = "";
  if (!document.querySelector(".item.loading")) document.body.dataset.rendered = String(performance.now());
}
"""

# One job's cards: failure, images, media, files, texts, with the label telling it from others in its cell.
SCRIPT_CARDS = r"""
function hover(job) {
  const lines = D.params.filter((p) => p in job.p).map((p) => `${p} = ${D.values[p][job.p[p]]}`);
  lines.push(`workflow = ${job.w}`, `status = ${job.s}`, `job = ${job.id}`);
  return esc(lines.join("\n"));
}
function cellTags(index) {
  // per cell, once: what tells its jobs apart (the parameters and workflow that differ there), and which of
  // those texts repeat (jobs the same in all of them, repeats: their job id is added)
  let t = L.tags.get(index);
  if (t) return t;
  const jobs = L.order.subarray(L.start[index], L.start[index + 1]);
  t = {text: new Map(), repeated: new Set()};
  if (jobs.length > 1) {
    const differs = (col) => jobs.some((j) => col[j] !== col[jobs[0]]);
    const params = D.params.filter((p) => differs(C.p[p])), workflow = differs(C.w), count = new Map();
    for (const j of jobs) {
      const parts = params.filter((p) => C.p[p][j]).map((p) => `${p} = ${D.values[p][C.p[p][j] - 1]}`);
      if (workflow) parts.unshift(`workflow = ${D.workflows[C.w[j] - 1]}`);
      const text = parts.join(", ");
      t.text.set(j, text);
      count.set(text, (count.get(text) || 0) + 1);
    }
    for (const [text, n] of count) if (n > 1) t.repeated.add(text);
  }
  L.tags.set(index, t);
  return t;
}
function tagOf(index, j, id) {
  const t = cellTags(index), text = t.text.get(j);
  if (text === undefined) return "";
  return t.repeated.has(text) ? (text ? text + ", " : "") + `job = ${id}` : text;
}
function itemsHtml(job, text) {
  const tag = text ? `<div class="tag">${esc(text)}</div>` : "";
  const item = (cls, inner) => `<div class="${cls}" data-id="${esc(job.id)}" title="${hover(job)}">${inner}</div>`;
  if (job.s !== "completed") return [item("item failed", `${tag}${esc(job.s)}: ${esc(job.e || "")}`)];
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
  return parts.length ? parts : [item("item missing", `${tag}no '${esc(state.v)}' output`)];
}
function start() {
  state = {x: D.x || "", y: D.y || "", v: D.vars[0] || "", status: "", filters: Object.create(null)};
  readHash();
  buildControls();
  relayout();
  addEventListener("scroll", schedule, {passive: true});
  addEventListener("resize", () => { if (L) relayout(); });
}
load("columns.js");
"""

TEMPLATE = ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>__TITLE__</title>\n"
            f"<style>{STYLE}</style>\n</head>\n<body>{BODY}<script>{SCRIPT_DATA}{SCRIPT_CONTROLS}{SCRIPT_LAYOUT}"
            f"{SCRIPT_DRAW}{SCRIPT_CARDS}</script>\n</body>\n</html>\n")
