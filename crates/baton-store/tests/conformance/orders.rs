//! Conformance scenarios: orders, instructions and their listings.

use super::*;

conformance! {
    scenario_orders => sqlite_orders, postgres_orders;
    scenario_order_defaults_resolve_statuses => sqlite_order_defaults_resolve_statuses,
        postgres_order_defaults_resolve_statuses;
    scenario_order_scheme_kind_must_fit => sqlite_order_scheme_kind_must_fit, postgres_order_scheme_kind_must_fit;
    // On one thread every racer has queued its order before SQLite's order writer runs:
    // they are committed as one group. On two threads groups form as they happen.
    scenario_orders_concurrent => sqlite_orders_concurrent_one_thread, postgres_orders_concurrent_one_thread;
    scenario_orders_concurrent => sqlite_orders_concurrent, postgres_orders_concurrent
        [flavor = "multi_thread", worker_threads = 2];
    scenario_orders_announced => sqlite_orders_announced, postgres_orders_announced;
    scenario_orders_announced_concurrent => sqlite_orders_announced_concurrent_one_thread,
        postgres_orders_announced_concurrent_one_thread;
    scenario_orders_announced_concurrent => sqlite_orders_announced_concurrent, postgres_orders_announced_concurrent
        [flavor = "multi_thread", worker_threads = 2];
    scenario_order_listing_filters => sqlite_order_listing_filters, postgres_order_listing_filters;
    scenario_order_listing_pages_with_inserts => sqlite_order_listing_pages_with_inserts,
        postgres_order_listing_pages_with_inserts;
}

// Orders and instructions ---------------------------------------------------------------

pub(crate) fn order_record(tenant_id: &str, order_id: &str, order_ref: &str) -> OrderRecord {
    OrderRecord {
        order_id: order_id.into(),
        tenant_id: tenant_id.into(),
        order_ref: order_ref.into(),
        metadata: "{}".into(),
        created_at: T0,
        updated_at: T0,
    }
}

pub(crate) fn instruction_record(tenant_id: &str, order_id: &str, id: &str, customer: &str) -> InstructionRecord {
    InstructionRecord {
        instruction_id: id.into(),
        tenant_id: tenant_id.into(),
        order_id: order_id.into(),
        instruction_ref: format!("ref-{id}"),
        customer_ref: customer.into(),
        direction: baton_domain::Direction::Credit,
        status: baton_domain::InstructionStatus::Incomplete,
        financial_instrument_id: None,
        instrument_source: baton_domain::Source::None,
        scheme_id: None,
        scheme_source: baton_domain::Source::None,
        amount_minor: 21000,
        currency: "EUR".into(),
        country: "DE".into(),
        settled_by_date: Some("2020-12-31".into()),
        metadata: "{\"b\":\"9\"}".into(),
        created_at: T0,
        updated_at: T0,
    }
}

pub(crate) fn default_record(
    order_id: &str,
    customer: &str,
    fi: Option<&str>,
    scheme: Option<&str>,
) -> CustomerDefaultRecord {
    CustomerDefaultRecord {
        order_id: order_id.into(),
        customer_ref: customer.into(),
        financial_instrument_id: fi.map(Into::into),
        instrument_source: baton_domain::Source::Tenant,
        scheme_id: scheme.map(Into::into),
        scheme_source: baton_domain::Source::Tenant,
        metadata: "{\"a\":\"1\",\"b\":\"2\"}".into(),
        updated_at: T0,
    }
}

pub(crate) fn conflict_named(result: StoreResult<()>, name: &str) {
    match result {
        Err(StoreError::Conflict(c)) => assert_eq!(c, name),
        other => panic!("expected Conflict({name}), got {other:?}"),
    }
}

