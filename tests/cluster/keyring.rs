//! Gossip key rotation across servers and a client agent, and a server that restarts with the
//! rotated keyring from its `serf/local.keyring`.

use std::collections::BTreeMap;

use sekisho::client::KeyringResponse;
use sekisho::testing::{TestCluster, eventually};

use crate::{DEADLINE, client, get, put};

const KEY_A: &str = "5K9OtfP7efFrNKe5WCQvXvnaXJ5cWP0SvXiwe0kkjM4=";
const KEY_B: &str = "T9jncgl9mbLus+baTTa7q7nPSUrXwbDi2dhbtqir37s=";

fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect()
}

/// Polls the pool-wide listing through node `i` until every one of `n` members answered and
/// `done` holds.
async fn listed(
    c: &TestCluster,
    i: usize,
    n: usize,
    what: &str,
    done: impl Fn(&KeyringResponse) -> bool,
) -> KeyringResponse {
    eventually(DEADLINE, what, || async {
        let pools = client(c, i).keyring_list(false, None).await.ok()?;
        let lan = pools.into_iter().next()?;
        (lan.num_nodes == n && lan.messages.is_empty() && done(&lan)).then_some(lan)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keyring_rotates_through_a_client_agent_and_survives_a_server_restart() {
    let mut c = TestCluster::start_full(3, 1, |_, cfg| cfg.encrypt = Some(KEY_A.to_owned())).await;
    let via = 3; // the client agent answers keyring requests itself
    assert!(c.agent(via).server().is_client());
    let lan = listed(&c, via, 4, "all four members hold KEY_A", |l| l.keys == counts(&[(KEY_A, 4)])).await;
    assert_eq!(lan.primary_keys, counts(&[(KEY_A, 4)]));

    tracing::info!("--- install, use and remove through the client agent and a server");
    client(&c, via).keyring_install(KEY_B, None).await.expect("installed everywhere");
    let lan = listed(&c, 0, 4, "both keys everywhere", |_| true).await;
    assert_eq!(lan.keys, counts(&[(KEY_A, 4), (KEY_B, 4)]));
    client(&c, 1).keyring_use(KEY_B, None).await.expect("primary everywhere");
    let e = client(&c, via).keyring_remove(KEY_B, None).await.expect_err("the primary stays");
    assert!(e.to_string().contains("4/4 nodes reported failure"), "{e}");
    client(&c, via).keyring_remove(KEY_A, None).await.expect("removed everywhere");
    let lan = listed(&c, via, 4, "only KEY_B, primary everywhere", |_| true).await;
    assert_eq!((lan.keys, lan.primary_keys), (counts(&[(KEY_B, 4)]), counts(&[(KEY_B, 4)])));
    assert!(put(&c, via, "after/rotation", "ok").await.expect("a write through the client agent"));

    let local = client(&c, via).keyring_list(true, None).await.expect("local listing");
    assert_eq!((local[0].num_nodes, &local[0].keys), (1, &counts(&[(KEY_B, 1)])));

    tracing::info!("--- a server restarts with encrypt = KEY_A in its configuration");
    c.kill(2).await;
    c.restart(2).await;
    listed(&c, via, 4, "the restarted server rejoins with KEY_B from its keyring file", |l| {
        l.primary_keys == counts(&[(KEY_B, 4)])
    })
    .await;
    eventually(DEADLINE, "the restarted server serves reads", || async {
        get(&c, 2, "after/rotation").await.filter(|v| v == "ok")
    })
    .await;
    c.shutdown().await;
}
