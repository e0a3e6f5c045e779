//! Status texts formatted once per distinct input: the policy runs several times a second and
//! most of its texts (the surplus, "off: surplus 0.0 A …" all night) only change with a new
//! reading. Float formatting was a tenth of a month-long replay's CPU.

use chrono::{DateTime, FixedOffset, Utc};

/// The last text made and the exact input it was made from (floats as their bits, so an equal
/// key always means the very same text).
#[derive(Debug, Clone)]
pub(crate) struct TextMemo<K> {
    last: Option<(K, String)>,
}

impl<K> Default for TextMemo<K> {
    fn default() -> Self {
        TextMemo { last: None }
    }
}

impl<K: PartialEq> TextMemo<K> {
    /// The text for `key`: the last one when `key` is the same as last time, else `make(&key)`.
    pub(crate) fn text(&mut self, key: K, make: impl FnOnce(&K) -> String) -> String {
        if let Some((k, t)) = &self.last
            && *k == key
        {
            return t.clone();
        }
        let t = make(&key);
        self.last = Some((key, t.clone()));
        t
    }
}

/// A cache is not part of the state: two trackers that differ only in what they last
/// formatted are equal.
impl<K> PartialEq for TextMemo<K> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl super::PolicyEngine {
    /// [`super::local_time`] with `[policy] utc_offset` parsed once per text (the same result).
    pub(super) fn local_time(&mut self, now: DateTime<Utc>) -> DateTime<FixedOffset> {
        let text = &self.cfg.rules.utc_offset;
        if text == "local" {
            return super::local_time(text, now);
        }
        let off = match &self.offset {
            Some((t, off)) if t == text => *off,
            _ => {
                let off = super::parse_offset(text).and_then(FixedOffset::east_opt);
                self.offset = Some((text.clone(), off));
                off
            }
        };
        let off = off.unwrap_or_else(|| FixedOffset::east_opt(0).expect("0 is a valid offset"));
        now.with_timezone(&off)
    }

    /// The reason with the surplus (the closed loop's correction and the drop reserve) added,
    /// formatted again only when one of them changed.
    pub(super) fn surplus_reason(
        &mut self,
        reason: String,
        w: f64,
        a: f64,
        correction: f64,
        drop_reserve: f64,
    ) -> String {
        let key = [
            w.to_bits(),
            a.to_bits(),
            correction.to_bits(),
            drop_reserve.to_bits(),
        ];
        self.surplus_text.text((reason, key), |(base, _)| {
            let mut r = format!("{base}; surplus {w:.0} W = {a:.2} A");
            if correction != 0.0 {
                r = format!("{r}, {correction:+.2} A for the cars drawing under their offer");
            }
            if drop_reserve > 0.0 {
                r = format!("{r}, {drop_reserve:.2} A kept for falls");
            }
            r
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_the_text_again_only_for_a_new_input() {
        let mut m = TextMemo::default();
        let mut made = 0;
        let mut get = |m: &mut TextMemo<u64>, x: f64| {
            m.text(x.to_bits(), |_| {
                made += 1;
                format!("{x:.1}")
            })
        };
        assert_eq!(get(&mut m, 1.5), "1.5");
        assert_eq!(get(&mut m, 1.5), "1.5");
        assert_eq!(get(&mut m, 0.0), "0.0");
        // -0.0 has other bits than 0.0 (and formats as "-0.0"): never the cached text.
        assert_eq!(get(&mut m, -0.0), "-0.0");
        assert_eq!(made, 3);
    }
}
