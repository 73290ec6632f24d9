// The access graph: workloads on the left (by namespace), Azure scopes on the right (by storage
// account or key vault), one edge per discovered intent coloured by status. It uses only the
// mapper's public JSON API (docs/mapper-api.md): GET /api/graph and GET /api/export.
"use strict";

const REFRESH_MS = 2000;
const SVG_NS = "http://www.w3.org/2000/svg";
const STATUSES = ["applied", "missing", "denied"];
const $ = (id) => document.getElementById(id);
const state = {
  graph: { nodes: [], edges: [] }, // as last fetched (with the namespace/status filters applied)
  raw: "",                         // that response's text, to do nothing when nothing changed
  shape: "",                       // its nodes and edges without counts and times: re-render only when it changes
  byEdge: new Map(),               // "from|to|status" -> the latest edge, for the tooltips
  selected: null,                  // the workload node whose ClientIntents are shown
  namespaces: new Set(),
  yamlKey: "",                     // what the YAML panel shows, to refresh it only when it changed
};

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const s = q.toString();
  return s ? "?" + s : "";
}

async function getText(path) {
  const res = await fetch(path, { cache: "no-store" });
  const text = await res.text();
  if (!res.ok) {
    let msg = res.statusText;
    try { msg = JSON.parse(text).error || msg; } catch { /* not JSON */ }
    throw new Error(`${res.status} ${msg}`);
  }
  return text;
}

// Where a scope sits: its group (storage account, key vault, resource group …), the kind of
// resource inside it, and its own name. Scopes may start at /subscriptions/… or at /providers/….
const KINDS = { containers: "container", queues: "queue", tables: "table", shares: "file share",
  filesystems: "file system", secrets: "secret", keys: "key", certificates: "certificate" };
const SERVICE_ORDER = { container: 1, "file system": 2, queue: 3, table: 4, "file share": 5, secret: 6, key: 7,
  certificate: 8 };

function describeScope(scope) {
  const parts = scope.split("/").filter(Boolean);
  const lower = parts.map((p) => p.toLowerCase());
  const last = parts.length ? parts[parts.length - 1] : scope;
  const acct = lower.indexOf("storageaccounts");
  const vault = lower.indexOf("vaults");
  const rg = lower.indexOf("resourcegroups");
  let group, kind = "", name = last;
  if (acct >= 0 && parts[acct + 1]) {
    group = { key: "0 storage " + lower[acct + 1], label: "storage account", name: parts[acct + 1] };
    if (parts.length === acct + 2) kind = "account";
  } else if (vault >= 0 && parts[vault + 1]) {
    group = { key: "1 vault " + lower[vault + 1], label: "key vault", name: parts[vault + 1] };
    if (parts.length === vault + 2) kind = "vault";
  } else if (rg >= 0 && parts[rg + 1]) {
    group = { key: "2 rg " + lower[rg + 1], label: "resource group", name: parts[rg + 1] };
    if (parts.length === rg + 2) kind = "resource group";
  } else if (lower[0] === "subscriptions" && parts[1]) {
    group = { key: "3 sub " + lower[1], label: "subscription", name: parts[1] };
    if (parts.length === 2) kind = "subscription";
  } else {
    group = { key: "4 other", label: "other", name: "" };
  }
  if (!kind && parts.length >= 2) kind = KINDS[lower[parts.length - 2]] || lower[parts.length - 2];
  if (!kind) kind = "resource";
  return { group, kind, name, order: SERVICE_ORDER[kind] || 0 };
}

function workloadLabel(n) { return `${n.namespace}/${n.name} ${n.kind}`; }

function searchTerms() {
  return $("search").value.trim().toLowerCase().split(/\s+/).filter(Boolean);
}

