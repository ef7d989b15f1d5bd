//! A patient's record and the values it is made of, each parsed once at the edge.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ids::{ColourId, UnitId};
use super::stored_time;

/// Digits of the per-year sequence inside a protocol number.
pub const SEQUENCE_DIGITS: u32 = 13;
const SEQUENCE_SPAN: u64 = 10u64.pow(SEQUENCE_DIGITS);
pub const NAME_MAX_CHARS: usize = 200;
pub const COMPLAINT_MAX_CHARS: usize = 1000;
pub const DOCUMENT_MAX_CHARS: usize = 32;
pub const NOTE_MAX_CHARS: usize = 1000;

/// A protocol number: the 4-digit year then a 13-digit sequence, always 17 digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Protocol(u64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a protocol number is exactly 17 digits: the year then a 13-digit sequence")]
pub struct ProtocolParseError;

impl Protocol {
    /// `None` when the year is not four digits or the sequence overflows 13 digits.
    pub fn new(year: i32, sequence: u64) -> Option<Self> {
        if !(1000..=9999).contains(&year) || sequence == 0 || sequence >= SEQUENCE_SPAN {
            return None;
        }
        Some(Self(year as u64 * SEQUENCE_SPAN + sequence))
    }

    pub fn parse(s: &str) -> Result<Self, ProtocolParseError> {
        if s.len() != 17 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ProtocolParseError);
        }
        let n: u64 = s.parse().map_err(|_| ProtocolParseError)?;
        let year = (n / SEQUENCE_SPAN) as i32;
        Self::new(year, n % SEQUENCE_SPAN).ok_or(ProtocolParseError)
    }

    pub fn year(self) -> i32 {
        (self.0 / SEQUENCE_SPAN) as i32
    }

    pub fn sequence(self) -> u64 {
        self.0 % SEQUENCE_SPAN
    }

    pub fn as_u64(self) -> u64 {
        self.0
    }

    pub fn from_u64(n: u64) -> Option<Self> {
        Self::new((n / SEQUENCE_SPAN) as i32, n % SEQUENCE_SPAN)
    }

    /// The 17 digits, written without `fmt`'s padding machinery (a protocol
    /// is in every answer, record and link).
    fn digits(self) -> [u8; 17] {
        let mut out = [0; 17];
        super::text_time::digits(&mut out, self.0);
        out
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only ASCII digits.
        f.pad(std::str::from_utf8(&self.digits()).unwrap_or_default())
    }
}

impl FromStr for Protocol {
    type Err = ProtocolParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// In the API a protocol number is a string of exactly 17 digits.
impl utoipa::PartialSchema for Protocol {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .pattern(Some(PROTOCOL_PATTERN))
            .description(Some(
                "Protocol number: the 4-digit year of admission then a 13-digit sequence",
            ))
            .examples([serde_json::json!("20260000000000042")])
            .into()
    }
}

impl utoipa::ToSchema for Protocol {}

/// The shape of a protocol number, as a regular expression (for the API document).
pub const PROTOCOL_PATTERN: &str = "^[0-9]{17}$";

impl Serialize for Protocol {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(std::str::from_utf8(&self.digits()).unwrap_or_default())
    }
}

impl<'de> Deserialize<'de> for Protocol {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::ids::from_str_with(d, "a protocol number", Self::parse)
    }
}

/// A patient's name as the desk typed it, trimmed, 1 to 200 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub struct PatientName(String);

impl<'de> Deserialize<'de> for PatientName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::ids::from_str_with(d, "a name", Self::parse)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`name` must be 1 to {NAME_MAX_CHARS} characters after trimming")]
pub struct NameError;

/// Why a name given at the desk was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainNameError {
    #[error("`name` must be 1 to {NAME_MAX_CHARS} characters after trimming, without control characters")]
    Length,
    #[error("`name` must have a visible character")]
    Blank,
    #[error("`name` must not hold bidirectional embedding, override or isolate characters")]
    Reorders,
}

/// Free text as a person typed it holds no control character but, where
/// `lines`, a line break or tab (a form's text area sends those), and no
/// bidirectional override: a NUL or an escape sequence would reach screens,
/// exports and terminals as it is, and an override reorders what follows it
/// on a screen (an acknowledgement's name read as another's).
pub fn stray_control(s: &str, lines: bool) -> bool {
    s.chars()
        .any(|c| (c.is_control() && !(lines && matches!(c, '\n' | '\r' | '\t'))) || reorders(c))
}

/// Text nothing of which draws: spaces, zero-width characters, marks.
pub fn blank(s: &str) -> bool {
    s.chars().all(|c| c.is_whitespace() || invisible(c))
}

