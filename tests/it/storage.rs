//! The store: schema versions, damaged files, durability across restarts,
//! password hashing parameters, the signing key's life.

use http::StatusCode;
use latchkey::config::{Layer, Settings};
use latchkey::domain::Clock;
use latchkey::store::{STORE_FILE, Store};
use serde_json::json;

use crate::harness::*;

/// Tries to start a server on `data` and returns the error text.
async fn start_error(data: &std::path::Path) -> String {
    let settings = Settings::resolve(light(Layer {
        data_dir: Some(data.to_path_buf()),
        listen: Some("127.0.0.1:0".parse().unwrap()),
        ..Default::default()
    }))
    .unwrap();
    match latchkey::start(&settings, Clock::system(), Default::default()).await {
        Ok(_) => panic!("the server started"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn a_store_from_a_newer_build_is_refused() {
    let mut srv = Server::start().await;
    srv.stop().await;
    let store = Store::open(&srv.data_dir()).unwrap();
    store
        .write(|tx| tx.set_meta("schema_version", &99u64.to_be_bytes()))
        .unwrap();
    drop(store);
    let err = start_error(&srv.data_dir()).await;
    assert!(err.contains("newer latchkey"), "{err}");
    assert!(err.contains("99"), "{err}");
}

#[tokio::test]
async fn a_damaged_file_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let junk: Vec<u8> = (0..100_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(data.join(STORE_FILE), &junk).unwrap();
    let err = start_error(&data).await;
    assert!(err.contains("damaged"), "{err}");
    assert_eq!(std::fs::read(data.join(STORE_FILE)).unwrap(), junk);
}

#[tokio::test]
async fn an_empty_file_is_refused_not_initialised() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join(STORE_FILE), b"").unwrap();
    let err = start_error(&data).await;
    assert!(err.contains("empty (0 bytes)"), "{err}");
    assert_eq!(std::fs::metadata(data.join(STORE_FILE)).unwrap().len(), 0);
}

#[tokio::test]
async fn a_store_in_use_is_refused() {
    let srv = Server::start().await;
    let err = start_error(&srv.data_dir()).await;
    assert!(err.contains("in use by another latchkey"), "{err}");
    // The running server is unharmed.
    assert_eq!(srv.get("/healthz").send().await.status, StatusCode::OK);
}

#[tokio::test]
async fn sessions_revocations_and_keys_survive_a_restart() {
    let mut srv = Server::start().await;
    let kept = srv.login(ADMIN, ADMIN_PASSWORD).await;
    let ended = srv.login(ADMIN, ADMIN_PASSWORD).await;
    let r = srv
        .post("/api/v1/auth/logout")
        .bearer(ended["token"].as_str().unwrap())
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let jwks = srv.get("/.well-known/jwks.json").send().await.json();

    srv.restart().await;

    assert_eq!(srv.get("/.well-known/jwks.json").send().await.json(), jwks);
    let r = srv.me(kept["token"].as_str().unwrap()).await;
    assert_eq!(r.status, StatusCode::OK, "signing key kept");
    let r = srv.me(ended["token"].as_str().unwrap()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "revocation kept");
    let r = srv
        .post_json(
            "/api/v1/auth/refresh",
            &json!({ "refreshToken": kept["refreshToken"] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "refresh token kept");
}

#[tokio::test]
async fn a_lost_master_key_means_a_new_signing_key_not_a_broken_server() {
    let mut srv = Server::start().await;
    let before = srv.login(ADMIN, ADMIN_PASSWORD).await;
    let old_jwks = srv.get("/.well-known/jwks.json").send().await.json();
    srv.stop().await;
    std::fs::remove_file(srv.data_dir().join("master.key")).unwrap();
    srv.restart().await;
    let jwks = srv.get("/.well-known/jwks.json").send().await.json();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "old key still published, new key added");
    assert!(keys.contains(&old_jwks["keys"][0]));
    // Tokens signed before still verify until they expire; new ones use the
    // new key.
    let r = srv.me(before["token"].as_str().unwrap()).await;
    assert_eq!(r.status, StatusCode::OK);
    let after = srv.admin_token().await;
    assert_eq!(srv.me(&after).await.status, StatusCode::OK);
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_and_master_key_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let srv = Server::start().await;
    let mode = |p: std::path::PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(srv.data_dir()), 0o700);
    assert_eq!(mode(srv.data_dir().join("master.key")), 0o600);
}

fn stored_admin_hash(data: &std::path::Path) -> String {
    let store = Store::open(data).unwrap();
    let tx = store.read().unwrap();
    tx.account_by_username("admin")
        .unwrap()
        .unwrap()
        .password_hash
}

#[tokio::test]
async fn production_argon2_parameters_are_the_default() {
    // No light parameters here: this is the one test that pins the real
    // cost (m=19456 KiB, t=2, p=1).
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let settings = Settings::resolve(Layer {
        data_dir: Some(data.clone()),
        listen: Some("127.0.0.1:0".parse().unwrap()),
        ..Default::default()
    })
    .unwrap();
    let running = latchkey::start(
        &settings,
        Clock::system(),
        latchkey::Bootstrap {
            password: Some(ADMIN_PASSWORD.into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let r = At(running.addr)
        .post("/api/v1/auth/login")
        .json(&json!({ "username": "admin", "password": ADMIN_PASSWORD }))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK);
    running.shutdown().await;
    let hash = stored_admin_hash(&data);
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
}

#[tokio::test]
async fn a_hash_with_old_parameters_is_upgraded_at_the_next_login() {
    let mut srv = Server::start().await;
    srv.stop().await;
    let old = stored_admin_hash(&srv.data_dir());
    assert!(old.contains("m=256,t=1,p=1"), "{old}");

    srv.layer = Layer {
        argon2_memory_kib: Some(512),
        argon2_iterations: Some(2),
        ..Default::default()
    };
    srv.restart().await;
    // A failed login changes nothing.
    let r = srv.try_login(ADMIN, "wrong password").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    srv.stop().await;
    assert_eq!(stored_admin_hash(&srv.data_dir()), old);

    srv.restart().await;
    srv.login(ADMIN, ADMIN_PASSWORD).await;
    srv.stop().await;
    let new = stored_admin_hash(&srv.data_dir());
    assert!(new.starts_with("$argon2id$v=19$m=512,t=2,p=1$"), "{new}");
    // And the upgraded hash still accepts the password.
    srv.restart().await;
    srv.login(ADMIN, ADMIN_PASSWORD).await;
}

#[tokio::test]
async fn a_store_written_by_schema_1_opens_with_its_credentials_intact() {
    let (dir, meta) = fixture_store("store-v1");
    // The fixture's tokens are judged at the time they were written.
    let clock = Clock::manual(meta["written_at"].as_i64().unwrap() + 60);
    let srv = Server::start_in(dir, Layer::default(), clock, None, bootstrap()).await;

    let live = meta["live"]["token"].as_str().unwrap();
    let r = srv.me(live).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["username"], "admin");
    let r = srv.me(meta["logged_out"]["token"].as_str().unwrap()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = srv
        .post_json(
            "/api/v1/auth/refresh",
            &json!({ "refreshToken": meta["live"]["refreshToken"] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = srv
        .post_json(
            "/api/v1/auth/refresh",
            &json!({ "refreshToken": meta["logged_out"]["refreshToken"] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let admin = srv
        .login("admin", meta["admin_password"].as_str().unwrap())
        .await;

    // Migrated to the current schema: accounts are numbered on from the
    // schema-1 store's highest number.
    let created = srv
        .post("/api/v1/admin/users")
        .bearer(admin["token"].as_str().unwrap())
        .json(&json!({
            "username": "after-migration",
            "email": "after@example.com",
            "password": "a long enough password",
            "roles": ["user"],
        }))
        .send()
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    assert_eq!(created.json()["number"], 2);
    let mut srv = srv;
    srv.stop().await;
    let store = Store::open(&srv.data_dir()).unwrap();
    assert_eq!(
        store.read().unwrap().schema_version().unwrap(),
        Some(latchkey::store::SCHEMA_VERSION)
    );
}

#[tokio::test]
async fn ended_sessions_spent_tokens_and_stale_failure_counts_are_pruned() {
    let mut srv = Server::start().await;
    let login = srv.login(ADMIN, ADMIN_PASSWORD).await;
    let opaque = srv.opaque_token(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let r = srv.try_login("nobody", "wrong password").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let admin_id = login["user"]["id"]
        .as_str()
        .unwrap()
        .parse::<uuid::Uuid>()
        .unwrap();
    let refresh = login["refreshToken"].as_str().unwrap().to_string();
    let digest = |t: &str| {
        let d = ring::digest::digest(&ring::digest::SHA256, t.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        out
    };

    // A day on, the failure count of "nobody" goes; the sessions stay.
    srv.advance(24 * 3600 + 1);
    srv.running().housekeeping().await;
    srv.stop().await;
    {
        let store = Store::open(&srv.data_dir()).unwrap();
        let tx = store.read().unwrap();
        assert!(tx.lockout("nobody").unwrap().is_none());
        assert_eq!(tx.account_sessions(admin_id).unwrap().len(), 2);
        assert!(tx.refresh_token(&digest(&refresh)).unwrap().is_some());
    }

    // Past the sessions' end and the grace period, they go with their
    // tokens; the account stays.
    srv.restart().await;
    srv.advance(7 * 24 * 3600 + 3600);
    srv.running().housekeeping().await;
    srv.stop().await;
    let store = Store::open(&srv.data_dir()).unwrap();
    let tx = store.read().unwrap();
    assert!(tx.account_sessions(admin_id).unwrap().is_empty());
    assert!(tx.refresh_token(&digest(&refresh)).unwrap().is_none());
    assert!(tx.opaque_token(&digest(&opaque)).unwrap().is_none());
    assert!(tx.account(admin_id).unwrap().is_some());
}
