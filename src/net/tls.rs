//! Outgoing TLS for hyper clients (server RPC and the CLI's HTTPS): dial with the plain
//! connector, then run the handshake with the *current* client config of a [`TlsSource`], so a
//! certificate reload applies to the next connection.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

/// Where a connector takes its config and the name to verify.
pub trait TlsSource: Send + Sync + 'static {
    /// The client config for the next connection; `None` when TLS is off.
    fn client_config(&self) -> Option<Arc<ClientConfig>>;
    /// The name the server's certificate must carry when dialing `uri`.
    fn server_name(&self, uri: &http::Uri) -> String;
}

/// A fixed config; the name is `name`, or else the host of the URL.
#[derive(Debug)]
pub struct FixedTls {
    /// The client config.
    pub config: Arc<ClientConfig>,
    /// `-tls-server-name` / `CONSUL_TLS_SERVER_NAME`.
    pub name: Option<String>,
}

impl TlsSource for FixedTls {
    fn client_config(&self) -> Option<Arc<ClientConfig>> {
        Some(self.config.clone())
    }

    fn server_name(&self, uri: &http::Uri) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| uri.host().unwrap_or_default().trim_matches(['[', ']']).to_owned())
    }
}

/// A hyper connector that wraps every connection in TLS.
#[derive(Clone)]
pub struct TlsConnector {
    http: HttpConnector,
    source: Arc<dyn TlsSource>,
}

impl TlsConnector {
    /// Dials with `http` (its `enforce_http` is turned off) and secures with `source`.
    pub fn new(mut http: HttpConnector, source: Arc<dyn TlsSource>) -> Self {
        http.enforce_http(false);
        Self { http, source }
    }
}

impl std::fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsConnector")
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower::Service<http::Uri> for TlsConnector {
    type Response = TlsIo;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<TlsIo, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let mut http = self.http.clone();
        let source = self.source.clone();
        Box::pin(async move {
            let config = source.client_config().ok_or("outgoing TLS is not configured")?;
            let name = ServerName::try_from(source.server_name(&uri))?;
            let tcp = http.call(uri).await?.into_inner();
            let stream = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await?;
            Ok(TlsIo { inner: TokioIo::new(stream) })
        })
    }
}

/// A client TLS stream as hyper wants it.
pub struct TlsIo {
    inner: TokioIo<tokio_rustls::client::TlsStream<TcpStream>>,
}

impl TlsIo {
    /// The certificates the server presented.
    pub fn peer_certificates(&self) -> Vec<rustls::pki_types::CertificateDer<'static>> {
        self.inner.inner().get_ref().1.peer_certificates().map(|c| c.to_vec()).unwrap_or_default()
    }
}

impl Connection for TlsIo {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl Read for TlsIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl Write for TlsIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
