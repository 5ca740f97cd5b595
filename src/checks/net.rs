//! Dialing for the network probes: TCP with a deadline, optional TLS (ring provider, system
//! roots or no verification), and Go-style error texts so outputs read like Consul's
//! (`dial tcp 127.0.0.1:1: connect: connection refused`).

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout_at};

/// A byte stream a probe talks over (plain TCP or TLS).
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Aborts a helper task (a hyper connection driver) when the probe that owns it ends.
pub(crate) struct AbortOnDrop(pub(crate) JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An OS error as Go prints it: `connection refused`, not `Connection refused (os error 111)`.
pub(crate) fn os_err(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::ConnectionReset => "connection reset by peer".into(),
        io::ErrorKind::TimedOut => "i/o timeout".into(),
        io::ErrorKind::HostUnreachable => "no route to host".into(),
        io::ErrorKind::NetworkUnreachable => "network is unreachable".into(),
        io::ErrorKind::AddrNotAvailable => "cannot assign requested address".into(),
        _ => {
            let s = e.to_string();
            let s = s.split(" (os error").next().unwrap_or(&s).to_string();
            let mut c = s.chars();
            match c.next() {
                Some(f) => f.to_lowercase().chain(c).collect(),
                None => s,
            }
        }
    }
}

/// Splits `host:port` (`[v6]:port` too) the way Go's `net.SplitHostPort` does.
pub(crate) fn split_host_port(addr: &str) -> Result<(&str, u16), String> {
    let missing = || format!("address {addr}: missing port in address");
    let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
        let (h, p) = rest.split_once(']').ok_or_else(|| format!("address {addr}: missing ']' in address"))?;
        (h, p.strip_prefix(':').ok_or_else(missing)?)
    } else {
        let (h, p) = addr.rsplit_once(':').ok_or_else(missing)?;
        if h.contains(':') {
            return Err(format!("address {addr}: too many colons in address"));
        }
        (h, p)
    };
    let port = port.parse::<u16>().map_err(|_| format!("address {addr}: invalid port"))?;
    Ok((host, port))
}

/// Resolves `addr` and connects before `deadline`, trying each address in turn.
/// Errors read like Go's `net.Dial`.
pub(crate) async fn dial_tcp(addr: &str, deadline: Instant) -> Result<TcpStream, String> {
    let targets = resolve(addr, "tcp", deadline).await?;
    let mut last = format!("dial tcp {addr}: i/o timeout");
    for target in targets {
        match timeout_at(deadline, TcpStream::connect(target)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => last = format!("dial tcp {target}: connect: {}", os_err(&e)),
            Err(_) => return Err(format!("dial tcp {target}: i/o timeout")),
        }
    }
    Err(last)
}

/// Resolves `host:port` before `deadline` (`net` is "tcp" or "udp", for error texts).
pub(crate) async fn resolve(addr: &str, net: &str, deadline: Instant) -> Result<Vec<SocketAddr>, String> {
    let (host, port) = split_host_port(addr).map_err(|e| format!("dial {net}: {e}"))?;
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let host_port = (host.to_string(), port);
    match timeout_at(deadline, tokio::net::lookup_host(host_port)).await {
        Ok(Ok(addrs)) => {
            let addrs: Vec<_> = addrs.collect();
            if addrs.is_empty() { Err(format!("dial {net}: lookup {host}: no such host")) } else { Ok(addrs) }
        }
        Ok(Err(_)) => Err(format!("dial {net}: lookup {host}: no such host")),
        Err(_) => Err(format!("dial {net}: lookup {host}: i/o timeout")),
    }
}

/// TLS options of a probe.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TlsParams<'a> {
    /// Accept any certificate (the handshake signature is still checked).
    pub(crate) skip_verify: bool,
    /// SNI and verified name; the dialed host when empty.
    pub(crate) server_name: &'a str,
    /// ALPN protocol to offer.
    pub(crate) alpn: &'static [u8],
}

/// Wraps `tcp` in TLS; `host` is the dialed host, used when no server name is set.
pub(crate) async fn tls_connect(
    tcp: TcpStream,
    host: &str,
    p: TlsParams<'_>,
    deadline: Instant,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let name = if p.server_name.is_empty() { host } else { p.server_name };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    let server_name =
        ServerName::try_from(name.to_string()).map_err(|_| format!("tls: invalid server name {name:?}"))?;
    let connector = tokio_rustls::TlsConnector::from(client_config(p.skip_verify, p.alpn)?);
    match timeout_at(deadline, connector.connect(server_name, tcp)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(tls_err(&e)),
        Err(_) => Err("net/http: TLS handshake timeout".into()),
    }
}

fn tls_err(e: &io::Error) -> String {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::InvalidCertificate(c)) => {
            format!("tls: failed to verify certificate: {}", cert_err(c))
        }
        Some(other) => format!("tls: {other}"),
        None => os_err(e),
    }
}

/// Go's `x509` texts for the common verification failures.
fn cert_err(c: &rustls::CertificateError) -> String {
    use rustls::CertificateError as C;
    match c {
        C::UnknownIssuer => "x509: certificate signed by unknown authority".into(),
        C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. } => {
            "x509: certificate has expired or is not yet valid".into()
        }
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            "x509: certificate is not valid for the requested server name".into()
        }
        C::BadSignature => "x509: certificate signature is invalid".into(),
        other => format!("x509: {other}"),
    }
}

fn provider() -> Arc<CryptoProvider> {
    static P: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    P.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider())).clone()
}

/// The system's CA certificates, loaded once (like Go's system pool).
fn roots() -> Arc<RootCertStore> {
    static R: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    R.get_or_init(|| {
        let mut store = RootCertStore::empty();
        let loaded = rustls_native_certs::load_native_certs();
        let (added, ignored) = store.add_parsable_certificates(loaded.certs);
        tracing::debug!(
            added,
            ignored,
            errors = loaded.errors.len(),
            "loaded system CA certificates for checks"
        );
        Arc::new(store)
    })
    .clone()
}

fn client_config(skip_verify: bool, alpn: &'static [u8]) -> Result<Arc<ClientConfig>, String> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?;
    let mut cfg = if skip_verify {
        let verifier = SkipVerify(provider().signature_verification_algorithms);
        builder.dangerous().with_custom_certificate_verifier(Arc::new(verifier)).with_no_client_auth()
    } else {
        builder.with_root_certificates(roots()).with_no_client_auth()
    };
    cfg.alpn_protocols = vec![alpn.to_vec()];
    Ok(Arc::new(cfg))
}

/// `TLSSkipVerify`: any certificate and name, like Go's `InsecureSkipVerify`.
#[derive(Debug)]
struct SkipVerify(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for SkipVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_host_port_follows_go() {
        assert_eq!(split_host_port("127.0.0.1:80"), Ok(("127.0.0.1", 80)));
        assert_eq!(split_host_port("[::1]:8500"), Ok(("::1", 8500)));
        assert_eq!(split_host_port("localhost"), Err("address localhost: missing port in address".into()));
        assert_eq!(split_host_port("::1:80"), Err("address ::1:80: too many colons in address".into()));
        assert_eq!(split_host_port("h:99999"), Err("address h:99999: invalid port".into()));
    }

    #[test]
    fn os_errors_read_like_go() {
        let e = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(os_err(&e), "connection refused");
        assert_eq!(os_err(&io::Error::from_raw_os_error(libc::EPERM)), "operation not permitted");
    }
}
