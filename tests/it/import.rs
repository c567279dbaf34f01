//! `latchkey import` (issue 13): accounts with pre-hashed passwords
//! (argon2id, and bcrypt from other systems) go into a stopped server's
//! store all or nothing, sign in with their original passwords, and a
//! bcrypt hash becomes argon2id at the first sign-in. The command runs as
//! the real binary; the server is the in-process one, stopped around it.

use std::path::Path;

use argon2::password_hash::PasswordHasher as _;
use argon2::{Algorithm, Argon2, Params, Version};
use http::StatusCode;
use serde_json::{Value, json};

use crate::harness::*;

/// The environment of a command aimed at the data directory `data`, with
/// the same light argon2 parameters as the in-process server.
fn env_for(data: &Path) -> Vec<(String, String)> {
    vec![
        ("LATCHKEY_DATA_DIR".into(), data.display().to_string()),
        ("LATCHKEY_LISTEN".into(), "127.0.0.1:0".into()),
        ("LATCHKEY_ARGON2_MEMORY_KIB".into(), "256".into()),
        ("LATCHKEY_ARGON2_ITERATIONS".into(), "1".into()),
    ]
}

/// Runs `latchkey import --from FILE` to its end; (exit code, output).
async fn import(data: &Path, lines: &[Value]) -> (Option<i32>, String) {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    import_text(data, text).await
}

async fn import_text(data: &Path, text: String) -> (Option<i32>, String) {
    let file = data
        .parent()
        .expect("data has a parent")
        .join("accounts.jsonl");
    std::fs::write(&file, text).expect("write file");
    let env = env_for(data);
    tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        run_to_end(&["import", "--from", file.to_str().expect("utf-8")], &env)
    })
    .await
    .expect("command ran")
}

/// An argon2id PHC string of `password` with these parameters.
fn argon2id(password: &str, m: u32, t: u32) -> String {
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(m, t, 1, None).expect("params"),
    )
    .hash_password_with_salt(password.as_bytes(), b"saltsaltsaltsalt")
    .expect("hash")
    .to_string()
}

fn stored_hash(srv: &Server, username: &str) -> String {
    let tx = srv.running().core().store().read().expect("read");
    tx.account_by_username(username)
        .expect("lookup")
        .expect("account")
        .password_hash
}

fn account_count(srv: &Server) -> u64 {
    let tx = srv.running().core().store().read().expect("read");
    tx.account_count().expect("count")
}

fn line(username: &str, hash: &str) -> Value {
    json!({ "username": username, "email": format!("{username}@example.com"), "password_hash": hash })
}

#[tokio::test]
async fn imported_accounts_sign_in_and_bcrypt_becomes_argon2id() {
    let mut srv = Server::start().await;
    srv.stop().await;
    let data = srv.data_dir();
    let long = "x".repeat(72);
    let lines = [
        line("ada", &argon2id(PASSWORD, 256, 1)),
        line("bob", &bcrypt::hash(PASSWORD, 4).expect("bcrypt")),
        json!({ "username": "cyd", "email": "cyd@example.com", "roles": ["user"],
                "disabled": false, "password_hash": bcrypt::hash(&long, 4).expect("bcrypt") }),
    ];
    let (code, out) = import(&data, &lines).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("imported 3 accounts"), "{out}");

    srv.restart().await;
    srv.try_login("ada", PASSWORD).await.assert(StatusCode::OK);
    assert!(stored_hash(&srv, "bob").starts_with("$2b$04$"));
    // A bcrypt check is one verification per attempt, like argon2's.
    let before = srv.running().hash_verifications();
    srv.try_login("bob", "a wrong password")
        .await
        .assert(StatusCode::UNAUTHORIZED);
    assert_eq!(srv.running().hash_verifications(), before + 1);
    assert!(stored_hash(&srv, "bob").starts_with("$2b$04$"));
    srv.try_login("bob", PASSWORD).await.assert(StatusCode::OK);
    let upgraded = stored_hash(&srv, "bob");
    assert!(
        upgraded.starts_with("$argon2id$v=19$m=256,t=1,p=1$"),
        "{upgraded}"
    );
    srv.try_login("bob", PASSWORD).await.assert(StatusCode::OK);

    // bcrypt reads 72 bytes; a longer password must not pass on its prefix.
    let longer = format!("{long}and more");
    srv.try_login("cyd", &longer)
        .await
        .assert(StatusCode::UNAUTHORIZED);
    srv.try_login("cyd", &long).await.assert(StatusCode::OK);

    let admin = srv.admin_token().await;
    let audit = srv.audit(&admin).await;
    let imported: Vec<&Value> = audit
        .iter()
        .filter(|e| e["event"] == "accounts_imported")
        .collect();
    assert_eq!(imported.len(), 1, "{audit:?}");
}

