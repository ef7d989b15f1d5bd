//! Typed settings: the TOML file (docs/api.md, Configuration), parsed once
//! into the types the code uses (a time zone, a socket address, URLs,
//! origins, roles, token hashes, durations), with the `TRIAGEM_BIND` /
//! `TRIAGEM_DATA_DIR` / `TRIAGEM_TOKENS_FILE` overrides. A value that does not
//! parse, and a rule the types cannot express, both stop start-up with one
//! message naming the key.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

use crate::auth::{token_name_refusal, AuthMode, Token};
use crate::domain::patient::stray_control;
use crate::domain::{
    Channel, ClockStarts, Colour, ColourId, Ladder, Level, NotifyEvent, NotifySettings, Settings,
    TriageScale, UnitSettings,
};

pub const ENV_BIND: &str = "TRIAGEM_BIND";
pub const ENV_DATA_DIR: &str = "TRIAGEM_DATA_DIR";
/// A TOML file of `[[tokens]]` tables that replaces `auth.tokens`, so token
/// hashes can live outside the committed config.
pub const ENV_TOKENS_FILE: &str = "TRIAGEM_TOKENS_FILE";
/// Overrides `storage.postgres_url`, so the database's password need not be
/// in the config file.
pub const ENV_DATABASE_URL: &str = "TRIAGEM_DATABASE_URL";
pub const DEFAULT_CONFIG_PATH: &str = "config/default.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config key `{key}`: {message}")]
    Invalid { key: String, message: String },
}

/// The longest a wait or an escalation delay may be. Longer is a typing
/// error (`10M` is ten *months* in this notation) that would leave a patient
/// without alerts, and times beyond chrono's range would fail requests.
const MAX_WAIT: Duration = Duration::from_secs(7 * 24 * 3600);
/// The longest any timeout, retry, lease or tick may be.
const MAX_TIMER: Duration = Duration::from_secs(24 * 3600);
/// A hundred years of retention is the most that makes sense (and keeps the
/// purge's date arithmetic in range).
const MAX_RETENTION_DAYS: u32 = 36_500;
/// The shortest check-code secret: with less, the codes could be guessed
/// from the sequential protocol numbers.
const MIN_SECRET_BYTES: usize = 16;

/// Refuses a duration above `max`, naming the key.
fn at_most(key: &str, value: Duration, max: Duration, what: &str) -> Result<(), ConfigError> {
    if value > max {
        return Err(invalid(
            key,
            format!(
                "must be at most {} ({what})",
                humantime::format_duration(max)
            ),
        ));
    }
    Ok(())
}

/// A `tracing` filter of levels and module paths. `EnvFilter` takes any word
/// as a target, so `"loud!!"` would silence every log line, errors included.
fn log_filter_ok(filter: &str) -> bool {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let level = |s: &str| LEVELS.contains(&s.trim().to_ascii_lowercase().as_str());
    let path = |s: &str| {
        s.split("::").all(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
    };
    tracing_subscriber::EnvFilter::try_new(filter).is_ok()
        && filter.split(',').all(|directive| {
            let d = directive.trim();
            // Span filters (`target[span{field=value}]=level`) are passed as they are.
            d.contains('[')
                || match d.split_once('=') {
                    Some((target, lvl)) => path(target.trim()) && level(lvl),
                    None => level(d) || path(d),
                }
        })
}

/// Networks as written: `10.0.0.0/24`, or one address (`10.0.0.2`), which
/// is the network of that address alone.
fn networks<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "{s:?} is not an address (10.0.0.2) or a network (10.0.0.0/24)"
                    ))
                })
        })
        .collect()
}

/// Text of the config that pages, receipts and the patient's phone show: not
/// empty, without control characters or bidirectional overrides (which
/// reorder what follows on a screen; the API refuses them in names too).
fn shown(key: &str, value: &str) -> Result<(), ConfigError> {
    if value.trim().is_empty() || stray_control(value, false) {
        return Err(invalid(
            key,
            "must not be empty or hold control or bidirectional override characters",
        ));
    }
    Ok(())
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// For the year of protocol numbers and the day of tickets.
    pub timezone: chrono_tz::Tz,
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub protocol: ProtocolConfig,
    pub escalation: EscalationConfig,
    pub alerts: AlertsConfig,
    pub units: Vec<UnitSettings>,
    pub auth: AuthConfig,
    pub log: LogConfig,
    pub web: WebConfig,
    pub portal: PortalConfig,
    pub notifications: NotificationsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            timezone: chrono_tz::UTC,
            server: ServerConfig::default(),
            storage: StorageConfig::default(),
            protocol: ProtocolConfig::default(),
            escalation: EscalationConfig::default(),
            alerts: AlertsConfig::default(),
            units: Vec::new(),
            auth: AuthConfig::default(),
            log: LogConfig::default(),
            web: WebConfig::default(),
            portal: PortalConfig::default(),
            notifications: NotificationsConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub bind: SocketAddr,
    pub max_body_bytes: usize,
    /// Origins whose pages may call the API from a browser; empty (the
    /// default) sends no CORS headers at all.
    pub cors_origins: Vec<Origin>,
    /// Reverse proxies (addresses or networks) whose `X-Forwarded-For` names
    /// the client; from anyone else the peer's own address counts.
    #[serde(deserialize_with = "networks")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Open connections each worker thread (one per core) accepts; beyond
    /// it, new connections wait in the listen backlog. Every ward screen
    /// holds one for its event stream.
    pub max_connections: usize,
    /// Time a client has, from connecting or from its previous answer, to send
    /// a request's line and headers; slower ones get 408 and are closed, so a
    /// slowloris client cannot hold connections open.
    #[serde(with = "humantime_serde")]
    pub request_head_timeout: Duration,
    /// An idle keep-alive connection is closed after this.
    #[serde(with = "humantime_serde")]
    pub keep_alive: Duration,
    /// Time a client has to send a request's whole body once its head is in;
    /// slower ones get 408 and are closed (a slowloris that trickles a body).
    #[serde(with = "humantime_serde")]
    pub request_body_timeout: Duration,
    /// A connection whose client accepts none of the data sent to it for this
    /// long is closed by the kernel (`TCP_USER_TIMEOUT`): a screen that stopped
    /// reading its event stream, or a peer that vanished, holds nothing for ever.
    #[serde(with = "humantime_serde")]
    pub send_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 16 * 1024,
            cors_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            max_connections: 10_000,
            request_head_timeout: Duration::from_secs(5),
            keep_alive: Duration::from_secs(5),
            request_body_timeout: Duration::from_secs(10),
            send_timeout: Duration::from_secs(30),
        }
    }
}

/// What a browser sends as `Origin`: `http(s)://host[:port]`, no path, no wildcard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Origin(String);

