//! Messages to patients who consented: what the department decides to send
//! (who, on which channel, about what); the outbox renders and delivers them.

use serde::{Deserialize, Serialize};

use super::change::Change;
use super::ids::UnitId;
use super::patient::{Patient, Protocol, Status};
use super::Department;

/// The events a patient may be sent a message about.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum NotifyEvent {
    Admitted,
    Called,
    Finished,
}

impl NotifyEvent {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Channel {
    Email,
    Sms,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Which events send messages, and which channels the service has.
#[derive(Debug, Clone, Default)]
pub struct NotifySettings {
    pub on: Vec<NotifyEvent>,
    pub email: bool,
    pub sms: bool,
}

/// One message to send, with all it says: the outbox renders the text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub protocol: Protocol,
    pub unit: UnitId,
    pub channel: Channel,
    /// The phone number or e-mail address.
    pub to: String,
    pub event: NotifyEvent,
    pub ticket: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    pub follow_url: String,
}

impl Department {
    /// The messages `event` sends to this patient: one per configured channel
    /// the patient gave, only with consent.
    pub(super) fn messages(&self, p: &Patient, event: NotifyEvent) -> Vec<Change> {
        let Some(contact) = p.contact.as_ref().filter(|c| c.consent) else {
            return Vec::new();
        };
        if !self.notify.on.contains(&event) {
            return Vec::new();
        }
        let channels = [
            (Channel::Email, self.notify.email, contact.email.as_ref()),
            (Channel::Sms, self.notify.sms, contact.phone.as_ref()),
        ];
        channels
            .into_iter()
            .filter_map(|(channel, configured, to)| Some((channel, to.filter(|_| configured)?)))
            .map(|(channel, to)| {
                Change::Message(Box::new(Message {
                    protocol: p.protocol,
                    unit: p.unit.clone(),
                    channel,
                    to: to.clone(),
                    event,
                    ticket: p.ticket.clone(),
                    room: p.room.clone(),
                    follow_url: self.follow_url(p.protocol),
                }))
            })
            .collect()
    }

    /// Whether a message not yet sent still says something true. A call
    /// notice is, only while the patient is still called to that room (the
    /// triage room or a treatment room): sent
    /// after a receiver's outage, "go to room 1" would reach a patient already
    /// seen, back in the queue, elsewhere, or gone.
    pub fn message_current(&self, m: &Message) -> bool {
        if m.event != NotifyEvent::Called {
            return true;
        }
        // Called to the triage room is `in_triage`: a call all the same.
        self.patient(m.protocol).is_ok_and(|p| {
            matches!(p.status, Status::Called | Status::InTriage)
                && p.unit == m.unit
                && p.room == m.room
        })
    }
}
