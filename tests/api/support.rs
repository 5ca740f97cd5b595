//! A tiny HTTP client for the API tests and a few helpers that keep the tests short.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sekisho::testing::{TestAgent, eventually};
use serde_json::{Value, json};

/// How long a single request may take before the test fails (blocking queries included).
const REQUEST_DEADLINE: Duration = Duration::from_secs(30);

/// One HTTP response.
#[derive(Debug, Clone)]
pub(crate) struct Resp {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Resp {
    /// The body parsed as JSON (panics with the text when it is not JSON).
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?} (status {})", self.text(), self.status))
    }

    /// The body as text.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value, if present.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().expect("ASCII header"))
    }

    /// `X-Consul-Index` as a number (panics when it is missing).
    pub(crate) fn index(&self) -> u64 {
        let raw = self.header("X-Consul-Index").unwrap_or_else(|| panic!("no X-Consul-Index in {self:?}"));
        raw.parse().expect("numeric X-Consul-Index")
    }

    /// Panics unless the status is `want`.
    #[track_caller]
    pub(crate) fn expect(self, want: StatusCode) -> Self {
        assert_eq!(self.status, want, "unexpected status; body: {:?}", self.text());
        self
    }

    /// Panics unless the status is 200; returns the JSON body.
    #[track_caller]
    pub(crate) fn ok_json(self) -> Value {
        self.expect(StatusCode::OK).json()
    }
}

/// An HTTP client bound to one agent.
#[derive(Debug, Clone)]
pub(crate) struct Api {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    /// Sent as `X-Consul-Token` on every request that does not set one.
    token: Option<String>,
}

impl Api {
    /// A client for `agent`.
    pub(crate) fn new(agent: &TestAgent) -> Api {
        let client = Client::builder(TokioExecutor::new()).build_http();
        Api { base: format!("http://{}", agent.http_addr()), client, token: None }
    }

    /// The same client presenting `token` (an ACL SecretID) on every request.
    pub(crate) fn with_token(&self, token: &str) -> Api {
        Api { token: Some(token.to_string()), ..self.clone() }
    }

    /// Sends `method path` (path includes `/v1/...` and any query string) with `body`.
    pub(crate) async fn request(&self, method: Method, path: &str, body: impl Into<Bytes>) -> Resp {
        self.request_with(method, path, &[], body).await
    }

