// Portable SQL of `PayByLinkStore` and of the pay-by-link `Change`s, `include!`d by
// `sqlite.rs` and `postgres.rs` after `portable_execution.rs` (same conventions).

mod pay_by_links_sql {
    use baton_domain::{DeliveryStatus, PayByLinkStatus};
    use sqlx::Row as _;

    use super::{Db, DbRow};
    use crate::pay_by_link_store::{
        DocumentKind, MessageDeliveryRecord, PayByLinkRecord, PayByLinkRow, TenantDocument,
    };
    use crate::records::parse_word as word;
    use crate::StoreResult;

    pub(super) const LINK_COLUMNS: &str = "pay_by_link_id, tenant_id, order_id, instruction_id, status, language, \
        callbacks, expires_at, opened_at, finished_at, created_at, updated_at";
    /// The link's columns (as `l.`) with the order and instruction references.
    pub(super) const LINK_ROW_SELECT: &str = "SELECT l.pay_by_link_id, l.tenant_id, l.order_id, l.instruction_id, \
        l.status, l.language, l.callbacks, l.expires_at, l.opened_at, l.finished_at, l.created_at, l.updated_at, \
        o.order_ref, i.instruction_ref, i.customer_ref \
        FROM pay_by_links l JOIN orders o ON o.order_id = l.order_id \
        JOIN instructions i ON i.instruction_id = l.instruction_id";
    pub(super) const DELIVERY_COLUMNS: &str = "delivery_id, tenant_id, pay_by_link_id, customer_ref, channel, \
        recipient_sealed, recipient_masked, language, template, status, attempts, last_error, created_at, \
        updated_at, sent_at";

