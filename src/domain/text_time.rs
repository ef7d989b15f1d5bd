//! Times in answers and stream events (`#[serde(serialize_with =
//! "text_time::serialize")]`): RFC 3339 text exactly as chrono writes it
//! (`2026-12-03T11:55:03.250Z`, fraction digits only as many as needed), made
//! in a stack buffer. chrono's own path formats through `fmt` one character at
//! a time, each escaped on its way into the JSON: a view's four times were
//! about a tenth of an admission's instructions.

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::{Serialize, Serializer};

/// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`, the longest this writes.
const MAX_LEN: usize = 30;

pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; MAX_LEN];
    match write(t, &mut buf) {
        // Only ASCII digits and separators were written.
        Some(len) => s.serialize_str(std::str::from_utf8(&buf[..len]).unwrap_or_default()),
        // A leap second or a year outside 0..=9999: chrono's own text.
        None => t.serialize(s),
    }
}

/// The same for an optional time (`null` when absent).
pub mod option {
    use super::*;

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::serialize(t, s),
            None => s.serialize_none(),
        }
    }
}

/// Writes the text into `buf` and returns its length; `None` for what only
/// chrono writes (leap seconds, years outside 0..=9999).
fn write(t: &DateTime<Utc>, buf: &mut [u8; MAX_LEN]) -> Option<usize> {
    let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
    let nanos = t.nanosecond();
    if nanos >= 1_000_000_000 {
        return None;
    }
    digits(&mut buf[0..4], year);
    buf[4] = b'-';
    digits(&mut buf[5..7], t.month());
    buf[7] = b'-';
    digits(&mut buf[8..10], t.day());
    buf[10] = b'T';
    digits(&mut buf[11..13], t.hour());
    buf[13] = b':';
    digits(&mut buf[14..16], t.minute());
    buf[16] = b':';
    digits(&mut buf[17..19], t.second());
    // chrono's `SecondsFormat::AutoSi`: none, milli, micro or nano digits.
    let (fraction, width) = match nanos {
        0 => (0, 0),
        n if n % 1_000_000 == 0 => (n / 1_000_000, 3),
        n if n % 1_000 == 0 => (n / 1_000, 6),
        n => (n, 9),
    };
    let mut len = 19;
    if width > 0 {
        buf[len] = b'.';
        digits(&mut buf[len + 1..len + 1 + width], fraction);
        len += 1 + width;
    }
    buf[len] = b'Z';
    Some(len + 1)
}

/// `value` in decimal, zero-padded to fill `out` (also a protocol's 17 digits).
pub(super) fn digits(out: &mut [u8], value: impl Into<u64>) {
    let mut value = value.into();
    for b in out.iter_mut().rev() {
        *b = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone};
    use rand::{Rng, SeedableRng};

    use super::*;

    #[derive(Serialize)]
    struct Fast(#[serde(serialize_with = "serialize")] DateTime<Utc>);

    #[derive(Serialize)]
    struct FastOption(#[serde(serialize_with = "option::serialize")] Option<DateTime<Utc>>);

    fn same_as_chrono(t: DateTime<Utc>) {
        let chrono = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::to_string(&Fast(t)).unwrap(), chrono, "{t:?}");
        assert_eq!(
            serde_json::to_string(&FastOption(Some(t))).unwrap(),
            chrono,
            "{t:?}"
        );
    }

    #[test]
    fn writes_what_chrono_writes() {
        let base = Utc.with_ymd_and_hms(2026, 12, 3, 11, 55, 3).unwrap();
        // Every fraction width, and the boundaries between them.
        for nanos in [
            0,
            1,
            999,
            1_000,
            1_001,
            250_000,
            999_999,
            1_000_000,
            1_000_001,
            250_000_000,
            999_000_000,
            999_999_000,
            999_999_999,
        ] {
            same_as_chrono(base + chrono::TimeDelta::nanoseconds(nanos));
        }
        // The ends of the range written here, and just beyond them.
        for (y, m, d, h, mi, s) in [
            (0, 1, 1, 0, 0, 0),
            (9999, 12, 31, 23, 59, 59),
            (1970, 1, 1, 0, 0, 0),
            (2024, 2, 29, 12, 0, 0),
            (-1, 12, 31, 23, 59, 59),
            (10000, 1, 1, 0, 0, 0),
        ] {
            same_as_chrono(Utc.with_ymd_and_hms(y, m, d, h, mi, s).unwrap());
        }
        // A leap second, which only chrono writes.
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
            .unwrap()
            .and_utc();
        same_as_chrono(leap);
        // Many instants over four centuries, with every kind of fraction.
        let mut rng = rand::rngs::StdRng::seed_from_u64(20261203);
        for _ in 0..20_000 {
            let secs = rng.gen_range(-2_000_000_000i64..12_000_000_000);
            let nanos = match rng.gen_range(0..4) {
                0 => 0,
                1 => rng.gen_range(0..1000) * 1_000_000,
                2 => rng.gen_range(0..1_000_000) * 1_000,
                _ => rng.gen_range(0..1_000_000_000),
            };
            same_as_chrono(DateTime::from_timestamp(secs, nanos).unwrap());
        }
        assert_eq!(serde_json::to_string(&FastOption(None)).unwrap(), "null");
    }
}