pub(crate) async fn scenario_orders(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    let order = order_record("t_1", "o-1", "REF1");
    let ins = instruction_record("t_1", "o-1", "i-1", "C1");
    store.create_order(&order, &[], std::slice::from_ref(&ins)).await.unwrap();
    assert_eq!(store.order("t_1", "REF1").await.unwrap(), Some(order.clone()));
    assert_eq!(store.order("t_2", "REF1").await.unwrap(), None, "another tenant's order is invisible");
    assert_eq!(store.order_instructions("t_1", "o-1").await.unwrap(), std::slice::from_ref(&ins));
    assert!(store.order_instructions("t_2", "o-1").await.unwrap().is_empty());
    assert_eq!(store.instruction("t_1", "o-1", "ref-i-1").await.unwrap(), Some(ins.clone()));
    assert_eq!(store.instruction("t_2", "o-1", "ref-i-1").await.unwrap(), None);

    // Uniqueness: the order ref per tenant (all or nothing), the instruction ref per order.
    let again = order_record("t_1", "o-2", "REF1");
    let other = instruction_record("t_1", "o-2", "i-2", "C1");
    conflict_named(store.create_order(&again, &[], &[other]).await, "orders_ref_unique");
    assert_eq!(store.order_instructions("t_1", "o-2").await.unwrap(), []);
    let dup = InstructionRecord { instruction_id: "i-3".into(), ..ins.clone() };
    conflict_named(store.insert_instruction(&dup).await, "instructions_ref_unique");
    let bad_order = order_record("t_1", "o-3", "REF3");
    let dup_pair = [
        instruction_record("t_1", "o-3", "i-4", "C1"),
        InstructionRecord { instruction_id: "i-5".into(), ..instruction_record("t_1", "o-3", "i-4", "C1") },
    ];
    conflict_named(store.create_order(&bad_order, &[], &dup_pair).await, "instructions_ref_unique");
    assert_eq!(store.order("t_1", "REF3").await.unwrap(), None, "nothing stored");
    store.create_order(&order_record("t_2", "o-4", "REF1"), &[], &[]).await.unwrap();

    // Writes through another tenant reach nothing.
    assert!(!store.set_order_metadata("t_2", "o-1", "{\"x\":\"1\"}", T0 + 1).await.unwrap());
    let foreign = InstructionRecord { tenant_id: "t_2".into(), instruction_id: "i-9".into(), ..ins.clone() };
    assert!(matches!(store.insert_instruction(&foreign).await, Err(StoreError::MissingReference(_))));
    assert!(store.set_order_metadata("t_1", "o-1", "{\"x\":\"1\"}", T0 + 1).await.unwrap());
    assert_eq!(store.order("t_1", "REF1").await.unwrap().unwrap().metadata, "{\"x\":\"1\"}");

    // Update is compare-and-set on the status; VOID only from the listed states.
    use baton_domain::InstructionStatus::*;
    let changed = InstructionRecord { amount_minor: 500, updated_at: T0 + 2, ..ins.clone() };
    assert!(store.update_instruction(&changed, &[Incomplete, Ready]).await.unwrap());
    assert!(!store.change_instruction_status("t_2", "o-1", "i-1", &[Incomplete], Void, T0 + 3).await.unwrap());
    assert!(store
        .change_instruction_status("t_1", "o-1", "i-1", &[Incomplete, Ready, Late], Void, T0 + 3)
        .await
        .unwrap());
    assert!(!store
        .change_instruction_status("t_1", "o-1", "i-1", &[Incomplete, Ready, Late], Void, T0 + 4)
        .await
        .unwrap());
    assert!(!store.update_instruction(&changed, &[Incomplete, Ready]).await.unwrap());
    let stored = store.instruction("t_1", "o-1", "ref-i-1").await.unwrap().unwrap();
    assert_eq!((stored.status, stored.amount_minor), (Void, 500));
}

pub(crate) async fn scenario_order_defaults_resolve_statuses(store: Arc<dyn Store>) {
    use baton_domain::InstructionStatus::*;
    use baton_domain::Source;
    two_tenants(&*store).await;
    store.insert_instrument(&instrument("fi-1", "t_1", "C1", InstrumentType::BankAccount, T0)).await.unwrap();
    store.insert_instrument(&instrument("fi-2", "t_1", "C2", InstrumentType::BankAccount, T0)).await.unwrap();
    let order = order_record("t_1", "o-1", "REF1");
    let inherits = instruction_record("t_1", "o-1", "i-1", "C1");
    let overrides = InstructionRecord {
        scheme_id: Some("s-own".into()),
        scheme_source: Source::Tenant,
        financial_instrument_id: Some("fi-1".into()),
        instrument_source: Source::Tenant,
        ..instruction_record("t_1", "o-1", "i-2", "C1")
    };
    let frozen = instruction_record("t_1", "o-1", "i-3", "C1");
    // The instructions pay out (CREDIT): their schemes are payout schemes.
    for id in ["s-own", "s-default"] {
        store
            .create_scheme(
                &scheme("t_1", id, SchemeKind::Payout),
                &draft("t_1", id, &format!("d-{id}"), "V1", &[], &[]),
            )
            .await
            .unwrap();
    }
    let defaults = [default_record("o-1", "C1", Some("fi-1"), Some("s-default"))];
    store.create_order(&order, &defaults, &[inherits, overrides, frozen]).await.unwrap();
    let status = |list: &[InstructionRecord]| list.iter().map(|i| i.status).collect::<Vec<_>>();
    assert_eq!(status(&store.order_instructions("t_1", "o-1").await.unwrap()), [Ready, Ready, Ready]);

    // Voiding freezes what it inherited, with the source and merged metadata.
    assert!(store.change_instruction_status("t_1", "o-1", "i-3", &[Incomplete, Ready], Void, T0 + 1).await.unwrap());
    let voided = store.instruction("t_1", "o-1", "ref-i-3").await.unwrap().unwrap();
    assert_eq!(voided.financial_instrument_id.as_deref(), Some("fi-1"));
    assert_eq!((voided.instrument_source, voided.scheme_source), (Source::CustomerDefault, Source::CustomerDefault));
    assert_eq!(voided.metadata, "{\"a\":\"1\",\"b\":\"9\"}");

    // Clearing the default scheme: only the inheriting, unprocessed instruction changes.
    let change = DefaultChange::Scheme(None, Source::None);
    assert!(store.update_customer_default("t_1", "o-1", "C1", &change, T0 + 2).await.unwrap());
    assert_eq!(status(&store.order_instructions("t_1", "o-1").await.unwrap()), [Incomplete, Ready, Void]);
    assert!(!store.update_customer_default("t_2", "o-1", "C1", &change, T0 + 2).await.unwrap());
    assert!(!store.update_customer_default("t_1", "o-1", "C9", &change, T0 + 2).await.unwrap());

    // An FI of another customer never counts as ACTIVE for this one.
    let other_fi = [default_record("o-1", "C1", Some("fi-2"), Some("s-default"))];
    assert!(store.put_customer_defaults("t_1", "o-1", &other_fi, T0 + 3).await.unwrap());
    assert_eq!(status(&store.order_instructions("t_1", "o-1").await.unwrap()), [Incomplete, Ready, Void]);
    assert!(store.put_customer_defaults("t_1", "o-1", &defaults, T0 + 4).await.unwrap());
    assert_eq!(status(&store.order_instructions("t_1", "o-1").await.unwrap()), [Ready, Ready, Void]);
    assert_eq!(store.customer_defaults("t_1", "o-1").await.unwrap(), defaults);
    assert!(store.customer_defaults("t_2", "o-1").await.unwrap().is_empty());
    assert!(!store.put_customer_defaults("t_2", "o-1", &defaults, T0 + 4).await.unwrap());

    // Deleting a default is refused while a live instruction of the customer exists.
    assert!(matches!(store.delete_customer_default("t_1", "o-1", "C1", T0 + 5).await, Err(StoreError::InUse(_))));
    for id in ["i-1", "i-2"] {
        assert!(store.change_instruction_status("t_1", "o-1", id, &[Incomplete, Ready], Void, T0 + 5).await.unwrap());
    }
    assert!(!store.delete_customer_default("t_2", "o-1", "C1", T0 + 6).await.unwrap());
    assert!(store.delete_customer_default("t_1", "o-1", "C1", T0 + 6).await.unwrap());
    assert!(!store.delete_customer_default("t_1", "o-1", "C1", T0 + 6).await.unwrap());
}

