//! Baton's integration tests, in one binary (linking the whole server once, not once
//! per area): a module per area of the API and the pages, sharing the harness in
//! `common`. Every test starts real nodes through `baton::node::start` on port 0
//! against a fresh database: a temporary SQLite file, or a fresh PostgreSQL database
//! when `BATON_TEST_DATABASE_URL` is set.
//!
//! Run one area with a filter: `cargo test -p baton --test api webhooks::`. (The order
//! cost guard, `tests/order_cost.rs`, counts process-wide and has a binary of its own.)

mod accounts;
mod browser;
mod chargebacks;
mod checkout;
mod claims;
mod cli;
mod common;
mod conventions;
mod crash;
mod demo;
mod execution;
mod identity;
mod listing;
mod logs;
mod marketplace;
mod operability;
mod orders;
mod pay_by_link;
mod refunds;
mod roles;
mod schemes;
mod stripe;
mod takeover;
mod theme;
mod vault;
mod vault_api;
mod webhooks;
