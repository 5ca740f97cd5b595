//! `pki init|issue|show` and the `tls ca create` / `tls cert create` aliases: files, modes,
//! names, SANs, refusals and exit codes. No agent involved; each test works in a tempdir.

use std::net::IpAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use sekisho_pki::{CertInfo, CertRole, Purpose, parse_pem_chain, parse_private_key, verify_chain};

use crate::support::Run;

/// Runs `sekisho <args>` with `dir` as the current directory.
async fn sekisho_in(dir: &Path, args: &[&str]) -> Run {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_sekisho"));
    command
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(30), command.output())
        .await
        .unwrap_or_else(|_| panic!("`sekisho {}` did not finish in time", args.join(" ")))
        .expect("running sekisho");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A tempdir holding a fresh CA made by `pki init <args>`.
async fn dir_with_ca(args: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut full = vec!["pki", "init"];
    full.extend_from_slice(args);
    sekisho_in(dir.path(), &full).await.ok();
    dir
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("reading {name}: {e}"))
}

/// The single certificate in `dir/name`.
fn cert(dir: &Path, name: &str) -> CertInfo {
    let mut chain = parse_pem_chain(&read(dir, name)).unwrap();
    assert_eq!(chain.len(), 1, "{name}");
    chain.remove(0)
}

