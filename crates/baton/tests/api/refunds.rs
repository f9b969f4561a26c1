//! Refunds (SPEC §5.2): partial and repeated refunds of a settled debit through the
//! sandbox card PSP, never more than settled in total, with their events.

use crate::common;

use common::Payments;
use serde_json::{json, Value};

const VISA: &str = "4242424242424242";

fn refunds(order_ref: &str) -> String {
    format!("/v1/order-management/{order_ref}/instruction/I1/refunds")
}

async fn event_types(p: &Payments) -> Vec<String> {
    let events = p.app.engine().outbox_events(&p.tenant).await.unwrap();
    events.iter().map(|e| e.event.event_type.as_str().to_string()).collect()
}

#[tokio::test]
async fn partial_and_repeated_refunds_never_exceed_the_settled_amount() {
    let p = Payments::new().await;
    p.settled("O1", VISA, "100.00").await;
    let reply = p
        .app
        .post(
            &refunds("O1"),
            &p.token,
            &json!({ "refundRef": "R1", "amount": "30.50", "reason": "OTHER",
            "metadata": { "ticket": "T-1" } }),
        )
        .await;
    let body = reply.assert_status(202).clone();
    assert_eq!(reply.header("location"), Some("/v1/order-management/O1/instruction/I1/refunds/R1"));
    assert_eq!(body["refundRef"], "R1");
    assert_eq!(body["amount"], json!(30.5));
    assert_eq!(body["currency"], "EUR");
    assert_eq!(body["reason"], "OTHER");
    assert_eq!(body["status"], "SETTLED");
    assert!(body["providerReference"].as_str().unwrap().starts_with("sbx_re_"));
    assert_eq!(body["metadata"], json!({ "ticket": "T-1" }));
    assert!(body["createdAt"].as_str().unwrap().ends_with('Z'));

    // More than remains is refused; the same ref again is a conflict.
    let too_much = json!({ "refundRef": "R2", "amount": "69.51", "reason": "DUPLICATE" });
    p.app.post(&refunds("O1"), &p.token, &too_much).await.assert_error(400, "REFUND_EXCEEDS_REMAINING");
    let again = json!({ "refundRef": "R1", "amount": "1", "reason": "OTHER" });
    p.app.post(&refunds("O1"), &p.token, &again).await.assert_error(409, "REFUND_REF_ALREADY_EXISTS");
    // Precision and reason are checked.
    let precise = json!({ "refundRef": "R3", "amount": "1.001", "reason": "OTHER" });
    p.app.post(&refunds("O1"), &p.token, &precise).await.assert_error(400, "INVALID_AMOUNT_PRECISION");
    let no_reason = json!({ "refundRef": "R3", "amount": "1" });
    p.app.post(&refunds("O1"), &p.token, &no_reason).await.assert_error(400, "REFUND_REASON_REQUIRED");
    let bad_reason = json!({ "refundRef": "R3", "amount": "1", "reason": "BORED" });
    p.app.post(&refunds("O1"), &p.token, &bad_reason).await.assert_error(400, "INVALID_REFUND_REASON");
    let no_ref = json!({ "amount": "1", "reason": "OTHER" });
    p.app.post(&refunds("O1"), &p.token, &no_ref).await.assert_error(400, "REFUND_REF_REQUIRED");

    // Without an amount, what remains is refunded; then nothing remains.
    let rest =
        p.app.post(&refunds("O1"), &p.token, &json!({ "refundRef": "R4", "reason": "ORDER_NOT_FULFILLED" })).await;
    assert_eq!(rest.assert_status(202)["amount"], json!(69.5));
    let more = json!({ "refundRef": "R5", "amount": "0.01", "reason": "OTHER" });
    p.app.post(&refunds("O1"), &p.token, &more).await.assert_error(400, "REFUND_EXCEEDS_REMAINING");

    // Reading, with the read role.
    let read = p.token_with(&["tenant-transaction-read"]).await;
    let list = p.app.get(&refunds("O1"), &read).await;
    let refs: Vec<&str> =
        list.assert_status(200).as_array().unwrap().iter().map(|r| r["refundRef"].as_str().unwrap()).collect();
    assert_eq!(refs, ["R1", "R4"]);
    let one = p.app.get(&format!("{}/R1", refunds("O1")), &read).await;
    assert_eq!(one.assert_status(200), &body);
    p.app.get(&format!("{}/NOPE", refunds("O1")), &read).await.assert_error(404, "REFUND_NOT_FOUND");
    // Writing needs the write role.
    let write = json!({ "refundRef": "R9", "amount": "1", "reason": "OTHER" });
    assert_eq!(p.app.post(&refunds("O1"), &read, &write).await.status, 403);

    let types = event_types(&p).await;
    let refund_events: Vec<&str> = types.iter().map(String::as_str).filter(|t| t.starts_with("refund.")).collect();
    assert_eq!(refund_events, ["refund.created", "refund.settled", "refund.created", "refund.settled"]);
}

