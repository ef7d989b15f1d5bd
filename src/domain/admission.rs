//! Admission: the checks that need no state, then a protocol number and a
//! ticket at once, then the queue. An `Idempotency-Key` seen within its window
//! answers the first response again.

use std::collections::HashSet;

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Timelike, Utc};
use serde_json::json;

use super::change::{Applied, Change, IdempotencyRecord};
use super::ids::{ColourId, UnitId};
use super::numbering::format_ticket;
use super::patient::{
    blank, stray_control, Contact, Patient, PatientName, Protocol, Status, COMPLAINT_MAX_CHARS,
    DOCUMENT_MAX_CHARS,
};
use super::view::PatientView;
use super::{Department, DomainError};

/// How far in the future an `arrived_at` may be (clock skew between desk and server).
pub const ARRIVAL_FUTURE_TOLERANCE: TimeDelta = TimeDelta::seconds(5);
/// No one alive was born before this; an earlier `birth_date` is mistyped.
const EARLIEST_BIRTH: NaiveDate = NaiveDate::from_ymd_opt(1900, 1, 1).expect("a date");
/// How far back an `arrived_at` may be.
pub const ARRIVAL_MAX_AGE: TimeDelta = TimeDelta::hours(24);
/// How long an `Idempotency-Key` keeps answering with its first response.
pub const IDEMPOTENCY_WINDOW: TimeDelta = TimeDelta::hours(24);
pub const IDEMPOTENCY_KEY_MAX_LEN: usize = 200;

/// An admission as the desk sent it, after the parsing that needs no state.
#[derive(Debug, Clone)]
pub struct Admission {
    pub name: String,
    pub colour: Option<ColourId>,
    pub complaint: Option<String>,
    pub arrived_at: Option<DateTime<Utc>>,
    pub birth_date: Option<NaiveDate>,
    pub document: Option<String>,
    /// Checked where it came in ([`Contact::parse`]).
    pub contact: Option<Contact>,
}

/// What an admission answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Admitted {
    pub protocol: Protocol,
    pub answer: Answer,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// A new patient; serialized by the caller, outside the department's lock.
    New(Box<PatientView>),
    /// An `Idempotency-Key` seen within its window: the first answer's JSON.
    Replay(String),
}

impl Admitted {
    /// The answer's JSON body.
    pub fn to_json(&self) -> String {
        match &self.answer {
            Answer::New(view) => {
                // A view is ~700 bytes: one allocation, not serde_json's
                // 128-byte start doubled four times.
                let mut out = Vec::with_capacity(1024);
                // A view is plain data: serializing it cannot fail, and
                // serde_json writes only UTF-8.
                match serde_json::to_writer(&mut out, view) {
                    Ok(()) => String::from_utf8(out).unwrap_or_default(),
                    Err(_) => String::new(),
                }
            }
            Answer::Replay(json) => json.clone(),
        }
    }
}

impl Department {
    /// The numbers above `above` of unit `ui`'s tickets held by patients in
    /// care, wherever they are now (a transfer keeps the ticket).
    pub(super) fn held_tickets(&self, ui: usize, above: u32) -> HashSet<u32> {
        let mut above_per_unit = vec![u32::MAX; self.units.len()];
        above_per_unit[ui] = above;
        self.held_tickets_of_all(&above_per_unit).swap_remove(ui)
    }

    /// [`Self::held_tickets`] of every unit (above its own number; `u32::MAX`
    /// for none) in one pass over the patients, which at start-up may be a
    /// million: one pass per unit would multiply that.
    pub(super) fn held_tickets_of_all(&self, above: &[u32]) -> Vec<HashSet<u32>> {
        let mut held = vec![HashSet::new(); self.units.len()];
        // Only the units asked about: a new day's rollover asks for one, under
        // the lock, and should not parse every ticket once per unit.
        let asked: Vec<(usize, &str, u32)> = (self.units.iter().enumerate())
            .filter(|&(ui, _)| above[ui] != u32::MAX)
            .map(|(ui, u)| (ui, u.settings.ticket_prefix.as_str(), above[ui]))
            .collect();
        for p in self.patients.values().filter(|p| !p.status.is_terminal()) {
            for &(ui, prefix, above) in &asked {
                let n = p
                    .ticket
                    .strip_prefix(prefix)
                    .and_then(|n| n.parse::<u32>().ok());
                if n.is_some_and(|n| n > above) {
                    held[ui].extend(n);
                }
            }
        }
        held
    }