fn mode(dir: &Path, name: &str) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(dir.join(name)).unwrap().permissions().mode() & 0o777
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    names
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|ip| ip.parse().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn init_writes_the_ca_0644_and_its_key_0600() {
    let dir = tempfile::tempdir().unwrap();
    let run = sekisho_in(dir.path(), &["pki", "init"]).await.ok();
    assert_eq!(run.stdout, "==> Saved consul-agent-ca.pem\n==> Saved consul-agent-ca-key.pem\n");
    assert_eq!(file_names(dir.path()), ["consul-agent-ca-key.pem", "consul-agent-ca.pem"]);
    assert_eq!(mode(dir.path(), "consul-agent-ca.pem"), 0o644);
    assert_eq!(mode(dir.path(), "consul-agent-ca-key.pem"), 0o600);
    let ca = cert(dir.path(), "consul-agent-ca.pem");
    assert!(ca.is_ca && ca.role == CertRole::Ca, "{ca:#?}");
    assert!(ca.subject.starts_with("CN=Consul Agent CA"), "{ca:#?}");
    assert!((1823..=1825).contains(&ca.days_left(SystemTime::now())), "{ca:#?}");
    parse_private_key(&read(dir.path(), "consul-agent-ca-key.pem")).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn init_flags_set_domain_name_constraints_days_and_common_name() {
    let dir = dir_with_ca(&[
        "-domain=example.com",
        "-days=30",
        "-common-name=Test CA",
        "-name-constraint",
        "-additional-name-constraint=example.net",
        "-algorithm=ed25519",
    ])
    .await;
    let ca = cert(dir.path(), "example.com-agent-ca.pem");
    assert_eq!(ca.subject, "CN=Test CA");
    assert_eq!(ca.permitted_dns_domains, ["localhost", "example.com", "example.net"]);
    assert_eq!(ca.key_algorithm, "Ed25519");
    assert!(ca.days_left(SystemTime::now()) <= 30);
    let run = sekisho_in(dir.path(), &["pki", "init", "-additional-name-constraint=x.org"]).await;
    run.expect_code(2);
}

#[tokio::test(flavor = "multi_thread")]
async fn second_init_refuses_and_leaves_the_files_byte_identical() {
    let dir = dir_with_ca(&[]).await;
    let before = (read(dir.path(), "consul-agent-ca.pem"), read(dir.path(), "consul-agent-ca-key.pem"));
    let run = sekisho_in(dir.path(), &["pki", "init"]).await.expect_code(1);
    assert!(run.stderr.starts_with("Error: consul-agent-ca.pem already exists"), "{run:#?}");
    assert_eq!(run.stdout, "");
    let after = (read(dir.path(), "consul-agent-ca.pem"), read(dir.path(), "consul-agent-ca-key.pem"));
    assert_eq!(before, after);
    assert_eq!(file_names(dir.path()), ["consul-agent-ca-key.pem", "consul-agent-ca.pem"]);

    // Only the key left over: still refused, and no certificate appears.
    std::fs::remove_file(dir.path().join("consul-agent-ca.pem")).unwrap();
    let run = sekisho_in(dir.path(), &["tls", "ca", "create"]).await.expect_code(1);
    assert!(run.stderr.contains("consul-agent-ca-key.pem already exists"), "{run:#?}");
    assert_eq!(file_names(dir.path()), ["consul-agent-ca-key.pem"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn issue_server_twice_writes_index_0_then_1_with_consul_sans() {
    let dir = dir_with_ca(&[]).await;
    let run = sekisho_in(dir.path(), &["pki", "issue", "-server"]).await.ok();
    let expected = format!(
        "==> {}\n==> Using consul-agent-ca.pem and consul-agent-ca-key.pem\n\
         ==> Saved dc1-server-consul-0.pem\n==> Saved dc1-server-consul-0-key.pem\n",
        sekisho_pki::SERVER_CERT_WARNING
    );
    assert_eq!(run.stdout, expected);
    let run = sekisho_in(dir.path(), &["pki", "issue", "-server"]).await.ok();
    assert!(
        run.stdout.contains("==> Saved dc1-server-consul-1.pem\n==> Saved dc1-server-consul-1-key.pem\n")
    );

    for i in 0..2 {
        let name = format!("dc1-server-consul-{i}.pem");
        let info = cert(dir.path(), &name);
        assert_eq!(info.dns_sans, ["server.dc1.consul", "localhost"], "{name}");
        assert_eq!(info.ip_sans, ips(&["127.0.0.1"]), "{name}");
        assert_eq!(info.role, CertRole::Server);
        assert!((363..=365).contains(&info.days_left(SystemTime::now())), "{info:#?}");
        assert_eq!(mode(dir.path(), &name), 0o644);
        assert_eq!(mode(dir.path(), &format!("dc1-server-consul-{i}-key.pem")), 0o600);
        parse_private_key(&read(dir.path(), &format!("dc1-server-consul-{i}-key.pem"))).unwrap();
        let (leaf, ca) = (read(dir.path(), &name), read(dir.path(), "consul-agent-ca.pem"));
        verify_chain(&leaf, &ca, SystemTime::now(), Some(Purpose::ServerAuth), Some("server.dc1.consul"))
            .unwrap();
    }
    let first = read(dir.path(), "dc1-server-consul-0.pem");
    assert_ne!(first, read(dir.path(), "dc1-server-consul-1.pem"));
}

#[tokio::test(flavor = "multi_thread")]
async fn issue_server_with_node_adds_the_node_name() {
    let dir = dir_with_ca(&[]).await;
    sekisho_in(dir.path(), &["pki", "issue", "-server", "-node=node1"]).await.ok();
    let info = cert(dir.path(), "dc1-server-consul-0.pem");
    assert_eq!(info.dns_sans, ["server.dc1.consul", "node1.server.dc1.consul", "localhost"]);
    assert_eq!(info.ip_sans, ips(&["127.0.0.1"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn issue_client_and_cli_use_their_names_and_sans() {
    let dir = dir_with_ca(&[]).await;
    let run = sekisho_in(dir.path(), &["pki", "issue", "-client"]).await.ok();
    assert_eq!(
        run.stdout,
        "==> Using consul-agent-ca.pem and consul-agent-ca-key.pem\n\
         ==> Saved dc1-client-consul-0.pem\n==> Saved dc1-client-consul-0-key.pem\n"
    );
    let client = cert(dir.path(), "dc1-client-consul-0.pem");
    assert_eq!(client.dns_sans, ["client.dc1.consul", "localhost"]);
    assert_eq!(client.ip_sans, ips(&["127.0.0.1"]));
    assert_eq!(client.role, CertRole::Client);
    assert!(client.allows_server_auth() && client.allows_client_auth());

    let run = sekisho_in(dir.path(), &["pki", "issue", "-cli"]).await.ok();
    assert!(!run.stdout.contains("WARNING"), "{run:#?}");
    let cli = cert(dir.path(), "dc1-cli-consul-0.pem");
    assert_eq!(cli.dns_sans, ["cli.dc1.consul", "localhost"]);
    assert!(cli.ip_sans.is_empty());
    assert_eq!(cli.ext_key_usage, None);
    assert_eq!(mode(dir.path(), "dc1-cli-consul-0-key.pem"), 0o600);
}

#[tokio::test(flavor = "multi_thread")]
async fn go_style_flags_with_values_work() {
    let dir = dir_with_ca(&[]).await;
    let args = [
        "pki",
        "issue",
        "-client",
        "-days=5",
        "-additional-dnsname=web.example.com",
        "-additional-dnsname",
        "*.apps.example.com",
        "-additional-ipaddress=10.0.0.7",
        "-additional-ipaddress",
        "::1",
    ];
    sekisho_in(dir.path(), &args).await.ok();
    let info = cert(dir.path(), "dc1-client-consul-0.pem");
    assert_eq!(info.dns_sans, ["client.dc1.consul", "localhost", "web.example.com", "*.apps.example.com"]);
    assert_eq!(info.ip_sans, ips(&["127.0.0.1", "10.0.0.7", "::1"]));
    assert!(info.days_left(SystemTime::now()) <= 5, "{info:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn role_flag_errors_exit_2_and_write_nothing() {
    let dir = dir_with_ca(&[]).await;
    for args in [
        &["pki", "issue", "-client", "-node=n1"][..],
        &["pki", "issue", "-cli", "-node=n1"],
        &["pki", "issue", "-node=n1"],
        &["pki", "issue", "-server", "-client"],
        &["pki", "issue", "-client", "-cli"],
        &["pki", "issue"],
        &["tls", "cert", "create", "-server", "-cli"],
        &["pki", "issue", "-server", "-days=0"],
        &["pki", "issue", "-server", "-additional-ipaddress=not-an-ip"],
    ] {
        let run = sekisho_in(dir.path(), args).await;
        assert_eq!(run.code, 2, "{args:?}: {run:#?}");
    }
    assert_eq!(file_names(dir.path()), ["consul-agent-ca-key.pem", "consul-agent-ca.pem"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn issue_without_a_ca_exits_1_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let run = sekisho_in(dir.path(), &["pki", "issue", "-server"]).await.expect_code(1);
    assert!(run.stderr.contains("consul-agent-ca.pem not found"), "{run:#?}");
    assert!(run.stderr.contains("sekisho pki init"), "{run:#?}");
    assert!(file_names(dir.path()).is_empty());
    let run =
        sekisho_in(dir.path(), &["pki", "issue", "-client", "-domain=example.com"]).await.expect_code(1);
    assert!(run.stderr.contains("example.com-agent-ca.pem not found"), "{run:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn issue_with_a_key_from_another_ca_fails() {
    let (one, other) = (dir_with_ca(&[]).await, dir_with_ca(&[]).await);
    let key = other.path().join("consul-agent-ca-key.pem");
    let key_arg = format!("-key={}", key.display());
    let run = sekisho_in(one.path(), &["pki", "issue", "-client", &key_arg]).await.expect_code(1);
    assert!(run.stderr.contains("does not match"), "{run:#?}");
    assert_eq!(file_names(one.path()), ["consul-agent-ca-key.pem", "consul-agent-ca.pem"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn other_dc_and_domain_name_the_files_and_sans() {
    let dir = dir_with_ca(&["-domain", "example.com"]).await;
    assert_eq!(file_names(dir.path()), ["example.com-agent-ca-key.pem", "example.com-agent-ca.pem"]);
    let run = sekisho_in(dir.path(), &["pki", "issue", "-server", "-dc", "dc2", "-domain", "example.com"])
        .await
        .ok();
    assert!(run.stdout.contains("==> Using example.com-agent-ca.pem and example.com-agent-ca-key.pem\n"));
    assert!(run.stdout.contains("==> Saved dc2-server-example.com-0.pem\n"), "{run:#?}");
    assert!(run.stdout.contains("==> Saved dc2-server-example.com-0-key.pem\n"), "{run:#?}");
    let info = cert(dir.path(), "dc2-server-example.com-0.pem");
    assert_eq!(info.dns_sans, ["server.dc2.example.com", "localhost"]);
    assert_eq!(info.dc_and_domain, Some(("dc2".into(), "example.com".into())));
}

#[tokio::test(flavor = "multi_thread")]
async fn dir_flag_reads_and_writes_elsewhere() {
    let cwd = tempfile::tempdir().unwrap();
    let target = tempfile::tempdir().unwrap();
    let dir_arg = format!("-dir={}", target.path().display());
    sekisho_in(cwd.path(), &["pki", "init", &dir_arg]).await.ok();
    let run = sekisho_in(cwd.path(), &["pki", "issue", "-cli", &dir_arg]).await.ok();
    let saved = target.path().join("dc1-cli-consul-0.pem");
    assert!(run.stdout.contains(&format!("==> Saved {}\n", saved.display())), "{run:#?}");
    assert!(file_names(cwd.path()).is_empty());
    assert_eq!(file_names(target.path()).len(), 4);
    let missing = format!("-dir={}", target.path().join("nope").display());
    sekisho_in(cwd.path(), &["pki", "init", &missing]).await.expect_code(1);
}

#[tokio::test(flavor = "multi_thread")]
async fn show_prints_role_sans_and_verifies_the_chain() {
    let dir = dir_with_ca(&[]).await;
    sekisho_in(dir.path(), &["pki", "issue", "-server", "-node=node1"]).await.ok();
    let run = sekisho_in(dir.path(), &["pki", "show", "dc1-server-consul-0.pem", "-ca=consul-agent-ca.pem"])
        .await
        .ok();
    assert!(run.stdout.contains("Role:         server (datacenter dc1, domain consul)\n"), "{run:#?}");
    assert!(run.stdout.contains("DNS names:    server.dc1.consul, node1.server.dc1.consul, localhost\n"));
    assert!(run.stdout.contains("IP addresses: 127.0.0.1\n"), "{run:#?}");
    assert!(run.stdout.contains("chain: verified against consul-agent-ca.pem\n"), "{run:#?}");
    assert!(!run.stdout.contains("WARNING"), "{run:#?}");
    sekisho_in(dir.path(), &["pki", "show", "-strict", "dc1-server-consul-0.pem"]).await.ok();

    // A CA file shows as a CA; a foreign CA does not verify the leaf.
    let run = sekisho_in(dir.path(), &["pki", "show", "consul-agent-ca.pem"]).await.ok();
    assert!(run.stdout.contains("Role:         CA\n"), "{run:#?}");
    let other = dir_with_ca(&[]).await;
    let other_ca = format!("-ca={}", other.path().join("consul-agent-ca.pem").display());
    let run = sekisho_in(dir.path(), &["pki", "show", "dc1-server-consul-0.pem", &other_ca]).await.ok();
    assert!(run.stdout.contains("WARNING: chain: does not verify against"), "{run:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn show_warns_for_another_datacenter_and_strict_exits_1() {
    let dir = dir_with_ca(&[]).await;
    sekisho_in(dir.path(), &["pki", "issue", "-server"]).await.ok();
    let run = sekisho_in(dir.path(), &["pki", "show", "dc1-server-consul-0.pem", "-dc", "dc2"]).await.ok();
    assert!(run.stdout.contains("WARNING: no DNS name server.dc2.consul"), "{run:#?}");
    let run = sekisho_in(dir.path(), &["pki", "show", "-strict", "-dc=dc2", "dc1-server-consul-0.pem"])
        .await
        .expect_code(1);
    assert!(run.stdout.contains("WARNING: no DNS name server.dc2.consul"), "{run:#?}");
    assert_eq!(run.stderr, "Error: 1 warning (-strict)\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn show_warns_about_expiry_within_30_days() {
    let dir = dir_with_ca(&[]).await;
    sekisho_in(dir.path(), &["pki", "issue", "-client", "-days=10"]).await.ok();
    let run = sekisho_in(dir.path(), &["pki", "show", "dc1-client-consul-0.pem"]).await.ok();
    assert!(run.stdout.contains("WARNING: the certificate expires in"), "{run:#?}");
    sekisho_in(dir.path(), &["pki", "show", "-strict", "dc1-client-consul-0.pem"]).await.expect_code(1);
}

#[tokio::test(flavor = "multi_thread")]
async fn show_on_garbage_truncated_keys_or_missing_files_exits_1() {
    let dir = dir_with_ca(&[]).await;
    let ca = read(dir.path(), "consul-agent-ca.pem");
    std::fs::write(dir.path().join("garbage.pem"), "not a certificate\n").unwrap();
    std::fs::write(dir.path().join("truncated.pem"), &ca[..ca.len() / 2]).unwrap();
    std::fs::write(dir.path().join("binary.pem"), [0xff, 0xfe, 0x00, 0x80]).unwrap();
    for file in ["garbage.pem", "truncated.pem", "binary.pem", "consul-agent-ca-key.pem", "missing.pem"] {
        let run = sekisho_in(dir.path(), &["pki", "show", file]).await.expect_code(1);
        assert!(run.stderr.starts_with("Error: "), "{file}: {run:#?}");
        assert!(run.stderr.contains(file), "{file}: {run:#?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_aliases_write_the_same_files_as_pki() {
    let dir = tempfile::tempdir().unwrap();
    let run = sekisho_in(dir.path(), &["tls", "ca", "create"]).await.ok();
    assert_eq!(run.stdout, "==> Saved consul-agent-ca.pem\n==> Saved consul-agent-ca-key.pem\n");
    let run = sekisho_in(dir.path(), &["tls", "cert", "create", "-client"]).await.ok();
    assert!(
        run.stdout.ends_with("==> Saved dc1-client-consul-0.pem\n==> Saved dc1-client-consul-0-key.pem\n")
    );
    sekisho_in(dir.path(), &["pki", "issue", "-client"]).await.ok();
    assert_eq!(
        file_names(dir.path()),
        [
            "consul-agent-ca-key.pem",
            "consul-agent-ca.pem",
            "dc1-client-consul-0-key.pem",
            "dc1-client-consul-0.pem",
            "dc1-client-consul-1-key.pem",
            "dc1-client-consul-1.pem",
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn help_of_each_command_exits_0_with_examples() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["pki", "--help"][..],
        &["pki", "init", "--help"],
        &["pki", "issue", "-help"],
        &["pki", "show", "--help"],
        &["tls", "--help"],
        &["tls", "ca", "--help"],
        &["tls", "ca", "create", "--help"],
        &["tls", "cert", "--help"],
        &["tls", "cert", "create", "-help"],
    ] {
        let run = sekisho_in(dir.path(), args).await.ok();
        assert!(run.stdout.contains("Usage: sekisho"), "{args:?}: {run:#?}");
        if args.len() > 2 {
            assert!(run.stdout.contains("Example"), "{args:?}: {run:#?}");
        }
    }
    assert!(file_names(dir.path()).is_empty());
}
