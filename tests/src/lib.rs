//! Helpers for the end-to-end tests: start the real `twcmanager` binary with a config file, read
//! its log and its HTTP API, and run `twc-sim` slaves on a pseudo-terminal or TCP in-process so
//! a test can unplug, replug and add noise.
//!
//! The binary is `CARGO_BIN_EXE_twcmanager` when set, otherwise `target/<profile>/twcmanager`
//! next to the test executable, built once per test run with `cargo build -p twcmanager`
//! (set `TWC_E2E_NO_BUILD=1` to skip that step).

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use twc_sim::{SimBus, SimSlave};

/// The `twcmanager` binary, built if needed.
pub fn binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = option_env!("CARGO_BIN_EXE_twcmanager") {
            return PathBuf::from(p);
        }
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/<test> → target/<profile>/twcmanager
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target directory")
            .to_path_buf();
        let bin = dir.join(format!("twcmanager{}", std::env::consts::EXE_SUFFIX));
        if std::env::var_os("TWC_E2E_NO_BUILD").is_none() {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.args(["build", "-p", "twcmanager", "--bin", "twcmanager"]);
            if dir.file_name().is_some_and(|n| n == "release") {
                cmd.arg("--release");
            }
            let st = cmd.status().expect("run cargo build -p twcmanager");
            assert!(st.success(), "cargo build -p twcmanager failed");
        }
        assert!(
            bin.exists(),
            "{} is missing: run `cargo build -p twcmanager` first",
            bin.display()
        );
        bin
    })
    .clone()
}

/// A TCP port free right now on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A running `twcmanager run`, killed on drop.
pub struct Daemon {
    child: Child,
    log: Arc<Mutex<String>>,
    /// Base URL of its HTTP API, e.g. `http://127.0.0.1:41234`.
    pub http: String,
    /// Its working directory (config, settings file).
    pub dir: tempfile::TempDir,
    client: reqwest::Client,
}

/// The config every test starts from; `extra` is appended (later keys in a section win only
/// if the section is not repeated, so tests add whole sections).
pub fn base_config(http_port: u16, dir: &Path) -> String {
    format!(
        r#"
[wiring]
max_amps_all_twcs = 32.0
max_amps_per_twc = 32.0
min_amps_per_twc = 6.0

[settings]
path = "{settings}"
non_scheduled_action = "charge"
non_scheduled_amps = 6.0

[control.http]
enabled = true
listen = "127.0.0.1"
port = {http_port}
fallback_ports = 0
auth = "remote"
"#,
        settings = dir.join("settings.json").display()
    )
}

