// twcmanager web UI, Plans page: charge plans ("80 % by 07:00 on weekdays") with the slots the
// planner chose, the expected cost and the expected solar share. Self-contained, loaded after
// app.js; texts through the page's i18n (window.t when present).
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
  const call = (method, path, body) => api(method, path, body);
  const status = (msg, bad) => { const e = q("#plan-status"); e.textContent = msg; e.classList.toggle("trouble", !!bad); };
  const hhmm = (unix) => { const d = new Date(unix * 1000); return d.toLocaleString([], { weekday: "short", hour: "2-digit", minute: "2-digit" }); };
  const DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
  function describe(p) {
    const tg = p.plan.target.kind === "soc" ? Math.round(p.plan.target.pct) + " %" : p.plan.target.kwh + " kWh";
    const d = p.plan.departure;
    const when = d.kind === "weekly"
      ? d.weekdays.map((x) => DAYS[x - 1]).join(", ") + " " + String(Math.floor(d.minute / 60)).padStart(2, "0") + ":" + String(d.minute % 60).padStart(2, "0")
      : hhmm(d.at_unix);
    return tg + " · " + when + " · " + (p.plan.vin || "TWC " + p.plan.twc);
  }
  const clock = (unix) => new Date(unix * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  // Adjacent 15-minute slots of one kind at one price read as one range ("Sun 09:00 – 11:00
  // solar 6.6–11.0 A, 3.20 kWh @ 0.320"), so a plan's slots stay a short list on a phone too.
  function ranges(list) {
    const out = [];
    for (const s of list) {
      const r = out[out.length - 1];
      if (r && r.kind === s.kind && r.price_per_kwh === s.price_per_kwh && r.end_unix === s.start_unix) {
        r.end_unix = s.end_unix; r.kwh += s.kwh; r.lo = Math.min(r.lo, s.amps); r.hi = Math.max(r.hi, s.amps);
      } else {
        out.push({ ...s, lo: s.amps, hi: s.amps });
      }
    }
    return out;
  }
  function slots(p) {
    if (!p.slots.length) return mk("span", { class: "muted", text: "—" });
    const ul = mk("ul", { class: "plan-slots" });
    for (const r of ranges(p.slots)) {
      const price = r.price_per_kwh == null ? "" : " @ " + r.price_per_kwh.toFixed(3);
      const amps = r.lo === r.hi ? r.lo.toFixed(1) : r.lo.toFixed(1) + "–" + r.hi.toFixed(1);
      ul.append(mk("li", { class: r.kind, text: hhmm(r.start_unix) + " – " + clock(r.end_unix) + " " + r.kind + " " + amps + " A, " + r.kwh.toFixed(2) + " kWh" + price }));
    }
    return ul;
  }
  const cell = (key, fallback, kid, cls) => {
    const td = mk("td", { "data-label": tr(key, fallback), ...(cls ? { class: cls } : {}) });
    td.append(kid);
    return td;
  };
  async function load() {
    if (!q("#plans")) return;
    let v;
    try { v = await call("GET", "/api/v2/plans"); } catch (e) { status(e.message, true); return; }
    q("#plans").replaceChildren(...(v.length ? v.map((p) => {
      const del = mk("button", { type: "button", class: "secondary", text: tr("plan.delete", "Delete") });
      del.addEventListener("click", async () => {
        try { await call("DELETE", "/api/v2/plans/" + encodeURIComponent(p.id)); status(tr("saved", "Saved.")); } catch (e) { status(e.message, true); }
        load();
      });
      const cost = p.expected_cost == null ? "—" : p.expected_cost.toFixed(2) + " " + (p.currency || "");
      return mk("tr", {},
        cell("plan.plan", "Plan", p.id + ": " + describe(p)),
        cell("plan.state", "State", p.state, "words" + (p.feasible || !p.needed_kwh ? "" : " trouble")),
        cell("plan.cost", "Expected cost", cost),
        cell("plan.solar", "Solar share", Math.round(p.solar_share * 100) + " %"),
        cell("plan.slots", "Slots", slots(p), "list"),
        mk("td", {}, del));
    }) : [mk("tr", {}, mk("td", { colspan: "6", class: "muted", text: tr("plan.none", "No plans yet.") }))]));
  }
  async function save(ev) {
    ev.preventDefault();
    const id = q("#plan-id").value.trim();
    const who = q("#plan-who").value.trim();
    const kind = q("#plan-kind").value;
    const value = Number(q("#plan-value").value);
    const [h, m] = (q("#plan-time").value || "07:00").split(":").map(Number);
    const days = Array.from(document.querySelectorAll("#plan-days input:checked")).map((c) => Number(c.value));
    const body = {
      target: kind === "soc" ? { kind, pct: value } : { kind, kwh: value },
      departure: { kind: "weekly", weekdays: days, minute: h * 60 + m },
    };
    if (/^[0-9a-fA-F]{4}$/.test(who)) body.twc = who; else body.vin = who;
    const bat = q("#plan-battery").value;
    if (bat) body.battery_kwh = Number(bat);
    try { await call("PUT", "/api/v2/plans/" + encodeURIComponent(id), body); status(tr("saved", "Saved.")); } catch (e) { status(e.message, true); }
    load();
  }
  window.loadPlans = load;
  function init() {
    const f = q("#plan-form");
    if (f) f.addEventListener("submit", save);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
