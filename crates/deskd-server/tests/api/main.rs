//! Integration tests: the real server on 127.0.0.1:0, spoken to over HTTP, once on SQLite and
//! once on PostgreSQL (a fresh schema per test, dropped afterwards). One test binary, so linking
//! happens once.

mod helpers;

mod anonymous_budget;
mod auth;
mod bad_input;
mod bulk;
mod client;
mod concurrency;
mod create_or_update;
mod credentials;
mod custom_fields;
mod delete;
mod identities;
mod incremental_time;
mod keep_alive;
mod lockout;
mod login_floods;
mod memberships;
mod openapi;
mod organization_bulk;
mod organizations;
mod rate_limits;
mod role_matrix;
mod scopes;
mod search;
mod server;
mod tags;
mod testmode;
mod timeouts;
mod users_rest;
mod users_surface;
mod write_path;
mod write_races;
