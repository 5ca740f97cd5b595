//! Prometheus against a test agent.
//!
//! * `consul_sd_requests_yield_prometheus_targets` (always runs): the requests Prometheus'
//!   Consul discovery makes (`discovery/consul/consul.go`), with the labels it would build.
//! * Two ignored tests drive a real `prometheus` binary (Debian package `prometheus`, or
//!   `PROMETHEUS_BIN`): one scrapes `/v1/agent/metrics?format=prometheus`, one discovers a
//!   service through `consul_sd_configs`. Debian builds Prometheus without Consul discovery
//!   ("Disable Consul SD until its Debian package is back in shape", bookworm and trixie), so
//!   the second one says so and passes unless the binary has it (an upstream build does).
//!
//! ```text
//! cargo test --test prometheus -- --include-ignored
//! ```

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use http::Method;
use sekisho::client::{Client, ClientConfig, Response};
use sekisho::telemetry;
use sekisho::testing::TestAgent;
use serde_json::{Value, json};

/// How long Prometheus may take to discover targets and scrape them.
const DEADLINE: Duration = Duration::from_secs(60);

/// What Debian's Prometheus answers to a `consul_sd_configs` section.
const NO_CONSUL_SD: &str = "field consul_sd_configs not found";

fn api(agent: &TestAgent) -> Client {
    Client::new(ClientConfig::new(agent.http_addr().to_string()))
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("binding port 0");
    l.local_addr().expect("local addr").port()
}

/// Registers `web1` and `web2` (service `web`) on nodes of their own.
async fn register_web(api: &Client) {
    for (id, port) in [("web1", free_port()), ("web2", free_port())] {
        let body = json!({
            "Node": format!("{id}-node"), "Address": "127.0.0.1",
            "NodeMeta": {"rack": "r1"}, "TaggedAddresses": {"lan": "127.0.0.1"},
            "Service": {"ID": id, "Service": "web", "Tags": ["prom", "v1"], "Port": port, "Meta": {"team": "a"}},
        });
        let r = api.request(Method::PUT, "/v1/catalog/register", Some(body.to_string().into_bytes())).await;
        assert!(r.as_ref().is_ok_and(Response::is_success), "registering {id}: {r:?}");
    }
}

/// `X-Consul-Index` as the Go API client reads it (a missing or bad one is an error there).
fn index(r: &Response) -> u64 {
    assert_eq!(r.headers.get("X-Consul-KnownLeader").and_then(|v| v.to_str().ok()), Some("true"));
    assert!(r.headers.get("X-Consul-LastContact").is_some(), "X-Consul-LastContact missing");
    r.index().unwrap_or_else(|| panic!("no numeric X-Consul-Index in {:?}", r.headers))
}

