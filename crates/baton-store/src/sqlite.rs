//! SQLite backend: one embedded database file in WAL mode.
//!
//! Writes go through a single-connection pool, so write transactions never contend
//! for SQLite's one write lock inside a process (no `SQLITE_BUSY` on lock upgrade);
//! reads use a separate pool and proceed concurrently under WAL.
//!
//! New orders and the change lists of execution (`ExecutionStore::apply`) are committed
//! in groups: each caller hands its write to one task, which writes everything waiting
//! at that moment in one transaction (the orders with a few statements for all of them,
//! then each change list) and answers each caller after the commit. The writer is then
//! held, and the file committed, per group rather than per write. An order whose
//! `orderRef` is taken is skipped and refused alone; if anything else goes wrong in the
//! group — a statement fails (a repeated instruction ref, say) or a guarded change finds
//! its row moved — the group is rolled back and each of its writes is made in its own
//! transaction, so every caller gets the result it would have had alone. Nobody is
//! answered before the commit that holds their write; a write handed over is made even
//! if its caller stops waiting.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Sqlite, Transaction};
use tokio::sync::{mpsc, oneshot};

use crate::migrations::migrator;
use crate::{Backend, Change, CustomerDefaultRecord, InstructionRecord, OrderRecord, StoreResult};

type Db = Sqlite;
/// How a claim skips rows another worker holds (see `portable_execution.rs`).
const SKIP_LOCKED: &str = "";
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
    (8, "execution", include_str!("../migrations/sqlite/0008_execution.sql")),
    (9, "webhooks", include_str!("../migrations/sqlite/0009_webhooks.sql")),
    (10, "checkout", include_str!("../migrations/sqlite/0010_checkout.sql")),
    (11, "pay_by_links", include_str!("../migrations/sqlite/0011_pay_by_links.sql")),
    (12, "routing_version", include_str!("../migrations/sqlite/0012_routing_version.sql")),
    (13, "due_instructions", include_str!("../migrations/sqlite/0013_due_instructions.sql")),
    (14, "chargeback_listing", include_str!("../migrations/sqlite/0014_chargeback_listing.sql")),
    (15, "transactions_by_instruction", include_str!("../migrations/sqlite/0015_transactions_by_instruction.sql")),
    (16, "node_heartbeats", include_str!("../migrations/sqlite/0016_node_heartbeats.sql")),
];

pub struct SqliteStore {
    reader: Pool<Sqlite>,
    writer: Pool<Sqlite>,
    /// New orders and change lists, to the task committing them in groups ([`commit_writes`]).
    writes: mpsc::UnboundedSender<Pending>,
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
            // A multi-row statement in a transaction keeps a statement journal (each page
            // it changes, before the change, to undo the statement alone); past 64 KiB
            // SQLite spills it to a temporary file, which the group commit's statements
            // did on every group: a write system call per page. Keep it in memory.
            .pragma("temp_store", "memory")
            .busy_timeout(Duration::from_secs(10));
        // No ping before each checkout: an embedded file cannot drop a connection, and
        // the extra round trip through the driver's thread costs more than the query.
        let writer = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30));
        // Tests bound the commits an operation causes (`testing::sqlite_commits`).
        #[cfg(feature = "test-support")]
        let writer = writer.after_connect(|conn, _| {
            Box::pin(async move {
                conn.lock_handle().await?.set_commit_hook(|| {
                    crate::testing::SQLITE_COMMITS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    true
                });
                Ok(())
            })
        });
        let writer = writer.connect_with(options.clone()).await?;
        let reader = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.read_only(true))
            .await?;
        // The task ends when the store is dropped (and with it the sending side).
        let (writes, queue) = mpsc::unbounded_channel();
        tokio::spawn(commit_writes(writer.clone(), queue));
        Ok(Self { reader, writer, writes })
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
        begin_immediate(&self.writer).await
    }

    /// Queues the order for the next group commit and waits for its own result.
    async fn write_order(&self, new: orders_sql::NewOrder<'_>) -> StoreResult<Vec<InstructionRecord>> {
        let (done, result) = oneshot::channel();
        let pending = PendingOrder {
            order: new.order.clone(),
            defaults: new.defaults.to_vec(),
            instructions: new.instructions.to_vec(),
            announce: new.announce.cloned(),
            announced: new.announced.to_vec(),
            done,
        };
        self.writes.send(Pending::Order(pending)).map_err(|_| group_writer_stopped())?;
        result.await.map_err(|_| group_writer_stopped())?
    }

    /// Queues the changes for the next group commit and waits for their own result.
    async fn write_changes(&self, changes: &[Change], now: i64) -> StoreResult<bool> {
        let (done, result) = oneshot::channel();
        let pending = PendingChanges { changes: changes.to_vec(), now, done };
        self.writes.send(Pending::Changes(pending)).map_err(|_| group_writer_stopped())?;
        result.await.map_err(|_| group_writer_stopped())?
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

async fn begin_immediate(writer: &Pool<Sqlite>) -> StoreResult<Transaction<'static, Sqlite>> {
    Ok(writer.begin_with("BEGIN IMMEDIATE").await?)
}

