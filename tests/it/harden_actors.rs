//! Issue 9, after the attack review: a write is decided on the actor and
//! its target as they are inside the write transaction, not as they were
//! when the request arrived (items 6 and 12); credentials that are not a
//! person's own sign-in cannot mint credentials through an account
//! (item 9); a refused change leaves nothing behind (item 6).

use std::net::{IpAddr, Ipv4Addr};

use http::{Method, StatusCode};
use latchkey::config::Layer;
use latchkey::domain::auth::{CredentialKind, Principal};
use latchkey::domain::keys::NewKey;
use latchkey::domain::s2s::NewS2s;
use latchkey::domain::users::{UserPatch, UserRequest};
use latchkey::domain::{Core, Error};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::harness::*;

const NEW_PASSWORD: &str = "an entirely new password";

/// Hashing slow enough that a request is still hashing while the test
/// changes something under it.
async fn slow_hashing() -> Server {
    Server::start_with(Layer {
        argon2_memory_kib: Some(32 * 1024),
        argon2_iterations: Some(4),
        hash_workers: Some(4),
        ..Layer::default()
    })
    .await
}

/// Issues an S2S token as the admin; returns (token, id).
async fn s2s_token(srv: &Server, admin: &str, name: &str) -> (String, String) {
    let token = srv
        .s2s_secret(
            admin,
            &json!({ "name": name, "role": "reseller", "reseller_id": "res_1" }),
        )
        .await;
    let id = token["s2s_".len().."s2s_".len() + 16].to_string();
    (token, id)
}

/// Every audit event name written with `actor` as the actor.
async fn events_by(srv: &Server, admin: &str, actor: &str) -> Vec<String> {
    srv.items(
        admin,
        &format!("/api/v1/admin/audit?actor={actor}&limit=1000"),
    )
    .await
    .iter()
    .map(|e| e["event"].as_str().unwrap_or_default().to_string())
    .collect()
}

// ---- F1: the target's scope is checked in the write ----

/// A reseller resets the password of an account in its tenant; while the
/// new password hashes, the admin makes that account an admin. The reset
/// must not land: the reseller would then know an admin's password.
#[tokio::test]
async fn a_resellers_reset_does_not_land_on_an_account_promoted_out_of_reach_meanwhile() {
    let srv = slow_hashing().await;
    let world = World::build(&srv).await;
    let admin = world.token("admin").to_string();
    let reseller = world.token("reseller1").to_string();
    let id = srv
        .create_user_with(
            &admin,
            "ops",
            PASSWORD,
            &["user"],
            json!({ "reseller_id": "res_1" }),
        )
        .await;
    srv.until_pool_idle().await;
    let reset = tokio::spawn(
        srv.post(&format!("{USERS}/{id}/password"))
            .bearer(&reseller)
            .json(&json!({ "password": NEW_PASSWORD }))
            .send(),
    );
    srv.until_hashes_in_flight(1).await;
    let r = srv.set_roles(&admin, &id, &["admin"]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let reset = reset.await.expect("reset");
    // Answered as the snapshot check answers an account out of scope.
    assert_eq!(reset.status, StatusCode::NOT_FOUND, "{}", reset.text());
    let login = srv.try_login("ops", NEW_PASSWORD).await;
    assert_eq!(login.status, StatusCode::UNAUTHORIZED, "{}", login.text());
    let login = srv.try_login("ops", PASSWORD).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text());
}

/// A change to an account a manager asked for, on the domain directly.
#[derive(Debug, Clone, Copy)]
enum OnAccount {
    Unlock,
    RevokeSessions,
    DeleteKey,
    SetPassword,
}

impl OnAccount {
    async fn run(self, core: &Core, p: &Principal, id: Uuid, key: &str) -> Result<(), Error> {
        match self {
            OnAccount::Unlock => core.admin_unlock(p, id).await.map(drop),
            OnAccount::RevokeSessions => core.revoke_user_sessions(p, id).await.map(drop),
            OnAccount::DeleteKey => core.admin_delete_user_key(p, id, key).await,
            OnAccount::SetPassword => core.admin_set_password(p, id, NEW_PASSWORD, None).await,
        }
    }
}

