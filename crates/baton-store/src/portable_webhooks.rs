// Portable SQL of `WebhookStore`, `include!`d by `sqlite.rs` and `postgres.rs` after
// `portable_execution.rs` (same conventions and hooks, and the same `SKIP_LOCKED`
// row-claiming clause).

mod webhooks_sql {
    use sqlx::Row as _;

    use super::{Db, DbRow};
    use crate::webhook_store::{DeliveryAttemptRecord, DeliveryRecord, DeliveryStatus, WebhookEndpointRecord};
    use crate::{StoreError, StoreResult};

    pub(super) const ENDPOINT_COLUMNS: &str = "endpoint_id, account_id, tenant_id, url, event_types, description, \
        enabled, secret_sealed, previous_secret_sealed, previous_secret_expires_at, failing_since, disabled_reason, \
        created_at, updated_at";
    pub(super) const DELIVERY_COLUMNS: &str = "delivery_id, endpoint_id, event_seq, event_id, event_type, \
        ordering_key, status, attempts, next_attempt_at, locked_until, event_created_at, created_at, delivered_at";
    pub(super) const ATTEMPT_COLUMNS: &str =
        "delivery_id, attempt, status_code, duration_ms, response, error, attempted_at";
    /// Statuses of a delivery that still has to reach its endpoint.
    pub(super) const UNDELIVERED: &str = "('PENDING', 'FAILED')";

