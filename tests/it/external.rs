//! Sign-in with a Google or Microsoft access token, against a stand-in
//! provider on loopback: HTTPS with a certificate from a CA made in the
//! test and trusted through the extra-CA setting, answering in the shapes
//! Google's tokeninfo and Microsoft Graph's /me document.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use latchkey::config::Layer;
use serde_json::{Value, json};

use crate::harness::*;

pub(crate) const GOOGLE_CLIENT: &str = "our-google-client.apps.googleusercontent.com";
pub(crate) const MS_APP: &str = "11111111-2222-3333-4444-555555555555";
/// The Entra tenant whose users may sign in.
pub(crate) const MS_TENANT: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
pub(crate) const GOOGLE_TOKEN: &str = "ya29.a0AfB_byC-secret-google-token";

/// What the stand-in answers next.
#[derive(Clone)]
pub(crate) enum Answer {
    Json(u16, Value),
    Slow(Duration),
    Redirect,
    Garbage,
    Oversized,
}

/// One request the stand-in saw.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    method: String,
    path_and_query: String,
    authorization: Option<String>,
    body: String,
}

/// The stand-in provider.
pub(crate) struct StandIn {
    pub(crate) url: String,
    pub(crate) ca_file: std::path::PathBuf,
    answer: Arc<Mutex<Answer>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    _dir: tempfile::TempDir,
}

impl StandIn {
    pub(crate) async fn start() -> StandIn {
        let dir = tempfile::tempdir().unwrap();
        let pki = TestPki::new(dir.path());
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, &pki.ca_pem).unwrap();
        let (config, _) = latchkey::server::tls::server_config(&pki.cert, &pki.key).unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "https://127.0.0.1:{}",
            listener.local_addr().unwrap().port()
        );
        let answer = Arc::new(Mutex::new(Answer::Json(200, json!({}))));
        let seen = Arc::new(Mutex::new(Vec::new()));
        {
            let (answer, seen) = (answer.clone(), seen.clone());
            tokio::spawn(async move {
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        return;
                    };
                    let acceptor = acceptor.clone();
                    let (answer, seen) = (answer.clone(), seen.clone());
                    tokio::spawn(async move {
                        let Ok(tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                            let (answer, seen) = (answer.clone(), seen.clone());
                            async move {
                                Ok::<_, std::convert::Infallible>(respond(req, answer, seen).await)
                            }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(tls), service)
                            .await;
                    });
                }
            });
        }
        StandIn {
            url,
            ca_file,
            answer,
            seen,
            _dir: dir,
        }
    }

    pub(crate) fn answer(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Settings for a server that uses this stand-in for both providers.
    pub(crate) fn layer(&self) -> Layer {
        Layer {
            google_client_ids: Some(vec![GOOGLE_CLIENT.into()]),
            microsoft_client_ids: Some(vec![MS_APP.into()]),
            microsoft_tenant_ids: Some(vec![MS_TENANT.into()]),
            google_tokeninfo_url: Some(format!("{}/tokeninfo", self.url)),
            microsoft_userinfo_url: Some(format!("{}/v1.0/me", self.url)),
            provider_ca_files: Some(vec![self.ca_file.clone()]),
            provider_timeout: Some(1),
            ..Default::default()
        }
    }
}

