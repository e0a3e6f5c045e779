//! `cargo xtask <task>`: project chores in Rust, so CI and developers run the same code.
//!
//! - `ci`: fmt check, clippy `-D warnings`, every test, the API fuzz run (`fuzz-api`), doc build,
//!   and a feature sweep (each plugin feature alone, then `full`). `.ci/run` calls exactly this.
//! - `test`: only the test suite.
//! - `tidy`: layout rules (each plugin crate has README.md, example.toml, tests/; package name
//!   matches the directory; the bin has its feature and link line; no plugin depends on another;
//!   twc-core's normal dependencies include no HTTP, SQL or MQTT client).
//! - `fuzz [target] [--secs N]`: run a cargo-fuzz target (needs nightly + cargo-fuzz).
//! - `new-plugin <kind> <name>`: generate a plugin crate from the template and wire it in (bin
//!   feature, group and optional dependency, config/default.toml section, generated docs).
//! - `docs`: write the generated docs (docs/configuration.md from config/default.toml and the
//!   plugins' descriptions; the feature table of docs/features.md). Tidy fails when they are stale.
//! - `bench`: the benchmarks.
//! - `e2e`: build the binary and run the end-to-end tests.
//! - `fuzz-api [--max-examples N] [--seed N] [-- schemathesis args]`: build the binary, start the
//!   demo on a free port and run the schema-driven fuzzer schemathesis (pinned, installed into a
//!   virtualenv under `target/`) against `/api/v2/openapi.json`; any failure fails the step.

