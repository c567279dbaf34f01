//! Integration tests: every test starts the real server (in-process or as
//! the `latchkey` binary) and speaks HTTP to it over a real socket.

mod harness;

mod abuse;
mod admin_api;
mod cross_documents;
mod doc_account;
mod doc_client;
mod doc_tenant;
mod doc_token;
mod doc_v1;
mod external;
mod foundation;
mod harden_actors;
mod harden_audit;
mod harden_credentials;
mod harden_email;
mod harden_grants;
mod harden_h2;
mod harden_lead;
mod harden_login;
mod harden_s2s_bounds;
mod harden_seams;
mod harden_tokens;
mod harden_transport;
mod harden_tree;
mod keys;
mod logs;
mod metrics;
mod openapi;
mod ops;
mod own_password;
mod package;
mod passwords;
mod process;
mod readme;
mod reload;
mod review12;
mod s2s;
mod storage;
mod transport;
