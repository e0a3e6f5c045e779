//! An SVG chart of the replay: PV, house load, surplus and charger power over time.

use crate::metrics::Row;
use std::fmt::Write as _;

/// Bucket means: (PV, house load, surplus, chargers), W.
type Point = (f64, f64, f64, f64);
/// A series: legend, colour, value, "line" or "fill".
type Series = (&'static str, &'static str, fn(&Point) -> f64, &'static str);

const W: f64 = 1400.0;
const H: f64 = 520.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

/// Render the rows (downsampled to at most ~2800 points per series, keeping each bucket's mean).
pub fn svg(rows: &[Row], title: &str) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    s.push_str(r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = write!(
        s,
        r#"<text x="{LEFT}" y="22" font-size="15">{}</text>"#,
        escape(title)
    );
    if rows.is_empty() {
        s.push_str("</svg>\n");
        return s;
    }
    let bucket = rows.len().div_ceil(2800).max(1);
    let pts: Vec<Point> = rows
        .chunks(bucket)
        .map(|c| {
            let n = c.len() as f64;
            (
                c.iter().map(|r| r.pv_w).sum::<f64>() / n,
                c.iter().map(|r| r.load_w).sum::<f64>() / n,
                c.iter().map(|r| r.surplus_w().max(0.0)).sum::<f64>() / n,
                c.iter().map(|r| r.charger_w).sum::<f64>() / n,
            )
        })
        .collect();
    let ymax = pts
        .iter()
        .map(|p| p.0.max(p.1).max(p.3))
        .fold(1000.0, f64::max);
    let ymax = (ymax / 1000.0).ceil() * 1000.0;
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let x = |i: usize| LEFT + pw * i as f64 / (pts.len().max(2) - 1) as f64;
    let y = |v: f64| TOP + ph * (1.0 - v / ymax);
    // Grid lines and labels.
    let mut kw = 0.0;
    while kw <= ymax + 1.0 {
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{} kW</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            y(kw) + 4.0,
            kw / 1000.0,
            yy = y(kw)
        );
        kw += 1000.0;
    }
    let t0 = rows[0].at;
    let total = (rows[rows.len() - 1].at - t0).num_seconds().max(1) as f64;
    let step_h = if total > 3.0 * 86_400.0 { 24 } else { 3 };
    let mut hh = 0;
    while (hh as f64) * 3600.0 <= total {
        let xx = LEFT + pw * (hh as f64 * 3600.0) / total;
        let label = (t0 + chrono::Duration::hours(hh)).format("%d %H:%M");
        let _ = write!(
            s,
            r##"<line x1="{xx:.1}" x2="{xx:.1}" y1="{TOP}" y2="{:.1}" stroke="#eee"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle">{label}</text>"##,
            TOP + ph,
            TOP + ph + 18.0
        );
        hh += step_h;
    }
    let series: [Series; 4] = [
        ("surplus (PV − house)", "#a6dba0", |p| p.2, "fill"),
        ("PV", "#f1a340", |p| p.0, "line"),
        ("house load", "#888888", |p| p.1, "line"),
        ("chargers", "#2166ac", |p| p.3, "line"),
    ];
    for (i, (name, color, f, kind)) in series.iter().enumerate() {
        let mut d = String::new();
        for (k, p) in pts.iter().enumerate() {
            let _ = write!(
                d,
                "{}{:.1},{:.1} ",
                if k == 0 { "M" } else { "L" },
                x(k),
                y(f(p))
            );
        }
        if *kind == "fill" {
            let _ = write!(
                s,
                r#"<path d="{d}L{:.1},{:.1} L{:.1},{:.1} Z" fill="{color}" fill-opacity="0.6" stroke="none"/>"#,
                x(pts.len() - 1),
                y(0.0),
                x(0),
                y(0.0)
            );
        } else {
            let _ = write!(
                s,
                r#"<path d="{d}" fill="none" stroke="{color}" stroke-width="{}"/>"#,
                if *name == "chargers" { 1.8 } else { 1.0 }
            );
        }
        let lx = LEFT + 10.0 + 190.0 * i as f64;
        let _ = write!(
            s,
            r#"<rect x="{lx}" y="{}" width="14" height="10" fill="{color}"/><text x="{}" y="{}">{}</text>"#,
            H - 16.0,
            lx + 18.0,
            H - 6.0,
            escape(name)
        );
    }
    s.push_str("</svg>\n");
    s
}

fn escape(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