/// An instruction is READY only with a scheme that routes its direction: a collect
/// scheme (own or inherited) leaves a CREDIT instruction INCOMPLETE.
pub(crate) async fn scenario_order_scheme_kind_must_fit(store: Arc<dyn Store>) {
    use baton_domain::InstructionStatus::*;
    use baton_domain::Source;
    two_tenants(&*store).await;
    store.insert_instrument(&instrument("fi-1", "t_1", "C1", InstrumentType::BankAccount, T0)).await.unwrap();
    store
        .create_scheme(
            &scheme("t_1", "s-collect", SchemeKind::Collect),
            &draft("t_1", "s-collect", "d-c", "V1", &[], &[]),
        )
        .await
        .unwrap();
    store
        .create_scheme(&scheme("t_1", "s-payout", SchemeKind::Payout), &draft("t_1", "s-payout", "d-p", "V1", &[], &[]))
        .await
        .unwrap();
    let with_scheme = |id: &str, scheme: &str| InstructionRecord {
        scheme_id: Some(scheme.into()),
        scheme_source: Source::Tenant,
        financial_instrument_id: Some("fi-1".into()),
        instrument_source: Source::Tenant,
        ..instruction_record("t_1", "o-1", id, "C1")
    };
    let inherits = InstructionRecord {
        financial_instrument_id: Some("fi-1".into()),
        instrument_source: Source::Tenant,
        ..instruction_record("t_1", "o-1", "i-3", "C1")
    };
    let defaults = [default_record("o-1", "C1", None, Some("s-collect"))];
    store
        .create_order(
            &order_record("t_1", "o-1", "REF1"),
            &defaults,
            &[with_scheme("i-1", "s-collect"), with_scheme("i-2", "s-payout"), inherits],
        )
        .await
        .unwrap();
    let statuses: Vec<_> = store.order_instructions("t_1", "o-1").await.unwrap().iter().map(|i| i.status).collect();
    assert_eq!(statuses, [Incomplete, Ready, Incomplete], "only the payout scheme fits a CREDIT instruction");
}

pub(crate) type NewOrder = (OrderRecord, Vec<CustomerDefaultRecord>, Vec<InstructionRecord>);

/// An order of customer C1 with three CREDIT instructions, created at `T0 + n`; in t_1
/// with a default (the active FI "fi-1", the payout scheme "s-payout") when `default`.
pub(crate) fn racing_order(tenant: &str, id: &str, order_ref: &str, n: i64, default: bool) -> NewOrder {
    let at = T0 + n;
    let instructions =
        (0..3).map(|k| instruction_at(tenant, id, &format!("i-{id}-{order_ref}-{k}"), "C1", at)).collect();
    let defaults = if default {
        vec![CustomerDefaultRecord { updated_at: at, ..default_record(id, "C1", Some("fi-1"), Some("s-payout")) }]
    } else {
        Vec::new()
    };
    (order_at(tenant, id, order_ref, at), defaults, instructions)
}

