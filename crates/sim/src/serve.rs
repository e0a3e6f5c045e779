//! The simulator as a standalone program: on a pseudo-terminal (like a USB RS-485 adapter) or
//! on TCP (like an RS-485-to-Ethernet bridge).

use crate::SimError;
use crate::bus::{DUPLEX_BUFFER, SimBus, SimHandle};
use crate::config::{FleetSpec, SimSlave};
use serialport::{SerialPort, TTYPort};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};
use twc_core::model::CentiAmps;
use twc_core::protocol::{ProtocolVersion, TwcId};

/// A pseudo-terminal whose far end a master opens like a serial port. The near end is bridged
/// (by two threads, the pty being a blocking file) to an in-process stream for [`SimBus::run`].
pub struct Pty {
    path: PathBuf,
    link: Option<PathBuf>,
    stop: Arc<AtomicBool>,
    // Held open so the pty stays up while masters open and close the path.
    _slave_end: TTYPort,
}

impl Pty {
    /// The device path a master opens (e.g. `/dev/pts/5`).
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The symlink to [`Pty::path`], if one was asked for.
    pub fn link(&self) -> Option<&Path> {
        self.link.as_deref()
    }
    /// The path to tell the user: the symlink when there is one.
    pub fn display_path(&self) -> &Path {
        self.link.as_deref().unwrap_or(&self.path)
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(link) = &self.link {
            let _ = std::fs::remove_file(link);
        }
    }
}

/// Create a pseudo-terminal pair, optionally symlinked at `link` (an existing symlink there is
/// replaced; any other file is an error). Returns the pty and the stream to run the bus on.
/// Call inside a tokio runtime.
pub fn open_pty(link: Option<&Path>) -> Result<(Pty, DuplexStream), SimError> {
    let (mut master_end, slave_end) = TTYPort::pair().map_err(|e| SimError::Pty(e.to_string()))?;
    let path = PathBuf::from(
        slave_end
            .name()
            .ok_or_else(|| SimError::Pty("the pseudo-terminal has no name".into()))?,
    );
    if let Some(link) = link {
        match std::fs::symlink_metadata(link) {
            Ok(m) if m.file_type().is_symlink() => std::fs::remove_file(link).map_err(|e| {
                SimError::Pty(format!(
                    "cannot replace the symlink {}: {e}",
                    link.display()
                ))
            })?,
            Ok(_) => {
                return Err(SimError::Pty(format!(
                    "--link {}: a file that is not a symlink is in the way",
                    link.display()
                )));
            }
            Err(_) => {}
        }
        std::os::unix::fs::symlink(&path, link).map_err(|e| {
            SimError::Pty(format!("cannot create the symlink {}: {e}", link.display()))
        })?;
    }
    master_end
        .set_timeout(Duration::from_millis(100))
        .map_err(|e| SimError::Pty(e.to_string()))?;
    let mut writer = master_end
        .try_clone_native()
        .map_err(|e| SimError::Pty(e.to_string()))?;
    let _ = writer.set_timeout(Duration::from_secs(1));
    let (near, far) = tokio::io::duplex(DUPLEX_BUFFER);
    let (mut far_rx, mut far_tx) = tokio::io::split(far);
    let stop = Arc::new(AtomicBool::new(false));

    // pty → bus
    let (to_bus, mut from_pty) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    let stop_r = stop.clone();
    std::thread::Builder::new()
        .name("twc-sim-pty-read".into())
        .spawn(move || {
            let mut buf = [0u8; 256];
            while !stop_r.load(Ordering::Relaxed) {
                match master_end.read(&mut buf) {
                    Ok(0) => std::thread::sleep(Duration::from_millis(20)),
                    Ok(n) => {
                        if to_bus.blocking_send(buf[..n].to_vec()).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        debug!(error = %e, "pty read");
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            }
        })
        .map_err(|e| SimError::Pty(e.to_string()))?;
    tokio::spawn(async move {
        while let Some(bytes) = from_pty.recv().await {
            if far_tx.write_all(&bytes).await.is_err() {
                return;
            }
        }
    });

    // bus → pty
    let (to_pty, from_bus) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::Builder::new()
        .name("twc-sim-pty-write".into())
        .spawn(move || {
            while let Ok(bytes) = from_bus.recv() {
                // With nobody reading the pty its buffer fills; then frames are lost, as on a
                // bus without a master.
                if let Err(e) = writer.write_all(&bytes).and_then(|_| writer.flush()) {
                    debug!(error = %e, "pty write; frame lost");
                }
            }
        })
        .map_err(|e| SimError::Pty(e.to_string()))?;
    tokio::spawn(async move {
        let mut buf = [0u8; 256];
        loop {
            match far_rx.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if to_pty.send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
            }
        }
    });

    Ok((
        Pty {
            path,
            link: link.map(Path::to_path_buf),
            stop,
            _slave_end: slave_end,
        },
        near,
    ))
}

/// Run `slaves` on a new pseudo-terminal until the process ends. Prints the device path (and the
/// symlink, if `link` is given) for the master to open.
pub async fn serve_pty(slaves: Vec<SimSlave>, link: Option<&Path>) -> Result<(), SimError> {
    let (pty, stream) = open_pty(link)?;
    println!(
        "Simulated TWC slaves on {}{}: point the master's serial port there",
        pty.path().display(),
        pty.link()
            .map(|l| format!(" (symlink {})", l.display()))
            .unwrap_or_default()
    );
    let bus = SimBus::new(slaves);
    log_slaves(&bus.handle());
    bus.run(stream).await?;
    drop(pty);
    Ok(())
}

/// Listen on `addr` and serve one master connection at a time (an RS-485-to-Ethernet bridge
/// stand-in). The slaves keep their state across connections. Runs until the process ends.
pub async fn serve_tcp(slaves: Vec<SimSlave>, addr: &str) -> Result<(), SimError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| SimError::Net(format!("cannot listen on {addr}: {e}")))?;
    let local = listener.local_addr().map_err(SimError::Io)?;
    println!("Simulated TWC slaves listening on tcp://{local}");
    serve_listener(slaves, listener).await
}