    pub(super) fn endpoint_from_row(row: &DbRow) -> StoreResult<WebhookEndpointRecord> {
        let types: String = row.try_get("event_types")?;
        Ok(WebhookEndpointRecord {
            endpoint_id: row.try_get("endpoint_id")?,
            account_id: row.try_get("account_id")?,
            tenant_id: row.try_get("tenant_id")?,
            url: row.try_get("url")?,
            event_types: serde_json::from_str(&types)
                .map_err(|_| StoreError::Corrupt(format!("webhook event types {types:?}")))?,
            description: row.try_get("description")?,
            enabled: row.try_get("enabled")?,
            secret_sealed: row.try_get("secret_sealed")?,
            previous_secret_sealed: row.try_get("previous_secret_sealed")?,
            previous_secret_expires_at: row.try_get("previous_secret_expires_at")?,
            failing_since: row.try_get("failing_since")?,
            disabled_reason: row.try_get("disabled_reason")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }

    pub(super) fn delivery_from_row(row: &DbRow) -> StoreResult<DeliveryRecord> {
        let status: String = row.try_get("status")?;
        Ok(DeliveryRecord {
            delivery_id: row.try_get("delivery_id")?,
            endpoint_id: row.try_get("endpoint_id")?,
            event_seq: row.try_get("event_seq")?,
            event_id: row.try_get("event_id")?,
            event_type: row.try_get("event_type")?,
            ordering_key: row.try_get("ordering_key")?,
            status: DeliveryStatus::parse(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("delivery status {status:?}")))?,
            attempts: row.try_get("attempts")?,
            next_attempt_at: row.try_get("next_attempt_at")?,
            locked_until: row.try_get("locked_until")?,
            event_created_at: row.try_get("event_created_at")?,
            created_at: row.try_get("created_at")?,
            delivered_at: row.try_get("delivered_at")?,
        })
    }

    pub(super) fn attempt_from_row(row: &DbRow) -> StoreResult<DeliveryAttemptRecord> {
        Ok(DeliveryAttemptRecord {
            delivery_id: row.try_get("delivery_id")?,
            attempt: row.try_get("attempt")?,
            status_code: row.try_get("status_code")?,
            duration_ms: row.try_get("duration_ms")?,
            response: row.try_get("response")?,
            error: row.try_get("error")?,
            attempted_at: row.try_get("attempted_at")?,
        })
    }

    /// `$first, $first+1, …` for `n` values.
    pub(super) fn placeholders(first: usize, n: usize) -> String {
        (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
    }

    /// `tenant_id = $n` or `tenant_id IS NULL` (account-level endpoints); the bound
    /// value is ignored in the second case but keeps the numbering.
    pub(super) fn owner_clause(tenant_id: Option<&str>, n: usize) -> String {
        match tenant_id {
            Some(_) => format!("tenant_id = ${n}"),
            None => format!("(tenant_id IS NULL AND ${n} IS NULL)"),
        }
    }

    pub(super) async fn insert_delivery(
        tx: &mut sqlx::Transaction<'_, Db>,
        d: &DeliveryRecord,
    ) -> StoreResult<bool> {
        let n = sqlx::query(&format!(
            "INSERT INTO webhook_deliveries ({DELIVERY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
             $11, $12, $13) ON CONFLICT (endpoint_id, event_seq) DO NOTHING"
        ))
        .bind(&d.delivery_id)
        .bind(&d.endpoint_id)
        .bind(d.event_seq)
        .bind(&d.event_id)
        .bind(&d.event_type)
        .bind(&d.ordering_key)
        .bind(d.status.as_str())
        .bind(d.attempts)
        .bind(d.next_attempt_at)
        .bind(d.locked_until)
        .bind(d.event_created_at)
        .bind(d.created_at)
        .bind(d.delivered_at)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Records finished attempts (see `WebhookStore::record_attempts`) in a handful of
    /// statements whatever the batch size: the attempts in multi-row inserts, the
    /// successes of one lease in one update, each failure on its own (they are rare),
    /// then each endpoint's failing run once.
    pub(super) async fn record_attempts(
        tx: &mut sqlx::Transaction<'_, Db>,
        items: &[(i64, crate::AttemptOutcome)],
        now: i64,
    ) -> StoreResult<Vec<bool>> {
        use crate::DeliveryStatus::Succeeded;
        for chunk in items.chunks(200) {
            let rows = (0..chunk.len()).map(|i| format!("({})", placeholders(i * 7 + 1, 7))).collect::<Vec<_>>();
            let sql = format!(
                "INSERT INTO webhook_attempts ({ATTEMPT_COLUMNS}) VALUES {} ON CONFLICT (delivery_id, attempt) DO NOTHING",
                rows.join(", ")
            );
            let mut q = sqlx::query(&sql);
            for (_, o) in chunk {
                let a = &o.attempt;
                q = q
                    .bind(&a.delivery_id)
                    .bind(a.attempt)
                    .bind(a.status_code)
                    .bind(a.duration_ms)
                    .bind(&a.response)
                    .bind(&a.error)
                    .bind(a.attempted_at);
            }
            q.execute(&mut **tx).await?;
        }
        // delivery id -> endpoint id, for the deliveries whose state was written.
        let mut written: std::collections::HashMap<String, String> = std::collections::HashMap::new();
        let mut leases: Vec<i64> = items.iter().filter(|(_, o)| o.status == Succeeded).map(|(l, _)| *l).collect();
        leases.sort_unstable();
        leases.dedup();
        for lease in leases {
            let ids: Vec<&str> = items
                .iter()
                .filter(|(l, o)| *l == lease && o.status == Succeeded)
                .map(|(_, o)| o.attempt.delivery_id.as_str())
                .collect();
            for chunk in ids.chunks(500) {
                let sql = format!(
                    "UPDATE webhook_deliveries SET status = 'SUCCEEDED', attempts = attempts + 1, locked_until = NULL, \
                     delivered_at = $1 WHERE locked_until = $2 AND delivery_id IN ({}) RETURNING delivery_id, endpoint_id",
                    placeholders(3, chunk.len())
                );
                let mut q = sqlx::query(&sql).bind(now).bind(lease);
                for id in chunk {
                    q = q.bind(*id);
                }
                for row in q.fetch_all(&mut **tx).await? {
                    written.insert(row.try_get("delivery_id")?, row.try_get("endpoint_id")?);
                }
            }
        }
        for (lease, o) in items.iter().filter(|(_, o)| o.status != Succeeded) {
            let row = sqlx::query(
                "UPDATE webhook_deliveries SET status = $1, attempts = $2, next_attempt_at = $3, locked_until = NULL \
                 WHERE delivery_id = $4 AND locked_until = $5 RETURNING endpoint_id",
            )
            .bind(o.status.as_str())
            .bind(o.attempt.attempt)
            .bind(o.next_attempt_at)
            .bind(&o.attempt.delivery_id)
            .bind(*lease)
            .fetch_optional(&mut **tx)
            .await?;
            if let Some(row) = row {
                written.insert(o.attempt.delivery_id.clone(), row.try_get("endpoint_id")?);
            }
        }
        // Each endpoint's failing run: any success in the batch ends it; otherwise it
        // starts at the earliest failure unless it had already started.
        let mut endpoints: std::collections::BTreeMap<&str, (bool, i64)> = std::collections::BTreeMap::new();
        for (_, o) in items {
            if let Some(endpoint_id) = written.get(&o.attempt.delivery_id) {
                let entry = endpoints.entry(endpoint_id.as_str()).or_insert((false, i64::MAX));
                if o.status == Succeeded {
                    entry.0 = true;
                } else {
                    entry.1 = entry.1.min(o.attempt.attempted_at);
                }
            }
        }
        for (endpoint_id, (any_success, first_failure)) in endpoints {
            if any_success {
                sqlx::query(
                    "UPDATE webhook_endpoints SET failing_since = NULL WHERE endpoint_id = $1 AND failing_since IS NOT NULL",
                )
                .bind(endpoint_id)
                .execute(&mut **tx)
                .await?;
            } else {
                sqlx::query(
                    "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, $1) WHERE endpoint_id = $2",
                )
                .bind(first_failure)
                .bind(endpoint_id)
                .execute(&mut **tx)
                .await?;
            }
        }
        for (_, o) in items {
            let (Some(event), Some(endpoint_id)) = (&o.disable_endpoint, written.get(&o.attempt.delivery_id)) else {
                continue;
            };
            let n = sqlx::query(
                "UPDATE webhook_endpoints SET enabled = FALSE, disabled_reason = $1, updated_at = $2 \
                 WHERE endpoint_id = $3 AND enabled",
            )
            .bind("FAILING")
            .bind(now)
            .bind(endpoint_id)
            .execute(&mut **tx)
            .await?
            .rows_affected();
            // Announced once, by whichever worker disabled it.
            if n == 1 {
                super::execution_sql::insert_event(tx, event).await?;
            }
        }
        Ok(items.iter().map(|(_, o)| written.contains_key(&o.attempt.delivery_id)).collect())
    }
}

#[async_trait]
impl crate::WebhookStore for ThisStore {
    async fn insert_webhook_endpoint(&self, e: &crate::WebhookEndpointRecord) -> StoreResult<()> {
        let types = serde_json::to_string(&e.event_types).map_err(|err| StoreError::Corrupt(err.to_string()))?;
        sqlx::query(&format!(
            "INSERT INTO webhook_endpoints ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            webhooks_sql::ENDPOINT_COLUMNS
        ))
        .bind(&e.endpoint_id)
        .bind(&e.account_id)
        .bind(&e.tenant_id)
        .bind(&e.url)
        .bind(types)
        .bind(&e.description)
        .bind(e.enabled)
        .bind(&e.secret_sealed)
        .bind(&e.previous_secret_sealed)
        .bind(e.previous_secret_expires_at)
        .bind(e.failing_since)
        .bind(&e.disabled_reason)
        .bind(e.created_at)
        .bind(e.updated_at)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    async fn webhook_endpoints(
        &self,
        account_id: &str,
        tenant_id: Option<&str>,
    ) -> StoreResult<Vec<crate::WebhookEndpointRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM webhook_endpoints WHERE account_id = $1 AND {} ORDER BY created_at, endpoint_id",
            webhooks_sql::ENDPOINT_COLUMNS,
            webhooks_sql::owner_clause(tenant_id, 2)
        ))
        .bind(account_id)
        .bind(tenant_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(webhooks_sql::endpoint_from_row).collect()
    }

    async fn webhook_endpoint(
        &self,
        account_id: &str,
        tenant_id: Option<&str>,
        endpoint_id: &str,
    ) -> StoreResult<Option<crate::WebhookEndpointRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM webhook_endpoints WHERE account_id = $1 AND {} AND endpoint_id = $3",
            webhooks_sql::ENDPOINT_COLUMNS,
            webhooks_sql::owner_clause(tenant_id, 2)
        ))
        .bind(account_id)
        .bind(tenant_id)
        .bind(endpoint_id)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(webhooks_sql::endpoint_from_row).transpose()
    }

    async fn update_webhook_endpoint(&self, e: &crate::WebhookEndpointRecord) -> StoreResult<bool> {
        let types = serde_json::to_string(&e.event_types).map_err(|err| StoreError::Corrupt(err.to_string()))?;
        let n = sqlx::query(&format!(
            "UPDATE webhook_endpoints SET url = $1, event_types = $2, description = $3, enabled = $4, \
             secret_sealed = $5, previous_secret_sealed = $6, previous_secret_expires_at = $7, failing_since = $8, \
             disabled_reason = $9, updated_at = $10 WHERE endpoint_id = $11 AND account_id = $12 AND {}",
            webhooks_sql::owner_clause(e.tenant_id.as_deref(), 13)
        ))
        .bind(&e.url)
        .bind(types)
        .bind(&e.description)
        .bind(e.enabled)
        .bind(&e.secret_sealed)
        .bind(&e.previous_secret_sealed)
        .bind(e.previous_secret_expires_at)
        .bind(e.failing_since)
        .bind(&e.disabled_reason)
        .bind(e.updated_at)
        .bind(&e.endpoint_id)
        .bind(&e.account_id)
        .bind(&e.tenant_id)
        .execute(self.writer())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn delete_webhook_endpoint(
        &self,
        account_id: &str,
        tenant_id: Option<&str>,
        endpoint_id: &str,
    ) -> StoreResult<bool> {
        let n = sqlx::query(&format!(
            "DELETE FROM webhook_endpoints WHERE account_id = $1 AND {} AND endpoint_id = $3",
            webhooks_sql::owner_clause(tenant_id, 2)
        ))
        .bind(account_id)
        .bind(tenant_id)
        .bind(endpoint_id)
        .execute(self.writer())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn dispatch_events(
        &self,
        now: i64,
        limit: u32,
        new_id: &(dyn Fn() -> String + Send + Sync),
    ) -> StoreResult<(usize, usize)> {
        // Polled often: look with a reader first, so an idle poll never takes SQLite's writer.
        if sqlx::query("SELECT seq FROM events WHERE dispatched_at IS NULL LIMIT 1")
            .fetch_optional(self.reader())
            .await?
            .is_none()
        {
            return Ok((0, 0));
        }
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(&format!(
            "SELECT {} FROM events WHERE dispatched_at IS NULL ORDER BY seq LIMIT $1 {SKIP_LOCKED}",
            execution_sql::EVENT_COLUMNS
        ))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            tx.rollback().await?;
            return Ok((0, 0));
        }
        let events = rows.iter().map(execution_sql::event_from_row).collect::<StoreResult<Vec<_>>>()?;
        let mut accounts: Vec<&str> = events.iter().filter_map(|e| e.event.account_id.as_deref()).collect();
        accounts.sort_unstable();
        accounts.dedup();
        let query = format!(
            "SELECT {} FROM webhook_endpoints WHERE enabled AND account_id IN ({}) ORDER BY created_at, endpoint_id",
            webhooks_sql::ENDPOINT_COLUMNS,
            webhooks_sql::placeholders(1, accounts.len())
        );
        let mut q = sqlx::query(&query);
        for a in &accounts {
            q = q.bind(*a);
        }
        let endpoints =
            q.fetch_all(&mut *tx).await?.iter().map(webhooks_sql::endpoint_from_row).collect::<StoreResult<Vec<_>>>()?;
        let mut created = 0;
        for stored in &events {
            for endpoint in endpoints.iter().filter(|ep| ep.wants(&stored.event)) {
                let delivery = crate::DeliveryRecord {
                    delivery_id: new_id(),
                    endpoint_id: endpoint.endpoint_id.clone(),
                    event_seq: stored.seq,
                    event_id: stored.event.event_id.clone(),
                    event_type: stored.event.event_type.as_str().to_string(),
                    ordering_key: stored.event.ordering_key.clone(),
                    status: crate::DeliveryStatus::Pending,
                    attempts: 0,
                    next_attempt_at: now,
                    locked_until: None,
                    event_created_at: stored.event.created_at,
                    created_at: now,
                    delivered_at: None,
                };
                if webhooks_sql::insert_delivery(&mut tx, &delivery).await? {
                    created += 1;
                }
            }
        }
        let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
        let query = format!(
            "UPDATE events SET dispatched_at = $1 WHERE seq IN ({})",
            webhooks_sql::placeholders(2, seqs.len())
        );
        let mut q = sqlx::query(&query).bind(now);
        for s in &seqs {
            q = q.bind(*s);
        }
        q.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok((events.len(), created))
    }

    async fn insert_direct_delivery(
        &self,
        event: &crate::EventRecord,
        endpoint_id: &str,
        delivery_id: &str,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        execution_sql::insert_event(&mut tx, event).await?;
        let seq: i64 = sqlx::query("UPDATE events SET dispatched_at = $1 WHERE event_id = $2 RETURNING seq")
            .bind(event.created_at)
            .bind(&event.event_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("seq")?;
        let delivery = crate::DeliveryRecord {
            delivery_id: delivery_id.to_string(),
            endpoint_id: endpoint_id.to_string(),
            event_seq: seq,
            event_id: event.event_id.clone(),
            event_type: event.event_type.as_str().to_string(),
            ordering_key: event.ordering_key.clone(),
            status: crate::DeliveryStatus::Pending,
            attempts: 0,
            next_attempt_at: event.created_at,
            locked_until: None,
            event_created_at: event.created_at,
            created_at: event.created_at,
            delivered_at: None,
        };
        webhooks_sql::insert_delivery(&mut tx, &delivery).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn claim_deliveries(
        &self,
        now: i64,
        locked_until: i64,
        limit: u32,
        claimant: crate::Claimant<'_>,
    ) -> StoreResult<Vec<crate::ClaimedDelivery>> {
        use webhooks_sql::UNDELIVERED;
        // Polled often: look with a reader first, so an idle poll never takes SQLite's writer.
        let due = sqlx::query(&format!(
            "SELECT delivery_id FROM webhook_deliveries WHERE status IN {UNDELIVERED} AND next_attempt_at <= $1 \
             AND (locked_until IS NULL OR locked_until <= $1 OR {}) LIMIT 1",
            held_by_lost_node("webhook_deliveries.locked_by", 2)
        ))
        .bind(now)
        .bind(claimant.lost_before)
        .fetch_optional(self.reader())
        .await?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_write().await?;
        // A delivery waits for the earlier undelivered deliveries of its ordering key to
        // the same endpoint, and for the earlier events of that key not fanned out yet.
        // One is free when never leased, when its lease ran out, or when its node died.
        let rows = sqlx::query(&format!(
            "UPDATE webhook_deliveries SET locked_until = $1, locked_by = $2 WHERE delivery_id IN (\
               SELECT d.delivery_id FROM webhook_deliveries d \
               WHERE d.status IN {UNDELIVERED} AND d.next_attempt_at <= $3 \
                 AND (d.locked_until IS NULL OR d.locked_until <= $3 OR {}) \
                 AND EXISTS (SELECT 1 FROM webhook_endpoints ep WHERE ep.endpoint_id = d.endpoint_id \
                   AND (ep.enabled OR d.event_type = 'ping')) \
                 AND (d.ordering_key IS NULL OR (\
                   NOT EXISTS (SELECT 1 FROM webhook_deliveries p WHERE p.endpoint_id = d.endpoint_id \
                     AND p.ordering_key = d.ordering_key AND p.status IN {UNDELIVERED} AND p.event_seq < d.event_seq) \
                   AND NOT EXISTS (SELECT 1 FROM events ev WHERE ev.dispatched_at IS NULL \
                     AND ev.ordering_key = d.ordering_key AND ev.seq < d.event_seq))) \
               ORDER BY d.next_attempt_at, d.event_seq LIMIT $5 {SKIP_LOCKED}) \
             AND (locked_until IS NULL OR locked_until <= $3 OR {}) RETURNING {}",
            held_by_lost_node("d.locked_by", 4),
            held_by_lost_node("webhook_deliveries.locked_by", 4),
            webhooks_sql::DELIVERY_COLUMNS
        ))
        .bind(locked_until)
        .bind(claimant.node_id)
        .bind(now)
        .bind(claimant.lost_before)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let deliveries = rows.iter().map(webhooks_sql::delivery_from_row).collect::<StoreResult<Vec<_>>>()?;
        if deliveries.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let query = format!(
            "SELECT {}, ep.endpoint_id AS ep_id FROM events e JOIN webhook_deliveries d ON d.event_seq = e.seq \
             JOIN webhook_endpoints ep ON ep.endpoint_id = d.endpoint_id WHERE d.delivery_id IN ({})",
            execution_sql::EVENT_COLUMNS
                .split(", ")
                .map(|c| format!("e.{c}"))
                .chain(webhooks_sql::ENDPOINT_COLUMNS.split(", ").filter(|c| *c != "endpoint_id").map(|c| {
                    if matches!(c, "account_id" | "tenant_id" | "created_at") {
                        format!("ep.{c} AS ep_{c}")
                    } else {
                        format!("ep.{c}")
                    }
                }))
                .chain(std::iter::once("d.delivery_id AS d_id".to_string()))
                .collect::<Vec<_>>()
                .join(", "),
            webhooks_sql::placeholders(1, deliveries.len())
        );
        let mut q = sqlx::query(&query);
        for d in &deliveries {
            q = q.bind(&d.delivery_id);
        }
        let rows = q.fetch_all(&mut *tx).await?;
        tx.commit().await?;
        let mut by_delivery = std::collections::HashMap::new();
        for row in &rows {
            let event = execution_sql::event_from_row(row)?.event;
            let types: String = row.try_get("event_types")?;
            let endpoint = crate::WebhookEndpointRecord {
                endpoint_id: row.try_get("ep_id")?,
                account_id: row.try_get("ep_account_id")?,
                tenant_id: row.try_get("ep_tenant_id")?,
                url: row.try_get("url")?,
                event_types: serde_json::from_str(&types)
                    .map_err(|_| StoreError::Corrupt(format!("webhook event types {types:?}")))?,
                description: row.try_get("description")?,
                enabled: row.try_get("enabled")?,
                secret_sealed: row.try_get("secret_sealed")?,
                previous_secret_sealed: row.try_get("previous_secret_sealed")?,
                previous_secret_expires_at: row.try_get("previous_secret_expires_at")?,
                failing_since: row.try_get("failing_since")?,
                disabled_reason: row.try_get("disabled_reason")?,
                created_at: row.try_get("ep_created_at")?,
                updated_at: row.try_get("updated_at")?,
            };
            by_delivery.insert(row.try_get::<String, _>("d_id")?, (event, endpoint));
        }
        let mut claimed = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            let Some((event, endpoint)) = by_delivery.remove(&delivery.delivery_id) else {
                return Err(StoreError::Corrupt(format!("delivery {} lost its event", delivery.delivery_id)));
            };
            claimed.push(crate::ClaimedDelivery { delivery, event, endpoint });
        }
        claimed.sort_by_key(|c| (c.delivery.next_attempt_at, c.delivery.event_seq));
        Ok(claimed)
    }

    async fn record_attempts(&self, attempts: &[(i64, crate::AttemptOutcome)], now: i64) -> StoreResult<Vec<bool>> {
        if attempts.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_write().await?;
        let written = webhooks_sql::record_attempts(&mut tx, attempts, now).await?;
        tx.commit().await?;
        Ok(written)
    }

    async fn webhook_deliveries(
        &self,
        endpoint_id: &str,
        filter: &crate::DeliveryFilter,
    ) -> StoreResult<Vec<(crate::DeliveryRecord, Vec<crate::DeliveryAttemptRecord>)>> {
        let mut sql = format!("SELECT {} FROM webhook_deliveries WHERE endpoint_id = $1", webhooks_sql::DELIVERY_COLUMNS);
        let mut n = 1;
        let mut next = || {
            n += 1;
            n
        };
        if filter.event_type.is_some() {
            sql.push_str(&format!(" AND event_type = ${}", next()));
        }
        if filter.status.is_some() {
            sql.push_str(&format!(" AND status = ${}", next()));
        }
        if filter.from.is_some() {
            sql.push_str(&format!(" AND created_at >= ${}", next()));
        }
        if filter.to.is_some() {
            sql.push_str(&format!(" AND created_at < ${}", next()));
        }
        sql.push_str(&format!(" ORDER BY created_at DESC, event_seq DESC LIMIT ${}", next()));
        let mut q = sqlx::query(&sql).bind(endpoint_id);
        if let Some(t) = &filter.event_type {
            q = q.bind(t);
        }
        if let Some(s) = filter.status {
            q = q.bind(s.as_str());
        }
        if let Some(f) = filter.from {
            q = q.bind(f);
        }
        if let Some(t) = filter.to {
            q = q.bind(t);
        }
        let rows = q.bind(i64::from(filter.limit.max(1))).fetch_all(self.reader()).await?;
        let deliveries = rows.iter().map(webhooks_sql::delivery_from_row).collect::<StoreResult<Vec<_>>>()?;
        if deliveries.is_empty() {
            return Ok(Vec::new());
        }
        let query = format!(
            "SELECT {} FROM webhook_attempts WHERE delivery_id IN ({}) ORDER BY delivery_id, attempt",
            webhooks_sql::ATTEMPT_COLUMNS,
            webhooks_sql::placeholders(1, deliveries.len())
        );
        let mut q = sqlx::query(&query);
        for d in &deliveries {
            q = q.bind(&d.delivery_id);
        }
        let mut attempts: std::collections::HashMap<String, Vec<crate::DeliveryAttemptRecord>> =
            std::collections::HashMap::new();
        for row in q.fetch_all(self.reader()).await? {
            let a = webhooks_sql::attempt_from_row(&row)?;
            attempts.entry(a.delivery_id.clone()).or_default().push(a);
        }
        Ok(deliveries
            .into_iter()
            .map(|d| {
                let a = attempts.remove(&d.delivery_id).unwrap_or_default();
                (d, a)
            })
            .collect())
    }

    async fn webhook_delivery(&self, delivery_id: &str) -> StoreResult<Option<crate::DeliveryRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM webhook_deliveries WHERE delivery_id = $1",
            webhooks_sql::DELIVERY_COLUMNS
        ))
        .bind(delivery_id)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(webhooks_sql::delivery_from_row).transpose()
    }

    async fn redeliver(&self, delivery_id: &str, now: i64) -> StoreResult<bool> {
        let n = sqlx::query(
            "UPDATE webhook_deliveries SET status = CASE WHEN status = 'PENDING' THEN 'PENDING' ELSE 'FAILED' END, \
             next_attempt_at = $1 WHERE delivery_id = $2 AND (locked_until IS NULL OR locked_until <= $1)",
        )
        .bind(now)
        .bind(delivery_id)
        .execute(self.writer())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn undelivered_count(&self) -> StoreResult<i64> {
        let row = sqlx::query(&format!(
            "SELECT COUNT(*) AS n FROM webhook_deliveries WHERE status IN {}",
            webhooks_sql::UNDELIVERED
        ))
        .fetch_one(self.reader())
        .await?;
        Ok(row.try_get("n")?)
    }
}