impl Origin {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Origin {
    type Error = String;
    fn try_from(origin: String) -> Result<Self, String> {
        let rest = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"));
        let ok = rest.is_some_and(|host| {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        });
        if ok {
            Ok(Self(origin))
        } else {
            Err(format!(
                "{origin:?} is not an origin: write scheme and host (and port), like \
                 \"https://intranet.hospital.example\", with no path and no wildcard"
            ))
        }
    }
}

impl From<Origin> for String {
    fn from(o: Origin) -> Self {
        o.0
    }
}

/// Whether a host, as written in a URL or a `Host` header (without its
/// port), is this machine: `localhost` or a loopback address.
pub(crate) fn names_this_machine(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// An `http://` or `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HttpUrl(url::Url);

impl HttpUrl {
    pub fn as_url(&self) -> &url::Url {
        &self.0
    }
}

impl TryFrom<String> for HttpUrl {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match url::Url::parse(&s) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(Self(u)),
            _ => Err(format!("{s:?} is not an http:// or https:// URL")),
        }
    }
}

/// As `check-config` prints it: a password and the query's values (where
/// SMS gateways and webhook receivers take their keys) as `***`.
impl From<HttpUrl> for String {
    fn from(u: HttpUrl) -> Self {
        let mut u = u.0;
        if u.password().is_some() {
            let _ = u.set_password(Some("***"));
        }
        if u.query().is_some() {
            let keys: Vec<String> = u.query_pairs().map(|(k, _)| k.into_owned()).collect();
            u.query_pairs_mut()
                .clear()
                .extend_pairs(keys.iter().map(|k| (k, "***")));
        }
        // As it was written: `https://h.example`, not the parser's `https://h.example/`.
        let bare = u.path() == "/" && u.query().is_none() && u.fragment().is_none();
        let text: String = u.into();
        match bare {
            true => text.trim_end_matches('/').to_owned(),
            false => text,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub backend: Backend,
    /// The SQLite journal's directory (also what `triagem migrate` reads).
    pub data_dir: PathBuf,
    pub retention_days: u32,
    /// With `backend = "postgres"`: the database (env `TRIAGEM_DATABASE_URL`).
    pub postgres_url: Option<DatabaseUrl>,
    /// How long a leader's lease lasts without renewal (renewed every third of it).
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            backend: Backend::Sqlite,
            data_dir: PathBuf::from("data"),
            retention_days: 90,
            postgres_url: None,
            lease: Duration::from_secs(5),
        }
    }
}

/// Where the journal lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// One file in `storage.data_dir`, one instance.
    #[default]
    Sqlite,
    /// A PostgreSQL database shared by instances, one of which leads.
    Postgres,
}

/// A URL as `check-config` and the logs print it: its password as `***`.
pub(crate) fn without_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "postgres://…".into(),
    }
}

/// A secret as `check-config` prints it: there, not what it is.
fn hidden<S: serde::Serializer>(secret: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(_) => s.serialize_str("***"),
        None => s.serialize_none(),
    }
}

/// A `postgres://` URL; printed (`check-config`) without its password.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn redacted(&self) -> String {
        without_password(&self.0)
    }
}

impl TryFrom<String> for DatabaseUrl {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        let parsed: Result<tokio_postgres::Config, _> = s.parse();
        match parsed {
            Ok(_) if s.starts_with("postgres://") || s.starts_with("postgresql://") => Ok(Self(s)),
            _ => Err("must be a URL such as postgres://user@host/database".into()),
        }
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProtocolConfig {
    pub name: String,
    #[serde(with = "humantime_serde")]
    pub triage_max_wait: Duration,
    pub clock_starts: ClockStarts,
    pub colours: Vec<ColourConfig>,
}

impl Default for ProtocolConfig {
    fn default() -> Self {
        Self {
            name: "Acolhimento com Classificação de Risco".to_owned(),
            triage_max_wait: Duration::from_secs(10 * 60),
            clock_starts: ClockStarts::default(),
            colours: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColourConfig {
    pub id: ColourId,
    pub label: String,
    #[serde(with = "humantime_serde")]
    pub max_wait: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EscalationConfig {
    #[serde(with = "humantime_serde")]
    pub tick: Duration,
    pub warning_at_percent: u32,
    pub levels: Vec<LevelConfig>,
}

impl Default for EscalationConfig {
    fn default() -> Self {
        let level = |name: &str, after| LevelConfig {
            name: name.to_owned(),
            label: None,
            after,
        };
        Self {
            tick: Duration::from_secs(1),
            warning_at_percent: 80,
            levels: vec![
                level("nursing-coordinator", Duration::ZERO),
                level("physician-on-duty", Duration::from_secs(15 * 60)),
            ],
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelConfig {
    pub name: String,
    /// What the pages show; the name when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(with = "humantime_serde")]
    pub after: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    pub webhooks: Vec<WebhookConfig>,
    /// How long one delivery attempt may take.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// First pause before retrying a failed delivery; doubles up to `retry_max`.
    #[serde(with = "humantime_serde")]
    pub retry_initial: Duration,
    #[serde(with = "humantime_serde")]
    pub retry_max: Duration,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            webhooks: Vec::new(),
            timeout: Duration::from_secs(5),
            retry_initial: Duration::from_millis(500),
            retry_max: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: HttpUrl,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "hidden"
    )]
    pub secret: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub mode: AuthMode,
    pub tokens: Vec<Token>,
    /// A TOML file with `[[tokens]]` tables replacing `tokens` (env `TRIAGEM_TOKENS_FILE`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_file: Option<PathBuf>,
    /// Admissions one token may make per minute (tokens mode); 0 means no limit.
    pub admissions_per_minute: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            mode: AuthMode::default(),
            tokens: Vec::new(),
            tokens_file: None,
            admissions_per_minute: 600,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    #[serde(default)]
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter; env `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::default(),
            level: "info".to_owned(),
        }
    }
}

/// The languages the web pages speak.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
pub enum Lang {
    #[default]
    #[serde(rename = "pt-BR")]
    #[strum(serialize = "pt-BR")]
    PtBr,
    #[serde(rename = "en")]
    #[strum(serialize = "en")]
    En,
}

impl Lang {
    pub fn tag(self) -> &'static str {
        self.into()
    }
}

/// The web pages (`/display`, `/reception`, `/clinician`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// The pages' language when the URL has no `?lang=`.
    pub lang: Lang,
}

/// The patient's follow-up of their case (`/p/{protocol}`, `/api/v1/track`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortalConfig {
    /// Off: the follow-up route and page answer 404 (the staff view still has the check code).
    pub enabled: bool,
    /// What receipts and messages link to; `http://{server.bind}` when left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<HttpUrl>,
    /// Follow-up lookups one client address may make per clock minute.
    pub lookups_per_minute: u32,
    /// The secret check codes are derived with; generated on first start and
    /// kept in the journal when left out. Changing it changes every code.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "hidden")]
    pub secret: Option<String>,
}

impl Default for PortalConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            public_url: None,
            lookups_per_minute: 20,
            secret: None,
        }
    }
}

/// Messages to patients who consented (`contact.consent`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationsConfig {
    pub on: Vec<NotifyEvent>,
    pub lang: Lang,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sms: Option<SmsConfig>,
}

impl NotificationsConfig {
    /// The message channels set up.
    pub fn channels(&self) -> Vec<Channel> {
        [
            (Channel::Email, self.email.is_some()),
            (Channel::Sms, self.sms.is_some()),
        ]
        .into_iter()
        .filter_map(|(c, on)| on.then_some(c))
        .collect()
    }
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        Self {
            on: vec![NotifyEvent::Admitted, NotifyEvent::Called],
            lang: Lang::PtBr,
            email: None,
            sms: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// `smtp://host:port` (plain, or STARTTLS with `?tls=required`), `smtps://host:port`
    /// (TLS); `user:pass@` allowed.
    pub smtp_url: SmtpUrl,
    /// The sender, `Name <address>` or a plain address.
    pub from: Mailbox,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {
    /// The HTTP SMS gateway messages are POSTed to.
    pub url: HttpUrl,
    /// Signs each request like the alert webhooks (`X-Triagem-Signature`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "hidden"
    )]
    pub secret: Option<String>,
}

/// An `smtp://` or `smtps://` URL; printed (`check-config`) without its password.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SmtpUrl(String);

impl Serialize for SmtpUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&without_password(&self.0))
    }
}

