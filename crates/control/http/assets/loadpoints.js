// twcmanager web UI, dashboard: a card per external load point (a Wall Connector Gen3, an OCPP
// charger) next to the Gen2 slaves' cards, from `load_points` of /api/v2/status. Loaded after
// app.js (uses its el, fmtA, fmtW, fmtSecs and t); app.js calls window.renderLoadPoints.
"use strict";

(() => {
  const tr = (k, fallback, vars) => (typeof t === "function" && t(k, vars) !== k ? t(k, vars) : fallback);
  const FIELDS = [["state", "lp.state", "State"], ["allocated", "lp.allocated", "Given"], ["draw", "lp.draw", "Drawing"],
    ["power", "lp.power", "Power"], ["phases", "lp.phases", "Per phase"], ["volts", "lp.volts", "Voltage"],
    ["session", "lp.session", "Session"], ["lifetime", "lp.lifetime", "Lifetime"], ["temps", "lp.temps", "Temperatures"],
    ["alerts", "lp.alerts", "Alerts"], ["firmware", "lp.firmware", "Firmware"], ["wifi", "lp.wifi", "Wi-Fi"], ["max", "lp.max", "Max"]];
  const KIND = { gen3: "Wall Connector Gen3", ocpp: "OCPP" };
  const num = (x, d) => (x === null || x === undefined) ? null : x.toFixed(d);
  const list = (xs, d, unit) => {
    const known = xs.map((x) => num(x, d));
    return known.some((x) => x !== null) ? known.map((x) => x ?? "—").join(" / ") + " " + unit : "—";
  };

  function card(l) {
    const c = el("div", { class: "card loadpoint", "data-name": l.name, id: "lp-" + l.ident });
    const h = el("h3", {}, el("span", { text: l.name }), el("span", { class: "muted kind", text: KIND[l.kind] || l.kind }),
      el("span", { class: "badge", "data-f": "badge" }));
    const dl = el("dl");
    for (const [k, key, fb] of FIELDS) dl.append(el("dt", { text: tr(key, fb), "data-k": k }), el("dd", { "data-f": k }));
    c.append(h, el("p", { class: "trouble", "data-f": "problem", hidden: "" }), dl);
    return c;
  }

  window.renderLoadPoints = (st) => {
    const box = document.querySelector("#slaves");
    const lps = st.load_points || [];
    const names = new Set(lps.map((l) => l.name));
    for (const c of box.querySelectorAll(".loadpoint")) if (!names.has(c.dataset.name)) c.remove();
    for (const l of lps) {
      let c = [...box.querySelectorAll(".loadpoint")].find((x) => x.dataset.name === l.name);
      if (!c) { c = card(l); box.append(c); }
      const f = (k, v) => { c.querySelector(`[data-f="${k}"]`).textContent = v; };
      const show = (k, on) => { c.querySelector(`[data-f="${k}"]`).hidden = !on; c.querySelector(`[data-k="${k}"]`).hidden = !on; };
      f("state", (l.state_name || l.state).replace(/_/g, " "));
      f("allocated", l.controllable ? fmtA(l.allocated_amps) : tr("lp.monitored", "monitored only"));
      f("draw", l.stale ? "—" : fmtA(l.draw_amps));
      f("power", fmtW(l.power_w));
      f("phases", list(l.currents_a, 1, "A"));
      f("volts", list(l.voltages_v, 0, "V"));
      const kwh = l.session_energy_wh == null ? "—" : (l.session_energy_wh / 1000).toFixed(2) + " kWh";
      f("session", kwh + (l.session_secs != null ? " · " + fmtSecs(l.session_secs) : ""));
      f("lifetime", l.lifetime_kwh == null ? "—" : l.lifetime_kwh.toFixed(1) + " kWh");
      show("temps", l.temperatures.length > 0);
      f("temps", l.temperatures.map((x) => x.name + " " + x.celsius.toFixed(1) + " °C").join(", "));
      f("alerts", l.alerts.length ? l.alerts.join(", ") : tr("lp.no_alerts", "none"));
      show("firmware", l.firmware != null);
      f("firmware", l.firmware || "");
      show("wifi", l.wifi_signal_pct != null || l.wifi_rssi_dbm != null);
      f("wifi", [l.wifi_signal_pct != null ? Math.round(l.wifi_signal_pct) + " %" : null,
        l.wifi_rssi_dbm != null ? Math.round(l.wifi_rssi_dbm) + " dBm" : null].filter((x) => x).join(" · "));
      f("max", fmtA(l.max_amps));
      const p = c.querySelector(`[data-f="problem"]`);
      p.hidden = !l.problem; p.textContent = l.problem || "";
      const b = c.querySelector(`[data-f="badge"]`);
      b.textContent = l.stale ? tr("lp.stale", "no data") : (l.charging ? tr("slave.charging", "charging") : l.state);
      b.className = "badge" + (l.stale || l.state === "error" ? " bad" : (l.problem ? " warn" : ""));
      c.classList.toggle("timed-out", l.stale);
    }
  };
})();
