//! What a command returns: its answer and the durable facts ([`Change`]s)
//! the journal must commit before anyone is told; and what the journal hands
//! back at start-up ([`Snapshot`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::escalation::{Alert, AlertKind, AlertState, Notification};
use super::ids::{ColourId, UnitId};
use super::notify::{Channel, Message, NotifyEvent};
use super::numbering::{ProtocolSequence, TicketCounter};
use super::patient::{Patient, Protocol, QueueKind, Status};
use super::view::BoardCall;

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
    Event(Box<AuditEvent>),
    Sequence(ProtocolSequence),
    Tickets {
        unit: UnitId,
        counter: TicketCounter,
    },
    Idempotency(IdempotencyRecord),
    Alert(Box<Alert>),
    /// A message to a patient, for the outbox of its channel.
    Message(Box<Message>),
    /// An alert notification to send to every webhook receiver.
    Notify(Box<Notification>),
    /// The result of delivering one outbox entry.
    Delivery {
        outbox: Outbox,
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

/// Which outbox an entry is in: the alert webhooks', or the patients' messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outbox {
    Webhook,
    Message {
        channel: Channel,
        event: NotifyEvent,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum DeliveryOutcome {
    /// Still to be tried again (the attempt count moved on).
    Pending,
    Delivered,
    /// The receiver refused it (4xx); never retried.
    Failed,
}

impl DeliveryOutcome {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// An entry of a patient's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Global, increasing; also the `id:` of the event stream.
    pub id: u64,
    pub protocol: Protocol,
    pub unit: UnitId,
    pub at: DateTime<Utc>,
    pub event: String,
    pub actor: String,
    pub details: serde_json::Value,
    /// What the unit's event stream shows of this event (no names, no protocol).
    pub display: Option<DisplayEvent>,
    /// `display` as JSON, made once: the journal stores the same text the
    /// event stream sends.
    #[serde(skip)]
    pub display_json: JsonMemo,
}

impl AuditEvent {
    /// `display` as JSON.
    pub fn display_json(&self) -> Option<&str> {
        let display = self.display.as_ref()?;
        Some(self.display_json.0.get_or_init(|| display.to_json()))
    }
}

impl DisplayEvent {
    /// The `data:` of its server-sent event, and what the journal keeps of it.
    pub fn to_json(&self) -> String {
        // Plain data: serializing it cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}

/// A value's JSON text kept beside it once made. It is a cache, not data:
/// any two compare equal.
#[derive(Debug, Clone, Default)]
pub struct JsonMemo(std::sync::OnceLock<String>);

impl PartialEq for JsonMemo {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// One server-sent event of a unit's stream (never a name or protocol number).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DisplayEvent {
    /// The SSE `event:` name.
    pub event: String,
    pub ticket: String,
    pub colour: Option<ColourId>,
    pub status: Status,
    pub room: Option<String>,
    pub queue: Option<QueueKind>,
    #[serde(serialize_with = "super::text_time::serialize")]
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
    /// The first answer's JSON, as sent: a replay sends the same bytes.
    pub response: String,
}

/// What the journal hands back at start-up.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub patients: PatientFeed,
    pub sequence: Option<ProtocolSequence>,
    pub tickets: Vec<(String, TicketCounter)>,
    pub idempotency: Vec<IdempotencyRecord>,
    /// Recent calls per unit, oldest first.
    pub calls: Vec<(String, BoardCall)>,
    /// Every alert not yet purged.
    pub alerts: Vec<Alert>,
    pub last_alert_id: u64,
    pub last_event_id: u64,
    /// The check codes' secret the journal keeps.
    pub check_secret: Vec<u8>,
    /// Recent calls and entries per unit, oldest first, for wait estimates.
    pub recent: Vec<(String, DateTime<Utc>, RecentFact)>,
}

/// A snapshot's patients: a list, or batches read and decoded on another
/// thread while the caller rebuilds the queues from the batches before
/// (start-up with a million waiting is then about as long as the slower of the
/// two, not their sum). Each record comes boxed, as the registry keeps it.
#[derive(Debug)]
pub struct PatientFeed(Feed);

/// One batch of the feed.
pub type PatientBatch = Vec<Box<Patient>>;

/// A batch as the reading thread hands it over: what taking it returns. The
/// reader either decoded it already or leaves the decoding to the taker,
/// whichever thread would otherwise wait; an `Err` (the reader's message)
/// ends the feed.
pub type FeedBatch = Box<dyn FnOnce() -> Result<PatientBatch, String> + Send>;

#[derive(Debug)]
enum Feed {
    List(PatientBatch),
    Batches(std::sync::mpsc::Receiver<FeedBatch>),
}

impl PatientFeed {
    /// Batches as they arrive.
    pub fn from_batches(rx: std::sync::mpsc::Receiver<FeedBatch>) -> Self {
        Self(Feed::Batches(rx))
    }

    pub fn batches(self) -> impl Iterator<Item = Result<PatientBatch, String>> {
        let (list, rx) = match self.0 {
            Feed::List(list) => (Some(Ok(list)), None),
            Feed::Batches(rx) => (None, Some(rx)),
        };
        list.into_iter()
            .chain(rx.into_iter().flatten().map(|take| take()))
    }

    /// Every patient (tests, tools).
    pub fn into_vec(self) -> Result<Vec<Patient>, String> {
        let mut all = Vec::new();
        for batch in self.batches() {
            all.extend(batch?.into_iter().map(|p| *p));
        }
        Ok(all)
    }
}

impl Default for PatientFeed {
    fn default() -> Self {
        Self(Feed::List(Vec::new()))
    }
}

impl FromIterator<Patient> for PatientFeed {
    fn from_iter<I: IntoIterator<Item = Patient>>(iter: I) -> Self {
        Self(Feed::List(iter.into_iter().map(Box::new).collect()))
    }
}

impl From<PatientBatch> for PatientFeed {
    fn from(list: PatientBatch) -> Self {
        Self(Feed::List(list))
    }
}

/// A past event as wait estimates need it.
#[derive(Debug, Clone, PartialEq)]
pub enum RecentFact {
    Called {
        queue: QueueKind,
        colour: Option<ColourId>,
    },
    /// A classified patient joined the treatment queue.
    Entered { colour: ColourId },
}
