//! Conformance scenarios: webhook fan-out, deliveries and leases.

use super::*;

conformance! {
    scenario_webhook_fan_out => sqlite_webhook_fan_out, postgres_webhook_fan_out;
    scenario_events_no_endpoint_wants_are_written_dispatched => sqlite_events_no_endpoint_wants_are_written_dispatched,
        postgres_events_no_endpoint_wants_are_written_dispatched;
    scenario_webhook_deliveries_in_order => sqlite_webhook_deliveries_in_order,
        postgres_webhook_deliveries_in_order;
    scenario_webhook_batch_records => sqlite_webhook_batch_records, postgres_webhook_batch_records;
    scenario_webhook_claims_are_exclusive => sqlite_webhook_claims_are_exclusive,
        postgres_webhook_claims_are_exclusive [flavor = "multi_thread", worker_threads = 4];
    scenario_webhook_leases_of_dead_and_live_nodes => sqlite_webhook_leases_of_dead_and_live_nodes,
        postgres_webhook_leases_of_dead_and_live_nodes;
    scenario_webhook_dead_node_takeover_concurrent => sqlite_webhook_dead_node_takeover_concurrent,
        postgres_webhook_dead_node_takeover_concurrent [flavor = "multi_thread", worker_threads = 4];
}

// Webhooks ------------------------------------------------------------------------------

pub(crate) fn endpoint(id: &str, tenant_id: Option<&str>, events: &[&str]) -> baton_store::WebhookEndpointRecord {
    baton_store::WebhookEndpointRecord {
        endpoint_id: id.into(),
        account_id: ACCOUNT.into(),
        tenant_id: tenant_id.map(str::to_string),
        url: format!("https://example.com/{id}"),
        event_types: events.iter().map(|e| e.to_string()).collect(),
        description: None,
        enabled: true,
        secret_sealed: vec![1, 2, 3],
        previous_secret_sealed: None,
        previous_secret_expires_at: None,
        failing_since: None,
        disabled_reason: None,
        created_at: T0,
        updated_at: T0,
    }
}

