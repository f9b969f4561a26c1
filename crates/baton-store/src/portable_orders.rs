// Portable SQL of `OrderStore`, `include!`d by `sqlite.rs` and `postgres.rs` after
// `portable_instruments.rs` (same conventions and hooks).
//
// Every write to an order's defaults or instructions starts by touching the order row
// (`UPDATE orders … WHERE order_id AND tenant_id`): it proves the order is the
// tenant's and, on PostgreSQL, holds the row lock until commit, so writes to one order
// are serialised across nodes. (A status move out of `LATE` or `PROCESSING`, which no
// other write of the order reaches, is guarded by its own compare-and-set instead; see
// `change_status`.) It ends with `orders_sql::refresh`, which re-resolves
// the status of the affected `INCOMPLETE`/`READY` instructions with the domain's
// `resolve_status`, reading defaults and instrument states inside the transaction.
//
// A new order is handed to the backend's `write_order` hook: PostgreSQL writes it with
// `orders_sql::insert_order` in a transaction of its own; SQLite commits the orders
// waiting for its single writer together (group commit, in `sqlite.rs`).

mod orders_sql {
    use baton_domain::instruction::resolve_status;
    use baton_domain::{Direction, InstructionStatus, InstrumentState, Source};
    use sqlx::Row as _;

    use super::{Cols, Db, DbRow};
    use crate::order_store::{CustomerDefaultRecord, InstructionRecord, OrderRecord};
    use crate::{StoreError, StoreResult};

    pub(super) const ORDER_COLUMNS: &str = "order_id, tenant_id, order_ref, metadata, created_at, updated_at";
    pub(super) const DEFAULT_COLUMNS: &str = "order_id, customer_ref, financial_instrument_id, instrument_source, \
        scheme_id, scheme_source, metadata, updated_at";
    pub(super) const INSTRUCTION_COLUMNS: &str = "instruction_id, tenant_id, order_id, instruction_ref, customer_ref, \
        direction, status, financial_instrument_id, instrument_source, scheme_id, scheme_source, amount_minor, \
        currency, country, settled_by_date, metadata, created_at, updated_at";

    use crate::records::parse_word as word;

