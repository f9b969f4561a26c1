//! Collect and payout schemes (SPEC §4.6): schemes, their drafts and rules, publication,
//! the options a published draft offers, and the simulation of a draft before publication.
//!
//! - Drafts are validated in full before they are stored ([`input`]); the store re-checks
//!   what a draft references in the same transaction that writes it, so an app uninstalled
//!   or a group deleted meanwhile is refused there too.
//! - Publication re-validates the draft against today's world and switches
//!   `publishedDraftId` in one statement; options read the published draft in one statement,
//!   so every evaluation sees one draft whole.
//! - `SCHEME_IN_USE` (SPEC §4.6) guards schemes used by live instructions or customer
//!   defaults. Neither exists yet, so every scheme can be deleted today; the check belongs in
//!   [`Engine::delete_scheme`] (and the store's delete) once instructions reference schemes.

mod evaluate;
mod input;
mod stored;

use std::collections::HashSet;

use baton_connectors::PaymentMethod;
use baton_domain::{AppId, GroupMember, Problem, Rule, SchemeKind};
use baton_store::{DraftRecord, DraftWrite, SchemeRecord, SchemeWithDrafts, StoreError};

pub use evaluate::{
    OptionsQuery, Outcome, PaymentMethodOption, SchemeOptions, SimulatedCase, Simulation, MAX_SIMULATION_CASES,
};
pub use input::{AppEntryInput, DraftInput, RewardGroupInput, RuleInput, MAX_DRAFT_CODE, MAX_DRAFT_NAME};

use self::evaluate::GroupMembers;
use self::input::{check_draft, check_rules, group_key, referenced_groups, ValidDraft, World};
use crate::{new_id, Engine, EngineError, EngineResult};

/// A scheme with its drafts (in creation order).
#[derive(Debug, Clone)]
pub struct SchemeView {
    pub scheme_id: String,
    pub kind: SchemeKind,
    pub published_draft_id: Option<String>,
    pub drafts: Vec<DraftView>,
}

/// One draft; its rules in saved order.
#[derive(Debug, Clone)]
pub struct DraftView {
    pub draft_id: String,
    pub scheme_id: String,
    pub kind: SchemeKind,
    pub name: String,
    pub code: Option<String>,
    pub rules: Vec<Rule>,
    pub created_at: i64,
    pub last_modified: i64,
    /// Whether this is the scheme's published draft.
    pub published: bool,
}

/// The payment methods an app entry of a `kind` rule can offer (its
/// `availablePaymentMethods`): the app's methods serving the kind's direction.
pub fn available_payment_methods(kind: SchemeKind, app_id: &AppId) -> Vec<&'static PaymentMethod> {
    baton_connectors::find(app_id).map(|a| a.methods_for(kind.direction())).unwrap_or_default()
}

fn scheme_not_found(kind: SchemeKind) -> Problem {
    Problem::not_found("SCHEME_NOT_FOUND")
        .message("No {kind} scheme with this id in this tenant.")
        .detail("kind", kind.as_str())
}

fn draft_not_found() -> Problem {
    Problem::not_found("DRAFT_NOT_FOUND").message("The scheme has no draft with this id.")
}

fn no_published_draft() -> Problem {
    Problem::not_found("NO_PUBLISHED_DRAFT").message("The scheme has no published draft yet.")
}

fn name_taken() -> Problem {
    Problem::conflict("DRAFT_NAME_ALREADY_EXISTS")
        .message("The scheme already has a draft with this name.")
        .detail("field", "name")
}

fn published_immutable() -> Problem {
    Problem::bad_request("PUBLISHED_DRAFT_IMMUTABLE").message(
        "The published draft cannot be changed or deleted; save a copy as a new draft and publish that instead.",
    )
}

