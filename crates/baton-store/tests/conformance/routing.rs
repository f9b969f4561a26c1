//! Conformance scenarios: installed apps, schemes and drafts, reward groups and accounts.

use super::*;

conformance! {
    scenario_installed_apps => sqlite_installed_apps, postgres_installed_apps;
    scenario_app_limits => sqlite_app_limits, postgres_app_limits;
    scenario_app_limits_concurrent => sqlite_app_limits_concurrent, postgres_app_limits_concurrent
        [flavor = "multi_thread", worker_threads = 2];
    scenario_schemes_and_drafts => sqlite_schemes_and_drafts, postgres_schemes_and_drafts;
    scenario_publish_revalidates => sqlite_publish_revalidates, postgres_publish_revalidates;
    scenario_reward_groups => sqlite_reward_groups, postgres_reward_groups;
    scenario_reward_accounts => sqlite_reward_accounts, postgres_reward_accounts;
    scenario_reward_balance_concurrent => sqlite_reward_balance_concurrent, postgres_reward_balance_concurrent
        [flavor = "multi_thread", worker_threads = 2];
    scenario_reward_claim_drawdown_concurrent => sqlite_reward_claim_drawdown_concurrent,
        postgres_reward_claim_drawdown_concurrent [flavor = "multi_thread", worker_threads = 2];
}

// Routing configuration ---------------------------------------------------------------

pub(crate) const UNLIMITED: AppLimits = AppLimits { max_collect_apps: -1, max_payout_apps: -1 };

/// An initialised account with two active tenants, "t_1" and "t_2".
pub(crate) async fn two_tenants(store: &dyn Store) {
    init(store).await;
    for (id, name) in [("t_1", "One"), ("t_2", "Two")] {
        store.create_tenant(&tenant_record(id, name, TenantStatus::Active, T0), -1).await.unwrap();
    }
}

pub(crate) fn app(tenant_id: &str, app_id: &str, can_debit: bool, can_credit: bool) -> InstalledAppRecord {
    InstalledAppRecord {
        tenant_id: tenant_id.into(),
        app_id: app_id.into(),
        can_debit,
        can_credit,
        config_public: None,
        config_secrets_sealed: None,
        installed_at: T0,
        updated_at: T0,
    }
}

pub(crate) fn scheme(tenant_id: &str, scheme_id: &str, kind: SchemeKind) -> SchemeRecord {
    SchemeRecord {
        scheme_id: scheme_id.into(),
        tenant_id: tenant_id.into(),
        kind,
        published_draft_id: None,
        created_at: T0,
        updated_at: T0,
    }
}

pub(crate) fn draft(
    tenant_id: &str,
    scheme_id: &str,
    draft_id: &str,
    name: &str,
    apps: &[&str],
    groups: &[&str],
) -> DraftWrite {
    DraftWrite {
        draft: DraftRecord {
            draft_id: draft_id.into(),
            scheme_id: scheme_id.into(),
            tenant_id: tenant_id.into(),
            name: name.into(),
            name_key: name.to_lowercase(),
            code: Some(format!("code-{draft_id}")),
            rules: format!("[{{\"draft\":\"{draft_id}\"}}]"),
            created_at: T0,
            last_modified: T0,
        },
        app_ids: apps.iter().map(|a| a.to_string()).collect(),
        reward_group_ids: groups.iter().map(|g| g.to_string()).collect(),
    }
}

pub(crate) fn group(tenant_id: &str, id: &str, name: &str, rewards: &[(&str, bool)]) -> RewardGroupRecord {
    RewardGroupRecord {
        reward_group_id: id.into(),
        tenant_id: tenant_id.into(),
        name: name.into(),
        name_key: name.to_lowercase(),
        members: rewards.iter().map(|(r, e)| RewardGroupMember { reward_id: r.to_string(), enabled: *e }).collect(),
        created_at: T0,
        updated_at: T0,
    }
}

pub(crate) fn assert_missing(result: StoreResult<()>, what: &str) {
    match result {
        Err(StoreError::MissingReference(m)) => assert!(m.contains(what), "{m}"),
        other => panic!("expected MissingReference({what}), got {other:?}"),
    }
}

