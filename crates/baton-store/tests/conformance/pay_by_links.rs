//! Conformance scenarios: pay-by-links and their messages.

use super::*;

conformance! {
    scenario_pay_by_links => sqlite_pay_by_links, postgres_pay_by_links;
    scenario_pay_by_link_status_concurrent => sqlite_pay_by_link_status_concurrent,
        postgres_pay_by_link_status_concurrent [flavor = "multi_thread", worker_threads = 2];
    scenario_pay_by_link_guards => sqlite_pay_by_link_guards, postgres_pay_by_link_guards;
    scenario_cancel_races_payment_start => sqlite_cancel_races_payment_start,
        postgres_cancel_races_payment_start [flavor = "multi_thread", worker_threads = 2];
    scenario_tenant_documents => sqlite_tenant_documents, postgres_tenant_documents;
}

// Pay-by-links --------------------------------------------------------------------------

pub(crate) fn pay_link(id: &str, expires_at: i64) -> baton_store::PayByLinkRecord {
    baton_store::PayByLinkRecord {
        pay_by_link_id: id.into(),
        tenant_id: "t_1".into(),
        order_id: "o-1".into(),
        instruction_id: "i-1".into(),
        status: baton_domain::PayByLinkStatus::Active,
        language: baton_domain::Language::DeDe,
        callbacks: Some(r#"{"success":"https://shop.example/ok"}"#.into()),
        expires_at,
        opened_at: None,
        finished_at: None,
        created_at: T0,
        updated_at: T0,
    }
}

pub(crate) fn message(id: &str, link: &str) -> baton_store::MessageDeliveryRecord {
    baton_store::MessageDeliveryRecord {
        delivery_id: id.into(),
        tenant_id: "t_1".into(),
        pay_by_link_id: link.into(),
        customer_ref: "C1".into(),
        channel: baton_domain::DeliveryChannel::Email,
        recipient_sealed: vec![1, 2, 3],
        recipient_masked: "j***@example.com".into(),
        language: baton_domain::Language::DeDe,
        template: baton_domain::MessageTemplate::PaymentRequest,
        status: baton_domain::DeliveryStatus::Queued,
        attempts: 0,
        last_error: None,
        created_at: T0,
        updated_at: T0,
        sent_at: None,
    }
}

pub(crate) fn deliver_job(id: &str, subject: &str) -> baton_store::JobRecord {
    baton_store::JobRecord::new(id.into(), "deliver-message", subject, "t_1", "{}".into(), T0, T0)
}

pub(crate) async fn scenario_pay_by_links(store: Arc<dyn Store>) {
    use baton_domain::{DeliveryStatus, InstructionStatus, PayByLinkStatus};
    two_tenants(&*store).await;
    let ins = InstructionRecord {
        direction: baton_domain::Direction::Debit,
        ..instruction_record("t_1", "o-1", "i-1", "C1")
    };
    store.create_order(&order_record("t_1", "o-1", "REF1"), &[], &[ins]).await.unwrap();

    // The link, its message and the job that sends it: one transaction.
    let link = pay_link("L1", T0 + 60_000);
    let changes = [
        Change::InsertPayByLink(Box::new(link.clone())),
        Change::InsertMessageDelivery(Box::new(message("d-1", "L1"))),
        Change::ScheduleJob(deliver_job("j-1", "d-1")),
    ];
    assert!(store.apply(&changes, T0).await.unwrap());
    let row = store.pay_by_link("t_1", "L1").await.unwrap().unwrap();
    assert_eq!(row.link, link);
    assert_eq!(
        (row.order_ref.as_str(), row.instruction_ref.as_str(), row.customer_ref.as_str()),
        ("REF1", "ref-i-1", "C1")
    );
    assert_eq!(store.pay_by_link_by_id("L1").await.unwrap().unwrap(), row);
    assert!(store.pay_by_link("t_2", "L1").await.unwrap().is_none(), "another tenant's link is not found");
    assert_eq!(store.message_deliveries("t_1", "L1").await.unwrap(), vec![message("d-1", "L1")]);
    assert!(store.message_deliveries("t_2", "L1").await.unwrap().is_empty());
    assert!(store.job("deliver-message", "d-1").await.unwrap().is_some());

    // A failing change takes the link and its message down with it.
    let broken = [
        Change::InsertPayByLink(Box::new(pay_link("L2", T0 + 60_000))),
        Change::InsertMessageDelivery(Box::new(message("d-2", "L2"))),
        Change::PayByLinkStatus {
            tenant_id: "t_1".into(),
            pay_by_link_id: "L1".into(),
            from: vec![PayByLinkStatus::Expired],
            to: PayByLinkStatus::Cancelled,
        },
    ];
    assert!(!store.apply(&broken, T0).await.unwrap());
    assert!(store.pay_by_link("t_1", "L2").await.unwrap().is_none());
    assert!(store.message_delivery("t_1", "d-2").await.unwrap().is_none());

    // Status moves are compare-and-set; OPENED records the first open, a final status its end.
    let open = Change::PayByLinkStatus {
        tenant_id: "t_1".into(),
        pay_by_link_id: "L1".into(),
        from: vec![PayByLinkStatus::Active],
        to: PayByLinkStatus::Opened,
    };
    assert!(store.apply(std::slice::from_ref(&open), T0 + 1000).await.unwrap());
    assert!(!store.apply(&[open], T0 + 2000).await.unwrap(), "opened once");
    let row = store.pay_by_link("t_1", "L1").await.unwrap().unwrap();
    assert_eq!(
        (row.link.status, row.link.opened_at, row.link.finished_at),
        (PayByLinkStatus::Opened, Some(T0 + 1000), None)
    );

    // Messages: retried (attempts and error kept), then sent.
    let retry = Change::MessageDeliveryStatus {
        tenant_id: "t_1".into(),
        delivery_id: "d-1".into(),
        from: DeliveryStatus::Queued,
        to: DeliveryStatus::Queued,
        attempts: 1,
        last_error: Some("451 later".into()),
    };
    assert!(store.apply(&[retry], T0 + 3000).await.unwrap());
    let sent = Change::MessageDeliveryStatus {
        tenant_id: "t_1".into(),
        delivery_id: "d-1".into(),
        from: DeliveryStatus::Queued,
        to: DeliveryStatus::Sent,
        attempts: 2,
        last_error: None,
    };
    assert!(store.apply(std::slice::from_ref(&sent), T0 + 4000).await.unwrap());
    assert!(!store.apply(&[sent], T0 + 5000).await.unwrap(), "a sent message stays sent");
    let d = store.message_delivery("t_1", "d-1").await.unwrap().unwrap();
    assert_eq!((d.status, d.attempts, d.last_error, d.sent_at), (DeliveryStatus::Sent, 2, None, Some(T0 + 4000)));
    assert!(store.message_delivery("t_2", "d-1").await.unwrap().is_none());

    // Due: live links past their expiry, or whose instruction settled.
    assert!(store.apply(&[Change::InsertPayByLink(Box::new(pay_link("L3", T0 + 600_000)))], T0).await.unwrap());
    let due = |now| {
        let store = store.clone();
        async move {
            store
                .pay_by_links_due(now, 10)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.link.pay_by_link_id)
                .collect::<Vec<_>>()
        }
    };
    assert!(due(T0 + 59_999).await.is_empty());
    assert_eq!(due(T0 + 60_000).await, ["L1"]);
    let settle = Change::InstructionStatus {
        tenant_id: "t_1".into(),
        order_id: "o-1".into(),
        instruction_id: "i-1".into(),
        from: vec![InstructionStatus::Incomplete],
        to: InstructionStatus::Settled,
    };
    assert!(store.apply(&[settle], T0).await.unwrap());
    assert_eq!(due(T0).await, ["L1", "L3"]);
    let expire = Change::PayByLinkStatus {
        tenant_id: "t_1".into(),
        pay_by_link_id: "L1".into(),
        from: PayByLinkStatus::LIVE.to_vec(),
        to: PayByLinkStatus::Expired,
    };
    assert!(store.apply(&[expire], T0 + 70_000).await.unwrap());
    let row = store.pay_by_link("t_1", "L1").await.unwrap().unwrap();
    assert_eq!((row.link.status, row.link.finished_at), (PayByLinkStatus::Expired, Some(T0 + 70_000)));
    assert_eq!(due(T0 + 70_000).await, ["L3"], "ended links are not due");
}