/// The problem for a reference the store found missing (a race with an uninstall or a group
/// deletion), naming the first rule field that references it.
fn missing_reference(what: &str, rules: &[Rule]) -> Problem {
    if let Some(app_id) = what.strip_prefix("app ") {
        let field = rules.iter().enumerate().find_map(|(i, r)| {
            r.apps.iter().position(|a| a.app_id.as_str() == app_id).map(|j| format!("rules[{i}].apps[{j}].appId"))
        });
        Problem::invalid_field(
            "APP_NOT_INSTALLED",
            field.unwrap_or_else(|| "rules".into()),
            "{field}: app {appId} is not installed.",
        )
        .detail("appId", app_id)
    } else {
        let id = what.strip_prefix("reward group ").unwrap_or(what);
        let field = rules.iter().enumerate().find_map(|(i, r)| {
            r.reward_groups
                .iter()
                .position(|g| g.reward_group_id == id)
                .map(|j| format!("rules[{i}].rewardGroups[{j}].rewardGroupId"))
        });
        Problem::invalid_field(
            "REWARD_GROUP_NOT_FOUND",
            field.unwrap_or_else(|| "rules".into()),
            "{field}: no reward group {rewardGroupId}.",
        )
        .detail("rewardGroupId", id)
    }
}

/// Maps a store refusal of a draft write onto the client's problems.
fn write_error(e: StoreError, rules: &[Rule]) -> EngineError {
    match e {
        StoreError::Conflict(_) => name_taken().into(),
        StoreError::PublishedDraft => published_immutable().into(),
        StoreError::MissingReference(what) => missing_reference(&what, rules).into(),
        e => e.into(),
    }
}

fn draft_view(kind: SchemeKind, published: Option<&str>, d: &DraftRecord) -> EngineResult<DraftView> {
    let rules =
        stored::decode(&d.rules).map_err(|e| EngineError::Internal(e.context(format!("draft {}", d.draft_id))))?;
    Ok(DraftView {
        draft_id: d.draft_id.clone(),
        scheme_id: d.scheme_id.clone(),
        kind,
        name: d.name.clone(),
        code: d.code.clone(),
        rules,
        created_at: d.created_at,
        last_modified: d.last_modified,
        published: published == Some(d.draft_id.as_str()),
    })
}

fn scheme_view(s: &SchemeWithDrafts) -> EngineResult<SchemeView> {
    let published = s.scheme.published_draft_id.as_deref();
    Ok(SchemeView {
        scheme_id: s.scheme.scheme_id.clone(),
        kind: s.scheme.kind,
        published_draft_id: s.scheme.published_draft_id.clone(),
        drafts: s.drafts.iter().map(|d| draft_view(s.scheme.kind, published, d)).collect::<EngineResult<_>>()?,
    })
}

impl Engine {
    /// The tenant's installed apps and the reward groups `rules` name.
    async fn scheme_world(&self, tenant_id: &str, rules: &[RuleInput]) -> EngineResult<World> {
        let installed = self.store.installed_apps(tenant_id).await?.into_iter().map(|a| a.app_id).collect();
        let mut world = World { installed, ..World::default() };
        for id in referenced_groups(rules) {
            if let Some(group) = self.store.reward_group(tenant_id, &id).await? {
                world.groups.insert(group_key(&group.reward_group_id), group);
            }
        }
        Ok(world)
    }

    /// The members of the reward groups `rules` name, by lower-case id (unknown groups are
    /// left out, and offer nothing).
    async fn group_members(&self, tenant_id: &str, rules: &[&Rule]) -> EngineResult<GroupMembers> {
        let mut ids: HashSet<String> = HashSet::new();
        let mut out = GroupMembers::new();
        for rule in rules {
            for g in &rule.reward_groups {
                let key = group_key(&g.reward_group_id);
                if !ids.insert(key.clone()) {
                    continue;
                }
                if let Some(group) = self.store.reward_group(tenant_id, &key).await? {
                    let members = group
                        .members
                        .into_iter()
                        .map(|m| GroupMember { reward_id: m.reward_id, enabled: m.enabled })
                        .collect();
                    out.insert(key, members);
                }
            }
        }
        Ok(out)
    }

