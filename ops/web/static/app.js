// botyard dashboard: plain JavaScript and SVG, no external code. It reads the admin API
// (the same routes any client uses) with a bearer token kept in this tab's sessionStorage;
// the token may arrive in the URL fragment (#token=...), which never reaches a server.
"use strict";

const state = { token: null, tenant: null, bot: null, snapshots: [], transcript: null, jobTimer: null };
const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "onclick") node.addEventListener("click", v);
    else if (k === "class") node.className = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
  return node;
}

function svgEl(tag, attrs) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

async function api(method, path, body) {
  const opts = { method, headers: { Authorization: "Bearer " + state.token } };
  if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
  const res = await fetch(path, opts);
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = (data && data.error) || { code: "http_" + res.status, message: res.statusText };
    if (res.status === 401) signOut();
    throw Object.assign(new Error(err.code + ": " + err.message), { code: err.code, status: res.status });
  }
  return data;
}

const botPath = () => `/api/v1/tenants/${encodeURIComponent(state.tenant)}/bots/${encodeURIComponent(state.bot)}`;
const short = (id) => (id ? String(id).slice(0, 12) : "–");
const when = (t) => (t ? new Date(t * 1000).toLocaleTimeString() : "–");
function setStatus(text, isError) { const s = $("status"); s.textContent = text; s.className = isError ? "error" : "muted"; }

// -- charts -------------------------------------------------------------------------------------