async fn respond(
    req: Request<Incoming>,
    answer: Arc<Mutex<Answer>>,
    seen: Arc<Mutex<Vec<Seen>>>,
) -> Response<Full<Bytes>> {
    let method = req.method().to_string();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let authorization = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    seen.lock().unwrap().push(Seen {
        method,
        path_and_query,
        authorization,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let current = answer.lock().unwrap().clone();
    let (status, body, location) = match current {
        Answer::Json(status, value) => (status, value.to_string(), None),
        Answer::Slow(delay) => {
            tokio::time::sleep(delay).await;
            (200, "{}".to_string(), None)
        }
        Answer::Redirect => (302, String::new(), Some("https://127.0.0.1:1/elsewhere")),
        Answer::Garbage => (200, "<html>not json".to_string(), None),
        Answer::Oversized => (
            200,
            format!("{{\"pad\":\"{}\"}}", "x".repeat(200_000)),
            None,
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    if let Some(l) = location {
        response
            .headers_mut()
            .insert("location", l.parse().unwrap());
    }
    response
}

/// Google tokeninfo's answer for a good token of `email`.
pub(crate) fn google_info(email: &str, sub: &str) -> Value {
    json!({
        "azp": GOOGLE_CLIENT,
        "aud": GOOGLE_CLIENT,
        "sub": sub,
        "scope": "openid https://www.googleapis.com/auth/userinfo.email",
        "exp": "1893456000",
        "expires_in": "3599",
        "email": email,
        "email_verified": "true",
        "access_type": "online",
    })
}

/// Graph /me's answer for `email`.
pub(crate) fn graph_me(email: &str, id: &str) -> Value {
    json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users/$entity",
        "id": id,
        "displayName": "Some One",
        "mail": email,
        "userPrincipalName": email,
    })
}

/// A Graph-shaped access token issued to `app` in the allowed tenant
/// (unsigned here: only Graph could check it, and the stand-in plays Graph).
fn ms_token(app: &str) -> String {
    ms_token_in(app, MS_TENANT)
}

/// A Graph-shaped access token issued to `app` for a user of `tenant`.
pub(crate) fn ms_token_in(app: &str, tenant: &str) -> String {
    use base64::Engine;
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.c2lnbmF0dXJl",
        b64(json!({ "typ": "JWT", "alg": "RS256" })),
        b64(json!({ "aud": "00000003-0000-0000-c000-000000000000", "appid": app, "tid": tenant }))
    )
}

pub(crate) async fn google(srv: &Server, email: &str, token: &str) -> Resp {
    let body = json!({ "email": email, "google_access_token": token });
    srv.post_json("/api/auth/google/token", &body).await
}

pub(crate) async fn microsoft(srv: &Server, email: &str, token: &str) -> Resp {
    let body = json!({ "email": email, "microsoft_access_token": token });
    srv.post_json("/api/auth/microsoft/token", &body).await
}

/// Has the stand-in vouch for `email` as Google subject `sub`, signs in
/// with Google as `email`, asserts it worked, and returns the answer.
pub(crate) async fn google_signs_in(
    provider: &StandIn,
    srv: &Server,
    email: &str,
    sub: &str,
) -> Resp {
    provider.answer(Answer::Json(200, google_info(email, sub)));
    let r = google(srv, email, GOOGLE_TOKEN).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r
}

/// A provider stand-in, a server that trusts it, and the [`World`] on it.
pub(crate) async fn world_with_provider() -> (StandIn, Server, World) {
    let provider = StandIn::start().await;
    let srv = Server::start_with(provider.layer()).await;
    let w = World::build(&srv).await;
    (provider, srv, w)
}

pub(crate) fn assert_refused(r: &Resp) {
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert_eq!(r.json(), json!({ "error": "Invalid email or password." }));
}

#[tokio::test]
async fn google_sign_in_matches_then_is_keyed_by_sub() {
    let provider = StandIn::start().await;
    let srv = Server::start_with(provider.layer()).await;
    provider.answer(Answer::Json(
        200,
        google_info("Admin@Example.com", "google-sub-1"),
    ));
    let r = google(&srv, ADMIN_EMAIL, GOOGLE_TOKEN).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let body = r.json();
    assert_eq!(body["user_id"], 1);
    let token = body["token"].as_str().unwrap();
    let me = srv.me(token).await;
    assert_eq!(me.json()["username"], ADMIN);

    // The token went in a POST body to tokeninfo, never in the URL.
    let seen = provider.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path_and_query, "/tokeninfo");
    assert_eq!(seen[0].body, format!("access_token={GOOGLE_TOKEN}"));

    // Linked now: a different immutable id for the same account is refused,
    // even with a matching, verified email.
    provider.answer(Answer::Json(200, google_info(ADMIN_EMAIL, "google-sub-2")));
    assert_refused(&google(&srv, ADMIN_EMAIL, GOOGLE_TOKEN).await);
    provider.answer(Answer::Json(200, google_info(ADMIN_EMAIL, "google-sub-1")));
    assert_eq!(
        google(&srv, ADMIN_EMAIL, GOOGLE_TOKEN).await.status,
        StatusCode::OK
    );

    // Every attempt is in the audit log with the provider's name.
    let admin = srv.admin_token().await;
    let audit = srv
        .read(&admin, "/api/v1/admin/audit?event=external_login")
        .await;
    let items = audit["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert!(
        items
            .iter()
            .all(|e| e["detail"].as_str().unwrap().starts_with("google"))
    );
    assert_eq!(
        items.iter().filter(|e| e["outcome"] == "failure").count(),
        1
    );
}