/// As [`serve_tcp`] on an already bound listener (tests bind port 0 and read the address).
pub async fn serve_listener(slaves: Vec<SimSlave>, listener: TcpListener) -> Result<(), SimError> {
    let bus = SimBus::new(slaves);
    log_slaves(&bus.handle());
    loop {
        let (stream, peer) = listener.accept().await.map_err(SimError::Io)?;
        info!(peer = %peer, "Master connected");
        let _ = stream.set_nodelay(true);
        if let Err(e) = bus.run(stream).await {
            warn!(error = %e, "Connection ended with an error");
        }
        info!(peer = %peer, "Master disconnected; waiting for the next one");
    }
}

/// Connect to a master listening on `addr` (a master that expects the bridge to dial in), and
/// reconnect after it goes away. Runs until the process ends.
pub async fn connect_tcp(slaves: Vec<SimSlave>, addr: &str) -> Result<(), SimError> {
    let bus = SimBus::new(slaves);
    log_slaves(&bus.handle());
    loop {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                info!(addr, "Connected to the master");
                let _ = stream.set_nodelay(true);
                if let Err(e) = bus.run(stream).await {
                    warn!(error = %e, "Connection ended with an error");
                }
            }
            Err(e) => debug!(addr, error = %e, "Connect failed; retrying"),
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

fn log_slaves(h: &SimHandle) {
    for s in h.slaves() {
        info!(
            slave = %s.id,
            sign = format!("{:02X}", s.sign),
            protocol = s.version.number(),
            car = s.car.plugged_in,
            vin = ?s.car.vin,
            "Simulated slave powered on"
        );
    }
}

fn parse_twcid(s: &str) -> Result<TwcId, String> {
    s.parse()
}

/// Options of `twcmanager sim`.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct SimArgs {
    /// Number of simulated slaves on the bus (a real bus holds at most 3).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=8))]
    pub slaves: u8,
    /// Protocol version of every slave: 1 (14-byte frames) or 2 (16-byte frames).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub protocol: u8,
    /// Rated maximum current of every slave, A (EU units 32, US units 80).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=80))]
    pub max_amps: u16,
    /// Car plugged in, per slave, comma-separated (missing entries: no car).
    #[arg(long, value_delimiter = ',', default_value = "true")]
    pub plugged: Vec<bool>,
    /// VIN of each car, comma-separated; `none` for a non-Tesla (reports zeros).
    #[arg(long, value_delimiter = ',')]
    pub vin: Vec<String>,
    /// Onboard charger limit of every car, A.
    #[arg(long, default_value_t = 32)]
    pub car_max_amps: u16,
    /// Lowest current every car accepts, A.
    #[arg(long, default_value_t = 5)]
    pub car_min_amps: u16,
    /// How fast a car raises its draw, A/s.
    #[arg(long, default_value_t = 2.0)]
    pub ramp_amps_per_sec: f64,
    /// Fixed TWCIDs, comma-separated hex (e.g. `1234,5678`); default random.
    #[arg(long, value_delimiter = ',', value_parser = parse_twcid)]
    pub id: Vec<TwcId>,
    /// Answer lifetime-kWh queries with firmware 4.5.3's 20-byte reply.
    #[arg(long)]
    pub long_replies: bool,
    /// Serve on a new pseudo-terminal (the default).
    #[arg(long, conflicts_with_all = ["tcp_listen", "tcp_connect"])]
    pub pty: bool,
    /// With --pty: create this symlink to the pseudo-terminal (e.g. /tmp/twc-sim).
    #[arg(long, value_name = "PATH", conflicts_with_all = ["tcp_listen", "tcp_connect"])]
    pub link: Option<PathBuf>,
    /// Listen for the master on this TCP address (e.g. 127.0.0.1:8899), like an RS-485 bridge.
    #[arg(long, value_name = "ADDR", conflicts_with = "tcp_connect")]
    pub tcp_listen: Option<String>,
    /// Connect to a master listening on this TCP address.
    #[arg(long, value_name = "ADDR")]
    pub tcp_connect: Option<String>,
}