pub(crate) async fn scenario_pay_by_link_status_concurrent(store: Arc<dyn Store>) {
    use baton_domain::PayByLinkStatus;
    two_tenants(&*store).await;
    let ins = InstructionRecord {
        direction: baton_domain::Direction::Debit,
        ..instruction_record("t_1", "o-1", "i-1", "C1")
    };
    store.create_order(&order_record("t_1", "o-1", "REF1"), &[], &[ins]).await.unwrap();
    assert!(store.apply(&[Change::InsertPayByLink(Box::new(pay_link("L1", T0)))], T0).await.unwrap());
    // An open, an expiry and a cancellation race: exactly one moves the link, and its
    // event is written only with it.
    let barrier = Arc::new(Barrier::new(3));
    let mut tasks = Vec::new();
    for (i, to) in
        [PayByLinkStatus::Opened, PayByLinkStatus::Expired, PayByLinkStatus::Cancelled].into_iter().enumerate()
    {
        let store = store.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let changes = [
                Change::PayByLinkStatus {
                    tenant_id: "t_1".into(),
                    pay_by_link_id: "L1".into(),
                    from: vec![PayByLinkStatus::Active],
                    to,
                },
                Change::Event(event("t_1", &format!("e-{i}"), baton_domain::EventType::PayByLinkExpired)),
            ];
            store.apply(&changes, T0).await.unwrap()
        }));
    }
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap());
    }
    assert_eq!(won, 1);
    assert_eq!(store.events("t_1").await.unwrap().len(), 1);
}

