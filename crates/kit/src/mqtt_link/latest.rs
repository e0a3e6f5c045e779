//! The latest message per topic over a [`Link`], for push sources (the EMS MQTT source).
//!
//! The arrival time is kept with the message: reading the same message again does not make it
//! younger. A retained message, which the broker hands out at subscribe time, may be hours old;
//! it is marked [`Message::retained`] so that the source can treat its age as unknown. When the
//! retained copy after a reconnect repeats the payload already held, the held message (with its
//! known arrival time) is kept.

use super::{Link, LinkEvent, LinkSettings, Prepared, prepare};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use twc_core::plugin::BuildError;

/// The latest message on one topic.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Raw payload.
    pub payload: Bytes,
    /// When it arrived, on tokio's clock.
    pub arrived: Instant,
    /// The broker delivered a stored (retained) copy at subscribe time: it was published at some
    /// unknown earlier time, so `arrived` says nothing about when it was measured.
    pub retained: bool,
}

type Latest = Arc<Mutex<HashMap<String, Message>>>;

struct Running {
    link: Link,
    task: JoinHandle<()>,
}

/// A subscription to exact topics that keeps the latest message of each. Build it synchronously
/// (config time); the [`Link`] starts on first use, inside the runtime, and stops when this is
/// dropped. TLS, v5, reconnects with backoff and resubscribing are the link's.
pub struct Subscription {
    prepared: Prepared,
    latest: Latest,
    running: Mutex<Option<Running>>,
}

impl Subscription {
    /// Check `settings` (whose `subscriptions` must be non-empty exact topics, no wildcards) and
    /// prepare the link. `plugin` names it in logs.
    pub fn new(plugin: &str, section: &str, settings: LinkSettings) -> Result<Self, BuildError> {
        if settings.subscriptions.is_empty() {
            return Err(BuildError::new(section, "no topic to subscribe to"));
        }
        for t in &settings.subscriptions {
            if t.is_empty() || t.contains(['+', '#']) {
                return Err(BuildError::new(
                    section,
                    format!("topic {t:?} must be a non-empty exact topic without wildcards"),
                ));
            }
        }
        Ok(Subscription {
            prepared: prepare(plugin, section, settings)?,
            latest: Arc::default(),
            running: Mutex::new(None),
        })
    }

    /// Start the link if it is not running yet. Must be called inside a tokio runtime.
    pub fn ensure_started(&self) {
        let Ok(mut running) = self.running.lock() else {
            return;
        };
        if running.is_some() {
            return;
        }
        let (link, mut events) = Link::start(self.prepared.clone());
        let latest = self.latest.clone();
        let task = twc_core::plugin::spawn(async move {
            while let Some(ev) = events.recv().await {
                if let LinkEvent::Message {
                    topic,
                    payload,
                    retain,
                } = ev
                {
                    keep(&latest, topic, payload, retain);
                }
            }
        });
        *running = Some(Running { link, task });
    }

    /// The latest message on `topic`, if any arrived since start. Starts the link.
    pub fn latest(&self, topic: &str) -> Option<Message> {
        self.ensure_started();
        self.latest.lock().ok()?.get(topic).cloned()
    }

    /// The running link (after the first [`Subscription::latest`] or
    /// [`Subscription::ensure_started`]).
    pub fn link(&self) -> Option<Link> {
        Some(self.running.lock().ok()?.as_ref()?.link.clone())
    }

    /// True while connected to the broker.
    pub fn is_connected(&self) -> bool {
        self.link().is_some_and(|l| l.is_connected())
    }

    /// Why the last connection attempt failed, while not connected.
    pub fn last_error(&self) -> Option<String> {
        self.link()?.last_error()
    }

    /// The prepared connection (address, TLS, settings).
    pub fn prepared(&self) -> &Prepared {
        &self.prepared
    }
}

/// Store a message unless it is the retained copy, resent after a reconnect, of what we hold:
/// then keep what we hold, whose age we know.
fn keep(latest: &Latest, topic: String, payload: Bytes, retained: bool) {
    let Ok(mut m) = latest.lock() else { return };
    let repeat = retained && m.get(&topic).is_some_and(|old| old.payload == payload);
    if !repeat {
        m.insert(
            topic,
            Message {
                payload,
                arrived: Instant::now(),
                retained,
            },
        );
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // Dropping the link ends its task; the reader ends with the link's event channel, but
        // is stopped here at once.
        if let Ok(mut r) = self.running.lock()
            && let Some(r) = r.take()
        {
            r.task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_and_empty_topic_lists_are_refused() {
        let with = |topics: &[&str]| {
            let mut s = LinkSettings::new("mqtt://127.0.0.1:1883", "c");
            s.subscriptions = topics.iter().map(|t| t.to_string()).collect();
            Subscription::new("ems.mqtt", "ems.mqtt", s)
        };
        assert!(with(&["a/#"]).is_err());
        assert!(with(&["a/+/b"]).is_err());
        assert!(with(&[""]).is_err());
        assert!(with(&[]).is_err());
        assert!(with(&["a/b"]).is_ok());
    }

    #[tokio::test]
    async fn a_retained_repeat_keeps_the_known_arrival() {
        let latest = Latest::default();
        keep(&latest, "t".into(), Bytes::from_static(b"1"), false);
        let first = latest.lock().unwrap()["t"].clone();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        keep(&latest, "t".into(), Bytes::from_static(b"1"), true);
        assert_eq!(latest.lock().unwrap()["t"], first);
        keep(&latest, "t".into(), Bytes::from_static(b"2"), true);
        let m = latest.lock().unwrap()["t"].clone();
        assert!(m.retained && m.arrived > first.arrived);
    }
}