mod core_deps;
mod dist;
mod docs;
mod file_size;
mod fuzz_api;
mod new_plugin;
mod spans;
mod tidy;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().map(String::as_str).unwrap_or("help");
    let rest = &args[args.len().min(1)..];
    let r = match task {
        "ci" => ci(),
        "test" => test(),
        "tidy" => tidy::check(&root()).map_err(|errs| {
            for e in &errs {
                eprintln!("tidy: {e}");
            }
            format!("{} tidy problem(s)", errs.len())
        }),
        "fuzz" => fuzz(rest),
        "new-plugin" => new_plugin(rest),
        "docs" => docs::write(&root()),
        "dist" => dist::run(rest),
        "cross-check" => dist::cross_check(),
        "bench" => bench(),
        "e2e" => e2e(),
        "fuzz-api" => fuzz_api::run(rest),
        "sim" => sim(rest),
        "soak" => soak(rest),
        _ => {
            eprintln!(
                "usage: cargo xtask <ci | test | tidy | fuzz [target] [--secs N] | fuzz-api [--max-examples N] [--seed N] | new-plugin <kind> <name> | docs | dist [--require-cross] [--deb] | cross-check | bench | e2e | sim --trace FILE.csv | soak [demo|safety] [--minutes N] [--cases N] [--jobs N]>"
            );
            return if task == "help" {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask {task}: {e}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

pub(crate) fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

pub(crate) fn step(name: &str, mut cmd: Command) -> Result<(), String> {
    eprintln!("\n==> {name}: {cmd:?}");
    let t = std::time::Instant::now();
    let status = cmd
        .status()
        .map_err(|e| format!("{name}: cannot run: {e}"))?;
    eprintln!(
        "==> {name}: {} in {:.0?}",
        if status.success() { "ok" } else { "FAILED" },
        t.elapsed()
    );
    if status.success() {
        Ok(())
    } else {
        Err(format!("{name} failed ({status})"))
    }
}

fn ci() -> Result<(), String> {
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    step("fmt", fmt)?;
    tidy::check(&root()).map_err(|errs| {
        for e in &errs {
            eprintln!("tidy: {e}");
        }
        format!("{} tidy problem(s)", errs.len())
    })?;
    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--features",
        "twcmanager/full",
        "--",
        "-D",
        "warnings",
    ]);
    step("clippy", clippy)?;
    test()?;
    fuzz_api::run(&[])?;
    let mut doc = cargo();
    doc.args([
        "doc",
        "--workspace",
        "--no-deps",
        "--features",
        "twcmanager/full",
    ]);
    doc.env("RUSTDOCFLAGS", "-D warnings");
    step("doc", doc)?;
    feature_sweep()?;
    dist::cross_check()
}

fn test() -> Result<(), String> {
    let mut t = cargo();
    // The workspace build already makes target/debug/twcmanager (with every feature) for the
    // bin's own integration tests; the end-to-end tests must use it, not rebuild it.
    t.env("TWC_E2E_NO_BUILD", "1");
    t.args([
        "test",
        "--workspace",
        "--features",
        "twcmanager/full",
        "--no-fail-fast",
    ]);
    step("test", t)
}

/// Every plugin feature of the bin alone, then `full`: features must be additive. Clippy rather
/// than check, so the dependencies' artifacts from the clippy step are reused.
fn feature_sweep() -> Result<(), String> {
    let manifest = std::fs::read_to_string(root().join("bins/twcmanager/Cargo.toml"))
        .map_err(|e| e.to_string())?;
    let features = tidy::bin_plugin_features(&manifest);
    for f in &features {
        let mut c = cargo();
        c.args([
            "clippy",
            "-q",
            "-p",
            "twcmanager",
            "--no-default-features",
            "--features",
            f,
            "--",
            "-D",
            "warnings",
        ]);
        step(&format!("feature {f}"), c)?;
    }
    let mut c = cargo();
    c.args([
        "clippy",
        "-q",
        "-p",
        "twcmanager",
        "--no-default-features",
        "--",
        "-D",
        "warnings",
    ]);
    step("no default features", c)?;
    let mut c = cargo();
    c.args([
        "clippy",
        "-q",
        "-p",
        "twcmanager",
        "--features",
        "full",
        "--",
        "-D",
        "warnings",
    ]);
    step("feature full", c)
}

/// `soak [demo|safety] [--minutes N] [--cases N]`: both soaks by default.
///
/// - **demo** (issue 13): the real daemon with every sink, a private broker and a TCP-bridged
///   bus of simulated TWCs, faults injected into all of them on a one-minute cycle for
///   `--minutes` (default 10); reports every record accounted for, memory, reconnects.
/// - **safety** (issue 12): the adversarial engine-level property test
///   (`crates/replay/tests/safety.rs`) with `--cases N` (default 100,000), in release mode,
///   split over `--jobs N` processes (default: the machine's cores); prints how many cases ran,
///   each checking invariants 1–5 every simulated second.
fn soak(args: &[String]) -> Result<(), String> {
    let value = |flag: &str, default: &str| -> Result<u32, String> {
        let v = args
            .iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or_else(|| default.into());
        v.parse::<u32>()
            .map_err(|_| format!("{flag} {v:?}: expected a whole number"))
    };
    let which = args
        .iter()
        .find(|a| !a.starts_with("--") && a.parse::<u32>().is_err());
    let (demo, safety) = match which.map(String::as_str) {
        None => (true, true),
        Some("demo") => (true, false),
        Some("safety") => (false, true),
        Some(other) => {
            return Err(format!(
                "soak {other:?}: expected `demo`, `safety` or nothing (both)"
            ));
        }
    };
    if demo {
        let minutes = value("--minutes", "10")?;
        let mut c = cargo();
        // MariaDB and Mosquitto must be there: a soak that skipped would prove nothing.
        c.env("CI", "true");
        c.env(
            "TWC_SOAK_SECS",
            (u64::from(minutes.max(1)) * 60).to_string(),
        );
        c.args([
            "test",
            "-p",
            "twcmanager",
            "--features",
            "full",
            "--test",
            "soak",
            "--",
            "--nocapture",
        ]);
        step(&format!("demo soak ({minutes} min of faults)"), c)?;
    }
    if safety {
        let cases = value("--cases", "100000")?;
        let jobs = value(
            "--jobs",
            &std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .to_string(),
        )?
        .max(1);
        safety_soak(cases, jobs)?;
    }
    Ok(())
}

/// The safety property test in release, `cases` in all, split over `jobs` processes of the same
/// test binary (proptest seeds each process from the system, so they run different cases).
/// Fails on the first process that finds a case that breaks an invariant.
fn safety_soak(cases: u32, jobs: u32) -> Result<(), String> {
    let mut build = cargo();
    build.args([
        "test",
        "--release",
        "-p",
        "twc-replay",
        "--test",
        "safety",
        "--no-run",
        "--message-format=json",
    ]);
    build.stderr(std::process::Stdio::inherit());
    let out = build
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err("building the safety test failed".into());
    }
    let exe = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"]["name"] == "safety")
        .find_map(|v| v["executable"].as_str().map(str::to_string))
        .ok_or("cargo named no executable for the safety test")?;
    let per = cases.div_ceil(jobs);
    eprintln!("\n==> safety soak: {cases} cases in {jobs} processes of {per} ({exe})");
    let t = std::time::Instant::now();
    let children: Vec<_> = (0..jobs)
        .map(|_| {
            Command::new(&exe)
                .env("PROPTEST_CASES", per.to_string())
                .args([
                    "the_guarantees_hold_against_adversarial_models",
                    "--nocapture",
                ])
                .spawn()
                .map_err(|e| format!("cannot run {exe}: {e}"))
        })
        .collect::<Result<_, _>>()?;
    let mut failed = 0;
    for mut c in children {
        if !c.wait().map_err(|e| e.to_string())?.success() {
            failed += 1;
        }
    }
    eprintln!(
        "==> safety soak: {} in {:.0?}",
        if failed == 0 {
            format!("{} cases passed, 0 failures", per * jobs)
        } else {
            format!("{failed} of {jobs} processes found a failing case (above)")
        },
        t.elapsed()
    );
    if failed == 0 {
        Ok(())
    } else {
        Err("the safety soak found a failing case".into())
    }
}

