//! Who is calling: bearer tokens are looked up by their SHA-256 (the config
//! never holds a token) and compared in constant time. Which roles may use a
//! route is said by the route table (`http::routes`), which checks every
//! request against [`Authenticator::authorize`].

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The actor recorded for changes in open mode.
pub const ANONYMOUS: &str = "anonymous";

/// Why a token's name cannot be used (`None`: it can). The name is the actor
/// of every change made with the token, so it must be visible and not one the
/// service writes into the history itself.
pub fn token_name_refusal(name: &str) -> Option<String> {
    if name.trim().is_empty() || crate::domain::patient::stray_control(name, false) {
        return Some(
            "must not be empty or hold control or bidirectional override characters".into(),
        );
    }
    if [crate::domain::SYSTEM_ACTOR, ANONYMOUS].contains(&name) {
        return Some(format!("`{name}` is the service's own actor name"));
    }
    None
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
    strum::Display,
    strum::EnumString,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Role {
    Reception,
    Triage,
    Clinician,
    Display,
    Monitor,
    Admin,
}

impl Role {
    pub const ALL: &'static [Role] = <Role as strum::VariantArray>::VARIANTS;
}

/// `open` (no tokens; only allowed on a loopback bind) or `tokens`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    #[default]
    Open,
    Tokens,
}

/// One issued token, as the config holds it: who, which role, and the
/// SHA-256 of the token (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Token {
    /// Recorded as the actor of every change made with the token.
    pub name: String,
    pub role: Role,
    pub sha256: TokenHash,
}

/// The SHA-256 of a token, written as 64 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }
}

impl TryFrom<String> for TokenHash {
    type Error = &'static str;
    fn try_from(hex_digits: String) -> Result<Self, Self::Error> {
        let mut hash = [0u8; 32];
        hex::decode_to_slice(&hex_digits, &mut hash)
            .map_err(|_| "must be the 64 hex digits of the token's SHA-256")?;
        Ok(Self(hash))
    }
}

impl From<TokenHash> for String {
    fn from(h: TokenHash) -> Self {
        hex::encode(h.0)
    }
}

/// The checked caller of a request. Only [`Authenticator::authorize`] builds
/// one, so a handler that takes a `Caller` cannot run without the check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    name: String,
    /// `None` in open mode: everything is allowed.
    role: Option<Role>,
}

impl Caller {
    fn anonymous() -> Self {
        Self {
            name: ANONYMOUS.to_owned(),
            role: None,
        }
    }

