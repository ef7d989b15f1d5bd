//! The PostgreSQL tables: the same meaning as SQLite's (patients stored whole
//! as JSON text keyed by protocol, the events, alerts, outboxes and counters,
//! the narrow visits table reports read), plus the lease row. A group commit
//! writes each table's rows with one statement over arrays (`UNNEST`), so a
//! batch of a thousand admissions is a handful of round trips, not thousands.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use tokio_postgres::types::ToSql;

use super::lease::LeaseState;
use super::Conn;
use crate::domain::patient::{document_key, search_key, Patient};
use crate::domain::Change;
use crate::journal::{outbox_table, JournalError, ReportFacts, ORPHAN_NOTIFICATIONS};

/// Bumped when the tables change; a newer journal is refused.
pub(crate) const SCHEMA_VERSION: i64 = 1;
/// Serialises table creation between instances starting together.
const MIGRATION_LOCK: i64 = 0x7472_6961_6765_6d00;

pub(crate) const TABLES: &str = "
CREATE TABLE IF NOT EXISTS patients (
    protocol     BIGINT PRIMARY KEY,
    unit         TEXT NOT NULL,
    status       TEXT NOT NULL,
    closed_at    BIGINT,
    body         TEXT NOT NULL,
    name_key     TEXT,
    document_key TEXT,
    ticket       TEXT,
    arrived_at   BIGINT,
    admitted_at  BIGINT
);
CREATE INDEX IF NOT EXISTS patients_by_unit_status ON patients(unit, status);
CREATE TABLE IF NOT EXISTS events (
    id       BIGINT PRIMARY KEY,
    protocol BIGINT,
    unit     TEXT NOT NULL,
    at       BIGINT NOT NULL,
    event    TEXT NOT NULL,
    actor    TEXT NOT NULL,
    details  TEXT NOT NULL,
    display  TEXT
);
CREATE INDEX IF NOT EXISTS events_by_protocol ON events(protocol, id);
CREATE INDEX IF NOT EXISTS events_by_unit ON events(unit, id);
CREATE INDEX IF NOT EXISTS events_calls ON events(unit, id) WHERE event IN ('called', 'recalled');
CREATE TABLE IF NOT EXISTS counters (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alerts (
    id          BIGINT PRIMARY KEY,
    protocol    BIGINT NOT NULL,
    unit        TEXT NOT NULL,
    state       TEXT NOT NULL,
    resolved_at BIGINT,
    body        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_by_protocol ON alerts(protocol);
CREATE TABLE IF NOT EXISTS outbox (
    id         BIGSERIAL PRIMARY KEY,
    receiver   BIGINT NOT NULL,
    alert_id   BIGINT NOT NULL,
    event      TEXT NOT NULL,
    alert      TEXT NOT NULL,
    state      TEXT NOT NULL DEFAULT 'pending',
    attempts   BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(receiver, state, id);
CREATE TABLE IF NOT EXISTS messages (
    id         BIGSERIAL PRIMARY KEY,
    protocol   BIGINT NOT NULL,
    channel    TEXT NOT NULL,
    event      TEXT NOT NULL,
    body       TEXT NOT NULL,
    state      TEXT NOT NULL DEFAULT 'pending',
    attempts   BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS messages_pending ON messages(channel, state, id);
CREATE INDEX IF NOT EXISTS messages_by_protocol ON messages(protocol, id);
CREATE TABLE IF NOT EXISTS idempotency (
    key        TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    protocol   BIGINT NOT NULL,
    response   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS visits (
    protocol         BIGINT PRIMARY KEY,
    unit             TEXT NOT NULL,
    arrived_at       BIGINT NOT NULL,
    first_triaged_at BIGINT,
    colour           TEXT,
    classified_max   BIGINT,
    call_at          BIGINT,
    call_colour      TEXT,
    call_clock_start BIGINT,
    call_max         BIGINT,
    status           TEXT NOT NULL,
    closed_at        BIGINT,
    outcome          TEXT,
    leave_reason     TEXT
);
CREATE INDEX IF NOT EXISTS visits_by_arrival ON visits(arrived_at, protocol);
-- One row: who leads, under which term, until when (the server's clock).
CREATE TABLE IF NOT EXISTS lease (
    id         INT PRIMARY KEY CHECK (id = 1),
    term       BIGINT NOT NULL,
    holder     TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
INSERT INTO lease(id, term, holder, expires_at) VALUES (1, 0, '', '-infinity')
    ON CONFLICT (id) DO NOTHING;
";

/// The leader's `Config::shared_settings`, written with its holder's name
/// when it takes the lease (an instance that predates the column leaves it
/// stale, which the holder's name shows). Older instances ignore it. Added
/// only where missing: even a no-op ALTER locks the lease row's table, which
/// the leader's renewals and commits wait on.
const LEASE_SETTINGS: &str = "ALTER TABLE lease ADD COLUMN settings TEXT NOT NULL DEFAULT ''";

/// Creates the tables in an empty database (once, whoever starts first) and
/// the installation's own values (delivery id prefix, check code secret).
pub(crate) fn migrate(client: &mut Conn) -> Result<(), JournalError> {
    client.transaction("BEGIN", create)
}

fn create(tx: &mut Conn) -> Result<(), JournalError> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    // Only what is missing: `CREATE INDEX IF NOT EXISTS` locks its table
    // (SHARE) even when the index exists, and an instance starting beside a
    // leader whose commit held the same tables deadlocked with it, and
    // stopped with "deadlock detected".
    let names = relations(TABLES);
    let present: i64 = tx
        .query_one(
            "SELECT count(*) FROM pg_class
             WHERE relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
               AND relname = ANY($1)",
            &[&names],
        )?
        .get(0);
    if present < names.len() as i64 {
        tx.batch_execute(TABLES)?;
    }
    let has_settings = tx
        .query_opt(
            "SELECT 1 FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = 'lease'
               AND column_name = 'settings'",
            &[],
        )?
        .is_some();
    if !has_settings {
        tx.batch_execute(LEASE_SETTINGS)?;
    }
    let version: Option<String> = tx
        .query_opt("SELECT value FROM counters WHERE name = 'schema'", &[])?
        .map(|r| r.get(0));
    if let Some(v) = version.and_then(|v| v.parse::<i64>().ok()) {
        if v > SCHEMA_VERSION {
            return Err(JournalError::Corrupt(format!(
                "the journal was written by a newer Triagem (schema {v}, this one knows {SCHEMA_VERSION})"
            )));
        }
    }
    let instance: [u8; 8] = rand::random();
    let secret: [u8; 32] = rand::random();
    tx.execute(
        "INSERT INTO counters(name, value) VALUES ('schema', $1), ('instance', $2),
             ('check_secret', $3)
         ON CONFLICT (name) DO NOTHING",
        &[
            &SCHEMA_VERSION.to_string(),
            &hex::encode(instance),
            &hex::encode(secret),
        ],
    )?;
    Ok(())
}

/// The tables and indexes `sql` creates (`… IF NOT EXISTS name`).
fn relations(sql: &str) -> Vec<String> {
    sql.split("IF NOT EXISTS ")
        .skip(1)
        .filter_map(|rest| {
            let name = rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
            name.map(str::to_owned).next().filter(|n| !n.is_empty())
        })
        .collect()
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, JournalError> {
    serde_json::to_string(v).map_err(|e| JournalError::Corrupt(e.to_string()))
}

fn millis(t: Option<chrono::DateTime<chrono::Utc>>) -> Option<i64> {
    t.map(|t| t.timestamp_millis())
}

/// Rows of one table, a column per vector; `keys` makes the last write of a
/// key win (one `ON CONFLICT DO UPDATE` may not touch a row twice).
#[derive(Default)]
struct Columns<K> {
    keys: HashMap<K, usize>,
    rows: usize,
}

impl<K: std::hash::Hash + Eq> Columns<K> {
    /// The row index to write: an existing one for a key seen before.
    fn slot(&mut self, key: K) -> (usize, bool) {
        let next = self.rows;
        match self.keys.entry(key) {
            std::collections::hash_map::Entry::Occupied(e) => (*e.get(), false),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(next);
                self.rows += 1;
                (next, true)
            }
        }
    }
}

/// Pushes a value, or overwrites the one at `at`.
fn put<T>(col: &mut Vec<T>, (at, new): (usize, bool), v: T) {
    if new {
        col.push(v);
    } else {
        col[at] = v;
    }
}

#[derive(Default)]
struct Patients {
    at: Columns<i64>,
    protocol: Vec<i64>,
    unit: Vec<String>,
    status: Vec<String>,
    closed_at: Vec<Option<i64>>,
    body: Vec<String>,
    name_key: Vec<String>,
    document_key: Vec<Option<String>>,
    ticket: Vec<String>,
    arrived_at: Vec<i64>,
    admitted_at: Vec<i64>,
    // visits
    v_unit: Vec<String>,
    v_first_triaged_at: Vec<Option<i64>>,
    v_colour: Vec<Option<String>>,
    v_classified_max: Vec<Option<i64>>,
    v_call_at: Vec<Option<i64>>,
    v_call_colour: Vec<Option<String>>,
    v_call_clock_start: Vec<Option<i64>>,
    v_call_max: Vec<Option<i64>>,
    v_outcome: Vec<Option<String>>,
    v_leave_reason: Vec<Option<String>>,
}

impl Patients {
    fn push(&mut self, p: &Patient) -> Result<(), JournalError> {
        let protocol = p.protocol.as_u64() as i64;
        let s = self.at.slot(protocol);
        let f = ReportFacts::of(p);
        let call = f.first_call.as_ref();
        put(&mut self.protocol, s, protocol);
        put(&mut self.unit, s, p.unit.to_string());
        put(&mut self.status, s, p.status.as_str().to_owned());
        put(&mut self.closed_at, s, millis(p.closed_at));
        put(&mut self.body, s, json(p)?);
        put(&mut self.name_key, s, search_key(p.name.as_str()));
        put(
            &mut self.document_key,
            s,
            p.document.as_deref().map(document_key),
        );
        put(&mut self.ticket, s, p.ticket.to_string());
        put(&mut self.arrived_at, s, p.arrived_at.timestamp_millis());
        put(&mut self.admitted_at, s, p.admitted_at.timestamp_millis());
        put(&mut self.v_unit, s, f.unit.to_string());
        put(&mut self.v_first_triaged_at, s, millis(f.first_triaged_at));
        put(
            &mut self.v_colour,
            s,
            f.colour.as_deref().map(str::to_owned),
        );
        put(&mut self.v_classified_max, s, f.classified_max_wait_seconds);
        put(&mut self.v_call_at, s, millis(call.map(|c| c.at)));
        put(
            &mut self.v_call_colour,
            s,
            call.and_then(|c| c.colour.as_deref().map(str::to_owned)),
        );
        put(
            &mut self.v_call_clock_start,
            s,
            millis(call.map(|c| c.clock_start)),
        );
        put(&mut self.v_call_max, s, call.map(|c| c.max_wait_seconds));
        put(
            &mut self.v_outcome,
            s,
            f.outcome.map(|o| o.as_str().to_owned()),
        );
        put(
            &mut self.v_leave_reason,
            s,
            f.leave_reason.map(|r| r.as_str().to_owned()),
        );
        Ok(())
    }

    fn queue<'a>(&'a self, steps: &mut Vec<Step<'a>>) {
        if self.protocol.is_empty() {
            return;
        }
        step(
            steps,
            "INSERT INTO patients(protocol, unit, status, closed_at, body, name_key,
                 document_key, ticket, arrived_at, admitted_at)
             SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::bigint[],
                 $5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[], $10::bigint[])
             ON CONFLICT (protocol) DO UPDATE SET unit = EXCLUDED.unit,
                 status = EXCLUDED.status, closed_at = EXCLUDED.closed_at,
                 body = EXCLUDED.body, name_key = EXCLUDED.name_key,
                 document_key = EXCLUDED.document_key, ticket = EXCLUDED.ticket,
                 arrived_at = EXCLUDED.arrived_at, admitted_at = EXCLUDED.admitted_at",
            &[
                &self.protocol,
                &self.unit,
                &self.status,
                &self.closed_at,
                &self.body,
                &self.name_key,
                &self.document_key,
                &self.ticket,
                &self.arrived_at,
                &self.admitted_at,
            ],
        );
        step(
            steps,
            "INSERT INTO visits(protocol, unit, arrived_at, first_triaged_at, colour,
                 classified_max, call_at, call_colour, call_clock_start, call_max, status,
                 closed_at, outcome, leave_reason)
             SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::bigint[],
                 $5::text[], $6::bigint[], $7::bigint[], $8::text[], $9::bigint[],
                 $10::bigint[], $11::text[], $12::bigint[], $13::text[], $14::text[])
             ON CONFLICT (protocol) DO UPDATE SET unit = EXCLUDED.unit,
                 arrived_at = EXCLUDED.arrived_at,
                 first_triaged_at = EXCLUDED.first_triaged_at, colour = EXCLUDED.colour,
                 classified_max = EXCLUDED.classified_max, call_at = EXCLUDED.call_at,
                 call_colour = EXCLUDED.call_colour,
                 call_clock_start = EXCLUDED.call_clock_start, call_max = EXCLUDED.call_max,
                 status = EXCLUDED.status, closed_at = EXCLUDED.closed_at,
                 outcome = EXCLUDED.outcome, leave_reason = EXCLUDED.leave_reason",
            &[
                &self.protocol,
                &self.v_unit,
                &self.arrived_at,
                &self.v_first_triaged_at,
                &self.v_colour,
                &self.v_classified_max,
                &self.v_call_at,
                &self.v_call_colour,
                &self.v_call_clock_start,
                &self.v_call_max,
                &self.status,
                &self.closed_at,
                &self.v_outcome,
                &self.v_leave_reason,
            ],
        );
    }
}

#[derive(Default)]
struct EventRows {
    id: Vec<i64>,
    protocol: Vec<i64>,
    unit: Vec<String>,
    at: Vec<i64>,
    event: Vec<String>,
    actor: Vec<String>,
}

#[derive(Default)]
struct AlertRows {
    id: Vec<i64>,
    protocol: Vec<i64>,
    unit: Vec<String>,
    state: Vec<String>,
    resolved_at: Vec<Option<i64>>,
    body: Vec<String>,
}

/// The rows a stretch of changes writes, table by table.
#[derive(Default)]
pub(crate) struct Rows {
    patients: Patients,
    events: EventRows,
    event_details: (Vec<String>, Vec<Option<String>>),
    alerts_at: Columns<i64>,
    alerts: AlertRows,
    outbox: (Vec<i64>, Vec<i64>, Vec<String>, Vec<String>),
    messages: (Vec<i64>, Vec<String>, Vec<String>, Vec<String>),
    idempotency_at: Columns<String>,
    idempotency: (Vec<String>, Vec<i64>, Vec<i64>, Vec<String>),
    /// Counters: only the last value of each matters.
    counters_at: Columns<String>,
    counters: (Vec<String>, Vec<String>),
    /// The largest event and alert ids: ids never repeat, also after a purge.
    last_event: i64,
    last_alert: i64,
    /// When the outbox's and messages' rows were created.
    now: i64,
}

impl Rows {
    fn push(&mut self, change: &Change, receivers: usize) -> Result<(), JournalError> {
        match change {
            Change::Patient(p) => self.patients.push(p)?,
            Change::Event(e) => {
                let EventRows {
                    id,
                    protocol,
                    unit,
                    at,
                    event,
                    actor,
                } = &mut self.events;
                id.push(e.id as i64);
                self.last_event = self.last_event.max(e.id as i64);
                protocol.push(e.protocol.as_u64() as i64);
                unit.push(e.unit.to_string());
                at.push(e.at.timestamp_millis());
                event.push(e.event.to_string());
                actor.push(e.actor.to_string());
                self.event_details.0.push(json(&e.details)?);
                self.event_details
                    .1
                    .push(e.display_json().map(str::to_owned));
            }
            Change::Alert(a) => {
                let s = self.alerts_at.slot(a.id as i64);
                let AlertRows {
                    id,
                    protocol,
                    unit,
                    state,
                    resolved_at,
                    body,
                } = &mut self.alerts;
                put(id, s, a.id as i64);
                self.last_alert = self.last_alert.max(a.id as i64);
                put(protocol, s, a.protocol.as_u64() as i64);
                put(unit, s, a.unit.to_string());
                put(state, s, a.state.as_str().to_owned());
                put(resolved_at, s, millis(a.resolved_at));
                put(body, s, json(a)?);
            }
            Change::Notify(n) => {
                let alert = json(&n.alert)?;
                let (receiver, alert_id, event, body) = &mut self.outbox;
                for r in 0..receivers {
                    receiver.push(r as i64);
                    alert_id.push(n.alert.id as i64);
                    event.push(n.event.as_str().to_owned());
                    body.push(alert.clone());
                }
            }
            Change::Message(m) => {
                let (protocol, channel, event, body) = &mut self.messages;
                protocol.push(m.protocol.as_u64() as i64);
                channel.push(m.channel.as_str().to_owned());
                event.push(m.event.as_str().to_owned());
                body.push(json(m)?);
            }
            Change::Idempotency(rec) => {
                let s = self.idempotency_at.slot(rec.key.clone());
                let (key, created_at, protocol, response) = &mut self.idempotency;
                put(key, s, rec.key.clone());
                put(created_at, s, rec.created_at.timestamp_millis());
                put(protocol, s, rec.protocol.as_u64() as i64);
                put(response, s, rec.response.clone());
            }
            Change::Sequence(seq) => self.counter("sequence".into(), json(seq)?),
            Change::Tickets { unit, counter } => {
                self.counter(format!("tickets:{unit}"), json(counter)?)
            }
            Change::Purge { .. } | Change::Delivery { .. } => {
                unreachable!("written on their own, in order")
            }
        }
        Ok(())
    }

    fn counter(&mut self, name: String, value: String) {
        let s = self.counters_at.slot(name.clone());
        put(&mut self.counters.0, s, name);
        put(&mut self.counters.1, s, value);
    }

    fn queue<'a>(&'a self, steps: &mut Vec<Step<'a>>) {
        self.patients.queue(steps);
        if !self.events.id.is_empty() {
            let EventRows {
                id,
                protocol,
                unit,
                at,
                event,
                actor,
            } = &self.events;
            step(
                steps,
                "INSERT INTO events(id, protocol, unit, at, event, actor, details, display)
                 SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::bigint[],
                     $5::text[], $6::text[], $7::text[], $8::text[])",
                &[
                    id,
                    protocol,
                    unit,
                    at,
                    event,
                    actor,
                    &self.event_details.0,
                    &self.event_details.1,
                ],
            );
            // Ids are the department's, and must never repeat after a purge.
            step(steps, RAISE_COUNTER, &[&"last_event_id", &self.last_event]);
        }
        if !self.alerts.id.is_empty() {
            let AlertRows {
                id,
                protocol,
                unit,
                state,
                resolved_at,
                body,
            } = &self.alerts;
            step(
                steps,
                "INSERT INTO alerts(id, protocol, unit, state, resolved_at, body)
                 SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[],
                     $5::bigint[], $6::text[])
                 ON CONFLICT (id) DO UPDATE SET protocol = EXCLUDED.protocol,
                     unit = EXCLUDED.unit, state = EXCLUDED.state,
                     resolved_at = EXCLUDED.resolved_at, body = EXCLUDED.body",
                &[id, protocol, unit, state, resolved_at, body],
            );
            step(steps, RAISE_COUNTER, &[&"last_alert_id", &self.last_alert]);
        }
        if !self.outbox.0.is_empty() {
            let (receiver, alert_id, event, alert) = &self.outbox;
            // WITH ORDINALITY keeps the ids in the order the notifications came.
            step(
                steps,
                "INSERT INTO outbox(receiver, alert_id, event, alert, created_at)
                 SELECT r, a, e, b, $5 FROM UNNEST($1::bigint[], $2::bigint[], $3::text[],
                     $4::text[]) WITH ORDINALITY AS t(r, a, e, b, n) ORDER BY n",
                &[receiver, alert_id, event, alert, &self.now],
            );
        }
        if !self.messages.0.is_empty() {
            let (protocol, channel, event, body) = &self.messages;
            step(
                steps,
                "INSERT INTO messages(protocol, channel, event, body, created_at)
                 SELECT p, c, e, b, $5 FROM UNNEST($1::bigint[], $2::text[], $3::text[],
                     $4::text[]) WITH ORDINALITY AS t(p, c, e, b, n) ORDER BY n",
                &[protocol, channel, event, body, &self.now],
            );
        }
        if !self.idempotency.0.is_empty() {
            let (key, created_at, protocol, response) = &self.idempotency;
            step(
                steps,
                "INSERT INTO idempotency(key, created_at, protocol, response)
                 SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::text[])
                 ON CONFLICT (key) DO UPDATE SET created_at = EXCLUDED.created_at,
                     protocol = EXCLUDED.protocol, response = EXCLUDED.response",
                &[key, created_at, protocol, response],
            );
        }
        if !self.counters.0.is_empty() {
            step(
                steps,
                "INSERT INTO counters(name, value)
                 SELECT * FROM UNNEST($1::text[], $2::text[])
                 ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                &[&self.counters.0, &self.counters.1],
            );
        }
    }
}