    /// `'A', 'B'` for an `IN (…)` list: the words come from the domain's enum, never from input.
    pub(super) fn status_list<T: std::fmt::Display>(statuses: &[T]) -> String {
        if statuses.is_empty() {
            return "''".into();
        }
        statuses.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", ")
    }

    /// A value bound to a listing query whose conditions depend on the filters given.
    pub(super) enum Arg {
        Text(String),
        Int(i64),
    }

    /// The order of a listing: by creation, ties by id ascending.
    #[derive(Clone, Copy)]
    pub(super) enum ListOrder {
        OldestFirst,
        NewestFirst,
    }

    /// The `WHERE` conditions of a listing with their arguments, numbered as pushed
    /// (so `$N` follow their first appearance, as both backends require).
    #[derive(Default)]
    pub(super) struct Conditions {
        pub(super) sql: Vec<String>,
        args: Vec<Arg>,
    }

    impl Conditions {
        /// Binds `arg` and returns its placeholder.
        pub(super) fn arg(&mut self, arg: Arg) -> String {
            self.args.push(arg);
            format!("${}", self.args.len())
        }

        pub(super) fn push(&mut self, condition: String) {
            self.sql.push(condition);
        }

        /// `created_at >= from`, `created_at < before`, and the keyset: strictly after
        /// `(c, id)` in the listing's order, on table alias `t`. Oldest first
        /// (`ORDER BY created_at, id`) that is `created_at > c OR (created_at = c AND
        /// id > id)`; newest first with ties by id ascending (`ORDER BY created_at DESC,
        /// id`) it is `created_at <= c AND (created_at < c OR id > id)`, whose first part
        /// bounds the range read from an index on `(…, created_at DESC, id)`.
        pub(super) fn window(
            &mut self,
            t: &str,
            id: &str,
            (from, before): (Option<i64>, Option<i64>),
            after: Option<&crate::Keyset>,
            order: ListOrder,
        ) {
            self.created(t, from, before);
            if let Some(k) = after {
                let c = self.arg(Arg::Int(k.created_at));
                let i = self.arg(Arg::Text(k.id.clone()));
                self.push(match order {
                    ListOrder::NewestFirst => {
                        format!("{t}.created_at <= {c} AND ({t}.created_at < {c} OR {t}.{id} > {i})")
                    }
                    ListOrder::OldestFirst => {
                        format!("({t}.created_at > {c} OR ({t}.created_at = {c} AND {t}.{id} > {i}))")
                    }
                });
            }
        }

        /// `created_at >= from` and `created_at < before` on table alias `t`.
        fn created(&mut self, t: &str, from: Option<i64>, before: Option<i64>) {
            if let Some(from) = from {
                let p = self.arg(Arg::Int(from));
                self.push(format!("{t}.created_at >= {p}"));
            }
            if let Some(before) = before {
                let p = self.arg(Arg::Int(before));
                self.push(format!("{t}.created_at < {p}"));
            }
        }

        pub(super) fn where_clause(&self) -> String {
            self.sql.join(" AND ")
        }

        pub(super) fn bind<'q>(
            &'q self,
            mut query: sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments<'q>>,
        ) -> sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments<'q>> {
            for arg in &self.args {
                query = match arg {
                    Arg::Text(s) => query.bind(s.as_str()),
                    Arg::Int(i) => query.bind(*i),
                };
            }
            query
        }
    }

    /// `columns` (a `, `-separated list) qualified with the table alias `t`.
    pub(super) fn qualified(columns: &str, t: &str) -> String {
        columns.split(", ").map(|c| format!("{t}.{c}")).collect::<Vec<_>>().join(", ")
    }

    pub(super) fn order_from_row(row: &DbRow) -> StoreResult<OrderRecord> {
        order_from(Cols::of(row))
    }

    pub(super) fn order_from(c: Cols<'_>) -> StoreResult<OrderRecord> {
        Ok(OrderRecord {
            order_id: c.get("order_id")?,
            tenant_id: c.get("tenant_id")?,
            order_ref: c.get("order_ref")?,
            metadata: c.get("metadata")?,
            created_at: c.get("created_at")?,
            updated_at: c.get("updated_at")?,
        })
    }

    pub(super) fn default_from_row(row: &DbRow) -> StoreResult<CustomerDefaultRecord> {
        default_from(Cols::of(row))
    }

    pub(super) fn default_from(c: Cols<'_>) -> StoreResult<CustomerDefaultRecord> {
        Ok(CustomerDefaultRecord {
            order_id: c.get("order_id")?,
            customer_ref: c.get("customer_ref")?,
            financial_instrument_id: c.get("financial_instrument_id")?,
            instrument_source: word::<Source>(c.get("instrument_source")?, "source")?,
            scheme_id: c.get("scheme_id")?,
            scheme_source: word::<Source>(c.get("scheme_source")?, "source")?,
            metadata: c.get("metadata")?,
            updated_at: c.get("updated_at")?,
        })
    }

    pub(super) fn instruction_from_row(row: &DbRow) -> StoreResult<InstructionRecord> {
        instruction_from(Cols::of(row))
    }

    pub(super) fn instruction_from(c: Cols<'_>) -> StoreResult<InstructionRecord> {
        Ok(InstructionRecord {
            instruction_id: c.get("instruction_id")?,
            tenant_id: c.get("tenant_id")?,
            order_id: c.get("order_id")?,
            instruction_ref: c.get("instruction_ref")?,
            customer_ref: c.get("customer_ref")?,
            direction: word::<Direction>(c.get("direction")?, "direction")?,
            status: word::<InstructionStatus>(c.get("status")?, "instruction status")?,
            financial_instrument_id: c.get("financial_instrument_id")?,
            instrument_source: word::<Source>(c.get("instrument_source")?, "source")?,
            scheme_id: c.get("scheme_id")?,
            scheme_source: word::<Source>(c.get("scheme_source")?, "source")?,
            amount_minor: c.get("amount_minor")?,
            currency: c.get("currency")?,
            country: c.get("country")?,
            settled_by_date: c.get("settled_by_date")?,
            metadata: c.get("metadata")?,
            created_at: c.get("created_at")?,
            updated_at: c.get("updated_at")?,
        })
    }

    /// A uniqueness conflict named after the constraint (SQLite reports no names).
    pub(super) fn named_conflict(e: StoreError, name: &str) -> StoreError {
        match e {
            StoreError::Conflict(_) => StoreError::Conflict(name.to_string()),
            other => other,
        }
    }

    /// Touches the order row (lock); `false` if the tenant has no such order.
    pub(super) async fn touch_order(
        tx: &mut sqlx::Transaction<'_, Db>,
        tenant_id: &str,
        order_id: &str,
        now: i64,
    ) -> StoreResult<bool> {
        let n = sqlx::query("UPDATE orders SET updated_at = $1 WHERE order_id = $2 AND tenant_id = $3")
            .bind(now)
            .bind(order_id)
            .bind(tenant_id)
            .execute(&mut **tx)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    /// What inserting a customer default does when the order already has one for that
    /// customer: replace it whole.
    pub(super) const DEFAULT_CONFLICT: &str = "ON CONFLICT (order_id, customer_ref) DO UPDATE SET \
        financial_instrument_id = EXCLUDED.financial_instrument_id, \
        instrument_source = EXCLUDED.instrument_source, scheme_id = EXCLUDED.scheme_id, \
        scheme_source = EXCLUDED.scheme_source, metadata = EXCLUDED.metadata, updated_at = EXCLUDED.updated_at";

    pub(super) async fn upsert_default(
        tx: &mut sqlx::Transaction<'_, Db>,
        d: &CustomerDefaultRecord,
    ) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO customer_defaults ({DEFAULT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) {DEFAULT_CONFLICT}"
        ))
        .bind(&d.order_id)
        .bind(&d.customer_ref)
        .bind(&d.financial_instrument_id)
        .bind(d.instrument_source.as_str())
        .bind(&d.scheme_id)
        .bind(d.scheme_source.as_str())
        .bind(&d.metadata)
        .bind(d.updated_at)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    pub(super) async fn insert_instruction(
        tx: &mut sqlx::Transaction<'_, Db>,
        r: &InstructionRecord,
    ) -> StoreResult<()> {
        insert_instructions(tx, &[r]).await
    }

    /// Instructions per multi-row insert: 18 parameters a row stay far below either
    /// engine's parameter limit.
    pub(super) const INSTRUCTIONS_PER_STATEMENT: usize = 50;

    /// Inserts many instructions with one multi-row statement per chunk: an order's
    /// whole schedule costs the single SQLite writer one round trip, not one per row.
    pub(super) async fn insert_instructions(
        tx: &mut sqlx::Transaction<'_, Db>,
        records: &[&InstructionRecord],
    ) -> StoreResult<()> {
        for chunk in records.chunks(INSTRUCTIONS_PER_STATEMENT) {
            let mut query = sqlx::QueryBuilder::<Db>::new("");
            push_instruction_insert(&mut query, chunk);
            query
                .build()
                .execute(&mut **tx)
                .await
                .map_err(|e| named_conflict(e.into(), "instructions_ref_unique"))?;
        }
        Ok(())
    }

    /// The multi-row insert of `records`, added to `query`.
    pub(super) fn push_instruction_insert<'a>(
        query: &mut sqlx::QueryBuilder<'a, Db>,
        records: &[&'a InstructionRecord],
    ) {
        query.push(format!("INSERT INTO instructions ({INSTRUCTION_COLUMNS}) "));
        query.push_values(records, |mut row, r| {
            row.push_bind(&r.instruction_id)
                .push_bind(&r.tenant_id)
                .push_bind(&r.order_id)
                .push_bind(&r.instruction_ref)
                .push_bind(&r.customer_ref)
                .push_bind(r.direction.as_str())
                .push_bind(r.status.as_str())
                .push_bind(&r.financial_instrument_id)
                .push_bind(r.instrument_source.as_str())
                .push_bind(&r.scheme_id)
                .push_bind(r.scheme_source.as_str())
                .push_bind(r.amount_minor)
                .push_bind(&r.currency)
                .push_bind(&r.country)
                .push_bind(&r.settled_by_date)
                .push_bind(&r.metadata)
                .push_bind(r.created_at)
                .push_bind(r.updated_at);
        });
    }

    /// Moves an instruction to `to` if its status is one of `from` (inside the caller's
    /// transaction); `false` otherwise. Leaving the updatable statuses freezes the
    /// inherited values into the instruction.
    ///
    /// Only a move out of an updatable status touches the order first: edits of the
    /// order's defaults re-resolve exactly those instructions, so they must not overlap.
    /// An instruction past them (`LATE`, `PROCESSING`) is reached by no other write of
    /// the order, and its one guarded update is enough.
    pub(super) async fn change_status(
        tx: &mut sqlx::Transaction<'_, Db>,
        tenant_id: &str,
        order_id: &str,
        instruction_id: &str,
        from: &[baton_domain::InstructionStatus],
        to: baton_domain::InstructionStatus,
        now: i64,
    ) -> StoreResult<bool> {
        let from_updatable = from.iter().any(|s| s.can_update());
        if from_updatable && !touch_order(tx, tenant_id, order_id, now).await? {
            return Ok(false);
        }
        if to.can_update() || !from_updatable {
            // Nothing to freeze: one guarded update.
            let n = sqlx::query(&format!(
                "UPDATE instructions SET status = $1, updated_at = $2 \
                 WHERE instruction_id = $3 AND tenant_id = $4 AND order_id = $5 AND status IN ({})",
                status_list(from)
            ))
            .bind(to.as_str())
            .bind(now)
            .bind(instruction_id)
            .bind(tenant_id)
            .bind(order_id)
            .execute(&mut **tx)
            .await?
            .rows_affected();
            return Ok(n == 1);
        }
        let row = sqlx::query(&format!(
            "SELECT {} FROM instructions WHERE instruction_id = $1 AND tenant_id = $2 AND order_id = $3 \
             AND status IN ({})",
            INSTRUCTION_COLUMNS,
            status_list(from)
        ))
        .bind(instruction_id)
        .bind(tenant_id)
        .bind(order_id)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let mut r = instruction_from_row(&row)?;
        if r.status.can_update() {
            let default = sqlx::query(&format!(
                "SELECT {} FROM customer_defaults WHERE order_id = $1 AND customer_ref = $2",
                DEFAULT_COLUMNS
            ))
            .bind(order_id)
            .bind(&r.customer_ref)
            .fetch_optional(&mut **tx)
            .await?
            .as_ref()
            .map(default_from_row)
            .transpose()?;
            r = r.frozen(default.as_ref())?;
        }
        sqlx::query(
            "UPDATE instructions SET status = $1, updated_at = $2, financial_instrument_id = $3, \
             instrument_source = $4, scheme_id = $5, scheme_source = $6, metadata = $7 WHERE instruction_id = $8",
        )
        .bind(to.as_str())
        .bind(now)
        .bind(&r.financial_instrument_id)
        .bind(r.instrument_source.as_str())
        .bind(&r.scheme_id)
        .bind(r.scheme_source.as_str())
        .bind(&r.metadata)
        .bind(instruction_id)
        .execute(&mut **tx)
        .await?;
        Ok(true)
    }

    /// `Change::StartProcessing`: the instruction `seen` moves to `PROCESSING`, with
    /// what it inherited frozen from `default`, only while it, its default and its
    /// instrument stand as the caller read them (see the change's documentation) and its
    /// customer has not been erased: nothing is charged for a forgotten customer.
    pub(super) async fn start_processing(
        tx: &mut sqlx::Transaction<'_, Db>,
        seen: &InstructionRecord,
        default: Option<&CustomerDefaultRecord>,
        now: i64,
    ) -> StoreResult<bool> {
        if !touch_order(tx, &seen.tenant_id, &seen.order_id, now).await? {
            return Ok(false);
        }
        let updatable = seen.status.can_update();
        let next = seen.frozen(default)?;
        let Some(instrument_id) = &next.financial_instrument_id else { return Ok(false) };
        // The default as read: still the same, or still absent (only an updatable
        // instruction inherits from it).
        let default_guard = match (updatable, default) {
            (false, _) => "",
            (true, None) => {
                "AND NOT EXISTS (SELECT 1 FROM customer_defaults d \
                 WHERE d.order_id = $10 AND d.customer_ref = instructions.customer_ref)"
            }
            (true, Some(_)) => {
                "AND EXISTS (SELECT 1 FROM customer_defaults d \
                 WHERE d.order_id = $10 AND d.customer_ref = instructions.customer_ref \
                 AND d.financial_instrument_id IS NOT DISTINCT FROM $21 \
                 AND d.scheme_id IS NOT DISTINCT FROM $22 AND d.metadata = $23)"
            }
        };
        let sql = format!(
            "UPDATE instructions SET status = $1, updated_at = $2, financial_instrument_id = $3, \
             instrument_source = $4, scheme_id = $5, scheme_source = $6, metadata = $7 \
             WHERE instruction_id = $8 AND tenant_id = $9 AND order_id = $10 AND status = $11 \
             AND financial_instrument_id IS NOT DISTINCT FROM $12 AND instrument_source = $13 \
             AND scheme_id IS NOT DISTINCT FROM $14 AND scheme_source = $15 AND metadata = $16 \
             AND amount_minor = $17 AND currency = $18 AND country = $19 \
             AND settled_by_date IS NOT DISTINCT FROM $20 {default_guard} \
             AND EXISTS (SELECT 1 FROM financial_instruments f WHERE f.financial_instrument_id = $3 \
             AND f.tenant_id = $9 AND f.customer_ref = instructions.customer_ref AND f.state = '{active}') \
             AND EXISTS (SELECT 1 FROM customer_keys k WHERE k.tenant_id = $9 \
             AND k.customer_ref = instructions.customer_ref AND k.wrapped_key IS NOT NULL)",
            active = InstrumentState::Active.as_str(),
        );
        let mut query = sqlx::query(&sql)
            .bind(InstructionStatus::Processing.as_str())
            .bind(now)
            .bind(instrument_id)
            .bind(next.instrument_source.as_str())
            .bind(&next.scheme_id)
            .bind(next.scheme_source.as_str())
            .bind(&next.metadata)
            .bind(&seen.instruction_id)
            .bind(&seen.tenant_id)
            .bind(&seen.order_id)
            .bind(seen.status.as_str())
            .bind(&seen.financial_instrument_id)
            .bind(seen.instrument_source.as_str())
            .bind(&seen.scheme_id)
            .bind(seen.scheme_source.as_str())
            .bind(&seen.metadata)
            .bind(seen.amount_minor)
            .bind(&seen.currency)
            .bind(&seen.country)
            .bind(&seen.settled_by_date);
        if let (true, Some(d)) = (updatable, default) {
            query = query.bind(&d.financial_instrument_id).bind(&d.scheme_id).bind(&d.metadata);
        }
        Ok(query.execute(&mut **tx).await?.rows_affected() == 1)
    }

    /// The query re-resolving statuses: each open instruction (of those `filter`
    /// selects, on alias `i`) with its order, direction, the kind of its effective
    /// scheme and the state of its effective financial instrument (its own, else the
    /// customer default's).
    pub(super) fn refresh_query(filter: &str) -> String {
        let open = status_list(&[InstructionStatus::Incomplete, InstructionStatus::Ready]);
        format!(
            "SELECT i.instruction_id, i.order_id, i.status, i.direction, \
               (SELECT s.kind FROM schemes s WHERE s.tenant_id = i.tenant_id \
                  AND s.scheme_id = COALESCE(i.scheme_id, d.scheme_id)) AS scheme_kind, \
               (SELECT f.state FROM financial_instruments f WHERE f.tenant_id = i.tenant_id \
                  AND f.customer_ref = i.customer_ref \
                  AND f.financial_instrument_id = COALESCE(i.financial_instrument_id, d.financial_instrument_id)) \
                 AS fi_state \
             FROM instructions i LEFT JOIN customer_defaults d \
               ON d.order_id = i.order_id AND d.customer_ref = i.customer_ref \
             WHERE {filter} AND i.status IN ({open})"
        )
    }

    /// The status a row of [`refresh_query`] must move to, if it differs from the stored one.
    pub(super) fn status_change(row: &DbRow) -> StoreResult<Option<InstructionStatus>> {
        let current = word::<InstructionStatus>(row.try_get("status")?, "instruction status")?;
        // A scheme counts only if it exists and routes this direction: an inherited
        // payout scheme does not make a DEBIT instruction ready, nor the reverse.
        let direction: String = row.try_get("direction")?;
        let scheme_kind: Option<String> = row.try_get("scheme_kind")?;
        let scheme_fits = match (direction.parse::<baton_domain::Direction>(), scheme_kind) {
            (Ok(d), Some(kind)) => kind.parse::<baton_domain::SchemeKind>().is_ok_and(|k| k.direction() == d),
            _ => false,
        };
        let fi_state: Option<String> = row.try_get("fi_state")?;
        let fi_active = fi_state.and_then(|s| s.parse::<InstrumentState>().ok()) == Some(InstrumentState::Active);
        let next = resolve_status(scheme_fits, fi_active, Some(current));
        Ok((next != current).then_some(next))
    }

    /// Re-resolves the status of the order's `INCOMPLETE`/`READY` instructions (of one
    /// customer, or all) from their own values, the current defaults and instrument states.
    ///
    /// Returns the instructions whose status changed, with their new status.
    pub(super) async fn refresh(
        tx: &mut sqlx::Transaction<'_, Db>,
        tenant_id: &str,
        order_id: &str,
        customer_ref: Option<&str>,
        now: i64,
    ) -> StoreResult<StatusChanges> {
        let rows = sqlx::query(&refresh_query(
            "i.order_id = $1 AND i.tenant_id = $2 AND ($3 IS NULL OR i.customer_ref = $3)",
        ))
        .bind(order_id)
        .bind(tenant_id)
        .bind(customer_ref)
        .fetch_all(&mut **tx)
        .await?;
        apply_status_rows(tx, &rows, now).await
    }

    /// The updates a re-resolution's rows call for, one per instruction whose status
    /// changes; returns those instructions with their new status.
    pub(super) async fn apply_status_rows(
        tx: &mut sqlx::Transaction<'_, Db>,
        rows: &[DbRow],
        now: i64,
    ) -> StoreResult<StatusChanges> {
        let mut changes = StatusChanges::new();
        for row in rows {
            if let Some(next) = status_change(row)? {
                let id: String = row.try_get("instruction_id")?;
                sqlx::query("UPDATE instructions SET status = $1, updated_at = $2 WHERE instruction_id = $3")
                    .bind(next.as_str())
                    .bind(now)
                    .bind(&id)
                    .execute(&mut **tx)
                    .await?;
                changes.insert(id, next);
            }
        }
        Ok(changes)
    }

    /// Instructions whose status a re-resolution changed, by id.
    pub(super) type StatusChanges = std::collections::HashMap<String, InstructionStatus>;

    /// `instructions` as stored after a re-resolution made `changes`.
    pub(super) fn as_stored(instructions: &[&InstructionRecord], changes: &StatusChanges) -> Vec<InstructionRecord> {
        instructions
            .iter()
            .map(|i| InstructionRecord { status: changes.get(&i.instruction_id).copied().unwrap_or(i.status), ..(*i).clone() })
            .collect()
    }

    /// The events announcing `instructions`, if they are to be announced. Called before
    /// the write, with the statuses the instructions are written with, so that the
    /// bodies are built outside the transaction (and SQLite's single writer).
    pub(super) fn announcements(
        instructions: &[InstructionRecord],
        announce: Option<&crate::Announcement>,
    ) -> StoreResult<Vec<crate::EventRecord>> {
        match announce {
            Some(announce) => instructions.iter().map(|i| announce(i)).collect(),
            None => Ok(Vec::new()),
        }
    }

    /// The announcements to write for `stored` instructions, given those made before
    /// the write (`announced`, one per instruction or none): each as made, except for the
    /// instructions whose status the re-resolution changed, announced again as stored.
    pub(super) fn announced_as_stored<'e>(
        announced: &'e [crate::EventRecord],
        stored: &[InstructionRecord],
        changes: &StatusChanges,
        announce: Option<&crate::Announcement>,
    ) -> StoreResult<Vec<std::borrow::Cow<'e, crate::EventRecord>>> {
        use std::borrow::Cow;
        let Some(announce) = announce else { return Ok(Vec::new()) };
        if announced.len() != stored.len() {
            return stored.iter().map(|i| Ok(Cow::Owned(announce(i)?))).collect();
        }
        stored
            .iter()
            .zip(announced)
            .map(|(i, before)| match changes.contains_key(&i.instruction_id) {
                true => Ok(Cow::Owned(announce(i)?)),
                false => Ok(Cow::Borrowed(before)),
            })
            .collect()
    }

    /// An order to create, with its customer defaults and instructions, and the events
    /// announcing the instructions as given (see [`announcements`]).
    pub(super) struct NewOrder<'a> {
        pub(super) order: &'a OrderRecord,
        pub(super) defaults: &'a [CustomerDefaultRecord],
        pub(super) instructions: &'a [InstructionRecord],
        pub(super) announce: Option<&'a crate::Announcement>,
        pub(super) announced: &'a [crate::EventRecord],
    }

    /// Inserts the order's own row; a taken `orderRef` (or id) is the conflict
    /// `orders_ref_unique`.
    pub(super) async fn insert_order_row(tx: &mut sqlx::Transaction<'_, Db>, order: &OrderRecord) -> StoreResult<()> {
        sqlx::query(&format!("INSERT INTO orders ({ORDER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"))
            .bind(&order.order_id)
            .bind(&order.tenant_id)
            .bind(&order.order_ref)
            .bind(&order.metadata)
            .bind(order.created_at)
            .bind(order.updated_at)
            .execute(&mut **tx)
            .await
            .map_err(|e| named_conflict(e.into(), "orders_ref_unique"))?;
        Ok(())
    }

    /// Writes one new order, its defaults and its instructions in the caller's
    /// transaction and resolves the instructions' statuses, with their announcements;
    /// returns the instructions as stored. A taken `orderRef` (or id) is the conflict
    /// `orders_ref_unique`, a repeated instruction ref `instructions_ref_unique`.
    pub(super) async fn insert_order(
        tx: &mut sqlx::Transaction<'_, Db>,
        new: &NewOrder<'_>,
    ) -> StoreResult<Vec<InstructionRecord>> {
        let order = new.order;
        insert_order_row(tx, order).await?;
        for d in new.defaults {
            upsert_default(tx, d).await?;
        }
        let instructions: Vec<&InstructionRecord> = new.instructions.iter().collect();
        insert_instructions(tx, &instructions).await?;
        let changes = refresh(tx, &order.tenant_id, &order.order_id, None, order.updated_at).await?;
        let stored = as_stored(&instructions, &changes);
        let events = announced_as_stored(new.announced, &stored, &changes, new.announce)?;
        super::execution_sql::insert_events(tx, &events.iter().map(|e| e.as_ref()).collect::<Vec<_>>()).await?;
        Ok(stored)
    }
}