// Edges whose workload or scope matches every search word, and the nodes they join.
function visibleGraph() {
  const { nodes, edges } = state.graph;
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const terms = searchTerms();
  const hit = (n) => { const t = (n.type === "workload" ? workloadLabel(n) : n.scope).toLowerCase();
    return terms.every((w) => t.includes(w)); };
  const keep = edges.filter((e) => {
    const a = byId.get(e.from), b = byId.get(e.to);
    return a && b && (!terms.length || hit(a) || hit(b));
  });
  const ids = new Set(keep.flatMap((e) => [e.from, e.to]));
  return { nodes: nodes.filter((n) => ids.has(n.id)), edges: keep };
}

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function render() {
  const { nodes, edges } = visibleGraph();
  const counts = new Map(); // workload id -> {applied, missing, denied}
  for (const e of edges) {
    const c = counts.get(e.from) || { applied: 0, missing: 0, denied: 0 };
    c[e.status] = (c[e.status] || 0) + 1;
    counts.set(e.from, c);
  }
  const workloads = nodes.filter((n) => n.type === "workload").sort((a, b) =>
    a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name) || a.kind.localeCompare(b.kind));
  const scopes = nodes.filter((n) => n.type === "scope").map((n) => ({ ...n, ...describeScope(n.scope) }))
    .sort((a, b) => a.group.key.localeCompare(b.group.key) || a.order - b.order || a.scope.localeCompare(b.scope));

  const wl = $("workloads");
  const frag = document.createDocumentFragment();
  let ns = null, box = null; // one box per namespace
  for (const n of workloads) {
    if (n.namespace !== ns || !box) {
      ns = n.namespace;
      box = el("div", "group");
      box.appendChild(el("div", "group-head", ns ? `namespace ${ns}` : "host callers (no pod)"));
      frag.appendChild(box);
    }
    const node = el("div", "node workload" + (state.selected && state.selected.id === n.id ? " selected" : ""));
    node.dataset.id = n.id;
    node.tabIndex = 0;
    node.setAttribute("role", "button");
    node.title = `${n.kind} ${n.namespace}/${n.name}: click for its ClientIntents`;
    const head = el("div", "row");
    const who = el("span", "who");
    who.appendChild(el("span", "name", n.name));
    who.appendChild(el("span", "kind", " " + n.kind));
    head.appendChild(who);
    const badges = el("span", "badges");
    const c = counts.get(n.id) || {};
    for (const s of STATUSES) if (c[s]) badges.appendChild(el("span", `badge ${s}`, String(c[s])));
    head.appendChild(badges);
    node.appendChild(head);
    node.addEventListener("click", () => openPanel(n));
    node.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); openPanel(n); } });
    node.addEventListener("mouseenter", () => focusEdges(n.id));
    node.addEventListener("mouseleave", () => focusEdges(null));
    box.appendChild(node);
  }
  wl.replaceChildren(frag);

  placeScopes(scopes, edges);
  const total = state.graph.edges.length;
  $("summary").textContent = `${workloads.length} workloads · ${scopes.length} scopes · ` +
    (edges.length === total ? `${total} intents` : `${edges.length} of ${total} intents`);
  $("empty").hidden = edges.length > 0;
  $("empty").textContent = total ? "Nothing matches the search." :
    "No discovered intents yet. Run your workloads; calls appear here as the node agents see them.";
  drawEdges(edges);
}

// Scopes grouped by storage account / vault; each group placed level with the workloads that use it
// (the mean height of its edges' workloads), pushed down only as far as needed not to overlap.
function placeScopes(scopes, edges) {
  const sc = $("scopes");
  const top = sc.getBoundingClientRect().top;
  const wy = new Map();
  for (const n of $("workloads").querySelectorAll(".node[data-id]")) {
    const r = n.getBoundingClientRect();
    wy.set(n.dataset.id, r.top - top + r.height / 2);
  }
  const ys = new Map(); // scope id -> [workload y]
  for (const e of edges) {
    const y = wy.get(e.from);
    if (y === undefined) continue;
    if (!ys.has(e.to)) ys.set(e.to, []);
    ys.get(e.to).push(y);
  }
  const groups = new Map();
  for (const n of scopes) {
    if (!groups.has(n.group.key)) groups.set(n.group.key, { group: n.group, scopes: [], ys: [] });
    const g = groups.get(n.group.key);
    g.scopes.push(n);
    g.ys.push(...(ys.get(n.id) || []));
  }
  const mean = (a) => (a.length ? a.reduce((x, y) => x + y, 0) / a.length : 0);
  const ordered = [...groups.values()].map((g) => ({ ...g, y: mean(g.ys) }))
    .sort((a, b) => a.y - b.y || a.group.key.localeCompare(b.group.key));
  const frag = document.createDocumentFragment();
  for (const g of ordered) {
    const box = el("div", "group");
    box.dataset.group = g.group.key;
    const head = el("div", "group-head");
    head.appendChild(el("span", "", g.group.label + (g.group.name ? " " : "")));
    if (g.group.name) head.appendChild(el("strong", "", g.group.name));
    box.appendChild(head);
    for (const n of g.scopes) {
      const node = el("div", "node scope");
      node.dataset.id = n.id;
      node.title = n.scope;
      const row = el("div", "row");
      row.appendChild(el("span", "kind", n.kind));
      row.appendChild(el("span", "short", n.kind === "account" || n.kind === "vault" ? "(whole " + n.kind + ")" : n.name));
      node.appendChild(row);
      node.appendChild(el("div", "full", n.scope));
      node.addEventListener("mouseenter", () => focusEdges(n.id));
      node.addEventListener("mouseleave", () => focusEdges(null));
      box.appendChild(node);
    }
    frag.appendChild(box);
  }
  sc.replaceChildren(frag);
  const gap = 10;
  const heights = [...sc.children].map((box) => box.getBoundingClientRect().height); // one layout, then writes
  let cursor = -gap;
  ordered.forEach((g, i) => {
    const at = Math.max(cursor + gap, g.y - heights[i] / 2);
    sc.children[i].style.marginTop = (at - Math.max(cursor, 0)) + "px";
    cursor = at + heights[i];
  });
}

