//! The department: every unit, every patient of the retention window, the
//! numbering and the escalation index, with the helpers every command shares
//! (queue placement, the durable record of a change, status checks).

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;

use super::change::{
    Applied, AuditEvent, Change, DisplayEvent, IdempotencyRecord, RecentFact, Snapshot,
};
use super::escalation::{Alert, Escalation, Notification, WaitContext};
use super::ids::{ColourId, UnitId};
use super::notify::{NotifyEvent, NotifySettings};
use super::numbering::ProtocolSequence;
use super::patient::{Patient, Protocol, QueueKind, Status};
use super::registry::{Patients, ProtocolMap};
use super::scale::{Rank, TriageScale};
use super::unit::Unit;
use super::view::PatientView;
use super::{DomainError, Settings};

/// A queue of one unit (see [`Department::placement`]).
#[derive(Debug, Clone, Copy)]
enum Placement {
    Triage { unit: usize },
    Treatment { unit: usize, rank: Rank },
}

#[derive(Debug, Clone)]
pub struct Department {
    pub(super) scale: TriageScale,
    pub(super) tz: Tz,
    pub(super) retention: TimeDelta,
    pub(super) units: Vec<Unit>,
    /// Looked up several times per admission and per patient at start-up:
    /// foldhash, not SipHash (the ids are the config's, nobody else's).
    pub(super) unit_index: HashMap<UnitId, usize, foldhash::fast::RandomState>,
    pub(super) patients: Patients,
    pub(super) sequence: ProtocolSequence,
    pub(super) idempotency: HashMap<String, IdempotencyRecord>,
    pub(super) escalation: Escalation,
    pub(super) last_event_id: u64,
    /// The key check codes are derived with.
    pub(super) check_key: Vec<u8>,
    pub(super) public_url: String,
    pub(super) notify: NotifySettings,
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("the journal holds patient {protocol}, still in care ({status}), in unit `{unit}`, which is not in the config; put the unit back, start with it, and transfer or close its patients in care before removing it (closed patients do not hold a unit)")]
    UnknownUnit {
        protocol: Protocol,
        unit: UnitId,
        status: &'static str,
    },
    #[error("cannot read the journal's patients: {0}")]
    Read(String),
}

impl Department {
    /// An empty department.
    pub fn new(settings: &Settings) -> Self {
        let scale = settings.scale.clone();
        let units: Vec<Unit> = settings
            .units
            .iter()
            .map(|u| Unit::new(u.clone(), scale.len()))
            .collect();
        let unit_index = units
            .iter()
            .enumerate()
            .map(|(i, u)| (u.settings.id.clone(), i))
            .collect();
        Self {
            tz: settings.time_zone,
            retention: settings.retention,
            scale,
            units,
            unit_index,
            patients: Patients::default(),
            sequence: ProtocolSequence::new(),
            idempotency: HashMap::new(),
            escalation: Escalation::new(settings.ladder.clone()),
            last_event_id: 0,
            check_key: settings.check_secret.clone().unwrap_or_default(),
            public_url: settings.public_url.clone(),
            notify: settings.notify.clone(),
        }
    }

    /// Rebuilds memory from the journal: the same patients in the same queues and order.
    pub fn restore(settings: &Settings, snapshot: Snapshot) -> Result<Self, RestoreError> {
        let mut d = Self::new(settings);
        if settings.check_secret.is_none() {
            d.check_key = snapshot.check_secret.clone();
        }
        for (unit, at, fact) in &snapshot.recent {
            d.replay(unit, *at, fact);
        }
        if let Some(seq) = snapshot.sequence {
            d.sequence = seq;
        }
        for (unit, counter) in snapshot.tickets {
            if let Some(&i) = d.unit_index.get(unit.as_str()) {
                d.units[i].tickets = counter;
            }
        }
        for (unit, call) in snapshot.calls {
            if let Some(&i) = d.unit_index.get(unit.as_str()) {
                d.units[i].announce(call);
            }
        }
        d.last_event_id = snapshot.last_event_id;
        let mut active: ProtocolMap<Alert> = ProtocolMap::default();
        for a in &snapshot.alerts {
            if a.is_active() {
                active.insert(a.protocol, a.clone());
            }
        }
        d.escalation.restore_alerts(snapshot.alerts);
        d.escalation.set_last_alert_id(snapshot.last_alert_id);
        let mut deadlines = Vec::new();
        for batch in snapshot.patients.batches() {
            for p in batch.map_err(RestoreError::Read)? {
                d.restore_patient(p, &active, &mut deadlines)?;
            }
        }
        d.escalation.index_resumed(deadlines);
        let last: Vec<u32> = d.units.iter().map(|u| u.tickets.last).collect();
        let held = d.held_tickets_of_all(&last);
        for (unit, held) in d.units.iter_mut().zip(held) {
            unit.carried = held;
        }
        for rec in snapshot.idempotency {
            d.idempotency.insert(rec.key.clone(), rec);
        }
        Ok(d)
    }