impl SmtpUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What crosses the network unencrypted, when this URL asks for no TLS
    /// (`smtp://` without `?tls=required` or `opportunistic`) to a server
    /// that is not this machine: the messages (a protocol number with its
    /// check code opens the patient's case) and any password.
    fn in_clear(&self) -> Option<String> {
        let u = url::Url::parse(&self.0).ok()?;
        let tls = u
            .query_pairs()
            .any(|(k, v)| k == "tls" && matches!(&*v, "required" | "opportunistic"));
        // smtp:// is not a scheme the URL standard knows: its host comes as
        // text, an address included.
        let local = names_this_machine(u.host_str()?);
        if u.scheme() != "smtp" || tls || local {
            return None;
        }
        let password = if u.password().is_some() {
            "the SMTP password and "
        } else {
            ""
        };
        Some(format!(
            "notifications.email.smtp_url asks for no TLS: {password}every message (a protocol \
             number with its check code opens the patient's case) cross the network in clear; \
             use smtps:// or add ?tls=required"
        ))
    }
}

impl TryFrom<String> for SmtpUrl {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match url::Url::parse(&s) {
            Ok(u) if matches!(u.scheme(), "smtp" | "smtps") && u.host().is_some() => Ok(Self(s)),
            _ => Err(format!("{s:?} is not an smtp:// or smtps:// URL")),
        }
    }
}

impl From<SmtpUrl> for String {
    fn from(u: SmtpUrl) -> Self {
        u.0
    }
}

/// An e-mail sender or recipient: `Name <user@host>` or `user@host`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Mailbox(String);

impl Mailbox {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Mailbox {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse::<lettre::message::Mailbox>()
            .map(|_| Self(s.clone()))
            .map_err(|e| format!("{s:?} is not an e-mail address: {e}"))
    }
}

impl From<Mailbox> for String {
    fn from(m: Mailbox) -> Self {
        m.0
    }
}

