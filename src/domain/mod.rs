//! The pure core: every unit's queues, every patient of the retention window,
//! the numbering, and the status machine of API.md section 1. No I/O and no
//! clock: each command takes `now` and returns the [`Change`]s the journal must
//! make durable before anyone is told the command happened.

pub mod escalation;
pub mod numbering;
pub mod patient;
pub mod protocol;
pub mod queue;
mod registry;
mod view;

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::config::{Config, UnitConfig};
use escalation::{Alert, AlertKind, AlertState, Escalation, Ladder, Notification, WaitContext};
use numbering::{format_ticket, ProtocolSequence, TicketCounter};
use patient::{
    LeaveReason, Outcome, Patient, PatientName, Protocol, QueueKind, Status, COMPLAINT_MAX_CHARS,
    DOCUMENT_MAX_CHARS, NOTE_MAX_CHARS,
};
use protocol::{Rank, TriageScale};
use queue::{ArrivalQueue, TreatmentQueue};
use registry::Patients;
pub use view::{Board, BoardCall, BoardQueue, PatientView};

/// How many calls the display board remembers per unit.
pub const BOARD_CALLS: usize = 10;
/// How far in the future an `arrived_at` may be (clock skew between desk and server).
pub const ARRIVAL_FUTURE_TOLERANCE: TimeDelta = TimeDelta::seconds(5);
/// How far back an `arrived_at` may be.
pub const ARRIVAL_MAX_AGE: TimeDelta = TimeDelta::hours(24);
/// How long an `Idempotency-Key` keeps answering with its first response.
pub const IDEMPOTENCY_WINDOW: TimeDelta = TimeDelta::hours(24);
pub const IDEMPOTENCY_KEY_MAX_LEN: usize = 200;
/// The actor of changes the service makes on its own.
pub const SYSTEM_ACTOR: &str = "system";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DomainError {
    #[error("unit `{0}` does not exist")]
    UnknownUnit(String),
    #[error("no patient has protocol number {0}")]
    UnknownPatient(Protocol),
    #[error("no alert has id {0}")]
    UnknownAlert(u64),
    #[error("colour `{0}` is not in the triage protocol")]
    UnknownColour(String),
    #[error("room `{room}` is not a room of unit `{unit}`")]
    UnknownRoom { unit: String, room: String },
    #[error("cannot {action} a patient who is {}", status.as_str())]
    InvalidTransition {
        action: &'static str,
        status: Status,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Exhausted(String),
}

/// A command's answer plus what must be journaled for it.
#[derive(Debug)]
pub struct Applied<T> {
    pub value: T,
    pub changes: Vec<Change>,
}

/// One durable fact. The journal stores patients whole, so recovery is a reload.
#[derive(Debug, Clone)]
pub enum Change {
    Patient(Box<Patient>),
    Event(AuditEvent),
    Sequence(ProtocolSequence),
    Tickets {
        unit: String,
        counter: TicketCounter,
    },
    Idempotency(IdempotencyRecord),
    Alert(Box<Alert>),
    /// An alert notification to send to every webhook receiver.
    Notify(Box<Notification>),
    /// The result of delivering one outbox entry.
    Delivery {
        id: u64,
        outcome: DeliveryOutcome,
        attempts: u32,
        error: Option<String>,
    },
    Purge {
        protocols: Vec<Protocol>,
        alerts: Vec<u64>,
        idempotency_before: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Still to be tried again (the attempt count moved on).
    Pending,
    Delivered,
    /// The receiver refused it (4xx); never retried.
    Failed,
}

impl DeliveryOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryOutcome::Pending => "pending",
            DeliveryOutcome::Delivered => "delivered",
            DeliveryOutcome::Failed => "failed",
        }
    }
}

/// An entry of a patient's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Global, increasing; also the `id:` of the event stream.
    pub id: u64,
    pub protocol: Protocol,
    pub unit: String,
    pub at: DateTime<Utc>,
    pub event: String,
    pub actor: String,
    pub details: serde_json::Value,
    /// What the unit's event stream shows of this event (no names, no protocol).
    pub display: Option<DisplayEvent>,
}

/// One server-sent event of a unit's stream (never a name or protocol number).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DisplayEvent {
    /// The SSE `event:` name.
    pub event: String,
    pub ticket: String,
    pub colour: Option<String>,
    pub status: Status,
    pub room: Option<String>,
    pub queue: Option<QueueKind>,
    pub at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub kind: Option<AlertKind>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub level: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub state: Option<AlertState>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub key: String,
    pub created_at: DateTime<Utc>,
    pub protocol: Protocol,
    pub response: serde_json::Value,
}