const RAISE_COUNTER: &str = "INSERT INTO counters(name, value) VALUES ($1, $2::bigint::text)
     ON CONFLICT (name) DO UPDATE
         SET value = GREATEST(counters.value::bigint, EXCLUDED.value::bigint)::text";

/// The journal's statements, prepared once per connection: a group commit
/// then costs one round trip per statement instead of two (parse, then
/// execute), and the server does not parse and plan them again each time.
#[derive(Default)]
pub(crate) struct Statements {
    prepared: std::collections::HashMap<String, tokio_postgres::Statement>,
    /// Told of every answer, for the lease keeper's watch on the writer: a
    /// commit of many statements (a purge) makes progress, a stuck one not.
    progress: Option<Arc<LeaseState>>,
}

impl Statements {
    pub(crate) fn watched_by(state: Arc<LeaseState>) -> Self {
        Self {
            progress: Some(state),
            ..Self::default()
        }
    }

    pub(crate) fn answered(&self) {
        if let Some(state) = &self.progress {
            state.progressed();
        }
    }

    /// Every step's statement, preparing those this connection has not seen
    /// (all in one round trip).
    pub(crate) fn prepare_all(
        &mut self,
        tx: &mut Conn,
        steps: &[Step<'_>],
    ) -> Result<Vec<tokio_postgres::Statement>, JournalError> {
        let mut missing: Vec<&str> = Vec::new();
        for sql in steps.iter().map(|s| &*s.sql) {
            if !self.prepared.contains_key(sql) && !missing.contains(&sql) {
                missing.push(sql);
            }
        }
        if !missing.is_empty() {
            let made = tx.prepare_many(&missing);
            self.answered();
            for (sql, statement) in missing.into_iter().zip(made?) {
                self.prepared.insert(sql.to_owned(), statement);
            }
        }
        Ok(steps
            .iter()
            .map(|s| self.prepared[&*s.sql].clone())
            .collect())
    }

    /// Forgets them (a new connection has none).
    pub(crate) fn clear(&mut self) {
        self.prepared.clear();
    }
}

/// One statement of a commit: its SQL and the values it borrows.
pub(crate) struct Step<'a> {
    pub(crate) sql: Cow<'static, str>,
    pub(crate) params: Vec<&'a (dyn ToSql + Sync)>,
}