fn group_writer_stopped() -> crate::StoreError {
    crate::StoreError::Database("the group writer has stopped".into())
}

/// At most this many writes, and about this many instructions, are committed together:
/// a group holds the writer (and delays other writes) for a bounded time.
const GROUP_WRITES: usize = 64;
const GROUP_INSTRUCTIONS: usize = 2_000;

/// A write waiting for the group commit.
enum Pending {
    Order(PendingOrder),
    Changes(PendingChanges),
}

/// An order waiting for the group commit, with the channel of its caller's result.
struct PendingOrder {
    order: OrderRecord,
    defaults: Vec<CustomerDefaultRecord>,
    instructions: Vec<InstructionRecord>,
    announce: Option<crate::Announcement>,
    /// The announcements made before the handover (see `orders_sql::announcements`).
    announced: Vec<crate::EventRecord>,
    /// The instructions as stored.
    done: oneshot::Sender<StoreResult<Vec<InstructionRecord>>>,
}

impl PendingOrder {
    fn new_order(&self) -> orders_sql::NewOrder<'_> {
        orders_sql::NewOrder {
            order: &self.order,
            defaults: &self.defaults,
            instructions: &self.instructions,
            announce: self.announce.as_ref(),
            announced: &self.announced,
        }
    }
}

/// A change list of `ExecutionStore::apply` waiting for the group commit.
struct PendingChanges {
    changes: Vec<Change>,
    now: i64,
    done: oneshot::Sender<StoreResult<bool>>,
}

impl Pending {
    fn instructions(&self) -> usize {
        match self {
            Pending::Order(o) => o.instructions.len(),
            Pending::Changes(_) => 0,
        }
    }

    fn order_id(&self) -> Option<&str> {
        match self {
            Pending::Order(o) => Some(&o.order.order_id),
            Pending::Changes(_) => None,
        }
    }

    /// Writes it in its own transaction and answers its caller.
    async fn commit_alone(self, writer: &Pool<Sqlite>) {
        match self {
            Pending::Order(o) => {
                let result = commit_order_alone(writer, &o.new_order()).await;
                let _ = o.done.send(result);
            }
            Pending::Changes(c) => {
                let result = commit_changes_alone(writer, &c.changes, c.now).await;
                let _ = c.done.send(result);
            }
        }
    }

    /// Tells its caller that the group holding it could not be committed.
    fn fail(self, message: &str) {
        let error = || crate::StoreError::Database(message.to_string().into());
        match self {
            Pending::Order(o) => {
                let _ = o.done.send(Err(error()));
            }
            Pending::Changes(c) => {
                let _ = c.done.send(Err(error()));
            }
        }
    }
}

/// Commits queued writes, each time all those waiting (within the group limits), until
/// the store is dropped. Under load, writes arrive while a group is being written and
/// form the next group; alone, a write is made at once.
async fn commit_writes(writer: Pool<Sqlite>, mut queue: mpsc::UnboundedReceiver<Pending>) {
    let mut held_back = None;
    loop {
        let first = match held_back.take() {
            Some(first) => first,
            None => match queue.recv().await {
                Some(first) => first,
                None => return,
            },
        };
        let mut instructions = first.instructions();
        let mut group = vec![first];
        while group.len() < GROUP_WRITES && instructions < GROUP_INSTRUCTIONS {
            let Ok(next) = queue.try_recv() else { break };
            // Order ids are distinct within a group (`insert_group` tells orders apart
            // by id): a repeated id waits for the next group.
            if let Some(id) = next.order_id() {
                if group.iter().any(|p| p.order_id() == Some(id)) {
                    held_back = Some(next);
                    break;
                }
            }
            instructions += next.instructions();
            group.push(next);
        }
        let (writes, started) = (group.len(), std::time::Instant::now());
        // On a task of its own, so that a panic fails this group's callers (their
        // answers are dropped) and not every write after it.
        let _ = tokio::spawn(commit_group(writer.clone(), group)).await;
        // The writer's group sizes and queue, for profiling (`BATON_LOG=baton_store::sqlite=trace`).
        tracing::trace!(
            writes,
            instructions,
            held_us = started.elapsed().as_micros() as u64,
            waiting = queue.len(),
            "group committed"
        );
    }
}

