// twcmanager web UI: plain JavaScript, no dependencies, live updates over Server-Sent Events.
"use strict";

const $ = (s, el = document) => el.querySelector(s);
const $$ = (s, el = document) => Array.from(el.querySelectorAll(s));
const DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
let csrf = null;
let last = null;          // latest StatusView
let lastAt = 0;           // when it arrived (ms)
let samples = [];         // live-chart samples
const CHART_SECS = 6 * 3600;

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
  return ["schedule", "settings", "vehicles", "debug"].includes(p) ? p : "dashboard";
}
function showPage() {
  const p = currentPage();
  for (const s of $$("[data-page]")) s.hidden = s.dataset.page !== p;
  for (const a of $$("[data-nav]")) a.classList.toggle("active", a.dataset.nav === p);
  if (p === "schedule") loadSchedule();
  if (p === "settings") loadSettings();
  if (p === "vehicles") loadVehicles();
}

// ---------------------------------------------------------------- dashboard
function tile(id, value, sub, stale) {
  const t = $("#" + id);
  $("[data-v]", t).textContent = value;
  let s = $(".sub", t);
  if (!s) { s = el("span", { class: "sub" }); t.append(s); }
  s.textContent = sub || "";
  t.classList.toggle("stale", !!stale);
}

function render(st) {
  last = st; lastAt = Date.now();
  const site = st.site;
  tile("tile-generation", fmtW(site.generation_w), site.stale ? "no fresh reading" : site.estimated ? "estimate, not measured" : "", site.generation_w == null);
  tile("tile-consumption", fmtW(site.consumption_w), "", site.consumption_w == null);
  const g = site.grid_w;
  tile("tile-grid", g == null ? "—" : fmtW(Math.abs(g)), g == null ? "" : (g >= 0 ? "importing" : "exporting"), g == null);
  tile("tile-surplus", fmtW(site.surplus_w), "", site.surplus_w == null);
  tile("tile-chargers", fmtW(site.charger_w), fmtA(site.charger_amps));
  tile("tile-budget", fmtA(st.policy.budget_amps), st.policy.limited_by ? "limited by " + st.policy.limited_by : "");
  $("#policy-name").textContent = st.policy.name || "—";
  $("#policy-green").hidden = !st.policy.is_green;
  $("#policy-reason").textContent = st.policy.reason || "";
  $("#reading-age").textContent = site.reading_age_secs == null ? "No fresh meter reading." : "Reading " + site.reading_age_secs.toFixed(0) + " s old.";
  const cn = st.settings.charge_now;
  if (document.activeElement === null || !$("#cn-form").contains(document.activeElement)) {
    $("#cn-status").textContent = cn ? `Charging now at ${cn.amps} A for ${fmtSecs(cn.remaining_secs)} more.` : "Charge Now is off.";
  }
  $("#cn-cancel").disabled = !cn;
  $("#cn-amps").max = st.wiring_max_all_amps;
  renderSlaves(st);
  renderTrouble(st.trouble);
  renderDebug(st);
  $("#lim-all").textContent = fmtA(st.wiring_max_all_amps);
  $("#lim-per").textContent = fmtA(st.wiring_max_per_twc_amps);
}