    async fn validate_draft(&self, tenant_id: &str, kind: SchemeKind, input: &DraftInput) -> EngineResult<ValidDraft> {
        let world = self.scheme_world(tenant_id, &input.rules).await?;
        Ok(check_draft(kind, input, &world)?)
    }

    async fn load_scheme(&self, tenant_id: &str, kind: SchemeKind, scheme_id: &str) -> EngineResult<SchemeWithDrafts> {
        Ok(self.store.scheme(tenant_id, kind, scheme_id).await?.ok_or_else(|| scheme_not_found(kind))?)
    }

    fn draft_write(
        &self,
        tenant_id: &str,
        scheme_id: &str,
        draft_id: &str,
        created_at: i64,
        v: &ValidDraft,
    ) -> DraftWrite {
        DraftWrite {
            draft: DraftRecord {
                draft_id: draft_id.to_string(),
                scheme_id: scheme_id.to_string(),
                tenant_id: tenant_id.to_string(),
                name: v.name.clone(),
                name_key: v.name_key.clone(),
                code: v.code.clone(),
                rules: stored::encode(&v.rules),
                created_at,
                last_modified: self.now_ms(),
            },
            app_ids: v.app_ids.clone(),
            reward_group_ids: v.reward_group_ids.clone(),
        }
    }

    /// Creates a scheme with one unpublished draft holding `input`.
    pub async fn create_scheme(
        &self,
        tenant_id: &str,
        kind: SchemeKind,
        input: DraftInput,
    ) -> EngineResult<SchemeView> {
        let valid = self.validate_draft(tenant_id, kind, &input).await?;
        let now = self.now_ms();
        let scheme = SchemeRecord {
            scheme_id: new_id(),
            tenant_id: tenant_id.to_string(),
            kind,
            published_draft_id: None,
            created_at: now,
            updated_at: now,
        };
        let write = self.draft_write(tenant_id, &scheme.scheme_id, &new_id(), now, &valid);
        self.store.create_scheme(&scheme, &write).await.map_err(|e| write_error(e, &valid.rules))?;
        scheme_view(&SchemeWithDrafts { scheme, drafts: vec![write.draft] })
    }

    /// The tenant's schemes of one kind, in creation order.
    pub async fn schemes(&self, tenant_id: &str, kind: SchemeKind) -> EngineResult<Vec<SchemeView>> {
        self.store.schemes(tenant_id, kind).await?.iter().map(scheme_view).collect()
    }

    pub async fn scheme(&self, tenant_id: &str, kind: SchemeKind, scheme_id: &str) -> EngineResult<SchemeView> {
        scheme_view(&self.load_scheme(tenant_id, kind, scheme_id).await?)
    }

    /// Deletes a scheme with all its drafts, published or not.
    pub async fn delete_scheme(&self, tenant_id: &str, kind: SchemeKind, scheme_id: &str) -> EngineResult<()> {
        // SCHEME_IN_USE: instructions and customer defaults do not exist yet, so nothing can
        // hold a scheme; refuse here (and atomically in the store) once they do.
        if !self.store.delete_scheme(tenant_id, kind, scheme_id).await? {
            return Err(scheme_not_found(kind).into());
        }
        Ok(())
    }

    /// The scheme's published draft.
    pub async fn published_draft(&self, tenant_id: &str, kind: SchemeKind, scheme_id: &str) -> EngineResult<DraftView> {
        let draft =
            self.store.published_draft(tenant_id, kind, scheme_id).await?.ok_or_else(|| scheme_not_found(kind))?;
        let draft = draft.ok_or_else(no_published_draft)?;
        draft_view(kind, Some(draft.draft_id.as_str()), &draft)
    }

