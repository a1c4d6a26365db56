// The swarm dashboard page: plain JS, no build step. Live state comes from one
// server-sent event stream (/api/events): a snapshot, then one event per change
// (agents, registry events, the swarm's state, the list of pending approvals).
// Details (steps, trace, log, usage) are fetched when an agent is selected and
// again only when that agent's own record changes: nothing polls the server.
"use strict";

const state = { swarm: {}, agents: new Map(), selected: null, tab: "steps", events: [], approvals: [] };
const TERMINAL = new Set(["done", "failed", "killed", "crashed"]);
const $ = (id) => document.getElementById(id);

function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined) el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

const fmtInt = (n) => (n || 0).toLocaleString("en-US");
const fmtUsd = (x) => "$" + (x || 0).toFixed(4);
const fmtTime = (ts) => (ts ? new Date(ts * 1000).toLocaleTimeString() : "–");
const fmtDur = (ns) => (ns < 1e6 ? (ns / 1e3).toFixed(0) + "µs" : ns < 1e9 ? (ns / 1e6).toFixed(1) + "ms" : (ns / 1e9).toFixed(2) + "s");

async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error((data.error && data.error.message) || resp.status + " " + resp.statusText);
  return data;
}

function toast(text, isError) {
  const t = $("toast");
  t.textContent = text;
  t.dataset.show = "true";
  t.dataset.error = isError ? "true" : "false";
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.dataset.show = "false"; }, 4000);
}