    pub(super) fn table(kind: DocumentKind) -> &'static str {
        match kind {
            DocumentKind::ThemeTemplate => "theme_templates",
            DocumentKind::DeliverySettings => "delivery_settings",
        }
    }

    pub(super) fn link_row_from_row(row: &DbRow) -> StoreResult<PayByLinkRow> {
        Ok(PayByLinkRow {
            link: PayByLinkRecord {
                pay_by_link_id: row.try_get("pay_by_link_id")?,
                tenant_id: row.try_get("tenant_id")?,
                order_id: row.try_get("order_id")?,
                instruction_id: row.try_get("instruction_id")?,
                status: word(row.try_get("status")?, "pay-by-link status")?,
                language: word(row.try_get("language")?, "language")?,
                callbacks: row.try_get("callbacks")?,
                expires_at: row.try_get("expires_at")?,
                opened_at: row.try_get("opened_at")?,
                finished_at: row.try_get("finished_at")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
            },
            order_ref: row.try_get("order_ref")?,
            instruction_ref: row.try_get("instruction_ref")?,
            customer_ref: row.try_get("customer_ref")?,
        })
    }

    pub(super) fn delivery_from_row(row: &DbRow) -> StoreResult<MessageDeliveryRecord> {
        Ok(MessageDeliveryRecord {
            delivery_id: row.try_get("delivery_id")?,
            tenant_id: row.try_get("tenant_id")?,
            pay_by_link_id: row.try_get("pay_by_link_id")?,
            customer_ref: row.try_get("customer_ref")?,
            channel: word(row.try_get("channel")?, "delivery channel")?,
            recipient_sealed: row.try_get("recipient_sealed")?,
            recipient_masked: row.try_get("recipient_masked")?,
            language: word(row.try_get("language")?, "language")?,
            template: word(row.try_get("template")?, "message template")?,
            status: word(row.try_get("status")?, "delivery status")?,
            attempts: row.try_get("attempts")?,
            last_error: row.try_get("last_error")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            sent_at: row.try_get("sent_at")?,
        })
    }

    pub(super) fn document_from_row(row: &DbRow) -> StoreResult<TenantDocument> {
        Ok(TenantDocument {
            tenant_id: row.try_get("tenant_id")?,
            document: row.try_get("document")?,
            secrets_sealed: row.try_get("secrets_sealed")?,
            updated_at: row.try_get("updated_at")?,
        })
    }

    pub(super) async fn insert_link(tx: &mut sqlx::Transaction<'_, Db>, l: &PayByLinkRecord) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO pay_by_links ({LINK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(&l.pay_by_link_id)
        .bind(&l.tenant_id)
        .bind(&l.order_id)
        .bind(&l.instruction_id)
        .bind(l.status.as_str())
        .bind(l.language.as_str())
        .bind(&l.callbacks)
        .bind(l.expires_at)
        .bind(l.opened_at)
        .bind(l.finished_at)
        .bind(l.created_at)
        .bind(l.updated_at)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    pub(super) async fn link_status(
        tx: &mut sqlx::Transaction<'_, Db>,
        tenant_id: &str,
        pay_by_link_id: &str,
        from: &[PayByLinkStatus],
        to: PayByLinkStatus,
        now: i64,
    ) -> StoreResult<bool> {
        let opened = (to == PayByLinkStatus::Opened).then_some(now);
        let finished = (!to.is_live()).then_some(now);
        let n = sqlx::query(&format!(
            "UPDATE pay_by_links SET status = $1, opened_at = COALESCE(opened_at, $2), \
             finished_at = COALESCE($3, finished_at), updated_at = $4 \
             WHERE pay_by_link_id = $5 AND tenant_id = $6 AND status IN ({})",
            super::orders_sql::status_list(from)
        ))
        .bind(to.as_str())
        .bind(opened)
        .bind(finished)
        .bind(now)
        .bind(pay_by_link_id)
        .bind(tenant_id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Whether the link is live and unexpired at `now`; locks its row on PostgreSQL
    /// (`status = status` changes nothing), so that a concurrent status move waits for
    /// the caller's transaction. Only the row's own columns are tested, so a waiter
    /// that re-checks them after the lock is granted sees the committed values.
    pub(super) async fn link_live(
        tx: &mut sqlx::Transaction<'_, Db>,
        tenant_id: &str,
        pay_by_link_id: &str,
        now: i64,
    ) -> StoreResult<bool> {
        let n = sqlx::query(&format!(
            "UPDATE pay_by_links SET status = status \
             WHERE pay_by_link_id = $1 AND tenant_id = $2 AND status IN ({}) AND expires_at > $3",
            super::orders_sql::status_list(PayByLinkStatus::LIVE)
        ))
        .bind(pay_by_link_id)
        .bind(tenant_id)
        .bind(now)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    pub(super) async fn insert_delivery(
        tx: &mut sqlx::Transaction<'_, Db>,
        d: &MessageDeliveryRecord,
    ) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO message_deliveries ({DELIVERY_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        ))
        .bind(&d.delivery_id)
        .bind(&d.tenant_id)
        .bind(&d.pay_by_link_id)
        .bind(&d.customer_ref)
        .bind(d.channel.as_str())
        .bind(&d.recipient_sealed)
        .bind(&d.recipient_masked)
        .bind(d.language.as_str())
        .bind(d.template.as_str())
        .bind(d.status.as_str())
        .bind(d.attempts)
        .bind(&d.last_error)
        .bind(d.created_at)
        .bind(d.updated_at)
        .bind(d.sent_at)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn delivery_status(
        tx: &mut sqlx::Transaction<'_, Db>,
        tenant_id: &str,
        delivery_id: &str,
        from: DeliveryStatus,
        to: DeliveryStatus,
        attempts: i64,
        last_error: Option<&str>,
        now: i64,
    ) -> StoreResult<bool> {
        let sent = (to == DeliveryStatus::Sent).then_some(now);
        let n = sqlx::query(
            "UPDATE message_deliveries SET status = $1, attempts = $2, last_error = $3, \
             sent_at = COALESCE($4, sent_at), updated_at = $5 \
             WHERE delivery_id = $6 AND tenant_id = $7 AND status = $8",
        )
        .bind(to.as_str())
        .bind(attempts)
        .bind(last_error)
        .bind(sent)
        .bind(now)
        .bind(delivery_id)
        .bind(tenant_id)
        .bind(from.as_str())
        .execute(&mut **tx)
        .await?
        .rows_affected();
        Ok(n == 1)
    }
}

#[async_trait]
impl crate::PayByLinkStore for ThisStore {
    async fn pay_by_link(&self, tenant_id: &str, pay_by_link_id: &str) -> StoreResult<Option<crate::PayByLinkRow>> {
        let row = sqlx::query(&format!(
            "{} WHERE l.pay_by_link_id = $1 AND l.tenant_id = $2",
            pay_by_links_sql::LINK_ROW_SELECT
        ))
        .bind(pay_by_link_id)
        .bind(tenant_id)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(pay_by_links_sql::link_row_from_row).transpose()
    }

    async fn pay_by_link_by_id(&self, pay_by_link_id: &str) -> StoreResult<Option<crate::PayByLinkRow>> {
        let row = sqlx::query(&format!("{} WHERE l.pay_by_link_id = $1", pay_by_links_sql::LINK_ROW_SELECT))
            .bind(pay_by_link_id)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(pay_by_links_sql::link_row_from_row).transpose()
    }

    async fn message_deliveries(
        &self,
        tenant_id: &str,
        pay_by_link_id: &str,
    ) -> StoreResult<Vec<crate::MessageDeliveryRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM message_deliveries WHERE pay_by_link_id = $1 AND tenant_id = $2 \
             ORDER BY created_at, delivery_id",
            pay_by_links_sql::DELIVERY_COLUMNS
        ))
        .bind(pay_by_link_id)
        .bind(tenant_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(pay_by_links_sql::delivery_from_row).collect()
    }

    async fn message_delivery(
        &self,
        tenant_id: &str,
        delivery_id: &str,
    ) -> StoreResult<Option<crate::MessageDeliveryRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM message_deliveries WHERE delivery_id = $1 AND tenant_id = $2",
            pay_by_links_sql::DELIVERY_COLUMNS
        ))
        .bind(delivery_id)
        .bind(tenant_id)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(pay_by_links_sql::delivery_from_row).transpose()
    }

    async fn pay_by_links_due(&self, now: i64, limit: u32) -> StoreResult<Vec<crate::PayByLinkRow>> {
        let rows = sqlx::query(&format!(
            "{} WHERE l.status IN ('ACTIVE', 'OPENED') AND (l.expires_at <= $1 OR i.status = 'SETTLED') \
             ORDER BY l.expires_at, l.pay_by_link_id LIMIT $2",
            pay_by_links_sql::LINK_ROW_SELECT
        ))
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(pay_by_links_sql::link_row_from_row).collect()
    }

    async fn tenant_document(
        &self,
        kind: crate::DocumentKind,
        tenant_id: &str,
    ) -> StoreResult<Option<crate::TenantDocument>> {
        let row = sqlx::query(&format!(
            "SELECT tenant_id, document, secrets_sealed, updated_at FROM {} WHERE tenant_id = $1",
            pay_by_links_sql::table(kind)
        ))
        .bind(tenant_id)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(pay_by_links_sql::document_from_row).transpose()
    }

    async fn save_tenant_document(&self, kind: crate::DocumentKind, d: &crate::TenantDocument) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO {} (tenant_id, document, secrets_sealed, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id) DO UPDATE SET document = EXCLUDED.document, \
             secrets_sealed = EXCLUDED.secrets_sealed, updated_at = EXCLUDED.updated_at",
            pay_by_links_sql::table(kind)
        ))
        .bind(&d.tenant_id)
        .bind(&d.document)
        .bind(&d.secrets_sealed)
        .bind(d.updated_at)
        .execute(self.writer())
        .await?;
        Ok(())
    }
}
