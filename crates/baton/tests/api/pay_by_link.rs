//! Pay-by-link (SPEC §4.11, §5.7): links, their messages through a real SMTP server
//! (`aiosmtpd`, which parses each message it receives) and a real HTTP SMS gateway,
//! the public `/pay/{id}` page, expiry, cancellation, and the tenant's own delivery
//! settings. Every test runs on SQLite, and on PostgreSQL with `BATON_TEST_DATABASE_URL`.

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use baton::config::Database;
use baton_engine::pay_by_link::delivery::{DeliveryConfig, SmsGatewayConfig, SmsMethod, SmtpConfig, SmtpTls};
use common::{Options, Payments, Reply};
use reqwest::Method;
use serde_json::{json, Value};

const LINKS: &str = "/v1/whitelabel-customer/session/checkout/pay-by-link";

// -- SMTP sink ---------------------------------------------------------------------------

/// The sink: aiosmtpd on a free loopback port. Each message is parsed with Python's
/// `email` package and printed as one JSON line. `SINK_FAIL_FIRST=n` answers the
/// first n messages `451` (try again later), `SINK_REJECT=1` answers `550`.
const SMTP_SINK: &str = r#"
import email, json, os, socket, sys
from email import policy
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

fail_first = int(os.environ.get("SINK_FAIL_FIRST", "0"))
reject = os.environ.get("SINK_REJECT") == "1"
seen = {"n": 0}

class Handler:
    async def handle_DATA(self, server, session, envelope):
        seen["n"] += 1
        if reject:
            return "550 5.1.1 mailbox unavailable"
        if seen["n"] <= fail_first:
            return "451 4.3.0 try again later"
        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        text = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        auth = getattr(session, "auth_data", None)
        print(json.dumps({
            "login": auth.login.decode() if auth is not None else None,
            "mailFrom": envelope.mail_from, "rcptTos": envelope.rcpt_tos,
            "from": str(msg["From"]), "to": str(msg["To"]), "subject": str(msg["Subject"]),
            "contentType": msg.get_content_type(),
            "text": text.get_content() if text is not None else None,
            "html": html.get_content() if html is not None else None,
        }), flush=True)
        return "250 OK"

s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
def authenticator(server, session, envelope, mechanism, auth_data):
    # The one account of the tests; anything else is refused.
    ok = auth_data.login == b"acme" and auth_data.password == b"smtp-pass-123"
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

controller = Controller(Handler(), hostname="127.0.0.1", port=port,
                        authenticator=authenticator, auth_require_tls=False)
controller.start()
print(json.dumps({"ready": port}), flush=True)
sys.stdin.read()
controller.stop()
"#;

/// A Python with `aiosmtpd`: `python3` if it has it (`.ci/run` installs it), else the
/// tests' virtual environment, installed once.
fn smtp_python() -> std::path::PathBuf {
    let has_it = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if has_it {
        return "python3".into();
    }
    common::python_venv(&["aiosmtpd"]).join("bin").join("python")
}

struct SmtpSink {
    child: Child,
    port: u16,
    messages: mpsc::Receiver<Value>,
}

