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
  function slots(p) {
    if (!p.slots.length) return mk("span", { class: "muted", text: "—" });
    const ul = mk("ul", { class: "plan-slots" });
    for (const s of p.slots) {
      const price = s.price_per_kwh == null ? "" : " @ " + s.price_per_kwh.toFixed(3);
      ul.append(mk("li", { class: s.kind, text: hhmm(s.start_unix) + " " + s.kind + " " + s.amps.toFixed(1) + " A, " + s.kwh.toFixed(2) + " kWh" + price }));
    }
    return ul;
  }
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
        mk("td", { text: p.id + ": " + describe(p) }),
        mk("td", { class: p.feasible || !p.needed_kwh ? "" : "trouble", text: p.state }),
        mk("td", { text: cost }),
        mk("td", { text: Math.round(p.solar_share * 100) + " %" }),
        mk("td", {}, slots(p)),
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
