//! Issue 9, item 16, as the first attack review left it: a role or tenant
//! that the external sign-in defaults name cannot be deleted while they
//! name it. Before, the deletion went through, every later auto-created
//! sign-in answered 500, and the next start refused the settings.

use http::StatusCode;
use latchkey::config::Layer;
use serde_json::json;

use crate::harness::*;

#[tokio::test]
async fn what_the_external_defaults_name_cannot_be_deleted_while_they_name_it() {
    let mut srv = Server::start().await;
    let admin = srv.admin_token().await;
    for (path, body) in [
        (
            "/api/v1/admin/resellers",
            json!({ "id": "res_x", "name": "X" }),
        ),
        (
            "/api/v1/admin/merchants",
            json!({ "id": "mer_x", "reseller_id": "res_x", "name": "X" }),
        ),
        ("/api/v1/admin/roles", json!({ "name": "Night-Shift" })),
    ] {
        let r = srv.post(path).bearer(&admin).json(&body).send().await;
        assert_eq!(r.status, StatusCode::CREATED, "{path}: {}", r.text());
    }
    let deletions = [
        "/api/v1/admin/roles/Night-Shift",
        "/api/v1/admin/merchants/mer_x",
        "/api/v1/admin/resellers/res_x",
    ];

    srv.layer = Layer {
        external_auto_create: Some(true),
        external_default_role: Some("night-shift".into()),
        external_default_reseller_id: Some("res_x".into()),
        external_default_merchant_id: Some("mer_x".into()),
        ..srv.layer.clone()
    };
    srv.restart().await;
    let admin = srv.admin_token().await;
    for path in deletions {
        let r = srv.delete(path).bearer(&admin).send().await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{path}: {}", r.text());
        assert!(
            r.text().contains("LATCHKEY_EXTERNAL_DEFAULT"),
            "{path}: {}",
            r.text()
        );
    }
    // Nothing was deleted: the same settings still start.
    srv.restart().await;

    // Once the settings name something else, the deletions go through.
    srv.layer = Layer {
        external_auto_create: None,
        external_default_role: None,
        external_default_reseller_id: None,
        external_default_merchant_id: None,
        ..srv.layer.clone()
    };
    srv.restart().await;
    let admin = srv.admin_token().await;
    for path in deletions {
        let r = srv.delete(path).bearer(&admin).send().await;
        assert!(r.status.is_success(), "{path}: {}", r.text());
    }
}
