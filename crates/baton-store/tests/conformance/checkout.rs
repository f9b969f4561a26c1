//! Conformance scenarios: checkout sessions.

use super::*;

// Checkout sessions ----------------------------------------------------------------------

conformance! {
    scenario_checkout_sessions => sqlite_checkout_sessions, postgres_checkout_sessions;
    scenario_checkout_token_opens_once_concurrent => sqlite_checkout_token_opens_once_concurrent,
        postgres_checkout_token_opens_once_concurrent [flavor = "multi_thread", worker_threads = 4];
    scenario_checkout_lease_concurrent => sqlite_checkout_lease_concurrent,
        postgres_checkout_lease_concurrent [flavor = "multi_thread", worker_threads = 4];
}

pub(crate) fn checkout_session(session_id: &str, jti: &str, expires_at: i64) -> baton_store::CheckoutSessionRecord {
    baton_store::CheckoutSessionRecord {
        session_id: session_id.to_string(),
        jti: jti.to_string(),
        tenant_id: "t_1".into(),
        order_ref: "O-1".into(),
        instruction_ref: "I-1".into(),
        claims: r#"{"orderRef":"O-1"}"#.into(),
        bearer_token: format!("token-{jti}"),
        language: "de-DE".into(),
        parent_origin: Some("https://shop.example".into()),
        status: baton_domain::CheckoutStatus::Open,
        attempts: 0,
        last_failure: None,
        provider_name: None,
        pending_instrument_id: None,
        busy_until: None,
        expires_at,
        created_at: T0,
        updated_at: T0,
    }
}

