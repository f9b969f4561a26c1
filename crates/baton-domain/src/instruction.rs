//! Instructions (SPEC §4.9): the status machine, `canUpdate`, the `source` of a field
//! and the inheritance of financial instrument, scheme and metadata from the order's
//! customer defaults.

use time::OffsetDateTime;

use crate::apps::TransactionType;
use crate::dates::SettleByDate;
use crate::problem::Problem;

use crate::words::word_enum;

word_enum!(
    /// Where an instruction stands (SPEC §4.9 "Status machine").
    InstructionStatus, "INVALID_INSTRUCTION_STATUS", [
        Incomplete => "INCOMPLETE",
        Ready => "READY",
        Late => "LATE",
        Processing => "PROCESSING",
        Settled => "SETTLED",
        Failed => "FAILED",
        Void => "VOID",
    ]
);

impl InstructionStatus {
    /// Every allowed move, and nothing else (a status never moves to itself):
    ///
    /// | from | to |
    /// |---|---|
    /// | `INCOMPLETE` | `READY` (FI and scheme now present), `LATE`, `VOID` |
    /// | `READY` | `INCOMPLETE` (FI or scheme cleared), `LATE`, `PROCESSING`, `VOID` |
    /// | `LATE` | `PROCESSING`, `VOID` |
    /// | `PROCESSING` | `SETTLED`, `FAILED`; `READY`, `LATE` (a customer-initiated attempt failed) |
    /// | `SETTLED`, `FAILED`, `VOID` | — (terminal) |
    pub fn next_states(self) -> &'static [InstructionStatus] {
        use InstructionStatus::*;
        match self {
            Incomplete => &[Ready, Late, Void],
            Ready => &[Incomplete, Late, Processing, Void],
            Late => &[Processing, Void],
            Processing => &[Settled, Failed, Ready, Late],
            Settled | Failed | Void => &[],
        }
    }

    pub fn can_transition_to(self, to: InstructionStatus) -> bool {
        self.next_states().contains(&to)
    }

    /// Moves to `to` if the status machine allows it, else
    /// `400 INVALID_STATUS_TRANSITION` with `from` and `to`.
    pub fn transition_to(self, to: InstructionStatus) -> Result<InstructionStatus, Problem> {
        transition(self, to)
    }

    /// `SETTLED`, `FAILED` and `VOID` accept no further change.
    pub fn is_terminal(self) -> bool {
        matches!(self, InstructionStatus::Settled | InstructionStatus::Failed | InstructionStatus::Void)
    }

    /// `canUpdate`: the instruction's FI and scheme may still be changed.
    pub fn can_update(self) -> bool {
        can_update(self)
    }

    /// Not yet handed to an app: `INCOMPLETE`, `READY` or `LATE`. Customer-default edits
    /// reach only instructions that [`can_update`](Self::can_update); these three can be voided.
    pub fn is_unprocessed(self) -> bool {
        matches!(self, InstructionStatus::Incomplete | InstructionStatus::Ready | InstructionStatus::Late)
    }
}

/// Moves `from` → `to` if [`InstructionStatus::next_states`] allows it, else
/// `400 INVALID_STATUS_TRANSITION` (details `from`, `to`).
pub fn transition(from: InstructionStatus, to: InstructionStatus) -> Result<InstructionStatus, Problem> {
    if from.can_transition_to(to) {
        Ok(to)
    } else {
        Err(Problem::bad_request("INVALID_STATUS_TRANSITION")
            .message("An instruction cannot move from {from} to {to}.")
            .detail("from", from.as_str())
            .detail("to", to.as_str()))
    }
}

/// `canUpdate` = status ∈ {`INCOMPLETE`, `READY`}.
pub fn can_update(status: InstructionStatus) -> bool {
    matches!(status, InstructionStatus::Incomplete | InstructionStatus::Ready)
}

/// The status of a new instruction: `READY` when its effective scheme is present and
/// its effective FI is present and `ACTIVE` (`fi_active`), else `INCOMPLETE`.
pub fn initial_status(has_effective_scheme: bool, fi_active: bool) -> InstructionStatus {
    if has_effective_scheme && fi_active {
        InstructionStatus::Ready
    } else {
        InstructionStatus::Incomplete
    }
}

