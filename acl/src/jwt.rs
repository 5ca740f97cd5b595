//! Consul's `jwt` auth method: the method's Config, bearer-token verification and the claim
//! mappings that binding rules select on and bind names interpolate.
//!
//! ```text
//!  Config JSON ──────────┐
//!  JWKSFile text (caller)┴─► JwtConfig::from_json* ─► JwtConfig
//!                                                        │
//!  bearer JWT, now ──────────────────────────────────► verify ─► header alg ∈ JWTSupportedAlgs
//!                                                        │       key: JWKS kid, else every fitting key
//!                                                        │       signature, exp / nbf / iat, iss, aud
//!                                                        └─► VerifiedClaims { value, list }
//!                                                              ├─► as_selectable()  {"value": .., "list": ..}
//!                                                              └─► interpolate("${value.name}")
//! ```
//!
//! Sekisho does no I/O here: instead of `JWKSURL` / `OIDCDiscoveryURL` the Config carries the
//! JWKS document itself (`JWKS`) or names a file (`JWKSFile`) whose text the caller reads and
//! passes to [`JwtConfig::from_json_with_jwks_file`]. Time checks run against the `now_unix`
//! the caller passes, so they are deterministic.

use std::collections::BTreeMap;
use std::fmt;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

/// Default `ExpirationLeeway` and `NotBeforeLeeway` (Consul's `claimDefaultLeeway`), in seconds.
const DEFAULT_LEEWAY_SECS: f64 = 150.0;
/// Default `ClockSkewLeeway` (go-jose's `DefaultLeeway`), in seconds.
const DEFAULT_CLOCK_SKEW_SECS: f64 = 60.0;

/// The signing algorithms the auth method can be told to accept, by their JOSE names.
const ALGORITHMS: [(&str, Algorithm); 9] = [
    ("RS256", Algorithm::RS256),
    ("RS384", Algorithm::RS384),
    ("RS512", Algorithm::RS512),
    ("PS256", Algorithm::PS256),
    ("PS384", Algorithm::PS384),
    ("PS512", Algorithm::PS512),
    ("ES256", Algorithm::ES256),
    ("ES384", Algorithm::ES384),
    ("EdDSA", Algorithm::EdDSA),
];

/// An error from parsing the auth method's Config, verifying a token, mapping its claims or
/// interpolating a bind name. The `Display` text is what the user sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// The Config is invalid; `field` names the key as it was spelled, with an index or map key
    /// for entries (`JWTValidationPubKeys[1]`, `JWKS.keys[0]`).
    #[error("{field}: {message}")]
    Config {
        /// The offending Config key.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The bearer token is not a well-formed compact JWS.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The token's `alg` is not one of `JWTSupportedAlgs` (this includes `none`).
    #[error("unsupported algorithm {alg:?}: the auth method accepts {supported:?}")]
    UnsupportedAlgorithm {
        /// The header's `alg`.
        alg: String,
        /// The accepted algorithms.
        supported: Vec<String>,
    },
    /// No configured key can verify the token.
    #[error("no key to verify the token: {0}")]
    NoKey(String),
    /// No candidate key verifies the signature.
    #[error("invalid signature")]
    InvalidSignature,
    /// `exp` is before now minus the expiration and clock-skew leeways.
    #[error(
        "token is expired: claim \"exp\" ({exp}) is before now minus leeway (now {now}, leeway {leeway})"
    )]
    Expired {
        /// The claim as the token has it.
        exp: String,
        /// The time the token was checked at (Unix seconds).
        now: u64,
        /// The leeway applied, e.g. `210s`.
        leeway: String,
    },
    /// `nbf` (or `iat`) is after now plus its leeway.
    #[error(
        "token is not yet valid: claim {claim:?} ({value}) is after now plus leeway (now {now}, leeway {leeway})"
    )]
    NotYetValid {
        /// `nbf` or `iat`.
        claim: String,
        /// The claim as the token has it.
        value: String,
        /// The time the token was checked at (Unix seconds).
        now: u64,
        /// The leeway applied, e.g. `210s`.
        leeway: String,
    },
    /// `iss` is missing or not `BoundIssuer`.
    #[error("invalid issuer: {0}")]
    InvalidIssuer(String),
    /// `aud` is missing or names none of `BoundAudiences`.
    #[error("invalid audience: {0}")]
    InvalidAudience(String),
    /// A claim has the wrong type (a time claim that is not a number, a mapped claim that is
    /// an object, ...).
    #[error("invalid claim {claim:?}: {message}")]
    InvalidClaim {
        /// The claim name or JSON pointer.
        claim: String,
        /// What is wrong with it.
        message: String,
    },
    /// A bind-name template could not be interpolated.
    #[error("invalid template {template:?}: {message}")]
    Template {
        /// The template text.
        template: String,
        /// What is wrong with it.
        message: String,
    },
}

fn config_err(field: impl Into<String>, message: impl Into<String>) -> JwtError {
    JwtError::Config { field: field.into(), message: message.into() }
}

fn malformed(message: impl Into<String>) -> JwtError {
    JwtError::Malformed(message.into())
}

/// The type of a public key, which decides the algorithms it can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl KeyKind {
    fn can_verify(self, alg: Algorithm) -> bool {
        match self {
            KeyKind::Rsa => matches!(
                alg,
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
            ),
            KeyKind::P256 => alg == Algorithm::ES256,
            KeyKind::P384 => alg == Algorithm::ES384,
            KeyKind::Ed25519 => alg == Algorithm::EdDSA,
        }
    }

    /// An algorithm the key must be usable with, to check the key when it is loaded.
    fn probe_algorithm(self) -> Algorithm {
        match self {
            KeyKind::Rsa => Algorithm::RS256,
            KeyKind::P256 => Algorithm::ES256,
            KeyKind::P384 => Algorithm::ES384,
            KeyKind::Ed25519 => Algorithm::EdDSA,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            KeyKind::Rsa => "an RSA key",
            KeyKind::P256 => "an EC P-256 key",
            KeyKind::P384 => "an EC P-384 key",
            KeyKind::Ed25519 => "an Ed25519 key",
        }
    }
}

/// A loaded verification key. Its `Debug` names the key, never its bytes.
#[derive(Clone)]
struct PublicKey {
    /// Where the key came from: `JWTValidationPubKeys[0]`, `JWKS.keys[1]`.
    source: String,
    kind: KeyKind,
    kid: Option<String>,
    /// The JWK's `alg`, which restricts the key to that one algorithm.
    alg: Option<Algorithm>,
    key: DecodingKey,
}

impl PublicKey {
    fn can_verify(&self, alg: Algorithm) -> bool {
        self.kind.can_verify(alg) && self.alg.is_none_or(|only| only == alg)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("source", &self.source)
            .field("kind", &self.kind.describe())
            .field("kid", &self.kid)
            .field("alg", &self.alg.map(algorithm_name))
            .finish_non_exhaustive()
    }
}

/// A parsed and checked `jwt` auth-method Config. Its `Debug` lists the keys by source and
/// type without their bytes.
#[derive(Clone)]
pub struct JwtConfig {
    static_keys: Vec<PublicKey>,
    jwks_keys: Vec<PublicKey>,
    bound_issuer: Option<String>,
    bound_audiences: Vec<String>,
    claim_mappings: BTreeMap<String, String>,
    list_claim_mappings: BTreeMap<String, String>,
    supported_algs: Vec<Algorithm>,
    expiration_leeway: f64,
    not_before_leeway: f64,
    clock_skew_leeway: f64,
}

impl fmt::Debug for JwtConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtConfig")
            .field("static_keys", &self.static_keys)
            .field("jwks_keys", &self.jwks_keys)
            .field("bound_issuer", &self.bound_issuer)
            .field("bound_audiences", &self.bound_audiences)
            .field("claim_mappings", &self.claim_mappings)
            .field("list_claim_mappings", &self.list_claim_mappings)
            .field(
                "supported_algs",
                &self.supported_algs.iter().map(|a| algorithm_name(*a)).collect::<Vec<_>>(),
            )
            .field("expiration_leeway", &secs(self.expiration_leeway))
            .field("not_before_leeway", &secs(self.not_before_leeway))
            .field("clock_skew_leeway", &secs(self.clock_skew_leeway))
            .finish()
    }
}

/// The Config keys of a `jwt` auth method, by Consul's spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Field {
    PubKeys,
    Jwks,
    JwksFile,
    BoundIssuer,
    BoundAudiences,
    ClaimMappings,
    ListClaimMappings,
    SupportedAlgs,
    ExpirationLeeway,
    NotBeforeLeeway,
    ClockSkewLeeway,
    VerboseOidcLogging,
}

const FIELDS: [(&str, Field); 12] = [
    ("JWTValidationPubKeys", Field::PubKeys),
    ("JWKS", Field::Jwks),
    ("JWKSFile", Field::JwksFile),
    ("BoundIssuer", Field::BoundIssuer),
    ("BoundAudiences", Field::BoundAudiences),
    ("ClaimMappings", Field::ClaimMappings),
    ("ListClaimMappings", Field::ListClaimMappings),
    ("JWTSupportedAlgs", Field::SupportedAlgs),
    ("ExpirationLeeway", Field::ExpirationLeeway),
    ("NotBeforeLeeway", Field::NotBeforeLeeway),
    ("ClockSkewLeeway", Field::ClockSkewLeeway),
    ("VerboseOIDCLogging", Field::VerboseOidcLogging),
];