/// `n` READY instructions `i-1`… of order `o-1` (paid with `fi-1` through their customer
/// default), each with a live link `L1`… expiring at `T0 + 60 s`.
pub(crate) async fn instructions_with_links(store: &dyn Store, n: usize) -> CustomerDefaultRecord {
    two_tenants(store).await;
    assert!(store.create_customer_key(&customer_key("t_1", "C1", "mk-1", T0)).await.unwrap());
    store.insert_instrument(&instrument("fi-1", "t_1", "C1", InstrumentType::Card, T0)).await.unwrap();
    store
        .create_scheme(&scheme("t_1", "s-1", SchemeKind::Payout), &draft("t_1", "s-1", "d-1", "V1", &[], &[]))
        .await
        .unwrap();
    let default = default_record("o-1", "C1", Some("fi-1"), Some("s-1"));
    let instructions: Vec<InstructionRecord> =
        (1..=n).map(|i| instruction_record("t_1", "o-1", &format!("i-{i}"), "C1")).collect();
    store
        .create_order(&order_record("t_1", "o-1", "REF1"), std::slice::from_ref(&default), &instructions)
        .await
        .unwrap();
    for i in 1..=n {
        let link = baton_store::PayByLinkRecord {
            instruction_id: format!("i-{i}"),
            ..pay_link(&format!("L{i}"), T0 + 60_000)
        };
        assert!(store.apply(&[Change::InsertPayByLink(Box::new(link))], T0).await.unwrap());
    }
    default
}

pub(crate) fn link_live(tenant_id: &str, link: &str) -> Change {
    Change::PayByLinkLive { tenant_id: tenant_id.into(), pay_by_link_id: link.into() }
}

/// What cancelling link `link` of instruction `instruction` writes.
pub(crate) fn cancel_link(link: &str, instruction: &str) -> [Change; 2] {
    use baton_domain::InstructionStatus::*;
    [
        Change::PayByLinkStatus {
            tenant_id: "t_1".into(),
            pay_by_link_id: link.into(),
            from: baton_domain::PayByLinkStatus::LIVE.to_vec(),
            to: baton_domain::PayByLinkStatus::Cancelled,
        },
        Change::InstructionStatusIn {
            tenant_id: "t_1".into(),
            instruction_id: instruction.into(),
            statuses: vec![Incomplete, Ready, Late, Failed, Void],
        },
    ]
}

