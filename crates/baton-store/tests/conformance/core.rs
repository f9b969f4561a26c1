//! Conformance scenarios: accounts, tenants, API keys, nonces, idempotency, signing keys, documents.

use super::*;

conformance! {
    scenario_migrate_is_repeatable => sqlite_migrate_is_repeatable, postgres_migrate_is_repeatable;
    scenario_initialize => sqlite_initialize, postgres_initialize;
    scenario_initialize_concurrent => sqlite_initialize_concurrent, postgres_initialize_concurrent
        [flavor = "multi_thread", worker_threads = 2];
    scenario_account_update => sqlite_account_update, postgres_account_update;
    scenario_license => sqlite_license, postgres_license;
    scenario_license_without_current => sqlite_license_without_current, postgres_license_without_current;
    scenario_tenants => sqlite_tenants, postgres_tenants;
    scenario_tenant_limit => sqlite_tenant_limit, postgres_tenant_limit;
    scenario_tenant_limit_concurrent => sqlite_tenant_limit_concurrent, postgres_tenant_limit_concurrent
        [flavor = "multi_thread", worker_threads = 2];
    scenario_tenant_name_concurrent => sqlite_tenant_name_concurrent, postgres_tenant_name_concurrent
        [flavor = "multi_thread", worker_threads = 2];
    scenario_api_keys => sqlite_api_keys, postgres_api_keys;
    scenario_last_admin_key => sqlite_last_admin_key, postgres_last_admin_key;
    scenario_last_admin_key_concurrent => sqlite_last_admin_key_concurrent, postgres_last_admin_key_concurrent
        [flavor = "multi_thread", worker_threads = 2];
    scenario_nonces => sqlite_nonces, postgres_nonces;
    scenario_nonces_concurrent => sqlite_nonces_concurrent, postgres_nonces_concurrent
        [flavor = "multi_thread", worker_threads = 2];
    scenario_idempotency => sqlite_idempotency, postgres_idempotency;
    scenario_idempotency_expiry_and_purge => sqlite_idempotency_expiry_and_purge, postgres_idempotency_expiry_and_purge;
    scenario_idempotency_concurrent => sqlite_idempotency_concurrent, postgres_idempotency_concurrent
        [flavor = "multi_thread", worker_threads = 2];
    scenario_idempotency_dead_and_live_nodes => sqlite_idempotency_dead_and_live_nodes,
        postgres_idempotency_dead_and_live_nodes;
    scenario_signing_keys => sqlite_signing_keys, postgres_signing_keys;
}

// Scenarios: bootstrap, account, licence -----------------------------------------------

pub(crate) async fn scenario_migrate_is_repeatable(store: Arc<dyn Store>) {
    // Several nodes may migrate at once; already-applied migrations are a no-op.
    let (a, b) = tokio::join!(store.migrate(), store.migrate());
    a.expect("first concurrent migrate");
    b.expect("second concurrent migrate");
    store.ping().await.expect("ping");
    assert_eq!(store.master_key_check().await.unwrap(), None);
}

pub(crate) async fn scenario_initialize(store: Arc<dyn Store>) {
    let init = initialization();
    assert_eq!(store.master_key_check().await.unwrap(), None);
    assert_eq!(store.account(ACCOUNT).await.unwrap(), None);
    assert_eq!(store.current_license(ACCOUNT).await.unwrap(), None);
    assert!(store.signing_keys().await.unwrap().is_empty());
    assert_eq!(store.api_key_by_public_key(ADMIN_KEY).await.unwrap(), None);

    store.initialize(&init).await.expect("first initialize");

    let written = || async {
        assert_eq!(store.master_key_check().await.unwrap(), Some(vec![0xba, 0x70, 0x00, 0x01, 0xff]));
        assert_eq!(store.account(ACCOUNT).await.unwrap(), Some(init.account.clone()));
        assert_eq!(store.current_license(ACCOUNT).await.unwrap(), Some(init.license.clone()));
        assert_eq!(store.license_history(ACCOUNT).await.unwrap(), vec![init.license.clone()]);
        assert_eq!(store.api_key_by_public_key(ADMIN_KEY).await.unwrap(), Some(init.admin_key.clone()));
        assert_eq!(store.api_keys(&account_owner(ACCOUNT)).await.unwrap(), vec![init.admin_key.clone()]);
        assert_eq!(store.signing_keys().await.unwrap(), vec![init.signing_key.clone()]);
        assert_eq!(store.count_account_keys_with_role(ACCOUNT, Role::AccountAdmin).await.unwrap(), 1);
    };
    written().await;

    // The very same initialisation again.
    let again = store.initialize(&init).await;
    assert!(matches!(again, Err(StoreError::AlreadyInitialized)), "got {again:?}");

    // A different initialisation (other account, keys, check value) writes nothing.
    let other = Initialization {
        master_key_check: vec![1, 2, 3],
        account: account_record(OTHER_ACCOUNT),
        license: license_record("lic_other", None),
        admin_key: key_record("pk_other_admin", account_owner(OTHER_ACCOUNT), &[Role::AccountAdmin], T0 + 5),
        signing_key: signing_key("kid_other", T0 + 5),
    };
    let again = store.initialize(&other).await;
    assert!(matches!(again, Err(StoreError::AlreadyInitialized)), "got {again:?}");
    written().await;
    assert_eq!(store.account(OTHER_ACCOUNT).await.unwrap(), None);
    assert_eq!(store.current_license(OTHER_ACCOUNT).await.unwrap(), None);
    assert!(store.license_history(OTHER_ACCOUNT).await.unwrap().is_empty());
    assert_eq!(store.api_key_by_public_key("pk_other_admin").await.unwrap(), None);
}

pub(crate) async fn scenario_initialize_concurrent(store: Arc<dyn Store>) {
    // Nodes starting together: exactly one initialisation wins, wholly.
    let results = race(4, |i| {
        let store = store.clone();
        async move {
            let account_id = format!("acc_{i}");
            let init = Initialization {
                master_key_check: vec![i as u8; 4],
                account: account_record(&account_id),
                license: license_record(&format!("lic_{i}"), None),
                admin_key: key_record(&format!("pk_admin_{i}"), account_owner(&account_id), &[Role::AccountAdmin], T0),
                signing_key: signing_key(&format!("kid_{i}"), T0),
            };
            store.initialize(&init).await
        }
    })
    .await;
    let winners: Vec<usize> = (0..results.len()).filter(|&i| results[i].is_ok()).collect();
    assert_eq!(winners.len(), 1, "results: {results:?}");
    for (i, r) in results.iter().enumerate() {
        assert!(r.is_ok() || matches!(r, Err(StoreError::AlreadyInitialized)), "racer {i}: {r:?}");
    }
    let w = winners[0];
    assert_eq!(store.master_key_check().await.unwrap(), Some(vec![w as u8; 4]));
    assert_eq!(store.signing_keys().await.unwrap(), vec![signing_key(&format!("kid_{w}"), T0)]);
    for i in 0..results.len() {
        let account_id = format!("acc_{i}");
        assert_eq!(store.account(&account_id).await.unwrap().is_some(), i == w, "account {i}");
        assert_eq!(store.current_license(&account_id).await.unwrap().is_some(), i == w, "licence {i}");
        let key = store.api_key_by_public_key(&format!("pk_admin_{i}")).await.unwrap();
        assert_eq!(key.is_some(), i == w, "admin key {i}");
    }
}

