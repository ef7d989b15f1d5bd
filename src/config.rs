//! Typed settings: the TOML file of API.md section 4, its defaults, the
//! `TRIAGEM_BIND` / `TRIAGEM_DATA_DIR` overrides, and validation that names the
//! offending key so a bad config stops start-up with one clear message.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub const ENV_BIND: &str = "TRIAGEM_BIND";
pub const ENV_DATA_DIR: &str = "TRIAGEM_DATA_DIR";
/// A TOML file of `[[tokens]]` tables that replaces `auth.tokens`, so token
/// hashes can live outside the committed config.
pub const ENV_TOKENS_FILE: &str = "TRIAGEM_TOKENS_FILE";
pub const DEFAULT_CONFIG_PATH: &str = "config/default.toml";

/// The longest name a colour, unit or room id may have; keeps labels and metric values sane.
const MAX_ID_LEN: usize = 64;

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

/// `http(s)://host[:port]`: what a browser sends as `Origin`.
fn valid_origin(origin: &str) -> bool {
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    rest.is_some_and(|host| {
        !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
    })
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_timezone")]
    pub timezone: String,
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub protocol: ProtocolConfig,
    #[serde(default)]
    pub escalation: EscalationConfig,
    #[serde(default)]
    pub alerts: AlertsConfig,
    #[serde(default)]
    pub units: Vec<UnitConfig>,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub web: WebConfig,
}

fn default_timezone() -> String {
    "UTC".to_owned()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_bind")]
    pub bind: String,
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Origins (`https://host[:port]`) whose pages may call the API from a
    /// browser; empty (the default) sends no CORS headers at all.
    #[serde(default)]
    pub cors_origins: Vec<String>,
}

fn default_bind() -> String {
    "127.0.0.1:8080".to_owned()
}
fn default_max_body_bytes() -> usize {
    16 * 1024
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: default_bind(),
            max_body_bytes: default_max_body_bytes(),
            cors_origins: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}
