//! Wake policy, commands, the geofence and the [`VehicleApi`] implementation.

use super::{DATA_ENDPOINTS, Login, NAME, Target, TeslaApi, WAKE_RETRY};
use crate::Home;
use crate::auth::{encode, form, pkce_pair};
use crate::parse::{self, CommandResult};
use std::time::Duration;
use tokio::time::Instant;
use tracing::info;
use twc_core::async_trait;
use twc_core::plugin::{AccountStatus, ChargeState, ErrorKind, PluginError, Vehicle, VehicleApi};

impl TeslaApi {
    /// Make sure the car is awake before a command: never a car away from home, not before
    /// `wake_delay_secs` (it may wake by itself), not again within 30 min of a failed wake.
    async fn ensure_awake(&self, vin: &str) -> Result<(), PluginError> {
        let now = Instant::now();
        {
            let mut st = self.st();
            let home = st.home;
            let car = st.cars.entry(vin.to_string()).or_default();
            if !car.asleep {
                return Ok(());
            }
            let away = car
                .data
                .as_ref()
                .and_then(|(d, _)| at_home(home, d))
                .is_some_and(|h| !h);
            if away {
                return Err(Self::err(
                    ErrorKind::Transient,
                    format!("{vin} is asleep and not at home: not waking it"),
                ));
            }
            if let Some(u) = car.no_wake_until.filter(|u| *u > now) {
                return Err(Self::err(
                    ErrorKind::Transient,
                    format!(
                        "{vin} is asleep; a wake failed, next try in {} s",
                        (u - now).as_secs()
                    ),
                ));
            }
            let since = *car.wake_wanted.get_or_insert(now);
            let delay = Duration::from_secs(self.cfg.wake_delay_secs);
            if now - since < delay {
                return Err(Self::err(
                    ErrorKind::Transient,
                    format!(
                        "{vin} is asleep; waking it in {} s unless it wakes by itself",
                        (delay - (now - since)).as_secs()
                    ),
                ));
            }
        }
        let r = self
            .call(
                Target::Fleet,
                true,
                &format!("/api/1/vehicles/{vin}/wake_up"),
                None,
                Some(vin),
            )
            .await
            .and_then(|b| {
                parse::parse_vehicle(&b)
                    .map_err(|e| Self::err(ErrorKind::Protocol, format!("wake_up: {e}")))
            });
        let mut st = self.st();
        let car = st.cars.entry(vin.to_string()).or_default();
        match r {
            Ok((_, Some(s))) if s == "online" => {
                car.asleep = false;
                car.wake_wanted = None;
                info!(vin = %vin, "Car woken");
                Ok(())
            }
            Ok(_) => Err(Self::err(
                ErrorKind::Transient,
                format!("{vin} is waking up; the command is sent once it is online"),
            )),
            Err(e) => {
                car.no_wake_until = Some(Instant::now() + WAKE_RETRY);
                Err(e)
            }
        }
    }

    async fn command(
        &self,
        vin: &str,
        name: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(), PluginError> {
        self.ensure_awake(vin).await?;
        let b = self
            .call(
                Target::Proxy,
                true,
                &format!("/api/1/vehicles/{vin}/command/{name}"),
                body,
                Some(vin),
            )
            .await?;
        match parse::parse_command(&b) {
            Ok(CommandResult::Done) => Ok(()),
            Ok(CommandResult::Retry(r)) => Err(Self::err(
                ErrorKind::Transient,
                format!("{name} {vin}: {r}; retrying later"),
            )),
            Ok(CommandResult::Refused(r)) => Err(Self::err(
                ErrorKind::Protocol,
                format!("{name} {vin}: refused: {r}"),
            )),
            Err(e) => Err(Self::err(ErrorKind::Protocol, format!("{name} {vin}: {e}"))),
        }
    }

    fn cached(&self, vin: &str, state: &str) -> Option<ChargeState> {
        let st = self.st();
        let (d, at) = st.cars.get(vin)?.data.clone()?;
        Some(ChargeState {
            state: Some(state.to_string()),
            age_secs: Some(d.age_secs.unwrap_or(0.0) + at.elapsed().as_secs_f64()),
            ..d
        })
    }
}

/// Inside the home geofence? `None` without a home or a position.
fn at_home(home: Option<Home>, d: &ChargeState) -> Option<bool> {
    let h = home?;
    let (lat, lon) = (d.latitude?, d.longitude?);
    Some(distance_m(h.latitude, h.longitude, lat, lon) <= h.radius_m)
}

/// Distance in metres (equirectangular: exact enough for a few km).
pub fn distance_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    const R: f64 = 6_371_000.0;
    let x = (lon2 - lon1).to_radians() * ((lat1 + lat2) / 2.0).to_radians().cos();
    let y = (lat2 - lat1).to_radians();
    R * (x * x + y * y).sqrt()
}