/// Creates all `orders` at once and returns each caller's result.
pub(crate) async fn create_racing(store: &Arc<dyn Store>, orders: &[NewOrder]) -> Vec<Option<String>> {
    let results = race(orders.len(), |i| {
        let store = store.clone();
        let (order, defaults, instructions) = orders[i].clone();
        async move { store.create_order(&order, &defaults, &instructions).await }
    })
    .await;
    results
        .into_iter()
        .enumerate()
        .map(|(i, r)| match r {
            Ok(()) => None,
            Err(StoreError::Conflict(name)) => Some(name),
            Err(other) => panic!("order {i}: unexpected {other:?}"),
        })
        .collect()
}

/// The order is stored whole: its defaults, and its instructions with resolved statuses.
pub(crate) async fn assert_stored(store: &dyn Store, (order, defaults, instructions): &NewOrder) {
    let status = if defaults.is_empty() {
        baton_domain::InstructionStatus::Incomplete
    } else {
        baton_domain::InstructionStatus::Ready
    };
    let expected: Vec<_> = instructions.iter().map(|r| InstructionRecord { status, ..r.clone() }).collect();
    assert_eq!(store.order(&order.tenant_id, &order.order_ref).await.unwrap().as_ref(), Some(order));
    assert_eq!(&store.customer_defaults(&order.tenant_id, &order.order_id).await.unwrap(), defaults);
    assert_eq!(store.order_instructions(&order.tenant_id, &order.order_id).await.unwrap(), expected, "{order:?}");
}

/// Announces each new instruction with an event naming its status as stored.
pub(crate) fn announce_created() -> baton_store::Announcement {
    Arc::new(|i: &InstructionRecord| {
        Ok(baton_store::EventRecord {
            event_id: format!("created-{}", i.instruction_id),
            account_id: None,
            tenant_id: Some(i.tenant_id.clone()),
            event_type: baton_domain::EventType::InstructionCreated,
            ordering_key: Some(i.instruction_id.clone()),
            data: serde_json::json!({ "status": i.status.as_str() }).to_string(),
            created_at: i.created_at,
        })
    })
}

/// The `instruction.created` events in the outbox: (instruction, status announced).
pub(crate) async fn created_events(store: &dyn Store, tenant_id: &str) -> Vec<(String, String)> {
    let events = store.events(tenant_id).await.unwrap();
    events
        .into_iter()
        .filter(|e| e.event.event_type == baton_domain::EventType::InstructionCreated)
        .map(|e| {
            let data: serde_json::Value = serde_json::from_str(&e.event.data).unwrap();
            (e.event.ordering_key.unwrap(), data["status"].as_str().unwrap().to_string())
        })
        .collect()
}

/// New instructions are announced in the transaction that creates them, with the status
/// they are stored with; a refused write announces nothing.
pub(crate) async fn scenario_orders_announced(store: Arc<dyn Store>) {
    use baton_domain::InstructionStatus::*;
    two_tenants(&*store).await;
    store.insert_instrument(&instrument("fi-1", "t_1", "C1", InstrumentType::BankAccount, T0)).await.unwrap();
    store
        .create_scheme(&scheme("t_1", "s-payout", SchemeKind::Payout), &draft("t_1", "s-payout", "d-p", "V1", &[], &[]))
        .await
        .unwrap();
    let order = order_record("t_1", "o-1", "REF1");
    let defaults = [default_record("o-1", "C1", Some("fi-1"), Some("s-payout"))];
    let ready = instruction_record("t_1", "o-1", "i-1", "C1");
    let incomplete = instruction_record("t_1", "o-1", "i-2", "C2");
    let stored =
        store.create_order_announced(&order, &defaults, &[ready, incomplete], Some(announce_created())).await.unwrap();
    assert_eq!(stored.iter().map(|i| i.status).collect::<Vec<_>>(), [Ready, Incomplete]);
    assert_eq!(stored, store.order_instructions("t_1", "o-1").await.unwrap(), "returned as stored");
    let announced = [("i-1".to_string(), "READY".to_string()), ("i-2".to_string(), "INCOMPLETE".to_string())];
    assert_eq!(created_events(&*store, "t_1").await, announced);

    // A refused order announces nothing.
    let taken = order_record("t_1", "o-2", "REF1");
    let again = instruction_record("t_1", "o-2", "i-3", "C1");
    let refused = store.create_order_announced(&taken, &[], &[again], Some(announce_created())).await;
    assert!(matches!(refused, Err(StoreError::Conflict(_))), "{refused:?}");
    assert_eq!(created_events(&*store, "t_1").await, announced);

    // An instruction added to the order is announced too, with its resolved status.
    let added = instruction_record("t_1", "o-1", "i-4", "C1");
    let stored = store.insert_instruction_announced(&added, Some(announce_created())).await.unwrap();
    assert_eq!(stored.status, Ready);
    assert_eq!(Some(stored), store.instruction("t_1", "o-1", "ref-i-4").await.unwrap());
    assert_eq!(created_events(&*store, "t_1").await.last(), Some(&("i-4".to_string(), "READY".to_string())));
    let duplicate = InstructionRecord { instruction_id: "i-5".into(), ..added };
    assert!(store.insert_instruction_announced(&duplicate, Some(announce_created())).await.is_err());
    assert_eq!(created_events(&*store, "t_1").await.len(), 3);
    // Without an announcement, nothing is announced.
    store
        .create_order(&order_record("t_1", "o-3", "REF3"), &[], &[instruction_record("t_1", "o-3", "i-6", "C1")])
        .await
        .unwrap();
    assert_eq!(created_events(&*store, "t_1").await.len(), 3);
}

