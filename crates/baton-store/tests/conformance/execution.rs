//! Conformance scenarios: execution: change lists, starts, jobs, node heartbeats.

use super::*;

conformance! {
    scenario_apply_is_all_or_nothing => sqlite_apply_is_all_or_nothing, postgres_apply_is_all_or_nothing;
    scenario_apply_event_runs => sqlite_apply_event_runs, postgres_apply_event_runs;
    // On one thread every racer has queued its changes before SQLite's group writer
    // runs: they meet in one group. On two threads groups form as they happen.
    scenario_apply_concurrent => sqlite_apply_concurrent_one_thread, postgres_apply_concurrent_one_thread;
    scenario_apply_concurrent => sqlite_apply_concurrent, postgres_apply_concurrent
        [flavor = "multi_thread", worker_threads = 2];
    scenario_execution_subject => sqlite_execution_subject, postgres_execution_subject;
    scenario_start_processing => sqlite_start_processing, postgres_start_processing;
    scenario_due_collections_scan => sqlite_due_collections_scan, postgres_due_collections_scan;
    scenario_routing_version => sqlite_routing_version, postgres_routing_version;
    scenario_jobs_are_claimed_once => sqlite_jobs_are_claimed_once, postgres_jobs_are_claimed_once
        [flavor = "multi_thread", worker_threads = 4];
    scenario_job_leases_of_dead_and_live_nodes => sqlite_job_leases_of_dead_and_live_nodes,
        postgres_job_leases_of_dead_and_live_nodes;
    scenario_pending_attempts_of_dead_nodes => sqlite_pending_attempts_of_dead_nodes,
        postgres_pending_attempts_of_dead_nodes;
    scenario_node_heartbeats => sqlite_node_heartbeats, postgres_node_heartbeats;
}

// Execution -------------------------------------------------------------------------------

pub(crate) fn attempt(tenant_id: &str, id: &str) -> baton_store::TransactionRecord {
    baton_store::TransactionRecord {
        transaction_id: id.into(),
        tenant_id: tenant_id.into(),
        order_id: "o-1".into(),
        instruction_id: "i-1".into(),
        customer_ref: "C1".into(),
        financial_instrument_id: None,
        app_id: "SANDBOX_CARD".into(),
        payment_method: Some("VISA".into()),
        operation: baton_domain::Operation::Credit,
        transaction_type: baton_domain::TransactionType::Mit,
        attempt: 1,
        amount_minor: 21000,
        currency: "EUR".into(),
        status: baton_domain::TransactionStatus::Pending,
        idempotency_key: format!("key-{id}"),
        provider_reference: None,
        decline_category: None,
        error_code: None,
        psp_code: None,
        psp_message: None,
        connector_ms: None,
        reward_id: None,
        result_sealed: None,
        created_at: T0,
        updated_at: T0,
        finished_at: None,
        node_id: None,
    }
}

pub(crate) fn event(tenant_id: &str, id: &str, event_type: baton_domain::EventType) -> baton_store::EventRecord {
    baton_store::EventRecord {
        event_id: id.into(),
        account_id: None,
        tenant_id: Some(tenant_id.into()),
        event_type,
        ordering_key: Some("i-1".into()),
        data: "{}".into(),
        created_at: T0,
    }
}

