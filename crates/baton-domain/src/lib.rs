//! Baton's domain: the pure core that every other layer builds on.
//!
//! Nothing here does I/O or knows about HTTP or SQL. Input is parsed into these
//! types once, at the edge; inside Baton a [`Country`] or a [`Role`] is always valid.

pub mod address;
pub mod apps;
pub mod checkout;
pub mod codes;
pub mod dates;
pub mod environment;
pub mod events;
pub mod execution;
pub mod hmac_signature;
pub mod instruction;
pub mod instrument;
pub mod metadata;
pub mod money;
pub mod pay_by_link;
pub mod problem;
pub mod refs;
pub mod roles;
pub mod schemes;
pub mod tenant;
pub mod text;
mod words;

pub use address::Address;
pub use apps::{AppId, AppType, Direction, SchemeKind, TransactionType, ValueType};
pub use checkout::CheckoutStatus;
pub use codes::{Country, Currency};
pub use dates::SettleByDate;
pub use environment::Environment;
pub use events::EventType;
pub use execution::{
    ChargebackReason, ChargebackStatus, ClaimStatus, Decline, DeclineCategory, Operation, RefundReason, RefundStatus,
    TransactionStatus,
};
pub use instruction::{Effective, InstructionStatus, Source};
pub use instrument::{
    BankAccountDetails, BankAccountId, BillingAddress, CardBrand, CardDetails, CardExpiry, CardNumber, HolderName,
    Iban, InstrumentDetails, InstrumentDisplay, InstrumentState, InstrumentType, MandateDetails, MandateReference,
    MandateScheme, PhoneNumber, RoutingNumber, SortCode, StateChange, StateReason, UkAccountNumber, WalletDetails,
};
pub use metadata::{Metadata, MetadataRules};
pub use money::{Amount, DecimalInput};
pub use pay_by_link::{DeliveryChannel, DeliveryStatus, EmailAddress, Language, MessageTemplate, PayByLinkStatus};
pub use problem::{Problem, ProblemKind, Problems};
pub use refs::{CustomerRef, InstructionRef, OrderRef, Ref};
pub use roles::{KeyKind, Role, RoleSet};
pub use schemes::{
    first_match, fits_amount, resolve_collect, resolve_payout, reward_fits, validate_rules, AppEntry, CollectOption,
    GroupMember, MatchQuery, MatchType, RewardGroupRef, RewardTerms, Rule,
};
pub use tenant::{TenantName, TenantStatus};