    /// Adds an unpublished draft to a scheme.
    pub async fn create_draft(
        &self,
        tenant_id: &str,
        kind: SchemeKind,
        scheme_id: &str,
        input: DraftInput,
    ) -> EngineResult<DraftView> {
        let scheme = self.load_scheme(tenant_id, kind, scheme_id).await?;
        let valid = self.validate_draft(tenant_id, kind, &input).await?;
        if scheme.drafts.iter().any(|d| d.name_key == valid.name_key) {
            return Err(name_taken().into());
        }
        let write = self.draft_write(tenant_id, scheme_id, &new_id(), self.now_ms(), &valid);
        self.store.insert_draft(&write).await.map_err(|e| write_error(e, &valid.rules))?;
        draft_view(kind, None, &write.draft)
    }

    pub async fn draft(
        &self,
        tenant_id: &str,
        kind: SchemeKind,
        scheme_id: &str,
        draft_id: &str,
    ) -> EngineResult<DraftView> {
        let scheme = self.load_scheme(tenant_id, kind, scheme_id).await?;
        let draft = scheme.drafts.iter().find(|d| d.draft_id == draft_id).ok_or_else(draft_not_found)?;
        draft_view(kind, scheme.scheme.published_draft_id.as_deref(), draft)
    }

    /// Replaces an unpublished draft's name, code and rules.
    pub async fn update_draft(
        &self,
        tenant_id: &str,
        kind: SchemeKind,
        scheme_id: &str,
        draft_id: &str,
        input: DraftInput,
    ) -> EngineResult<DraftView> {
        let scheme = self.load_scheme(tenant_id, kind, scheme_id).await?;
        let current = scheme.drafts.iter().find(|d| d.draft_id == draft_id).ok_or_else(draft_not_found)?;
        if scheme.scheme.published_draft_id.as_deref() == Some(draft_id) {
            return Err(published_immutable().into());
        }
        let valid = self.validate_draft(tenant_id, kind, &input).await?;
        if scheme.drafts.iter().any(|d| d.draft_id != draft_id && d.name_key == valid.name_key) {
            return Err(name_taken().into());
        }
        let write = self.draft_write(tenant_id, scheme_id, draft_id, current.created_at, &valid);
        if !self.store.update_draft(&write).await.map_err(|e| write_error(e, &valid.rules))? {
            return Err(draft_not_found().into());
        }
        draft_view(kind, None, &write.draft)
    }

    /// Deletes an unpublished draft.
    pub async fn delete_draft(
        &self,
        tenant_id: &str,
        kind: SchemeKind,
        scheme_id: &str,
        draft_id: &str,
    ) -> EngineResult<()> {
        let scheme = self.load_scheme(tenant_id, kind, scheme_id).await?;
        if !scheme.drafts.iter().any(|d| d.draft_id == draft_id) {
            return Err(draft_not_found().into());
        }
        if scheme.scheme.published_draft_id.as_deref() == Some(draft_id) {
            return Err(published_immutable().into());
        }
        if !self.store.delete_draft(tenant_id, scheme_id, draft_id).await.map_err(|e| write_error(e, &[]))? {
            return Err(draft_not_found().into());
        }
        Ok(())
    }

    /// Publishes a draft after validating it again against today's apps and reward groups
    /// (an app may have been uninstalled, a group deleted or changed since it was saved).
    /// Publishing the published draft again is a no-op.
    pub async fn publish_draft(
        &self,
        tenant_id: &str,
        kind: SchemeKind,
        scheme_id: &str,
        draft_id: &str,
    ) -> EngineResult<SchemeView> {
        let scheme = self.load_scheme(tenant_id, kind, scheme_id).await?;
        let record = scheme.drafts.iter().find(|d| d.draft_id == draft_id).ok_or_else(draft_not_found)?;
        let draft = draft_view(kind, None, record)?;
        let inputs: Vec<RuleInput> = draft.rules.iter().map(RuleInput::from).collect();
        let world = self.scheme_world(tenant_id, &inputs).await?;
        let mut problems = Vec::new();
        check_rules(kind, &inputs, &world, &mut problems);
        if !problems.is_empty() {
            return Err(problems.into());
        }
        let published = self
            .store
            .publish_draft(tenant_id, scheme_id, draft_id, self.now_ms())
            .await
            .map_err(|e| write_error(e, &draft.rules))?;
        if !published {
            return Err(draft_not_found().into());
        }
        self.scheme(tenant_id, kind, scheme_id).await
    }

