//! The domain policy of SPEC §3: a whitelist of origins, or allow-any.
//!
//! OWNER NOTE (remove when implemented): written by a helper; the signatures
//! below are the contract the rest of core uses.

use std::str::FromStr;

use crate::target::Target;

/// One whitelist entry: `https://api.example.com`, `https://api.example.com:8443`,
/// or `https://*.example.com` (every subdomain, not the domain itself).
/// `wss://` entries are the same as `https://` ones; `http://`/`ws://`
/// entries match plain URLs (useful only with the loopback switch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPattern {
    _todo: (),
}

/// Why a whitelist entry could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPatternError(pub String);

impl std::fmt::Display for OriginPatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid whitelist entry: {}", self.0)
    }
}
impl std::error::Error for OriginPatternError {}

impl FromStr for OriginPattern {
    type Err = OriginPatternError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let _ = s;
        todo!()
    }
}

impl OriginPattern {
    /// Whether `target` is of this origin (SPEC §3 port and subdomain rules;
    /// `wss` checked as `https`, `ws` as `http`).
    pub fn matches(&self, target: &Target) -> bool {
        let _ = target;
        todo!()
    }
}

/// Which origins an app may reach. There is no default: the host chooses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainPolicy {
    /// Any origin (the IDE's "ignore domain check", for development).
    AllowAny,
    /// Only the listed origins.
    Whitelist(Vec<OriginPattern>),
}

impl DomainPolicy {
    /// Whether `target`'s origin is allowed.
    pub fn allows(&self, target: &Target) -> bool {
        match self {
            DomainPolicy::AllowAny => true,
            DomainPolicy::Whitelist(entries) => entries.iter().any(|e| e.matches(target)),
        }
    }
}