/// Writes a group in one transaction and answers each caller. If one of its statements
/// fails or one of its guarded changes is refused (one write's data or race may be the
/// cause), the writes are then made each in its own transaction, so that the outcome
/// stays with its write. If beginning or committing fails, that is no write's doing and
/// every caller gets the error.
async fn commit_group(writer: Pool<Sqlite>, group: Vec<Pending>) {
    // A lone order too: the group's statements take fewer round trips to the writer.
    if group.len() > 1 || matches!(group.first(), Some(Pending::Order(_))) {
        match commit_together(&writer, &group).await {
            Ok(written) => {
                let mut written = written.into_iter();
                for pending in group {
                    // A caller that has gone away no longer needs its answer.
                    match pending {
                        Pending::Order(o) => {
                            let result = written
                                .next()
                                .flatten()
                                .ok_or_else(|| crate::StoreError::Conflict("orders_ref_unique".into()));
                            let _ = o.done.send(result);
                        }
                        Pending::Changes(c) => {
                            let _ = c.done.send(Ok(true));
                        }
                    }
                }
                return;
            }
            Err(GroupFailure::Transaction(e)) => {
                let message = e.to_string();
                for pending in group {
                    pending.fail(&message);
                }
                return;
            }
            Err(GroupFailure::Statement(e)) => {
                tracing::debug!(error = %e, writes = group.len(), "a group of writes failed; committing each alone");
            }
            Err(GroupFailure::Refused) => {
                tracing::debug!(writes = group.len(), "a change of a group was refused; committing each alone");
            }
        }
    }
    for pending in group {
        pending.commit_alone(&writer).await;
    }
}

/// Why a group was not committed.
enum GroupFailure {
    /// A statement failed.
    Statement(crate::StoreError),
    /// A guarded change found its row moved.
    Refused,
    /// Beginning or committing the transaction failed.
    Transaction(crate::StoreError),
}

/// Writes the group's orders with their events (see [`insert_group`]; returns, per
/// order in group order, its instructions as stored if it was written), then each
/// change list, in one transaction; the change lists' events go in last, together.
async fn commit_together(
    writer: &Pool<Sqlite>,
    group: &[Pending],
) -> Result<Vec<Option<Vec<InstructionRecord>>>, GroupFailure> {
    let orders: Vec<_> = group
        .iter()
        .filter_map(|p| match p {
            Pending::Order(o) => Some(o.new_order()),
            Pending::Changes(_) => None,
        })
        .collect();
    let mut tx = begin_immediate(writer).await.map_err(GroupFailure::Transaction)?;
    let written = if orders.is_empty() {
        Vec::new()
    } else {
        insert_group(&mut tx, &orders).await.map_err(GroupFailure::Statement)?
    };
    // The change lists' events are written last, all in one statement.
    let mut events: Vec<&crate::EventRecord> = Vec::new();
    for pending in group {
        if let Pending::Changes(c) = pending {
            let applied = apply_changes_but_events(&mut tx, &c.changes, c.now, Some(&mut events))
                .await
                .map_err(GroupFailure::Statement)?;
            if !applied {
                return Err(GroupFailure::Refused);
            }
        }
    }
    execution_sql::insert_events(&mut tx, &events).await.map_err(GroupFailure::Statement)?;
    tx.commit().await.map_err(|e| GroupFailure::Transaction(e.into()))?;
    Ok(written)
}

async fn commit_order_alone(
    writer: &Pool<Sqlite>,
    new: &orders_sql::NewOrder<'_>,
) -> StoreResult<Vec<InstructionRecord>> {
    let mut tx = begin_immediate(writer).await?;
    let stored = orders_sql::insert_order(&mut tx, new).await?;
    tx.commit().await?;
    Ok(stored)
}

