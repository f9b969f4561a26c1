// Portable SQL of `VaultStore`, `include!`d by `sqlite.rs` and `postgres.rs` after
// `portable_routing.rs` (same conventions and hooks).

use crate::vault_store::{CustomerKeyRecord, SealedSecret, SealedSecretRef};

const CUSTOMER_KEY_COLUMNS: &str = "tenant_id, customer_ref, wrapped_key, master_key_id, created_at, shredded_at";

fn customer_key_from_row(row: &DbRow) -> StoreResult<CustomerKeyRecord> {
    customer_key_from(Cols::of(row))
}

fn customer_key_from(c: Cols<'_>) -> StoreResult<CustomerKeyRecord> {
    Ok(CustomerKeyRecord {
        tenant_id: c.get("tenant_id")?,
        customer_ref: c.get("customer_ref")?,
        wrapped_key: c.get("wrapped_key")?,
        master_key_id: c.get("master_key_id")?,
        created_at: c.get("created_at")?,
        shredded_at: c.get("shredded_at")?,
    })
}

fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

#[async_trait]
impl crate::VaultStore for ThisStore {
    async fn customer_key(&self, tenant_id: &str, customer_ref: &str) -> StoreResult<Option<CustomerKeyRecord>> {
        sqlx::query(&format!(
            "SELECT {CUSTOMER_KEY_COLUMNS} FROM customer_keys WHERE tenant_id = $1 AND customer_ref = $2"
        ))
        .bind(tenant_id)
        .bind(customer_ref)
        .fetch_optional(self.reader())
        .await?
        .as_ref()
        .map(customer_key_from_row)
        .transpose()
    }

