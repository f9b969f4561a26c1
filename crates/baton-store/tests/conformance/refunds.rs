//! Conformance scenarios: refunds and chargebacks.

use super::*;

conformance! {
    scenario_refunds_capped_concurrently => sqlite_refunds_capped_concurrently,
        postgres_refunds_capped_concurrently [flavor = "multi_thread", worker_threads = 2];
    scenario_chargebacks_unique_and_guarded => sqlite_chargebacks_unique_and_guarded,
        postgres_chargebacks_unique_and_guarded;
    scenario_chargeback_listing_pages => sqlite_chargeback_listing_pages, postgres_chargeback_listing_pages;
}

// Refunds and chargebacks ----------------------------------------------------------------

/// A tenant with an order, its settled debit instruction `i-1` and its settled attempt
/// `tx-1` of 10.00 EUR.
pub(crate) async fn settled_debit(store: &dyn Store) -> TransactionRecord {
    two_tenants(store).await;
    settled_debit_in(store, "t_1", 1).await
}

/// Order `o-{n}` (`REF{n}`) of `tenant_id` with its settled debit instruction `i-{n}`
/// (`ref-i-{n}`) and its settled attempt `tx-{n}` of 10.00 EUR.
pub(crate) async fn settled_debit_in(store: &dyn Store, tenant_id: &str, n: u32) -> TransactionRecord {
    let (order_id, instruction_id) = (format!("o-{n}"), format!("i-{n}"));
    let ins = InstructionRecord {
        direction: baton_domain::Direction::Debit,
        status: baton_domain::InstructionStatus::Settled,
        amount_minor: 1000,
        ..instruction_record(tenant_id, &order_id, &instruction_id, "C1")
    };
    store.create_order(&order_record(tenant_id, &order_id, &format!("REF{n}")), &[], &[ins]).await.unwrap();
    let tx = TransactionRecord {
        transaction_id: format!("tx-{n}"),
        tenant_id: tenant_id.into(),
        order_id,
        instruction_id,
        customer_ref: "C1".into(),
        financial_instrument_id: None,
        app_id: "SANDBOX_CARD".into(),
        payment_method: Some("VISA".into()),
        operation: baton_domain::Operation::Debit,
        transaction_type: baton_domain::TransactionType::Mit,
        attempt: 1,
        amount_minor: 1000,
        currency: "EUR".into(),
        status: baton_domain::TransactionStatus::Settled,
        idempotency_key: format!("key-{n}"),
        provider_reference: Some(format!("ch_{n}")),
        decline_category: None,
        error_code: None,
        psp_code: None,
        psp_message: None,
        connector_ms: None,
        reward_id: None,
        result_sealed: None,
        created_at: T0,
        updated_at: T0,
        finished_at: Some(T0),
        node_id: None,
    };
    assert!(store.apply(&[Change::InsertTransaction(Box::new(tx.clone()))], T0).await.unwrap());
    tx
}

pub(crate) fn refund_record(id: &str, amount_minor: i64) -> RefundRecord {
    RefundRecord {
        refund_id: id.into(),
        tenant_id: "t_1".into(),
        instruction_id: "i-1".into(),
        transaction_id: "tx-1".into(),
        app_id: "SANDBOX_CARD".into(),
        refund_ref: format!("ref-{id}"),
        amount_minor,
        currency: "EUR".into(),
        reason: baton_domain::RefundReason::Other,
        status: baton_domain::RefundStatus::Pending,
        provider_reference: None,
        error_code: None,
        psp_code: None,
        psp_message: None,
        metadata: "{}".into(),
        created_at: T0,
        updated_at: T0,
    }
}

