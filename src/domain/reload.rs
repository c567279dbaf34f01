//! The settings the domain re-reads on SIGHUP without a restart: the login
//! rate limits and the lockout rule. Everything else in [`CoreConfig`]
//! (lifetimes, issuer, hashing parameters, caps) is fixed for the life of
//! the process, because tokens and records already issued depend on it.
//!
//! [`CoreConfig`]: super::CoreConfig

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::Core;

/// The domain's reloadable settings, as the operator wrote them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReloadableSettings {
    /// Login attempts a minute per client address.
    pub rate_login_per_ip: u32,
    /// Login attempts a minute per identifier.
    pub rate_login_per_account: u32,
    /// Consecutive failures that lock an account or identifier.
    pub lockout_threshold: u32,
    /// How long a lock lasts, seconds.
    pub lockout_seconds: u64,
}

/// The lockout rule in force. Read once per refused attempt, so a reload
/// applies to the next failure; locks already written keep the end they
/// were given.
#[derive(Debug)]
pub(crate) struct Lockout {
    /// Consecutive failures that lock.
    threshold: AtomicU32,
    /// Seconds a lock lasts.
    seconds: AtomicU64,
}

impl Lockout {
    /// The rule from the start-up settings.
    pub(crate) fn new(threshold: u32, seconds: u64) -> Lockout {
        Lockout {
            threshold: AtomicU32::new(threshold),
            seconds: AtomicU64::new(seconds),
        }
    }

    /// Consecutive failures that lock.
    pub(crate) fn threshold(&self) -> u32 {
        self.threshold.load(Ordering::Relaxed)
    }

    /// Seconds a lock lasts.
    pub(crate) fn seconds(&self) -> u64 {
        self.seconds.load(Ordering::Relaxed)
    }
}

impl Core {
    /// Applies reloaded settings to the next attempts. Requests in flight
    /// finish under whichever value they read; nothing is written.
    pub fn reload(&self, settings: ReloadableSettings) {
        self.limits
            .set_rates(settings.rate_login_per_ip, settings.rate_login_per_account);
        self.lockout
            .threshold
            .store(settings.lockout_threshold.max(1), Ordering::Relaxed);
        self.lockout
            .seconds
            .store(settings.lockout_seconds.max(1), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use crate::domain::Clock;
    use crate::domain::limits::Limits;

    #[test]
    fn a_lowered_rate_applies_to_the_next_attempt_and_an_unchanged_one_keeps_state() {
        let clock = Clock::manual(1_700_000_000);
        let limits = Limits::new(30, 10, &clock);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            assert!(limits.check(ip, Some("alice")).is_ok());
        }
        // Unchanged: the three attempts still count.
        limits.set_rates(30, 10);
        for _ in 0..7 {
            assert!(limits.check(ip, Some("alice")).is_ok());
        }
        assert!(limits.check(ip, Some("alice")).is_err());
        // Lowered: a fresh limiter with the new quota.
        limits.set_rates(30, 2);
        assert!(limits.check(ip, Some("bob")).is_ok());
        assert!(limits.check(ip, Some("bob")).is_ok());
        assert!(limits.check(ip, Some("bob")).is_err());
    }
}
