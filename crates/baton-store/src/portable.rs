// Portable SQL shared by both backends. This file is `include!`d by `sqlite.rs` and
// `postgres.rs`, each of which defines `Db` (the sqlx driver), `ThisStore`, and the
// backend hooks `reader()`, `writer()`, `begin_write()`, `lock_account()`, `run_migrations()`.
// Placeholders are `$N`, numbered in order of first appearance (both drivers accept
// that form). Types are limited to TEXT, BIGINT, BOOLEAN and bytes so rows decode
// identically on both. The including module imports `Backend` and `StoreResult`.

use async_trait::async_trait;
use baton_domain::{Address, Country, Role, RoleSet, SchemeKind, TenantStatus};
use sqlx::Row as _;

use crate::records::*;
use crate::{Store, StoreError};

type DbRow = <Db as sqlx::Database>::Row;

/// Whether a claim made by the node in `column` (qualified by its table, as the
/// subquery has a `node_id` of its own) is abandoned: that node has not been heard from
/// since `$n` (it died). A claim recorded without a node never is.
fn held_by_lost_node(column: &str, n: usize) -> String {
    format!(
        "({column} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM nodes WHERE nodes.node_id = {column} \
         AND nodes.last_seen >= ${n}))"
    )
}

/// The columns of one table in a result row. A read that joins several tables selects
/// each table's columns under a prefix of its own (`o.order_id AS o_order_id`, see
/// [`prefixed`]), so that equal names cannot collide; a plain read has no prefix.
#[derive(Clone, Copy)]
struct Cols<'r> {
    row: &'r DbRow,
    prefix: &'static str,
}

impl<'r> Cols<'r> {
    fn of(row: &'r DbRow) -> Self {
        Self { row, prefix: "" }
    }

    fn prefixed(row: &'r DbRow, prefix: &'static str) -> Self {
        Self { row, prefix }
    }

    fn get<T>(self, column: &str) -> Result<T, sqlx::Error>
    where
        T: sqlx::Decode<'r, Db> + sqlx::Type<Db>,
    {
        if self.prefix.is_empty() {
            self.row.try_get(column)
        } else {
            self.row.try_get(format!("{}{column}", self.prefix).as_str())
        }
    }

    /// Whether the table had a row in an outer join (its `column`, never NULL in a
    /// stored row, is not NULL here).
    fn present(self, column: &str) -> Result<bool, sqlx::Error> {
        Ok(self.get::<Option<String>>(column)?.is_some())
    }
}

/// `columns` (a `, `-separated list) of table alias `t`, each selected as `{prefix}{column}`.
fn prefixed(columns: &str, t: &str, prefix: &str) -> String {
    columns.split(", ").map(|c| format!("{t}.{c} AS {prefix}{c}")).collect::<Vec<_>>().join(", ")
}

const ACCOUNT_COLUMNS: &str = "account_id, account_ref, company_name, billing_first_name, billing_last_name, \
    street_address, extended_street_address, locality, region, post_code, country, \
    tenant_creation_requires_approval, created_at, updated_at";
const LICENSE_COLUMNS: &str = "license_id, license_name, max_tenants, max_transactions, max_collect_apps, \
    max_payout_apps, valid_from, valid_to";
const TENANT_COLUMNS: &str = "tenant_id, account_id, name, name_key, street_address, extended_street_address, \
    locality, region, post_code, country, status, status_reason, created_at, updated_at";
const KEY_COLUMNS: &str = "public_key, account_id, tenant_id, name, roles, private_key_sealed, created_at, updated_at";

fn address_from_row(row: &DbRow) -> StoreResult<Address> {
    let country: Option<String> = row.try_get("country")?;
    let country = match country {
        None => None,
        Some(c) => Some(c.parse::<Country>().map_err(|_| StoreError::Corrupt(format!("country {c:?}")))?),
    };
    Ok(Address {
        street_address: row.try_get("street_address")?,
        extended_street_address: row.try_get("extended_street_address")?,
        locality: row.try_get("locality")?,
        region: row.try_get("region")?,
        post_code: row.try_get("post_code")?,
        country,
    })
}