impl Config {
    /// What receipts and messages link to.
    pub fn public_url(&self) -> String {
        match &self.portal.public_url {
            Some(u) => u.as_url().as_str().trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.server.bind),
        }
    }

    /// What two instances on one PostgreSQL journal must agree on, as a
    /// short digest per section (`units=1a2b3c4d escalation=…`): the leader
    /// applies its own config to what it reads back, so a follower that
    /// would apply another one can say which sections differ, without either
    /// side writing a secret or a token hash in clear. (`server` and `log`
    /// may differ per machine, and `storage` but for the retention, which
    /// purges the shared journal; the portal's section holds the links'
    /// address as it comes out, which defaults to `server.bind`.)
    pub fn shared_settings(&self) -> String {
        use sha2::{Digest, Sha256};
        let auth = (&self.auth.mode, &self.auth.tokens); // not the tokens file's path
        let portal = (&self.portal, self.public_url());
        let sections: [(&str, String); 10] = [
            ("timezone", format!("{:?}", self.timezone)),
            ("protocol", format!("{:?}", self.protocol)),
            ("escalation", format!("{:?}", self.escalation)),
            ("units", format!("{:?}", self.units)),
            ("auth", format!("{auth:?}")),
            ("portal", format!("{portal:?}")),
            ("alerts", format!("{:?}", self.alerts)),
            ("notifications", format!("{:?}", self.notifications)),
            ("web", format!("{:?}", self.web)),
            ("retention", self.storage.retention_days.to_string()),
        ];
        let digests: Vec<String> = sections
            .iter()
            .map(|(name, text)| format!("{name}={}", &hex::encode(Sha256::digest(text))[..8]))
            .collect();
        digests.join(" ")
    }

    /// The names of the sections of `own` (a [`Config::shared_settings`])
    /// whose digest `theirs` does not have.
    pub fn differing_sections<'a>(own: &'a str, theirs: &str) -> Vec<&'a str> {
        own.split(' ')
            .filter(|section| !theirs.split(' ').any(|t| t == *section))
            .filter_map(|section| section.split('=').next())
            .collect()
    }

    /// What is valid but likely wrong, for `check-config` and the start-up log.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.portal.enabled
            && self.portal.public_url.is_none()
            && self.server.bind.ip().is_unspecified()
        {
            out.push(format!(
                "portal.public_url is not set: receipts, QR codes and messages link to {}, \
                 which no phone can open; set it to the address patients reach",
                self.public_url()
            ));
        }
        if let Some(why) = self
            .notifications
            .email
            .as_ref()
            .and_then(|e| e.smtp_url.in_clear())
        {
            out.push(why);
        }
        out
    }

    /// Reads the file, applies the environment overrides and validates the result.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Self::from_toml(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            other => other,
        })?;
        config.apply_env(|name| std::env::var(name).ok())?;
        config.load_tokens_file()?;
        config.validate()?;
        Ok(config)
    }

    /// Parses TOML without touching the environment or validating (tests build on this).
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        // serde_path_to_error names the key a bad value sits under (toml's own
        // error gives only the line), so the message says what to fix.
        serde_path_to_error::deserialize(toml::Deserializer::new(text)).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner().to_string();
            let message = if key.is_empty() || key == "." {
                inner
            } else {
                format!("config key `{key}`: {inner}")
            };
            ConfigError::Parse {
                path: PathBuf::new(),
                message,
            }
        })
    }

    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(bind) = var(ENV_BIND).filter(|v| !v.is_empty()) {
            self.server.bind = bind.parse().map_err(|_| {
                invalid(
                    "server.bind",
                    format!("{ENV_BIND}=`{bind}` is not an address:port such as 127.0.0.1:8080"),
                )
            })?;
        }
        if let Some(dir) = var(ENV_DATA_DIR).filter(|v| !v.is_empty()) {
            self.storage.data_dir = PathBuf::from(dir);
        }
        if let Some(url) = var(ENV_DATABASE_URL).filter(|v| !v.is_empty()) {
            self.storage.postgres_url = Some(DatabaseUrl::try_from(url).map_err(|e| {
                invalid("storage.postgres_url", format!("{ENV_DATABASE_URL}: {e}"))
            })?);
        }
        if let Some(file) = var(ENV_TOKENS_FILE).filter(|v| !v.is_empty()) {
            self.auth.tokens_file = Some(PathBuf::from(file));
        }
        Ok(())
    }

    /// Replaces `auth.tokens` with the tokens file's, when one is named.
    pub fn load_tokens_file(&mut self) -> Result<(), ConfigError> {
        let Some(path) = self.auth.tokens_file.clone() else {
            return Ok(());
        };
        let text = std::fs::read_to_string(&path).map_err(|source| {
            invalid(
                "auth.tokens_file",
                format!(
                    "cannot read {} (set by the config or {ENV_TOKENS_FILE}): {source}",
                    path.display()
                ),
            )
        })?;
        let file: TokensFile = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.clone(),
            message: e.to_string(),
        })?;
        self.auth.tokens = file.tokens;
        Ok(())
    }

    /// The department's own settings, in the domain's types.
    pub fn department_settings(&self) -> Settings {
        let delta = |d: Duration| TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX);
        let p = &self.protocol;
        let e = &self.escalation;
        Settings {
            scale: TriageScale {
                name: p.name.clone(),
                colours: p
                    .colours
                    .iter()
                    .map(|c| Colour {
                        id: c.id.clone(),
                        label: c.label.clone(),
                        max_wait: delta(c.max_wait),
                    })
                    .collect(),
                triage_max_wait: delta(p.triage_max_wait),
                clock_starts: p.clock_starts,
            },
            ladder: Ladder::new(
                e.warning_at_percent,
                e.levels
                    .iter()
                    .map(|l| Level {
                        name: l.name.clone(),
                        label: l.label.clone().unwrap_or_else(|| l.name.clone()),
                        after: delta(l.after),
                    })
                    .collect(),
            ),
            units: self.units.clone(),
            time_zone: self.timezone,
            retention: TimeDelta::days(i64::from(self.storage.retention_days)),
            public_url: self.public_url(),
            check_secret: self.portal.secret.as_ref().map(|s| s.as_bytes().to_vec()),
            notify: NotifySettings {
                on: self.notifications.on.clone(),
                email: self.notifications.email.is_some(),
                sms: self.notifications.sms.is_some(),
            },
        }
    }

    /// Checks every rule the types cannot express; the first failure names its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.server.max_body_bytes < 256 {
            return Err(invalid(
                "server.max_body_bytes",
                "must be at least 256 bytes",
            ));
        }
        if self.server.max_connections == 0 {
            return Err(invalid("server.max_connections", "must be at least 1"));
        }
        if self.server.request_head_timeout < Duration::from_millis(1) {
            return Err(invalid(
                "server.request_head_timeout",
                "must be at least 1ms",
            ));
        }
        if self.server.request_body_timeout < Duration::from_millis(1) {
            return Err(invalid(
                "server.request_body_timeout",
                "must be at least 1ms",
            ));
        }
        // The kernel counts TCP_USER_TIMEOUT in whole milliseconds; an event
        // stream sends a comment every 10 s, so a shorter limit is pointless.
        if self.server.send_timeout < Duration::from_secs(1) {
            return Err(invalid("server.send_timeout", "must be at least 1s"));
        }
        let server = &self.server;
        for (key, value) in [
            ("server.request_head_timeout", server.request_head_timeout),
            ("server.keep_alive", server.keep_alive),
            ("server.request_body_timeout", server.request_body_timeout),
            ("server.send_timeout", server.send_timeout),
            ("storage.lease", self.storage.lease),
            ("escalation.tick", self.escalation.tick),
            ("alerts.timeout", self.alerts.timeout),
            ("alerts.retry_initial", self.alerts.retry_initial),
            ("alerts.retry_max", self.alerts.retry_max),
        ] {
            at_most(key, value, MAX_TIMER, "a longer timer is a typing error")?;
        }
        if self.storage.data_dir.as_os_str().is_empty() {
            return Err(invalid("storage.data_dir", "must not be empty"));
        }
        if !(1..=MAX_RETENTION_DAYS).contains(&self.storage.retention_days) {
            return Err(invalid(
                "storage.retention_days",
                format!("must be between 1 and {MAX_RETENTION_DAYS}"),
            ));
        }
        if !log_filter_ok(&self.log.level) {
            return Err(invalid(
                "log.level",
                "must be a tracing filter such as \"info\" or \"warn,triagem=debug\"",
            ));
        }
        if self.portal.lookups_per_minute == 0 {
            return Err(invalid(
                "portal.lookups_per_minute",
                "must be at least 1: the limit is what keeps the 6-character codes from being guessed",
            ));
        }
        if let Some(url) = &self.portal.public_url {
            // The link is `{public_url}/p/{protocol}#{code}`, and the page
            // reads its protocol from a path that starts at `/p/`.
            let u = url.as_url();
            if u.path() != "/" || u.query().is_some() || u.fragment().is_some() {
                return Err(invalid(
                    "portal.public_url",
                    "must be a scheme, host and port only (https://triagem.hospital.example): \
                     the follow-up page is served at /p/ of that address",
                ));
            }
            if !u.username().is_empty() || u.password().is_some() {
                return Err(invalid(
                    "portal.public_url",
                    "must not hold a user name or password: it is printed on receipts",
                ));
            }
        }
        if let Some(secret) = &self.portal.secret {
            if secret.len() < MIN_SECRET_BYTES {
                return Err(invalid(
                    "portal.secret",
                    format!(
                        "must be at least {MIN_SECRET_BYTES} bytes (or left out: one is generated and kept in the journal)"
                    ),
                ));
            }
        }
        if self.storage.backend == Backend::Postgres && self.storage.postgres_url.is_none() {
            return Err(invalid(
                "storage.postgres_url",
                format!("backend \"postgres\" needs a URL (or {ENV_DATABASE_URL})"),
            ));
        }
        if self.storage.lease < Duration::from_millis(500) {
            return Err(invalid("storage.lease", "must be at least 500ms"));
        }
        self.validate_protocol()?;
        self.validate_escalation()?;
        let a = &self.alerts;
        for (key, value) in [
            ("alerts.timeout", a.timeout),
            ("alerts.retry_initial", a.retry_initial),
        ] {
            if value.is_zero() {
                return Err(invalid(key, "must be longer than 0s"));
            }
        }
        if a.retry_max < a.retry_initial {
            return Err(invalid(
                "alerts.retry_max",
                "must not be shorter than alerts.retry_initial",
            ));
        }
        self.validate_units()?;
        self.validate_auth()
    }

    fn validate_protocol(&self) -> Result<(), ConfigError> {
        let p = &self.protocol;
        shown("protocol.name", &p.name)?;
        if p.triage_max_wait.is_zero() {
            return Err(invalid(
                "protocol.triage_max_wait",
                "must be longer than 0s",
            ));
        }
        at_most(
            "protocol.triage_max_wait",
            p.triage_max_wait,
            MAX_WAIT,
            "`M` is months, `m` minutes",
        )?;
        if p.colours.is_empty() {
            return Err(invalid(
                "protocol.colours",
                "at least one colour is required (see config/default.toml)",
            ));
        }
        let mut seen = HashSet::new();
        for (i, c) in p.colours.iter().enumerate() {
            if !seen.insert(c.id.as_str()) {
                return Err(invalid(
                    format!("protocol.colours[{i}].id"),
                    format!("colour `{}` is listed twice", c.id),
                ));
            }
            shown(&format!("protocol.colours[{i}].label"), &c.label)?;
            at_most(
                &format!("protocol.colours[{i}].max_wait"),
                c.max_wait,
                MAX_WAIT,
                "`M` is months, `m` minutes",
            )?;
        }
        Ok(())
    }

    fn validate_escalation(&self) -> Result<(), ConfigError> {
        let e = &self.escalation;
        if e.tick < Duration::from_millis(1) {
            return Err(invalid("escalation.tick", "must be at least 1ms"));
        }
        if !(1..=100).contains(&e.warning_at_percent) {
            return Err(invalid(
                "escalation.warning_at_percent",
                "must be between 1 and 100",
            ));
        }
        let mut seen = HashSet::new();
        let mut previous = Duration::ZERO;
        for (i, level) in e.levels.iter().enumerate() {
            if level.name.trim().is_empty() || !seen.insert(level.name.as_str()) {
                return Err(invalid(
                    format!("escalation.levels[{i}].name"),
                    "must be a non-empty name used once",
                ));
            }
            if let Some(label) = &level.label {
                shown(&format!("escalation.levels[{i}].label"), label)?;
            }
            at_most(
                &format!("escalation.levels[{i}].after"),
                level.after,
                MAX_WAIT,
                "`M` is months, `m` minutes",
            )?;
            if level.after < previous {
                return Err(invalid(
                    format!("escalation.levels[{i}].after"),
                    "levels must be listed in increasing `after` order",
                ));
            }
            previous = level.after;
        }
        Ok(())
    }

    fn validate_units(&self) -> Result<(), ConfigError> {
        if self.units.is_empty() {
            return Err(invalid(
                "units",
                "at least one [[units]] table is required (see config/default.toml)",
            ));
        }
        let mut seen = HashSet::new();
        let mut prefixes = HashSet::new();
        for (i, u) in self.units.iter().enumerate() {
            if !seen.insert(u.id.as_str()) {
                return Err(invalid(
                    format!("units[{i}].id"),
                    format!("unit `{}` is listed twice", u.id),
                ));
            }
            shown(&format!("units[{i}].name"), &u.name)?;
            let prefix_ok = !u.ticket_prefix.is_empty()
                && u.ticket_prefix.chars().count() <= 4
                && u.ticket_prefix.chars().all(|c| c.is_alphabetic());
            if !prefix_ok {
                return Err(invalid(
                    format!("units[{i}].ticket_prefix"),
                    "must be 1 to 4 letters",
                ));
            }
            // A transfer keeps the ticket: two units with one prefix would
            // give one queue two patients called `A001`.
            if !prefixes.insert(u.ticket_prefix.to_lowercase()) {
                return Err(invalid(
                    format!("units[{i}].ticket_prefix"),
                    format!("`{}` is another unit's prefix", u.ticket_prefix),
                ));
            }
            if u.rooms.is_empty() {
                return Err(invalid(
                    format!("units[{i}].rooms"),
                    "at least one room is required",
                ));
            }
            let mut rooms = HashSet::new();
            for (j, room) in u.rooms.iter().enumerate() {
                if room.trim().is_empty()
                    || room.chars().count() > 100
                    || stray_control(room, false)
                    || !rooms.insert(room)
                {
                    return Err(invalid(
                        format!("units[{i}].rooms[{j}]"),
                        "rooms must be non-empty, at most 100 characters without control or bidirectional override characters, and unique",
                    ));
                }
            }
            for (j, room) in u.triage_rooms.iter().enumerate() {
                if !u.rooms.contains(room) {
                    return Err(invalid(
                        format!("units[{i}].triage_rooms[{j}]"),
                        format!("`{room}` is not one of the unit's rooms"),
                    ));
                }
            }
            if u.max_no_shows == 0 {
                return Err(invalid(
                    format!("units[{i}].max_no_shows"),
                    "must be at least 1",
                ));
            }
        }
        Ok(())
    }

    fn validate_auth(&self) -> Result<(), ConfigError> {
        let bind = self.server.bind;
        match self.auth.mode {
            AuthMode::Open if !bind.ip().is_loopback() => Err(invalid(
                "auth.mode",
                format!(
                    "\"open\" lets anyone read patients' data, so it is only allowed on a \
                     loopback bind (127.0.0.1 or ::1), not on {bind}; set auth.mode = \"tokens\" \
                     with [[auth.tokens]] entries (see README, Production)"
                ),
            )),
            AuthMode::Open => Ok(()),
            AuthMode::Tokens => {
                if self.auth.tokens.is_empty() {
                    return Err(invalid(
                        "auth.tokens",
                        "mode \"tokens\" needs at least one [[auth.tokens]] entry",
                    ));
                }
                let mut names = HashSet::new();
                for (i, t) in self.auth.tokens.iter().enumerate() {
                    if let Some(refusal) = token_name_refusal(&t.name) {
                        return Err(invalid(format!("auth.tokens[{i}].name"), refusal));
                    }
                    if !names.insert(t.name.as_str()) {
                        return Err(invalid(
                            format!("auth.tokens[{i}].name"),
                            format!(
                                "`{}` names two tokens: the history could not tell them apart",
                                t.name
                            ),
                        ));
                    }
                    if self.auth.tokens[..i].iter().any(|o| o.sha256 == t.sha256) {
                        return Err(invalid(
                            format!("auth.tokens[{i}].sha256"),
                            "is listed twice: one token would get two names and roles",
                        ));
                    }
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What differs per machine leaves the shared settings alone; a target
    /// or a secret changes its own section's digest, and only that one.
    #[test]
    fn shared_settings_name_each_section_that_differs() {
        let mut base = Config::from_toml(include_str!("../config/default.toml")).unwrap();
        // As two instances should: links to the site's shared address.
        base.portal.public_url =
            Some(HttpUrl::try_from("https://triagem.hospital.example".to_owned()).unwrap());
        let base = base;
        let differing = |c: &Config| -> Vec<String> {
            let (theirs, own) = (base.shared_settings(), c.shared_settings());
            let names = Config::differing_sections(&own, &theirs);
            names.into_iter().map(str::to_owned).collect()
        };
        let mut machine = base.clone();
        machine.server.bind = "0.0.0.0:9090".parse().unwrap();
        machine.storage.data_dir = "/srv/triagem".into();
        machine.log.level = "debug".into();
        machine.auth.tokens_file = Some("/etc/triagem/tokens.toml".into());
        assert!(differing(&machine).is_empty());
        let mut target = base.clone();
        target.protocol.colours[1].max_wait = Duration::from_secs(20 * 60);
        assert_eq!(differing(&target), ["protocol"]);
        let mut secret = base.clone();
        secret.portal.secret = Some("another secret".into());
        assert_eq!(differing(&secret), ["portal"]);
        assert!(
            !secret.shared_settings().contains("another"),
            "digests only"
        );
        let mut ladder = base.clone();
        ladder.escalation.levels.pop();
        assert_eq!(differing(&ladder), ["escalation"]);
        let mut purge = base.clone();
        purge.storage.retention_days = 30;
        assert_eq!(differing(&purge), ["retention"]);
        // Links default to the machine's own address: that differs.
        let mut own_links = base.clone();
        own_links.portal.public_url = None;
        assert_eq!(differing(&own_links), ["portal"]);
    }

    const MINIMAL: &str = r#"
        [[protocol.colours]]
        id = "red"
        label = "Vermelho"
        max_wait = "0s"
        [[units]]
        id = "pa"
        name = "Pronto Atendimento"
        ticket_prefix = "A"
        rooms = ["Consultório 1"]
    "#;

    fn key_of(err: ConfigError) -> String {
        match err {
            ConfigError::Invalid { key, .. } => key,
            other => panic!("expected a validation error, got {other}"),
        }
    }

    /// Asserts `text` does not parse and that the message names `key`.
    #[track_caller]
    fn refused_naming(text: &str, key: &str) {
        let message = Config::from_toml(text).unwrap_err().to_string();
        assert!(message.contains(&format!("`{key}`")), "{message}");
        assert!(message.contains("line"), "{message}");
    }

    /// The README's example, one proxy's address, is taken as that address's
    /// network (it was refused: only `10.0.0.2/32` parsed).
    #[test]
    fn a_trusted_proxy_is_an_address_or_a_network() {
        let c = Config::from_toml(&format!(
            "[server]\ntrusted_proxies = [\"10.0.0.2\", \"10.1.0.0/16\", \"::1\"]\n{MINIMAL}"
        ))
        .unwrap();
        let nets: Vec<String> = c
            .server
            .trusted_proxies
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(nets, ["10.0.0.2/32", "10.1.0.0/16", "::1/128"]);
        refused_naming(
            &format!("[server]\ntrusted_proxies = [\"10.0.0\"]\n{MINIMAL}"),
            "server.trusted_proxies",
        );
    }

    #[test]
    fn values_a_typing_error_makes_are_refused_naming_the_key() {
        let refused = |edit: &dyn Fn(&mut Config), key: &str| {
            let mut c = Config::from_toml(MINIMAL).unwrap();
            c.validate().unwrap();
            edit(&mut c);
            let refusal = c.validate().map(|()| format!("accepted: {key}"));
            assert_eq!(key_of(refusal.unwrap_err()), key);
        };
        let week = Duration::from_secs(7 * 24 * 3600);
        let over = week + Duration::from_secs(1);
        // `10M` is ten months, not minutes: no alert would ever fire.
        let months = MINIMAL.replace(r#"max_wait = "0s""#, r#"max_wait = "10M""#);
        let c = Config::from_toml(&months).unwrap();
        assert_eq!(
            key_of(c.validate().unwrap_err()),
            "protocol.colours[0].max_wait"
        );
        refused(
            &|c| c.protocol.colours[0].max_wait = over,
            "protocol.colours[0].max_wait",
        );
        refused(
            &|c| c.protocol.triage_max_wait = over,
            "protocol.triage_max_wait",
        );
        refused(
            &|c| {
                c.escalation.levels[0].after = over;
            },
            "escalation.levels[0].after",
        );
        refused(
            &|c| c.escalation.tick = Duration::from_secs(86_401),
            "escalation.tick",
        );
        refused(
            &|c| c.storage.lease = Duration::from_secs(86_401),
            "storage.lease",
        );
        refused(
            &|c| c.alerts.retry_max = Duration::from_secs(86_401),
            "alerts.retry_max",
        );
        refused(
            &|c| c.storage.retention_days = 36_501,
            "storage.retention_days",
        );
        refused(&|c| c.log.level = "loud!!".into(), "log.level");
        refused(
            &|c| c.portal.lookups_per_minute = 0,
            "portal.lookups_per_minute",
        );
        for url in [
            "https://h.example/triagem",
            "https://h.example/?x=1",
            "https://h.example/#frag",
            "https://user:pw@h.example",
        ] {
            refused(
                &|c| c.portal.public_url = Some(url.to_owned().try_into().unwrap()),
                "portal.public_url",
            );
        }
        refused(
            &|c| c.units[0].name = "Pronto \u{202e}otnemidnetA".into(),
            "units[0].name",
        );
        refused(
            &|c| c.protocol.colours[0].label = "Verm\u{1b}[31melho".into(),
            "protocol.colours[0].label",
        );
        refused(&|c| c.protocol.name = " ".into(), "protocol.name");
        refused(&|c| c.portal.secret = Some(String::new()), "portal.secret");
        refused(&|c| c.portal.secret = Some("short".into()), "portal.secret");
        refused(
            &|c| c.units[0].rooms[0] = "Sala\u{7}".into(),
            "units[0].rooms[0]",
        );
        // At the bounds, accepted.
        let mut c = Config::from_toml(MINIMAL).unwrap();
        c.protocol.colours[0].max_wait = week;
        c.storage.retention_days = 36_500;
        c.portal.secret = Some("0123456789abcdef".into());
        c.log.level = "warn,triagem=debug".into();
        c.portal.public_url = Some("https://h.example:8443/".to_owned().try_into().unwrap());
        c.validate().unwrap();
    }

    /// A server open to the network without `portal.public_url` prints links
    /// to 0.0.0.0 on receipts: valid, but said.
    #[test]
    fn links_no_phone_can_open_are_warned_about() {
        let mut c = Config::from_toml(MINIMAL).unwrap();
        assert!(c.warnings().is_empty(), "loopback: a developer's machine");
        c.server.bind = "0.0.0.0:8080".parse().unwrap();
        let w = c.warnings();
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("http://0.0.0.0:8080"), "{w:?}");
        c.portal.public_url = Some("https://h.example".to_owned().try_into().unwrap());
        assert!(c.warnings().is_empty());
    }

    /// Messages carry check codes: an SMTP server reached without TLS is said.
    #[test]
    fn an_smtp_server_reached_in_clear_is_warned_about() {
        let email = |url: &str| {
            Config::from_toml(&format!(
                "{MINIMAL}\n[notifications.email]\nsmtp_url = \"{url}\"\nfrom = \"t@h.example\"\n"
            ))
            .unwrap()
            .warnings()
        };
        let w = email("smtp://triagem:pw@mail.h.example");
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("password") && w[0].contains("tls=required"),
            "{w:?}"
        );
        assert!(!w[0].contains("pw@"), "{w:?}");
        let w = email("smtp://relay.h.example:25");
        assert!(w.len() == 1 && !w[0].contains("password"), "{w:?}");
        for quiet in [
            "smtps://triagem:pw@mail.h.example",
            "smtp://triagem:pw@mail.h.example?tls=required",
            "smtp://relay.h.example?tls=opportunistic",
            "smtp://127.0.0.1:2525",
            "smtp://localhost",
        ] {
            assert!(email(quiet).is_empty(), "{quiet}: {:?}", email(quiet));
        }
    }

    #[test]
    fn units_may_not_share_a_ticket_prefix() {
        let two = format!(
            "{MINIMAL}\n[[units]]\nid = \"obs\"\nname = \"Observação\"\nticket_prefix = \"a\"\nrooms = [\"Leito 1\"]\n"
        );
        let c = Config::from_toml(&two).unwrap();
        assert_eq!(key_of(c.validate().unwrap_err()), "units[1].ticket_prefix");
        let c = Config::from_toml(&two.replace(r#"ticket_prefix = "a""#, r#"ticket_prefix = "B""#))
            .unwrap();
        c.validate().unwrap();
    }

    #[test]
    fn a_tokens_file_that_cannot_be_read_names_the_key_and_the_variable() {
        let mut c = Config::from_toml(MINIMAL).unwrap();
        c.auth.tokens_file = Some("/nonexistent/tokens.toml".into());
        let err = c.load_tokens_file().unwrap_err();
        assert!(err.to_string().contains(ENV_TOKENS_FILE), "{err}");
        assert_eq!(key_of(err), "auth.tokens_file");
    }

    #[test]
    fn tokens_are_one_name_and_one_role_each() {
        use crate::auth::{Role, TokenHash};
        let token = |name: &str, secret: &str| Token {
            name: name.into(),
            role: Role::Reception,
            sha256: TokenHash::of(secret),
        };
        let check = |tokens: Vec<Token>| {
            let mut c = Config::from_toml(MINIMAL).unwrap();
            c.auth.mode = AuthMode::Tokens;
            c.auth.tokens = tokens;
            c.validate().map_err(key_of)
        };
        assert_eq!(check(vec![token("desk", "a"), token("ward", "b")]), Ok(()));
        let key = |i: usize, field: &str| Err(format!("auth.tokens[{i}].{field}"));
        assert_eq!(
            check(vec![token("desk", "a"), token("ward", "a")]),
            key(1, "sha256")
        );
        assert_eq!(
            check(vec![token("desk", "a"), token("desk", "b")]),
            key(1, "name")
        );
        assert_eq!(check(vec![token("system", "a")]), key(0, "name"));
        assert_eq!(check(vec![token("anonymous", "a")]), key(0, "name"));
        assert_eq!(check(vec![token("desk\n2", "a")]), key(0, "name"));
    }

    #[test]
    fn web_pages_speak_portuguese_by_default_or_english() {
        let c = Config::from_toml(MINIMAL).unwrap();
        assert_eq!(c.web.lang, Lang::PtBr);
        c.validate().unwrap();
        let en = Config::from_toml(&format!("{MINIMAL}\n[web]\nlang = \"en\"\n")).unwrap();
        assert_eq!(en.web.lang.tag(), "en");
        refused_naming(&format!("{MINIMAL}\n[web]\nlang = \"fr\"\n"), "web.lang");
    }

    #[test]
    fn cors_origins_are_off_by_default_and_must_be_plain_origins() {
        let c = Config::from_toml(MINIMAL).unwrap();
        assert!(c.server.cors_origins.is_empty());
        let with = |list: &str| format!("{MINIMAL}\n[server]\ncors_origins = {list}\n");
        let c = Config::from_toml(&with(
            r#"["https://intranet.hospital.example", "http://10.0.0.5:8080"]"#,
        ))
        .unwrap();
        assert_eq!(c.server.cors_origins[1].as_str(), "http://10.0.0.5:8080");
        for bad in [
            "*",
            "intranet.example",
            "https://x.example/",
            "https://",
            "ftp://x",
        ] {
            refused_naming(&with(&format!("[{bad:?}]")), "server.cors_origins[0]");
        }
    }

    #[test]
    fn a_value_that_does_not_parse_is_reported_with_its_key() {
        refused_naming("[server]\nbindd = \"x\"\n", "server.bindd");
        refused_naming("[auth]\nmode = \"closed\"\n", "auth.mode");
        refused_naming(
            "[[protocol.colours]]\nid = \"red\"\nlabel = \"R\"\nmax_wait = \"thirty\"\n",
            "protocol.colours[0].max_wait",
        );
        refused_naming(
            &format!("timezone = \"Mars/Olympus\"\n{MINIMAL}"),
            "timezone",
        );
        refused_naming(
            &format!("[server]\nbind = \"nowhere\"\n{MINIMAL}"),
            "server.bind",
        );
        refused_naming(
            "[[alerts.webhooks]]\nurl = \"ftp://x.example/a\"\n",
            "alerts.webhooks[0].url",
        );
        let token = |role: &str, hash: &str| {
            format!("[[auth.tokens]]\nname = \"x\"\nrole = \"{role}\"\nsha256 = \"{hash}\"\n")
        };
        refused_naming(&token("nurse", &"0".repeat(64)), "auth.tokens[0].role");
        refused_naming(&token("display", "abc"), "auth.tokens[0].sha256");
    }

    #[test]
    fn a_minimal_config_gets_the_documented_defaults() {
        let c = Config::from_toml(MINIMAL).unwrap();
        c.validate().unwrap();
        assert_eq!(c.timezone, chrono_tz::UTC);
        assert_eq!(c.server.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(c.server.max_body_bytes, 16384);
        assert_eq!(c.storage.retention_days, 90);
        assert_eq!(c.protocol.triage_max_wait, Duration::from_secs(600));
        assert_eq!(c.protocol.clock_starts, ClockStarts::Triage);
        assert_eq!(c.escalation.warning_at_percent, 80);
        assert_eq!(c.escalation.levels.len(), 2);
        assert_eq!(c.alerts.retry_initial, Duration::from_millis(500));
        assert_eq!(c.units[0].max_no_shows, 3);
        assert_eq!(c.auth.mode, AuthMode::Open);
        assert_eq!(c.auth.admissions_per_minute, 600);
    }

    #[test]
    fn the_effective_config_prints_and_reads_back_the_same() {
        let c = Config::from_toml(include_str!("../config/default.toml")).unwrap();
        let text = toml::to_string_pretty(&c).unwrap();
        let again = Config::from_toml(&text).unwrap();
        assert_eq!(toml::to_string_pretty(&again).unwrap(), text);
    }

    /// `check-config` shows that secrets are set, never what they are.
    #[test]
    fn secrets_are_printed_as_stars() {
        let c = Config::from_toml(&format!(
            "{MINIMAL}
[portal]
secret = \"portal-secret-0123456789\"
[[alerts.webhooks]]
url = \"https://hook:webhook-password@hooks.example/triagem?token=webhook-query\"
secret = \"webhook-secret\"
[notifications.sms]
url = \"https://sms.example/send?key=sms-query\"
secret = \"sms-secret\"
[notifications.email]
smtp_url = \"smtps://triagem:mail-secret@smtp.example\"
from = \"triagem@hospital.example\"
"
        ))
        .unwrap();
        let printed = toml::to_string_pretty(&c).unwrap();
        for secret in [
            "portal-secret",
            "webhook-secret",
            "sms-secret",
            "mail-secret",
            "webhook-password",
            "webhook-query",
            "sms-query",
        ] {
            assert!(!printed.contains(secret), "{secret} printed:\n{printed}");
        }
        assert!(
            printed.contains("smtps://triagem:***@smtp.example"),
            "{printed}"
        );
        assert_eq!(printed.matches("\"***\"").count(), 3, "{printed}");
    }

    #[test]
    fn the_shipped_configs_are_valid() {
        for name in ["default.toml", "manchester.toml"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("config")
                .join(name);
            let text = std::fs::read_to_string(&path).unwrap();
            let c = Config::from_toml(&text).unwrap();
            c.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn open_mode_is_refused_on_a_public_bind() {
        let mut c = Config::from_toml(MINIMAL).unwrap();
        c.server.bind = "0.0.0.0:8080".parse().unwrap();
        let err = c.validate().unwrap_err();
        assert!(err.to_string().contains("loopback"), "{err}");
        assert_eq!(key_of(err), "auth.mode");
    }

    #[test]
    fn environment_overrides_bind_and_data_dir() {
        let mut c = Config::from_toml(MINIMAL).unwrap();
        c.apply_env(|k| match k {
            ENV_BIND => Some("127.0.0.1:9999".into()),
            ENV_DATA_DIR => Some("/tmp/elsewhere".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.server.bind.to_string(), "127.0.0.1:9999");
        assert_eq!(c.storage.data_dir, PathBuf::from("/tmp/elsewhere"));
        let err = c
            .apply_env(|k| (k == ENV_BIND).then(|| "nowhere".into()))
            .unwrap_err();
        assert_eq!(key_of(err), "server.bind");
    }

    #[test]
    fn a_postgres_journal_needs_a_url_which_the_environment_may_give_and_is_printed_without_its_password(
    ) {
        let toml = format!("{MINIMAL}\n[storage]\nbackend = \"postgres\"\n");
        let mut c = Config::from_toml(&toml).unwrap();
        assert_eq!(key_of(c.validate().unwrap_err()), "storage.postgres_url");
        c.apply_env(|k| {
            (k == ENV_DATABASE_URL).then(|| "postgres://triagem:s3cret@db.example/triagem".into())
        })
        .unwrap();
        c.validate().unwrap();
        assert_eq!(
            c.storage.postgres_url.as_ref().unwrap().as_str(),
            "postgres://triagem:s3cret@db.example/triagem"
        );
        let printed = toml::to_string(&c).unwrap();
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(printed.contains("postgres://triagem:***@db.example/triagem"));
        let err = c
            .apply_env(|k| (k == ENV_DATABASE_URL).then(|| "mysql://x".into()))
            .unwrap_err();
        assert_eq!(key_of(err), "storage.postgres_url");
    }

    #[test]
    fn bad_values_are_reported_by_key() {
        let cases: &[(&str, &str)] = &[
            ("[escalation]\ntick = \"0s\"\n", "escalation.tick"),
            (
                "[escalation]\nwarning_at_percent = 150\n",
                "escalation.warning_at_percent",
            ),
            ("[storage]\nretention_days = 0\n", "storage.retention_days"),
            ("[storage]\nlease = \"100ms\"\n", "storage.lease"),
            ("[alerts]\ntimeout = \"0s\"\n", "alerts.timeout"),
            ("[alerts]\nretry_initial = \"0s\"\n", "alerts.retry_initial"),
        ];
        for (extra, key) in cases {
            let text = format!("{extra}{MINIMAL}");
            let c = Config::from_toml(&text).unwrap();
            assert_eq!(key_of(c.validate().unwrap_err()), *key, "{extra}");
        }
    }

    #[test]
    fn duplicate_colours_and_units_are_refused() {
        let text = format!(
            "{MINIMAL}\n[[protocol.colours]]\nid = \"red\"\nlabel = \"x\"\nmax_wait = \"1m\"\n"
        );
        let c = Config::from_toml(&text).unwrap();
        assert_eq!(key_of(c.validate().unwrap_err()), "protocol.colours[1].id");
        let text = format!("{MINIMAL}\n[[units]]\nid = \"pa\"\nname = \"x\"\nticket_prefix = \"B\"\nrooms = [\"r\"]\n");
        let c = Config::from_toml(&text).unwrap();
        assert_eq!(key_of(c.validate().unwrap_err()), "units[1].id");
    }

    #[test]
    fn unknown_keys_and_bad_durations_are_parse_errors_naming_the_key() {
        let err = Config::from_toml(&format!("[server]\nbnd = \"x\"\n{MINIMAL}")).unwrap_err();
        assert!(err.to_string().contains("bnd"), "{err}");
        let err = Config::from_toml(&format!(
            "[protocol]\ntriage_max_wait = \"soon\"\n{MINIMAL}"
        ))
        .unwrap_err();
        assert!(err.to_string().contains("triage_max_wait"), "{err}");
    }

    #[test]
    fn triage_rooms_must_be_rooms_of_the_unit() {
        let c =
            Config::from_toml(&format!("{MINIMAL}triage_rooms = [\"Consultório 1\"]\n")).unwrap();
        c.validate().unwrap();
        assert_eq!(c.units[0].triage_rooms, ["Consultório 1"]);
        let c = Config::from_toml(&format!("{MINIMAL}triage_rooms = [\"Sala 9\"]\n")).unwrap();
        assert_eq!(
            key_of(c.validate().unwrap_err()),
            "units[0].triage_rooms[0]"
        );
    }

    #[test]
    fn missing_units_or_colours_are_named() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(key_of(c.validate().unwrap_err()), "protocol.colours");
    }
}