fn step<'a>(
    steps: &mut Vec<Step<'a>>,
    sql: impl Into<Cow<'static, str>>,
    params: &[&'a (dyn ToSql + Sync)],
) {
    steps.push(Step {
        sql: sql.into(),
        params: params.to_vec(),
    });
}

/// A group commit's changes in order, as what they write: runs of ordinary
/// changes as rows for array statements, purges and delivery results on
/// their own between them.
pub(crate) enum Segment<'c> {
    Rows(Box<Rows>),
    Delivery {
        table: &'static str,
        id: i64,
        outcome: &'static str,
        attempts: i64,
        error: &'c Option<String>,
    },
    Purge {
        alerts: Vec<i64>,
        protocols: Vec<i64>,
        before: i64,
    },
}

pub(crate) fn segments<'c>(
    changes: &[&'c Change],
    receivers: usize,
) -> Result<Vec<Segment<'c>>, JournalError> {
    let now = chrono::Utc::now().timestamp_millis();
    let fresh = || {
        Box::new(Rows {
            now,
            ..Rows::default()
        })
    };
    let mut out = Vec::new();
    let mut rows = fresh();
    for change in changes {
        let own = match change {
            Change::Delivery {
                outbox,
                id,
                outcome,
                attempts,
                error,
            } => Segment::Delivery {
                table: outbox_table(outbox),
                id: *id as i64,
                outcome: outcome.as_str(),
                attempts: i64::from(*attempts),
                error,
            },
            Change::Purge {
                protocols,
                alerts,
                idempotency_before,
            } => Segment::Purge {
                alerts: alerts.iter().map(|a| *a as i64).collect(),
                protocols: protocols.iter().map(|p| p.as_u64() as i64).collect(),
                before: idempotency_before.timestamp_millis(),
            },
            _ => {
                rows.push(change, receivers)?;
                continue;
            }
        };
        out.push(Segment::Rows(std::mem::replace(&mut rows, fresh())));
        out.push(own);
    }
    out.push(Segment::Rows(rows));
    Ok(out)
}

