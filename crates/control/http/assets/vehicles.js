// twcmanager web UI, Vehicles page: the cars the vehicle plugins know, their last command, and
// "Log in with Tesla". Self-contained (its own helpers), loaded after app.js.
"use strict";

(() => {
  let token = null;
  const q = (s) => document.querySelector(s);
  const mk = (tag, attrs = {}, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "text") e.textContent = v; else if (k === "class") e.className = v; else e.setAttribute(k, v);
    }
    for (const k of kids) e.append(k);
    return e;
  };
  async function call(method, path, body) {
    const headers = { "X-Requested-With": "twcmanager" };
    if (token) headers["X-CSRF-Token"] = token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const r = await fetch(path, { method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.text();
    let data = null;
    if (text) { try { data = JSON.parse(text); } catch (_) { data = text; } }
    if (!r.ok) { const e = new Error((data && data.error) || ("HTTP " + r.status)); e.status = r.status; throw e; }
    return data;
  }
  const status = (msg, bad) => { const e = q("#car-status"); e.textContent = msg; e.classList.toggle("trouble", !!bad); };
  const pct = (x) => (x === null || x === undefined) ? "—" : Math.round(x) + " %";
  function where(c) {
    if (c.slave) return "home (at a charger)";
    if (c.at_home === true) return "home";
    if (c.at_home === false) return c.latitude != null ? "away (" + c.latitude.toFixed(3) + ", " + c.longitude.toFixed(3) + ")" : "away";
    return "unknown";
  }
  function lastCommand(c) {
    const l = c.last_command;
    if (!l) return mk("span", { class: "muted", text: "none" });
    const when = l.at ? l.at.replace("T", " ").slice(0, 19) + " " : "";
    return mk("span", { class: l.ok ? "" : "trouble", text: when + l.command + " (" + l.reason + "): " + l.result });
  }
  async function send(vin, command, value) {
    status("Sending " + command + " to " + vin + "…");
    try {
      const r = await call("POST", "/api/v2/vehicles/" + encodeURIComponent(vin) + "/command", value === undefined ? { command } : { command, value });
      status(r.result);
    } catch (e) { status(e.message, true); }
    load();
  }
  function actions(c, canCommand) {
    if (!canCommand) return mk("span", { class: "muted", text: "read-only" });
    const b = (label, f) => { const x = mk("button", { type: "button", class: "secondary", text: label }); x.addEventListener("click", f); return x; };
    const limit = mk("input", { type: "number", min: "50", max: "100", step: "1", value: String(Math.round(c.limit_pct || 80)), "aria-label": "Charge limit %" });
    limit.style.width = "4.5em";
    return mk("div", { class: "row" },
      b("Start", () => send(c.vin, "start")), b("Stop", () => send(c.vin, "stop")),
      limit, b("Set limit", () => send(c.vin, "set_limit", Number(limit.value))));
  }
  async function load() {
    if (!q("#cars")) return;
    let v;
    try { v = await call("GET", "/api/v2/vehicles/cars"); } catch (e) {
      q("#car-accounts").replaceChildren();
      q("#cars").replaceChildren(mk("tr", {}, mk("td", { colspan: "8", class: "muted", text: e.message })));
      return;
    }
    if (!v.accounts.length) {
      q("#car-accounts").replaceChildren();
      q("#cars").replaceChildren(mk("tr", {}, mk("td", { colspan: "8", class: "muted", text: "No vehicle plugin is enabled ([vehicle.teslaapi] or [vehicle.teslamate])." })));
      return;
    }
    const commanding = new Set(v.accounts.filter((a) => a.can_command).map((a) => a.plugin));
    q("#car-accounts").replaceChildren(...v.accounts.map((a) => {
      const text = a.plugin + ": " + (a.logged_in ? "logged in" : "not logged in") + (a.last_error ? " — " + a.last_error : "");
      const kids = [mk("span", { class: a.last_error || !a.logged_in ? "trouble" : "", text })];
      if (a.login_supported) kids.push(mk("a", { href: "/vehicles/login?plugin=" + encodeURIComponent(a.plugin), class: "button", text: a.logged_in ? "Log in again" : "Log in with Tesla" }));
      return mk("div", { class: "row" }, ...kids);
    }));
    q("#cars").replaceChildren(...(v.vehicles.length ? v.vehicles.map((c) => mk("tr", {},
      mk("td", { text: (c.name ? c.name + " " : "") + c.vin }),
      mk("td", { text: (c.state || "—") + (c.charging_state ? ", " + c.charging_state : "") + (c.stale ? " (stale)" : "") + (c.last_error ? " — " + c.last_error : "") }),
      mk("td", { text: pct(c.soc_pct) + (c.below_min_soc ? " (below minimum: full current)" : "") }),
      mk("td", { text: pct(c.limit_pct) + (c.policy_limit_pct ? " (policy; own " + pct(c.own_limit_pct) + ")" : "") }),
      mk("td", { text: where(c) }),
      mk("td", { text: c.slave || "—" }),
      mk("td", {}, lastCommand(c)),
      mk("td", {}, actions(c, commanding.has(c.source))))) : [mk("tr", {}, mk("td", { colspan: "8", class: "muted", text: "No car yet (log in, or wait for the first read)." }))]));
  }
  async function start() {
    if (!q("#cars")) return;
    try { token = (await call("GET", "/api/v2/session")).csrf_token; } catch (_) { /* app.js redirects to /login */ }
    if (new URLSearchParams(location.search).get("login") === "ok") status("Logged in with Tesla.");
    const tick = () => { if (location.pathname === "/vehicles") load(); };
    tick();
    setInterval(tick, 10000);
    document.addEventListener("click", (ev) => { const a = ev.target.closest && ev.target.closest("a[data-nav='vehicles']"); if (a) setTimeout(load, 50); });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
