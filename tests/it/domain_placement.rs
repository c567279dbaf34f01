//! Who may create what where, and who sees whom, in-process on `Core`:
//! every caller of the [`World`] against every placement asked for, with
//! the outcome the placement rules give (see `domain::users::place`), and
//! the account visibility that every admin operation's scope check
//! starts from.

use latchkey::domain::Error;
use latchkey::domain::auth::Principal;
use latchkey::store::Account;

use crate::domain_calls::{Domain, outcome};
use crate::harness::{USERS, World};

/// The callers of every table, strongest first.
const CALLERS: [&str; 4] = ["admin", "reseller1", "merchant1a", "user1a"];

async fn world() -> (Domain, World) {
    let d = Domain::start(Default::default()).await;
    let w = World::build(&d.srv).await;
    (d, w)
}

fn principal(d: &Domain, w: &World, name: &str) -> Principal {
    d.authenticate(w.token(name))
        .expect("a World token authenticates")
}

/// `ok <reseller>/<merchant>` for a created account, the outcome's name
/// otherwise.
fn placed(result: &Result<Account, Error>) -> String {
    match result {
        Ok(a) => format!(
            "ok {}/{}",
            a.reseller_id.as_deref().unwrap_or("-"),
            a.merchant_id.as_deref().unwrap_or("-")
        ),
        other => outcome(other),
    }
}

const FORBIDDEN: &str = "Forbidden";

