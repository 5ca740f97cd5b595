acl {
  enabled        = true
  default_policy = "deny"          # "allow" is the default, as in Consul
  down_policy    = "extend-cache"  # extend-cache | async-cache | allow | deny
  token_ttl      = "30s"           # how long client agents cache a resolved token
  enable_token_persistence = true  # tokens set with PUT /v1/agent/token/* survive restarts
  tokens {
    initial_management = "<uuid>"  # created by the leader; counts as the bootstrap
    default            = "<uuid>"  # requests without a token, and DNS
    agent              = "<uuid>"  # the agent's own calls (remote exec answers)
    agent_recovery     = "<uuid>"  # agent endpoints on this agent even without servers
  }
  audit { enabled = true }         # beyond Consul OSS, see below
}