pub(crate) async fn scenario_pay_by_link_guards(store: Arc<dyn Store>) {
    use baton_domain::InstructionStatus::{Processing, Ready};
    use baton_domain::PayByLinkStatus;
    let default = instructions_with_links(&*store, 3).await;
    let read = |id: &'static str| {
        let store = store.clone();
        async move { store.instruction("t_1", "o-1", &format!("ref-{id}")).await.unwrap().unwrap() }
    };
    let link = |id: &'static str| {
        let store = store.clone();
        async move { store.pay_by_link("t_1", id).await.unwrap().unwrap().link }
    };
    let start = |seen: &InstructionRecord| Change::StartProcessing {
        seen: Box::new(seen.clone()),
        default: Some(Box::new(default.clone())),
    };

    // A live link passes and is left as it was; an expired, foreign or unknown one fails.
    let before = link("L1").await;
    assert!(store.apply(&[link_live("t_1", "L1")], T0 + 1).await.unwrap());
    assert_eq!(link("L1").await, before, "the guard writes nothing");
    assert!(!store.apply(&[link_live("t_1", "L1")], T0 + 60_000).await.unwrap(), "past its expiry");
    assert!(!store.apply(&[link_live("t_2", "L1")], T0 + 1).await.unwrap(), "another tenant's");
    assert!(!store.apply(&[link_live("t_1", "L9")], T0 + 1).await.unwrap(), "no such link");

    // A cancelled link fails the start of its payment, and the start writes nothing.
    assert!(store.apply(&cancel_link("L1", "i-1"), T0 + 2).await.unwrap());
    assert_eq!(link("L1").await.status, PayByLinkStatus::Cancelled);
    let seen = read("i-1").await;
    assert_eq!(seen.status, Ready);
    assert!(!store.apply(&[start(&seen), link_live("t_1", "L1")], T0 + 3).await.unwrap());
    assert_eq!(read("i-1").await, seen, "not started");
    // So does one past its expiry that no worker has marked yet.
    let seen = read("i-3").await;
    assert!(!store.apply(&[start(&seen), link_live("t_1", "L3")], T0 + 60_000).await.unwrap());
    assert_eq!(read("i-3").await, seen);

    // A live link lets it start; then the link can no longer be cancelled.
    let seen = read("i-2").await;
    assert!(store.apply(&[start(&seen), link_live("t_1", "L2")], T0 + 4).await.unwrap());
    assert_eq!(read("i-2").await.status, Processing);
    assert!(!store.apply(&cancel_link("L2", "i-2"), T0 + 5).await.unwrap(), "a payment is under way");
    assert_eq!(link("L2").await.status, PayByLinkStatus::Active, "the cancel wrote nothing");
    let foreign =
        Change::InstructionStatusIn { tenant_id: "t_2".into(), instruction_id: "i-3".into(), statuses: vec![Ready] };
    assert!(!store.apply(&[foreign], T0 + 5).await.unwrap(), "another tenant's instruction");
}

/// A payment's start and its link's cancel race: exactly one of them commits.
pub(crate) async fn scenario_cancel_races_payment_start(store: Arc<dyn Store>) {
    use baton_domain::InstructionStatus::{Processing, Ready};
    use baton_domain::PayByLinkStatus;
    const ROUNDS: usize = 8;
    let default = instructions_with_links(&*store, ROUNDS).await;
    let (mut started, mut cancelled) = (0, 0);
    for i in 1..=ROUNDS {
        let (instruction, link) = (format!("i-{i}"), format!("L{i}"));
        let seen = store.instruction("t_1", "o-1", &format!("ref-{instruction}")).await.unwrap().unwrap();
        let start = vec![
            Change::StartProcessing { seen: Box::new(seen.clone()), default: Some(Box::new(default.clone())) },
            link_live("t_1", &link),
        ];
        let cancel = cancel_link(&link, &instruction).to_vec();
        let won = race(2, |racer| {
            let store = store.clone();
            let changes = if racer == 0 { start.clone() } else { cancel.clone() };
            async move { store.apply(&changes, T0 + 1).await.unwrap() }
        })
        .await;
        let now = store.instruction("t_1", "o-1", &format!("ref-{instruction}")).await.unwrap().unwrap();
        let status = store.pay_by_link("t_1", &link).await.unwrap().unwrap().link.status;
        match won[..] {
            [true, false] => {
                started += 1;
                assert_eq!((now.status, status), (Processing, PayByLinkStatus::Active));
            }
            [false, true] => {
                cancelled += 1;
                assert_eq!((now.status, status), (Ready, PayByLinkStatus::Cancelled));
            }
            _ => panic!("round {i}: start and cancel applied {won:?}; instruction {:?}, link {status:?}", now.status),
        }
    }
    eprintln!("started first: {started}, cancelled first: {cancelled}");
}

