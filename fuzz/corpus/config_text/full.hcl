
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
