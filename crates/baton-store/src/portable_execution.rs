// Portable SQL of `ExecutionStore`, `include!`d by `sqlite.rs` and `postgres.rs` after
// `portable_orders.rs` (same conventions and hooks). `SKIP_LOCKED` is the backend's
// row-claiming clause: `FOR UPDATE SKIP LOCKED` on PostgreSQL, nothing on SQLite,
// whose single writer already serialises claims.
//
// A change list is handed to the backend's `write_changes` hook, which applies it with
// `apply_changes`: PostgreSQL in a transaction of its own, SQLite together with the
// other writes waiting for its single writer (group commit, in `sqlite.rs`).

mod execution_sql {
    use baton_domain::{InstructionStatus, TransactionStatus};
    use sqlx::Row as _;

    use super::{Db, DbRow};
    use crate::execution_store::{EventRecord, JobRecord, StoredEvent, TransactionOutcome, TransactionRecord};
    use crate::{StoreError, StoreResult};

    pub(super) const TRANSACTION_COLUMNS: &str = "transaction_id, tenant_id, order_id, instruction_id, customer_ref, \
        financial_instrument_id, app_id, payment_method, operation, transaction_type, attempt, amount_minor, currency, \
        status, idempotency_key, provider_reference, decline_category, error_code, psp_code, psp_message, connector_ms, \
        reward_id, result_sealed, created_at, updated_at, finished_at, node_id";
    pub(super) const JOB_COLUMNS: &str =
        "job_id, kind, subject_id, tenant_id, payload, run_at, attempts, last_error, created_at";
    pub(super) const EVENT_COLUMNS: &str =
        "seq, event_id, account_id, tenant_id, event_type, ordering_key, data, created_at, dispatched_at";

    use crate::records::parse_word as word;

    pub(super) fn transaction_from_row(row: &DbRow) -> StoreResult<TransactionRecord> {
        Ok(TransactionRecord {
            transaction_id: row.try_get("transaction_id")?,
            tenant_id: row.try_get("tenant_id")?,
            order_id: row.try_get("order_id")?,
            instruction_id: row.try_get("instruction_id")?,
            customer_ref: row.try_get("customer_ref")?,
            financial_instrument_id: row.try_get("financial_instrument_id")?,
            app_id: row.try_get("app_id")?,
            payment_method: row.try_get("payment_method")?,
            operation: word(row.try_get("operation")?, "operation")?,
            transaction_type: word(row.try_get("transaction_type")?, "transaction type")?,
            attempt: i64::from(row.try_get::<i32, _>("attempt")?),
            amount_minor: row.try_get("amount_minor")?,
            currency: row.try_get("currency")?,
            status: word(row.try_get("status")?, "transaction status")?,
            idempotency_key: row.try_get("idempotency_key")?,
            provider_reference: row.try_get("provider_reference")?,
            decline_category: row
                .try_get::<Option<String>, _>("decline_category")?
                .map(|t| word(t, "decline category"))
                .transpose()?,
            error_code: row.try_get("error_code")?,
            psp_code: row.try_get("psp_code")?,
            psp_message: row.try_get("psp_message")?,
            connector_ms: row.try_get("connector_ms")?,
            reward_id: row.try_get("reward_id")?,
            result_sealed: row.try_get("result_sealed")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            finished_at: row.try_get("finished_at")?,
            node_id: row.try_get("node_id")?,
        })
    }

    pub(super) fn job_from_row(row: &DbRow) -> StoreResult<JobRecord> {
        Ok(JobRecord {
            job_id: row.try_get("job_id")?,
            kind: row.try_get("kind")?,
            subject_id: row.try_get("subject_id")?,
            tenant_id: row.try_get("tenant_id")?,
            payload: row.try_get("payload")?,
            run_at: row.try_get("run_at")?,
            attempts: i64::from(row.try_get::<i32, _>("attempts")?),
            last_error: row.try_get("last_error")?,
            created_at: row.try_get("created_at")?,
        })
    }