function drawEdges(edges) {
  const svg = $("edges");
  const wrapEl = $("graph-wrap");
  const wrap = wrapEl.getBoundingClientRect();
  svg.setAttribute("width", wrap.width);
  svg.setAttribute("height", wrap.height);
  svg.setAttribute("viewBox", `0 0 ${wrap.width} ${wrap.height}`);
  const pos = new Map();
  for (const n of wrapEl.querySelectorAll(".node[data-id]")) pos.set(n.dataset.id, n.getBoundingClientRect());
  const pairCount = new Map();
  const frag = document.createDocumentFragment();
  for (const e of edges) {
    const a = pos.get(e.from), b = pos.get(e.to);
    if (!a || !b) continue;
    const key = e.from + "|" + e.to;
    const k = pairCount.get(key) || 0;
    pairCount.set(key, k + 1);
    const off = k * 4; // several statuses on one pair: side by side
    const x1 = a.right - wrap.left, y1 = a.top + a.height / 2 - wrap.top + off;
    const x2 = b.left - wrap.left, y2 = b.top + b.height / 2 - wrap.top + off;
    const dx = Math.max(40, (x2 - x1) / 2);
    const path = document.createElementNS(SVG_NS, "path");
    path.setAttribute("d", `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}`);
    path.setAttribute("class", `edge ${e.status}`);
    path.dataset.from = e.from;
    path.dataset.to = e.to;
    path.dataset.status = e.status;
    const perms = [...(e.actions || []), ...(e.dataActions || [])];
    path.dataset.permissions = perms.join("\n");
    const edgeKey = `${e.from}|${e.to}|${e.status}`;
    path.setAttribute("aria-label", `${e.status}: ${perms.join(", ")}`);
    path.addEventListener("mousemove", (ev) => showTip(ev, edgeTip(state.byEdge.get(edgeKey) || e)));
    path.addEventListener("mouseleave", hideTip);
    frag.appendChild(path);
  }
  svg.replaceChildren(frag);
  focusEdges(state.selected ? state.selected.id : null);
}

// Emphasise the edges of one node (hovered or selected); dim the others.
function focusEdges(id) {
  const target = id || (state.selected && state.selected.id);
  const svg = $("edges");
  svg.classList.toggle("focused", Boolean(target));
  for (const p of svg.children) p.classList.toggle("on", p.dataset.from === target || p.dataset.to === target);
}

function edgeTip(e) {
  const perms = [...(e.actions || []), ...(e.dataActions || [])];
  const seen = e.lastSeen ? ` · last ${new Date(e.lastSeen).toLocaleTimeString()}` : "";
  return `${e.status} · ${e.calls} call(s)${seen} · ${e.to.replace(/^scope:/, "")}\n${perms.join("\n")}`;
}

// What the drawing depends on: nodes and edges without their call counts and times.
function shapeOf(graph) {
  return JSON.stringify([graph.nodes, graph.edges.map((e) => [e.from, e.to, e.status, e.actions, e.dataActions])]);
}