pub(crate) async fn scenario_apply_is_all_or_nothing(store: Arc<dyn Store>) {
    use baton_domain::{EventType, InstructionStatus, TransactionStatus};
    use baton_store::{Change, TransactionOutcome};
    two_tenants(&*store).await;
    let order = order_record("t_1", "o-1", "REF1");
    store.create_order(&order, &[], &[instruction_record("t_1", "o-1", "i-1", "C1")]).await.unwrap();
    let to_processing = |from: Vec<InstructionStatus>| Change::InstructionStatus {
        tenant_id: "t_1".into(),
        order_id: "o-1".into(),
        instruction_id: "i-1".into(),
        from,
        to: InstructionStatus::Processing,
    };

    // A guard that does not hold undoes the changes before it.
    let refused = [
        Change::InsertTransaction(Box::new(attempt("t_1", "tx-1"))),
        Change::Event(event("t_1", "ev-1", EventType::InstructionProcessing)),
        to_processing(vec![InstructionStatus::Ready]),
    ];
    assert!(!store.apply(&refused, T0).await.unwrap());
    assert_eq!(store.transaction("t_1", "tx-1").await.unwrap(), None);
    assert!(store.events("t_1").await.unwrap().is_empty());
    assert_eq!(
        store.instruction("t_1", "o-1", "ref-i-1").await.unwrap().unwrap().status,
        InstructionStatus::Incomplete
    );

    // Another tenant's instruction is not reachable either.
    let foreign = [Change::InstructionStatus {
        tenant_id: "t_2".into(),
        order_id: "o-1".into(),
        instruction_id: "i-1".into(),
        from: vec![InstructionStatus::Incomplete],
        to: InstructionStatus::Processing,
    }];
    assert!(!store.apply(&foreign, T0).await.unwrap());

    let accepted = [
        to_processing(vec![InstructionStatus::Incomplete]),
        Change::InsertTransaction(Box::new(attempt("t_1", "tx-1"))),
        Change::Event(event("t_1", "ev-1", EventType::InstructionProcessing)),
    ];
    assert!(store.apply(&accepted, T0 + 1).await.unwrap());
    assert_eq!(store.transaction("t_1", "tx-1").await.unwrap(), Some(attempt("t_1", "tx-1")));
    assert_eq!(store.transaction("t_2", "tx-1").await.unwrap(), None, "another tenant sees nothing");
    let events = store.events("t_1").await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event.account_id.as_deref(), Some(ACCOUNT), "the account comes from the tenant");
    assert_eq!(events[0].dispatched_at, Some(T0), "no endpoint wants it: written dispatched");

    // Outcomes are compare-and-set on the attempt's status: the second one changes nothing.
    let settle = |reference: &str| Change::FinishTransaction {
        tenant_id: "t_1".into(),
        transaction_id: "tx-1".into(),
        from: vec![TransactionStatus::Pending, TransactionStatus::Processing],
        to: TransactionStatus::Settled,
        outcome: TransactionOutcome { provider_reference: Some(reference.into()), ..Default::default() },
    };
    assert!(store.apply(&[settle("ref-a")], T0 + 2).await.unwrap());
    assert!(!store.apply(&[settle("ref-b")], T0 + 3).await.unwrap());
    let settled = store.transaction("t_1", "tx-1").await.unwrap().unwrap();
    assert_eq!((settled.status, settled.provider_reference.as_deref()), (TransactionStatus::Settled, Some("ref-a")));
    assert_eq!(settled.finished_at, Some(T0 + 2));
    assert_eq!(
        store
            .transaction_by_provider_reference("t_1", "SANDBOX_CARD", "ref-a")
            .await
            .unwrap()
            .map(|t| t.transaction_id),
        Some("tx-1".into())
    );
    assert_eq!(store.instruction_transactions("t_1", "i-1").await.unwrap().len(), 1);
}

/// A run of events is written in one statement, in order; an unknown tenant fails it.
pub(crate) async fn scenario_apply_event_runs(store: Arc<dyn Store>) {
    use baton_domain::EventType;
    two_tenants(&*store).await;
    let mut own_account = event("t_1", "ev-2", EventType::InstructionUpdated);
    own_account.account_id = Some(ACCOUNT.into());
    let changes = [
        Change::Event(event("t_1", "ev-1", EventType::InstructionProcessing)),
        Change::Event(own_account),
        Change::Event(event("t_1", "ev-3", EventType::InstructionSettled)),
    ];
    assert!(store.apply(&changes, T0).await.unwrap());
    let events = store.events("t_1").await.unwrap();
    let ids: Vec<&str> = events.iter().map(|e| e.event.event_id.as_str()).collect();
    assert_eq!(ids, ["ev-1", "ev-2", "ev-3"]);
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(events.iter().all(|e| e.event.account_id.as_deref() == Some(ACCOUNT)));

    let unknown = [
        Change::Event(event("t_1", "ev-4", EventType::InstructionProcessing)),
        Change::Event(event("t_missing", "ev-5", EventType::InstructionProcessing)),
    ];
    assert!(matches!(store.apply(&unknown, T0).await, Err(StoreError::Corrupt(_))));
    assert_eq!(store.events("t_1").await.unwrap().len(), 3, "nothing of the failed list is kept");
}

/// READY instructions `i-0`..`i-{n}` of customer C1 in order o-1, paid with `fi-1`.
pub(crate) async fn ready_instructions(store: &dyn Store, n: usize) -> Vec<InstructionRecord> {
    two_tenants(store).await;
    // A customer's instruments are sealed with the customer's key: it exists before them.
    assert!(store.create_customer_key(&customer_key("t_1", "C1", "mk-1", T0)).await.unwrap());
    store.insert_instrument(&instrument("fi-1", "t_1", "C1", InstrumentType::BankAccount, T0)).await.unwrap();
    store
        .create_scheme(&scheme("t_1", "s-1", SchemeKind::Payout), &draft("t_1", "s-1", "d-1", "V1", &[], &[]))
        .await
        .unwrap();
    let records: Vec<InstructionRecord> = (0..n)
        .map(|i| InstructionRecord {
            financial_instrument_id: Some("fi-1".into()),
            instrument_source: baton_domain::Source::Tenant,
            scheme_id: Some("s-1".into()),
            scheme_source: baton_domain::Source::Tenant,
            ..instruction_record("t_1", "o-1", &format!("i-{i}"), "C1")
        })
        .collect();
    store.create_order(&order_record("t_1", "o-1", "REF1"), &[], &records).await.unwrap();
    let stored = store.order_instructions("t_1", "o-1").await.unwrap();
    assert!(stored.iter().all(|i| i.status == baton_domain::InstructionStatus::Ready));
    stored
}

