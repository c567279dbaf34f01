//! The lockout arithmetic, in-process on `Core` with the manual clock:
//! the threshold, the length of the lock to the second, what clears and
//! what restarts the count, and that the count follows the account
//! whatever spelling of it is typed. Every attempt is also counted as
//! hashes run, since a lock that skipped the hash would tell an attacker
//! which accounts exist.

use latchkey::config::Layer;

use crate::domain_calls::{Domain, outcome};
use crate::harness::{PASSWORD, limits};

const WRONG: &str = "not the password";

/// A server that locks after `threshold` failures for `seconds`, with
/// rate limits out of the way, and the accounts `alice` and `bob`.
async fn locking(threshold: u32, seconds: u64) -> Domain {
    let d = Domain::start(Layer {
        lockout_threshold: Some(threshold),
        lockout_seconds: Some(seconds),
        ..limits(1_000_000, 1_000_000)
    })
    .await;
    let admin = d.srv.admin_token().await;
    for name in ["alice", "bob"] {
        d.srv.create_user(&admin, name, PASSWORD, &["user"]).await;
    }
    d
}

/// Tries `password` as `who` and returns the outcome's short name,
/// asserting that the attempt ran exactly one hash.
async fn attempt(d: &Domain, who: &str, password: &str) -> String {
    let before = d.srv.running().hash_verifications();
    let result = d.check(who, password).await;
    assert_eq!(
        d.srv.running().hash_verifications(),
        before + 1,
        "{who}: one hash per attempt, locked or not"
    );
    outcome(&result)
}

/// One failure fewer than `threshold` for `alice`, each refused as a
/// failure, then her right password, accepted: no lock yet.
async fn short_of_the_threshold(d: &Domain, threshold: u32, case: &str) {
    for _ in 1..threshold {
        assert_eq!(
            attempt(d, "alice", WRONG).await,
            "InvalidCredentials",
            "{case}"
        );
    }
    assert_eq!(attempt(d, "alice", PASSWORD).await, "ok", "{case}");
}

/// The whole cycle for one setting: below the threshold nothing locks;
/// the threshold-th failure locks for exactly `seconds`, refusing even
/// the right password with the seconds left; at exactly `seconds` the
/// right password works again, and the count has started afresh.
async fn check_cycle(threshold: u32, seconds: u64) {
    let d = locking(threshold, seconds).await;
    let case = format!("threshold {threshold}, {seconds} s");
    short_of_the_threshold(&d, threshold, &format!("{case}: below the threshold")).await;
    for n in 1..=threshold {
        // The failure that locks is answered as any failure is.
        assert_eq!(
            attempt(&d, "alice", WRONG).await,
            "InvalidCredentials",
            "{case}: failure {n}"
        );
    }
    assert_eq!(
        attempt(&d, "alice", PASSWORD).await,
        format!("locked {seconds}"),
        "{case}"
    );
    assert_eq!(
        attempt(&d, "alice", WRONG).await,
        format!("locked {seconds}"),
        "{case}"
    );
    // The other account is not touched.
    assert_eq!(attempt(&d, "bob", PASSWORD).await, "ok", "{case}");
    d.advance(seconds - 1);
    assert_eq!(
        attempt(&d, "alice", PASSWORD).await,
        "locked 1",
        "{case}: a second left"
    );
    d.advance(1);
    assert_eq!(
        attempt(&d, "alice", PASSWORD).await,
        "ok",
        "{case}: at exactly {seconds} s"
    );
    // Unlocked, and counting from nothing again.
    short_of_the_threshold(&d, threshold, &format!("{case}: a fresh count")).await;
}

#[tokio::test]
async fn the_threshold_locks_for_exactly_the_lockout_seconds() {
    for (threshold, seconds) in [(1, 1), (2, 7), (3, 60), (5, 3600)] {
        check_cycle(threshold, seconds).await;
    }
}

#[tokio::test]
async fn a_success_clears_the_count() {
    let d = locking(3, 60).await;
    for _ in 0..3 {
        for _ in 0..2 {
            assert_eq!(attempt(&d, "alice", WRONG).await, "InvalidCredentials");
        }
        assert_eq!(attempt(&d, "alice", PASSWORD).await, "ok");
    }
}

/// A server that locks after two failures for 60 s, with `alice` just
/// locked.
async fn alice_locked() -> Domain {
    let d = locking(2, 60).await;
    for _ in 0..2 {
        attempt(&d, "alice", WRONG).await;
    }
    d
}

#[tokio::test]
async fn attempts_during_a_lock_neither_extend_it_nor_count() {
    let d = alice_locked().await;
    d.advance(30);
    for _ in 0..5 {
        assert_eq!(attempt(&d, "alice", WRONG).await, "locked 30");
    }
    d.advance(30);
    // Had the five counted, the lock would start again here.
    assert_eq!(attempt(&d, "alice", WRONG).await, "InvalidCredentials");
    assert_eq!(attempt(&d, "alice", PASSWORD).await, "ok");
}

#[tokio::test]
async fn a_lock_that_ran_out_starts_a_fresh_count() {
    let d = alice_locked().await;
    d.advance(60);
    // One failure after the lock is the first of a new count, not the
    // third of the old one.
    assert_eq!(attempt(&d, "alice", WRONG).await, "InvalidCredentials");
    assert_eq!(attempt(&d, "alice", PASSWORD).await, "ok");
}

#[tokio::test]
async fn every_spelling_of_an_account_counts_toward_one_lock() {
    let d = locking(3, 60).await;
    for spelling in ["alice", "ALICE", "Alice@Example.com"] {
        assert_eq!(
            attempt(&d, spelling, WRONG).await,
            "InvalidCredentials",
            "{spelling}"
        );
    }
    for spelling in ["alice", "alice@example.com", "ALICE@EXAMPLE.COM"] {
        assert_eq!(
            attempt(&d, spelling, PASSWORD).await,
            "locked 60",
            "{spelling}"
        );
    }
    assert_eq!(attempt(&d, "bob@example.com", PASSWORD).await, "ok");
}

#[tokio::test]
async fn an_unknown_identifier_locks_like_an_account() {
    let d = locking(3, 60).await;
    for _ in 0..3 {
        assert_eq!(attempt(&d, "ghost", WRONG).await, "InvalidCredentials");
    }
    // Locked as an account would be: the answer does not tell that no
    // account is called `ghost`.
    assert_eq!(attempt(&d, "ghost", WRONG).await, "locked 60");
    assert_eq!(
        attempt(&d, "GHOST", WRONG).await,
        "locked 60",
        "its lookup form"
    );
    assert_eq!(attempt(&d, "ghost2", WRONG).await, "InvalidCredentials");
    d.advance(60);
    assert_eq!(attempt(&d, "ghost", WRONG).await, "InvalidCredentials");
}
