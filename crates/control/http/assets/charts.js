// Charts with the vendored uPlot (assets/vendor/uplot, MIT): live power and energy per period.
// Every value plotted comes from the API as it is; this file only formats and draws.
"use strict";

const cssVar = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

function fmtAxisW(v) {
  if (v == null) return "";
  return Math.abs(v) >= 1000 ? (v / 1000).toFixed(Math.abs(v) >= 10000 ? 0 : 1) + " kW" : Math.round(v) + " W";
}

// A tooltip that follows the cursor: the time (or period) and every series' value.
function tooltipPlugin(fmtX, fmtY) {
  let tip;
  return {
    hooks: {
      init: (u) => {
        tip = document.createElement("div");
        tip.className = "u-tip";
        tip.hidden = true;
        u.over.append(tip);
        u.over.addEventListener("mouseleave", () => { tip.hidden = true; });
      },
      setCursor: (u) => {
        const i = u.cursor.idx;
        if (i == null || u.cursor.left < 0) { tip.hidden = true; return; }
        const lines = [fmtX(u.data[0][i])];
        for (let s = 1; s < u.series.length; s++) {
          const v = u.data[s][i];
          if (u.series[s].show && v != null) lines.push(u.series[s].label + ": " + fmtY(s, v));
        }
        tip.replaceChildren(...lines.map((l, k) => { const d = document.createElement("div"); d.textContent = l; if (!k) d.className = "u-tip-h"; return d; }));
        tip.hidden = false;
        const w = u.over.clientWidth;
        const left = u.cursor.left + 12 + tip.offsetWidth > w ? u.cursor.left - 12 - tip.offsetWidth : u.cursor.left + 12;
        tip.style.left = Math.max(0, left) + "px";
        tip.style.top = Math.max(0, u.cursor.top - 10) + "px";
      },
    },
  };
}