function showTip(ev, text) {
  const tip = $("tooltip");
  tip.textContent = text;
  tip.hidden = false;
  const x = Math.min(ev.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
  tip.style.left = Math.max(0, x) + "px";
  tip.style.top = ev.clientY + 14 + "px";
}
function hideTip() { $("tooltip").hidden = true; }

async function openPanel(node) {
  state.selected = node;
  state.yamlKey = "";
  $("panel").hidden = false;
  $("panel-title").textContent = `ClientIntents for ${node.kind} ${node.namespace}/${node.name}`;
  $("yaml").textContent = "loading…";
  render();
  await loadYaml();
}

async function loadYaml() {
  const node = state.selected;
  if (!node) return;
  const format = $("format").value;
  if (node.kind === "Host") {
    $("yaml").textContent = "(host callers are not in a pod and cannot have ClientIntents)";
    return;
  }
  try {
    const text = await getText("/api/export" + query({ namespace: node.namespace, workload: node.name, format }));
    if (state.selected !== node) return;
    const doc = JSON.parse(text).documents.find((d) => d.workload.name === node.name && d.workload.kind === node.kind);
    const key = format + "\n" + (doc ? doc.yaml : "");
    if (key === state.yamlKey) return;
    state.yamlKey = key;
    $("yaml").textContent = doc ? doc.yaml : "(nothing to export for this workload)";
    $("download").dataset.filename = `${node.namespace}.${node.name}.yaml`;
    $("panel").dataset.workload = node.id;
  } catch (err) {
    $("yaml").textContent = "error: " + err.message;
  }
}

function closePanel() {
  $("panel").hidden = true;
  state.selected = null;
  render();
}

async function refresh() {
  const ns = $("namespace").value, status = $("status").value;
  try {
    let text = await getText("/api/graph");
    const all = JSON.parse(text);
    for (const n of all.nodes) if (n.type === "workload") state.namespaces.add(n.namespace);
    syncNamespaces();
    if (ns || status) text = await getText("/api/graph" + query({ namespace: ns, status }));
    if (text !== state.raw) {
      state.raw = text;
      state.graph = ns || status ? JSON.parse(text) : all;
      state.byEdge = new Map(state.graph.edges.map((e) => [`${e.from}|${e.to}|${e.status}`, e]));
      const shape = shapeOf(state.graph);
      if (shape !== state.shape) {
        state.shape = shape;
        render();
        if (state.selected) await loadYaml();
      }
    }
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
    $("updated").classList.remove("error");
  } catch (err) {
    $("updated").textContent = "cannot reach the mapper: " + err.message;
    $("updated").classList.add("error");
  }
}

function syncNamespaces() {
  const sel = $("namespace");
  const have = new Set([...sel.options].map((o) => o.value));
  for (const ns of [...state.namespaces].sort()) {
    if (ns && !have.has(ns)) sel.appendChild(new Option(ns, ns));
  }
}

async function copyYaml() {
  const text = $("yaml").textContent;
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const r = document.createRange();
    r.selectNodeContents($("yaml"));
    getSelection().removeAllRanges();
    getSelection().addRange(r);
    document.execCommand("copy");
  }
  $("copied").textContent = "copied";
  setTimeout(() => ($("copied").textContent = ""), 1500);
}

function downloadYaml() {
  const blob = new Blob([$("yaml").textContent], { type: "application/yaml" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = $("download").dataset.filename || "clientintents.yaml";
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

let searchTimer = 0;
$("namespace").addEventListener("change", () => { state.raw = state.shape = ""; refresh(); });
$("status").addEventListener("change", () => { state.raw = state.shape = ""; refresh(); });
$("search").addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(render, 120); });
$("format").addEventListener("change", () => { state.yamlKey = ""; loadYaml(); });
$("close").addEventListener("click", closePanel);
document.addEventListener("keydown", (ev) => { if (ev.key === "Escape" && state.selected) closePanel(); });
$("copy").addEventListener("click", copyYaml);
$("download").addEventListener("click", downloadYaml);
new ResizeObserver(() => drawEdges(visibleGraph().edges)).observe($("graph-wrap"));

refresh();
setInterval(refresh, REFRESH_MS);
