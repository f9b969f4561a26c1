//! PostgreSQL backend (15+). Several `baton` nodes may share one database: every
//! invariant that spans rows is enforced in a transaction that locks the owning
//! account row, and uniqueness by constraints.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Pool, Postgres, Transaction};

use crate::migrations::migrator;
use crate::{Backend, StoreResult};

type Db = Postgres;
/// How a claim skips rows another worker holds (see `portable_execution.rs`).
const SKIP_LOCKED: &str = "FOR UPDATE SKIP LOCKED";
type ThisStore = PostgresStore;

/// Migrations, embedded in the binary.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "core", include_str!("../migrations/postgres/0001_core.sql")),
    (2, "apps_schemes_rewards", include_str!("../migrations/postgres/0002_apps_schemes_rewards.sql")),
    (3, "customer_keys", include_str!("../migrations/postgres/0003_customer_keys.sql")),
    (4, "financial_instruments", include_str!("../migrations/postgres/0004_financial_instruments.sql")),
    (5, "orders_instructions", include_str!("../migrations/postgres/0005_orders_instructions.sql")),
    (6, "order_listing", include_str!("../migrations/postgres/0006_order_listing.sql")),
    (7, "instruction_order_index", include_str!("../migrations/postgres/0007_instruction_order_index.sql")),
    (8, "execution", include_str!("../migrations/postgres/0008_execution.sql")),
    (9, "webhooks", include_str!("../migrations/postgres/0009_webhooks.sql")),
    (10, "checkout", include_str!("../migrations/postgres/0010_checkout.sql")),
    (11, "pay_by_links", include_str!("../migrations/postgres/0011_pay_by_links.sql")),
    (12, "routing_version", include_str!("../migrations/postgres/0012_routing_version.sql")),
    (13, "due_instructions", include_str!("../migrations/postgres/0013_due_instructions.sql")),
    (14, "chargeback_listing", include_str!("../migrations/postgres/0014_chargeback_listing.sql")),
    (15, "transactions_by_instruction", include_str!("../migrations/postgres/0015_transactions_by_instruction.sql")),
    (16, "node_heartbeats", include_str!("../migrations/postgres/0016_node_heartbeats.sql")),
];

pub struct PostgresStore {
    pool: Pool<Postgres>,
}

impl PostgresStore {
    const BACKEND: Backend = Backend::Postgres;