function renderSlaves(st) {
  const box = $("#slaves");
  $("#no-slaves").hidden = st.slaves.length > 0;
  const ids = new Set(st.slaves.map((s) => s.id));
  for (const c of $$(".slave", box)) if (!ids.has(c.dataset.id)) c.remove();
  for (const s of st.slaves) {
    let c = $(`.slave[data-id="${s.id}"]`, box);
    if (!c) {
      c = el("div", { class: "card slave", "data-id": s.id, id: "slave-" + s.id.toLowerCase() });
      const h = el("h3", {}, "TWC " + s.id, el("span", { class: "badge", "data-f": "badge" }));
      const dl = el("dl");
      for (const [k, label] of [["state", "State"], ["offered", "Offered"], ["actual", "Drawing"], ["power", "Power"],
        ["session", "Session"], ["lifetime", "Lifetime"], ["volts", "Voltage"], ["vin", "VIN"], ["heartbeat", "Last reply"], ["max", "Max"]]) {
        dl.append(el("dt", { text: label }), el("dd", { "data-f": k }));
      }
      const btns = el("div", { class: "row" },
        el("button", { type: "button", class: "secondary", "data-act": "start", text: "Start" }),
        el("button", { type: "button", class: "secondary", "data-act": "stop", text: "Stop" }));
      btns.addEventListener("click", async (e) => {
        const act = e.target.dataset.act; if (!act) return;
        try { await api("POST", `/api/v2/slaves/${s.id}/${act}`); say("#startstop-status", `Sent ${act} to ${s.id}.`); }
        catch (err) { say("#startstop-status", err.message, true); }
      });
      c.append(h, dl, btns);
      box.append(c);
    }
    const f = (k, v) => { $(`[data-f="${k}"]`, c).textContent = v; };
    f("state", s.state_name + (s.charging && !/charg/i.test(s.state_name) ? " · charging" : ""));
    f("offered", fmtA(s.offered_amps) + (Math.abs(s.target_amps - s.offered_amps) > 0.01 ? ` → ${fmtA(s.target_amps)}` : ""));
    f("actual", fmtA(s.actual_amps));
    f("power", fmtW(s.power_w));
    f("session", s.session_kwh.toFixed(1) + " kWh" + (s.session_secs != null ? " · " + fmtSecs(s.session_secs) : ""));
    f("lifetime", s.lifetime_kwh == null ? "—" : s.lifetime_kwh + " kWh");
    const volts = s.volts.filter((v) => v > 0);
    f("volts", volts.length ? volts.join(" / ") + " V" : "—");
    f("vin", s.vin || (s.last_vin ? "last: " + s.last_vin : "—"));
    f("heartbeat", s.last_heartbeat_secs.toFixed(1) + " s ago");
    f("max", fmtA(s.max_amps) + " (cap " + fmtA(s.cap_amps) + ")");
    const b = $(`[data-f="badge"]`, c);
    b.textContent = s.timed_out ? "timed out" : (s.charging ? "charging" : "linked");
    b.className = "badge" + (s.timed_out ? " bad" : (s.overdraw ? " warn" : ""));
    c.classList.toggle("timed-out", s.timed_out);
  }
}

function renderTrouble(list) {
  const box = $("#trouble");
  const stale = lastAt && Date.now() - lastAt > 15000;
  const items = list.map((t) => t.component + ": " + t.message);
  if (stale) items.unshift("no update from twcmanager for " + Math.round((Date.now() - lastAt) / 1000) + " s");
  box.replaceChildren(...items.map((m) => el("div", { class: "trouble", text: m })));
  box.hidden = items.length === 0;
}

// ---------------------------------------------------------------- charts
function polyline(cls, pts) {
  const p = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  p.setAttribute("class", cls);
  p.setAttribute("points", pts.join(" "));
  return p;
}
function svgEl(tag, attrs) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

function drawChart() {
  const svg = $("#chart");
  const now = Date.now() / 1000;
  samples = samples.filter((s) => s.t >= now - CHART_SECS);
  // Show what there is: from the oldest sample (at least 2 minutes, at most CHART_SECS).
  const span = Math.min(CHART_SECS, Math.max(120, samples.length ? now - samples[0].t : 0));
  const from = now - span;
  let max = 1000;
  for (const s of samples) max = Math.max(max, s.generation_w || 0, s.consumption_w || 0, s.charger_w || 0);
  const x = (t) => ((t - from) / span * 600).toFixed(1);
  const y = (w) => (200 - (w / max) * 190).toFixed(1);
  const series = (key) => {
    const out = [];
    for (const s of samples) if (s[key] != null) out.push(x(s.t) + "," + y(s[key]));
    return out;
  };
  const kids = [];
  for (let i = 1; i < 4; i++) kids.push(svgEl("line", { class: "grid", x1: 0, x2: 600, y1: 200 - i * 47.5, y2: 200 - i * 47.5 }));
  kids.push(polyline("pv", series("generation_w")), polyline("load", series("consumption_w")), polyline("chg", series("charger_w")));
  svg.replaceChildren(...kids);
  $("#chart-from").textContent = span >= 5400 ? "−" + (span / 3600).toFixed(1) + " h" : "−" + Math.round(span / 60) + " min";
  $("#chart-max").textContent = "max " + fmtW(max);
}

