// The pages other than the dashboard: schedule, settings, vehicles, events, debug.
"use strict";

// ---------------------------------------------------------------- schedule
function buildScheduleRows() {
  const tb = $("#sched-days");
  const days = t("sched.days").split(",");
  tb.replaceChildren(...days.map((d, i) => el("tr", {},
    el("td", { text: d, "data-label": t("sched.day") }),
    el("td", { "data-label": t("sched.charge") }, el("input", { type: "checkbox", id: `sched-on-${i + 1}`, "aria-label": t("sched.charge") + " " + d })),
    el("td", { "data-label": t("sched.from") }, el("input", { type: "time", id: `sched-from-${i + 1}`, value: "00:00", "aria-label": t("sched.from") + " " + d })),
    el("td", { "data-label": t("sched.to") }, el("input", { type: "time", id: `sched-to-${i + 1}`, value: "06:00", "aria-label": t("sched.to") + " " + d })),
    el("td", { "data-label": t("sched.day_amps") }, el("input", { type: "number", id: `sched-damps-${i + 1}`, min: "0", step: "1", placeholder: "—", "aria-label": t("sched.day_amps") + " " + d })))));
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
    say("#sched-status", t("sched.saved"));
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
    const rows = Object.entries(offs).map(([name, o]) => {
      const del = el("button", { type: "button", class: "secondary", text: t("off.delete"), "aria-label": t("off.delete") + " " + name });
      del.addEventListener("click", async () => {
        try { await api("DELETE", "/api/v2/offsets/" + encodeURIComponent(name)); loadSettings(); }
        catch (e) { say("#off-status", e.message, true); }
      });
      return el("tr", {}, el("td", { text: name, "data-label": t("off.name") }), el("td", { text: o.value + " " + o.unit, "data-label": t("off.value") }), el("td", {}, del));
    });
    $("#offsets").replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 3, class: "muted", text: t("off.none") }))]));
    const p = await api("GET", "/api/v2/policy");
    $("#pol-rules").replaceChildren(...p.rules.map((r) => el("li", { class: r.active ? "active" : "" }, r.name,
      r.active ? el("span", { class: "badge", text: t("pol.active") }) : "")));
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
    const heads = $$("#page-vehicles thead th").map((th) => th.textContent);
    const td = (i, text) => el("td", { text, "data-label": heads[i] || "" });
    $("#vehicles").replaceChildren(...(v.length ? v.map((x) => el("tr", {},
      td(0, x.vin), td(1, String(x.sessions)), td(2, x.energy_kwh.toFixed(2)),
      td(3, x.last_seen ? x.last_seen.replace("T", " ").slice(0, 16) : "—"),
      td(4, x.plugged_into || x.last_slave || "—"))) : [el("tr", {}, el("td", { colspan: 5, class: "muted", text: "No car seen yet." }))]));
  } catch (e) { /* the connection indicator shows it */ }
}

// ---------------------------------------------------------------- events
const events = [];

// One line of detail per event type (centiamps as amps); unknown types list their fields.
function eventText(ev) {
  const ca = (v) => fmtA(v / 100);
  const sess = ev.session || {};
  const who = (id) => "TWC " + id;
  switch (ev.type) {
    case "slave_linked": return who(ev.slave) + " · max " + ca(ev.max_amps) + " · " + ev.version;
    case "slave_timed_out": return who(ev.slave);
    case "offer_changed": return who(ev.slave) + " · " + ca(ev.from) + " → " + ca(ev.to);
    case "vin_read": return who(ev.slave) + " · " + ev.vin;
    case "session_started": return who(sess.slave) + (sess.vin ? " · " + sess.vin : "");
    case "session_ended": return who(sess.slave) + " · " + Number(sess.energy_kwh || 0).toFixed(2) + " kWh" + (sess.vin ? " · " + sess.vin : "");
    case "policy_changed": return ev.from + " → " + ev.to + (ev.reason ? " · " + ev.reason : "");
    case "budget_changed": return ca(ev.budget);
    case "fault": return ev.component + ": " + ev.message;
    default: return Object.entries(ev).filter(([k]) => k !== "type" && k !== "at").map(([k, v]) => k + ": " + (typeof v === "object" ? JSON.stringify(v) : v)).join(", ");
  }
}

function renderEvents() {
  const list = $("#events");
  if (!list) return;
  $("#events-empty").hidden = events.length > 0;
  list.replaceChildren(...events.slice().reverse().map((ev) => {
    const when = ev.at ? new Date(ev.at) : null;
    return el("li", { class: "ev-" + ev.type },
      el("time", { datetime: ev.at || "", text: when ? when.toLocaleString(I18N.lang) : "" }),
      el("strong", { text: t("ev." + ev.type) }),
      el("span", { class: "muted", text: eventText(ev) }));
  }));
}

function addEvent(ev) {
  events.push(ev);
  while (events.length > 200) events.shift();
  if (currentPage() === "events") renderEvents();
}

async function loadEvents() {
  try {
    const h = await api("GET", "/api/v2/history?since=" + Math.floor(Date.now() / 1000));
    events.splice(0, events.length, ...h.events);
  } catch (e) { /* the connection indicator shows it */ }
  renderEvents();
}

// ---------------------------------------------------------------- debug
function renderDebug(st) {
  if (currentPage() !== "debug") return;
  const b = st.bus;
  const rows = [["dbg.master", b.master_id], ["dbg.transmitting", b.transmitting ? t("yes") : t("no")], ["dbg.link", b.link_up ? t("dbg.up") : t("dbg.down") + " " + (b.last_error || "")],
    ["dbg.other_master", b.foreign_master || t("dbg.none")], ["dbg.frames_tx", b.frames_tx], ["dbg.frames_rx", b.frames_rx],
    ["dbg.bad_checksum", b.bad_checksum], ["dbg.framing", b.framing_errors], ["dbg.unknown", b.unknown_messages], ["dbg.malformed", b.malformed_messages]];
  $("#bus").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", { text: t(k) }), el("dd", { text: String(v) })]));
  $("#sources").replaceChildren(...st.sources.map((s) => el("tr", {},
    el("td", { text: s.name, "data-label": t("dbg.source") }), el("td", { text: s.age_secs == null ? "—" : s.age_secs.toFixed(0) + " s", "data-label": t("dbg.age") }),
    el("td", { text: s.stale ? t("dbg.stale") + (s.last_error ? ": " + s.last_error : "") : t("dbg.fresh"), "data-label": t("dbg.state") }), el("td", { text: String(s.errors), "data-label": t("dbg.errors") }))));
}