impl SimArgs {
    /// The slaves these options describe, after checking them.
    pub fn fleet(&self) -> Result<Vec<SimSlave>, SimError> {
        let mut vins = Vec::new();
        for v in &self.vin {
            if v.eq_ignore_ascii_case("none") || v.is_empty() {
                vins.push(None);
            } else if v.len() != 17 || !v.is_ascii() {
                return Err(SimError::Usage(format!(
                    "--vin: expected 17 ASCII characters or \"none\", got {v:?}"
                )));
            } else {
                vins.push(Some(v.to_ascii_uppercase()));
            }
        }
        if !self.ramp_amps_per_sec.is_finite() || self.ramp_amps_per_sec <= 0.0 {
            return Err(SimError::Usage(format!(
                "--ramp-amps-per-sec: expected a number > 0, got {}",
                self.ramp_amps_per_sec
            )));
        }
        let spec = FleetSpec {
            count: usize::from(self.slaves),
            version: if self.protocol == 1 {
                ProtocolVersion::V1
            } else {
                ProtocolVersion::V2
            },
            max_amps: CentiAmps::from_amps(self.max_amps),
            plugged_in: self.plugged.clone(),
            vins,
            car_max_amps: CentiAmps::from_amps(self.car_max_amps),
            car_min_amps: CentiAmps::from_amps(self.car_min_amps),
            ramp_amps_per_sec: self.ramp_amps_per_sec,
            ids: self.id.clone(),
            long_kwh_reply: self.long_replies,
        };
        Ok(spec.build())
    }
}

/// `twcmanager sim …`: run the simulated slaves on the chosen transport until Ctrl-C.
pub async fn run(args: SimArgs) -> Result<(), SimError> {
    let slaves = args.fleet()?;
    let serve = async {
        match (&args.tcp_listen, &args.tcp_connect) {
            (Some(addr), _) => serve_tcp(slaves, addr).await,
            (None, Some(addr)) => connect_tcp(slaves, addr).await,
            (None, None) => serve_pty(slaves, args.link.as_deref()).await,
        }
    };
    tokio::select! {
        r = serve => r,
        _ = tokio::signal::ctrl_c() => {
            info!("Simulator stopped");
            Ok(())
        }
    }
}