#[async_trait]
impl VehicleApi for TeslaApi {
    fn name(&self) -> &str {
        NAME
    }

    async fn list(&self) -> Result<Vec<Vehicle>, PluginError> {
        let b = self
            .call(Target::Fleet, false, "/api/1/vehicles", None, None)
            .await?;
        let list = parse::parse_vehicles(&b)
            .map_err(|e| Self::err(ErrorKind::Protocol, format!("GET /api/1/vehicles: {e}")))?;
        let mut st = self.st();
        Ok(list
            .into_iter()
            .map(|(v, state)| {
                st.cars.entry(v.vin.clone()).or_default().asleep =
                    state.as_deref() != Some("online");
                v
            })
            .collect())
    }

    async fn charge_state(&self, vin: &str) -> Result<ChargeState, PluginError> {
        let min = Duration::from_secs(self.cfg.min_data_interval_secs);
        let (asleep, fresh) = {
            let st = self.st();
            let car = st.cars.get(vin);
            (
                car.is_some_and(|c| c.asleep),
                car.and_then(|c| c.data.as_ref())
                    .is_some_and(|(_, at)| at.elapsed() < min),
            )
        };
        if fresh && let Some(c) = self.cached(vin, "online") {
            return Ok(c);
        }
        if asleep {
            // Asking whether it is still asleep does not wake it; vehicle_data would fail.
            let b = self
                .call(
                    Target::Fleet,
                    false,
                    &format!("/api/1/vehicles/{vin}"),
                    None,
                    Some(vin),
                )
                .await?;
            let (_, state) = parse::parse_vehicle(&b).map_err(|e| {
                Self::err(
                    ErrorKind::Protocol,
                    format!("GET /api/1/vehicles/{vin}: {e}"),
                )
            })?;
            if state.as_deref() != Some("online") {
                let s = state.unwrap_or_else(|| "asleep".into());
                return Ok(self.cached(vin, &s).unwrap_or(ChargeState {
                    state: Some(s),
                    ..ChargeState::default()
                }));
            }
            self.st().cars.entry(vin.to_string()).or_default().asleep = false;
        }
        let path = format!(
            "/api/1/vehicles/{vin}/vehicle_data?endpoints={}",
            encode(DATA_ENDPOINTS)
        );
        let b = match self
            .call(Target::Fleet, false, &path, None, Some(vin))
            .await
        {
            Ok(b) => b,
            Err(e) if e.context.contains("HTTP 408") => {
                return Ok(self.cached(vin, "asleep").unwrap_or(ChargeState {
                    state: Some("asleep".into()),
                    ..ChargeState::default()
                }));
            }
            Err(e) => return Err(e),
        };
        let mut d = parse::parse_vehicle_data(&b, chrono::Utc::now().timestamp())
            .map_err(|e| Self::err(ErrorKind::Protocol, format!("GET vehicle_data {vin}: {e}")))?;
        let mut st = self.st();
        // No home configured: the first car seen plugged in with a position sets it.
        if st.home.is_none()
            && d.plugged_in == Some(true)
            && let (Some(lat), Some(lon)) = (d.latitude, d.longitude)
        {
            info!(
                latitude = lat,
                longitude = lon,
                "Home set from the first car plugged in"
            );
            st.home = Some(Home {
                latitude: lat,
                longitude: lon,
                radius_m: 3218.0,
            });
        }
        d.at_home = at_home(st.home, &d);
        let car = st.cars.entry(vin.to_string()).or_default();
        car.asleep = false;
        car.wake_wanted = None;
        car.data = Some((d.clone(), Instant::now()));
        Ok(d)
    }