pub(crate) async fn scenario_account_update(store: Arc<dyn Store>) {
    let init = init(&*store).await;

    let updated = AccountRecord {
        company_name: "Renamed Holdings plc".to_string(),
        billing_first_name: "Grace".to_string(),
        billing_last_name: "Hopper".to_string(),
        billing_address: gb_address("1 Poultry"),
        tenant_creation_requires_approval: true,
        updated_at: T0 + 60_000,
        ..init.account.clone()
    };
    store.update_account(&updated).await.expect("update account");
    assert_eq!(store.account(ACCOUNT).await.unwrap(), Some(updated.clone()));

    // Back to an address without a country and the flag off: NULL and false round-trip too.
    let cleared = AccountRecord {
        billing_address: Address { locality: "Paris".to_string(), ..Address::default() },
        tenant_creation_requires_approval: false,
        updated_at: T0 + 120_000,
        ..updated
    };
    store.update_account(&cleared).await.expect("update account again");
    assert_eq!(store.account(ACCOUNT).await.unwrap(), Some(cleared));
}

pub(crate) async fn scenario_license(store: Arc<dyn Store>) {
    let init = init(&*store).await;
    assert_eq!(store.current_license(ACCOUNT).await.unwrap(), Some(init.license.clone()));
    assert_eq!(store.license_history(ACCOUNT).await.unwrap(), vec![init.license]);
    assert_eq!(store.current_license(OTHER_ACCOUNT).await.unwrap(), None);
    assert!(store.license_history(OTHER_ACCOUNT).await.unwrap().is_empty());
    // The joined read returns the same account and current licence in one go.
    assert_eq!(
        store.account_with_license(ACCOUNT).await.unwrap(),
        Some((init.account.clone(), Some(store.current_license(ACCOUNT).await.unwrap().unwrap())))
    );
    assert_eq!(store.account_with_license(OTHER_ACCOUNT).await.unwrap(), None);
}

pub(crate) async fn scenario_license_without_current(store: Arc<dyn Store>) {
    // A licence with an end date is history, not the current licence.
    let ended = license_record("lic_ended", Some(T0 + 86_400_000));
    let init = Initialization { license: ended.clone(), ..initialization() };
    store.initialize(&init).await.expect("initialize");
    assert_eq!(store.current_license(ACCOUNT).await.unwrap(), None);
    assert_eq!(store.license_history(ACCOUNT).await.unwrap(), vec![ended]);
    // Without a current licence the joined read still finds the account.
    assert_eq!(store.account_with_license(ACCOUNT).await.unwrap(), Some((init.account.clone(), None)));
}

// Scenarios: tenants ------------------------------------------------------------------

pub(crate) async fn scenario_tenants(store: Arc<dyn Store>) {
    init(&*store).await;
    let acme = TenantRecord {
        address: gb_address("10 Downing St"),
        ..tenant_record("t_acme", "Acme", TenantStatus::Active, T0 + 10)
    };
    // Created earlier than Acme although inserted later: listing follows created_at.
    let beta = tenant_record("t_beta", "Beta", TenantStatus::PendingApproval, T0 + 5);
    let gamma = TenantRecord {
        status_reason: Some("incomplete documents".to_string()),
        ..tenant_record("t_gamma", "Gamma", TenantStatus::Rejected, T0 + 20)
    };
    for t in [&acme, &beta, &gamma] {
        store.create_tenant(t, -1).await.expect("create tenant");
    }

    assert_eq!(store.tenants(ACCOUNT, None).await.unwrap(), vec![beta.clone(), acme.clone(), gamma.clone()]);
    assert_eq!(store.tenants(ACCOUNT, Some(TenantStatus::Active)).await.unwrap(), vec![acme.clone()]);
    assert_eq!(store.tenants(ACCOUNT, Some(TenantStatus::PendingApproval)).await.unwrap(), vec![beta.clone()]);
    assert_eq!(store.tenants(ACCOUNT, Some(TenantStatus::Rejected)).await.unwrap(), vec![gamma.clone()]);
    assert!(store.tenants(OTHER_ACCOUNT, None).await.unwrap().is_empty());
    assert_eq!(store.tenant(ACCOUNT, "t_acme").await.unwrap(), Some(acme.clone()));
    assert_eq!(store.tenant(ACCOUNT, "t_missing").await.unwrap(), None);
    // Tenants are addressed through their account.
    assert_eq!(store.tenant(OTHER_ACCOUNT, "t_acme").await.unwrap(), None);

    // Same name in another case: same name_key, so a conflict.
    let shouting = tenant_record("t_shout", "ACME", TenantStatus::Active, T0 + 30);
    assert_eq!(shouting.name_key, acme.name_key);
    assert_conflict(store.create_tenant(&shouting, -1).await);
    // A duplicate id is a conflict as well.
    assert_conflict(store.create_tenant(&tenant_record("t_acme", "Delta", TenantStatus::Active, T0 + 30), -1).await);
    assert_eq!(tenant_ids(&store.tenants(ACCOUNT, None).await.unwrap()), ["t_beta", "t_acme", "t_gamma"]);

    // update_tenant saves name and address only; status and creation time stay.
    let renamed = TenantRecord {
        name: "Acme Ltd".to_string(),
        name_key: "acme ltd".to_string(),
        address: Address { post_code: "SW1A 2AA".to_string(), ..Address::default() },
        updated_at: T0 + 1_000,
        ..acme.clone()
    };
    let attempt =
        TenantRecord { status: TenantStatus::Rejected, status_reason: Some("sneaky".to_string()), ..renamed.clone() };
    store.update_tenant(&attempt).await.expect("update tenant");
    assert_eq!(store.tenant(ACCOUNT, "t_acme").await.unwrap(), Some(renamed.clone()));

    // Taking a name that is in use (in another case) is a conflict and changes nothing.
    let clash = TenantRecord {
        name: "ACME LTD".to_string(),
        name_key: "acme ltd".to_string(),
        updated_at: T0 + 2_000,
        ..beta.clone()
    };
    assert_conflict(store.update_tenant(&clash).await);
    assert_eq!(store.tenant(ACCOUNT, "t_beta").await.unwrap(), Some(beta.clone()));

    // The old name was released by the rename.
    let reuse = tenant_record("t_acme2", "acme", TenantStatus::Active, T0 + 40);
    store.create_tenant(&reuse, -1).await.expect("old name is free again");

    // A tenant that does not exist cannot be updated (documented as `NotFound`).
    let ghost = tenant_record("t_ghost", "Ghost", TenantStatus::Active, T0);
    let result = store.update_tenant(&ghost).await;
    assert!(result.is_err(), "updating a missing tenant succeeded");
    assert!(!matches!(result, Err(StoreError::Conflict(_))), "got {result:?}");
    assert_eq!(store.tenant(ACCOUNT, "t_ghost").await.unwrap(), None);

    // Transitions apply only from the expected status.
    let moved = store
        .transition_tenant(ACCOUNT, "t_beta", TenantStatus::Active, TenantStatus::Rejected, Some("no"), T0 + 3_000)
        .await
        .unwrap();
    assert!(!moved);
    assert_eq!(store.tenant(ACCOUNT, "t_beta").await.unwrap(), Some(beta.clone()));
    let moved = store
        .transition_tenant(
            OTHER_ACCOUNT,
            "t_beta",
            TenantStatus::PendingApproval,
            TenantStatus::Active,
            None,
            T0 + 3_000,
        )
        .await
        .unwrap();
    assert!(!moved, "transitioned through another account");
    let moved = store
        .transition_tenant(ACCOUNT, "t_missing", TenantStatus::PendingApproval, TenantStatus::Active, None, T0 + 3_000)
        .await
        .unwrap();
    assert!(!moved);

    let moved = store
        .transition_tenant(ACCOUNT, "t_beta", TenantStatus::PendingApproval, TenantStatus::Active, None, T0 + 4_000)
        .await
        .unwrap();
    assert!(moved);
    let beta_active = TenantRecord { status: TenantStatus::Active, updated_at: T0 + 4_000, ..beta.clone() };
    assert_eq!(store.tenant(ACCOUNT, "t_beta").await.unwrap(), Some(beta_active.clone()));

    let moved = store
        .transition_tenant(
            ACCOUNT,
            "t_gamma",
            TenantStatus::Rejected,
            TenantStatus::PendingApproval,
            Some("resubmitted"),
            T0 + 5_000,
        )
        .await
        .unwrap();
    assert!(moved);
    let gamma_pending = TenantRecord {
        status: TenantStatus::PendingApproval,
        status_reason: Some("resubmitted".to_string()),
        updated_at: T0 + 5_000,
        ..gamma.clone()
    };
    assert_eq!(store.tenant(ACCOUNT, "t_gamma").await.unwrap(), Some(gamma_pending.clone()));
    assert_eq!(
        tenant_ids(&store.tenants(ACCOUNT, Some(TenantStatus::Active)).await.unwrap()),
        ["t_beta", "t_acme", "t_acme2"]
    );

    // Deletion: only in a deletable status, only through the owning account.
    let deletable = [TenantStatus::PendingApproval, TenantStatus::Rejected];
    assert!(!store.delete_tenant(ACCOUNT, "t_acme", &deletable).await.unwrap());
    assert_eq!(store.tenant(ACCOUNT, "t_acme").await.unwrap(), Some(renamed.clone()));
    assert!(!store.delete_tenant(OTHER_ACCOUNT, "t_gamma", &deletable).await.unwrap());
    assert!(!store.delete_tenant(ACCOUNT, "t_missing", &deletable).await.unwrap());

    // Keys of the tenant, one live and one soft-deleted, and a neighbour's key.
    let gamma_live = tenant_key("t_gamma", "pk_gamma_live", &[Role::TenantAdmin], T0 + 6_000);
    let gamma_gone = tenant_key("t_gamma", "pk_gamma_gone", &[Role::TenantAppRead], T0 + 6_001);
    let acme_key = tenant_key("t_acme", "pk_acme", &[Role::TenantAdmin], T0 + 6_002);
    for k in [&gamma_live, &gamma_gone, &acme_key] {
        store.insert_api_key(k).await.expect("insert key");
    }
    assert!(store.delete_api_key(&tenant_owner("t_gamma"), "pk_gamma_gone", T0 + 6_500).await.unwrap());

    assert!(store.delete_tenant(ACCOUNT, "t_gamma", &deletable).await.unwrap());
    assert_eq!(store.tenant(ACCOUNT, "t_gamma").await.unwrap(), None);
    assert_eq!(store.api_key_by_public_key("pk_gamma_live").await.unwrap(), None);
    assert!(store.api_keys(&tenant_owner("t_gamma")).await.unwrap().is_empty());
    assert_eq!(store.api_key(&tenant_owner("t_gamma"), "pk_gamma_live").await.unwrap(), None);
    assert!(!store.delete_tenant(ACCOUNT, "t_gamma", &deletable).await.unwrap(), "deleted twice");
    // Everything else is untouched.
    assert_eq!(store.api_key_by_public_key("pk_acme").await.unwrap(), Some(acme_key));
    assert_eq!(tenant_ids(&store.tenants(ACCOUNT, None).await.unwrap()), ["t_beta", "t_acme", "t_acme2"]);
    // The freed name can be used again.
    store
        .create_tenant(&tenant_record("t_gamma2", "gamma", TenantStatus::Active, T0 + 7_000), -1)
        .await
        .expect("deleted tenant's name is free");
}