function drawDays(days) {
  const svg = $("#days");
  const d = days.slice(-14);
  let max = 1;
  for (const x of d) max = Math.max(max, x.charged_kwh, x.generation_kwh);
  const w = 600 / Math.max(d.length, 1);
  const kids = [];
  d.forEach((x, i) => {
    const hc = x.charged_kwh / max * 150, hp = x.generation_kwh / max * 150;
    kids.push(svgEl("rect", { class: "pv", x: i * w + w * 0.1, width: w * 0.38, y: 160 - hp, height: hp }));
    kids.push(svgEl("rect", { class: "chg", x: i * w + w * 0.52, width: w * 0.38, y: 160 - hc, height: hc }));
  });
  svg.replaceChildren(...kids);
  if (!d.length) { $("#days-labels").replaceChildren(el("span", { text: "Energy per day appears after the first minutes of samples." })); return; }
  $("#days-labels").replaceChildren(...d.map((x) => el("span", { text: x.date.slice(5) + " " + x.charged_kwh.toFixed(1) + " kWh" })));
}

// Days from the database logger when there is one (sessions by start day), else this process's.
function dayList(h) {
  if (h.stored && h.stored.days.length) return h.stored.days.map((d) => ({ date: d.date, charged_kwh: d.energy_kwh, generation_kwh: 0 }));
  return h.days;
}

async function loadHistory() {
  try {
    const h = await api("GET", "/api/v2/history");
    samples = h.samples;
    const stored = h.stored;
    if (stored && stored.power.length) {
      // The database logger's points before what this process sampled itself.
      const first = samples.length ? samples[0].t : Infinity;
      samples = stored.power.filter((p) => p.t < first).map((p) => ({ t: p.t, generation_w: p.generation_w, consumption_w: p.consumption_w, charger_w: p.charger_w || 0 })).concat(samples);
    }
    drawChart();
    drawDays(dayList(h));
  } catch (e) { /* shown by the connection indicator */ }
}

// ---------------------------------------------------------------- live updates
function connect() {
  const conn = $("#conn");
  const es = new EventSource("/api/v2/events");
  es.addEventListener("open", () => { conn.textContent = "live"; conn.className = "conn on"; });
  es.addEventListener("error", () => { conn.textContent = "reconnecting…"; conn.className = "conn off"; });
  es.addEventListener("status", (e) => {
    const st = JSON.parse(e.data);
    render(st);
    const now = Date.now() / 1000;
    const lastS = samples[samples.length - 1];
    if (!lastS || now - lastS.t >= 5) {
      samples.push({ t: now, generation_w: st.site.generation_w, consumption_w: st.site.consumption_w, charger_w: st.site.charger_w });
      drawChart();
    }
  });
  es.addEventListener("event", (e) => {
    const ev = JSON.parse(e.data);
    const list = $("#events");
    const text = (ev.at || "").replace("T", " ").slice(0, 19) + " " + ev.type + " " +
      JSON.stringify(Object.fromEntries(Object.entries(ev).filter(([k]) => k !== "type" && k !== "at")));
    list.prepend(el("li", { text }));
    while (list.children.length > 100) list.lastChild.remove();
  });
}

// ---------------------------------------------------------------- schedule
function buildScheduleRows() {
  const tb = $("#sched-days");
  tb.replaceChildren(...DAYS.map((d, i) => el("tr", {},
    el("td", { text: d }),
    el("td", {}, el("input", { type: "checkbox", id: `sched-on-${i + 1}` })),
    el("td", {}, el("input", { type: "time", id: `sched-from-${i + 1}`, value: "00:00" })),
    el("td", {}, el("input", { type: "time", id: `sched-to-${i + 1}`, value: "06:00" })),
    el("td", {}, el("input", { type: "number", id: `sched-damps-${i + 1}`, min: "0", step: "1", placeholder: "—" })))));
}
const toMin = (v) => { const [h, m] = v.split(":").map(Number); return h * 60 + m; };
const toHHMM = (m) => String(Math.floor(m / 60)).padStart(2, "0") + ":" + String(m % 60).padStart(2, "0");
async function loadSchedule() {
  try {
    const s = await api("GET", "/api/v2/schedules");
    $("#sched-enabled").checked = s.enabled;
    $("#sched-amps").value = s.amps;
    for (let d = 1; d <= 7; d++) {
      $(`#sched-on-${d}`).checked = false;
      $(`#sched-damps-${d}`).value = s.day_amps[d] !== undefined ? s.day_amps[d] : "";
    }
    for (const w of s.windows) {
      $(`#sched-on-${w.weekday}`).checked = true;
      $(`#sched-from-${w.weekday}`).value = toHHMM(w.start_minute);
      $(`#sched-to-${w.weekday}`).value = toHHMM(w.end_minute);
    }
    say("#sched-status", "");
  } catch (e) { say("#sched-status", e.message, true); }
}
async function saveSchedule(ev) {
  ev.preventDefault();
  const windows = [];
  const day_amps = {};
  for (let d = 1; d <= 7; d++) {
    const da = $(`#sched-damps-${d}`).value;
    if (da !== "") day_amps[d] = Number(da);
    if ($(`#sched-on-${d}`).checked) windows.push({ weekday: d, start_minute: toMin($(`#sched-from-${d}`).value), end_minute: toMin($(`#sched-to-${d}`).value) });
  }
  try {
    await api("PUT", "/api/v2/schedules", { enabled: $("#sched-enabled").checked, amps: Number($("#sched-amps").value), windows, day_amps });
    say("#sched-status", "Schedule saved.");
  } catch (e) { say("#sched-status", e.message, true); }
}