    /// Connects to `url` with a pool of at most `max_connections`.
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url)?.application_name("baton");
        // No ping before each checkout (it doubles the round trips of a short query);
        // a connection broken by a server restart fails one query and is discarded,
        // and connections are recycled every 30 minutes regardless.
        let pool = PgPoolOptions::new()
            .test_before_acquire(false)
            .max_lifetime(Duration::from_secs(1800))
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        let store = Self { pool };
        for warning in store.setting_warnings().await? {
            tracing::warn!("{warning}");
        }
        Ok(store)
    }

    /// What in the server's settings will hurt Baton: with autovacuum off nothing
    /// gathers statistics, and a planner that knows no table's size may scan a whole
    /// tenant's rows to find one.
    pub async fn setting_warnings(&self) -> StoreResult<Vec<String>> {
        let autovacuum: String = sqlx::query_scalar("SHOW autovacuum").fetch_one(&self.pool).await?;
        Ok(if autovacuum == "off" {
            vec!["PostgreSQL's autovacuum is off: table statistics go stale and queries slow down as tables \
                  grow; turn it on, or run VACUUM ANALYZE regularly"
                .to_string()]
        } else {
            Vec::new()
        })
    }

    fn reader(&self) -> &Pool<Postgres> {
        &self.pool
    }

    fn writer(&self) -> &Pool<Postgres> {
        &self.pool
    }

    async fn begin_write(&self) -> StoreResult<Transaction<'_, Postgres>> {
        Ok(self.pool.begin().await?)
    }

    /// Serialises transactions that check an account-wide invariant (licence limits,
    /// the last admin key) across every node.
    async fn lock_account(tx: &mut Transaction<'_, Postgres>, account_id: &str) -> StoreResult<()> {
        sqlx::query("SELECT account_id FROM accounts WHERE account_id = $1 FOR UPDATE")
            .bind(account_id)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Serialises changes to one tenant's routing configuration across nodes (an app
    /// cannot be uninstalled while a draft that references it is being saved).
    async fn lock_tenant(tx: &mut Transaction<'_, Postgres>, tenant_id: &str) -> StoreResult<()> {
        sqlx::query("SELECT tenant_id FROM tenants WHERE tenant_id = $1 FOR UPDATE")
            .bind(tenant_id)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Each order in its own transaction: concurrent orders already commit in parallel
    /// on separate connections.
    async fn write_order(&self, new: orders_sql::NewOrder<'_>) -> StoreResult<Vec<crate::InstructionRecord>> {
        let mut tx = self.begin_write().await?;
        let stored = insert_order(&mut tx, &new).await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// Each change list in its own transaction, as for orders.
    async fn write_changes(&self, changes: &[crate::Change], now: i64) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        if !apply_changes(&mut tx, changes, now).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    /// PostgreSQL keeps old row versions until vacuum (and in WAL archives and
    /// backups until they expire); nothing to do synchronously here.
    async fn purge_deleted_bytes(&self) {}

    async fn run_migrations(&self) -> StoreResult<()> {
        migrator(MIGRATIONS).run(&self.pool).await?;
        Ok(())
    }

    async fn close_pools(&self) {
        self.pool.close().await;
    }
}

/// `orders_sql::insert_order` with one round trip fewer: the instructions' events, as
/// announced before the write, are inserted by a data-modifying CTE of the status
/// query; the event of an instruction whose status the re-resolution changes is then
/// rewritten, as stored.
async fn insert_order(
    tx: &mut Transaction<'_, Postgres>,
    new: &orders_sql::NewOrder<'_>,
) -> StoreResult<Vec<crate::InstructionRecord>> {
    if new.announce.is_some() && new.announced.len() != new.instructions.len() {
        return orders_sql::insert_order(tx, new).await;
    }
    let order = new.order;
    orders_sql::insert_order_row(tx, order).await?;
    for d in new.defaults {
        orders_sql::upsert_default(tx, d).await?;
    }
    let instructions: Vec<&crate::InstructionRecord> = new.instructions.iter().collect();
    orders_sql::insert_instructions(tx, &instructions).await?;
    let mut query = sqlx::QueryBuilder::<Postgres>::new("");
    let announced: Vec<&crate::EventRecord> =
        if new.announce.is_some() { new.announced.iter().collect() } else { Vec::new() };
    if !announced.is_empty() {
        query.push("WITH announced AS (");
        execution_sql::push_event_insert(&mut query, &announced)?;
        query.push(") ");
    }
    let marker = "\u{1}filter\u{1}";
    let refresh = orders_sql::refresh_query(marker);
    let (head, tail) = refresh.split_once(marker).expect("the filter is in the query");
    query.push(head).push("i.order_id = ").push_bind(&order.order_id);
    query.push(" AND i.tenant_id = ").push_bind(&order.tenant_id).push(tail);
    let rows = query.build().fetch_all(&mut **tx).await?;
    let changes = orders_sql::apply_status_rows(tx, &rows, order.updated_at).await?;
    let stored = orders_sql::as_stored(&instructions, &changes);
    let events = orders_sql::announced_as_stored(new.announced, &stored, &changes, new.announce)?;
    for (before, event) in new.announced.iter().zip(&events) {
        if let std::borrow::Cow::Owned(again) = event {
            sqlx::query("UPDATE events SET data = $1 WHERE event_id = $2")
                .bind(&again.data)
                .bind(&before.event_id)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(stored)
}

include!("portable.rs");
include!("portable_routing.rs");
include!("portable_vault.rs");
include!("portable_instruments.rs");
include!("portable_orders.rs");
include!("portable_execution.rs");
include!("portable_refunds.rs");
include!("portable_webhooks.rs");
include!("portable_checkout.rs");
include!("portable_pay_by_links.rs");
