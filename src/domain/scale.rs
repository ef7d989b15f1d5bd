//! The triage scale: colours in order of urgency, each with its maximum wait.

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

use super::ids::ColourId;

/// When a colour's maximum wait starts counting: at classification (a
/// re-triage restarts it, as in Manchester practice) or at arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClockStarts {
    #[default]
    Triage,
    Arrival,
}

/// Index of a colour in the scale; 0 is the most urgent.
pub type Rank = usize;

#[derive(Debug, Clone, Serialize)]
pub struct Colour {
    pub id: ColourId,
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

impl TriageScale {
    pub fn rank(&self, id: &str) -> Option<Rank> {
        self.colours.iter().position(|c| c.id == id)
    }

    /// The colour of a rank; ranks come from [`TriageScale::rank`].
    pub fn colour(&self, rank: Rank) -> Option<&Colour> {
        self.colours.get(rank)
    }

    pub fn len(&self) -> usize {
        self.colours.len()
    }

    pub fn is_empty(&self) -> bool {
        self.colours.is_empty()
    }
}
