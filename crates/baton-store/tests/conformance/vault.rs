//! Conformance scenarios: customer data keys and master key rotation.

use super::*;

conformance! {
    scenario_customer_key_created_once => sqlite_customer_key_created_once, postgres_customer_key_created_once
        [flavor = "multi_thread", worker_threads = 2];
    scenario_customer_key_shred => sqlite_customer_key_shred, postgres_customer_key_shred;
    scenario_customer_keys_by_master_key => sqlite_customer_keys_by_master_key, postgres_customer_keys_by_master_key;
    scenario_customer_key_rewrap_compare_and_set => sqlite_customer_key_rewrap_compare_and_set,
        postgres_customer_key_rewrap_compare_and_set;
    scenario_sealed_secrets_reseal => sqlite_sealed_secrets_reseal, postgres_sealed_secrets_reseal;
}

// Vault: customer data keys and master key rotation ------------------------------------

/// Master key ids as the vault writes them (16 hex digits).
pub(crate) const MK_OLD: &str = "00aa00aa00aa00aa";
pub(crate) const MK_NEW: &str = "77ee77ee77ee77ee";
pub(crate) const MK_THIRD: &str = "ffff0000ffff0000";

/// Distinct wrapped bytes per customer and master key, with a zero byte inside.
pub(crate) fn wrapped(customer_ref: &str, master_key_id: &str) -> Vec<u8> {
    [&[1u8, 0][..], customer_ref.as_bytes(), master_key_id.as_bytes(), &[0, 255]].concat()
}

pub(crate) fn customer_key(
    tenant_id: &str,
    customer_ref: &str,
    master_key_id: &str,
    created_at: i64,
) -> CustomerKeyRecord {
    CustomerKeyRecord {
        tenant_id: tenant_id.into(),
        customer_ref: customer_ref.into(),
        wrapped_key: Some(wrapped(customer_ref, master_key_id)),
        master_key_id: master_key_id.into(),
        created_at,
        shredded_at: None,
    }
}

pub(crate) fn refs(records: &[CustomerKeyRecord]) -> Vec<(&str, &str, &str)> {
    records.iter().map(|r| (r.master_key_id.as_str(), r.tenant_id.as_str(), r.customer_ref.as_str())).collect()
}

pub(crate) async fn scenario_customer_key_created_once(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    assert_eq!(store.customer_key("t_1", "cust-1").await.unwrap(), None);
    // Eight nodes add a first instrument for the same customer at once, each with its own key.
    let results = race(8, |i| {
        let store = store.clone();
        async move {
            let mut record = customer_key("t_1", "cust-1", MK_OLD, T0 + i as i64);
            record.wrapped_key = Some(wrapped(&format!("racer-{i}"), MK_OLD));
            let created = store.create_customer_key(&record).await.expect("create_customer_key");
            (record, created)
        }
    })
    .await;
    let winners: Vec<&CustomerKeyRecord> = results.iter().filter(|(_, created)| *created).map(|(r, _)| r).collect();
    assert_eq!(winners.len(), 1, "exactly one key is created: {results:?}");
    // Every racer reads the same winner afterwards.
    let stored = store.customer_key("t_1", "cust-1").await.unwrap().expect("the key exists");
    assert_eq!(&stored, winners[0]);

    // The same customer ref in another tenant is another customer.
    assert_eq!(store.customer_key("t_2", "cust-1").await.unwrap(), None);
    let other = customer_key("t_2", "cust-1", MK_OLD, T0);
    assert!(store.create_customer_key(&other).await.unwrap());
    assert_eq!(store.customer_key("t_2", "cust-1").await.unwrap(), Some(other));
    assert_eq!(store.customer_key("t_1", "cust-1").await.unwrap(), Some(stored.clone()));

    // Keys belong to existing tenants only.
    assert!(store.create_customer_key(&customer_key("t_missing", "cust-1", MK_OLD, T0)).await.is_err());
    // The wrapped key stays out of Debug.
    let debug = format!("{stored:?}");
    assert!(debug.contains("[wrapped]") && debug.contains("cust-1"), "{debug}");
    assert!(!debug.contains("racer") && !debug.contains("255"), "{debug}");
}

