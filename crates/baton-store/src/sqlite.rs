//! SQLite backend: one embedded database file in WAL mode.
//!
//! Writes go through a single-connection pool, so write transactions never contend
//! for SQLite's one write lock inside a process (no `SQLITE_BUSY` on lock upgrade);
//! reads use a separate pool and proceed concurrently under WAL.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Sqlite, Transaction};

use crate::migrations::migrator;
use crate::{Backend, StoreResult};

type Db = Sqlite;
type ThisStore = SqliteStore;

/// Migrations, embedded in the binary.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "core", include_str!("../migrations/sqlite/0001_core.sql")),
    (2, "apps_schemes_rewards", include_str!("../migrations/sqlite/0002_apps_schemes_rewards.sql")),
    (3, "customer_keys", include_str!("../migrations/sqlite/0003_customer_keys.sql")),
    (4, "financial_instruments", include_str!("../migrations/sqlite/0004_financial_instruments.sql")),
    (5, "orders_instructions", include_str!("../migrations/sqlite/0005_orders_instructions.sql")),
    (6, "order_listing", include_str!("../migrations/sqlite/0006_order_listing.sql")),
    (7, "instruction_order_index", include_str!("../migrations/sqlite/0007_instruction_order_index.sql")),
];

pub struct SqliteStore {
    reader: Pool<Sqlite>,
    writer: Pool<Sqlite>,
}

impl SqliteStore {
    const BACKEND: Backend = Backend::Sqlite;

    /// Opens (creating if needed) the database file at `path`.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            // Overwrite freed content with zeros, so a shredded data key does not linger in free pages.
            .pragma("secure_delete", "on")
            .busy_timeout(Duration::from_secs(10));
        // No ping before each checkout: an embedded file cannot drop a connection, and
        // the extra round trip through the driver's thread costs more than the query.
        let writer = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await?;
        let reader = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self { reader, writer })
    }

    fn reader(&self) -> &Pool<Sqlite> {
        &self.reader
    }

    /// Single-statement writes run on the write connection without a transaction.
    fn writer(&self) -> &Pool<Sqlite> {
        &self.writer
    }

    /// `BEGIN IMMEDIATE` takes the write lock up front, so the busy timeout applies.
    /// A deferred transaction that reads and then writes would instead fail at once
    /// with "database is locked" whenever another process (a second node, `baton
    /// init`, a maintenance run) committed in between.
    async fn begin_write(&self) -> StoreResult<Transaction<'_, Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn write_order(&self, new: orders_sql::NewOrder<'_>) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        orders_sql::insert_order(&mut tx, &new).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Writers are serialised by the single write connection; nothing more to lock.
    async fn lock_account(_tx: &mut Transaction<'_, Sqlite>, _account_id: &str) -> StoreResult<()> {
        Ok(())
    }

    /// Writers are serialised by the single write connection; nothing more to lock.
    async fn lock_tenant(_tx: &mut Transaction<'_, Sqlite>, _tenant_id: &str) -> StoreResult<()> {
        Ok(())
    }

    /// `secure_delete` zeroes the old cell in the database page, but earlier versions
    /// of the page stay in the write-ahead log until it is reused: checkpoint and
    /// truncate it, so erased key material is gone from disk too. Best effort: a
    /// long-running reader may keep some frames until the next checkpoint, and the
    /// erasure itself has already committed.
    async fn purge_deleted_bytes(&self) {
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&self.writer).await {
            tracing::warn!(error = %e, "could not checkpoint the write-ahead log after erasing key material");
        }
    }

    async fn run_migrations(&self) -> StoreResult<()> {
        migrator(MIGRATIONS).run(&self.writer).await?;
        Ok(())
    }

    async fn close_pools(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

include!("portable.rs");
include!("portable_routing.rs");
include!("portable_vault.rs");
include!("portable_instruments.rs");
include!("portable_orders.rs");
