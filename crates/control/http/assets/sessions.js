// twcmanager web UI, Sessions page: stored charge sessions with energy, solar share, cost and
// state of charge; filters, pages, per-month totals and a CSV download. Self-contained, loaded
// after app.js; texts through the page's i18n (window.t when present). All numbers come from
// /api/v2/sessions: unknown values stay unknown here too.
"use strict";

(() => {
  const q = (s) => document.querySelector(s);
  const tr = (k, fallback) => (typeof t === "function" && t(k) !== k ? t(k) : fallback);
  const mk = (tag, attrs = {}, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "text") e.textContent = v; else if (k === "class") e.className = v; else e.setAttribute(k, v);
    }
    for (const k of kids) e.append(k);
    return e;
  };
  let page = 1;
  const status = (msg, bad) => { const e = q("#sess-status"); e.textContent = msg; e.classList.toggle("trouble", !!bad); };
  const unknown = () => tr("sess.unknown", "unknown");
  const when = (unix) => unix == null ? "—" : new Date(unix * 1000).toLocaleString([], { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
  const kwh = (x) => x == null ? unknown() : x.toFixed(2) + " kWh";
  const pct = (x) => x == null ? unknown() : Math.round(x * 100) + " %";
  const money = (x, cur, upper) => x == null ? unknown() : (upper ? "≤ " : "") + x.toFixed(2) + (cur ? " " + cur : "");
  const soc = (a, b) => (a == null && b == null) ? "—" : (a == null ? "?" : Math.round(a) + " %") + " → " + (b == null ? "?" : Math.round(b) + " %");
  function params() {
    const p = new URLSearchParams();
    const from = q("#sess-from").value, to = q("#sess-to").value;
    const car = q("#sess-car").value.trim(), twc = q("#sess-twc").value.trim();
    if (from) p.set("from", from);
    if (to) p.set("to", to);
    if (car) p.set("car", car);
    if (twc) p.set("twc", twc);
    return p;
  }
  const cell = (key, fallback, text, cls) => mk("td", { "data-label": tr(key, fallback), text, ...(cls ? { class: cls } : {}) });
  function months(list) {
    q("#sess-months").replaceChildren(...(list.length ? list.map((m) => {
      const share = m.solar_share == null ? unknown() : pct(m.solar_share) + (m.unknown_share_kwh > 0 ? " (" + tr("sess.partly", "partly unknown") + ")" : "");
      const cost = m.cost == null ? unknown() : money(m.cost, m.currency) + (m.unknown_cost_sessions ? " (+" + m.unknown_cost_sessions + " " + tr("sess.unknown", "unknown") + ")" : "");
      return mk("tr", {},
        cell("sess.month", "Month", m.month),
        cell("sess.count", "Sessions", String(m.sessions)),
        cell("sess.energy", "Energy", kwh(m.energy_kwh)),
        cell("sess.solar", "Solar share", share),
        cell("sess.cost", "Cost", cost));
    }) : [mk("tr", {}, mk("td", { colspan: "5", class: "muted", text: tr("sess.none", "No sessions in this range.") }))]));
  }
  function rows(list) {
    q("#sessions").replaceChildren(...(list.length ? list.map((s) => mk("tr", {},
      cell("sess.start", "Start", when(s.started_unix)),
      cell("sess.end", "End", s.ended_unix == null ? tr("sess.running", "running") : when(s.ended_unix)),
      cell("sess.car", "Car", s.car_name || s.vin || "—", "wrap"),
      cell("sess.twc", "TWC", s.twc),
      cell("sess.energy", "Energy", kwh(s.energy_kwh)),
      cell("sess.solar", "Solar share", pct(s.solar_share)),
      cell("sess.cost", "Cost", money(s.cost, s.currency, s.cost_upper_bound)),
      cell("sess.soc", "State of charge", soc(s.soc_start_pct, s.soc_end_pct))))
      : [mk("tr", {}, mk("td", { colspan: "8", class: "muted", text: tr("sess.none", "No sessions in this range.") }))]));
  }
  async function load() {
    if (!q("#sessions")) return;
    const p = params();
    const csv = new URLSearchParams(p);
    csv.set("format", "csv");
    q("#sess-csv").setAttribute("href", "/api/v2/sessions?" + csv.toString());
    p.set("page", String(page));
    let v;
    try { v = await api("GET", "/api/v2/sessions?" + p.toString()); } catch (e) { status(e.message, true); months([]); rows([]); return; }
    if (v.total > 0 && v.page > v.pages) { page = v.pages; return load(); }
    status("");
    months(v.months);
    rows(v.sessions);
    q("#sess-page").textContent = v.page + " / " + v.pages + " · " + v.total + " " + tr("sess.list", "Sessions");
    q("#sess-prev").disabled = v.page <= 1;
    q("#sess-next").disabled = v.page >= v.pages;
  }
  window.loadSessions = load;
  function init() {
    const f = q("#sess-filter");
    if (!f) return;
    f.addEventListener("submit", (ev) => { ev.preventDefault(); page = 1; load(); });
    q("#sess-prev").addEventListener("click", () => { if (page > 1) { page -= 1; load(); } });
    q("#sess-next").addEventListener("click", () => { page += 1; load(); });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