pub(crate) async fn scenario_customer_key_shred(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    let record = customer_key("t_1", "cust-1", MK_OLD, T0);
    assert!(store.create_customer_key(&record).await.unwrap());
    assert!(store.create_customer_key(&customer_key("t_2", "cust-1", MK_OLD, T0)).await.unwrap());
    assert!(!store.shred_customer_key("t_1", "nobody", T0 + 1).await.unwrap(), "no key to shred");
    assert!(!store.shred_customer_key("t_missing", "cust-1", T0 + 1).await.unwrap());

    assert!(store.shred_customer_key("t_1", "cust-1", T0 + 5).await.unwrap());
    let shredded = store.customer_key("t_1", "cust-1").await.unwrap().expect("the row stays");
    assert_eq!(
        shredded,
        CustomerKeyRecord { wrapped_key: None, shredded_at: Some(T0 + 5), ..record.clone() },
        "the key bytes are gone"
    );
    assert!(!store.shred_customer_key("t_1", "cust-1", T0 + 9).await.unwrap(), "shredding twice");
    assert_eq!(store.customer_key("t_1", "cust-1").await.unwrap().unwrap().shredded_at, Some(T0 + 5));
    // A shredded customer does not get a new key by a create.
    assert!(!store.create_customer_key(&customer_key("t_1", "cust-1", MK_OLD, T0 + 10)).await.unwrap());
    assert_eq!(store.customer_key("t_1", "cust-1").await.unwrap().unwrap().wrapped_key, None);
    // The other tenant's customer of the same ref is untouched.
    assert_eq!(store.customer_key("t_2", "cust-1").await.unwrap(), Some(customer_key("t_2", "cust-1", MK_OLD, T0)));

    // A tombstone (erased before any key existed) can be written directly.
    let tombstone = CustomerKeyRecord {
        wrapped_key: None,
        shredded_at: Some(T0 + 20),
        ..customer_key("t_1", "cust-2", MK_OLD, T0 + 20)
    };
    assert!(store.create_customer_key(&tombstone).await.unwrap());
    assert_eq!(store.customer_key("t_1", "cust-2").await.unwrap(), Some(tombstone));
    assert!(!store.shred_customer_key("t_1", "cust-2", T0 + 21).await.unwrap());
    // A live key must not claim to be shredded, nor a shredded one to hold bytes.
    let inconsistent = CustomerKeyRecord { shredded_at: Some(T0), ..customer_key("t_1", "cust-3", MK_OLD, T0) };
    assert!(store.create_customer_key(&inconsistent).await.is_err());
    assert_eq!(store.customer_key("t_1", "cust-3").await.unwrap(), None);
}