#[tokio::test]
async fn only_settled_debits_are_refundable() {
    let p = Payments::new().await;
    // READY (not executed yet).
    p.order("O1", VISA, "10.00").await;
    let body = json!({ "refundRef": "R1", "reason": "OTHER" });
    p.app.post(&refunds("O1"), &p.token, &body).await.assert_error(400, "NOT_REFUNDABLE");
    // FAILED (declined card).
    p.order("O2", "4000000000000002", "10.00").await;
    p.execute("O2").await.assert_error(402, "PAYMENT_DECLINED");
    p.app.post(&refunds("O2"), &p.token, &body).await.assert_error(400, "NOT_REFUNDABLE");
    p.app.post(&refunds("NOPE"), &p.token, &body).await.assert_error(404, "ORDER_NOT_FOUND");
    let missing = "/v1/order-management/O1/instruction/NOPE/refunds";
    p.app.post(missing, &p.token, &body).await.assert_error(404, "INSTRUCTION_NOT_FOUND");
    assert_eq!(p.app.get(&refunds("O2"), &p.token).await.assert_status(200), &Value::Array(vec![]));
}

#[tokio::test]
async fn concurrent_refunds_cannot_exceed_the_settled_amount() {
    let p = Payments::new().await;
    p.settled("O1", VISA, "10.00").await;
    // Eight refunds of 4.00 against 10.00 settled, all at once: exactly two can pass.
    let path = refunds("O1");
    let body = |i: u32| json!({ "refundRef": format!("R{i}"), "amount": "4.00", "reason": "OTHER" });
    let (b0, b1, b2, b3, b4, b5, b6, b7) = (body(0), body(1), body(2), body(3), body(4), body(5), body(6), body(7));
    let post = |b| p.app.post(&path, &p.token, b);
    let (r0, r1, r2, r3, r4, r5, r6, r7) =
        tokio::join!(post(&b0), post(&b1), post(&b2), post(&b3), post(&b4), post(&b5), post(&b6), post(&b7));
    let replies = [r0, r1, r2, r3, r4, r5, r6, r7];
    let accepted = replies.iter().filter(|r| r.status == 202).count();
    assert_eq!(accepted, 2, "{:?}", replies.iter().map(|r| r.text.clone()).collect::<Vec<_>>());
    for r in replies.iter().filter(|r| r.status != 202) {
        r.assert_error(400, "REFUND_EXCEEDS_REMAINING");
    }
    let list = p.app.get(&refunds("O1"), &p.token).await;
    let total: f64 = list.assert_status(200).as_array().unwrap().iter().map(|r| r["amount"].as_f64().unwrap()).sum();
    assert_eq!(total, 8.0);
}

// -- answers that are lost or come later ---------------------------------------------------

/// The sandbox card PSP, except that refunds are scripted: the first answer can be lost
/// (the PSP refunds but the call times out), or refunds can settle later. Every call is
/// recorded with its idempotency key, as a PSP deduplicates by it.
#[derive(Clone, Default)]
struct ScriptedRefunds {
    calls: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    lose_first: std::sync::Arc<std::sync::atomic::AtomicBool>,
    settle_later: bool,
}

#[async_trait::async_trait]
impl baton_connectors::Connector for ScriptedRefunds {
    fn descriptor(&self) -> &'static baton_connectors::AppDescriptor {
        &baton_connectors::sandbox_card::DESCRIPTOR
    }

    async fn debit(
        &self,
        ctx: &baton_connectors::CallContext<'_>,
        request: &baton_connectors::PaymentRequest<'_>,
    ) -> Result<baton_connectors::Outcome, baton_connectors::ConnectorError> {
        baton_connectors::sandbox_card::SandboxCard.debit(ctx, request).await
    }

    async fn sync(
        &self,
        ctx: &baton_connectors::CallContext<'_>,
        request: &baton_connectors::SyncRequest<'_>,
    ) -> Result<baton_connectors::Outcome, baton_connectors::ConnectorError> {
        baton_connectors::sandbox_card::SandboxCard.sync(ctx, request).await
    }

    fn parse_notification(
        &self,
        ctx: &baton_connectors::CallContext<'_>,
        incoming: &baton_connectors::IncomingNotification<'_>,
    ) -> Result<Vec<baton_connectors::Notification>, baton_connectors::NotificationError> {
        baton_connectors::sandbox_card::SandboxCard.parse_notification(ctx, incoming)
    }

    async fn refund(
        &self,
        _ctx: &baton_connectors::CallContext<'_>,
        request: &baton_connectors::RefundRequest<'_>,
    ) -> Result<baton_connectors::Outcome, baton_connectors::ConnectorError> {
        use std::sync::atomic::Ordering;
        self.calls.lock().unwrap().push(request.idempotency_key.to_string());
        if self.lose_first.swap(false, Ordering::SeqCst) {
            return Err(baton_connectors::ConnectorError::Unknown("connection reset after sending".into()));
        }
        let provider_reference = format!("re_{}", request.refund_id);
        Ok(if self.settle_later {
            baton_connectors::Outcome::Pending { provider_reference, check_after: std::time::Duration::from_secs(3600) }
        } else {
            baton_connectors::Outcome::Succeeded { provider_reference, result: None }
        })
    }
}