async fn commit_changes_alone(writer: &Pool<Sqlite>, changes: &[Change], now: i64) -> StoreResult<bool> {
    let mut tx = begin_immediate(writer).await?;
    if !apply_changes(&mut tx, changes, now).await? {
        tx.rollback().await?;
        return Ok(false);
    }
    tx.commit().await?;
    Ok(true)
}

/// Orders per statement in a group's statements: 6 parameters a row for the orders, 8
/// for their defaults, 2 for the status query; far below SQLite's limit (32,766).
const ORDERS_PER_STATEMENT: usize = 200;

/// Writes a group of new orders in the caller's transaction with a few statements for
/// all of them, in two round trips to the writer's thread: the orders (one multi-row
/// insert), then one query holding a multi-row statement for each kind of row (the
/// defaults, the instructions, their events as announced before the write) and the
/// status query; then one update per resulting status and time, and a rewrite of the
/// events of instructions whose status changed. Returns, per order, its instructions
/// as stored, or `None` when its `orderRef` (or id) is already taken, by a stored order
/// or by an earlier order of the group (nothing of such an order is written). Any other
/// failure (a repeated instruction ref, a missing tenant) fails the whole call, and
/// the caller must roll back. Order ids must be distinct within the group.
async fn insert_group(
    tx: &mut Transaction<'_, Sqlite>,
    orders: &[orders_sql::NewOrder<'_>],
) -> StoreResult<Vec<Option<Vec<InstructionRecord>>>> {
    use std::collections::{BTreeMap, HashSet};

    use sqlx::Row as _;

    let mut inserted = HashSet::new();
    for chunk in orders.chunks(ORDERS_PER_STATEMENT) {
        let mut query =
            sqlx::QueryBuilder::<Sqlite>::new(format!("INSERT INTO orders ({}) ", orders_sql::ORDER_COLUMNS));
        query.push_values(chunk, |mut row, o| {
            row.push_bind(&o.order.order_id)
                .push_bind(&o.order.tenant_id)
                .push_bind(&o.order.order_ref)
                .push_bind(&o.order.metadata)
                .push_bind(o.order.created_at)
                .push_bind(o.order.updated_at);
        });
        // Only the rows actually inserted come back: a taken ref (or id) skips its row.
        query.push(" ON CONFLICT DO NOTHING RETURNING order_id");
        for row in query.build().fetch_all(&mut **tx).await? {
            inserted.insert(row.try_get::<String, _>("order_id")?);
        }
    }
    let written: Vec<bool> = orders.iter().map(|o| inserted.contains(&o.order.order_id)).collect();
    let kept: Vec<&orders_sql::NewOrder<'_>> =
        orders.iter().zip(&written).filter(|(_, w)| **w).map(|(o, _)| o).collect();

    // Upserting a customer twice leaves the last one whole, and one statement must not
    // upsert a row twice: keep only the last.
    let mut defaults = BTreeMap::new();
    for d in kept.iter().flat_map(|o| o.defaults) {
        defaults.insert((d.order_id.as_str(), d.customer_ref.as_str()), d);
    }
    let defaults: Vec<&CustomerDefaultRecord> = defaults.into_values().collect();
    let instructions: Vec<&InstructionRecord> = kept.iter().flat_map(|o| o.instructions).collect();
    if kept.iter().any(|o| o.announce.is_some() && o.announced.len() != o.instructions.len()) {
        return Err(crate::StoreError::Corrupt("an order to announce came without its announcements".into()));
    }
    // The announcements as made before the write; those of instructions whose status
    // the re-resolution changes are rewritten below.
    let announced: Vec<&crate::EventRecord> = kept.iter().flat_map(|o| o.announced).collect();
    let kept_orders: Vec<&OrderRecord> = kept.iter().map(|o| o.order).collect();

    // The defaults, the instructions, their events and the status query go to the
    // writer's thread as one query of several statements: one round trip, not one each.
    let mut query = sqlx::QueryBuilder::<Sqlite>::new("");
    let next = |query: &mut sqlx::QueryBuilder<'_, Sqlite>| {
        if !query.sql().is_empty() {
            query.push("; ");
        }
    };
    for chunk in defaults.chunks(ORDERS_PER_STATEMENT) {
        next(&mut query);
        query.push(format!("INSERT INTO customer_defaults ({}) ", orders_sql::DEFAULT_COLUMNS));
        query.push_values(chunk, |mut row, d| {
            row.push_bind(&d.order_id)
                .push_bind(&d.customer_ref)
                .push_bind(&d.financial_instrument_id)
                .push_bind(d.instrument_source.as_str())
                .push_bind(&d.scheme_id)
                .push_bind(d.scheme_source.as_str())
                .push_bind(&d.metadata)
                .push_bind(d.updated_at);
        });
        query.push(" ").push(orders_sql::DEFAULT_CONFLICT);
    }
    for chunk in instructions.chunks(orders_sql::INSTRUCTIONS_PER_STATEMENT) {
        next(&mut query);
        orders_sql::push_instruction_insert(&mut query, chunk);
    }
    for chunk in announced.chunks(500) {
        next(&mut query);
        execution_sql::push_event_insert(&mut query, chunk)?;
    }
    // `orders_sql::refresh` of every instruction of the new orders.
    let marker = "\u{1}filter\u{1}";
    let refresh = orders_sql::refresh_query(marker);
    let (head, tail) = refresh.split_once(marker).expect("the filter is in the query");
    for chunk in kept_orders.chunks(ORDERS_PER_STATEMENT) {
        next(&mut query);
        query.push(head).push("(");
        for (i, o) in chunk.iter().enumerate() {
            query.push(if i == 0 { "(i.order_id = " } else { " OR (i.order_id = " });
            query.push_bind(&o.order_id).push(" AND i.tenant_id = ").push_bind(&o.tenant_id).push(")");
        }
        query.push(")").push(tail);
    }
    let rows = if query.sql().is_empty() { Vec::new() } else { query.build().fetch_all(&mut **tx).await? };
    let changes = apply_refresh(tx, &kept_orders, &rows).await?;

    let stored = orders
        .iter()
        .zip(written)
        .map(|(o, written)| {
            written.then(|| orders_sql::as_stored(&o.instructions.iter().collect::<Vec<_>>(), &changes))
        })
        .collect::<Vec<_>>();
    // An instruction whose status changed is announced again, as stored.
    for (o, stored) in orders.iter().zip(&stored) {
        let Some(stored) = stored else { continue };
        let events = orders_sql::announced_as_stored(o.announced, stored, &changes, o.announce)?;
        for (before, event) in o.announced.iter().zip(&events) {
            if let std::borrow::Cow::Owned(again) = event {
                sqlx::query("UPDATE events SET data = $1 WHERE event_id = $2")
                    .bind(&again.data)
                    .bind(&before.event_id)
                    .execute(&mut **tx)
                    .await?;
            }
        }
    }
    Ok(stored)
}

