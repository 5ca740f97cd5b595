//! The HTTP probe (Consul's `CheckHTTP`): one fresh HTTP/1.1 connection per run
//! (`Connection: close`, as Consul disables keep-alives), redirects followed like Go's client,
//! 2xx passing, 429 warning, anything else critical, output
//! `HTTP <method> <url>: <code> <reason> Output: <body>` with the body cut at the output limit.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONNECTION, HOST, LOCATION, USER_AGENT};
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::time::{Instant, timeout_at};

use super::net::{AbortOnDrop, Io, TlsParams, dial_tcp, tls_connect};
use super::{Status, lossy_prefix, percent_decode};

/// Consul's `checks.UserAgent`.
const USER_AGENT_VALUE: &str = "Consul Health Check";
const ACCEPT_VALUE: &str = "text/plain, text/*, */*";
/// Go's `http.Client` default redirect limit.
const MAX_REDIRECTS: usize = 10;

pub(crate) struct HttpProbe<'a> {
    pub(crate) url: &'a str,
    pub(crate) method: &'a str,
    pub(crate) headers: &'a BTreeMap<String, Vec<String>>,
    pub(crate) body: &'a str,
    pub(crate) tls_skip_verify: bool,
    pub(crate) tls_server_name: &'a str,
    pub(crate) disable_redirects: bool,
}

/// Go's `url.Error` operation name: `Get`, `Post`, ….
fn go_op(method: &str) -> String {
    let mut c = method.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c.flat_map(char::to_lowercase)).collect(),
        None => String::new(),
    }
}

impl HttpProbe<'_> {
    pub(crate) async fn check(&self, timeout: Duration, max_output: usize) -> (Status, String) {
        let deadline = Instant::now() + timeout;
        let op = go_op(self.method);
        let mut url = self.url.to_string();
        let mut method = self.method.to_string();
        let mut body = self.body;
        for _ in 0..MAX_REDIRECTS {
            let (mut resp, driver) = match timeout_at(deadline, self.send(&url, &method, body, deadline))
                .await
            {
                Err(_) => {
                    let msg = "context deadline exceeded (Client.Timeout exceeded while awaiting headers)";
                    return (Status::Critical, format!("{op} \"{url}\": {msg}"));
                }
                Ok(Err(e)) => return (Status::Critical, format!("{op} \"{url}\": {e}")),
                Ok(Ok(r)) => r,
            };
            if let Some(next) = self.redirect(&url, &resp) {
                if matches!(resp.status().as_u16(), 301..=303) && method != "GET" && method != "HEAD" {
                    method = "GET".into();
                    body = "";
                }
                url = next;
                continue;
            }
            let output = read_limited(resp.body_mut(), max_output, deadline).await;
            drop(driver);
            let code = resp.status();
            let line = format!(
                "HTTP {} {}: {} Output: {}",
                self.method,
                self.url,
                status_line(&resp),
                lossy_prefix(&output)
            );
            let status = match code.as_u16() {
                200..=299 => Status::Passing,
                429 => Status::Warning,
                _ => Status::Critical,
            };
            return (status, line);
        }
        (Status::Critical, format!("{op} \"{url}\": stopped after {MAX_REDIRECTS} redirects"))
    }

    /// The next URL when `resp` is a redirect to follow.
    fn redirect(&self, url: &str, resp: &Response<Incoming>) -> Option<String> {
        if self.disable_redirects || !matches!(resp.status().as_u16(), 301..=303 | 307 | 308) {
            return None;
        }
        let loc = resp.headers().get(LOCATION)?.to_str().ok()?;
        if loc.is_empty() {
            return None;
        }
        resolve_location(&url.parse().ok()?, loc)
    }

    /// Connects and sends one request; the returned driver keeps the connection alive.
    async fn send(
        &self,
        url: &str,
        method: &str,
        body: &str,
        deadline: Instant,
    ) -> Result<(Response<Incoming>, AbortOnDrop), String> {
        let uri: Uri = url.parse().map_err(|e| format!("parse {url:?}: {e}"))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            other => return Err(format!("unsupported protocol scheme {:?}", other.unwrap_or(""))),
        };
        let authority = uri.authority().ok_or("http: no Host in request URL")?;
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let host = authority.host();
        let tcp = dial_tcp(&format!("{host}:{port}"), deadline).await?;
        let io: Box<dyn Io> = if https {
            let p = TlsParams {
                skip_verify: self.tls_skip_verify,
                server_name: self.tls_server_name,
                alpn: b"http/1.1",
            };
            Box::new(tls_connect(tcp, host, p, deadline).await?)
        } else {
            Box::new(tcp)
        };
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(io)).await.map_err(hyper_err)?;
        let driver = AbortOnDrop(tokio::spawn(async move {
            let _ = conn.await;
        }));
        let path = uri.path_and_query().map_or("/", |pq| pq.as_str());
        let host_header = match authority.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        let userinfo = authority.as_str().rsplit_once('@').map(|(u, _)| u);
        let req = self.request(method, path, &host_header, userinfo, body)?;
        let resp = sender.send_request(req).await.map_err(hyper_err)?;
        Ok((resp, driver))
    }

    /// Builds the request: the check's headers, then Go's defaults (`Host` from the URL or
    /// a `Host` header, Basic auth from URL userinfo) and Consul's (`User-Agent`, `Accept`).
    fn request(
        &self,
        method: &str,
        path: &str,
        host: &str,
        userinfo: Option<&str>,
        body: &str,
    ) -> Result<Request<Full<Bytes>>, String> {
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| format!("net/http: invalid method {method:?}"))?;
        let mut req = Request::builder().method(method).uri(path);
        let mut host = host.to_string();
        let mut has_ua = false;
        let mut has_accept = false;
        let mut has_auth = false;
        for (name, values) in self.headers {
            let hname = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("net/http: invalid header field name {name:?}"))?;
            if hname == HOST {
                if let Some(v) = values.first().filter(|v| !v.is_empty()) {
                    host.clone_from(v);
                }
                continue;
            }
            has_ua |= hname == USER_AGENT;
            has_accept |= hname == ACCEPT;
            has_auth |= hname == AUTHORIZATION;
            for v in values {
                let hv = HeaderValue::from_str(v)
                    .map_err(|_| format!("net/http: invalid header field value for {name:?}"))?;
                req = req.header(hname.clone(), hv);
            }
        }
        let host = HeaderValue::from_str(&host).map_err(|_| format!("http: invalid Host header {host:?}"))?;
        req = req.header(HOST, host).header(CONNECTION, "close");
        if !has_ua {
            req = req.header(USER_AGENT, USER_AGENT_VALUE);
        }
        if !has_accept {
            req = req.header(ACCEPT, ACCEPT_VALUE);
        }
        if let Some(user) = userinfo.filter(|_| !has_auth) {
            let creds = base64::engine::general_purpose::STANDARD.encode(percent_decode(user.as_bytes()));
            req = req.header(AUTHORIZATION, format!("Basic {creds}"));
        }
        req.body(Full::new(Bytes::copy_from_slice(body.as_bytes()))).map_err(|e| e.to_string())
    }
}