    /// [`Api::request`] with extra request headers.
    pub(crate) async fn request_with(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Resp {
        let req = self.build(method.clone(), path, headers, body);
        self.send(req).await.unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    fn build(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Request<Full<Bytes>> {
        let mut req = Request::builder().method(method).uri(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(t) = &self.token
            && !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("X-Consul-Token"))
        {
            req = req.header("X-Consul-Token", t.as_str());
        }
        req.body(Full::new(body.into())).expect("valid request")
    }

    /// Sends a request and returns once the status and headers arrive, without reading the
    /// body (streaming endpoints such as `/v1/agent/monitor`); the body is dropped.
    pub(crate) async fn request_head(&self, method: Method, path: &str) -> Resp {
        let req = self.build(method.clone(), path, &[], Bytes::new());
        let fut = self.client.request(req);
        let resp = tokio::time::timeout(REQUEST_DEADLINE, fut)
            .await
            .unwrap_or_else(|_| panic!("{method} {path} sent no headers within {REQUEST_DEADLINE:?}"))
            .unwrap_or_else(|e| panic!("{method} {path}: {e:?}"));
        Resp { status: resp.status(), headers: resp.headers().clone(), body: Bytes::new() }
    }

    /// Sends `PUT path` with `body`, returning transport errors instead of panicking (a
    /// server may answer and close before it has read a large body).
    pub(crate) async fn try_put(&self, path: &str, body: impl Into<Bytes>) -> Result<Resp, String> {
        let req = self.build(Method::PUT, path, &[], body);
        self.send(req).await
    }

    async fn send(&self, req: Request<Full<Bytes>>) -> Result<Resp, String> {
        let what = format!("{} {}", req.method(), req.uri());
        let fut = async {
            let resp = self.client.request(req).await.map_err(|e| format!("request failed: {e:?}"))?;
            let (parts, body) = resp.into_parts();
            let body = body.collect().await.map_err(|e| format!("body read failed: {e:?}"))?.to_bytes();
            Ok(Resp { status: parts.status, headers: parts.headers, body })
        };
        tokio::time::timeout(REQUEST_DEADLINE, fut)
            .await
            .unwrap_or_else(|_| panic!("{what} took longer than {REQUEST_DEADLINE:?}"))
    }

    pub(crate) async fn get(&self, path: &str) -> Resp {
        self.request(Method::GET, path, Bytes::new()).await
    }

    pub(crate) async fn put(&self, path: &str, body: impl Into<Bytes>) -> Resp {
        self.request(Method::PUT, path, body).await
    }

    pub(crate) async fn put_json(&self, path: &str, body: &Value) -> Resp {
        self.put(path, serde_json::to_vec(body).expect("JSON")).await
    }

    pub(crate) async fn delete(&self, path: &str) -> Resp {
        self.request(Method::DELETE, path, Bytes::new()).await
    }

    /// `PUT /v1/kv/<key>` with `value`, asserting the reply is `true`.
    pub(crate) async fn kv_set(&self, key: &str, value: &str) {
        let r = self.put(&format!("/v1/kv/{key}"), value.to_string()).await;
        assert_eq!(r.ok_json(), json!(true), "PUT {key}");
    }

    /// The single entry of `GET /v1/kv/<key>` (panics unless 200).
    pub(crate) async fn kv_entry(&self, key: &str) -> Value {
        let v = self.get(&format!("/v1/kv/{key}")).await.ok_json();
        assert_eq!(v.as_array().map(Vec::len), Some(1), "one entry for {key}: {v}");
        v[0].clone()
    }

    /// `PUT /v1/catalog/register` with `body`, asserting `true`.
    pub(crate) async fn register(&self, body: &Value) {
        let r = self.put_json("/v1/catalog/register", body).await;
        assert_eq!(r.ok_json(), json!(true), "register {body}");
    }

    /// `PUT /v1/session/create` with `body`; returns the new ID.
    pub(crate) async fn session(&self, body: &Value) -> String {
        let v = self.put_json("/v1/session/create", body).await.ok_json();
        v["ID"].as_str().unwrap_or_else(|| panic!("no ID in {v}")).to_string()
    }

    /// `PUT /v1/kv/<key>?acquire=<sid>`: the boolean reply.
    pub(crate) async fn acquire(&self, key: &str, sid: &str, value: &str) -> bool {
        let r = self.put(&format!("/v1/kv/{key}?acquire={sid}"), value.to_string()).await;
        r.ok_json().as_bool().expect("boolean reply")
    }

    /// `GET /v1/session/info/<id>` as a list.
    pub(crate) async fn session_info(&self, sid: &str) -> Vec<Value> {
        let v = self.get(&format!("/v1/session/info/{sid}")).await.ok_json();
        v.as_array().unwrap_or_else(|| panic!("info is a list: {v}")).clone()
    }
}

/// Starts a test agent and waits until the leader registered the agent's own node with a
/// passing `serfHealth` check (sessions on the agent's node need it).
pub(crate) async fn start() -> (TestAgent, Api) {
    start_with(|_, _| {}).await
}

/// [`start`] with configuration changes.
pub(crate) async fn start_with(
    tune: impl FnOnce(&mut sekisho::config::RuntimeConfig, &mut sekisho::agent::Tuning),
) -> (TestAgent, Api) {
    let agent = TestAgent::start_with(tune).await;
    let api = Api::new(&agent);
    let node = agent.config.node_name.clone();
    eventually(Duration::from_secs(10), "the agent registers itself", || {
        let api = api.clone();
        let node = node.clone();
        async move {
            let checks = api.get(&format!("/v1/health/node/{node}")).await;
            let checks = checks.json();
            let serf = checks.as_array()?.iter().find(|c| c["CheckID"] == "serfHealth")?.clone();
            (serf["Status"] == "passing").then_some(())
        }
    })
    .await;
    (agent, api)
}

/// Base64 of `s`, as KV values appear in JSON.
pub(crate) fn b64(s: &str) -> String {
    STANDARD.encode(s.as_bytes())
}

/// Percent-encodes a query-string value.
pub(crate) fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A node registration body with a passing node-level check `check`.
pub(crate) fn node_with_check(node: &str, check: &str, status: &str) -> Value {
    json!({
        "Node": node, "Address": "10.0.0.1",
        "Check": { "CheckID": check, "Name": check, "Status": status },
    })
}

/// The string values of a JSON list field (e.g. the `Node` of every element).
pub(crate) fn field_list(v: &Value, field: &str) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("a list: {v}"))
        .iter()
        .map(|e| e[field].as_str().unwrap_or_else(|| panic!("{field} in {e}")).to_string())
        .collect()
}