/// Every change a reseller makes to an account of its tenant checks the
/// account's place again inside the write. The test holds the store's
/// writer, lets the reseller's request pass its early check and queue for
/// the writer, then (in the held transaction) promotes the account to
/// admin or moves it to another reseller: the request, written after,
/// finds the account out of reach ("not found") and changes nothing.
#[tokio::test]
async fn a_managers_change_lands_only_on_an_account_still_in_its_scope() {
    use std::future::Future;
    use std::task::Poll;

    let srv = Server::start().await;
    let world = World::build(&srv).await;
    let admin = world.token("admin").to_string();
    let core = srv.running().core().clone();
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let reseller = core
        .authenticate(world.token("reseller1"), ip)
        .expect("reseller1");
    let ops = [
        OnAccount::Unlock,
        OnAccount::RevokeSessions,
        OnAccount::DeleteKey,
        OnAccount::SetPassword,
    ];
    // (what, the account's roles after, its reseller after)
    let changes = [
        ("promoted", "admin", None),
        ("moved", "user", Some("res_2")),
    ];
    let mut i = 0;
    for op in ops {
        for (how, role, reseller_after) in changes {
            i += 1;
            let name = format!("ops{i}");
            let id = srv
                .create_user_with(
                    &admin,
                    &name,
                    PASSWORD,
                    &["user"],
                    json!({ "reseller_id": "res_1" }),
                )
                .await;
            let token = srv.token_of(&name, PASSWORD).await;
            let r = srv.post(KEYS).bearer(&token).send().await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
            let key = r.json()["keyId"].as_str().expect("keyId").to_string();
            let id: Uuid = id.parse().expect("uuid");

            // Hold the writer until told to change the account.
            let (held_tx, held) = std::sync::mpsc::channel::<()>();
            let (go, go_rx) = std::sync::mpsc::channel::<()>();
            let store = core.store().clone();
            let holder = std::thread::spawn(move || {
                store.write(|tx| {
                    let _ = held_tx.send(());
                    let _ = go_rx.recv();
                    let before = tx.account(id)?.ok_or(Error::NotFound("user"))?;
                    let mut after = before.clone();
                    after.roles = vec![role.to_string()];
                    after.reseller_id = reseller_after.map(str::to_string);
                    latchkey::domain::accounts::put_checked(tx, &after, Some(&before))
                })
            });
            held.recv().expect("writer held");

            let (c, p) = (core.clone(), reseller.clone());
            let key_id = key.clone();
            let mut request = Box::pin(async move { op.run(&c, &p, id, &key_id).await });
            // One poll: the early checks run and the request then waits,
            // for the hash or for the writer.
            let first = std::future::poll_fn(|cx| Poll::Ready(request.as_mut().poll(cx))).await;
            assert!(first.is_pending(), "{op:?} {how}: {first:?}");
            go.send(()).expect("go");
            holder.join().expect("holder").expect("account changed");
            let result = request.await;
            assert!(
                matches!(result, Err(Error::NotFound("user"))),
                "{op:?} on an account {how} meanwhile: {result:?}"
            );

            // And nothing was done to it.
            let path = format!("{USERS}/{id}");
            let sessions = srv.get_as(&admin, &format!("{path}/sessions")).await;
            assert_eq!(
                sessions.json()["items"].as_array().map(Vec::len),
                Some(1),
                "{op:?} {how}"
            );
            let keys = srv.get_as(&admin, &format!("{path}/keys")).await;
            assert_eq!(
                keys.json()["items"].as_array().map(Vec::len),
                Some(1),
                "{op:?} {how}"
            );
            let login = srv.try_login(&name, PASSWORD).await;
            assert_eq!(
                login.status,
                StatusCode::OK,
                "{op:?} {how}: {}",
                login.text()
            );
            let r = srv
                .get_as(
                    &admin,
                    &format!("/api/v1/admin/audit?target={id}&limit=100"),
                )
                .await;
            let events: Vec<String> = r.json()["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|e| e["event"].as_str().unwrap_or_default().to_string())
                .collect();
            for event in ["unlock", "sessions_revoked", "password_changed"] {
                assert!(
                    !events.iter().any(|e| e == event),
                    "{op:?} {how}: {events:?}"
                );
            }
        }
    }
}

// ---- F2: the actor is checked in the write ----

/// A reseller's account creation hashes the new password between
/// authentication and the write; the admin disables the reseller
/// meanwhile. The disabled reseller must not leave behind a reseller
/// account it can sign in as.
#[tokio::test]
async fn a_disabled_resellers_account_creation_in_flight_is_refused() {
    let srv = slow_hashing().await;
    let world = World::build(&srv).await;
    let admin = world.token("admin").to_string();
    let reseller = world.token("reseller1").to_string();
    let reseller_id = world.get("reseller1").id.clone();
    srv.until_pool_idle().await;
    let create = tokio::spawn(
        srv.post(USERS)
            .bearer(&reseller)
            .json(
                &json!({ "username": "sleeper", "email": "sleeper@example.com",
                           "password": PASSWORD, "roles": ["reseller"], "reseller_id": "res_1" }),
            )
            .send(),
    );
    srv.until_hashes_in_flight(1).await;
    let r = srv
        .act_as(&admin, &format!("{USERS}/{reseller_id}/disable"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let create = create.await.expect("create");
    assert_eq!(create.status, StatusCode::UNAUTHORIZED, "{}", create.text());
    let r = srv.get_as(&admin, &format!("{USERS}?q=sleeper")).await;
    assert_eq!(r.json()["items"], json!([]), "the account was stored");
    let login = srv.try_login("sleeper", PASSWORD).await;
    assert_eq!(login.status, StatusCode::UNAUTHORIZED, "{}", login.text());
}

/// One write a principal can drive, called on the domain directly.
#[derive(Debug, Clone, Copy)]
enum Write {
    CreateUser,
    UpdateUser,
    DisableUser,
    SetPassword,
    Unlock,
    RevokeSessions,
    CreateMerchant,
    UpdateMerchant,
    IssueS2s,
    RevokeS2s,
    CreateKey,
}

impl Write {
    const ALL: [Write; 11] = [
        Write::CreateUser,
        Write::UpdateUser,
        Write::DisableUser,
        Write::SetPassword,
        Write::Unlock,
        Write::RevokeSessions,
        Write::CreateMerchant,
        Write::UpdateMerchant,
        Write::IssueS2s,
        Write::RevokeS2s,
        Write::CreateKey,
    ];

    /// Whether this write makes a credential, which only a person's own
    /// sign-in may do.
    fn mints(self) -> bool {
        matches!(
            self,
            Write::CreateUser | Write::SetPassword | Write::IssueS2s | Write::CreateKey
        )
    }

    /// The audit event a committed write leaves.
    fn event(self) -> &'static str {
        match self {
            Write::CreateUser => "account_created",
            Write::UpdateUser => "account_updated",
            Write::DisableUser => "account_disabled",
            Write::SetPassword => "password_changed",
            Write::Unlock => "unlock",
            Write::RevokeSessions => "sessions_revoked",
            Write::CreateMerchant => "merchant_created",
            Write::UpdateMerchant => "merchant_updated",
            Write::IssueS2s => "s2s_token_created",
            Write::RevokeS2s => "s2s_token_revoked",
            Write::CreateKey => "api_key_created",
        }
    }

    /// Carries the write out as `p`, against `target` (an account in
    /// `mer_1a`) and `s2s` (a token of `res_1`); `n` keeps names apart.
    async fn run(
        self,
        core: &Core,
        p: &Principal,
        target: Uuid,
        s2s: &str,
        n: usize,
    ) -> Result<(), Error> {
        match self {
            Write::CreateUser => core
                .admin_create_user(
                    p,
                    UserRequest {
                        username: format!("made{n}"),
                        email: format!("made{n}@example.com"),
                        password: PASSWORD.into(),
                        roles: vec!["reseller".into()],
                        reseller_id: Some("res_1".into()),
                        ..UserRequest::default()
                    },
                )
                .await
                .map(drop),
            Write::UpdateUser => core
                .admin_update_user(
                    p,
                    target,
                    UserPatch {
                        attributes: Some([("by".to_string(), format!("{n}"))].into()),
                        ..UserPatch::default()
                    },
                )
                .await
                .map(drop),
            Write::DisableUser => core.disable_user(p, target).await.map(drop),
            Write::SetPassword => core.admin_set_password(p, target, NEW_PASSWORD, None).await,
            Write::Unlock => core.admin_unlock(p, target).await.map(drop),
            Write::RevokeSessions => core.revoke_user_sessions(p, target).await.map(drop),
            Write::CreateMerchant => core
                .create_merchant(p, Some(format!("mer_new{n}")), None, "New")
                .await
                .map(drop),
            Write::UpdateMerchant => core
                .update_merchant(p, "mer_1a", &format!("Renamed {n}"))
                .await
                .map(drop),
            Write::IssueS2s => core
                .issue_s2s(
                    p,
                    NewS2s {
                        name: Some(format!("child{n}")),
                        role: Some("reseller".into()),
                        reseller_id: Some("res_1".into()),
                        ..NewS2s::default()
                    },
                )
                .await
                .map(drop),
            Write::RevokeS2s => core.revoke_s2s(p, s2s).await.map(drop),
            Write::CreateKey => core.create_api_key(p, NewKey::default()).await.map(drop),
        }
    }
}

/// How a credential goes stale after it was authenticated.
#[derive(Debug, Clone, Copy)]
enum Stale {
    /// Its account is disabled.
    Disabled,
    /// Its account loses the reseller role.
    Demoted,
    /// Its account moves to another reseller.
    Moved,
    /// Its account's sessions are all revoked.
    SessionsRevoked,
    /// The API key is deleted.
    KeyDeleted,
    /// The S2S token is revoked.
    S2sRevoked,
}

/// A reseller-scoped principal is authenticated, its credential goes stale
/// through the admin API, and then the principal, as authenticated, drives
/// every kind of write on the domain directly: each is refused as
/// unauthenticated (a credential that may not mint is refused that first),
/// and none leaves its audit event or its effect.
#[tokio::test]
async fn every_write_refuses_an_actor_that_went_stale_after_authenticating() {
    let srv = Server::start().await;
    let world = World::build(&srv).await;
    let admin = world.token("admin").to_string();
    let core = srv.running().core().clone();
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let target: Uuid = world.get("user1a").id.parse().expect("uuid");
    let (_, victim_s2s) = s2s_token(&srv, &admin, "victim").await;

    // (credential kind, how it goes stale)
    let cases = [
        (CredentialKind::AccessToken, Stale::Disabled),
        (CredentialKind::AccessToken, Stale::Demoted),
        (CredentialKind::AccessToken, Stale::Moved),
        (CredentialKind::AccessToken, Stale::SessionsRevoked),
        (CredentialKind::OpaqueToken, Stale::Disabled),
        (CredentialKind::OpaqueToken, Stale::SessionsRevoked),
        (CredentialKind::ApiKey, Stale::Disabled),
        (CredentialKind::ApiKey, Stale::KeyDeleted),
        (CredentialKind::S2s, Stale::S2sRevoked),
    ];
    let mut n = 0;
    for (i, (kind, stale)) in cases.into_iter().enumerate() {
        let name = format!("actor{i}");
        let id = srv
            .create_user_with(
                &admin,
                &name,
                PASSWORD,
                &["reseller"],
                json!({ "reseller_id": "res_1" }),
            )
            .await;
        let (bearer, credential, actor) = match kind {
            CredentialKind::AccessToken => (
                srv.token_of(&name, PASSWORD).await,
                String::new(),
                id.clone(),
            ),
            CredentialKind::OpaqueToken => {
                let token = srv
                    .opaque_token(&format!("{name}@example.com"), PASSWORD)
                    .await;
                (token, String::new(), id.clone())
            }
            CredentialKind::ApiKey => {
                let token = srv.token_of(&name, PASSWORD).await;
                let r = srv.post(KEYS).bearer(&token).send().await;
                assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
                let key = r.json()["apiKey"].as_str().expect("apiKey").to_string();
                let key_id = r.json()["keyId"].as_str().expect("keyId").to_string();
                (key, key_id, id.clone())
            }
            CredentialKind::S2s => {
                let (token, s2s_id) = s2s_token(&srv, &admin, &name).await;
                (token, s2s_id.clone(), format!("s2s:{s2s_id}"))
            }
        };
        let principal = core.authenticate(&bearer, ip).expect("authenticates");
        assert_eq!(principal.kind, kind);

        let change = match stale {
            Stale::Disabled => srv.act_as(&admin, &format!("{USERS}/{id}/disable")).await,
            Stale::Demoted => srv.set_roles(&admin, &id, &["user"]).await,
            Stale::Moved => {
                srv.patch_as(
                    &admin,
                    &format!("{USERS}/{id}"),
                    &json!({ "reseller_id": "res_2" }),
                )
                .await
            }
            Stale::SessionsRevoked => {
                srv.delete_as(&admin, &format!("{USERS}/{id}/sessions"))
                    .await
            }
            Stale::KeyDeleted => {
                srv.delete_as(&admin, &format!("{USERS}/{id}/keys/{credential}"))
                    .await
            }
            Stale::S2sRevoked => {
                srv.delete_as(&admin, &format!("/api/v1/admin/s2s-tokens/{credential}"))
                    .await
            }
        };
        assert!(
            change.status.is_success(),
            "{kind:?} {stale:?}: {}",
            change.text()
        );

        let count =
            |events: &[String], write: Write| events.iter().filter(|e| *e == write.event()).count();
        let before = events_by(&srv, &admin, &actor).await;
        for write in Write::ALL {
            n += 1;
            let result = write.run(&core, &principal, target, &victim_s2s, n).await;
            let mints_refused =
                write.mints() && matches!(kind, CredentialKind::ApiKey | CredentialKind::S2s);
            let refused = if mints_refused {
                matches!(result, Err(Error::Forbidden))
            } else {
                matches!(result, Err(Error::Unauthenticated))
            };
            assert!(refused, "{kind:?} {stale:?} {write:?}: {result:?}");
        }
        let events = events_by(&srv, &admin, &actor).await;
        for write in Write::ALL {
            assert_eq!(
                count(&events, write),
                count(&before, write),
                "{kind:?} {stale:?}: {write:?} left its event: {events:?}"
            );
        }
    }

    // Nothing any of them tried took effect.
    let user1a = srv.get_as(&admin, &format!("{USERS}/{target}")).await;
    assert_eq!(user1a.json()["disabled"], json!(false));
    assert_eq!(user1a.json()["attributes"], json!({}));
    let token = world.token("user1a");
    assert_eq!(srv.me(token).await.status, StatusCode::OK);
    let login = srv.try_login("user1a", WORLD_PASSWORD).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text());
    let merchant = srv.get_as(&admin, "/api/v1/admin/merchants/mer_1a").await;
    assert_eq!(merchant.json()["name"], json!("Merchant mer_1a"));
    let merchants = srv
        .get_as(&admin, "/api/v1/admin/merchants?reseller_id=res_1")
        .await;
    assert_eq!(merchants.json()["items"].as_array().map(Vec::len), Some(2));
    let r = srv.get_as(&admin, &format!("{USERS}?q=made")).await;
    assert_eq!(r.json()["items"], json!([]));
    let tokens = srv.get_as(&admin, "/api/v1/admin/s2s-tokens").await;
    let tokens = tokens.json();
    let items = tokens["items"].as_array().expect("items");
    let victim = items
        .iter()
        .find(|t| t["id"] == json!(victim_s2s))
        .expect("victim listed");
    assert!(victim["revoked_at"].is_null(), "{victim}");
    assert!(
        !items
            .iter()
            .any(|t| t["name"].as_str().is_some_and(|n| n.starts_with("child"))),
        "{items:?}"
    );
}

// ---- F5: no credential is minted through an account ----

/// An S2S token with reseller scope creates a reseller account with a
/// password it chose, to sign in as it and issue itself a child token.
#[tokio::test]
async fn an_s2s_token_cannot_breed_through_an_account_it_makes() {
    let srv = Server::start().await;
    let _w = World::build(&srv).await;
    let admin = srv.admin_token().await;
    let (parent, _) = s2s_token(&srv, &admin, "parent").await;
    let r = srv
        .post(USERS)
        .bearer(&parent)
        .json(
            &json!({ "username": "minted", "email": "minted@example.com",
                       "password": PASSWORD, "roles": ["reseller"], "reseller_id": "res_1" }),
        )
        .send()
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert!(r.json()["error"].is_string(), "{}", r.text());
    let login = srv.try_login("minted", PASSWORD).await;
    assert_eq!(login.status, StatusCode::UNAUTHORIZED, "{}", login.text());
}

/// Every credential that is not a person's own sign-in sent in a header
/// (an API key, an S2S token, an opaque token read from `?token=`) is
/// refused the creation of an account and the setting of any password,
/// its own account's included, while a signed-in admin's token in the
/// header does each; nothing the refused ones asked for is stored.
#[tokio::test]
async fn keys_s2s_tokens_and_url_tokens_cannot_create_accounts_or_set_passwords() {
    let srv = Server::start().await;
    let world = World::build(&srv).await;
    let admin = srv.admin_token().await;
    let target = world.get("user1a").id.clone();
    let r = srv.post(KEYS).bearer(&admin).send().await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let key = r.json()["apiKey"].as_str().expect("apiKey").to_string();
    let (s2s, _) = s2s_token(&srv, &admin, "n").await;
    let opaque = srv.opaque_token(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let admin_id = srv.read(&admin, ME).await["id"]
        .as_str()
        .expect("id")
        .to_string();

    // (what, bearer header, query token)
    let refused = [
        ("API key", Some(key.as_str()), None),
        ("S2S token", Some(s2s.as_str()), None),
        ("token from the URL", None, Some(opaque.as_str())),
    ];
    for (i, (what, header, query)) in refused.into_iter().enumerate() {
        let send = |method: Method, path: String, body: Value| {
            let path = match query {
                Some(t) => format!("{path}?token={t}"),
                None => path,
            };
            let mut call = srv.call(method, &path).json(&body);
            if let Some(h) = header {
                call = call.bearer(h);
            }
            call.send()
        };
        let name = format!("bred{i}");
        let r = send(
            Method::POST,
            USERS.to_string(),
            json!({ "username": name, "email": format!("{name}@example.com"),
                    "password": PASSWORD, "roles": ["user"], "reseller_id": "res_1" }),
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "{what} create: {}",
            r.text()
        );
        assert!(r.json()["error"].is_string(), "{what}");
        let mut targets = vec![target.clone()];
        if what != "S2S token" {
            // Its own account's password, for a credential that has one.
            targets.push(admin_id.clone());
        }
        for id in targets {
            let r = send(
                Method::POST,
                format!("{USERS}/{id}/password"),
                json!({ "password": NEW_PASSWORD, "current_password": ADMIN_PASSWORD }),
            )
            .await;
            assert_eq!(
                r.status,
                StatusCode::FORBIDDEN,
                "{what} password of {id}: {}",
                r.text()
            );
            assert!(r.json()["error"].is_string(), "{what}");
        }
        // The credential itself still works for what it may do.
        let r = send(Method::GET, format!("{USERS}/{target}"), json!({})).await;
        assert_eq!(r.status, StatusCode::OK, "{what}: {}", r.text());
    }
    let r = srv.get_as(&admin, &format!("{USERS}?q=bred")).await;
    assert_eq!(r.json()["items"], json!([]));
    for (name, password) in [("user1a", WORLD_PASSWORD), (ADMIN, ADMIN_PASSWORD)] {
        let login = srv.try_login(name, password).await;
        assert_eq!(login.status, StatusCode::OK, "{name}: {}", login.text());
    }

    // The admin's own sign-in, in the header, does both.
    let made = json!({ "username": "made", "email": "made@example.com",
                       "password": PASSWORD, "roles": ["user"], "reseller_id": "res_1" });
    let r = srv.post_as(&admin, USERS, &made).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = srv.set_password(&admin, &target, NEW_PASSWORD).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
}

// ---- F8: a refused change leaves nothing behind ----

/// bob holds `user` and `support`. An update that would drop `support`
/// and rename him to a taken name is refused (409); the store is as it
/// was, and so is everything else: his token still works.
#[tokio::test]
async fn a_refused_update_changes_nothing() {
    let srv = Server::start().await;
    let admin = srv.admin_token().await;
    let r = srv
        .post_as(&admin, "/api/v1/admin/roles", &json!({"name": "support"}))
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    let id = srv
        .create_user(&admin, "bob", PASSWORD, &["user", "support"])
        .await;
    let bob = srv.token_of("bob", PASSWORD).await;
    assert_eq!(srv.me(&bob).await.status, StatusCode::OK);
    let r = srv
        .patch_as(
            &admin,
            &format!("{USERS}/{id}"),
            &json!({"roles": ["user"], "username": "admin"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    let stored = srv.get_as(&admin, &format!("{USERS}/{id}")).await;
    assert_eq!(stored.json()["roles"], json!(["user", "support"]));
    assert_eq!(stored.json()["username"], json!("bob"));
    assert_eq!(
        srv.me(&bob).await.status,
        StatusCode::OK,
        "a refused update (409, nothing stored) killed bob's token"
    );
}