    /// Registers an arrival: a protocol number and ticket at once, then the queue.
    pub fn admit(
        &mut self,
        unit_id: &UnitId,
        admission: Admission,
        idempotency_key: Option<&str>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Applied<Admitted>, DomainError> {
        let ui = self.unit_idx(unit_id)?;
        // The config's copy, shared by every patient of the unit (see `ids`).
        let unit_id = &self.units[ui].settings.id.clone();
        if let Some(key) = idempotency_key {
            if key.is_empty()
                || key.len() > IDEMPOTENCY_KEY_MAX_LEN
                || !key.bytes().all(|b| b.is_ascii_graphic())
            {
                return Err(DomainError::invalid(
                    "Idempotency-Key",
                    format!(
                        "`Idempotency-Key` must be 1 to {IDEMPOTENCY_KEY_MAX_LEN} visible ASCII characters"
                    ),
                ));
            }
            if let Some(rec) = self.idempotency.get(key) {
                if rec.created_at + IDEMPOTENCY_WINDOW > now {
                    return Ok(Applied {
                        value: Admitted {
                            protocol: rec.protocol,
                            answer: Answer::Replay(rec.response.clone()),
                        },
                        changes: Vec::new(),
                    });
                }
            }
        }
        let name = PatientName::parse_new(&admission.name)
            .map_err(|e| DomainError::invalid("name", e.to_string()))?;
        let colour = match admission.colour {
            Some(c) => Some(self.colour_id(&c)?),
            None => None,
        };
        let max_wait = colour.as_deref().and_then(|c| self.max_wait_seconds(c));
        let arrived_at = match admission.arrived_at {
            // chrono reads second 60 of any minute as a leap second; browsers
            // and most languages cannot read such a time back.
            Some(at) if at.nanosecond() >= 1_000_000_000 => {
                return Err(DomainError::invalid(
                    "arrived_at",
                    "`arrived_at` has second 60, which is not a time",
                ))
            }
            Some(at) if at > now + ARRIVAL_FUTURE_TOLERANCE => {
                return Err(DomainError::invalid(
                    "arrived_at",
                    "`arrived_at` is in the future",
                ))
            }
            Some(at) if at < now - ARRIVAL_MAX_AGE => {
                return Err(DomainError::invalid(
                    "arrived_at",
                    "`arrived_at` is more than 24 hours ago",
                ))
            }
            // Within the tolerance a future arrival is clock skew: it arrived now.
            Some(at) => at.min(now),
            None => now,
        };
        let check_text = |field: &'static str, v: &Option<String>, max: usize, lines: bool| match v
        {
            Some(s) if s.chars().count() > max => Err(DomainError::invalid(
                field,
                format!("`{field}` must be at most {max} characters"),
            )),
            Some(s) if stray_control(s, lines) => Err(DomainError::invalid(
                field,
                format!("`{field}` must not hold control or bidirectional override characters"),
            )),
            _ => Ok(()),
        };
        check_text("complaint", &admission.complaint, COMPLAINT_MAX_CHARS, true)?;
        check_text("document", &admission.document, DOCUMENT_MAX_CHARS, false)?;
        if admission
            .birth_date
            .is_some_and(|b| b > now.with_timezone(&self.tz).date_naive())
        {
            return Err(DomainError::invalid(
                "birth_date",
                "`birth_date` is in the future",
            ));
        }
        if admission.birth_date.is_some_and(|b| b < EARLIEST_BIRTH) {
            return Err(DomainError::invalid(
                "birth_date",
                "`birth_date` is before 1900: a typing error",
            ));
        }

        let local = now.with_timezone(&self.tz);
        let (sequence, protocol) = self
            .sequence
            .peek_next(local.year())
            .map_err(|e| DomainError::Exhausted(e.to_string()))?;
        let day = local.date_naive();
        if day > self.units[ui].tickets.day {
            // A new day starts again at 1: patients still here keep theirs.
            self.units[ui].carried = self.held_tickets(ui, 0);
        }
        let unit = &mut self.units[ui];
        let (mut tickets, mut n) = unit.tickets.peek_next(day);
        while unit.carried.contains(&n) {
            (tickets, n) = tickets.peek_next(day);
        }
        let ticket = format_ticket(&unit.settings.ticket_prefix, n);
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
            unit: unit_id.clone(),
            name,
            triaged_at: colour.as_ref().map(|_| now),
            colour: colour.clone(),
            status,
            complaint: admission.complaint.filter(|c| !blank(c)),
            birth_date: admission.birth_date,
            document: admission.document.filter(|d| !blank(d)),
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
            contact: admission.contact.map(Box::new),
            updated_at: Some(now),
            admitted_unit: Some(unit_id.clone()),
            first_triaged_at: colour.as_ref().map(|_| now),
            classified_max_wait_seconds: max_wait,
            first_call: None,
        };
        self.register(Box::new(patient));

        let mut changes = vec![
            Change::Sequence(sequence),
            Change::Tickets {
                unit: unit_id.clone(),
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
        let admitted = Admitted {
            protocol,
            answer: Answer::New(Box::new(self.view(&self.patients[&protocol], now))),
        };
        if let Some(key) = idempotency_key {
            let rec = IdempotencyRecord {
                key: key.to_owned(),
                created_at: now,
                protocol,
                response: admitted.to_json(),
            };
            self.idempotency.insert(key.to_owned(), rec.clone());
            changes.push(Change::Idempotency(rec));
        }
        Ok(Applied {
            value: admitted,
            changes,
        })
    }
}