    /// One patient of a snapshot, into its queue and under escalation.
    fn restore_patient(
        &mut self,
        mut p: Box<Patient>,
        active: &ProtocolMap<Alert>,
        deadlines: &mut Vec<(DateTime<Utc>, Protocol)>,
    ) -> Result<(), RestoreError> {
        let Some(&unit) = self.unit_index.get(p.unit.as_str()) else {
            // Closed: readable until purged, in no queue. Refused, a unit
            // could not be removed until its last patients' retention ran out.
            if p.status.is_terminal() {
                self.patients.insert(p.protocol, p);
                return Ok(());
            }
            return Err(RestoreError::UnknownUnit {
                protocol: p.protocol,
                unit: p.unit,
                status: p.status.as_str(),
            });
        };
        // A colour removed from the config must not drop a patient from the
        // queue: treat it as the most urgent so a clinician sees it first.
        if let Some(c) = &p.colour {
            match self.scale.rank(c) {
                Some(rank) => p.colour = Some(self.scale.colours[rank].id.clone()),
                None => {
                    let most_urgent = self.scale.colours.first().map(|c| c.id.clone());
                    tracing::warn!(protocol = %p.protocol, colour = %c, "colour no longer configured; queued as most urgent");
                    p.colour = most_urgent;
                }
            }
        }
        // The config's copies of the ids, shared (see `ids`).
        p.unit = self.units[unit].settings.id.clone();
        if let Some(admitted) = &p.admitted_unit {
            if let Some(&i) = self.unit_index.get(admitted.as_str()) {
                p.admitted_unit = Some(self.units[i].settings.id.clone());
            }
        }
        let alert = active.get(&p.protocol);
        self.take_in(p, alert, Some(deadlines));
        Ok(())
    }

    /// Takes in a patient not yet in the registry: into the queue their
    /// status calls for and under escalation, then into the registry.
    pub(super) fn register(&mut self, p: Box<Patient>) {
        self.take_in(p, None, None);
    }