pub(crate) async fn scenario_customer_keys_by_master_key(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    assert!(store.keys_wrapped_by_other(MK_NEW, 10).await.unwrap().is_empty());
    assert_eq!(store.count_keys_by_master_key().await.unwrap(), []);
    // Five keys under the old master key, two already under the new one, one under a
    // third, and one shredded: inserted out of order.
    for (tenant, customer, mk) in [
        ("t_2", "cust-b", MK_OLD),
        ("t_1", "cust-c", MK_NEW),
        ("t_1", "cust-b", MK_OLD),
        ("t_1", "cust-z", MK_THIRD),
        ("t_2", "cust-a", MK_OLD),
        ("t_1", "cust-a", MK_OLD),
        ("t_2", "cust-c", MK_NEW),
        ("t_1", "cust-d", MK_OLD),
        ("t_1", "cust-x", MK_OLD),
    ] {
        assert!(store.create_customer_key(&customer_key(tenant, customer, mk, T0)).await.unwrap());
    }
    assert!(store.shred_customer_key("t_1", "cust-x", T0 + 1).await.unwrap());

    assert_eq!(
        store.count_keys_by_master_key().await.unwrap(),
        [(MK_OLD.to_string(), 5), (MK_NEW.to_string(), 2), (MK_THIRD.to_string(), 1)],
        "live keys only: the shredded one does not count"
    );

    // Batches in (master key id, tenant, customer) order; keys under the new master key
    // and shredded keys are never listed.
    let first = store.keys_wrapped_by_other(MK_NEW, 3).await.unwrap();
    assert_eq!(refs(&first), [(MK_OLD, "t_1", "cust-a"), (MK_OLD, "t_1", "cust-b"), (MK_OLD, "t_1", "cust-d")]);
    assert_eq!(first[0], customer_key("t_1", "cust-a", MK_OLD, T0));
    let all = store.keys_wrapped_by_other(MK_NEW, 100).await.unwrap();
    assert_eq!(
        refs(&all),
        [
            (MK_OLD, "t_1", "cust-a"),
            (MK_OLD, "t_1", "cust-b"),
            (MK_OLD, "t_1", "cust-d"),
            (MK_OLD, "t_2", "cust-a"),
            (MK_OLD, "t_2", "cust-b"),
            (MK_THIRD, "t_1", "cust-z"),
        ]
    );
    // Ids either side of the excluded one: a batch may span both.
    let around = store.keys_wrapped_by_other(MK_OLD, 100).await.unwrap();
    assert_eq!(refs(&around), [(MK_NEW, "t_1", "cust-c"), (MK_NEW, "t_2", "cust-c"), (MK_THIRD, "t_1", "cust-z")]);
    assert_eq!(refs(&store.keys_wrapped_by_other(MK_OLD, 2).await.unwrap()), refs(&around[..2]));
    assert!(store.keys_wrapped_by_other(MK_NEW, 0).await.unwrap().is_empty());

    // Rewrapping the first batch moves the next batch along (resumable by id alone).
    for r in &first {
        let old = r.wrapped_key.as_deref().unwrap();
        let new = wrapped(&r.customer_ref, MK_NEW);
        assert!(store.rewrap_customer_key(&r.tenant_id, &r.customer_ref, old, &new, MK_NEW).await.unwrap());
    }
    assert_eq!(
        store.count_keys_by_master_key().await.unwrap(),
        [(MK_OLD.to_string(), 2), (MK_NEW.to_string(), 5), (MK_THIRD.to_string(), 1)]
    );
    let next = store.keys_wrapped_by_other(MK_NEW, 3).await.unwrap();
    assert_eq!(refs(&next), [(MK_OLD, "t_2", "cust-a"), (MK_OLD, "t_2", "cust-b"), (MK_THIRD, "t_1", "cust-z")]);
    let rewrapped = store.customer_key("t_1", "cust-b").await.unwrap().unwrap();
    assert_eq!((rewrapped.master_key_id.as_str(), rewrapped.wrapped_key), (MK_NEW, Some(wrapped("cust-b", MK_NEW))));
    assert_eq!(rewrapped.created_at, T0, "rewrapping keeps the creation time");
}

pub(crate) async fn scenario_customer_key_rewrap_compare_and_set(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    let record = customer_key("t_1", "cust-1", MK_OLD, T0);
    assert!(store.create_customer_key(&record).await.unwrap());
    let old = wrapped("cust-1", MK_OLD);
    let new = wrapped("cust-1", MK_NEW);

    // Stale bytes (another rotation got there first) are refused.
    let stale = wrapped("cust-1", MK_THIRD);
    assert!(!store.rewrap_customer_key("t_1", "cust-1", &stale, &new, MK_NEW).await.unwrap());
    assert_eq!(store.customer_key("t_1", "cust-1").await.unwrap(), Some(record.clone()));
    // The right bytes but another tenant's or customer's row: nothing changes.
    assert!(!store.rewrap_customer_key("t_2", "cust-1", &old, &new, MK_NEW).await.unwrap());
    assert!(!store.rewrap_customer_key("t_1", "cust-2", &old, &new, MK_NEW).await.unwrap());

    assert!(store.rewrap_customer_key("t_1", "cust-1", &old, &new, MK_NEW).await.unwrap());
    assert_eq!(
        store.customer_key("t_1", "cust-1").await.unwrap(),
        Some(CustomerKeyRecord { wrapped_key: Some(new.clone()), master_key_id: MK_NEW.into(), ..record.clone() })
    );
    // Repeating the same rewrap finds the old bytes gone.
    assert!(!store.rewrap_customer_key("t_1", "cust-1", &old, &new, MK_NEW).await.unwrap());

    // A shredded key is never brought back by a rotation that read it before the shred.
    assert!(store.shred_customer_key("t_1", "cust-1", T0 + 3).await.unwrap());
    let again = wrapped("cust-1", MK_THIRD);
    assert!(!store.rewrap_customer_key("t_1", "cust-1", &new, &again, MK_THIRD).await.unwrap());
    let after = store.customer_key("t_1", "cust-1").await.unwrap().unwrap();
    assert_eq!((after.wrapped_key, after.shredded_at, after.master_key_id.as_str()), (None, Some(T0 + 3), MK_NEW));

    // Concurrent rotations of one key: exactly one compare-and-set wins.
    let record = customer_key("t_2", "cust-9", MK_OLD, T0);
    assert!(store.create_customer_key(&record).await.unwrap());
    let results = race(4, |i| {
        let store = store.clone();
        let old = record.wrapped_key.clone().unwrap();
        async move {
            let new = wrapped(&format!("rotator-{i}"), MK_NEW);
            store.rewrap_customer_key("t_2", "cust-9", &old, &new, MK_NEW).await.unwrap()
        }
    })
    .await;
    assert_eq!(results.iter().filter(|won| **won).count(), 1, "{results:?}");
}

