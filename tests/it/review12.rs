//! Attacker's review of the operations work (issue 12): each test here
//! failed on the code as merged and guards the fix that followed it.

use http::StatusCode;

use crate::harness::*;

/// `/readyz` is open to anyone who reaches the listener. Probes that
/// overlap a probe in flight must share its answer: answering them "not
/// ready" lets any client who keeps a few requests going make a healthy
/// server fail every health check (`latchkey healthcheck`, a load
/// balancer's, an orchestrator's).
#[tokio::test]
async fn overlapping_readiness_probes_all_answer_ready() {
    let srv = Server::start().await;
    let mut refused = 0;
    let mut answered = 0;
    for _ in 0..8 {
        let calls: Vec<_> = (0..8).map(|_| srv.get("/readyz").send()).collect();
        for r in futures_join(calls).await {
            answered += 1;
            if r.status != StatusCode::OK {
                refused += 1;
            }
        }
    }
    assert_eq!(answered, 64);
    assert_eq!(refused, 0, "a healthy server answered not ready");
}

async fn futures_join<F: std::future::Future + Send + 'static>(calls: Vec<F>) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = calls.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("request task"));
    }
    out
}

/// `recover-admin` takes an account back for the operator, as a manager's
/// password reset does; the provider identities the account trusted must
/// go with it. A link is keyed by the provider's immutable id, not by the
/// email: whoever linked one while holding the account's mailbox would
/// otherwise keep signing in after the recovery, even once the mailbox is
/// back with its owner.
#[tokio::test]
async fn recover_admin_drops_the_provider_identities_the_account_trusted() {
    use crate::external::{GOOGLE_TOKEN, StandIn, google, google_info};
    use latchkey::control::{self, Request};

    let provider = StandIn::start().await;
    let srv = Server::start_with(provider.layer()).await;
    // Someone holding a Google identity for the admin's email signs in:
    // the identity is linked to the admin account.
    provider.answer(crate::external::Answer::Json(
        200,
        google_info(ADMIN_EMAIL, "s-intruder"),
    ));
    let r = google(&srv, ADMIN_EMAIL, GOOGLE_TOKEN).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let intruder = r.json()["token"].as_str().expect("token").to_string();
    assert_eq!(srv.me_status(&intruder).await, StatusCode::OK);

    // The operator recovers the admin through the running server's
    // control socket.
    let reply = control::call(
        &srv.data_dir(),
        &Request::RecoverAdmin {
            username: Some(ADMIN.into()),
        },
    )
    .await
    .unwrap_or_else(|_| panic!("recover-admin over the control socket"));
    let password = reply.answer.password.expect("a new password");
    assert_eq!(reply.answer.sessions_ended, Some(1));
    assert_eq!(srv.me_status(&intruder).await, StatusCode::UNAUTHORIZED);

    // The mailbox is back with its owner; the intruder's Google identity
    // (the same immutable id) now carries the intruder's own address, and
    // no longer opens the account ...
    provider.answer(crate::external::Answer::Json(
        200,
        google_info("intruder@example.net", "s-intruder"),
    ));
    let r = google(&srv, "intruder@example.net", GOOGLE_TOKEN).await;
    assert_ne!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.json().get("token").is_none(), "{}", r.text());
    // ... while the recovered password does, and the audit log names the
    // identity that was let go.
    let admin = srv.token_of(ADMIN, &password).await;
    let unlinked: Vec<_> = srv
        .audit(&admin)
        .await
        .into_iter()
        .filter(|e| e["event"] == "external_unlinked")
        .collect();
    assert_eq!(unlinked.len(), 1, "{unlinked:?}");
    assert!(
        unlinked[0].to_string().contains("s-intruder"),
        "{unlinked:?}"
    );
}