/// Concurrent change lists (and orders) each get the result they would have had alone:
/// SQLite commits them together, and a refused or failing one affects no other.
pub(crate) async fn scenario_apply_concurrent(store: Arc<dyn Store>) {
    use baton_domain::{EventType, InstructionStatus};
    let ready = Arc::new(ready_instructions(&*store, 10).await);
    let start = |seen: &InstructionRecord| Change::StartProcessing { seen: Box::new(seen.clone()), default: None };
    let started = |i: usize| {
        vec![
            start(&ready[i]),
            Change::InsertTransaction(Box::new(attempt("t_1", &format!("tx-{i}")))),
            Change::Event(event("t_1", &format!("ev-{i}"), EventType::InstructionProcessing)),
            Change::Event(event("t_1", &format!("ev-{i}-updated"), EventType::InstructionUpdated)),
        ]
    };

    // Change lists and new orders that all hold: each is applied, with its events.
    let results = race(6, |i| {
        let (store, changes) = (store.clone(), started(i));
        async move {
            if i < 4 {
                store.apply(&changes, T0 + 1).await.map(|applied| applied.to_string())
            } else {
                let order = order_record("t_1", &format!("o-new-{i}"), &format!("NEW-{i}"));
                let instruction = instruction_record("t_1", &format!("o-new-{i}"), &format!("n-{i}"), "C1");
                store.create_order(&order, &[], &[instruction]).await.map(|()| "created".to_string())
            }
        }
    })
    .await;
    let results: Vec<String> = results.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(results, ["true", "true", "true", "true", "created", "created"]);
    for i in 4..6 {
        assert!(store.order("t_1", &format!("NEW-{i}")).await.unwrap().is_some());
    }
    let events: Vec<String> = store.events("t_1").await.unwrap().into_iter().map(|e| e.event.event_id).collect();
    for i in 0..4 {
        let at = events.iter().position(|e| *e == format!("ev-{i}")).expect("its event is written");
        assert_eq!(events.get(at + 1), Some(&format!("ev-{i}-updated")), "a list's events stay in order: {events:?}");
        assert!(store.transaction("t_1", &format!("tx-{i}")).await.unwrap().is_some());
    }

    // A refused list (i-0 is no longer READY), a failing one (its event names no tenant)
    // and the others: each gets its own result, and only its own changes are kept.
    let results = race(6, |i| {
        let store = store.clone();
        let changes = match i {
            0 => started(0),
            1 => vec![start(&ready[5]), Change::Event(event("t_missing", "ev-lost", EventType::InstructionProcessing))],
            _ => started(i + 4),
        };
        async move { store.apply(&changes, T0 + 2).await }
    })
    .await;
    assert!(!results[0].as_ref().unwrap(), "refused: i-0 is no longer READY");
    assert!(matches!(results[1], Err(StoreError::Corrupt(_))), "{:?}", results[1]);
    for (i, result) in results.iter().enumerate().skip(2) {
        assert!(result.as_ref().unwrap(), "change list {i} applies: {result:?}");
    }
    let stored = store.order_instructions("t_1", "o-1").await.unwrap();
    let status = |id: &str| stored.iter().find(|i| i.instruction_id == id).unwrap().status;
    for i in [0, 1, 2, 3, 6, 7, 8, 9] {
        assert_eq!(status(&format!("i-{i}")), InstructionStatus::Processing, "i-{i}");
    }
    assert_eq!(status("i-5"), InstructionStatus::Ready, "nothing of the failed list is kept");
    assert_eq!(status("i-4"), InstructionStatus::Ready);
    let events: Vec<String> = store.events("t_1").await.unwrap().into_iter().map(|e| e.event.event_id).collect();
    assert_eq!(events.len(), 16, "two events for each of the eight applied lists: {events:?}");
    assert!(!events.contains(&"ev-lost".to_string()));
}

