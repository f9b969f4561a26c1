// Portable SQL of `RefundStore` and of the refund and chargeback `Change`s, `include!`d by
// `sqlite.rs` and `postgres.rs` after `portable_execution.rs`.

mod refunds_sql {
    use baton_domain::RefundStatus;
    use sqlx::Row as _;

    use super::{Db, DbRow};
    use crate::execution_store::TransactionOutcome;
    use crate::refund_store::{ChargebackRecord, RefundRecord};
    use crate::StoreResult;

    pub(super) const REFUND_COLUMNS: &str = "refund_id, tenant_id, instruction_id, transaction_id, app_id, \
        refund_ref, amount_minor, currency, reason, status, provider_reference, error_code, psp_code, psp_message, \
        metadata, created_at, updated_at";
    pub(super) const CHARGEBACK_COLUMNS: &str = "chargeback_id, tenant_id, instruction_id, transaction_id, \
        app_id, provider_reference, amount_minor, currency, reason, provider_reason_code, status, due_by, evidence, \
        created_at, updated_at";

    use crate::records::parse_word as word;

    pub(super) fn refund_from_row(row: &DbRow) -> StoreResult<RefundRecord> {
        Ok(RefundRecord {
            refund_id: row.try_get("refund_id")?,
            tenant_id: row.try_get("tenant_id")?,
            instruction_id: row.try_get("instruction_id")?,
            transaction_id: row.try_get("transaction_id")?,
            app_id: row.try_get("app_id")?,
            refund_ref: row.try_get("refund_ref")?,
            amount_minor: row.try_get("amount_minor")?,
            currency: row.try_get("currency")?,
            reason: word(row.try_get("reason")?, "refund reason")?,
            status: word(row.try_get("status")?, "refund status")?,
            provider_reference: row.try_get("provider_reference")?,
            error_code: row.try_get("error_code")?,
            psp_code: row.try_get("psp_code")?,
            psp_message: row.try_get("psp_message")?,
            metadata: row.try_get("metadata")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }

    pub(super) fn chargeback_from_row(row: &DbRow) -> StoreResult<ChargebackRecord> {
        Ok(ChargebackRecord {
            chargeback_id: row.try_get("chargeback_id")?,
            tenant_id: row.try_get("tenant_id")?,
            instruction_id: row.try_get("instruction_id")?,
            transaction_id: row.try_get("transaction_id")?,
            app_id: row.try_get("app_id")?,
            provider_reference: row.try_get("provider_reference")?,
            amount_minor: row.try_get("amount_minor")?,
            currency: row.try_get("currency")?,
            reason: word(row.try_get("reason")?, "chargeback reason")?,
            provider_reason_code: row.try_get("provider_reason_code")?,
            status: word(row.try_get("status")?, "chargeback status")?,
            due_by: row.try_get("due_by")?,
            evidence: row.try_get("evidence")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }

    /// The guarded insert of a refund: lock the settled transaction's row (a no-op
    /// update takes the row lock on PostgreSQL; SQLite has one writer), then insert only
    /// if the refunds that have not failed stay within `limit_minor`. Read committed
    /// gives the insert's sub-select a fresh snapshot after the lock is granted.
    pub(super) async fn insert_refund(
        tx: &mut sqlx::Transaction<'_, Db>,
        r: &RefundRecord,
        limit_minor: i64,
    ) -> StoreResult<bool> {
        let locked = sqlx::query(
            "UPDATE transactions SET updated_at = updated_at WHERE transaction_id = $1 AND tenant_id = $2",
        )
        .bind(&r.transaction_id)
        .bind(&r.tenant_id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if locked != 1 {
            return Ok(false);
        }
        let n = sqlx::query(&format!(
            "INSERT INTO refunds ({REFUND_COLUMNS}) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
             $14, $15, $16, $17 WHERE (SELECT COALESCE(SUM(amount_minor), 0) FROM refunds \
             WHERE tenant_id = $2 AND instruction_id = $3 AND status <> 'FAILED') + $7 <= $18"
        ))
        .bind(&r.refund_id)
        .bind(&r.tenant_id)
        .bind(&r.instruction_id)
        .bind(&r.transaction_id)
        .bind(&r.app_id)
        .bind(&r.refund_ref)
        .bind(r.amount_minor)
        .bind(&r.currency)
        .bind(r.reason.as_str())
        .bind(r.status.as_str())
        .bind(&r.provider_reference)
        .bind(&r.error_code)
        .bind(&r.psp_code)
        .bind(&r.psp_message)
        .bind(&r.metadata)
        .bind(r.created_at)
        .bind(r.updated_at)
        .bind(limit_minor)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    pub(super) async fn finish_refund(
        tx: &mut sqlx::Transaction<'_, Db>,
        tenant_id: &str,
        refund_id: &str,
        from: &[RefundStatus],
        to: RefundStatus,
        o: &TransactionOutcome,
        now: i64,
    ) -> StoreResult<bool> {
        let from = if from.is_empty() {
            "''".to_string()
        } else {
            from.iter().map(|s| format!("'{}'", s.as_str())).collect::<Vec<_>>().join(", ")
        };
        let n = sqlx::query(&format!(
            "UPDATE refunds SET status = $1, provider_reference = COALESCE($2, provider_reference), \
             error_code = $3, psp_code = $4, psp_message = $5, updated_at = $6 \
             WHERE refund_id = $7 AND tenant_id = $8 AND status IN ({from})"
        ))
        .bind(to.as_str())
        .bind(&o.provider_reference)
        .bind(&o.error_code)
        .bind(&o.psp_code)
        .bind(&o.psp_message)
        .bind(now)
        .bind(refund_id)
        .bind(tenant_id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    pub(super) async fn insert_chargeback(
        tx: &mut sqlx::Transaction<'_, Db>,
        c: &ChargebackRecord,
    ) -> StoreResult<bool> {
        let n = sqlx::query(&format!(
            "INSERT INTO chargebacks ({CHARGEBACK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
             $12, $13, $14, $15) ON CONFLICT (tenant_id, app_id, provider_reference) DO NOTHING"
        ))
        .bind(&c.chargeback_id)
        .bind(&c.tenant_id)
        .bind(&c.instruction_id)
        .bind(&c.transaction_id)
        .bind(&c.app_id)
        .bind(&c.provider_reference)
        .bind(c.amount_minor)
        .bind(&c.currency)
        .bind(c.reason.as_str())
        .bind(&c.provider_reason_code)
        .bind(c.status.as_str())
        .bind(c.due_by)
        .bind(&c.evidence)
        .bind(c.created_at)
        .bind(c.updated_at)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    pub(super) async fn chargeback_status(
        tx: &mut sqlx::Transaction<'_, Db>,
        tenant_id: &str,
        chargeback_id: &str,
        from: baton_domain::ChargebackStatus,
        to: baton_domain::ChargebackStatus,
        evidence: Option<&str>,
        now: i64,
    ) -> StoreResult<bool> {
        let n = sqlx::query(
            "UPDATE chargebacks SET status = $1, evidence = COALESCE($2, evidence), updated_at = $3 \
             WHERE chargeback_id = $4 AND tenant_id = $5 AND status = $6",
        )
        .bind(to.as_str())
        .bind(evidence)
        .bind(now)
        .bind(chargeback_id)
        .bind(tenant_id)
        .bind(from.as_str())
        .execute(&mut **tx)
        .await?
        .rows_affected();
        Ok(n == 1)
    }
}

#[async_trait]
impl crate::RefundStore for ThisStore {
    async fn refunds(&self, tenant_id: &str, instruction_id: &str) -> StoreResult<Vec<crate::RefundRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM refunds WHERE tenant_id = $1 AND instruction_id = $2 ORDER BY created_at, refund_ref",
            refunds_sql::REFUND_COLUMNS
        ))
        .bind(tenant_id)
        .bind(instruction_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(refunds_sql::refund_from_row).collect()
    }

    async fn refund(
        &self,
        tenant_id: &str,
        instruction_id: &str,
        refund_ref: &str,
    ) -> StoreResult<Option<crate::RefundRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM refunds WHERE tenant_id = $1 AND instruction_id = $2 AND refund_ref = $3",
            refunds_sql::REFUND_COLUMNS
        ))
        .bind(tenant_id)
        .bind(instruction_id)
        .bind(refund_ref)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(refunds_sql::refund_from_row).transpose()
    }

    async fn refund_by_id(&self, tenant_id: &str, refund_id: &str) -> StoreResult<Option<crate::RefundRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM refunds WHERE tenant_id = $1 AND refund_id = $2",
            refunds_sql::REFUND_COLUMNS
        ))
        .bind(tenant_id)
        .bind(refund_id)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(refunds_sql::refund_from_row).transpose()
    }

