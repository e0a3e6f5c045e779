use crate::ParseError;
use crate::http::{HttpClient, Request};
use async_trait::async_trait;
use twc_core::model::EnergyReading;
use twc_core::plugin::{EmsSource, PluginError};

type ParseFn = dyn Fn(&[u8]) -> Result<EnergyReading, ParseError> + Send + Sync;

/// The whole of a one-request HTTP source: send `request`, parse the body with `parse`, stamp the
/// reading with the time the response arrived. A failure is an error, never a 0 W reading.
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
        let arrived = tokio::time::Instant::now();
        let mut r = (self.parse)(&body)
            .map_err(|e| e.into_plugin(self.client.plugin(), &self.request.describe()))?;
        r.measured_at = arrived;
        Ok(r)
    }
}
