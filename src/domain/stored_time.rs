//! Times in a stored record (`#[serde(with = "stored_time")]`): nanoseconds
//! since the epoch, lossless (arrivals a microsecond apart keep their order).
//! Shorter than RFC 3339 text and read back at start-up without a date
//! parser, which was a tenth of recovery's time. Journals written before
//! keep RFC 3339 text, which is still read. Good until the year 2262.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{self, Visitor};
use serde::{Deserializer, Serializer};

pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    let nanos = t
        .timestamp_nanos_opt()
        .ok_or_else(|| serde::ser::Error::custom(format!("{t} is beyond the year 2262")))?;
    s.serialize_i64(nanos)
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    d.deserialize_any(TimeVisitor)
}

struct TimeVisitor;

impl Visitor<'_> for TimeVisitor {
    type Value = DateTime<Utc>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("nanoseconds since the epoch, or an RFC 3339 time")
    }

    fn visit_i64<E: de::Error>(self, nanos: i64) -> Result<Self::Value, E> {
        Ok(DateTime::from_timestamp_nanos(nanos))
    }

    fn visit_u64<E: de::Error>(self, nanos: u64) -> Result<Self::Value, E> {
        let nanos = i64::try_from(nanos).map_err(|_| E::custom(format!("bad time {nanos}")))?;
        self.visit_i64(nanos)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(E::custom)
    }
}

/// The same for an optional time; `None` is left out of the record
/// (`skip_serializing_if = "Option::is_none"`, `default`).
pub mod option {
    use super::*;

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        d.deserialize_option(OptionVisitor)
    }

    struct OptionVisitor;

    impl<'de> Visitor<'de> for OptionVisitor {
        type Value = Option<DateTime<Utc>>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("null, nanoseconds since the epoch, or an RFC 3339 time")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            super::deserialize(d).map(Some)
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Record {
        #[serde(with = "super")]
        at: DateTime<Utc>,
        #[serde(with = "option", default, skip_serializing_if = "Option::is_none")]
        seen: Option<DateTime<Utc>>,
    }

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 59).unwrap()
            + chrono::TimeDelta::nanoseconds(123_456_789)
    }

    #[test]
    fn times_are_written_as_nanoseconds_and_read_back_exactly() {
        let r = Record {
            at: at(),
            seen: Some(at()),
        };
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(
            text,
            r#"{"at":1798761599123456789,"seen":1798761599123456789}"#
        );
        assert_eq!(serde_json::from_str::<Record>(&text).unwrap(), r);
        let none = Record {
            at: at(),
            seen: None,
        };
        let text = serde_json::to_string(&none).unwrap();
        assert_eq!(text, r#"{"at":1798761599123456789}"#);
        assert_eq!(serde_json::from_str::<Record>(&text).unwrap(), none);
    }

    #[test]
    fn older_records_with_rfc3339_text_and_nulls_still_read() {
        let old = r#"{"at":"2026-12-31T23:59:59.123456789Z","seen":null}"#;
        let r: Record = serde_json::from_str(old).unwrap();
        assert_eq!(
            r,
            Record {
                at: at(),
                seen: None
            }
        );
        let old = r#"{"at":"2026-12-31T20:59:59.123456789-03:00","seen":"2026-12-31T23:59:59.123456789Z"}"#;
        let r: Record = serde_json::from_str(old).unwrap();
        assert_eq!(r.at, at());
        assert_eq!(r.seen, Some(at()));
    }

    #[test]
    fn a_bad_time_is_an_error_not_a_default() {
        assert!(serde_json::from_str::<Record>(r#"{"at":"yesterday"}"#).is_err());
        assert!(serde_json::from_str::<Record>(r#"{"at":true}"#).is_err());
        assert!(serde_json::from_str::<Record>(r#"{"at":18446744073709551615}"#).is_err());
    }
}
