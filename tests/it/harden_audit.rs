//! Issue 9, items 10, 11, 18, 20 and 22: audit scoping by tenant and by
//! manageable account, retired tenant ids, the role-name form, body errors
//! in each document's words, and role choice with someone else's token.

use http::StatusCode;
use serde_json::json;

use crate::harness::*;
