//! Protocol numbers (global, per year) and tickets (per unit, per local day).
//! Both only ever move forward: if the clock steps back across midnight or New
//! Year, the counters keep their later period instead of reissuing a number.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::patient::Protocol;

/// The last protocol number issued; the next is the year's sequence plus one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtocolSequence {
    pub year: i32,
    pub last: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the protocol sequence of {0} is exhausted")]
pub struct SequenceExhausted(pub i32);

impl ProtocolSequence {
    pub fn new() -> Self {
        Self { year: 0, last: 0 }
    }

    /// The number after the last, for an admission in local `year`.
    pub fn peek_next(&self, year: i32) -> Result<(Self, Protocol), SequenceExhausted> {
        let (year, next) = if year > self.year {
            (year, 1)
        } else {
            (self.year, self.last + 1)
        };
        let protocol = Protocol::new(year, next).ok_or(SequenceExhausted(year))?;
        Ok((Self { year, last: next }, protocol))
    }
}

impl Default for ProtocolSequence {
    fn default() -> Self {
        Self::new()
    }
}

/// A unit's ticket counter for one local day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketCounter {
    pub day: NaiveDate,
    pub last: u32,
}

impl TicketCounter {
    pub fn new() -> Self {
        Self {
            day: NaiveDate::MIN,
            last: 0,
        }
    }

    /// The counter after issuing one ticket on local `day`, and that ticket's number.
    pub fn peek_next(&self, day: NaiveDate) -> (Self, u32) {
        let (day, next) = if day > self.day {
            (day, 1)
        } else {
            (self.day, self.last.saturating_add(1))
        };
        (Self { day, last: next }, next)
    }
}

impl Default for TicketCounter {
    fn default() -> Self {
        Self::new()
    }
}

/// `A001` … `A999`, `A1000`: at least three digits, widening instead of wrapping.
pub fn format_ticket(prefix: &str, n: u32) -> String {
    format!("{prefix}{n:03}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_numbers_are_consecutive_and_restart_each_year() {
        let s = ProtocolSequence::new();
        let (s, a) = s.peek_next(2026).unwrap();
        let (s, b) = s.peek_next(2026).unwrap();
        assert_eq!(a.to_string(), "20260000000000001");
        assert_eq!(b.to_string(), "20260000000000002");
        let (_, c) = s.peek_next(2027).unwrap();
        assert_eq!(c.to_string(), "20270000000000001");
    }

    #[test]
    fn a_clock_that_steps_back_a_year_never_reissues_a_number() {
        let s = ProtocolSequence {
            year: 2027,
            last: 5,
        };
        let (_, p) = s.peek_next(2026).unwrap();
        assert_eq!(p.to_string(), "20270000000000006");
    }

    #[test]
    fn an_exhausted_sequence_is_an_error_not_a_wrap() {
        let s = ProtocolSequence {
            year: 2026,
            last: 9_999_999_999_999,
        };
        assert_eq!(s.peek_next(2026), Err(SequenceExhausted(2026)));
    }

    #[test]
    fn tickets_widen_past_999_and_restart_each_day() {
        let d1 = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
        let d2 = d1.succ_opt().unwrap();
        let c = TicketCounter { day: d1, last: 998 };
        let (c, n) = c.peek_next(d1);
        assert_eq!(format_ticket("A", n), "A999");
        let (c, n) = c.peek_next(d1);
        assert_eq!(format_ticket("A", n), "A1000");
        let (_, n) = c.peek_next(d2);
        assert_eq!(format_ticket("A", n), "A001");
    }
}
