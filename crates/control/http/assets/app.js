// twcmanager web UI: plain JavaScript, live updates over Server-Sent Events. Every number shown
// comes from /api/v2 as the engine computed it; this code formats, it does not recompute.
"use strict";

const $ = (s, el = document) => el.querySelector(s);
const $$ = (s, el = document) => Array.from(el.querySelectorAll(s));
const PAGES = ["dashboard", "schedule", "settings", "vehicles", "plans", "sessions", "events", "debug"];
let csrf = null;
let last = null;          // latest StatusView
let lastAt = 0;           // when it arrived (ms)
let samples = [];         // live-chart samples

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k);
  return e;
}

function fmtW(w) {
  if (w === null || w === undefined) return "—";
  const a = Math.abs(w);
  return a >= 1000 ? (w / 1000).toFixed(2) + " kW" : Math.round(w) + " W";
}
const fmtA = (a) => (a === null || a === undefined) ? "—" : (Math.round(a * 100) / 100).toFixed(2) + " A";
function fmtSecs(s) {
  if (s === null || s === undefined) return "—";
  s = Math.floor(s);
  const h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60;
  return h + ":" + String(m).padStart(2, "0") + ":" + String(s % 60).padStart(2, "0");
}

async function api(method, path, body) {
  const headers = { "X-Requested-With": "twcmanager" };
  if (csrf) headers["X-CSRF-Token"] = csrf;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin" });
  if (r.status === 401) { location.href = "/login"; throw new Error("login required"); }
  let data = null;
  const text = await r.text();
  if (text) { try { data = JSON.parse(text); } catch (_) { data = text; } }
  if (!r.ok) throw new Error((data && data.error) || ("HTTP " + r.status));
  return data;
}

function say(id, msg, bad) {
  const e = $(id);
  e.textContent = msg;
  e.classList.toggle("trouble", !!bad);
}