pub(crate) fn wh_event(
    id: &str,
    tenant_id: Option<&str>,
    t: baton_domain::EventType,
    key: Option<&str>,
) -> baton_store::Change {
    baton_store::Change::Event(baton_store::EventRecord {
        event_id: id.into(),
        account_id: tenant_id.is_none().then(|| ACCOUNT.to_string()),
        tenant_id: tenant_id.map(str::to_string),
        event_type: t,
        ordering_key: key.map(str::to_string),
        data: format!(r#"{{"n":"{id}"}}"#),
        created_at: T0,
    })
}

pub(crate) fn counter_ids() -> impl Fn() -> String + Send + Sync {
    let n = std::sync::atomic::AtomicUsize::new(0);
    move || format!("d-{:04}", n.fetch_add(1, std::sync::atomic::Ordering::SeqCst))
}

pub(crate) async fn delivered_events(store: &dyn Store, endpoint_id: &str) -> Vec<String> {
    let filter = baton_store::DeliveryFilter { limit: 100, ..Default::default() };
    let mut list: Vec<_> = store.webhook_deliveries(endpoint_id, &filter).await.unwrap();
    list.sort_by_key(|(d, _)| d.event_seq);
    list.into_iter().map(|(d, _)| d.event_id).collect()
}

pub(crate) fn succeeded(c: &baton_store::ClaimedDelivery, attempted_at: i64) -> baton_store::AttemptOutcome {
    baton_store::AttemptOutcome {
        attempt: baton_store::DeliveryAttemptRecord {
            delivery_id: c.delivery.delivery_id.clone(),
            attempt: c.delivery.attempts + 1,
            status_code: Some(200),
            duration_ms: 3,
            response: Some("ok".into()),
            error: None,
            attempted_at,
        },
        status: baton_store::DeliveryStatus::Succeeded,
        next_attempt_at: attempted_at,
        disable_endpoint: None,
    }
}

pub(crate) async fn scenario_webhook_fan_out(store: Arc<dyn Store>) {
    use baton_domain::EventType::*;
    two_tenants(&*store).await;
    store.insert_webhook_endpoint(&endpoint("all-1", Some("t_1"), &["*"])).await.unwrap();
    store.insert_webhook_endpoint(&endpoint("settled-1", Some("t_1"), &["instruction.settled"])).await.unwrap();
    store.insert_webhook_endpoint(&endpoint("all-2", Some("t_2"), &["*"])).await.unwrap();
    store.insert_webhook_endpoint(&endpoint("account", None, &["*"])).await.unwrap();
    let mut off = endpoint("off", Some("t_1"), &["*"]);
    off.enabled = false;
    store.insert_webhook_endpoint(&off).await.unwrap();
    let changes = [
        wh_event("e1", Some("t_1"), InstructionProcessing, Some("i-1")),
        wh_event("e2", Some("t_1"), InstructionSettled, Some("i-1")),
        wh_event("e3", Some("t_2"), InstructionSettled, Some("i-2")),
        wh_event("e4", None, TenantApprovalRequested, None),
    ];
    assert!(store.apply(&changes, T0).await.unwrap());
    let ids = counter_ids();
    assert_eq!(store.dispatch_events(T0, 100, &ids).await.unwrap(), (4, 5));
    assert_eq!(delivered_events(&*store, "all-1").await, ["e1", "e2"]);
    assert_eq!(delivered_events(&*store, "settled-1").await, ["e2"]);
    assert_eq!(delivered_events(&*store, "all-2").await, ["e3"], "a tenant's events go to that tenant only");
    assert_eq!(delivered_events(&*store, "account").await, ["e4"], "account events to account endpoints");
    assert!(delivered_events(&*store, "off").await.is_empty(), "disabled endpoints get nothing");
    assert_eq!(store.dispatch_events(T0, 100, &ids).await.unwrap(), (0, 0), "each event is fanned out once");
    assert_eq!(store.undelivered_count().await.unwrap(), 5);

    // Owners are scoped: another tenant cannot read or delete the endpoint.
    assert!(store.webhook_endpoint(ACCOUNT, Some("t_2"), "all-1").await.unwrap().is_none());
    assert!(store.webhook_endpoint(ACCOUNT, None, "all-1").await.unwrap().is_none());
    assert!(store.webhook_endpoint(ACCOUNT, None, "account").await.unwrap().is_some());
    assert!(!store.delete_webhook_endpoint(ACCOUNT, Some("t_2"), "all-1").await.unwrap());
    let listed: Vec<String> =
        store.webhook_endpoints(ACCOUNT, Some("t_1")).await.unwrap().into_iter().map(|e| e.endpoint_id).collect();
    assert_eq!(listed, ["all-1", "off", "settled-1"], "by creation time, then id");
    assert!(store.delete_webhook_endpoint(ACCOUNT, Some("t_1"), "all-1").await.unwrap());
    assert_eq!(store.undelivered_count().await.unwrap(), 3, "deliveries go with their endpoint");
}

pub(crate) async fn scenario_events_no_endpoint_wants_are_written_dispatched(store: Arc<dyn Store>) {
    use baton_domain::EventType::*;
    two_tenants(&*store).await;
    store.insert_webhook_endpoint(&endpoint("settled-1", Some("t_1"), &["instruction.settled"])).await.unwrap();
    let mut off = endpoint("off-1", Some("t_1"), &["*"]);
    off.enabled = false;
    store.insert_webhook_endpoint(&off).await.unwrap();
    store.insert_webhook_endpoint(&endpoint("all-2", Some("t_2"), &["*"])).await.unwrap();
    store.insert_webhook_endpoint(&endpoint("account", None, &["*"])).await.unwrap();
    let changes = [
        wh_event("p1", Some("t_1"), InstructionProcessing, Some("i-1")),
        wh_event("s1", Some("t_1"), InstructionSettled, Some("i-1")),
        wh_event("p2", Some("t_2"), InstructionProcessing, Some("i-2")),
        wh_event("a", None, TenantApprovalRequested, None),
    ];
    assert!(store.apply(&changes, T0).await.unwrap());
    let dispatched = |events: Vec<baton_store::StoredEvent>| -> Vec<(String, bool)> {
        events.into_iter().map(|e| (e.event.event_id, e.dispatched_at.is_some())).collect()
    };
    let t1 = dispatched(store.events("t_1").await.unwrap());
    assert_eq!(t1, [("p1".into(), true), ("s1".into(), false)], "only an enabled endpoint naming the type counts");
    assert_eq!(dispatched(store.events("t_2").await.unwrap()), [("p2".into(), false)], "`*` names every type");
    // Those left are fanned out as ever; account events always are.
    let ids = counter_ids();
    assert_eq!(store.dispatch_events(T0, 100, &ids).await.unwrap(), (3, 3));
    assert_eq!(delivered_events(&*store, "settled-1").await, ["s1"]);
    assert_eq!(delivered_events(&*store, "all-2").await, ["p2"]);
    assert_eq!(delivered_events(&*store, "account").await, ["a"]);

    // An endpoint enabled later gets the events written after it.
    store.insert_webhook_endpoint(&endpoint("all-1", Some("t_1"), &["*"])).await.unwrap();
    assert!(store.apply(&[wh_event("p3", Some("t_1"), InstructionProcessing, Some("i-3"))], T0).await.unwrap());
    assert_eq!(store.dispatch_events(T0, 100, &ids).await.unwrap(), (1, 1));
    assert_eq!(delivered_events(&*store, "all-1").await, ["p3"]);
}

pub(crate) async fn scenario_webhook_deliveries_in_order(store: Arc<dyn Store>) {
    use baton_domain::EventType::*;
    use baton_store::DeliveryStatus;
    two_tenants(&*store).await;
    keep_alive(&*store, LIVE_NODE).await;
    store.insert_webhook_endpoint(&endpoint("ep", Some("t_1"), &["*"])).await.unwrap();
    let changes = [
        wh_event("a1", Some("t_1"), InstructionProcessing, Some("i-a")),
        wh_event("b1", Some("t_1"), InstructionProcessing, Some("i-b")),
        wh_event("a2", Some("t_1"), InstructionSettled, Some("i-a")),
    ];
    assert!(store.apply(&changes, T0).await.unwrap());
    let ids = counter_ids();
    store.dispatch_events(T0, 100, &ids).await.unwrap();

    // Only the first event of each instruction is claimable.
    let first = store.claim_deliveries(T0, T0 + 1000, 10, claimant(LIVE_NODE, T0)).await.unwrap();
    let claimed: Vec<&str> = first.iter().map(|c| c.event.event_id.as_str()).collect();
    assert_eq!(claimed, ["a1", "b1"]);
    assert_eq!(first[0].endpoint.url, "https://example.com/ep");
    assert_eq!(first[0].event.data, r#"{"n":"a1"}"#);
    // a1 fails and waits for a retry: a2 keeps waiting behind it.
    let a1 = &first[0];
    let mut failed = succeeded(a1, T0);
    failed.status = DeliveryStatus::Failed;
    failed.attempt.status_code = Some(500);
    failed.next_attempt_at = T0 + 60_000;
    assert!(store.record_attempt(T0 + 1000, &failed, T0).await.unwrap());
    let ep = store.webhook_endpoint(ACCOUNT, Some("t_1"), "ep").await.unwrap().unwrap();
    assert_eq!(ep.failing_since, Some(T0));
    assert!(store.record_attempt(T0 + 1000, &succeeded(&first[1], T0), T0).await.unwrap());
    let ep = store.webhook_endpoint(ACCOUNT, Some("t_1"), "ep").await.unwrap().unwrap();
    assert_eq!(ep.failing_since, None, "any success ends the endpoint's failing run");
    assert!(store.claim_deliveries(T0 + 1, T0 + 1000, 10, claimant(LIVE_NODE, T0 + 1)).await.unwrap().is_empty());

    // The retry falls due, succeeds, and a2 follows.
    let retry = store.claim_deliveries(T0 + 60_000, T0 + 61_000, 10, claimant(LIVE_NODE, T0 + 60_000)).await.unwrap();
    assert_eq!(retry.iter().map(|c| c.event.event_id.as_str()).collect::<Vec<_>>(), ["a1"]);
    assert_eq!(retry[0].delivery.attempts, 1);
    // A stale lease holder cannot overwrite the state, but its attempt is logged.
    assert!(!store.record_attempt(T0 + 1000, &succeeded(&retry[0], T0 + 60_000), T0 + 60_000).await.unwrap());
    let mut ok = succeeded(&retry[0], T0 + 60_000);
    ok.attempt.attempt = 3;
    assert!(store.record_attempt(T0 + 61_000, &ok, T0 + 60_000).await.unwrap());
    let next = store.claim_deliveries(T0 + 60_000, T0 + 61_000, 10, claimant(LIVE_NODE, T0 + 60_000)).await.unwrap();
    assert_eq!(next.iter().map(|c| c.event.event_id.as_str()).collect::<Vec<_>>(), ["a2"]);

    // The listing shows attempts and filters by type, status and time.
    let all =
        store.webhook_deliveries("ep", &baton_store::DeliveryFilter { limit: 10, ..Default::default() }).await.unwrap();
    let a1_row = all.iter().find(|(d, _)| d.event_id == "a1").unwrap();
    assert_eq!(a1_row.0.status, DeliveryStatus::Succeeded);
    assert_eq!(
        a1_row.1.iter().map(|a| (a.attempt, a.status_code)).collect::<Vec<_>>(),
        [(1, Some(500)), (2, Some(200)), (3, Some(200))]
    );
    let settled =
        baton_store::DeliveryFilter { event_type: Some("instruction.settled".into()), limit: 10, ..Default::default() };
    assert_eq!(store.webhook_deliveries("ep", &settled).await.unwrap().len(), 1);
    let done = baton_store::DeliveryFilter { status: Some(DeliveryStatus::Succeeded), limit: 10, ..Default::default() };
    assert_eq!(store.webhook_deliveries("ep", &done).await.unwrap().len(), 2);
    let later = baton_store::DeliveryFilter { from: Some(T0 + 1), limit: 10, ..Default::default() };
    assert!(store.webhook_deliveries("ep", &later).await.unwrap().is_empty());

    // Redelivery makes a delivered one due again, unless it is leased right now.
    assert!(!store.redeliver(&next[0].delivery.delivery_id, T0 + 60_500).await.unwrap(), "leased");
    assert!(store.redeliver(&a1_row.0.delivery_id, T0 + 70_000).await.unwrap());
    assert_eq!(store.webhook_delivery(&a1_row.0.delivery_id).await.unwrap().unwrap().status, DeliveryStatus::Failed);

    // Disabling: the endpoint goes off and the account event is written once.
    let mut disable = succeeded(&next[0], T0 + 60_000);
    disable.status = DeliveryStatus::Dead;
    disable.disable_endpoint = Some(match wh_event("off-1", None, WebhookEndpointDisabled, None) {
        baton_store::Change::Event(e) => e,
        _ => unreachable!(),
    });
    assert!(store.record_attempt(T0 + 61_000, &disable, T0 + 60_000).await.unwrap());
    let ep = store.webhook_endpoint(ACCOUNT, Some("t_1"), "ep").await.unwrap().unwrap();
    assert!(!ep.enabled);
    assert_eq!(ep.disabled_reason.as_deref(), Some("FAILING"));
    assert!(
        store
            .claim_deliveries(T0 + 80_000, T0 + 81_000, 10, claimant(LIVE_NODE, T0 + 80_000))
            .await
            .unwrap()
            .is_empty(),
        "disabled: nothing sent"
    );
}

pub(crate) async fn scenario_webhook_claims_are_exclusive(store: Arc<dyn Store>) {
    use baton_domain::EventType::*;
    two_tenants(&*store).await;
    keep_alive(&*store, LIVE_NODE).await;
    for n in 0..3 {
        store.insert_webhook_endpoint(&endpoint(&format!("ep-{n}"), Some("t_1"), &["*"])).await.unwrap();
    }
    // 40 instructions with two events each: 80 events, 240 deliveries.
    let mut changes = Vec::new();
    for i in 0..40 {
        changes.push(wh_event(&format!("p-{i}"), Some("t_1"), InstructionProcessing, Some(&format!("i-{i}"))));
        changes.push(wh_event(&format!("s-{i}"), Some("t_1"), InstructionSettled, Some(&format!("i-{i}"))));
    }
    assert!(store.apply(&changes, T0).await.unwrap());
    // Two fan-outs race: every event is fanned out exactly once.
    let ids = Arc::new(counter_ids());
    let results = race(2, |_| {
        let (store, ids) = (store.clone(), ids.clone());
        async move {
            let mut total = (0, 0);
            loop {
                let (e, d) = store.dispatch_events(T0, 7, &*ids).await.unwrap();
                if e == 0 {
                    break total;
                }
                total = (total.0 + e, total.1 + d);
            }
        }
    })
    .await;
    assert_eq!(results.iter().map(|r| r.0).sum::<usize>(), 80);
    assert_eq!(results.iter().map(|r| r.1).sum::<usize>(), 240);

    // Four workers claim, deliver and claim again until nothing is left: every delivery
    // is sent exactly once, and per endpoint each instruction's events arrive in order.
    let sent = Arc::new(std::sync::Mutex::new(Vec::<(String, String, usize)>::new()));
    let clock = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    race(4, |_| {
        let (store, sent, clock) = (store.clone(), sent.clone(), clock.clone());
        async move {
            let mut idle = 0;
            while idle < 3 {
                let claimed = store.claim_deliveries(T0, T0 + 600_000, 5, claimant(LIVE_NODE, T0)).await.unwrap();
                if claimed.is_empty() {
                    idle += 1;
                    tokio::task::yield_now().await;
                    continue;
                }
                idle = 0;
                for c in claimed {
                    let at = clock.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    sent.lock().unwrap().push((c.endpoint.endpoint_id.clone(), c.event.event_id.clone(), at));
                    assert!(store.record_attempt(T0 + 600_000, &succeeded(&c, T0), T0).await.unwrap());
                }
            }
        }
    })
    .await;
    let sent = sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 240, "each delivery sent once");
    let mut unique: Vec<_> = sent.iter().map(|(e, id, _)| (e.clone(), id.clone())).collect();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 240, "no delivery sent twice");
    for (endpoint_id, event_id, at) in sent.iter().filter(|(_, id, _)| id.starts_with("s-")) {
        let processing = format!("p-{}", &event_id[2..]);
        let before = sent.iter().find(|(e, id, _)| e == endpoint_id && *id == processing).unwrap();
        assert!(before.2 < *at, "{endpoint_id}: {processing} before {event_id}");
    }
    assert_eq!(store.undelivered_count().await.unwrap(), 0);
}

