// The access graph: workloads on the left, Azure scopes on the right, one edge per discovered
// intent coloured by status. It uses only the mapper's public JSON API (docs/mapper-api.md).
"use strict";

const REFRESH_MS = 2000;
const $ = (id) => document.getElementById(id);
const state = { graph: { nodes: [], edges: [] }, raw: "", selected: null, namespaces: new Set() };

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const s = q.toString();
  return s ? "?" + s : "";
}

async function getJSON(path) {
  const res = await fetch(path, { cache: "no-store" });
  const body = await res.json();
  if (!res.ok) throw new Error(body.error || res.statusText);
  return body;
}

// A scope's display: the last resource name, and the account or vault it belongs to.
function describeScope(scope) {
  const parts = scope.split("/").filter(Boolean);
  const short = parts.length ? parts[parts.length - 1] : scope;
  const lower = parts.map((p) => p.toLowerCase());
  let group = "other";
  const acct = lower.indexOf("storageaccounts");
  const vault = lower.indexOf("vaults");
  if (acct >= 0 && parts[acct + 1]) group = "storage account " + parts[acct + 1];
  else if (vault >= 0 && parts[vault + 1]) group = "key vault " + parts[vault + 1];
  else if (lower[0] === "subscriptions") group = "subscription " + parts[1];
  let kind = "";
  for (const k of ["containers", "queues", "tables", "shares", "secrets", "keys", "certificates"]) {
    const i = lower.indexOf(k);
    if (i >= 0 && i === parts.length - 2) kind = k.replace(/s$/, "");
  }
  if (!kind && (acct === parts.length - 2 || vault === parts.length - 2)) kind = acct >= 0 ? "account" : "vault";
  return { short, group, kind };
}

function matchesSearch(text) {
  const s = $("search").value.trim().toLowerCase();
  return !s || text.toLowerCase().includes(s);
}

function visibleGraph() {
  const { nodes, edges } = state.graph;
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const label = (n) => (n.type === "workload" ? `${n.namespace}/${n.name} ${n.kind}` : n.scope);
  const keep = edges.filter((e) => {
    const a = byId.get(e.from), b = byId.get(e.to);
    return a && b && (matchesSearch(label(a)) || matchesSearch(label(b)));
  });
  const ids = new Set(keep.flatMap((e) => [e.from, e.to]));
  return { nodes: nodes.filter((n) => ids.has(n.id)), edges: keep };
}

function render() {
  const { nodes, edges } = visibleGraph();
  const workloads = nodes.filter((n) => n.type === "workload")
    .sort((a, b) => (a.namespace + "/" + a.name).localeCompare(b.namespace + "/" + b.name));
  const scopes = nodes.filter((n) => n.type === "scope").map((n) => ({ ...n, ...describeScope(n.scope) }))
    .sort((a, b) => (a.group + a.scope).localeCompare(b.group + b.scope));

  const wl = $("workloads");
  wl.replaceChildren();
  for (const n of workloads) {
    const el = document.createElement("div");
    el.className = "node workload" + (state.selected === n.id ? " selected" : "");
    el.dataset.id = n.id;
    el.innerHTML = `<div class="kind"></div><div class="name"></div>`;
    el.querySelector(".kind").textContent = `${n.kind} · ${n.namespace}`;
    el.querySelector(".name").textContent = n.name;
    el.addEventListener("click", () => openPanel(n));
    wl.appendChild(el);
  }
  const sc = $("scopes");
  sc.replaceChildren();
  let group = null;
  for (const n of scopes) {
    if (n.group !== group) {
      group = n.group;
      const g = document.createElement("div");
      g.className = "group";
      g.textContent = group;
      sc.appendChild(g);
    }
    const el = document.createElement("div");
    el.className = "node scope";
    el.dataset.id = n.id;
    el.innerHTML = `<div class="short"></div><div class="full"></div>`;
    el.querySelector(".short").textContent = n.kind ? `${n.kind} ${n.short}` : n.short;
    el.querySelector(".full").textContent = n.scope;
    sc.appendChild(el);
  }
  $("empty").hidden = edges.length > 0;
  drawEdges(edges);
}