// ---------------------------------------------------------------- settings
async function loadSettings() {
  try {
    const s = await api("GET", "/api/v2/settings");
    $("#ns-action").value = s.non_scheduled_action;
    $("#ns-amps").value = s.non_scheduled_amps;
    $("#grid-value").value = s.max_grid_import ? s.max_grid_import.value : "";
    if (s.max_grid_import) $("#grid-unit").value = s.max_grid_import.unit;
    $("#flex-amps").value = s.flex_amps;
    $("#home-lat").value = s.home ? s.home.lat : "";
    $("#home-lon").value = s.home ? s.home.lon : "";
    const offs = await api("GET", "/api/v2/offsets");
    $("#offsets").replaceChildren(...Object.entries(offs).map(([name, o]) => {
      const del = el("button", { type: "button", class: "secondary", text: "Delete" });
      del.addEventListener("click", async () => {
        try { await api("DELETE", "/api/v2/offsets/" + encodeURIComponent(name)); loadSettings(); }
        catch (e) { say("#off-status", e.message, true); }
      });
      return el("tr", {}, el("td", { text: name }), el("td", { text: o.value + " " + o.unit }), el("td", {}, del));
    }));
  } catch (e) { say("#ns-status", e.message, true); }
}

// ---------------------------------------------------------------- vehicles
const vinList = (id) => $(id).value.split(/[\s,]+/).map((v) => v.trim()).filter((v) => v);

async function loadVehicles() {
  try {
    const st = await api("GET", "/api/v2/settings");
    $("#vin-allow").value = st.vin_allow.join("\n");
    $("#vin-deny").value = st.vin_deny.join("\n");
    const v = await api("GET", "/api/v2/vehicles");
    $("#vehicles").replaceChildren(...(v.length ? v.map((x) => el("tr", {},
      el("td", { text: x.vin }), el("td", { text: String(x.sessions) }), el("td", { text: x.energy_kwh.toFixed(1) }),
      el("td", { text: x.last_seen ? x.last_seen.replace("T", " ").slice(0, 16) : "—" }),
      el("td", { text: x.plugged_into || x.last_slave || "—" }))) : [el("tr", {}, el("td", { colspan: 5, class: "muted", text: "No car seen yet." }))]));
  } catch (e) { /* ignore */ }
}

// ---------------------------------------------------------------- debug
function renderDebug(st) {
  if (currentPage() !== "debug") return;
  const b = st.bus;
  const rows = [["Master", b.master_id], ["Transmitting", b.transmitting ? "yes" : "no"], ["Link", b.link_up ? "up" : "down " + (b.last_error || "")],
    ["Other master", b.foreign_master || "none"], ["Frames sent", b.frames_tx], ["Frames received", b.frames_rx],
    ["Bad checksum", b.bad_checksum], ["Framing errors", b.framing_errors], ["Unknown messages", b.unknown_messages], ["Malformed", b.malformed_messages]];
  $("#bus").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: String(v) })]));
  $("#sources").replaceChildren(...st.sources.map((s) => el("tr", {},
    el("td", { text: s.name }), el("td", { text: s.age_secs == null ? "—" : s.age_secs.toFixed(0) + " s" }),
    el("td", { text: s.stale ? "stale" + (s.last_error ? ": " + s.last_error : "") : "fresh" }), el("td", { text: String(s.errors) }))));
}