#[async_trait]
impl crate::OrderStore for ThisStore {
    async fn create_order_announced(
        &self,
        order: &crate::OrderRecord,
        defaults: &[crate::CustomerDefaultRecord],
        instructions: &[crate::InstructionRecord],
        announce: Option<crate::Announcement>,
    ) -> StoreResult<Vec<crate::InstructionRecord>> {
        let announce = announce.as_ref();
        let announced = orders_sql::announcements(instructions, announce)?;
        self.write_order(orders_sql::NewOrder { order, defaults, instructions, announce, announced: &announced }).await
    }

    async fn order(&self, tenant_id: &str, order_ref: &str) -> StoreResult<Option<crate::OrderRecord>> {
        sqlx::query(&format!(
            "SELECT {} FROM orders WHERE tenant_id = $1 AND order_ref = $2",
            orders_sql::ORDER_COLUMNS
        ))
        .bind(tenant_id)
        .bind(order_ref)
        .fetch_optional(self.reader())
        .await?
        .as_ref()
        .map(orders_sql::order_from_row)
        .transpose()
    }

    async fn customer_defaults(
        &self,
        tenant_id: &str,
        order_id: &str,
    ) -> StoreResult<Vec<crate::CustomerDefaultRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM customer_defaults d WHERE d.order_id = $1 \
             AND EXISTS (SELECT 1 FROM orders o WHERE o.order_id = d.order_id AND o.tenant_id = $2) \
             ORDER BY d.customer_ref",
            orders_sql::DEFAULT_COLUMNS.split(", ").map(|c| format!("d.{c}")).collect::<Vec<_>>().join(", ")
        ))
        .bind(order_id)
        .bind(tenant_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(orders_sql::default_from_row).collect()
    }

    async fn order_instructions(&self, tenant_id: &str, order_id: &str) -> StoreResult<Vec<crate::InstructionRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM instructions WHERE order_id = $1 AND tenant_id = $2 ORDER BY created_at, instruction_id",
            orders_sql::INSTRUCTION_COLUMNS
        ))
        .bind(order_id)
        .bind(tenant_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(orders_sql::instruction_from_row).collect()
    }

    async fn set_order_metadata(&self, tenant_id: &str, order_id: &str, metadata: &str, now: i64) -> StoreResult<bool> {
        let n = sqlx::query("UPDATE orders SET metadata = $1, updated_at = $2 WHERE order_id = $3 AND tenant_id = $4")
            .bind(metadata)
            .bind(now)
            .bind(order_id)
            .bind(tenant_id)
            .execute(self.writer())
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    async fn put_customer_defaults(
        &self,
        tenant_id: &str,
        order_id: &str,
        defaults: &[crate::CustomerDefaultRecord],
        now: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        if !orders_sql::touch_order(&mut tx, tenant_id, order_id, now).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        for d in defaults {
            orders_sql::upsert_default(&mut tx, d).await?;
            orders_sql::refresh(&mut tx, tenant_id, order_id, Some(&d.customer_ref), now).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn update_customer_default(
        &self,
        tenant_id: &str,
        order_id: &str,
        customer_ref: &str,
        change: &crate::DefaultChange,
        now: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        if !orders_sql::touch_order(&mut tx, tenant_id, order_id, now).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        let (set, value, source) = match change {
            crate::DefaultChange::Instrument(id, source) => {
                ("financial_instrument_id = $1, instrument_source = $2", id.clone(), Some(*source))
            }
            crate::DefaultChange::Scheme(id, source) => {
                ("scheme_id = $1, scheme_source = $2", id.clone(), Some(*source))
            }
            // `$2` is bound (NULL) in every form, so the numbering stays the same.
            crate::DefaultChange::Metadata(m) => {
                ("metadata = $1, instrument_source = COALESCE($2, instrument_source)", Some(m.clone()), None)
            }
        };
        let n = sqlx::query(&format!(
            "UPDATE customer_defaults SET {set}, updated_at = $3 WHERE order_id = $4 AND customer_ref = $5"
        ))
        .bind(value)
        .bind(source.map(baton_domain::Source::as_str))
        .bind(now)
        .bind(order_id)
        .bind(customer_ref)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        orders_sql::refresh(&mut tx, tenant_id, order_id, Some(customer_ref), now).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn delete_customer_default(
        &self,
        tenant_id: &str,
        order_id: &str,
        customer_ref: &str,
        now: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let exists = sqlx::query(
            "SELECT 1 AS one FROM customer_defaults d JOIN orders o ON o.order_id = d.order_id \
             WHERE d.order_id = $1 AND d.customer_ref = $2 AND o.tenant_id = $3",
        )
        .bind(order_id)
        .bind(customer_ref)
        .bind(tenant_id)
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
        if !exists {
            tx.rollback().await?;
            return Ok(false);
        }
        orders_sql::touch_order(&mut tx, tenant_id, order_id, now).await?;
        let in_use = sqlx::query(&format!(
            "SELECT 1 AS one FROM instructions WHERE order_id = $1 AND customer_ref = $2 AND status <> '{}'",
            baton_domain::InstructionStatus::Void.as_str()
        ))
        .bind(order_id)
        .bind(customer_ref)
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
        if in_use {
            tx.rollback().await?;
            return Err(StoreError::InUse("customer default".into()));
        }
        sqlx::query("DELETE FROM customer_defaults WHERE order_id = $1 AND customer_ref = $2")
            .bind(order_id)
            .bind(customer_ref)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn insert_instruction_announced(
        &self,
        r: &crate::InstructionRecord,
        announce: Option<crate::Announcement>,
    ) -> StoreResult<crate::InstructionRecord> {
        let announced = orders_sql::announcements(std::slice::from_ref(r), announce.as_ref())?;
        let mut tx = self.begin_write().await?;
        if !orders_sql::touch_order(&mut tx, &r.tenant_id, &r.order_id, r.updated_at).await? {
            tx.rollback().await?;
            return Err(StoreError::MissingReference("order".into()));
        }
        orders_sql::insert_instruction(&mut tx, r).await?;
        let changes =
            orders_sql::refresh(&mut tx, &r.tenant_id, &r.order_id, Some(&r.customer_ref), r.updated_at).await?;
        let stored = orders_sql::as_stored(&[r], &changes);
        let events = orders_sql::announced_as_stored(&announced, &stored, &changes, announce.as_ref())?;
        execution_sql::insert_events(&mut tx, &events.iter().map(|e| e.as_ref()).collect::<Vec<_>>()).await?;
        tx.commit().await?;
        Ok(stored.into_iter().next().unwrap_or_else(|| r.clone()))
    }

    async fn instruction(
        &self,
        tenant_id: &str,
        order_id: &str,
        instruction_ref: &str,
    ) -> StoreResult<Option<crate::InstructionRecord>> {
        sqlx::query(&format!(
            "SELECT {} FROM instructions WHERE tenant_id = $1 AND order_id = $2 AND instruction_ref = $3",
            orders_sql::INSTRUCTION_COLUMNS
        ))
        .bind(tenant_id)
        .bind(order_id)
        .bind(instruction_ref)
        .fetch_optional(self.reader())
        .await?
        .as_ref()
        .map(orders_sql::instruction_from_row)
        .transpose()
    }

    async fn update_instruction(
        &self,
        r: &crate::InstructionRecord,
        from: &[baton_domain::InstructionStatus],
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        if !orders_sql::touch_order(&mut tx, &r.tenant_id, &r.order_id, r.updated_at).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        let n = sqlx::query(&format!(
            "UPDATE instructions SET direction = $1, financial_instrument_id = $2, instrument_source = $3, \
             scheme_id = $4, scheme_source = $5, amount_minor = $6, currency = $7, country = $8, \
             settled_by_date = $9, metadata = $10, updated_at = $11 \
             WHERE instruction_id = $12 AND tenant_id = $13 AND status IN ({})",
            orders_sql::status_list(from)
        ))
        .bind(r.direction.as_str())
        .bind(&r.financial_instrument_id)
        .bind(r.instrument_source.as_str())
        .bind(&r.scheme_id)
        .bind(r.scheme_source.as_str())
        .bind(r.amount_minor)
        .bind(&r.currency)
        .bind(&r.country)
        .bind(&r.settled_by_date)
        .bind(&r.metadata)
        .bind(r.updated_at)
        .bind(&r.instruction_id)
        .bind(&r.tenant_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        orders_sql::refresh(&mut tx, &r.tenant_id, &r.order_id, Some(&r.customer_ref), r.updated_at).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn change_instruction_status(
        &self,
        tenant_id: &str,
        order_id: &str,
        instruction_id: &str,
        from: &[baton_domain::InstructionStatus],
        to: baton_domain::InstructionStatus,
        now: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        if !orders_sql::change_status(&mut tx, tenant_id, order_id, instruction_id, from, to, now).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn list_orders(
        &self,
        tenant_id: &str,
        filter: &crate::OrderFilter,
        after: Option<&crate::Keyset>,
        limit: u32,
    ) -> StoreResult<Vec<crate::OrderRecord>> {
        use orders_sql::{Arg, Conditions};
        let mut c = Conditions::default();
        let tenant = c.arg(Arg::Text(tenant_id.to_string()));
        c.push(format!("o.tenant_id = {tenant}"));
        if let Some(customer) = &filter.customer_ref {
            let p = c.arg(Arg::Text(customer.clone()));
            c.push(format!(
                "(EXISTS (SELECT 1 FROM instructions i WHERE i.order_id = o.order_id AND i.customer_ref = {p}) \
                 OR EXISTS (SELECT 1 FROM customer_defaults d WHERE d.order_id = o.order_id AND d.customer_ref = {p}))"
            ));
        }
        c.window("o", "order_id", (filter.created_from, filter.created_before), after, orders_sql::ListOrder::OldestFirst);
        let sql = format!(
            "SELECT {} FROM orders o WHERE {} ORDER BY o.created_at, o.order_id LIMIT {limit}",
            orders_sql::qualified(orders_sql::ORDER_COLUMNS, "o"),
            c.where_clause()
        );
        let rows = c.bind(sqlx::query(&sql)).fetch_all(self.reader()).await?;
        rows.iter().map(orders_sql::order_from_row).collect()
    }

    async fn list_instructions(
        &self,
        tenant_id: &str,
        filter: &crate::InstructionFilter,
        after: Option<&crate::Keyset>,
        limit: u32,
    ) -> StoreResult<Vec<crate::ListedInstruction>> {
        use orders_sql::{Arg, Conditions};
        let mut c = Conditions::default();
        let tenant = c.arg(Arg::Text(tenant_id.to_string()));
        c.push(format!("i.tenant_id = {tenant} AND o.tenant_id = {tenant}"));
        if !filter.statuses.is_empty() {
            c.push(format!("i.status IN ({})", orders_sql::status_list(&filter.statuses)));
        }
        let mut equal = |column: &str, value: Option<String>| {
            if let Some(v) = value {
                let p = c.arg(Arg::Text(v));
                c.push(format!("{column} = {p}"));
            }
        };
        equal("i.customer_ref", filter.customer_ref.clone());
        equal("i.direction", filter.direction.map(|d| d.as_str().to_string()));
        equal("i.currency", filter.currency.clone());
        // `YYYY-MM-DD` text compares as the dates do.
        if let Some(from) = &filter.settled_by_from {
            let p = c.arg(Arg::Text(from.clone()));
            c.push(format!("i.settled_by_date >= {p}"));
        }
        if let Some(to) = &filter.settled_by_to {
            let p = c.arg(Arg::Text(to.clone()));
            c.push(format!("i.settled_by_date <= {p}"));
        }
        c.window("i", "instruction_id", (filter.created_from, filter.created_before), after, orders_sql::ListOrder::OldestFirst);
        let sql = format!(
            "SELECT {}, o.order_ref FROM instructions i JOIN orders o ON o.order_id = i.order_id \
             WHERE {} ORDER BY i.created_at, i.instruction_id LIMIT {limit}",
            orders_sql::qualified(orders_sql::INSTRUCTION_COLUMNS, "i"),
            c.where_clause()
        );
        let rows = c.bind(sqlx::query(&sql)).fetch_all(self.reader()).await?;
        rows.iter()
            .map(|row| {
                Ok(crate::ListedInstruction {
                    order_ref: sqlx::Row::try_get(row, "order_ref")?,
                    instruction: orders_sql::instruction_from_row(row)?,
                })
            })
            .collect()
    }

    async fn customer_defaults_of_orders(
        &self,
        tenant_id: &str,
        order_ids: &[String],
    ) -> StoreResult<Vec<crate::CustomerDefaultRecord>> {
        use orders_sql::{Arg, Conditions};
        if order_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut c = Conditions::default();
        let tenant = c.arg(Arg::Text(tenant_id.to_string()));
        c.push(format!("o.tenant_id = {tenant}"));
        let ids: Vec<String> = order_ids.iter().map(|id| c.arg(Arg::Text(id.clone()))).collect();
        c.push(format!("d.order_id IN ({})", ids.join(", ")));
        let sql = format!(
            "SELECT {} FROM customer_defaults d JOIN orders o ON o.order_id = d.order_id \
             WHERE {} ORDER BY d.order_id, d.customer_ref",
            orders_sql::qualified(orders_sql::DEFAULT_COLUMNS, "d"),
            c.where_clause()
        );
        let rows = c.bind(sqlx::query(&sql)).fetch_all(self.reader()).await?;
        rows.iter().map(orders_sql::default_from_row).collect()
    }
}