/// One requested placement, and what each of [`CALLERS`] gets.
type Row = (
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    [&'static str; 4],
);

#[tokio::test]
async fn who_may_place_an_account_where() {
    let (d, w) = world().await;
    let rows: [Row; 12] = [
        (
            "user",
            None,
            None,
            ["ok -/-", "ok res_1/-", "ok res_1/mer_1a", FORBIDDEN],
        ),
        (
            "user",
            None,
            Some("mer_1a"),
            [
                "ok res_1/mer_1a",
                "ok res_1/mer_1a",
                "ok res_1/mer_1a",
                FORBIDDEN,
            ],
        ),
        // Another reseller's merchant reads as unknown to a reseller, and
        // is outside a merchant's own tenant.
        (
            "user",
            None,
            Some("mer_2a"),
            [
                "ok res_2/mer_2a",
                "invalid merchant_id",
                FORBIDDEN,
                FORBIDDEN,
            ],
        ),
        (
            "user",
            Some("res_2"),
            None,
            ["ok res_2/-", FORBIDDEN, FORBIDDEN, FORBIDDEN],
        ),
        (
            "user",
            Some("res_1"),
            Some("mer_2a"),
            [
                "invalid merchant_id",
                "invalid merchant_id",
                FORBIDDEN,
                FORBIDDEN,
            ],
        ),
        (
            "user",
            None,
            Some("mer_404"),
            [
                "invalid merchant_id",
                "invalid merchant_id",
                FORBIDDEN,
                FORBIDDEN,
            ],
        ),
        (
            "merchant",
            None,
            Some("mer_1b"),
            ["ok res_1/mer_1b", "ok res_1/mer_1b", FORBIDDEN, FORBIDDEN],
        ),
        (
            "merchant",
            None,
            None,
            [
                "invalid merchant_id",
                "invalid merchant_id",
                "ok res_1/mer_1a",
                FORBIDDEN,
            ],
        ),
        (
            "reseller",
            Some("res_1"),
            None,
            ["ok res_1/-", "ok res_1/-", FORBIDDEN, FORBIDDEN],
        ),
        (
            "reseller",
            None,
            None,
            ["invalid reseller_id", "ok res_1/-", FORBIDDEN, FORBIDDEN],
        ),
        (
            "admin",
            None,
            None,
            ["ok -/-", FORBIDDEN, FORBIDDEN, FORBIDDEN],
        ),
        (
            "no-such-role",
            None,
            None,
            ["invalid roles", "invalid roles", "invalid roles", FORBIDDEN],
        ),
    ];
    let mut wrong = Vec::new();
    let mut made = Vec::new();
    for (r, (role, reseller, merchant, expected)) in rows.iter().enumerate() {
        for (caller, want) in CALLERS.iter().zip(expected) {
            let name = format!("placed-{r}-{caller}");
            let got = placed(
                &d.create_user(
                    &principal(&d, &w, caller),
                    &name,
                    &[role],
                    *reseller,
                    *merchant,
                )
                .await,
            );
            if got.starts_with("ok") {
                made.push(name.clone());
            }
            if got != *want {
                wrong.push(format!(
                    "{caller} placing {role} at {reseller:?}/{merchant:?}: {got}, not {want}"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Exactly the accepted ones were written.
    let admin = w.token("admin");
    let listed: Vec<String> = d
        .srv
        .items(admin, &format!("{USERS}?limit=1000&q=placed-"))
        .await
        .iter()
        .map(|a| a["username"].as_str().expect("username").to_string())
        .collect();
    made.sort();
    let mut listed = listed;
    listed.sort();
    assert_eq!(listed, made);
}

#[tokio::test]
async fn who_may_create_a_tenant() {
    let (d, w) = world().await;
    let rows: [(Option<&str>, [&str; 4]); 4] = [
        (None, ["invalid reseller_id", "ok", FORBIDDEN, FORBIDDEN]),
        (Some("res_1"), ["ok", "ok", FORBIDDEN, FORBIDDEN]),
        (Some("res_2"), ["ok", FORBIDDEN, FORBIDDEN, FORBIDDEN]),
        (
            Some("res_404"),
            ["invalid reseller_id", FORBIDDEN, FORBIDDEN, FORBIDDEN],
        ),
    ];
    let mut wrong = Vec::new();
    for (r, (reseller, expected)) in rows.iter().enumerate() {
        for (caller, want) in CALLERS.iter().zip(expected) {
            let id = format!("mer_new_{r}_{}", &caller[..4]);
            let got = outcome(
                &d.create_merchant(&principal(&d, &w, caller), &id, *reseller)
                    .await,
            );
            if got != *want {
                wrong.push(format!(
                    "{caller} creating a merchant under {reseller:?}: {got}, not {want}"
                ));
            }
        }
    }
    for (caller, want) in CALLERS.iter().zip(["ok", FORBIDDEN, FORBIDDEN, FORBIDDEN]) {
        let id = format!("res_new_{}", &caller[..4]);
        let got = outcome(&d.create_reseller(&principal(&d, &w, caller), &id).await);
        if got != want {
            wrong.push(format!("{caller} creating a reseller: {got}, not {want}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test]
async fn each_scope_sees_exactly_its_accounts() {
    let (d, w) = world().await;
    // Two accounts stronger than some callers of their own tenant: a
    // scope never sees an account with a role above its own.
    let admin = principal(&d, &w, "admin");
    let mut ids = std::collections::BTreeMap::new();
    for (name, role) in [("strong-admin", "admin"), ("strong-reseller", "reseller")] {
        let a = d
            .create_user(&admin, name, &[role], Some("res_1"), Some("mer_1a"))
            .await
            .expect("created");
        ids.insert(name, a.id.to_string());
    }
    let everyone = [
        "admin",
        "reseller1",
        "reseller2",
        "merchant1a",
        "merchant1b",
        "merchant2a",
        "user1a",
        "user2a",
        "strong-admin",
        "strong-reseller",
    ];
    for name in &everyone[..8] {
        ids.insert(name, w.get(name).id.clone());
    }
    // Whom each caller sees; everyone else is not found (never forbidden,
    // which would confirm the account exists).
    let sees: [(&str, &[&str]); 6] = [
        ("admin", &everyone),
        (
            "reseller1",
            &[
                "reseller1",
                "merchant1a",
                "merchant1b",
                "user1a",
                "strong-reseller",
            ],
        ),
        ("reseller2", &["reseller2", "merchant2a", "user2a"]),
        ("merchant1a", &["merchant1a", "user1a"]),
        ("merchant2a", &["merchant2a", "user2a"]),
        ("user1a", &["user1a"]),
    ];
    let mut wrong = Vec::new();
    for (caller, visible) in sees {
        let p = principal(&d, &w, caller);
        for target in everyone {
            let got = outcome(&d.get_user(&p, &ids[target]));
            let want = if visible.contains(&target) {
                "ok"
            } else {
                "NotFound(\"user\")"
            };
            if got != want {
                wrong.push(format!("{caller} reading {target}: {got}, not {want}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