pub(crate) async fn scenario_webhook_batch_records(store: Arc<dyn Store>) {
    use baton_domain::EventType::*;
    use baton_store::DeliveryStatus;
    two_tenants(&*store).await;
    keep_alive(&*store, LIVE_NODE).await;
    store.insert_webhook_endpoint(&endpoint("ep-a", Some("t_1"), &["*"])).await.unwrap();
    store.insert_webhook_endpoint(&endpoint("ep-b", Some("t_1"), &["instruction.settled"])).await.unwrap();
    let changes = [
        wh_event("x", Some("t_1"), InstructionSettled, Some("i-x")),
        wh_event("y", Some("t_1"), InstructionSettled, Some("i-y")),
    ];
    assert!(store.apply(&changes, T0).await.unwrap());
    store.dispatch_events(T0, 100, &counter_ids()).await.unwrap();
    let claimed = store.claim_deliveries(T0, T0 + 1000, 10, claimant(LIVE_NODE, T0)).await.unwrap();
    assert_eq!(claimed.len(), 4);
    // ep-a: one success, one failure; ep-b: two failures, one of them with a lapsed lease.
    let mut batch = Vec::new();
    let mut failures_b = 0;
    let mut success_a = false;
    for c in &claimed {
        let mut o = succeeded(c, T0 + 5);
        let mut lease = T0 + 1000;
        if c.endpoint.endpoint_id == "ep-a" && !success_a {
            success_a = true;
        } else {
            o.status = DeliveryStatus::Failed;
            o.attempt.status_code = Some(500);
            o.next_attempt_at = T0 + 60_000;
            if c.endpoint.endpoint_id == "ep-b" {
                failures_b += 1;
                if failures_b == 2 {
                    lease = T0 + 999;
                }
            }
        }
        batch.push((lease, o));
    }
    let written = store.record_attempts(&batch, T0 + 5).await.unwrap();
    let expected: Vec<bool> = batch.iter().map(|(lease, _)| *lease == T0 + 1000).collect();
    assert_eq!(written, expected);
    assert_eq!(written.iter().filter(|w| !**w).count(), 1);
    let a = store.webhook_endpoint(ACCOUNT, Some("t_1"), "ep-a").await.unwrap().unwrap();
    assert_eq!(a.failing_since, None, "a success in the batch ends the run");
    let b = store.webhook_endpoint(ACCOUNT, Some("t_1"), "ep-b").await.unwrap().unwrap();
    assert_eq!(b.failing_since, Some(T0 + 5));
    for ((_, o), w) in batch.iter().zip(&written) {
        let d = store.webhook_delivery(&o.attempt.delivery_id).await.unwrap().unwrap();
        if *w {
            assert_eq!((d.status, d.attempts, d.locked_until), (o.status, 1, None));
            assert_eq!(d.delivered_at.is_some(), o.status == DeliveryStatus::Succeeded);
        } else {
            assert_eq!((d.status, d.attempts), (DeliveryStatus::Pending, 0), "a lapsed lease leaves the state alone");
        }
        let listed = store
            .webhook_deliveries(&d.endpoint_id, &baton_store::DeliveryFilter { limit: 10, ..Default::default() })
            .await
            .unwrap();
        let attempts = &listed.iter().find(|(x, _)| x.delivery_id == d.delivery_id).unwrap().1;
        assert_eq!(attempts.len(), 1, "every attempt is logged");
    }
}

