//! Refresh tokens, in-process on `Core` with the manual clock: each
//! refresh rotates the token, a rotated token presented again ends the
//! whole session (RFC 9700 section 4.14) and nothing else, and a refresh
//! token lives exactly its lifetime.

use latchkey::config::Layer;
use latchkey::domain::sessions::Issued;

use crate::domain_calls::{Domain, outcome};
use crate::harness::{ADMIN, ADMIN_PASSWORD, limits};

const REFRESH_TTL: u64 = 600;

async fn domain() -> Domain {
    Domain::start(Layer {
        access_ttl: Some(60),
        refresh_ttl: Some(REFRESH_TTL),
        session_ttl: Some(3600),
        ..limits(1_000_000, 1_000_000)
    })
    .await
}

fn refresh_token(issued: &Issued) -> String {
    issued.refresh_token.clone().expect("a refresh token")
}

fn access_token(issued: &Issued) -> String {
    issued.access_token.clone().expect("an access token")
}

async fn signed_in(d: &Domain) -> Issued {
    d.sign_in(ADMIN, ADMIN_PASSWORD).await.expect("sign-in")
}

#[tokio::test]
async fn each_refresh_rotates_the_token_within_one_session() {
    let d = domain().await;
    let first = signed_in(&d).await;
    let mut current = first.clone();
    for _ in 0..3 {
        let next = d.refresh(&refresh_token(&current)).await.expect("refresh");
        assert_eq!(next.session.id, first.session.id, "the same session");
        assert_ne!(refresh_token(&next), refresh_token(&current), "a new token");
        assert_ne!(access_token(&next), access_token(&current));
        assert!(d.authenticate(&access_token(&next)).is_ok());
        current = next;
    }
}

#[tokio::test]
async fn a_replayed_token_ends_the_family_and_only_it() {
    let d = domain().await;
    let other = signed_in(&d).await;
    let first = signed_in(&d).await;
    let second = d.refresh(&refresh_token(&first)).await.expect("refresh");
    let third = d.refresh(&refresh_token(&second)).await.expect("refresh");
    // Either rotated token, presented again, is reuse.
    assert_eq!(
        outcome(&d.refresh(&refresh_token(&first)).await),
        "InvalidRefresh"
    );
    // The whole family is over: the newest refresh token and the access
    // tokens of the session.
    assert_eq!(
        outcome(&d.refresh(&refresh_token(&third)).await),
        "InvalidRefresh"
    );
    for issued in [&first, &second, &third] {
        assert_eq!(
            outcome(&d.authenticate(&access_token(issued))),
            "Unauthenticated"
        );
    }
    // Another session of the same account is not.
    assert!(d.authenticate(&access_token(&other)).is_ok());
    assert!(d.refresh(&refresh_token(&other)).await.is_ok());
}

#[tokio::test]
async fn the_older_of_two_rotations_replayed_is_reuse_too() {
    let d = domain().await;
    let first = signed_in(&d).await;
    let second = d.refresh(&refresh_token(&first)).await.expect("refresh");
    d.refresh(&refresh_token(&second)).await.expect("refresh");
    assert_eq!(
        outcome(&d.refresh(&refresh_token(&second)).await),
        "InvalidRefresh"
    );
    assert_eq!(
        outcome(&d.authenticate(&access_token(&second))),
        "Unauthenticated"
    );
}

#[tokio::test]
async fn two_refreshes_racing_with_one_token_cannot_both_win() {
    let d = domain().await;
    let first = signed_in(&d).await;
    let token = refresh_token(&first);
    let (a, b) = tokio::join!(d.refresh(&token), d.refresh(&token));
    let won: Vec<_> = [a, b].into_iter().filter_map(Result::ok).collect();
    assert_eq!(won.len(), 1, "exactly one rotation");
    // The loser presented a rotated token: the session is over.
    assert_eq!(
        outcome(&d.refresh(&refresh_token(&won[0])).await),
        "InvalidRefresh"
    );
}

#[tokio::test]
async fn a_refresh_token_lives_exactly_its_lifetime() {
    let d = domain().await;
    let early = signed_in(&d).await;
    let late = signed_in(&d).await;
    d.advance(REFRESH_TTL - 1);
    assert!(
        d.refresh(&refresh_token(&early)).await.is_ok(),
        "a second before"
    );
    d.advance(1);
    assert_eq!(
        outcome(&d.refresh(&refresh_token(&late)).await),
        "InvalidRefresh"
    );
}

#[tokio::test]
async fn what_is_not_a_live_refresh_token_is_refused() {
    let d = domain().await;
    let issued = signed_in(&d).await;
    for token in [
        access_token(&issued),
        String::new(),
        "lk_rt_".into(),
        "lk_rt_not-a-token-we-issued".into(),
        format!("lk_rt_{}", "a".repeat(300)),
    ] {
        assert_eq!(
            outcome(&d.refresh(&token).await),
            "InvalidRefresh",
            "{token:.20}"
        );
    }
    // None of them was reuse: the session's own token still works.
    assert!(d.refresh(&refresh_token(&issued)).await.is_ok());
}