fn account_from_row(row: &DbRow) -> StoreResult<AccountRecord> {
    Ok(AccountRecord {
        account_id: row.try_get("account_id")?,
        account_ref: row.try_get("account_ref")?,
        company_name: row.try_get("company_name")?,
        billing_first_name: row.try_get("billing_first_name")?,
        billing_last_name: row.try_get("billing_last_name")?,
        billing_address: address_from_row(row)?,
        tenant_creation_requires_approval: row.try_get("tenant_creation_requires_approval")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn license_from_row(row: &DbRow) -> StoreResult<LicenseRecord> {
    Ok(LicenseRecord {
        license_id: row.try_get("license_id")?,
        license_name: row.try_get("license_name")?,
        max_tenants: row.try_get("max_tenants")?,
        max_transactions: row.try_get("max_transactions")?,
        max_collect_apps: row.try_get("max_collect_apps")?,
        max_payout_apps: row.try_get("max_payout_apps")?,
        valid_from: row.try_get("valid_from")?,
        valid_to: row.try_get("valid_to")?,
    })
}

fn tenant_from_row(row: &DbRow) -> StoreResult<TenantRecord> {
    let status: String = row.try_get("status")?;
    Ok(TenantRecord {
        tenant_id: row.try_get("tenant_id")?,
        account_id: row.try_get("account_id")?,
        name: row.try_get("name")?,
        name_key: row.try_get("name_key")?,
        address: address_from_row(row)?,
        status: status.parse().map_err(|_| StoreError::Corrupt(format!("tenant status {status:?}")))?,
        status_reason: row.try_get("status_reason")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn roles_to_text(roles: &RoleSet) -> String {
    serde_json::to_string(&roles.names()).expect("a list of strings serialises")
}

fn roles_from_text(text: &str) -> StoreResult<RoleSet> {
    let names: Vec<String> = serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("roles: {e}")))?;
    names
        .iter()
        .map(|n| n.parse::<Role>().map_err(|_| StoreError::Corrupt(format!("role {n:?}"))))
        .collect::<StoreResult<Vec<_>>>()
        .map(RoleSet::new)
}

fn key_from_row(row: &DbRow) -> StoreResult<ApiKeyRecord> {
    let account_id: String = row.try_get("account_id")?;
    let tenant_id: Option<String> = row.try_get("tenant_id")?;
    let owner = match tenant_id {
        None => KeyOwner::Account { account_id },
        Some(tenant_id) => KeyOwner::Tenant { account_id, tenant_id },
    };
    let roles: String = row.try_get("roles")?;
    Ok(ApiKeyRecord {
        public_key: row.try_get("public_key")?,
        owner,
        name: row.try_get("name")?,
        roles: roles_from_text(&roles)?,
        private_key_sealed: row.try_get("private_key_sealed")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// `"account-admin"` as it appears inside the stored JSON list of roles.
fn role_pattern(role: Role) -> String {
    format!("%\"{}\"%", role.as_str())
}

/// Fails with `LastAdminKey` when the key is a live `account-admin` account key and
/// no other live one exists. Runs inside the caller's write transaction, after the
/// account row is locked, so concurrent removals cannot both pass.
async fn ensure_other_admin(
    tx: &mut sqlx::Transaction<'_, Db>,
    owner: &KeyOwner,
    public_key: &str,
) -> StoreResult<()> {
    let KeyOwner::Account { account_id } = owner else {
        return Ok(());
    };
    let pattern = role_pattern(Role::AccountAdmin);
    let is_admin = sqlx::query(
        "SELECT 1 FROM api_keys WHERE public_key = $1 AND account_id = $2 AND tenant_id IS NULL \
         AND deleted_at IS NULL AND roles LIKE $3",
    )
    .bind(public_key)
    .bind(account_id)
    .bind(&pattern)
    .fetch_optional(&mut **tx)
    .await?
    .is_some();
    if !is_admin {
        return Ok(());
    }
    let others: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM api_keys WHERE account_id = $1 AND tenant_id IS NULL \
         AND deleted_at IS NULL AND roles LIKE $2 AND public_key <> $3",
    )
    .bind(account_id)
    .bind(&pattern)
    .bind(public_key)
    .fetch_one(&mut **tx)
    .await?
    .try_get("n")?;
    if others == 0 {
        Err(StoreError::LastAdminKey)
    } else {
        Ok(())
    }
}

async fn insert_key(tx: &mut sqlx::Transaction<'_, Db>, key: &ApiKeyRecord) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO api_keys (public_key, account_id, tenant_id, name, roles, private_key_sealed, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&key.public_key)
    .bind(key.owner.account_id())
    .bind(key.owner.tenant_id())
    .bind(&key.name)
    .bind(roles_to_text(&key.roles))
    .bind(&key.private_key_sealed)
    .bind(key.created_at)
    .bind(key.updated_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The owner condition on `api_keys`, with `$1` = account and `$2` = tenant when present.
fn owner_clause(owner: &KeyOwner) -> &'static str {
    match owner {
        KeyOwner::Account { .. } => "account_id = $1 AND tenant_id IS NULL",
        KeyOwner::Tenant { .. } => "account_id = $1 AND tenant_id = $2",
    }
}

/// Binds the owner's values in the order `owner_clause` numbers them.
macro_rules! bind_owner {
    ($query:expr, $owner:expr) => {{
        let q = $query.bind($owner.account_id().to_string());
        match $owner.tenant_id() {
            Some(t) => q.bind(t.to_string()),
            None => q,
        }
    }};
}

/// The next free placeholder number after the owner's values.
fn after_owner(owner: &KeyOwner) -> usize {
    if owner.tenant_id().is_some() { 3 } else { 2 }
}

#[async_trait]
impl Store for ThisStore {
    fn backend(&self) -> Backend {
        Self::BACKEND
    }

    async fn migrate(&self) -> StoreResult<()> {
        self.run_migrations().await
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(self.reader()).await?;
        Ok(())
    }

    async fn close(&self) {
        self.close_pools().await;
    }

    async fn initialize(&self, init: &Initialization) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let claimed = sqlx::query("INSERT INTO baton_meta (name, value) VALUES ('master_key_check', $1) ON CONFLICT (name) DO NOTHING")
            .bind(&init.master_key_check)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let existing: i64 = sqlx::query("SELECT COUNT(*) AS n FROM accounts").fetch_one(&mut *tx).await?.try_get("n")?;
        if claimed == 0 || existing > 0 {
            return Err(StoreError::AlreadyInitialized);
        }
        let a = &init.account;
        sqlx::query(&format!(
            "INSERT INTO accounts ({ACCOUNT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ))
        .bind(&a.account_id)
        .bind(&a.account_ref)
        .bind(&a.company_name)
        .bind(&a.billing_first_name)
        .bind(&a.billing_last_name)
        .bind(&a.billing_address.street_address)
        .bind(&a.billing_address.extended_street_address)
        .bind(&a.billing_address.locality)
        .bind(&a.billing_address.region)
        .bind(&a.billing_address.post_code)
        .bind(a.billing_address.country.map(|c| c.as_str()))
        .bind(a.tenant_creation_requires_approval)
        .bind(a.created_at)
        .bind(a.updated_at)
        .execute(&mut *tx)
        .await?;
        let l = &init.license;
        sqlx::query(&format!(
            "INSERT INTO licenses (account_id, {LICENSE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&a.account_id)
        .bind(&l.license_id)
        .bind(&l.license_name)
        .bind(l.max_tenants)
        .bind(l.max_transactions)
        .bind(l.max_collect_apps)
        .bind(l.max_payout_apps)
        .bind(l.valid_from)
        .bind(l.valid_to)
        .execute(&mut *tx)
        .await?;
        insert_key(&mut tx, &init.admin_key).await?;
        sqlx::query("INSERT INTO token_signing_keys (kid, secret_sealed, created_at) VALUES ($1, $2, $3)")
            .bind(&init.signing_key.kid)
            .bind(&init.signing_key.secret_sealed)
            .bind(init.signing_key.created_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn master_key_check(&self) -> StoreResult<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT value FROM baton_meta WHERE name = 'master_key_check'")
            .fetch_optional(self.reader())
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("value")?),
            None => None,
        })
    }

    async fn account(&self, account_id: &str) -> StoreResult<Option<AccountRecord>> {
        sqlx::query(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE account_id = $1"))
            .bind(account_id)
            .fetch_optional(self.reader())
            .await?
            .as_ref()
            .map(account_from_row)
            .transpose()
    }

    async fn account_with_license(&self, account_id: &str) -> StoreResult<Option<(AccountRecord, Option<LicenseRecord>)>> {
        const SQL: &str = "SELECT a.account_id, a.account_ref, a.company_name, a.billing_first_name, a.billing_last_name, \
             a.street_address, a.extended_street_address, a.locality, a.region, a.post_code, a.country, \
             a.tenant_creation_requires_approval, a.created_at, a.updated_at, \
             l.license_id, l.license_name, l.max_tenants, l.max_transactions, l.max_collect_apps, l.max_payout_apps, \
             l.valid_from, l.valid_to \
             FROM accounts a LEFT JOIN licenses l ON l.account_id = a.account_id AND l.valid_to IS NULL \
             WHERE a.account_id = $1";
        let Some(row) = sqlx::query(SQL).bind(account_id).fetch_optional(self.reader()).await? else {
            return Ok(None);
        };
        let license = match row.try_get::<Option<String>, _>("license_id")? {
            Some(_) => Some(license_from_row(&row)?),
            None => None,
        };
        Ok(Some((account_from_row(&row)?, license)))
    }

    async fn update_account(&self, a: &AccountRecord) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE accounts SET company_name = $1, billing_first_name = $2, billing_last_name = $3, \
             street_address = $4, extended_street_address = $5, locality = $6, region = $7, post_code = $8, \
             country = $9, tenant_creation_requires_approval = $10, updated_at = $11 WHERE account_id = $12",
        )
        .bind(&a.company_name)
        .bind(&a.billing_first_name)
        .bind(&a.billing_last_name)
        .bind(&a.billing_address.street_address)
        .bind(&a.billing_address.extended_street_address)
        .bind(&a.billing_address.locality)
        .bind(&a.billing_address.region)
        .bind(&a.billing_address.post_code)
        .bind(a.billing_address.country.map(|c| c.as_str()))
        .bind(a.tenant_creation_requires_approval)
        .bind(a.updated_at)
        .bind(&a.account_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn current_license(&self, account_id: &str) -> StoreResult<Option<LicenseRecord>> {
        sqlx::query(&format!("SELECT {LICENSE_COLUMNS} FROM licenses WHERE account_id = $1 AND valid_to IS NULL"))
            .bind(account_id)
            .fetch_optional(self.reader())
            .await?
            .as_ref()
            .map(license_from_row)
            .transpose()
    }

    async fn license_history(&self, account_id: &str) -> StoreResult<Vec<LicenseRecord>> {
        sqlx::query(&format!("SELECT {LICENSE_COLUMNS} FROM licenses WHERE account_id = $1 ORDER BY valid_from, license_id"))
            .bind(account_id)
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(license_from_row)
            .collect()
    }

    async fn create_tenant_announced(
        &self,
        t: &TenantRecord,
        max_tenants: i64,
        events: &[crate::EventRecord],
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        Self::lock_account(&mut tx, &t.account_id).await?;
        if max_tenants >= 0 {
            let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM tenants WHERE account_id = $1 AND status <> $2")
                .bind(&t.account_id)
                .bind(TenantStatus::Rejected.as_str())
                .fetch_one(&mut *tx)
                .await?
                .try_get("n")?;
            if count >= max_tenants {
                return Err(StoreError::LimitExceeded);
            }
        }
        sqlx::query(&format!(
            "INSERT INTO tenants ({TENANT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ))
        .bind(&t.tenant_id)
        .bind(&t.account_id)
        .bind(&t.name)
        .bind(&t.name_key)
        .bind(&t.address.street_address)
        .bind(&t.address.extended_street_address)
        .bind(&t.address.locality)
        .bind(&t.address.region)
        .bind(&t.address.post_code)
        .bind(t.address.country.map(|c| c.as_str()))
        .bind(t.status.as_str())
        .bind(&t.status_reason)
        .bind(t.created_at)
        .bind(t.updated_at)
        .execute(&mut *tx)
        .await?;
        for event in events {
            execution_sql::insert_event(&mut tx, event).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn tenants(&self, account_id: &str, status: Option<TenantStatus>) -> StoreResult<Vec<TenantRecord>> {
        let rows = match status {
            None => {
                sqlx::query(&format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE account_id = $1 ORDER BY created_at, tenant_id"))
                    .bind(account_id)
                    .fetch_all(self.reader())
                    .await?
            }
            Some(s) => {
                sqlx::query(&format!(
                    "SELECT {TENANT_COLUMNS} FROM tenants WHERE account_id = $1 AND status = $2 ORDER BY created_at, tenant_id"
                ))
                .bind(account_id)
                .bind(s.as_str())
                .fetch_all(self.reader())
                .await?
            }
        };
        rows.iter().map(tenant_from_row).collect()
    }

    async fn tenant(&self, account_id: &str, tenant_id: &str) -> StoreResult<Option<TenantRecord>> {
        sqlx::query(&format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE account_id = $1 AND tenant_id = $2"))
            .bind(account_id)
            .bind(tenant_id)
            .fetch_optional(self.reader())
            .await?
            .as_ref()
            .map(tenant_from_row)
            .transpose()
    }

    async fn update_tenant(&self, t: &TenantRecord) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE tenants SET name = $1, name_key = $2, street_address = $3, extended_street_address = $4, \
             locality = $5, region = $6, post_code = $7, country = $8, updated_at = $9 \
             WHERE account_id = $10 AND tenant_id = $11",
        )
        .bind(&t.name)
        .bind(&t.name_key)
        .bind(&t.address.street_address)
        .bind(&t.address.extended_street_address)
        .bind(&t.address.locality)
        .bind(&t.address.region)
        .bind(&t.address.post_code)
        .bind(t.address.country.map(|c| c.as_str()))
        .bind(t.updated_at)
        .bind(&t.account_id)
        .bind(&t.tenant_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        if n == 0 {
            return Err(StoreError::Corrupt(format!("tenant {} does not exist", t.tenant_id)));
        }
        Ok(())
    }

    async fn transition_tenant(
        &self,
        account_id: &str,
        tenant_id: &str,
        from: TenantStatus,
        to: TenantStatus,
        reason: Option<&str>,
        now: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        Self::lock_account(&mut tx, account_id).await?;
        let n = sqlx::query(
            "UPDATE tenants SET status = $1, status_reason = $2, updated_at = $3 \
             WHERE account_id = $4 AND tenant_id = $5 AND status = $6",
        )
        .bind(to.as_str())
        .bind(reason)
        .bind(now)
        .bind(account_id)
        .bind(tenant_id)
        .bind(from.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n == 1)
    }

    async fn delete_tenant(&self, account_id: &str, tenant_id: &str, deletable: &[TenantStatus]) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        // Serialised with `transition_tenant`, so an approval cannot slip in between
        // the status check and the delete.
        Self::lock_account(&mut tx, account_id).await?;
        let status: Option<String> = sqlx::query("SELECT status FROM tenants WHERE account_id = $1 AND tenant_id = $2")
            .bind(account_id)
            .bind(tenant_id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get("status"))
            .transpose()?;
        let Some(status) = status else { return Ok(false) };
        if !deletable.iter().any(|s| s.as_str() == status) {
            return Ok(false);
        }
        sqlx::query("DELETE FROM api_keys WHERE account_id = $1 AND tenant_id = $2")
            .bind(account_id)
            .bind(tenant_id)
            .execute(&mut *tx)
            .await?;
        let deleted = sqlx::query("DELETE FROM tenants WHERE account_id = $1 AND tenant_id = $2 AND status = $3")
            .bind(account_id)
            .bind(tenant_id)
            .bind(&status)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted != 1 {
            // Dropping the transaction rolls back the key deletions.
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn insert_api_key(&self, key: &ApiKeyRecord) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        insert_key(&mut tx, key).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn api_key_by_public_key(&self, public_key: &str) -> StoreResult<Option<ApiKeyRecord>> {
        sqlx::query(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE public_key = $1 AND deleted_at IS NULL"))
            .bind(public_key)
            .fetch_optional(self.reader())
            .await?
            .as_ref()
            .map(key_from_row)
            .transpose()
    }

    async fn api_keys(&self, owner: &KeyOwner) -> StoreResult<Vec<ApiKeyRecord>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE {} AND deleted_at IS NULL ORDER BY created_at, public_key",
            owner_clause(owner)
        );
        bind_owner!(sqlx::query(&sql), owner)
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(key_from_row)
            .collect()
    }

    async fn api_key(&self, owner: &KeyOwner, public_key: &str) -> StoreResult<Option<ApiKeyRecord>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE {} AND public_key = ${} AND deleted_at IS NULL",
            owner_clause(owner),
            after_owner(owner)
        );
        bind_owner!(sqlx::query(&sql), owner)
            .bind(public_key)
            .fetch_optional(self.reader())
            .await?
            .as_ref()
            .map(key_from_row)
            .transpose()
    }

    async fn update_api_key(&self, owner: &KeyOwner, public_key: &str, name: &str, roles: &RoleSet, now: i64) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        Self::lock_account(&mut tx, owner.account_id()).await?;
        if !roles.contains(Role::AccountAdmin) {
            ensure_other_admin(&mut tx, owner, public_key).await?;
        }
        let n = after_owner(owner);
        let sql = format!(
            "UPDATE api_keys SET name = ${n}, roles = ${}, updated_at = ${} WHERE {} AND public_key = ${} AND deleted_at IS NULL",
            n + 1,
            n + 2,
            owner_clause(owner),
            n + 3
        );
        let changed = bind_owner!(sqlx::query(&sql), owner)
            .bind(name)
            .bind(roles_to_text(roles))
            .bind(now)
            .bind(public_key)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(changed == 1)
    }

    async fn delete_api_key(&self, owner: &KeyOwner, public_key: &str, now: i64) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        Self::lock_account(&mut tx, owner.account_id()).await?;
        ensure_other_admin(&mut tx, owner, public_key).await?;
        let n = after_owner(owner);
        let sql = format!(
            "UPDATE api_keys SET deleted_at = ${n}, updated_at = ${n} WHERE {} AND public_key = ${} AND deleted_at IS NULL",
            owner_clause(owner),
            n + 1
        );
        let changed = bind_owner!(sqlx::query(&sql), owner)
            .bind(now)
            .bind(public_key)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(changed == 1)
    }

    async fn keys_changed_since(&self, since: i64) -> StoreResult<Vec<KeyChange>> {
        sqlx::query("SELECT public_key, roles, deleted_at FROM api_keys WHERE updated_at >= $1")
            .bind(since)
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(|r| {
                let roles: String = r.try_get("roles")?;
                Ok(KeyChange {
                    public_key: r.try_get("public_key")?,
                    roles: roles_from_text(&roles)?,
                    deleted: r.try_get::<Option<i64>, _>("deleted_at")?.is_some(),
                })
            })
            .collect()
    }

    async fn count_account_keys_with_role(&self, account_id: &str, role: Role) -> StoreResult<i64> {
        Ok(sqlx::query(
            "SELECT COUNT(*) AS n FROM api_keys WHERE account_id = $1 AND tenant_id IS NULL AND deleted_at IS NULL AND roles LIKE $2",
        )
        .bind(account_id)
        .bind(role_pattern(role))
        .fetch_one(self.reader())
        .await?
        .try_get("n")?)
    }

    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        sqlx::query("SELECT kid, secret_sealed, created_at FROM token_signing_keys ORDER BY created_at, kid")
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(|r| {
                Ok(SigningKeyRecord {
                    kid: r.try_get("kid")?,
                    secret_sealed: r.try_get("secret_sealed")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("INSERT INTO token_signing_keys (kid, secret_sealed, created_at) VALUES ($1, $2, $3)")
            .bind(&key.kid)
            .bind(&key.secret_sealed)
            .bind(key.created_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn prune_signing_keys(&self, before: i64) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "DELETE FROM token_signing_keys WHERE created_at < $1 \
             AND kid <> (SELECT kid FROM token_signing_keys ORDER BY created_at DESC, kid DESC LIMIT 1)",
        )
        .bind(before)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    async fn remember_nonce(&self, public_key: &str, nonce: &str, now: i64, expires_at: i64) -> StoreResult<bool> {
        // An expired record no longer protects anything; let the new one take its place.
        let n = sqlx::query(
            "INSERT INTO hmac_nonces (public_key, nonce, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (public_key, nonce) DO UPDATE SET expires_at = excluded.expires_at \
             WHERE hmac_nonces.expires_at < $4",
        )
        .bind(public_key)
        .bind(nonce)
        .bind(expires_at)
        .bind(now)
        .execute(self.writer())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn begin_idempotent(&self, c: &IdempotencyClaim<'_>) -> StoreResult<IdempotencyBegin> {
        let mut tx = self.begin_write().await?;
        let row = loop {
            let claimed = sqlx::query(
                "INSERT INTO idempotency_keys (scope, idempotency_key, request_hash, completed, created_at, \
                 expires_at, node_id) VALUES ($1, $2, $3, FALSE, $4, $5, $6) \
                 ON CONFLICT (scope, idempotency_key) DO NOTHING",
            )
            .bind(c.scope)
            .bind(c.key)
            .bind(c.request_hash)
            .bind(c.now)
            .bind(c.expires_at)
            .bind(c.claimant.node_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if claimed == 1 {
                tx.commit().await?;
                return Ok(IdempotencyBegin::Started);
            }
            let row = sqlx::query(
                "SELECT request_hash, completed, created_at, expires_at, response_status, response_headers, \
                 response_body FROM idempotency_keys WHERE scope = $1 AND idempotency_key = $2",
            )
            .bind(c.scope)
            .bind(c.key)
            .fetch_optional(&mut *tx)
            .await?;
            // None: released by its request in between (PostgreSQL); claim it afresh.
            if let Some(row) = row {
                break row;
            }
        };
        let hash: String = row.try_get("request_hash")?;
        let completed: bool = row.try_get("completed")?;
        let expired = row.try_get::<i64, _>("expires_at")? < c.now;
        if !completed || expired {
            // Take the key over if it expired, or if its claim was abandoned: its node is
            // dead (or, for a claim without a node, it is older than `stale_after_ms`).
            // Guarded on the claim read, so of several takers one wins.
            let earlier_claimed_at: i64 = row.try_get("created_at")?;
            let taken = sqlx::query(&format!(
                "UPDATE idempotency_keys SET request_hash = $1, completed = FALSE, response_status = NULL, \
                 response_headers = NULL, response_body = NULL, created_at = $2, expires_at = $3, node_id = $4 \
                 WHERE scope = $5 AND idempotency_key = $6 AND created_at = $7 AND (expires_at < $2 \
                   OR (completed = FALSE AND ((node_id IS NULL AND created_at < $8) OR {})))",
                held_by_lost_node("idempotency_keys.node_id", 9)
            ))
            .bind(c.request_hash)
            .bind(c.now)
            .bind(c.expires_at)
            .bind(c.claimant.node_id)
            .bind(c.scope)
            .bind(c.key)
            .bind(earlier_claimed_at)
            .bind(c.now - c.stale_after_ms)
            .bind(c.claimant.lost_before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            return Ok(match (taken == 1, hash == c.request_hash) {
                (true, true) if !expired => IdempotencyBegin::TakenOver { earlier_claimed_at },
                (true, _) => IdempotencyBegin::Started,
                (false, true) => IdempotencyBegin::InProgress,
                (false, false) => IdempotencyBegin::Mismatch,
            });
        }
        tx.commit().await?;
        if hash != c.request_hash {
            return Ok(IdempotencyBegin::Mismatch);
        }
        let status: i64 = row.try_get::<Option<i64>, _>("response_status")?.unwrap_or(500);
        let headers: Option<String> = row.try_get("response_headers")?;
        let headers: Vec<(String, String)> = match headers {
            Some(h) => serde_json::from_str(&h).map_err(|e| StoreError::Corrupt(format!("stored headers: {e}")))?,
            None => Vec::new(),
        };
        Ok(IdempotencyBegin::Replay(StoredResponse {
            status: u16::try_from(status).map_err(|_| StoreError::Corrupt("stored status".into()))?,
            headers,
            body: row.try_get::<Option<Vec<u8>>, _>("response_body")?.unwrap_or_default(),
        }))
    }

    async fn finish_idempotent(&self, scope: &str, key: &str, claimed_at: i64, response: &StoredResponse) -> StoreResult<()> {
        sqlx::query(
            "UPDATE idempotency_keys SET completed = TRUE, response_status = $1, response_headers = $2, response_body = $3 \
             WHERE scope = $4 AND idempotency_key = $5 AND completed = FALSE AND created_at = $6",
        )
        .bind(i64::from(response.status))
        .bind(serde_json::to_string(&response.headers).expect("pairs of strings serialise"))
        .bind(&response.body)
        .bind(scope)
        .bind(key)
        .bind(claimed_at)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    async fn abandon_idempotent(&self, scope: &str, key: &str, claimed_at: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM idempotency_keys WHERE scope = $1 AND idempotency_key = $2 AND completed = FALSE AND created_at = $3")
            .bind(scope)
            .bind(key)
            .bind(claimed_at)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn purge_expired(&self, now: i64) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        let a = sqlx::query("DELETE FROM hmac_nonces WHERE expires_at < $1").bind(now).execute(&mut *tx).await?.rows_affected();
        let b = sqlx::query("DELETE FROM idempotency_keys WHERE expires_at < $1").bind(now).execute(&mut *tx).await?.rows_affected();
        tx.commit().await?;
        Ok(a + b)
    }

    async fn heartbeat(&self, node_id: &str, started_at: i64, now: i64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO nodes (node_id, started_at, last_seen) VALUES ($1, $2, $3) \
             ON CONFLICT (node_id) DO UPDATE SET last_seen = excluded.last_seen WHERE nodes.last_seen < excluded.last_seen",
        )
        .bind(node_id)
        .bind(started_at)
        .bind(now)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    async fn forget_nodes(&self, before: i64) -> StoreResult<u64> {
        let n = sqlx::query("DELETE FROM nodes WHERE last_seen < $1").bind(before).execute(self.writer()).await?;
        Ok(n.rows_affected())
    }
}