function debounce(fn, ms) {
  let timer = null;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

// ------------------------------------------------------------------ the stream

function connect() {
  const es = new EventSource("/api/events");
  es.onopen = () => { $("conn").dataset.ok = "true"; $("conn").textContent = "live"; };
  es.onerror = () => { $("conn").dataset.ok = "false"; $("conn").textContent = "reconnecting"; };
  es.addEventListener("snapshot", (e) => {
    const data = JSON.parse(e.data);
    state.swarm = data.swarm || {};
    state.agents = new Map(data.agents.map((a) => [a.id, a]));
    state.approvals = data.approvals || [];
    if (state.selected && !state.agents.has(state.selected)) state.selected = null;
    renderAll();
  });
  es.addEventListener("approvals", (e) => {
    state.approvals = JSON.parse(e.data);
    renderApprovals();
    scheduleRender();
  });
  es.addEventListener("agent", (e) => {
    const a = JSON.parse(e.data);
    const before = state.agents.get(a.id);
    state.agents.set(a.id, a);
    scheduleRender();
    if (a.id === state.selected) refreshSelected(before, a);
    refreshChart();
  });
  es.addEventListener("swarm", (e) => { state.swarm = JSON.parse(e.data); renderHeader(); });
  es.addEventListener("event", (e) => {
    const ev = JSON.parse(e.data);
    if (ev.agent_id === state.selected && state.tab === "events") loadTab();
  });
}

let renderPending = false;
function scheduleRender() {
  if (renderPending) return;
  renderPending = true;
  requestAnimationFrame(() => { renderPending = false; renderTree(); renderHeader(); renderFacts(); });
}

function renderAll() {
  renderHeader();
  renderApprovals();
  renderTree();
  renderDetail();
  refreshChart();
}

// ------------------------------------------------------------------ header and tree

function renderHeader() {
  const s = state.swarm || {};
  $("swarm-name").textContent = s.name || "–";
  const badge = $("swarm-state");
  badge.dataset.state = s.state || "none";
  badge.textContent = s.state === "none" || !s.state ? "no swarm" : s.state;
  const all = [...state.agents.values()];
  $("total-agents").textContent = fmtInt(all.length);
  $("total-live").textContent = fmtInt(all.filter((a) => !TERMINAL.has(a.status)).length);
  $("total-tokens").textContent = fmtInt(all.reduce((n, a) => n + (a.tokens || 0), 0));
  $("total-cost").textContent = fmtUsd(all.reduce((n, a) => n + (a.cost_usd || 0), 0));
}

function treeOrder() {
  const kids = new Map();
  const roots = [];
  for (const a of state.agents.values()) {
    if (a.parent && state.agents.has(a.parent)) {
      if (!kids.has(a.parent)) kids.set(a.parent, []);
      kids.get(a.parent).push(a);
    } else roots.push(a);
  }
  const out = [];
  const rollup = new Map();
  const walk = (a, depth, last, prefix) => {
    out.push({ a, depth, prefix: depth ? prefix + (last ? "└ " : "├ ") : "" });
    let tokens = a.tokens || 0, cost = a.cost_usd || 0;
    const ch = kids.get(a.id) || [];
    ch.forEach((c, i) => {
      const sub = walk(c, depth + 1, i === ch.length - 1, depth ? prefix + (last ? "  " : "│ ") : "");
      tokens += sub.tokens; cost += sub.cost;
    });
    rollup.set(a.id, { tokens, cost });
    return { tokens, cost };
  };
  roots.forEach((r, i) => walk(r, 0, i === roots.length - 1, ""));
  return { rows: out, rollup };
}

function statusPill(status) {
  return h("span", { class: "status", "data-status": status, text: status });
}

function renderTree() {
  const { rows, rollup } = treeOrder();
  state.rollup = rollup;
  const body = $("agent-rows");
  body.replaceChildren(...rows.map(({ a, prefix }) => {
    const r = rollup.get(a.id);
    return h("tr", {
      class: "agent", id: "agent-" + a.id, "data-id": a.id, "data-status": a.status,
      "aria-selected": a.id === state.selected ? "true" : "false", onclick: () => select(a.id),
    },
    h("td", { class: "name", title: a.role + (a.pid ? " · pid " + a.pid : "") },
      h("span", { class: "indent", text: prefix }), a.id, pendingBadge(a.id)),
    h("td", {}, statusPill(a.status)),
    h("td", { class: "num", text: fmtInt(a.steps) }),
    h("td", { class: "num", text: fmtInt(a.tokens) }),
    h("td", { class: "num", text: fmtUsd(a.cost_usd) }),
    h("td", { class: "num", title: fmtInt(r.tokens) + " tokens", text: fmtUsd(r.cost) }));
  }));
  $("no-agents").hidden = rows.length > 0;
}

// ------------------------------------------------------------------ the selected agent

function select(id) {
  state.selected = id;
  state.inspect = null;
  renderTree();
  renderDetail();
  refreshChart();
}

function renderDetail() {
  const a = state.agents.get(state.selected);
  $("detail").hidden = !a;
  if (!a) return;
  $("d-id").textContent = a.id;
  renderFacts();
  loadInspect();
  loadTab();
}

function renderFacts() {
  const a = state.agents.get(state.selected);
  if (!a) return;
  const st = $("d-status");
  st.className = "status";
  st.dataset.status = a.status;
  st.textContent = a.status;
  const r = (state.rollup && state.rollup.get(a.id)) || { tokens: a.tokens, cost: a.cost_usd };
  const info = state.inspect || {};
  const facts = [
    ["role", a.role], ["parent", a.parent || "–"], ["depth", a.depth], ["pid", a.pid || "–"],
    ["steps", fmtInt(a.steps)], ["tokens", fmtInt(a.tokens)], ["requests", fmtInt(a.requests)],
    ["cost", fmtUsd(a.cost_usd)], ["subtree tokens", fmtInt(r.tokens)], ["subtree cost", fmtUsd(r.cost)],
    ["started", fmtTime(info.started_at)], ["ended", fmtTime(info.ended_at)],
  ];
  const dl = $("d-facts");
  dl.replaceChildren(...facts.flatMap(([k, v]) => [h("dt", { text: k }), h("dd", { text: String(v) })]));
  for (const [k, v] of [["task", info.task], ["result", info.result], ["reason", a.reason]]) {
    if (v) dl.append(h("dt", { text: k }), h("dd", { class: "wide", text: v }));
  }
  const live = !TERMINAL.has(a.status);
  $("btn-kill").disabled = !live;
  $("btn-freeze").disabled = !live || a.status === "frozen";
  $("btn-thaw").disabled = !live || a.status !== "frozen";
}

async function loadInspect() {
  const id = state.selected;
  try {
    const info = await api("GET", "/api/agents/" + encodeURIComponent(id));
    if (id !== state.selected) return;
    state.inspect = info;
    renderFacts();
    if (state.tab === "events") renderEvents();
  } catch (err) { toast(err.message, true); }
}

const refreshTab = debounce(() => loadTab(), 250);
function refreshSelected(before, after) {
  renderFacts();
  if (!before || before.status !== after.status || before.steps !== after.steps) loadInspect();
  if (!before || before.steps !== after.steps || before.tokens !== after.tokens || before.status !== after.status) refreshTab();
}

// ------------------------------------------------------------------ tabs

const TABS = {
  steps: async (id, el) => renderSteps(el, await api("GET", `/api/agents/${encodeURIComponent(id)}/steps`)),
  trace: async (id, el) => renderWaterfall(el, await api("GET", `/api/agents/${encodeURIComponent(id)}/trace`)),
  logs: async (id, el) => renderLog(el, await api("GET", `/api/agents/${encodeURIComponent(id)}/logs?n=300`)),
  events: async () => renderEvents(),
};

async function loadTab() {
  const id = state.selected, tab = state.tab;
  if (!id) return;
  for (const b of document.querySelectorAll("nav.tabs button")) b.setAttribute("aria-selected", b.dataset.tab === tab ? "true" : "false");
  for (const name of Object.keys(TABS)) $("tab-" + name).hidden = name !== tab;
  const el = $("tab-" + tab);
  try {
    await TABS[tab](id, el);
  } catch (err) {
    if (id === state.selected) el.replaceChildren(h("p", { class: "muted", text: err.message }));
  }
}

function renderSteps(el, steps) {
  if (!steps.length) { el.replaceChildren(h("p", { class: "muted", text: "No steps yet." })); return; }
  const keys = ["text", "reasoning", "plan", "criticism", "speak"];
  el.replaceChildren(...steps.slice().reverse().map((s) => h("div", { class: "step", "data-ok": String(s.ok !== false) },
    h("div", { class: "head" }, `step ${s.step} · ${fmtTime(s.ts)} · `, h("span", { class: "cmd", text: s.command || "?" }),
      s.args && Object.keys(s.args).length ? " " + JSON.stringify(s.args).slice(0, 300) : ""),
    keys.filter((k) => s.thoughts && s.thoughts[k]).map((k) =>
      h("div", { class: "thought" }, h("b", { text: k + ": " }), String(s.thoughts[k]))),
    s.result !== null && s.result !== undefined ? h("pre", { text: String(s.result) }) : null)));
}

function renderLog(el, events) {
  const skip = new Set(["ts", "level", "event", "role", "agent_id"]);
  el.replaceChildren(h("div", { class: "log" }, events.map((e) => h("div", { class: e.level || "info" },
    `${fmtTime(e.ts)} ${e.event} ` + Object.entries(e).filter(([k]) => !skip.has(k))
      .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join(" ")))));
  el.scrollTop = el.scrollHeight;
}

function renderEvents() {
  const el = $("tab-events");
  const evs = (state.inspect && state.inspect.events) || [];
  el.replaceChildren(evs.length ? h("div", { class: "log" }, evs.map((e) => h("div", {},
    `${fmtTime(e.ts)} ${e.event} ${e.detail || ""}`))) : h("p", { class: "muted", text: "No events." }));
}

const KIND = { chat: "model", execute_tool: "tool", step: "agent", start_agent: "agent", invoke_agent: "agent" };
function spanKind(s) {
  const first = s.name.split(" ")[0];
  return KIND[first] || "control";
}

function renderWaterfall(el, spans) {
  if (!spans.length) { el.replaceChildren(h("p", { class: "muted", text: "No spans recorded for this agent yet." })); return; }
  const byId = new Map(spans.map((s) => [s.span_id, s]));
  const depth = (s) => { let d = 0, p = byId.get(s.parent_span_id); while (p && d < 50) { d++; p = byId.get(p.parent_span_id); } return d; };
  const t0 = Math.min(...spans.map((s) => s.start_ns));
  const t1 = Math.max(...spans.map((s) => s.end_ns || s.start_ns));
  const total = Math.max(1, t1 - t0);
  const sorted = spans.slice().sort((a, b) => a.start_ns - b.start_ns);
  el.replaceChildren(h("div", { class: "waterfall" },
    h("div", { class: "muted", text: `trace ${spans[0].trace_id} · ${spans.length} spans · ${fmtDur(total)}` }),
    sorted.flatMap((s) => {
      const bar = h("div", { class: "wf-bar", "data-kind": spanKind(s), title: s.name });
      bar.style.left = ((s.start_ns - t0) / total * 100).toFixed(3) + "%";
      bar.style.width = (((s.end_ns || s.start_ns) - s.start_ns) / total * 100).toFixed(3) + "%";
      const name = h("div", { class: "wf-name", title: s.name });
      name.style.paddingLeft = depth(s) * 12 + "px";
      name.textContent = s.name + (s.agent !== state.selected ? ` (${s.agent})` : "");
      const attrs = Object.entries(s.attributes || {}).map(([k, v]) => `${k}=${v}`).join("  ");
      return [h("div", { class: "wf-row", "data-span": s.span_id }, name, h("div", { class: "wf-track" }, bar),
        h("div", { class: "wf-dur", text: fmtDur((s.end_ns || s.start_ns) - s.start_ns) })),
        h("div", { class: "wf-attrs", text: attrs })];
    })));
}

// ------------------------------------------------------------------ the usage chart

const refreshChart = debounce(async () => {
  const id = state.selected;
  $("chart-scope").textContent = id ? "agent " + id : "whole swarm";
  try {
    const data = await api("GET", "/api/usage" + (id ? "?agent=" + encodeURIComponent(id) : ""));
    drawChart($("chart"), data);
  } catch (err) {
    $("chart").replaceChildren(h("p", { class: "muted", text: err.message }));
  }
}, 400);

function svg(tag, attrs, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  for (const c of children) el.append(c);
  return el;
}

function drawChart(el, data) {
  const buckets = data.buckets || [];
  if (!buckets.length) { el.replaceChildren(h("p", { class: "muted", text: "No model calls yet." })); return; }
  const W = 600, H = 170, L = 44, R = 52, T = 10, B = 22;
  const maxTok = Math.max(1, ...buckets.map((b) => b.tokens_per_minute));
  let cum = 0;
  const cumCost = buckets.map((b) => (cum += b.cost_usd));
  const maxCost = Math.max(1e-9, cum);
  const bw = (W - L - R) / buckets.length;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img" });
  root.append(svg("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }));
  buckets.forEach((b, i) => {
    const hgt = (b.tokens_per_minute / maxTok) * (H - T - B);
    const bar = svg("rect", { class: "bar", x: L + i * bw + 1, y: H - B - hgt, width: Math.max(1, bw - 2), height: hgt });
    bar.append(svg("title", {}, `${fmtTime(b.t)}: ${fmtInt(b.tokens)} tokens in ${data.bucket_s}s, ${fmtUsd(b.cost_usd)}`));
    root.append(bar);
  });
  const pts = cumCost.map((c, i) => `${L + (i + 0.5) * bw},${H - B - (c / maxCost) * (H - T - B)}`).join(" ");
  root.append(svg("polyline", { class: "cost", points: pts }));
  const label = (x, y, text, anchor) => svg("text", { x, y, "text-anchor": anchor }, text);
  root.append(label(L - 4, T + 8, fmtInt(maxTok), "end"), label(L - 4, H - B, "0", "end"),
    label(W - R + 4, T + 8, fmtUsd(maxCost), "start"),
    label(L, H - 6, fmtTime(buckets[0].t), "start"),
    label(W - R, H - 6, fmtTime(buckets[buckets.length - 1].t + data.bucket_s), "end"));
  el.replaceChildren(root, h("div", { class: "muted",
    text: `bars: tokens per minute (${data.bucket_s}s buckets) · line: cumulative cost` }));
}

// ------------------------------------------------------------------ actions

async function act(path, body, done) {
  try {
    const r = await api("POST", `/api/agents/${encodeURIComponent(state.selected)}/${path}`, body);
    toast(done(r));
  } catch (err) { toast(err.message, true); }
}

function confirmKill() {
  const id = state.selected;
  const below = [...state.agents.values()].filter((a) => !TERMINAL.has(a.status));
  const kids = new Map();
  below.forEach((a) => { if (a.parent) kids.set(a.parent, [...(kids.get(a.parent) || []), a.id]); });
  let n = 0; const todo = [...(kids.get(id) || [])];
  while (todo.length) { n++; todo.push(...(kids.get(todo.shift()) || [])); }
  $("confirm-text").textContent = `Kill agent ${id}` + (n ? ` and its ${n} live sub-agent(s)` : "") + "? This cannot be undone.";
  const dlg = $("confirm");
  dlg.returnValue = "";
  dlg.onclose = () => { if (dlg.returnValue === "ok" && id === state.selected) act("kill", {}, (r) => `stopped ${r.stopped} agent(s)`); };
  dlg.showModal();
}

function wire() {
  $("btn-kill").addEventListener("click", confirmKill);
  $("btn-freeze").addEventListener("click", () => act("freeze", {}, (r) => `frozen ${r.agents} agent(s)`));
  $("btn-thaw").addEventListener("click", () => act("thaw", {}, (r) => `thawed ${r.agents} agent(s)`));
  $("send-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const input = $("send-text");
    if (!input.value.trim()) return;
    act("messages", { text: input.value }, () => "sent");
    input.value = "";
  });
  $("deny-reason").addEventListener("keydown", (e) => {
    // Enter means Deny here (the form's first button, its implicit submit, is Cancel)
    if (e.key === "Enter") { e.preventDefault(); $("deny-dialog").close("ok"); }
  });
  for (const b of document.querySelectorAll("nav.tabs button")) {
    b.addEventListener("click", () => { state.tab = b.dataset.tab; loadTab(); });
  }
  connect();
}

document.addEventListener("DOMContentLoaded", wire);