pub(crate) async fn scenario_installed_apps(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    let card = app("t_1", "SANDBOX_CARD", true, true);
    store.install_app(ACCOUNT, &card, UNLIMITED).await.unwrap();
    assert_conflict(store.install_app(ACCOUNT, &card, UNLIMITED).await);
    store.install_app(ACCOUNT, &app("t_2", "SANDBOX_CARD", true, true), UNLIMITED).await.unwrap();
    store.install_app(ACCOUNT, &app("t_1", "SANDBOX_BANK", true, true), UNLIMITED).await.unwrap();
    let ids: Vec<String> = store.installed_apps("t_1").await.unwrap().into_iter().map(|a| a.app_id).collect();
    assert_eq!(ids, ["SANDBOX_BANK", "SANDBOX_CARD"], "same install time: ordered by id");
    assert_eq!(store.installed_app("t_1", "SANDBOX_CARD").await.unwrap(), Some(card.clone()));
    assert_eq!(store.installed_app("t_2", "SANDBOX_BANK").await.unwrap(), None, "other tenant's app");

    // Configuration replaces public and sealed parts together.
    assert!(store
        .configure_app("t_1", "SANDBOX_CARD", "{\"merchantName\":\"A\"}", Some(&[1, 0, 2]), T0 + 5)
        .await
        .unwrap());
    let configured = store.installed_app("t_1", "SANDBOX_CARD").await.unwrap().unwrap();
    assert_eq!(configured.config_public.as_deref(), Some("{\"merchantName\":\"A\"}"));
    assert_eq!(configured.config_secrets_sealed, Some(vec![1, 0, 2]));
    assert_eq!(configured.updated_at, T0 + 5);
    assert!(store.configure_app("t_1", "SANDBOX_CARD", "{}", None, T0 + 6).await.unwrap());
    assert_eq!(store.installed_app("t_1", "SANDBOX_CARD").await.unwrap().unwrap().config_secrets_sealed, None);
    assert!(!store.configure_app("t_1", "SANDBOX_REWARDS", "{}", None, T0).await.unwrap());
    assert!(!format!("{configured:?}").contains("[1, 0, 2]"), "sealed secrets stay out of Debug");

    assert!(store.uninstall_app("t_1", "SANDBOX_CARD").await.unwrap());
    assert!(!store.uninstall_app("t_1", "SANDBOX_CARD").await.unwrap());
    assert!(store.installed_app("t_2", "SANDBOX_CARD").await.unwrap().is_some(), "the other tenant keeps its own");
}

pub(crate) async fn scenario_app_limits(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    let limits = AppLimits { max_collect_apps: 1, max_payout_apps: 2 };
    store.install_app(ACCOUNT, &app("t_1", "DEBIT_A", true, false), limits).await.unwrap();
    // The limit is the account's, across its tenants.
    assert!(matches!(
        store.install_app(ACCOUNT, &app("t_2", "DEBIT_B", true, false), limits).await,
        Err(StoreError::LimitExceeded)
    ));
    assert!(matches!(
        store.install_app(ACCOUNT, &app("t_2", "BOTH", true, true), limits).await,
        Err(StoreError::LimitExceeded)
    ));
    store.install_app(ACCOUNT, &app("t_2", "CREDIT_A", false, true), limits).await.unwrap();
    store.install_app(ACCOUNT, &app("t_1", "CREDIT_B", false, true), limits).await.unwrap();
    assert!(matches!(
        store.install_app(ACCOUNT, &app("t_1", "CREDIT_C", false, true), limits).await,
        Err(StoreError::LimitExceeded)
    ));
    assert_eq!(store.installed_apps("t_2").await.unwrap().len(), 1, "refused installs wrote nothing");
    // Uninstalling frees a place.
    assert!(store.uninstall_app("t_1", "DEBIT_A").await.unwrap());
    store.install_app(ACCOUNT, &app("t_2", "DEBIT_B", true, false), limits).await.unwrap();
}

pub(crate) async fn scenario_app_limits_concurrent(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    let limits = AppLimits { max_collect_apps: 1, max_payout_apps: -1 };
    let results = race(6, |i| {
        let store = store.clone();
        async move {
            let tenant = if i % 2 == 0 { "t_1" } else { "t_2" };
            store.install_app(ACCOUNT, &app(tenant, &format!("DEBIT_{i}"), true, false), limits).await
        }
    })
    .await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    assert!(results.iter().filter(|r| r.is_err()).all(|r| matches!(r, Err(StoreError::LimitExceeded))));
}