/// Consul keys that fetch keys over the network, which Sekisho does not do.
const NETWORK_FIELDS: [&str; 4] = ["JWKSURL", "JWKSCACert", "OIDCDiscoveryURL", "OIDCDiscoveryCACert"];

/// Consul keys that belong to the `oidc` auth method only.
const OIDC_FIELDS: [&str; 5] =
    ["OIDCClientID", "OIDCClientSecret", "OIDCScopes", "OIDCACRValues", "AllowedRedirectURIs"];

/// `JWTValidationPubKeys`, `jwt_validation_pub_keys` and `jwtvalidationpubkeys` all name one
/// key (Consul decodes its Config case-insensitively; HCL front ends spell it snake_case).
fn normalize_key(key: &str) -> String {
    key.chars().filter(|c| *c != '_').flat_map(char::to_lowercase).collect()
}

/// The Config's keys, by field, with the spelling the user gave. Null values count as unset.
fn collect_fields(config: &Value) -> Result<BTreeMap<Field, (&str, &Value)>, JwtError> {
    let map = match config {
        Value::Object(map) => map,
        Value::Null => return Ok(BTreeMap::new()),
        _ => return Err(config_err("Config", "expected a JSON object")),
    };
    let mut fields = BTreeMap::new();
    for (key, value) in map {
        let normalized = normalize_key(key);
        if NETWORK_FIELDS.iter().any(|name| normalize_key(name) == normalized) {
            return Err(config_err(
                key.as_str(),
                "not supported: Sekisho does not fetch keys over the network; \
                 put the JWKS document in JWKS, or its path in JWKSFile",
            ));
        }
        if OIDC_FIELDS.iter().any(|name| normalize_key(name) == normalized) {
            return Err(config_err(key.as_str(), "only valid for an \"oidc\" auth method"));
        }
        let Some(&(_, field)) = FIELDS.iter().find(|(name, _)| normalize_key(name) == normalized) else {
            return Err(config_err(key.as_str(), "unknown key for a \"jwt\" auth method"));
        };
        if value.is_null() {
            continue;
        }
        if let Some((earlier, _)) = fields.get(&field) {
            return Err(config_err(key.as_str(), format!("set twice (also as {earlier:?})")));
        }
        fields.insert(field, (key.as_str(), value));
    }
    Ok(fields)
}

/// A string key; the empty string counts as unset (Go's zero value).
fn string_field(name: &str, value: &Value) -> Result<Option<String>, JwtError> {
    match value {
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(config_err(name, "expected a string")),
    }
}

fn string_list(name: &str, value: &Value) -> Result<Vec<String>, JwtError> {
    let Value::Array(items) = value else {
        return Err(config_err(name, "expected a list of strings"));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(s) if !s.is_empty() => Ok(s.clone()),
            Value::String(_) => Err(config_err(format!("{name}[{i}]"), "must not be empty")),
            _ => Err(config_err(format!("{name}[{i}]"), "expected a string")),
        })
        .collect()
}

fn string_map(name: &str, value: &Value) -> Result<BTreeMap<String, String>, JwtError> {
    let Value::Object(entries) = value else {
        return Err(config_err(name, "expected an object mapping claims to attribute names"));
    };
    let mut out = BTreeMap::new();
    for (claim, attribute) in entries {
        let field = || format!("{name}[{claim:?}]");
        if claim.is_empty() {
            return Err(config_err(field(), "the claim selector must not be empty"));
        }
        match attribute {
            Value::String(a) if !a.is_empty() => {
                out.insert(claim.clone(), a.clone());
            }
            Value::String(_) => return Err(config_err(field(), "the attribute name must not be empty")),
            _ => return Err(config_err(field(), "expected a string (the attribute name)")),
        }
    }
    Ok(out)
}

/// A leeway in nanoseconds: a Go duration string (`"150s"`, `"1m30s"`, `"-1s"`) or a number of
/// nanoseconds (Go's `time.Duration` in JSON).
fn duration_field(name: &str, value: &Value) -> Result<i64, JwtError> {
    match value {
        Value::String(s) => parse_go_duration(s).ok_or_else(|| {
            config_err(
                name,
                format!("not a duration: {s:?} (expected a Go duration such as \"150s\" or \"1m30s\")"),
            )
        }),
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite() && f.abs() < 9.0e18).map(|f| f.round() as i64))
            .ok_or_else(|| config_err(name, format!("duration {n} is out of range"))),
        _ => Err(config_err(name, "expected a duration string such as \"150s\"")),
    }
}

/// Go's `time.ParseDuration`: an optional sign, then one or more decimal numbers each with a
/// unit (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`); `"0"` alone needs no unit. Nanoseconds.
fn parse_go_duration(text: &str) -> Option<i64> {
    let text = text.trim();
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number = &rest[..number_len];
        if !number.bytes().any(|b| b.is_ascii_digit()) || number.matches('.').count() > 1 {
            return None;
        }
        let value: f64 = number.parse().ok().or_else(|| format!("0{number}").parse().ok())?;
        rest = &rest[number_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * scale;
    }
    if total >= 9.0e18 {
        return None;
    }
    let total = total.round() as i64;
    Some(if negative { -total } else { total })
}

/// Consul's leeway rule: 0 (unset) takes the default, a negative value disables the leeway.
fn effective_leeway(nanos: i64, default_secs: f64) -> f64 {
    match nanos {
        0 => default_secs,
        n if n < 0 => 0.0,
        n => n as f64 / 1e9,
    }
}

fn secs(seconds: f64) -> String {
    format!("{seconds}s")
}

fn algorithm_named(name: &str) -> Option<Algorithm> {
    ALGORITHMS.iter().find(|(n, _)| *n == name).map(|(_, alg)| *alg)
}

fn algorithm_name(alg: Algorithm) -> &'static str {
    ALGORITHMS.iter().find(|(_, a)| *a == alg).map_or("unsupported", |(name, _)| name)
}

fn parse_algorithms(name: &str, value: &Value) -> Result<Vec<Algorithm>, JwtError> {
    let names = string_list(name, value)?;
    let mut algs = Vec::with_capacity(names.len());
    for (i, alg_name) in names.iter().enumerate() {
        let Some(alg) = algorithm_named(alg_name) else {
            let message = if alg_name == "ES512" {
                "algorithm \"ES512\" is not supported by Sekisho (P-521 keys are not available)".to_owned()
            } else {
                let known: Vec<&str> = ALGORITHMS.iter().map(|(n, _)| *n).collect();
                format!("unknown or unsupported algorithm {alg_name:?} (supported: {})", known.join(", "))
            };
            return Err(config_err(format!("{name}[{i}]"), message));
        };
        if !algs.contains(&alg) {
            algs.push(alg);
        }
    }
    Ok(algs)
}

/// Checks a loaded key the way verification will use it, so a key that can never verify is
/// refused when the Config is written rather than at every login.
fn check_key(kind: KeyKind, key: &DecodingKey) -> Result<(), String> {
    let bytes = key.try_get_as_bytes().ok();
    let length_ok = match kind {
        KeyKind::Rsa => true,
        KeyKind::P256 => bytes.is_some_and(|b| matches!(b.len(), 33 | 65)),
        KeyKind::P384 => bytes.is_some_and(|b| matches!(b.len(), 49 | 97)),
        // The EdDSA verifier slices 32 bytes without checking the length first.
        KeyKind::Ed25519 => bytes.is_some_and(|b| b.len() == 32),
    };
    if !length_ok {
        return Err(format!("not a valid public key: {} of the wrong length", kind.describe()));
    }
    jsonwebtoken::crypto::verify("AA", b"sekisho key check", key, kind.probe_algorithm())
        .map(drop)
        .map_err(|e| format!("not a valid public key: {} that does not load ({e})", kind.describe()))
}

/// The label of a PEM block's first `-----BEGIN <label>-----` line.
fn pem_label(pem: &str) -> Option<&str> {
    let start = pem.find("-----BEGIN ")? + "-----BEGIN ".len();
    let len = pem[start..].find("-----")?;
    Some(&pem[start..start + len])
}

fn parse_pem_key(field: &str, pem: &str) -> Result<PublicKey, JwtError> {
    const NOT_A_KEY: &str = "not a PEM public key (expected RSA, EC P-256/P-384 or Ed25519)";
    let Some(label) = pem_label(pem) else {
        return Err(config_err(field, NOT_A_KEY));
    };
    if label.contains("PRIVATE") {
        return Err(config_err(field, format!("is a private key (PEM {label:?}); give the public key")));
    }
    let bytes = pem.trim().as_bytes();
    let (kind, key) = if let Ok(key) = DecodingKey::from_rsa_pem(bytes) {
        (KeyKind::Rsa, key)
    } else if let Ok(key) = DecodingKey::from_ec_pem(bytes) {
        let kind = match key.try_get_as_bytes().map(<[u8]>::len) {
            Ok(33 | 65) => KeyKind::P256,
            Ok(49 | 97) => KeyKind::P384,
            Ok(133) => {
                return Err(config_err(field, "EC P-521 keys are not supported (only P-256 and P-384)"));
            }
            _ => return Err(config_err(field, "not a valid EC public key")),
        };
        (kind, key)
    } else if let Ok(key) = DecodingKey::from_ed_pem(bytes) {
        (KeyKind::Ed25519, key)
    } else {
        return Err(config_err(field, NOT_A_KEY));
    };
    check_key(kind, &key).map_err(|message| config_err(field, message))?;
    Ok(PublicKey { source: field.to_owned(), kind, kid: None, alg: None, key })
}