pub(crate) async fn scenario_execution_subject(store: Arc<dyn Store>) {
    use baton_domain::InstructionStatus::*;
    two_tenants(&*store).await;
    store.insert_instrument(&instrument("fi-1", "t_1", "C1", InstrumentType::BankAccount, T0)).await.unwrap();
    store.insert_instrument(&instrument("fi-2", "t_1", "C1", InstrumentType::BankAccount, T0)).await.unwrap();
    store
        .create_scheme(&scheme("t_1", "s-1", SchemeKind::Payout), &draft("t_1", "s-1", "d-1", "V1", &[], &[]))
        .await
        .unwrap();
    let key = customer_key("t_1", "C1", MK_OLD, T0);
    assert!(store.create_customer_key(&key).await.unwrap());
    let order = order_record("t_1", "o-1", "REF1");
    let default = default_record("o-1", "C1", Some("fi-1"), Some("s-1"));
    let inherits = instruction_record("t_1", "o-1", "i-1", "C1");
    let own = InstructionRecord {
        financial_instrument_id: Some("fi-2".into()),
        instrument_source: baton_domain::Source::Tenant,
        ..instruction_record("t_1", "o-1", "i-2", "C1")
    };
    store.create_order(&order, std::slice::from_ref(&default), &[inherits, own]).await.unwrap();

    let subject = store.execution_subject("t_1", "REF1", "ref-i-1").await.unwrap().expect("the order exists");
    let stored = store.instruction("t_1", "o-1", "ref-i-1").await.unwrap();
    assert_eq!(subject.order, store.order("t_1", "REF1").await.unwrap().unwrap());
    assert_eq!(subject.instruction, stored);
    assert_eq!(subject.instruction.as_ref().map(|i| i.status), Some(Ready));
    assert_eq!(subject.default, Some(default.clone()));
    assert_eq!(subject.instrument.as_ref().map(|f| f.financial_instrument_id.as_str()), Some("fi-1"), "inherited");
    assert_eq!(subject.instrument, store.instrument("t_1", "C1", "fi-1").await.unwrap());
    assert_eq!(subject.customer_key, Some(key.clone()));
    assert_eq!(subject.routing_version, store.routing_version("t_1").await.unwrap());

    let subject = store.execution_subject("t_1", "REF1", "ref-i-2").await.unwrap().unwrap();
    assert_eq!(subject.instrument.map(|f| f.financial_instrument_id), Some("fi-2".into()), "its own wins");

    // Once frozen, the instruction keeps what it inherited, whatever the default says now.
    assert!(store.change_instruction_status("t_1", "o-1", "i-1", &[Ready], Void, T0 + 1).await.unwrap());
    let other = default_record("o-1", "C1", Some("fi-2"), Some("s-1"));
    assert!(store.put_customer_defaults("t_1", "o-1", &[other], T0 + 2).await.unwrap());
    let subject = store.execution_subject("t_1", "REF1", "ref-i-1").await.unwrap().unwrap();
    assert_eq!(subject.instruction.as_ref().map(|i| i.status), Some(Void));
    assert_eq!(subject.instrument.map(|f| f.financial_instrument_id), Some("fi-1".into()));

    // No such instruction, order or tenant; an erased customer's key is read as shredded.
    let subject = store.execution_subject("t_1", "REF1", "ref-nope").await.unwrap().unwrap();
    assert!(subject.instruction.is_none() && subject.instrument.is_none() && subject.default.is_none());
    assert!(store.execution_subject("t_1", "NOPE", "ref-i-1").await.unwrap().is_none());
    assert!(store.execution_subject("t_2", "REF1", "ref-i-1").await.unwrap().is_none());
    assert!(store.shred_customer_key("t_1", "C1", T0 + 3).await.unwrap());
    let subject = store.execution_subject("t_1", "REF1", "ref-i-2").await.unwrap().unwrap();
    assert_eq!(subject.customer_key.map(|k| k.wrapped_key), Some(None));
}