async fn payments_with(psp: &ScriptedRefunds) -> Payments {
    let mut connectors = baton_connectors::Connectors::standard();
    connectors.insert(std::sync::Arc::new(psp.clone()));
    Payments::with_options(common::Options { accept_raw_card_data: true, connectors, ..Default::default() }).await
}

#[tokio::test]
async fn a_refund_whose_answer_was_lost_is_asked_again_never_refunded_twice() {
    let psp = ScriptedRefunds::default();
    psp.lose_first.store(true, std::sync::atomic::Ordering::SeqCst);
    let p = payments_with(&psp).await;
    p.settled("O1", VISA, "20.00").await;
    let reply = p.app.post(&refunds("O1"), &p.token, &json!({ "refundRef": "R1", "reason": "DUPLICATE" })).await;
    assert_eq!(reply.assert_status(202)["status"], "PENDING");

    // Not yet due: nothing happens.
    assert_eq!(p.app.tick().await.jobs_run, 0);
    p.app.clock.advance(std::time::Duration::from_secs(11));
    assert_eq!(p.app.tick().await.jobs_run, 1);
    let refund = p.app.get(&format!("{}/R1", refunds("O1")), &p.token).await;
    assert_eq!(refund.assert_status(200)["status"], "SETTLED");
    let calls = psp.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0], calls[1], "asked again with the same idempotency key");
    let events = event_types(&p).await;
    assert_eq!(
        events.iter().filter(|e| e.starts_with("refund.")).collect::<Vec<_>>(),
        ["refund.created", "refund.settled"]
    );
    // Done: no job is left.
    p.app.clock.advance(std::time::Duration::from_secs(3600));
    assert_eq!(p.app.tick().await.jobs_run, 0);
}

#[tokio::test]
async fn a_refund_settled_later_is_recorded_from_the_psp_notification() {
    let psp = ScriptedRefunds { settle_later: true, ..ScriptedRefunds::default() };
    let p = payments_with(&psp).await;
    p.settled("O1", VISA, "20.00").await;
    let reply = p.app.post(&refunds("O1"), &p.token, &json!({ "refundRef": "R1", "reason": "OTHER" })).await;
    let body = reply.assert_status(202).clone();
    assert_eq!(body["status"], "PROCESSING");
    let refund_reference = body["providerReference"].as_str().unwrap().to_string();

    let transactions = p.app.get("/v1/order-management/O1/instruction/I1/transactions", &p.token).await;
    let payment_reference = transactions.assert_status(200)[0]["providerReference"].as_str().unwrap().to_string();
    let notice = json!({ "type": "refund", "paymentReference": payment_reference,
        "refundReference": refund_reference, "status": "SETTLED" })
    .to_string();
    let signature =
        baton_connectors::sandbox_card::signed::sign(Payments::API_KEY, p.app.now_ms() / 1000, notice.as_bytes());
    let path = format!("/v1/psp-events/{}/SANDBOX_CARD", p.tenant);
    let headers = [("content-type", "application/json"), ("baton-sandbox-signature", signature.as_str())];
    let reply = p.app.post_raw(&path, &headers, notice.clone()).await;
    assert!(reply.status.is_success(), "{}", reply.text);
    let refund = p.app.get(&format!("{}/R1", refunds("O1")), &p.token).await;
    assert_eq!(refund.assert_status(200)["status"], "SETTLED");
    // A repeat of the notification changes nothing; the refund's follow-up job is gone.
    p.app.post_raw(&path, &headers, notice).await;
    let events = event_types(&p).await;
    assert_eq!(events.iter().filter(|e| *e == "refund.settled").count(), 1);
    p.app.clock.advance(std::time::Duration::from_secs(7200));
    assert_eq!(p.app.tick().await.jobs_run, 0);
}