pub(crate) async fn scenario_tenant_limit(store: Arc<dyn Store>) {
    init(&*store).await;
    let t = |id: &str, at: i64| tenant_record(id, id, TenantStatus::Active, at);

    store.create_tenant(&t("a", T0 + 1), 2).await.expect("first within limit");
    store.create_tenant(&t("b", T0 + 2), 2).await.expect("second within limit");
    assert_limit_exceeded(store.create_tenant(&t("c", T0 + 3), 2).await);
    assert_eq!(store.tenant(ACCOUNT, "c").await.unwrap(), None);
    assert_limit_exceeded(store.create_tenant(&t("c", T0 + 3), 0).await);

    // -1 is unlimited.
    store.create_tenant(&t("c", T0 + 3), -1).await.expect("unlimited");
    assert_eq!(tenant_ids(&store.tenants(ACCOUNT, None).await.unwrap()), ["a", "b", "c"]);
    assert_limit_exceeded(store.create_tenant(&t("d", T0 + 4), 3).await);

    // Pending tenants count; rejected ones do not.
    assert!(store
        .transition_tenant(ACCOUNT, "b", TenantStatus::Active, TenantStatus::PendingApproval, None, T0 + 5)
        .await
        .unwrap());
    assert_limit_exceeded(store.create_tenant(&t("d", T0 + 4), 3).await);
    assert!(store
        .transition_tenant(ACCOUNT, "a", TenantStatus::Active, TenantStatus::Rejected, Some("fraud"), T0 + 6)
        .await
        .unwrap());
    store.create_tenant(&t("d", T0 + 7), 3).await.expect("rejected tenant frees a slot");
    assert_limit_exceeded(store.create_tenant(&t("e", T0 + 8), 3).await);
    assert_eq!(tenant_ids(&store.tenants(ACCOUNT, None).await.unwrap()), ["a", "b", "c", "d"]);
}