pub(crate) async fn scenario_tenant_documents(store: Arc<dyn Store>) {
    use baton_store::{DocumentKind, SealedSecretRef, TenantDocument};
    two_tenants(&*store).await;
    let doc = |tenant: &str, text: &str, sealed: Option<Vec<u8>>, at| TenantDocument {
        tenant_id: tenant.into(),
        document: text.into(),
        secrets_sealed: sealed,
        updated_at: at,
    };
    assert!(store.tenant_document(DocumentKind::ThemeTemplate, "t_1").await.unwrap().is_none());
    let theme = doc("t_1", r#"{"styleSheet":"a{color:red}"}"#, None, T0);
    store.save_tenant_document(DocumentKind::ThemeTemplate, &theme).await.unwrap();
    assert_eq!(store.tenant_document(DocumentKind::ThemeTemplate, "t_1").await.unwrap(), Some(theme));
    let replaced = doc("t_1", r#"{"styleSheet":""}"#, None, T0 + 1);
    store.save_tenant_document(DocumentKind::ThemeTemplate, &replaced).await.unwrap();
    assert_eq!(store.tenant_document(DocumentKind::ThemeTemplate, "t_1").await.unwrap(), Some(replaced));
    // The kinds and the tenants are kept apart.
    assert!(store.tenant_document(DocumentKind::DeliverySettings, "t_1").await.unwrap().is_none());
    assert!(store.tenant_document(DocumentKind::ThemeTemplate, "t_2").await.unwrap().is_none());

    // Delivery secrets are among the values a master key rotation re-seals.
    let settings = doc("t_2", "{}", Some(vec![9, 9, 9]), T0);
    store.save_tenant_document(DocumentKind::DeliverySettings, &settings).await.unwrap();
    let location = SealedSecretRef::DeliverySettings { tenant_id: "t_2".into() };
    let listed = store.sealed_secrets().await.unwrap();
    assert!(listed.iter().any(|s| s.location == location && s.sealed == vec![9, 9, 9]), "{listed:?}");
    assert!(!store.reseal_secret(&location, &[1], &[7, 7]).await.unwrap(), "compare-and-set on the old bytes");
    assert!(store.reseal_secret(&location, &[9, 9, 9], &[7, 7]).await.unwrap());
    let saved = store.tenant_document(DocumentKind::DeliverySettings, "t_2").await.unwrap().unwrap();
    assert_eq!(saved.secrets_sealed, Some(vec![7, 7]));
}

/// A server whose autovacuum is off is named in the node's warnings; one with it on is not.
#[tokio::test]
async fn postgres_warns_when_autovacuum_is_off() {
    use sqlx::Connection as _;

    let Some(db) = PgTestDatabase::create().await else {
        return;
    };
    let store = PostgresStore::connect(&db.url, 1).await.expect("connect to test database");
    let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connection");
    let setting: String = sqlx::query_scalar("SHOW autovacuum").fetch_one(&mut conn).await.unwrap();
    let warnings = store.setting_warnings().await.unwrap();
    let named = warnings.iter().any(|w| w.contains("autovacuum is off"));
    assert_eq!(named, setting == "off", "autovacuum = {setting}: {warnings:?}");
}
