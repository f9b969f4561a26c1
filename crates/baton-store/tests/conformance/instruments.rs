//! Conformance scenarios: financial instruments.

use super::*;

conformance! {
    scenario_instruments => sqlite_instruments, postgres_instruments;
    scenario_instrument_isolation => sqlite_instrument_isolation, postgres_instrument_isolation;
    scenario_instrument_state_compare_and_set => sqlite_instrument_state_compare_and_set,
        postgres_instrument_state_compare_and_set;
    scenario_instrument_state_concurrent => sqlite_instrument_state_concurrent, postgres_instrument_state_concurrent
        [flavor = "multi_thread", worker_threads = 2];
    scenario_erase_customer_instruments => sqlite_erase_customer_instruments, postgres_erase_customer_instruments;
}

// Financial instruments -------------------------------------------------------------------

pub(crate) fn instrument(
    id: &str,
    tenant_id: &str,
    customer_ref: &str,
    kind: InstrumentType,
    created_at: i64,
) -> InstrumentRecord {
    InstrumentRecord {
        financial_instrument_id: id.into(),
        tenant_id: tenant_id.into(),
        customer_ref: customer_ref.into(),
        kind,
        state: InstrumentState::Active,
        state_reason: None,
        display: format!("{{\"last4\":\"{}\"}}", &id[id.len().saturating_sub(4)..]),
        details_sealed: format!("sealed-{id}").into_bytes(),
        provider_tokens_sealed: (kind == InstrumentType::Card).then(|| b"tokens".to_vec()),
        single_use: kind == InstrumentType::MobilePhone,
        supports_debit: true,
        supports_credit: kind != InstrumentType::Card,
        created_at,
        updated_at: created_at,
    }
}

pub(crate) fn ids(list: &[InstrumentRecord]) -> Vec<&str> {
    list.iter().map(|r| r.financial_instrument_id.as_str()).collect()
}

pub(crate) fn history_of(list: &[InstrumentStateRecord]) -> Vec<(i64, InstrumentState, Option<StateReason>, i64)> {
    list.iter().map(|s| (s.seq, s.state, s.reason, s.changed_at)).collect()
}

pub(crate) async fn scenario_instruments(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    let card = instrument("fi-0001", "t_1", "cust-1", InstrumentType::Card, T0 + 2);
    let bank = instrument("fi-0002", "t_1", "cust-1", InstrumentType::BankAccount, T0 + 1);
    let phone = instrument("fi-0003", "t_1", "cust-1", InstrumentType::MobilePhone, T0 + 3);
    for r in [&card, &bank, &phone] {
        store.insert_instrument(r).await.unwrap();
    }
    assert!(store.insert_instrument(&card).await.is_err(), "the id is the primary key");

    assert_eq!(store.instrument("t_1", "cust-1", "fi-0001").await.unwrap(), Some(card.clone()));
    assert_eq!(store.instrument("t_1", "cust-1", "fi-9999").await.unwrap(), None);
    // Oldest first.
    assert_eq!(ids(&store.instruments("t_1", "cust-1", None).await.unwrap()), ["fi-0002", "fi-0001", "fi-0003"]);
    assert_eq!(ids(&store.instruments("t_1", "cust-1", Some(InstrumentState::Active)).await.unwrap()).len(), 3);
    assert!(store.instruments("t_1", "cust-1", Some(InstrumentState::Closed)).await.unwrap().is_empty());
    assert!(store.instruments("t_1", "cust-2", None).await.unwrap().is_empty());

    // Creation is the first history entry.
    assert_eq!(
        history_of(&store.instrument_history("t_1", "cust-1", "fi-0001").await.unwrap()),
        [(1, InstrumentState::Active, None, T0 + 2)]
    );
    assert!(store
        .change_instrument_state(
            "t_1",
            "cust-1",
            "fi-0001",
            InstrumentState::Active,
            InstrumentState::Inactive,
            Some(StateReason::Expired),
            T0 + 10
        )
        .await
        .unwrap());
    assert_eq!(ids(&store.instruments("t_1", "cust-1", Some(InstrumentState::Inactive)).await.unwrap()), ["fi-0001"]);
    assert_eq!(
        ids(&store.instruments("t_1", "cust-1", Some(InstrumentState::Active)).await.unwrap()),
        ["fi-0002", "fi-0003"]
    );
    let changed = store.instrument("t_1", "cust-1", "fi-0001").await.unwrap().unwrap();
    assert_eq!(
        changed,
        InstrumentRecord {
            state: InstrumentState::Inactive,
            state_reason: Some(StateReason::Expired),
            updated_at: T0 + 10,
            ..card
        }
    );
}