function drawEdges(edges) {
  const svg = $("edges");
  const wrap = $("graph-wrap").getBoundingClientRect();
  svg.setAttribute("viewBox", `0 0 ${wrap.width} ${wrap.height}`);
  svg.replaceChildren();
  const pos = new Map();
  for (const el of document.querySelectorAll(".node[data-id]")) pos.set(el.dataset.id, el.getBoundingClientRect());
  const pairCount = new Map();
  for (const e of edges) {
    const a = pos.get(e.from), b = pos.get(e.to);
    if (!a || !b) continue;
    const key = e.from + "|" + e.to;
    const k = pairCount.get(key) || 0;
    pairCount.set(key, k + 1);
    const off = k * 5;
    const x1 = a.right - wrap.left, y1 = a.top + a.height / 2 - wrap.top + off;
    const x2 = b.left - wrap.left, y2 = b.top + b.height / 2 - wrap.top + off;
    const dx = Math.max(40, (x2 - x1) / 2);
    const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
    path.setAttribute("d", `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}`);
    path.setAttribute("class", `edge ${e.status}`);
    path.dataset.from = e.from;
    path.dataset.to = e.to;
    path.dataset.status = e.status;
    const perms = [...(e.actions || []), ...(e.dataActions || [])];
    path.dataset.permissions = perms.join("\n");
    path.addEventListener("mousemove", (ev) => showTip(ev, `${e.status} · ${e.calls} call(s)\n${perms.join("\n")}`));
    path.addEventListener("mouseleave", hideTip);
    svg.appendChild(path);
  }
}

function showTip(ev, text) {
  const tip = $("tooltip");
  tip.textContent = text;
  tip.hidden = false;
  tip.style.left = ev.clientX + 14 + "px";
  tip.style.top = ev.clientY + 14 + "px";
}
function hideTip() { $("tooltip").hidden = true; }

async function openPanel(node) {
  state.selected = node.id;
  render();
  $("panel").hidden = false;
  $("panel-title").textContent = `ClientIntents for ${node.namespace}/${node.name}`;
  $("yaml").textContent = "loading…";
  try {
    const body = await getJSON("/api/export" + query({ namespace: node.namespace, workload: node.name }));
    const doc = body.documents.find((d) => d.workload.name === node.name && d.workload.kind === node.kind) || body.documents[0];
    $("yaml").textContent = doc ? doc.yaml : "(nothing to export)";
    $("download").dataset.filename = `client-intents-for-${node.name}.yaml`;
  } catch (err) {
    $("yaml").textContent = "error: " + err.message;
  }
  requestAnimationFrame(() => drawEdges(visibleGraph().edges));
}

async function refresh() {
  const ns = $("namespace").value, status = $("status").value;
  try {
    const all = await getJSON("/api/graph");
    for (const n of all.nodes) if (n.namespace) state.namespaces.add(n.namespace);
    syncNamespaces();
    const body = ns || status ? await getJSON("/api/graph" + query({ namespace: ns, status })) : all;
    const raw = JSON.stringify(body);
    if (raw !== state.raw) {
      state.raw = raw;
      state.graph = body;
      render();
    }
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (err) {
    $("updated").textContent = "cannot reach the mapper: " + err.message;
  }
}

function syncNamespaces() {
  const sel = $("namespace");
  const have = new Set([...sel.options].map((o) => o.value));
  for (const ns of [...state.namespaces].sort()) {
    if (!have.has(ns)) sel.appendChild(new Option(ns, ns));
  }
}

$("namespace").addEventListener("change", () => { state.raw = ""; refresh(); });
$("status").addEventListener("change", () => { state.raw = ""; refresh(); });
$("search").addEventListener("input", render);
$("close").addEventListener("click", () => { $("panel").hidden = true; state.selected = null; render(); });
$("copy").addEventListener("click", async () => {
  const text = $("yaml").textContent;
  try { await navigator.clipboard.writeText(text); $("copied").textContent = "copied"; }
  catch { const r = document.createRange(); r.selectNodeContents($("yaml")); getSelection().removeAllRanges(); getSelection().addRange(r); document.execCommand("copy"); $("copied").textContent = "copied"; }
  setTimeout(() => ($("copied").textContent = ""), 1500);
});
$("download").addEventListener("click", () => {
  const blob = new Blob([$("yaml").textContent], { type: "application/yaml" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = $("download").dataset.filename || "clientintents.yaml";
  a.click();
  URL.revokeObjectURL(a.href);
});
window.addEventListener("resize", () => drawEdges(visibleGraph().edges));

refresh();
setInterval(refresh, REFRESH_MS);
