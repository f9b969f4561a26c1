// Portable SQL of `RoutingStore`, `include!`d by `sqlite.rs` and `postgres.rs` after
// `portable.rs` (same conventions and hooks; adds `lock_tenant()`).

/// Kinds of `draft_references.kind`.
const REF_APP: &str = "APP";
const REF_REWARD_GROUP: &str = "REWARD_GROUP";

const APP_COLUMNS: &str =
    "tenant_id, app_id, can_debit, can_credit, config_public, config_secrets_sealed, installed_at, updated_at";
const SCHEME_COLUMNS: &str = "scheme_id, tenant_id, kind, published_draft_id, created_at, updated_at";
const DRAFT_COLUMNS: &str = "draft_id, scheme_id, tenant_id, name, name_key, code, rules, created_at, last_modified";
const GROUP_COLUMNS: &str = "reward_group_id, tenant_id, name, name_key, members, created_at, updated_at";
const ACCOUNT_ROW_COLUMNS: &str =
    "tenant_id, app_id, customer_identifier, account_identifier, currency, balance_minor, created_at, updated_at";

fn app_from_row(row: &DbRow) -> StoreResult<InstalledAppRecord> {
    Ok(InstalledAppRecord {
        tenant_id: row.try_get("tenant_id")?,
        app_id: row.try_get("app_id")?,
        can_debit: row.try_get("can_debit")?,
        can_credit: row.try_get("can_credit")?,
        config_public: row.try_get("config_public")?,
        config_secrets_sealed: row.try_get("config_secrets_sealed")?,
        installed_at: row.try_get("installed_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn scheme_from_row(row: &DbRow) -> StoreResult<SchemeRecord> {
    let kind: String = row.try_get("kind")?;
    Ok(SchemeRecord {
        scheme_id: row.try_get("scheme_id")?,
        tenant_id: row.try_get("tenant_id")?,
        kind: kind.parse().map_err(|_| StoreError::Corrupt(format!("scheme kind {kind:?}")))?,
        published_draft_id: row.try_get("published_draft_id")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn draft_from_row(row: &DbRow) -> StoreResult<DraftRecord> {
    Ok(DraftRecord {
        draft_id: row.try_get("draft_id")?,
        scheme_id: row.try_get("scheme_id")?,
        tenant_id: row.try_get("tenant_id")?,
        name: row.try_get("name")?,
        name_key: row.try_get("name_key")?,
        code: row.try_get("code")?,
        rules: row.try_get("rules")?,
        created_at: row.try_get("created_at")?,
        last_modified: row.try_get("last_modified")?,
    })
}

fn members_to_text(members: &[RewardGroupMember]) -> String {
    let pairs: Vec<(&str, bool)> = members.iter().map(|m| (m.reward_id.as_str(), m.enabled)).collect();
    serde_json::to_string(&pairs).expect("pairs serialise")
}

fn group_from_row(row: &DbRow) -> StoreResult<RewardGroupRecord> {
    let members: String = row.try_get("members")?;
    let pairs: Vec<(String, bool)> =
        serde_json::from_str(&members).map_err(|e| StoreError::Corrupt(format!("reward group members: {e}")))?;
    Ok(RewardGroupRecord {
        reward_group_id: row.try_get("reward_group_id")?,
        tenant_id: row.try_get("tenant_id")?,
        name: row.try_get("name")?,
        name_key: row.try_get("name_key")?,
        members: pairs.into_iter().map(|(reward_id, enabled)| RewardGroupMember { reward_id, enabled }).collect(),
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn reward_account_from_row(row: &DbRow) -> StoreResult<RewardAccountRecord> {
    Ok(RewardAccountRecord {
        tenant_id: row.try_get("tenant_id")?,
        app_id: row.try_get("app_id")?,
        customer_identifier: row.try_get("customer_identifier")?,
        account_identifier: row.try_get("account_identifier")?,
        currency: row.try_get("currency")?,
        balance_minor: row.try_get("balance_minor")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Fails with `MissingReference` unless every app is installed for the tenant and
/// every reward group exists; then records the draft's references afresh.
async fn write_references(tx: &mut sqlx::Transaction<'_, Db>, write: &DraftWrite) -> StoreResult<()> {
    let d = &write.draft;
    for app_id in &write.app_ids {
        let installed = sqlx::query("SELECT 1 FROM installed_apps WHERE tenant_id = $1 AND app_id = $2")
            .bind(&d.tenant_id)
            .bind(app_id)
            .fetch_optional(&mut **tx)
            .await?
            .is_some();
        if !installed {
            return Err(StoreError::MissingReference(format!("app {app_id}")));
        }
    }
    for group_id in &write.reward_group_ids {
        let exists = sqlx::query("SELECT 1 FROM reward_groups WHERE tenant_id = $1 AND reward_group_id = $2")
            .bind(&d.tenant_id)
            .bind(group_id)
            .fetch_optional(&mut **tx)
            .await?
            .is_some();
        if !exists {
            return Err(StoreError::MissingReference(format!("reward group {group_id}")));
        }
    }
    sqlx::query("DELETE FROM draft_references WHERE draft_id = $1").bind(&d.draft_id).execute(&mut **tx).await?;
    let refs = write.app_ids.iter().map(|id| (REF_APP, id)).chain(write.reward_group_ids.iter().map(|id| (REF_REWARD_GROUP, id)));
    for (kind, target) in refs {
        sqlx::query(
            "INSERT INTO draft_references (draft_id, tenant_id, kind, target_id) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (draft_id, kind, target_id) DO NOTHING",
        )
        .bind(&d.draft_id)
        .bind(&d.tenant_id)
        .bind(kind)
        .bind(target)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

async fn insert_draft_row(tx: &mut sqlx::Transaction<'_, Db>, d: &DraftRecord) -> StoreResult<()> {
    sqlx::query(&format!("INSERT INTO scheme_drafts ({DRAFT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"))
        .bind(&d.draft_id)
        .bind(&d.scheme_id)
        .bind(&d.tenant_id)
        .bind(&d.name)
        .bind(&d.name_key)
        .bind(&d.code)
        .bind(&d.rules)
        .bind(d.created_at)
        .bind(d.last_modified)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Whether the draft is its scheme's published draft.
async fn is_published(tx: &mut sqlx::Transaction<'_, Db>, scheme_id: &str, draft_id: &str) -> StoreResult<bool> {
    Ok(sqlx::query("SELECT 1 FROM schemes WHERE scheme_id = $1 AND published_draft_id = $2")
        .bind(scheme_id)
        .bind(draft_id)
        .fetch_optional(&mut **tx)
        .await?
        .is_some())
}

/// Counts the account's installed apps that can debit (or credit).
async fn count_apps(tx: &mut sqlx::Transaction<'_, Db>, account_id: &str, column: &str) -> StoreResult<i64> {
    Ok(sqlx::query(&format!(
        "SELECT COUNT(*) AS n FROM installed_apps i JOIN tenants t ON t.tenant_id = i.tenant_id \
         WHERE t.account_id = $1 AND i.{column} = TRUE"
    ))
    .bind(account_id)
    .fetch_one(&mut **tx)
    .await?
    .try_get("n")?)
}

/// Raises the tenant's routing version, in the transaction of the change that makes
/// copies of its routing configuration stale (see `RoutingStore`).
async fn routing_changed(tx: &mut sqlx::Transaction<'_, Db>, tenant_id: &str) -> StoreResult<()> {
    sqlx::query("UPDATE tenants SET routing_version = routing_version + 1 WHERE tenant_id = $1")
        .bind(tenant_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[async_trait]
impl crate::RoutingStore for ThisStore {
    async fn routing_version(&self, tenant_id: &str) -> StoreResult<i64> {
        let row = sqlx::query("SELECT routing_version FROM tenants WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_optional(self.reader())
            .await?;
        Ok(match row {
            Some(row) => row.try_get("routing_version")?,
            None => 0,
        })
    }

    async fn install_app(&self, account_id: &str, app: &InstalledAppRecord, limits: AppLimits) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        Self::lock_account(&mut tx, account_id).await?;
        let checks = [(app.can_debit, "can_debit", limits.max_collect_apps), (app.can_credit, "can_credit", limits.max_payout_apps)];
        for (applies, column, max) in checks {
            if applies && max >= 0 && count_apps(&mut tx, account_id, column).await? >= max {
                return Err(StoreError::LimitExceeded);
            }
        }
        sqlx::query(&format!("INSERT INTO installed_apps ({APP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"))
            .bind(&app.tenant_id)
            .bind(&app.app_id)
            .bind(app.can_debit)
            .bind(app.can_credit)
            .bind(&app.config_public)
            .bind(&app.config_secrets_sealed)
            .bind(app.installed_at)
            .bind(app.updated_at)
            .execute(&mut *tx)
            .await?;
        routing_changed(&mut tx, &app.tenant_id).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn installed_apps(&self, tenant_id: &str) -> StoreResult<Vec<InstalledAppRecord>> {
        sqlx::query(&format!("SELECT {APP_COLUMNS} FROM installed_apps WHERE tenant_id = $1 ORDER BY installed_at, app_id"))
            .bind(tenant_id)
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(app_from_row)
            .collect()
    }

    async fn installed_app(&self, tenant_id: &str, app_id: &str) -> StoreResult<Option<InstalledAppRecord>> {
        sqlx::query(&format!("SELECT {APP_COLUMNS} FROM installed_apps WHERE tenant_id = $1 AND app_id = $2"))
            .bind(tenant_id)
            .bind(app_id)
            .fetch_optional(self.reader())
            .await?
            .as_ref()
            .map(app_from_row)
            .transpose()
    }

    async fn configure_app(
        &self,
        tenant_id: &str,
        app_id: &str,
        public: &str,
        secrets_sealed: Option<&[u8]>,
        now: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE installed_apps SET config_public = $1, config_secrets_sealed = $2, updated_at = $3 \
             WHERE tenant_id = $4 AND app_id = $5",
        )
        .bind(public)
        .bind(secrets_sealed)
        .bind(now)
        .bind(tenant_id)
        .bind(app_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            return Ok(false);
        }
        routing_changed(&mut tx, tenant_id).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn uninstall_app(&self, tenant_id: &str, app_id: &str) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        Self::lock_tenant(&mut tx, tenant_id).await?;
        let used = sqlx::query("SELECT 1 FROM draft_references WHERE tenant_id = $1 AND kind = $2 AND target_id = $3")
            .bind(tenant_id)
            .bind(REF_APP)
            .bind(app_id)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if used {
            return Err(StoreError::InUse(format!("app {app_id}")));
        }
        let n = sqlx::query("DELETE FROM installed_apps WHERE tenant_id = $1 AND app_id = $2")
            .bind(tenant_id)
            .bind(app_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n != 1 {
            return Ok(false);
        }
        routing_changed(&mut tx, tenant_id).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn create_scheme(&self, scheme: &SchemeRecord, first_draft: &DraftWrite) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        Self::lock_tenant(&mut tx, &scheme.tenant_id).await?;
        sqlx::query(&format!("INSERT INTO schemes ({SCHEME_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"))
            .bind(&scheme.scheme_id)
            .bind(&scheme.tenant_id)
            .bind(scheme.kind.as_str())
            .bind(&scheme.published_draft_id)
            .bind(scheme.created_at)
            .bind(scheme.updated_at)
            .execute(&mut *tx)
            .await?;
        insert_draft_row(&mut tx, &first_draft.draft).await?;
        write_references(&mut tx, first_draft).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn schemes(&self, tenant_id: &str, kind: SchemeKind) -> StoreResult<Vec<SchemeWithDrafts>> {
        let schemes = sqlx::query(&format!(
            "SELECT {SCHEME_COLUMNS} FROM schemes WHERE tenant_id = $1 AND kind = $2 ORDER BY created_at, scheme_id"
        ))
        .bind(tenant_id)
        .bind(kind.as_str())
        .fetch_all(self.reader())
        .await?;
        let drafts = sqlx::query(&format!(
            "SELECT {} FROM scheme_drafts d JOIN schemes s ON s.scheme_id = d.scheme_id \
             WHERE s.tenant_id = $1 AND s.kind = $2 ORDER BY d.created_at, d.draft_id",
            DRAFT_COLUMNS.split(", ").map(|c| format!("d.{c}")).collect::<Vec<_>>().join(", ")
        ))
        .bind(tenant_id)
        .bind(kind.as_str())
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(draft_from_row)
        .collect::<StoreResult<Vec<_>>>()?;
        schemes
            .iter()
            .map(|row| {
                let scheme = scheme_from_row(row)?;
                let drafts = drafts.iter().filter(|d| d.scheme_id == scheme.scheme_id).cloned().collect();
                Ok(SchemeWithDrafts { scheme, drafts })
            })
            .collect()
    }

    async fn scheme(&self, tenant_id: &str, kind: SchemeKind, scheme_id: &str) -> StoreResult<Option<SchemeWithDrafts>> {
        let Some(row) = sqlx::query(&format!(
            "SELECT {SCHEME_COLUMNS} FROM schemes WHERE tenant_id = $1 AND kind = $2 AND scheme_id = $3"
        ))
        .bind(tenant_id)
        .bind(kind.as_str())
        .bind(scheme_id)
        .fetch_optional(self.reader())
        .await?
        else {
            return Ok(None);
        };
        let drafts = sqlx::query(&format!(
            "SELECT {DRAFT_COLUMNS} FROM scheme_drafts WHERE scheme_id = $1 AND tenant_id = $2 ORDER BY created_at, draft_id"
        ))
        .bind(scheme_id)
        .bind(tenant_id)
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(draft_from_row)
        .collect::<StoreResult<Vec<_>>>()?;
        Ok(Some(SchemeWithDrafts { scheme: scheme_from_row(&row)?, drafts }))
    }

    async fn scheme_kind(&self, tenant_id: &str, scheme_id: &str) -> StoreResult<Option<SchemeKind>> {
        let Some(row) = sqlx::query("SELECT kind FROM schemes WHERE tenant_id = $1 AND scheme_id = $2")
            .bind(tenant_id)
            .bind(scheme_id)
            .fetch_optional(self.reader())
            .await?
        else {
            return Ok(None);
        };
        let kind: String = row.try_get("kind")?;
        kind.parse().map(Some).map_err(|_| StoreError::Corrupt(format!("scheme kind {kind:?}")))
    }

    async fn delete_scheme(&self, tenant_id: &str, kind: SchemeKind, scheme_id: &str) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        Self::lock_tenant(&mut tx, tenant_id).await?;
        let exists = sqlx::query("SELECT 1 FROM schemes WHERE tenant_id = $1 AND kind = $2 AND scheme_id = $3")
            .bind(tenant_id)
            .bind(kind.as_str())
            .bind(scheme_id)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !exists {
            return Ok(false);
        }
        sqlx::query("DELETE FROM draft_references WHERE draft_id IN (SELECT draft_id FROM scheme_drafts WHERE scheme_id = $1)")
            .bind(scheme_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM scheme_drafts WHERE scheme_id = $1").bind(scheme_id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM schemes WHERE scheme_id = $1").bind(scheme_id).execute(&mut *tx).await?;
        routing_changed(&mut tx, tenant_id).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn insert_draft(&self, write: &DraftWrite) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        Self::lock_tenant(&mut tx, &write.draft.tenant_id).await?;
        insert_draft_row(&mut tx, &write.draft).await?;
        write_references(&mut tx, write).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn update_draft(&self, write: &DraftWrite) -> StoreResult<bool> {
        let d = &write.draft;
        let mut tx = self.begin_write().await?;
        Self::lock_tenant(&mut tx, &d.tenant_id).await?;
        if is_published(&mut tx, &d.scheme_id, &d.draft_id).await? {
            return Err(StoreError::PublishedDraft);
        }
        let n = sqlx::query(
            "UPDATE scheme_drafts SET name = $1, name_key = $2, code = $3, rules = $4, last_modified = $5 \
             WHERE draft_id = $6 AND scheme_id = $7 AND tenant_id = $8",
        )
        .bind(&d.name)
        .bind(&d.name_key)
        .bind(&d.code)
        .bind(&d.rules)
        .bind(d.last_modified)
        .bind(&d.draft_id)
        .bind(&d.scheme_id)
        .bind(&d.tenant_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        write_references(&mut tx, write).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn delete_draft(&self, tenant_id: &str, scheme_id: &str, draft_id: &str) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        Self::lock_tenant(&mut tx, tenant_id).await?;
        if is_published(&mut tx, scheme_id, draft_id).await? {
            return Err(StoreError::PublishedDraft);
        }
        let exists = sqlx::query("SELECT 1 FROM scheme_drafts WHERE draft_id = $1 AND scheme_id = $2 AND tenant_id = $3")
            .bind(draft_id)
            .bind(scheme_id)
            .bind(tenant_id)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !exists {
            return Ok(false);
        }
        sqlx::query("DELETE FROM draft_references WHERE draft_id = $1").bind(draft_id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM scheme_drafts WHERE draft_id = $1").bind(draft_id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn publish_draft(&self, tenant_id: &str, scheme_id: &str, draft_id: &str, now: i64) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        Self::lock_tenant(&mut tx, tenant_id).await?;
        let exists = sqlx::query("SELECT 1 FROM scheme_drafts WHERE draft_id = $1 AND scheme_id = $2 AND tenant_id = $3")
            .bind(draft_id)
            .bind(scheme_id)
            .bind(tenant_id)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !exists {
            return Ok(false);
        }
        // Whatever the draft references must still exist at the moment it goes live.
        let missing = sqlx::query(
            "SELECT r.kind, r.target_id FROM draft_references r WHERE r.draft_id = $1 AND ( \
               (r.kind = $2 AND NOT EXISTS (SELECT 1 FROM installed_apps a WHERE a.tenant_id = $3 AND a.app_id = r.target_id)) \
               OR (r.kind = $4 AND NOT EXISTS (SELECT 1 FROM reward_groups g WHERE g.tenant_id = $3 AND g.reward_group_id = r.target_id)))",
        )
        .bind(draft_id)
        .bind(REF_APP)
        .bind(tenant_id)
        .bind(REF_REWARD_GROUP)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = missing {
            let kind: String = row.try_get("kind")?;
            let target: String = row.try_get("target_id")?;
            let what = if kind == REF_APP { "app" } else { "reward group" };
            return Err(StoreError::MissingReference(format!("{what} {target}")));
        }
        let n = sqlx::query("UPDATE schemes SET published_draft_id = $1, updated_at = $2 WHERE scheme_id = $3 AND tenant_id = $4")
            .bind(draft_id)
            .bind(now)
            .bind(scheme_id)
            .bind(tenant_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n != 1 {
            return Ok(false);
        }
        routing_changed(&mut tx, tenant_id).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn published_draft(
        &self,
        tenant_id: &str,
        kind: SchemeKind,
        scheme_id: &str,
    ) -> StoreResult<Option<Option<DraftRecord>>> {
        // One statement: a concurrent publish is seen entirely or not at all.
        let columns = DRAFT_COLUMNS.split(", ").map(|c| format!("d.{c}")).collect::<Vec<_>>().join(", ");
        let row = sqlx::query(&format!(
            "SELECT s.scheme_id AS found_scheme, {columns} FROM schemes s \
             LEFT JOIN scheme_drafts d ON d.draft_id = s.published_draft_id \
             WHERE s.tenant_id = $1 AND s.kind = $2 AND s.scheme_id = $3"
        ))
        .bind(tenant_id)
        .bind(kind.as_str())
        .bind(scheme_id)
        .fetch_optional(self.reader())
        .await?;
        let Some(row) = row else { return Ok(None) };
        if row.try_get::<Option<String>, _>("draft_id")?.is_none() {
            return Ok(Some(None));
        }
        Ok(Some(Some(draft_from_row(&row)?)))
    }

    async fn create_reward_group(&self, g: &RewardGroupRecord) -> StoreResult<()> {
        sqlx::query(&format!("INSERT INTO reward_groups ({GROUP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"))
            .bind(&g.reward_group_id)
            .bind(&g.tenant_id)
            .bind(&g.name)
            .bind(&g.name_key)
            .bind(members_to_text(&g.members))
            .bind(g.created_at)
            .bind(g.updated_at)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn reward_groups(&self, tenant_id: &str) -> StoreResult<Vec<RewardGroupRecord>> {
        sqlx::query(&format!("SELECT {GROUP_COLUMNS} FROM reward_groups WHERE tenant_id = $1 ORDER BY created_at, reward_group_id"))
            .bind(tenant_id)
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(group_from_row)
            .collect()
    }

    async fn reward_group(&self, tenant_id: &str, reward_group_id: &str) -> StoreResult<Option<RewardGroupRecord>> {
        sqlx::query(&format!("SELECT {GROUP_COLUMNS} FROM reward_groups WHERE tenant_id = $1 AND reward_group_id = $2"))
            .bind(tenant_id)
            .bind(reward_group_id)
            .fetch_optional(self.reader())
            .await?
            .as_ref()
            .map(group_from_row)
            .transpose()
    }

    async fn update_reward_group(&self, g: &RewardGroupRecord) -> StoreResult<bool> {
        let n = sqlx::query(
            "UPDATE reward_groups SET name = $1, name_key = $2, members = $3, updated_at = $4 \
             WHERE tenant_id = $5 AND reward_group_id = $6",
        )
        .bind(&g.name)
        .bind(&g.name_key)
        .bind(members_to_text(&g.members))
        .bind(g.updated_at)
        .bind(&g.tenant_id)
        .bind(&g.reward_group_id)
        .execute(self.writer())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn delete_reward_group(&self, tenant_id: &str, reward_group_id: &str) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        Self::lock_tenant(&mut tx, tenant_id).await?;
        let used = sqlx::query(
            "SELECT 1 FROM draft_references r JOIN schemes s ON s.published_draft_id = r.draft_id \
             WHERE r.tenant_id = $1 AND r.kind = $2 AND r.target_id = $3",
        )
        .bind(tenant_id)
        .bind(REF_REWARD_GROUP)
        .bind(reward_group_id)
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
        if used {
            return Err(StoreError::InUse(format!("reward group {reward_group_id}")));
        }
        let n = sqlx::query("DELETE FROM reward_groups WHERE tenant_id = $1 AND reward_group_id = $2")
            .bind(tenant_id)
            .bind(reward_group_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n == 1)
    }

    async fn create_reward_account(&self, a: &RewardAccountRecord) -> StoreResult<()> {
        sqlx::query(&format!("INSERT INTO reward_accounts ({ACCOUNT_ROW_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"))
            .bind(&a.tenant_id)
            .bind(&a.app_id)
            .bind(&a.customer_identifier)
            .bind(&a.account_identifier)
            .bind(&a.currency)
            .bind(a.balance_minor)
            .bind(a.created_at)
            .bind(a.updated_at)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn reward_account(&self, tenant_id: &str, app_id: &str) -> StoreResult<Option<RewardAccountRecord>> {
        sqlx::query(&format!("SELECT {ACCOUNT_ROW_COLUMNS} FROM reward_accounts WHERE tenant_id = $1 AND app_id = $2"))
            .bind(tenant_id)
            .bind(app_id)
            .fetch_optional(self.reader())
            .await?
            .as_ref()
            .map(reward_account_from_row)
            .transpose()
    }

    async fn adjust_reward_balance(&self, tenant_id: &str, app_id: &str, delta: i64, now: i64) -> StoreResult<Option<i64>> {
        // One conditional statement: concurrent draws can never take the balance below zero.
        let row = sqlx::query(
            "UPDATE reward_accounts SET balance_minor = balance_minor + $1, updated_at = $2 \
             WHERE tenant_id = $3 AND app_id = $4 AND balance_minor + $1 >= 0 RETURNING balance_minor",
        )
        .bind(delta)
        .bind(now)
        .bind(tenant_id)
        .bind(app_id)
        .fetch_optional(self.writer())
        .await?;
        row.map(|r| r.try_get("balance_minor").map_err(StoreError::from)).transpose()
    }
}
