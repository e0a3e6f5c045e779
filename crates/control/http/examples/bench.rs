//! Loopback load test of `GET /api/getStatus` and `GET /api/v2/status`.
//!
//! `cargo run --release -p twc-control-http --example bench [-- REQUESTS CONCURRENCY] [--close]
//! [--target http://HOST:PORT --pid PID]`
//!
//! `--close` opens a new connection for every request (as TWCManager's HTTP/1.0 server forces);
//! `--target` measures another server's `GET /api/getStatus` (TWCManager's, say) and `--pid`
//! names its process for the RSS figure.
//!
//! The server (the real engine with two simulated TWCs, one charging, and the HTTP surface) runs
//! in a child process so its resident memory can be read from /proc; this process generates the
//! load with reqwest over keep-alive connections and prints throughput, latency percentiles and
//! the server's RSS before and after.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use twc_core::engine::{self, EngineConfig};
use twc_core::model::{CentiAmps, Settings};
use twc_sim::{CarConfig, SimSlave, SlaveConfig};

fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

async fn serve() {
    let fleet = vec![
        SimSlave {
            slave: SlaveConfig::eu().with_id(twc_core::protocol::TwcId::from_u16(0x1111)),
            car: CarConfig::tesla(),
        },
        SimSlave {
            slave: SlaveConfig::eu().with_id(twc_core::protocol::TwcId::from_u16(0x2222)),
            car: CarConfig::none(),
        },
    ];
    let (comms, _sim) = twc_sim::duplex_pair(fleet);
    let mut cfg = EngineConfig::default();
    cfg.master.wiring_max_all = CentiAmps::from_amps(32);
    cfg.master.wiring_max_per_twc = CentiAmps::from_amps(16);
    let e = engine::spawn(cfg, Box::new(comms), vec![], Settings::default());
    let http = twc_control_http::HttpConfig {
        listen: "127.0.0.1".parse().unwrap(),
        port: 0,
        ..Default::default()
    };
    let l = twc_control_http::bind(&http).await.expect("bind");
    println!("PORT {}", l.local_addr().unwrap().port());
    let mut rx = e.handle.watch_status();
    while rx.borrow_and_update().slaves.len() < 2 {
        if rx.changed().await.is_err() {
            return;
        }
    }
    println!("READY");
    let _ = twc_control_http::serve_on(l, http, e.handle).await;
}

struct Run {
    rps: f64,
    p50: Duration,
    p99: Duration,
    max: Duration,
    errors: usize,
}

async fn load(url: &str, requests: usize, concurrency: usize, close: bool) -> Run {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(if close { 0 } else { concurrency })
        .build()
        .unwrap();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, next, url) = (client.clone(), next.clone(), url.to_string());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < requests {
                let t = Instant::now();
                match client.get(&url).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                    }
                    _ => errors += 1,
                }
                lat.push(t.elapsed());
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::with_capacity(requests);
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    Run {
        rps: all.len() as f64 / elapsed.as_secs_f64(),
        p50: pct(0.50),
        p99: pct(0.99),
        max: *all.last().unwrap(),
        errors,
    }
}

fn print_row(path: &str, r: &Run, rss: &str) {
    println!(
        "| `GET {path}` | {:.0} | {:.2} ms | {:.2} ms | {:.2} ms | {} | {rss} |",
        r.rps,
        r.p50.as_secs_f64() * 1e3,
        r.p99.as_secs_f64() * 1e3,
        r.max.as_secs_f64() * 1e3,
        r.errors,
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--serve") {
        serve().await;
        return;
    }
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let close = args.iter().any(|a| a == "--close");
    let numbers: Vec<usize> = args
        .iter()
        .skip(1)
        .take_while(|a| !a.starts_with("--"))
        .filter_map(|a| a.parse().ok())
        .collect();
    let requests = numbers.first().copied().unwrap_or(20_000);
    let concurrency = numbers.get(1).copied().unwrap_or(16);
    let conn = if close {
        "a new connection per request"
    } else {
        "keep-alive connections"
    };
    if let Some(target) = flag("--target") {
        let pid: Option<u32> = flag("--pid").and_then(|p| p.parse().ok());
        let rss = |pid: Option<u32>| {
            pid.and_then(rss_kib)
                .map_or("?".to_string(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
        };
        println!("{target}: RSS before {}", rss(pid));
        println!("{requests} requests, {concurrency} concurrent, {conn}\n");
        println!("| endpoint | req/s | p50 | p99 | max | errors | server RSS after |");
        println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        let url = format!("{target}/api/getStatus");
        let _ = load(&url, 200, concurrency, close).await;
        let r = load(&url, requests, concurrency, close).await;
        print_row("/api/getStatus", &r, &rss(pid));
        return;
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg("--serve")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server process");
    let pid = child.id();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut port = 0u16;
    let mut line = String::new();
    while out.read_line(&mut line).unwrap_or(0) > 0 {
        if let Some(p) = line.trim().strip_prefix("PORT ") {
            port = p.parse().unwrap();
        }
        if line.trim() == "READY" {
            break;
        }
        line.clear();
    }
    assert!(port > 0, "the server did not start");
    let idle = rss_kib(pid).unwrap_or(0);
    println!(
        "server pid {pid}, RSS idle with 2 simulated slaves: {:.1} MiB",
        idle as f64 / 1024.0
    );
    println!("{requests} requests per endpoint, {concurrency} concurrent, {conn}, loopback\n");
    println!("| endpoint | req/s | p50 | p99 | max | errors | server RSS after |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for path in ["/api/getStatus", "/api/v2/status"] {
        let url = format!("http://127.0.0.1:{port}{path}");
        let _ = load(&url, 500, concurrency, close).await; // warm-up
        let r = load(&url, requests, concurrency, close).await;
        let rss = rss_kib(pid).unwrap_or(0);
        print_row(path, &r, &format!("{:.1} MiB", rss as f64 / 1024.0));
    }
    let _ = child.kill();
    let _ = child.wait();
}