/// Orders created at once (on SQLite, in one group) are each announced once, with their
/// own statuses; the refused one not at all.
pub(crate) async fn scenario_orders_announced_concurrent(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    store.insert_instrument(&instrument("fi-1", "t_1", "C1", InstrumentType::BankAccount, T0)).await.unwrap();
    store
        .create_scheme(&scheme("t_1", "s-payout", SchemeKind::Payout), &draft("t_1", "s-payout", "d-p", "V1", &[], &[]))
        .await
        .unwrap();
    // Order 0 and 1 want the same ref; the even ones have a default (READY), the odd ones not.
    let orders: Vec<NewOrder> = (0..6)
        .map(|i| {
            let order_ref = if i == 1 { "R00".to_string() } else { format!("R{i:02}") };
            racing_order("t_1", &format!("o-{i}"), &order_ref, i as i64, i % 2 == 0)
        })
        .collect();
    let results = race(orders.len(), |i| {
        let store = store.clone();
        let (order, defaults, instructions) = orders[i].clone();
        async move { store.create_order_announced(&order, &defaults, &instructions, Some(announce_created())).await }
    })
    .await;
    let refused: Vec<usize> = (0..6).filter(|&i| results[i].is_err()).collect();
    assert!(refused == [0] || refused == [1], "exactly one of orders 0 and 1 is refused: {results:?}");
    let created = created_events(&*store, "t_1").await;
    assert_eq!(created.len(), 5 * 3, "three instructions for each written order: {created:?}");
    for (i, (order, _, instructions)) in orders.iter().enumerate() {
        let announced: Vec<&(String, String)> =
            created.iter().filter(|(id, _)| instructions.iter().any(|r| &r.instruction_id == id)).collect();
        if refused.contains(&i) {
            assert!(announced.is_empty(), "order {i}");
            continue;
        }
        let stored = store.order_instructions("t_1", &order.order_id).await.unwrap();
        assert_eq!(results[i].as_ref().unwrap(), &stored, "order {i} is returned as stored");
        let expected: Vec<(String, String)> =
            stored.iter().map(|r| (r.instruction_id.clone(), r.status.as_str().to_string())).collect();
        assert_eq!(announced.into_iter().cloned().collect::<Vec<_>>(), expected, "order {i}");
    }
}

/// Many orders created at once (on SQLite, committed together in one transaction):
/// every caller gets the result it would have had alone, and a refused order leaves
/// nothing behind, nor does it change the order it collided with.
pub(crate) async fn scenario_orders_concurrent(store: Arc<dyn Store>) {
    let conflict = || Some("orders_ref_unique".to_string());
    two_tenants(&*store).await;
    store.insert_instrument(&instrument("fi-1", "t_1", "C1", InstrumentType::BankAccount, T0)).await.unwrap();
    store
        .create_scheme(&scheme("t_1", "s-payout", SchemeKind::Payout), &draft("t_1", "s-payout", "d-p", "V1", &[], &[]))
        .await
        .unwrap();
    let taken = racing_order("t_1", "o-taken", "TAKEN", 0, true);
    store.create_order(&taken.0, &taken.1, &taken.2).await.unwrap();

    // Orders 0 and 1 want the same ref, 2 a taken one, 3 that ref in another tenant, 4
    // and 5 the same order id; the rest are plain. Even ones of t_1 carry a default.
    let orders: Vec<NewOrder> = (0..24)
        .map(|i| {
            let id = if i == 5 { "o-04".to_string() } else { format!("o-{i:02}") };
            let (tenant, order_ref) = match i {
                0 | 1 => ("t_1", "SAME".to_string()),
                2 => ("t_1", "TAKEN".to_string()),
                3 => ("t_2", "TAKEN".to_string()),
                _ => ("t_1", format!("R{i:02}")),
            };
            racing_order(tenant, &id, &order_ref, i, i % 2 == 0 && tenant == "t_1")
        })
        .collect();
    let results = create_racing(&store, &orders).await;
    let winner = |a: usize, b: usize| match (&results[a], &results[b]) {
        (None, c) if *c == conflict() => (a, b),
        (c, None) if *c == conflict() => (b, a),
        other => panic!("of orders {a} and {b} exactly one must be refused: {other:?}"),
    };
    let (same_ref, same_ref_loser) = winner(0, 1);
    let (same_id, same_id_loser) = winner(4, 5);
    assert_eq!(results[2], conflict(), "the ref is taken in t_1");
    for i in (0..24).filter(|&i| ![2, same_ref_loser, same_id_loser].contains(&i)) {
        assert_eq!(results[i], None, "order {i}");
        assert_stored(&*store, &orders[i]).await;
    }
    // The refused ones left nothing, and the orders they collided with are unchanged.
    assert_stored(&*store, &taken).await;
    assert_stored(&*store, &orders[same_ref]).await;
    assert_stored(&*store, &orders[same_id]).await;
    let loser = &orders[same_ref_loser].0;
    assert!(store.order_instructions("t_1", &loser.order_id).await.unwrap().is_empty());
    assert!(store.customer_defaults("t_1", &loser.order_id).await.unwrap().is_empty());
    assert_eq!(store.order("t_1", &orders[same_id_loser].0.order_ref).await.unwrap(), None);

    // A repeated instruction ref fails that order alone; a ref taken just before is
    // refused; the orders racing with them are written.
    let mut more: Vec<NewOrder> =
        (0..8).map(|i| racing_order("t_1", &format!("p-{i}"), &format!("P{i}"), 30 + i, i % 2 == 0)).collect();
    more[0].2[2].instruction_ref = more[0].2[0].instruction_ref.clone();
    more[1].0.order_ref = "SAME".into();
    let results = create_racing(&store, &more).await;
    assert_eq!(results[0].as_deref(), Some("instructions_ref_unique"));
    assert_eq!(results[1], conflict());
    assert_eq!(store.order("t_1", "P0").await.unwrap(), None);
    for id in ["p-0", "p-1"] {
        assert!(store.order_instructions("t_1", id).await.unwrap().is_empty());
        assert!(store.customer_defaults("t_1", id).await.unwrap().is_empty());
    }
    assert_stored(&*store, &orders[same_ref]).await;
    for (i, order) in more.iter().enumerate().skip(2) {
        assert_eq!(results[i], None, "order {i}");
        assert_stored(&*store, order).await;
    }

    // Once the store is closed, every caller gets an error; none is left waiting.
    store.close().await;
    let last: Vec<NewOrder> =
        (0..4).map(|i| racing_order("t_1", &format!("z-{i}"), &format!("Z{i}"), 40 + i, false)).collect();
    let results = race(last.len(), |i| {
        let store = store.clone();
        let (order, defaults, instructions) = last[i].clone();
        async move { store.create_order(&order, &defaults, &instructions).await }
    })
    .await;
    for (i, result) in results.iter().enumerate() {
        assert!(matches!(result, Err(StoreError::Database(_))), "order {i}: {result:?}");
    }
}