/// What the journal hands back at start-up.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub patients: Vec<Patient>,
    pub sequence: Option<ProtocolSequence>,
    pub tickets: Vec<(String, TicketCounter)>,
    pub idempotency: Vec<IdempotencyRecord>,
    /// Recent calls per unit, oldest first.
    pub calls: Vec<(String, BoardCall)>,
    /// Every alert not yet purged.
    pub alerts: Vec<Alert>,
    pub last_alert_id: u64,
    pub last_event_id: u64,
}

/// An admission as the desk sent it, after the parsing that needs no state.
#[derive(Debug, Clone)]
pub struct Admission {
    pub name: String,
    pub colour: Option<String>,
    pub complaint: Option<String>,
    pub arrived_at: Option<DateTime<Utc>>,
    pub birth_date: Option<NaiveDate>,
    pub document: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Unit {
    pub config: UnitConfig,
    triage: ArrivalQueue,
    treatment: TreatmentQueue,
    tickets: TicketCounter,
    /// Newest first, at most [`BOARD_CALLS`].
    calls: VecDeque<BoardCall>,
}

impl Unit {
    fn new(config: UnitConfig, colours: usize) -> Self {
        Self {
            config,
            triage: ArrivalQueue::default(),
            treatment: TreatmentQueue::new(colours),
            tickets: TicketCounter::new(),
            calls: VecDeque::with_capacity(BOARD_CALLS),
        }
    }

    fn announce(&mut self, call: BoardCall) {
        self.calls.push_front(call);
        self.calls.truncate(BOARD_CALLS);
    }

