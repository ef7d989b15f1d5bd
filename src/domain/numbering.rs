//! Protocol numbers (global, per year) and tickets (per unit, per local day).
//! Both only ever move forward: if the clock steps back across midnight or New
//! Year, the counters keep their later period instead of reissuing a number.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::patient::Protocol;

/// The last protocol number issued; the next is the year's sequence plus one.
/// Ordered as the numbers it gives: by year, then by sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
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

/// The first instant of local day `d` in `tz`: its midnight, or, where a
/// clock change skips midnight (Chile; Brazil until 2019: 00:00 became
/// 01:00), the first minute of the day that exists. Read as UTC instead, the
/// day began hours early and took in the evening before.
pub fn day_start(d: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let midnight = d.and_time(NaiveTime::MIN);
    (0..=24 * 60)
        .map(|m| midnight + chrono::TimeDelta::minutes(m))
        .find_map(|t| t.and_local_timezone(tz).earliest())
        .map_or_else(|| midnight.and_utc(), |t| t.to_utc())
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

/// Crockford's base32: no I, L, O or U, so a code read aloud or typed is not
/// mistaken for another.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
pub const CHECK_CODE_LEN: usize = 6;

/// The code that proves the holder has the receipt: 6 base32 characters of an
/// HMAC-SHA256 of the protocol number under the installation's secret, so it
/// cannot be computed from the (sequential) protocol number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckCode(String);

impl CheckCode {
    pub fn derive(secret: &[u8], protocol: Protocol) -> Self {
        use hmac::{Hmac, Mac};
        // HMAC takes keys of any length, so this cannot fail.
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap_or_else(|_| {
            Hmac::<sha2::Sha256>::new_from_slice(&[0]).expect("a one-byte key")
        });
        mac.update(protocol.to_string().as_bytes());
        let digest = mac.finalize().into_bytes();
        let bits = u64::from_be_bytes([
            digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
        ]);
        let code = (0..CHECK_CODE_LEN)
            .map(|i| CROCKFORD[((bits >> (59 - 5 * i)) & 31) as usize] as char)
            .collect();
        Self(code)
    }

    /// What a person typed, as the code it stands for: case aside, and `I`/`L`
    /// read as `1`, `O` as `0` (Crockford's decoding); `None` if it cannot be one.
    pub fn parse(typed: &str) -> Option<Self> {
        let code: String = typed
            .trim()
            .chars()
            .map(|c| match c.to_ascii_uppercase() {
                'I' | 'L' => '1',
                'O' => '0',
                c => c,
            })
            .collect();
        let ok = code.len() == CHECK_CODE_LEN && code.bytes().all(|b| CROCKFORD.contains(&b));
        ok.then_some(Self(code))
    }

    /// Compared in constant time, so the time taken says nothing about how
    /// many characters were right.
    pub fn matches(&self, other: &CheckCode) -> bool {
        use subtle::ConstantTimeEq;
        bool::from(self.0.as_bytes().ct_eq(other.0.as_bytes()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
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
    fn a_protocol_is_written_as_its_17_digits_everywhere() {
        for (year, seq, text) in [
            (2026, 42, "20260000000000042"),
            (1000, 1, "10000000000000001"),
            (9999, 9_999_999_999_999, "99999999999999999"),
        ] {
            let p = Protocol::new(year, seq).unwrap();
            assert_eq!(p.to_string(), text);
            assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{text}\""));
            assert_eq!(Protocol::parse(text), Ok(p));
        }
        // Width and alignment still apply, as for any text.
        let p = Protocol::new(2026, 7).unwrap();
        assert_eq!(format!("[{p:>19}]"), "[  20260000000000007]");
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
    fn check_codes_are_keyed_short_and_read_forgivingly() {
        let p = Protocol::new(2026, 42).unwrap();
        let a = CheckCode::derive(b"one secret", p);
        assert_eq!(a.as_str().len(), 6);
        assert!(a.as_str().bytes().all(|b| CROCKFORD.contains(&b)));
        assert_eq!(
            a,
            CheckCode::derive(b"one secret", p),
            "the same every time"
        );
        assert_ne!(a, CheckCode::derive(b"another secret", p), "keyed");
        assert_ne!(
            a,
            CheckCode::derive(b"one secret", Protocol::new(2026, 43).unwrap())
        );
        let typed = CheckCode::parse(&a.as_str().to_lowercase()).unwrap();
        assert!(typed.matches(&a));
        assert_eq!(CheckCode::parse("oil23x").unwrap().as_str(), "01123X");
        assert_eq!(CheckCode::parse("ABC"), None);
        assert_eq!(
            CheckCode::parse("ABCDEU"),
            None,
            "no U in Crockford's alphabet"
        );
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
