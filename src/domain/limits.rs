//! Login rate limits: one governor limiter keyed by client address, one
//! keyed by the account identifier tried. Every route that checks a
//! password or exchanges a credential asks [`Limits::check`] before doing
//! any work, so a refused attempt costs no password hash.
//!
//! Each limiter allows `n` attempts at once and `n` a minute after that
//! (GCRA: one attempt's credit comes back every 60/n seconds).
//!
//! What bounds memory: a key's state only matters until its credit has
//! fully come back (at most a minute), and [`Limits::prune`] (run by the
//! housekeeping loop every few seconds) drops every key past that point. So
//! each limiter holds at most the distinct keys seen in the last minute.
//! IPv6 clients are keyed by their /64, so one host cannot mint fresh keys
//! from its own prefix; identifiers only reach their limiter after passing
//! the address limiter, so their number is bounded by addresses times the
//! per-address rate. As a last resort, a limiter that still holds more
//! than [`MAX_KEYS`] after pruning is reset: that costs only the memory of
//! recent attempts (lockout counters live in the store and still apply),
//! and keeps a flood from any number of addresses from growing memory
//! without bound.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::RwLock;

use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use super::Error;
use super::clock::Clock;

/// Most keys one limiter may hold after pruning (about 100 bytes each).
pub const MAX_KEYS: usize = 200_000;

type Keyed<K> = RateLimiter<
    K,
    DefaultKeyedStateStore<K>,
    Clock,
    governor::middleware::NoOpMiddleware<governor::nanos::Nanos>,
>;

/// One keyed limiter that can be reset whole.
struct Limiter<K: std::hash::Hash + Eq + Clone> {
    inner: RwLock<Keyed<K>>,
    /// The quota `inner` was built with; a reload may change it.
    quota: std::sync::Mutex<Quota>,
    clock: Clock,
}

impl<K: std::hash::Hash + Eq + Clone> Limiter<K> {
    fn new(per_minute: u32, clock: &Clock) -> Limiter<K> {
        let quota = quota(per_minute);
        Limiter {
            inner: RwLock::new(RateLimiter::dashmap_with_clock(quota, clock.clone())),
            quota: std::sync::Mutex::new(quota),
            clock: clock.clone(),
        }
    }

    /// Uses a new rate from now on. A governor limiter cannot change its
    /// quota, so a changed rate starts a fresh limiter: that forgets at
    /// most the last minute's attempts (lockout counters live in the
    /// store). An unchanged rate keeps everything.
    fn set_per_minute(&self, per_minute: u32) {
        let quota = quota(per_minute);
        let mut current = self.quota.lock().unwrap_or_else(|e| e.into_inner());
        if *current == quota {
            return;
        }
        if let Ok(mut limiter) = self.inner.write() {
            *limiter = RateLimiter::dashmap_with_clock(quota, self.clock.clone());
            *current = quota;
        }
    }

    /// `Err(seconds to wait)` when over the limit.
    fn check(&self, key: &K) -> Result<(), u64> {
        let Ok(limiter) = self.inner.read() else {
            return Ok(());
        };
        limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(&self.clock));
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }

    fn prune(&self) {
        let over = match self.inner.read() {
            Ok(limiter) => {
                limiter.retain_recent();
                limiter.shrink_to_fit();
                limiter.len() > MAX_KEYS
            }
            Err(_) => true,
        };
        if over {
            tracing::warn!(
                max = MAX_KEYS,
                "a rate limiter outgrew its bound; resetting it"
            );
            let quota = *self.quota.lock().unwrap_or_else(|e| e.into_inner());
            if let Ok(mut limiter) = self.inner.write() {
                *limiter = RateLimiter::dashmap_with_clock(quota, self.clock.clone());
            }
        }
    }

    fn len(&self) -> usize {
        self.inner.read().map(|l| l.len()).unwrap_or(0)
    }
}