pub(crate) async fn scenario_sealed_secrets_reseal(store: Arc<dyn Store>) {
    let initialization = init(&*store).await;
    store.create_tenant(&tenant_record("t_1", "One", TenantStatus::Active, T0), -1).await.unwrap();
    store.insert_signing_key(&signing_key("kid_2", T0 + 1)).await.unwrap();
    store.insert_api_key(&tenant_key("t_1", "pk_tenant", &[Role::TenantAdmin], T0 + 2)).await.unwrap();
    store.insert_api_key(&account_key("pk_gone", &[Role::AccountAdmin], T0 + 3)).await.unwrap();
    assert!(store.delete_api_key(&account_owner(ACCOUNT), "pk_gone", T0 + 4).await.unwrap());
    store.install_app(ACCOUNT, &app("t_1", "SANDBOX_CARD", true, true), UNLIMITED).await.unwrap();
    store.install_app(ACCOUNT, &app("t_1", "SANDBOX_BANK", true, true), UNLIMITED).await.unwrap();
    assert!(store.configure_app("t_1", "SANDBOX_CARD", "{}", Some(&[9, 0, 9]), T0 + 5).await.unwrap());
    assert!(store.configure_app("t_1", "SANDBOX_BANK", "{}", None, T0 + 5).await.unwrap());

    let secrets = store.sealed_secrets().await.unwrap();
    let signing = |kid: &str| SealedSecretRef::SigningKey { kid: kid.into() };
    let api = |pk: &str| SealedSecretRef::ApiKey { public_key: pk.into() };
    let card = SealedSecretRef::AppSecrets { tenant_id: "t_1".into(), app_id: "SANDBOX_CARD".into() };
    assert_eq!(
        secrets,
        [
            SealedSecret { location: signing("kid_init"), sealed: initialization.signing_key.secret_sealed.clone() },
            SealedSecret { location: signing("kid_2"), sealed: signing_key("kid_2", 0).secret_sealed },
            SealedSecret { location: api(ADMIN_KEY), sealed: initialization.admin_key.private_key_sealed.clone() },
            SealedSecret {
                location: api("pk_tenant"),
                sealed: tenant_key("t_1", "pk_tenant", &[], 0).private_key_sealed
            },
            SealedSecret { location: api("pk_gone"), sealed: account_key("pk_gone", &[], 0).private_key_sealed },
            SealedSecret { location: card.clone(), sealed: vec![9, 0, 9] },
        ],
        "every sealed value, deleted keys included, apps without secrets excluded"
    );
    assert!(!format!("{secrets:?}").contains("secret-kid"), "sealed bytes stay out of Debug");

    // Compare-and-set on each kind: stale bytes are refused, the right ones replaced.
    let changed_since = store.keys_changed_since(T0 + 10).await.unwrap();
    for s in &secrets {
        let new = [b"resealed:".as_slice(), &s.sealed].concat();
        assert!(!store.reseal_secret(&s.location, b"stale", &new).await.unwrap(), "{:?}", s.location);
        assert!(store.reseal_secret(&s.location, &s.sealed, &new).await.unwrap(), "{:?}", s.location);
        assert!(!store.reseal_secret(&s.location, &s.sealed, &new).await.unwrap(), "{:?}", s.location);
    }
    let resealed = store.sealed_secrets().await.unwrap();
    assert_eq!(resealed.len(), secrets.len());
    for (before, after) in secrets.iter().zip(&resealed) {
        assert_eq!(after.location, before.location);
        assert_eq!(after.sealed, [b"resealed:".as_slice(), &before.sealed].concat());
    }
    // The rows' readers see the new bytes; nothing else about them changed.
    let admin = store.api_key_by_public_key(ADMIN_KEY).await.unwrap().unwrap();
    assert_eq!(
        admin.private_key_sealed,
        [b"resealed:".as_slice(), &initialization.admin_key.private_key_sealed].concat()
    );
    assert_eq!(admin.updated_at, initialization.admin_key.updated_at);
    assert_eq!(store.keys_changed_since(T0 + 10).await.unwrap(), changed_since, "resealing is not a key change");
    assert_eq!(store.signing_keys().await.unwrap()[0].secret_sealed, resealed[0].sealed);
    let app = store.installed_app("t_1", "SANDBOX_CARD").await.unwrap().unwrap();
    assert_eq!((app.config_secrets_sealed.as_deref(), app.updated_at), (Some(&b"resealed:\x09\x00\x09"[..]), T0 + 5));
    // Missing rows are refused.
    assert!(!store.reseal_secret(&signing("kid_missing"), b"x", b"y").await.unwrap());
    let other_app = SealedSecretRef::AppSecrets { tenant_id: "t_2".into(), app_id: "SANDBOX_CARD".into() };
    assert!(!store.reseal_secret(&other_app, &resealed[5].sealed, b"y").await.unwrap());

    // The master key check value: compare-and-set too.
    let check = initialization.master_key_check.clone();
    assert!(!store.set_master_key_check(b"not the check", b"new check").await.unwrap());
    assert_eq!(store.master_key_check().await.unwrap(), Some(check.clone()));
    assert!(store.set_master_key_check(&check, b"new check").await.unwrap());
    assert_eq!(store.master_key_check().await.unwrap(), Some(b"new check".to_vec()));
    assert!(!store.set_master_key_check(&check, b"newer check").await.unwrap(), "stale");
    assert_eq!(store.master_key_check().await.unwrap(), Some(b"new check".to_vec()));
}