// ---------------------------------------------------------------- wiring
function wire() {
  buildScheduleRows();
  $("#cn-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const amps = Number($("#cn-amps").value), hours = Number($("#cn-hours").value);
    try {
      await api("POST", "/api/v2/charge-now", { amps, duration_secs: Math.round(hours * 3600) });
      say("#cn-status", `Charge Now at ${amps} A for ${hours} h.`);
    } catch (e) { say("#cn-status", e.message, true); }
  });
  $("#cn-cancel").addEventListener("click", async () => {
    try { await api("DELETE", "/api/v2/charge-now"); say("#cn-status", "Charge Now cancelled."); }
    catch (e) { say("#cn-status", e.message, true); }
  });
  for (const [id, act] of [["#start-all", "start"], ["#stop-all", "stop"]]) {
    $(id).addEventListener("click", async () => {
      if (act === "stop" && !confirm("Stop every charger?")) return;
      try { await api("POST", "/api/v2/slaves/" + act); say("#startstop-status", `Sent ${act} to every charger.`); }
      catch (e) { say("#startstop-status", e.message, true); }
    });
  }
  $("#sched-form").addEventListener("submit", saveSchedule);
  $("#ns-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await api("PATCH", "/api/v2/settings", { non_scheduled_action: $("#ns-action").value, non_scheduled_amps: Number($("#ns-amps").value) });
      say("#ns-status", "Saved.");
    } catch (e) { say("#ns-status", e.message, true); }
  });
  $("#off-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await api("PUT", "/api/v2/offsets/" + encodeURIComponent($("#off-name").value), { value: Number($("#off-value").value), unit: $("#off-unit").value });
      say("#off-status", "Saved."); loadSettings();
    } catch (e) { say("#off-status", e.message, true); }
  });
  $("#home-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await api("PATCH", "/api/v2/settings", { home: { lat: Number($("#home-lat").value), lon: Number($("#home-lon").value) } });
      say("#home-status", "Saved.");
    } catch (e) { say("#home-status", e.message, true); }
  });
  $("#home-clear").addEventListener("click", async () => {
    try { await api("PATCH", "/api/v2/settings", { clear_home: true }); say("#home-status", "Unset."); loadSettings(); }
    catch (e) { say("#home-status", e.message, true); }
  });
  $("#grid-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { flex_amps: Number($("#flex-amps").value || 0) };
    if ($("#grid-value").value !== "") body.max_grid_import = { value: Number($("#grid-value").value), unit: $("#grid-unit").value };
    try { await api("PATCH", "/api/v2/settings", body); say("#grid-status", "Saved."); }
    catch (e) { say("#grid-status", e.message, true); }
  });
  $("#grid-clear").addEventListener("click", async () => {
    try { await api("PATCH", "/api/v2/settings", { clear_max_grid_import: true }); say("#grid-status", "The configuration's limit applies."); loadSettings(); }
    catch (e) { say("#grid-status", e.message, true); }
  });
  $("#vin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try { await api("PATCH", "/api/v2/settings", { vin_allow: vinList("#vin-allow"), vin_deny: vinList("#vin-deny") }); say("#vin-status", "Saved."); }
    catch (e) { say("#vin-status", e.message, true); }
  });
  $("#dbg-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try { await api("POST", "/api/sendDebugCommand", { commandName: $("#dbg-cmd").value }); await new Promise(r => setTimeout(r, 1500)); $("#dbg-reply").textContent = await (await fetch("/api/getLastTWCResponse")).text(); }
    catch (e) { $("#dbg-reply").textContent = e.message; }
  });
  document.addEventListener("click", (e) => {
    const a = e.target.closest("a[data-nav]");
    if (!a) return;
    e.preventDefault();
    history.pushState(null, "", a.getAttribute("href"));
    showPage();
    if (last) render(last);
  });
  window.addEventListener("popstate", showPage);
  setInterval(() => { if (last) renderTrouble(last.trouble); }, 5000);
  setInterval(drawChart, 30000);
  setInterval(async () => {
    try { drawDays(dayList(await api("GET", "/api/v2/history?since=" + Math.floor(Date.now() / 1000)))); } catch (e) { /* next time */ }
  }, 60000);
}

async function main() {
  wire();
  try { const s = await api("GET", "/api/v2/session"); csrf = s.csrf_token; } catch (e) { /* redirected */ }
  showPage();
  try { render(await api("GET", "/api/v2/status")); } catch (e) { /* the stream will bring it */ }
  await loadHistory();
  connect();
}

document.addEventListener("DOMContentLoaded", main);