pub(crate) async fn scenario_refunds_capped_concurrently(store: Arc<dyn Store>) {
    settled_debit(&*store).await;
    // Ten refunds of 3.00 against 10.00, all at once: exactly three fit.
    let results = race(10, |i| {
        let store = store.clone();
        async move {
            let change = Change::InsertRefund { refund: refund_record(&format!("r-{i}"), 300), limit_minor: 1000 };
            store.apply(&[change], T0 + 1).await.unwrap()
        }
    })
    .await;
    assert_eq!(results.iter().filter(|ok| **ok).count(), 3, "{results:?}");
    let refunds = store.refunds("t_1", "i-1").await.unwrap();
    assert_eq!(refunds.iter().map(|r| r.amount_minor).sum::<i64>(), 900);

    // A failed refund no longer counts; a finished one is guarded by its status.
    use baton_domain::RefundStatus::*;
    let first = refunds[0].refund_id.clone();
    let fail = |from: Vec<baton_domain::RefundStatus>| Change::FinishRefund {
        tenant_id: "t_1".into(),
        refund_id: first.clone(),
        from,
        to: Failed,
        outcome: TransactionOutcome { error_code: Some("PROVIDER_DECLINED".into()), ..Default::default() },
    };
    assert!(!store.apply(&[fail(vec![Processing])], T0 + 2).await.unwrap());
    assert!(store.apply(&[fail(vec![Pending])], T0 + 2).await.unwrap());
    let big = Change::InsertRefund { refund: refund_record("r-big", 400), limit_minor: 1000 };
    assert!(store.apply(&[big], T0 + 3).await.unwrap());
    let over = Change::InsertRefund { refund: refund_record("r-over", 1), limit_minor: 1000 };
    assert!(!store.apply(&[over], T0 + 3).await.unwrap());
    // The ref is unique per instruction.
    let dup = RefundRecord { refund_id: "r-dup".into(), amount_minor: 1, ..refund_record("r-big", 1) };
    assert!(matches!(
        store.apply(&[Change::InsertRefund { refund: dup, limit_minor: 100_000 }], T0 + 4).await,
        Err(StoreError::Conflict(_))
    ));
    let stored = store.refund("t_1", "i-1", "ref-r-big").await.unwrap().unwrap();
    assert_eq!((stored.amount_minor, stored.status), (400, Pending));
    assert!(store.refunds("t_2", "i-1").await.unwrap().is_empty(), "another tenant sees nothing");
}

pub(crate) async fn scenario_chargebacks_unique_and_guarded(store: Arc<dyn Store>) {
    settled_debit(&*store).await;
    use baton_domain::ChargebackStatus::*;
    let record = ChargebackRecord {
        chargeback_id: "cb-1".into(),
        tenant_id: "t_1".into(),
        instruction_id: "i-1".into(),
        transaction_id: "tx-1".into(),
        app_id: "SANDBOX_CARD".into(),
        provider_reference: "dp_1".into(),
        amount_minor: 1000,
        currency: "EUR".into(),
        reason: baton_domain::ChargebackReason::Fraud,
        provider_reason_code: Some("10.4".into()),
        status: Open,
        due_by: None,
        evidence: None,
        created_at: T0,
        updated_at: T0,
    };
    assert!(store.apply(&[Change::InsertChargeback(record.clone())], T0).await.unwrap());
    let again = ChargebackRecord { chargeback_id: "cb-2".into(), ..record.clone() };
    assert!(!store.apply(&[Change::InsertChargeback(again)], T0).await.unwrap(), "one per provider reference");
    assert_eq!(store.chargeback("t_1", "cb-1").await.unwrap(), Some(record.clone()));
    assert_eq!(store.chargeback("t_2", "cb-1").await.unwrap(), None);
    let by_ref = store.chargeback_by_provider_reference("t_1", "SANDBOX_CARD", "dp_1").await.unwrap();
    assert_eq!(by_ref.map(|c| c.chargeback_id), Some("cb-1".into()));

    let to = |from, to, evidence: Option<&str>| Change::ChargebackStatus {
        tenant_id: "t_1".into(),
        chargeback_id: "cb-1".into(),
        from,
        to,
        evidence: evidence.map(Into::into),
    };
    assert!(!store.apply(&[to(EvidenceSubmitted, Won, None)], T0 + 1).await.unwrap());
    assert!(store.apply(&[to(Open, EvidenceSubmitted, Some("{\"text\":\"x\"}"))], T0 + 1).await.unwrap());
    let stored = store.chargeback("t_1", "cb-1").await.unwrap().unwrap();
    assert_eq!((stored.status, stored.evidence.as_deref()), (EvidenceSubmitted, Some("{\"text\":\"x\"}")));

    let all = ChargebackFilter::default();
    assert_eq!(store.list_chargebacks("t_1", &all, None, 10).await.unwrap().len(), 1);
    let open = ChargebackFilter { status: Some(Open), ..all.clone() };
    assert!(store.list_chargebacks("t_1", &open, None, 10).await.unwrap().is_empty());
    let fraud = ChargebackFilter {
        reason: Some(baton_domain::ChargebackReason::Fraud),
        from: Some(T0),
        to: Some(T0 + 1),
        ..all.clone()
    };
    assert_eq!(store.list_chargebacks("t_1", &fraud, None, 10).await.unwrap().len(), 1);
    let later = ChargebackFilter { from: Some(T0 + 1), ..all.clone() };
    assert!(store.list_chargebacks("t_1", &later, None, 10).await.unwrap().is_empty());
    assert!(store.list_chargebacks("t_2", &all, None, 10).await.unwrap().is_empty());
}

