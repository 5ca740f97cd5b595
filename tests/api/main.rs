//! HTTP API integration tests: each test starts an in-process
//! [`TestAgent`](sekisho::testing::TestAgent) on a free port and checks Consul's wire
//! behaviour (status codes, JSON shapes, headers, error texts) over real HTTP.

mod acl;
mod acl_login;
mod agent_local;
mod blocking;
mod catalog;
mod coordinate;
mod errors;
mod event;
mod health;
mod keyring;
mod kv;
mod limits;
mod metrics;
mod prepared_query;
mod session;
mod snapshot;
mod status_agent;
mod support;
mod txn;
mod watches;
