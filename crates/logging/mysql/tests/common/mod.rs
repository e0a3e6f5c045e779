//! A fresh database per test on the MariaDB at `TWC_TEST_MYSQL_URL`
//! (default `mysql://root@127.0.0.1:3306/test`), and a TCP proxy that can cut it off.

#![allow(dead_code, unreachable_pub)]

use sqlx::mysql::{MySqlConnectOptions, MySqlPool};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;
use twc_core::logging::Mute;
use twc_core::plugin::Secret;
use twc_logging_mysql::MysqlConfig;

pub struct Server {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
}

pub fn server() -> Server {
    let url = std::env::var("TWC_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into());
    let rest = url.strip_prefix("mysql://").unwrap_or(&url);
    let (auth, hostpart) = rest.rsplit_once('@').unwrap_or(("root", rest));
    let (user, password) = auth.split_once(':').unwrap_or((auth, ""));
    let hostport = hostpart.split('/').next().unwrap_or("127.0.0.1:3306");
    let (host, port) = hostport.rsplit_once(':').unwrap_or((hostport, "3306"));
    Server {
        host: host.into(),
        port: port.parse().unwrap_or(3306),
        user: user.into(),
        password: password.into(),
    }
}

fn admin_opts(s: &Server) -> MySqlConnectOptions {
    let mut o = MySqlConnectOptions::new()
        .host(&s.host)
        .port(s.port)
        .username(&s.user);
    if !s.password.is_empty() {
        o = o.password(&s.password);
    }
    o
}

/// A uniquely named empty database, dropped by [`TestDb::drop_db`].
pub struct TestDb {
    pub name: String,
    pub server: Server,
    pub admin: MySqlPool,
    /// A pool on the test database itself.
    pub pool: MySqlPool,
}

/// `None` (with one loud line) when no server answers outside CI; a failure in CI.
pub async fn test_db() -> Option<TestDb> {
    let server = server();
    let admin = match MySqlPool::connect_with(admin_opts(&server)).await {
        Ok(p) => p,
        Err(e) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "MariaDB at {}:{} is required in CI: {e}",
                    server.host, server.port
                );
            }
            eprintln!(
                "!!! SKIPPING MySQL test: no MariaDB at {}:{} ({e}); set TWC_TEST_MYSQL_URL",
                server.host, server.port
            );
            return None;
        }
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let name = format!("twc_test_{}_{nanos}", std::process::id());
    sqlx::query(&format!("CREATE DATABASE `{name}`"))
        .execute(&admin)
        .await
        .unwrap();
    let pool = MySqlPool::connect_with(admin_opts(&server).database(&name))
        .await
        .unwrap();
    Some(TestDb {
        name,
        server,
        admin,
        pool,
    })
}

impl TestDb {
    pub fn config(&self) -> MysqlConfig {
        self.config_at(&self.server.host.clone(), self.server.port)
    }

    pub fn config_at(&self, host: &str, port: u16) -> MysqlConfig {
        MysqlConfig {
            host: host.into(),
            port,
            database: self.name.clone(),
            username: self.server.user.clone(),
            password: Secret::new(self.server.password.clone()),
            connect_timeout_secs: 2,
            green_energy_interval_secs: 0,
            resume_within_secs: 900,
            batch_size: 100,
            mute: Mute::default(),
        }
    }

    pub async fn drop_db(self) {
        self.pool.close().await;
        sqlx::query(&format!("DROP DATABASE `{}`", self.name))
            .execute(&self.admin)
            .await
            .unwrap();
    }
}

/// A TCP proxy in front of the server that can be cut (every connection reset, new ones refused
/// by closing them at once) and restored.
#[derive(Clone)]
pub struct Proxy {
    pub port: u16,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Proxy {
    pub async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let p = Proxy {
            port,
            up: Arc::new(AtomicBool::new(true)),
            conns: Arc::new(Mutex::new(Vec::new())),
        };
        let q = p.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                if !q.up.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                let h = tokio::spawn(async move {
                    if let Ok(mut out) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                q.conns.lock().unwrap().push(h.abort_handle());
            }
        });
        p
    }

    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for h in self.conns.lock().unwrap().drain(..) {
            h.abort();
        }
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}
