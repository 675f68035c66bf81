//! The `recrawl*` keys, checked into a [`Recrawl`] run and a
//! [`RecrawlPolicy`].

use std::time::Duration;

use super::validate::InvalidSetting;
use super::EngineConfig;
use crate::state::RecrawlPolicy;

/// A recrawl run (`--recrawl`).
#[derive(Debug, Clone, PartialEq)]
pub struct Recrawl {
    /// Every known URL is due (`recrawl_now`).
    pub all: bool,
    /// Keep running, a round at most this far apart (`recrawl_every`).
    pub every: Option<Duration>,
}

impl EngineConfig {
    /// The recrawl run (needs `state_dir`) and the interval policy.
    pub(super) fn recrawl_settings(
        &self,
    ) -> Result<(Option<Recrawl>, RecrawlPolicy), InvalidSetting> {
        let bad = |key: &'static str, reason: String| InvalidSetting { key, reason };
        let every = match self.recrawl_every.trim() {
            "" => None,
            text => Some(parse_duration(text).ok_or_else(|| {
                bad(
                    "recrawl_every",
                    format!("{text:?} is not a duration (write e.g. 90s, 10m, 1h, 1d)"),
                )
            })?),
        };
        let recrawl = (self.recrawl || every.is_some()).then_some(Recrawl {
            all: self.recrawl_now,
            every,
        });
        if recrawl.is_some() && self.state_dir.trim().is_empty() {
            return Err(bad(
                "recrawl",
                "needs state_dir: the crawl to recrawl is kept there".into(),
            ));
        }
        if self.recrawl_min_interval_s == 0 {
            return Err(bad("recrawl_min_interval_s", "must be at least 1".into()));
        }
        if self.recrawl_max_interval_s < self.recrawl_min_interval_s {
            return Err(bad(
                "recrawl_max_interval_s",
                "must be at least recrawl_min_interval_s".into(),
            ));
        }
        let factor = |key, v: f64, below_one: bool| {
            let ok = v.is_finite() && v > 0.0 && ((v < 1.0) == below_one || v == 1.0);
            if ok {
                Ok(v)
            } else if below_one {
                Err(bad(key, format!("{v} must be in (0, 1]")))
            } else {
                Err(bad(key, format!("{v} must be at least 1")))
            }
        };
        let policy = RecrawlPolicy {
            min: Duration::from_secs(self.recrawl_min_interval_s),
            max: Duration::from_secs(self.recrawl_max_interval_s),
            default: Duration::from_secs(self.recrawl_default_interval_s),
            changed_factor: factor("recrawl_changed_factor", self.recrawl_changed_factor, true)?,
            unchanged_factor: factor(
                "recrawl_unchanged_factor",
                self.recrawl_unchanged_factor,
                false,
            )?,
        };
        Ok((recrawl, policy))
    }
}

/// `90s`, `10m`, `1h`, `2d` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (num, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    (secs > 0).then(|| Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Durations as `recrawl_every` takes them; junk and zero are refused.
    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2d"), Some(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("45"), Some(Duration::from_secs(45)));
        for bad in ["", "0m", "m", "1w", "-1h", "1.5h"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    /// A recrawl without a state dir, or with bounds the wrong way round,
    /// is refused naming its key.
    #[test]
    fn recrawl_keys_are_checked() {
        let base = EngineConfig {
            seeds: vec!["http://a.test/".into()],
            ..EngineConfig::default()
        };
        let err = EngineConfig {
            recrawl: true,
            ..base.clone()
        }
        .validate()
        .unwrap_err();
        assert_eq!(err.key, "recrawl");
        let err = EngineConfig {
            recrawl_max_interval_s: 10,
            ..base.clone()
        }
        .validate()
        .unwrap_err();
        assert_eq!(err.key, "recrawl_max_interval_s");
        let err = EngineConfig {
            recrawl_changed_factor: 2.0,
            ..base.clone()
        }
        .validate()
        .unwrap_err();
        assert_eq!(err.key, "recrawl_changed_factor");
        let s = EngineConfig {
            state_dir: "/tmp/x".into(),
            recrawl_every: "10m".into(),
            ..base
        }
        .validate()
        .unwrap();
        assert_eq!(
            s.recrawl,
            Some(Recrawl {
                all: false,
                every: Some(Duration::from_secs(600))
            })
        );
    }
}