function axisStyle() {
  const fg = cssVar("--muted"), grid = cssVar("--border");
  return { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
}

function widthOf(el) { return Math.max(200, el.clientWidth); }

// Keep a chart as wide as its box.
function fitWidth(el, get) {
  if (!window.ResizeObserver) return;
  new ResizeObserver(() => { const u = get(); if (u) u.setSize({ width: widthOf(el), height: u.height }); }).observe(el);
}

const Charts = {
  live: null,
  hist: null,
  histPeriod: "day",
  histData: null,

  // samples: [{t, generation_w, consumption_w, charger_w, grid_w, budget_amps}], oldest first.
  drawLive(samples) {
    const box = document.getElementById("live-chart");
    const empty = samples.length < 2;
    document.getElementById("live-empty").hidden = !empty;
    if (empty && this.live) { this.live.destroy(); this.live = null; }
    if (empty || typeof uPlot === "undefined") return;
    const col = (k) => samples.map((s) => (s[k] == null ? null : s[k]));
    const data = [samples.map((s) => s.t), col("generation_w"), col("consumption_w"), col("charger_w"), col("grid_w"), col("budget_amps")];
    if (this.live && this.live._lang === I18N.lang) { this.live.setData(data); return; }
    if (this.live) this.live.destroy();
    const ax = axisStyle();
    const line = (label, color, scale, extra) => Object.assign({ label, stroke: color, width: 2, scale, points: { show: false }, spanGaps: false }, extra || {});
    const timeFmt = new Intl.DateTimeFormat(I18N.lang, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    const opts = {
      width: widthOf(box), height: 260,
      cursor: { drag: { x: true, y: false } },
      legend: { show: true, live: false },
      scales: { x: { time: true }, W: { auto: true }, A: { auto: true, range: (u, min, max) => [0, Math.max(1, max)] } },
      series: [
        { label: t("chart.time") },
        line(t("series.pv"), cssVar("--pv"), "W", { fill: cssVar("--pv-fill") }),
        line(t("series.house"), cssVar("--load"), "W"),
        line(t("series.chargers"), cssVar("--chg"), "W"),
        line(t("series.grid"), cssVar("--gridc"), "W"),
        line(t("series.budget"), cssVar("--budget"), "A", { dash: [6, 4] }),
      ],
      axes: [
        // Whole seconds and up: no millisecond ticks when only a minute of samples exists.
        Object.assign({}, ax, { incrs: [1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400] }),
        Object.assign({}, ax, { scale: "W", label: "W", size: 64, values: (u, vals) => vals.map(fmtAxisW) }),
        Object.assign({}, ax, { scale: "A", side: 1, label: "A", size: 44, grid: { show: false }, values: (u, vals) => vals.map((v) => v + " A") }),
      ],
      plugins: [tooltipPlugin((x) => timeFmt.format(new Date(x * 1000)), (s, v) => (s === 5 ? v.toFixed(2) + " A" : fmtAxisW(v)))],
    };
    this.live = new uPlot(opts, data, box);
    this.live._lang = I18N.lang;
    if (!box._fit) { box._fit = true; fitWidth(box, () => this.live); }
  },

  periodLabel(label) {
    if (this.histPeriod === "month") {
      const [y, m] = label.split("-").map(Number);
      return new Intl.DateTimeFormat(I18N.lang, { month: "short", year: "2-digit" }).format(new Date(y, m - 1, 1));
    }
    if (this.histPeriod === "week") return label.replace(/^\d{4}-/, "");
    return label.slice(5);
  },

  // energy: the API's `energy` ({day, week, month, empty}).
  drawHist(energy) {
    if (energy) this.histData = energy;
    const e = this.histData;
    if (!e) return;
    const box = document.getElementById("hist-chart");
    const rows = e[this.histPeriod] || [];
    const empty = e.empty || rows.length === 0;
    document.getElementById("hist-empty").hidden = !empty;
    if (this.hist) { this.hist.destroy(); this.hist = null; }
    if (empty || typeof uPlot === "undefined") return;
    const labels = rows.map((r) => this.periodLabel(r.label));
    const data = [rows.map((_, i) => i), rows.map((r) => r.charged_kwh), rows.map((r) => r.generation_kwh)];
    const ax = axisStyle();
    const bars = (align) => uPlot.paths.bars({ size: [0.4, 48], align });
    const opts = {
      width: widthOf(box), height: 220,
      cursor: { drag: { x: true, y: false }, points: { show: false } },
      legend: { show: true, live: false },
      scales: { x: { time: false, range: (u, min, max) => [min - 0.6, max + 0.6] }, y: { range: (u, min, max) => [0, Math.max(0.1, max * 1.1)] } },
      series: [
        { label: t("chart.period") },
        { label: t("series.charged"), stroke: cssVar("--chg"), fill: cssVar("--chg"), paths: bars(-1), points: { show: false } },
        { label: t("series.pv_kwh"), stroke: cssVar("--pv"), fill: cssVar("--pv"), paths: bars(1), points: { show: false } },
      ],
      axes: [
        Object.assign({}, ax, { values: (u, vals) => vals.map((v) => (Number.isInteger(v) && labels[v] !== undefined ? labels[v] : "")) }),
        Object.assign({}, ax, { label: "kWh", size: 56, values: (u, vals) => vals.map((v) => v.toFixed(v < 10 ? 1 : 0)) }),
      ],
      plugins: [tooltipPlugin((x) => rows[x] ? rows[x].label : "", (s, v) => v.toFixed(2) + " kWh")],
    };
    this.hist = new uPlot(opts, data, box);
    if (!box._fit) { box._fit = true; fitWidth(box, () => this.hist); }
  },

  setPeriod(p) {
    this.histPeriod = p;
    for (const b of document.querySelectorAll("[data-period]")) b.setAttribute("aria-pressed", String(b.dataset.period === p));
    this.drawHist();
  },

  // After a language or colour-scheme change: draw again with new labels and colours.
  redraw(samples) {
    if (this.live) { this.live.destroy(); this.live = null; }
    this.drawLive(samples);
    this.drawHist();
  },
};