pub(crate) async fn scenario_schemes_and_drafts(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    store.install_app(ACCOUNT, &app("t_1", "SANDBOX_CARD", true, true), UNLIMITED).await.unwrap();

    // References must exist; a refused create writes nothing.
    assert_missing(
        store
            .create_scheme(
                &scheme("t_1", "s_bad", SchemeKind::Collect),
                &draft("t_1", "s_bad", "d_bad", "V1", &["SANDBOX_BANK"], &[]),
            )
            .await,
        "SANDBOX_BANK",
    );
    assert_eq!(store.scheme("t_1", SchemeKind::Collect, "s_bad").await.unwrap(), None);

    let first = draft("t_1", "s_1", "d_1", "Version 1", &["SANDBOX_CARD"], &[]);
    store.create_scheme(&scheme("t_1", "s_1", SchemeKind::Collect), &first).await.unwrap();
    store
        .create_scheme(&scheme("t_1", "s_p", SchemeKind::Payout), &draft("t_1", "s_p", "d_p", "P", &[], &[]))
        .await
        .unwrap();
    let collect = store.schemes("t_1", SchemeKind::Collect).await.unwrap();
    assert_eq!(collect.len(), 1, "kinds are separate");
    assert_eq!(collect[0].drafts, vec![first.draft.clone()]);
    assert_eq!(store.scheme("t_1", SchemeKind::Payout, "s_1").await.unwrap(), None, "wrong kind");
    assert_eq!(store.scheme("t_2", SchemeKind::Collect, "s_1").await.unwrap(), None, "other tenant");
    assert_eq!(store.scheme_kind("t_1", "s_1").await.unwrap(), Some(SchemeKind::Collect));
    assert_eq!(store.scheme_kind("t_1", "s_p").await.unwrap(), Some(SchemeKind::Payout));
    assert_eq!(store.scheme_kind("t_2", "s_1").await.unwrap(), None, "other tenant");
    assert_eq!(store.published_draft("t_1", SchemeKind::Collect, "s_1").await.unwrap(), Some(None));
    assert_eq!(store.published_draft("t_1", SchemeKind::Collect, "s_none").await.unwrap(), None);

    // Drafts: names unique per scheme, case-insensitively.
    let mut second = draft("t_1", "s_1", "d_2", "Version 2", &["SANDBOX_CARD"], &[]);
    second.draft.created_at = T0 + 1;
    store.insert_draft(&second).await.unwrap();
    assert_conflict(store.insert_draft(&draft("t_1", "s_1", "d_3", "VERSION 2", &[], &[])).await);
    second.draft.rules = "[\"changed\"]".into();
    second.draft.last_modified = T0 + 2;
    assert!(store.update_draft(&second).await.unwrap());
    assert!(!store.update_draft(&draft("t_1", "s_1", "d_missing", "X", &[], &[])).await.unwrap());
    let s1 = store.scheme("t_1", SchemeKind::Collect, "s_1").await.unwrap().unwrap();
    assert_eq!(s1.drafts, vec![first.draft.clone(), second.draft.clone()]);

    // Publishing: the published draft is read whole, and cannot change or go.
    assert!(store.publish_draft("t_1", "s_1", "d_2", T0 + 10).await.unwrap());
    assert_eq!(
        store.published_draft("t_1", SchemeKind::Collect, "s_1").await.unwrap(),
        Some(Some(second.draft.clone()))
    );
    assert_eq!(
        store.scheme("t_1", SchemeKind::Collect, "s_1").await.unwrap().unwrap().scheme.published_draft_id.as_deref(),
        Some("d_2")
    );
    assert!(matches!(store.update_draft(&second).await, Err(StoreError::PublishedDraft)));
    assert!(matches!(store.delete_draft("t_1", "s_1", "d_2").await, Err(StoreError::PublishedDraft)));
    assert!(!store.publish_draft("t_1", "s_1", "d_missing", T0).await.unwrap());
    assert!(!store.publish_draft("t_2", "s_1", "d_1", T0).await.unwrap(), "other tenant");
    assert!(store.publish_draft("t_1", "s_1", "d_1", T0 + 11).await.unwrap());
    assert!(store.delete_draft("t_1", "s_1", "d_2").await.unwrap(), "no longer published");
    assert!(!store.delete_draft("t_1", "s_1", "d_2").await.unwrap());

    // An app referenced by any draft cannot be uninstalled until the scheme goes.
    assert!(matches!(store.uninstall_app("t_1", "SANDBOX_CARD").await, Err(StoreError::InUse(_))));
    assert!(!store.delete_scheme("t_1", SchemeKind::Payout, "s_1").await.unwrap(), "wrong kind");
    assert!(store.delete_scheme("t_1", SchemeKind::Collect, "s_1").await.unwrap());
    assert_eq!(store.scheme("t_1", SchemeKind::Collect, "s_1").await.unwrap(), None);
    assert!(store.uninstall_app("t_1", "SANDBOX_CARD").await.unwrap());
}