/// Parses a JWKS document. Keys that can't sign for this auth method (encryption keys,
/// symmetric keys, other curves, other algorithms) are skipped; a malformed key is an error.
fn parse_jwks(field: &str, text: &str) -> Result<Vec<PublicKey>, JwtError> {
    let doc: Value =
        serde_json::from_str(text).map_err(|e| config_err(field, format!("not valid JSON: {e}")))?;
    let Some(keys) = doc.get("keys").and_then(Value::as_array) else {
        return Err(config_err(field, "not a JWKS document: expected an object with a \"keys\" list"));
    };
    let mut out = Vec::new();
    for (i, jwk) in keys.iter().enumerate() {
        if let Some(key) = parse_jwk(&format!("{field}.keys[{i}]"), jwk)? {
            out.push(key);
        }
    }
    if out.is_empty() {
        return Err(config_err(field, "has no usable signing key (RSA, EC P-256/P-384 or Ed25519)"));
    }
    Ok(out)
}

fn parse_jwk(field: &str, jwk: &Value) -> Result<Option<PublicKey>, JwtError> {
    let Value::Object(members) = jwk else {
        return Err(config_err(field, "expected a JSON object (a JWK)"));
    };
    let text = |name: &str| -> Result<Option<&str>, JwtError> {
        match members.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(config_err(field, format!("\"{name}\" must be a string"))),
        }
    };
    let Some(kty) = text("kty")? else {
        return Err(config_err(field, "has no \"kty\""));
    };
    if text("use")? == Some("enc") {
        return Ok(None);
    }
    let alg = match text("alg")? {
        None => None,
        Some(name) => match algorithm_named(name) {
            Some(alg) => Some(alg),
            // Keys for other algorithms (RSA-OAEP, HS256, ES512, ...) never verify a login.
            None => return Ok(None),
        },
    };
    let kid = text("kid")?.map(str::to_owned);
    let required = |name: &str| -> Result<&str, JwtError> {
        text(name)?.ok_or_else(|| config_err(field, format!("{kty} key has no \"{name}\"")))
    };
    let bad_component = |e: jsonwebtoken::errors::Error| config_err(field, format!("{kty} key: {e}"));
    let (kind, key) = match kty {
        "RSA" => (
            KeyKind::Rsa,
            DecodingKey::from_rsa_components(required("n")?, required("e")?).map_err(bad_component)?,
        ),
        "EC" => {
            let kind = match text("crv")? {
                Some("P-256") => KeyKind::P256,
                Some("P-384") => KeyKind::P384,
                Some(_) => return Ok(None),
                None => return Err(config_err(field, "EC key has no \"crv\"")),
            };
            (kind, DecodingKey::from_ec_components(required("x")?, required("y")?).map_err(bad_component)?)
        }
        "OKP" => match text("crv")? {
            Some("Ed25519") => {
                (KeyKind::Ed25519, DecodingKey::from_ed_components(required("x")?).map_err(bad_component)?)
            }
            Some(_) => return Ok(None),
            None => return Err(config_err(field, "OKP key has no \"crv\"")),
        },
        _ => return Ok(None),
    };
    if let Some(alg) = alg
        && !kind.can_verify(alg)
    {
        return Err(config_err(
            field,
            format!("\"alg\" {:?} does not fit {}", algorithm_name(alg), kind.describe()),
        ));
    }
    check_key(kind, &key).map_err(|message| config_err(field, message))?;
    Ok(Some(PublicKey { source: field.to_owned(), kind, kid, alg, key }))
}

impl JwtConfig {
    /// Parses and checks a `jwt` auth method's Config (the `Config` object of the auth method,
    /// keys in Consul's spelling or snake_case). A Config with `JWKSFile` needs the file's
    /// text: use [`JwtConfig::from_json_with_jwks_file`].
    pub fn from_json(config: &Value) -> Result<JwtConfig, JwtError> {
        JwtConfig::from_json_with_jwks_file(config, None)
    }

    /// The path in the Config's `JWKSFile`, if any: the file the caller reads and passes to
    /// [`JwtConfig::from_json_with_jwks_file`].
    pub fn jwks_file_path(config: &Value) -> Result<Option<String>, JwtError> {
        match collect_fields(config)?.get(&Field::JwksFile) {
            Some((name, value)) => string_field(name, value),
            None => Ok(None),
        }
    }

    /// Like [`JwtConfig::from_json`], with the text of the file that `JWKSFile` names.
    pub fn from_json_with_jwks_file(
        config: &Value,
        jwks_file_text: Option<&str>,
    ) -> Result<JwtConfig, JwtError> {
        let fields = collect_fields(config)?;
        let get = |field: Field| fields.get(&field).copied();

        let mut static_keys = Vec::new();
        if let Some((name, value)) = get(Field::PubKeys) {
            for (i, pem) in string_list(name, value)?.iter().enumerate() {
                static_keys.push(parse_pem_key(&format!("{name}[{i}]"), pem)?);
            }
        }

        let inline_jwks = match get(Field::Jwks) {
            Some((name, value)) => string_field(name, value)?.map(|text| (name, text)),
            None => None,
        };
        let jwks_file = match get(Field::JwksFile) {
            Some((name, value)) => string_field(name, value)?.map(|path| (name, path)),
            None => None,
        };
        let jwks_keys = match (inline_jwks, jwks_file, jwks_file_text) {
            (Some((inline, _)), Some((file, _)), _) => {
                return Err(config_err(file, format!("cannot be combined with {inline}")));
            }
            (Some((name, text)), None, None) => parse_jwks(name, &text)?,
            (None, Some((name, _)), Some(text)) => parse_jwks(name, text)?,
            (None, Some((name, path)), None) => {
                return Err(config_err(name, format!("the contents of {path:?} were not supplied")));
            }
            (_, None, Some(_)) => {
                return Err(config_err(
                    "JWKSFile",
                    "JWKS file contents were supplied but JWKSFile is not set",
                ));
            }
            (None, None, None) => Vec::new(),
        };
        if static_keys.is_empty() && jwks_keys.is_empty() {
            return Err(config_err(
                "JWTValidationPubKeys",
                "no keys: one of JWTValidationPubKeys, JWKS or JWKSFile must be set",
            ));
        }

        let bound_issuer = match get(Field::BoundIssuer) {
            Some((name, value)) => string_field(name, value)?,
            None => None,
        };
        let bound_audiences = match get(Field::BoundAudiences) {
            Some((name, value)) => string_list(name, value)?,
            None => Vec::new(),
        };
        let claim_mappings = match get(Field::ClaimMappings) {
            Some((name, value)) => string_map(name, value)?,
            None => BTreeMap::new(),
        };
        let list_claim_mappings = match get(Field::ListClaimMappings) {
            Some((name, value)) => string_map(name, value)?,
            None => BTreeMap::new(),
        };
        check_mapping_targets(&fields, &claim_mappings, &list_claim_mappings)?;

        let supported_algs = match get(Field::SupportedAlgs) {
            Some((name, value)) => parse_algorithms(name, value)?,
            None => Vec::new(),
        };
        let supported_algs = if supported_algs.is_empty() { vec![Algorithm::RS256] } else { supported_algs };
        // A Config whose keys can never verify an accepted algorithm would refuse every login.
        let all_keys = || static_keys.iter().chain(&jwks_keys);
        if !all_keys().any(|key| supported_algs.iter().any(|alg| key.can_verify(*alg))) {
            let names: Vec<&str> = supported_algs.iter().map(|a| algorithm_name(*a)).collect();
            let mut kinds: Vec<&str> = all_keys().map(|key| key.kind.describe()).collect();
            kinds.sort_unstable();
            kinds.dedup();
            let (field, note) = match get(Field::SupportedAlgs) {
                Some((name, _)) => (name, ""),
                None => ("JWTSupportedAlgs", " (the default)"),
            };
            return Err(config_err(
                field,
                format!("no configured key can verify {names:?}{note}; the keys: {}", kinds.join(", ")),
            ));
        }

        let leeway = |field: Field, default: f64| -> Result<f64, JwtError> {
            Ok(match get(field) {
                Some((name, value)) => effective_leeway(duration_field(name, value)?, default),
                None => default,
            })
        };
        let expiration_leeway = leeway(Field::ExpirationLeeway, DEFAULT_LEEWAY_SECS)?;
        let not_before_leeway = leeway(Field::NotBeforeLeeway, DEFAULT_LEEWAY_SECS)?;
        let clock_skew_leeway = leeway(Field::ClockSkewLeeway, DEFAULT_CLOCK_SKEW_SECS)?;

        if let Some((name, value)) = get(Field::VerboseOidcLogging)
            && !value.is_boolean()
        {
            return Err(config_err(name, "expected a boolean"));
        }

        Ok(JwtConfig {
            static_keys,
            jwks_keys,
            bound_issuer,
            bound_audiences,
            claim_mappings,
            list_claim_mappings,
            supported_algs,
            expiration_leeway,
            not_before_leeway,
            clock_skew_leeway,
        })
    }