/// The due-collection scan returns READY debits due by today in a stable order and
/// resumes after a given row, so rows a worker passes over never hide later ones.
pub(crate) async fn scenario_due_collections_scan(store: Arc<dyn Store>) {
    use baton_domain::{Direction, InstructionStatus};
    use baton_store::DuePosition;
    two_tenants(&*store).await;
    store.insert_instrument(&instrument("fi-1", "t_1", "C1", InstrumentType::BankAccount, T0)).await.unwrap();
    for (id, kind) in [("s-1", SchemeKind::Collect), ("s-2", SchemeKind::Payout)] {
        store
            .create_scheme(&scheme("t_1", id, kind), &draft("t_1", id, &format!("d-{id}"), "V1", &[], &[]))
            .await
            .unwrap();
    }
    let due = |id: &str, date: &str, created_at: i64| InstructionRecord {
        direction: Direction::Debit,
        status: InstructionStatus::Ready,
        financial_instrument_id: Some("fi-1".into()),
        instrument_source: baton_domain::Source::Tenant,
        scheme_id: Some("s-1".into()),
        scheme_source: baton_domain::Source::Tenant,
        settled_by_date: Some(date.into()),
        created_at,
        ..instruction_record("t_1", "o-1", id, "C1")
    };
    let rows = vec![
        due("i-c", "2021-01-02", T0),
        due("i-b", "2021-01-01", T0 + 5),
        due("i-a", "2021-01-01", T0 + 5),
        due("i-d", "2021-01-01", T0),
        due("i-later", "2021-01-03", T0),
        InstructionRecord {
            direction: Direction::Credit,
            scheme_id: Some("s-2".into()),
            ..due("i-credit", "2021-01-01", T0)
        },
        InstructionRecord { status: InstructionStatus::Late, ..due("i-late", "2021-01-01", T0) },
        InstructionRecord { settled_by_date: None, ..due("i-undated", "2021-01-01", T0) },
    ];
    store.create_order(&order_record("t_1", "o-1", "REF1"), &[], &rows).await.unwrap();
    let ids = |rows: Vec<InstructionRecord>| rows.into_iter().map(|r| r.instruction_id).collect::<Vec<_>>();
    let today = "2021-01-02";
    let all = store.instructions_due_collection(today, &DuePosition::start(), 10).await.unwrap();
    assert_eq!(ids(all.clone()), ["i-d", "i-a", "i-b", "i-c"], "by date, creation, then id");
    // Page by page, each row once, whatever the page size.
    let mut after = DuePosition::start();
    let mut seen = Vec::new();
    loop {
        let page = store.instructions_due_collection(today, &after, 1).await.unwrap();
        let Some(last) = page.last() else { break };
        after = DuePosition::of(last);
        seen.extend(ids(page));
    }
    assert_eq!(seen, ids(all));
}