    /// [`Department::register`], continuing `alert` (one that survived a
    /// restart); at start-up (`restoring`) the escalation deadlines are
    /// gathered, to be indexed in one go at the end. Placed from the record
    /// in hand, so the registry is searched once, not once per step: at a
    /// million patients each search is a miss in the processor's cache.
    fn take_in(
        &mut self,
        p: Box<Patient>,
        alert: Option<&Alert>,
        restoring: Option<&mut Vec<(DateTime<Utc>, Protocol)>>,
    ) {
        let protocol = p.protocol;
        if let Some(place) = self.placement(&p) {
            let wait = self.wait_context(&p);
            self.put(place, protocol, p.arrived_at);
            match restoring {
                Some(deadlines) => self.escalation.resume(protocol, wait, alert, deadlines),
                None => self.escalation.start(protocol, wait, alert),
            }
        }
        self.patients.insert(protocol, p);
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

    pub(super) fn unit_idx(&self, id: &str) -> Result<usize, DomainError> {
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

    /// The id of the newest event (stream events are numbered in one sequence).
    pub fn last_event_id(&self) -> u64 {
        self.last_event_id
    }

    pub fn patient_count(&self) -> usize {
        self.patients.len()
    }

    /// A colour's maximum wait in seconds, as configured now.
    pub(super) fn max_wait_seconds(&self, colour: &str) -> Option<i64> {
        let rank = self.scale.rank(colour)?;
        Some(self.scale.colour(rank)?.max_wait.num_seconds())
    }

    /// The config's own copy of a colour id, which every patient of that
    /// colour then shares (see `ids`).
    pub(super) fn colour_id(&self, colour: &str) -> Result<ColourId, DomainError> {
        let rank = self.rank(colour)?;
        Ok(self.scale.colours[rank].id.clone())
    }

    pub(super) fn rank(&self, colour: &str) -> Result<Rank, DomainError> {
        self.scale
            .rank(colour)
            .ok_or_else(|| DomainError::UnknownColour(colour.to_owned()))
    }

    /// What escalation measures a queued patient's wait against.
    pub(super) fn wait_context(&self, p: &Patient) -> WaitContext {
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
    pub(super) fn enqueue(&mut self, protocol: Protocol) {
        let Some(p) = self.patients.get(&protocol) else {
            return;
        };
        if let Some(place) = self.placement(p) {
            let (arrived_at, wait) = (p.arrived_at, self.wait_context(p));
            self.put(place, protocol, arrived_at);
            self.escalation.enter(protocol, wait);
        }
    }

    /// Takes a patient out of their queue; an active alert is resolved.
    pub(super) fn dequeue(&mut self, protocol: Protocol, now: DateTime<Utc>) -> Vec<Notification> {
        self.unfile(protocol);
        self.escalation.leave(protocol, now).into_iter().collect()
    }

    /// Queue placement only; true if the status puts the patient in a queue.
    pub(super) fn file(&mut self, protocol: Protocol) -> bool {
        let Some(p) = self.patients.get(&protocol) else {
            return false;
        };
        let Some(place) = self.placement(p) else {
            return false;
        };
        self.put(place, protocol, p.arrived_at);
        true
    }

    /// The queue a patient's status puts them in: their unit's index, and
    /// for the treatment queue their colour's rank (the most urgent if the
    /// colour is unknown).
    fn placement(&self, p: &Patient) -> Option<Placement> {
        let unit = *self.unit_index.get(&p.unit)?;
        Some(match p.status.queue()? {
            QueueKind::Triage => Placement::Triage { unit },
            QueueKind::Treatment => Placement::Treatment {
                unit,
                rank: p
                    .colour
                    .as_deref()
                    .and_then(|c| self.scale.rank(c))
                    .unwrap_or(0),
            },
        })
    }

    fn put(&mut self, place: Placement, protocol: Protocol, arrived_at: DateTime<Utc>) {
        match place {
            Placement::Triage { unit } => self.units[unit].triage.push(protocol, arrived_at),
            Placement::Treatment { unit, rank } => {
                self.units[unit].treatment.push(rank, protocol, arrived_at);
            }
        }
    }

    /// Removes a patient from whatever queue holds it (placement only).
    pub(super) fn unfile(&mut self, protocol: Protocol) {
        let Some(p) = self.patients.get(&protocol) else {
            return;
        };
        let Some(kind) = p.status.queue() else {
            return;
        };
        let Some(unit) = self
            .unit_index
            .get(&p.unit)
            .and_then(|&i| self.units.get_mut(i))
        else {
            return;
        };
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

    pub(super) fn patient_mut(&mut self, protocol: Protocol) -> Result<&mut Patient, DomainError> {
        self.patients
            .get_mut(&protocol)
            .ok_or(DomainError::UnknownPatient(protocol))
    }

    pub(super) fn display(&self, p: &Patient, event: &str, now: DateTime<Utc>) -> DisplayEvent {
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

    pub(super) fn audit(
        &mut self,
        p: &Patient,
        event: &str,
        actor: &str,
        details: serde_json::Value,
        display: Option<DisplayEvent>,
        now: DateTime<Utc>,
    ) -> Change {
        self.last_event_id += 1;
        Change::Event(Box::new(AuditEvent {
            id: self.last_event_id,
            protocol: p.protocol,
            unit: p.unit.clone(),
            at: now,
            event: event.to_owned(),
            actor: actor.to_owned(),
            details,
            display,
            display_json: Default::default(),
        }))
    }

    /// The patient's record and an audit entry, the two changes every transition makes.
    pub(super) fn journaled(
        &mut self,
        protocol: Protocol,
        event: &str,
        actor: &str,
        details: serde_json::Value,
        now: DateTime<Utc>,
    ) -> Vec<Change> {
        let Some(p) = self.patients.get_mut(&protocol) else {
            return Vec::new();
        };
        p.updated_at = Some(now);
        let p = p.clone();
        // The event stream says `called` for a recall too: the screen announces it again.
        let shown = if event == "recalled" { "called" } else { event };
        let display = self.display(&p, shown, now);
        let audit = self.audit(&p, event, actor, details, Some(display), now);
        self.remember(&p, shown, now);
        let notify = match shown {
            "admitted" => Some(NotifyEvent::Admitted),
            "called" => Some(NotifyEvent::Called),
            "finished" => Some(NotifyEvent::Finished),
            _ => None,
        };
        let messages = notify.map(|event| self.messages(&p, event));
        let mut changes = vec![Change::Patient(Box::new(p)), audit];
        changes.extend(messages.into_iter().flatten());
        changes
    }

    /// Wait estimates' history, read back from the journal at start-up.
    fn replay(&mut self, unit: &str, at: DateTime<Utc>, fact: &RecentFact) {
        let rank = |c: &ColourId| self.scale.rank(c);
        let rank = match fact {
            RecentFact::Called {
                colour: Some(c), ..
            }
            | RecentFact::Entered { colour: c } => rank(c),
            RecentFact::Called { colour: None, .. } => None,
        };
        let Some(u) = self
            .unit_index
            .get(unit)
            .and_then(|&i| self.units.get_mut(i))
        else {
            return;
        };
        match (fact, rank) {
            (
                RecentFact::Called {
                    queue: QueueKind::Triage,
                    ..
                },
                _,
            ) => u.recent.called_triage(at),
            (RecentFact::Called { .. }, Some(r)) => u.recent.called_treatment(at, r),
            (RecentFact::Entered { .. }, Some(r)) => u.recent.entered_treatment(at, r),
            _ => {}
        }
    }

    /// What wait estimates learn from an event: a call, or a classified
    /// patient joining the treatment queue.
    fn remember(&mut self, p: &Patient, event: &str, now: DateTime<Utc>) {
        let rank = p.colour.as_deref().and_then(|c| self.scale.rank(c));
        let Some(unit) = self
            .unit_index
            .get(p.unit.as_str())
            .and_then(|&i| self.units.get_mut(i))
        else {
            return;
        };
        match (event, p.status, rank) {
            ("called", Status::InTriage, _) => unit.recent.called_triage(now),
            ("called", Status::Called, Some(rank)) => unit.recent.called_treatment(now, rank),
            ("admitted" | "triaged", Status::Waiting, Some(rank)) => {
                unit.recent.entered_treatment(now, rank)
            }
            _ => {}
        }
    }

    pub(super) fn applied_view(
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
    pub(super) fn require(
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
}
