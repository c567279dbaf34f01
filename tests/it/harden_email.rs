//! An email is a sign-in identifier: a provider that vouches for the
//! mailbox signs in to the account it names. So changing an account's email
//! mints a credential (refused to credentials that may not mint), and a
//! provider link made by an email ends when the email changes or a manager
//! takes the account back by setting its password.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::external::{
    Answer, GOOGLE_TOKEN, assert_refused, google, google_info, google_signs_in, world_with_provider,
};
use crate::harness::*;

/// An API key of `token`'s account.
async fn api_key(srv: &Server, token: &str) -> String {
    let r = srv.post(KEYS).bearer(token).send().await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.json()["apiKey"].as_str().expect("apiKey").to_string()
}

/// A reseller S2S token for res_1, issued by the admin.
async fn s2s_for_res_1(srv: &Server, admin: &str) -> String {
    srv.s2s_secret(
        admin,
        &json!({ "name": "probe", "role": "reseller", "reseller_id": "res_1" }),
    )
    .await
}

/// An opaque token of a World member, for use in a URL.
async fn opaque_token(srv: &Server, name: &str) -> String {
    srv.opaque_token(&format!("{name}@example.com"), WORLD_PASSWORD)
        .await
}

/// The account's email as an admin reads it.
async fn email_of(srv: &Server, admin: &str, id: &str) -> String {
    let r = srv.get_as(admin, &format!("{USERS}/{id}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()["email"].as_str().expect("email").to_string()
}

/// The `external_unlinked` audit entries, newest first.
async fn unlinked_entries(srv: &Server, admin: &str) -> Vec<Value> {
    let r = srv
        .get_as(admin, "/api/v1/admin/audit?event=external_unlinked")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()["items"].as_array().cloned().unwrap_or_default()
}

/// A reseller's API key (on an account of its tenant and on its own), a
/// reseller S2S token and a session token read from the URL cannot point an
/// account's email at a mailbox the attacker controls: 403, the email stays,
/// and a provider sign-in for that mailbox lands in no account. The same
/// reseller's own sign-in in the header may change the email, and the same
/// credentials may still change the email's case (it names the same
/// mailbox) and other fields.
#[tokio::test]
async fn a_credential_that_may_not_mint_cannot_change_an_accounts_email() {
    let (provider, srv, w) = world_with_provider().await;
    let admin = w.token("admin").to_string();
    let key = api_key(&srv, w.token("reseller1")).await;
    let s2s = s2s_for_res_1(&srv, &admin).await;
    let url = opaque_token(&srv, "reseller1").await;
    // (case, bearer header, query token, victim, tag)
    let cases = [
        (
            "api key on a tenant account",
            Some(&key),
            None,
            "user1a",
            "m1",
        ),
        (
            "api key on its own account",
            Some(&key),
            None,
            "reseller1",
            "m2",
        ),
        (
            "s2s token on a tenant account",
            Some(&s2s),
            None,
            "merchant1a",
            "m3",
        ),
        (
            "url token on a tenant account",
            None,
            Some(&url),
            "merchant1b",
            "m4",
        ),
        (
            "url token on its own account",
            None,
            Some(&url),
            "reseller1",
            "m5",
        ),
    ];
    let mut taken = Vec::new();
    for (case, header, query, victim, tag) in cases {
        let mailbox = format!("mallory-{tag}@attacker.example");
        let member = w.get(victim);
        let send = |body: Value| {
            let mut path = format!("{USERS}/{}", member.id);
            if let Some(t) = query {
                path = format!("{path}?token={t}");
            }
            let mut call = srv.call(Method::PATCH, &path).json(&body);
            if let Some(h) = header {
                call = call.bearer(h);
            }
            call.send()
        };
        let r = send(json!({ "email": mailbox })).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{case}: {}", r.text());
        assert!(r.json()["error"].is_string(), "{case}");
        // Earlier cases may have changed its case, and only that.
        let now = email_of(&srv, &admin, &member.id).await.to_lowercase();
        assert_eq!(now, member.email, "{case}");
        provider.answer(Answer::Json(
            200,
            google_info(&mailbox, &format!("mallory-sub-{tag}")),
        ));
        let r = google(&srv, &mailbox, GOOGLE_TOKEN).await;
        if r.status == StatusCode::OK {
            let token = r.json()["token"].as_str().unwrap_or_default().to_string();
            let me = srv.me(&token).await;
            taken.push(format!("{case}: signed in as {}", me.json()["username"]));
        }
        // The same mailbox in other letters, and another field: allowed.
        let r = send(json!({ "email": member.email.to_uppercase(),
                             "attributes": { "probe": tag } }))
        .await;
        assert_eq!(r.status, StatusCode::OK, "{case}: {}", r.text());
    }
    assert!(taken.is_empty(), "{taken:#?}");
    // A person's own sign-in, in the header, may change it.
    let victim = w.get("user1a");
    let r = srv
        .patch_as(
            w.token("reseller1"),
            &format!("{USERS}/{}", victim.id),
            &json!({ "email": "user1a-new@example.com" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        email_of(&srv, &admin, &victim.id).await,
        "user1a-new@example.com"
    );
}

/// A provider identity linked to an account by its email no longer signs
/// in once an admin changes the email back: the link ends with the email,
/// in the same change, and the audit log names the provider and the id
/// unlinked (never the provider's token).
#[tokio::test]
async fn a_link_made_by_an_email_ends_when_the_email_changes() {
    let (provider, srv, w) = world_with_provider().await;
    let admin = w.token("admin").to_string();
    let victim = w.get("user1a").id.clone();
    let mailbox = "mallory@attacker.example";
    let r = srv
        .patch_as(
            &admin,
            &format!("{USERS}/{victim}"),
            &json!({ "email": mailbox }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    google_signs_in(&provider, &srv, mailbox, "mallory-sub").await;
    assert!(unlinked_entries(&srv, &admin).await.is_empty());
    // The operator notices and points the email back.
    let r = srv
        .patch_as(
            &admin,
            &format!("{USERS}/{victim}"),
            &json!({ "email": "user1a@example.com" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // The linked identity, with its own mailbox, no longer gets in.
    assert_refused(&google(&srv, mailbox, GOOGLE_TOKEN).await);
    let entries = unlinked_entries(&srv, &admin).await;
    assert_eq!(entries.len(), 1, "{entries:#?}");
    let entry = &entries[0];
    assert_eq!(entry["target"], victim.as_str(), "{entry}");
    let detail = entry["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("google") && detail.contains("mallory-sub"),
        "{entry}"
    );
    assert!(!entry.to_string().contains(GOOGLE_TOKEN), "{entry}");
    // The account's own mailbox links again at its owner's sign-in.
    google_signs_in(&provider, &srv, "user1a@example.com", "user1a-sub").await;
}

/// A manager setting an account's password takes it back: the provider
/// identities linked to it stop signing in (even one whose mailbox has
/// moved on). The account changing its own password keeps its links.
#[tokio::test]
async fn a_managers_password_reset_ends_the_accounts_provider_links() {
    let (provider, srv, w) = world_with_provider().await;
    let admin = w.token("admin").to_string();
    let user = w.get("user1a");
    // Linked by its email, then the Google account's mailbox is renamed:
    // from now on only the link lets that identity in.
    google_signs_in(&provider, &srv, &user.email, "sub-1").await;
    let renamed = "renamed@elsewhere.example";
    google_signs_in(&provider, &srv, renamed, "sub-1").await;
    // The account's own password change keeps the link.
    let change = json!({ "password": "a brand new password 41",
                         "current_password": WORLD_PASSWORD });
    let path = format!("{USERS}/{}/password", user.id);
    let r = srv.post_as(&user.token, &path, &change).await;
    assert!(r.status.is_success(), "{}", r.text());
    let r = google(&srv, renamed, GOOGLE_TOKEN).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(unlinked_entries(&srv, &admin).await.is_empty());
    // The admin's reset ends it.
    let r = srv
        .post_as(
            &admin,
            &format!("{USERS}/{}/password", user.id),
            &json!({ "password": "a brand new password 42" }),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    assert_refused(&google(&srv, renamed, GOOGLE_TOKEN).await);
    let entries = unlinked_entries(&srv, &admin).await;
    assert_eq!(entries.len(), 1, "{entries:#?}");
    assert_eq!(entries[0]["target"], user.id.as_str(), "{}", entries[0]);
}