#[tokio::test]
async fn google_refuses_what_does_not_check_out() {
    let provider = StandIn::start().await;
    let srv = Server::start_with(provider.layer()).await;
    let mut unverified = google_info(ADMIN_EMAIL, "s");
    unverified["email_verified"] = json!("false");
    let mut foreign = google_info(ADMIN_EMAIL, "s");
    foreign["aud"] = json!("someone-elses-app.apps.googleusercontent.com");
    let mut expired = google_info(ADMIN_EMAIL, "s");
    expired["expires_in"] = json!("0");
    let cases = [
        (
            "email mismatch",
            Answer::Json(200, google_info("other@example.com", "s")),
        ),
        ("unverified email", Answer::Json(200, unverified)),
        ("foreign audience", Answer::Json(200, foreign)),
        ("expired", Answer::Json(200, expired)),
        (
            "provider 401",
            Answer::Json(401, json!({ "error": "invalid_token" })),
        ),
        (
            "provider 400",
            Answer::Json(400, json!({ "error_description": "Invalid Value" })),
        ),
    ];
    for (why, answer) in cases {
        provider.answer(answer);
        let r = google(&srv, ADMIN_EMAIL, GOOGLE_TOKEN).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{why}: {}", r.text());
        assert_refused(&r);
    }
}

#[tokio::test]
async fn a_provider_that_misbehaves_gives_5xx_and_no_token() {
    let provider = StandIn::start().await;
    let srv = Server::start_with(Layer {
        lockout_threshold: Some(3),
        rate_login_per_ip: Some(1000),
        rate_login_per_account: Some(1000),
        ..provider.layer()
    })
    .await;
    let cases = [
        (
            "timeout",
            Answer::Slow(Duration::from_secs(3)),
            StatusCode::GATEWAY_TIMEOUT,
        ),
        ("redirect", Answer::Redirect, StatusCode::BAD_GATEWAY),
        ("malformed JSON", Answer::Garbage, StatusCode::BAD_GATEWAY),
        ("oversized body", Answer::Oversized, StatusCode::BAD_GATEWAY),
        (
            "provider error",
            Answer::Json(500, json!({})),
            StatusCode::BAD_GATEWAY,
        ),
        (
            "provider overloaded",
            Answer::Json(503, json!({})),
            StatusCode::SERVICE_UNAVAILABLE,
        ),
    ];
    for (why, answer, status) in cases {
        provider.answer(answer.clone());
        for (route, r) in [
            ("google", google(&srv, ADMIN_EMAIL, GOOGLE_TOKEN).await),
            (
                "microsoft",
                microsoft(&srv, ADMIN_EMAIL, &ms_token(MS_APP)).await,
            ),
        ] {
            assert_eq!(r.status, status, "{route} {why}: {}", r.text());
            let body = r.json();
            assert!(body["error"].is_string(), "{route} {why}");
            assert!(body.get("token").is_none());
        }
    }
    // Six provider failures on each route, threshold three: none counted.
    assert_eq!(
        srv.login(ADMIN_EMAIL, ADMIN_PASSWORD).await["user"]["username"],
        ADMIN
    );
}

#[tokio::test]
async fn a_provider_that_is_down_gives_503() {
    let provider = StandIn::start().await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let srv = Server::start_with(Layer {
        google_tokeninfo_url: Some(format!("https://127.0.0.1:{closed}/tokeninfo")),
        ..provider.layer()
    })
    .await;
    let r = google(&srv, ADMIN_EMAIL, GOOGLE_TOKEN).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
}

#[tokio::test]
async fn a_provider_with_a_certificate_we_do_not_trust_is_unreachable() {
    let provider = StandIn::start().await;
    let srv = Server::start_with(Layer {
        provider_ca_files: None,
        ..provider.layer()
    })
    .await;
    provider.answer(Answer::Json(200, google_info(ADMIN_EMAIL, "s")));
    let r = google(&srv, ADMIN_EMAIL, GOOGLE_TOKEN).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert!(
        provider.seen().is_empty(),
        "no request crossed an untrusted TLS session"
    );
}