    async fn refund_by_provider_reference(
        &self,
        tenant_id: &str,
        app_id: &str,
        provider_reference: &str,
    ) -> StoreResult<Option<crate::RefundRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM refunds WHERE tenant_id = $1 AND app_id = $2 AND provider_reference = $3",
            refunds_sql::REFUND_COLUMNS
        ))
        .bind(tenant_id)
        .bind(app_id)
        .bind(provider_reference)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(refunds_sql::refund_from_row).transpose()
    }

    async fn chargeback(&self, tenant_id: &str, chargeback_id: &str) -> StoreResult<Option<crate::ChargebackRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM chargebacks WHERE tenant_id = $1 AND chargeback_id = $2",
            refunds_sql::CHARGEBACK_COLUMNS
        ))
        .bind(tenant_id)
        .bind(chargeback_id)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(refunds_sql::chargeback_from_row).transpose()
    }

    async fn chargeback_by_provider_reference(
        &self,
        tenant_id: &str,
        app_id: &str,
        provider_reference: &str,
    ) -> StoreResult<Option<crate::ChargebackRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM chargebacks WHERE tenant_id = $1 AND app_id = $2 AND provider_reference = $3",
            refunds_sql::CHARGEBACK_COLUMNS
        ))
        .bind(tenant_id)
        .bind(app_id)
        .bind(provider_reference)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(refunds_sql::chargeback_from_row).transpose()
    }

    async fn list_chargebacks(
        &self,
        tenant_id: &str,
        filter: &crate::ChargebackFilter,
        after: Option<&crate::Keyset>,
        limit: u32,
    ) -> StoreResult<Vec<crate::ListedChargeback>> {
        use orders_sql::{Arg, Conditions};
        let mut c = Conditions::default();
        let tenant = c.arg(Arg::Text(tenant_id.to_string()));
        c.push(format!("c.tenant_id = {tenant} AND i.tenant_id = {tenant} AND o.tenant_id = {tenant}"));
        let mut equal = |column: &str, value: Option<String>| {
            if let Some(v) = value {
                let p = c.arg(Arg::Text(v));
                c.push(format!("{column} = {p}"));
            }
        };
        equal("c.instruction_id", filter.instruction_id.clone());
        equal("c.status", filter.status.map(|s| s.as_str().to_string()));
        equal("c.reason", filter.reason.map(|r| r.as_str().to_string()));
        c.window("c", "chargeback_id", (filter.from, filter.to), after, orders_sql::ListOrder::NewestFirst);
        let sql = format!(
            "SELECT {}, o.order_ref, i.instruction_ref FROM chargebacks c \
             JOIN instructions i ON i.instruction_id = c.instruction_id JOIN orders o ON o.order_id = i.order_id \
             WHERE {} ORDER BY c.created_at DESC, c.chargeback_id LIMIT {limit}",
            orders_sql::qualified(refunds_sql::CHARGEBACK_COLUMNS, "c"),
            c.where_clause()
        );
        let rows = c.bind(sqlx::query(&sql)).fetch_all(self.reader()).await?;
        rows.iter()
            .map(|row| {
                Ok(crate::ListedChargeback {
                    order_ref: sqlx::Row::try_get(row, "order_ref")?,
                    instruction_ref: sqlx::Row::try_get(row, "instruction_ref")?,
                    chargeback: refunds_sql::chargeback_from_row(row)?,
                })
            })
            .collect()
    }
}