fn default_retention_days() -> u32 {
    90
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            data_dir: default_data_dir(),
            retention_days: default_retention_days(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClockStarts {
    #[default]
    Triage,
    Arrival,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtocolConfig {
    #[serde(default = "default_protocol_name")]
    pub name: String,
    #[serde(default = "default_triage_max_wait", with = "humantime_serde")]
    pub triage_max_wait: Duration,
    #[serde(default)]
    pub clock_starts: ClockStarts,
    #[serde(default)]
    pub colours: Vec<ColourConfig>,
}

fn default_protocol_name() -> String {
    "Acolhimento com Classificação de Risco".to_owned()
}
fn default_triage_max_wait() -> Duration {
    Duration::from_secs(10 * 60)
}

impl Default for ProtocolConfig {
    fn default() -> Self {
        Self {
            name: default_protocol_name(),
            triage_max_wait: default_triage_max_wait(),
            clock_starts: ClockStarts::default(),
            colours: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColourConfig {
    pub id: String,
    pub label: String,
    #[serde(with = "humantime_serde")]
    pub max_wait: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationConfig {
    #[serde(default = "default_tick", with = "humantime_serde")]
    pub tick: Duration,
    #[serde(default = "default_warning_at_percent")]
    pub warning_at_percent: u32,
    #[serde(default = "default_levels")]
    pub levels: Vec<LevelConfig>,
}

fn default_tick() -> Duration {
    Duration::from_secs(1)
}
fn default_warning_at_percent() -> u32 {
    80
}
fn default_levels() -> Vec<LevelConfig> {
    vec![
        LevelConfig {
            name: "nursing-coordinator".to_owned(),
            after: Duration::ZERO,
        },
        LevelConfig {
            name: "physician-on-duty".to_owned(),
            after: Duration::from_secs(15 * 60),
        },
    ]
}

impl Default for EscalationConfig {
    fn default() -> Self {
        Self {
            tick: default_tick(),
            warning_at_percent: default_warning_at_percent(),
            levels: default_levels(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelConfig {
    pub name: String,
    #[serde(with = "humantime_serde")]
    pub after: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    #[serde(default)]
    pub webhooks: Vec<WebhookConfig>,
    /// How long one delivery attempt may take.
    #[serde(default = "default_webhook_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// First pause before retrying a failed delivery; doubles up to `retry_max`.
    #[serde(default = "default_retry_initial", with = "humantime_serde")]
    pub retry_initial: Duration,
    #[serde(default = "default_retry_max", with = "humantime_serde")]
    pub retry_max: Duration,
}

fn default_webhook_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_retry_initial() -> Duration {
    Duration::from_millis(500)
}
fn default_retry_max() -> Duration {
    Duration::from_secs(60)
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            webhooks: Vec::new(),
            timeout: default_webhook_timeout(),
            retry_initial: default_retry_initial(),
            retry_max: default_retry_max(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitConfig {
    pub id: String,
    pub name: String,
    pub ticket_prefix: String,
    pub rooms: Vec<String>,
    /// The rooms (among `rooms`) that serve the triage queue; the pages offer
    /// them for triage calls and the others for treatment calls.
    #[serde(default)]
    pub triage_rooms: Vec<String>,
    #[serde(default = "default_max_no_shows")]
    pub max_no_shows: u32,
}

fn default_max_no_shows() -> u32 {
    3
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    #[default]
    Open,
    Tokens,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    #[serde(default)]
    pub mode: AuthMode,
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    /// A TOML file with `[[tokens]]` tables replacing `tokens` (env `TRIAGEM_TOKENS_FILE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_file: Option<PathBuf>,
    /// Admissions one token may make per minute (tokens mode); 0 means no limit.
    #[serde(default = "default_admissions_per_minute")]
    pub admissions_per_minute: u32,
}

fn default_admissions_per_minute() -> u32 {
    600
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            mode: AuthMode::default(),
            tokens: Vec::new(),
            tokens_file: None,
            admissions_per_minute: default_admissions_per_minute(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    #[serde(default)]
    tokens: Vec<TokenConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub name: String,
    pub role: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    #[serde(default)]
    pub format: LogFormat,
    #[serde(default = "default_log_level")]
    pub level: String,
}

fn default_log_level() -> String {
    "info".to_owned()
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::default(),
            level: default_log_level(),
        }
    }
}

/// The languages the web pages speak.
pub const WEB_LANGS: [&str; 2] = ["pt-BR", "en"];

/// The web pages (`/display`, `/reception`, `/clinician`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// The pages' language when the URL has no `?lang=`: `pt-BR` or `en`.
    #[serde(default = "default_web_lang")]
    pub lang: String,
}

fn default_web_lang() -> String {
    "pt-BR".to_owned()
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            lang: default_web_lang(),
        }
    }
}

/// Roles of API.md section 5; the token entries are checked against this list.
pub const ROLES: [&str; 6] = [
    "reception",
    "triage",
    "clinician",
    "display",
    "monitor",
    "admin",
];

impl Config {
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
        config.apply_env(|name| std::env::var(name).ok());
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

    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) {
        if let Some(bind) = var(ENV_BIND).filter(|v| !v.is_empty()) {
            self.server.bind = bind;
        }
        if let Some(dir) = var(ENV_DATA_DIR).filter(|v| !v.is_empty()) {
            self.storage.data_dir = PathBuf::from(dir);
        }
        if let Some(file) = var(ENV_TOKENS_FILE).filter(|v| !v.is_empty()) {
            self.auth.tokens_file = Some(PathBuf::from(file));
        }
    }

    /// Replaces `auth.tokens` with the tokens file's, when one is named.
    pub fn load_tokens_file(&mut self) -> Result<(), ConfigError> {
        let Some(path) = self.auth.tokens_file.clone() else {
            return Ok(());
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let file: TokensFile = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.clone(),
            message: e.to_string(),
        })?;
        self.auth.tokens = file.tokens;
        Ok(())
    }

    pub fn bind_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.server.bind.parse().map_err(|_| {
            invalid(
                "server.bind",
                format!(
                    "`{}` is not an address:port such as 127.0.0.1:8080",
                    self.server.bind
                ),
            )
        })
    }

    pub fn time_zone(&self) -> Result<chrono_tz::Tz, ConfigError> {
        self.timezone.parse().map_err(|_| {
            invalid(
                "timezone",
                format!(
                    "`{}` is not an IANA time zone such as America/Sao_Paulo",
                    self.timezone
                ),
            )
        })
    }

    /// Checks every rule the types cannot express; the first failure names its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.time_zone()?;
        let bind = self.bind_addr()?;
        if self.server.max_body_bytes < 256 {
            return Err(invalid(
                "server.max_body_bytes",
                "must be at least 256 bytes",
            ));
        }
        for (i, origin) in self.server.cors_origins.iter().enumerate() {
            if !valid_origin(origin) {
                return Err(invalid(
                    format!("server.cors_origins[{i}]"),
                    format!(
                        "{origin:?} is not an origin: write scheme and host (and port), \
                         like \"https://intranet.hospital.example\", with no path and no wildcard"
                    ),
                ));
            }
        }
        if self.storage.data_dir.as_os_str().is_empty() {
            return Err(invalid("storage.data_dir", "must not be empty"));
        }
        if self.storage.retention_days == 0 {
            return Err(invalid("storage.retention_days", "must be at least 1"));
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
        for (i, hook) in self.alerts.webhooks.iter().enumerate() {
            let ok = hook.url.starts_with("http://") || hook.url.starts_with("https://");
            if !ok || hook.url.len() < 10 {
                return Err(invalid(
                    format!("alerts.webhooks[{i}].url"),
                    "must be an http:// or https:// URL",
                ));
            }
        }
        self.validate_units()?;
        if !WEB_LANGS.contains(&self.web.lang.as_str()) {
            return Err(invalid(
                "web.lang",
                format!("`{}` is not one of {}", self.web.lang, WEB_LANGS.join(", ")),
            ));
        }
        self.validate_auth(bind)
    }

    fn validate_protocol(&self) -> Result<(), ConfigError> {
        let p = &self.protocol;
        if p.name.trim().is_empty() {
            return Err(invalid("protocol.name", "must not be empty"));
        }
        if p.triage_max_wait.is_zero() {
            return Err(invalid(
                "protocol.triage_max_wait",
                "must be longer than 0s",
            ));
        }
        if p.colours.is_empty() {
            return Err(invalid(
                "protocol.colours",
                "at least one colour is required (see config/default.toml)",
            ));
        }
        let mut seen = HashSet::new();
        for (i, c) in p.colours.iter().enumerate() {
            check_id(&format!("protocol.colours[{i}].id"), &c.id)?;
            if !seen.insert(c.id.as_str()) {
                return Err(invalid(
                    format!("protocol.colours[{i}].id"),
                    format!("colour `{}` is listed twice", c.id),
                ));
            }
            if c.label.trim().is_empty() {
                return Err(invalid(
                    format!("protocol.colours[{i}].label"),
                    "must not be empty",
                ));
            }
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
        for (i, u) in self.units.iter().enumerate() {
            check_id(&format!("units[{i}].id"), &u.id)?;
            if !seen.insert(u.id.as_str()) {
                return Err(invalid(
                    format!("units[{i}].id"),
                    format!("unit `{}` is listed twice", u.id),
                ));
            }
            if u.name.trim().is_empty() {
                return Err(invalid(format!("units[{i}].name"), "must not be empty"));
            }
            let prefix_ok = !u.ticket_prefix.is_empty()
                && u.ticket_prefix.chars().count() <= 4
                && u.ticket_prefix.chars().all(|c| c.is_alphabetic());
            if !prefix_ok {
                return Err(invalid(
                    format!("units[{i}].ticket_prefix"),
                    "must be 1 to 4 letters",
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
                if room.trim().is_empty() || room.chars().count() > 100 || !rooms.insert(room) {
                    return Err(invalid(
                        format!("units[{i}].rooms[{j}]"),
                        "rooms must be non-empty, at most 100 characters and unique",
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

    fn validate_auth(&self, bind: SocketAddr) -> Result<(), ConfigError> {
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
                for (i, t) in self.auth.tokens.iter().enumerate() {
                    if t.name.trim().is_empty() {
                        return Err(invalid(
                            format!("auth.tokens[{i}].name"),
                            "must not be empty",
                        ));
                    }
                    if !ROLES.contains(&t.role.as_str()) {
                        return Err(invalid(
                            format!("auth.tokens[{i}].role"),
                            format!("must be one of {}", ROLES.join(", ")),
                        ));
                    }
                    let hex_ok =
                        t.sha256.len() == 64 && t.sha256.chars().all(|c| c.is_ascii_hexdigit());
                    if !hex_ok {
                        return Err(invalid(
                            format!("auth.tokens[{i}].sha256"),
                            "must be the 64 hex digits of the token's SHA-256",
                        ));
                    }
                }
                Ok(())
            }
        }
    }
}

fn check_id(key: &str, id: &str) -> Result<(), ConfigError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            key,
            format!("`{id}` must be 1 to {MAX_ID_LEN} lowercase letters, digits, `-` or `_`"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn web_pages_speak_portuguese_by_default_or_english() {
        let c = Config::from_toml(MINIMAL).unwrap();
        assert_eq!(c.web.lang, "pt-BR");
        c.validate().unwrap();
        let en = Config::from_toml(&format!("{MINIMAL}\n[web]\nlang = \"en\"\n")).unwrap();
        assert_eq!(en.web.lang, "en");
        en.validate().unwrap();
        let fr = Config::from_toml(&format!("{MINIMAL}\n[web]\nlang = \"fr\"\n")).unwrap();
        assert_eq!(key_of(fr.validate().unwrap_err()), "web.lang");
    }

    #[test]
    fn cors_origins_are_off_by_default_and_must_be_plain_origins() {
        let c = Config::from_toml(MINIMAL).unwrap();
        assert!(c.server.cors_origins.is_empty());
        let with = |list: &str| {
            Config::from_toml(&format!("{MINIMAL}\n[server]\ncors_origins = {list}\n"))
                .unwrap()
                .validate()
        };
        with(r#"["https://intranet.hospital.example", "http://10.0.0.5:8080"]"#).unwrap();
        for bad in [
            "*",
            "intranet.example",
            "https://x.example/",
            "https://",
            "ftp://x",
        ] {
            let err = with(&format!("[{bad:?}]")).unwrap_err();
            assert_eq!(key_of(err), "server.cors_origins[0]", "{bad}");
        }
    }

    #[test]
    fn a_value_that_does_not_parse_is_reported_with_its_key() {
        let cases = [
            ("[server]\nbindd = \"x\"\n", "`server.bindd`"),
            ("[auth]\nmode = \"closed\"\n", "`auth.mode`"),
            (
                "[[protocol.colours]]\nid = \"red\"\nlabel = \"R\"\nmax_wait = \"thirty\"\n",
                "`protocol.colours[0].max_wait`",
            ),
        ];
        for (text, key) in cases {
            let message = Config::from_toml(text).unwrap_err().to_string();
            assert!(message.contains(key), "{message}");
            assert!(message.contains("line"), "{message}");
        }
    }

    #[test]
    fn a_minimal_config_gets_the_documented_defaults() {
        let c = Config::from_toml(MINIMAL).unwrap();
        c.validate().unwrap();
        assert_eq!(c.timezone, "UTC");
        assert_eq!(c.server.bind, "127.0.0.1:8080");
        assert_eq!(c.server.max_body_bytes, 16384);
        assert_eq!(c.storage.retention_days, 90);
        assert_eq!(c.protocol.triage_max_wait, Duration::from_secs(600));
        assert_eq!(c.protocol.clock_starts, ClockStarts::Triage);
        assert_eq!(c.escalation.warning_at_percent, 80);
        assert_eq!(c.units[0].max_no_shows, 3);
        assert_eq!(c.auth.mode, AuthMode::Open);
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
        c.server.bind = "0.0.0.0:8080".into();
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
        });
        assert_eq!(c.server.bind, "127.0.0.1:9999");
        assert_eq!(c.storage.data_dir, PathBuf::from("/tmp/elsewhere"));
    }

    #[test]
    fn bad_values_are_reported_by_key() {
        let cases: &[(&str, &str)] = &[
            ("timezone = \"Mars/Olympus\"\n", "timezone"),
            ("[server]\nbind = \"nowhere\"\n", "server.bind"),
            ("[escalation]\ntick = \"0s\"\n", "escalation.tick"),
            (
                "[escalation]\nwarning_at_percent = 150\n",
                "escalation.warning_at_percent",
            ),
            ("[storage]\nretention_days = 0\n", "storage.retention_days"),
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
