//! The live event streams of the units: the last events of each unit kept for
//! `Last-Event-ID` replay, and a broadcast channel for connected screens. Fed
//! by the journal's commit observer, so a screen never shows an uncommitted change.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::broadcast;

use crate::domain::Change;
use crate::journal::StreamEvent;

/// Events kept per unit for clients that reconnect with `Last-Event-ID`.
pub const REPLAY_EVENTS: usize = 1000;

/// A stream event as every screen gets it, serialized once: with two thousand
/// screens open, serializing per screen was a tenth of the service's work.
#[derive(Debug)]
pub struct LiveEvent {
    pub id: u64,
    /// The SSE `event:` name.
    pub name: String,
    /// The `data:` line: the display event as JSON.
    pub data: String,
}

pub type Live = Arc<LiveEvent>;

impl From<StreamEvent> for LiveEvent {
    fn from(e: StreamEvent) -> Self {
        Self {
            id: e.id,
            data: e.display.to_json(),
            name: e.display.event,
        }
    }
}

struct UnitStream {
    recent: VecDeque<Live>,
    tx: broadcast::Sender<Live>,
}

pub struct EventHub {
    units: HashMap<String, Mutex<UnitStream>>,
}

impl EventHub {
    pub fn new<'a>(units: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            units: units
                .into_iter()
                .map(|u| {
                    let (tx, _) = broadcast::channel(REPLAY_EVENTS);
                    let stream = UnitStream {
                        recent: VecDeque::with_capacity(REPLAY_EVENTS),
                        tx,
                    };
                    (u.to_owned(), Mutex::new(stream))
                })
                .collect(),
        }
    }

    /// Loads a unit's recent events at start-up, oldest first.
    pub fn preload(&self, unit: &str, events: Vec<StreamEvent>) {
        if let Some(s) = self.units.get(unit) {
            let mut s = s.lock();
            // What this instance kept from an earlier term may be stale.
            s.recent.clear();
            for e in events {
                push_recent(&mut s.recent, Arc::new(e.into()));
            }
        }
    }

    /// Publishes the stream events among committed changes.
    pub fn publish(&self, changes: &[&Change]) {
        for change in changes {
            let Change::Event(e) = change else { continue };
            let (Some(display), Some(data), Some(stream)) = (
                &e.display,
                e.display_json(),
                self.units.get(e.unit.as_str()),
            ) else {
                continue;
            };
            // The journal made the JSON when it stored the event.
            let event: Live = Arc::new(LiveEvent {
                id: e.id,
                name: display.event.clone(),
                data: data.to_owned(),
            });
            let mut s = stream.lock();
            push_recent(&mut s.recent, event.clone());
            // No receiver is fine: nobody is watching this unit right now.
            let _ = s.tx.send(event);
        }
    }

    /// Subscribes to a unit and returns, atomically with it, the kept events after `after`.
    pub fn subscribe(
        &self,
        unit: &str,
        after: Option<u64>,
    ) -> Option<(Vec<Live>, broadcast::Receiver<Live>)> {
        let s = self.units.get(unit)?.lock();
        let missed = match after {
            Some(id) => s.recent.iter().filter(|e| e.id > id).cloned().collect(),
            None => Vec::new(),
        };
        Some((missed, s.tx.subscribe()))
    }

    /// Kept events after `after`, for a subscriber that fell behind.
    pub fn since(&self, unit: &str, after: u64) -> Vec<Live> {
        self.units
            .get(unit)
            .map(|s| {
                s.lock()
                    .recent
                    .iter()
                    .filter(|e| e.id > after)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn push_recent(recent: &mut VecDeque<Live>, e: Live) {
    if recent.len() == REPLAY_EVENTS {
        recent.pop_front();
    }
    recent.push_back(e);
}