pub(crate) async fn scenario_publish_revalidates(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    store.create_reward_group(&group("t_1", "g_1", "Coffee", &[("r1", true)])).await.unwrap();
    store
        .create_scheme(&scheme("t_1", "s_1", SchemeKind::Payout), &draft("t_1", "s_1", "d_1", "V1", &[], &["g_1"]))
        .await
        .unwrap();
    assert_missing(store.insert_draft(&draft("t_1", "s_1", "d_2", "V2", &[], &["g_other"])).await, "g_other");
    // Not yet published: the group may go, but the draft can then not be published.
    assert!(store.delete_reward_group("t_1", "g_1").await.unwrap());
    match store.publish_draft("t_1", "s_1", "d_1", T0).await {
        Err(StoreError::MissingReference(m)) => assert!(m.contains("g_1")),
        other => panic!("expected MissingReference, got {other:?}"),
    }
    assert_eq!(store.published_draft("t_1", SchemeKind::Payout, "s_1").await.unwrap(), Some(None));
}

pub(crate) async fn scenario_reward_groups(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    let coffee = group("t_1", "g_1", "Coffee Shops", &[("r1", true), ("r2", false)]);
    store.create_reward_group(&coffee).await.unwrap();
    assert_conflict(store.create_reward_group(&group("t_1", "g_2", "COFFEE SHOPS", &[])).await);
    store.create_reward_group(&group("t_2", "g_3", "Coffee Shops", &[])).await.unwrap();
    let mut amazon = group("t_1", "g_4", "Amazon", &[("a1", true)]);
    amazon.created_at = T0 + 1;
    store.create_reward_group(&amazon).await.unwrap();
    assert_eq!(store.reward_groups("t_1").await.unwrap(), vec![coffee.clone(), amazon.clone()]);
    assert_eq!(store.reward_group("t_2", "g_1").await.unwrap(), None, "other tenant");

    amazon.members.push(RewardGroupMember { reward_id: "a2".into(), enabled: false });
    amazon.updated_at = T0 + 2;
    assert!(store.update_reward_group(&amazon).await.unwrap());
    assert_eq!(store.reward_group("t_1", "g_4").await.unwrap(), Some(amazon.clone()));
    let mut clash = amazon.clone();
    clash.name_key = "coffee shops".into();
    assert_conflict(store.update_reward_group(&clash).await.map(|_| ()));

    // In use while a published payout draft references it; an unpublished one does not hold it.
    store
        .create_scheme(&scheme("t_1", "s_1", SchemeKind::Payout), &draft("t_1", "s_1", "d_1", "V1", &[], &["g_4"]))
        .await
        .unwrap();
    assert!(store.publish_draft("t_1", "s_1", "d_1", T0 + 3).await.unwrap());
    assert!(matches!(store.delete_reward_group("t_1", "g_4").await, Err(StoreError::InUse(_))));
    assert_eq!(store.reward_group("t_1", "g_4").await.unwrap(), Some(amazon));
    assert!(store.delete_reward_group("t_1", "g_1").await.unwrap(), "an unused group goes");
    assert!(!store.delete_reward_group("t_1", "g_1").await.unwrap());
    assert!(store.delete_scheme("t_1", SchemeKind::Payout, "s_1").await.unwrap());
    assert!(store.delete_reward_group("t_1", "g_4").await.unwrap());
}

pub(crate) async fn scenario_reward_accounts(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    let account = RewardAccountRecord {
        tenant_id: "t_1".into(),
        app_id: "SANDBOX_REWARDS".into(),
        customer_identifier: "cust".into(),
        account_identifier: "acct".into(),
        currency: "USD".into(),
        balance_minor: 0,
        created_at: T0,
        updated_at: T0,
    };
    store.create_reward_account(&account).await.unwrap();
    assert_conflict(store.create_reward_account(&account).await);
    assert_eq!(store.reward_account("t_1", "SANDBOX_REWARDS").await.unwrap(), Some(account.clone()));
    assert_eq!(store.reward_account("t_2", "SANDBOX_REWARDS").await.unwrap(), None);
    assert_eq!(store.adjust_reward_balance("t_1", "SANDBOX_REWARDS", 1_000, T0 + 1).await.unwrap(), Some(1_000));
    assert_eq!(store.adjust_reward_balance("t_1", "SANDBOX_REWARDS", -300, T0 + 2).await.unwrap(), Some(700));
    assert_eq!(
        store.adjust_reward_balance("t_1", "SANDBOX_REWARDS", -800, T0 + 3).await.unwrap(),
        None,
        "never below zero"
    );
    assert_eq!(store.reward_account("t_1", "SANDBOX_REWARDS").await.unwrap().unwrap().balance_minor, 700);
    assert_eq!(store.adjust_reward_balance("t_2", "SANDBOX_REWARDS", 10, T0).await.unwrap(), None, "no account");
}

