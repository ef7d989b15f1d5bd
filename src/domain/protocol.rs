//! The triage scale: colours in order of urgency, each with its maximum wait.

use chrono::TimeDelta;
use serde::Serialize;

use crate::config::{ClockStarts, ProtocolConfig};

/// Index of a colour in the scale; 0 is the most urgent.
pub type Rank = usize;

#[derive(Debug, Clone, Serialize)]
pub struct Colour {
    pub id: String,
    pub label: String,
    #[serde(skip)]
    pub max_wait: TimeDelta,
}

#[derive(Debug, Clone)]
pub struct TriageScale {
    pub name: String,
    pub colours: Vec<Colour>,
    pub triage_max_wait: TimeDelta,
    pub clock_starts: ClockStarts,
}

fn delta(d: std::time::Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

impl TriageScale {
    pub fn from_config(c: &ProtocolConfig) -> Self {
        Self {
            name: c.name.clone(),
            colours: c
                .colours
                .iter()
                .map(|c| Colour {
                    id: c.id.clone(),
                    label: c.label.clone(),
                    max_wait: delta(c.max_wait),
                })
                .collect(),
            triage_max_wait: delta(c.triage_max_wait),
            clock_starts: c.clock_starts,
        }
    }

    pub fn rank(&self, id: &str) -> Option<Rank> {
        self.colours.iter().position(|c| c.id == id)
    }

    pub fn colour(&self, rank: Rank) -> &Colour {
        &self.colours[rank]
    }

    pub fn len(&self) -> usize {
        self.colours.len()
    }

    pub fn is_empty(&self) -> bool {
        self.colours.is_empty()
    }
}