/// The status after the effective FI or scheme may have changed (an edit of the
/// instruction or of a customer default, an FI state change). `current` is `None` for
/// a new instruction. `INCOMPLETE`/`READY` become [`initial_status`]; every other status
/// (`LATE` included: a late instruction stays late) is kept. The result is always
/// reachable from `current` by [`transition`] or equal to it.
pub fn resolve_status(
    has_effective_scheme: bool,
    fi_active: bool,
    current: Option<InstructionStatus>,
) -> InstructionStatus {
    match current {
        None | Some(InstructionStatus::Incomplete | InstructionStatus::Ready) => {
            initial_status(has_effective_scheme, fi_active)
        }
        Some(other) => other,
    }
}

/// Where an instruction goes when its payment attempt fails (SPEC §4.9, §4.11). A
/// merchant-initiated payment (`MIT`: the scheduler, the API) ends `FAILED`. A
/// customer-initiated one (`CIT`: the hosted checkout) leaves the instruction payable,
/// so that the customer may try another card: `READY`, or `LATE` once its settle-by
/// date has ended (UTC).
pub fn after_failed_attempt(
    transaction_type: TransactionType,
    settled_by: Option<SettleByDate>,
    now: OffsetDateTime,
) -> InstructionStatus {
    match transaction_type {
        TransactionType::Mit => InstructionStatus::Failed,
        TransactionType::Cit if settled_by.is_some_and(|d| d.has_passed(now)) => InstructionStatus::Late,
        TransactionType::Cit => InstructionStatus::Ready,
    }
}

/// Whether an instruction should move to `LATE` at `now`: it is `INCOMPLETE` or `READY`
/// and its settle-by date has ended (UTC). Instructions without a date are never late.
pub fn becomes_late(status: InstructionStatus, settled_by: Option<SettleByDate>, now: OffsetDateTime) -> bool {
    matches!(status, InstructionStatus::Incomplete | InstructionStatus::Ready)
        && settled_by.is_some_and(|d| d.has_passed(now))
}

word_enum!(
    /// Who set an instruction's financial instrument or scheme (`source`).
    Source, "INVALID_SOURCE", [
        None => "NONE",
        CustomerDefault => "CUSTOMER_DEFAULT",
        Customer => "CUSTOMER",
        Tenant => "TENANT",
        SystemGenerated => "SYSTEM_GENERATED",
    ]
);

impl Source {
    /// The source to record for a value set on the instruction itself: `given`, except
    /// that `NONE` and `CUSTOMER_DEFAULT` (which describe no value or an inherited one)
    /// become `TENANT`, the source of values set through the API.
    pub fn own(given: Source) -> Source {
        match given {
            Source::None | Source::CustomerDefault => Source::Tenant,
            other => other,
        }
    }
}

/// An instruction field as resolved against the customer default: its value (if any)
/// and where the value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective<T> {
    pub value: Option<T>,
    pub source: Source,
}

impl<T> Effective<T> {
    /// No value, source `NONE`.
    pub fn none() -> Self {
        Self { value: None, source: Source::None }
    }

    pub fn is_set(&self) -> bool {
        self.value.is_some()
    }