    /// The scheme's published draft with its rules (`404 SCHEME_NOT_FOUND`,
    /// `400 NO_PUBLISHED_DRAFT`), read in one statement.
    pub(crate) async fn published_rules(
        &self,
        tenant_id: &str,
        kind: SchemeKind,
        scheme_id: &str,
    ) -> EngineResult<DraftView> {
        let draft =
            self.store.published_draft(tenant_id, kind, scheme_id).await?.ok_or_else(|| scheme_not_found(kind))?;
        let draft = draft.ok_or_else(|| {
            Problem::bad_request("NO_PUBLISHED_DRAFT").message("The scheme has no published draft yet.")
        })?;
        draft_view(kind, Some(&draft.draft_id.clone()), &draft)
    }

    /// What the scheme's published draft offers for the query (SPEC §4.6 "Matching"): the
    /// first matching rule's payment methods (collect) or rewards and payment methods
    /// (payout); nothing when no rule matches.
    pub async fn scheme_options(
        &self,
        tenant_id: &str,
        kind: SchemeKind,
        scheme_id: &str,
        query: &OptionsQuery,
    ) -> EngineResult<SchemeOptions> {
        let (query, match_type) = evaluate::parse_query(kind, "", query)?;
        // One statement: a publication running meanwhile is seen entirely or not at all.
        let draft =
            self.store.published_draft(tenant_id, kind, scheme_id).await?.ok_or_else(|| scheme_not_found(kind))?;
        let draft = draft.ok_or_else(no_published_draft)?;
        let rules = draft_view(kind, None, &draft)?.rules;
        let matched = baton_domain::first_match(&rules, &query).map(|i| &rules[i]);
        let groups = self.group_members(tenant_id, matched.as_slice()).await?;
        let outcome = evaluate::evaluate(kind, &rules, &query, match_type.unwrap_or_default(), &groups);
        Ok(SchemeOptions { kind, scheme_id: draft.scheme_id, draft_id: draft.draft_id, query, match_type, outcome })
    }

    /// Runs each case against a draft and against the published draft, side by side, and
    /// flags the cases whose outcome would change if the draft were published.
    pub async fn simulate_draft(
        &self,
        tenant_id: &str,
        kind: SchemeKind,
        scheme_id: &str,
        draft_id: &str,
        cases: &[OptionsQuery],
    ) -> EngineResult<Simulation> {
        let cases = evaluate::parse_cases(kind, cases)?;
        let scheme = self.load_scheme(tenant_id, kind, scheme_id).await?;
        let record = scheme.drafts.iter().find(|d| d.draft_id == draft_id).ok_or_else(draft_not_found)?;
        let draft = draft_view(kind, None, record)?;
        let published = match self.store.published_draft(tenant_id, kind, scheme_id).await? {
            Some(Some(p)) => Some(draft_view(kind, Some(p.draft_id.as_str()), &p)?),
            _ => None,
        };
        let all_rules: Vec<&Rule> = draft.rules.iter().chain(published.iter().flat_map(|p| p.rules.iter())).collect();
        let groups = self.group_members(tenant_id, &all_rules).await?;
        let cases = evaluate::simulate_cases(
            kind,
            &draft.rules,
            published.as_ref().map(|p| p.rules.as_slice()),
            cases,
            &groups,
        );
        Ok(Simulation {
            kind,
            scheme_id: scheme.scheme.scheme_id,
            draft_id: draft.draft_id,
            published_draft_id: published.map(|p| p.draft_id),
            cases,
        })
    }
}
