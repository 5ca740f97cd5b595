use std::time::Instant;

use super::*;
use crate::state::session::{session_create, session_destroy};
use crate::state::types::{Session, WARNING};

const ID1: &str = "11111111-1111-4111-8111-111111111111";
const ID2: &str = "22222222-2222-4222-8222-222222222222";
const ID3: &str = "33333333-3333-4333-8333-333333333333";

fn named(id: &str, name: &str, service: &str) -> PreparedQuery {
    PreparedQuery {
        id: id.into(),
        name: name.into(),
        service: ServiceQuery { service: service.into(), ..Default::default() },
        ..Default::default()
    }
}

fn template(id: &str, name: &str, service: &str) -> PreparedQuery {
    PreparedQuery {
        template: QueryTemplate { kind: TEMPLATE_NAME_PREFIX_MATCH.into(), ..Default::default() },
        ..named(id, name, service)
    }
}

fn create(st: &mut Store, idx: u64, q: PreparedQuery) -> Result<(), String> {
    query_apply(st, idx, &QueryOp::Create(q))
}

#[test]
fn create_update_delete_keep_consuls_indexes_and_errors() {
    let mut st = Store::default();
    create(&mut st, 5, named(ID1, "web", "web")).unwrap();
    assert_eq!(query_index(&st), 5);
    let mut q = named(ID1, "web", "web-v2");
    query_apply(&mut st, 9, &QueryOp::Update(q.clone())).unwrap();
    let stored = query_get(&st, ID1).unwrap();
    assert_eq!((stored.create_index, stored.modify_index, stored.service.service.as_str()), (5, 9, "web-v2"));
    q.id = ID2.into();
    assert_eq!(
        query_apply(&mut st, 10, &QueryOp::Update(q)),
        Err(format!("Cannot modify non-existent prepared query: '{ID2}'"))
    );
    assert_eq!(
        query_apply(&mut st, 11, &QueryOp::Delete(ID2.into())),
        Err(format!("Cannot modify non-existent prepared query: '{ID2}'"))
    );
    query_apply(&mut st, 12, &QueryOp::Delete(ID1.into())).unwrap();
    assert!(query_list(&st).is_empty());
    assert_eq!(query_index(&st), 12, "a delete moves the table index");
}

#[test]
fn names_are_unique_and_may_not_steal_an_id() {
    let mut st = Store::default();
    create(&mut st, 1, named(ID1, "Web", "web")).unwrap();
    assert_eq!(
        create(&mut st, 2, named(ID2, "web", "other")),
        Err("name 'web' aliases an existing query name".into())
    );
    assert_eq!(
        create(&mut st, 3, named(ID2, ID1, "other")),
        Err(format!("name '{ID1}' aliases an existing query ID"))
    );
    create(&mut st, 4, named(ID2, ID3, "other")).expect("a UUID-looking name that is no query's ID");
    query_apply(&mut st, 5, &QueryOp::Update(named(ID1, "web", "web"))).expect("renaming itself");
}

#[test]
fn only_one_catch_all_template_and_templates_must_compile() {
    let mut st = Store::default();
    create(&mut st, 1, template(ID1, "", "${name.full}")).unwrap();
    assert_eq!(
        create(&mut st, 2, template(ID2, "", "x")),
        Err("a query template with an empty name already exists".into())
    );
    let mut bad = template(ID2, "geo", "x");
    bad.template.kind = "glob".into();
    assert_eq!(create(&mut st, 3, bad), Err("failed compiling template: Bad Template.Type 'glob'".into()));
    assert_eq!(query_list(&st).len(), 1);
}

fn store_with_session(sid: &str) -> Store {
    let mut st = Store::default();
    st.set_node(1, Node { node: "n1".into(), address: "10.0.0.1".into(), ..Default::default() });
    let s = Session { id: sid.into(), node: "n1".into(), ..Default::default() };
    session_create(&mut st, 2, &s).unwrap();
    st
}

