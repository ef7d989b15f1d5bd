//! What clients see: the patient view and the display board.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::ids::{ColourId, UnitId};
use super::patient::{Contact, LeaveReason, Outcome, Patient, Protocol, QueueKind, Status};
use super::queue::ArrivalQueue;
use super::scale::ClockStarts;
use super::text_time;
use super::{Department, DomainError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PatientView {
    pub protocol: Protocol,
    pub ticket: String,
    pub unit: UnitId,
    pub name: String,
    pub colour: Option<ColourId>,
    pub status: Status,
    pub complaint: Option<String>,
    /// The triage nurse's note of the last classification that had one, for
    /// the clinician who calls the patient; staff views only.
    pub triage_note: Option<String>,
    pub birth_date: Option<NaiveDate>,
    pub document: Option<String>,
    #[serde(serialize_with = "text_time::serialize")]
    pub arrived_at: DateTime<Utc>,
    #[serde(serialize_with = "text_time::serialize")]
    pub admitted_at: DateTime<Utc>,
    #[serde(serialize_with = "text_time::option::serialize")]
    pub triaged_at: Option<DateTime<Utc>>,
    pub max_wait_seconds: i64,
    #[serde(serialize_with = "text_time::serialize")]
    pub due_at: DateTime<Utc>,
    pub waited_seconds: i64,
    pub overdue: bool,
    pub position: Option<usize>,
    pub room: Option<String>,
    #[serde(serialize_with = "text_time::option::serialize")]
    pub called_at: Option<DateTime<Utc>>,
    pub no_shows: u32,
    pub outcome: Option<Outcome>,
    pub leave_reason: Option<LeaveReason>,
    #[serde(serialize_with = "text_time::option::serialize")]
    pub closed_at: Option<DateTime<Utc>>,
    /// Proves the holder has the receipt (`/p/{protocol}`); staff views only.
    pub check_code: String,
    /// The follow-up page's address, the code in its fragment.
    pub follow_url: String,
    pub contact: Option<Contact>,
}

/// One announcement on the ward screen; never a name or protocol number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BoardCall {
    pub ticket: String,
    pub room: String,
    pub colour: Option<ColourId>,
    pub queue: QueueKind,
    #[serde(serialize_with = "text_time::serialize")]
    pub called_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct BoardQueue {
    pub colour: Option<ColourId>,
    pub waiting: usize,
    pub longest_wait_seconds: i64,
    pub overdue: usize,
    /// The earliest `due_at` among the patients waiting here (on the colour's
    /// clock), so a screen can show time left or overdue by; null when empty.
    #[serde(serialize_with = "text_time::option::serialize")]
    pub next_due_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Board {
    pub unit: UnitId,
    #[serde(serialize_with = "text_time::serialize")]
    pub generated_at: DateTime<Utc>,
    pub calls: Vec<BoardCall>,
    pub queues: Vec<BoardQueue>,
}

impl Department {
    /// The maximum wait that applies to a patient, and the deadline it gives.
    pub fn deadline(&self, p: &Patient) -> (TimeDelta, DateTime<Utc>) {
        let colour = p.colour.as_deref().and_then(|c| self.scale.rank(c));
        match colour.and_then(|rank| self.scale.colour(rank)) {
            Some(colour) => {
                let max = colour.max_wait;
                let start = match (self.scale.clock_starts, p.triaged_at) {
                    (ClockStarts::Triage, Some(t)) => t,
                    _ => p.arrived_at,
                };
                (max, start + max)
            }
            None => (
                self.scale.triage_max_wait,
                p.arrived_at + self.scale.triage_max_wait,
            ),
        }
    }

    pub fn view(&self, p: &Patient, now: DateTime<Utc>) -> PatientView {
        let (max_wait, due_at) = self.deadline(p);
        let wait_end = p.wait_ended_at.unwrap_or(now);
        let code = self.check_code(p.protocol);
        PatientView {
            protocol: p.protocol,
            ticket: p.ticket.clone(),
            unit: p.unit.clone(),
            name: p.name.as_str().to_owned(),
            colour: p.colour.clone(),
            status: p.status,
            complaint: p.complaint.clone(),
            triage_note: p.triage_note.clone(),
            birth_date: p.birth_date,
            document: p.document.clone(),
            arrived_at: p.arrived_at,
            admitted_at: p.admitted_at,
            triaged_at: p.triaged_at,
            max_wait_seconds: max_wait.num_seconds(),
            due_at,
            waited_seconds: (wait_end - p.arrived_at).num_seconds().max(0),
            overdue: wait_end >= due_at,
            position: self.position(p),
            room: p.room.clone(),
            called_at: p.called_at,
            no_shows: p.no_shows,
            outcome: p.outcome,
            leave_reason: p.leave_reason,
            closed_at: p.closed_at,
            follow_url: self.follow_url_with(p.protocol, &code),
            check_code: code.as_str().to_owned(),
            contact: p.contact.as_deref().cloned(),
        }
    }

    fn board_queue(
        &self,
        colour: Option<ColourId>,
        max_wait: TimeDelta,
        q: &ArrivalQueue,
        now: DateTime<Utc>,
    ) -> BoardQueue {
        let longest = q
            .peek()
            .map(|(arrived, _)| (now - arrived).num_seconds().max(0))
            .unwrap_or(0);
        let overdue = self.overdue(colour.is_some(), max_wait, q, now);
        let next_due_at = self.next_due(colour.is_some(), max_wait, q);
        BoardQueue {
            colour,
            waiting: q.len(),
            longest_wait_seconds: longest,
            overdue,
            next_due_at,
        }
    }

    /// The earliest deadline in `q`, whose patients all have `max_wait`. A
    /// deadline is never before arrival + `max_wait`, so the walk in arrival
    /// order stops at the first patient who arrived too late to beat the best
    /// found: at once when the clock starts at arrival, after the few re-triaged
    /// ones otherwise.
    fn next_due(
        &self,
        treatment: bool,
        max_wait: TimeDelta,
        q: &ArrivalQueue,
    ) -> Option<DateTime<Utc>> {
        if !treatment || self.scale.clock_starts == ClockStarts::Arrival {
            return q.peek().map(|(arrived, _)| arrived + max_wait);
        }
        let mut best: Option<DateTime<Utc>> = None;
        for (arrived, protocol) in q.keys() {
            if best.is_some_and(|b| *arrived + max_wait >= b) {
                break;
            }
            if let Some(p) = self.patients.get(protocol) {
                let due = self.deadline(p).1;
                best = Some(best.map_or(due, |b| b.min(due)));
            }
        }
        best
    }

    /// How many in `q`, whose patients all have `max_wait`, are past their
    /// deadline. The deadline is the arrival plus `max_wait`, or later when the
    /// clock starts at triage; so only the prefix that arrived `max_wait` ago
    /// can be overdue, and with the clock starting at arrival the prefix is
    /// the answer.
    fn overdue(
        &self,
        treatment: bool,
        max_wait: TimeDelta,
        q: &ArrivalQueue,
        now: DateTime<Utc>,
    ) -> usize {
        let candidates = q.arrived_by(now - max_wait);
        if !treatment || self.scale.clock_starts == ClockStarts::Arrival {
            return candidates;
        }
        q.keys()
            .take(candidates)
            .filter_map(|(_, protocol)| self.patients.get(protocol))
            .filter(|p| self.deadline(p).1 <= now)
            .count()
    }

    /// The waiting-room screen's data: recent calls and counts, no personal data.
    pub fn board(&self, unit_id: &str, now: DateTime<Utc>) -> Result<Board, DomainError> {
        let unit = self.unit(unit_id)?;
        let mut queues: Vec<BoardQueue> = self
            .scale
            .colours
            .iter()
            .zip(unit.treatment.colours())
            .map(|(c, q)| self.board_queue(Some(c.id.clone()), c.max_wait, q, now))
            .collect();
        queues.push(self.board_queue(None, self.scale.triage_max_wait, &unit.triage, now));
        Ok(Board {
            unit: unit.settings.id.clone(),
            generated_at: now,
            calls: unit.calls.iter().cloned().collect(),
            queues,
        })
    }

    /// Per colour in protocol order, then the triage queue (colour `None`):
    /// how many wait and the longest wait in seconds. O(colours).
    pub fn queue_gauges(
        &self,
        unit_id: &str,
        now: DateTime<Utc>,
    ) -> Vec<(Option<ColourId>, usize, i64)> {
        let Ok(unit) = self.unit(unit_id) else {
            return Vec::new();
        };
        let longest = |q: &ArrivalQueue| {
            q.peek()
                .map(|(arrived, _)| (now - arrived).num_seconds().max(0))
                .unwrap_or(0)
        };
        let mut out: Vec<_> = self
            .scale
            .colours
            .iter()
            .zip(unit.treatment.colours())
            .map(|(c, q)| (Some(c.id.clone()), q.len(), longest(q)))
            .collect();
        out.push((None, unit.triage.len(), longest(&unit.triage)));
        out
    }

    /// How many patients wait in a unit's queue, by kind; for metrics and listings.
    pub fn waiting(&self, unit_id: &str, kind: QueueKind) -> Result<usize, DomainError> {
        Ok(self.unit(unit_id)?.waiting(kind))
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