// Order and instruction listings --------------------------------------------------------

pub(crate) fn order_at(tenant_id: &str, order_id: &str, order_ref: &str, at: i64) -> OrderRecord {
    OrderRecord { created_at: at, updated_at: at, ..order_record(tenant_id, order_id, order_ref) }
}

pub(crate) fn instruction_at(tenant_id: &str, order_id: &str, id: &str, customer: &str, at: i64) -> InstructionRecord {
    InstructionRecord { created_at: at, updated_at: at, ..instruction_record(tenant_id, order_id, id, customer) }
}

pub(crate) async fn instruction_ids(store: &dyn Store, tenant_id: &str, filter: &InstructionFilter) -> Vec<String> {
    let listed = store.list_instructions(tenant_id, filter, None, 100).await.unwrap();
    listed.into_iter().map(|l| l.instruction.instruction_id).collect()
}

pub(crate) async fn order_ids(store: &dyn Store, tenant_id: &str, filter: &OrderFilter) -> Vec<String> {
    let listed = store.list_orders(tenant_id, filter, None, 100).await.unwrap();
    listed.into_iter().map(|o| o.order_id).collect()
}

/// Every filter of both listings, the `(created_at, id)` order (ties by id), limits,
/// keyset positions and tenant isolation.
pub(crate) async fn scenario_order_listing_filters(store: Arc<dyn Store>) {
    use baton_domain::Direction::{Credit, Debit};
    use baton_domain::InstructionStatus::*;
    two_tenants(&*store).await;
    let s = &*store;
    let i01 = instruction_at("t_1", "o01", "i01", "C1", T0);
    let i02 = InstructionRecord {
        direction: Debit,
        currency: "USD".into(),
        settled_by_date: None,
        status: Void,
        ..instruction_at("t_1", "o01", "i02", "C2", T0 + 10)
    };
    let i03 = InstructionRecord {
        direction: Debit,
        settled_by_date: Some("2021-01-15".into()),
        ..instruction_at("t_1", "o02", "i03", "C1", T0 + 10)
    };
    let i04 = InstructionRecord {
        currency: "GBP".into(),
        settled_by_date: Some("2021-02-01".into()),
        status: Settled,
        ..instruction_at("t_1", "o02", "i04", "C3", T0 + 20)
    };
    let c9 = default_record("o01", "C9", None, None);
    s.create_order(&order_at("t_1", "o01", "A", T0), std::slice::from_ref(&c9), &[i01.clone(), i02]).await.unwrap();
    // o02 and o03 share their creation time: ordered by id.
    s.create_order(&order_at("t_1", "o03", "C", T0 + 5), &[], &[]).await.unwrap();
    s.create_order(&order_at("t_1", "o02", "B", T0 + 5), &[], &[i04, i03]).await.unwrap();
    s.create_order(&order_at("t_2", "o04", "A", T0), &[], &[instruction_at("t_2", "o04", "i05", "C1", T0)])
        .await
        .unwrap();

    // Instructions: everything of the tenant, by (created_at, id), with the order ref.
    let all = s.list_instructions("t_1", &InstructionFilter::default(), None, 100).await.unwrap();
    let listed: Vec<(&str, &str)> =
        all.iter().map(|l| (l.order_ref.as_str(), l.instruction.instruction_id.as_str())).collect();
    assert_eq!(listed, [("A", "i01"), ("A", "i02"), ("B", "i03"), ("B", "i04")]);
    assert_eq!(all[0], ListedInstruction { order_ref: "A".into(), instruction: i01 });
    assert_eq!(instruction_ids(s, "t_2", &InstructionFilter::default()).await, ["i05"]);
    assert!(instruction_ids(s, "t_3", &InstructionFilter::default()).await.is_empty());

    let f = InstructionFilter::default;
    let check = |filter: InstructionFilter, expected: &'static [&'static str]| async move {
        assert_eq!(instruction_ids(s, "t_1", &filter).await, expected, "{filter:?}");
    };
    check(InstructionFilter { statuses: vec![Void, Settled], ..f() }, &["i02", "i04"]).await;
    check(InstructionFilter { statuses: vec![Incomplete], ..f() }, &["i01", "i03"]).await;
    check(InstructionFilter { statuses: vec![Processing], ..f() }, &[]).await;
    check(InstructionFilter { customer_ref: Some("C1".into()), ..f() }, &["i01", "i03"]).await;
    check(InstructionFilter { customer_ref: Some("C9".into()), ..f() }, &[]).await;
    check(InstructionFilter { direction: Some(Debit), ..f() }, &["i02", "i03"]).await;
    check(InstructionFilter { direction: Some(Credit), ..f() }, &["i01", "i04"]).await;
    check(InstructionFilter { currency: Some("EUR".into()), ..f() }, &["i01", "i03"]).await;
    check(InstructionFilter { created_from: Some(T0 + 10), ..f() }, &["i02", "i03", "i04"]).await;
    check(InstructionFilter { created_before: Some(T0 + 10), ..f() }, &["i01"]).await;
    check(InstructionFilter { created_from: Some(T0 + 10), created_before: Some(T0 + 20), ..f() }, &["i02", "i03"])
        .await;
    // Settle-by bounds are inclusive; an instruction without a date never matches one.
    check(InstructionFilter { settled_by_from: Some("2021-01-01".into()), ..f() }, &["i03", "i04"]).await;
    check(InstructionFilter { settled_by_to: Some("2021-01-15".into()), ..f() }, &["i01", "i03"]).await;
    let day = Some("2021-01-15".to_string());
    check(InstructionFilter { settled_by_from: day.clone(), settled_by_to: day, ..f() }, &["i03"]).await;
    check(InstructionFilter { customer_ref: Some("C1".into()), direction: Some(Debit), ..f() }, &["i03"]).await;
    let other = InstructionFilter { customer_ref: Some("C1".into()), ..f() };
    assert_eq!(instruction_ids(s, "t_2", &other).await, ["i05"]);

    // Limits and keyset positions (ties at T0 + 10 broken by id).
    let page = s.list_instructions("t_1", &f(), None, 2).await.unwrap();
    assert_eq!(page.iter().map(|l| l.instruction.instruction_id.as_str()).collect::<Vec<_>>(), ["i01", "i02"]);
    let after = Keyset { created_at: T0 + 10, id: "i02".into() };
    let page = s.list_instructions("t_1", &f(), Some(&after), 2).await.unwrap();
    assert_eq!(page.iter().map(|l| l.instruction.instruction_id.as_str()).collect::<Vec<_>>(), ["i03", "i04"]);
    let after = Keyset { created_at: T0 + 20, id: "i04".into() };
    assert!(s.list_instructions("t_1", &f(), Some(&after), 2).await.unwrap().is_empty());

    // Orders: by (created_at, id); `customerRef` matches instructions or defaults.
    let o = OrderFilter::default;
    assert_eq!(order_ids(s, "t_1", &o()).await, ["o01", "o02", "o03"]);
    assert_eq!(order_ids(s, "t_2", &o()).await, ["o04"]);
    let by_customer = |c: &str| OrderFilter { customer_ref: Some(c.into()), ..o() };
    assert_eq!(order_ids(s, "t_1", &by_customer("C1")).await, ["o01", "o02"]);
    assert_eq!(order_ids(s, "t_1", &by_customer("C9")).await, ["o01"], "a customer default alone counts");
    assert_eq!(order_ids(s, "t_1", &by_customer("C3")).await, ["o02"]);
    assert!(order_ids(s, "t_1", &by_customer("C5")).await.is_empty());
    assert!(order_ids(s, "t_2", &by_customer("C9")).await.is_empty());
    assert_eq!(order_ids(s, "t_1", &OrderFilter { created_from: Some(T0 + 5), ..o() }).await, ["o02", "o03"]);
    assert_eq!(order_ids(s, "t_1", &OrderFilter { created_before: Some(T0 + 5), ..o() }).await, ["o01"]);
    let first = s.list_orders("t_1", &o(), None, 2).await.unwrap();
    assert_eq!(first, [order_at("t_1", "o01", "A", T0), order_at("t_1", "o02", "B", T0 + 5)]);
    let after = Keyset { created_at: T0 + 5, id: "o02".into() };
    let rest = s.list_orders("t_1", &o(), Some(&after), 2).await.unwrap();
    assert_eq!(rest.iter().map(|r| r.order_id.as_str()).collect::<Vec<_>>(), ["o03"]);

    // Defaults of several orders in one query, only the tenant's.
    let ids = ["o01".to_string(), "o02".to_string(), "o04".to_string()];
    assert_eq!(s.customer_defaults_of_orders("t_1", &ids).await.unwrap(), [c9]);
    assert!(s.customer_defaults_of_orders("t_2", &ids).await.unwrap().is_empty());
    assert!(s.customer_defaults_of_orders("t_1", &[]).await.unwrap().is_empty());
}