// ---------------------------------------------------------------- pages
function currentPage() {
  const p = location.pathname.replace(/^\//, "") || "dashboard";
  return PAGES.includes(p) ? p : "dashboard";
}
function showPage() {
  const p = currentPage();
  for (const s of $$("[data-page]")) s.hidden = s.dataset.page !== p;
  for (const a of $$("nav [data-nav]")) {
    a.classList.toggle("active", a.dataset.nav === p);
    if (a.dataset.nav === p) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  document.title = t("nav." + p) + " · twcmanager";
  if (p === "schedule") loadSchedule();
  if (p === "settings") loadSettings();
  if (p === "vehicles") loadVehicles();
  if (p === "plans" && window.loadPlans) window.loadPlans();
  if (p === "sessions" && window.loadSessions) window.loadSessions();
  if (p === "events") loadEvents();
  if (p === "dashboard") Charts.redraw(samples);
}

// ---------------------------------------------------------------- dashboard
function tile(id, value, sub, stale) {
  const tl = $("#" + id);
  $("[data-v]", tl).textContent = value;
  let s = $(".sub", tl);
  if (!s) { s = el("span", { class: "sub" }); tl.append(s); }
  s.textContent = sub || "";
  tl.classList.toggle("stale", !!stale);
}

// One flow line: `w` > 0 flows along the path's drawn direction when `fwdPositive`.
function flow(id, w, fwdPositive) {
  const line = $("#fl-" + id);
  const on = w != null && Math.abs(w) >= 1;
  const rev = on && (w > 0) !== fwdPositive;
  line.classList.toggle("on", on);
  line.setAttribute("d", rev ? `M${line.dataset.b}L${line.dataset.a}` : `M${line.dataset.a}L${line.dataset.b}`);
  if (on) line.setAttribute("marker-end", "url(#arrow)"); else line.removeAttribute("marker-end");
  $("#ft-" + id).textContent = w == null ? "—" : fmtW(Math.abs(w));
}

function renderFlow(site) {
  flow("pv", site.generation_w, true);
  // Grid: import (positive) flows grid → house, drawn left to right.
  flow("grid", site.grid_w, true);
  $("#fk-grid").textContent = site.grid_w == null ? t("flow.grid") : site.grid_w >= 0 ? t("flow.import") : t("flow.export");
  flow("cars", site.charger_w, true);
  // Battery: positive discharges, battery → house, drawn top to bottom (house → battery).
  flow("battery", site.battery_w, false);
  $("#fk-battery").textContent = t("flow.battery") + (site.battery_soc_pct == null ? "" : " " + Math.round(site.battery_soc_pct) + " %");
  $(".node.battery").classList.toggle("absent", site.battery_w == null && site.battery_soc_pct == null);
  $("#ft-home").textContent = fmtW(site.consumption_w);
  $("#flow-desc").textContent = t("flow.desc", { pv: fmtW(site.generation_w), house: fmtW(site.consumption_w), grid: fmtW(site.grid_w), cars: fmtW(site.charger_w) });
}

function render(st) {
  last = st; lastAt = Date.now();
  const site = st.site;
  renderFlow(site);
  tile("tile-generation", fmtW(site.generation_w), site.stale ? t("tile.no_reading") : site.estimated ? t("tile.estimate") : "", site.generation_w == null);
  tile("tile-consumption", fmtW(site.consumption_w), "", site.consumption_w == null);
  const g = site.grid_w;
  tile("tile-grid", g == null ? "—" : fmtW(Math.abs(g)), g == null ? "" : (g >= 0 ? t("tile.importing") : t("tile.exporting")), g == null);
  tile("tile-surplus", fmtW(site.surplus_w), "", site.surplus_w == null);
  tile("tile-chargers", fmtW(site.charger_w), fmtA(site.charger_amps));
  tile("tile-budget", fmtA(st.policy.budget_amps), st.policy.limited_by ? t("tile.limited_by", { what: t("bind." + st.policy.limited_by) }) : "");
  renderOutlook(st.outlook);
  $("#budget").textContent = fmtA(st.policy.budget_amps);
  const b = st.policy.binding || "policy";
  $("#binding").textContent = t("bind." + b);
  $("#binding").className = "badge bind-" + b;
  $("#binding-text").textContent = t("bind." + b + ".why");
  $("#policy-name").textContent = st.policy.name || "—";
  $("#policy-green").hidden = !st.policy.is_green;
  $("#policy-reason").textContent = st.policy.reason || "";
  $("#reading-age").textContent = site.reading_age_secs == null ? t("why.no_reading") : t("why.reading_age", { s: site.reading_age_secs.toFixed(0) });
  const cn = st.settings.charge_now;
  if (document.activeElement === null || !$("#cn-form").contains(document.activeElement)) {
    $("#cn-status").textContent = cn ? t("cn.on", { amps: cn.amps, left: fmtSecs(cn.remaining_secs) }) : t("cn.off");
  }
  $("#cn-cancel").disabled = !cn;
  $("#cn-amps").max = st.wiring_max_all_amps;
  renderSlaves(st);
  if (window.renderLoadPoints) window.renderLoadPoints(st);
  renderTrouble(st.trouble);
  renderDebug(st);
  $("#lim-all").textContent = fmtA(st.wiring_max_all_amps);
  $("#lim-per").textContent = fmtA(st.wiring_max_per_twc_amps);
}

// Price now (and CO₂) and the solar forecast: shown only with a tariff / forecast plugin.
function renderOutlook(o) {
  if (!o) return;
  const price = $("#tile-price");
  price.hidden = o.tariff == null;
  if (o.tariff != null) {
    const v = o.price_per_kwh == null ? "—" : o.price_per_kwh.toFixed(3) + " " + o.currency + "/kWh";
    const sub = o.price_per_kwh == null ? t("tile.no_price") : o.co2_g_per_kwh == null ? "" : t("tile.co2", { g: Math.round(o.co2_g_per_kwh) });
    tile("tile-price", v, sub, o.price_per_kwh == null);
  }
  const fc = $("#tile-forecast");
  fc.hidden = o.forecast == null;
  if (o.forecast != null) {
    const kwh = (x) => x == null ? "—" : x.toFixed(1) + " kWh";
    tile("tile-forecast", kwh(o.forecast_today_kwh), t("tile.tomorrow", { kwh: kwh(o.forecast_tomorrow_kwh) }), o.forecast_today_kwh == null);
  }
}

const SLAVE_FIELDS = [["state", "slave.state"], ["offered", "slave.offered"], ["actual", "slave.drawing"], ["power", "slave.power"],
  ["session", "slave.session"], ["soc", "slave.soc"], ["lifetime", "slave.lifetime"], ["volts", "slave.volts"], ["vin", "slave.vin"],
  ["heartbeat", "slave.heartbeat"], ["max", "slave.max"]];

function slaveCard(s) {
  const c = el("div", { class: "card slave", "data-id": s.id, id: "slave-" + s.id.toLowerCase() });
  const NS = "http://www.w3.org/2000/svg";
  const icon = document.createElementNS(NS, "svg");
  icon.setAttribute("class", "icon"); icon.setAttribute("aria-hidden", "true");
  const use = document.createElementNS(NS, "use");
  use.setAttribute("href", "#i-car");
  icon.append(use);
  const h = el("h3", {}, icon, "TWC " + s.id, el("span", { class: "badge", "data-f": "badge" }));
  const dl = el("dl");
  for (const [k, key] of SLAVE_FIELDS) dl.append(el("dt", { text: t(key), "data-k": k }), el("dd", { "data-f": k }));
  const btns = el("div", { class: "row" },
    el("button", { type: "button", class: "secondary", "data-act": "start", text: t("slave.start"), "aria-label": t("slave.start") + " TWC " + s.id }),
    el("button", { type: "button", class: "secondary", "data-act": "stop", text: t("slave.stop"), "aria-label": t("slave.stop") + " TWC " + s.id }));
  btns.addEventListener("click", async (e) => {
    const act = e.target.dataset.act; if (!act) return;
    try { await api("POST", `/api/v2/slaves/${s.id}/${act}`); say("#startstop-status", t("chargers.sent_one", { act, id: s.id })); }
    catch (err) { say("#startstop-status", err.message, true); }
  });
  c.append(h, dl, btns);
  return c;
}

function renderSlaves(st) {
  const box = $("#slaves");
  box.classList.remove("loading");
  $("#no-slaves").hidden = st.slaves.length > 0 || (st.load_points || []).length > 0;
  const ids = new Set(st.slaves.map((s) => s.id));
  for (const c of $$(".slave", box)) if (!ids.has(c.dataset.id)) c.remove();
  for (const s of st.slaves) {
    let c = $(`.slave[data-id="${s.id}"]`, box);
    if (!c) { c = slaveCard(s); box.append(c); }
    const f = (k, v) => { const d = $(`[data-f="${k}"]`, c); d.textContent = v; };
    const show = (k, on) => { $(`[data-f="${k}"]`, c).hidden = !on; $(`[data-k="${k}"]`, c).hidden = !on; };
    f("state", s.state_name + (s.charging && !/charg/i.test(s.state_name) ? " · " + t("slave.charging") : ""));
    f("offered", fmtA(s.offered_amps) + (Math.abs(s.target_amps - s.offered_amps) > 0.01 ? ` → ${fmtA(s.target_amps)}` : ""));
    f("actual", fmtA(s.actual_amps));
    f("power", fmtW(s.power_w));
    f("session", s.session_kwh.toFixed(2) + " kWh" + (s.session_secs != null ? " · " + fmtSecs(s.session_secs) : ""));
    const soc = s.soc_pct;
    show("soc", soc != null);
    f("soc", soc == null ? "" : Math.round(soc) + " %");
    f("lifetime", s.lifetime_kwh == null ? "—" : s.lifetime_kwh + " kWh");
    const volts = s.volts.filter((v) => v > 0);
    f("volts", volts.length ? volts.join(" / ") + " V" : "—");
    f("vin", s.vin || (s.last_vin ? t("slave.last") + " " + s.last_vin : "—"));
    f("heartbeat", t("slave.ago", { s: s.last_heartbeat_secs.toFixed(1) }));
    f("max", fmtA(s.max_amps) + " (" + t("slave.cap") + " " + fmtA(s.cap_amps) + ")");
    const b = $(`[data-f="badge"]`, c);
    b.textContent = s.timed_out ? t("slave.timed_out") : (s.charging ? t("slave.charging") : t("slave.linked"));
    b.className = "badge" + (s.timed_out ? " bad" : (s.overdraw ? " warn" : ""));
    c.classList.toggle("timed-out", s.timed_out);
  }
}

function renderTrouble(list) {
  const box = $("#trouble");
  const stale = lastAt && Date.now() - lastAt > 15000;
  const items = list.map((x) => x.component + ": " + x.message);
  if (stale) items.unshift(t("trouble.no_update", { s: Math.round((Date.now() - lastAt) / 1000) }));
  box.replaceChildren(...items.map((m) => el("div", { class: "trouble", text: m })));
  box.hidden = items.length === 0;
}

// ---------------------------------------------------------------- history
async function loadHistory() {
  try {
    const h = await api("GET", "/api/v2/history");
    samples = h.samples;
    const stored = h.stored;
    if (stored && stored.power.length) {
      // The database logger's points before what this process sampled itself.
      const first = samples.length ? samples[0].t : Infinity;
      samples = stored.power.filter((p) => p.t < first).map((p) => ({ t: p.t, generation_w: p.generation_w, consumption_w: p.consumption_w, charger_w: p.charger_w, grid_w: p.grid_w, budget_amps: null })).concat(samples);
    }
    events.splice(0, events.length, ...h.events);
    Charts.drawLive(samples);
    Charts.drawHist(h.energy);
  } catch (e) { /* shown by the connection indicator */ }
}

// ---------------------------------------------------------------- live updates
function connect() {
  const conn = $("#conn");
  const es = new EventSource("/api/v2/events");
  es.addEventListener("open", () => { conn.dataset.i18n = "conn.live"; conn.textContent = t("conn.live"); conn.className = "conn on"; });
  es.addEventListener("error", () => { conn.dataset.i18n = "conn.reconnecting"; conn.textContent = t("conn.reconnecting"); conn.className = "conn off"; });
  es.addEventListener("status", (e) => {
    const st = JSON.parse(e.data);
    render(st);
    const now = Date.now() / 1000;
    const lastS = samples[samples.length - 1];
    if (!lastS || now - lastS.t >= 5) {
      samples.push({ t: Math.round(now), generation_w: st.site.generation_w, consumption_w: st.site.consumption_w, charger_w: st.site.charger_w, grid_w: st.site.grid_w, budget_amps: st.policy.budget_amps });
      if (currentPage() === "dashboard") Charts.drawLive(samples);
    }
  });
  es.addEventListener("event", (e) => addEvent(JSON.parse(e.data)));
  // Free the connection when the page goes away (a browser keeps at most six per server).
  window.addEventListener("pagehide", () => es.close());
}

// ---------------------------------------------------------------- wiring
function onSubmit(id, fn) {
  $(id).addEventListener("submit", async (ev) => { ev.preventDefault(); await fn(); });
}
function onClick(target, fn) { (typeof target === "string" ? $(target) : target).addEventListener("click", fn); }
async function patch(status, body, ok) {
  try { await api("PATCH", "/api/v2/settings", body); say(status, ok || t("saved")); return true; }
  catch (e) { say(status, e.message, true); return false; }
}

function wire() {
  buildScheduleRows();
  onSubmit("#cn-form", async () => {
    const amps = Number($("#cn-amps").value), hours = Number($("#cn-hours").value);
    try { await api("POST", "/api/v2/charge-now", { amps, duration_secs: Math.round(hours * 3600) }); say("#cn-status", t("cn.started", { amps, hours })); }
    catch (e) { say("#cn-status", e.message, true); }
  });
  onClick("#cn-cancel", async () => {
    try { await api("DELETE", "/api/v2/charge-now"); say("#cn-status", t("cn.cancelled")); }
    catch (e) { say("#cn-status", e.message, true); }
  });
  for (const [id, act] of [["#start-all", "start"], ["#stop-all", "stop"]]) {
    onClick(id, async () => {
      if (act === "stop" && !confirm(t("chargers.confirm_stop"))) return;
      try { await api("POST", "/api/v2/slaves/" + act); say("#startstop-status", t("chargers.sent_all", { act })); }
      catch (e) { say("#startstop-status", e.message, true); }
    });
  }
  for (const b of $$("[data-period]")) onClick(b, () => Charts.setPeriod(b.dataset.period));
  $("#sched-form").addEventListener("submit", saveSchedule);
  onSubmit("#ns-form", () => patch("#ns-status", { non_scheduled_action: $("#ns-action").value, non_scheduled_amps: Number($("#ns-amps").value) }));
  onSubmit("#off-form", async () => {
    try {
      await api("PUT", "/api/v2/offsets/" + encodeURIComponent($("#off-name").value), { value: Number($("#off-value").value), unit: $("#off-unit").value });
      say("#off-status", t("saved")); loadSettings();
    } catch (e) { say("#off-status", e.message, true); }
  });
  onSubmit("#home-form", () => patch("#home-status", { home: { lat: Number($("#home-lat").value), lon: Number($("#home-lon").value) } }));
  onClick("#home-clear", async () => { if (await patch("#home-status", { clear_home: true }, t("home.unset"))) loadSettings(); });
  onSubmit("#grid-form", () => {
    const body = { flex_amps: Number($("#flex-amps").value || 0) };
    if ($("#grid-value").value !== "") body.max_grid_import = { value: Number($("#grid-value").value), unit: $("#grid-unit").value };
    return patch("#grid-status", body);
  });
  onClick("#grid-clear", async () => { if (await patch("#grid-status", { clear_max_grid_import: true }, t("lim.cleared"))) loadSettings(); });
  onSubmit("#vin-form", () => patch("#vin-status", { vin_allow: vinList("#vin-allow"), vin_deny: vinList("#vin-deny") }));
  onSubmit("#dbg-form", async () => {
    try { await api("POST", "/api/sendDebugCommand", { commandName: $("#dbg-cmd").value }); await new Promise((r) => setTimeout(r, 1500)); $("#dbg-reply").textContent = await (await fetch("/api/getLastTWCResponse")).text(); }
    catch (e) { $("#dbg-reply").textContent = e.message; }
  });
  const toggle = $("#nav-toggle");
  const setMenu = (open) => { toggle.setAttribute("aria-expanded", String(open)); document.body.classList.toggle("menu-open", open); };
  onClick(toggle, () => setMenu(toggle.getAttribute("aria-expanded") !== "true"));
  document.addEventListener("keydown", (e) => { if (e.key === "Escape" && document.body.classList.contains("menu-open")) { setMenu(false); toggle.focus(); } });
  document.addEventListener("click", (e) => {
    const a = e.target.closest("a[data-nav]");
    if (!a || e.ctrlKey || e.metaKey || e.shiftKey) return;
    e.preventDefault();
    history.pushState(null, "", a.getAttribute("href"));
    setMenu(false);
    showPage();
    $("#main").focus({ preventScroll: true });
    if (last) render(last);
  });
  window.addEventListener("popstate", showPage);
  const dark = window.matchMedia("(prefers-color-scheme: dark)");
  if (dark.addEventListener) dark.addEventListener("change", () => Charts.redraw(samples));
  wireLangSelect(() => { buildScheduleRows(); showPage(); if (last) render(last); renderEvents(); });
  setInterval(() => { if (last) renderTrouble(last.trouble); }, 5000);
  setInterval(async () => {
    try { Charts.drawHist((await api("GET", "/api/v2/history?since=" + Math.floor(Date.now() / 1000))).energy); } catch (e) { /* next time */ }
  }, 60000);
}

async function main() {
  try { await loadLang(pickLang()); } catch (e) { /* English text is in the page already */ }
  wire();
  try { const s = await api("GET", "/api/v2/session"); csrf = s.csrf_token; } catch (e) { /* redirected */ }
  showPage();
  try { render(await api("GET", "/api/v2/status")); } catch (e) { /* the stream will bring it */ }
  await loadHistory();
  if (currentPage() === "events") renderEvents();
  connect();
}

document.addEventListener("DOMContentLoaded", main);
