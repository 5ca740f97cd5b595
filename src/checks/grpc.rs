//! The gRPC probe (Consul's `CheckGRPC`): `grpc.health.v1.Health/Check` over HTTP/2,
//! cleartext with prior knowledge or TLS with ALPN `h2`, with the two tiny protobuf messages
//! encoded by hand. SERVING is passing; any other status or error is critical, with
//! grpc-go's error texts (`rpc error: code = Unavailable desc = …`).

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::Request;
use http::header::{CONTENT_TYPE, TE, USER_AGENT};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::time::{Instant, timeout_at};

use super::net::{AbortOnDrop, Io, TlsParams, dial_tcp, split_host_port, tls_connect};
use super::{Status, percent_decode};

const PATH: &str = "/grpc.health.v1.Health/Check";
/// Far above a health response (a few bytes); guards against a hostile server.
const MAX_RESPONSE: usize = 64 * 1024;
/// `HealthCheckResponse.ServingStatus.SERVING`.
const SERVING: u64 = 1;

pub(crate) struct GrpcProbe<'a> {
    /// `host:port[/service]`.
    pub(crate) target: &'a str,
    pub(crate) use_tls: bool,
    pub(crate) tls_skip_verify: bool,
    pub(crate) tls_server_name: &'a str,
}

impl GrpcProbe<'_> {
    pub(crate) async fn check(&self, timeout: Duration) -> (Status, String) {
        let deadline = Instant::now() + timeout;
        let (server, service) = self.target.split_once('/').unwrap_or((self.target, ""));
        match timeout_at(deadline, self.call(server, service, deadline)).await {
            Err(_) => (
                Status::Critical,
                "rpc error: code = DeadlineExceeded desc = context deadline exceeded".into(),
            ),
            Ok(Err(e)) => (Status::Critical, e),
            Ok(Ok(SERVING)) => (Status::Passing, format!("gRPC check {}: success", self.target)),
            Ok(Ok(s)) => {
                (Status::Critical, format!("gRPC {} serving status: {}", self.target, serving_name(s)))
            }
        }
    }

    /// Returns the serving status.
    async fn call(&self, server: &str, service: &str, deadline: Instant) -> Result<u64, String> {
        let dial_err = |e: String| {
            format!(
                "rpc error: code = Unavailable desc = connection error: desc = \"transport: Error while dialing: {e}\""
            )
        };
        let tcp = dial_tcp(server, deadline).await.map_err(dial_err)?;
        let io: Box<dyn Io> = if self.use_tls {
            let (host, _) = split_host_port(server).map_err(dial_err)?;
            let p = TlsParams {
                skip_verify: self.tls_skip_verify,
                server_name: self.tls_server_name,
                alpn: b"h2",
            };
            Box::new(tls_connect(tcp, host, p, deadline).await.map_err(|e| {
                format!(
                    "rpc error: code = Unavailable desc = connection error: desc = \"transport: authentication handshake failed: {e}\""
                )
            })?)
        } else {
            Box::new(tcp)
        };
        let unavailable = |e: hyper::Error| format!("rpc error: code = Unavailable desc = {e}");
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
                .await
                .map_err(unavailable)?;
        let _driver = AbortOnDrop(tokio::spawn(async move {
            let _ = conn.await;
        }));
        let scheme = if self.use_tls { "https" } else { "http" };
        let req = Request::post(format!("{scheme}://{server}{PATH}"))
            .header(CONTENT_TYPE, "application/grpc")
            .header(TE, "trailers")
            .header(USER_AGENT, concat!("sekisho-health-check/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(encode_request(service)))
            .map_err(|e| format!("rpc error: code = Internal desc = {e}"))?;
        let resp = sender.send_request(req).await.map_err(unavailable)?;
        let (parts, body) = resp.into_parts();
        if parts.status != http::StatusCode::OK {
            let code = http_status_code(parts.status.as_u16());
            let reason = parts.status.canonical_reason().unwrap_or("");
            return Err(format!(
                "rpc error: code = {code} desc = unexpected HTTP status code received from server: {} ({reason})",
                parts.status.as_u16()
            ));
        }
        let (data, trailers) = read_body(body).await?;
        let grpc_status =
            trailers.as_ref().and_then(|t| t.get("grpc-status")).or_else(|| parts.headers.get("grpc-status"));
        let Some(grpc_status) = grpc_status else {
            return Err(
                "rpc error: code = Internal desc = server closed the stream without sending trailers".into(),
            );
        };
        let code = grpc_status.to_str().ok().and_then(|s| s.parse::<u32>().ok()).unwrap_or(2);
        if code != 0 {
            let msg = trailers
                .as_ref()
                .and_then(|t| t.get("grpc-message"))
                .or_else(|| parts.headers.get("grpc-message"))
                .map(|v| percent_decode(v.as_bytes()))
                .unwrap_or_default();
            return Err(format!("rpc error: code = {} desc = {msg}", code_name(code)));
        }
        decode_response(&data)
    }
}

async fn read_body(mut body: Incoming) -> Result<(Vec<u8>, Option<http::HeaderMap>), String> {
    let mut data = Vec::new();
    let mut trailers = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("rpc error: code = Internal desc = {e}"))?;
        match frame.into_data() {
            Ok(chunk) => {
                if data.len() + chunk.len() > MAX_RESPONSE {
                    return Err(
                        "rpc error: code = ResourceExhausted desc = grpc: received message larger than max"
                            .into(),
                    );
                }
                data.extend_from_slice(&chunk);
            }
            Err(frame) => trailers = frame.into_trailers().ok(),
        }
    }
    Ok((data, trailers))
}

