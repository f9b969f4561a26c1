// Portable SQL of `InstrumentStore`, `include!`d by `sqlite.rs` and `postgres.rs` after
// `portable_vault.rs` (same conventions and hooks).
//
// State changes are compare-and-set: the `UPDATE … WHERE state = <from>` takes the
// row's write lock (PostgreSQL) or runs on the single write connection (SQLite), so a
// concurrent change from the same state finds the row moved and changes nothing. The
// history entry is appended in the same transaction, after the row is held.

mod instruments_sql {
    use baton_domain::{InstrumentState, InstrumentType, StateReason};
    use sqlx::Row as _;

    use super::{Cols, Db, DbRow};
    use crate::instrument_store::{InstrumentRecord, InstrumentStateRecord};
    use crate::StoreResult;

    pub(super) const INSTRUMENT_COLUMNS: &str = "financial_instrument_id, tenant_id, customer_ref, type, state, \
        state_reason, display, details_sealed, provider_tokens_sealed, single_use, supports_debit, supports_credit, \
        created_at, updated_at";

    use crate::records::parse_word as word;

    fn optional_word<T: std::str::FromStr>(text: Option<String>, what: &str) -> StoreResult<Option<T>> {
        text.map(|t| word(t, what)).transpose()
    }

    pub(super) fn instrument_from_row(row: &DbRow) -> StoreResult<InstrumentRecord> {
        instrument_from(Cols::of(row))
    }

    pub(super) fn instrument_from(c: Cols<'_>) -> StoreResult<InstrumentRecord> {
        Ok(InstrumentRecord {
            financial_instrument_id: c.get("financial_instrument_id")?,
            tenant_id: c.get("tenant_id")?,
            customer_ref: c.get("customer_ref")?,
            kind: word::<InstrumentType>(c.get("type")?, "instrument type")?,
            state: word::<InstrumentState>(c.get("state")?, "instrument state")?,
            state_reason: optional_word::<StateReason>(c.get("state_reason")?, "state reason")?,
            display: c.get("display")?,
            details_sealed: c.get("details_sealed")?,
            provider_tokens_sealed: c.get("provider_tokens_sealed")?,
            single_use: c.get("single_use")?,
            supports_debit: c.get("supports_debit")?,
            supports_credit: c.get("supports_credit")?,
            created_at: c.get("created_at")?,
            updated_at: c.get("updated_at")?,
        })
    }

    pub(super) fn state_from_row(row: &DbRow) -> StoreResult<InstrumentStateRecord> {
        Ok(InstrumentStateRecord {
            seq: row.try_get("seq")?,
            state: word::<InstrumentState>(row.try_get("state")?, "instrument state")?,
            reason: optional_word::<StateReason>(row.try_get("reason")?, "state reason")?,
            changed_at: row.try_get("changed_at")?,
        })
    }

    /// Inserts an instrument with the first entry of its history, inside the caller's transaction.
    pub(super) async fn insert_instrument(tx: &mut sqlx::Transaction<'_, Db>, r: &InstrumentRecord) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO financial_instruments ({INSTRUMENT_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ))
        .bind(&r.financial_instrument_id)
        .bind(&r.tenant_id)
        .bind(&r.customer_ref)
        .bind(r.kind.as_str())
        .bind(r.state.as_str())
        .bind(r.state_reason.map(StateReason::as_str))
        .bind(&r.display)
        .bind(&r.details_sealed)
        .bind(&r.provider_tokens_sealed)
        .bind(r.single_use)
        .bind(r.supports_debit)
        .bind(r.supports_credit)
        .bind(r.created_at)
        .bind(r.updated_at)
        .execute(&mut **tx)
        .await?;
        append_state(tx, &r.financial_instrument_id, r.state, r.state_reason, r.created_at).await
    }

    /// Appends the next history entry of an instrument (inside the caller's transaction,
    /// which already holds the instrument's row).
    pub(super) async fn append_state(
        tx: &mut sqlx::Transaction<'_, Db>,
        instrument_id: &str,
        state: InstrumentState,
        reason: Option<StateReason>,
        now: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO financial_instrument_states (financial_instrument_id, seq, state, reason, changed_at) \
             SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4 FROM financial_instrument_states \
             WHERE financial_instrument_id = $1",
        )
        .bind(instrument_id)
        .bind(state.as_str())
        .bind(reason.map(StateReason::as_str))
        .bind(now)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Moves the instrument from `from` to `to` and appends the change to its history
    /// (inside the caller's transaction); `false` if it is absent or not in `from`.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn change_state(
        tx: &mut sqlx::Transaction<'_, Db>,
        tenant_id: &str,
        customer_ref: &str,
        instrument_id: &str,
        from: InstrumentState,
        to: InstrumentState,
        reason: Option<StateReason>,
        now: i64,
    ) -> StoreResult<bool> {
        let n = sqlx::query(
            "UPDATE financial_instruments SET state = $1, state_reason = $2, updated_at = $3 \
             WHERE financial_instrument_id = $4 AND tenant_id = $5 AND customer_ref = $6 AND state = $7",
        )
        .bind(to.as_str())
        .bind(reason.map(StateReason::as_str))
        .bind(now)
        .bind(instrument_id)
        .bind(tenant_id)
        .bind(customer_ref)
        .bind(from.as_str())
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if n != 1 {
            return Ok(false);
        }
        append_state(tx, instrument_id, to, reason, now).await?;
        Ok(true)
    }
}

