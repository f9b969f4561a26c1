//! Pay-by-link (SPEC §4.11, §5.7): a link per DEBIT instruction that opens the hosted
//! checkout, delivered to the customer by e-mail or SMS.
//!
//! - The link is `{public_url}/pay/{payByLinkId}`; the id (128 random bits, base64url)
//!   is the only capability of the public page. Each open mints a fresh single-use
//!   checkout token (`Engine::grant_checkout`) while the link is `ACTIVE`/`OPENED`,
//!   unexpired and the instruction payable; the first open moves it to `OPENED` and
//!   announces `pay_by_link.opened`.
//! - A link ends `COMPLETED` when its instruction settles, `EXPIRED` at its expiry
//!   (announced once, by whichever comes first: an open after expiry or the worker),
//!   or `CANCELLED` by the tenant. Every move is a compare-and-set on the status.
//! - A link's end ends the tokens it minted and their sessions, on every node: opening
//!   one and its pages read the link, and its payment starts only in a transaction
//!   that finds the link live and unexpired (`Change::PayByLinkLive`). A cancel is
//!   refused while a payment of the instruction is under way, so a cancelled link is
//!   never paid.
//! - A message is a `message_deliveries` row plus a `deliver-message` job, written in
//!   the transaction that creates the link (or in the resend's own), so a message is
//!   never lost to a crash; the job sends it and retries transient failures with
//!   backoff. Its status (`QUEUED`, `SENT`, `FAILED`) is shown on the link. A channel
//!   that is not configured is refused when the link is asked for, never dropped.
//! - Recipients are sealed with the customer's data key: erasing the customer makes
//!   them unreadable; the API only ever shows them masked.

pub mod delivery;
pub(crate) mod messages;

use base64::Engine as _;
use baton_domain::{
    Currency, DeliveryChannel, DeliveryStatus, Direction, EmailAddress, EventType, InstructionStatus, Language,
    MessageTemplate, PayByLinkStatus, PhoneNumber, Problem, Ref,
};
use baton_store::{Change, EventRecord, JobRecord, MessageDeliveryRecord, PayByLinkRecord, PayByLinkRow};
use serde_json::{json, Value};

use crate::error::internal;
use crate::execution::events;
use crate::{new_id, Engine, EngineResult};

/// The job that sends one message (subject: the delivery id).
pub(crate) const DELIVER_MESSAGE_JOB: &str = "deliver-message";
/// Sends tried before a message is given up.
pub const MAX_SEND_ATTEMPTS: i64 = 6;
/// Link lifetimes allowed are those of checkout tokens (SPEC §4.11).
pub use crate::checkout::{parse_expiry_seconds, DEFAULT_EXPIRY_SECONDS, MAX_EXPIRY_SECONDS, MIN_EXPIRY_SECONDS};
/// The longest a checkout token minted by an open lives.
const TOKEN_SECONDS: i64 = 3600;
/// How many links one worker round ends at most.
const BATCH: u32 = 100;

/// `{success, failed, cancelled}` URLs the checkout redirects to (checked as for grants).
pub use crate::checkout::Callbacks as CallbackUrls;

/// `delivery` of a pay-by-link request (SPEC §5.7), or the body of a resend.
#[derive(Debug, Clone, Default)]
pub struct DeliveryInput {
    /// `EMAIL` or `SMS`.
    pub channel: Option<String>,
    /// An e-mail address or an E.164 number.
    pub to: Option<String>,
    /// `en-GB` or `de-DE`.
    pub language: Option<String>,
    /// `PAYMENT_REQUEST` or `PAYMENT_REMINDER`.
    pub template: Option<String>,
}

/// `POST /v1/whitelabel-customer/session/checkout/pay-by-link`, as parsed by the HTTP layer.
#[derive(Debug, Clone, Default)]
pub struct PayByLinkInput {
    pub order_ref: Option<String>,
    pub instruction_ref: Option<String>,
    /// A JSON integer or numeric string (the seed sends `"6000"`).
    pub expiry_seconds: Option<Value>,
    pub callbacks: Option<CallbackUrls>,
    pub delivery: Option<DeliveryInput>,
    /// The page's language when no delivery names one.
    pub language: Option<String>,
}

/// One message of a link, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryView {
    pub delivery_id: String,
    pub channel: DeliveryChannel,
    /// Masked (`j***@example.com`, `+44*******123`).
    pub to: String,
    pub language: Language,
    pub template: MessageTemplate,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

impl From<&MessageDeliveryRecord> for DeliveryView {
    fn from(d: &MessageDeliveryRecord) -> Self {
        Self {
            delivery_id: d.delivery_id.clone(),
            channel: d.channel,
            to: d.recipient_masked.clone(),
            language: d.language,
            template: d.template,
            status: d.status,
            attempts: d.attempts,
            last_error: d.last_error.clone(),
            created_at: d.created_at,
            sent_at: d.sent_at,
        }
    }
}