pub(crate) async fn scenario_checkout_sessions(store: Arc<dyn Store>) {
    use baton_domain::CheckoutStatus::*;
    use baton_store::CheckoutSessionUpdate;
    two_tenants(&*store).await;
    assert_eq!(store.merchant_name("t_2").await.unwrap().as_deref(), Some("Two"));
    assert_eq!(store.merchant_name("t_9").await.unwrap(), None);
    let expires = T0 + 3_600_000;
    let s = checkout_session("s-1", "jti-1", expires);
    assert!(store.create_checkout_session(&s).await.unwrap());
    assert_eq!(store.checkout_session("s-1").await.unwrap(), Some(s.clone()));
    assert_eq!(store.checkout_session("s-2").await.unwrap(), None);
    // The same token (jti) never opens a second session; nothing is written.
    assert!(!store.create_checkout_session(&checkout_session("s-2", "jti-1", expires)).await.unwrap());
    assert_eq!(store.checkout_session("s-2").await.unwrap(), None);
    assert!(store.create_checkout_session(&checkout_session("s-3", "jti-3", expires)).await.unwrap());

    // A lease needs the status, an unexpired session and no other lease.
    assert_eq!(store.lease_checkout_session("s-1", &[Authenticating], T0 + 1, T0 + 60_001).await.unwrap(), None);
    let leased = store.lease_checkout_session("s-1", &[Open, Authenticating], T0 + 1, T0 + 60_001).await.unwrap();
    assert_eq!(leased.as_ref().map(|l| l.busy_until), Some(Some(T0 + 60_001)));
    assert_eq!(store.lease_checkout_session("s-1", &[Open], T0 + 2, T0 + 60_002).await.unwrap(), None, "busy");
    let failed = CheckoutSessionUpdate {
        status: Open,
        last_failure: Some("PAYMENT_DECLINED".into()),
        provider_name: Some("SANDBOX_CARD".into()),
        pending_instrument_id: None,
        attempted: true,
    };
    // Only the holder of the lease records the result.
    assert!(!store.finish_checkout_session("s-1", T0 + 60_002, &failed, T0 + 3).await.unwrap());
    assert!(store.finish_checkout_session("s-1", T0 + 60_001, &failed, T0 + 3).await.unwrap());
    assert!(!store.finish_checkout_session("s-1", T0 + 60_001, &failed, T0 + 4).await.unwrap(), "released");
    let after = store.checkout_session("s-1").await.unwrap().unwrap();
    assert_eq!((after.status, after.attempts, after.busy_until), (Open, 1, None));
    assert_eq!(after.last_failure.as_deref(), Some("PAYMENT_DECLINED"));
    assert_eq!(after.provider_name.as_deref(), Some("SANDBOX_CARD"));
    assert_eq!(after.updated_at, T0 + 3);

    // A lapsed lease can be taken over; the old holder can no longer finish.
    let first = store.lease_checkout_session("s-1", &[Open], T0 + 10, T0 + 20).await.unwrap().unwrap();
    let second = store.lease_checkout_session("s-1", &[Open], T0 + 20, T0 + 80).await.unwrap().unwrap();
    let challenge = CheckoutSessionUpdate {
        status: Authenticating,
        last_failure: None,
        provider_name: Some("SANDBOX_CARD".into()),
        pending_instrument_id: Some("fi-1".into()),
        attempted: true,
    };
    assert!(!store.finish_checkout_session("s-1", first.busy_until.unwrap(), &challenge, T0 + 21).await.unwrap());
    assert!(store.finish_checkout_session("s-1", second.busy_until.unwrap(), &challenge, T0 + 21).await.unwrap());
    let after = store.checkout_session("s-1").await.unwrap().unwrap();
    assert_eq!((after.status, after.attempts, after.last_failure), (Authenticating, 2, None));
    assert_eq!(after.pending_instrument_id.as_deref(), Some("fi-1"));

    // Final states take no lease for a payment; nothing is leased after expiry.
    let lease = store.lease_checkout_session("s-1", &[Authenticating], T0 + 30, T0 + 90).await.unwrap().unwrap();
    let done = CheckoutSessionUpdate {
        status: Succeeded,
        last_failure: None,
        provider_name: Some("SANDBOX_CARD".into()),
        pending_instrument_id: None,
        attempted: true,
    };
    assert!(store.finish_checkout_session("s-1", lease.busy_until.unwrap(), &done, T0 + 31).await.unwrap());
    assert_eq!(store.lease_checkout_session("s-1", &[Open, Authenticating], T0 + 40, T0 + 100).await.unwrap(), None);
    assert_eq!(store.lease_checkout_session("s-3", &[Open], expires, expires + 60_000).await.unwrap(), None);
    assert!(store.lease_checkout_session("s-3", &[Open], expires - 1, expires + 60_000).await.unwrap().is_some());

    // Expired sessions are purged; their tokens are refused as expired anyway.
    assert!(store.create_checkout_session(&checkout_session("s-4", "jti-4", expires + 1)).await.unwrap());
    assert_eq!(store.purge_checkout_sessions(expires + 1).await.unwrap(), 2);
    assert_eq!(store.checkout_session("s-1").await.unwrap(), None);
    assert!(store.checkout_session("s-4").await.unwrap().is_some());
}

pub(crate) async fn scenario_checkout_token_opens_once_concurrent(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    let opened = race(8, |i| {
        let store = store.clone();
        async move {
            store.create_checkout_session(&checkout_session(&format!("s-{i}"), "jti-x", T0 + 60_000)).await.unwrap()
        }
    })
    .await;
    assert_eq!(opened.iter().filter(|o| **o).count(), 1, "{opened:?}");
}

pub(crate) async fn scenario_checkout_lease_concurrent(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    assert!(store.create_checkout_session(&checkout_session("s-1", "jti-1", T0 + 600_000)).await.unwrap());
    let leases = race(8, |i| {
        let store = store.clone();
        async move {
            store
                .lease_checkout_session("s-1", &[baton_domain::CheckoutStatus::Open], T0 + 1, T0 + 1000 + i as i64)
                .await
                .unwrap()
        }
    })
    .await;
    assert_eq!(leases.iter().filter(|l| l.is_some()).count(), 1);
}