/// Characters that draw nothing (zero-width spaces and joiners, the byte
/// order mark, the soft hyphen, bidirectional marks): a name of only these is
/// blank on every screen.
fn invisible(c: char) -> bool {
    reorders(c)
        || matches!(c, '\u{ad}' | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{2060}'..='\u{2064}' | '\u{feff}')
}

/// Bidirectional embeddings, overrides and isolates: they reorder the text
/// that follows, so a name on a screen could read as another. Right-to-left
/// names need none of them (the bidirectional algorithm orders their letters).
fn reorders(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

impl PatientName {
    /// A name given at the desk: as [`PatientName::parse`], and also legible:
    /// some character that draws, none that reorders the text. (Records read
    /// back from the journal go through `parse` only, so that a name stored
    /// before this rule never stops a start.)
    pub fn parse_new(s: &str) -> Result<Self, DomainNameError> {
        let name = Self::parse(s).map_err(|_| DomainNameError::Length)?;
        if blank(&name.0) {
            return Err(DomainNameError::Blank);
        }
        if name.0.chars().any(reorders) {
            return Err(DomainNameError::Reorders);
        }
        Ok(name)
    }

    pub fn parse(s: &str) -> Result<Self, NameError> {
        let t = s.trim();
        let n = t.chars().count();
        if n == 0 || n > NAME_MAX_CHARS || t.chars().any(char::is_control) {
            return Err(NameError);
        }
        Ok(Self(t.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How to reach a patient, and whether they agreed to be messaged. Staff see
/// it; it never reaches a display, an event, a metric or a log, and it goes
/// with the patient's record when that is purged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Contact {
    /// E.164: `+`, country code and number, 8 to 15 digits (`+5511987654321`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "+5511987654321")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "maria@example.com")]
    pub email: Option<String>,
    /// Messages are sent only with consent.
    #[serde(default)]
    pub consent: bool,
}

/// Why a contact was refused: the field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` {message}")]
pub struct ContactError {
    pub field: &'static str,
    pub message: &'static str,
}

impl Contact {
    /// Checks a contact as given at admission; blank values count as left out.
    pub fn parse(
        phone: Option<&str>,
        email: Option<&str>,
        consent: bool,
    ) -> Result<Self, ContactError> {
        let phone = phone.map(str::trim).filter(|p| !p.is_empty());
        let email = email.map(str::trim).filter(|e| !e.is_empty());
        if let Some(p) = phone {
            let digits = p.strip_prefix('+').unwrap_or("");
            let ok = (8..=15).contains(&digits.len())
                && digits.bytes().all(|b| b.is_ascii_digit())
                && !digits.starts_with('0');
            if !ok {
                return Err(ContactError {
                    field: "contact.phone",
                    message: "must be in E.164 form: +, country code and number, 8 to 15 digits",
                });
            }
        }
        if let Some(e) = email {
            // Sending one needs SMTPUTF8, which many servers lack: the
            // message would never leave, so the desk hears it now.
            if !e.is_ascii() {
                return Err(ContactError {
                    field: "contact.email",
                    message: "must be written without accents or other non-ASCII characters",
                });
            }
            if !is_email(e) {
                return Err(ContactError {
                    field: "contact.email",
                    message: "must be an e-mail address such as maria@example.com",
                });
            }
        }
        Ok(Self {
            phone: phone.map(str::to_owned),
            email: email.map(str::to_owned),
            consent,
        })
    }
}

/// An address the e-mail channel can deliver to: `local@domain.tld` by the
/// grammar the sender's parser checks (`email_address`, which lettre uses),
/// at most 254 characters. Quoted local parts and IP literals are legal but
/// no desk types one; some servers mishandle them.
fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    s.len() <= 254
        && !local.starts_with('"')
        && !domain.starts_with('[')
        && domain.contains('.')
        && email_address::EmailAddress::is_valid_local_part(local)
        && email_address::EmailAddress::is_valid_domain(domain)
}

/// The first call of a visit to the treatment queue: when, the colour then, when
/// that colour's clock had started, and the maximum wait in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirstCall {
    #[serde(with = "stored_time")]
    pub at: DateTime<Utc>,
    pub colour: Option<ColourId>,
    #[serde(with = "stored_time")]
    pub clock_start: DateTime<Utc>,
    pub max_wait_seconds: i64,
}

/// Text as a search compares it: accents dropped, lower case, single spaces
/// (`José  da Conceição` → `jose da conceicao`).
pub fn search_key(text: &str) -> String {
    if !text.is_ascii() {
        return unicode_key(text);
    }
    // Nothing to decompose: the same key without the Unicode tables (the
    // journal writes it with every record).
    let mut key = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !key.is_empty() {
            key.push(' ');
        }
        key.extend(word.chars().map(|c| c.to_ascii_lowercase()));
    }
    key
}

fn unicode_key(text: &str) -> String {
    use unicode_normalization::char::is_combining_mark;
    use unicode_normalization::UnicodeNormalization;
    let folded: String = text
        .nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A document number as a search compares it: letters and digits only, upper
/// case (`123.456.789-09` → `12345678909`).
pub fn document_key(text: &str) -> String {
    text.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

impl TryFrom<String> for PatientName {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, NameError> {
        Self::parse(&s)
    }
}

impl From<PatientName> for String {
    fn from(n: PatientName) -> Self {
        n.0
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
    utoipa::ToSchema,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Status {
    AwaitingTriage,
    InTriage,
    Waiting,
    Called,
    InTreatment,
    Finished,
    Left,
}

impl Status {
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Finished | Status::Left)
    }

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The queue a patient in this status sits in, if any.
    pub fn queue(self) -> Option<QueueKind> {
        match self {
            Status::AwaitingTriage => Some(QueueKind::Triage),
            Status::Waiting => Some(QueueKind::Treatment),
            _ => None,
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum QueueKind {
    #[default]
    Treatment,
    Triage,
}

impl QueueKind {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueKind::Treatment => "treatment",
            QueueKind::Triage => "triage",
        }
    }
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Outcome {
    Discharged,
    Admitted,
    Transferred,
    Deceased,
}

impl Outcome {
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
    Default,
    utoipa::ToSchema,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum LeaveReason {
    #[default]
    Lwbs,
    Cancelled,
    Error,
    /// Set by the service when a patient misses `max_no_shows` calls; not accepted from clients.
    NoShow,
}

impl LeaveReason {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Everything the service knows about one visit. Stored whole in the journal,
/// as compact JSON: times in milliseconds, absent fields left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Patient {
    pub protocol: Protocol,
    pub ticket: String,
    pub unit: UnitId,
    pub name: PatientName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colour: Option<ColourId>,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complaint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
    #[serde(with = "stored_time")]
    pub arrived_at: DateTime<Utc>,
    #[serde(with = "stored_time")]
    pub admitted_at: DateTime<Utc>,
    #[serde(
        with = "stored_time::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub triaged_at: Option<DateTime<Utc>>,
    /// The last call to a room (triage or treatment); recalls do not move it.
    #[serde(
        with = "stored_time::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub called_at: Option<DateTime<Utc>>,
    /// When the patient last left a queue; `None` while in one.
    #[serde(
        with = "stored_time::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub wait_ended_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// The queue the patient was last called from, while called or in triage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub called_from: Option<QueueKind>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub no_shows: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leave_reason: Option<LeaveReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triage_note: Option<String>,
    /// When the patient reached a terminal status; retention counts from here.
    #[serde(
        with = "stored_time::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub closed_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    // Boxed, like `first_call`: most patients have none, and a million
    // waiting should not each carry its 56 bytes inline.
    pub contact: Option<Box<Contact>>,
    /// The unit of admission: reports count the visit there, wherever it went later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admitted_unit: Option<UnitId>,
    /// The first classification (door-to-triage); `triaged_at` is the last.
    #[serde(
        with = "stored_time::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub first_triaged_at: Option<DateTime<Utc>>,
    /// The maximum wait, in seconds, of the colour given at the last
    /// classification, as the config said then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classified_max_wait_seconds: Option<i64>,
    /// The first call to the treatment queue, as reports need it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_call: Option<Box<FirstCall>>,
    /// The last change to the record (journaled before this field existed: none).
    #[serde(
        with = "stored_time::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub updated_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;

    #[test]
    fn search_keys_drop_accents_case_and_extra_spaces() {
        assert_eq!(search_key("José  da Conceição"), "jose da conceicao");
        assert_eq!(search_key("  MARIA\tdas\u{0B}Dores \n"), "maria das dores");
        assert_eq!(search_key("ÅNGSTRÖM\u{00A0}Ñandú"), "angstrom nandu");
        assert_eq!(search_key(""), "");
    }

    #[test]
    fn ascii_names_get_the_key_the_unicode_path_gives() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(247);
        for _ in 0..5_000 {
            let len = rng.gen_range(0..24);
            let text: String = (0..len).map(|_| rng.gen_range(0u8..128) as char).collect();
            assert_eq!(search_key(&text), unicode_key(&text), "{text:?}");
        }
    }
}