/// A link as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayByLinkView {
    pub pay_by_link_id: String,
    pub link: String,
    pub status: PayByLinkStatus,
    pub order_ref: String,
    pub instruction_ref: String,
    pub language: Language,
    pub expires_at: i64,
    pub created_at: i64,
    pub opened_at: Option<i64>,
    pub callbacks: Option<CallbackUrls>,
    pub deliveries: Vec<DeliveryView>,
}

/// Why the public page cannot open the checkout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkUnavailable {
    /// No link has this id.
    NotFound,
    Expired,
    Cancelled,
    /// The instruction is paid.
    Completed,
    /// A payment of the instruction is under way.
    Processing,
    /// The instruction can no longer be paid (voided, failed).
    NotPayable,
}

/// What opening a link leads to.
#[derive(Debug, Clone)]
pub enum LinkOpening {
    /// A fresh checkout token, to be handed to `/checkout`.
    Checkout { access_token: String, language: Language },
    /// A page saying why not, in the link's (or the visitor's) language.
    Unavailable {
        reason: LinkUnavailable,
        language: Language,
        /// The merchant's name and theme, when the link is known.
        merchant: Option<String>,
        theme: Option<crate::theme::CheckoutTheme>,
    },
}

fn not_found() -> Problem {
    Problem::not_found("PAY_BY_LINK_NOT_FOUND").message("No such pay-by-link.")
}

/// The instruction statuses in which no payment of it is under way or made.
const NOT_PAYING: [InstructionStatus; 5] = [
    InstructionStatus::Incomplete,
    InstructionStatus::Ready,
    InstructionStatus::Late,
    InstructionStatus::Failed,
    InstructionStatus::Void,
];

fn payment_in_progress() -> Problem {
    Problem::conflict("PAY_BY_LINK_PAYMENT_IN_PROGRESS")
        .message("A payment of the link's instruction is under way; the link can no longer be cancelled.")
}

fn not_active(status: PayByLinkStatus) -> Problem {
    Problem::bad_request("PAY_BY_LINK_NOT_ACTIVE")
        .message("The pay-by-link is {status}; only an ACTIVE or OPENED link can be sent or cancelled.")
        .detail("status", status.as_str())
}

/// Unix milliseconds as ISO-8601 UTC with milliseconds, as the API writes times.
fn iso(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.format(&f).unwrap_or_default()
}

/// A new link id: 128 random bits, base64url without padding (22 characters).
fn new_link_id() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(baton_vault::random_bytes::<16>())
}

/// Whether `id` could be a link id (checked before any lookup of the public page).
fn looks_like_link_id(id: &str) -> bool {
    id.len() == 22 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A delivery request, parsed.
struct ParsedDelivery {
    channel: DeliveryChannel,
    recipient: String,
    masked: String,
    language: Option<Language>,
    template: Option<MessageTemplate>,
}

fn parse_delivery(input: &DeliveryInput, prefix: &str) -> Result<ParsedDelivery, Vec<Problem>> {
    let mut problems = Vec::new();
    let field = |name: &str| format!("{prefix}{name}");
    let channel = match input.channel.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => {
            problems.push(Problem::invalid_field(
                "DELIVERY_CHANNEL_REQUIRED",
                field("channel"),
                "{field} is required: EMAIL or SMS.",
            ));
            None
        }
        Some(text) => DeliveryChannel::parse(text, &field("channel")).map_err(|p| problems.push(p)).ok(),
    };
    let language = match input.language.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(text) => Language::parse(text, &field("language")).map_err(|p| problems.push(p)).ok(),
    };
    let template = match input.template.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(text) => MessageTemplate::parse(text, &field("template")).map_err(|p| problems.push(p)).ok(),
    };
    let to = input.to.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let recipient = match (channel, to) {
        (_, None) => {
            problems.push(Problem::invalid_field("DELIVERY_RECIPIENT_REQUIRED", field("to"), "{field} is required."));
            None
        }
        (Some(DeliveryChannel::Email), Some(to)) => EmailAddress::parse(to, &field("to"))
            .map(|a| (a.as_str().to_string(), a.masked()))
            .map_err(|p| problems.push(p))
            .ok(),
        (Some(DeliveryChannel::Sms), Some(to)) => PhoneNumber::parse(to, &field("to"))
            .map(|n| (n.as_e164().to_string(), n.masked()))
            .map_err(|p| problems.push(p))
            .ok(),
        (None, Some(_)) => None,
    };
    match (channel, recipient) {
        (Some(channel), Some((recipient, masked))) if problems.is_empty() => {
            Ok(ParsedDelivery { channel, recipient, masked, language, template })
        }
        _ => Err(problems),
    }
}

