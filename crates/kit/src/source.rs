//! Ready-made sources: one request ([`HttpSource`]) or one request per quantity ([`ChannelSource`]).

use crate::ParseError;
use crate::http::{HttpClient, Request};
use async_trait::async_trait;
use tokio::time::Instant;
use twc_core::model::{EnergyReading, Quantity};
use twc_core::plugin::{EmsSource, ErrorKind, PluginError};

type ParseFn = dyn Fn(&[u8]) -> Result<EnergyReading, ParseError> + Send + Sync;

/// The whole of a one-request HTTP source: send `request`, parse the body with `parse`, stamp the
/// reading with when it was measured. A failure is an error, never a 0 W reading.
///
/// A parse function that finds a measurement time in the body (a `readingTime`, a `Timestamp`)
/// sets `measured_at` from it with [`crate::timestamp`]; the earlier of that and the time the
/// response arrived is kept, so a reading is never fresher than its answer. A parse function that
/// finds none leaves the default and the reading is as old as the response.
pub struct HttpSource {
    client: HttpClient,
    request: Request,
    parse: Box<ParseFn>,
}

impl HttpSource {
    /// A source that sends `request` with `client` and parses the body with `parse`.
    pub fn new(
        client: HttpClient,
        request: Request,
        parse: impl Fn(&[u8]) -> Result<EnergyReading, ParseError> + Send + Sync + 'static,
    ) -> Self {
        HttpSource {
            client,
            request,
            parse: Box::new(parse),
        }
    }
}

#[async_trait]
impl EmsSource for HttpSource {
    async fn read(&self) -> Result<EnergyReading, PluginError> {
        let body = self.client.send(&self.request).await?.body;
        let arrived = Instant::now();
        let mut r = (self.parse)(&body)
            .map_err(|e| e.into_plugin(self.client.plugin(), &self.request.describe()))?;
        r.measured_at = r.measured_at.min(arrived);
        Ok(r)
    }
}

/// Parses one channel's body into watts.
pub type ValueFn = dyn Fn(&[u8]) -> Result<f64, ParseError> + Send + Sync;

/// Parses one channel's body into watts and, when the body says, when the value was measured.
pub type TimedValueFn = dyn Fn(&[u8]) -> Result<(f64, Option<Instant>), ParseError> + Send + Sync;

/// One quantity read with its own request (Home Assistant entity, openHAB item, URL).
pub struct Channel {
    /// Which quantity the value is.
    pub quantity: Quantity,
    /// The request that fetches it.
    pub request: Request,
    /// Turns the body into watts in our sign convention, with the measurement time if known.
    pub parse: Box<TimedValueFn>,
}

impl Channel {
    /// A channel for `quantity`.
    pub fn new(
        quantity: Quantity,
        request: Request,
        parse: impl Fn(&[u8]) -> Result<f64, ParseError> + Send + Sync + 'static,
    ) -> Self {
        Channel {
            quantity,
            request,
            parse: Box::new(move |b| parse(b).map(|v| (v, None))),
        }
    }

    /// A channel whose body also says when the value was measured (Home Assistant's
    /// `last_updated`, a configured timestamp field). The channel counts as measured at the
    /// earlier of that time and the response's arrival.
    pub fn timed(
        quantity: Quantity,
        request: Request,
        parse: impl Fn(&[u8]) -> Result<(f64, Option<Instant>), ParseError> + Send + Sync + 'static,
    ) -> Self {
        Channel {
            quantity,
            request,
            parse: Box::new(parse),
        }
    }
}

/// A source made of one request per quantity. Every channel must succeed (a partial reading
/// would silently mix old and new values); the reading is as old as its oldest value: each
/// channel counts from its measurement time when the body gives one, else from its response.
pub struct ChannelSource {
    client: HttpClient,
    channels: Vec<Channel>,
}

impl ChannelSource {
    /// A source reading `channels` with `client`.
    pub fn new(client: HttpClient, channels: Vec<Channel>) -> Self {
        ChannelSource { client, channels }
    }
}

/// Put `value` into the field of `r` for quantity `q`.
pub fn set_quantity(r: &mut EnergyReading, q: Quantity, value: f64) {
    match q {
        Quantity::Generation => r.generation_w = Some(value),
        Quantity::Consumption => r.consumption_w = Some(value),
        Quantity::Grid => r.grid_w = Some(value),
        Quantity::Battery => r.battery_w = Some(value),
        #[allow(unreachable_patterns)]
        _ => {}
    }
}

#[async_trait]
impl EmsSource for ChannelSource {
    async fn read(&self) -> Result<EnergyReading, PluginError> {
        let mut r = EnergyReading::default();
        let mut oldest: Option<Instant> = None;
        for ch in &self.channels {
            let (v, at) = self.client.fetch(&ch.request, |b| (ch.parse)(b)).await?;
            let arrived = Instant::now();
            let at = at.map_or(arrived, |t| t.min(arrived));
            oldest = Some(oldest.map_or(at, |o| o.min(at)));
            set_quantity(&mut r, ch.quantity, v);
        }
        if let Some(t) = oldest {
            r.measured_at = t;
        }
        Ok(r)
    }
}

/// A remembered outcome: the reading, or the error's (kind, plugin, context).
type Remembered = Result<EnergyReading, (ErrorKind, String, String)>;

/// Wraps a source whose service limits calls per day (SolarEdge: 300, Enphase cloud): calls the
/// inner source at most once per `min_interval`; in between it returns the last reading with its
/// original `measured_at`, so it keeps ageing, or the last error again.
pub struct MinInterval<S> {
    inner: S,
    min_interval: std::time::Duration,
    last: tokio::sync::Mutex<Option<(Instant, Remembered)>>,
}

impl<S> MinInterval<S> {
    /// Call `inner` at most once per `min_interval`.
    pub fn new(inner: S, min_interval: std::time::Duration) -> Self {
        MinInterval {
            inner,
            min_interval,
            last: tokio::sync::Mutex::new(None),
        }
    }
}

/// The smallest interval that keeps `calls_per_read` requests per read within `calls_per_day`,
/// rounded up to whole seconds.
pub fn min_interval_for(calls_per_day: u32, calls_per_read: u32) -> std::time::Duration {
    let per_day = u64::from(calls_per_day.max(1));
    let secs = (86_400 * u64::from(calls_per_read.max(1))).div_ceil(per_day);
    std::time::Duration::from_secs(secs)
}

#[async_trait]
impl<S: EmsSource> EmsSource for MinInterval<S> {
    async fn read(&self) -> Result<EnergyReading, PluginError> {
        let mut last = self.last.lock().await;
        let now = Instant::now();
        if let Some((at, res)) = last.as_ref()
            && now.saturating_duration_since(*at) < self.min_interval
        {
            return match res {
                Ok(r) => Ok(r.clone()),
                Err((kind, plugin, msg)) => {
                    Err(PluginError::new(*kind, plugin.clone(), msg.clone()))
                }
            };
        }
        let res = self.inner.read().await;
        *last = Some((
            now,
            match &res {
                Ok(r) => Ok(r.clone()),
                Err(e) => Err((e.kind(), e.plugin.clone(), e.context.clone())),
            },
        ));
        res
    }
}
