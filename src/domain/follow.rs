//! The patient's side of the protocol: the check code that proves the holder
//! has the receipt, the link that carries it, and what the holder may see.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::estimate::WaitEstimate;
use super::ids::{ColourId, UnitId};
use super::numbering::CheckCode;
use super::patient::{Patient, Protocol, QueueKind, Status};
use super::Department;

/// What the holder of a receipt sees: their own case, and nothing about
/// anyone else (no name, complaint, document, contact or outcome).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FollowView {
    pub protocol: Protocol,
    pub ticket: String,
    pub unit: UnitId,
    pub unit_name: String,
    pub status: Status,
    pub colour: Option<ColourId>,
    pub colour_label: Option<String>,
    /// 1-based place in the queue; null outside one.
    pub position: Option<usize>,
    /// How many are called before; null outside a queue.
    pub ahead: Option<usize>,
    /// A range, not a promise; null when it cannot be honest.
    pub estimated_wait: Option<WaitEstimate>,
    /// While in triage, called or in treatment.
    pub room: Option<String>,
    pub called_at: Option<DateTime<Utc>>,
    pub arrived_at: DateTime<Utc>,
    pub triaged_at: Option<DateTime<Utc>>,
    /// When the patient finished or left.
    pub closed_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// The service's time zone (IANA), so the page shows the times of the
    /// receipt and the screens whatever zone the phone is set to.
    #[schema(example = "America/Sao_Paulo")]
    pub timezone: &'static str,
}

impl Department {
    pub fn check_code(&self, protocol: Protocol) -> CheckCode {
        CheckCode::derive(&self.check_key, protocol)
    }

    /// The follow-up page's address, the code in the fragment: browsers never
    /// send a fragment to servers, proxies or their logs.
    pub fn follow_url(&self, protocol: Protocol) -> String {
        self.follow_url_with(protocol, &self.check_code(protocol))
    }

    /// [`Self::follow_url`] with the code already derived (a view shows both).
    pub(super) fn follow_url_with(&self, protocol: Protocol, code: &CheckCode) -> String {
        format!("{}/p/{protocol}#{}", self.public_url, code.as_str())
    }

    /// The follow-up view, for whoever holds the right code. An unknown
    /// protocol and a missing or wrong code all give `None`, after the same work.
    pub fn follow(
        &self,
        protocol: Protocol,
        code: Option<&str>,
        now: DateTime<Utc>,
    ) -> Option<FollowView> {
        let expected = self.check_code(protocol);
        let typed = code.and_then(CheckCode::parse);
        let holds = typed.is_some_and(|t| t.matches(&expected));
        let p = self.patients.get(&protocol);
        match (holds, p) {
            (true, Some(p)) => Some(self.follow_view(p, now)),
            _ => None,
        }
    }

    fn follow_view(&self, p: &Patient, now: DateTime<Utc>) -> FollowView {
        let position = self.position(p);
        let in_room = matches!(
            p.status,
            Status::InTriage | Status::Called | Status::InTreatment
        );
        let colour_label = p
            .colour
            .as_deref()
            .and_then(|c| self.scale.rank(c))
            .and_then(|r| self.scale.colour(r))
            .map(|c| c.label.clone());
        FollowView {
            protocol: p.protocol,
            ticket: p.ticket.clone(),
            unit: p.unit.clone(),
            // A unit since removed from the config (a closed visit): its id.
            unit_name: self
                .unit(&p.unit)
                .map_or_else(|_| p.unit.to_string(), |u| u.settings.name.clone()),
            status: p.status,
            colour: p.colour.clone(),
            colour_label,
            position,
            ahead: position.map(|n| n - 1),
            estimated_wait: self.estimate(p, now),
            room: if in_room { p.room.clone() } else { None },
            called_at: if in_room { p.called_at } else { None },
            arrived_at: p.arrived_at,
            triaged_at: p.triaged_at,
            closed_at: p.closed_at,
            updated_at: p.updated_at.unwrap_or(p.admitted_at),
            timezone: self.tz.name(),
        }
    }

    /// The wait estimate of a queued patient (see [`super::estimate`]).
    pub fn estimate(&self, p: &Patient, now: DateTime<Utc>) -> Option<WaitEstimate> {
        let unit = self.unit(&p.unit).ok()?;
        let ahead = self.position(p)?.checked_sub(1)?;
        match p.status.queue()? {
            QueueKind::Triage => unit.recent.triage(ahead, now),
            QueueKind::Treatment => {
                let rank = self.scale.rank(p.colour.as_deref()?)?;
                unit.recent.treatment(rank, ahead, now)
            }
        }
    }
}