#[test]
fn a_query_needs_an_existing_session_and_goes_with_it() {
    let mut st = store_with_session(ID3);
    let mut q = named(ID1, "", "web");
    q.session = "ffffffff-0000-4000-8000-000000000000".into();
    assert_eq!(create(&mut st, 3, q.clone()), Err(format!("invalid session {:?}", q.session)));
    q.session = ID3.into();
    create(&mut st, 4, q).unwrap();
    create(&mut st, 5, named(ID2, "unbound", "web")).unwrap();

    st.begin();
    assert!(session_destroy(&mut st, 6, ID3, Instant::now()));
    assert!(query_get(&st, ID1).is_none(), "the bound query is deleted with its session");
    st.rollback();
    assert!(query_get(&st, ID1).is_some(), "a rolled-back invalidation brings it back");

    assert!(session_destroy(&mut st, 7, ID3, Instant::now()));
    assert_eq!(query_list(&st).iter().map(|q| q.id.as_str()).collect::<Vec<_>>(), [ID2]);
    assert_eq!(query_index(&st), 7);
}

#[test]
fn resolution_tries_id_then_name_then_the_longest_template_prefix() {
    let mut st = Store::default();
    create(&mut st, 1, template(ID1, "", "catch-${name.full}")).unwrap();
    create(&mut st, 2, template(ID2, "geo-", "geo-${name.suffix}")).unwrap();
    create(&mut st, 3, named(ID3, "geo-static", "static-svc")).unwrap();
    let svc = |name: &str| query_resolve(&st, name).unwrap().map(|q| q.service.service);
    assert_eq!(svc(ID3).as_deref(), Some("static-svc"), "by ID");
    assert_eq!(svc("GEO-Static").as_deref(), Some("static-svc"), "a static name wins, in any case");
    assert_eq!(svc("geo-db").as_deref(), Some("geo-db"), "the longest prefix");
    assert_eq!(svc("Geo-db").as_deref(), Some("geo-Geo-db"), "prefixes match in any case; suffix is literal");
    assert_eq!(svc("web").as_deref(), Some("catch-web"), "the catch-all");
    assert_eq!(
        query_resolve(&st, ID1),
        Err("prepared query templates can only be resolved up by name, not by ID".into())
    );
    query_apply(&mut st, 4, &QueryOp::Delete(ID1.into())).unwrap();
    assert_eq!(query_resolve(&st, "web"), Ok(None));
}

fn instance_store() -> Store {
    let mut st = Store::default();
    let meta = |k: &str, v: &str| Some([(k.to_string(), v.to_string())].into());
    for (node, tags, node_status, svc_status, rack) in [
        ("n1", vec!["primary", "v1"], PASSING, PASSING, "a"),
        ("n2", vec!["primary", "experimental"], PASSING, WARNING, "a"),
        ("n3", vec!["v1"], CRITICAL, PASSING, "b"),
    ] {
        st.set_node(
            1,
            Node {
                node: node.into(),
                address: "10.0.0.1".into(),
                meta: meta("rack", rack),
                ..Default::default()
            },
        );
        let svc = Service {
            id: "db".into(),
            service: "db".into(),
            tags: tags.into_iter().map(String::from).collect(),
            meta: meta("tier", node),
            ..Default::default()
        };
        st.set_service(1, node, svc);
        for (id, status, sid) in [("node-ok", node_status, ""), ("db-ok", svc_status, "db")] {
            let c = HealthCheck {
                node: node.into(),
                check_id: id.into(),
                status: status.into(),
                service_id: sid.into(),
                ..Default::default()
            };
            st.set_check(1, c);
        }
    }
    st
}

fn nodes_of(st: &Store, q: &ServiceQuery) -> Vec<String> {
    local_instances(st, q).into_iter().map(|i| i.node.node).collect()
}

#[test]
fn local_execution_filters_health_tags_and_metadata() {
    let st = instance_store();
    let base = ServiceQuery { service: "DB".into(), ..Default::default() };
    assert_eq!(nodes_of(&st, &base), ["n1", "n2"], "critical out, warning in, names in any case");
    let only = ServiceQuery { only_passing: true, ..base.clone() };
    assert_eq!(nodes_of(&st, &only), ["n1"]);
    let ignore = ServiceQuery { ignore_check_ids: Some(vec!["node-ok".into()]), ..base.clone() };
    assert_eq!(nodes_of(&st, &ignore), ["n1", "n2", "n3"], "an ignored critical check does not count");
    let tags = |t: &[&str]| ServiceQuery {
        tags: Some(t.iter().map(|s| s.to_string()).collect()),
        ignore_check_ids: Some(vec!["node-ok".into()]),
        ..base.clone()
    };
    assert_eq!(nodes_of(&st, &tags(&["PRIMARY"])), ["n1", "n2"]);
    assert_eq!(nodes_of(&st, &tags(&["primary", "!experimental"])), ["n1"]);
    assert_eq!(nodes_of(&st, &tags(&["!primary"])), ["n3"]);
    let node_meta = ServiceQuery { node_meta: Some([("rack".into(), "a".into())].into()), ..ignore.clone() };
    assert_eq!(nodes_of(&st, &node_meta), ["n1", "n2"]);
    let svc_meta = ServiceQuery { service_meta: Some([("tier".into(), "n3".into())].into()), ..ignore };
    assert_eq!(nodes_of(&st, &svc_meta), ["n3"]);
}