#[tokio::test]
async fn a_file_with_any_bad_line_imports_nothing() {
    let mut srv = Server::start().await;
    srv.stop().await;
    let data = srv.data_dir();
    srv.restart().await;
    let before = account_count(&srv);
    srv.stop().await;

    let good = argon2id(PASSWORD, 256, 1);
    let lines = [
        line("ada", &good),
        json!({ "username": "ADA", "email": "ada2@example.com", "password_hash": good }),
        line("huge", &argon2id("x", 8, 1).replace("m=8,", "m=8388608,")),
        line("slow", &argon2id("x", 8, 1).replace("t=1,", "t=1000,")),
        json!({ "username": "eve", "email": ADMIN_EMAIL, "password_hash": good }),
        json!({ "username": "fay", "email": "not an email", "password_hash": good }),
        json!({ "username": "gil", "email": "gil@example.com", "roles": ["nope"], "password_hash": good }),
        line(
            "hal",
            "$2b$31$abcdefghijklmnopqrstuuOs7zmOeDtpN3BcgZfQDwvPKb5cF8/rS",
        ),
        line("ivy", "plaintext"),
        line("jon", &good),
        json!({ "username": "kim", "email": "Ada@Example.com", "password_hash": good }),
    ];
    let (code, out) = import(&data, &lines).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("9 bad line"), "{out}");
    for n in (2..=9).chain([11]) {
        assert!(out.contains(&format!("line {n}:")), "line {n} in {out}");
    }
    assert!(
        out.contains("line 2: username is the same as on line 1"),
        "{out}"
    );
    assert!(
        out.contains("line 11: email is the same as on line 1"),
        "{out}"
    );
    assert!(
        !out.contains("line 1:") && !out.contains("line 10:"),
        "{out}"
    );
    assert!(out.contains("exceed the import bounds"), "{out}");

    srv.restart().await;
    assert_eq!(account_count(&srv), before);
    srv.try_login("ada", PASSWORD)
        .await
        .assert(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn import_refuses_while_the_server_runs() {
    let srv = Server::start().await;
    let before = account_count(&srv);
    let (code, out) = import(&srv.data_dir(), &[line("ada", &argon2id(PASSWORD, 256, 1))]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("the server is running"), "{out}");
    assert_eq!(account_count(&srv), before);
}

#[tokio::test]
async fn an_overlong_line_is_reported_and_nothing_is_imported() {
    let mut srv = Server::start().await;
    let before = account_count(&srv);
    srv.stop().await;
    let good = line("ada", &argon2id(PASSWORD, 256, 1)).to_string();
    let padded = json!({ "username": "bob", "email": "bob@example.com",
        "password_hash": argon2id(PASSWORD, 256, 1), "roles": ["user"],
        "reseller_id": null, "merchant_id": null, "disabled": false })
    .to_string()
    .replacen('{', &format!("{{{}", " ".repeat(4096)), 1);
    let (code, out) = import_text(&srv.data_dir(), format!("{good}\n\n{padded}\n")).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("line 3: longer than 4096 bytes"), "{out}");
    srv.restart().await;
    assert_eq!(account_count(&srv), before);
}