/// Starting to process an instruction holds only while everything it was read with
/// still stands; what it inherited is frozen from the rows read.
pub(crate) async fn scenario_start_processing(store: Arc<dyn Store>) {
    use baton_domain::InstructionStatus::*;
    use baton_domain::{InstrumentState, Source};
    two_tenants(&*store).await;
    assert!(store.create_customer_key(&customer_key("t_1", "C1", "mk-1", T0)).await.unwrap());
    for fi in ["fi-1", "fi-2"] {
        store.insert_instrument(&instrument(fi, "t_1", "C1", InstrumentType::BankAccount, T0)).await.unwrap();
    }
    store
        .create_scheme(&scheme("t_1", "s-1", SchemeKind::Payout), &draft("t_1", "s-1", "d-1", "V1", &[], &[]))
        .await
        .unwrap();
    let default = default_record("o-1", "C1", Some("fi-1"), Some("s-1"));
    let instructions: Vec<InstructionRecord> =
        (1..=5).map(|i| instruction_record("t_1", "o-1", &format!("i-{i}"), "C1")).collect();
    store
        .create_order(&order_record("t_1", "o-1", "REF1"), std::slice::from_ref(&default), &instructions)
        .await
        .unwrap();
    let read = |id: &'static str| {
        let store = store.clone();
        async move { store.instruction("t_1", "o-1", &format!("ref-{id}")).await.unwrap().unwrap() }
    };
    let start = |seen: &InstructionRecord, default: Option<&CustomerDefaultRecord>| Change::StartProcessing {
        seen: Box::new(seen.clone()),
        default: default.map(|d| Box::new(d.clone())),
    };

    // As read: it starts, with what it inherited frozen into it.
    let seen = read("i-1").await;
    assert_eq!(seen.status, Ready);
    assert!(store.apply(&[start(&seen, Some(&default))], T0 + 1).await.unwrap());
    let started = read("i-1").await;
    let expected = InstructionRecord { status: Processing, updated_at: T0 + 1, ..seen.frozen(Some(&default)).unwrap() };
    assert_eq!(started, expected);
    assert_eq!(started.financial_instrument_id.as_deref(), Some("fi-1"));
    assert_eq!((started.instrument_source, started.scheme_source), (Source::CustomerDefault, Source::CustomerDefault));
    assert_eq!(started.metadata, "{\"a\":\"1\",\"b\":\"9\"}");
    assert!(!store.apply(&[start(&seen, Some(&default))], T0 + 2).await.unwrap(), "only once");

    // Not if it was read without its default, or changed since it was read.
    let seen = read("i-2").await;
    assert!(!store.apply(&[start(&seen, None)], T0 + 3).await.unwrap(), "the default was there");
    let changed = InstructionRecord { amount_minor: 100, updated_at: T0 + 3, ..seen.clone() };
    assert!(store.update_instruction(&changed, &[Ready]).await.unwrap());
    assert!(!store.apply(&[start(&seen, Some(&default))], T0 + 4).await.unwrap(), "its amount changed");
    assert!(store.apply(&[start(&read("i-2").await, Some(&default))], T0 + 4).await.unwrap());

    // Not if its default changed since it was read.
    let seen = read("i-3").await;
    let moved = default_record("o-1", "C1", Some("fi-2"), Some("s-1"));
    assert!(store.put_customer_defaults("t_1", "o-1", std::slice::from_ref(&moved), T0 + 5).await.unwrap());
    assert!(!store.apply(&[start(&seen, Some(&default))], T0 + 6).await.unwrap(), "another instrument now");
    assert_eq!(read("i-3").await.status, Ready);
    assert!(store.apply(&[start(&seen, Some(&moved))], T0 + 6).await.unwrap());
    assert_eq!(read("i-3").await.financial_instrument_id.as_deref(), Some("fi-2"));

    // Not when the instrument it would be paid with is no longer ACTIVE.
    let seen = read("i-4").await;
    let deactivate = Change::InstrumentState {
        tenant_id: "t_1".into(),
        customer_ref: "C1".into(),
        instrument_id: "fi-2".into(),
        from: InstrumentState::Active,
        to: InstrumentState::Inactive,
        reason: None,
    };
    assert!(store.apply(&[deactivate], T0 + 7).await.unwrap());
    assert!(!store.apply(&[start(&seen, Some(&moved))], T0 + 8).await.unwrap());

    // A LATE instruction was frozen when it became LATE: its default no longer matters.
    assert!(store.change_instruction_status("t_1", "o-1", "i-5", &[Ready, Incomplete], Late, T0 + 9).await.unwrap());
    let late = read("i-5").await;
    assert_eq!(late.financial_instrument_id.as_deref(), Some("fi-2"));
    let reactivate = Change::InstrumentState {
        tenant_id: "t_1".into(),
        customer_ref: "C1".into(),
        instrument_id: "fi-2".into(),
        from: InstrumentState::Inactive,
        to: InstrumentState::Active,
        reason: None,
    };
    assert!(store.apply(&[reactivate], T0 + 10).await.unwrap());
    assert!(store.put_customer_defaults("t_1", "o-1", std::slice::from_ref(&default), T0 + 11).await.unwrap());
    let foreign = InstructionRecord { tenant_id: "t_2".into(), ..late.clone() };
    assert!(!store.apply(&[start(&foreign, None)], T0 + 12).await.unwrap(), "another tenant reaches nothing");
    assert!(store.apply(&[start(&late, Some(&moved))], T0 + 12).await.unwrap());
    assert_eq!(read("i-5").await, InstructionRecord { status: Processing, updated_at: T0 + 12, ..late });

    // Once the customer is erased (their key shredded), nothing of theirs starts.
    let seen = read("i-4").await;
    assert!(store.shred_customer_key("t_1", "C1", T0 + 13).await.unwrap());
    assert!(!store.apply(&[start(&seen, Some(&default))], T0 + 14).await.unwrap(), "an erased customer");
    assert_eq!(read("i-4").await.status, seen.status);
}

/// Every change that can alter routing raises the tenant's routing version, and only its own.
pub(crate) async fn scenario_routing_version(store: Arc<dyn Store>) {
    two_tenants(&*store).await;
    let version = |tenant: &'static str| {
        let store = store.clone();
        async move { store.routing_version(tenant).await.unwrap() }
    };
    assert_eq!((version("t_1").await, version("t_2").await), (0, 0));
    assert_eq!(version("t_missing").await, 0);
    let mut expected = 0;

    store.install_app(ACCOUNT, &app("t_1", "SANDBOX_CARD", true, true), UNLIMITED).await.unwrap();
    expected += 1; // install
    assert_eq!(version("t_1").await, expected);
    assert!(store.configure_app("t_1", "SANDBOX_CARD", "{}", Some(&[1]), T0 + 1).await.unwrap());
    expected += 1; // configure
    assert_eq!(version("t_1").await, expected);
    assert!(!store.configure_app("t_1", "SANDBOX_BANK", "{}", None, T0 + 1).await.unwrap());
    assert_eq!(version("t_1").await, expected, "nothing configured");

    let first = draft("t_1", "s-1", "d-1", "V1", &["SANDBOX_CARD"], &[]);
    store.create_scheme(&scheme("t_1", "s-1", SchemeKind::Collect), &first).await.unwrap();
    store.insert_draft(&draft("t_1", "s-1", "d-2", "V2", &[], &[])).await.unwrap();
    assert!(store.publish_draft("t_1", "s-1", "d-1", T0 + 2).await.unwrap());
    expected += 1; // publish
    assert_eq!(version("t_1").await, expected);
    assert!(!store.publish_draft("t_1", "s-1", "d-missing", T0 + 2).await.unwrap());
    assert!(store.publish_draft("t_1", "s-1", "d-2", T0 + 3).await.unwrap());
    expected += 1; // publish another
    assert_eq!(version("t_1").await, expected);
    assert!(store.delete_draft("t_1", "s-1", "d-1").await.unwrap());
    assert!(store.delete_scheme("t_1", SchemeKind::Collect, "s-1").await.unwrap());
    expected += 1; // delete scheme
    assert_eq!(version("t_1").await, expected);
    assert!(store.uninstall_app("t_1", "SANDBOX_CARD").await.unwrap());
    expected += 1; // uninstall
    assert!(!store.uninstall_app("t_1", "SANDBOX_CARD").await.unwrap());
    assert_eq!(version("t_1").await, expected);
    assert_eq!(version("t_2").await, 0, "the other tenant's version stays");
}