    /// Verifies a bearer JWT at `now_unix` (seconds) and maps its claims: the header's `alg`
    /// must be one of `JWTSupportedAlgs`; the key is the JWKS key the header's `kid` names,
    /// else every configured key that fits the algorithm; then `exp` (expiration + clock-skew
    /// leeway), `nbf` (not-before + clock-skew leeway), `iat` (clock-skew leeway),
    /// `BoundIssuer` and `BoundAudiences` are checked.
    pub fn verify(&self, bearer: &str, now_unix: u64) -> Result<VerifiedClaims, JwtError> {
        let token = bearer.trim();
        let header = decode_header(token)?;
        let alg_name = match header.get("alg") {
            Some(Value::String(alg)) => alg.as_str(),
            Some(_) => return Err(malformed("the header's \"alg\" is not a string")),
            None => return Err(malformed("the header has no \"alg\"")),
        };
        let Some(alg) = algorithm_named(alg_name).filter(|alg| self.supported_algs.contains(alg)) else {
            return Err(JwtError::UnsupportedAlgorithm {
                alg: alg_name.to_owned(),
                supported: self.supported_algs.iter().map(|a| algorithm_name(*a).to_owned()).collect(),
            });
        };
        let kid = match header.get("kid") {
            None | Some(Value::Null) => None,
            Some(Value::String(kid)) => Some(kid.as_str()),
            Some(_) => return Err(malformed("the header's \"kid\" is not a string")),
        };

        let candidates = self.candidate_keys(alg, kid)?;
        let mut validation = Validation::new(alg);
        // Time, issuer and audience checks are done below against the caller's clock.
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.leeway = 0;
        let mut claims = None;
        for key in candidates {
            match jsonwebtoken::decode::<Value>(token, &key.key, &validation) {
                Ok(data) => {
                    claims = Some(data.claims);
                    break;
                }
                Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => {}
                Err(e) => return Err(malformed(e.to_string())),
            }
        }
        let Value::Object(claims) = claims.ok_or(JwtError::InvalidSignature)? else {
            return Err(malformed("the claims are not a JSON object"));
        };

        self.check_times(&claims, now_unix)?;
        self.check_issuer(&claims)?;
        self.check_audience(&claims)?;
        self.map_claims(&Value::Object(claims))
    }

    /// The keys to try for a token signed with `alg`: the JWKS key(s) that the header's `kid`
    /// names (all fitting JWKS keys when there is no `kid`) and every fitting static key.
    fn candidate_keys(&self, alg: Algorithm, kid: Option<&str>) -> Result<Vec<&PublicKey>, JwtError> {
        let mut candidates: Vec<&PublicKey> = self.static_keys.iter().filter(|k| k.can_verify(alg)).collect();
        let alg_name = algorithm_name(alg);
        match kid {
            Some(kid) if !self.jwks_keys.is_empty() => {
                let named: Vec<&PublicKey> =
                    self.jwks_keys.iter().filter(|k| k.kid.as_deref() == Some(kid)).collect();
                let fitting: Vec<&PublicKey> = named.iter().copied().filter(|k| k.can_verify(alg)).collect();
                if candidates.is_empty() && fitting.is_empty() {
                    return Err(JwtError::NoKey(match named.first() {
                        None => format!("no key in the JWKS has kid {kid:?}"),
                        Some(key) => {
                            format!(
                                "the JWKS key with kid {kid:?} is {}, which cannot verify {alg_name:?}",
                                key.kind.describe()
                            )
                        }
                    }));
                }
                candidates.extend(fitting);
            }
            _ => candidates.extend(self.jwks_keys.iter().filter(|k| k.can_verify(alg))),
        }
        if candidates.is_empty() {
            return Err(JwtError::NoKey(format!("none of the auth method's keys can verify {alg_name:?}")));
        }
        Ok(candidates)
    }

    fn check_times(&self, claims: &Map<String, Value>, now_unix: u64) -> Result<(), JwtError> {
        let now = now_unix as f64;
        if let Some((exp, text)) = numeric_date(claims, "exp")? {
            let leeway = self.expiration_leeway + self.clock_skew_leeway;
            if exp < now - leeway {
                return Err(JwtError::Expired { exp: text, now: now_unix, leeway: secs(leeway) });
            }
        }
        for (claim, leeway) in
            [("nbf", self.not_before_leeway + self.clock_skew_leeway), ("iat", self.clock_skew_leeway)]
        {
            if let Some((at, text)) = numeric_date(claims, claim)?
                && at > now + leeway
            {
                return Err(JwtError::NotYetValid {
                    claim: claim.to_owned(),
                    value: text,
                    now: now_unix,
                    leeway: secs(leeway),
                });
            }
        }
        Ok(())
    }

    fn check_issuer(&self, claims: &Map<String, Value>) -> Result<(), JwtError> {
        let Some(bound) = &self.bound_issuer else {
            return Ok(());
        };
        match claims.get("iss") {
            Some(Value::String(iss)) if iss == bound => Ok(()),
            Some(Value::String(iss)) => Err(JwtError::InvalidIssuer(format!(
                "claim \"iss\" {iss:?} is not the bound issuer {bound:?}"
            ))),
            None | Some(Value::Null) => Err(JwtError::InvalidIssuer(format!(
                "the token has no \"iss\" claim but the bound issuer is {bound:?}"
            ))),
            Some(_) => Err(JwtError::InvalidClaim { claim: "iss".into(), message: "not a string".into() }),
        }
    }

    fn check_audience(&self, claims: &Map<String, Value>) -> Result<(), JwtError> {
        if self.bound_audiences.is_empty() {
            return Ok(());
        }
        let not_strings = || JwtError::InvalidClaim {
            claim: "aud".into(),
            message: "not a string or a list of strings".into(),
        };
        let audiences: Vec<String> = match claims.get("aud") {
            None | Some(Value::Null) => {
                return Err(JwtError::InvalidAudience(format!(
                    "the token has no \"aud\" claim but the auth method has bound audiences {:?}",
                    self.bound_audiences
                )));
            }
            Some(Value::String(aud)) => vec![aud.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().map(str::to_owned).ok_or_else(not_strings))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(not_strings()),
        };
        if audiences.iter().any(|aud| self.bound_audiences.contains(aud)) {
            return Ok(());
        }
        Err(JwtError::InvalidAudience(format!(
            "claim \"aud\" {audiences:?} does not contain any of the bound audiences {:?}",
            self.bound_audiences
        )))
    }

    fn map_claims(&self, claims: &Value) -> Result<VerifiedClaims, JwtError> {
        let mut verified = VerifiedClaims::default();
        for (selector, attribute) in &self.claim_mappings {
            let Some(found) = select_claim(claims, selector) else {
                continue;
            };
            let value = scalar_string(found).ok_or_else(|| JwtError::InvalidClaim {
                claim: selector.clone(),
                message: format!(
                    "mapped to {attribute:?} by ClaimMappings: expected a string, number or boolean, found {}",
                    json_kind(found)
                ),
            })?;
            verified.value.insert(attribute.clone(), value);
        }
        for (selector, attribute) in &self.list_claim_mappings {
            let Some(found) = select_claim(claims, selector) else {
                continue;
            };
            let items: Vec<&Value> = match found {
                Value::Array(items) => items.iter().collect(),
                scalar => vec![scalar],
            };
            let mut list = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                list.push(scalar_string(item).ok_or_else(|| JwtError::InvalidClaim {
                    claim: selector.clone(),
                    message: format!(
                        "mapped to {attribute:?} by ListClaimMappings: element {i} is {}, \
                         expected a string, number or boolean",
                        json_kind(item)
                    ),
                })?);
            }
            verified.list.insert(attribute.clone(), list);
        }
        Ok(verified)
    }
}

/// Consul refuses a Config whose mappings send two claims to one attribute.
fn check_mapping_targets(
    fields: &BTreeMap<Field, (&str, &Value)>,
    claim_mappings: &BTreeMap<String, String>,
    list_claim_mappings: &BTreeMap<String, String>,
) -> Result<(), JwtError> {
    let mut seen = std::collections::BTreeSet::new();
    for (field, mappings) in
        [(Field::ClaimMappings, claim_mappings), (Field::ListClaimMappings, list_claim_mappings)]
    {
        for attribute in mappings.values() {
            if !seen.insert(attribute.as_str()) {
                let name = fields.get(&field).map_or("ClaimMappings", |(name, _)| *name);
                return Err(config_err(name, format!("more than one claim maps to attribute {attribute:?}")));
            }
        }
    }
    Ok(())
}

/// A claim by top-level name, or by JSON pointer (`/a/b`, with `~1` for `/` and `~0` for `~`).
/// JSON null counts as absent.
fn select_claim<'a>(claims: &'a Value, selector: &str) -> Option<&'a Value> {
    let found = if selector.starts_with('/') { claims.pointer(selector) } else { claims.get(selector) };
    found.filter(|v| !v.is_null())
}

fn scalar_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A time claim (`exp`, `nbf`, `iat`): seconds since the epoch, and the text the token has.
fn numeric_date(claims: &Map<String, Value>, claim: &str) -> Result<Option<(f64, String)>, JwtError> {
    match claims.get(claim) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(seconds) => Ok(Some((seconds, n.to_string()))),
            None => {
                Err(JwtError::InvalidClaim { claim: claim.into(), message: "not a usable number".into() })
            }
        },
        Some(_) => Err(JwtError::InvalidClaim {
            claim: claim.into(),
            message: "not a NumericDate (a number of seconds since the epoch)".into(),
        }),
    }
}