/// Walks both listings page by page while rows are inserted between pages: later rows,
/// rows tied with the last position handed out, rows created "in the past" (a slow
/// writer) and other tenants' rows. Every row that existed before the walk is seen
/// exactly once and in order; nothing is seen twice.
pub(crate) async fn scenario_order_listing_pages_with_inserts(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    let s = &*store;
    // Ten instructions, two per creation time; seven orders, some sharing a time.
    let originals: Vec<InstructionRecord> =
        (0..10).map(|k| instruction_at("t_1", "o00", &format!("i{k:02}"), "C1", T0 + (k / 2) * 10)).collect();
    s.create_order(&order_at("t_1", "o00", "R00", T0), &[], &originals).await.unwrap();
    for k in 1..7 {
        s.create_order(&order_at("t_1", &format!("o{k:02}"), &format!("R{k:02}"), T0 + k / 2), &[], &[]).await.unwrap();
    }
    s.create_order(&order_at("t_2", "x00", "X00", T0), &[], &[]).await.unwrap();

    // Instructions, three per page.
    let mut seen: Vec<(i64, String)> = Vec::new();
    let mut after: Option<Keyset> = None;
    let mut round = 0;
    loop {
        let page = s.list_instructions("t_1", &InstructionFilter::default(), after.as_ref(), 3).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(Keyset { created_at: last.instruction.created_at, id: last.instruction.instruction_id.clone() });
        seen.extend(page.iter().map(|l| (l.instruction.created_at, l.instruction.instruction_id.clone())));
        let k = after.as_ref().unwrap();
        round += 1;
        // Tied with the position (sorts after it), in the past, later, and another tenant's.
        for (id, at) in [
            (format!("{}t{round}", k.id), k.created_at),
            (format!("p{round}"), T0 - 1),
            (format!("z{round}"), T0 + 1_000),
        ] {
            if round <= 3 {
                s.insert_instruction(&instruction_at("t_1", "o00", &id, "C1", at)).await.unwrap();
            }
        }
        if round == 1 {
            s.insert_instruction(&instruction_at("t_2", "x00", "i99", "C1", T0 + 15)).await.unwrap();
        }
        assert!(round < 50, "the walk ends");
    }
    let ids: Vec<&str> = seen.iter().map(|(_, id)| id.as_str()).collect();
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "strictly increasing (created_at, id): no duplicates, in order: {ids:?}");
    for original in &originals {
        assert!(ids.contains(&original.instruction_id.as_str()), "{} skipped: {ids:?}", original.instruction_id);
    }
    assert!(!ids.iter().any(|id| id.starts_with('p')), "rows before the position stay behind it");
    assert!(!ids.contains(&"i99"), "another tenant's rows never appear");
    assert!(ids.contains(&"z1") && ids.contains(&"i02t1"), "rows after the position are reached: {ids:?}");

    // Orders, two per page, with the same kinds of inserts between pages.
    let mut seen: Vec<(i64, String)> = Vec::new();
    let mut after: Option<Keyset> = None;
    let mut round = 0;
    loop {
        let page = s.list_orders("t_1", &OrderFilter::default(), after.as_ref(), 2).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(Keyset { created_at: last.created_at, id: last.order_id.clone() });
        seen.extend(page.iter().map(|o| (o.created_at, o.order_id.clone())));
        let k = after.as_ref().unwrap();
        round += 1;
        if round <= 3 {
            for (id, at) in
                [(format!("{}t", k.id), k.created_at), (format!("p{round}"), T0 - 1), (format!("z{round}"), T0 + 1_000)]
            {
                s.create_order(&order_at("t_1", &id, &format!("N-{id}"), at), &[], &[]).await.unwrap();
            }
            s.create_order(&order_at("t_2", &format!("x{round}"), &format!("X{round}"), T0 + 2), &[], &[])
                .await
                .unwrap();
        }
        assert!(round < 50, "the walk ends");
    }
    let ids: Vec<&str> = seen.iter().map(|(_, id)| id.as_str()).collect();
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "strictly increasing (created_at, id): no duplicates, in order: {ids:?}");
    for k in 0..7 {
        assert!(ids.contains(&format!("o{k:02}").as_str()), "o{k:02} skipped: {ids:?}");
    }
    assert!(!ids.iter().any(|id| id.starts_with('p') || id.starts_with('x')), "{ids:?}");
    assert!(ids.contains(&"z1") && ids.contains(&"o01t"), "{ids:?}");
}
