// Portable SQL of `CheckoutStore`, `include!`d by `sqlite.rs` and `postgres.rs`.

mod checkout_sql {
    use baton_domain::CheckoutStatus;
    use sqlx::Row as _;

    use super::DbRow;
    use crate::checkout_store::CheckoutSessionRecord;
    use crate::records::parse_word as word;
    use crate::StoreResult;

    pub(super) const SESSION_COLUMNS: &str = "session_id, jti, tenant_id, order_ref, instruction_ref, claims, \
        bearer_token, language, parent_origin, status, attempts, last_failure, provider_name, pending_instrument_id, \
        busy_until, expires_at, created_at, updated_at";

    pub(super) fn session_from_row(row: &DbRow) -> StoreResult<CheckoutSessionRecord> {
        Ok(CheckoutSessionRecord {
            session_id: row.try_get("session_id")?,
            jti: row.try_get("jti")?,
            tenant_id: row.try_get("tenant_id")?,
            order_ref: row.try_get("order_ref")?,
            instruction_ref: row.try_get("instruction_ref")?,
            claims: row.try_get("claims")?,
            bearer_token: row.try_get("bearer_token")?,
            language: row.try_get("language")?,
            parent_origin: row.try_get("parent_origin")?,
            status: word::<CheckoutStatus>(row.try_get("status")?, "checkout status")?,
            attempts: row.try_get("attempts")?,
            last_failure: row.try_get("last_failure")?,
            provider_name: row.try_get("provider_name")?,
            pending_instrument_id: row.try_get("pending_instrument_id")?,
            busy_until: row.try_get("busy_until")?,
            expires_at: row.try_get("expires_at")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }

    /// `'OPEN', 'AUTHENTICATING'` (the words are fixed, never input).
    pub(super) fn status_list(statuses: &[CheckoutStatus]) -> String {
        if statuses.is_empty() {
            return "NULL".into();
        }
        statuses.iter().map(|s| format!("'{}'", s.as_str())).collect::<Vec<_>>().join(", ")
    }
}

#[async_trait]
impl crate::CheckoutStore for ThisStore {
    async fn create_checkout_session(&self, s: &crate::CheckoutSessionRecord) -> StoreResult<bool> {
        let n = sqlx::query(&format!(
            "INSERT INTO checkout_sessions ({}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) \
             ON CONFLICT (jti) DO NOTHING",
            checkout_sql::SESSION_COLUMNS
        ))
        .bind(&s.session_id)
        .bind(&s.jti)
        .bind(&s.tenant_id)
        .bind(&s.order_ref)
        .bind(&s.instruction_ref)
        .bind(&s.claims)
        .bind(&s.bearer_token)
        .bind(&s.language)
        .bind(&s.parent_origin)
        .bind(s.status.as_str())
        .bind(s.attempts)
        .bind(&s.last_failure)
        .bind(&s.provider_name)
        .bind(&s.pending_instrument_id)
        .bind(s.busy_until)
        .bind(s.expires_at)
        .bind(s.created_at)
        .bind(s.updated_at)
        .execute(self.writer())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn checkout_session(&self, session_id: &str) -> StoreResult<Option<crate::CheckoutSessionRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM checkout_sessions WHERE session_id = $1",
            checkout_sql::SESSION_COLUMNS
        ))
        .bind(session_id)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(checkout_sql::session_from_row).transpose()
    }

    async fn lease_checkout_session(
        &self,
        session_id: &str,
        statuses: &[baton_domain::CheckoutStatus],
        now: i64,
        until: i64,
    ) -> StoreResult<Option<crate::CheckoutSessionRecord>> {
        let row = sqlx::query(&format!(
            "UPDATE checkout_sessions SET busy_until = $1, updated_at = $2 \
             WHERE session_id = $3 AND status IN ({}) AND expires_at > $2 \
               AND (busy_until IS NULL OR busy_until <= $2) \
             RETURNING {}",
            checkout_sql::status_list(statuses),
            checkout_sql::SESSION_COLUMNS
        ))
        .bind(until)
        .bind(now)
        .bind(session_id)
        .fetch_optional(self.writer())
        .await?;
        row.as_ref().map(checkout_sql::session_from_row).transpose()
    }

    async fn finish_checkout_session(
        &self,
        session_id: &str,
        leased_until: i64,
        update: &crate::CheckoutSessionUpdate,
        now: i64,
    ) -> StoreResult<bool> {
        let n = sqlx::query(
            "UPDATE checkout_sessions SET status = $1, last_failure = $2, provider_name = $3, \
             pending_instrument_id = $4, attempts = attempts + $5, busy_until = NULL, updated_at = $6 \
             WHERE session_id = $7 AND busy_until = $8",
        )
        .bind(update.status.as_str())
        .bind(&update.last_failure)
        .bind(&update.provider_name)
        .bind(&update.pending_instrument_id)
        .bind(i64::from(update.attempted))
        .bind(now)
        .bind(session_id)
        .bind(leased_until)
        .execute(self.writer())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn merchant_name(&self, tenant_id: &str) -> StoreResult<Option<String>> {
        let row = sqlx::query("SELECT name FROM tenants WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_optional(self.reader())
            .await?;
        Ok(row.map(|r| r.try_get("name")).transpose()?)
    }

    async fn purge_checkout_sessions(&self, before: i64) -> StoreResult<u64> {
        let n = sqlx::query("DELETE FROM checkout_sessions WHERE expires_at < $1")
            .bind(before)
            .execute(self.writer())
            .await?
            .rows_affected();
        Ok(n)
    }
}