/// The login limiters.
pub struct Limits {
    /// Keyed by client address (IPv6 by /64).
    per_ip: Limiter<IpAddr>,
    /// Keyed by the SHA-256 of the normalised identifier, so each key has
    /// a fixed size however long the identifier.
    per_account: Limiter<[u8; 32]>,
}

impl Limits {
    pub fn new(per_ip: u32, per_account: u32, clock: &Clock) -> Limits {
        Limits {
            per_ip: Limiter::new(per_ip, clock),
            per_account: Limiter::new(per_account, clock),
        }
    }

    /// Admits one attempt from `ip` for `identifier` (already normalised),
    /// or says how long to wait. The address is checked first, so a flood
    /// from one address never reaches the identifier limiter.
    pub fn check(&self, ip: IpAddr, identifier: Option<&str>) -> Result<(), Error> {
        self.per_ip
            .check(&address_key(ip))
            .map_err(|s| Error::RateLimited {
                retry_after: s.max(1),
            })?;
        if let Some(id) = identifier {
            self.per_account
                .check(&super::secrets::digest(id.as_bytes()))
                .map_err(|s| Error::RateLimited {
                    retry_after: s.max(1),
                })?;
        }
        Ok(())
    }

    /// Drops state that no longer limits anything.
    pub fn prune(&self) {
        self.per_ip.prune();
        self.per_account.prune();
    }

    /// Keys held: (addresses, identifiers).
    pub fn sizes(&self) -> (usize, usize) {
        (self.per_ip.len(), self.per_account.len())
    }

    /// Applies reloaded rates (attempts a minute per address and per
    /// identifier).
    pub fn set_rates(&self, per_ip: u32, per_account: u32) {
        self.per_ip.set_per_minute(per_ip);
        self.per_account.set_per_minute(per_account);
    }
}

/// `per_minute` attempts at once and `per_minute` a minute after that.
fn quota(per_minute: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN))
}

/// IPv4 addresses as they are; IPv6 addresses by their /64 network. The
/// transport's per-address connection cap counts by the same key.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn trips_at_the_number_and_recovers() {
        let clock = Clock::manual(1_700_000_000);
        let limits = Limits::new(30, 10, &clock);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for i in 0..10 {
            assert!(limits.check(ip, Some("alice")).is_ok(), "attempt {i}");
        }
        let Err(Error::RateLimited { retry_after }) = limits.check(ip, Some("alice")) else {
            panic!("the 11th attempt passed");
        };
        assert_eq!(retry_after, 6);
        // Another identifier from the same address is unaffected.
        assert!(limits.check(ip, Some("bob")).is_ok());
        clock.advance(Duration::from_secs(6));
        assert!(limits.check(ip, Some("alice")).is_ok());
        assert!(limits.check(ip, Some("alice")).is_err());
        clock.advance(Duration::from_secs(60));
        for _ in 0..10 {
            assert!(limits.check(ip, Some("alice")).is_ok());
        }
    }

    #[test]
    fn ipv6_clients_are_limited_by_their_64() {
        let clock = Clock::manual(1_700_000_000);
        let limits = Limits::new(2, 100, &clock);
        assert!(limits.check("2001:db8::1".parse().unwrap(), None).is_ok());
        assert!(limits.check("2001:db8::2".parse().unwrap(), None).is_ok());
        assert!(
            limits
                .check("2001:db8::ffff:3".parse().unwrap(), None)
                .is_err()
        );
        assert!(
            limits
                .check("2001:db8:0:1::1".parse().unwrap(), None)
                .is_ok()
        );
    }

    #[test]
    fn ten_thousand_identifiers_leave_bounded_state() {
        let clock = Clock::manual(1_700_000_000);
        let limits = Limits::new(1_000_000, 10, &clock);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for i in 0..10_000 {
            let _ = limits.check(ip, Some(&format!("user{i}")));
        }
        assert_eq!(limits.sizes().1, 10_000);
        clock.advance(Duration::from_secs(61));
        limits.prune();
        assert_eq!(limits.sizes(), (0, 0));
    }
}