#[test]
fn failover_tries_nearest_then_listed_datacenters_once_each() {
    let by_distance: Vec<String> = ["dc1", "dc3", "dc2", "dc4"].map(String::from).to_vec();
    let f = |n: i64, dcs: &[&str]| QueryFailover {
        nearest_n: n,
        datacenters: Some(dcs.iter().map(|s| s.to_string()).collect()),
        targets: None,
    };
    let cases: Vec<(QueryFailover, Vec<&str>)> = vec![
        (f(0, &[]), vec![]),
        (f(2, &[]), vec!["dc3", "dc2"]),
        (f(9, &[]), vec!["dc3", "dc2", "dc4"]),
        (f(0, &["dc4", "dc2"]), vec!["dc4", "dc2"]),
        (f(1, &["dc2", "dc3", "dc2"]), vec!["dc3", "dc2"]),
        (f(1, &["dc1", "nowhere", "dc4"]), vec!["dc3", "dc4"]),
        (
            QueryFailover {
                targets: Some(
                    ["dc4", "dc9", "dc2", "dc4"]
                        .map(|dc| FailoverTarget { peer: String::new(), datacenter: dc.into() })
                        .to_vec(),
                ),
                ..Default::default()
            },
            vec!["dc4", "dc2"],
        ),
    ];
    for (failover, want) in cases {
        assert_eq!(failover_order(&failover, &by_distance, "dc1"), want, "{failover:?}");
    }
}

#[test]
fn validation_refuses_what_consul_refuses() {
    let ok = named(ID1, "web", "web");
    assert_eq!(validate(&ok), Ok(()));
    let check = |f: &dyn Fn(&mut PreparedQuery), want: &str| {
        let mut q = ok.clone();
        f(&mut q);
        assert_eq!(validate(&q), Err(format!("Invalid prepared query: {want}")));
    };
    check(&|q| q.name.clear(), "Must be bound to a session");
    check(&|q| q.service.service.clear(), "Must provide a Service name to query");
    check(&|q| q.service.failover.nearest_n = -1, "Bad NearestN '-1', must be >= 0");
    check(
        &|q| q.token = REDACTED_TOKEN.into(),
        "Bad Token '<hidden>', it looks like a query definition with a redacted token was submitted",
    );
    check(
        &|q| {
            q.service.failover.nearest_n = 1;
            q.service.failover.targets =
                Some(vec![FailoverTarget { peer: String::new(), datacenter: "dc2".into() }]);
        },
        "Targets cannot be populated with NearestN or Datacenters",
    );
    check(&|q| q.dns.ttl = "-5s".into(), "DNS TTL '-5000000000', must be >=0");
    check(
        &|q| q.service.node_meta = Some([("bad key".into(), "v".into())].into()),
        "Couldn't load metadata pair ('bad key', 'v'): Key contains invalid characters",
    );
    let mut q = ok.clone();
    q.dns.ttl = "soon".into();
    let e = validate(&q).unwrap_err();
    assert!(e.starts_with("Invalid prepared query: Bad DNS TTL 'soon': time: "), "{e}");
    q.dns.ttl = "10s".into();
    assert_eq!(q.dns_ttl(), Some(Duration::from_secs(10)));
}

#[test]
fn uuids_are_recognised_like_consul_does() {
    assert!(is_uuid(ID1));
    assert!(is_uuid(&ID1.to_ascii_uppercase()));
    for s in ["", "web", "11111111-1111-4111-8111-11111111111", "1111111g-1111-4111-8111-111111111111"] {
        assert!(!is_uuid(s), "{s}");
    }
}