#[tokio::test]
async fn microsoft_sign_in_checks_the_app_and_the_mailbox() {
    let provider = StandIn::start().await;
    let srv = Server::start_with(provider.layer()).await;
    provider.answer(Answer::Json(200, graph_me(ADMIN_EMAIL, "graph-id-1")));
    let token = ms_token(MS_APP);
    let r = microsoft(&srv, "ADMIN@example.com", &token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let seen = provider.seen();
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].path_and_query, "/v1.0/me");
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some(format!("Bearer {token}").as_str())
    );

    // A token issued to another app is refused without asking Graph.
    let before = provider.seen().len();
    assert_refused(
        &microsoft(
            &srv,
            ADMIN_EMAIL,
            &ms_token("99999999-0000-0000-0000-000000000000"),
        )
        .await,
    );
    assert_refused(&microsoft(&srv, ADMIN_EMAIL, "not-a-jwt").await);
    assert_eq!(provider.seen().len(), before);

    for (why, answer) in [
        (
            "mail mismatch",
            Answer::Json(200, graph_me("other@example.com", "graph-id-1")),
        ),
        (
            "no mail",
            Answer::Json(
                200,
                json!({ "id": "graph-id-1", "mail": null, "userPrincipalName": ADMIN_EMAIL }),
            ),
        ),
        (
            "graph 401",
            Answer::Json(
                401,
                json!({ "error": { "code": "InvalidAuthenticationToken" } }),
            ),
        ),
        (
            "second immutable id",
            Answer::Json(200, graph_me(ADMIN_EMAIL, "graph-id-2")),
        ),
    ] {
        provider.answer(answer);
        let r = microsoft(&srv, ADMIN_EMAIL, &token).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{why}: {}", r.text());
    }
}

#[tokio::test]
async fn unknown_and_disabled_accounts_get_nothing_unless_creation_is_on() {
    let (provider, srv, w) = world_with_provider().await;
    provider.answer(Answer::Json(
        200,
        google_info("stranger@example.com", "s-stranger"),
    ));
    assert_refused(&google(&srv, "stranger@example.com", GOOGLE_TOKEN).await);

    let admin = w.token("admin").to_string();
    let disable = format!("/api/v1/admin/users/{}/disable", w.get("user1a").id);
    srv.act_as(&admin, &disable).await.assert(StatusCode::OK);
    provider.answer(Answer::Json(
        200,
        google_info("user1a@example.com", "s-user1a"),
    ));
    let r = google(&srv, "user1a@example.com", GOOGLE_TOKEN).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.json().get("token").is_none());

    // With creation on, an unknown verified email gets an account with the
    // configured role and tenant.
    let provider2 = StandIn::start().await;
    let mut srv2 = Server::start_with(provider2.layer()).await;
    World::build(&srv2).await;
    srv2.layer = Layer {
        external_auto_create: Some(true),
        external_default_role: Some("user".into()),
        external_default_merchant_id: Some("mer_1a".into()),
        external_default_reseller_id: Some("res_1".into()),
        ..provider2.layer()
    };
    srv2.restart().await;
    provider2.answer(Answer::Json(
        200,
        google_info("new.person@example.com", "s-new"),
    ));
    let r = google(&srv2, "new.person@example.com", GOOGLE_TOKEN).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let me = srv2
        .read(r.json()["token"].as_str().unwrap(), "/api/v1/auth/me")
        .await;
    assert_eq!(me["email"], "new.person@example.com");
    assert_eq!(me["roles"], json!(["user"]));
    assert_eq!(me["merchant_id"], "mer_1a");
    assert_eq!(me["reseller_id"], "res_1");
}

