//! The pure core: every unit's queues, every patient of the retention window,
//! the numbering, the status machine and the escalation rules. No I/O, no
//! clock and no configuration file: the department is built from its own
//! [`Settings`], and each command takes `now` and returns the [`Change`]s the
//! journal must make durable before anyone is told the command happened.
//!
//! A command checks everything it needs before it changes anything, so a
//! refusal leaves the department as it was.

mod admission;
mod alerts;
mod change;
mod department;
pub mod escalation;
mod estimate;
mod follow;
pub mod ids;
mod lifecycle;
mod notify;
pub mod numbering;
pub mod patient;
pub mod queue;
mod registry;
mod scale;
mod stored_time;
mod text_time;
mod unit;
mod view;

use chrono::TimeDelta;
use chrono_tz::Tz;

pub use admission::{Admission, Admitted, Answer};
pub use change::{
    Applied, Change, DeliveryOutcome, DisplayEvent, FeedBatch, IdempotencyRecord, Outbox,
    PatientBatch, PatientFeed, RecentFact, Snapshot,
};
pub use department::Department;
pub use escalation::{Ladder, Level};
pub use estimate::WaitEstimate;
pub use follow::FollowView;
pub use ids::{ColourId, IdError, UnitId};
pub use notify::{Channel, Message, NotifyEvent, NotifySettings};
pub use numbering::CheckCode;
pub use scale::{ClockStarts, Colour, TriageScale};
pub use unit::{UnitSettings, BOARD_CALLS};
pub use view::{Board, BoardCall, PatientView};

use patient::{Protocol, Status};

/// The actor of changes the service makes on its own.
pub const SYSTEM_ACTOR: &str = "system";

/// What the department is made of: its scale, escalation ladder, units, time
/// zone and retention.
#[derive(Debug, Clone)]
pub struct Settings {
    pub scale: TriageScale,
    pub ladder: Ladder,
    pub units: Vec<UnitSettings>,
    /// For the year of protocol numbers and the day of tickets.
    pub time_zone: Tz,
    /// How long finished and left patients are kept.
    pub retention: TimeDelta,
    /// What follow-up links start with (`https://triagem.hospital.example`).
    pub public_url: String,
    /// The check codes' secret when the config sets one; else the journal's.
    pub check_secret: Option<Vec<u8>>,
    pub notify: NotifySettings,
}

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
    /// Well-formed but not acceptable; `field` names what to correct.
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    Exhausted(String),
}

#[cfg(test)]
mod tests;

impl DomainError {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        DomainError::Invalid {
            field,
            message: message.into(),
        }
    }
}