fn hyper_err(e: hyper::Error) -> String {
    match std::error::Error::source(&e) {
        Some(src) => format!("{e}: {src}"),
        None => e.to_string(),
    }
}

/// Go's `Response.Status`: `"503 Service Unavailable"`, keeping a non-standard reason.
fn status_line(resp: &Response<Incoming>) -> String {
    let code: StatusCode = resp.status();
    let reason = resp
        .extensions()
        .get::<hyper::ext::ReasonPhrase>()
        .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
        .or_else(|| code.canonical_reason().map(str::to_string));
    match reason {
        Some(r) if !r.is_empty() => format!("{} {r}", code.as_u16()),
        _ => code.as_u16().to_string(),
    }
}

/// Reads at most `max` body bytes before `deadline`; a read error or the deadline ends it
/// with what arrived (Consul logs and reports the partial body too).
async fn read_limited(body: &mut Incoming, max: usize, deadline: Instant) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < max {
        match timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    let take = data.len().min(max - out.len());
                    out.extend_from_slice(&data[..take]);
                }
            }
            _ => break,
        }
    }
    out
}

/// Resolves a `Location` header against the request URL (absolute, scheme-relative,
/// absolute-path and relative-path forms).
fn resolve_location(base: &Uri, loc: &str) -> Option<String> {
    if loc.parse::<Uri>().ok().is_some_and(|u| u.scheme().is_some()) {
        return Some(loc.to_string());
    }
    let scheme = base.scheme_str()?;
    let authority = base.authority()?.as_str();
    if let Some(rest) = loc.strip_prefix("//") {
        return Some(format!("{scheme}://{rest}"));
    }
    if loc.starts_with('/') {
        return Some(format!("{scheme}://{authority}{loc}"));
    }
    let path = base.path();
    let dir = path.rfind('/').map_or("/", |i| &path[..=i]);
    Some(format!("{scheme}://{authority}{dir}{loc}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_op_capitalizes_like_url_error() {
        assert_eq!(go_op("GET"), "Get");
        assert_eq!(go_op("post"), "Post");
    }

    #[test]
    fn locations_resolve_against_the_request_url() {
        let base: Uri = "http://h:8/a/b?x=1".parse().unwrap();
        assert_eq!(resolve_location(&base, "https://o/p").as_deref(), Some("https://o/p"));
        assert_eq!(resolve_location(&base, "//o:9/p").as_deref(), Some("http://o:9/p"));
        assert_eq!(resolve_location(&base, "/health").as_deref(), Some("http://h:8/health"));
        assert_eq!(resolve_location(&base, "c").as_deref(), Some("http://h:8/a/c"));
    }
}