#[tokio::test]
async fn a_provider_without_client_ids_is_switched_off() {
    let provider = StandIn::start().await;
    let srv = Server::start_with(Layer {
        google_client_ids: None,
        ..provider.layer()
    })
    .await;
    let r = google(&srv, ADMIN_EMAIL, GOOGLE_TOKEN).await;
    r.assert_error(StatusCode::NOT_FOUND, "Google sign-in is not enabled");
    let r = srv
        .post_json(
            "/api/v1/auth/external/google",
            &json!({ "email": ADMIN_EMAIL, "access_token": GOOGLE_TOKEN }),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(provider.seen().is_empty());
    // Microsoft, still configured, answers.
    provider.answer(Answer::Json(200, graph_me(ADMIN_EMAIL, "g")));
    assert_eq!(
        microsoft(&srv, ADMIN_EMAIL, &ms_token(MS_APP)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_canonical_exchange_answers_like_its_login() {
    let provider = StandIn::start().await;
    let srv = Server::start_with(provider.layer()).await;
    provider.answer(Answer::Json(200, google_info(ADMIN_EMAIL, "sub-canonical")));
    let r = srv
        .post_json(
            "/api/v1/auth/external/google",
            &json!({ "email": ADMIN_EMAIL, "access_token": GOOGLE_TOKEN }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let body = r.json();
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["user"]["username"], ADMIN);
    assert!(body["refreshToken"].as_str().unwrap().starts_with("lk_rt_"));
    let r = srv.me(body["token"].as_str().unwrap()).await;
    assert_eq!(r.status, StatusCode::OK);

    provider.answer(Answer::Json(200, google_info("other@example.com", "x")));
    let r = srv
        .post_json(
            "/api/v1/auth/external/google",
            &json!({ "email": ADMIN_EMAIL, "access_token": GOOGLE_TOKEN }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json(), json!({ "error": "Invalid credentials" }));
    let r = srv
        .post_json(
            "/api/v1/auth/external/facebook",
            &json!({ "email": ADMIN_EMAIL, "access_token": GOOGLE_TOKEN }),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json(), json!({ "error": "Unknown identity provider" }));
}

#[tokio::test]
async fn the_login_rate_limits_apply() {
    let provider = StandIn::start().await;
    let srv = Server::start_with(Layer {
        rate_login_per_ip: Some(2),
        ..provider.layer()
    })
    .await;
    provider.answer(Answer::Json(200, google_info(ADMIN_EMAIL, "s")));
    for _ in 0..2 {
        assert_eq!(
            google(&srv, ADMIN_EMAIL, GOOGLE_TOKEN).await.status,
            StatusCode::OK
        );
    }
    let r = google(&srv, ADMIN_EMAIL, GOOGLE_TOKEN).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.header("retry-after").is_some());
    assert_eq!(
        provider.seen().len(),
        2,
        "a limited attempt never reaches the provider"
    );
}

#[tokio::test]
async fn form_parameters_work_as_the_document_shows() {
    let provider = StandIn::start().await;
    let srv = Server::start_with(provider.layer()).await;
    provider.answer(Answer::Json(200, google_info(ADMIN_EMAIL, "s")));
    let r = srv
        .post("/api/auth/google/token")
        .body(
            "application/x-www-form-urlencoded",
            format!("email=admin%40example.com&google_access_token={GOOGLE_TOKEN}"),
        )
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = srv
        .post_json("/api/auth/google/token", &json!({ "email": ADMIN_EMAIL }))
        .await;
    r.assert_error(
        StatusCode::BAD_REQUEST,
        "Missing parameter google_access_token",
    );
}

#[tokio::test]
async fn provider_tokens_never_reach_the_log() {
    let provider = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let tokeninfo = format!("{}/tokeninfo", provider.url);
    let me = format!("{}/v1.0/me", provider.url);
    let ca = provider.ca_file.to_str().unwrap().to_string();
    let ms = ms_token(MS_APP);
    let mut env = proc_env(data.to_str().unwrap());
    env.extend([
        ("LATCHKEY_ADMIN_EMAIL", ADMIN_EMAIL),
        ("LATCHKEY_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("LATCHKEY_LOG", "trace"),
        ("LATCHKEY_GOOGLE_CLIENT_IDS", GOOGLE_CLIENT),
        ("LATCHKEY_MICROSOFT_CLIENT_IDS", MS_APP),
        ("LATCHKEY_MICROSOFT_TENANT_IDS", MS_TENANT),
        ("LATCHKEY_GOOGLE_TOKENINFO_URL", tokeninfo.as_str()),
        ("LATCHKEY_MICROSOFT_USERINFO_URL", me.as_str()),
        ("LATCHKEY_PROVIDER_CA_FILES", ca.as_str()),
    ]);
    let mut p = Proc::spawn(&[], &env);
    provider.answer(Answer::Json(200, google_info(ADMIN_EMAIL, "s")));
    let r = p
        .at()
        .post("/api/auth/google/token")
        .json(&json!({ "email": ADMIN_EMAIL, "google_access_token": GOOGLE_TOKEN }))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let ours = r.json()["token"].as_str().unwrap().to_string();
    provider.answer(Answer::Json(200, graph_me(ADMIN_EMAIL, "g")));
    let r = p
        .at()
        .post("/api/auth/microsoft/token")
        .json(&json!({ "email": ADMIN_EMAIL, "microsoft_access_token": ms }))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK);
    p.signal(libc::SIGTERM);
    p.wait();
    let log = p.stderr();
    assert!(log.contains("/api/auth/google/token"));
    for secret in [GOOGLE_TOKEN, ms.as_str(), &ours] {
        assert!(!log.contains(secret), "a token reached the log");
    }
}
