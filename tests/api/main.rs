//! HTTP API integration tests: each test starts an in-process
//! [`TestAgent`](sekisho::testing::TestAgent) on a free port and checks Consul's wire
//! behaviour (status codes, JSON shapes, headers, error texts) over real HTTP.

mod blocking;
mod catalog;
mod errors;
mod health;
mod kv;
mod session;
mod status_agent;
mod support;
mod txn;