function lineChart(svg, series, { since, until, moves, fmt, min0 = true, maxFloor = 0 }) {
  svg.replaceChildren();
  const W = svg.clientWidth || 500, H = svg.clientHeight || 150, L = 44, R = 8, T = 8, B = 18;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const values = series.flatMap((s) => s.points.map((p) => p[1])).filter((v) => v != null);
  let hi = Math.max(maxFloor, ...values, 0), lo = min0 ? 0 : Math.min(...values, hi);
  if (hi === lo) hi = lo + 1;
  const x = (t) => L + ((t - since) / Math.max(1, until - since)) * (W - L - R);
  const y = (v) => H - B - ((v - lo) / (hi - lo)) * (H - T - B);
  svg.append(svgEl("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }));
  svg.append(svgEl("line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }));
  for (const v of [lo, (lo + hi) / 2, hi]) {
    const t = svgEl("text", { class: "tick", x: L - 4, y: y(v) + 3, "text-anchor": "end" });
    t.textContent = fmt(v); svg.append(t);
  }
  for (const t of [since, until]) {
    const label = svgEl("text", { class: "tick", x: x(t), y: H - 4, "text-anchor": t === since ? "start" : "end" });
    label.textContent = when(t); svg.append(label);
  }
  series.forEach((s, i) => {
    // Points without turns are skipped and their neighbours joined; a lone point is a dot.
    let d = "", n = 0;
    for (const [t, v] of s.points) {
      if (v == null) continue;
      d += (n ? "L" : "M") + x(t).toFixed(1) + "," + y(v).toFixed(1); n++;
      svg.append(svgEl("circle", { class: "dot s" + i, cx: x(t).toFixed(1), cy: y(v).toFixed(1), r: 1.8 }));
    }
    svg.append(svgEl("path", { class: "line s" + i, d, "data-series": s.name, "data-points": n }));
  });
  for (const m of moves || []) {
    if (m.at < since || m.at > until) continue;
    const line = svgEl("line", { class: "move " + m.kind, x1: x(m.at), x2: x(m.at), y1: T, y2: H - B, "data-kind": m.kind });
    const title = svgEl("title"); title.textContent = `${m.kind} ${m.alias} → ${short(m.target)} by ${m.actor} ${m.reason || ""}`;
    line.append(title); svg.append(line);
  }
}

function renderStats(stats) {
  const s = stats.series, span = { since: stats.since, until: stats.until, moves: stats.moves };
  const pts = (key) => s.map((p) => [p.t, p[key]]);
  lineChart($("chart-turns"), [{ name: "turns_per_s", points: pts("turns_per_s") }], { ...span, fmt: (v) => v.toFixed(1) });
  lineChart($("chart-latency"), [{ name: "p50_ms", points: pts("p50_ms") }, { name: "p99_ms", points: pts("p99_ms") }],
    { ...span, fmt: (v) => v.toFixed(1) });
  lineChart($("chart-fallback"), [{ name: "fallback_rate", points: pts("fallback_rate") }], { ...span, fmt: (v) => (v * 100).toFixed(0) + "%", maxFloor: 1 });
  lineChart($("chart-confidence"), [{ name: "confidence", points: pts("confidence") }], { ...span, fmt: (v) => v.toFixed(2), maxFloor: 1 });
  $("turns-total").textContent = stats.window.turns;
  const busy = s.filter((p) => p.turns > 0), last = busy[busy.length - 1];
  $("turns-rate").textContent = last ? last.turns_per_s.toFixed(2) : "0";
  $("p99-now").textContent = last && last.p99_ms != null ? last.p99_ms.toFixed(1) + " ms" : "–";
  $("fallback-now").textContent = last ? (last.fallback_rate * 100).toFixed(0) + " %" : "–";
  const intents = Object.entries(stats.window.intents), top = intents.length ? intents[0][1] : 1;
  $("intents").replaceChildren(...intents.slice(0, 20).map(([name, n]) =>
    el("div", { class: "bar", "data-intent": name }, el("span", { class: "name", title: name }, name),
      el("span", { class: "fill", style: `width:${Math.max(2, (200 * n) / top)}px` }), el("span", {}, n))));
  $("moves").replaceChildren(...stats.moves.slice().reverse().map((m) =>
    el("li", { class: m.kind }, `${when(m.at)} ${m.kind} ${m.alias}: ${short(m.previous)} → ${short(m.target)} by ${m.actor}`
      + (m.reason ? ` (${m.reason})` : ""))));
}

// -- panels -------------------------------------------------------------------------------------

async function loadStats() {
  const minutes = $("window").value, step = Math.max(1, Math.round((minutes * 60) / 120));
  renderStats(await api("GET", `${botPath()}/stats?minutes=${minutes}&step=${step}`));
}

async function loadSnapshots() {
  const data = await api("GET", `${botPath()}/snapshots`);
  state.snapshots = data.snapshots;
  $("production-target").textContent = short(data.aliases.production);
  $("production-target").dataset.id = data.aliases.production || "";
  const rows = data.snapshots.slice().sort((a, b) => b.created_at - a.created_at).map((s) => {
    const button = s.aliases.includes("production") ? "" :
      el("button", { class: "promote", "data-id": s.id, onclick: () => move("promote", { snapshot: s.id, reason: "dashboard" }) }, "Promote");
    return el("tr", { "data-id": s.id }, el("td", { class: "mono", title: s.id }, short(s.id)), el("td", {}, when(s.created_at)),
      el("td", {}, s.aliases.join(", ")), el("td", {}, button));
  });
  $("snapshots").tBodies[0].replaceChildren(...rows);
  $("replay-snapshot").replaceChildren(...data.snapshots.map((s) =>
    el("option", { value: s.id }, short(s.id) + (s.aliases.length ? ` (${s.aliases.join(", ")})` : ""))));
}

async function move(verb, body) {
  if (!window.confirm(verb === "rollback" ? "Roll production back to its previous snapshot?" : `Promote ${short(body.snapshot)} to production?`)) return;
  try {
    const moved = await api("POST", `${botPath()}/${verb}`, body);
    setStatus(`${moved.kind}: production → ${short(moved.target)}`);
  } catch (e) { setStatus(e.message, true); }
  await Promise.all([loadSnapshots(), loadStats()]);
}

async function loadConversations(q) {
  const data = await api("GET", `${botPath()}/conversations` + (q ? `?q=${encodeURIComponent(q)}` : "?limit=100"));
  $("conversations").replaceChildren(...data.conversations.map((c) => el("li", { "data-id": c.conversation_id, onclick: () => openTranscript(c.conversation_id) },
    el("b", {}, c.conversation_id), " ",
    c.matches ? c.matches.map((m) => `#${m.turn} “${m.user_text}”`).join(" · ")
      : `${c.turns} turns · ${when(c.last_at)} · “${c.last_text}” → ${c.last_intent}`)));
}

async function openTranscript(id) {
  const data = await api("GET", `${botPath()}/conversations/${encodeURIComponent(id)}`);
  state.transcript = id;
  $("transcript-id").textContent = id;
  $("replay-controls").hidden = false;
  $("replay-result").replaceChildren();
  $("transcript").tBodies[0].replaceChildren(...data.turns.map((t) => el("tr", { "data-turn": t.turn },
    el("td", {}, t.turn), el("td", {}, t.user_text), el("td", {}, t.intent + (t.fallback ? " (fallback)" : "") + (t.label ? ` [label: ${t.label}]` : "")),
    el("td", {}, t.confidence.toFixed(2)), el("td", {}, t.reply), el("td", { class: "dialogue" }, dialogueText(t.after)),
    el("td", { class: "mono" }, short(t.snapshot)))));
}

// The slots, the active form and handoff right after a turn (the transcript's "after").
function dialogueText(after) {
  if (!after) return "";
  const slots = Object.entries(after.slots).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(", ") : v}`).join(" ");
  const form = after.form ? `form ${after.form}${after.asked ? `, asking ${after.asked}` : ", confirming"}` : "";
  const agents = after.agent.map((a) => `agent ${a.agent || "?"}: ${a.text}`).join(" · ");
  return [slots, form, after.handed_off ? "handed off" : "", agents].filter(Boolean).join(" · ");
}

async function replay() {
  const report = await api("POST", `${botPath()}/whatif`, { snapshot: $("replay-snapshot").value, conversation_id: state.transcript });
  const byRef = new Map(report.changes.map((c) => [c.ref, c]));
  for (const row of $("transcript").tBodies[0].rows) row.classList.toggle("changed", byRef.has(`${state.tenant}/${state.bot}/${state.transcript}#${row.dataset.turn}`));
  $("replay-result").replaceChildren(el("p", { id: "replay-summary" },
    `against ${short(report.against)}: ${report.changed_intent} of ${report.turns} intents and ${report.changed_reply} replies would change`),
    ...report.changes.map((c) => el("div", {}, `${c.ref.split("#")[1]}: “${c.user_text}” ${c.before.intent} → ${c.after.intent} (${c.after.confidence.toFixed(2)}): ${c.after.reply}`)));
}

async function loadReview() {
  const [queue, show] = await Promise.all([api("GET", `${botPath()}/review?limit=30`), intentsOfProduction()]);
  $("review").tBodies[0].replaceChildren(...queue.turns.map((t) => {
    const select = el("select", {}, ...show.map((i) => el("option", { value: i }, i)));
    const label = el("button", { onclick: async () => {
      try { await api("POST", `${botPath()}/labels`, { conversation_id: t.conversation_id, turn: t.turn, intent: select.value }); await loadReview(); }
      catch (e) { setStatus(e.message, true); }
    } }, "Label");
    return el("tr", {}, el("td", {}, t.user_text), el("td", {}, t.intent + (t.fallback ? " (fallback)" : "")),
      el("td", {}, t.confidence.toFixed(2)), el("td", {}, select), el("td", {}, label));
  }));
}

async function intentsOfProduction() {
  try { return (await api("GET", `${botPath()}/snapshots/production`)).manifest.intents.concat(["out_of_scope"]); }
  catch (e) { return ["out_of_scope"]; }
}

async function loadDefinition() {
  try {
    const d = await api("GET", `${botPath()}/definition`);
    $("definition").value = JSON.stringify(d.definition, null, 2);
    $("definition-status").textContent = `saved version ${d.version}`;
  } catch (e) {
    $("definition").value = "";
    $("definition-status").textContent = e.code === "unknown_definition" ? "no definition saved here yet (paste a bot file)" : e.message;
  }
}

async function saveDefinition() {
  const text = $("definition").value;
  let body;
  try { body = { definition: JSON.parse(text) }; } catch (e) { body = { yaml: text }; }
  try {
    const d = await api("PUT", `${botPath()}/definition`, body);
    $("definition-status").textContent = d.changed ? `saved (version ${d.version})` : "unchanged";
    $("definition-status").className = "";
  } catch (e) { $("definition-status").textContent = e.message; $("definition-status").className = "error"; }
}

async function train() {
  try {
    const job = await api("POST", `${botPath()}/train`, { promote: $("train-alias").value || null });
    pollJob(job.id);
  } catch (e) { $("definition-status").textContent = e.message; $("definition-status").className = "error"; }
}

function pollJob(id) {
  clearTimeout(state.jobTimer);
  const tick = async () => {
    const job = await api("GET", `/api/v1/tenants/${encodeURIComponent(state.tenant)}/jobs/${id}`);
    const bar = el("progress", { max: job.epochs || 1, value: job.epoch || 0 });
    $("job").replaceChildren(el("p", {}, `job ${job.id}: ${job.state} `, bar,
      (job.fold ? ` fold ${job.fold}/${job.folds},` : "")
      + ` epoch ${job.epoch}/${job.epochs || "?"}` + (job.loss != null ? ` loss ${job.loss.toFixed(3)}` : "")
      + (job.val_accuracy != null ? ` val. accuracy ${job.val_accuracy.toFixed(3)}` : "")
      + (job.snapshot ? ` → snapshot ${short(job.snapshot)}` : "") + (job.error ? ` error: ${job.error}` : "")));
    if (job.state === "queued" || job.state === "running") state.jobTimer = setTimeout(tick, 1000);
    else loadSnapshots();
  };
  tick();
}

// -- wiring ---------------------------------------------------------------------------------------

async function selectBot(value) {
  [state.tenant, state.bot] = value.split("/");
  state.transcript = null;
  $("transcript").tBodies[0].replaceChildren();
  $("replay-controls").hidden = true;
  await Promise.all([loadStats(), loadSnapshots(), loadConversations(), loadReview(), loadDefinition()]);
}

async function refresh() {
  if (!state.bot) return;
  try {
    await Promise.all([loadStats(), loadConversations($("search-text").value.trim() || null)]);
    setStatus("updated " + new Date().toLocaleTimeString());
  } catch (e) { setStatus(e.message, true); }
}

function signOut() { sessionStorage.removeItem("botyard-token"); state.token = null; $("login").hidden = false; $("main").hidden = true; }

async function start() {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromHash) { sessionStorage.setItem("botyard-token", fromHash); history.replaceState(null, "", location.pathname + location.search); }
  state.token = sessionStorage.getItem("botyard-token");
  if (!state.token) { $("login").hidden = false; return; }
  const data = await api("GET", "/api/v1/bots");
  $("main").hidden = false;
  $("bot-select").replaceChildren(...data.bots.map((b) => el("option", { value: `${b.tenant}/${b.bot}` }, `${b.tenant}/${b.bot}`)));
  const query = new URLSearchParams(location.search), wanted = query.get("bot");
  if (query.get("window")) $("window").value = query.get("window");
  if (wanted && data.bots.some((b) => `${b.tenant}/${b.bot}` === wanted)) $("bot-select").value = wanted;
  if (data.bots.length) await selectBot($("bot-select").value);
  else setStatus("no bots yet");
  setInterval(refresh, 2000);
}

$("login").addEventListener("submit", (e) => { e.preventDefault(); sessionStorage.setItem("botyard-token", $("token").value.trim()); start().catch((x) => setStatus(x.message, true)); });
$("bot-select").addEventListener("change", (e) => selectBot(e.target.value));
$("window").addEventListener("change", () => loadStats());
$("rollback").addEventListener("click", () => move("rollback", { reason: "dashboard" }));
$("search").addEventListener("submit", (e) => { e.preventDefault(); loadConversations($("search-text").value.trim() || null); });
$("replay").addEventListener("click", () => replay().catch((e) => setStatus(e.message, true)));
$("save-definition").addEventListener("click", saveDefinition);
$("train").addEventListener("click", train);
start().catch((e) => setStatus(e.message, true));
