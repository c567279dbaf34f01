//! The one source of time for the domain.
//!
//! Expiry, lockout windows and rate-limit windows all read this clock, so a
//! test can move time forward instead of sleeping. Production uses the system
//! clock; tests build a manual clock and advance it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A cheap, cloneable handle on the current time.
#[derive(Clone, Debug)]
pub struct Clock {
    /// Which time source this handle reads.
    source: Source,
}

#[derive(Clone, Debug)]
enum Source {
    /// The operating system's wall clock, plus a monotonic origin for
    /// interval measurements (rate limiting must not jump with NTP).
    System { origin: Instant },
    /// Nanoseconds since the Unix epoch, moved only by `advance`; shared by
    /// every clone so the whole server sees one time.
    Manual(Arc<AtomicU64>),
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Clock {
            source: Source::System {
                origin: Instant::now(),
            },
        }
    }

    /// A clock that stands still at `unix_seconds` until advanced.
    pub fn manual(unix_seconds: i64) -> Self {
        let nanos = u64::try_from(unix_seconds.max(0))
            .unwrap_or(0)
            .saturating_mul(1_000_000_000);
        Clock {
            source: Source::Manual(Arc::new(AtomicU64::new(nanos))),
        }
    }

    /// Moves a manual clock forward. Does nothing to the system clock.
    pub fn advance(&self, by: Duration) {
        if let Source::Manual(now) = &self.source {
            let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
            now.fetch_add(by, Ordering::SeqCst);
        }
    }

    /// Whether this is a manual (test) clock.
    pub fn is_manual(&self) -> bool {
        matches!(self.source, Source::Manual(_))
    }

    /// Seconds since the Unix epoch.
    pub fn now(&self) -> i64 {
        match &self.source {
            Source::System { .. } => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
                .unwrap_or(0),
            Source::Manual(now) => {
                i64::try_from(now.load(Ordering::SeqCst) / 1_000_000_000).unwrap_or(i64::MAX)
            }
        }
    }

    /// Nanoseconds on a monotonic scale, for measuring intervals.
    pub fn monotonic_nanos(&self) -> u64 {
        match &self.source {
            Source::System { origin } => {
                u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
            }
            Source::Manual(now) => now.load(Ordering::SeqCst),
        }
    }
}

/// Rate limiters measure intervals on the same clock as everything else.
impl governor::clock::Clock for Clock {
    type Instant = governor::nanos::Nanos;

    fn now(&self) -> Self::Instant {
        self.monotonic_nanos().into()
    }
}

/// Formats Unix seconds as RFC 3339 in UTC (`2024-01-15T10:30:00Z`).
/// Parses an RFC 3339 date and time (any offset) to Unix seconds.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

pub fn rfc3339(unix_seconds: i64) -> String {
    if let Some(bytes) = rfc3339_bytes(unix_seconds) {
        return String::from_utf8_lossy(&bytes).into_owned();
    }
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::from_unix_timestamp(unix_seconds)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
}

/// [`rfc3339`]'s text for the years written with four digits
/// (0000-01-01T00:00:00Z to 9999-12-31T23:59:59Z), its digits written
/// straight into 20 bytes: answers such as `/me` and every access line
/// format one or more, and `format!` with padding, like the `time` crate's
/// formatter, cost a few percent of such a request.
pub fn rfc3339_bytes(unix_seconds: i64) -> Option<[u8; 20]> {
    const FIRST: i64 = -62_167_219_200;
    const LAST: i64 = 253_402_300_799;
    if !(FIRST..=LAST).contains(&unix_seconds) {
        return None;
    }
    let (y, m, d) = civil_from_days(unix_seconds.div_euclid(86_400));
    let of_day = unix_seconds.rem_euclid(86_400);
    let mut out = *b"0000-00-00T00:00:00Z";
    digits(&mut out[0..4], y);
    digits(&mut out[5..7], i64::from(m));
    digits(&mut out[8..10], i64::from(d));
    digits(&mut out[11..13], of_day / 3600);
    digits(&mut out[14..16], of_day % 3600 / 60);
    digits(&mut out[17..19], of_day % 60);
    Some(out)
}

/// Writes `n` (not negative) as decimal digits filling `out`, zero-padded.
pub fn digits(out: &mut [u8], mut n: i64) {
    for place in out.iter_mut().rev() {
        *place = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// The proleptic Gregorian date (year, month, day) of a count of days from
/// 1970-01-01 (Howard Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let clock = Clock::manual(1_700_000_000);
        let other = clock.clone();
        assert_eq!(clock.now(), 1_700_000_000);
        other.advance(Duration::from_secs(90));
        assert_eq!(clock.now(), 1_700_000_090);
    }

    #[test]
    fn rfc3339_is_utc_with_z() {
        assert_eq!(rfc3339(1_705_314_600), "2024-01-15T10:30:00Z");
    }

    #[test]
    fn rfc3339_matches_the_time_crate_over_its_whole_range() {
        let format =
            time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
        let theirs = |at: i64| {
            time::OffsetDateTime::from_unix_timestamp(at)
                .ok()
                .and_then(|t| t.format(&format).ok())
                .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
        };
        // Both ends, beyond them, and a stride that lands on every day of
        // the year and every second of the day over the millennia.
        let mut cases = vec![i64::MIN, i64::MAX, -62_167_219_201, 253_402_300_800];
        cases.extend([
            -62_167_219_200,
            253_402_300_799,
            0,
            -1,
            951_782_400,
            4_107_542_400,
        ]);
        let mut at = -62_167_219_200;
        while at <= 253_402_300_799 {
            cases.push(at);
            at += 86_400 * 13 + 3_607;
        }
        for at in cases {
            assert_eq!(rfc3339(at), theirs(at), "{at}");
        }
    }
}