pub(crate) async fn scenario_tenant_limit_concurrent(store: Arc<dyn Store>) {
    init(&*store).await;
    let results = race(8, |i| {
        let store = store.clone();
        async move {
            let id = format!("t_race_{i}");
            let tenant = tenant_record(&id, &format!("Racer {i}"), TenantStatus::Active, T0 + i as i64);
            (id, store.create_tenant(&tenant, 1).await)
        }
    })
    .await;
    let mut winners = Vec::new();
    for (id, result) in results {
        match result {
            Ok(()) => winners.push(id),
            Err(StoreError::LimitExceeded) => {}
            Err(e) => panic!("{id}: unexpected error {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let tenants = store.tenants(ACCOUNT, None).await.unwrap();
    assert_eq!(tenant_ids(&tenants), [winners[0].as_str()]);
}

pub(crate) async fn scenario_tenant_name_concurrent(store: Arc<dyn Store>) {
    init(&*store).await;
    // The same name in different cases: one wins, the others conflict.
    let results = race(8, |i| {
        let store = store.clone();
        async move {
            let name = if i % 2 == 0 { "Same Name" } else { "SAME NAME" };
            let tenant = tenant_record(&format!("t_same_{i}"), name, TenantStatus::Active, T0 + i as i64);
            store.create_tenant(&tenant, -1).await
        }
    })
    .await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let conflicts = results.iter().filter(|r| matches!(r, Err(StoreError::Conflict(_)))).count();
    assert_eq!((ok, conflicts), (1, 7), "results: {results:?}");
    assert_eq!(store.tenants(ACCOUNT, None).await.unwrap().len(), 1);
}

// Scenarios: API keys -----------------------------------------------------------------

pub(crate) async fn scenario_api_keys(store: Arc<dyn Store>) {
    let init = init(&*store).await;
    for (id, name) in [("t_a", "Tenant A"), ("t_b", "Tenant B")] {
        store.create_tenant(&tenant_record(id, name, TenantStatus::Active, T0 + 1), -1).await.unwrap();
    }
    let acc_b = account_key("pk_acc_b", &[Role::AccountTenantRead, Role::AccountTenantApproval], T0 + 20);
    let acc_a = account_key("pk_acc_a", &[Role::AccountTenantWrite], T0 + 10);
    // Same creation time as pk_acc_a: ties are ordered by public key.
    let acc_c = account_key("pk_acc_c", &[Role::AccountTenantWrite], T0 + 10);
    let ta_1 = tenant_key("t_a", "pk_ta_1", &[Role::TenantAdmin], T0 + 5);
    let ta_2 = tenant_key("t_a", "pk_ta_2", &[Role::TenantAppRead, Role::TenantTransactionWrite], T0 + 1);
    let tb_1 = tenant_key("t_b", "pk_tb_1", &[Role::TenantAdmin], T0 + 2);
    for k in [&acc_b, &acc_c, &acc_a, &ta_1, &ta_2, &tb_1] {
        store.insert_api_key(k).await.expect("insert key");
    }
    // Public keys are unique across owners.
    assert_conflict(store.insert_api_key(&tenant_key("t_b", "pk_acc_a", &[Role::TenantAdmin], T0)).await);

    for k in [&init.admin_key, &acc_a, &acc_b, &acc_c, &ta_1, &ta_2, &tb_1] {
        assert_eq!(store.api_key_by_public_key(&k.public_key).await.unwrap().as_ref(), Some(k));
        assert_eq!(store.api_key(&k.owner, &k.public_key).await.unwrap().as_ref(), Some(k));
    }
    assert_eq!(store.api_key_by_public_key("pk_missing").await.unwrap(), None);

    let account = account_owner(ACCOUNT);
    let (owner_a, owner_b) = (tenant_owner("t_a"), tenant_owner("t_b"));
    assert_eq!(
        store.api_keys(&account).await.unwrap(),
        vec![init.admin_key.clone(), acc_a.clone(), acc_c.clone(), acc_b.clone()]
    );
    assert_eq!(store.api_keys(&owner_a).await.unwrap(), vec![ta_2.clone(), ta_1.clone()]);
    assert_eq!(store.api_keys(&owner_b).await.unwrap(), vec![tb_1.clone()]);
    assert!(store.api_keys(&account_owner(OTHER_ACCOUNT)).await.unwrap().is_empty());
    let foreign = KeyOwner::Tenant { account_id: OTHER_ACCOUNT.to_string(), tenant_id: "t_a".to_string() };
    assert!(store.api_keys(&foreign).await.unwrap().is_empty());

    // Owner scoping: a key is invisible through any owner but its own.
    assert_eq!(store.api_key(&owner_b, "pk_ta_1").await.unwrap(), None);
    assert_eq!(store.api_key(&account, "pk_ta_1").await.unwrap(), None);
    assert_eq!(store.api_key(&foreign, "pk_ta_1").await.unwrap(), None);
    assert_eq!(store.api_key(&owner_a, "pk_acc_a").await.unwrap(), None);
    assert_eq!(store.api_key(&account_owner(OTHER_ACCOUNT), "pk_acc_a").await.unwrap(), None);
    let admin_roles = roles(&[Role::TenantAdmin]);
    assert!(!store.update_api_key(&owner_b, "pk_ta_1", "hijack", &admin_roles, T0 + 50).await.unwrap());
    assert!(!store.update_api_key(&account, "pk_ta_1", "hijack", &admin_roles, T0 + 50).await.unwrap());
    assert!(!store.update_api_key(&owner_a, "pk_acc_a", "hijack", &admin_roles, T0 + 50).await.unwrap());
    assert!(!store.delete_api_key(&owner_b, "pk_ta_1", T0 + 50).await.unwrap());
    assert!(!store.delete_api_key(&account, "pk_ta_1", T0 + 50).await.unwrap());
    assert!(!store.delete_api_key(&owner_a, "pk_acc_a", T0 + 50).await.unwrap());
    assert!(!store.delete_api_key(&foreign, "pk_ta_1", T0 + 50).await.unwrap());
    assert_eq!(store.api_key_by_public_key("pk_ta_1").await.unwrap(), Some(ta_1.clone()));
    assert_eq!(store.api_key_by_public_key("pk_acc_a").await.unwrap(), Some(acc_a.clone()));
    assert!(deleted_since(&*store, 0).await.is_empty());

    // Update: name, roles and updated_at change; the rest stays.
    let new_roles = roles(&[Role::AccountTenantApproval, Role::AccountTenantRead]);
    assert!(store.update_api_key(&account, "pk_acc_a", "Renamed", &new_roles, T0 + 100).await.unwrap());
    let acc_a = ApiKeyRecord { name: "Renamed".to_string(), roles: new_roles, updated_at: T0 + 100, ..acc_a };
    assert_eq!(store.api_key(&account, "pk_acc_a").await.unwrap(), Some(acc_a.clone()));
    let tenant_roles = roles(&[Role::TenantAppWrite, Role::TenantAppRead]);
    assert!(store.update_api_key(&owner_a, "pk_ta_2", "Apps", &tenant_roles, T0 + 101).await.unwrap());
    let ta_2 = ApiKeyRecord { name: "Apps".to_string(), roles: tenant_roles, updated_at: T0 + 101, ..ta_2 };
    assert_eq!(store.api_key_by_public_key("pk_ta_2").await.unwrap(), Some(ta_2.clone()));
    assert!(!store.update_api_key(&account, "pk_missing", "x", &admin_roles, T0 + 102).await.unwrap());
    // The update is visible as a change carrying the new roles.
    let changes = store.keys_changed_since(T0 + 101).await.unwrap();
    assert_eq!(changes, vec![KeyChange { public_key: "pk_ta_2".into(), roles: ta_2.roles.clone(), deleted: false }]);

    // Roles are counted on live account keys that hold them explicitly: write does
    // not count as read, admin does not count as approval, tenant keys never count.
    let count = |role| {
        let store = store.clone();
        async move { store.count_account_keys_with_role(ACCOUNT, role).await.unwrap() }
    };
    assert_eq!(count(Role::AccountAdmin).await, 1);
    assert_eq!(count(Role::AccountTenantApproval).await, 2);
    assert_eq!(count(Role::AccountTenantRead).await, 2);
    assert_eq!(count(Role::AccountTenantWrite).await, 1);
    assert_eq!(count(Role::TenantAdmin).await, 0);
    assert_eq!(store.count_account_keys_with_role(OTHER_ACCOUNT, Role::AccountAdmin).await.unwrap(), 0);

    // Soft delete.
    let deleted_at = T0 + 1_000;
    assert!(store.delete_api_key(&account, "pk_acc_b", deleted_at).await.unwrap());
    assert_eq!(store.api_key_by_public_key("pk_acc_b").await.unwrap(), None);
    assert_eq!(store.api_key(&account, "pk_acc_b").await.unwrap(), None);
    assert_eq!(public_keys(&store.api_keys(&account).await.unwrap()), [ADMIN_KEY, "pk_acc_a", "pk_acc_c"]);
    assert!(!store.update_api_key(&account, "pk_acc_b", "zombie", &admin_roles, deleted_at + 1).await.unwrap());
    assert!(!store.delete_api_key(&account, "pk_acc_b", deleted_at + 1).await.unwrap(), "deleted twice");
    assert_eq!(count(Role::AccountTenantApproval).await, 1);
    assert_eq!(deleted_since(&*store, 0).await, ["pk_acc_b"]);
    assert_eq!(deleted_since(&*store, deleted_at).await, ["pk_acc_b"]);
    assert!(deleted_since(&*store, deleted_at + 1).await.is_empty());
    // A deleted key's public key stays taken.
    assert_conflict(store.insert_api_key(&account_key("pk_acc_b", &[Role::AccountTenantRead], T0 + 2_000)).await);
    assert_eq!(store.api_key_by_public_key("pk_acc_b").await.unwrap(), None);

    let tenant_deleted_at = deleted_at + 50;
    assert!(store.delete_api_key(&owner_a, "pk_ta_2", tenant_deleted_at).await.unwrap());
    assert_eq!(store.api_key_by_public_key("pk_ta_2").await.unwrap(), None);
    assert_eq!(store.api_keys(&owner_a).await.unwrap(), vec![ta_1]);
    assert_eq!(deleted_since(&*store, deleted_at).await, ["pk_acc_b", "pk_ta_2"]);
    assert_eq!(deleted_since(&*store, deleted_at + 1).await, ["pk_ta_2"]);
    assert_eq!(deleted_since(&*store, tenant_deleted_at).await, ["pk_ta_2"]);
    assert!(deleted_since(&*store, tenant_deleted_at + 1).await.is_empty());
    assert_eq!(store.api_keys(&owner_b).await.unwrap(), vec![tb_1]);
}

pub(crate) async fn scenario_last_admin_key(store: Arc<dyn Store>) {
    let init = init(&*store).await;
    let account = account_owner(ACCOUNT);
    store.create_tenant(&tenant_record("t_a", "Tenant A", TenantStatus::Active, T0), -1).await.unwrap();
    let reader = account_key("pk_reader", &[Role::AccountTenantRead], T0 + 1);
    let tenant_admin = tenant_key("t_a", "pk_tenant_admin", &[Role::TenantAdmin], T0 + 2);
    store.insert_api_key(&reader).await.unwrap();
    store.insert_api_key(&tenant_admin).await.unwrap();

    // The only account admin can be neither deleted nor demoted.
    assert_last_admin(store.delete_api_key(&account, ADMIN_KEY, T0 + 10).await);
    let demoted = roles(&[Role::AccountTenantRead]);
    assert_last_admin(store.update_api_key(&account, ADMIN_KEY, "demoted", &demoted, T0 + 11).await);
    assert_eq!(store.api_key_by_public_key(ADMIN_KEY).await.unwrap(), Some(init.admin_key.clone()));
    assert_eq!(store.count_account_keys_with_role(ACCOUNT, Role::AccountAdmin).await.unwrap(), 1);
    assert!(deleted_since(&*store, 0).await.is_empty());

    // Renaming while keeping the role, and removing other keys, is fine.
    let kept = roles(&[Role::AccountAdmin, Role::AccountTenantRead]);
    assert!(store.update_api_key(&account, ADMIN_KEY, "Root", &kept, T0 + 12).await.unwrap());
    let admin = ApiKeyRecord { name: "Root".to_string(), roles: kept, updated_at: T0 + 12, ..init.admin_key.clone() };
    assert_eq!(store.api_key_by_public_key(ADMIN_KEY).await.unwrap(), Some(admin.clone()));
    assert!(store.delete_api_key(&account, "pk_reader", T0 + 13).await.unwrap());
    assert!(store.delete_api_key(&tenant_owner("t_a"), "pk_tenant_admin", T0 + 14).await.unwrap());

    // With a second admin, one of them may go.
    let second = account_key("pk_admin_2", &[Role::AccountAdmin], T0 + 20);
    store.insert_api_key(&second).await.unwrap();
    assert_eq!(store.count_account_keys_with_role(ACCOUNT, Role::AccountAdmin).await.unwrap(), 2);
    assert!(store.delete_api_key(&account, ADMIN_KEY, T0 + 30).await.unwrap());
    assert_eq!(store.api_key_by_public_key(ADMIN_KEY).await.unwrap(), None);
    assert_eq!(store.count_account_keys_with_role(ACCOUNT, Role::AccountAdmin).await.unwrap(), 1);

    // The deleted admin does not count: the second one is now the last.
    assert_last_admin(store.delete_api_key(&account, "pk_admin_2", T0 + 40).await);
    assert_last_admin(store.update_api_key(&account, "pk_admin_2", "demoted", &demoted, T0 + 41).await);
    assert_eq!(store.api_key_by_public_key("pk_admin_2").await.unwrap(), Some(second.clone()));

    // Demotion is allowed once another admin exists.
    let third = account_key("pk_admin_3", &[Role::AccountAdmin], T0 + 50);
    store.insert_api_key(&third).await.unwrap();
    assert!(store.update_api_key(&account, "pk_admin_2", "demoted", &demoted, T0 + 51).await.unwrap());
    assert_eq!(store.count_account_keys_with_role(ACCOUNT, Role::AccountAdmin).await.unwrap(), 1);
    assert_last_admin(store.delete_api_key(&account, "pk_admin_3", T0 + 60).await);
    assert_eq!(public_keys(&store.api_keys(&account).await.unwrap()), ["pk_admin_2", "pk_admin_3"]);
}

pub(crate) async fn scenario_last_admin_key_concurrent(store: Arc<dyn Store>) {
    init(&*store).await;
    let account = account_owner(ACCOUNT);
    let demoted = roles(&[Role::AccountTenantRead]);
    let mut survivor = ADMIN_KEY.to_string();
    // Each round races the removal of both live admin keys; odd rounds demote the
    // newcomer instead of deleting it.
    for round in 0..6_i64 {
        let newcomer = format!("pk_admin_round_{round}");
        let key = account_key(&newcomer, &[Role::AccountAdmin], T0 + 100 * round + 1);
        store.insert_api_key(&key).await.unwrap();
        let now = T0 + 100 * round + 50;
        let contenders = [survivor.clone(), newcomer];
        let results = race(2, |i| {
            let (store, account, demoted) = (store.clone(), account.clone(), demoted.clone());
            let public_key = contenders[i].clone();
            async move {
                let result = if i == 1 && round % 2 == 1 {
                    store.update_api_key(&account, &public_key, "demoted", &demoted, now).await
                } else {
                    store.delete_api_key(&account, &public_key, now).await
                };
                (public_key, result)
            }
        })
        .await;
        let mut removed = Vec::new();
        let mut refused = Vec::new();
        for (key, result) in results {
            match result {
                Ok(true) => removed.push(key),
                Err(StoreError::LastAdminKey) => refused.push(key),
                other => panic!("round {round}: {key}: unexpected {other:?}"),
            }
        }
        assert_eq!((removed.len(), refused.len()), (1, 1), "round {round}: removed {removed:?}, refused {refused:?}");
        assert_eq!(store.count_account_keys_with_role(ACCOUNT, Role::AccountAdmin).await.unwrap(), 1, "round {round}");
        let live_admin = store.api_key(&account, &refused[0]).await.unwrap().expect("refused key is live");
        assert!(live_admin.roles.contains(Role::AccountAdmin), "round {round}");
        survivor = refused.pop().unwrap();
    }
}

// Scenarios: nonces and idempotency ---------------------------------------------------

pub(crate) async fn scenario_nonces(store: Arc<dyn Store>) {
    let t = 1_000_000;
    assert!(store.remember_nonce("pk_1", "n_1", t, t + 1_000).await.unwrap());
    assert!(!store.remember_nonce("pk_1", "n_1", t + 10, t + 1_010).await.unwrap(), "replay accepted");
    assert!(!store.remember_nonce("pk_1", "n_1", t + 999, t + 1_999).await.unwrap(), "accepted before expiry");
    // Nonces are per key.
    assert!(store.remember_nonce("pk_2", "n_1", t + 20, t + 500).await.unwrap());
    assert!(store.remember_nonce("pk_1", "n_2", t + 30, t + 5_000).await.unwrap());
    assert!(!store.remember_nonce("pk_2", "n_1", t + 40, t + 540).await.unwrap());

    // After expiry the nonce is accepted again, and protected anew.
    assert!(store.remember_nonce("pk_1", "n_1", t + 1_001, t + 3_000).await.unwrap());
    assert!(!store.remember_nonce("pk_1", "n_1", t + 2_500, t + 3_500).await.unwrap());

    // Purge at t + 2_000: pk_2/n_1 (expired at t + 500) and pk_3/n_9 (t + 1_999) go;
    // pk_1/n_1 (t + 3_000) and pk_1/n_2 (t + 5_000) stay.
    assert!(store.remember_nonce("pk_3", "n_9", t, t + 1_999).await.unwrap());
    assert_eq!(store.purge_expired(t + 2_000).await.unwrap(), 2);
    assert_eq!(store.purge_expired(t + 2_000).await.unwrap(), 0);
    assert!(!store.remember_nonce("pk_1", "n_1", t + 2_100, t + 4_000).await.unwrap());
    assert!(!store.remember_nonce("pk_1", "n_2", t + 2_100, t + 4_000).await.unwrap());
    assert!(store.remember_nonce("pk_2", "n_1", t + 2_100, t + 4_000).await.unwrap());
}

pub(crate) async fn scenario_nonces_concurrent(store: Arc<dyn Store>) {
    // The same signed request replayed in parallel: only one may pass.
    let t = 1_000_000;
    let fresh = race(8, |i| {
        let store = store.clone();
        async move { store.remember_nonce("pk_1", "n_race", t + i as i64, t + 60_000).await.unwrap() }
    })
    .await;
    assert_eq!(fresh.iter().filter(|f| **f).count(), 1, "fresh: {fresh:?}");
    // Likewise once the nonce has expired.
    let fresh = race(8, |i| {
        let store = store.clone();
        async move { store.remember_nonce("pk_1", "n_race", t + 60_001 + i as i64, t + 120_000).await.unwrap() }
    })
    .await;
    assert_eq!(fresh.iter().filter(|f| **f).count(), 1, "fresh after expiry: {fresh:?}");
}

pub(crate) const SCOPE: &str = "acc_main:pk_admin";
pub(crate) const DAY_MS: i64 = 86_400_000;
pub(crate) const STALE_MS: i64 = 30_000;
/// How long a node may be silent before the scenarios' claimants take it for dead.
pub(crate) const LOST_MS: i64 = 5_000;
/// The node of the scenarios that are not about dying: heard from at every moment they
/// use ([`keep_alive`]), so only the claims themselves decide.
pub(crate) const LIVE_NODE: &str = "node-live";

/// `node` claiming at `now`, taking nodes silent for more than [`LOST_MS`] for dead.
pub(crate) fn claimant(node: &str, now: i64) -> Claimant<'_> {
    Claimant { node_id: node, lost_before: now - LOST_MS }
}

/// A heartbeat of `node` far in the future: it is alive at every moment a scenario uses.
pub(crate) async fn keep_alive(store: &dyn Store, node: &str) {
    store.heartbeat(node, T0, T0 + 1000 * DAY_MS).await.unwrap();
}

pub(crate) fn claim_by<'a>(
    node: &'a str,
    key: &'a str,
    hash: &'a str,
    now: i64,
    expires_at: i64,
) -> IdempotencyClaim<'a> {
    IdempotencyClaim {
        scope: SCOPE,
        key,
        request_hash: hash,
        now,
        expires_at,
        claimant: claimant(node, now),
        stale_after_ms: STALE_MS,
    }
}

