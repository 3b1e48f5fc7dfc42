//! Integration tests: the real server on 127.0.0.1:0, spoken to over HTTP, once on SQLite and
//! once on PostgreSQL (a fresh schema per test, dropped afterwards). One test binary, so linking
//! happens once.

mod helpers;

mod admin_pages;
mod anonymous_budget;
mod attack_membership_races;
mod attack_org_delete_races;
mod attack_org_writes;
mod attack_support;
mod attack_testmode;
mod auth;
mod bad_input;
mod bodies;
mod bulk;
mod client;
mod concurrency;
mod create_or_update;
mod credentials;
mod custom_fields;
mod delete;
mod erasure;
mod fuzz;
mod identities;
mod incremental_time;
mod job_submitter;
mod keep_alive;
mod lockout;
mod login_floods;
mod memberships;
mod openapi;
mod organization_bulk;
mod organization_by_name;
mod organizations;
mod rate_limits;
mod role_matrix;
mod scale;
mod scopes;
mod search;
mod search_limits;
mod server;
mod tags;
mod testmode;
mod testmode_fixture_fields;
mod testmode_fixtures;
mod testmode_jobs;
mod timeouts;
mod unicode_text;
mod users_rest;
mod users_surface;
mod write_path;
mod write_races;