pub(crate) async fn scenario_instrument_isolation(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    store.insert_instrument(&instrument("fi-a", "t_1", "cust-1", InstrumentType::Card, T0)).await.unwrap();
    store.insert_instrument(&instrument("fi-b", "t_2", "cust-1", InstrumentType::Card, T0)).await.unwrap();
    // Another tenant's customer of the same ref, or another customer of the same tenant.
    assert_eq!(store.instrument("t_2", "cust-1", "fi-a").await.unwrap(), None);
    assert_eq!(store.instrument("t_1", "cust-2", "fi-a").await.unwrap(), None);
    assert_eq!(ids(&store.instruments("t_1", "cust-1", None).await.unwrap()), ["fi-a"]);
    assert_eq!(ids(&store.instruments("t_2", "cust-1", None).await.unwrap()), ["fi-b"]);
    assert!(store.instrument_history("t_2", "cust-1", "fi-a").await.unwrap().is_empty());
    assert!(store.instrument_history("t_1", "cust-2", "fi-a").await.unwrap().is_empty());
    for (tenant, customer) in [("t_2", "cust-1"), ("t_1", "cust-2")] {
        assert!(!store
            .change_instrument_state(
                tenant,
                customer,
                "fi-a",
                InstrumentState::Active,
                InstrumentState::Closed,
                None,
                T0 + 1
            )
            .await
            .unwrap());
    }
    assert_eq!(store.instrument("t_1", "cust-1", "fi-a").await.unwrap().unwrap().state, InstrumentState::Active);
    // Erasing one tenant's customer leaves the other tenant's namesake alone.
    let erasure = store.erase_customer_instruments("er-1", "t_2", "cust-1", None, T0 + 2).await.unwrap();
    assert_eq!(erasure.instruments_closed, 1);
    assert_eq!(store.instrument("t_1", "cust-1", "fi-a").await.unwrap().unwrap().state, InstrumentState::Active);
    assert_eq!(store.erasure("t_1", "er-1").await.unwrap(), None);
}

pub(crate) async fn scenario_instrument_state_compare_and_set(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    store.insert_instrument(&instrument("fi-1", "t_1", "cust-1", InstrumentType::BankAccount, T0)).await.unwrap();
    let change = |from, to, reason, at| {
        let store = store.clone();
        async move { store.change_instrument_state("t_1", "cust-1", "fi-1", from, to, reason, at).await.unwrap() }
    };
    use InstrumentState::*;
    assert!(change(Active, Inactive, Some(StateReason::FraudSuspected), T0 + 1).await);
    assert!(!change(Active, Closed, None, T0 + 2).await, "no longer ACTIVE: nothing changes");
    assert!(change(Inactive, Active, None, T0 + 3).await);
    assert!(change(Active, Closed, Some(StateReason::CustomerRequest), T0 + 4).await);
    assert!(!change(Active, Inactive, Some(StateReason::Expired), T0 + 5).await);
    assert!(!store.change_instrument_state("t_1", "cust-1", "fi-missing", Active, Closed, None, T0).await.unwrap());
    assert_eq!(
        history_of(&store.instrument_history("t_1", "cust-1", "fi-1").await.unwrap()),
        [
            (1, Active, None, T0),
            (2, Inactive, Some(StateReason::FraudSuspected), T0 + 1),
            (3, Active, None, T0 + 3),
            (4, Closed, Some(StateReason::CustomerRequest), T0 + 4),
        ]
    );
    let r = store.instrument("t_1", "cust-1", "fi-1").await.unwrap().unwrap();
    assert_eq!((r.state, r.state_reason, r.updated_at), (Closed, Some(StateReason::CustomerRequest), T0 + 4));
}