pub(crate) async fn scenario_reward_balance_concurrent(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    let account = RewardAccountRecord {
        tenant_id: "t_1".into(),
        app_id: "SANDBOX_REWARDS".into(),
        customer_identifier: "c".into(),
        account_identifier: "a".into(),
        currency: "USD".into(),
        balance_minor: 1_000,
        created_at: T0,
        updated_at: T0,
    };
    store.create_reward_account(&account).await.unwrap();
    let results = race(8, |_| {
        let store = store.clone();
        async move { store.adjust_reward_balance("t_1", "SANDBOX_REWARDS", -300, T0 + 1).await.unwrap() }
    })
    .await;
    assert_eq!(results.iter().filter(|r| r.is_some()).count(), 3, "{results:?}");
    assert_eq!(store.reward_account("t_1", "SANDBOX_REWARDS").await.unwrap().unwrap().balance_minor, 100);
}

/// A claim draws the balance and creates its instrument in one `apply`: claims racing
/// for a balance that covers one never overdraw it, and the losers leave no instrument.
pub(crate) async fn scenario_reward_claim_drawdown_concurrent(store: Arc<dyn Store>) {
    use baton_store::Change;
    two_tenants(&*store).await;
    let account = RewardAccountRecord {
        tenant_id: "t_1".into(),
        app_id: "SANDBOX_REWARDS".into(),
        customer_identifier: "c".into(),
        account_identifier: "a".into(),
        currency: "USD".into(),
        balance_minor: 1_000,
        created_at: T0,
        updated_at: T0,
    };
    store.create_reward_account(&account).await.unwrap();
    let results = race(6, |i| {
        let store = store.clone();
        async move {
            let changes = [
                Change::DebitRewardAccount {
                    tenant_id: "t_1".into(),
                    app_id: "SANDBOX_REWARDS".into(),
                    amount_minor: 600,
                },
                Change::InsertInstrument(Box::new(instrument(
                    &format!("fi_claim_{i}"),
                    "t_1",
                    "cust",
                    InstrumentType::Reward,
                    T0,
                ))),
            ];
            store.apply(&changes, T0 + 1).await.unwrap()
        }
    })
    .await;
    assert_eq!(results.iter().filter(|applied| **applied).count(), 1, "{results:?}");
    assert_eq!(store.reward_account("t_1", "SANDBOX_REWARDS").await.unwrap().unwrap().balance_minor, 400);
    assert_eq!(store.instruments("t_1", "cust", None).await.unwrap().len(), 1, "the losers rolled back");
    let give_back =
        Change::CreditRewardAccount { tenant_id: "t_1".into(), app_id: "SANDBOX_REWARDS".into(), amount_minor: 600 };
    assert!(store.apply(&[give_back], T0 + 2).await.unwrap());
    assert_eq!(store.reward_account("t_1", "SANDBOX_REWARDS").await.unwrap().unwrap().balance_minor, 1_000);
    let other =
        Change::CreditRewardAccount { tenant_id: "t_2".into(), app_id: "SANDBOX_REWARDS".into(), amount_minor: 1 };
    assert!(!store.apply(&[other], T0 + 3).await.unwrap(), "no account");
}

/// Two nodes on one SQLite file: transactions that read and then write (tenant
/// creation under a licence limit) must wait for each other, never fail with
/// "database is locked".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_two_nodes_on_one_file_write_without_locking_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("baton.db");
    let first: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
    first.migrate().await.unwrap();
    let second: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
    init(&*first).await;
    let results = race(2, |node| {
        let store = if node == 0 { first.clone() } else { second.clone() };
        async move {
            for i in 0..40 {
                let id = format!("t_{node}_{i}");
                store.create_tenant(&tenant_record(&id, &id, TenantStatus::Active, T0 + i), 1_000).await?;
                store.purge_expired(T0).await?;
            }
            Ok::<_, StoreError>(())
        }
    })
    .await;
    for r in results {
        r.expect("no locking error");
    }
    assert_eq!(first.tenants(ACCOUNT, None).await.unwrap().len(), 80);
    first.close().await;
    second.close().await;
}