/// Decodes a compact JWS header without trusting it: the part before the first `.`.
fn decode_header(token: &str) -> Result<Map<String, Value>, JwtError> {
    if token.is_empty() {
        return Err(malformed("the token is empty"));
    }
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(malformed(format!(
            "expected three dot-separated parts (header.payload.signature), found {}",
            parts.len()
        )));
    }
    let bytes = base64url_decode(parts[0]).ok_or_else(|| malformed("the header is not base64url"))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(header)) => Ok(header),
        Ok(_) => Err(malformed("the header is not a JSON object")),
        Err(_) => Err(malformed("the header is not JSON")),
    }
}

/// Unpadded (or padded) base64url, as JWS uses.
fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let sextet = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(sextet);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // One leftover character carries fewer than 8 bits: not a valid encoding.
    (bits < 6).then_some(out)
}

/// The claims of a verified token, as Consul's claim mappings project them: `value` from
/// `ClaimMappings` (attribute → string), `list` from `ListClaimMappings` (attribute → strings).
/// A mapped claim that the token lacks is absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifiedClaims {
    /// Scalar attributes, by mapped attribute name.
    pub value: BTreeMap<String, String>,
    /// List attributes, by mapped attribute name.
    pub list: BTreeMap<String, Vec<String>>,
}

impl VerifiedClaims {
    /// `{"value": {...}, "list": {...}}`, the document binding-rule selectors such as
    /// `value.team == "a"` or `"admins" in list.groups` are evaluated over.
    pub fn as_selectable(&self) -> Value {
        serde_json::json!({ "value": self.value, "list": self.list })
    }
}

/// Interpolates a binding rule's BindName: `${value.<attribute>}` is replaced by the mapped
/// attribute, `$${` is a literal `${`, and text without `${` is returned as is. An attribute
/// that is not in `claims.value`, a `${list.<attribute>}` (a list can't be a name) and an
/// unterminated `${` are errors.
pub fn interpolate(template: &str, claims: &VerifiedClaims) -> Result<String, JwtError> {
    let error = |message: String| JwtError::Template { template: template.to_owned(), message };
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        if rest[..start].ends_with('$') {
            out.push_str(&rest[..start - 1]);
            out.push_str("${");
            rest = &rest[start + 2..];
            continue;
        }
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            let at = template.len() - rest.len() + start;
            return Err(error(format!("unterminated \"${{\" at byte {at}")));
        };
        let name = after[..end].trim();
        let value = match name.strip_prefix("value.") {
            Some(attribute) => claims.value.get(attribute),
            None if name.starts_with("list.") => {
                return Err(error(format!(
                    "list attribute {name:?} cannot be interpolated (only value.<attribute>)"
                )));
            }
            None => None,
        };
        let Some(value) = value else {
            return Err(error(format!("unknown attribute {name:?}")));
        };
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header, encode};
    use rcgen::KeyPair;
    use serde_json::json;

    use super::*;

    const NOW: u64 = 1_700_000_000;

    /// A throwaway RSA key made for these tests only (rcgen on ring cannot generate RSA keys).
    const RSA_TEST_PRIVATE_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDWBO7wp/c1Cf+G
spwj8eJ3KMLqUCkJpr6uvNO/WWRbfcQdlZs080M4xn9RrjYfV5x5qMfRZ2SNuX0B
v3qyreiP6zW0xQUjqTRGSQ5O7CfaBiERd79V6BhmTc6J++7+u4C5T9IVXMDd8ybU
6uiqfSFJWoGfgNVcjeOQZymKJKIv1Zg7DC4klPQv9xtMBVwXH+ZNsygCjg0pGvsp
lbv5gzDNy732cwFUKgcFVf585jYo/Htd11iw2kCyzURsprxwl5qBWALRYuCZHoml
LnGPLegxGHvNkIqPgcJK6Xx0+RFTavujaibzyJNaqDXjP4ZPUMIjrLwy8Me5eT+/
3sLmetztAgMBAAECggEADtSOBM8e1OYPIYkEQ4QMwAUVvKGMC8cqNMw7lWmJssKm
8bCJmMRinBnlKLEnFEpAkDhJ4GYxvusOO9jGP9YdOhvVFORc1CPII4wHGcueLKrQ
D83PIbzQ3rCgPJ+LPXZGF+aYFYg1NSwW529/v+X72ywSX2MmEHZ567+6ToBLXNUS
Z4CLumMOWbQc7tQowYZkcxjyJGLwM0/doOMFZk0+uu/oQq2ss3aYZLsJekRgeI14
4zqFqHpz4aLVfl9vDkOtJ04F5SfCsjj1sRlTGoDzEBnO2vRUxA1bqpyaaY/sgSD/
u0Bq7dmYfPICU3UO+1z5btrZnuGcZZNlDcPSWKpsYQKBgQD5/O8bIZyGGf+zrdO4
TV6+bk8EXQ/oDcO2R1SdiiP6QvlhI/MfP7q7Yl9nTZ7ojNYozpeqzFMRDkzjwg6C
XOB40B7h+hcuHmKPJRIR5ZLmvXIO1PtqUfxBN5d3Bhl80Mmw0iXARRzwfi0gpcyJ
tbJpn4T7k4csvY0DZp5KTsqJ+wKBgQDbKo48Vd3ufnPMeBnDCRanQzO9k8TWvKI6
Kx/YAmOW45bOBR/cmqM9eBQBKfzjp7CwUlN4z1OHptQoE7F5yxsN1PilsplFryQo
O553f5ZVH1hRCwr+slpgm39vqh6GK5VeRShkrOmDObDKEjDbgVgGX9YZqqengbjT
zw5BxbgoNwKBgQCa8XaR7mdBhuPBzj+nv+y1Q1Gedr/hKIbhd5yueGyMNO60kr+h
4rIuam6PbMDNil1CtamzpyjlLWPi1uh/TGmk9/nsPkIXx6V265cjmJNQiKMlJkUe
ROqA0aADmbg6cH5SJi5X2X5yYQI/dgQsZn3KkaCu/WWPCX1ZWkVJ8UP/+QKBgDXn
jppKaE57bZHRzExLFPZIshYjnRtPw/rYlnlzhPkcuv+rBP4mTpYUzZ7Hq/p2SR/k
78DcBWhs4OuGhHU3Pk01n35pogcgn50BpOUxTVFcZ0VvmOGyDkaKmFpnliBb4d4Q
1nGEkd6DtvbMaJXkhzjyI1+muJubbVEzMQd+UOAbAoGAId/rgbMTpNh8BWDBCYgh
taluzutaSCNT5VW7pvuchGJtKhYJJkpE4r00luExBhizKJB0Mm4n2+eSfmlAldG9
/nT0EyOsRroO6Nuyst7XKmb8U99anA/rUdHvZHmco7PztLJ24Lj64gM4DzMIlcSG
MCNY4yuZo8dP3HqwKmXTyj0=
-----END PRIVATE KEY-----
";

    const RSA_TEST_PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA1gTu8Kf3NQn/hrKcI/Hi