/// A chargeback `id` of `tenant_id` on the settled debit `i-{n}` / `tx-{n}`.
pub(crate) fn chargeback_at(
    tenant_id: &str,
    id: &str,
    n: u32,
    reason: baton_domain::ChargebackReason,
    at: i64,
) -> ChargebackRecord {
    ChargebackRecord {
        chargeback_id: id.into(),
        tenant_id: tenant_id.into(),
        instruction_id: format!("i-{n}"),
        transaction_id: format!("tx-{n}"),
        app_id: "SANDBOX_CARD".into(),
        provider_reference: format!("dp_{id}"),
        amount_minor: 1000,
        currency: "EUR".into(),
        reason,
        provider_reason_code: None,
        status: baton_domain::ChargebackStatus::Open,
        due_by: None,
        evidence: None,
        created_at: at,
        updated_at: at,
    }
}

pub(crate) async fn chargeback_ids(
    store: &dyn Store,
    tenant_id: &str,
    filter: &ChargebackFilter,
    after: Option<&Keyset>,
    limit: u32,
) -> Vec<String> {
    let listed = store.list_chargebacks(tenant_id, filter, after, limit).await.unwrap();
    listed.into_iter().map(|l| l.chargeback.chargeback_id).collect()
}

/// The chargeback listing's keyset query: newest first with ties by id ascending, the
/// order and instruction refs joined in, every filter alone and combined with keyset
/// positions, tenant isolation, and a walk page by page while rows are inserted between
/// pages (newer than the walk, tied with the position, older, another tenant's).
pub(crate) async fn scenario_chargeback_listing_pages(store: Arc<dyn Store>) {
    use baton_domain::ChargebackReason::{Fraud, Quality};
    use baton_domain::ChargebackStatus::{Accepted, Open};
    settled_debit(&*store).await;
    settled_debit_in(&*store, "t_1", 2).await;
    settled_debit_in(&*store, "t_2", 3).await;
    let s = &*store;
    let insert = |c: ChargebackRecord| async move {
        assert!(s.apply(&[Change::InsertChargeback(c)], T0).await.unwrap());
    };
    // Ten of t_1, two per creation time, alternating instructions; inserted oldest last.
    let originals: Vec<ChargebackRecord> = (0..10)
        .map(|k| {
            let reason = if k % 3 == 0 { Fraud } else { Quality };
            chargeback_at("t_1", &format!("cb{k:02}"), 1 + (k % 2) as u32, reason, T0 + (k / 2) * 10)
        })
        .collect();
    for c in originals.iter().rev() {
        insert(c.clone()).await;
    }
    insert(chargeback_at("t_2", "cx", 3, Fraud, T0 + 20)).await;
    let accepted = Change::ChargebackStatus {
        tenant_id: "t_1".into(),
        chargeback_id: "cb04".into(),
        from: Open,
        to: Accepted,
        evidence: None,
    };
    assert!(s.apply(&[accepted], T0 + 100).await.unwrap());

    // Everything of the tenant, newest first, ties by id; each with its refs.
    let f = ChargebackFilter::default;
    let all = s.list_chargebacks("t_1", &f(), None, 100).await.unwrap();
    let listed: Vec<(&str, &str, &str)> = all
        .iter()
        .map(|l| (l.chargeback.chargeback_id.as_str(), l.order_ref.as_str(), l.instruction_ref.as_str()))
        .collect();
    assert_eq!(
        listed,
        [
            ("cb08", "REF1", "ref-i-1"),
            ("cb09", "REF2", "ref-i-2"),
            ("cb06", "REF1", "ref-i-1"),
            ("cb07", "REF2", "ref-i-2"),
            ("cb04", "REF1", "ref-i-1"),
            ("cb05", "REF2", "ref-i-2"),
            ("cb02", "REF1", "ref-i-1"),
            ("cb03", "REF2", "ref-i-2"),
            ("cb00", "REF1", "ref-i-1"),
            ("cb01", "REF2", "ref-i-2"),
        ]
    );
    let first = ListedChargeback {
        order_ref: "REF1".into(),
        instruction_ref: "ref-i-1".into(),
        chargeback: originals[8].clone(),
    };
    assert_eq!(all[0], first);
    assert_eq!(all[4].chargeback.status, Accepted);
    assert_eq!(chargeback_ids(s, "t_2", &f(), None, 100).await, ["cx"]);
    assert!(chargeback_ids(s, "t_3", &f(), None, 100).await.is_empty());

    // Filters, alone and together.
    let check = |filter: ChargebackFilter, expected: &'static [&'static str]| async move {
        assert_eq!(chargeback_ids(s, "t_1", &filter, None, 100).await, expected, "{filter:?}");
    };
    check(ChargebackFilter { reason: Some(Fraud), ..f() }, &["cb09", "cb06", "cb03", "cb00"]).await;
    check(ChargebackFilter { status: Some(Accepted), ..f() }, &["cb04"]).await;
    check(
        ChargebackFilter { status: Some(Open), reason: Some(Quality), ..f() },
        &["cb08", "cb07", "cb05", "cb02", "cb01"],
    )
    .await;
    check(ChargebackFilter { from: Some(T0 + 10), to: Some(T0 + 30), ..f() }, &["cb04", "cb05", "cb02", "cb03"]).await;
    check(ChargebackFilter { from: Some(T0 + 40), ..f() }, &["cb08", "cb09"]).await;
    check(ChargebackFilter { to: Some(T0 + 10), ..f() }, &["cb00", "cb01"]).await;
    check(ChargebackFilter { instruction_id: Some("i-2".into()), ..f() }, &["cb09", "cb07", "cb05", "cb03", "cb01"])
        .await;
    check(ChargebackFilter { instruction_id: Some("i-1".into()), reason: Some(Fraud), ..f() }, &["cb06", "cb00"]).await;
    check(ChargebackFilter { instruction_id: Some("i-3".into()), ..f() }, &[]).await;
    let theirs = ChargebackFilter { instruction_id: Some("i-3".into()), ..f() };
    assert_eq!(chargeback_ids(s, "t_2", &theirs, None, 100).await, ["cx"]);

    // Limits and keyset positions: strictly after, ties by id ascending.
    assert_eq!(chargeback_ids(s, "t_1", &f(), None, 3).await, ["cb08", "cb09", "cb06"]);
    let at = |created_at: i64, id: &str| Keyset { created_at, id: id.into() };
    assert_eq!(chargeback_ids(s, "t_1", &f(), Some(&at(T0 + 30, "cb06")), 3).await, ["cb07", "cb04", "cb05"]);
    assert_eq!(chargeback_ids(s, "t_1", &f(), Some(&at(T0 + 30, "cb07")), 3).await, ["cb04", "cb05", "cb02"]);
    assert_eq!(chargeback_ids(s, "t_1", &f(), Some(&at(T0 + 25, "zz")), 2).await, ["cb04", "cb05"]);
    assert!(chargeback_ids(s, "t_1", &f(), Some(&at(T0, "cb01")), 3).await.is_empty());
    let fraud = ChargebackFilter { reason: Some(Fraud), ..f() };
    assert_eq!(chargeback_ids(s, "t_1", &fraud, Some(&at(T0 + 30, "cb06")), 3).await, ["cb03", "cb00"]);
    let window = ChargebackFilter { from: Some(T0 + 10), to: Some(T0 + 30), ..f() };
    assert_eq!(chargeback_ids(s, "t_1", &window, Some(&at(T0 + 20, "cb04")), 1).await, ["cb05"]);
    // A position is only a position: another tenant's listing from it has only its own rows.
    assert_eq!(chargeback_ids(s, "t_2", &f(), Some(&at(T0 + 30, "cb06")), 3).await, ["cx"]);
    assert!(chargeback_ids(s, "t_2", &f(), Some(&at(T0 + 20, "cx")), 3).await.is_empty());

    // A walk, three per page, with inserts between pages.
    let mut seen: Vec<(std::cmp::Reverse<i64>, String)> = Vec::new();
    let mut after: Option<Keyset> = None;
    let mut round = 0;
    loop {
        let page = s.list_chargebacks("t_1", &f(), after.as_ref(), 3).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(at(last.chargeback.created_at, &last.chargeback.chargeback_id));
        seen.extend(
            page.iter().map(|l| (std::cmp::Reverse(l.chargeback.created_at), l.chargeback.chargeback_id.clone())),
        );
        let k = after.clone().unwrap();
        round += 1;
        if round <= 3 {
            // Tied with the position (sorts after it), older, newer; and another tenant's.
            for (id, created_at, n) in [
                (format!("{}t{round}", k.id), k.created_at, 1),
                (format!("p{round}"), T0 - 1, 2),
                (format!("z{round}"), T0 + 1_000, 1),
            ] {
                insert(chargeback_at("t_1", &id, n, Quality, created_at)).await;
            }
            insert(chargeback_at("t_2", &format!("x{round}"), 3, Quality, k.created_at)).await;
        }
        assert!(round < 50, "the walk ends");
    }
    let ids: Vec<&str> = seen.iter().map(|(_, id)| id.as_str()).collect();
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "newest first, ties by id: no duplicates, in order: {ids:?}");
    for original in &originals {
        assert!(ids.contains(&original.chargeback_id.as_str()), "{} skipped: {ids:?}", original.chargeback_id);
    }
    assert!(!ids.iter().any(|id| id.starts_with('z')), "rows newer than the position stay before it: {ids:?}");
    assert!(!ids.iter().any(|id| id.starts_with('x')), "another tenant's rows never appear: {ids:?}");
    assert!(ids.contains(&"p1") && ids.contains(&"cb06t1"), "rows after the position are reached: {ids:?}");
    // A new walk from the start sees every row of the tenant.
    assert_eq!(chargeback_ids(s, "t_1", &f(), None, 100).await.len(), 10 + 9);
}