/// The target labels Prometheus builds from one `/v1/health/service` entry.
fn target_labels(entry: &Value) -> Value {
    let (node, svc) = (&entry["Node"], &entry["Service"]);
    let port = svc["Port"].as_u64().expect("Service.Port");
    let host = match svc["Address"].as_str() {
        Some(a) if !a.is_empty() => a,
        _ => node["Address"].as_str().expect("Node.Address"),
    };
    let tags: Vec<&str> =
        svc["Tags"].as_array().expect("Service.Tags").iter().filter_map(Value::as_str).collect();
    let statuses: Vec<&str> =
        entry["Checks"].as_array().expect("Checks").iter().filter_map(|c| c["Status"].as_str()).collect();
    // api.HealthChecks.AggregatedStatus: maintenance > critical > warning > passing.
    let health = ["maintenance", "critical", "warning"]
        .into_iter()
        .find(|s| statuses.contains(s))
        .unwrap_or("passing");
    json!({
        "__address__": format!("{host}:{port}"),
        "__meta_consul_node": node["Node"], "__meta_consul_address": node["Address"],
        "__meta_consul_tags": format!(",{},", tags.join(",")),
        "__meta_consul_service_id": svc["ID"], "__meta_consul_service_port": port.to_string(),
        "__meta_consul_health": health,
        "__meta_consul_metadata_rack": node["Meta"]["rack"],
        "__meta_consul_service_metadata_team": svc["Meta"]["team"],
        "__meta_consul_tagged_address_lan": node["TaggedAddresses"]["lan"],
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn consul_sd_requests_yield_prometheus_targets() {
    let agent = TestAgent::start().await;
    let api = api(&agent);
    register_web(&api).await;

    let me = api.agent_self().await.expect("/v1/agent/self");
    assert_eq!(me["Config"]["Datacenter"], "dc1");
    let r = api.request(Method::GET, "/v1/catalog/services?stale=&wait=120000ms", None).await.unwrap();
    let services: Value = r.json("services").unwrap();
    assert_eq!(services["web"], json!(["prom", "v1"]));
    index(&r);

    let path = "/v1/health/service/web?stale=&wait=120000ms";
    let r = api.request(Method::GET, path, None).await.unwrap();
    let last = index(&r);
    let entries: Value = r.json(path).unwrap();
    let mut targets: Vec<Value> = entries.as_array().expect("a list").iter().map(target_labels).collect();
    targets.sort_by_key(|t| t["__meta_consul_service_id"].to_string());
    assert_eq!(targets.len(), 2, "{entries:#}");
    assert_eq!(targets[0]["__meta_consul_service_id"], "web1");
    assert_eq!(targets[0]["__meta_consul_tags"], ",prom,v1,");
    assert_eq!(targets[0]["__meta_consul_metadata_rack"], "r1");
    assert_eq!(targets[0]["__meta_consul_service_metadata_team"], "a");
    assert_eq!(targets[0]["__meta_consul_tagged_address_lan"], "127.0.0.1");
    assert_eq!(targets[1]["__meta_consul_health"], "passing");

    // The next round blocks on the index until the service changes.
    let waiter = api.clone();
    let blocked = tokio::spawn(async move {
        let path = format!("/v1/health/service/web?stale=&index={last}&wait=30000ms");
        waiter.request(Method::GET, &path, None).await.unwrap()
    });
    let body = json!({"Node": "web3-node", "Address": "127.0.0.2", "Service": {"ID": "web3", "Service": "web", "Port": 80}});
    api.request(Method::PUT, "/v1/catalog/register", Some(body.to_string().into_bytes())).await.unwrap();
    let r =
        tokio::time::timeout(Duration::from_secs(20), blocked).await.expect("the watch wakes up").unwrap();
    assert!(index(&r) > last);
    let entries: Value = r.json("health").unwrap();
    let hosts: Vec<String> =
        entries.as_array().unwrap().iter().map(|e| target_labels(e)["__address__"].to_string()).collect();
    assert!(hosts.contains(&"\"127.0.0.2:80\"".to_owned()), "{hosts:?}");
    agent.shutdown().await;
}

fn prometheus_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PROMETHEUS_BIN") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("prometheus")).find(|p| p.is_file())
}

/// A `prometheus` child process with its own data dir and log; killed when dropped.
struct Prometheus {
    child: std::sync::Mutex<tokio::process::Child>,
    addr: String,
    log: PathBuf,
}

/// Why waiting for Prometheus ended without success.
enum Failure {
    /// It exited (a configuration it does not accept); its log.
    Exited(String),
    /// The deadline passed; the last targets and the log.
    TimedOut(Value, String),
}

impl Prometheus {
    fn start(bin: &Path, dir: &Path, scrape_configs: &str) -> Prometheus {
        let file = dir.join("prometheus.yml");
        let yaml = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n{scrape_configs}"
        );
        std::fs::write(&file, yaml).expect("writing prometheus.yml");
        let addr = format!("127.0.0.1:{}", free_port());
        let log = dir.join("prometheus.log");
        let child = tokio::process::Command::new(bin)
            .arg(format!("--config.file={}", file.display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("creating the log file"))
            .kill_on_drop(true)
            .spawn()
            .expect("starting prometheus");
        Prometheus { child: std::sync::Mutex::new(child), addr, log }
    }

    async fn targets(&self) -> Option<Value> {
        let api = Client::new(ClientConfig::new(self.addr.clone()));
        let r = api.request(Method::GET, "/api/v1/targets", None).await.ok()?;
        r.json("/api/v1/targets").ok()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `/api/v1/targets` until `done` holds, Prometheus exits, or [`DEADLINE`].
    async fn wait(&mut self, done: impl Fn(&Value) -> bool) -> Result<(), Failure> {
        let last = std::sync::Mutex::new(Value::Null);
        let outcome = sekisho::testing::poll_until(DEADLINE, || async {
            let exited = self.child.lock().map(|mut c| matches!(c.try_wait(), Ok(Some(_)))).unwrap_or(true);
            if exited {
                return Some(Err(Failure::Exited(self.log())));
            }
            let targets = self.targets().await?;
            if done(&targets) {
                return Some(Ok(()));
            }
            if let Ok(mut l) = last.lock() {
                *l = targets;
            }
            None
        })
        .await;
        outcome.unwrap_or_else(|| {
            let seen = last.lock().map(|l| l.clone()).unwrap_or(Value::Null);
            Err(Failure::TimedOut(seen, self.log()))
        })
    }
}

fn fail(what: &str, f: Failure) -> ! {
    match f {
        Failure::Exited(log) => panic!("prometheus exited before {what}; its log:\n{log}"),
        Failure::TimedOut(t, log) => panic!("within {DEADLINE:?}, no {what}.\ntargets: {t:#}\nlog:\n{log}"),
    }
}

fn active(targets: &Value) -> &[Value] {
    targets["data"]["activeTargets"].as_array().map_or(&[], Vec::as_slice)
}

/// Both jobs scraping the agent are `up`.
fn agent_scrapes_up(targets: &Value) -> bool {
    ["sekisho", "sekisho-accept"]
        .iter()
        .all(|job| active(targets).iter().any(|t| t["scrapePool"] == *job && t["health"] == "up"))
}

/// Both `web` instances are targets with Consul's labels.
fn web_discovered(targets: &Value) -> bool {
    let mut ids: Vec<&str> = active(targets)
        .iter()
        .filter(|t| t["discoveredLabels"]["__meta_consul_service"] == "web")
        .filter_map(|t| t["discoveredLabels"]["__meta_consul_service_id"].as_str())
        .collect();
    ids.sort_unstable();
    ids == ["web1", "web2"]
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the prometheus binary (Debian package `prometheus`); see docs/testing.md"]
async fn prometheus_scrapes_the_agent_metrics() {
    let Some(bin) = prometheus_binary() else {
        eprintln!(
            "skipping: no `prometheus` binary in PATH (apt-get install prometheus, or set PROMETHEUS_BIN)"
        );
        return;
    };
    telemetry::configure(Duration::from_secs(60));
    let agent = TestAgent::start().await;
    let addr = agent.http_addr();
    let dir = tempfile::tempdir().expect("a temporary directory");
    // One job asks with `params`, the other relies on the OpenMetrics `Accept` header.
    let jobs = format!(
        "  - job_name: sekisho\n    metrics_path: /v1/agent/metrics\n    params:\n      format: [\"prometheus\"]\n    \
         static_configs:\n      - targets: [\"{addr}\"]\n  \
         - job_name: sekisho-accept\n    metrics_path: /v1/agent/metrics\n    static_configs:\n      - targets: [\"{addr}\"]\n"
    );
    let mut prom = Prometheus::start(&bin, dir.path(), &jobs);
    if let Err(f) = prom.wait(agent_scrapes_up).await {
        fail("`up` scrape of /v1/agent/metrics", f);
    }
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a prometheus binary with Consul discovery; see docs/testing.md"]
async fn prometheus_discovers_a_service_through_consul_sd() {
    let Some(bin) = prometheus_binary() else {
        eprintln!(
            "skipping: no `prometheus` binary in PATH (apt-get install prometheus, or set PROMETHEUS_BIN)"
        );
        return;
    };
    let agent = TestAgent::start().await;
    let addr = agent.http_addr();
    register_web(&api(&agent)).await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let jobs = format!(
        "  - job_name: web\n    consul_sd_configs:\n      - server: \"{addr}\"\n        services: [\"web\"]\n        \
         refresh_interval: 1s\n"
    );
    let mut prom = Prometheus::start(&bin, dir.path(), &jobs);
    match prom.wait(web_discovered).await {
        Ok(()) => {}
        Err(Failure::Exited(log)) if log.contains(NO_CONSUL_SD) => {
            eprintln!(
                "skipping: {} was built without Consul service discovery (Debian disables it); \
                 set PROMETHEUS_BIN to an upstream build to run this test",
                bin.display()
            );
        }
        Err(f) => fail("discovery of web1 and web2", f),
    }
    agent.shutdown().await;
}

#[test]
fn target_checks_need_every_instance_and_healthy_scrapes() {
    let web = |id: &str| json!({"discoveredLabels": {"__meta_consul_service": "web", "__meta_consul_service_id": id}, "scrapePool": "web"});
    let scrape =
        |job: &str, health: &str| json!({"discoveredLabels": {}, "scrapePool": job, "health": health});
    let all = json!({"data": {"activeTargets": [web("web2"), web("web1"), scrape("sekisho", "up"), scrape("sekisho-accept", "up")]}});
    assert!(web_discovered(&all) && agent_scrapes_up(&all));
    let partial = json!({"data": {"activeTargets": [web("web1"), scrape("sekisho", "up"), scrape("sekisho-accept", "down")]}});
    assert!(!web_discovered(&partial) && !agent_scrapes_up(&partial));
}