pub(crate) async fn scenario_webhook_leases_of_dead_and_live_nodes(store: Arc<dyn Store>) {
    use baton_domain::EventType::*;
    two_tenants(&*store).await;
    store.insert_webhook_endpoint(&endpoint("ep", Some("t_1"), &["*"])).await.unwrap();
    let changes = [
        wh_event("p", Some("t_1"), InstructionProcessing, Some("i-1")),
        wh_event("s", Some("t_1"), InstructionSettled, Some("i-1")),
    ];
    assert!(store.apply(&changes, T0).await.unwrap());
    store.dispatch_events(T0, 100, &counter_ids()).await.unwrap();
    let claim = |node: &'static str, now: i64| {
        let store = store.clone();
        async move { store.claim_deliveries(now, now + 600_000, 10, claimant(node, now)).await.unwrap() }
    };
    let ids =
        |claimed: &[baton_store::ClaimedDelivery]| claimed.iter().map(|c| c.event.event_id.clone()).collect::<Vec<_>>();
    let t = T0;
    store.heartbeat("node-a", t, t).await.unwrap();
    keep_alive(&*store, "node-b").await;
    let a = claim("node-a", t).await;
    assert_eq!(ids(&a), ["p"]);
    // While node-a beats, the delivery stays its own, however slow the receiver.
    for later in [1_000, 4 * LOST_MS, 300_000] {
        store.heartbeat("node-a", t, t + later).await.unwrap();
        assert!(claim("node-b", t + later + LOST_MS).await.is_empty(), "{later}");
    }
    // node-a dies (last heard from at t + 300_000): node-b takes the delivery over
    // LOST_MS later, long before the lease would run out.
    let dead = t + 300_000 + LOST_MS + 1;
    let b = claim("node-b", dead).await;
    assert_eq!(ids(&b), ["p"]);
    assert_eq!(b[0].delivery.attempts, 0);
    // The next event of the instruction still waits behind it, and node-a's record of
    // its send, coming late, cannot overwrite node-b's lease.
    assert!(claim("node-b", dead + 1).await.is_empty(), "in order");
    assert!(!store.record_attempt(t + 600_000, &succeeded(&a[0], dead), dead).await.unwrap());
    assert!(store.record_attempt(dead + 600_000, &succeeded(&b[0], dead + 2), dead + 2).await.unwrap());
    assert_eq!(ids(&claim("node-b", dead + 3).await), ["s"]);
}