    pub fn waiting(&self, kind: QueueKind) -> usize {
        match kind {
            QueueKind::Triage => self.triage.len(),
            QueueKind::Treatment => self.treatment.len(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Department {
    scale: TriageScale,
    tz: Tz,
    retention: TimeDelta,
    units: Vec<Unit>,
    unit_index: HashMap<String, usize>,
    patients: Patients,
    sequence: ProtocolSequence,
    idempotency: HashMap<String, IdempotencyRecord>,
    escalation: Escalation,
    last_event_id: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("the journal holds patient {protocol} in unit `{unit}`, which is not in the config; put the unit back or transfer its patients first")]
    UnknownUnit { protocol: Protocol, unit: String },
}

impl Department {
    /// An empty department for a validated config.
    pub fn new(config: &Config) -> Self {
        let scale = TriageScale::from_config(&config.protocol);
        let units: Vec<Unit> = config
            .units
            .iter()
            .map(|u| Unit::new(u.clone(), scale.len()))
            .collect();
        let unit_index = units
            .iter()
            .enumerate()
            .map(|(i, u)| (u.config.id.clone(), i))
            .collect();
        Self {
            tz: config.time_zone().unwrap_or(chrono_tz::UTC),
            retention: TimeDelta::days(i64::from(config.storage.retention_days)),
            scale,
            units,
            unit_index,
            patients: Patients::default(),
            sequence: ProtocolSequence::new(),
            idempotency: HashMap::new(),
            escalation: Escalation::new(Ladder::from_config(&config.escalation)),
            last_event_id: 0,
        }
    }

    /// Rebuilds memory from the journal: the same patients in the same queues and order.
    pub fn restore(config: &Config, snapshot: Snapshot) -> Result<Self, RestoreError> {
        let mut d = Self::new(config);
        if let Some(seq) = snapshot.sequence {
            d.sequence = seq;
        }
        for (unit, counter) in snapshot.tickets {
            if let Some(&i) = d.unit_index.get(&unit) {
                d.units[i].tickets = counter;
            }
        }
        for (unit, call) in snapshot.calls {
            if let Some(&i) = d.unit_index.get(&unit) {
                d.units[i].announce(call);
            }
        }
        d.last_event_id = snapshot.last_event_id;
        let mut active: HashMap<Protocol, Alert> = HashMap::new();
        for a in &snapshot.alerts {
            if a.is_active() {
                active.insert(a.protocol, a.clone());
            }
        }
        d.escalation.restore_alerts(snapshot.alerts);
        d.escalation.set_last_alert_id(snapshot.last_alert_id);
        for mut p in snapshot.patients {
            if !d.unit_index.contains_key(&p.unit) {
                return Err(RestoreError::UnknownUnit {
                    protocol: p.protocol,
                    unit: p.unit,
                });
            }
            // A colour removed from the config must not drop a patient from the
            // queue: treat it as the most urgent so a clinician sees it first.
            if let Some(c) = &p.colour {
                if d.scale.rank(c).is_none() {
                    tracing::warn!(protocol = %p.protocol, colour = %c, "colour no longer configured; queued as most urgent");
                    p.colour = Some(d.scale.colour(0).id.clone());
                }
            }
            let protocol = p.protocol;
            let queued = p.status.queue().is_some();
            d.patients.insert(protocol, p);
            d.file(protocol);
            if queued {
                let wait = d.wait_context(&d.patients[&protocol]);
                match active.get(&protocol) {
                    Some(alert) => d.escalation.resume(protocol, wait, alert),
                    None => d.escalation.enter(protocol, wait),
                }
            }
        }
        for rec in snapshot.idempotency {
            d.idempotency.insert(rec.key.clone(), rec);
        }
        Ok(d)
    }

    pub fn scale(&self) -> &TriageScale {
        &self.scale
    }

    pub fn units(&self) -> &[Unit] {
        &self.units
    }

    pub fn time_zone(&self) -> Tz {
        self.tz
    }

    pub fn unit(&self, id: &str) -> Result<&Unit, DomainError> {
        self.unit_index
            .get(id)
            .map(|&i| &self.units[i])
            .ok_or_else(|| DomainError::UnknownUnit(id.to_owned()))
    }

    fn unit_idx(&self, id: &str) -> Result<usize, DomainError> {
        self.unit_index
            .get(id)
            .copied()
            .ok_or_else(|| DomainError::UnknownUnit(id.to_owned()))
    }

    pub fn patient(&self, protocol: Protocol) -> Result<&Patient, DomainError> {
        self.patients
            .get(&protocol)
            .ok_or(DomainError::UnknownPatient(protocol))
    }

    pub fn patient_count(&self) -> usize {
        self.patients.len()
    }

    fn rank(&self, colour: &str) -> Result<Rank, DomainError> {
        self.scale
            .rank(colour)
            .ok_or_else(|| DomainError::UnknownColour(colour.to_owned()))
    }

    /// What escalation measures a queued patient's wait against.
    fn wait_context(&self, p: &Patient) -> WaitContext {
        let (max_wait, due) = self.deadline(p);
        WaitContext {
            ticket: p.ticket.clone(),
            unit: p.unit.clone(),
            colour: p.colour.clone(),
            arrived_at: p.arrived_at,
            clock_start: due - max_wait,
            max_wait_ms: max_wait.num_milliseconds(),
        }
    }

    /// Puts a patient into the queue its status calls for and starts watching the wait.
    fn enqueue(&mut self, protocol: Protocol) {
        if self.file(protocol) {
            let wait = self.wait_context(&self.patients[&protocol]);
            self.escalation.enter(protocol, wait);
        }
    }

    /// Takes a patient out of their queue; an active alert is resolved.
    fn dequeue(&mut self, protocol: Protocol, now: DateTime<Utc>) -> Vec<Notification> {
        self.unfile(protocol);
        self.escalation.leave(protocol, now).into_iter().collect()
    }

    /// Queue placement only; true if the status puts the patient in a queue.
    fn file(&mut self, protocol: Protocol) -> bool {
        let Some(p) = self.patients.get(&protocol) else {
            return false;
        };
        let Some(kind) = p.status.queue() else {
            return false;
        };
        let unit = &mut self.units[self.unit_index[&p.unit]];
        match kind {
            QueueKind::Triage => unit.triage.push(protocol, p.arrived_at),
            QueueKind::Treatment => {
                let rank = p
                    .colour
                    .as_deref()
                    .and_then(|c| self.scale.rank(c))
                    .unwrap_or(0);
                unit.treatment.push(rank, protocol, p.arrived_at);
            }
        }
        true
    }

    /// Removes a patient from whatever queue holds it (placement only).
    fn unfile(&mut self, protocol: Protocol) {
        let Some(p) = self.patients.get(&protocol) else {
            return;
        };
        let Some(kind) = p.status.queue() else {
            return;
        };
        let unit = &mut self.units[self.unit_index[&p.unit]];
        match kind {
            QueueKind::Triage => {
                unit.triage.remove(protocol);
            }
            QueueKind::Treatment => {
                if let Some(rank) = p.colour.as_deref().and_then(|c| self.scale.rank(c)) {
                    unit.treatment.remove(rank, protocol);
                }
            }
        }
    }

    fn patient_mut(&mut self, protocol: Protocol) -> Result<&mut Patient, DomainError> {
        self.patients
            .get_mut(&protocol)
            .ok_or(DomainError::UnknownPatient(protocol))
    }

    fn display(&self, p: &Patient, event: &str, now: DateTime<Utc>) -> DisplayEvent {
        DisplayEvent {
            event: event.to_owned(),
            ticket: p.ticket.clone(),
            colour: p.colour.clone(),
            status: p.status,
            room: p.room.clone(),
            queue: p.status.queue().or(p.called_from),
            at: now,
            kind: None,
            level: None,
            state: None,
        }
    }

    fn audit(
        &mut self,
        p: &Patient,
        event: &str,
        actor: &str,
        details: serde_json::Value,
        display: Option<DisplayEvent>,
        now: DateTime<Utc>,
    ) -> Change {
        self.last_event_id += 1;
        Change::Event(AuditEvent {
            id: self.last_event_id,
            protocol: p.protocol,
            unit: p.unit.clone(),
            at: now,
            event: event.to_owned(),
            actor: actor.to_owned(),
            details,
            display,
        })
    }

    /// The patient's record and an audit entry, the two changes every transition makes.
    fn journaled(
        &mut self,
        protocol: Protocol,
        event: &str,
        actor: &str,
        details: serde_json::Value,
        now: DateTime<Utc>,
    ) -> Vec<Change> {
        let p = self.patients[&protocol].clone();
        // The event stream says `called` for a recall too: the screen announces it again.
        let shown = if event == "recalled" { "called" } else { event };
        let display = self.display(&p, shown, now);
        let audit = self.audit(&p, event, actor, details, Some(display), now);
        vec![Change::Patient(Box::new(p)), audit]
    }

    /// The changes that record alert notifications: the alert, its history entry,
    /// a stream event and the webhook outbox entry.
    fn alert_changes(
        &mut self,
        notes: Vec<Notification>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Vec<Change> {
        let mut changes = Vec::with_capacity(notes.len() * 4);
        for n in notes {
            let Some(p) = self.patients.get(&n.alert.protocol).cloned() else {
                continue;
            };
            let a = &n.alert;
            let details = json!({
                "alert": a.id, "kind": a.kind, "level": a.level,
                "level_name": a.level_name, "state": a.state,
            });
            let mut display = self.display(&p, "alert", now);
            display.colour.clone_from(&a.colour);
            display.kind = Some(a.kind);
            display.level = Some(a.level);
            display.state = Some(a.state);
            changes.push(Change::Alert(Box::new(a.clone())));
            let audit = self.audit(&p, n.event.as_str(), actor, details, Some(display), now);
            changes.push(audit);
            changes.push(Change::Notify(Box::new(n)));
        }
        changes
    }

    /// Fires every escalation step due at `now`.
    pub fn escalate(&mut self, now: DateTime<Utc>) -> Applied<usize> {
        let notes = self.escalation.fire_due(now);
        let n = notes.len();
        Applied {
            value: n,
            changes: self.alert_changes(notes, SYSTEM_ACTOR, now),
        }
    }

    /// The earliest moment the scheduler has something to fire.
    pub fn next_deadline(&self) -> Option<DateTime<Utc>> {
        self.escalation.next_deadline()
    }

    /// Acknowledges an alert on behalf of `by` (recorded as the acknowledger).
    pub fn acknowledge(
        &mut self,
        id: u64,
        by: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Applied<Alert>, DomainError> {
        let note = self
            .escalation
            .acknowledge(id, by, now)
            .map_err(|e| match e {
                escalation::AckError::Unknown(_) => DomainError::UnknownAlert(id),
                escalation::AckError::Resolved(_) => DomainError::InvalidTransition {
                    action: "acknowledge an alert of",
                    status: self
                        .escalation
                        .alert(id)
                        .and_then(|a| self.patients.get(&a.protocol))
                        .map_or(Status::Left, |p| p.status),
                },
            })?;
        let changes = match note {
            Some(n) => self.alert_changes(vec![n], actor, now),
            None => Vec::new(),
        };
        let alert = self
            .escalation
            .alert(id)
            .cloned()
            .ok_or(DomainError::UnknownAlert(id))?;
        Ok(Applied {
            value: self.alert_view(alert, now),
            changes,
        })
    }

    /// An alert with `waited_seconds` as of `now` (or as of its resolution).
    pub fn alert_view(&self, mut alert: Alert, now: DateTime<Utc>) -> Alert {
        if alert.is_active() {
            alert.waited_seconds = (now - alert.arrived_at).num_seconds().max(0);
        }
        alert
    }

    /// Alerts, newest first; `all` includes resolved ones.
    pub fn alerts(
        &self,
        unit: Option<&str>,
        all: bool,
        now: DateTime<Utc>,
    ) -> Result<Vec<Alert>, DomainError> {
        if let Some(u) = unit {
            self.unit(u)?;
        }
        let mut list: Vec<Alert> = self
            .escalation
            .alerts()
            .filter(|a| all || a.is_active())
            .filter(|a| unit.is_none_or(|u| a.unit == u))
            .cloned()
            .map(|a| self.alert_view(a, now))
            .collect();
        list.sort_by_key(|a| std::cmp::Reverse(a.id));
        Ok(list)
    }

    fn applied_view(
        &self,
        protocol: Protocol,
        changes: Vec<Change>,
        now: DateTime<Utc>,
    ) -> Applied<PatientView> {
        Applied {
            value: self.view(&self.patients[&protocol], now),
            changes,
        }
    }

    /// Checks the status allows `action`, so a refused command changes nothing.
    fn require(
        &self,
        protocol: Protocol,
        action: &'static str,
        allowed: &[Status],
    ) -> Result<&Patient, DomainError> {
        let p = self.patient(protocol)?;
        if allowed.contains(&p.status) {
            Ok(p)
        } else {
            Err(DomainError::InvalidTransition {
                action,
                status: p.status,
            })
        }
    }

    /// Registers an arrival: a protocol number and ticket at once, then the queue.
    pub fn admit(
        &mut self,
        unit_id: &str,
        admission: Admission,
        idempotency_key: Option<&str>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Applied<serde_json::Value>, DomainError> {
        let ui = self.unit_idx(unit_id)?;
        if let Some(key) = idempotency_key {
            if key.is_empty()
                || key.len() > IDEMPOTENCY_KEY_MAX_LEN
                || !key.bytes().all(|b| b.is_ascii_graphic())
            {
                return Err(DomainError::Invalid(format!(
                    "`Idempotency-Key` must be 1 to {IDEMPOTENCY_KEY_MAX_LEN} visible ASCII characters"
                )));
            }
            if let Some(rec) = self.idempotency.get(key) {
                if rec.created_at + IDEMPOTENCY_WINDOW > now {
                    return Ok(Applied {
                        value: rec.response.clone(),
                        changes: Vec::new(),
                    });
                }
            }
        }
        let name =
            PatientName::parse(&admission.name).map_err(|e| DomainError::Invalid(e.to_string()))?;
        let colour = match admission.colour {
            Some(c) => Some(self.scale.colour(self.rank(&c)?).id.clone()),
            None => None,
        };
        let arrived_at = match admission.arrived_at {
            Some(at) if at > now + ARRIVAL_FUTURE_TOLERANCE => {
                return Err(DomainError::Invalid(
                    "`arrived_at` is in the future".to_owned(),
                ))
            }
            Some(at) if at < now - ARRIVAL_MAX_AGE => {
                return Err(DomainError::Invalid(
                    "`arrived_at` is more than 24 hours ago".to_owned(),
                ))
            }
            // Within the tolerance a future arrival is clock skew: it arrived now.
            Some(at) => at.min(now),
            None => now,
        };
        let check_len = |field: &str, v: &Option<String>, max: usize| match v {
            Some(s) if s.chars().count() > max => Err(DomainError::Invalid(format!(
                "`{field}` must be at most {max} characters"
            ))),
            _ => Ok(()),
        };
        check_len("complaint", &admission.complaint, COMPLAINT_MAX_CHARS)?;
        check_len("document", &admission.document, DOCUMENT_MAX_CHARS)?;
        if admission
            .birth_date
            .is_some_and(|b| b > now.with_timezone(&self.tz).date_naive())
        {
            return Err(DomainError::Invalid(
                "`birth_date` is in the future".to_owned(),
            ));
        }

        let local = now.with_timezone(&self.tz);
        let (sequence, protocol) = self
            .sequence
            .peek_next(local.year())
            .map_err(|e| DomainError::Exhausted(e.to_string()))?;
        let unit = &mut self.units[ui];
        let (tickets, n) = unit.tickets.peek_next(local.date_naive());
        let ticket = format_ticket(&unit.config.ticket_prefix, n);
        self.sequence = sequence;
        unit.tickets = tickets;

        let status = if colour.is_some() {
            Status::Waiting
        } else {
            Status::AwaitingTriage
        };
        let patient = Patient {
            protocol,
            ticket: ticket.clone(),
            unit: unit_id.to_owned(),
            name: name.into_inner(),
            triaged_at: colour.as_ref().map(|_| now),
            colour: colour.clone(),
            status,
            complaint: admission.complaint.filter(|c| !c.trim().is_empty()),
            birth_date: admission.birth_date,
            document: admission.document.filter(|d| !d.trim().is_empty()),
            arrived_at,
            admitted_at: now,
            called_at: None,
            wait_ended_at: None,
            room: None,
            called_from: None,
            no_shows: 0,
            outcome: None,
            leave_reason: None,
            triage_note: None,
            closed_at: None,
        };
        self.patients.insert(protocol, patient);
        self.enqueue(protocol);

        let mut changes = vec![
            Change::Sequence(sequence),
            Change::Tickets {
                unit: unit_id.to_owned(),
                counter: tickets,
            },
        ];
        changes.extend(self.journaled(
            protocol,
            "admitted",
            actor,
            json!({"ticket": ticket, "colour": colour, "arrived_at": arrived_at}),
            now,
        ));
        let response = serde_json::to_value(self.view(&self.patients[&protocol], now))
            .unwrap_or(serde_json::Value::Null);
        if let Some(key) = idempotency_key {
            let rec = IdempotencyRecord {
                key: key.to_owned(),
                created_at: now,
                protocol,
                response: response.clone(),
            };
            self.idempotency.insert(key.to_owned(), rec.clone());
            changes.push(Change::Idempotency(rec));
        }
        Ok(Applied {
            value: response,
            changes,
        })
    }

    /// Classifies (or reclassifies) a patient; the colour's clock restarts now.
    pub fn triage(
        &mut self,
        protocol: Protocol,
        colour: &str,
        note: Option<String>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Applied<PatientView>, DomainError> {
        use Status::*;
        self.require(protocol, "triage", &[AwaitingTriage, InTriage, Waiting])?;
        let rank = self.rank(colour)?;
        if let Some(n) = &note {
            if n.chars().count() > NOTE_MAX_CHARS {
                return Err(DomainError::Invalid(format!(
                    "`note` must be at most {NOTE_MAX_CHARS} characters"
                )));
            }
        }
        let was_queued = self.patient(protocol)?.status.queue().is_some();
        self.unfile(protocol);
        let colour_id = self.scale.colour(rank).id.clone();
        let p = self.patient_mut(protocol)?;
        let from = p.colour.replace(colour_id.clone());
        p.status = Waiting;
        p.triaged_at = Some(now);
        p.room = None;
        p.called_from = None;
        p.wait_ended_at = None;
        if note.is_some() {
            p.triage_note.clone_from(&note);
        }
        self.file(protocol);
        // A new colour whose deadline is still ahead ends the old alert; one
        // already past keeps it escalating against the new target.
        let wait = self.wait_context(&self.patients[&protocol]);
        let mut notes = Vec::new();
        if was_queued && wait.breach_at() <= now {
            self.escalation.retarget(protocol, wait);
        } else {
            notes.extend(self.escalation.leave(protocol, now));
            self.escalation.enter(protocol, wait);
        }
        let mut changes = self.journaled(
            protocol,
            "triaged",
            actor,
            json!({"from": from, "colour": colour_id, "note": note}),
            now,
        );
        changes.extend(self.alert_changes(notes, SYSTEM_ACTOR, now));
        Ok(self.applied_view(protocol, changes, now))
    }

    /// Calls the next patient of a unit's queue to `room`; `None` when nobody waits.
    pub fn call(
        &mut self,
        unit_id: &str,
        kind: QueueKind,
        room: &str,
        colours: Option<&[String]>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Applied<Option<PatientView>>, DomainError> {
        let ui = self.unit_idx(unit_id)?;
        let room = self.units[ui]
            .config
            .rooms
            .iter()
            .find(|r| r.as_str() == room)
            .cloned()
            .ok_or_else(|| DomainError::UnknownRoom {
                unit: unit_id.to_owned(),
                room: room.to_owned(),
            })?;
        let allowed: Option<Vec<Rank>> = match colours {
            Some(list) => Some(
                list.iter()
                    .map(|c| self.rank(c))
                    .collect::<Result<_, _>>()?,
            ),
            None => None,
        };
        let unit = &mut self.units[ui];
        let next = match kind {
            QueueKind::Triage => unit.triage.pop(),
            QueueKind::Treatment => unit
                .treatment
                .pop_next(|r| allowed.as_ref().is_none_or(|a| a.contains(&r)))
                .map(|(_, p)| p),
        };
        let Some(protocol) = next else {
            return Ok(Applied {
                value: None,
                changes: Vec::new(),
            });
        };
        let p = self
            .patients
            .get_mut(&protocol)
            .ok_or(DomainError::UnknownPatient(protocol))?;
        p.status = match kind {
            QueueKind::Triage => Status::InTriage,
            QueueKind::Treatment => Status::Called,
        };
        p.room = Some(room.clone());
        p.called_at = Some(now);
        p.wait_ended_at = Some(now);
        p.called_from = Some(kind);
        let call = BoardCall {
            ticket: p.ticket.clone(),
            room,
            colour: p.colour.clone(),
            queue: kind,
            called_at: now,
        };
        let mut details = serde_json::to_value(&call).unwrap_or_default();
        details["waited_seconds"] = json!((now - p.arrived_at).num_seconds().max(0));
        self.units[ui].announce(call);
        let notes: Vec<Notification> = self.escalation.leave(protocol, now).into_iter().collect();
        let mut changes = self.journaled(protocol, "called", actor, details, now);
        changes.extend(self.alert_changes(notes, SYSTEM_ACTOR, now));
        let applied = self.applied_view(protocol, changes, now);
        Ok(Applied {
            value: Some(applied.value),
            changes: applied.changes,
        })
    }

    /// Announces a called patient again (they did not hear); the status stays.
    pub fn recall(
        &mut self,
        protocol: Protocol,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Applied<PatientView>, DomainError> {
        let p = self.require(protocol, "recall", &[Status::InTriage, Status::Called])?;
        let call = BoardCall {
            ticket: p.ticket.clone(),
            room: p.room.clone().unwrap_or_default(),
            colour: p.colour.clone(),
            queue: p.called_from.unwrap_or_default(),
            called_at: now,
        };
        let ui = self.unit_idx(&p.unit)?;
        let details = serde_json::to_value(&call).unwrap_or_default();
        self.units[ui].announce(call);
        let changes = self.journaled(protocol, "recalled", actor, details, now);
        Ok(self.applied_view(protocol, changes, now))
    }

    pub fn start(
        &mut self,
        protocol: Protocol,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Applied<PatientView>, DomainError> {
        self.require(protocol, "start", &[Status::Called])?;
        let p = self.patient_mut(protocol)?;
        p.status = Status::InTreatment;
        let changes = self.journaled(protocol, "started", actor, json!({}), now);
        Ok(self.applied_view(protocol, changes, now))
    }

    pub fn finish(
        &mut self,
        protocol: Protocol,
        outcome: Outcome,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Applied<PatientView>, DomainError> {
        self.require(protocol, "finish", &[Status::Called, Status::InTreatment])?;
        let p = self.patient_mut(protocol)?;
        p.status = Status::Finished;
        p.outcome = Some(outcome);
        p.closed_at = Some(now);
        let changes = self.journaled(
            protocol,
            "finished",
            actor,
            json!({"outcome": outcome}),
            now,
        );
        Ok(self.applied_view(protocol, changes, now))
    }

    /// The patient did not answer the call: back to their original place, or
    /// out of the department once `max_no_shows` is reached.
    pub fn no_show(
        &mut self,
        protocol: Protocol,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Applied<PatientView>, DomainError> {
        let p = self.require(
            protocol,
            "record a no-show for",
            &[Status::InTriage, Status::Called],
        )?;
        let max = self.unit(&p.unit)?.config.max_no_shows;
        let p = self.patient_mut(protocol)?;
        p.no_shows += 1;
        p.room = None;
        p.called_from = None;
        let gone = p.no_shows >= max;
        let no_shows = p.no_shows;
        if gone {
            p.status = Status::Left;
            p.leave_reason = Some(LeaveReason::NoShow);
            p.closed_at = Some(now);
        } else {
            p.status = if p.status == Status::InTriage {
                Status::AwaitingTriage
            } else {
                Status::Waiting
            };
            p.wait_ended_at = None;
        }
        self.enqueue(protocol);
        let mut changes = self.journaled(
            protocol,
            "no_show",
            actor,
            json!({"no_shows": no_shows, "left": gone}),
            now,
        );
        if gone {
            let p = self.patients[&protocol].clone();
            let display = self.display(&p, "left", now);
            let left = self.audit(
                &p,
                "left",
                actor,
                json!({"reason": LeaveReason::NoShow}),
                Some(display),
                now,
            );
            changes.push(left);
        }
        Ok(self.applied_view(protocol, changes, now))
    }

    /// Moves a patient to the same queue of another unit, keeping their place by arrival.
    pub fn transfer(
        &mut self,
        protocol: Protocol,
        to_unit: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Applied<PatientView>, DomainError> {
        use Status::*;
        let p = self.require(protocol, "transfer", &[AwaitingTriage, Waiting, Called])?;
        self.unit_idx(to_unit)?;
        if p.unit == to_unit {
            return Err(DomainError::Invalid(format!(
                "the patient is already in unit `{to_unit}`"
            )));
        }
        self.unfile(protocol);
        let p = self.patient_mut(protocol)?;
        let from = std::mem::replace(&mut p.unit, to_unit.to_owned());
        let was_called = p.status == Called;
        if was_called {
            p.status = Waiting;
            p.room = None;
            p.called_from = None;
            p.wait_ended_at = None;
            self.enqueue(protocol);
        } else {
            // Still waiting, same deadlines: the running alert follows the patient.
            self.file(protocol);
            self.escalation.relocate(protocol, to_unit);
        }
        let changes = self.journaled(
            protocol,
            "transferred",
            actor,
            json!({"from": from, "to": to_unit}),
            now,
        );
        Ok(self.applied_view(protocol, changes, now))
    }

    /// The patient left without being seen, or the admission is cancelled.
    pub fn leave(
        &mut self,
        protocol: Protocol,
        reason: LeaveReason,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Applied<PatientView>, DomainError> {
        use Status::*;
        if reason == LeaveReason::NoShow {
            return Err(DomainError::Invalid(
                "`reason` must be lwbs, cancelled or error; no-shows are recorded with /no-show"
                    .to_owned(),
            ));
        }
        self.require(
            protocol,
            "record the leaving of",
            &[AwaitingTriage, InTriage, Waiting, Called, InTreatment],
        )?;
        let notes = self.dequeue(protocol, now);
        let p = self.patient_mut(protocol)?;
        if p.status.queue().is_some() {
            p.wait_ended_at = Some(now);
        }
        p.status = Left;
        p.leave_reason = Some(reason);
        p.closed_at = Some(now);
        let mut changes = self.journaled(protocol, "left", actor, json!({"reason": reason}), now);
        changes.extend(self.alert_changes(notes, SYSTEM_ACTOR, now));
        Ok(self.applied_view(protocol, changes, now))
    }

    /// Forgets finished and left patients older than the retention window, and
    /// idempotency keys past theirs.
    pub fn purge(&mut self, now: DateTime<Utc>) -> Applied<usize> {
        let cutoff = now - self.retention;
        let protocols: Vec<Protocol> = self
            .patients
            .values()
            .filter(|p| p.status.is_terminal() && p.closed_at.is_some_and(|c| c < cutoff))
            .map(|p| p.protocol)
            .collect();
        for p in &protocols {
            self.patients.remove(p);
        }
        let idempotency_before = now - IDEMPOTENCY_WINDOW;
        self.idempotency
            .retain(|_, r| r.created_at >= idempotency_before);
        let alerts = self.escalation.purge_resolved(cutoff);
        Applied {
            value: protocols.len(),
            changes: vec![Change::Purge {
                protocols,
                alerts,
                idempotency_before,
            }],
        }
    }

    /// The patients of a queue in call order, `offset..offset + limit`, and the total.
    pub fn queue_page(
        &self,
        unit_id: &str,
        kind: QueueKind,
        offset: usize,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<(usize, Vec<PatientView>), DomainError> {
        let unit = self.unit(unit_id)?;
        let (total, protocols) = match kind {
            QueueKind::Triage => (unit.triage.len(), unit.triage.ordered(offset, limit)),
            QueueKind::Treatment => (unit.treatment.len(), unit.treatment.ordered(offset, limit)),
        };
        let views = protocols
            .iter()
            .filter_map(|p| self.patients.get(p))
            .map(|p| self.view(p, now))
            .collect();
        Ok((total, views))
    }

    /// 1-based place of a patient in the queue they are in.
    pub fn position(&self, p: &Patient) -> Option<usize> {
        let unit = self.unit(&p.unit).ok()?;
        let place = match p.status.queue()? {
            QueueKind::Triage => unit.triage.rank_of(p.protocol),
            QueueKind::Treatment => {
                let rank = self.scale.rank(p.colour.as_deref()?)?;
                unit.treatment.rank_of(rank, p.protocol)
            }
        };
        place.map(|r| r + 1)
    }
}

#[cfg(test)]
mod tests;