fn fuzz(args: &[String]) -> Result<(), String> {
    let target = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .cloned()
        .unwrap_or_else(|| "decode_frame".into());
    let secs = args
        .iter()
        .position(|a| a == "--secs")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| "60".into());
    let has_fuzz = Command::new("cargo")
        .args(["+nightly", "fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_fuzz {
        eprintln!(
            "xtask fuzz: skipped — needs a nightly toolchain and cargo-fuzz (rustup toolchain install nightly; cargo install cargo-fuzz). \
             The proptest `random_bytes_never_panic` in twc-core covers the decoder in every test run."
        );
        return Ok(());
    }
    let mut c = Command::new("cargo");
    c.current_dir(root().join("fuzz"));
    c.args([
        "+nightly",
        "fuzz",
        "run",
        &target,
        "--",
        &format!("-max_total_time={secs}"),
    ]);
    step(&format!("fuzz {target}"), c)
}

fn bench() -> Result<(), String> {
    let mut c = cargo();
    c.args([
        "run",
        "--release",
        "-p",
        "twc-core",
        "--example",
        "core_bench",
    ]);
    step("core codec/master throughput", c)?;
    for (pkg, bench) in [
        ("twc-logging-sqlite", "sqlite_throughput"),
        ("twc-logging-mysql", "mysql_throughput"),
        ("twc-logging-sqlite", "engine_jitter"),
    ] {
        let mut c = cargo();
        c.args(["bench", "-p", pkg, "--bench", bench]);
        step(&format!("{pkg} records/s"), c)?;
    }
    let mut c = cargo();
    c.args([
        "run",
        "--release",
        "-p",
        "twc-control-http",
        "--example",
        "bench",
    ]);
    step("web API getStatus / v2 status req/s, p99, RSS", c)?;
    // Issue 15: a month of the broken-cloud day through the real engine (target: under 30 s
    // wall clock; the replay prints its own time as "replay took").
    let replay = |args: &[&str]| {
        let mut c = cargo();
        c.args(["run", "--release", "--quiet", "-p", "twc-replay", "--"]);
        c.args(args);
        c
    };
    let month = [
        "--trace",
        "docs/traces/broken-cloud-day.csv",
        "--days",
        "30",
    ];
    step("30-day replay (target < 30 s)", replay(&month))?;
    // Issue 15: the real corpus against the reference controller, with the setting of
    // config/examples/solar-tracking.toml (the table in docs/policy.md, "Real days").
    let corpus = [
        "--corpus",
        "docs/traces/real",
        "--restart-cost-wh",
        "5",
        "--low-current",
        "--drop-reserve-secs",
        "600",
        "--drop-reserve-max-w",
        "75",
        "--home",
        "39.74,-105.18",
    ];
    step(
        "real corpus, solar-tracking setting, ours vs reference",
        replay(&corpus),
    )?;
    Ok(())
}

fn e2e() -> Result<(), String> {
    let mut b = cargo();
    b.args(["build", "-p", "twcmanager", "--features", "full"]);
    step("build twcmanager", b)?;
    let mut t = cargo();
    // The tests would otherwise rebuild the binary with the default features.
    t.env("TWC_E2E_NO_BUILD", "1");
    t.args(["test", "-p", "twc-e2e"]);
    step("e2e", t)
}

/// The day-replay simulator (`crates/replay`), built in release mode so a month replays in
/// well under a minute. Every argument is passed on: see `cargo xtask sim --help`.
fn sim(args: &[String]) -> Result<(), String> {
    let mut c = cargo();
    c.args(["run", "--release", "--quiet", "-p", "twc-replay", "--"]);
    c.args(args);
    let status = c.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the replay failed ({status})"))
    }
}

fn new_plugin(args: &[String]) -> Result<(), String> {
    let (Some(kind), Some(name)) = (args.first(), args.get(1)) else {
        return Err(
            "usage: cargo xtask new-plugin <comms|ems|control|logging|status|vehicle> <name>"
                .into(),
        );
    };
    new_plugin::generate(&root(), kind, name)
}