fn delivery_aad(tenant_id: &str, delivery_id: &str) -> Vec<u8> {
    format!("message-recipient:{tenant_id}:{delivery_id}").into_bytes()
}

fn not_configured(channel: DeliveryChannel) -> Problem {
    match channel {
        DeliveryChannel::Email => Problem::bad_request("EMAIL_DELIVERY_NOT_CONFIGURED").message(
            "No SMTP server is configured for e-mail delivery: set [delivery.email] for the deployment or \
             PUT /v1/whitelabel/delivery-settings.",
        ),
        DeliveryChannel::Sms => Problem::bad_request("SMS_DELIVERY_NOT_CONFIGURED").message(
            "No SMS gateway is configured for SMS delivery: set [delivery.sms] for the deployment or \
             PUT /v1/whitelabel/delivery-settings.",
        ),
    }
}

impl Engine {
    /// The absolute URL of a link.
    pub fn pay_by_link_url(&self, pay_by_link_id: &str) -> String {
        format!("{}/pay/{pay_by_link_id}", self.config.public_url.trim_end_matches('/'))
    }

    /// Refuses a delivery whose channel has no settings in force for the tenant.
    async fn check_channel(&self, tenant_id: &str, channel: DeliveryChannel) -> EngineResult<()> {
        let channels = self.delivery_channels(tenant_id).await?;
        let configured = match channel {
            DeliveryChannel::Email => channels.email.is_some(),
            DeliveryChannel::Sms => channels.sms.is_some(),
        };
        if !configured {
            return Err(not_configured(channel).into());
        }
        Ok(())
    }

    /// The row, the job and nothing else of one message: the recipient sealed with
    /// the customer's data key.
    async fn queued_message(
        &self,
        link: &PayByLinkRecord,
        customer_ref: &str,
        delivery: &ParsedDelivery,
        template: MessageTemplate,
        now: i64,
    ) -> EngineResult<[Change; 2]> {
        let delivery_id = new_id();
        let key = self.customer_data_key(&link.tenant_id, customer_ref).await?;
        let record = MessageDeliveryRecord {
            delivery_id: delivery_id.clone(),
            tenant_id: link.tenant_id.clone(),
            pay_by_link_id: link.pay_by_link_id.clone(),
            customer_ref: customer_ref.to_string(),
            channel: delivery.channel,
            recipient_sealed: key.seal(delivery.recipient.as_bytes(), &delivery_aad(&link.tenant_id, &delivery_id)),
            recipient_masked: delivery.masked.clone(),
            language: delivery.language.unwrap_or(link.language),
            template,
            status: DeliveryStatus::Queued,
            attempts: 0,
            last_error: None,
            created_at: now,
            updated_at: now,
            sent_at: None,
        };
        let job = JobRecord::new(new_id(), DELIVER_MESSAGE_JOB, &delivery_id, &link.tenant_id, "{}".into(), now, now);
        Ok([Change::InsertMessageDelivery(Box::new(record)), Change::ScheduleJob(job)])
    }

