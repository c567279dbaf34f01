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
