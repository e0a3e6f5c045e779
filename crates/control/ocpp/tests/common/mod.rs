//! The real peers: `central_system.py` and `charger.py` (PyPI `ocpp` + `websockets`) in a virtualenv under
//! `target/ocpp-venv`, created with pip the first time. Without Python the tests are skipped,
//! except when `CI=true`, where they fail.

#![allow(dead_code, unreachable_pub)]

use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

const OCPP: &str = "ocpp==2.1.0";
const WEBSOCKETS: &str = "websockets==17.4";

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../target"))
}

/// The venv's python, installing it when missing; `None` (skip) without Python unless CI.
pub fn python() -> Option<PathBuf> {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let venv = target_dir().join("ocpp-venv");
    let py = venv.join("bin/python");
    let ready = venv.join(".installed");
    let want = format!("{OCPP} {WEBSOCKETS}");
    if std::fs::read_to_string(&ready).is_ok_and(|s| s == want) {
        return Some(py);
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let fail = |m: String| {
        if ci {
            panic!("{m} (CI=true: the OCPP tests need python3 with venv and pip)");
        }
        eprintln!("skipped: {m}");
        None
    };
    if !py.exists() {
        let ok = std::process::Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return fail("python3 -m venv failed".into());
        }
    }
    let ok = std::process::Command::new(&py)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            OCPP,
            WEBSOCKETS,
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        return fail(format!("pip install {want} failed"));
    }
    std::fs::write(&ready, want).ok()?;
    Some(py)
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running central system and everything it printed.
pub struct Cs {
    child: Child,
    stdin: ChildStdin,
    pub events: Arc<Mutex<Vec<Value>>>,
    pub port: u16,
}

impl Cs {
    /// Start it on `port` with extra arguments; waits until it listens.
    pub async fn start(py: &PathBuf, port: u16, extra: &[&str]) -> Cs {
        let mut args = vec!["--port".to_string(), port.to_string()];
        args.extend(extra.iter().map(|s| s.to_string()));
        let cs = Cs::spawn(py, "central_system.py", &args).await;
        cs.wait(20, |e| e["ev"] == "listening").await;
        Cs { port, ..cs }
    }

    /// Start `tests/charger.py` (an OCPP charger, for central-system mode) connecting to
    /// `url/<id>`; waits until it connected or was refused.
    pub async fn charger(py: &PathBuf, url: &str, id: &str, extra: &[&str]) -> Cs {
        let mut args = vec![
            "--url".to_string(),
            url.to_string(),
            "--id".to_string(),
            id.to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let cs = Cs::spawn(py, "charger.py", &args).await;
        cs.wait(20, |e| e["ev"] == "connected" || e["ev"] == "refused")
            .await;
        cs
    }

    async fn spawn(py: &PathBuf, script: &str, args: &[String]) -> Cs {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests")
            .join(script);
        let mut child = Command::new(py)
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the Python peer");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let events = Arc::new(Mutex::new(Vec::new()));
        let ev = events.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                if let Ok(v) = serde_json::from_str::<Value>(&l) {
                    ev.lock().unwrap().push(v);
                }
            }
        });
        Cs {
            child,
            stdin,
            events,
            port: 0,
        }
    }

    /// Wait for an event matching `pred` (also one already printed); returns it.
    pub async fn wait(&self, secs: u64, pred: impl Fn(&Value) -> bool) -> Value {
        let end = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(v) = self.events.lock().unwrap().iter().find(|e| pred(e)) {
                return v.clone();
            }
            if tokio::time::Instant::now() > end {
                let all = self.events.lock().unwrap().clone();
                let tail: Vec<String> = all
                    .iter()
                    .rev()
                    .take(30)
                    .rev()
                    .map(|v| v.to_string())
                    .collect();
                panic!(
                    "no matching event within {secs} s; last events:\n{}",
                    tail.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// CALLs the peer received with `action`, in order: (time, payload).
    pub fn received_calls(&self, action: &str) -> Vec<(f64, Value)> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["ev"] == "recv" && e["msg"][0] == 2 && e["msg"][2] == action)
            .map(|e| (e["t"].as_f64().unwrap_or(0.0), e["msg"][3].clone()))
            .collect()
    }

    /// CALLs the charge point sent with `action`, in order: (message id, payload).
    pub fn calls(&self, action: &str) -> Vec<(String, Value)> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["ev"] == "recv" && e["msg"][0] == 2 && e["msg"][2] == action)
            .map(|e| {
                (
                    e["msg"][1].as_str().unwrap_or("").to_string(),
                    e["msg"][3].clone(),
                )
            })
            .collect()
    }

    /// Every frame received from the charge point, in order.
    pub fn received(&self) -> Vec<Value> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["ev"] == "recv")
            .map(|e| e["msg"].clone())
            .collect()
    }

    /// Wait for a CALL `action` whose payload satisfies `pred`.
    pub async fn wait_call(&self, secs: u64, action: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let v = self
            .wait(secs, |e| {
                e["ev"] == "recv" && e["msg"][0] == 2 && e["msg"][2] == action && pred(&e["msg"][3])
            })
            .await;
        v["msg"][3].clone()
    }

    /// Send a command line.
    pub async fn cmd(&mut self, v: Value) {
        self.stdin
            .write_all(format!("{v}\n").as_bytes())
            .await
            .unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// A CALL through the library (its schema check included); returns the reply event.
    pub async fn call(&mut self, action: &str, payload: Value) -> Value {
        let tag = format!("t{}", self.events.lock().unwrap().len());
        self.cmd(json!({"call": action, "payload": payload, "tag": tag}))
            .await;
        self.wait(30, |e| e["ev"] == "reply" && e["tag"] == tag.as_str())
            .await
    }

    /// No CALLERROR was sent by the library: every message of ours passed its schema checks.
    pub fn assert_no_callerror_sent(&self) {
        let bad: Vec<Value> = self
            .events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["ev"] == "send" && e["msg"][0] == 4)
            .cloned()
            .collect();
        assert!(
            bad.is_empty(),
            "the central system refused messages: {bad:?}"
        );
    }

    /// Stop it.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
