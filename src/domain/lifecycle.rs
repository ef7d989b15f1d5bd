//! The status transitions of one patient after admission: triage, call,
//! recall, start, finish, no-show, transfer, leave; and the purge of those
//! past retention. Each checks what it needs before it changes anything.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::admission::IDEMPOTENCY_WINDOW;
use super::change::{Applied, Change};
use super::escalation::Notification;
use super::ids::{ColourId, UnitId};
use super::patient::{
    stray_control, FirstCall, LeaveReason, Outcome, Protocol, QueueKind, Status, NOTE_MAX_CHARS,
};
use super::scale::Rank;
use super::view::{BoardCall, PatientView};
use super::{Department, DomainError, SYSTEM_ACTOR};

impl Department {
    /// Classifies (or reclassifies) a patient; the colour's clock restarts now.
    pub fn triage(
        &mut self,
        protocol: Protocol,
        colour: &ColourId,
        note: Option<String>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Applied<PatientView>, DomainError> {
        use Status::*;
        self.require(protocol, "triage", &[AwaitingTriage, InTriage, Waiting])?;
        let colour = &self.colour_id(colour)?;
        if let Some(n) = &note {
            if n.chars().count() > NOTE_MAX_CHARS {
                return Err(DomainError::invalid(
                    "note",
                    format!("`note` must be at most {NOTE_MAX_CHARS} characters"),
                ));
            }
            if stray_control(n, true) {
                return Err(DomainError::invalid(
                    "note",
                    "`note` must not hold control or bidirectional override characters",
                ));
            }
        }
        let was_queued = self.patient(protocol)?.status.queue().is_some();
        let max_wait = self.max_wait_seconds(colour);
        self.unfile(protocol);
        let colour_id = colour.clone();
        let p = self.patient_mut(protocol)?;
        let from = p.colour.replace(colour_id.clone());
        p.status = Waiting;
        p.triaged_at = Some(now);
        p.first_triaged_at.get_or_insert(now);
        p.classified_max_wait_seconds = max_wait;
        p.room = None;
        p.called_from = None;
        p.wait_ended_at = None;
        if note.is_some() {
            p.triage_note.clone_from(&note);
        }
        self.file(protocol);
        // A new colour whose deadline is still ahead ends the old alert; one
        // already past keeps it escalating against the new target, unless
        // the new colour is more urgent: then the old alert ends and a new one
        // fires at once. Kept, an acknowledged breach stayed silent for a
        // patient just re-classified red.
        let wait = self.wait_context(&self.patients[&protocol]);
        let mut notes = Vec::new();
        let mut kept = None;
        if was_queued && wait.breach_at() <= now && !self.escalation.is_stricter(protocol, &wait) {
            kept = self.escalation.retarget(protocol, wait);
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
        changes.extend(kept.map(|a| Change::Alert(Box::new(a))));
        Ok(self.applied_view(protocol, changes, now))
    }

    /// Calls the next patient of a unit's queue to `room`; `None` when nobody waits.
    pub fn call(
        &mut self,
        unit_id: &str,
        kind: QueueKind,
        room: &str,
        colours: Option<&[ColourId]>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Applied<Option<PatientView>>, DomainError> {
        let ui = self.unit_idx(unit_id)?;
        let room = self.units[ui]
            .settings
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
        // Who is next, read before anything changes, so a refusal changes nothing.
        let unit = &self.units[ui];
        let next = match kind {
            QueueKind::Triage => unit.triage.peek().map(|(_, p)| p),
            QueueKind::Treatment => unit
                .treatment
                .peek_next(|r| allowed.as_ref().is_none_or(|a| a.contains(&r))),
        };
        let Some(protocol) = next else {
            return Ok(Applied {
                value: None,
                changes: Vec::new(),
            });
        };
        let (max_wait, due) = self.deadline(self.patient(protocol)?);
        self.unfile(protocol);
        let p = self.patient_mut(protocol)?;
        if kind == QueueKind::Treatment && p.first_call.is_none() {
            p.first_call = Some(Box::new(FirstCall {
                at: now,
                colour: p.colour.clone(),
                clock_start: due - max_wait,
                max_wait_seconds: p
                    .classified_max_wait_seconds
                    .unwrap_or(max_wait.num_seconds()),
            }));
        }
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
        let max = self.unit(&p.unit)?.settings.max_no_shows;
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
        to_unit: &UnitId,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Applied<PatientView>, DomainError> {
        use Status::*;
        // An unknown unit is 404 whatever the patient's state, as for every
        // other request naming one.
        let to_unit = &self.units[self.unit_idx(to_unit)?].settings.id.clone();
        let p = self.require(protocol, "transfer", &[AwaitingTriage, Waiting, Called])?;
        if p.unit == *to_unit {
            return Err(DomainError::invalid(
                "unit",
                format!("the patient is already in unit `{to_unit}`"),
            ));
        }
        self.unfile(protocol);
        let p = self.patient_mut(protocol)?;
        let from = std::mem::replace(&mut p.unit, to_unit.clone());
        let was_called = p.status == Called;
        let mut moved = None;
        if was_called {
            p.status = Waiting;
            p.room = None;
            p.called_from = None;
            p.wait_ended_at = None;
            self.enqueue(protocol);
        } else {
            // Still waiting, same deadlines: the running alert follows the patient.
            self.file(protocol);
            moved = self.escalation.relocate(protocol, to_unit);
        }
        let mut changes = self.journaled(
            protocol,
            "transferred",
            actor,
            json!({"from": from, "to": to_unit}),
            now,
        );
        changes.extend(moved.map(|a| Change::Alert(Box::new(a))));
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
            return Err(DomainError::invalid(
                "reason",
                "`reason` must be lwbs, cancelled or error; no-shows are recorded with /no-show",
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
        let patients = &self.patients;
        let alerts = self
            .escalation
            .purge_resolved(|p| patients.get(&p).is_some());
        Applied {
            value: protocols.len(),
            changes: vec![Change::Purge {
                protocols,
                alerts,
                idempotency_before,
            }],
        }
    }
}