/// The status updates of `orders_sql::refresh` for the rows of its query over new
/// orders: one update per resulting status and time (each order's own `updated_at`).
/// Returns the instructions whose status changed, with their new status.
async fn apply_refresh(
    tx: &mut Transaction<'_, Sqlite>,
    orders: &[&OrderRecord],
    rows: &[sqlx::sqlite::SqliteRow],
) -> StoreResult<orders_sql::StatusChanges> {
    use std::collections::BTreeMap;

    use sqlx::Row as _;

    let mut changed = orders_sql::StatusChanges::new();
    let now: BTreeMap<&str, i64> = orders.iter().map(|o| (o.order_id.as_str(), o.updated_at)).collect();
    let mut changes: BTreeMap<(&'static str, i64), Vec<String>> = BTreeMap::new();
    for row in rows {
        if let Some(next) = orders_sql::status_change(row)? {
            let order_id: String = row.try_get("order_id")?;
            let at = now.get(order_id.as_str()).copied().ok_or_else(|| {
                crate::StoreError::Corrupt(format!("instruction of an unexpected order {order_id:?}"))
            })?;
            let id: String = row.try_get("instruction_id")?;
            changed.insert(id.clone(), next);
            changes.entry((next.as_str(), at)).or_default().push(id);
        }
    }
    for ((status, at), ids) in changes {
        for chunk in ids.chunks(500) {
            let mut query = sqlx::QueryBuilder::<Sqlite>::new("UPDATE instructions SET status = ");
            query.push_bind(status).push(", updated_at = ").push_bind(at).push(" WHERE instruction_id IN (");
            let mut list = query.separated(", ");
            for id in chunk {
                list.push_bind(id);
            }
            query.push(")");
            query.build().execute(&mut **tx).await?;
        }
    }
    Ok(changed)
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