dyjC6lApCaa+rrzTv1lkW33EHZWbNPNDOMZ/Ua42H1eceajH0Wdkjbl9Ab96sq3o
j+s1tMUFI6k0RkkOTuwn2gYhEXe/VegYZk3Oifvu/ruAuU/SFVzA3fMm1Oroqn0h
SVqBn4DVXI3jkGcpiiSiL9WYOwwuJJT0L/cbTAVcFx/mTbMoAo4NKRr7KZW7+YMw
zcu99nMBVCoHBVX+fOY2KPx7XddYsNpAss1EbKa8cJeagVgC0WLgmR6JpS5xjy3o
MRh7zZCKj4HCSul8dPkRU2r7o2om88iTWqg14z+GT1DCI6y8MvDHuXk/v97C5nrc
7QIDAQAB
-----END PUBLIC KEY-----
";

    /// A generated key pair: the signing key and the public key in PEM.
    struct TestKey {
        signing: EncodingKey,
        public_pem: String,
        /// The raw public key: the uncompressed EC point, or the 32 Ed25519 bytes.
        public_raw: Vec<u8>,
        alg: Algorithm,
    }

    /// Unpadded base64url, as JOSE uses.
    fn b64url(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }

    fn test_key(alg: Algorithm) -> TestKey {
        let rcgen_alg = match alg {
            Algorithm::ES256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Algorithm::ES384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            Algorithm::EdDSA => &rcgen::PKCS_ED25519,
            other => panic!("no rcgen key for {other:?}"),
        };
        let pair = KeyPair::generate_for(rcgen_alg).expect("generate key");
        let private = pair.serialize_pem();
        let signing = match alg {
            Algorithm::EdDSA => EncodingKey::from_ed_pem(private.as_bytes()),
            _ => EncodingKey::from_ec_pem(private.as_bytes()),
        }
        .expect("signing key");
        TestKey {
            signing,
            public_pem: pair.public_key_pem(),
            public_raw: pair.public_key_raw().to_vec(),
            alg,
        }
    }

    fn rsa_key() -> TestKey {
        TestKey {
            signing: EncodingKey::from_rsa_pem(RSA_TEST_PRIVATE_PEM.as_bytes()).expect("rsa key"),
            public_pem: RSA_TEST_PUBLIC_PEM.to_owned(),
            public_raw: Vec::new(),
            alg: Algorithm::RS256,
        }
    }

    /// The key as a JWKS entry with `kid` (and `alg`, as identity providers publish them).
    fn jwk(key: &TestKey, kid: &str) -> Value {
        let raw = &key.public_raw;
        match key.alg {
            Algorithm::EdDSA => {
                json!({ "kty": "OKP", "crv": "Ed25519", "x": b64url(raw), "kid": kid, "alg": "EdDSA" })
            }
            Algorithm::ES256 | Algorithm::ES384 => {
                let (crv, half) = if key.alg == Algorithm::ES256 { ("P-256", 32) } else { ("P-384", 48) };
                assert_eq!(raw.len(), 1 + 2 * half, "uncompressed point");
                json!({
                    "kty": "EC", "crv": crv, "use": "sig", "kid": kid, "alg": algorithm_name(key.alg),
                    "x": b64url(&raw[1..=half]), "y": b64url(&raw[1 + half..]),
                })
            }
            other => panic!("no JWK for {other:?}"),
        }
    }

    fn sign(key: &TestKey, kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(key.alg);
        header.kid = kid.map(str::to_owned);
        encode(&header, claims, &key.signing).expect("sign")
    }

    fn config(value: Value) -> JwtConfig {
        JwtConfig::from_json(&value).unwrap_or_else(|e| panic!("config refused: {e}"))
    }

    fn config_error(value: Value) -> String {
        match JwtConfig::from_json(&value) {
            Ok(c) => panic!("config accepted: {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn refused(config: &JwtConfig, token: &str) -> String {
        match config.verify(token, NOW) {
            Ok(claims) => panic!("token accepted: {claims:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn es256_config(key: &TestKey) -> JwtConfig {
        config(json!({
            "JWTValidationPubKeys": [key.public_pem],
            "JWTSupportedAlgs": ["ES256"],
            "BoundIssuer": "https://issuer.example",
            "BoundAudiences": ["sekisho"],
        }))
    }

    fn good_claims() -> Value {
        json!({ "iss": "https://issuer.example", "aud": "sekisho", "exp": NOW + 600, "iat": NOW, "sub": "svc" })
    }

    #[test]
    fn es256_token_is_accepted_and_its_claims_mapped() {
        let key = test_key(Algorithm::ES256);
        let config = config(json!({
            "JWTValidationPubKeys": [key.public_pem],
            "JWTSupportedAlgs": ["ES256"],
            "BoundIssuer": "https://issuer.example",
            "BoundAudiences": ["other", "sekisho"],
            "ClaimMappings": {
                "sub": "name",
                "/org/team": "team",
                "/org/a~1b": "slashed",
                "uid": "uid",
                "admin": "is_admin",
                "missing": "absent",
            },
            "ListClaimMappings": { "groups": "groups", "/org/region": "regions", "/org/nope": "nope" },
        }));
        let token = sign(
            &key,
            None,
            &json!({
                "iss": "https://issuer.example",
                "aud": ["nobody", "sekisho"],
                "exp": NOW + 600,
                "nbf": NOW - 10,
                "iat": NOW - 10,
                "sub": "web-1",
                "uid": 42,
                "admin": true,
                "groups": ["dev", "ops", 7],
                "org": { "team": "payments", "region": "eu-west", "a/b": "x" },
            }),
        );
        let claims = config.verify(&token, NOW).unwrap_or_else(|e| panic!("{e}"));
        let expected_value: BTreeMap<String, String> =
            [("name", "web-1"), ("team", "payments"), ("slashed", "x"), ("uid", "42"), ("is_admin", "true")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        assert_eq!(claims.value, expected_value);
        assert_eq!(claims.list["groups"], ["dev", "ops", "7"]);
        assert_eq!(claims.list["regions"], ["eu-west"]);
        assert!(!claims.list.contains_key("nope"));
        assert_eq!(
            claims.as_selectable(),
            json!({
                "value": { "name": "web-1", "team": "payments", "slashed": "x", "uid": "42", "is_admin": "true" },
                "list": { "groups": ["dev", "ops", "7"], "regions": ["eu-west"] },
            })
        );
    }

    #[test]
    fn rs256_is_the_default_algorithm_with_a_static_key() {
        let key = rsa_key();
        let config = config(
            json!({ "JWTValidationPubKeys": [RSA_TEST_PUBLIC_PEM], "ClaimMappings": {"sub": "name"} }),
        );
        let claims = config.verify(&sign(&key, None, &json!({ "sub": "db", "exp": NOW + 60 })), NOW).unwrap();
        assert_eq!(claims.value["name"], "db");

        // PS256 is another RSA algorithm, but not one this auth method accepts.
        let mut header = Header::new(Algorithm::PS256);
        header.kid = None;
        let ps = encode(&header, &json!({ "sub": "db" }), &key.signing).unwrap();
        assert_eq!(
            refused(&config, &ps),
            r#"unsupported algorithm "PS256": the auth method accepts ["RS256"]"#
        );
    }

    #[test]
    fn eddsa_with_snake_case_config_keys() {
        let key = test_key(Algorithm::EdDSA);
        let config = config(json!({
            "jwt_validation_pub_keys": [key.public_pem],
            "jwt_supported_algs": ["EdDSA"],
            "bound_issuer": "iss-1",
            "claim_mappings": { "sub": "name" },
            "list_claim_mappings": { "roles": "roles" },
            "expiration_leeway": "-1s",
            "clock_skew_leeway": "-1s",
        }));
        let token = sign(&key, None, &json!({ "iss": "iss-1", "sub": "api", "roles": "reader", "exp": NOW }));
        let claims = config.verify(&token, NOW).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(claims.value["name"], "api");
        assert_eq!(claims.list["roles"], ["reader"]);
        // Both leeways disabled: one second past exp is expired.
        assert_eq!(
            config.verify(&token, NOW + 1).unwrap_err().to_string(),
            r#"token is expired: claim "exp" (1700000000) is before now minus leeway (now 1700000001, leeway 0s)"#
        );
    }

    #[test]
    fn jwks_key_is_chosen_by_kid() {
        let a = test_key(Algorithm::ES256);
        let b = test_key(Algorithm::ES256);
        let ed = test_key(Algorithm::EdDSA);
        let jwks = json!({ "keys": [jwk(&a, "key-a"), jwk(&b, "key-b"), jwk(&ed, "key-ed")] }).to_string();
        let config = config(json!({
            "JWKS": jwks,
            "JWTSupportedAlgs": ["ES256", "EdDSA"],
            "ClaimMappings": { "sub": "name" },
        }));
        let claims = json!({ "sub": "x", "exp": NOW + 60 });

        assert_eq!(config.verify(&sign(&b, Some("key-b"), &claims), NOW).unwrap().value["name"], "x");
        assert_eq!(config.verify(&sign(&a, Some("key-a"), &claims), NOW).unwrap().value["name"], "x");
        assert!(config.verify(&sign(&ed, Some("key-ed"), &claims), NOW).is_ok());
        // Signed by b but naming a: only key-a is tried.
        assert_eq!(refused(&config, &sign(&b, Some("key-a"), &claims)), "invalid signature");
        assert_eq!(
            refused(&config, &sign(&b, Some("key-c"), &claims)),
            r#"no key to verify the token: no key in the JWKS has kid "key-c""#
        );
        assert_eq!(
            refused(&config, &sign(&ed, Some("key-a"), &claims)),
            r#"no key to verify the token: the JWKS key with kid "key-a" is an EC P-256 key, which cannot verify "EdDSA""#
        );
        // No kid: every JWKS key of a fitting type is tried.
        assert!(config.verify(&sign(&b, None, &claims), NOW).is_ok());
    }

    #[test]
    fn jwks_file_contents_come_from_the_caller() {
        let key = test_key(Algorithm::ES384);
        let raw = json!({ "JWKSFile": "/etc/sekisho/jwks.json", "JWTSupportedAlgs": ["ES384"] });
        assert_eq!(JwtConfig::jwks_file_path(&raw).unwrap().as_deref(), Some("/etc/sekisho/jwks.json"));
        assert_eq!(
            JwtConfig::from_json(&raw).unwrap_err().to_string(),
            r#"JWKSFile: the contents of "/etc/sekisho/jwks.json" were not supplied"#
        );
        let text = json!({ "keys": [jwk(&key, "k1"), { "kty": "oct", "k": "c2VjcmV0" }] }).to_string();
        let config = JwtConfig::from_json_with_jwks_file(&raw, Some(&text)).unwrap();
        assert_eq!(config.jwks_keys.len(), 1, "the symmetric key is skipped");
        assert!(config.verify(&sign(&key, Some("k1"), &json!({ "exp": NOW + 5 })), NOW).is_ok());
    }

    #[test]
    fn expired_token_is_refused_naming_exp() {
        let key = test_key(Algorithm::ES256);
        let config = es256_config(&key);
        let mut claims = good_claims();
        claims["exp"] = json!(NOW - 1000);
        assert_eq!(
            refused(&config, &sign(&key, None, &claims)),
            r#"token is expired: claim "exp" (1699999000) is before now minus leeway (now 1700000000, leeway 210s)"#
        );
    }

    #[test]
    fn expired_within_the_leeway_is_accepted() {
        let key = test_key(Algorithm::ES256);
        // Defaults: 150s expiration leeway + 60s clock skew.
        let defaults = es256_config(&key);
        let mut claims = good_claims();
        claims["exp"] = json!(NOW - 210);
        assert!(defaults.verify(&sign(&key, None, &claims), NOW).is_ok());
        claims["exp"] = json!(NOW - 211);
        assert!(refused(&defaults, &sign(&key, None, &claims)).contains(r#"claim "exp" (1699999789)"#));

        let custom = config(json!({
            "JWTValidationPubKeys": [key.public_pem],
            "JWTSupportedAlgs": ["ES256"],
            "ExpirationLeeway": "1m",
            "ClockSkewLeeway": "0",
        }));
        claims["exp"] = json!(NOW - 120);
        assert!(custom.verify(&sign(&key, None, &claims), NOW).is_ok());
        claims["exp"] = json!(NOW - 121);
        assert_eq!(
            refused(&custom, &sign(&key, None, &claims)),
            r#"token is expired: claim "exp" (1699999879) is before now minus leeway (now 1700000000, leeway 120s)"#
        );
    }

    #[test]
    fn token_not_yet_valid_is_refused() {
        let key = test_key(Algorithm::ES256);
        let config = es256_config(&key);
        let mut claims = good_claims();
        claims["nbf"] = json!(NOW + 1000);
        assert_eq!(
            refused(&config, &sign(&key, None, &claims)),
            r#"token is not yet valid: claim "nbf" (1700001000) is after now plus leeway (now 1700000000, leeway 210s)"#
        );
        claims["nbf"] = json!(NOW + 200);
        assert!(config.verify(&sign(&key, None, &claims), NOW).is_ok());

        // iat only gets the clock-skew leeway.
        let mut claims = good_claims();
        claims["iat"] = json!(NOW + 61);
        assert_eq!(
            refused(&config, &sign(&key, None, &claims)),
            r#"token is not yet valid: claim "iat" (1700000061) is after now plus leeway (now 1700000000, leeway 60s)"#
        );
        claims["iat"] = json!("yesterday");
        assert_eq!(
            refused(&config, &sign(&key, None, &claims)),
            r#"invalid claim "iat": not a NumericDate (a number of seconds since the epoch)"#
        );
    }

    #[test]
    fn wrong_or_missing_audience_is_refused() {
        let key = test_key(Algorithm::ES256);
        let config = es256_config(&key);
        let mut claims = good_claims();
        claims["aud"] = json!(["x"]);
        assert_eq!(
            refused(&config, &sign(&key, None, &claims)),
            r#"invalid audience: claim "aud" ["x"] does not contain any of the bound audiences ["sekisho"]"#
        );
        claims.as_object_mut().unwrap().remove("aud");
        assert_eq!(
            refused(&config, &sign(&key, None, &claims)),
            r#"invalid audience: the token has no "aud" claim but the auth method has bound audiences ["sekisho"]"#
        );
        // Without BoundAudiences, any aud is fine.
        let unbound = config_without_bounds(&key);
        claims["aud"] = json!("anything");
        assert!(unbound.verify(&sign(&key, None, &claims), NOW).is_ok());
    }

    fn config_without_bounds(key: &TestKey) -> JwtConfig {
        config(
            json!({ "JWTValidationPubKeys": [key.public_pem], "JWTSupportedAlgs": [algorithm_name(key.alg)] }),
        )
    }

    #[test]
    fn wrong_or_missing_issuer_is_refused() {
        let key = test_key(Algorithm::ES256);
        let config = es256_config(&key);
        let mut claims = good_claims();
        claims["iss"] = json!("a");
        assert_eq!(
            refused(&config, &sign(&key, None, &claims)),
            r#"invalid issuer: claim "iss" "a" is not the bound issuer "https://issuer.example""#
        );
        claims.as_object_mut().unwrap().remove("iss");
        assert_eq!(
            refused(&config, &sign(&key, None, &claims)),
            r#"invalid issuer: the token has no "iss" claim but the bound issuer is "https://issuer.example""#
        );
    }

    #[test]
    fn algorithm_outside_the_supported_list_is_refused() {
        let es = test_key(Algorithm::ES256);
        let ed = test_key(Algorithm::EdDSA);
        let config = config_without_bounds(&ed);
        assert!(config.verify(&sign(&ed, None, &good_claims()), NOW).is_ok());
        assert_eq!(
            refused(&config, &sign(&es, None, &good_claims())),
            r#"unsupported algorithm "ES256": the auth method accepts ["EdDSA"]"#
        );
        // Algorithm confusion: an HMAC token keyed with the public key's PEM text.
        let hs = encode(
            &Header::new(Algorithm::HS256),
            &good_claims(),
            &EncodingKey::from_secret(ed.public_pem.as_bytes()),
        )
        .unwrap();
        assert_eq!(
            refused(&config, &hs),
            r#"unsupported algorithm "HS256": the auth method accepts ["EdDSA"]"#
        );
    }

    #[test]
    fn token_signed_by_another_key_is_refused() {
        let key = test_key(Algorithm::ES256);
        let other = test_key(Algorithm::ES256);
        let config = es256_config(&key);
        assert_eq!(refused(&config, &sign(&other, None, &good_claims())), "invalid signature");

        // A good token with its payload swapped keeps the header but loses the signature.
        let good = sign(&key, None, &good_claims());
        let mut forged_claims = good_claims();
        forged_claims["sub"] = json!("root");
        let forged_payload = sign(&other, None, &forged_claims);
        let parts: Vec<&str> = good.split('.').collect();
        let forged = format!("{}.{}.{}", parts[0], forged_payload.split('.').nth(1).unwrap(), parts[2]);
        assert_eq!(refused(&config, &forged), "invalid signature");

        let rsa = config_without_bounds(&rsa_key());
        let rs = sign(&rsa_key(), None, &good_claims());
        let parts: Vec<&str> = rs.split('.').collect();
        assert_eq!(
            refused(&rsa, &format!("{}.{}.{}", parts[0], parts[1], &parts[2][..40])),
            "invalid signature"
        );
    }

    #[test]
    fn none_and_garbage_tokens_are_refused_without_panic() {
        let key = test_key(Algorithm::EdDSA);
        let config = config_without_bounds(&key);
        let b64 = |v: &Value| b64url(v.to_string().as_bytes());
        let claims = b64(&good_claims());
        let none = format!("{}.{claims}.", b64(&json!({ "alg": "none", "typ": "JWT" })));
        assert_eq!(
            refused(&config, &none),
            r#"unsupported algorithm "none": the auth method accepts ["EdDSA"]"#
        );
        let none_no_dot = format!("{}.{claims}", b64(&json!({ "alg": "none" })));
        assert!(
            refused(&config, &none_no_dot).starts_with("malformed token: expected three dot-separated parts")
        );
        let eddsa_header = b64(&json!({ "alg": "EdDSA" }));
        assert_eq!(
            refused(&config, &format!("{eddsa_header}.{claims}.")),
            "invalid signature",
            "an empty signature never verifies"
        );
        assert!(refused(&config, &format!("{eddsa_header}.{claims}.!!!")).starts_with("malformed token: "));
        // A short Ed25519 signature must not reach a panicking slice.
        assert_eq!(refused(&config, &format!("{eddsa_header}.{claims}.AAAA")), "invalid signature");

        for (token, message) in [
            ("", "malformed token: the token is empty"),
            (
                "garbage",
                "malformed token: expected three dot-separated parts (header.payload.signature), found 1",
            ),
            (
                "a.b",
                "malformed token: expected three dot-separated parts (header.payload.signature), found 2",
            ),
            (
                "a.b.c.d.e",
                "malformed token: expected three dot-separated parts (header.payload.signature), found 5",
            ),
            ("a.b.c", "malformed token: the header is not base64url"),
            ("!!.b.c", "malformed token: the header is not base64url"),
            ("YWJj.b.c", "malformed token: the header is not JSON"),
            ("WzFd.b.c", "malformed token: the header is not a JSON object"),
            ("e30.b.c", r#"malformed token: the header has no "alg""#),
            ("eyJhbGciOjF9.b.c", r#"malformed token: the header's "alg" is not a string"#),
        ] {
            assert_eq!(refused(&config, token), message, "token {token:?}");
        }
        let bad_kid = format!("{}.{claims}.AAAA", b64(&json!({ "alg": "EdDSA", "kid": 5 })));
        assert_eq!(refused(&config, &bad_kid), r#"malformed token: the header's "kid" is not a string"#);
    }

    #[test]
    fn mapped_claim_of_the_wrong_type_is_an_error() {
        let key = test_key(Algorithm::ES256);
        let config = config(json!({
            "JWTValidationPubKeys": [key.public_pem],
            "JWTSupportedAlgs": ["ES256"],
            "ClaimMappings": { "org": "org" },
        }));
        let token = sign(&key, None, &json!({ "org": { "team": "a" }, "exp": NOW + 5 }));
        assert_eq!(
            refused(&config, &token),
            r#"invalid claim "org": mapped to "org" by ClaimMappings: expected a string, number or boolean, found an object"#
        );
        let lists = self::config(json!({
            "JWTValidationPubKeys": [key.public_pem],
            "JWTSupportedAlgs": ["ES256"],
            "ListClaimMappings": { "groups": "groups" },
        }));
        let token = sign(&key, None, &json!({ "groups": ["a", ["b"]], "exp": NOW + 5 }));
        assert_eq!(
            refused(&lists, &token),
            r#"invalid claim "groups": mapped to "groups" by ListClaimMappings: element 1 is a list, expected a string, number or boolean"#
        );
    }

    #[test]
    fn config_errors_name_the_field() {
        let ec = test_key(Algorithm::ES256);
        let pem = ec.public_pem.clone();
        let cases = [
            (
                json!({}),
                "JWTValidationPubKeys: no keys: one of JWTValidationPubKeys, JWKS or JWKSFile must be set",
            ),
            (json!("nope"), "Config: expected a JSON object"),
            (
                json!({ "JWTValidationPubKeys": [pem, "hello"], "JWTSupportedAlgs": ["ES256"] }),
                "JWTValidationPubKeys[1]: not a PEM public key (expected RSA, EC P-256/P-384 or Ed25519)",
            ),
            (
                json!({ "JWTValidationPubKeys": [RSA_TEST_PRIVATE_PEM] }),
                r#"JWTValidationPubKeys[0]: is a private key (PEM "PRIVATE KEY"); give the public key"#,
            ),
            (
                json!({ "JWKS": r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA"}]}"#, "JWTSupportedAlgs": ["EdDSA"] }),
                "JWKS.keys[0]: not a valid public key: an Ed25519 key of the wrong length",
            ),
            (json!({ "JWTValidationPubKeys": pem }), "JWTValidationPubKeys: expected a list of strings"),
            (
                json!({ "JWTValidationPubKeys": [pem] }),
                r#"JWTSupportedAlgs: no configured key can verify ["RS256"] (the default); the keys: an EC P-256 key"#,
            ),
            (
                json!({ "JWTValidationPubKeys": [pem, pem], "jwt_supported_algs": ["EdDSA", "PS256"] }),
                r#"jwt_supported_algs: no configured key can verify ["EdDSA", "PS256"]; the keys: an EC P-256 key"#,
            ),
            (
                json!({ "JWTValidationPubKeys": [pem], "JWTSupportedAlgs": ["ES256", "HS256"] }),
                r#"JWTSupportedAlgs[1]: unknown or unsupported algorithm "HS256" (supported: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA)"#,
            ),
            (
                json!({ "JWTValidationPubKeys": [pem], "jwt_supported_algs": ["none"] }),
                r#"jwt_supported_algs[0]: unknown or unsupported algorithm "none" (supported: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA)"#,
            ),
            (
                json!({ "JWTValidationPubKeys": [pem], "JWTSupportedAlgs": ["ES512"] }),
                r#"JWTSupportedAlgs[0]: algorithm "ES512" is not supported by Sekisho (P-521 keys are not available)"#,
            ),
            (
                json!({ "JWTValidationPubKeys": [pem], "JWTSupportedAlgs": ["ES256"], "ExpirationLeeway": "soon" }),
                r#"ExpirationLeeway: not a duration: "soon" (expected a Go duration such as "150s" or "1m30s")"#,
            ),
            (
                json!({ "JWTValidationPubKeys": [pem], "JWTSupportedAlgs": ["ES256"], "BoundAudiences": "x" }),
                "BoundAudiences: expected a list of strings",
            ),
            (
                json!({ "JWTValidationPubKeys": [pem], "JWTSupportedAlgs": ["ES256"], "ClaimMappings": { "sub": 1 } }),
                r#"ClaimMappings["sub"]: expected a string (the attribute name)"#,
            ),
            (
                json!({ "JWTValidationPubKeys": [pem], "JWTSupportedAlgs": ["ES256"],
                        "ClaimMappings": { "sub": "name" }, "ListClaimMappings": { "names": "name" } }),
                r#"ListClaimMappings: more than one claim maps to attribute "name""#,
            ),
            (
                json!({ "JWTValidationPubKeys": [pem], "BoundIssuer": "a", "bound_issuer": "b" }),
                r#"bound_issuer: set twice (also as "BoundIssuer")"#,
            ),
            (
                json!({ "JWTValidationPubKeys": [pem], "Foo": 1 }),
                r#"Foo: unknown key for a "jwt" auth method"#,
            ),
            (
                json!({ "JWKSURL": "https://idp.example/keys" }),
                "JWKSURL: not supported: Sekisho does not fetch keys over the network; put the JWKS document in JWKS, or its path in JWKSFile",
            ),
            (json!({ "OIDCClientID": "x" }), r#"OIDCClientID: only valid for an "oidc" auth method"#),
            (json!({ "JWKS": "{" }), "JWKS: not valid JSON: EOF while parsing an object at line 1 column 1"),
            (json!({ "JWKS": "{}" }), r#"JWKS: not a JWKS document: expected an object with a "keys" list"#),
            (
                json!({ "JWKS": r#"{"keys":[{"kty":"RSA","e":"AQAB"}]}"# }),
                r#"JWKS.keys[0]: RSA key has no "n""#,
            ),
            (
                json!({ "JWKS": r#"{"keys":[{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}]}"# }),
                "JWKS.keys[0]: not a valid public key: an EC P-256 key of the wrong length",
            ),
            (
                json!({ "JWKS": r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"# }),
                "JWKS: has no usable signing key (RSA, EC P-256/P-384 or Ed25519)",
            ),
            (
                json!({ "JWKS": "{\"keys\":[]}", "JWKSFile": "/x" }),
                r#"JWKSFile: cannot be combined with JWKS"#,
            ),
        ];
        for (input, message) in cases {
            assert_eq!(config_error(input.clone()), message, "config {input}");
        }
    }

    #[test]
    fn durations_follow_go_syntax() {
        assert_eq!(parse_go_duration("150s"), Some(150_000_000_000));
        assert_eq!(parse_go_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_go_duration("1.5h"), Some(5_400_000_000_000));
        assert_eq!(parse_go_duration("-1s"), Some(-1_000_000_000));
        assert_eq!(parse_go_duration("250ms"), Some(250_000_000));
        assert_eq!(parse_go_duration("0"), Some(0));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("s"), None);
        assert_eq!(parse_go_duration(""), None);
        assert_eq!(parse_go_duration("1d"), None);
        assert_eq!(effective_leeway(0, 150.0), 150.0);
        assert_eq!(effective_leeway(-1, 150.0), 0.0);
        assert_eq!(effective_leeway(30_000_000_000, 150.0), 30.0);
        // A JSON number is a Go time.Duration: nanoseconds.
        let key = test_key(Algorithm::ES256);
        let config = config(json!({
            "JWTValidationPubKeys": [key.public_pem],
            "JWTSupportedAlgs": ["ES256"],
            "NotBeforeLeeway": 5_000_000_000_i64,
        }));
        assert_eq!(
            (config.not_before_leeway, config.expiration_leeway, config.clock_skew_leeway),
            (5.0, 150.0, 60.0)
        );
    }

    #[test]
    fn debug_does_not_dump_key_bytes() {
        let key = test_key(Algorithm::ES256);
        let config = es256_config(&key);
        let debug = format!("{config:?}");
        let body_line = key.public_pem.lines().nth(1).unwrap();
        assert!(!debug.contains(&body_line[..20]), "{debug}");
        assert!(debug.contains(r#"source: "JWTValidationPubKeys[0]", kind: "an EC P-256 key""#), "{debug}");
        assert!(debug.contains(r#"supported_algs: ["ES256"]"#), "{debug}");
        assert!(debug.contains(r#"expiration_leeway: "150s""#), "{debug}");
    }

    #[test]
    fn bind_name_interpolation() {
        let claims = VerifiedClaims {
            value: [("name", "web"), ("team", "pay")]
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            list: [("groups".to_owned(), vec!["a".to_owned()])].into_iter().collect(),
        };
        assert_eq!(interpolate("plain-name", &claims).unwrap(), "plain-name");
        assert_eq!(interpolate("${value.name}", &claims).unwrap(), "web");
        assert_eq!(interpolate("svc-${value.team}-${ value.name }", &claims).unwrap(), "svc-pay-web");
        assert_eq!(interpolate("cost $5 and $${literal}", &claims).unwrap(), "cost $5 and ${literal}");
        assert_eq!(
            interpolate("x-${value.nope}", &claims).unwrap_err().to_string(),
            r#"invalid template "x-${value.nope}": unknown attribute "value.nope""#
        );
        assert_eq!(
            interpolate("${name}", &claims).unwrap_err().to_string(),
            r#"invalid template "${name}": unknown attribute "name""#
        );
        assert_eq!(
            interpolate("${list.groups}", &claims).unwrap_err().to_string(),
            r#"invalid template "${list.groups}": list attribute "list.groups" cannot be interpolated (only value.<attribute>)"#
        );
        assert_eq!(
            interpolate("ab-${value.name", &claims).unwrap_err().to_string(),
            r#"invalid template "ab-${value.name": unterminated "${" at byte 3"#
        );
    }

    #[test]
    fn base64url_decoding() {
        assert_eq!(base64url_decode("e30").as_deref(), Some(&b"{}"[..]));
        assert_eq!(base64url_decode("YWJj").as_deref(), Some(&b"abc"[..]));
        assert_eq!(base64url_decode("_-8").as_deref(), Some(&[0xff, 0xef][..]));
        assert_eq!(base64url_decode("YWJjZ"), None);
        assert_eq!(base64url_decode("a+b"), None);
    }
}