impl SmtpSink {
    fn start(env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(smtp_python())
            .args(["-c", SMTP_SINK])
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the SMTP sink starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if tx.send(v).is_err() {
                        break;
                    }
                }
            }
        });
        // Readiness of an external process: wait for its first line, with a deadline.
        let ready = rx.recv_timeout(Duration::from_secs(60)).expect("the SMTP sink reports its port");
        let port = ready["ready"].as_u64().expect("ready line") as u16;
        Self { child, port, messages: rx }
    }

    fn config(&self) -> SmtpConfig {
        SmtpConfig {
            host: "127.0.0.1".into(),
            port: self.port,
            tls: SmtpTls::None,
            username: None,
            password: None,
            from: "payments@baton.test".into(),
        }
    }

    /// The next message; the worker round that sent it has returned, so it is there.
    fn next(&self) -> Value {
        self.messages.recv_timeout(Duration::from_secs(10)).expect("a message reached the SMTP sink")
    }

    fn assert_empty(&self) {
        assert!(self.messages.recv_timeout(Duration::from_millis(300)).is_err(), "no further message");
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.flush();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// -- HTTP sink (an SMS gateway) ------------------------------------------------------------

#[derive(Clone, Default)]
struct Gateway {
    received: Arc<Mutex<Vec<(axum::http::HeaderMap, Value)>>>,
    /// Statuses to answer, in order; 200 once empty.
    script: Arc<Mutex<Vec<u16>>>,
}

impl Gateway {
    async fn start(script: &[u16]) -> (Self, String) {
        let gateway = Gateway { script: Arc::new(Mutex::new(script.to_vec())), ..Default::default() };
        let state = gateway.clone();
        let app = axum::Router::new().route(
            "/sms/send",
            axum::routing::post(move |headers: axum::http::HeaderMap, axum::Json(body): axum::Json<Value>| {
                let state = state.clone();
                async move {
                    state.received.lock().unwrap().push((headers, body));
                    let mut script = state.script.lock().unwrap();
                    let status = if script.is_empty() { 200 } else { script.remove(0) };
                    (axum::http::StatusCode::from_u16(status).unwrap(), "{\"id\":\"msg-1\"}")
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/sms/send", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (gateway, url)
    }

    fn requests(&self) -> Vec<(axum::http::HeaderMap, Value)> {
        self.received.lock().unwrap().clone()
    }
}

fn sms_config(url: &str) -> SmsGatewayConfig {
    SmsGatewayConfig {
        url: url.into(),
        method: SmsMethod::Post,
        body: r#"{"recipient":"{{to}}","text":"{{message}}","sender":"Baton"}"#.into(),
        auth_header: Some("X-Api-Key".into()),
        auth_value: Some("gateway-secret".into()),
    }
}

// -- fixtures --------------------------------------------------------------------------------

async fn payments(delivery: DeliveryConfig) -> Payments {
    Payments::with_options(Options {
        accept_raw_card_data: true,
        public_url: Some("https://pay.baton.test".into()),
        delivery,
        ..Options::default()
    })
    .await
}

/// An order with an INCOMPLETE DEBIT instruction `I1` (no card yet) of `amount` EUR,
/// whose metadata must never reach a message.
async fn unpaid_order(p: &Payments, order_ref: &str, amount: &str) {
    let order = json!({ "orderRef": order_ref, "metadata": {"policyNumber": "POLICY-SECRET-77"}, "instructions": [{
        "instructionRef": "I1", "customerRef": "C1", "direction": "DEBIT", "schemeId": p.scheme,
        "amount": amount, "currency": "EUR", "country": "DE", "metadata": {"internalNote": "NOTE-SECRET-88"} }] });
    p.app.post("/v1/order-management", &p.token, &order).await.assert_status(202);
}

async fn create_link(p: &Payments, body: Value) -> Reply {
    p.app.post(LINKS, &p.token, &body).await
}

async fn get_link(p: &Payments, id: &str) -> Value {
    p.app.get(&format!("{LINKS}/{id}"), &p.token).await.assert_status(200).clone()
}

/// Rows of a table matching `condition`, read straight from the node's database.
async fn count(p: &Payments, table: &str, condition: &str) -> i64 {
    use sqlx::Connection;
    let sql = format!("SELECT COUNT(*) FROM {table} WHERE {condition}");
    match &p.app.config.store.database {
        Database::Sqlite { path } => {
            use sqlx::ConnectOptions;
            let mut c = sqlx::sqlite::SqliteConnectOptions::new().filename(path).connect().await.unwrap();
            let n: i64 = sqlx::query_scalar(&sql).fetch_one(&mut c).await.unwrap();
            c.close().await.unwrap();
            n
        }
        Database::Postgres { url, .. } => {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            let n: i64 = sqlx::query_scalar(&sql).fetch_one(&mut c).await.unwrap();
            c.close().await.unwrap();
            n
        }
    }
}

/// `GET /pay/{id}` without following redirects.
async fn open(p: &Payments, id: &str, headers: &[(&str, &str)]) -> Reply {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut req = client.get(p.app.url(&format!("/pay/{id}")));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    common::read(req.send().await.unwrap()).await
}

// -- tests ---------------------------------------------------------------------------------

#[tokio::test]
async fn an_email_link_reaches_the_customer_in_german_with_link_merchant_and_amount() {
    let sink = SmtpSink::start(&[]);
    let p = payments(DeliveryConfig { email: Some(sink.config()), sms: None }).await;
    // The tenant's brand colour styles the e-mail.
    let theme = json!({"brandColor": "#7A1F5C"});
    p.app.put("/v1/whitelabel/theme-template", &p.token, &theme).await.assert_status(200);
    unpaid_order(&p, "PBL-1", "1234.50").await;

    // The seed's request: expirySeconds as a string.
    let reply = create_link(
        &p,
        json!({"orderRef": "PBL-1", "instructionRef": "I1", "expirySeconds": "6000",
                 "delivery": {"channel": "EMAIL", "to": "Jane.Doe@Example.com", "language": "de-DE"}}),
    )
    .await;
    let body = reply.assert_status(201).clone();
    let id = body["payByLinkId"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 22, "128 random bits, base64url");
    assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{id}");
    assert_eq!(body["link"], format!("https://pay.baton.test/pay/{id}"));
    assert_eq!(reply.header("location"), Some(format!("{LINKS}/{id}").as_str()));
    assert_eq!(body["status"], "ACTIVE");
    let at = |v: &Value| {
        time::OffsetDateTime::parse(v.as_str().unwrap(), &time::format_description::well_known::Rfc3339).unwrap()
    };
    assert_eq!(at(&body["expiresAt"]) - at(&body["createdAt"]), time::Duration::seconds(6000));
    assert_eq!(body["deliveries"][0]["status"], "QUEUED");
    assert_eq!(body["deliveries"][0]["to"], "J***@example.com", "recipients are shown masked");
    assert!(!reply.text.contains("Jane.Doe"), "{}", reply.text);

    // The message is queued in the database with its job; the worker sends it.
    assert_eq!(count(&p, "jobs", "kind = 'deliver-message'").await, 1);
    let report = p.app.tick().await;
    assert_eq!(report.jobs_run, 1, "{report:?}");
    let mail = sink.next();
    assert_eq!(mail["rcptTos"], json!(["Jane.Doe@example.com"]));
    assert_eq!(mail["from"], "Payments tenant <payments@baton.test>", "the merchant's name as sender");
    assert_eq!(mail["contentType"], "multipart/alternative");
    assert_eq!(mail["subject"], "Zahlungsaufforderung von Payments tenant: 1.234,50 €");
    let text = mail["text"].as_str().unwrap();
    let html = mail["html"].as_str().unwrap();
    let link = format!("https://pay.baton.test/pay/{id}");
    assert!(text.contains(&link) && text.contains("1.234,50 €") && text.contains("Payments tenant"), "{text}");
    assert!(text.contains("Der Link ist gültig bis"), "{text}");
    assert!(html.contains(&format!("href=\"{link}\"")) && html.contains("lang=\"de-DE\""), "{html}");
    assert!(html.contains("#7a1f5c"), "the brand colour: {html}");
    for secret in ["POLICY-SECRET-77", "NOTE-SECRET-88", "policyNumber"] {
        assert!(!text.contains(secret) && !html.contains(secret), "metadata never reaches a message");
    }

    let link = get_link(&p, &id).await;
    assert_eq!(link["status"], "ACTIVE");
    let d = &link["deliveries"][0];
    assert_eq!((d["status"].as_str(), d["attempts"].as_i64()), (Some("SENT"), Some(1)), "{link}");
    assert!(d["sentAt"].is_string() && d.get("lastError").is_none(), "{link}");
    assert_eq!(count(&p, "jobs", "kind = 'deliver-message'").await, 0, "the job is done");
    sink.assert_empty();
    // The recipient is stored sealed, never in clear.
    assert_eq!(count(&p, "message_deliveries", "recipient_masked = 'J***@example.com'").await, 1);
}

#[tokio::test]
async fn an_sms_goes_through_the_gateway_template_with_its_auth_header() {
    let (gateway, url) = Gateway::start(&[]).await;
    let p = payments(DeliveryConfig { email: None, sms: Some(sms_config(&url)) }).await;
    unpaid_order(&p, "PBL-SMS", "49.90").await;
    let body = json!({"orderRef": "PBL-SMS", "instructionRef": "I1", "expirySeconds": 3600,
        "delivery": {"channel": "SMS", "to": "+44 7700 900123"}});
    let created = create_link(&p, body).await.assert_status(201).clone();
    let id = created["payByLinkId"].as_str().unwrap();
    assert_eq!(created["deliveries"][0]["to"], "+44*******123");
    p.app.tick().await;

    let requests = gateway.requests();
    assert_eq!(requests.len(), 1);
    let (headers, body) = &requests[0];
    assert_eq!(headers.get("x-api-key").unwrap(), "gateway-secret");
    assert_eq!(body["recipient"], "+447700900123");
    assert_eq!(body["sender"], "Baton");
    assert_eq!(body["text"], format!("Payments tenant: please pay €49.90 securely at https://pay.baton.test/pay/{id}"));
    let link = get_link(&p, id).await;
    assert_eq!(link["deliveries"][0]["status"], "SENT", "{link}");
}

#[tokio::test]
async fn a_channel_without_settings_is_refused_when_the_link_is_asked_for_and_nothing_is_stored() {
    let p = payments(DeliveryConfig::default()).await;
    unpaid_order(&p, "PBL-NC", "10.00").await;
    let email =
        json!({"orderRef": "PBL-NC", "instructionRef": "I1", "delivery": {"channel": "EMAIL", "to": "a@b.example"}});
    create_link(&p, email).await.assert_error(400, "EMAIL_DELIVERY_NOT_CONFIGURED");
    let sms =
        json!({"orderRef": "PBL-NC", "instructionRef": "I1", "delivery": {"channel": "SMS", "to": "+447700900123"}});
    create_link(&p, sms).await.assert_error(400, "SMS_DELIVERY_NOT_CONFIGURED");
    assert_eq!(count(&p, "pay_by_links", "1 = 1").await, 0);
    assert_eq!(count(&p, "message_deliveries", "1 = 1").await, 0);
    assert_eq!(count(&p, "jobs", "1 = 1").await, 0);
    // Without delivery a link is still made (the tenant sends it itself).
    let plain = create_link(&p, json!({"orderRef": "PBL-NC", "instructionRef": "I1"})).await;
    assert!(plain.assert_status(201)["deliveries"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn bad_requests_get_specific_codes_and_change_nothing() {
    let sink = SmtpSink::start(&[]);
    let p = payments(DeliveryConfig { email: Some(sink.config()), sms: None }).await;
    unpaid_order(&p, "PBL-BAD", "10.00").await;
    let base = json!({"orderRef": "PBL-BAD", "instructionRef": "I1"});
    let cases = [
        (json!({"instructionRef": "I1"}), 400, "ORDER_REF_REQUIRED"),
        (json!({"orderRef": "PBL-BAD"}), 400, "INSTRUCTION_REF_REQUIRED"),
        (common::with(base.clone(), json!({"expirySeconds": 59})), 400, "INVALID_EXPIRY_SECONDS"),
        (common::with(base.clone(), json!({"expirySeconds": "2592001"})), 400, "INVALID_EXPIRY_SECONDS"),
        (common::with(base.clone(), json!({"expirySeconds": "soon"})), 400, "INVALID_EXPIRY_SECONDS"),
        (
            common::with(base.clone(), json!({"callbacks": {"success": "http://shop.example/ok"}})),
            400,
            "INVALID_CALLBACK_URL",
        ),
        (
            common::with(base.clone(), json!({"delivery": {"channel": "EMAIL", "to": "not-an-address"}})),
            400,
            "INVALID_EMAIL_ADDRESS",
        ),
        (
            common::with(base.clone(), json!({"delivery": {"channel": "SMS", "to": "0770090"}})),
            400,
            "INVALID_PHONE_NUMBER",
        ),
        (
            common::with(base.clone(), json!({"delivery": {"channel": "FAX", "to": "x"}})),
            400,
            "INVALID_DELIVERY_CHANNEL",
        ),
        (common::with(base.clone(), json!({"delivery": {"channel": "EMAIL"}})), 400, "DELIVERY_RECIPIENT_REQUIRED"),
        (
            common::with(
                base.clone(),
                json!({"delivery": {"channel": "EMAIL", "to": "a@b.example", "language": "fr-FR"}}),
            ),
            400,
            "INVALID_LANGUAGE",
        ),
        (json!({"orderRef": "NOPE", "instructionRef": "I1"}), 404, "ORDER_NOT_FOUND"),
        (json!({"orderRef": "PBL-BAD", "instructionRef": "NOPE"}), 404, "INSTRUCTION_NOT_FOUND"),
    ];
    for (body, status, code) in cases {
        let reply = create_link(&p, body.clone()).await;
        assert_eq!((reply.status.as_u16(), reply.code()), (status, code), "{body}: {}", reply.text);
    }

    // Without a collect scheme the checkout could offer nothing.
    let no_scheme = json!({"instructionRef": "NS", "customerRef": "C9", "direction": "DEBIT", "amount": "5.00",
        "currency": "EUR", "country": "DE"});
    p.app.post("/v1/order-management/PBL-BAD/instruction", &p.token, &no_scheme).await.assert_status(201);
    create_link(&p, json!({"orderRef": "PBL-BAD", "instructionRef": "NS"})).await.assert_error(400, "SCHEME_REQUIRED");
    // A CREDIT instruction cannot be collected by link.
    let credit = json!({"instructionRef": "C1", "customerRef": "C1", "direction": "CREDIT", "amount": "5.00",
        "currency": "EUR", "country": "DE"});
    p.app.post("/v1/order-management/PBL-BAD/instruction", &p.token, &credit).await.assert_status(201);
    create_link(&p, json!({"orderRef": "PBL-BAD", "instructionRef": "C1"}))
        .await
        .assert_error(402, "PAY_BY_LINK_NOT_SUPPORTED");
    // A settled one, or a voided one, can no longer be paid.
    p.settled("PBL-PAID", "4242424242424242", "10.00").await;
    create_link(&p, json!({"orderRef": "PBL-PAID", "instructionRef": "I1"}))
        .await
        .assert_error(400, "INSTRUCTION_NOT_UPDATABLE");
    p.app.delete("/v1/order-management/PBL-BAD/instruction/I1", &p.token).await;
    create_link(&p, base).await.assert_error(400, "INSTRUCTION_NOT_UPDATABLE");
    assert_eq!(count(&p, "pay_by_links", "1 = 1").await, 0);
    assert_eq!(count(&p, "jobs", "kind = 'deliver-message'").await, 0);
    sink.assert_empty();
}

#[tokio::test]
async fn a_refused_send_is_retried_with_backoff_and_a_permanent_refusal_fails_the_message() {
    let sink = SmtpSink::start(&[("SINK_FAIL_FIRST", "1")]);
    let p = payments(DeliveryConfig { email: Some(sink.config()), sms: None }).await;
    unpaid_order(&p, "PBL-RETRY", "10.00").await;
    let body = json!({"orderRef": "PBL-RETRY", "instructionRef": "I1",
        "delivery": {"channel": "EMAIL", "to": "jane@example.com"}});
    let id = create_link(&p, body).await.assert_status(201)["payByLinkId"].as_str().unwrap().to_string();

    p.app.tick().await;
    let d = get_link(&p, &id).await["deliveries"][0].clone();
    assert_eq!((d["status"].as_str(), d["attempts"].as_i64()), (Some("QUEUED"), Some(1)), "{d}");
    assert!(d["lastError"].as_str().unwrap().contains("451"), "{d}");
    // Not due again before the backoff.
    p.app.tick().await;
    sink.assert_empty();
    p.app.clock.advance(Duration::from_secs(31));
    p.app.tick().await;
    let mail = sink.next();
    assert_eq!(mail["subject"], "Payment request from Payments tenant: €10.00");
    let d = get_link(&p, &id).await["deliveries"][0].clone();
    assert_eq!((d["status"].as_str(), d["attempts"].as_i64()), (Some("SENT"), Some(2)), "{d}");

    // A gateway that refuses for good (4xx) fails the message at once; 5xx is retried.
    let (gateway, url) = Gateway::start(&[503, 400]).await;
    let settings = json!({"sms": {"url": url, "body": {"to": "{{to}}", "text": "{{message}}"}}});
    p.app.put("/v1/whitelabel/delivery-settings", &p.token, &settings).await.assert_status(200);
    let body = json!({"orderRef": "PBL-RETRY", "instructionRef": "I1",
        "delivery": {"channel": "SMS", "to": "+447700900123"}});
    let id = create_link(&p, body).await.assert_status(201)["payByLinkId"].as_str().unwrap().to_string();
    p.app.tick().await;
    assert_eq!(get_link(&p, &id).await["deliveries"][0]["status"], "QUEUED");
    p.app.clock.advance(Duration::from_secs(31));
    p.app.tick().await;
    let d = get_link(&p, &id).await["deliveries"][0].clone();
    assert_eq!((d["status"].as_str(), d["attempts"].as_i64()), (Some("FAILED"), Some(2)), "{d}");
    assert!(d["lastError"].as_str().unwrap().contains("400"), "{d}");
    assert_eq!(gateway.requests().len(), 2);
    p.app.clock.advance(Duration::from_secs(3600));
    p.app.tick().await;
    assert_eq!(gateway.requests().len(), 2, "a failed message is not sent again");
}

#[tokio::test]
async fn an_smtp_server_that_rejects_the_message_fails_it_without_retrying() {
    let sink = SmtpSink::start(&[("SINK_REJECT", "1")]);
    let p = payments(DeliveryConfig { email: Some(sink.config()), sms: None }).await;
    unpaid_order(&p, "PBL-550", "10.00").await;
    let body = json!({"orderRef": "PBL-550", "instructionRef": "I1",
        "delivery": {"channel": "EMAIL", "to": "nobody@example.com"}});
    let id = create_link(&p, body).await.assert_status(201)["payByLinkId"].as_str().unwrap().to_string();
    p.app.tick().await;
    let d = get_link(&p, &id).await["deliveries"][0].clone();
    assert_eq!((d["status"].as_str(), d["attempts"].as_i64()), (Some("FAILED"), Some(1)), "{d}");
    assert!(d["lastError"].as_str().unwrap().contains("550"), "{d}");
    assert_eq!(count(&p, "jobs", "kind = 'deliver-message'").await, 0);
}

#[tokio::test]
async fn resend_reminds_the_last_recipient_or_a_new_one_and_cancel_stops_the_link() {
    let sink = SmtpSink::start(&[]);
    let (gateway, url) = Gateway::start(&[]).await;
    let p = payments(DeliveryConfig { email: Some(sink.config()), sms: Some(sms_config(&url)) }).await;
    unpaid_order(&p, "PBL-RE", "20.00").await;
    let body = json!({"orderRef": "PBL-RE", "instructionRef": "I1",
        "delivery": {"channel": "EMAIL", "to": "jane@example.com", "language": "en-GB"}});
    let id = create_link(&p, body).await.assert_status(201)["payByLinkId"].as_str().unwrap().to_string();
    p.app.tick().await;
    assert_eq!(sink.next()["subject"], "Payment request from Payments tenant: €20.00");

    // Without a body: the same recipient, as a reminder.
    let send = format!("{LINKS}/{id}/send");
    let reply = p.app.send(Method::POST, &send, Some(&p.token), &[], None).await;
    let body = reply.assert_status(202).clone();
    assert_eq!(body["deliveries"].as_array().unwrap().len(), 2);
    assert_eq!(body["deliveries"][1]["template"], "PAYMENT_REMINDER");
    p.app.tick().await;
    let mail = sink.next();
    assert_eq!(mail["subject"], "Reminder: payment request from Payments tenant: €20.00");
    assert_eq!(mail["rcptTos"], json!(["jane@example.com"]));

    // To another recipient, by SMS, in German.
    let sms = json!({"channel": "SMS", "to": "+491701234567", "language": "de-DE"});
    p.app.post(&send, &p.token, &sms).await.assert_status(202);
    p.app.tick().await;
    let text = gateway.requests()[0].1["text"].as_str().unwrap().to_string();
    assert!(text.starts_with("Erinnerung von Payments tenant: Bitte zahlen Sie 20,00 €"), "{text}");

    // A message still queued when the link is cancelled is never sent.
    p.app.send(Method::POST, &send, Some(&p.token), &[], None).await.assert_status(202);
    p.app.delete(&format!("{LINKS}/{id}"), &p.token).await.assert_status(204);
    p.app.tick().await;
    let link = get_link(&p, &id).await;
    assert_eq!(link["status"], "CANCELLED");
    let last = &link["deliveries"][3];
    assert_eq!(last["status"], "FAILED", "{link}");
    assert!(last["lastError"].as_str().unwrap().starts_with("PAY_BY_LINK_CANCELLED"), "{link}");
    assert_eq!(gateway.requests().len(), 1);
    sink.assert_empty();
    // Cancelling again changes nothing; sending a cancelled link is refused.
    p.app.delete(&format!("{LINKS}/{id}"), &p.token).await.assert_status(204);
    p.app.send(Method::POST, &send, Some(&p.token), &[], None).await.assert_error(400, "PAY_BY_LINK_NOT_ACTIVE");

    // The page says so, in the visitor's language.
    let page = open(&p, &id, &[("accept-language", "de-DE,de;q=0.9,en;q=0.5")]).await;
    assert_eq!(page.status.as_u16(), 410);
    assert!(page.text.contains("Dieser Zahlungslink ist nicht mehr gültig"), "{}", page.text);
    assert!(page.text.contains("Payments tenant hat diese Zahlungsaufforderung zurückgezogen"), "{}", page.text);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    let page = open(&p, &format!("{id}?language=en-GB"), &[]).await;
    assert!(page.text.contains("This payment link is no longer valid"), "{}", page.text);
}

#[tokio::test]
async fn a_link_expires_once_by_the_worker_or_on_open_and_says_so() {
    let p = payments(DeliveryConfig::default()).await;
    unpaid_order(&p, "PBL-EXP", "10.00").await;
    let a = create_link(&p, json!({"orderRef": "PBL-EXP", "instructionRef": "I1", "expirySeconds": 60})).await;
    let a = a.assert_status(201)["payByLinkId"].as_str().unwrap().to_string();
    let b = create_link(
        &p,
        json!({"orderRef": "PBL-EXP", "instructionRef": "I1", "expirySeconds": 120,
        "language": "de-DE"}),
    )
    .await;
    let b = b.assert_status(201)["payByLinkId"].as_str().unwrap().to_string();

    p.app.clock.advance(Duration::from_secs(61));
    let report = p.app.tick().await;
    assert_eq!(report.pay_by_links_finished, 1);
    assert_eq!(get_link(&p, &a).await["status"], "EXPIRED");
    assert_eq!(get_link(&p, &b).await["status"], "ACTIVE");
    p.app.tick().await;
    assert_eq!(count(&p, "events", "event_type = 'pay_by_link.expired'").await, 1);

    // The other expires on open, in its own language; still one event each.
    p.app.clock.advance(Duration::from_secs(60));
    let page = open(&p, &b, &[]).await;
    assert_eq!(page.status.as_u16(), 410);
    assert!(page.text.contains("Dieser Zahlungslink ist abgelaufen"), "{}", page.text);
    assert!(page.text.contains("lang=\"de-DE\""));
    assert_eq!(get_link(&p, &b).await["status"], "EXPIRED");
    p.app.tick().await;
    open(&p, &b, &[]).await;
    assert_eq!(count(&p, "events", "event_type = 'pay_by_link.expired'").await, 2);
    let data: Value = {
        use sqlx::Connection;
        let sql = "SELECT data FROM events WHERE event_type = 'pay_by_link.expired' ORDER BY seq LIMIT 1";
        let text: String = match &p.app.config.store.database {
            Database::Sqlite { path } => {
                use sqlx::ConnectOptions;
                let mut c = sqlx::sqlite::SqliteConnectOptions::new().filename(path).connect().await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
            }
            Database::Postgres { url, .. } => {
                let mut c = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
            }
        };
        serde_json::from_str(&text).unwrap()
    };
    assert_eq!(data["payByLink"]["payByLinkId"], a.as_str());
    assert_eq!(data["payByLink"]["status"], "EXPIRED");
    assert_eq!(data["instruction"]["instructionRef"], "I1");
    // Expired links cannot be cancelled or sent.
    p.app.delete(&format!("{LINKS}/{a}"), &p.token).await.assert_error(400, "PAY_BY_LINK_NOT_ACTIVE");
}

#[tokio::test]
async fn a_settled_instruction_completes_its_links() {
    let p = payments(DeliveryConfig::default()).await;
    p.order("PBL-DONE", "4242424242424242", "10.00").await;
    let id = create_link(&p, json!({"orderRef": "PBL-DONE", "instructionRef": "I1"})).await;
    let id = id.assert_status(201)["payByLinkId"].as_str().unwrap().to_string();
    let reply = p.execute("PBL-DONE").await;
    assert_eq!(reply.assert_status(200)["status"], "SETTLED");
    let page = open(&p, &id, &[]).await;
    assert_eq!(page.status.as_u16(), 200);
    assert!(page.text.contains("This payment has been made"), "{}", page.text);
    assert_eq!(get_link(&p, &id).await["status"], "COMPLETED");
    assert_eq!(count(&p, "events", "event_type LIKE 'pay_by_link.%'").await, 0, "completion is no link event");
}

#[tokio::test]
async fn unknown_links_and_other_tenants_links_are_not_found() {
    let p = payments(DeliveryConfig::default()).await;
    unpaid_order(&p, "PBL-ISO", "10.00").await;
    let id = create_link(&p, json!({"orderRef": "PBL-ISO", "instructionRef": "I1"})).await;
    let id = id.assert_status(201)["payByLinkId"].as_str().unwrap().to_string();

    let admin = p.app.admin_token().await;
    let other = p.app.create_tenant(&admin, "Other tenant").await;
    let key = p.app.create_tenant_key(&admin, &other, &["tenant-admin"]).await;
    let other_token = p.app.token(&key).await;
    p.app.get(&format!("{LINKS}/{id}"), &other_token).await.assert_error(404, "PAY_BY_LINK_NOT_FOUND");
    p.app.delete(&format!("{LINKS}/{id}"), &other_token).await.assert_error(404, "PAY_BY_LINK_NOT_FOUND");
    p.app.get(&format!("{LINKS}/AAAAAAAAAAAAAAAAAAAAAA"), &p.token).await.assert_error(404, "PAY_BY_LINK_NOT_FOUND");

    for unknown in ["AAAAAAAAAAAAAAAAAAAAAA", "not-a-link", "%3Cscript%3E"] {
        let page = open(&p, unknown, &[]).await;
        assert_eq!(page.status.as_u16(), 404, "{unknown}");
        assert!(page.text.contains("This payment link is not valid"), "{}", page.text);
        assert!(!page.text.contains("<script>"));
        let csp = page.header("content-security-policy").unwrap();
        assert!(csp.starts_with("default-src 'none'") && csp.contains("frame-ancestors 'self'"), "{csp}");
        assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    }
    // Reading the link needs tx-r; making one needs tx-w.
    let reader = p.token_with(&["tenant-transaction-read"]).await;
    p.app.get(&format!("{LINKS}/{id}"), &reader).await.assert_status(200);
    p.app
        .post(LINKS, &reader, &json!({"orderRef": "PBL-ISO", "instructionRef": "I1"}))
        .await
        .assert_error(403, "ROLE_REQUIRED");
}

#[tokio::test]
async fn a_tenant_can_use_its_own_smtp_server_whose_password_is_never_shown() {
    let sink = SmtpSink::start(&[]);
    let p = payments(DeliveryConfig::default()).await;
    let settings = p.app.get("/v1/whitelabel/delivery-settings", &p.token).await.assert_status(200).clone();
    assert_eq!((settings["emailSource"].as_str(), settings["smsSource"].as_str()), (Some("NONE"), Some("NONE")));

    let bad = json!({"email": {"host": "smtp example", "tls": "maybe", "from": "nobody"},
        "sms": {"url": "ftp://x", "body": "{}"}});
    let reply = p.app.put("/v1/whitelabel/delivery-settings", &p.token, &bad).await;
    reply.assert_error(400, "INVALID_DELIVERY_SETTINGS");
    let fields: Vec<String> = reply.codes().into_iter().map(|(_, f)| f).collect();
    assert_eq!(fields, ["email.tls", "email.host", "email.from", "sms.url", "sms.body"], "{}", reply.text);

    let put = json!({"email": {"host": "127.0.0.1", "port": sink.port, "tls": "none", "username": "acme",
        "password": "smtp-pass-123", "from": "Acme Billing <billing@acme.test>"}});
    let saved = p.app.put("/v1/whitelabel/delivery-settings", &p.token, &put).await;
    let saved = saved.assert_status(200).clone();
    assert_eq!(saved["email"]["password"], "********");
    assert_eq!(saved["emailSource"], "TENANT");
    assert!(!saved.to_string().contains("smtp-pass-123"));
    let read = p.app.get("/v1/whitelabel/delivery-settings", &p.token).await;
    assert!(!read.text.contains("smtp-pass-123") && read.text.contains("********"), "{}", read.text);
    assert_eq!(count(&p, "delivery_settings", "document LIKE '%smtp-pass-123%'").await, 0, "sealed at rest");
    // Sending the mask back keeps the stored password.
    let mut again = put.clone();
    again["email"]["password"] = json!("********");
    p.app.put("/v1/whitelabel/delivery-settings", &p.token, &again).await.assert_status(200);

    unpaid_order(&p, "PBL-OWN", "10.00").await;
    let body = json!({"orderRef": "PBL-OWN", "instructionRef": "I1",
        "delivery": {"channel": "EMAIL", "to": "jane@example.com"}});
    let id = create_link(&p, body).await.assert_status(201)["payByLinkId"].as_str().unwrap().to_string();
    p.app.tick().await;
    assert_eq!(get_link(&p, &id).await["deliveries"][0]["status"], "SENT");
    let mail = sink.next();
    assert_eq!(mail["from"], "Acme Billing <billing@acme.test>", "the tenant's own sender");
    assert_eq!(mail["login"], "acme", "authenticated with the tenant's credentials");

    // Only app-w may change them.
    let reader = p.token_with(&["tenant-app-read"]).await;
    p.app.get("/v1/whitelabel/delivery-settings", &reader).await.assert_status(200);
    p.app.put("/v1/whitelabel/delivery-settings", &reader, &put).await.assert_error(403, "ROLE_REQUIRED");
}

#[tokio::test]
async fn in_production_a_tenant_cannot_point_messages_at_internal_addresses() {
    let app = common::TestApp::spawn_with(Options {
        environment: baton_domain::Environment::Production,
        ..Options::default()
    })
    .await;
    let admin = app.admin_token().await;
    let tenant = app.create_tenant(&admin, "Production tenant").await;
    let key = app.create_tenant_key(&admin, &tenant, &["tenant-admin"]).await;
    let token = app.token(&key).await;
    struct P {
        app: common::TestApp,
        token: String,
    }
    let p = P { app, token };
    let put = json!({"sms": {"url": "https://127.0.0.1:8443/send", "body": {"to": "{{to}}", "text": "{{message}}"}}});
    let reply = p.app.put("/v1/whitelabel/delivery-settings", &p.token, &put).await;
    reply.assert_error(400, "URL_NOT_ALLOWED");
    let put = json!({"email": {"host": "10.0.0.5", "from": "billing@acme.test"}});
    p.app.put("/v1/whitelabel/delivery-settings", &p.token, &put).await.assert_error(400, "URL_NOT_ALLOWED");
    let settings = p.app.get("/v1/whitelabel/delivery-settings", &p.token).await;
    assert!(settings.assert_status(200)["email"].is_null(), "nothing saved");
}

#[tokio::test]
async fn no_environment_lets_a_tenant_point_messages_at_link_local_addresses() {
    for environment in [baton_domain::Environment::Sandbox, baton_domain::Environment::Production] {
        let app = common::TestApp::spawn_with(Options { environment, ..Options::default() }).await;
        let admin = app.admin_token().await;
        let tenant = app.create_tenant(&admin, "Tenant").await;
        let key = app.create_tenant_key(&admin, &tenant, &["tenant-admin"]).await;
        let token = app.token(&key).await;
        for url in ["https://[::ffff:169.254.169.254]/send", "https://169.254.170.2/send", "https://[fe80::1]/send"] {
            let put = json!({"sms": {"url": url, "body": {"to": "{{to}}", "text": "{{message}}"}}});
            app.put("/v1/whitelabel/delivery-settings", &token, &put).await.assert_error(400, "URL_NOT_ALLOWED");
        }
        for host in ["169.254.169.254", "169.254.170.2"] {
            let put = json!({"email": {"host": host, "from": "billing@acme.test"}});
            app.put("/v1/whitelabel/delivery-settings", &token, &put).await.assert_error(400, "URL_NOT_ALLOWED");
        }
        let settings = app.get("/v1/whitelabel/delivery-settings", &token).await;
        let settings = settings.assert_status(200);
        assert!(settings["email"].is_null() && settings["sms"].is_null(), "nothing saved: {settings}");
    }
}

#[tokio::test]
async fn each_open_mints_a_fresh_checkout_token_and_the_first_is_announced_once() {
    let p = payments(DeliveryConfig::default()).await;
    unpaid_order(&p, "PBL-OPEN", "10.00").await;
    let body = json!({"orderRef": "PBL-OPEN", "instructionRef": "I1", "expirySeconds": 600, "language": "de-DE",
        "callbacks": {"success": "https://shop.example/paid", "failed": "https://shop.example/failed"}});
    let id = create_link(&p, body).await.assert_status(201)["payByLinkId"].as_str().unwrap().to_string();
    let long = json!({"orderRef": "PBL-OPEN", "instructionRef": "I1", "expirySeconds": 86400});
    let long = create_link(&p, long).await.assert_status(201)["payByLinkId"].as_str().unwrap().to_string();
    let master_key = match &p.app.config.store.master_key {
        baton::config::MasterKeySource::Inline(text) => baton_vault::MasterKey::from_base64(text).unwrap(),
        other => panic!("{other:?}"),
    };
    let token_of = |reply: &Reply, language: &str| {
        assert_eq!(reply.status.as_u16(), 303, "{}", reply.text);
        let location = reply.header("location").unwrap().to_string();
        let token = location
            .strip_prefix("/checkout?bearerToken=")
            .and_then(|rest| rest.strip_suffix(&format!("&language={language}")))
            .unwrap_or_else(|| panic!("{location}"))
            .to_string();
        let claims = baton_engine::checkout::open_token(&master_key, &token, p.app.now_ms() / 1000).unwrap();
        (token, claims)
    };

    let (first, claims) = token_of(&open(&p, &id, &[]).await, "de-DE");
    assert_eq!(claims.pay_by_link_id.as_deref(), Some(id.as_str()));
    assert_eq!((claims.order_ref.as_str(), claims.instruction_ref.as_str()), ("PBL-OPEN", "I1"));
    assert_eq!(claims.amount, 1000);
    let callbacks = claims.callbacks.clone().unwrap();
    assert_eq!(callbacks.success.as_deref(), Some("https://shop.example/paid"));
    assert_eq!(callbacks.failed.as_deref(), Some("https://shop.example/failed"));
    let lifetime = claims.exp - p.app.now_ms() / 1000;
    assert!((590..=600).contains(&lifetime), "the token ends with the link: {lifetime}");
    assert_eq!(first_open_status(&p, &id).await, "OPENED");

    // Another open: another token, in the visitor's language; still one announcement.
    let (second, again) = token_of(&open(&p, &id, &[("accept-language", "en-GB,en;q=0.9")]).await, "en-GB");
    assert_ne!((first, claims.jti), (second, again.jti));
    assert_eq!(count(&p, "events", "event_type = 'pay_by_link.opened'").await, 1);

    // A long link's tokens live an hour at most.
    let (_, claims) = token_of(&open(&p, &long, &[]).await, "en-GB");
    let lifetime = claims.exp - p.app.now_ms() / 1000;
    assert!((3590..=3600).contains(&lifetime), "{lifetime}");
    assert_eq!(count(&p, "events", "event_type = 'pay_by_link.opened'").await, 2);

    // Paid: the link is completed and says so.
    let fi = p.card("C1", "4242424242424242").await;
    let put = json!({"customerRef": "C1", "direction": "DEBIT", "amount": "10.00", "currency": "EUR",
        "country": "DE", "schemeId": p.scheme, "financialInstrumentId": fi});
    p.app.put("/v1/order-management/PBL-OPEN/instruction/I1", &p.token, &put).await.assert_status(200);
    p.execute("PBL-OPEN").await.assert_status(200);
    let page = open(&p, &id, &[]).await;
    assert_eq!(page.status.as_u16(), 200);
    assert!(page.text.contains("Diese Zahlung ist erfolgt"), "{}", page.text);
    assert_eq!(first_open_status(&p, &id).await, "COMPLETED");
}

async fn first_open_status(p: &Payments, id: &str) -> String {
    let link = get_link(p, id).await;
    if link["status"] == "OPENED" {
        assert!(link["openedAt"].is_string(), "{link}");
    }
    link["status"].as_str().unwrap().to_string()
}

// -- a link's end ends its checkout tokens and sessions --------------------------------------

/// A browser without JavaScript on `base`: follows no redirect.
async fn visit(base: &str, path: &str) -> Reply {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    common::read(client.get(format!("{base}{path}")).send().await.unwrap()).await
}

/// Posts a form on `base`, following no redirect.
async fn post_form(base: &str, path: &str, form: &[(&str, &str)]) -> Reply {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    let req =
        client.post(format!("{base}{path}")).header("content-type", "application/x-www-form-urlencoded").body(body);
    common::read(req.send().await.unwrap()).await
}

/// The checkout token an open of the link hands on.
async fn link_token(p: &Payments, id: &str) -> String {
    let reply = open(p, id, &[]).await;
    assert_eq!(reply.status.as_u16(), 303, "{}", reply.text);
    let location = reply.header("location").unwrap();
    let rest = location.strip_prefix("/checkout?bearerToken=").unwrap_or_else(|| panic!("{location}"));
    rest.split('&').next().unwrap().to_string()
}

/// Opens a checkout token: the session page's path.
async fn checkout_session(p: &Payments, token: &str) -> String {
    let reply = visit(&p.app.base, &format!("/checkout?bearerToken={token}")).await;
    assert_eq!(reply.status.as_u16(), 303, "{}", reply.text);
    reply.header("location").unwrap().to_string()
}

/// The session page, loaded as the customer does before paying: its forms' CSRF token.
async fn load_payment_page(p: &Payments, session: &str) -> String {
    let page = visit(&p.app.base, session).await;
    assert_eq!(page.status.as_u16(), 200, "{}", page.text);
    let at = page.text.find("name=\"csrf\" value=\"").unwrap_or_else(|| panic!("no form in {}", page.text)) + 19;
    page.text[at..].split('"').next().unwrap().to_string()
}

/// Pays with a Visa card in the session, as its page's card form does.
async fn pay_by_card(p: &Payments, session: &str, csrf: &str) -> Reply {
    let form = [("csrf", csrf), ("cardNumber", "4242424242424242"), ("expiry", "12 / 39"), ("cvc", "123")];
    post_form(&p.app.base, &format!("{session}/card"), &form).await
}

async fn attempts(p: &Payments, order_ref: &str) -> Vec<Value> {
    let path = format!("/v1/order-management/{order_ref}/instruction/I1/transactions");
    p.app.get(&path, &p.token).await.assert_status(200).as_array().unwrap().clone()
}

async fn instruction_status(p: &Payments, order_ref: &str) -> String {
    let reply = p.app.get(&format!("/v1/order-management/{order_ref}/instruction/I1"), &p.token).await;
    reply.assert_status(200)["status"].as_str().unwrap().to_string()
}

/// `data-outcome` of the page's `#result`.
fn outcome(page: &Reply) -> &str {
    let at = page.text.find("id=\"result\"").unwrap_or_else(|| panic!("no #result in {}", page.text));
    let rest = &page.text[at..];
    let at = rest.find("data-outcome=\"").unwrap() + 14;
    rest[at..].split('"').next().unwrap()
}

/// A checkout page refusing the payment with `410`, saying `texts`.
#[track_caller]
fn assert_gone_saying(page: &Reply, texts: &[&str]) {
    assert_eq!(page.status.as_u16(), 410, "{}", page.text);
    assert_eq!(outcome(page), "invalid", "{}", page.text);
    assert!(!page.text.contains("id=\"card-form\""), "no form to pay with: {}", page.text);
    for text in texts {
        assert!(page.text.contains(text), "{text} not in {}", page.text);
    }
}

const CANCELLED_EN: [&str; 2] =
    ["This payment link is no longer valid", "Payments tenant has withdrawn this payment request."];

#[tokio::test]
async fn a_cancelled_link_ends_every_token_and_session_it_minted_on_every_node() {
    let p = payments(DeliveryConfig::default()).await;
    unpaid_order(&p, "PBL-STOP", "10.00").await;
    let body = json!({"orderRef": "PBL-STOP", "instructionRef": "I1",
        "callbacks": {"failed": "https://shop.example/failed"}});
    let id = create_link(&p, body).await.assert_status(201)["payByLinkId"].as_str().unwrap().to_string();
    // Two opens before the cancel: one token not yet used, one opened into a session.
    let unused = link_token(&p, &id).await;
    let session = checkout_session(&p, &link_token(&p, &id).await).await;
    let csrf = load_payment_page(&p, &session).await;

    // Cancelled through another node of the deployment.
    let peer = p.app.spawn_peer().await;
    let peer_base = format!("http://{}", peer.addr);
    let client = reqwest::Client::new();
    let cancel = client.delete(format!("{peer_base}{LINKS}/{id}")).bearer_auth(&p.token).send().await.unwrap();
    assert_eq!(cancel.status().as_u16(), 204);
    assert_eq!(get_link(&p, &id).await["status"], "CANCELLED");

    // The unused token opens nothing, on either node, and says why (in German too).
    let refused = visit(&p.app.base, &format!("/checkout?bearerToken={unused}")).await;
    assert_gone_saying(&refused, &CANCELLED_EN);
    let redirect = refused.text.contains("data-redirect=\"https://shop.example/failed?payload=");
    assert!(redirect, "the token's failed callback is honoured: {}", refused.text);
    let german = visit(&peer_base, &format!("/checkout?bearerToken={unused}&language=de-DE")).await;
    assert_gone_saying(
        &german,
        &["Dieser Zahlungslink ist nicht mehr gültig", "Payments tenant hat diese Zahlungsaufforderung zurückgezogen."],
    );
    assert_eq!(count(&p, "checkout_sessions", "1 = 1").await, 1, "no session was opened");

    // The session opened before the cancel shows why and takes no payment, on either node.
    assert_gone_saying(&visit(&p.app.base, &session).await, &CANCELLED_EN);
    assert_gone_saying(&pay_by_card(&p, &session, &csrf).await, &CANCELLED_EN);
    let form = [("csrf", csrf.as_str()), ("cardNumber", "4242424242424242"), ("expiry", "12 / 39"), ("cvc", "123")];
    assert_gone_saying(&post_form(&peer_base, &format!("{session}/card"), &form).await, &CANCELLED_EN);
    assert_eq!(instruction_status(&p, "PBL-STOP").await, "INCOMPLETE");
    assert!(attempts(&p, "PBL-STOP").await.is_empty(), "no PSP was asked");
    let fis = p.app.get("/v1/customer-vault/C1/financial-instruments", &p.token).await;
    assert!(fis.assert_status(200).as_array().unwrap().is_empty(), "no card was stored");
    assert_eq!(get_link(&p, &id).await["status"], "CANCELLED");
    peer.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_cancel_committed_after_the_page_loaded_stops_the_submit() {
    let p = payments(DeliveryConfig::default()).await;
    unpaid_order(&p, "PBL-LATE", "10.00").await;
    let id = create_link(&p, json!({"orderRef": "PBL-LATE", "instructionRef": "I1"})).await;
    let id = id.assert_status(201)["payByLinkId"].as_str().unwrap().to_string();
    let session = checkout_session(&p, &link_token(&p, &id).await).await;
    let csrf = load_payment_page(&p, &session).await;
    // The customer types the card while the merchant cancels.
    p.app.delete(&format!("{LINKS}/{id}"), &p.token).await.assert_status(204);
    assert_gone_saying(&pay_by_card(&p, &session, &csrf).await, &CANCELLED_EN);
    assert_eq!(instruction_status(&p, "PBL-LATE").await, "INCOMPLETE");
    assert!(attempts(&p, "PBL-LATE").await.is_empty());
    assert_eq!(get_link(&p, &id).await["status"], "CANCELLED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_racing_a_submit_either_stops_it_or_is_refused() {
    let p = payments(DeliveryConfig::default()).await;
    let (mut stopped, mut paid) = (0, 0);
    for round in 0..8 {
        let order_ref = format!("PBL-RACE-{round}");
        unpaid_order(&p, &order_ref, "10.00").await;
        let id = create_link(&p, json!({"orderRef": order_ref, "instructionRef": "I1"})).await;
        let id = id.assert_status(201)["payByLinkId"].as_str().unwrap().to_string();
        let session = checkout_session(&p, &link_token(&p, &id).await).await;
        let csrf = load_payment_page(&p, &session).await;

        // The merchant looks at the link a few more times each round before cancelling,
        // so that the cancel lands at different points of the submission.
        let cancel = async {
            for _ in 0..round * 2 {
                get_link(&p, &id).await;
            }
            p.app.delete(&format!("{LINKS}/{id}"), &p.token).await
        };
        let (cancel, submit) = tokio::join!(cancel, pay_by_card(&p, &session, &csrf));
        let link = get_link(&p, &id).await;
        let tries = attempts(&p, &order_ref).await;
        if cancel.status.as_u16() == 204 {
            // The cancel came first: nothing was charged, and the submit said why.
            stopped += 1;
            assert_eq!(link["status"], "CANCELLED");
            assert!(tries.is_empty(), "cancelled, yet charged: {tries:?}");
            assert_gone_saying(&submit, &CANCELLED_EN);
            assert_ne!(instruction_status(&p, &order_ref).await, "SETTLED");
        } else {
            // The payment started first: the cancel is refused and the link completes.
            paid += 1;
            let code = cancel.code().to_string();
            assert!(
                ["PAY_BY_LINK_PAYMENT_IN_PROGRESS", "PAY_BY_LINK_NOT_ACTIVE"].contains(&code.as_str()),
                "{}",
                cancel.text
            );
            assert_eq!(submit.status.as_u16(), 303, "{}", submit.text);
            assert_eq!(tries.len(), 1, "money moves once");
            assert_eq!(instruction_status(&p, &order_ref).await, "SETTLED");
            assert_eq!(link["status"], "COMPLETED");
        }
    }
    eprintln!("cancel first: {stopped}, payment first: {paid}");
}

#[tokio::test]
async fn an_expired_link_ends_its_tokens_and_sessions_though_they_would_live_longer() {
    let p = payments(DeliveryConfig::default()).await;
    unpaid_order(&p, "PBL-OLD", "10.00").await;
    let id = create_link(&p, json!({"orderRef": "PBL-OLD", "instructionRef": "I1", "expirySeconds": 60})).await;
    let id = id.assert_status(201)["payByLinkId"].as_str().unwrap().to_string();
    // Opened with 30 s left: the tokens live the shortest lifetime a token has, 60 s.
    p.app.clock.advance(Duration::from_secs(30));
    let unused = link_token(&p, &id).await;
    let session = checkout_session(&p, &link_token(&p, &id).await).await;
    let csrf = load_payment_page(&p, &session).await;

    // Past the link's expiry, before the tokens' and before any worker round.
    p.app.clock.advance(Duration::from_secs(31));
    let expired = ["This payment link has expired"];
    assert_gone_saying(&visit(&p.app.base, &format!("/checkout?bearerToken={unused}")).await, &expired);
    assert_gone_saying(&visit(&p.app.base, &session).await, &expired);
    assert_gone_saying(&pay_by_card(&p, &session, &csrf).await, &expired);
    assert_eq!(instruction_status(&p, "PBL-OLD").await, "INCOMPLETE");
    assert!(attempts(&p, "PBL-OLD").await.is_empty());
    // The worker then ends the link; it stays so.
    p.app.tick().await;
    assert_eq!(get_link(&p, &id).await["status"], "EXPIRED");
    let german = visit(&p.app.base, &format!("/checkout?bearerToken={unused}&language=de-DE")).await;
    assert_gone_saying(&german, &["Dieser Zahlungslink ist abgelaufen"]);
}

#[tokio::test]
async fn a_voided_instruction_ends_the_tokens_and_sessions_of_its_links() {
    let p = payments(DeliveryConfig::default()).await;
    unpaid_order(&p, "PBL-VOID", "10.00").await;
    let id = create_link(&p, json!({"orderRef": "PBL-VOID", "instructionRef": "I1"})).await;
    let id = id.assert_status(201)["payByLinkId"].as_str().unwrap().to_string();
    let unused = link_token(&p, &id).await;
    let session = checkout_session(&p, &link_token(&p, &id).await).await;
    let csrf = load_payment_page(&p, &session).await;

    p.app.delete("/v1/order-management/PBL-VOID/instruction/I1", &p.token).await.assert_status(200);
    let withdrawn = ["This payment request has been withdrawn", "Payments tenant has withdrawn this payment request."];
    assert_gone_saying(&visit(&p.app.base, &format!("/checkout?bearerToken={unused}")).await, &withdrawn);
    assert_gone_saying(&visit(&p.app.base, &session).await, &withdrawn);
    assert_gone_saying(&pay_by_card(&p, &session, &csrf).await, &withdrawn);
    assert_eq!(instruction_status(&p, "PBL-VOID").await, "VOID");
    assert!(attempts(&p, "PBL-VOID").await.is_empty());
}

#[tokio::test]
async fn the_transaction_that_starts_a_payment_checks_the_link_again() {
    use baton_engine::checkout::{CardInput, CheckoutAction, Ended, PayOutcome, Unavailable};
    let p = payments(DeliveryConfig::default()).await;
    unpaid_order(&p, "PBL-GUARD", "10.00").await;
    let id = create_link(&p, json!({"orderRef": "PBL-GUARD", "instructionRef": "I1"})).await;
    let id = id.assert_status(201)["payByLinkId"].as_str().unwrap().to_string();
    // A card whose issuer asks for a challenge: the session waits with the card attached.
    let session = checkout_session(&p, &link_token(&p, &id).await).await;
    let csrf = load_payment_page(&p, &session).await;
    let form = [("csrf", csrf.as_str()), ("cardNumber", "4000000000003220"), ("expiry", "12 / 39"), ("cvc", "123")];
    let got = post_form(&p.app.base, &format!("{session}/card"), &form).await;
    assert_eq!(got.status.as_u16(), 303, "{}", got.text);
    assert_eq!(attempts(&p, "PBL-GUARD").await.len(), 1);
    let other = checkout_session(&p, &link_token(&p, &id).await).await;
    p.app.delete(&format!("{LINKS}/{id}"), &p.token).await.assert_status(204);

    // Past every check made before it (the pages', the submission's own reads), the
    // start of the payment itself refuses: the approved challenge charges nothing.
    let engine = p.app.engine();
    let session_id = session.trim_start_matches("/checkout/session/");
    let outcome = engine.checkout_submit(session_id, CheckoutAction::Authentication { approved: true }).await.unwrap();
    assert_eq!(outcome, PayOutcome::Unavailable(Unavailable::Ended(Ended::LinkCancelled)));
    assert_eq!(attempts(&p, "PBL-GUARD").await.len(), 1, "no second attempt");
    assert_eq!(instruction_status(&p, "PBL-GUARD").await, "READY");
    // Nor is a new card stored and attached through the other session.
    let card = CardInput {
        number: "4242424242424242".into(),
        expiry: "12/39".into(),
        cvc: "123".into(),
        ..Default::default()
    };
    let other_id = other.trim_start_matches("/checkout/session/");
    let outcome = engine.checkout_submit(other_id, CheckoutAction::Card(card)).await.unwrap();
    assert_eq!(outcome, PayOutcome::Unavailable(Unavailable::Ended(Ended::LinkCancelled)));
    let fis = p.app.get("/v1/customer-vault/C1/financial-instruments", &p.token).await;
    assert_eq!(fis.assert_status(200).as_array().unwrap().len(), 1, "only the challenged card");
    assert_eq!(attempts(&p, "PBL-GUARD").await.len(), 1);
    assert_gone_saying(&visit(&p.app.base, &session).await, &CANCELLED_EN);
}
