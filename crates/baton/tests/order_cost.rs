//! What creating an order costs the database, bounded: an order of 12 instructions,
//! created through the API and then fanned out by a worker round, may send at most so
//! many statements, commit at most so many transactions and write at most so many
//! bytes to the outbox per instruction. The bounds are what the order path costs today;
//! a change that adds work per order or per instruction fails here, with the
//! statements it sent, and should either be made cheaper or raise the bound knowingly
//! (with a benchmark of its price: `bench/compare.sh`).
//!
//! Statements are counted from sqlx's statement log (every statement handed to the
//! driver, on either backend); commits by SQLite's commit hook on the write connection
//! (`baton_store::testing::sqlite_commits`) and, on PostgreSQL, by the `COMMIT`s in
//! that log. The node's own timers (identity caches, maintenance) are left out. One
//! test in this binary, as the counters are process-wide. On SQLite by default, on
//! PostgreSQL when `BATON_TEST_DATABASE_URL` is set.

#[path = "api/common/mod.rs"]
mod common;

use std::sync::{Arc, Mutex, OnceLock};

use common::TestApp;
use reqwest::Method;
use serde_json::{json, Value};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer;

/// The bounds, per backend: what an order of 12 instructions costs today (2026-12-07).
/// The default's scheme is read, then the order, its default, its instructions, the
/// status query and their 12 `instruction.created` events are written in one
/// transaction, 1 commit; the events are written dispatched, as no endpoint wants
/// them, so the worker round after it does nothing. SQLite: 6 statements in 3 round
/// trips (its group writer sends the defaults, instructions, events and status query
/// as one query). PostgreSQL: 5 statements, the events inserted by a CTE of the status
/// query. An outbox row is 572 bytes. Before (`834b1e8`): 9 statements and 2 commits,
/// the worker round reading and rewriting the 12 events to fan them out to no endpoint.
const SQLITE: Bounds = Bounds { statements: 6, round_trips: 3, commits: 1, outbox_bytes_per_instruction: 580 };
const POSTGRES: Bounds = Bounds { statements: 5, round_trips: 5, commits: 1, outbox_bytes_per_instruction: 580 };

struct Bounds {
    statements: usize,
    /// Queries handed to the driver (on SQLite each is a round trip to the writer's thread).
    round_trips: usize,
    commits: u64,
    outbox_bytes_per_instruction: usize,
}

/// Every statement sqlx hands to a driver, as text, in order.
#[derive(Clone, Default)]
struct StatementLog(Arc<Mutex<Vec<String>>>);

impl StatementLog {
    fn install() -> Self {
        static LOG: OnceLock<StatementLog> = OnceLock::new();
        LOG.get_or_init(|| {
            let log = StatementLog::default();
            let filter = tracing_subscriber::filter::Targets::new().with_target("sqlx::query", tracing::Level::DEBUG);
            let subscriber = tracing_subscriber::registry().with(log.clone().with_filter(filter));
            tracing::subscriber::set_global_default(subscriber).expect("the only subscriber of this binary");
            log
        })
        .clone()
    }

    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// The statements logged since `from` (a `len()`).
    fn since(&self, from: usize) -> Vec<String> {
        self.0.lock().unwrap()[from..].to_vec()
    }
}

impl<S: tracing::Subscriber> Layer<S> for StatementLog {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        #[derive(Default)]
        struct Text {
            summary: String,
            statement: String,
        }
        impl tracing::field::Visit for Text {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                match field.name() {
                    "summary" => self.summary = value.to_string(),
                    "db.statement" => self.statement = value.trim().to_string(),
                    _ => {}
                }
            }
            fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
        }
        let mut text = Text::default();
        event.record(&mut text);
        // A short statement is all in its summary.
        let sql = if text.statement.is_empty() { text.summary } else { text.statement };
        self.0.lock().unwrap().push(sql);
    }
}

/// What the node's timers send, whatever the requests: the identity caches' reloads
/// and the maintenance purge (a transaction of its own).
fn background(sql: &str) -> bool {
    ["api_keys", "token_signing_keys", "hmac_nonces", "idempotency_keys"].iter().any(|t| sql.contains(t))
}

fn is_commit(sql: &str) -> bool {
    sql.eq_ignore_ascii_case("COMMIT")
}

/// What was sent between `open` and `close`, less the node's timers.
struct Window {
    from: usize,
    sqlite_commits: u64,
}

struct Sent {
    /// Statements other than `COMMIT`.
    statements: Vec<String>,
    /// `COMMIT`s in the log (PostgreSQL; SQLite commits without a statement).
    commit_statements: u64,
    /// Commits on SQLite's write connection.
    sqlite_commits: u64,
}

impl Window {
    fn open(log: &StatementLog) -> Self {
        Self { from: log.len(), sqlite_commits: baton_store::testing::sqlite_commits() }
    }

    fn close(self, log: &StatementLog) -> Sent {
        let sent = log.since(self.from);
        // The maintenance purge is a transaction of its own.
        let purges = sent.iter().filter(|s| s.contains("DELETE FROM hmac_nonces")).count() as u64;
        let ours: Vec<String> = sent.into_iter().filter(|s| !background(s)).collect();
        let commit_statements = ours.iter().filter(|s| is_commit(s)).count() as u64;
        Sent {
            commit_statements: commit_statements.saturating_sub(purges),
            statements: ours.into_iter().filter(|s| !is_commit(s)).collect(),
            sqlite_commits: (baton_store::testing::sqlite_commits() - self.sqlite_commits).saturating_sub(purges),
        }
    }
}

