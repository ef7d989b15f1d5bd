//! A care unit: its settings, its two queues, its ticket counter and the
//! calls its ward screen shows.

use std::collections::{HashSet, VecDeque};

use serde::{Deserialize, Serialize};

use super::estimate::Recent;
use super::ids::UnitId;
use super::numbering::TicketCounter;
use super::patient::QueueKind;
use super::queue::{ArrivalQueue, TreatmentQueue};
use super::view::BoardCall;

/// How many calls the display board remembers per unit.
pub const BOARD_CALLS: usize = 10;

/// A unit as configured (`[[units]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitSettings {
    pub id: UnitId,
    pub name: String,
    pub ticket_prefix: String,
    pub rooms: Vec<String>,
    /// The rooms (among `rooms`) that serve the triage queue; the pages offer
    /// them for triage calls and the others for treatment calls.
    #[serde(default)]
    pub triage_rooms: Vec<String>,
    /// The no-show that reaches this many makes the patient `left`.
    #[serde(default = "UnitSettings::default_max_no_shows")]
    pub max_no_shows: u32,
}

impl UnitSettings {
    fn default_max_no_shows() -> u32 {
        3
    }
}

#[derive(Debug, Clone)]
pub struct Unit {
    pub settings: UnitSettings,
    pub(super) triage: ArrivalQueue,
    pub(super) treatment: TreatmentQueue,
    pub(super) tickets: TicketCounter,
    /// Numbers of this unit's tickets still held by patients in care that the
    /// counter will reach again (issued on an earlier day, or above the
    /// counter after a restart): they are skipped, so no two patients present
    /// answer to the same ticket. Usually empty.
    pub(super) carried: HashSet<u32>,
    /// Newest first, at most [`BOARD_CALLS`].
    pub(super) calls: VecDeque<BoardCall>,
    /// Recent calls and entries, for wait estimates.
    pub(super) recent: Recent,
}

impl Unit {
    pub(super) fn new(settings: UnitSettings, colours: usize) -> Self {
        Self {
            settings,
            triage: ArrivalQueue::default(),
            treatment: TreatmentQueue::new(colours),
            tickets: TicketCounter::new(),
            carried: HashSet::new(),
            calls: VecDeque::with_capacity(BOARD_CALLS),
            recent: Recent::default(),
        }
    }

    pub(super) fn announce(&mut self, call: BoardCall) {
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