/// `PRAGMA secure_delete` and the checkpoint after a shred: no piece of the wrapped
/// key is found in the database's files afterwards (before, it is). Without
/// `secure_delete` it stays in the free space of the rewritten page; without the
/// checkpoint, in the write-ahead log.
#[tokio::test]
async fn sqlite_shredded_key_bytes_do_not_linger_in_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("baton.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
    store.migrate().await.unwrap();
    two_tenants(&*store).await;
    // Random-looking bytes that occur nowhere else.
    let marker: Vec<u8> = (0..48u8).map(|i| i.wrapping_mul(37).wrapping_add(11) ^ 0x5a).collect();
    let record = CustomerKeyRecord { wrapped_key: Some(marker.clone()), ..customer_key("t_1", "cust-1", MK_OLD, T0) };
    assert!(store.create_customer_key(&record).await.unwrap());
    // Neighbours in the same page, so that the page is rewritten rather than dropped.
    for i in 0..50 {
        assert!(store.create_customer_key(&customer_key("t_1", &format!("cust-n{i:02}"), MK_OLD, T0)).await.unwrap());
    }
    // Closing the last connection checkpoints the log into the database file, so the
    // key is in the file's page when the shred rewrites it.
    store.close().await;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
    let files = || {
        ["baton.db", "baton.db-wal", "baton.db-shm", "baton.db-journal"]
            .into_iter()
            .filter_map(|name| std::fs::read(dir.path().join(name)).ok().map(|bytes| (name, bytes)))
            .collect::<Vec<_>>()
    };
    // Any 8 consecutive bytes of it: a shorter cell written over the old one hides a prefix.
    let contains = |haystack: &[u8]| marker.chunks(8).any(|c| haystack.windows(8).any(|w| w == c));
    assert!(files().iter().any(|(_, bytes)| contains(bytes)), "the wrapped key is on disk before the shred");

    assert!(store.shred_customer_key("t_1", "cust-1", T0 + 1).await.unwrap());
    for (name, bytes) in files() {
        assert!(!contains(&bytes), "{name} still holds the shredded key");
    }
    assert_eq!(store.customer_key("t_1", "cust-n00").await.unwrap().unwrap().master_key_id, MK_OLD);
    store.close().await;
    for (name, bytes) in files() {
        assert!(!contains(&bytes), "{name} holds the shredded key after close");
    }
}