    async fn wake(&self, vin: &str) -> Result<(), PluginError> {
        self.st().cars.entry(vin.to_string()).or_default().asleep = true;
        self.ensure_awake(vin).await
    }
    async fn start(&self, vin: &str) -> Result<(), PluginError> {
        self.command(vin, "charge_start", None).await
    }
    async fn stop(&self, vin: &str) -> Result<(), PluginError> {
        self.command(vin, "charge_stop", None).await
    }
    async fn set_limit(&self, vin: &str, pct: u8) -> Result<(), PluginError> {
        self.command(
            vin,
            "set_charge_limit",
            Some(serde_json::json!({ "percent": pct })),
        )
        .await
    }
    async fn set_amps(&self, vin: &str, amps: u8) -> Result<(), PluginError> {
        let body = serde_json::json!({ "charging_amps": amps });
        self.command(vin, "set_charging_amps", Some(body.clone()))
            .await?;
        // Below 5 A a car takes the value only from a second call (the first sets 5 A: TeslaPy
        // documents it, BLE users see the same).
        if amps < 5 {
            self.command(vin, "set_charging_amps", Some(body)).await?;
        }
        Ok(())
    }

    fn account(&self) -> AccountStatus {
        self.load_once();
        let st = self.st();
        AccountStatus {
            plugin: NAME.into(),
            login_supported: !self.cfg.client_id.is_empty(),
            logged_in: st.tokens.is_some(),
            expires_unix: st.tokens.as_ref().map(|t| t.expires_unix),
            last_error: st.last_error.clone(),
            can_command: self.cfg.proxy_url.is_some(),
        }
    }

    fn login_url(&self, redirect_uri: &str) -> Result<String, PluginError> {
        if self.cfg.client_id.is_empty() {
            return Err(Self::err(
                ErrorKind::Config,
                "set client_id in [vehicle.teslaapi] (your application at developer.tesla.com)",
            ));
        }
        let (verifier, challenge, state) = pkce_pair();
        let url = format!(
            "{}?response_type=code&client_id={}&redirect_uri={}&scope={}&state={}&code_challenge={}&code_challenge_method=S256&prompt_missing_scopes=true",
            self.cfg.authorize_url,
            encode(&self.cfg.client_id),
            encode(redirect_uri),
            encode(&self.cfg.scope),
            encode(&state),
            encode(&challenge),
        );
        self.st().login = Some(Login {
            verifier,
            state,
            redirect_uri: redirect_uri.to_string(),
        });
        Ok(url)
    }

    async fn finish_login(&self, code: &str, state: &str) -> Result<(), PluginError> {
        let login = self.st().login.take();
        let Some(l) = login.filter(|l| l.state == state) else {
            return Err(Self::err(
                ErrorKind::Config,
                "the login's state does not match the one started here: start \"Log in with Tesla\" again",
            ));
        };
        if code.trim().is_empty() {
            return Err(Self::err(ErrorKind::Config, "the login answer has no code"));
        }
        let mut pairs = vec![
            ("grant_type", "authorization_code"),
            ("client_id", self.cfg.client_id.as_str()),
            ("code", code),
            ("code_verifier", l.verifier.as_str()),
            ("redirect_uri", l.redirect_uri.as_str()),
            ("audience", self.base.as_str()),
        ];
        if !self.cfg.client_secret.is_empty() {
            pairs.push(("client_secret", self.cfg.client_secret.expose()));
        }
        let t = self.token_request(form(&pairs), None).await?;
        info!(
            expires_unix = t.expires_unix,
            "Logged in to the Tesla Fleet API"
        );
        Ok(())
    }
}