pub(crate) async fn scenario_instrument_state_concurrent(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    store.insert_instrument(&instrument("fi-1", "t_1", "cust-1", InstrumentType::Card, T0)).await.unwrap();
    let targets = [InstrumentState::Inactive, InstrumentState::Locked, InstrumentState::Closed];
    let store2 = store.clone();
    let results = race(6, move |i| {
        let store = store2.clone();
        async move {
            let to = targets[i % 3];
            store
                .change_instrument_state(
                    "t_1",
                    "cust-1",
                    "fi-1",
                    InstrumentState::Active,
                    to,
                    Some(StateReason::Expired),
                    T0 + 1,
                )
                .await
                .unwrap()
        }
    })
    .await;
    assert_eq!(results.iter().filter(|applied| **applied).count(), 1, "exactly one change from ACTIVE applies");
    let history = store.instrument_history("t_1", "cust-1", "fi-1").await.unwrap();
    assert_eq!(history.len(), 2);
    let r = store.instrument("t_1", "cust-1", "fi-1").await.unwrap().unwrap();
    assert_eq!(history[1].state, r.state);
}

pub(crate) async fn scenario_erase_customer_instruments(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    for (id, created) in [("fi-1", T0), ("fi-2", T0 + 1), ("fi-3", T0 + 2)] {
        store.insert_instrument(&instrument(id, "t_1", "cust-1", InstrumentType::BankAccount, created)).await.unwrap();
    }
    store.insert_instrument(&instrument("fi-other", "t_1", "cust-2", InstrumentType::Card, T0)).await.unwrap();
    use InstrumentState::*;
    assert!(store.change_instrument_state("t_1", "cust-1", "fi-2", Active, Closed, None, T0 + 5).await.unwrap());
    assert!(store
        .change_instrument_state("t_1", "cust-1", "fi-3", Active, Inactive, Some(StateReason::Expired), T0 + 6)
        .await
        .unwrap());

    let reason = Some(StateReason::CustomerRequest);
    let erasure = store.erase_customer_instruments("er-1", "t_1", "cust-1", reason, T0 + 10).await.unwrap();
    let expected = ErasureRecord {
        erasure_id: "er-1".into(),
        tenant_id: "t_1".into(),
        customer_ref: "cust-1".into(),
        instruments_closed: 2,
        created_at: T0 + 10,
    };
    assert_eq!(erasure, expected, "the already CLOSED instrument is skipped");
    assert_eq!(store.erasure("t_1", "er-1").await.unwrap(), Some(expected));
    assert_eq!(store.erasure("t_1", "er-missing").await.unwrap(), None);
    assert_eq!(ids(&store.instruments("t_1", "cust-1", Some(Closed)).await.unwrap()), ["fi-1", "fi-2", "fi-3"]);
    assert_eq!(
        history_of(&store.instrument_history("t_1", "cust-1", "fi-3").await.unwrap()),
        [(1, Active, None, T0 + 2), (2, Inactive, Some(StateReason::Expired), T0 + 6), (3, Closed, reason, T0 + 10)]
    );
    // The already closed one keeps its own closing entry only.
    assert_eq!(store.instrument_history("t_1", "cust-1", "fi-2").await.unwrap().len(), 2);
    // Another customer is untouched.
    assert_eq!(store.instrument("t_1", "cust-2", "fi-other").await.unwrap().unwrap().state, Active);

    // A second erasure is recorded and closes nothing.
    let again = store.erase_customer_instruments("er-2", "t_1", "cust-1", reason, T0 + 20).await.unwrap();
    assert_eq!(again.instruments_closed, 0);
    // Erasing a customer without instruments is recorded too.
    assert_eq!(
        store.erase_customer_instruments("er-3", "t_1", "nobody", reason, T0).await.unwrap().instruments_closed,
        0
    );
    assert!(
        store.erase_customer_instruments("er-1", "t_1", "cust-1", reason, T0).await.is_err(),
        "erasure ids are unique"
    );
}