pub(crate) async fn scenario_jobs_are_claimed_once(store: Arc<dyn Store>) {
    use baton_store::{Change, JobRecord};
    two_tenants(&*store).await;
    keep_alive(&*store, LIVE_NODE).await;
    let job = |n: usize| JobRecord {
        job_id: format!("job-{n}"),
        kind: "test".into(),
        subject_id: format!("subject-{n}"),
        tenant_id: Some("t_1".into()),
        payload: "{}".into(),
        run_at: T0 + n as i64,
        attempts: 0,
        last_error: None,
        created_at: T0,
    };
    let jobs: Vec<Change> = (0..20).map(|n| Change::ScheduleJob(job(n))).collect();
    assert!(store.apply(&jobs, T0).await.unwrap());
    // Scheduling the same (kind, subject) again moves the job instead of adding one.
    let mut later = job(19);
    later.job_id = "job-19-again".into();
    later.run_at = T0 + 1_000_000;
    assert!(store.apply(&[Change::ScheduleJob(later)], T0).await.unwrap());
    assert_eq!(store.job("test", "subject-19").await.unwrap().unwrap().run_at, T0 + 1_000_000);

    // Four workers claim at once: each due job goes to exactly one of them.
    let barrier = Arc::new(Barrier::new(4));
    let mut handles = Vec::new();
    for _ in 0..4 {
        let (store, barrier) = (store.clone(), barrier.clone());
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            store.claim_jobs(T0 + 100, T0 + 10_000, 8, claimant(LIVE_NODE, T0 + 100)).await.unwrap()
        }));
    }
    let mut claimed = Vec::new();
    for h in handles {
        claimed.extend(h.await.unwrap().into_iter().map(|j| (j.job_id, j.attempts)));
    }
    claimed.sort();
    let expected: Vec<(String, i64)> = {
        let mut v: Vec<_> = (0..19).map(|n| (format!("job-{n}"), 1)).collect();
        v.sort();
        v
    };
    assert_eq!(claimed, expected, "19 due jobs, each claimed once");

    // Leased jobs are not claimed again until the lease ends; then they are.
    assert!(store.claim_jobs(T0 + 200, T0 + 10_000, 50, claimant(LIVE_NODE, T0 + 200)).await.unwrap().is_empty());
    store.retry_job("job-3", T0 + 300, "boom").await.unwrap();
    let again = store.claim_jobs(T0 + 300, T0 + 20_000, 50, claimant(LIVE_NODE, T0 + 300)).await.unwrap();
    assert_eq!(again.iter().map(|j| (j.job_id.as_str(), j.attempts)).collect::<Vec<_>>(), [("job-3", 2)]);
    assert_eq!(again[0].last_error.as_deref(), Some("boom"));
    let expired = store.claim_jobs(T0 + 10_000, T0 + 30_000, 50, claimant(LIVE_NODE, T0 + 10_000)).await.unwrap();
    assert_eq!(expired.len(), 18, "the others' leases ended");
    assert!(store.apply(&[Change::DeleteJob { job_id: "job-3".into() }], T0).await.unwrap());
    assert_eq!(store.job("test", "subject-3").await.unwrap(), None);
}