/// A length-prefixed `HealthCheckRequest { string service = 1; }`.
fn encode_request(service: &str) -> Bytes {
    let mut msg = BytesMut::new();
    if !service.is_empty() {
        msg.put_u8(0x0a); // field 1, wire type 2
        put_varint(&mut msg, service.len() as u64);
        msg.put_slice(service.as_bytes());
    }
    let mut out = BytesMut::with_capacity(5 + msg.len());
    out.put_u8(0); // not compressed
    out.put_u32(msg.len() as u32);
    out.put_slice(&msg);
    out.freeze()
}

fn put_varint(buf: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

fn get_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Decodes the first length-prefixed `HealthCheckResponse { ServingStatus status = 1; }`.
fn decode_response(data: &[u8]) -> Result<u64, String> {
    let bad = |what: &str| {
        format!("rpc error: code = Internal desc = grpc: failed to unmarshal the received message: {what}")
    };
    if data.len() < 5 {
        return Err("rpc error: code = Internal desc = grpc: no response message received".into());
    }
    if data[0] != 0 {
        return Err("rpc error: code = Internal desc = grpc: compressed response not supported".into());
    }
    let len = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
    let msg = data.get(5..5 + len).ok_or_else(|| bad("truncated message"))?;
    let mut pos = 0;
    let mut status = 0; // proto3 default: UNKNOWN
    while pos < msg.len() {
        let key = get_varint(msg, &mut pos).ok_or_else(|| bad("bad field key"))?;
        match (key >> 3, key & 7) {
            (1, 0) => status = get_varint(msg, &mut pos).ok_or_else(|| bad("bad status"))?,
            (_, 0) => {
                get_varint(msg, &mut pos).ok_or_else(|| bad("bad varint"))?;
            }
            (_, 1) => pos += 8,
            (_, 5) => pos += 4,
            (_, 2) => {
                let n = get_varint(msg, &mut pos).ok_or_else(|| bad("bad length"))?;
                pos = pos.saturating_add(usize::try_from(n).unwrap_or(usize::MAX));
            }
            _ => return Err(bad("unsupported wire type")),
        }
    }
    if pos > msg.len() {
        return Err(bad("truncated field"));
    }
    Ok(status)
}

fn serving_name(s: u64) -> String {
    match s {
        0 => "UNKNOWN".into(),
        1 => "SERVING".into(),
        2 => "NOT_SERVING".into(),
        3 => "SERVICE_UNKNOWN".into(),
        n => n.to_string(),
    }
}

/// grpc-go's `codes.Code.String()`.
fn code_name(code: u32) -> String {
    const NAMES: [&str; 17] = [
        "OK",
        "Canceled",
        "Unknown",
        "InvalidArgument",
        "DeadlineExceeded",
        "NotFound",
        "AlreadyExists",
        "PermissionDenied",
        "ResourceExhausted",
        "FailedPrecondition",
        "Aborted",
        "OutOfRange",
        "Unimplemented",
        "Internal",
        "Unavailable",
        "DataLoss",
        "Unauthenticated",
    ];
    NAMES.get(code as usize).map_or_else(|| format!("Code({code})"), |n| n.to_string())
}

/// grpc-go's mapping of a non-200 HTTP status to a gRPC code.
fn http_status_code(status: u16) -> &'static str {
    match status {
        400 => "Internal",
        401 => "Unauthenticated",
        403 => "PermissionDenied",
        404 => "Unimplemented",
        429 | 502 | 503 | 504 => "Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(msg: &[u8]) -> Vec<u8> {
        let mut v = vec![0];
        v.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        v.extend_from_slice(msg);
        v
    }

    #[test]
    fn request_encodes_the_service_name_as_field_one() {
        assert_eq!(&encode_request("")[..], &[0, 0, 0, 0, 0]);
        assert_eq!(&encode_request("web")[..], &[0, 0, 0, 0, 5, 0x0a, 3, b'w', b'e', b'b']);
    }

    #[test]
    fn response_decoding_reads_the_status_and_skips_unknown_fields() {
        assert_eq!(decode_response(&framed(&[0x08, 0x01])), Ok(1));
        assert_eq!(decode_response(&framed(&[0x08, 0x02])), Ok(2));
        assert_eq!(decode_response(&framed(&[])), Ok(0));
        assert_eq!(decode_response(&framed(&[0x12, 0x01, b'x', 0x08, 0x01])), Ok(1));
        assert!(decode_response(&[0, 0]).is_err());
        assert!(decode_response(&framed(&[0x12, 0x09, b'x'])).is_err());
        assert!(decode_response(&framed(&[0x08])).is_err());
    }

    #[test]
    fn names_and_messages_read_like_grpc_go() {
        assert_eq!(serving_name(2), "NOT_SERVING");
        assert_eq!(code_name(14), "Unavailable");
        assert_eq!(code_name(99), "Code(99)");
        assert_eq!(percent_decode(b"bad%20thing%"), "bad thing%");
    }
}
