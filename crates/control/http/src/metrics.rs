//! `/metrics` in Prometheus text format (version 0.0.4).

use crate::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use std::fmt::Write;

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Out(String);

impl Out {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }
    fn val(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, l)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", esc(l));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {v}");
    }
    fn one(&mut self, name: &str, kind: &str, help: &str, v: f64) {
        self.head(name, kind, help);
        self.val(name, &[], v);
    }
}

pub(crate) async fn metrics(State(st): State<AppState>) -> impl IntoResponse {
    let s = st.engine.status();
    let mut o = Out(String::with_capacity(4096));
    o.one(
        "twc_budget_amps",
        "gauge",
        "Amps the whole site may give the cars now, after every limit.",
        s.policy.budget.amps(),
    );
    if let Some(p) = s.policy.policy_amps {
        o.one(
            "twc_policy_amps",
            "gauge",
            "Amps the active policy asked for before limits.",
            p,
        );
    }
    o.head("twc_policy_active", "gauge", "1 for the active policy.");
    o.val(
        "twc_policy_active",
        &[
            ("policy", &s.policy.name),
            ("green", if s.policy.is_green { "true" } else { "false" }),
        ],
        1.0,
    );
    o.one(
        "twc_wiring_max_all_amps",
        "gauge",
        "Wiring limit for all TWCs together.",
        s.wiring_max_all.amps(),
    );
    o.one(
        "twc_charger_watts",
        "gauge",
        "What the chargers draw, W (amps × volts per phase × the site's phases).",
        s.site.charger_w,
    );
    o.one(
        "twc_cars_charging",
        "gauge",
        "Slaves whose car draws at least 1 A.",
        s.cars_charging() as f64,
    );

    o.head(
        "twc_slave_offered_amps",
        "gauge",
        "Amps offered to each slave.",
    );
    for x in &s.slaves {
        o.val(
            "twc_slave_offered_amps",
            &[("slave", &x.id.to_string())],
            x.offered.amps(),
        );
    }
    o.head(
        "twc_slave_actual_amps",
        "gauge",
        "Amps the car on each slave draws.",
    );
    for x in &s.slaves {
        o.val(
            "twc_slave_actual_amps",
            &[("slave", &x.id.to_string())],
            x.actual.amps(),
        );
    }
    o.head(
        "twc_slave_target_amps",
        "gauge",
        "Amps the engine wants to offer each slave.",
    );
    for x in &s.slaves {
        o.val(
            "twc_slave_target_amps",
            &[("slave", &x.id.to_string())],
            x.target.amps(),
        );
    }
    o.head(
        "twc_slave_lifetime_kwh",
        "counter",
        "Lifetime energy counter of each slave.",
    );
    for x in &s.slaves {
        if let Some(k) = x.lifetime_kwh {
            o.val(
                "twc_slave_lifetime_kwh",
                &[("slave", &x.id.to_string())],
                f64::from(k),
            );
        }
    }
    o.head(
        "twc_slave_heartbeat_age_seconds",
        "gauge",
        "Seconds since each slave's last heartbeat reply.",
    );
    for x in &s.slaves {
        o.val(
            "twc_slave_heartbeat_age_seconds",
            &[("slave", &x.id.to_string())],
            x.last_heartbeat_secs,
        );
    }
    o.head(
        "twc_slave_timed_out",
        "gauge",
        "1 when the slave stopped answering.",
    );
    for x in &s.slaves {
        o.val(
            "twc_slave_timed_out",
            &[("slave", &x.id.to_string())],
            f64::from(u8::from(x.timed_out)),
        );
    }
    o.head(
        "twc_slave_volts",
        "gauge",
        "Phase voltages each slave reports.",
    );
    for x in &s.slaves {
        for (i, v) in x.volts.iter().enumerate() {
            o.val(
                "twc_slave_volts",
                &[("slave", &x.id.to_string()), ("phase", ["a", "b", "c"][i])],
                f64::from(*v),
            );
        }
    }

    o.head(
        "twc_reading_watts",
        "gauge",
        "The combined fresh reading as the policy uses it, W (absent when missing or stale); grid is derived as the policy derives it when no meter measures it.",
    );
    if let Some(r) = &s.reading {
        for (q, v) in [
            ("generation", r.generation_w),
            ("consumption", r.consumption_w),
            ("grid", s.site.grid_w),
            ("battery", r.battery_w),
        ] {
            if let Some(v) = v {
                o.val("twc_reading_watts", &[("quantity", q)], v);
            }
        }
    }
    o.head(
        "twc_source_reading_age_seconds",
        "gauge",
        "Age of each source's last reading.",
    );
    for src in &s.sources {
        if let Some(a) = src.age_secs {
            o.val(
                "twc_source_reading_age_seconds",
                &[("source", &src.name)],
                a,
            );
        }
    }
    o.head(
        "twc_source_stale",
        "gauge",
        "1 when the source's last reading is too old or missing.",
    );
    for src in &s.sources {
        o.val(
            "twc_source_stale",
            &[("source", &src.name)],
            f64::from(u8::from(src.stale)),
        );
    }
    o.head(
        "twc_source_errors_total",
        "counter",
        "Failed reads per source.",
    );
    for src in &s.sources {
        o.val(
            "twc_source_errors_total",
            &[("source", &src.name)],
            src.errors as f64,
        );
    }

    let b = &s.bus;
    o.one(
        "twc_bus_link_up",
        "gauge",
        "1 while the comms link is up.",
        f64::from(u8::from(b.link_up)),
    );
    o.one(
        "twc_bus_transmitting",
        "gauge",
        "1 while we transmit as master.",
        f64::from(u8::from(b.transmitting)),
    );
    o.one(
        "twc_bus_foreign_master",
        "gauge",
        "1 while another master is heard on the bus.",
        f64::from(u8::from(b.foreign_master.is_some())),
    );
    o.one(
        "twc_bus_frames_tx_total",
        "counter",
        "Frames sent.",
        b.frames_tx as f64,
    );
    o.one(
        "twc_bus_frames_rx_total",
        "counter",
        "Frames received with a good checksum.",
        b.decode.frames_ok as f64,
    );
    o.head(
        "twc_bus_frame_errors_total",
        "counter",
        "Frames dropped by the codec, by reason.",
    );
    for (k, v) in [
        ("bad_checksum", b.decode.bad_checksum),
        ("bad_escape", b.decode.bad_escape),
        ("bad_length", b.decode.bad_length),
        ("too_long", b.decode.too_long),
        ("timed_out", b.decode.timed_out),
    ] {
        o.val("twc_bus_frame_errors_total", &[("reason", k)], v as f64);
    }
    o.one(
        "twc_bus_garbage_bytes_total",
        "counter",
        "Bytes outside any frame.",
        b.decode.garbage_bytes as f64,
    );
    o.one(
        "twc_bus_unknown_messages_total",
        "counter",
        "Valid frames with an unknown code.",
        b.unknown_messages as f64,
    );
    o.one(
        "twc_bus_malformed_messages_total",
        "counter",
        "Valid frames with a bad length for their code.",
        b.malformed_messages as f64,
    );

    let (faults, _, missed) = st.recorder.faults();
    o.head(
        "twc_plugin_errors_total",
        "counter",
        "Faults reported by component since start (sources: failed reads).",
    );
    for (k, v) in &faults {
        o.val("twc_plugin_errors_total", &[("component", k)], *v as f64);
    }
    for src in &s.sources {
        o.val(
            "twc_plugin_errors_total",
            &[("component", &format!("ems.{}", src.name))],
            src.errors as f64,
        );
    }
    o.one(
        "twc_http_events_missed_total",
        "counter",
        "Engine events the web recorder missed because it fell behind (its lag).",
        missed as f64,
    );
    // Logging sinks: queue depth, lag, written/errors/dropped counters, from the status.
    o.0.push_str(&twc_core::logging::prometheus(&s.sinks));
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        o.0,
    )
}