impl Daemon {
    /// Start `twcmanager run --config <file>` with the base config plus `extra` (whole
    /// sections) and the environment overrides `env`.
    pub fn start(extra: &str, env: &[(&str, &str)]) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let cfg = dir.path().join("twcmanager.toml");
        std::fs::write(&cfg, format!("{}{extra}", base_config(port, dir.path())))
            .expect("write config");
        let mut cmd = Command::new(binary());
        cmd.arg("run")
            .arg("--config")
            .arg(&cfg)
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(filter) = std::env::var_os("TWC_E2E_RUST_LOG") {
            cmd.env("RUST_LOG", filter);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = spawn(&mut cmd);
        let log = Arc::new(Mutex::new(String::new()));
        for pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if std::env::var_os("TWC_E2E_ECHO").is_some() {
                        eprintln!("twcmanager| {line}");
                    }
                    let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        Daemon {
            child,
            log,
            http: format!("http://127.0.0.1:{port}"),
            dir,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(3))
                .build()
                .expect("http client"),
        }
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// How many log lines contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.log().lines().filter(|l| l.contains(needle)).count()
    }

    /// True while the process runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time used so far (user + system), from /proc.
    pub fn cpu_secs(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        // Fields after the command name in parentheses; utime and stime are fields 14 and 15.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = f.get(11).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0)
            + f.get(12).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
        ticks / 100.0
    }

    /// GET a JSON document from its API.
    pub async fn get(&self, path: &str) -> Option<Value> {
        let r = self
            .client
            .get(format!("{}{path}", self.http))
            .send()
            .await
            .ok()?;
        if !r.status().is_success() {
            return None;
        }
        r.json().await.ok()
    }

    /// POST a JSON body; returns the status code and body.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        match self
            .client
            .post(format!("{}{path}", self.http))
            .json(&body)
            .send()
            .await
        {
            Ok(r) => {
                let code = r.status().as_u16();
                (code, r.json().await.unwrap_or(Value::Null))
            }
            Err(e) => (0, Value::String(e.to_string())),
        }
    }

    /// `/api/v2/status`.
    pub async fn status(&self) -> Option<Value> {
        self.get("/api/v2/status").await
    }

    /// Wait until `ok(status)` holds; panics with the last status and the log otherwise.
    pub async fn wait_status(
        &mut self,
        secs: u64,
        what: &str,
        ok: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut last = Value::Null;
        loop {
            assert!(
                self.alive(),
                "twcmanager exited while waiting for {what}:\n{}",
                self.log()
            );
            if let Some(s) = self.status().await {
                if ok(&s) {
                    return s;
                }
                last = s;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {secs} s waiting for {what}\nlast status: {}\nlog:\n{}",
                    serde_json::to_string_pretty(&last["bus"]).unwrap_or_default(),
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Wait until the log has a line containing `needle`.
    pub async fn wait_log(&mut self, secs: u64, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while self.count(needle) == 0 {
            assert!(
                self.alive(),
                "twcmanager exited while waiting for {needle:?}:\n{}",
                self.log()
            );
            assert!(
                Instant::now() < deadline,
                "no log line with {needle:?} within {secs} s:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Wait until `ok()` holds, polling every 100 ms.
pub async fn wait_until(secs: u64, what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(
            Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The slave `id` (4 hex digits) in a `/api/v2/status` document.
pub fn slave<'a>(status: &'a Value, id: &str) -> Option<&'a Value> {
    status["slaves"]
        .as_array()?
        .iter()
        .find(|s| s["id"].as_str() == Some(id))
}

/// What the test does to the bytes between the simulated slaves and the master.
#[derive(Clone, Default)]
pub struct Tap {
    inject: Arc<Mutex<Vec<Vec<u8>>>>,
    echo: Arc<std::sync::atomic::AtomicBool>,
    master_bytes: Arc<std::sync::atomic::AtomicU64>,
}

impl Tap {
    /// Queue raw bytes to put on the wire towards the master (between two slave writes).
    pub fn inject(&self, bytes: impl Into<Vec<u8>>) {
        self.inject
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(bytes.into());
    }
    /// Send the master's own bytes back to it, like an adapter that echoes.
    pub fn set_echo(&self, on: bool) {
        self.echo.store(on, std::sync::atomic::Ordering::Relaxed);
    }
    /// Bytes the master has written so far.
    pub fn master_bytes(&self) -> u64 {
        self.master_bytes.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Run `bus` on `wire` (the master's side: a pty bridge or a TCP stream) with a [`Tap`] in
/// between. Ends when either side closes.
pub async fn run_tapped<S>(bus: SimBus, wire: S, tap: Tap)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sim_end, mid): (DuplexStream, DuplexStream) = tokio::io::duplex(4096);
    let sim = tokio::spawn(async move {
        let _ = bus.run(sim_end).await;
    });
    let (mut mid_rx, mut mid_tx) = tokio::io::split(mid);
    let (mut wire_rx, wire_tx) = tokio::io::split(wire);
    let wire_tx = Arc::new(tokio::sync::Mutex::new(wire_tx));
    // slaves → master, with injections and echoes.
    let up = {
        let wire_tx = wire_tx.clone();
        let tap = tap.clone();
        async move {
            let mut buf = [0u8; 512];
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            loop {
                let pending: Vec<Vec<u8>> =
                    std::mem::take(&mut *tap.inject.lock().unwrap_or_else(|e| e.into_inner()));
                for b in pending {
                    if wire_tx.lock().await.write_all(&b).await.is_err() {
                        return;
                    }
                }
                tokio::select! {
                    r = mid_rx.read(&mut buf) => match r {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if wire_tx.lock().await.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    },
                    _ = tick.tick() => {}
                }
            }
        }
    };
    // master → slaves (and back to the master when echoing).
    let down = async move {
        let mut buf = [0u8; 512];
        loop {
            match wire_rx.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    tap.master_bytes
                        .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                    if tap.echo.load(std::sync::atomic::Ordering::Relaxed)
                        && wire_tx.lock().await.write_all(&buf[..n]).await.is_err()
                    {
                        return;
                    }
                    if mid_tx.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    tokio::select! {
        _ = up => {},
        _ = down => {},
    }
    sim.abort();
}

/// Held while creating a pty or starting a process: a child started while a pty's file
/// descriptors are still inheritable would keep that pty open after the test unplugs it.
static FORK_LOCK: Mutex<()> = Mutex::new(());

/// Spawn `cmd` without racing a pty being created (see [`Pty`]).
pub fn spawn(cmd: &mut Command) -> Child {
    let _g = FORK_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    cmd.spawn().expect("start the process")
}

/// A pseudo-terminal pair whose near end is bridged to a [`DuplexStream`] by two threads, and
/// whose far end a master opens by path (`/dev/pts/N`, or a symlink to it). Unlike
/// `twc_sim::open_pty`, both ends are close-on-exec, so the daemons other tests start do not
/// inherit them and an unplug really hangs up. Dropping it closes the pty and removes the link.
pub struct Pty {
    path: PathBuf,
    link: Option<PathBuf>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    _far: serialport::TTYPort,
}

impl Pty {
    /// Create the pair (symlinked at `link` if given) and the stream the bus runs on.
    pub fn open(link: Option<&Path>) -> (Pty, DuplexStream) {
        use serialport::SerialPort;
        use std::io::{Read, Write};
        let (near, far) = {
            let _g = FORK_LOCK.lock().unwrap_or_else(|e| e.into_inner());
            let (near, far) = serialport::TTYPort::pair().expect("pty pair");
            // Close-on-exec copies; the originals close at the end of this block.
            (
                near.try_clone_native().expect("dup pty"),
                far.try_clone_native().expect("dup pty"),
            )
        };
        let path = PathBuf::from(far.name().expect("pty name"));
        if let Some(link) = link {
            let _ = std::fs::remove_file(link);
            std::os::unix::fs::symlink(&path, link).expect("symlink the pty");
        }
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (stream, bridge) = tokio::io::duplex(4096);
        let (mut b_rx, mut b_tx) = tokio::io::split(bridge);
        let mut reader = near;
        reader
            .set_timeout(Duration::from_millis(50))
            .expect("timeout");
        let mut writer = reader.try_clone_native().expect("dup pty");
        // pty → bus
        let (to_bus, mut from_pty) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
        let stop_r = stop.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            while !stop_r.load(std::sync::atomic::Ordering::Relaxed) {
                match reader.read(&mut buf) {
                    Ok(n) if n > 0 => {
                        if to_bus.blocking_send(buf[..n].to_vec()).is_err() {
                            return;
                        }
                    }
                    Ok(_) => std::thread::sleep(Duration::from_millis(20)),
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        tokio::spawn(async move {
            while let Some(b) = from_pty.recv().await {
                if b_tx.write_all(&b).await.is_err() {
                    return;
                }
            }
        });
        // bus → pty
        let (to_pty, from_bus) = std::sync::mpsc::channel::<Vec<u8>>();
        std::thread::spawn(move || {
            while let Ok(b) = from_bus.recv() {
                let _ = writer.write_all(&b);
            }
        });
        tokio::spawn(async move {
            let mut buf = [0u8; 256];
            loop {
                match b_rx.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if to_pty.send(buf[..n].to_vec()).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        (
            Pty {
                path,
                link: link.map(Path::to_path_buf),
                stop,
                _far: far,
            },
            stream,
        )
    }

    /// The device path (`/dev/pts/N`).
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(l) = &self.link {
            let _ = std::fs::remove_file(l);
        }
    }
}

/// A simulated bus plugged in on a new pty behind `link` (like `/dev/serial/by-id/…`). Drop it
/// (or call [`Plugged::unplug`]) to pull the adapter.
pub struct Plugged {
    pty: Option<Pty>,
    task: tokio::task::JoinHandle<()>,
}

impl Plugged {
    /// Plug `bus` in behind `link` with `tap` in the middle.
    pub fn new(bus: &SimBus, link: &Path, tap: &Tap) -> Plugged {
        let (pty, stream) = Pty::open(Some(link));
        let task = tokio::spawn(run_tapped(bus.clone(), stream, tap.clone()));
        Plugged {
            pty: Some(pty),
            task,
        }
    }
    /// Pull the adapter: the pty and its symlink disappear.
    pub fn unplug(mut self) {
        self.task.abort();
        self.pty.take();
    }
}

impl Drop for Plugged {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One EU slave with a Tesla plugged in.
pub fn tesla_slave(id: u16) -> SimSlave {
    SimSlave {
        slave: twc_sim::SlaveConfig::eu().with_id(twc_core::protocol::TwcId::from_u16(id)),
        car: twc_sim::CarConfig::tesla(),
    }
}