    pub(super) fn event_from_row(row: &DbRow) -> StoreResult<StoredEvent> {
        Ok(StoredEvent {
            seq: row.try_get("seq")?,
            event: EventRecord {
                event_id: row.try_get("event_id")?,
                account_id: Some(row.try_get("account_id")?),
                tenant_id: row.try_get("tenant_id")?,
                event_type: word(row.try_get("event_type")?, "event type")?,
                ordering_key: row.try_get("ordering_key")?,
                data: row.try_get("data")?,
                created_at: row.try_get("created_at")?,
            },
            dispatched_at: row.try_get("dispatched_at")?,
        })
    }

    pub(super) async fn insert_transaction(
        tx: &mut sqlx::Transaction<'_, Db>,
        t: &TransactionRecord,
    ) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO transactions ({TRANSACTION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
             $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27)"
        ))
        .bind(&t.transaction_id)
        .bind(&t.tenant_id)
        .bind(&t.order_id)
        .bind(&t.instruction_id)
        .bind(&t.customer_ref)
        .bind(&t.financial_instrument_id)
        .bind(&t.app_id)
        .bind(&t.payment_method)
        .bind(t.operation.as_str())
        .bind(t.transaction_type.as_str())
        .bind(t.attempt as i32)
        .bind(t.amount_minor)
        .bind(&t.currency)
        .bind(t.status.as_str())
        .bind(&t.idempotency_key)
        .bind(&t.provider_reference)
        .bind(t.decline_category.map(|c| c.as_str()))
        .bind(&t.error_code)
        .bind(&t.psp_code)
        .bind(&t.psp_message)
        .bind(t.connector_ms)
        .bind(&t.reward_id)
        .bind(&t.result_sealed)
        .bind(t.created_at)
        .bind(t.updated_at)
        .bind(t.finished_at)
        .bind(&t.node_id)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn finish_transaction(
        tx: &mut sqlx::Transaction<'_, Db>,
        tenant_id: &str,
        transaction_id: &str,
        from: &[TransactionStatus],
        to: TransactionStatus,
        o: &TransactionOutcome,
        now: i64,
    ) -> StoreResult<bool> {
        let finished_at = to.is_final().then_some(now);
        let n = sqlx::query(&format!(
            "UPDATE transactions SET status = $1, provider_reference = COALESCE($2, provider_reference), \
             decline_category = $3, error_code = $4, psp_code = $5, psp_message = $6, \
             connector_ms = COALESCE($7, connector_ms), result_sealed = COALESCE($8, result_sealed), \
             updated_at = $9, finished_at = $10 \
             WHERE transaction_id = $11 AND tenant_id = $12 AND status IN ({})",
            super::orders_sql::status_list(from)
        ))
        .bind(to.as_str())
        .bind(&o.provider_reference)
        .bind(o.decline_category.map(|c| c.as_str()))
        .bind(&o.error_code)
        .bind(&o.psp_code)
        .bind(&o.psp_message)
        .bind(o.connector_ms)
        .bind(&o.result_sealed)
        .bind(now)
        .bind(finished_at)
        .bind(transaction_id)
        .bind(tenant_id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    pub(super) async fn insert_event(tx: &mut sqlx::Transaction<'_, Db>, e: &EventRecord) -> StoreResult<()> {
        insert_events(tx, &[e]).await
    }

    /// Inserts events in order, with one statement for up to 500 of them. An event
    /// without an account takes its tenant's (and fails as `Corrupt` if the tenant is
    /// unknown).
    ///
    /// A tenant's event that none of the tenant's enabled endpoints subscribes to is
    /// written already dispatched: fanning it out would create nothing, and skipping
    /// that spares the fan-out reading and rewriting it (on SQLite, in the single
    /// writer). An endpoint enabled before the statement runs therefore still gets it;
    /// one enabled later gets the events written after it, as with the fan-out.
    pub(super) async fn insert_events(tx: &mut sqlx::Transaction<'_, Db>, events: &[&EventRecord]) -> StoreResult<()> {
        // 10 parameters an event: far below either engine's limit.
        for chunk in events.chunks(500) {
            insert_event_rows(tx, chunk).await?;
        }
        Ok(())
    }

    async fn insert_event_rows(tx: &mut sqlx::Transaction<'_, Db>, events: &[&EventRecord]) -> StoreResult<()> {
        let mut query = sqlx::QueryBuilder::<Db>::new("");
        push_event_insert(&mut query, events)?;
        match query.build().execute(&mut **tx).await {
            Ok(_) => Ok(()),
            // An event's tenant has no account: there is no such tenant.
            Err(sqlx::Error::Database(db)) if matches!(db.kind(), sqlx::error::ErrorKind::NotNullViolation) => {
                Err(StoreError::Corrupt(format!("an event names no known tenant: {db}")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The multi-row insert of `events` (at most 500), added to `query`.
    pub(super) fn push_event_insert<'a>(
        query: &mut sqlx::QueryBuilder<'a, Db>,
        events: &[&'a EventRecord],
    ) -> StoreResult<()> {
        if events.iter().any(|e| e.account_id.is_none() && e.tenant_id.is_none()) {
            return Err(StoreError::Corrupt("an event needs an account or a tenant".into()));
        }
        // The rows are a VALUES list selected from, so that the tenant's account and the
        // endpoints are looked up by one join and one correlated subquery for all of
        // them (per-row subqueries in a multi-row VALUES each open cursors of their own,
        // and SQLite's cost of opening one grows with those open). `column1…` are the
        // list's column names on both engines; the last keeps the rows in order. A
        // tenant's event is written dispatched unless an enabled endpoint of the tenant
        // names its type or `*`, as `WebhookEndpointRecord::wants` says, or more
        // (SQLite's LIKE ignores case; `_` matches any character): erring that way only
        // leaves an event to the fan-out.
        query.push(
            "INSERT INTO events (event_id, account_id, tenant_id, event_type, ordering_key, data, created_at, \
             dispatched_at) SELECT v.column1, COALESCE(v.column2, t.account_id), v.column3, v.column4, v.column5, \
             v.column6, v.column7, CASE WHEN v.column8 AND NOT EXISTS (SELECT 1 FROM webhook_endpoints ep \
             WHERE ep.account_id = COALESCE(v.column2, t.account_id) AND ep.tenant_id = v.column3 AND ep.enabled \
             AND (ep.event_types LIKE '%\"*\"%' OR ep.event_types LIKE v.column9)) THEN v.column7 END FROM (",
        );
        // The builder numbers placeholders as the backend wants: `?` on SQLite, whose
        // binding looks each `$N` name up by a linear scan (quadratic in a long statement).
        query.push_values(events.iter().enumerate(), |mut row, (i, e)| {
            let tenant_event = e.tenant_id.is_some() && !e.event_type.is_account_event();
            row.push_bind(&e.event_id)
                .push_bind(&e.account_id)
                .push_bind(&e.tenant_id)
                .push_bind(e.event_type.as_str())
                .push_bind(&e.ordering_key)
                .push_bind(&e.data)
                .push_bind(e.created_at)
                .push_bind(tenant_event)
                .push_bind(format!("%\"{}\"%", e.event_type.as_str()))
                .push_bind(i as i64);
        });
        query.push(") AS v LEFT JOIN tenants t ON t.tenant_id = v.column3 ORDER BY v.column10");
        Ok(())
    }

    pub(super) async fn schedule_job(tx: &mut sqlx::Transaction<'_, Db>, j: &JobRecord) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO jobs ({JOB_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (kind, subject_id) DO UPDATE SET payload = EXCLUDED.payload, run_at = EXCLUDED.run_at, \
             locked_until = NULL"
        ))
        .bind(&j.job_id)
        .bind(&j.kind)
        .bind(&j.subject_id)
        .bind(&j.tenant_id)
        .bind(&j.payload)
        .bind(j.run_at)
        .bind(j.attempts as i32)
        .bind(&j.last_error)
        .bind(j.created_at)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Instructions in `statuses` whose settle-by date compares with `today` (`$1`) by
    /// `op`, at most `limit`; `extra` may add conditions binding `$2` on.
    pub(super) fn due_query(statuses: &[InstructionStatus], op: &str, extra: &str, limit: u32) -> String {
        format!(
            "SELECT {} FROM instructions WHERE status IN ({}) AND settled_by_date IS NOT NULL \
             AND settled_by_date {op} $1 {extra} ORDER BY settled_by_date, created_at, instruction_id LIMIT {limit}",
            super::orders_sql::INSTRUCTION_COLUMNS,
            super::orders_sql::status_list(statuses)
        )
    }
}

/// Applies `changes` in order inside the caller's transaction (see
/// `ExecutionStore::apply`). `false` as soon as a guarded change finds its row absent or
/// moved: what was applied before it must then be rolled back by the caller.
async fn apply_changes(
    tx: &mut sqlx::Transaction<'_, Db>,
    changes: &[crate::Change],
    now: i64,
) -> StoreResult<bool> {
    apply_changes_but_events(tx, changes, now, None).await
}

/// [`apply_changes`], except that with `events` the events are not written but added to
/// it, for the caller to write later in the same transaction (nothing a change does
/// reads the outbox).
async fn apply_changes_but_events<'c>(
    tx: &mut sqlx::Transaction<'_, Db>,
    changes: &'c [crate::Change],
    now: i64,
    mut events: Option<&mut Vec<&'c crate::EventRecord>>,
) -> StoreResult<bool> {
    use crate::Change;
    let mut i = 0;
    while i < changes.len() {
        let change = &changes[i];
        i += 1;
        let applied = match change {
            Change::InsertTransaction(t) => {
                execution_sql::insert_transaction(tx, t).await?;
                true
            }
            Change::FinishTransaction { tenant_id, transaction_id, from, to, outcome } => {
                execution_sql::finish_transaction(tx, tenant_id, transaction_id, from, *to, outcome, now).await?
            }
            Change::InstructionStatus { tenant_id, order_id, instruction_id, from, to } => {
                orders_sql::change_status(tx, tenant_id, order_id, instruction_id, from, *to, now).await?
            }
            Change::InstrumentState { tenant_id, customer_ref, instrument_id, from, to, reason } => {
                instruments_sql::change_state(tx, tenant_id, customer_ref, instrument_id, *from, *to, *reason, now)
                    .await?
            }
            Change::InstrumentTokens { tenant_id, customer_ref, instrument_id, provider_tokens_sealed } => {
                sqlx::query(
                    "UPDATE financial_instruments SET provider_tokens_sealed = $1, updated_at = $2 \
                     WHERE financial_instrument_id = $3 AND tenant_id = $4 AND customer_ref = $5",
                )
                .bind(provider_tokens_sealed)
                .bind(now)
                .bind(instrument_id)
                .bind(tenant_id)
                .bind(customer_ref)
                .execute(&mut **tx)
                .await?
                .rows_affected()
                    == 1
            }
            Change::Event(e) => {
                // A run of events is one statement.
                let mut run = vec![e];
                while let Some(Change::Event(next)) = changes.get(i) {
                    run.push(next);
                    i += 1;
                }
                match events.as_deref_mut() {
                    Some(later) => later.extend(run),
                    None => execution_sql::insert_events(tx, &run).await?,
                }
                true
            }
            Change::StartProcessing { seen, default } => {
                orders_sql::start_processing(tx, seen, default.as_deref(), now).await?
            }
            Change::ScheduleJob(j) => {
                execution_sql::schedule_job(tx, j).await?;
                true
            }
            Change::DeleteJobFor { kind, subject_id } => {
                sqlx::query("DELETE FROM jobs WHERE kind = $1 AND subject_id = $2")
                    .bind(kind)
                    .bind(subject_id)
                    .execute(&mut **tx)
                    .await?;
                true
            }
            Change::DeleteJob { job_id } => {
                sqlx::query("DELETE FROM jobs WHERE job_id = $1").bind(job_id).execute(&mut **tx).await?;
                true
            }
            Change::InsertInstrument(r) => {
                instruments_sql::insert_instrument(tx, r).await?;
                true
            }
            Change::AttachInstrument { tenant_id, order_id, instruction_id, instrument_id, source } => {
                sqlx::query(
                    "UPDATE instructions SET financial_instrument_id = $1, instrument_source = $2, updated_at = $3 \
                     WHERE instruction_id = $4 AND tenant_id = $5 AND order_id = $6",
                )
                .bind(instrument_id)
                .bind(source.as_str())
                .bind(now)
                .bind(instruction_id)
                .bind(tenant_id)
                .bind(order_id)
                .execute(&mut **tx)
                .await?
                .rows_affected()
                    == 1
            }
            Change::DebitRewardAccount { tenant_id, app_id, amount_minor } => {
                // One conditional statement: concurrent claims can never overdraw the account.
                sqlx::query(
                    "UPDATE reward_accounts SET balance_minor = balance_minor - $1, updated_at = $2 \
                     WHERE tenant_id = $3 AND app_id = $4 AND balance_minor >= $1",
                )
                .bind(amount_minor)
                .bind(now)
                .bind(tenant_id)
                .bind(app_id)
                .execute(&mut **tx)
                .await?
                .rows_affected()
                    == 1
            }
            Change::CreditRewardAccount { tenant_id, app_id, amount_minor } => {
                sqlx::query(
                    "UPDATE reward_accounts SET balance_minor = balance_minor + $1, updated_at = $2 \
                     WHERE tenant_id = $3 AND app_id = $4",
                )
                .bind(amount_minor)
                .bind(now)
                .bind(tenant_id)
                .bind(app_id)
                .execute(&mut **tx)
                .await?
                .rows_affected()
                    == 1
            }
            Change::InsertRefund { refund, limit_minor } => refunds_sql::insert_refund(tx, refund, *limit_minor).await?,
            Change::FinishRefund { tenant_id, refund_id, from, to, outcome } => {
                refunds_sql::finish_refund(tx, tenant_id, refund_id, from, *to, outcome, now).await?
            }
            Change::InsertChargeback(c) => refunds_sql::insert_chargeback(tx, c).await?,
            Change::ChargebackStatus { tenant_id, chargeback_id, from, to, evidence } => {
                refunds_sql::chargeback_status(tx, tenant_id, chargeback_id, *from, *to, evidence.as_deref(), now)
                    .await?
            }
            Change::InsertPayByLink(link) => {
                pay_by_links_sql::insert_link(tx, link).await?;
                true
            }
            Change::PayByLinkStatus { tenant_id, pay_by_link_id, from, to } => {
                pay_by_links_sql::link_status(tx, tenant_id, pay_by_link_id, from, *to, now).await?
            }
            Change::PayByLinkLive { tenant_id, pay_by_link_id } => {
                pay_by_links_sql::link_live(tx, tenant_id, pay_by_link_id, now).await?
            }
            Change::InstructionStatusIn { tenant_id, instruction_id, statuses } => sqlx::query(&format!(
                "SELECT 1 FROM instructions WHERE instruction_id = $1 AND tenant_id = $2 AND status IN ({})",
                orders_sql::status_list(statuses)
            ))
            .bind(instruction_id)
            .bind(tenant_id)
            .fetch_optional(&mut **tx)
            .await?
            .is_some(),
            Change::InsertMessageDelivery(d) => {
                pay_by_links_sql::insert_delivery(tx, d).await?;
                true
            }
            Change::MessageDeliveryStatus { tenant_id, delivery_id, from, to, attempts, last_error } => {
                pay_by_links_sql::delivery_status(
                    tx,
                    tenant_id,
                    delivery_id,
                    *from,
                    *to,
                    *attempts,
                    last_error.as_deref(),
                    now,
                )
                .await?
            }
        };
        if !applied {
            return Ok(false);
        }
    }
    Ok(true)
}

#[async_trait]
impl crate::ExecutionStore for ThisStore {
    async fn apply(&self, changes: &[crate::Change], now: i64) -> StoreResult<bool> {
        self.write_changes(changes, now).await
    }

    async fn execution_subject(
        &self,
        tenant_id: &str,
        order_ref: &str,
        instruction_ref: &str,
    ) -> StoreResult<Option<crate::ExecutionSubject>> {
        // The effective instrument as the engine resolves it: the instruction's own, else,
        // while it is updatable, the customer default's.
        let updatable = baton_domain::InstructionStatus::ALL.iter().filter(|s| s.can_update()).collect::<Vec<_>>();
        let sql = format!(
            "SELECT {}, {}, {}, {}, {}, t.routing_version AS routing_version \
             FROM orders o JOIN tenants t ON t.tenant_id = o.tenant_id \
             LEFT JOIN instructions i ON i.order_id = o.order_id AND i.tenant_id = o.tenant_id \
               AND i.instruction_ref = $3 \
             LEFT JOIN customer_defaults d ON d.order_id = o.order_id AND d.customer_ref = i.customer_ref \
             LEFT JOIN financial_instruments f ON f.tenant_id = o.tenant_id AND f.customer_ref = i.customer_ref \
               AND f.financial_instrument_id = CASE WHEN i.status IN ({}) \
                 THEN COALESCE(i.financial_instrument_id, d.financial_instrument_id) ELSE i.financial_instrument_id END \
             LEFT JOIN customer_keys k ON k.tenant_id = o.tenant_id AND k.customer_ref = i.customer_ref \
             WHERE o.tenant_id = $1 AND o.order_ref = $2",
            prefixed(orders_sql::ORDER_COLUMNS, "o", "o_"),
            prefixed(orders_sql::INSTRUCTION_COLUMNS, "i", "i_"),
            prefixed(orders_sql::DEFAULT_COLUMNS, "d", "d_"),
            prefixed(instruments_sql::INSTRUMENT_COLUMNS, "f", "f_"),
            prefixed(CUSTOMER_KEY_COLUMNS, "k", "k_"),
            orders_sql::status_list(&updatable),
        );
        let Some(row) = sqlx::query(&sql)
            .bind(tenant_id)
            .bind(order_ref)
            .bind(instruction_ref)
            .fetch_optional(self.reader())
            .await?
        else {
            return Ok(None);
        };
        let table = |prefix, key| -> StoreResult<Option<Cols<'_>>> {
            let c = Cols::prefixed(&row, prefix);
            Ok(c.present(key)?.then_some(c))
        };
        Ok(Some(crate::ExecutionSubject {
            order: orders_sql::order_from(Cols::prefixed(&row, "o_"))?,
            instruction: table("i_", "instruction_id")?.map(orders_sql::instruction_from).transpose()?,
            default: table("d_", "order_id")?.map(orders_sql::default_from).transpose()?,
            instrument: table("f_", "financial_instrument_id")?.map(instruments_sql::instrument_from).transpose()?,
            customer_key: table("k_", "customer_ref")?.map(customer_key_from).transpose()?,
            routing_version: row.try_get("routing_version")?,
        }))
    }

    async fn transaction(&self, tenant_id: &str, transaction_id: &str) -> StoreResult<Option<crate::TransactionRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM transactions WHERE transaction_id = $1 AND tenant_id = $2",
            execution_sql::TRANSACTION_COLUMNS
        ))
        .bind(transaction_id)
        .bind(tenant_id)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(execution_sql::transaction_from_row).transpose()
    }

    async fn instruction_transactions(
        &self,
        tenant_id: &str,
        instruction_id: &str,
    ) -> StoreResult<Vec<crate::TransactionRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM transactions WHERE tenant_id = $1 AND instruction_id = $2 \
             ORDER BY created_at, attempt, transaction_id",
            execution_sql::TRANSACTION_COLUMNS
        ))
        .bind(tenant_id)
        .bind(instruction_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(execution_sql::transaction_from_row).collect()
    }

    async fn transaction_by_provider_reference(
        &self,
        tenant_id: &str,
        app_id: &str,
        provider_reference: &str,
    ) -> StoreResult<Option<crate::TransactionRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM transactions WHERE app_id = $1 AND provider_reference = $2 AND tenant_id = $3 \
             ORDER BY created_at LIMIT 1",
            execution_sql::TRANSACTION_COLUMNS
        ))
        .bind(app_id)
        .bind(provider_reference)
        .bind(tenant_id)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(execution_sql::transaction_from_row).transpose()
    }

    async fn stale_pending_transactions(
        &self,
        before: i64,
        lost_before: i64,
        limit: u32,
    ) -> StoreResult<Vec<crate::TransactionRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM transactions WHERE status = 'PENDING' AND (updated_at < $1 OR {}) \
             ORDER BY updated_at LIMIT $3",
            execution_sql::TRANSACTION_COLUMNS,
            held_by_lost_node("transactions.node_id", 2)
        ))
        .bind(before)
        .bind(lost_before)
        .bind(i64::from(limit))
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(execution_sql::transaction_from_row).collect()
    }

    async fn claim_jobs(
        &self,
        now: i64,
        locked_until: i64,
        limit: u32,
        claimant: crate::Claimant<'_>,
    ) -> StoreResult<Vec<crate::JobRecord>> {
        let mut tx = self.begin_write().await?;
        // Free: never leased, its lease ran out, or its node died (`jobs` in the subquery
        // is the subquery's row, outside it the updated one).
        let free = format!("(locked_until IS NULL OR locked_until <= $3 OR {})", held_by_lost_node("jobs.locked_by", 4));
        let rows = sqlx::query(&format!(
            "UPDATE jobs SET locked_until = $1, locked_by = $2, attempts = attempts + 1 WHERE job_id IN (\
               SELECT job_id FROM jobs WHERE run_at <= $3 AND {free} ORDER BY run_at LIMIT $5 {SKIP_LOCKED}) \
             AND {free} RETURNING {}",
            execution_sql::JOB_COLUMNS
        ))
        .bind(locked_until)
        .bind(claimant.node_id)
        .bind(now)
        .bind(claimant.lost_before)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut jobs = rows.iter().map(execution_sql::job_from_row).collect::<StoreResult<Vec<_>>>()?;
        jobs.sort_by(|a, b| (a.run_at, &a.job_id).cmp(&(b.run_at, &b.job_id)));
        Ok(jobs)
    }

    async fn retry_job(&self, job_id: &str, run_at: i64, error: &str) -> StoreResult<()> {
        sqlx::query("UPDATE jobs SET run_at = $1, last_error = $2, locked_until = NULL WHERE job_id = $3")
            .bind(run_at)
            .bind(error)
            .bind(job_id)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn job(&self, kind: &str, subject_id: &str) -> StoreResult<Option<crate::JobRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM jobs WHERE kind = $1 AND subject_id = $2",
            execution_sql::JOB_COLUMNS
        ))
        .bind(kind)
        .bind(subject_id)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(execution_sql::job_from_row).transpose()
    }

    async fn order_by_id(&self, tenant_id: &str, order_id: &str) -> StoreResult<Option<crate::OrderRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM orders WHERE order_id = $1 AND tenant_id = $2",
            orders_sql::ORDER_COLUMNS
        ))
        .bind(order_id)
        .bind(tenant_id)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(orders_sql::order_from_row).transpose()
    }

    async fn instruction_by_id(
        &self,
        tenant_id: &str,
        instruction_id: &str,
    ) -> StoreResult<Option<crate::InstructionRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM instructions WHERE instruction_id = $1 AND tenant_id = $2",
            orders_sql::INSTRUCTION_COLUMNS
        ))
        .bind(instruction_id)
        .bind(tenant_id)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(orders_sql::instruction_from_row).transpose()
    }

    async fn events(&self, tenant_id: &str) -> StoreResult<Vec<crate::StoredEvent>> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM events WHERE tenant_id = $1 ORDER BY seq",
            execution_sql::EVENT_COLUMNS
        ))
        .bind(tenant_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(execution_sql::event_from_row).collect()
    }

    async fn instructions_due_late(&self, today: &str, limit: u32) -> StoreResult<Vec<crate::InstructionRecord>> {
        use baton_domain::InstructionStatus::{Incomplete, Ready};
        let rows = sqlx::query(&execution_sql::due_query(&[Incomplete, Ready], "<", "", limit))
            .bind(today)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(orders_sql::instruction_from_row).collect()
    }

    async fn instructions_due_collection(
        &self,
        today: &str,
        after: &crate::DuePosition,
        limit: u32,
    ) -> StoreResult<Vec<crate::InstructionRecord>> {
        use baton_domain::InstructionStatus::Ready;
        let extra = "AND direction = 'DEBIT' AND (settled_by_date, created_at, instruction_id) > ($2, $3, $4)";
        let rows = sqlx::query(&execution_sql::due_query(&[Ready], "<=", extra, limit))
            .bind(today)
            .bind(&after.settled_by_date)
            .bind(after.created_at)
            .bind(&after.instruction_id)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(orders_sql::instruction_from_row).collect()
    }
}