/// A yearly premium schedule, as in the benchmark's `orders` scenario: one customer
/// with the collect scheme as default and 12 DEBIT instructions.
fn order_body(order_ref: &str, scheme_id: &str) -> Value {
    let instructions: Vec<Value> = (1..=12)
        .map(|month| {
            json!({
                "instructionRef": format!("{order_ref}-m{month:02}"),
                "customerRef": "customer-1",
                "direction": "DEBIT",
                "amount": "49.90",
                "currency": "EUR",
                "country": "DE",
                "settledByDate": format!("2099-{month:02}-01"),
            })
        })
        .collect();
    json!({
        "orderRef": order_ref,
        "customerDefaults": { "customer-1": { "schemeId": scheme_id } },
        "instructions": instructions,
    })
}

#[tokio::test]
async fn an_order_of_twelve_instructions_costs_a_bounded_amount_of_database_work() {
    let log = StatementLog::install();
    let app = TestApp::spawn().await;
    let (backend, bounds) = if app.pg.is_some() { ("PostgreSQL", POSTGRES) } else { ("SQLite", SQLITE) };
    let admin = app.admin_token().await;
    let tenant = app.create_tenant(&admin, "Cost tenant").await;
    let key = app.create_tenant_key(&admin, &tenant, &["tenant-admin"]).await;
    let token = app.token(&key).await;
    let reply = app.send(Method::POST, "/v1/marketplace/apps/SANDBOX_BANK/install", Some(&token), &[], None).await;
    reply.assert_status(200);
    let scheme = json!({ "name": "Collect", "rules": [{ "apps": [{ "appId": "SANDBOX_BANK" }] }] });
    let scheme = app.post("/v1/schemes/collect", &token, &scheme).await;
    let scheme_id = scheme.assert_status(201)["schemeId"].as_str().unwrap().to_string();

    // Warm up (statements prepared, the routing copies filled), then what a worker
    // round costs when nothing is new: it is taken off the measured round.
    app.post("/v1/order-management", &token, &order_body("warm-up", &scheme_id)).await.assert_status(202);
    app.tick().await;
    let window = Window::open(&log);
    app.tick().await;
    let idle = window.close(&log);

    let window = Window::open(&log);
    app.post("/v1/order-management", &token, &order_body("measured", &scheme_id)).await.assert_status(202);
    let round = app.tick().await;
    let measured = window.close(&log);
    // The order's statements: the measured window less one of each statement of the
    // round with nothing new.
    let mut ours = measured.statements.clone();
    for idle in &idle.statements {
        if let Some(i) = ours.iter().position(|s| s == idle) {
            ours.remove(i);
        }
    }
    // SQLite's group writer sends several statements in one query (one round trip).
    let round_trips = ours.len();
    let statements: usize = ours.iter().map(|s| s.split("; ").count()).sum();
    let commits = match app.pg {
        Some(_) => measured.commit_statements - idle.commit_statements,
        None => measured.sqlite_commits - idle.sqlite_commits,
    };
    let events: Vec<_> = app
        .engine()
        .outbox_events(&tenant)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event.data.contains("\"orderRef\":\"measured\""))
        .collect();
    let outbox_bytes: usize = events
        .iter()
        .map(|e| {
            let e = &e.event;
            // The text of each column, and 8 bytes for each number (seq, created_at, dispatched_at).
            e.event_id.len()
                + e.account_id.as_deref().map_or(0, str::len)
                + e.tenant_id.as_deref().map_or(0, str::len)
                + e.event_type.as_str().len()
                + e.ordering_key.as_deref().map_or(0, str::len)
                + e.data.len()
                + 24
        })
        .sum();
    let per_instruction = outbox_bytes / 12;
    let listing = ours.iter().map(|s| format!("  {s}")).collect::<Vec<_>>().join("\n");
    eprintln!(
        "{backend}: {statements} statements in {round_trips} round trips, {commits} commits, {} outbox rows of {per_instruction} bytes per \
         instruction; the worker round fanned out {} events (a round with nothing new: {} statements)\n{listing}",
        events.len(),
        round.webhooks.events_dispatched,
        idle.statements.len(),
    );

    assert_eq!(events.len(), 12, "one instruction.created per instruction");
    assert!(
        events.iter().all(|e| e.dispatched_at.is_some()),
        "no endpoint wants them: the outbox rows are written dispatched, so the fan-out never rewrites them"
    );
    assert!(
        statements <= bounds.statements,
        "{backend}: an order of 12 instructions sent {statements} statements (bound {}); \
         the order path does more work than it did (see bench/compare.sh):\n{listing}",
        bounds.statements
    );
    assert!(
        round_trips <= bounds.round_trips,
        "{backend}: an order of 12 instructions took {round_trips} round trips to the driver (bound {}):\n{listing}",
        bounds.round_trips
    );
    assert!(
        commits <= bounds.commits,
        "{backend}: an order of 12 instructions and its fan-out committed {commits} transactions (bound {}):\n{listing}",
        bounds.commits
    );
    assert!(
        per_instruction <= bounds.outbox_bytes_per_instruction,
        "{backend}: {per_instruction} bytes written to the outbox per instruction (bound {})",
        bounds.outbox_bytes_per_instruction
    );
}
