//! The client's single error type.

use std::path::PathBuf;

use http::StatusCode;

/// Everything that can go wrong talking to an agent's HTTP API.
///
/// The texts follow Consul's Go client so that scripts matching on them keep working:
/// `Unexpected response code: 500 (No cluster leader)` for an API error and
/// `Get "http://127.0.0.1:8500/v1/kv/x": dial tcp 127.0.0.1:8500: connect: connection refused`
/// for an agent that cannot be reached.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The agent answered with a non-2xx status; `body` is its text, trimmed.
    #[error("Unexpected response code: {}{}", .status.as_u16(), paren(.body))]
    Api {
        /// The HTTP status.
        status: StatusCode,
        /// The response body as text (Consul's error message).
        body: String,
    },
    /// The request never got an answer: refused, reset, unresolvable host, ...
    #[error("{} \"{url}\": {detail}", go_method(.method))]
    Connect {
        /// The HTTP method, e.g. `GET`.
        method: http::Method,
        /// The full URL that was requested.
        url: String,
        /// What went wrong, e.g. `dial tcp 127.0.0.1:8500: connect: connection refused`.
        detail: String,
    },
    /// The configured address cannot be turned into a request URL.
    #[error("invalid agent address {address:?}: {reason}")]
    InvalidAddress {
        /// The address as configured (`-http-addr`, `CONSUL_HTTP_ADDR`).
        address: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The response body did not have the JSON shape the API documents.
    #[error("decoding the response of {path}")]
    Decode {
        /// The request path and query.
        path: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The token file (`-token-file`, `CONSUL_HTTP_TOKEN_FILE`) could not be read.
    #[error("reading token file {}", .path.display())]
    TokenFile {
        /// The file that was read.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
}

impl ClientError {
    /// The HTTP status of an API error, `None` for every other kind.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True for a 404 answer.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(StatusCode::NOT_FOUND)
    }

    /// True for a 403 answer (ACL denied).
    pub fn is_permission_denied(&self) -> bool {
        self.status() == Some(StatusCode::FORBIDDEN)
    }

    /// True when the agent could not be reached at all.
    pub fn is_connect(&self) -> bool {
        matches!(self, Self::Connect { .. })
    }
}

fn paren(body: &str) -> String {
    if body.is_empty() { String::new() } else { format!(" ({body})") }
}

/// Go's `net/http` spells methods `Get`, `Put`, ... in its error texts.
fn go_method(method: &http::Method) -> String {
    let s = method.as_str();
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_string() + &chars.as_str().to_ascii_lowercase(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_error_reads_like_consuls_go_client() {
        let e =
            ClientError::Api { status: StatusCode::INTERNAL_SERVER_ERROR, body: "No cluster leader".into() };
        assert_eq!(e.to_string(), "Unexpected response code: 500 (No cluster leader)");
        let e = ClientError::Api { status: StatusCode::FORBIDDEN, body: String::new() };
        assert_eq!(e.to_string(), "Unexpected response code: 403");
        assert!(e.is_permission_denied());
    }

    #[test]
    fn connect_error_names_method_and_url() {
        let e = ClientError::Connect {
            method: http::Method::GET,
            url: "http://127.0.0.1:1/v1/kv/x".into(),
            detail: "dial tcp 127.0.0.1:1: connect: connection refused".into(),
        };
        assert_eq!(
            e.to_string(),
            "Get \"http://127.0.0.1:1/v1/kv/x\": dial tcp 127.0.0.1:1: connect: connection refused"
        );
        assert!(e.is_connect());
    }
}
