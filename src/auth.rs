//! Who is calling: bearer tokens are looked up by their SHA-256 (the config
//! never holds a token) and compared in constant time. Which roles may use a
//! route is said by the route table (`http::routes`), which checks every
//! request against [`Authenticator::authorize`].

use std::fmt;
use std::str::FromStr;

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{AuthConfig, AuthMode, TokenConfig};

/// The actor recorded for changes in open mode.
pub const ANONYMOUS: &str = "anonymous";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Reception,
    Triage,
    Clinician,
    Display,
    Monitor,
    Admin,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Reception,
        Role::Triage,
        Role::Clinician,
        Role::Display,
        Role::Monitor,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reception => "reception",
            Role::Triage => "triage",
            Role::Clinician => "clinician",
            Role::Display => "display",
            Role::Monitor => "monitor",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role `{s}`"))
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

struct Entry {
    hash: [u8; 32],
    name: String,
    role: Role,
}

pub struct Authenticator {
    mode: AuthMode,
    tokens: Vec<Entry>,
}

pub fn sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Authenticator {
    /// Builds from validated config (hashes are 64 hex digits, roles known).
    pub fn new(config: &AuthConfig) -> Self {
        let tokens = config
            .tokens
            .iter()
            .filter_map(|t: &TokenConfig| {
                let mut hash = [0u8; 32];
                hex::decode_to_slice(&t.sha256, &mut hash).ok()?;
                Some(Entry {
                    hash,
                    name: t.name.clone(),
                    role: t.role.parse().ok()?,
                })
            })
            .collect();
        Self {
            mode: config.mode,
            tokens,
        }
    }

    /// Who presents `token` (`None`: no token was sent).
    fn identify(&self, token: Option<&str>) -> Result<Caller, Denied> {
        if self.mode == AuthMode::Open {
            return Ok(Caller::anonymous());
        }
        let token = token.ok_or(Denied::Unauthenticated)?;
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Look at every entry, so the time taken does not say which one matched.
        let mut found: Option<&Entry> = None;
        for e in &self.tokens {
            if bool::from(e.hash.ct_eq(&presented)) {
                found = Some(e);
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
        Authenticator::new(&AuthConfig {
            mode: AuthMode::Tokens,
            tokens: entries
                .iter()
                .map(|(name, role, token)| TokenConfig {
                    name: (*name).into(),
                    role: (*role).into(),
                    sha256: sha256_hex(token),
                })
                .collect(),
            ..AuthConfig::default()
        })
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
        let a = Authenticator::new(&AuthConfig::default());
        let caller = a.authorize(None, &[]).unwrap();
        assert_eq!(caller, Caller::anonymous());
        assert_eq!(caller.name(), ANONYMOUS);
    }
}