pub(crate) fn claim<'a>(key: &'a str, hash: &'a str, now: i64, expires_at: i64) -> IdempotencyClaim<'a> {
    claim_by(LIVE_NODE, key, hash, now, expires_at)
}

pub(crate) async fn begin_by(store: &dyn Store, node: &str, key: &str, hash: &str, now: i64) -> IdempotencyBegin {
    store.begin_idempotent(&claim_by(node, key, hash, now, now + DAY_MS)).await.expect("begin_idempotent")
}

pub(crate) async fn begin(store: &dyn Store, key: &str, hash: &str, now: i64) -> IdempotencyBegin {
    begin_by(store, LIVE_NODE, key, hash, now).await
}

pub(crate) fn response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> StoredResponse {
    StoredResponse {
        status,
        headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        body: body.to_vec(),
    }
}

pub(crate) async fn scenario_idempotency(store: Arc<dyn Store>) {
    let store = &*store;
    keep_alive(store, LIVE_NODE).await;
    let t = T0;
    assert_eq!(begin(store, "k1", "h1", t).await, IdempotencyBegin::Started);
    assert_eq!(begin(store, "k1", "h1", t + 1).await, IdempotencyBegin::InProgress);
    assert_eq!(begin(store, "k1", "h2", t + 2).await, IdempotencyBegin::Mismatch);
    // Keys of different scopes never collide.
    let other_scope = IdempotencyClaim { scope: "acc_main:pk_other", ..claim("k1", "h2", t + 3, t + DAY_MS) };
    assert_eq!(store.begin_idempotent(&other_scope).await.unwrap(), IdempotencyBegin::Started);

    // Duplicate header names, non-ASCII and binary bytes must survive unchanged.
    let stored = response(
        201,
        &[
            ("content-type", "application/json"),
            ("location", "/v1/tenants/t_1"),
            ("set-cookie", "a=1"),
            ("set-cookie", "b=ü"),
        ],
        b"{\"id\":\"t_1\"}\x00\xff",
    );
    store.finish_idempotent(SCOPE, "k1", t, &stored).await.unwrap();
    assert_eq!(begin(store, "k1", "h1", t + 10).await, IdempotencyBegin::Replay(stored.clone()));
    assert_eq!(begin(store, "k1", "h1", t + 11).await, IdempotencyBegin::Replay(stored.clone()));
    assert_eq!(begin(store, "k1", "h2", t + 12).await, IdempotencyBegin::Mismatch);
    // A completed record is never stale, and abandoning it does nothing.
    assert_eq!(begin(store, "k1", "h1", t + STALE_MS * 10).await, IdempotencyBegin::Replay(stored.clone()));
    store.abandon_idempotent(SCOPE, "k1", t).await.unwrap();
    assert_eq!(begin(store, "k1", "h1", t + 20).await, IdempotencyBegin::Replay(stored.clone()));
    // The other scope's claim is still in progress.
    assert_eq!(store.begin_idempotent(&other_scope).await.unwrap(), IdempotencyBegin::InProgress);

    // An empty response replays as empty.
    assert_eq!(begin(store, "k_empty", "h", t).await, IdempotencyBegin::Started);
    let empty = response(204, &[], b"");
    store.finish_idempotent(SCOPE, "k_empty", t, &empty).await.unwrap();
    assert_eq!(begin(store, "k_empty", "h", t + 1).await, IdempotencyBegin::Replay(empty));

    // Abandoning releases the claim for a retry (with any request).
    assert_eq!(begin(store, "k2", "h1", t).await, IdempotencyBegin::Started);
    store.abandon_idempotent(SCOPE, "k2", t).await.unwrap();
    assert_eq!(begin(store, "k2", "h3", t + 1).await, IdempotencyBegin::Started);
    assert_eq!(begin(store, "k2", "h3", t + 2).await, IdempotencyBegin::InProgress);
    assert_eq!(begin(store, "k2", "h1", t + 3).await, IdempotencyBegin::Mismatch);

    // A claim whose node died is taken over once the node has been silent for LOST_MS.
    store.heartbeat("node-dead", T0, t).await.unwrap();
    assert_eq!(begin_by(store, "node-dead", "k3", "h1", t).await, IdempotencyBegin::Started);
    assert_eq!(begin(store, "k3", "h1", t + LOST_MS).await, IdempotencyBegin::InProgress);
    assert_eq!(begin(store, "k3", "h1", t + LOST_MS + 1).await, IdempotencyBegin::TakenOver { earlier_claimed_at: t });
    // The new claim is held by a live node.
    assert_eq!(begin(store, "k3", "h1", t + LOST_MS + 2).await, IdempotencyBegin::InProgress);
    // The dead node's request, finishing or failing late, cannot touch the new claim.
    store.finish_idempotent(SCOPE, "k3", t, &response(200, &[], b"late")).await.unwrap();
    store.abandon_idempotent(SCOPE, "k3", t).await.unwrap();
    assert_eq!(begin(store, "k3", "h1", t + LOST_MS + 2).await, IdempotencyBegin::InProgress);
    let k3 = response(200, &[("x-k", "3")], b"three");
    store.finish_idempotent(SCOPE, "k3", t + LOST_MS + 1, &k3).await.unwrap();
    assert_eq!(begin(store, "k3", "h1", t + LOST_MS + 3).await, IdempotencyBegin::Replay(k3));
}

