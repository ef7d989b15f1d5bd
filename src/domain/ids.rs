//! The ids a config gives its units and colours (`pa`, `yellow`): parsed once,
//! at the edge (config file, request path or body, journal), then carried as
//! their own types so a unit id is never mistaken for a colour or a room.
//! Shared text (`Arc<str>`): every waiting patient holds a few of them, and
//! the department hands out the config's own copy, so a million patients
//! share one allocation per id instead of holding five each.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The longest id; keeps labels and metric values sane.
pub const ID_MAX_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an id: 1 to {ID_MAX_LEN} lowercase letters, digits, `-` or `_`")]
pub struct IdError(pub String);

fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= ID_MAX_LEN
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Deserializes a `T` from a string through `parse`, reading the string in
/// place: no `String` allocated only to be parsed and dropped, which start-up
/// did several times for each of a million records.
pub(crate) fn from_str_with<'de, D, T, E>(
    d: D,
    expecting: &'static str,
    parse: fn(&str) -> Result<T, E>,
) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    E: fmt::Display,
{
    struct Visitor<T, E>(&'static str, fn(&str) -> Result<T, E>);
    impl<T, E: fmt::Display> serde::de::Visitor<'_> for Visitor<T, E> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_str<Er: serde::de::Error>(self, v: &str) -> Result<T, Er> {
            (self.1)(v).map_err(Er::custom)
        }
    }
    d.deserialize_str(Visitor(expecting, parse))
}

/// The id `s` as shared text, from a small per-thread list of the ids seen
/// so far: a journal of a million patients names a handful of units and
/// colours, and reading each as a fresh allocation (then dropping it for the
/// config's copy) was a fifth of the reader thread's work at start-up.
fn shared(s: &str) -> Result<Arc<str>, IdError> {
    /// Ids are a config's few; a stream of different ones just stops being kept.
    const KEPT: usize = 64;
    thread_local! {
        static SEEN: std::cell::RefCell<Vec<Arc<str>>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    if !is_id(s) {
        return Err(IdError(s.to_owned()));
    }
    Ok(SEEN.with_borrow_mut(|seen| {
        if let Some(id) = seen.iter().find(|id| &***id == s) {
            return id.clone();
        }
        let id: Arc<str> = Arc::from(s);
        if seen.len() < KEPT {
            seen.push(id.clone());
        }
        id
    }))
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $example:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(into = "String")]
        pub struct $name(Arc<str>);

        /// Read through [`shared`]: no allocation for an id seen before.
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                from_str_with(d, "an id", |s| shared(s).map($name))
            }
        }

        impl $name {
            pub fn parse(s: &str) -> Result<Self, IdError> {
                if is_id(s) {
                    Ok(Self(Arc::from(s)))
                } else {
                    Err(IdError(s.to_owned()))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                if is_id(&s) {
                    Ok(Self(Arc::from(s)))
                } else {
                    Err(IdError(s))
                }
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.0.to_string()
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                &*self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                &*self.0 == *other
            }
        }

        /// Read-only access as text (lookups, labels, SQL); building one
        /// still goes through `parse`.
        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::Type::String)
                    .pattern(Some("^[a-z0-9_-]{1,64}$"))
                    .examples([serde_json::json!($example)])
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

id_type!(
    /// A care unit's id (`units[].id`).
    UnitId,
    "pa"
);
id_type!(
    /// A colour's id in the triage scale (`protocol.colours[].id`).
    ColourId,
    "yellow"
);

/// Test shorthand: an id known to be well-formed.
#[cfg(test)]
pub(crate) fn unit_id(s: &str) -> UnitId {
    UnitId::parse(s).expect("a unit id")
}

/// Test shorthand: an id known to be well-formed.
#[cfg(test)]
pub(crate) fn colour_id(s: &str) -> ColourId {
    ColourId::parse(s).expect("a colour id")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_short_lowercase_words() {
        assert_eq!(UnitId::parse("pa").unwrap().as_str(), "pa");
        assert!(ColourId::parse("light-blue_2").is_ok());
        for bad in ["", "PA", "sala 1", "a/b", &"x".repeat(65)] {
            assert!(UnitId::parse(bad).is_err(), "{bad:?}");
        }
        let json: Result<ColourId, _> = serde_json::from_str("\"Red\"");
        assert!(json.is_err(), "checked when read, too");
    }
}