    pub fn as_ref(&self) -> Effective<&T> {
        Effective { value: self.value.as_ref(), source: self.source }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Effective<U> {
        Effective { value: self.value.map(f), source: self.source }
    }
}

/// The inheritance table of SPEC §4.9:
///
/// | default | instruction | effective |
/// |---|---|---|
/// | null | X | X, source [`Source::own`]`(own_source)` |
/// | X | null | X, `CUSTOMER_DEFAULT` |
/// | null | null | null, `NONE` |
/// | X | Y | Y, [`Source::own`]`(own_source)` |
///
/// `own_source` is the source recorded with the instruction's own value (`TENANT` for
/// the API, `CUSTOMER` for checkout, `SYSTEM_GENERATED` for the platform).
pub fn inherit<T>(default: Option<T>, own: Option<T>, own_source: Source) -> Effective<T> {
    match (default, own) {
        (_, Some(value)) => Effective { value: Some(value), source: Source::own(own_source) },
        (Some(value), None) => Effective { value: Some(value), source: Source::CustomerDefault },
        (None, None) => Effective::none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use InstructionStatus::*;

    /// SPEC §4.9, written out pair by pair.
    const ALLOWED: &[(InstructionStatus, InstructionStatus)] = &[
        (Ready, Incomplete),
        (Incomplete, Ready),
        (Incomplete, Late),
        (Ready, Late),
        (Ready, Processing),
        (Late, Processing),
        (Processing, Settled),
        (Processing, Failed),
        (Processing, Ready),
        (Processing, Late),
        (Incomplete, Void),
        (Ready, Void),
        (Late, Void),
    ];

    #[test]
    fn exactly_the_spec_transitions() {
        for &from in InstructionStatus::ALL {
            for &to in InstructionStatus::ALL {
                let allowed = ALLOWED.contains(&(from, to));
                assert_eq!(from.can_transition_to(to), allowed, "{from} -> {to}");
                match transition(from, to) {
                    Ok(s) => assert!(allowed && s == to),
                    Err(p) => {
                        assert!(!allowed);
                        assert_eq!(p.code, "INVALID_STATUS_TRANSITION");
                        assert_eq!(p.kind, crate::problem::ProblemKind::BadRequest);
                        assert_eq!(p.render(&[]), format!("An instruction cannot move from [{from}] to [{to}]."));
                    }
                }
            }
        }
    }

    #[test]
    fn words() {
        assert_eq!(InstructionStatus::parse("ready", "status"), Ok(Ready));
        assert_eq!(InstructionStatus::parse("DONE", "status").unwrap_err().code, "INVALID_INSTRUCTION_STATUS");
        assert_eq!(serde_json::to_string(&Processing).unwrap(), "\"PROCESSING\"");
        assert_eq!(
            InstructionStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            ["INCOMPLETE", "READY", "LATE", "PROCESSING", "SETTLED", "FAILED", "VOID"]
        );
        assert_eq!(
            Source::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            ["NONE", "CUSTOMER_DEFAULT", "CUSTOMER", "TENANT", "SYSTEM_GENERATED"]
        );
        assert_eq!(Source::parse("customer_default", "source"), Ok(Source::CustomerDefault));
        assert_eq!(Source::parse("API", "source").unwrap_err().code, "INVALID_SOURCE");
    }

    #[test]
    fn can_update_only_before_late_or_processing() {
        let updatable: Vec<_> = InstructionStatus::ALL.iter().copied().filter(|s| can_update(*s)).collect();
        assert_eq!(updatable, [Incomplete, Ready]);
        let terminal: Vec<_> = InstructionStatus::ALL.iter().copied().filter(|s| s.is_terminal()).collect();
        assert_eq!(terminal, [Settled, Failed, Void]);
        let unprocessed: Vec<_> = InstructionStatus::ALL.iter().copied().filter(|s| s.is_unprocessed()).collect();
        assert_eq!(unprocessed, [Incomplete, Ready, Late]);
    }

    #[test]
    fn resolving_status() {
        assert_eq!(resolve_status(true, true, None), Ready);
        assert_eq!(resolve_status(false, true, None), Incomplete);
        assert_eq!(resolve_status(true, false, None), Incomplete);
        assert_eq!(resolve_status(true, false, Some(Ready)), Incomplete);
        assert_eq!(resolve_status(true, true, Some(Incomplete)), Ready);
        assert_eq!(resolve_status(false, false, Some(Late)), Late);
        assert_eq!(resolve_status(true, true, Some(Late)), Late);
        for s in [Processing, Settled, Failed, Void] {
            assert_eq!(resolve_status(true, true, Some(s)), s);
            assert_eq!(resolve_status(false, false, Some(s)), s);
        }
        assert_eq!(initial_status(true, true), Ready);
        assert_eq!(initial_status(false, false), Incomplete);
    }

    #[test]
    fn failed_attempts_end_mit_payments_and_leave_checkouts_payable() {
        let now = time::macros::datetime!(2026-05-15 12:00 UTC);
        let date = |d: &str| Some(SettleByDate::parse(d, "settledByDate").unwrap());
        for settled_by in [None, date("2026-05-14"), date("2026-05-15"), date("2027-01-01")] {
            assert_eq!(after_failed_attempt(TransactionType::Mit, settled_by, now), Failed);
        }
        assert_eq!(after_failed_attempt(TransactionType::Cit, None, now), Ready);
        // The settle-by day itself is still on time; the day after it, late.
        assert_eq!(after_failed_attempt(TransactionType::Cit, date("2026-05-15"), now), Ready);
        assert_eq!(after_failed_attempt(TransactionType::Cit, date("2027-01-01"), now), Ready);
        assert_eq!(after_failed_attempt(TransactionType::Cit, date("2026-05-14"), now), Late);
        // Every outcome is a move the status machine allows from PROCESSING.
        for t in [TransactionType::Mit, TransactionType::Cit] {
            for d in [None, date("2026-05-14")] {
                assert!(Processing.can_transition_to(after_failed_attempt(t, d, now)));
            }
        }
    }

    #[test]
    fn inheritance_table() {
        // default null + instruction X → X from the instruction.
        assert_eq!(
            inherit(None, Some("fi-1"), Source::Tenant),
            Effective { value: Some("fi-1"), source: Source::Tenant }
        );
        assert_eq!(inherit(None, Some("fi-1"), Source::Customer).source, Source::Customer);
        assert_eq!(inherit(None, Some("fi-1"), Source::SystemGenerated).source, Source::SystemGenerated);
        assert_eq!(inherit(None, Some("fi-1"), Source::None).source, Source::Tenant);
        assert_eq!(inherit(None, Some("fi-1"), Source::CustomerDefault).source, Source::Tenant);
        // default X + instruction null → X from the order.
        assert_eq!(
            inherit(Some("fi-d"), None, Source::Tenant),
            Effective { value: Some("fi-d"), source: Source::CustomerDefault }
        );
        // both null.
        assert_eq!(inherit::<&str>(None, None, Source::Tenant), Effective::none());
        assert!(!Effective::<u8>::none().is_set());
        // both set → the instruction's.
        assert_eq!(
            inherit(Some("fi-d"), Some("fi-1"), Source::Tenant),
            Effective { value: Some("fi-1"), source: Source::Tenant }
        );
        let e = inherit(Some(1), None, Source::Tenant).map(|v| v + 1);
        assert_eq!((e.value, e.source, e.as_ref().value), (Some(2), Source::CustomerDefault, Some(&2)));
    }

    #[test]
    fn late_once_the_settle_by_date_has_ended() {
        use time::macros::{date, datetime};
        let d = Some(SettleByDate::from_date(date!(2020 - 12 - 31)));
        let before = datetime!(2020-12-31 23:59:59 UTC);
        let after = datetime!(2021-01-01 00:00 UTC);
        for s in InstructionStatus::ALL.iter().copied() {
            assert!(!becomes_late(s, d, before));
            assert_eq!(becomes_late(s, d, after), matches!(s, Incomplete | Ready), "{s}");
            assert!(!becomes_late(s, None, after));
            if becomes_late(s, d, after) {
                assert!(s.can_transition_to(Late));
            }
        }
    }

    fn status() -> impl Strategy<Value = InstructionStatus> {
        prop::sample::select(InstructionStatus::ALL.to_vec())
    }

    fn source() -> impl Strategy<Value = Source> {
        prop::sample::select(Source::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn requested_transitions_follow_the_table_or_change_nothing(
            start in status(),
            requests in prop::collection::vec(status(), 0..40),
        ) {
            let mut current = start;
            for to in requests {
                let before = current;
                match before.transition_to(to) {
                    Ok(next) => {
                        prop_assert!(ALLOWED.contains(&(before, to)));
                        prop_assert_eq!(next, to);
                        current = next;
                    }
                    Err(p) => {
                        prop_assert!(!ALLOWED.contains(&(before, to)));
                        prop_assert_eq!(p.code.as_ref(), "INVALID_STATUS_TRANSITION");
                        prop_assert_eq!(current, before);
                    }
                }
                if before.is_terminal() {
                    prop_assert_eq!(current, before);
                }
            }
        }

        #[test]
        fn terminal_states_accept_nothing(from in status(), to in status()) {
            if from.is_terminal() {
                prop_assert!(transition(from, to).is_err());
            }
            prop_assert_eq!(can_update(from), matches!(from, Incomplete | Ready));
            prop_assert_eq!(from.can_update(), can_update(from));
        }

        #[test]
        fn resolve_status_only_makes_allowed_moves(scheme: bool, fi: bool, current in prop::option::of(status())) {
            let next = resolve_status(scheme, fi, current);
            match current {
                None => prop_assert!(matches!(next, Incomplete | Ready)),
                Some(c) => prop_assert!(next == c || c.can_transition_to(next)),
            }
            prop_assert_eq!(next == Ready, matches!(current, None | Some(Incomplete | Ready)) && scheme && fi);
        }

        #[test]
        fn inheritance_prefers_the_instruction(
            default in prop::option::of(0u8..5),
            own in prop::option::of(0u8..5),
            given in source(),
        ) {
            let e = inherit(default, own, given);
            prop_assert_eq!(e.value, own.or(default));
            let expected = match (default, own) {
                (_, Some(_)) => Source::own(given),
                (Some(_), None) => Source::CustomerDefault,
                (None, None) => Source::None,
            };
            prop_assert_eq!(e.source, expected);
            prop_assert_eq!(e.source == Source::None, e.value.is_none());
        }
    }
}