pub(crate) async fn scenario_idempotency_dead_and_live_nodes(store: Arc<dyn Store>) {
    use IdempotencyBegin::*;
    let store = &*store;
    let t = T0;
    // A live node's claim is never taken over, however long its request runs (far
    // beyond `stale_after_ms`): its heartbeat holds it.
    store.heartbeat("node-a", t, t).await.unwrap();
    assert_eq!(begin_by(store, "node-a", "slow", "h", t).await, Started);
    let hour = 3_600_000;
    for later in [LOST_MS, 10 * STALE_MS, hour] {
        store.heartbeat("node-a", t, t + later).await.unwrap();
        assert_eq!(begin_by(store, "node-b", "slow", "h", t + later + LOST_MS).await, InProgress, "{later}");
    }
    // An old heartbeat written late does not make the node look older.
    store.heartbeat("node-a", t, t).await.unwrap();
    assert_eq!(begin_by(store, "node-b", "slow", "h", t + hour + LOST_MS).await, InProgress);
    // Once it stops, its claim is taken over a few seconds later, as a take-over.
    let last = t + hour;
    assert_eq!(begin_by(store, "node-b", "slow", "h", last + LOST_MS + 1).await, TakenOver { earlier_claimed_at: t });

    // A claim of a node never heard from is free at once (a node beats before it claims).
    assert_eq!(begin_by(store, "node-silent", "k-silent", "h", t).await, Started);
    store.heartbeat("node-b", t, t).await.unwrap();
    assert_eq!(begin_by(store, "node-b", "k-silent", "h", t + 1).await, TakenOver { earlier_claimed_at: t });

    // Another request with the key of a dead node's claim starts afresh: it cannot
    // have been what the dead node was doing.
    store.heartbeat("node-c", t, t).await.unwrap();
    assert_eq!(begin_by(store, "node-c", "k-other", "h1", t).await, Started);
    assert_eq!(begin_by(store, "node-b", "k-other", "h2", t + LOST_MS).await, Mismatch, "node-c still lives");
    assert_eq!(begin_by(store, "node-b", "k-other", "h2", t + LOST_MS + 1).await, Started);
    store.heartbeat("node-b", t, t + LOST_MS + 2).await.unwrap();
    assert_eq!(begin_by(store, "node-c", "k-other", "h1", t + LOST_MS + 2).await, Mismatch);

    // A finished claim is never taken over, whoever made it.
    assert_eq!(begin_by(store, "node-c", "k-done", "h", t).await, Started);
    let done = response(201, &[], b"done");
    store.finish_idempotent(SCOPE, "k-done", t, &done).await.unwrap();
    assert_eq!(begin_by(store, "node-b", "k-done", "h", t + DAY_MS - 1).await, Replay(done));
}