    /// The name recorded as the actor of the caller's changes.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn role(&self) -> Option<Role> {
        self.role
    }

    /// The display role sees queues without personal data.
    pub fn is_display(&self) -> bool {
        self.role == Some(Role::Display)
    }

    /// Triage may call only the triage queue; clinicians and admins either.
    /// Classifying (a colour at admission, as by `triage`) is the triage
    /// nurse's act: the roles that may triage, and anyone in open mode.
    pub fn may_classify(&self) -> bool {
        matches!(
            self.role,
            None | Some(Role::Admin) | Some(Role::Clinician) | Some(Role::Triage)
        )
    }

    pub fn may_call(&self, queue: crate::domain::patient::QueueKind) -> bool {
        use crate::domain::patient::QueueKind;
        match self.role {
            None | Some(Role::Admin) | Some(Role::Clinician) => true,
            Some(Role::Triage) => queue == QueueKind::Triage,
            Some(_) => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No token, or one nobody issued: 401.
    Unauthenticated,
    /// A valid token whose role may not do this: 403.
    Forbidden(Role),
}

pub struct Authenticator {
    mode: AuthMode,
    tokens: Vec<Token>,
}

pub fn sha256_hex(token: &str) -> String {
    String::from(TokenHash::of(token))
}

impl Authenticator {
    pub fn new(mode: AuthMode, tokens: &[Token]) -> Self {
        Self {
            mode,
            tokens: tokens.to_vec(),
        }
    }

    /// Who presents `token` (`None`: no token was sent).
    fn identify(&self, token: Option<&str>) -> Result<Caller, Denied> {
        if self.mode == AuthMode::Open {
            return Ok(Caller::anonymous());
        }
        let token = token.ok_or(Denied::Unauthenticated)?;
        let presented = TokenHash::of(token);
        // Look at every entry, so the time taken does not say which one matched.
        let mut found: Option<&Token> = None;
        for t in &self.tokens {
            if bool::from(t.sha256.0.ct_eq(&presented.0)) {
                found = Some(t);
            }
        }
        found
            .map(|e| Caller {
                name: e.name.clone(),
                role: Some(e.role),
            })
            .ok_or(Denied::Unauthenticated)
    }

    /// Identifies the caller and checks that their role is among `allowed`
    /// (admin always is). In open mode everyone is allowed, as `anonymous`.
    pub fn authorize(&self, token: Option<&str>, allowed: &[Role]) -> Result<Caller, Denied> {
        let caller = self.identify(token)?;
        match caller.role {
            None | Some(Role::Admin) => Ok(caller),
            Some(role) if allowed.contains(&role) => Ok(caller),
            Some(role) => Err(Denied::Forbidden(role)),
        }
    }
}

/// A new token: 256 bits from the OS's random source, as 64 hex digits.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(entries: &[(&str, &str, &str)]) -> Authenticator {
        let tokens: Vec<Token> = entries
            .iter()
            .map(|(name, role, token)| Token {
                name: (*name).into(),
                role: role.parse().unwrap(),
                sha256: TokenHash::of(token),
            })
            .collect();
        Authenticator::new(AuthMode::Tokens, &tokens)
    }

    #[test]
    fn a_generated_token_is_long_random_and_round_trips_through_its_hash() {
        let t = new_token();
        assert_eq!(t.len(), 64);
        assert_ne!(t, new_token());
        let a = auth(&[("recepcao-1", "reception", &t)]);
        let caller = a.identify(Some(&t)).unwrap();
        assert_eq!(caller.name, "recepcao-1");
        assert_eq!(caller.role, Some(Role::Reception));
        assert_eq!(a.identify(Some("nope")), Err(Denied::Unauthenticated));
        assert_eq!(a.identify(None), Err(Denied::Unauthenticated));
    }

    #[test]
    fn roles_and_hashes_read_and_write_as_the_config_spells_them() {
        assert_eq!("clinician".parse::<Role>().unwrap(), Role::Clinician);
        assert_eq!(Role::Monitor.to_string(), "monitor");
        assert!("nurse".parse::<Role>().is_err());
        assert_eq!(Role::ALL.len(), 6);
        let hex = sha256_hex("abc");
        assert_eq!(String::from(TokenHash::try_from(hex.clone()).unwrap()), hex);
        assert!(TokenHash::try_from("abc".to_owned()).is_err());
    }

    #[test]
    fn a_role_is_allowed_where_listed_and_admin_everywhere() {
        let a = auth(&[("d", "display", "dt"), ("x", "admin", "at")]);
        assert_eq!(
            a.authorize(Some("dt"), &[Role::Display]).unwrap().name(),
            "d"
        );
        assert_eq!(
            a.authorize(Some("dt"), &[Role::Reception]),
            Err(Denied::Forbidden(Role::Display))
        );
        assert!(a.authorize(Some("at"), &[]).is_ok());
        assert_eq!(
            a.authorize(None, &[Role::Display]),
            Err(Denied::Unauthenticated)
        );
    }

    #[test]
    fn open_mode_lets_anyone_in_as_anonymous() {
        let a = Authenticator::new(AuthMode::Open, &[]);
        let caller = a.authorize(None, &[]).unwrap();
        assert_eq!(caller, Caller::anonymous());
        assert_eq!(caller.name(), ANONYMOUS);
    }
}
