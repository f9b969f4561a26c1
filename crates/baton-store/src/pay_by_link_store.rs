//! Storage of pay-by-links (SPEC §4.11, §5.7), the messages that carry them, and two
//! per-tenant documents of the hosted checkout: the theme template and the message
//! delivery settings.
//!
//! A link, its first message and the job that sends it are written together through
//! [`crate::ExecutionStore::apply`] (`Change::InsertPayByLink`,
//! `Change::InsertMessageDelivery`, `Change::ScheduleJob`), as are status moves and the
//! events announcing them; the reads and the two documents are here. The SQL lives in
//! `portable_pay_by_links.rs`.

use async_trait::async_trait;
use baton_domain::{DeliveryChannel, DeliveryStatus, Language, MessageTemplate, PayByLinkStatus};

use crate::StoreResult;

/// A pay-by-link: an unguessable id that opens the checkout of one instruction until
/// it expires, is cancelled, or the instruction settles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayByLinkRecord {
    /// The capability in the link's URL (at least 128 random bits, base64url).
    pub pay_by_link_id: String,
    pub tenant_id: String,
    pub order_id: String,
    pub instruction_id: String,
    pub status: PayByLinkStatus,
    /// The language of the page and the messages.
    pub language: Language,
    /// `{success, failed, cancelled}` as JSON text, when given.
    pub callbacks: Option<String>,
    pub expires_at: i64,
    pub opened_at: Option<i64>,
    /// When it became `COMPLETED`, `EXPIRED` or `CANCELLED`.
    pub finished_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A link with the references the API shows it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayByLinkRow {
    pub link: PayByLinkRecord,
    pub order_ref: String,
    pub instruction_ref: String,
    pub customer_ref: String,
}

/// One message carrying a link to its recipient.
#[derive(Clone, PartialEq, Eq)]
pub struct MessageDeliveryRecord {
    pub delivery_id: String,
    pub tenant_id: String,
    pub pay_by_link_id: String,
    /// The instruction's customer, whose data key seals the recipient.
    pub customer_ref: String,
    pub channel: DeliveryChannel,
    /// The address or number, sealed with the customer's data key (erasing the
    /// customer makes it unreadable).
    pub recipient_sealed: Vec<u8>,
    /// What the API shows (`j***@example.com`, `+44*******123`).
    pub recipient_masked: String,
    pub language: Language,
    pub template: MessageTemplate,
    pub status: DeliveryStatus,
    /// Sends tried so far.
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub sent_at: Option<i64>,
}

impl std::fmt::Debug for MessageDeliveryRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageDeliveryRecord")
            .field("delivery_id", &self.delivery_id)
            .field("pay_by_link_id", &self.pay_by_link_id)
            .field("channel", &self.channel)
            .field("recipient", &self.recipient_masked)
            .field("status", &self.status)
            .field("attempts", &self.attempts)
            .field("last_error", &self.last_error)
            .finish_non_exhaustive()
    }
}

/// A per-tenant document: its JSON text and, for delivery settings, the secrets
/// sealed under the master key.
#[derive(Clone, PartialEq, Eq)]
pub struct TenantDocument {
    pub tenant_id: String,
    /// JSON text.
    pub document: String,
    pub secrets_sealed: Option<Vec<u8>>,
    pub updated_at: i64,
}

impl std::fmt::Debug for TenantDocument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantDocument")
            .field("tenant_id", &self.tenant_id)
            .field("document", &self.document)
            .field("secrets_sealed", &self.secrets_sealed.as_ref().map(|_| "[sealed]"))
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

/// Which per-tenant document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentKind {
    /// The white-label document of the checkout (`theme_templates`).
    ThemeTemplate,
    /// The tenant's own SMTP server and SMS gateway (`delivery_settings`).
    DeliverySettings,
}

#[async_trait]
pub trait PayByLinkStore: Send + Sync + 'static {
    /// A tenant's link.
    async fn pay_by_link(&self, tenant_id: &str, pay_by_link_id: &str) -> StoreResult<Option<PayByLinkRow>>;
    /// A link by its id alone: the id is the capability of the public page.
    async fn pay_by_link_by_id(&self, pay_by_link_id: &str) -> StoreResult<Option<PayByLinkRow>>;
    /// The link's messages, oldest first.
    async fn message_deliveries(
        &self,
        tenant_id: &str,
        pay_by_link_id: &str,
    ) -> StoreResult<Vec<MessageDeliveryRecord>>;
    async fn message_delivery(&self, tenant_id: &str, delivery_id: &str) -> StoreResult<Option<MessageDeliveryRecord>>;
    /// Live (`ACTIVE`/`OPENED`) links that are due to end: expired at `now`, or whose
    /// instruction has settled. Oldest expiry first.
    async fn pay_by_links_due(&self, now: i64, limit: u32) -> StoreResult<Vec<PayByLinkRow>>;

    /// A tenant's theme template or delivery settings, if saved.
    async fn tenant_document(&self, kind: DocumentKind, tenant_id: &str) -> StoreResult<Option<TenantDocument>>;
    /// Saves (inserts or replaces) a tenant's document.
    async fn save_tenant_document(&self, kind: DocumentKind, document: &TenantDocument) -> StoreResult<()>;
}