pub(crate) async fn scenario_idempotency_expiry_and_purge(store: Arc<dyn Store>) {
    let store = &*store;
    keep_alive(store, LIVE_NODE).await;
    let t = T0;
    let short = |key: &'static str, now: i64| claim(key, "h", now, t + 5_000);

    // A completed record replays until it expires, then the key is free again.
    assert_eq!(store.begin_idempotent(&short("done", t)).await.unwrap(), IdempotencyBegin::Started);
    let done = response(200, &[("etag", "\"1\"")], b"done");
    store.finish_idempotent(SCOPE, "done", t, &done).await.unwrap();
    assert_eq!(begin(store, "done", "h", t + 4_000).await, IdempotencyBegin::Replay(done));
    assert_eq!(begin(store, "done", "h2", t + 5_001).await, IdempotencyBegin::Started);
    // The old response is gone with it.
    assert_eq!(begin(store, "done", "h2", t + 5_002).await, IdempotencyBegin::InProgress);

    // Rows for purging: two keys and a nonce expire at t + 5_000; "long" and the
    // re-claimed "done" live for a day.
    assert_eq!(store.begin_idempotent(&short("expired_open", t)).await.unwrap(), IdempotencyBegin::Started);
    assert_eq!(store.begin_idempotent(&short("expired_done", t)).await.unwrap(), IdempotencyBegin::Started);
    store.finish_idempotent(SCOPE, "expired_done", t, &response(200, &[], b"x")).await.unwrap();
    assert_eq!(begin(store, "long", "h", t).await, IdempotencyBegin::Started);
    // A nonce expiring in the same window counts too.
    assert!(store.remember_nonce("pk_1", "n_1", t, t + 5_000).await.unwrap());

    assert_eq!(store.purge_expired(t + 5_001).await.unwrap(), 3);
    assert_eq!(store.purge_expired(t + 5_001).await.unwrap(), 0);
    // Purged keys start afresh; kept ones are untouched.
    assert_eq!(begin(store, "expired_done", "other", t + 5_002).await, IdempotencyBegin::Started);
    assert_eq!(begin(store, "expired_open", "h", t + 5_002).await, IdempotencyBegin::Started);
    assert_eq!(begin(store, "long", "h", t + 5_002).await, IdempotencyBegin::InProgress);
    assert_eq!(begin(store, "done", "h2", t + 5_002).await, IdempotencyBegin::InProgress);
}