#[async_trait]
impl crate::InstrumentStore for ThisStore {
    async fn insert_instrument(&self, r: &crate::InstrumentRecord) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        instruments_sql::insert_instrument(&mut tx, r).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn instrument(
        &self,
        tenant_id: &str,
        customer_ref: &str,
        instrument_id: &str,
    ) -> StoreResult<Option<crate::InstrumentRecord>> {
        sqlx::query(&format!(
            "SELECT {} FROM financial_instruments \
             WHERE financial_instrument_id = $1 AND tenant_id = $2 AND customer_ref = $3",
            instruments_sql::INSTRUMENT_COLUMNS
        ))
        .bind(instrument_id)
        .bind(tenant_id)
        .bind(customer_ref)
        .fetch_optional(self.reader())
        .await?
        .as_ref()
        .map(instruments_sql::instrument_from_row)
        .transpose()
    }

    async fn instruments(
        &self,
        tenant_id: &str,
        customer_ref: &str,
        state: Option<baton_domain::InstrumentState>,
    ) -> StoreResult<Vec<crate::InstrumentRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM financial_instruments \
             WHERE tenant_id = $1 AND customer_ref = $2 AND ($3 IS NULL OR state = $3) \
             ORDER BY created_at, financial_instrument_id",
            instruments_sql::INSTRUMENT_COLUMNS
        ))
        .bind(tenant_id)
        .bind(customer_ref)
        .bind(state.map(baton_domain::InstrumentState::as_str))
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(instruments_sql::instrument_from_row).collect()
    }

    async fn instrument_history(
        &self,
        tenant_id: &str,
        customer_ref: &str,
        instrument_id: &str,
    ) -> StoreResult<Vec<crate::InstrumentStateRecord>> {
        let rows = sqlx::query(
            "SELECT s.seq, s.state, s.reason, s.changed_at FROM financial_instrument_states s \
             JOIN financial_instruments f ON f.financial_instrument_id = s.financial_instrument_id \
             WHERE s.financial_instrument_id = $1 AND f.tenant_id = $2 AND f.customer_ref = $3 \
             ORDER BY s.seq",
        )
        .bind(instrument_id)
        .bind(tenant_id)
        .bind(customer_ref)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(instruments_sql::state_from_row).collect()
    }

    async fn change_instrument_state(
        &self,
        tenant_id: &str,
        customer_ref: &str,
        instrument_id: &str,
        from: baton_domain::InstrumentState,
        to: baton_domain::InstrumentState,
        reason: Option<baton_domain::StateReason>,
        now: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        if !instruments_sql::change_state(&mut tx, tenant_id, customer_ref, instrument_id, from, to, reason, now).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn erase_customer_instruments(
        &self,
        erasure_id: &str,
        tenant_id: &str,
        customer_ref: &str,
        reason: Option<baton_domain::StateReason>,
        now: i64,
    ) -> StoreResult<crate::ErasureRecord> {
        let closed = baton_domain::InstrumentState::Closed;
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(
            "UPDATE financial_instruments SET state = $1, state_reason = $2, updated_at = $3 \
             WHERE tenant_id = $4 AND customer_ref = $5 AND state <> $1 \
             RETURNING financial_instrument_id",
        )
        .bind(closed.as_str())
        .bind(reason.map(baton_domain::StateReason::as_str))
        .bind(now)
        .bind(tenant_id)
        .bind(customer_ref)
        .fetch_all(&mut *tx)
        .await?;
        for row in &rows {
            let id: String = row.try_get("financial_instrument_id")?;
            instruments_sql::append_state(&mut tx, &id, closed, reason, now).await?;
        }
        let record = crate::ErasureRecord {
            erasure_id: erasure_id.to_string(),
            tenant_id: tenant_id.to_string(),
            customer_ref: customer_ref.to_string(),
            instruments_closed: i64::try_from(rows.len()).unwrap_or(i64::MAX),
            created_at: now,
        };
        sqlx::query(
            "INSERT INTO erasures (erasure_id, tenant_id, customer_ref, instruments_closed, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&record.erasure_id)
        .bind(&record.tenant_id)
        .bind(&record.customer_ref)
        .bind(record.instruments_closed)
        .bind(record.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn erasure(&self, tenant_id: &str, erasure_id: &str) -> StoreResult<Option<crate::ErasureRecord>> {
        sqlx::query(
            "SELECT erasure_id, tenant_id, customer_ref, instruments_closed, created_at FROM erasures \
             WHERE erasure_id = $1 AND tenant_id = $2",
        )
        .bind(erasure_id)
        .bind(tenant_id)
        .fetch_optional(self.reader())
        .await?
        .map(|row| {
            Ok(crate::ErasureRecord {
                erasure_id: row.try_get("erasure_id")?,
                tenant_id: row.try_get("tenant_id")?,
                customer_ref: row.try_get("customer_ref")?,
                instruments_closed: row.try_get("instruments_closed")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .transpose()
    }

    async fn customer_has_processing_instruction(&self, tenant_id: &str, customer_ref: &str) -> StoreResult<bool> {
        Ok(sqlx::query("SELECT 1 FROM instructions WHERE tenant_id = $1 AND customer_ref = $2 AND status = $3 LIMIT 1")
            .bind(tenant_id)
            .bind(customer_ref)
            .bind(baton_domain::InstructionStatus::Processing.as_str())
            .fetch_optional(self.reader())
            .await?
            .is_some())
    }
}
