#!/usr/bin/env python3
"""Writes the text seeds of fuzz/corpus/{http_request,config_text,acl_rules}: real requests,
the config examples of docs/ and src/config tests, and ACL rules. Run from the repository root;
the binary seeds come from `cargo test --test fuzz_corpus -- --ignored generate_seed_corpus`."""
import glob, hashlib, os, re

def write(target, name, data):
    d = os.path.join('fuzz', 'corpus', target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)

HTTP = {
    'kv_put': 'PUT /v1/kv/app/config?flags=42\nContent-Type: application/octet-stream\n\n{"replicas":3}',
    'kv_put_cas': 'PUT /v1/kv/app/config?cas=0\n\nfirst',
    'kv_get': 'GET /v1/kv/app/config',
    'kv_get_raw': 'GET /v1/kv/app/config?raw',
    'kv_recurse': 'GET /v1/kv/app/?recurse=true&separator=/',
    'kv_keys': 'GET /v1/kv/?keys&separator=/',
    'kv_delete_tree': 'DELETE /v1/kv/tmp?recurse',
    'kv_acquire': 'PUT /v1/kv/service/leader?acquire=adf4238a-882b-9ddc-4a9d-5b6758e4159e\n\nme',
    'kv_blocking': 'GET /v1/kv/app/config?index=1&wait=50ms',
    'kv_consistent': 'GET /v1/kv/fixture/key?consistent&dc=dc1',
    'kv_stale_token': 'GET /v1/kv/fixture/key?stale\nX-Consul-Token: 00000000-0000-0000-0000-000000000002',
    'txn': 'PUT /v1/txn\n\n[{"KV":{"Verb":"set","Key":"txn/a","Value":"aGVsbG8="}},'
           '{"KV":{"Verb":"get","Key":"txn/a"}},{"KV":{"Verb":"check-not-exists","Key":"txn/b"}},'
           '{"Node":{"Verb":"get","Node":{"Node":"db1"}}}]',
    'txn_cas': 'PUT /v1/txn\n\n[{"KV":{"Verb":"cas","Key":"txn/a","Value":"eA==","Index":1}},'
               '{"KV":{"Verb":"delete-tree","Key":"txn/"}}]',
    'catalog_register': 'PUT /v1/catalog/register\n\n{"Datacenter":"dc1","Node":"web-01","Address":"10.0.0.7",'
                        '"TaggedAddresses":{"lan":"10.0.0.7","wan":"203.0.113.7"},"NodeMeta":{"rack":"r1"},'
                        '"Service":{"ID":"web-1","Service":"web","Tags":["v1","primary"],"Port":80,'
                        '"Meta":{"version":"1"},"Weights":{"Passing":10,"Warning":1}},'
                        '"Check":{"CheckID":"web-1-alive","Name":"alive","Status":"passing","ServiceID":"web-1"}}',
    'catalog_deregister': 'PUT /v1/catalog/deregister\n\n{"Node":"web-01","ServiceID":"web-1"}',
    'catalog_services': 'GET /v1/catalog/services?filter=ServiceTags%20contains%20%22v1%22',
    'catalog_service': 'GET /v1/catalog/service/web?tag=primary&near=_agent',
    'catalog_nodes': 'GET /v1/catalog/nodes?node-meta=rack:r1&filter=Node%20matches%20%22web.*%22',
    'catalog_node': 'GET /v1/catalog/node/db1',
    'health_service': 'GET /v1/health/service/web?passing&index=0',
    'health_state': 'GET /v1/health/state/critical',
    'agent_service_register': 'PUT /v1/agent/service/register?replace-existing-checks=true\n\n'
                              '{"ID":"redis1","Name":"redis","Tags":["primary"],"Address":"127.0.0.1","Port":8000,'
                              '"Meta":{"redis_version":"4.0"},"EnableTagOverride":false,'
                              '"Check":{"TTL":"15s","DeregisterCriticalServiceAfter":"90m"},'
                              '"Weights":{"Passing":10,"Warning":1}}',
    'agent_service_deregister': 'PUT /v1/agent/service/deregister/redis1',
    'agent_check_register': 'PUT /v1/agent/check/register\n\n{"ID":"mem","Name":"Memory utilization","TTL":"30s","Notes":"x"}',
    'agent_check_pass': 'PUT /v1/agent/check/pass/mem?note=ok',
    'agent_check_update': 'PUT /v1/agent/check/update/mem\n\n{"Status":"warning","Output":"high"}',
    'agent_maintenance': 'PUT /v1/agent/service/maintenance/redis1?enable=true&reason=upgrade',
    'agent_self': 'GET /v1/agent/self',
    'agent_members': 'GET /v1/agent/members?wan=1',
    'agent_services': 'GET /v1/agent/services?filter=Service%20%3D%3D%20%22api%22',
    'agent_health': 'GET /v1/agent/health/service/name/api?format=text',
    'agent_token': 'PUT /v1/agent/token/default\n\n{"Token":"adf4238a-882b-9ddc-4a9d-5b6758e4159e"}',
    'session_create': 'PUT /v1/session/create\n\n{"Name":"my-lock","Node":"db1","LockDelay":"15s",'
                      '"Behavior":"delete","TTL":"30s","NodeChecks":[],"ServiceChecks":[]}',
    'session_renew': 'PUT /v1/session/renew/adf4238a-882b-9ddc-4a9d-5b6758e4159e',
    'session_list': 'GET /v1/session/list',
    'session_node': 'GET /v1/session/node/db1',
    'session_destroy': 'PUT /v1/session/destroy/adf4238a-882b-9ddc-4a9d-5b6758e4159e',
    'acl_bootstrap': 'PUT /v1/acl/bootstrap',
    'acl_policy': 'PUT /v1/acl/policy\n\n{"Name":"node-read","Description":"Grants read access to all node information",'
                  '"Rules":"node_prefix \\"\\" {\\n  policy = \\"read\\"\\n}","Datacenters":["dc1"]}',
    'acl_token': 'PUT /v1/acl/token\n\n{"Description":"agent token","Policies":[{"Name":"node-read"}],'
                 '"ServiceIdentities":[{"ServiceName":"web"}],"Local":false,"ExpirationTTL":"1h"}',
    'acl_role': 'PUT /v1/acl/role\n\n{"Name":"example-role","Policies":[{"Name":"node-read"}],'
                '"NodeIdentities":[{"NodeName":"node-1","Datacenter":"dc1"}]}',
    'acl_tokens': 'GET /v1/acl/tokens?policy=00000000-0000-0000-0000-000000000001',
    'acl_self': 'GET /v1/acl/token/self\nX-Consul-Token: root',
    'acl_translate': 'POST /v1/acl/rules/translate\n\nagent "" { policy = "read" }',
    'query_create': 'POST /v1/query\n\n{"Name":"my-query","Session":"","Token":"","Service":{"Service":"redis",'
                    '"Failover":{"NearestN":3,"Datacenters":["dc1","dc2"]},"OnlyPassing":false,"Tags":["primary","!experimental"],'
                    '"NodeMeta":{"instance_type":"m3.large"},"ServiceMeta":{"environment":"production"}},'
                    '"DNS":{"TTL":"10s"}}',
    'query_template': 'POST /v1/query\n\n{"Name":"geo-db","Template":{"Type":"name_prefix_match",'
                      '"Regexp":"^geo-db-(.*?)-([^\\\\-]+?)$"},"Service":{"Service":"mysql-${match(1)}"}}',
    'query_execute': 'GET /v1/query/web-query/execute?near=_agent&limit=3',
    'query_explain': 'GET /v1/query/geo-db-customer-primary/explain',
    'query_list': 'GET /v1/query',
    'event_fire': 'PUT /v1/event/fire/deploy?node=db.*&service=web&tag=v1\n\npayload-1',
    'event_list': 'GET /v1/event/list?name=deploy',
    'status_leader': 'GET /v1/status/leader',
    'operator_raft': 'GET /v1/operator/raft/configuration',
    'operator_autopilot': 'PUT /v1/operator/autopilot/configuration?cas=0\n\n{"CleanupDeadServers":true,'
                          '"LastContactThreshold":"200ms","MaxTrailingLogs":250,"ServerStabilizationTime":"10s"}',
    'operator_keyring': 'GET /v1/operator/keyring',
    'coordinate_nodes': 'GET /v1/coordinate/nodes',
    'coordinate_update': 'PUT /v1/coordinate/update\n\n{"Node":"db1","Segment":"","Coord":{"Adjustment":0,'
                         '"Error":1.5,"Height":0,"Vec":[0,0,0,0,0,0,0,0]}}',
    'snapshot_get': 'GET /v1/snapshot?stale',
    'metrics': 'GET /v1/agent/metrics?format=prometheus',
    'unknown': 'GET /v1/nope',
    'method_not_allowed': 'PATCH /v1/kv/x',
}
for name, req in HTTP.items():
    write('http_request', name, req)