pub(crate) async fn scenario_idempotency_concurrent(store: Arc<dyn Store>) {
    let racers = 8;
    // The first claim is made by a node that then dies; the second round by a live one.
    store.heartbeat("node-dying", T0, T0 + racers as i64).await.unwrap();
    keep_alive(&*store, LIVE_NODE).await;
    let begin_all = |node: &'static str, base: i64| {
        let store = store.clone();
        race(racers, move |i| {
            let store = store.clone();
            async move { begin_by(&*store, node, "k_race", "h_race", base + i as i64).await }
        })
    };
    let count = |outcomes: &[IdempotencyBegin], wanted: fn(&IdempotencyBegin) -> bool| {
        outcomes.iter().filter(|o| wanted(o)).count()
    };
    let in_progress = |o: &IdempotencyBegin| *o == IdempotencyBegin::InProgress;

    // A new key: one claim.
    let outcomes = begin_all("node-dying", T0).await;
    assert_eq!(count(&outcomes, |o| *o == IdempotencyBegin::Started), 1, "new key: {outcomes:?}");
    assert_eq!(count(&outcomes, in_progress), racers - 1, "new key: {outcomes:?}");

    // The claim of the dead node: exactly one take-over.
    let outcomes = begin_all(LIVE_NODE, T0 + racers as i64 + LOST_MS + 1).await;
    let taken = |o: &IdempotencyBegin| matches!(o, IdempotencyBegin::TakenOver { .. });
    assert_eq!(count(&outcomes, taken), 1, "dead node's claim: {outcomes:?}");
    assert_eq!(count(&outcomes, in_progress), racers - 1, "dead node's claim: {outcomes:?}");
}

// Scenarios: signing keys -------------------------------------------------------------

pub(crate) async fn scenario_signing_keys(store: Arc<dyn Store>) {
    assert_eq!(store.prune_signing_keys(i64::MAX).await.unwrap(), 0, "pruning an empty table");
    let (old, mid, new) = (signing_key("kid_c", 100), signing_key("kid_b", 200), signing_key("kid_a", 300));
    // Insertion order and kid order both differ from creation order.
    for k in [&mid, &new, &old] {
        store.insert_signing_key(k).await.unwrap();
    }
    assert!(matches!(store.insert_signing_key(&signing_key("kid_b", 999)).await, Err(StoreError::Conflict(_))));
    assert_eq!(store.signing_keys().await.unwrap(), vec![old.clone(), mid.clone(), new.clone()]);

    assert_eq!(store.prune_signing_keys(100).await.unwrap(), 0, "created_at == before is kept");
    assert_eq!(store.prune_signing_keys(150).await.unwrap(), 1);
    assert_eq!(store.signing_keys().await.unwrap(), vec![mid, new.clone()]);
    // Every key is older than `before`: the newest still stays.
    assert_eq!(store.prune_signing_keys(10_000).await.unwrap(), 1);
    assert_eq!(store.signing_keys().await.unwrap(), vec![new.clone()]);
    assert_eq!(store.prune_signing_keys(10_000).await.unwrap(), 0);
    assert_eq!(store.signing_keys().await.unwrap(), vec![new]);
}

// PostgreSQL only: a deterministic interleaving -----------------------------------------

/// `delete_tenant` checks the status and then deletes without holding a lock, so an
/// approval committed in between is lost: the tenant is deleted although ACTIVE.
/// The window is forced by holding a row lock on the tenant's key, which stops
/// `delete_tenant` after its status check (it must remove that key). SQLite runs one
/// write transaction at a time, so the interleaving cannot happen there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_delete_tenant_does_not_delete_an_approved_tenant() {
    use sqlx::Connection as _;

    let Some(db) = PgTestDatabase::create().await else {
        return;
    };
    let store = PostgresStore::connect(&db.url, 5).await.expect("connect to test database");
    store.migrate().await.expect("migrate");
    let store: Arc<dyn Store> = Arc::new(store);
    init(&*store).await;
    let pending = tenant_record("t_pending", "Pending", TenantStatus::PendingApproval, T0);
    store.create_tenant(&pending, -1).await.unwrap();
    store.insert_api_key(&tenant_key("t_pending", "pk_pending", &[Role::TenantAdmin], T0 + 1)).await.unwrap();

    let mut blocker = sqlx::PgConnection::connect(&db.url).await.expect("blocker connection");
    let mut watcher = sqlx::PgConnection::connect(&db.url).await.expect("watcher connection");
    sqlx::query("BEGIN").execute(&mut blocker).await.unwrap();
    sqlx::query("SELECT 1 FROM api_keys WHERE public_key = 'pk_pending' FOR UPDATE")
        .execute(&mut blocker)
        .await
        .unwrap();

    // Polls (each query is its own snapshot) until `n` sessions wait on a lock, or
    // `done` reports true.
    async fn wait_for_lock_waiters(watcher: &mut sqlx::PgConnection, n: i64, done: impl Fn() -> bool) {
        for _ in 0..100_000 {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&mut *watcher)
            .await
            .unwrap();
            if waiting >= n || done() {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("never saw {n} sessions waiting on a lock");
    }

    let deletable = [TenantStatus::PendingApproval, TenantStatus::Rejected];
    let deleting = {
        let store = store.clone();
        tokio::spawn(async move { store.delete_tenant(ACCOUNT, "t_pending", &deletable).await })
    };
    wait_for_lock_waiters(&mut watcher, 1, || false).await;
    let approving = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .transition_tenant(
                    ACCOUNT,
                    "t_pending",
                    TenantStatus::PendingApproval,
                    TenantStatus::Active,
                    None,
                    T0 + 10,
                )
                .await
        })
    };
    // The approval either completes or (with a locking fix) waits behind the delete.
    wait_for_lock_waiters(&mut watcher, 2, || approving.is_finished()).await;
    sqlx::query("COMMIT").execute(&mut blocker).await.unwrap();

    let deleted = deleting.await.expect("delete task").expect("delete_tenant");
    let approved = approving.await.expect("approve task").expect("transition_tenant");
    let tenant = store.tenant(ACCOUNT, "t_pending").await.unwrap();
    assert!(!(deleted && approved), "both the approval and the deletion succeeded; tenant afterwards: {tenant:?}");
    if approved {
        assert_eq!(tenant.map(|t| t.status), Some(TenantStatus::Active));
    } else {
        assert_eq!(tenant, None);
    }
    store.close().await;
    drop(db);
}
