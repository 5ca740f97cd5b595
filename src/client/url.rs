//! Building request URLs: the base from the configured address, escaped keys, query params.

use super::ClientError;

/// `http://host:port` (or `https://` when `https`) for a configured address (`host:port`,
/// `http://host:port/` or `https://host:port`).
pub(crate) fn base_url(address: &str, https: bool) -> Result<String, ClientError> {
    let invalid =
        |reason: &str| ClientError::InvalidAddress { address: address.to_owned(), reason: reason.to_owned() };
    let trimmed = address.trim().trim_end_matches('/');
    let scheme = if https { "https" } else { "http" };
    let base = match trimmed.split_once("://") {
        None => format!("{scheme}://{trimmed}"),
        Some(("http", rest)) => format!("{scheme}://{rest}"),
        Some(("https", _)) => trimmed.to_owned(),
        Some((scheme, _)) => return Err(invalid(&format!("unsupported scheme {scheme:?}"))),
    };
    let uri: http::Uri = base.parse().map_err(|e: http::uri::InvalidUri| invalid(&e.to_string()))?;
    match uri.authority() {
        Some(a) if !a.host().is_empty() && uri.path().len() <= 1 => Ok(base),
        _ => Err(invalid("expected host:port")),
    }
}

/// Escapes a KV key for use as a URL path, keeping `/` as the separator.
pub(crate) fn escape_path(key: &str) -> String {
    escape(key, |b| b == b'/')
}

/// Escapes a query parameter value.
pub(crate) fn escape_query(value: &str) -> String {
    escape(value, |_| false)
}

/// Appends `name` (with `=value` when given) to a path that may already have a query.
pub(crate) fn append_param(path: &mut String, name: &str, value: Option<&str>) {
    path.push(if path.contains('?') { '&' } else { '?' });
    path.push_str(name);
    path.push('=');
    if let Some(v) = value {
        path.push_str(&escape_query(v));
    }
}

/// True when the query part of `path` already sets `name`.
pub(crate) fn has_param(path: &str, name: &str) -> bool {
    let Some((_, query)) = path.split_once('?') else {
        return false;
    };
    query.split('&').any(|pair| pair.split('=').next() == Some(name))
}

fn escape(text: &str, keep: impl Fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_accepts_host_port_and_http_urls() {
        assert_eq!(base_url("127.0.0.1:8500", false).unwrap(), "http://127.0.0.1:8500");
        assert_eq!(base_url("http://localhost:1/", false).unwrap(), "http://localhost:1");
        assert_eq!(base_url("https://x:1", true).unwrap(), "https://x:1");
        assert_eq!(base_url("127.0.0.1:8501", true).unwrap(), "https://127.0.0.1:8501");
        assert_eq!(base_url("http://x:1", true).unwrap(), "https://x:1", "CONSUL_HTTP_SSL wins");
        assert!(base_url("unix:///tmp/s", false).is_err());
        assert!(base_url("", false).is_err());
        assert!(base_url("http://x:1/some/path", false).is_err());
    }

    #[test]
    fn keys_and_values_are_escaped() {
        assert_eq!(escape_path("a/b c?d%"), "a/b%20c%3Fd%25");
        assert_eq!(escape_query("a/b&c"), "a%2Fb%26c");
        assert_eq!(escape_path("ü"), "%C3%BC");
    }

    #[test]
    fn params_append_and_detect() {
        let mut p = "/v1/kv/x".to_owned();
        append_param(&mut p, "recurse", None);
        append_param(&mut p, "dc", Some("dc 2"));
        assert_eq!(p, "/v1/kv/x?recurse=&dc=dc%202");
        assert!(has_param(&p, "dc"));
        assert!(!has_param(&p, "d"));
        assert!(!has_param("/v1/kv/dc", "dc"));
    }
}