def configs():
    for f in sorted(glob.glob('docs/*.md')):
        s = open(f).read()
        for i, m in enumerate(re.finditer(r'```(hcl|json)\n(.*?)```', s, re.S)):
            yield f'doc_{os.path.basename(f)[:-3]}_{i}.{m.group(1)}', m.group(2)
    for f in ['src/config/tests.rs', 'src/config/hcl_tests.rs']:
        s = open(f).read()
        for i, m in enumerate(re.finditer(r'r#"(.*?)"#', s, re.S)):
            text = m.group(1)
            if len(text.strip()) > 10:
                yield f'test_{os.path.basename(f)[:-3]}_{i}', text
for name, text in configs():
    write('config_text', name, text)
write('config_text', 'full.hcl', '''
datacenter = "east-aws"
data_dir = "/opt/consul"
log_level = "INFO"
node_name = "foobar"
server = true
bootstrap_expect = 3
retry_join = ["10.0.0.1", "10.0.0.2"]
ports { http = 8500 dns = 8600 }
recursors = ["8.8.8.8:53"]
dns_config { allow_stale = true max_stale = "87600h" node_ttl = "30s" service_ttl { "*" = "5s" } udp_answer_limit = 3 }
acl { enabled = true default_policy = "deny" tokens { agent = "x" } }
service {
  name = "web"
  port = 80
  tags = ["v1"]
  check { id = "web-ttl" ttl = "30s" }
}
watches = [ { type = "key" key = "foo/bar" handler_type = "http" http_handler_config { path = "http://127.0.0.1:1/x" } } ]
limits { http_max_conns_per_client = 200 }
telemetry { prometheus_retention_time = "60s" }
''')
write('config_text', 'full.json', '''{
  "datacenter": "dc1", "node_name": "n1", "server": true, "bootstrap": true,
  "client_addr": "127.0.0.1", "bind_addr": "{{ GetPrivateIP }}",
  "ports": {"http": 8500, "https": -1, "grpc": 8502},
  "encrypt": "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=",
  "services": [{"name": "api", "port": 9090, "checks": [{"ttl": "10s"}, {"args": ["/bin/true"], "interval": "10s"}]}],
  "checks": [{"id": "mem", "name": "mem", "ttl": "30s"}],
  "session_ttl_min": "1s", "kv_max_value_size": 1024,
  "autopilot": {"cleanup_dead_servers": false, "min_quorum": 3},
  "raft_multiplier": 5, "disable_remote_exec": false
}''')

ACL = {
    'node_prefix': 'node_prefix "" {\n  policy = "read"\n}\nservice_prefix "" { policy = "read" }\n',
    'full': '''acl = "read"
agent_prefix "" { policy = "read" }
key_prefix "" { policy = "deny" }
key_prefix "app/" { policy = "write" }
key "app/secret" { policy = "deny" }
session_prefix "" { policy = "write" }
event_prefix "deploy" { policy = "write" }
query_prefix "" { policy = "read" }
operator = "read"
keyring = "write"
service "web" { policy = "write" intentions = "read" }
node "db1" { policy = "write" }
''',
    'json': '{"key_prefix": {"": {"policy": "read"}, "foo/": {"policy": "write"}}, "operator": "read",'
            ' "service": {"web": {"policy": "write"}}}',
    'legacy': 'key "" { policy = "read" }\nkey "foo/" { policy = "write" }\nkey "foo/private/" { policy = "deny" }\n',
}
for name, text in ACL.items():
    write('acl_rules', name, text)