pub(crate) async fn scenario_webhook_dead_node_takeover_concurrent(store: Arc<dyn Store>) {
    use baton_domain::EventType::*;
    two_tenants(&*store).await;
    store.insert_webhook_endpoint(&endpoint("ep", Some("t_1"), &["*"])).await.unwrap();
    let mut changes = Vec::new();
    for i in 0..30 {
        changes.push(wh_event(&format!("p-{i}"), Some("t_1"), InstructionProcessing, Some(&format!("i-{i}"))));
        changes.push(wh_event(&format!("s-{i}"), Some("t_1"), InstructionSettled, Some(&format!("i-{i}"))));
    }
    assert!(store.apply(&changes, T0).await.unwrap());
    store.dispatch_events(T0, 100, &counter_ids()).await.unwrap();
    // A node leases the first event of every instruction, then dies.
    store.heartbeat("node-dead", T0, T0).await.unwrap();
    let held = store.claim_deliveries(T0, T0 + 600_000, 100, claimant("node-dead", T0)).await.unwrap();
    assert_eq!(held.len(), 30);

    // Four live nodes race for what it held: each delivery goes out once, in order.
    let now = T0 + LOST_MS + 1;
    let sent = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    race(4, |i| {
        let (store, sent) = (store.clone(), sent.clone());
        async move {
            let node: &'static str = ["node-0", "node-1", "node-2", "node-3"][i];
            keep_alive(&*store, node).await;
            let mut idle = 0;
            while idle < 3 {
                let claimed = store.claim_deliveries(now, now + 600_000, 4, claimant(node, now)).await.unwrap();
                if claimed.is_empty() {
                    idle += 1;
                    tokio::task::yield_now().await;
                    continue;
                }
                idle = 0;
                for c in claimed {
                    sent.lock().unwrap().push(c.event.event_id.clone());
                    assert!(store.record_attempt(now + 600_000, &succeeded(&c, now), now).await.unwrap());
                }
            }
        }
    })
    .await;
    let sent = sent.lock().unwrap().clone();
    let mut unique = sent.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((sent.len(), unique.len()), (60, 60), "each delivery sent once: {sent:?}");
    for i in 0..30 {
        let position = |id: String| sent.iter().position(|e| *e == id).unwrap();
        assert!(position(format!("p-{i}")) < position(format!("s-{i}")), "i-{i} in order");
    }
    assert_eq!(store.undelivered_count().await.unwrap(), 0);
}