/// The statements that write `segments`, in order.
pub(crate) fn queue<'a>(segments: &'a [Segment<'_>], steps: &mut Vec<Step<'a>>) {
    for segment in segments {
        match segment {
            Segment::Rows(rows) => rows.queue(steps),
            Segment::Delivery {
                table,
                id,
                outcome,
                attempts,
                error,
            } => step(
                steps,
                format!(
                    "UPDATE {table} SET state = $2, attempts = $3, last_error = $4 WHERE id = $1"
                ),
                &[id, outcome, attempts, *error],
            ),
            Segment::Purge {
                alerts,
                protocols,
                before,
            } => {
                step(steps, "DELETE FROM alerts WHERE id = ANY($1)", &[alerts]);
                // Sent notifications of alerts no longer kept, these and earlier
                // purges' (one still pending at its purge was sent after it).
                step(steps, ORPHAN_NOTIFICATIONS, &[]);
                // Messages hold the contact: they go with the patient, sent or not.
                for table in ["visits", "patients", "events", "messages"] {
                    step(
                        steps,
                        format!("DELETE FROM {table} WHERE protocol = ANY($1)"),
                        &[protocols],
                    );
                }
                step(
                    steps,
                    "DELETE FROM idempotency WHERE created_at < $1",
                    &[before],
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every table and index the schema creates is looked for before
    /// creating them: one left out would be created again at every start,
    /// with the lock that deadlocked a starting instance with the leader.
    #[test]
    fn every_relation_of_the_schema_is_known() {
        let names = relations(TABLES);
        assert_eq!(names.len(), TABLES.matches("IF NOT EXISTS").count());
        for name in ["patients", "events_calls", "visits_by_arrival", "lease"] {
            assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
        }
        assert!(names
            .iter()
            .all(|n| n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')));
    }
}