pub(crate) async fn scenario_job_leases_of_dead_and_live_nodes(store: Arc<dyn Store>) {
    use baton_store::{Change, JobRecord};
    two_tenants(&*store).await;
    let t = T0;
    let job = JobRecord {
        job_id: "job-1".into(),
        kind: "test".into(),
        subject_id: "subject-1".into(),
        tenant_id: Some("t_1".into()),
        payload: "{}".into(),
        run_at: t,
        attempts: 0,
        last_error: None,
        created_at: t,
    };
    assert!(store.apply(&[Change::ScheduleJob(job)], t).await.unwrap());
    let claim = |node: &'static str, now: i64| {
        let store = store.clone();
        async move {
            let jobs = store.claim_jobs(now, now + 120_000, 10, claimant(node, now)).await.unwrap();
            jobs.into_iter().map(|j| (j.job_id, j.attempts)).collect::<Vec<_>>()
        }
    };
    let job1 = |attempts: i64| vec![("job-1".to_string(), attempts)];
    store.heartbeat("node-a", t, t).await.unwrap();
    store.heartbeat("node-b", t, t).await.unwrap();
    assert_eq!(claim("node-a", t).await, job1(1));
    // While node-a beats, its lease holds until it runs out.
    store.heartbeat("node-a", t, t + 100_000).await.unwrap();
    assert_eq!(claim("node-b", t + 100_000 + LOST_MS).await, []);
    store.heartbeat("node-a", t, t + 119_999).await.unwrap();
    // A lease that ran out is free even if its node lives (it lost track of the job).
    store.heartbeat("node-b", t, t + 120_000).await.unwrap();
    assert_eq!(claim("node-b", t + 120_000).await, job1(2));
    // node-b dies: its lease is taken over LOST_MS after it was last heard from.
    store.heartbeat("node-a", t, t + 120_000 + LOST_MS + 1).await.unwrap();
    assert_eq!(claim("node-a", t + 120_000 + LOST_MS).await, []);
    assert_eq!(claim("node-a", t + 120_000 + LOST_MS + 1).await, job1(3));
}

pub(crate) async fn scenario_pending_attempts_of_dead_nodes(store: Arc<dyn Store>) {
    use baton_domain::TransactionStatus;
    use baton_store::Change;
    two_tenants(&*store).await;
    let order = order_record("t_1", "o-1", "REF1");
    store.create_order(&order, &[], &[instruction_record("t_1", "o-1", "i-1", "C1")]).await.unwrap();
    let of = |id: &str, node: Option<&str>, status: TransactionStatus| {
        let t = baton_store::TransactionRecord { node_id: node.map(String::from), status, ..attempt("t_1", id) };
        Change::InsertTransaction(Box::new(t))
    };
    let changes = [
        of("tx-a", Some("node-a"), TransactionStatus::Pending),
        of("tx-b", Some("node-b"), TransactionStatus::Pending),
        of("tx-older-version", None, TransactionStatus::Pending),
        of("tx-done", Some("node-a"), TransactionStatus::Settled),
    ];
    assert!(store.apply(&changes, T0).await.unwrap());
    let stale = |now: i64| {
        let store = store.clone();
        async move {
            let found = store.stale_pending_transactions(now - 60_000, now - LOST_MS, 10).await.unwrap();
            let mut ids: Vec<String> = found.into_iter().map(|t| t.transaction_id).collect();
            ids.sort();
            ids
        }
    };
    store.heartbeat("node-a", T0, T0).await.unwrap();
    keep_alive(&*store, "node-b").await;
    // A live node's call is its own...
    assert_eq!(stale(T0 + LOST_MS).await, Vec::<String>::new());
    store.heartbeat("node-a", T0, T0 + 20_000).await.unwrap();
    assert_eq!(stale(T0 + 20_000 + LOST_MS).await, Vec::<String>::new());
    // ...a dead node's is synced once the node has been silent for LOST_MS,
    assert_eq!(stale(T0 + 20_000 + LOST_MS + 1).await, ["tx-a"]);
    // and any attempt still PENDING after `stale_after` lost its answer.
    assert_eq!(stale(T0 + 60_001).await, ["tx-a", "tx-b", "tx-older-version"]);
}

pub(crate) async fn scenario_node_heartbeats(store: Arc<dyn Store>) {
    store.heartbeat("node-1", T0, T0).await.unwrap();
    store.heartbeat("node-2", T0, T0 + DAY_MS).await.unwrap();
    // A late write of an older heartbeat does not move a node back.
    store.heartbeat("node-2", T0, T0 + 1).await.unwrap();
    assert_eq!(store.forget_nodes(T0 + 1).await.unwrap(), 1);
    assert_eq!(store.forget_nodes(T0 + 1).await.unwrap(), 0);
    assert_eq!(store.forget_nodes(T0 + DAY_MS).await.unwrap(), 0, "node-2 was heard from at T0 + DAY_MS");
    assert_eq!(store.forget_nodes(T0 + DAY_MS + 1).await.unwrap(), 1);
}
