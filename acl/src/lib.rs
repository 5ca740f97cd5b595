//! `sekisho-acl`: Consul's ACL rule language and the authorizer, with no I/O.
//!
//! ```text
//!  rules text (HCL or JSON) ─► Rules::parse ─► Rules ─┐
//!  service / node identity  ─► *_identity_rules ──────┼─► Authorizer::add ─► authorize(resource, segment, access)
//!  default policy (allow | deny), global-management ──┘        └─► Decision { allowed, reason: rule + policy | default }
//! ```
//!
//! Matching follows Consul: an exact rule beats every prefix rule, the longest matching
//! prefix beats shorter ones, and when several policies of one token name the same label
//! the strongest disposition wins (deny > write > list > read). A request no rule matches
//! falls through to the default policy. Every [`Decision`] names the rule and policy that
//! made it, which feeds Consul's 1.12+ denial text ([`Decision::denied_message`]) and
//! Sekisho's explain API ([`Decision::explain`], [`Decision::suggestion`]).
#![warn(missing_docs)]

mod authorizer;
mod jwt;
mod rules;

pub use authorizer::{Authorizer, Decision, DefaultPolicy, Grant, PolicyRef, Reason, compile};
pub use jwt::{JwtConfig, JwtError, VerifiedClaims, interpolate};
pub use rules::{
    Access, Disposition, Label, Resource, Rule, RuleError, Rules, node_identity_rules, service_identity_rules,
};

#[cfg(test)]
mod tests;