    async fn create_customer_key(&self, r: &CustomerKeyRecord) -> StoreResult<bool> {
        let n = sqlx::query(&format!(
            "INSERT INTO customer_keys ({CUSTOMER_KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (tenant_id, customer_ref) DO NOTHING"
        ))
        .bind(&r.tenant_id)
        .bind(&r.customer_ref)
        .bind(&r.wrapped_key)
        .bind(&r.master_key_id)
        .bind(r.created_at)
        .bind(r.shredded_at)
        .execute(self.writer())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn shred_customer_key(&self, tenant_id: &str, customer_ref: &str, now: i64) -> StoreResult<bool> {
        let n = sqlx::query(
            "UPDATE customer_keys SET wrapped_key = NULL, shredded_at = $1 \
             WHERE tenant_id = $2 AND customer_ref = $3 AND wrapped_key IS NOT NULL",
        )
        .bind(now)
        .bind(tenant_id)
        .bind(customer_ref)
        .execute(self.writer())
        .await?
        .rows_affected();
        if n == 1 {
            self.purge_deleted_bytes().await;
        }
        Ok(n == 1)
    }

    async fn keys_wrapped_by_other(&self, master_key_id: &str, limit: usize) -> StoreResult<Vec<CustomerKeyRecord>> {
        // `<>` would make both engines walk every key, rewrapped ones included, for
        // each batch; the two ranges either side of the id each follow the partial
        // index `customer_keys_rotation` and stop after `limit` rows.
        let mut out = Vec::new();
        for op in ["<", ">"] {
            let wanted = limit.saturating_sub(out.len());
            if wanted == 0 {
                break;
            }
            let rows = sqlx::query(&format!(
                "SELECT {CUSTOMER_KEY_COLUMNS} FROM customer_keys \
                 WHERE wrapped_key IS NOT NULL AND master_key_id {op} $1 \
                 ORDER BY master_key_id, tenant_id, customer_ref LIMIT $2"
            ))
            .bind(master_key_id)
            .bind(sql_limit(wanted))
            .fetch_all(self.reader())
            .await?;
            for row in &rows {
                out.push(customer_key_from_row(row)?);
            }
        }
        Ok(out)
    }

    async fn count_keys_by_master_key(&self) -> StoreResult<Vec<(String, u64)>> {
        sqlx::query(
            "SELECT master_key_id, COUNT(*) AS n FROM customer_keys WHERE wrapped_key IS NOT NULL \
             GROUP BY master_key_id ORDER BY master_key_id",
        )
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(|row| {
            let n: i64 = row.try_get("n")?;
            Ok((row.try_get("master_key_id")?, u64::try_from(n).unwrap_or(0)))
        })
        .collect()
    }

    async fn rewrap_customer_key(
        &self,
        tenant_id: &str,
        customer_ref: &str,
        old_wrapped: &[u8],
        new_wrapped: &[u8],
        new_master_key_id: &str,
    ) -> StoreResult<bool> {
        let n = sqlx::query(
            "UPDATE customer_keys SET wrapped_key = $1, master_key_id = $2 \
             WHERE tenant_id = $3 AND customer_ref = $4 AND wrapped_key = $5",
        )
        .bind(new_wrapped)
        .bind(new_master_key_id)
        .bind(tenant_id)
        .bind(customer_ref)
        .bind(old_wrapped)
        .execute(self.writer())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn sealed_secrets(&self) -> StoreResult<Vec<SealedSecret>> {
        let mut out = Vec::new();
        for row in sqlx::query("SELECT kid, secret_sealed FROM token_signing_keys ORDER BY created_at, kid")
            .fetch_all(self.reader())
            .await?
        {
            out.push(SealedSecret {
                location: SealedSecretRef::SigningKey { kid: row.try_get("kid")? },
                sealed: row.try_get("secret_sealed")?,
            });
        }
        for row in sqlx::query("SELECT public_key, private_key_sealed FROM api_keys ORDER BY created_at, public_key")
            .fetch_all(self.reader())
            .await?
        {
            out.push(SealedSecret {
                location: SealedSecretRef::ApiKey { public_key: row.try_get("public_key")? },
                sealed: row.try_get("private_key_sealed")?,
            });
        }
        for row in sqlx::query(
            "SELECT tenant_id, app_id, config_secrets_sealed FROM installed_apps \
             WHERE config_secrets_sealed IS NOT NULL ORDER BY tenant_id, app_id",
        )
        .fetch_all(self.reader())
        .await?
        {
            out.push(SealedSecret {
                location: SealedSecretRef::AppSecrets {
                    tenant_id: row.try_get("tenant_id")?,
                    app_id: row.try_get("app_id")?,
                },
                sealed: row.try_get("config_secrets_sealed")?,
            });
        }
        for row in sqlx::query(
            "SELECT endpoint_id, secret_sealed, previous_secret_sealed FROM webhook_endpoints \
             ORDER BY created_at, endpoint_id",
        )
        .fetch_all(self.reader())
        .await?
        {
            let endpoint_id: String = row.try_get("endpoint_id")?;
            out.push(SealedSecret {
                location: SealedSecretRef::WebhookSecret { endpoint_id: endpoint_id.clone() },
                sealed: row.try_get("secret_sealed")?,
            });
            if let Some(previous) = row.try_get::<Option<Vec<u8>>, _>("previous_secret_sealed")? {
                out.push(SealedSecret {
                    location: SealedSecretRef::WebhookPreviousSecret { endpoint_id },
                    sealed: previous,
                });
            }
        }
        for row in sqlx::query(
            "SELECT tenant_id, secrets_sealed FROM delivery_settings WHERE secrets_sealed IS NOT NULL \
             ORDER BY tenant_id",
        )
        .fetch_all(self.reader())
        .await?
        {
            out.push(SealedSecret {
                location: SealedSecretRef::DeliverySettings { tenant_id: row.try_get("tenant_id")? },
                sealed: row.try_get("secrets_sealed")?,
            });
        }
        Ok(out)
    }

    async fn reseal_secret(&self, location: &SealedSecretRef, old: &[u8], new: &[u8]) -> StoreResult<bool> {
        let query = match location {
            SealedSecretRef::SigningKey { kid } => {
                sqlx::query("UPDATE token_signing_keys SET secret_sealed = $1 WHERE kid = $2 AND secret_sealed = $3")
                    .bind(new)
                    .bind(kid)
                    .bind(old)
            }
            SealedSecretRef::ApiKey { public_key } => sqlx::query(
                "UPDATE api_keys SET private_key_sealed = $1 WHERE public_key = $2 AND private_key_sealed = $3",
            )
            .bind(new)
            .bind(public_key)
            .bind(old),
            SealedSecretRef::AppSecrets { tenant_id, app_id } => sqlx::query(
                "UPDATE installed_apps SET config_secrets_sealed = $1 \
                 WHERE tenant_id = $2 AND app_id = $3 AND config_secrets_sealed = $4",
            )
            .bind(new)
            .bind(tenant_id)
            .bind(app_id)
            .bind(old),
            SealedSecretRef::WebhookSecret { endpoint_id } => sqlx::query(
                "UPDATE webhook_endpoints SET secret_sealed = $1 WHERE endpoint_id = $2 AND secret_sealed = $3",
            )
            .bind(new)
            .bind(endpoint_id)
            .bind(old),
            SealedSecretRef::WebhookPreviousSecret { endpoint_id } => sqlx::query(
                "UPDATE webhook_endpoints SET previous_secret_sealed = $1 \
                 WHERE endpoint_id = $2 AND previous_secret_sealed = $3",
            )
            .bind(new)
            .bind(endpoint_id)
            .bind(old),
            SealedSecretRef::DeliverySettings { tenant_id } => sqlx::query(
                "UPDATE delivery_settings SET secrets_sealed = $1 WHERE tenant_id = $2 AND secrets_sealed = $3",
            )
            .bind(new)
            .bind(tenant_id)
            .bind(old),
        };
        Ok(query.execute(self.writer()).await?.rows_affected() == 1)
    }

    async fn set_master_key_check(&self, old: &[u8], new: &[u8]) -> StoreResult<bool> {
        let n = sqlx::query("UPDATE baton_meta SET value = $1 WHERE name = 'master_key_check' AND value = $2")
            .bind(new)
            .bind(old)
            .execute(self.writer())
            .await?
            .rows_affected();
        Ok(n == 1)
    }
}