    /// `POST /v1/whitelabel-customer/session/checkout/pay-by-link`: a link for a
    /// payable DEBIT instruction, with its first message queued when `delivery` asks.
    pub async fn create_pay_by_link(&self, tenant_id: &str, input: PayByLinkInput) -> EngineResult<PayByLinkView> {
        let mut problems = Vec::new();
        let order_ref =
            Ref::parse_with(input.order_ref.as_deref(), "orderRef", "ORDER_REF_REQUIRED", "INVALID_ORDER_REF")
                .map_err(|p| problems.push(p))
                .ok();
        let instruction_ref = Ref::parse_with(
            input.instruction_ref.as_deref(),
            "instructionRef",
            "INSTRUCTION_REF_REQUIRED",
            "INVALID_INSTRUCTION_REF",
        )
        .map_err(|p| problems.push(p))
        .ok();
        let expiry = parse_expiry_seconds(input.expiry_seconds.as_ref()).map_err(|p| problems.push(p)).ok();
        let callbacks = match &input.callbacks {
            None => None,
            Some(c) => crate::checkout::check_callbacks(c, self.environment())
                .map_err(|p| problems.extend(p))
                .unwrap_or_default(),
        };
        let page_language = match input.language.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(t) => Language::parse(t, "language").map_err(|p| problems.push(p)).ok(),
        };
        let delivery = match &input.delivery {
            None => None,
            Some(d) => parse_delivery(d, "delivery.").map_err(|p| problems.extend(p)).ok(),
        };
        let (Some(order_ref), Some(instruction_ref), Some(expiry)) = (order_ref, instruction_ref, expiry) else {
            return Err(problems.into());
        };
        if !problems.is_empty() {
            return Err(problems.into());
        }
        if let Some(d) = &delivery {
            self.check_channel(tenant_id, d.channel).await?;
        }
        let order = self.order_record(tenant_id, order_ref.as_str()).await?;
        let (instruction, view) = self.instruction_and_view(&order, instruction_ref.as_str()).await?;
        if instruction.direction != Direction::Debit {
            return Err(Problem::payment_required("PAY_BY_LINK_NOT_SUPPORTED")
                .message("Pay-by-link collects money: only a DEBIT instruction can have one.")
                .into());
        }
        if !matches!(
            instruction.status,
            InstructionStatus::Incomplete | InstructionStatus::Ready | InstructionStatus::Late
        ) {
            return Err(Problem::bad_request("INSTRUCTION_NOT_UPDATABLE")
                .message("The instruction is {status}; it can no longer be paid.")
                .detail("status", instruction.status.as_str())
                .into());
        }
        if view.scheme.id.is_none() {
            // The checkout offers what the collect scheme resolves to: without one, the
            // link could never be paid.
            return Err(Problem::bad_request("SCHEME_REQUIRED")
                .message("The instruction has no collect scheme; set one before asking for a link.")
                .into());
        }
        let now = self.now_ms();
        let language = delivery.as_ref().and_then(|d| d.language).or(page_language).unwrap_or_default();
        let link = PayByLinkRecord {
            pay_by_link_id: new_link_id(),
            tenant_id: tenant_id.to_string(),
            order_id: order.order_id.clone(),
            instruction_id: instruction.instruction_id.clone(),
            status: PayByLinkStatus::Active,
            language,
            callbacks: callbacks.as_ref().map(|c| serde_json::to_string(c).unwrap_or_default()),
            expires_at: now + expiry * 1000,
            opened_at: None,
            finished_at: None,
            created_at: now,
            updated_at: now,
        };
        let mut changes = vec![Change::InsertPayByLink(Box::new(link.clone()))];
        if let Some(d) = &delivery {
            let template = d.template.unwrap_or(MessageTemplate::PaymentRequest);
            changes.extend(self.queued_message(&link, &instruction.customer_ref, d, template, now).await?);
        }
        self.apply(&changes, now).await?;
        self.pay_by_link(tenant_id, &link.pay_by_link_id).await
    }

    /// The link of a tenant, after applying what is due (settled → `COMPLETED`,
    /// past its expiry → `EXPIRED`).
    async fn live_link(&self, tenant_id: &str, pay_by_link_id: &str) -> EngineResult<PayByLinkRow> {
        if !looks_like_link_id(pay_by_link_id) {
            return Err(not_found().into());
        }
        let row = self.store.pay_by_link(tenant_id, pay_by_link_id).await?.ok_or_else(not_found)?;
        self.settle_due(row).await
    }

    /// `GET …/pay-by-link/{payByLinkId}`.
    pub async fn pay_by_link(&self, tenant_id: &str, pay_by_link_id: &str) -> EngineResult<PayByLinkView> {
        let row = self.live_link(tenant_id, pay_by_link_id).await?;
        let deliveries = self.store.message_deliveries(tenant_id, pay_by_link_id).await?;
        Ok(self.view(&row, &deliveries))
    }

    fn view(&self, row: &PayByLinkRow, deliveries: &[MessageDeliveryRecord]) -> PayByLinkView {
        let l = &row.link;
        PayByLinkView {
            pay_by_link_id: l.pay_by_link_id.clone(),
            link: self.pay_by_link_url(&l.pay_by_link_id),
            status: l.status,
            order_ref: row.order_ref.clone(),
            instruction_ref: row.instruction_ref.clone(),
            language: l.language,
            expires_at: l.expires_at,
            created_at: l.created_at,
            opened_at: l.opened_at,
            callbacks: l.callbacks.as_deref().and_then(|c| serde_json::from_str(c).ok()),
            deliveries: deliveries.iter().map(DeliveryView::from).collect(),
        }
    }

    /// `POST …/pay-by-link/{payByLinkId}/send`: queues another message, to the
    /// recipient given or to the last one. A reminder once a message was sent.
    pub async fn resend_pay_by_link(
        &self,
        tenant_id: &str,
        pay_by_link_id: &str,
        input: Option<DeliveryInput>,
    ) -> EngineResult<PayByLinkView> {
        let row = self.live_link(tenant_id, pay_by_link_id).await?;
        if !row.link.status.is_live() {
            return Err(not_active(row.link.status).into());
        }
        let previous = self.store.message_deliveries(tenant_id, pay_by_link_id).await?;
        let delivery = match input {
            Some(d) if d.channel.is_some() || d.to.is_some() => parse_delivery(&d, "")?,
            other => {
                let Some(last) = previous.last() else {
                    return Err(Problem::invalid_field(
                        "DELIVERY_RECIPIENT_REQUIRED",
                        "to",
                        "This link was never sent: name the channel and recipient ({field}).",
                    )
                    .into());
                };
                let key = self.customer_data_key(tenant_id, &last.customer_ref).await?;
                let recipient = key
                    .open(&last.recipient_sealed, &delivery_aad(tenant_id, &last.delivery_id))
                    .map_err(|e| internal(format!("recipient of message {}: {e}", last.delivery_id)))?;
                let extra = other.unwrap_or_default();
                let given =
                    |t: &Option<String>| t.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
                let language = given(&extra.language).map(|t| Language::parse(&t, "language")).transpose()?;
                let template = given(&extra.template).map(|t| MessageTemplate::parse(&t, "template")).transpose()?;
                ParsedDelivery {
                    channel: last.channel,
                    recipient: String::from_utf8(recipient).map_err(|e| internal(e.to_string()))?,
                    masked: last.recipient_masked.clone(),
                    language: language.or(Some(last.language)),
                    template,
                }
            }
        };
        self.check_channel(tenant_id, delivery.channel).await?;
        let template = delivery.template.unwrap_or(if previous.iter().any(|d| d.status == DeliveryStatus::Sent) {
            MessageTemplate::PaymentReminder
        } else {
            MessageTemplate::PaymentRequest
        });
        let now = self.now_ms();
        let changes = self.queued_message(&row.link, &row.customer_ref, &delivery, template, now).await?;
        self.apply(&changes, now).await?;
        self.pay_by_link(tenant_id, pay_by_link_id).await
    }

    /// `DELETE …/pay-by-link/{payByLinkId}`: the link stops working, and so does every
    /// checkout token and session it minted (their payments need the link live when
    /// they start); messages not yet sent are not sent. Cancelling a cancelled link
    /// changes nothing; while a payment of the instruction is under way it is refused
    /// (`409 PAY_BY_LINK_PAYMENT_IN_PROGRESS`), so a cancelled link is never paid.
    pub async fn cancel_pay_by_link(&self, tenant_id: &str, pay_by_link_id: &str) -> EngineResult<()> {
        let row = self.live_link(tenant_id, pay_by_link_id).await?;
        match row.link.status {
            PayByLinkStatus::Cancelled => return Ok(()),
            s if !s.is_live() => return Err(not_active(s).into()),
            _ => {}
        }
        let instruction = self
            .store
            .instruction_by_id(tenant_id, &row.link.instruction_id)
            .await?
            .ok_or_else(|| internal(format!("instruction of pay-by-link {pay_by_link_id}")))?;
        if instruction.status == InstructionStatus::Processing {
            return Err(payment_in_progress().into());
        }
        let now = self.now_ms();
        let changes = [
            Change::PayByLinkStatus {
                tenant_id: tenant_id.to_string(),
                pay_by_link_id: pay_by_link_id.to_string(),
                from: PayByLinkStatus::LIVE.to_vec(),
                to: PayByLinkStatus::Cancelled,
            },
            // After the link's row is locked: a payment whose start checked the link
            // first has committed by now and is seen here (see `Change::PayByLinkLive`).
            Change::InstructionStatusIn {
                tenant_id: tenant_id.to_string(),
                instruction_id: row.link.instruction_id.clone(),
                statuses: NOT_PAYING.to_vec(),
            },
        ];
        if !self.apply(&changes, now).await? {
            // It moved meanwhile (opened, completed, expired, being paid): judge again.
            return Box::pin(self.cancel_pay_by_link(tenant_id, pay_by_link_id)).await;
        }
        for d in self.store.message_deliveries(tenant_id, pay_by_link_id).await? {
            if d.status == DeliveryStatus::Queued {
                self.give_up(&d, d.attempts, "PAY_BY_LINK_CANCELLED: the link was cancelled before it was sent")
                    .await?;
            }
        }
        Ok(())
    }

    /// Marks a queued message `FAILED` and removes its job (a message already sent
    /// meanwhile stays `SENT`).
    async fn give_up(&self, d: &MessageDeliveryRecord, attempts: i64, error: &str) -> EngineResult<()> {
        let changes = [
            Change::MessageDeliveryStatus {
                tenant_id: d.tenant_id.clone(),
                delivery_id: d.delivery_id.clone(),
                from: DeliveryStatus::Queued,
                to: DeliveryStatus::Failed,
                attempts,
                last_error: Some(error.to_string()),
            },
            Change::DeleteJobFor { kind: DELIVER_MESSAGE_JOB.into(), subject_id: d.delivery_id.clone() },
        ];
        self.apply(&changes, self.now_ms()).await?;
        Ok(())
    }

    /// The `data` of a pay-by-link event: the link, the order and the instruction.
    async fn link_event(&self, row: &PayByLinkRow, status: PayByLinkStatus, now: i64) -> EngineResult<EventRecord> {
        let event_type = match status {
            PayByLinkStatus::Opened => EventType::PayByLinkOpened,
            _ => EventType::PayByLinkExpired,
        };
        let order = self
            .store
            .order_by_id(&row.link.tenant_id, &row.link.order_id)
            .await?
            .ok_or_else(|| internal(format!("order of pay-by-link {}", row.link.pay_by_link_id)))?;
        let view = self.instruction_view_of(&order, &row.instruction_ref).await?;
        let scheme = view.scheme.id.clone().unwrap_or_default();
        let mut data = events::instruction_data(&order, &view, view.status, (&scheme, "", None), None);
        data["payByLink"] = json!({
            "payByLinkId": row.link.pay_by_link_id,
            "orderRef": row.order_ref,
            "instructionRef": row.instruction_ref,
            "status": status.as_str(),
            "expiresAt": iso(row.link.expires_at),
        });
        Ok(EventRecord {
            event_id: new_id(),
            account_id: None,
            tenant_id: Some(row.link.tenant_id.clone()),
            event_type,
            ordering_key: Some(row.link.instruction_id.clone()),
            data: data.to_string(),
            created_at: now,
        })
    }

    /// Applies what is due to a live link: `COMPLETED` once its instruction settled,
    /// else `EXPIRED` (with `pay_by_link.expired`) once past its expiry. Returns the
    /// link as it then stands.
    async fn settle_due(&self, mut row: PayByLinkRow) -> EngineResult<PayByLinkRow> {
        if !row.link.status.is_live() {
            return Ok(row);
        }
        let now = self.now_ms();
        let instruction = self
            .store
            .instruction_by_id(&row.link.tenant_id, &row.link.instruction_id)
            .await?
            .ok_or_else(|| internal(format!("instruction of pay-by-link {}", row.link.pay_by_link_id)))?;
        let to = if instruction.status == InstructionStatus::Settled {
            PayByLinkStatus::Completed
        } else if row.link.expires_at <= now {
            PayByLinkStatus::Expired
        } else {
            return Ok(row);
        };
        let mut changes = vec![Change::PayByLinkStatus {
            tenant_id: row.link.tenant_id.clone(),
            pay_by_link_id: row.link.pay_by_link_id.clone(),
            from: PayByLinkStatus::LIVE.to_vec(),
            to,
        }];
        if to == PayByLinkStatus::Expired {
            changes.push(Change::Event(self.link_event(&row, to, now).await?));
        }
        // Applied once: a concurrent open or worker finds the status moved.
        self.apply(&changes, now).await?;
        let fresh = self
            .store
            .pay_by_link(&row.link.tenant_id, &row.link.pay_by_link_id)
            .await?
            .ok_or_else(|| internal(format!("pay-by-link {} vanished", row.link.pay_by_link_id)))?;
        row = fresh;
        Ok(row)
    }

    /// The worker's step: ends the links that are due (see [`Self::settle_due`]).
    pub(crate) async fn finish_due_pay_by_links(&self) -> EngineResult<usize> {
        let mut count = 0;
        for row in self.store.pay_by_links_due(self.now_ms(), BATCH).await? {
            let before = row.link.status;
            if self.settle_due(row).await?.link.status != before {
                count += 1;
            }
        }
        Ok(count)
    }

    /// `GET /pay/{payByLinkId}` (public): a fresh checkout token while the link can be
    /// paid, else why not. `language` is the visitor's choice (query or
    /// `Accept-Language`); the link's own language applies otherwise.
    pub async fn open_pay_by_link(
        &self,
        pay_by_link_id: &str,
        language: Option<Language>,
    ) -> EngineResult<LinkOpening> {
        let unavailable =
            |reason, language, merchant, theme| LinkOpening::Unavailable { reason, language, merchant, theme };
        if !looks_like_link_id(pay_by_link_id) {
            return Ok(unavailable(LinkUnavailable::NotFound, language.unwrap_or_default(), None, None));
        }
        let Some(row) = self.store.pay_by_link_by_id(pay_by_link_id).await? else {
            return Ok(unavailable(LinkUnavailable::NotFound, language.unwrap_or_default(), None, None));
        };
        let row = self.settle_due(row).await?;
        let tenant_id = row.link.tenant_id.clone();
        let language = language.unwrap_or(row.link.language);
        let reason = match row.link.status {
            PayByLinkStatus::Completed => Some(LinkUnavailable::Completed),
            PayByLinkStatus::Expired => Some(LinkUnavailable::Expired),
            PayByLinkStatus::Cancelled => Some(LinkUnavailable::Cancelled),
            PayByLinkStatus::Active | PayByLinkStatus::Opened => {
                let instruction = self
                    .store
                    .instruction_by_id(&tenant_id, &row.link.instruction_id)
                    .await?
                    .ok_or_else(|| internal(format!("instruction of pay-by-link {pay_by_link_id}")))?;
                match instruction.status {
                    InstructionStatus::Incomplete | InstructionStatus::Ready | InstructionStatus::Late => None,
                    InstructionStatus::Processing => Some(LinkUnavailable::Processing),
                    InstructionStatus::Settled => Some(LinkUnavailable::Completed),
                    _ => Some(LinkUnavailable::NotPayable),
                }
            }
        };
        if let Some(reason) = reason {
            let merchant = self.store.merchant_name(&tenant_id).await?;
            let theme = self.checkout_theme(&tenant_id).await.ok();
            return Ok(unavailable(reason, language, merchant, theme));
        }
        let now = self.now_ms();
        let remaining = (row.link.expires_at - now) / 1000;
        let grant = self.mint_link_token(&row, remaining.clamp(MIN_EXPIRY_SECONDS, TOKEN_SECONDS)).await;
        let access_token = match grant {
            Ok(token) => token,
            Err(crate::EngineError::Rejected(problems)) => {
                tracing::info!(pay_by_link_id = %pay_by_link_id, problems = %problems, "pay-by-link not payable");
                let merchant = self.store.merchant_name(&tenant_id).await?;
                let theme = self.checkout_theme(&tenant_id).await.ok();
                return Ok(unavailable(LinkUnavailable::NotPayable, language, merchant, theme));
            }
            Err(e) => return Err(e),
        };
        if row.link.status == PayByLinkStatus::Active {
            let changes = [
                Change::PayByLinkStatus {
                    tenant_id: tenant_id.clone(),
                    pay_by_link_id: pay_by_link_id.to_string(),
                    from: vec![PayByLinkStatus::Active],
                    to: PayByLinkStatus::Opened,
                },
                Change::Event(self.link_event(&row, PayByLinkStatus::Opened, now).await?),
            ];
            // The first open wins; concurrent ones find it OPENED and announce nothing.
            self.apply(&changes, now).await?;
        }
        Ok(LinkOpening::Checkout { access_token, language })
    }

    /// A fresh checkout token for the link's instruction, living `seconds`, carrying
    /// the link's id and callbacks.
    async fn mint_link_token(&self, row: &PayByLinkRow, seconds: i64) -> EngineResult<String> {
        let request = crate::checkout::GrantRequest {
            order_ref: row.order_ref.clone(),
            instruction_ref: row.instruction_ref.clone(),
            expires_in_seconds: seconds,
            callbacks: row.link.callbacks.as_deref().and_then(|c| serde_json::from_str(c).ok()),
            pay_by_link_id: Some(row.link.pay_by_link_id.clone()),
        };
        Ok(self.grant_checkout(&row.link.tenant_id, request).await?.access_token)
    }

    /// Runs one `deliver-message` job: `Ok(None)` when the message is settled (sent or
    /// given up), `Ok(Some(at))` to try again at `at`.
    pub(crate) async fn deliver_message(&self, job: &JobRecord) -> EngineResult<Option<i64>> {
        let tenant_id = job.tenant_id.as_deref().unwrap_or_default();
        let Some(d) = self.store.message_delivery(tenant_id, &job.subject_id).await? else { return Ok(None) };
        if d.status != DeliveryStatus::Queued {
            return Ok(None);
        }
        let attempts = d.attempts + 1;
        let Some(row) = self.store.pay_by_link(tenant_id, &d.pay_by_link_id).await? else { return Ok(None) };
        let row = self.settle_due(row).await?;
        if !row.link.status.is_live() {
            let reason = format!("PAY_BY_LINK_NOT_ACTIVE: the link is {}", row.link.status);
            self.give_up(&d, d.attempts, &reason).await?;
            return Ok(None);
        }
        let channels = self.delivery_channels(tenant_id).await?;
        let key = self.customer_data_key(tenant_id, &d.customer_ref).await?;
        let recipient = key
            .open(&d.recipient_sealed, &delivery_aad(tenant_id, &d.delivery_id))
            .map_err(|e| internal(format!("recipient of message {}: {e}", d.delivery_id)))?;
        let recipient = String::from_utf8(recipient).map_err(|e| internal(e.to_string()))?;
        let content = self.message_content(&row, &d).await?;
        let merchant = content.merchant.clone();
        let result = match d.channel {
            DeliveryChannel::Email => match &channels.email {
                None => Err(delivery::SendError::Permanent(not_configured(d.channel).render(&[]))),
                Some(channel) => self.send_email(channel, &merchant, &recipient, &messages::email(&content)).await,
            },
            DeliveryChannel::Sms => match &channels.sms {
                None => Err(delivery::SendError::Permanent(not_configured(d.channel).render(&[]))),
                Some(channel) => self.send_sms(channel, &recipient, &messages::sms(&content)).await,
            },
        };
        let now = self.now_ms();
        match result {
            Ok(()) => {
                let change = Change::MessageDeliveryStatus {
                    tenant_id: tenant_id.to_string(),
                    delivery_id: d.delivery_id.clone(),
                    from: DeliveryStatus::Queued,
                    to: DeliveryStatus::Sent,
                    attempts,
                    last_error: None,
                };
                self.apply(&[change], now).await?;
                tracing::info!(delivery_id = %d.delivery_id, channel = %d.channel, "pay-by-link message sent");
                Ok(None)
            }
            Err(e) => {
                let permanent = matches!(e, delivery::SendError::Permanent(_)) || attempts >= MAX_SEND_ATTEMPTS;
                tracing::warn!(delivery_id = %d.delivery_id, channel = %d.channel, attempts, permanent,
                    error = %e.message(), "pay-by-link message not sent");
                if permanent {
                    self.give_up(&d, attempts, e.message()).await?;
                    return Ok(None);
                }
                let change = Change::MessageDeliveryStatus {
                    tenant_id: tenant_id.to_string(),
                    delivery_id: d.delivery_id.clone(),
                    from: DeliveryStatus::Queued,
                    to: DeliveryStatus::Queued,
                    attempts,
                    last_error: Some(e.message().to_string()),
                };
                self.apply(&[change], now).await?;
                // 30 s, 1 min, 2 min, 4 min, 8 min between tries.
                Ok(Some(now + 30_000 * (1_i64 << (attempts - 1).clamp(0, 8))))
            }
        }
    }

    /// What one message says: the tenant's name, the instruction's amount, the link.
    async fn message_content(
        &self,
        row: &PayByLinkRow,
        d: &MessageDeliveryRecord,
    ) -> EngineResult<messages::MessageContent> {
        let tenant_id = &row.link.tenant_id;
        let instruction = self
            .store
            .instruction_by_id(tenant_id, &row.link.instruction_id)
            .await?
            .ok_or_else(|| internal(format!("instruction of pay-by-link {}", row.link.pay_by_link_id)))?;
        let currency: Currency = instruction
            .currency
            .parse()
            .map_err(|_| internal(format!("currency of instruction {}", instruction.instruction_id)))?;
        let amount = baton_domain::Amount { minor: instruction.amount_minor, currency }.to_decimal();
        let merchant = self.store.merchant_name(tenant_id).await?.unwrap_or_default();
        let theme = self.checkout_theme(tenant_id).await?;
        let expires_at = time::OffsetDateTime::from_unix_timestamp(row.link.expires_at / 1000)
            .map_err(|e| internal(e.to_string()))?;
        Ok(messages::MessageContent {
            merchant,
            amount,
            currency,
            link: self.pay_by_link_url(&row.link.pay_by_link_id),
            expires_at,
            language: d.language,
            template: d.template,
            brand_color: theme.brand_color,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_seconds_as_number_or_string() {
        assert_eq!(parse_expiry_seconds(None), Ok(3600));
        assert_eq!(parse_expiry_seconds(Some(&json!("6000"))), Ok(6000));
        assert_eq!(parse_expiry_seconds(Some(&json!(60))), Ok(60));
        assert_eq!(parse_expiry_seconds(Some(&json!(2_592_000))), Ok(2_592_000));
        for bad in [json!(59), json!(2_592_001), json!("1e3"), json!(1.5), json!("soon"), json!(true), json!(-60)] {
            assert_eq!(parse_expiry_seconds(Some(&bad)).unwrap_err().code, "INVALID_EXPIRY_SECONDS", "{bad}");
        }
    }

    #[test]
    fn link_ids_carry_128_random_bits() {
        let a = new_link_id();
        assert!(looks_like_link_id(&a), "{a}");
        assert_ne!(a, new_link_id());
        assert_eq!(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 16);
        assert!(!looks_like_link_id("../../etc/passwd"));
    }

    #[test]
    fn deliveries_are_parsed_with_their_fields() {
        let input =
            DeliveryInput { channel: Some("email".into()), to: Some("jane@example.com".into()), ..Default::default() };
        let d = parse_delivery(&input, "delivery.").map_err(|_| ()).unwrap();
        assert_eq!((d.channel, d.masked.as_str()), (DeliveryChannel::Email, "j***@example.com"));
        let input = DeliveryInput {
            channel: Some("SMS".into()),
            to: Some("jane@example.com".into()),
            language: Some("fr".into()),
            ..Default::default()
        };
        let codes: Vec<_> = parse_delivery(&input, "delivery.").err().unwrap().into_iter().map(|p| p.code).collect();
        assert_eq!(codes, ["INVALID_LANGUAGE", "INVALID_PHONE_NUMBER"]);
    }
}
